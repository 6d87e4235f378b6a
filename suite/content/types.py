"""Content types: plugins register them; the editor, portal and importers read their field specs."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

FIELD_KINDS = (
    "text",
    "textarea",
    "int",
    "float",
    "date",
    "datetime",
    "bool",
    "choice",
    "multichoice",
    "lines",
)


@dataclass(frozen=True)
class FieldSpec:
    """A type-specific field kept in ``ContentItem.data``."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    max_length: int = 2000
    #: Regular expression a text value (or every line of a ``lines`` value) must match in full.
    pattern: str = ""
    pattern_error: str = "This value is not in the expected format."
    #: Inclusive bounds of an ``int`` or ``float`` value.
    min_value: float | None = None
    max_value: float | None = None

    def parse(self, raw: Any) -> tuple[Any, str | None]:
        """Convert form/import input to the stored value; returns (value, error message)."""
        value, error = self._convert(raw)
        if error is None and value is not None:
            error = self._check(value)
        return (None, error) if error else (value, None)

    def _check(self, value: Any) -> str | None:
        """The declared constraints (pattern, bounds) on an already converted value."""
        if self.kind == "float" and not math.isfinite(value):
            return "Enter a number."
        if self.kind in {"int", "float"}:
            low, high = self.min_value, self.max_value
            if (low is not None and value < low) or (high is not None and value > high):
                if low is not None and high is not None:
                    return f"Enter a number from {low:g} to {high:g}."
                return (
                    f"Enter a number of at least {low:g}."
                    if low is not None
                    else f"Enter a number of at most {high:g}."
                )
        if self.pattern and self.kind in {"text", "textarea", "lines"}:
            values = value if self.kind == "lines" else [value]
            if any(not re.fullmatch(self.pattern, v) for v in values):
                return self.pattern_error
        return None

    def _convert(self, raw: Any) -> tuple[Any, str | None]:
        if raw is None or raw == "" or raw == []:
            if self.required:
                return None, "This field is required."
            return ([] if self.kind in {"multichoice", "lines"} else None), None
        try:
            if self.kind in {"text", "textarea"}:
                value = str(raw).strip()
                if len(value) > self.max_length:
                    return None, f"At most {self.max_length} characters."
                return value, None
            if self.kind == "int":
                return int(raw), None
            if self.kind == "float":
                return float(str(raw).replace(",", ".")), None
            if self.kind == "bool":
                if isinstance(raw, bool):
                    return raw, None
                return str(raw).lower() in {"1", "true", "on", "yes", "sim"}, None
            if self.kind == "date":
                return (raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])).isoformat(), None
            if self.kind == "datetime":
                value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
                if value.tzinfo is None:
                    from zoneinfo import ZoneInfo

                    value = value.replace(tzinfo=ZoneInfo("Europe/Lisbon"))
                return value.isoformat(), None
            if self.kind == "choice":
                if str(raw) not in self.choices:
                    return None, f"Choose one of: {', '.join(self.choices)}."
                return str(raw), None
            if self.kind == "multichoice":
                values = [str(v) for v in (raw if isinstance(raw, list | tuple) else str(raw).split(","))]
                values = [v.strip() for v in values if v.strip()]
                bad = [v for v in values if v not in self.choices]
                if bad:
                    return None, f"Unknown choice(s): {', '.join(bad)}."
                return values, None
            if self.kind == "lines":
                items = raw if isinstance(raw, list | tuple) else str(raw).splitlines()
                return [str(v).strip() for v in items if str(v).strip()], None
        except (TypeError, ValueError):
            return None, {
                "int": "Enter a whole number.",
                "float": "Enter a number.",
                "date": "Enter a date like 2026-12-31.",
                "datetime": "Enter a date and time like 2026-12-31T18:00.",
            }.get(self.kind, "Invalid value.")
        return raw, None


@dataclass(frozen=True)
class ContentType:
    """A kind of content a plugin owns (``news.article``)."""

    name: str
    label: str
    #: URL of an item: ``/noticias/{slug}``.
    url_pattern: str
    fields: tuple[FieldSpec, ...] = ()
    categories: tuple[str, ...] = ()
    hierarchical: bool = False
    schema_type: str = "WebPage"
    #: Portal section label for breadcrumbs, and its URL.
    section_label: str = ""
    section_url: str = ""
    listed_in_sitemap: bool = True
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def plugin(self) -> str:
        return self.name.split(".", 1)[0]

    def url(self, slug: str, language: str = "pt") -> str:
        path = self.url_pattern.format(slug=slug)
        return path if language == "pt" else f"{path}?lang={language}"

    def path_for(self, item: Any) -> str:
        """Path of ``item`` (anything with ``slug``, ``language``, ``data``) without the language parameter.

        Types whose address depends on more than the slug (a field in ``data``) override this.
        """
        return self.url_pattern.format(slug=item.slug)

    def url_for(self, item: Any) -> str:
        """URL of ``item`` on the portal, with ``?lang=`` for other languages than Portuguese."""
        path = self.path_for(item)
        return path if item.language == "pt" else f"{path}?lang={item.language}"

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def parse_data(self, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        data: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for spec in self.fields:
            value, error = spec.parse(raw.get(spec.name))
            if error:
                errors[f"data.{spec.name}"] = error
            elif value is not None:
                data[spec.name] = value
        return data, errors
