"""Text of a stored file for full-text search: PDF, DOCX, ODT (and other ODF/OOXML kinds), XLSX, plain text.

Runs in a worker thread with limits: files larger than ``max_bytes`` are not read, at most
:data:`MAX_PDF_PAGES` pages, :data:`MAX_XLSX_CELLS` cells and :data:`MAX_XML_BYTES` of each office
XML part are looked at, and the result is cut at :data:`MAX_CHARS`.  Office XML is never given to an
XML parser (no entity expansion): text runs are picked out of the markup and unescaped.  A file that
cannot be read yields ``""``; extraction never refuses an upload (the type sniffing and zip bomb
checks have run before).
"""

from __future__ import annotations

import html
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

log = logging.getLogger("suite.documents")

MAX_CHARS = 200_000
MAX_PDF_PAGES = 500
MAX_XLSX_CELLS = 200_000
MAX_XML_BYTES = 20 * 1024 * 1024
MAX_TEXT_BYTES = 4 * 1024 * 1024

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODF = {
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
}

_BREAKS = re.compile(r"</(?:w:p|a:p|text:p|text:h|table:table-row)>|<(?:w:br|w:tab|text:line-break|text:tab)\b[^>]*/?>")
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\n\s*\n+")


def _clean(text: str) -> str:
    text = _SPACES.sub(" ", text)
    return _LINES.sub("\n", text).strip()[:MAX_CHARS]


def markup_text(xml: bytes) -> str:
    """Text of an office XML part: breaks at paragraph ends, tags dropped, entities unescaped (no DTDs)."""
    text = xml.decode("utf-8", "replace")
    text = _BREAKS.sub("\n", text)
    text = _TAG.sub("", text)
    return html.unescape(text)


def _zip_parts(path: Path, names: list[str]) -> str:
    out: list[str] = []
    total = 0
    with zipfile.ZipFile(path) as zf:
        for name in names:
            try:
                info = zf.getinfo(name)
            except KeyError:
                continue
            if info.file_size > MAX_XML_BYTES:
                continue
            with zf.open(info) as fh:
                out.append(markup_text(fh.read(MAX_XML_BYTES)))
            total += len(out[-1])
            if total > MAX_CHARS:
                break
    return "\n".join(out)


def _slide_number(name: str) -> int:
    match = re.search(r"(\d+)\.xml$", name)
    return int(match.group(1)) if match else 0


def _pptx(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        slides = [n for n in zf.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)]
    return _zip_parts(path, sorted(slides, key=_slide_number))


def _pdf(path: Path) -> str:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(path)
    parts: list[str] = []
    total = 0
    for page in reader.pages[:MAX_PDF_PAGES]:
        text = page.extract_text() or ""
        parts.append(text)
        total += len(text)
        if total > MAX_CHARS:
            break
    return "\n".join(parts)


def _xlsx(path: Path) -> str:
    from openpyxl import load_workbook

    # A file object: openpyxl refuses paths without an .xlsx extension (staged files have none).
    with path.open("rb") as fh:
        workbook = load_workbook(fh, read_only=True, data_only=True)
        try:
            return _cells_text(workbook)
        finally:
            workbook.close()


def _cells_text(workbook: Any) -> str:
    lines: list[str] = []
    cells = total = 0
    for sheet in workbook.worksheets:
        lines.append(str(sheet.title))
        for row in sheet.iter_rows(values_only=True):
            values = [str(v) for v in row if v not in (None, "")]
            cells += len(row)
            if values:
                lines.append(" ".join(values))
                total += len(lines[-1])
            if cells > MAX_XLSX_CELLS or total > MAX_CHARS:
                return "\n".join(lines)
    return "\n".join(lines)


def _plain(path: Path) -> str:
    with path.open("rb") as fh:
        return fh.read(MAX_TEXT_BYTES).decode("utf-8", "replace")


def extract_text(path: Path, content_type: str, max_bytes: int = 50 * 1024 * 1024) -> str:
    """Searchable text of the file at ``path`` (``""`` when there is none or it cannot be read)."""
    try:
        if path.stat().st_size > max_bytes:
            return ""
        if content_type == "application/pdf":
            text = _pdf(path)
        elif content_type == DOCX:
            text = _zip_parts(path, ["word/document.xml", "word/footnotes.xml"])
        elif content_type in ODF:
            text = _zip_parts(path, ["content.xml"])
        elif content_type == PPTX:
            text = _pptx(path)
        elif content_type == XLSX:
            text = _xlsx(path)
        elif content_type.startswith("text/"):
            text = _plain(path)
        else:
            return ""
    except Exception as exc:  # a damaged or hostile file: no text, never a failed upload
        log.info("no text extracted from %s (%s): %s", path.name, content_type, exc)
        return ""
    return _clean(text)
