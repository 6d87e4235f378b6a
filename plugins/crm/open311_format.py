"""Open311 GeoReport v2 wire formats: every answer in JSON (Litestar's encoder) or XML (``xml.etree``, UTF-8 with
the XML declaration), chosen by the resource's extension, and errors as the spec's ``[{code, description}]`` list."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET

from litestar import MediaType, Response

FORMATS = ("json", "xml")
#: Child element names of the lists nested inside items (everything else is a plain element).
ITEM_TAGS = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}
#: Characters XML 1.0 cannot carry at all (escaping does not help): dropped from text.
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Open311Error(Exception):
    """One or more spec errors; ``status`` is the HTTP status of the answer (the first error's code)."""

    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__(descriptions[0] if descriptions else str(status))
        self.status = status
        self.errors = [(status, d) for d in descriptions]


def split_format(name: str) -> tuple[str, str]:
    """``"VM-2026-000001.xml"`` → (``"VM-2026-000001"``, ``"xml"``); a missing or unknown extension is a 404
    (answered in JSON, the only guess left)."""
    stem, dot, fmt = name.rpartition(".")
    if not dot or not stem or fmt not in FORMATS:
        raise Open311Error(404, "Unknown resource: add .json or .xml to the address.")
    return stem, fmt


def format_of(path: str) -> str:
    """The format named by the extension of a request path (JSON when there is none)."""
    return "xml" if path.endswith(".xml") else "json"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return XML_INVALID.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list | tuple):
        tag = ITEM_TAGS.get(element.tag, "item")
        for child in value:
            _fill(ET.SubElement(element, tag), child)
    elif value is not None:
        element.text = _text(value)


def to_xml(root: str, payload: Any, item: str | None = None) -> bytes:
    """``payload`` under ``<root>``: a list becomes one ``<item>`` per row, a dict the root's children."""
    element = ET.Element(root)
    if isinstance(payload, list):
        for row in payload:
            _fill(ET.SubElement(element, item or "item"), row)
    else:
        _fill(element, payload)
    return XML_DECLARATION + ET.tostring(element, encoding="unicode").encode()


def respond(
    fmt: str, root: str, payload: Any, item: str | None = None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The answer in ``fmt``: JSON is the payload itself, XML wraps it in ``root`` (rows in ``item``)."""
    if fmt == "xml":
        content: Any = to_xml(root, payload, item)
    else:
        content = payload
    return Response(
        content,
        status_code=status,
        media_type="text/xml" if fmt == "xml" else MediaType.JSON,  # Litestar adds "; charset=utf-8" to text/*
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(fmt: str, error: Open311Error) -> Response:
    rows = [{"code": code, "description": description} for code, description in error.errors]
    return respond(fmt, "errors", rows, "error", status=error.status)
