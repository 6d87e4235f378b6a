"""What Open311 clients can request: the catalogue's online services (with the same extra fields as the portal's
request form, as service definition attributes) and the Fale Connosco topics (no attributes)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .services import RequestField, Topic, parse_topics, request_fields, validate_request_fields

#: Fale Connosco topics are services whose code is this prefix and the topic's label, folded (``FC-URBANISMO``).
TOPIC_PREFIX = "FC-"
TOPIC_GROUP = "Fale Connosco"
#: Request field kinds → GeoReport datatypes (file fields are not offered: Open311 sends pictures as media_url).
DATATYPES = {
    "text": "string",
    "number": "number",
    "date": "datetime",
    "choice": "singlevaluelist",
    "multichoice": "multivaluelist",
}
DATATYPE_DESCRIPTIONS = {
    "number": "A number, e.g. 3 or 2.5.",
    "date": "A date, YYYY-MM-DD (a full ISO 8601 date-time is accepted; only its date is kept).",
    "multichoice": "One or more keys: attribute[CODE][]=KEY, repeated.",
}
ATTRIBUTE_KEY = re.compile(r"attribute\[([^\[\]]{1,60})\](\[\])?")


def topic_code(label: str) -> str:
    """The stable code of a topic: its label without accents, upper-case, words joined by dashes."""
    folded = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Z0-9]+", "-", folded.upper()).strip("-")
    return TOPIC_PREFIX + (slug[: 40 - len(TOPIC_PREFIX)].rstrip("-") or "TOPICO")


@dataclass(frozen=True)
class Open311Service:
    code: str
    name: str
    description: str
    group: str
    keywords: tuple[str, ...] = ()
    fields: tuple[RequestField, ...] = ()
    topic: Topic | None = None
    processing_days: int | None = None

    @property
    def metadata(self) -> bool:
        return bool(self.fields)

    def entry(self) -> dict[str, Any]:
        """One row of ``services.{json,xml}``."""
        return {
            "service_code": self.code,
            "service_name": self.name,
            "description": self.description,
            "metadata": self.metadata,
            "type": "realtime",  # the request id is returned at once
            "keywords": ", ".join(self.keywords),
            "group": self.group,
        }

    def definition(self) -> dict[str, Any]:
        """``services/{code}.{json,xml}``: the attributes in the order of the portal form."""
        return {"service_code": self.code, "attributes": [_attribute(f, n) for n, f in enumerate(self.fields, 1)]}


def _attribute(spec: RequestField, order: int) -> dict[str, Any]:
    datatype = DATATYPES[spec.kind]
    return {
        "variable": True,
        "code": spec.name,
        "datatype": datatype,
        "required": spec.required,
        "datatype_description": DATATYPE_DESCRIPTIONS.get(spec.kind),
        "order": order,
        "description": spec.label,
        "values": [{"key": c, "name": c} for c in spec.choices] if datatype.endswith("valuelist") else [],
    }


def _from_item(item: Any) -> Open311Service:
    data = item.data or {}
    days = data.get("processing_days")
    return Open311Service(
        code=str(data["service_code"]),
        name=item.title,
        description=item.summary or str(data.get("description") or "")[:500],
        group=item.category or "",
        keywords=tuple(str(t) for t in item.tags or ()),
        fields=tuple(f for f in request_fields(data) if f.kind in DATATYPES),
        processing_days=days if isinstance(days, int) else None,
    )


def _from_topic(topic: Topic) -> Open311Service:
    return Open311Service(
        code=topic_code(topic.label), name=topic.label, description=topic.label, group=TOPIC_GROUP, topic=topic
    )


async def catalogue(
    db: AsyncSession, registry: Any, crm_settings: dict[str, Any], language: str
) -> list[Open311Service]:
    """Online services of the catalogue (when the services plugin runs), then the topics; a topic whose code a
    catalogue service already uses is left out."""
    found: list[Open311Service] = []
    if registry.get("services") is not None:
        from concelho.suite.content.portal import live_items_preferring

        for item in await live_items_preferring(db, "services.service", language):
            if item.data.get("online") is True and item.data.get("service_code"):
                found.append(_from_item(item))
    codes = {s.code for s in found}
    for topic in parse_topics(crm_settings["topics"]):
        service = _from_topic(topic)
        if service.code not in codes:
            codes.add(service.code)
            found.append(service)
    return found


class _AttributeForm:
    """The ``attribute[CODE]`` / ``attribute[CODE][]`` values of a POST, read like the portal form (``x_CODE``)."""

    def __init__(self, form: Any, fields: tuple[RequestField, ...]) -> None:
        self.values: dict[str, list[str]] = {}
        kinds = {f.key: f.kind for f in fields}
        for name, value in form.multi_items():
            match = ATTRIBUTE_KEY.fullmatch(name)
            if match and isinstance(value, str):
                key = f"x_{match.group(1)}"
                self.values.setdefault(key, []).append(_as_date(value) if kinds.get(key) == "date" else value)

    def get(self, key: str, default: Any = None) -> Any:
        values = self.values.get(key)
        return values[0] if values else default

    def getall(self, key: str, default: Any = None) -> list[str]:
        return self.values.get(key, default if default is not None else [])


def _as_date(value: str) -> str:
    """A full ISO 8601 date-time becomes its date; anything else is left for the field's own check."""
    value = value.strip()
    if len(value) > 10:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            return value
    return value


def read_attributes(service: Open311Service, form: Any) -> tuple[dict[str, str], list[str]]:
    """(values by label, as the case keeps them; error descriptions) of the attributes of a POST, checked by the
    same rules as the portal's request form. Codes the service does not define are ignored."""
    attributes = _AttributeForm(form, service.fields)
    errors: list[str] = []
    for spec in service.fields:
        if spec.kind != "multichoice" and len(attributes.getall(spec.key)) > 1:
            errors.append(f"attribute[{spec.name}]: takes one value.")
    values, field_errors = validate_request_fields(list(service.fields), attributes, {})
    by_key = {f.key: f for f in service.fields}
    errors += [f"attribute[{by_key[key].name}]: {message}" for key, message in field_errors.items()]
    return values, errors
