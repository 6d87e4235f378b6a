"""Content types: plugins register them; the editor, portal and importers read their field specs."""

from __future__ import annotations

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

    def parse(self, raw: Any) -> tuple[Any, str | None]:
        """Convert form/import input to the stored value; returns (value, error message)."""
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
