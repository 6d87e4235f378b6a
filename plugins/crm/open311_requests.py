"""Open311 service requests over the CRM's cases: reading a POST into an ordinary case, the GET filters and
their defaults, and a case as a GeoReport ``request`` (never with the citizen's personal data)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from concelho.suite.audit import record
from concelho.suite.models import Department, as_utc
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import services
from .models import ApiKey, Case, CaseEvent, Citizen
from .open311_catalogue import TOPIC_PREFIX, Open311Service, read_attributes, topic_code
from .open311_format import Open311Error

CHANNEL = "open311"
MAX_DESCRIPTION = 4000
MAX_RESULTS = 1000
MAX_IDS = 1000
DEFAULT_SPAN = timedelta(days=90)
#: Case statuses seen as GeoReport ``open``; ``answered`` and ``closed`` are ``closed`` (a citizen's reply
#: reopens an answered case, and then it is ``open`` again).
OPEN_STATUSES = ("new", "assigned", "in_progress", "waiting_citizen", "reopened")
CLOSED_STATUSES = ("answered", "closed")
#: How ``address_id`` is kept with the address in the case's location (shown to staff as it is).
ADDRESS_ID = re.compile(r"\s*\[address_id: ([^\]]*)\]\Z")
ADDRESS_ID_CHARS = re.compile(r"[^\]\[\r\n]{1,100}")
MEDIA_URL = re.compile(r"https?://[^\s<>\"]+")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the time zone (UTC), e.g. ``2026-11-28T15:52:50+00:00``."""
    return as_utc(value).astimezone(UTC).isoformat(timespec="seconds") if value else None


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


# --------------------------------------------------------------------------------------------
# POST requests
# --------------------------------------------------------------------------------------------
@dataclass
class NewRequest:
    """A POST's parameters, checked: what becomes the case and its citizen."""

    description: str = ""
    lat: str = ""
    long: str = ""
    address_string: str = ""
    address_id: str = ""
    media_url: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    device_id: str = ""
    account_id: str = ""
    values: dict[str, str] = field(default_factory=dict)

    @property
    def location_text(self) -> str:
        address = self.address_string[: 500 - 120]
        return f"{address} [address_id: {self.address_id}]".strip() if self.address_id else address


def _param(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_post(form: Any, service: Open311Service) -> NewRequest:
    """The request in ``form``, or :class:`Open311Error` (400) listing every problem found."""
    data = NewRequest(**{k: _param(form, k) for k in NewRequest.__dataclass_fields__ if k != "values"})
    errors: list[str] = []
    if len(data.description) > MAX_DESCRIPTION:
        errors.append(f"description: at most {MAX_DESCRIPTION} characters (got {len(data.description)}).")
    has_point = bool(data.lat or data.long)
    if has_point:
        try:
            lat, lon = float(data.lat), float(data.long)
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError
        except ValueError:
            errors.append("lat, long: give both, as decimal degrees (WGS84), e.g. lat=38.7071&long=-9.1355.")
            has_point = False
    if not (has_point or data.address_string or data.address_id):
        errors.append("A location is required: lat and long, address_string or address_id.")
    if len(data.address_string) > 380:
        errors.append("address_string: at most 380 characters.")
    if data.address_id and not ADDRESS_ID_CHARS.fullmatch(data.address_id):
        errors.append("address_id: at most 100 characters, without brackets.")
    if data.media_url and (len(data.media_url) > 500 or not MEDIA_URL.fullmatch(data.media_url)):
        errors.append("media_url: an http(s) address of at most 500 characters.")
    if data.email and (len(data.email) > 200 or not services.EMAIL_RE.fullmatch(data.email)):
        errors.append("email: not an e-mail address.")
    if data.phone and not services.PHONE_RE.fullmatch(re.sub(r"[().\-]", " ", data.phone)):
        errors.append("phone: digits only (9 or more), optionally with + and spaces.")
    if len(data.first_name) + len(data.last_name) > 199:
        errors.append("first_name, last_name: at most 200 characters together.")
    if len(data.device_id) > 200 or len(data.account_id) > 200:
        errors.append("device_id, account_id: at most 200 characters.")
    data.values, attribute_errors = read_attributes(service, form)
    errors += attribute_errors
    if errors:
        raise Open311Error(400, *errors)
    return data


async def file_request(
    db: AsyncSession, service: Open311Service, data: NewRequest, key: ApiKey, prefix: str
) -> tuple[Case, str]:
    """The request as an ordinary case (channel ``open311``); returns the case and the citizen's private tracking
    token (for the confirmation e-mail). The Open311 token handed back to the client is ``case.api_token``."""
    name = f"{data.first_name} {data.last_name}".strip()
    phone = re.sub(r"\s+", " ", re.sub(r"[().\-]", " ", data.phone)).strip()
    case_input = services.CaseInput(
        topic=service.name,
        description=data.description,
        name=name,
        email=data.email,
        phone=phone,
        location_text=data.location_text,
        latitude=data.lat,
        longitude=data.long,
        consent=False,  # no consent is recorded through an API client
        service_code="" if service.topic else service.code,
        channel=CHANNEL,
        extra=data.values,
    )
    case, tracking_token = await services.create_case(db, case_input, prefix=prefix, topic=service.topic)
    case.media_url = data.media_url
    case.api_key_id = key.id
    case.api_token = secrets.token_urlsafe(24)
    details = [f"Open311: filed by API key {key.id} ({key.name})."]
    if data.media_url:
        details.append(f"media_url: {data.media_url}")
    if data.device_id:
        details.append(f"device_id: {data.device_id}")
    if data.account_id:
        details.append(f"account_id: {data.account_id}")
    await services.add_event(db, case, "internal_note", "\n".join(details), "Open311")
    await db.flush()
    await record(db, "crm.open311_request", actor=f"api_key:{key.id}", target=f"crm.case:{case.id}")
    return case, tracking_token


# --------------------------------------------------------------------------------------------
# GET requests
# --------------------------------------------------------------------------------------------
@dataclass
class RequestQuery:
    ids: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _datetime(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: not a W3C date-time, e.g. 2026-11-01T00:00:00Z.") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def read_query(params: Any, now: datetime | None = None) -> RequestQuery:
    """The filters of ``GET requests``. With ``service_request_id`` the others are ignored (the spec); without
    dates the last 90 days; one date alone spans 90 days from it (or up to it); a span above 90 days is refused."""
    ids = _list(params.get("service_request_id"))
    if ids:
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"service_request_id: at most {MAX_IDS} ids.")
        return RequestQuery(ids=ids)
    statuses = [s.lower() for s in _list(params.get("status"))]
    if any(s not in ("open", "closed") for s in statuses):
        raise Open311Error(400, "status: open, closed or both (comma-separated).")
    start_raw, end_raw = params.get("start_date") or "", params.get("end_date") or ""
    start = _datetime("start_date", start_raw) if start_raw else None
    end = _datetime("end_date", end_raw) if end_raw else None
    if start is None and end is None:
        end = now or datetime.now(UTC)
    if start is None:
        start = end - DEFAULT_SPAN  # type: ignore[operator]
    if end is None:
        end = start + DEFAULT_SPAN
    if start > end:
        raise Open311Error(400, "start_date must not be after end_date.")
    if end - start > DEFAULT_SPAN:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days.")
    return RequestQuery(codes=_list(params.get("service_code")), statuses=statuses, start=start, end=end)


async def find_requests(db: AsyncSession, query: RequestQuery, topics: list[services.Topic]) -> list[Case]:
    """Cases filed through Open311 matching ``query``, the newest first, at most 1000. (Cases from the other
    channels are private messages to the council and never listed.)"""
    select_cases = select(Case).where(Case.channel == CHANNEL)
    if query.ids:
        select_cases = select_cases.where(Case.reference.in_(query.ids))
    else:
        select_cases = select_cases.where(Case.created_at >= query.start, Case.created_at <= query.end)
        if set(query.statuses) == {"open"}:
            select_cases = select_cases.where(Case.status.in_(OPEN_STATUSES))
        elif set(query.statuses) == {"closed"}:
            select_cases = select_cases.where(Case.status.in_(CLOSED_STATUSES))
        if query.codes:
            labels = [t.label for t in topics if topic_code(t.label) in query.codes]
            catalogue_codes = [c for c in query.codes if not c.startswith(TOPIC_PREFIX)]
            select_cases = select_cases.where(
                or_(Case.service_code.in_(catalogue_codes), and_(Case.service_code == "", Case.topic.in_(labels)))
            )
    select_cases = select_cases.order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_RESULTS)
    return list((await db.execute(select_cases)).scalars())


async def case_for_request(db: AsyncSession, reference: str) -> Case | None:
    query = select(Case).where(Case.reference == reference, Case.channel == CHANNEL)
    return (await db.execute(query)).scalar_one_or_none()


async def case_for_token(db: AsyncSession, token: str) -> Case | None:
    if not token or len(token) > 64:
        return None
    return (await db.execute(select(Case).where(Case.api_token == token))).scalar_one_or_none()


def redact(text: str, citizen: Citizen | None) -> str:
    """``text`` without the citizen's name (whole, or any part of 3+ letters), e-mail or phone number: a safety
    net for staff replies and descriptions that quote them."""
    if not text or citizen is None:
        return text
    patterns = []
    if citizen.email:
        patterns.append(re.escape(citizen.email))
    digits = re.sub(r"\D", "", citizen.phone or "")[-9:]
    if len(digits) >= 6:
        patterns.append(r"[\s.\-]?".join(digits))
    if citizen.name:
        patterns.append(re.escape(citizen.name))
        patterns += [rf"\b{re.escape(part)}\b" for part in citizen.name.split() if len(part) >= 3]
    for pattern in patterns:
        text = re.sub(pattern, "[…]", text, flags=re.IGNORECASE)
    return text


async def request_rows(db: AsyncSession, cases: list[Case]) -> list[dict[str, Any]]:
    """The cases as GeoReport requests (three queries whatever their number)."""
    if not cases:
        return []
    case_ids = [c.id for c in cases]
    citizen_ids = {c.citizen_id for c in cases if c.citizen_id}
    citizens = {
        c.id: c for c in (await db.execute(select(Citizen).where(Citizen.id.in_(citizen_ids)))).scalars()
    } if citizen_ids else {}  # fmt: skip
    department_ids = {c.department_id for c in cases if c.department_id}
    departments = {
        d.id: d.name for d in (await db.execute(select(Department).where(Department.id.in_(department_ids)))).scalars()
    } if department_ids else {}  # fmt: skip
    replies = await db.execute(
        select(CaseEvent.case_id, CaseEvent.body)
        .where(CaseEvent.case_id.in_(case_ids), CaseEvent.kind == "public_reply")
        .order_by(CaseEvent.created_at, CaseEvent.id)
    )
    notes = {case_id: body for case_id, body in replies}  # the latest reply wins
    return [
        request_row(case, departments.get(case.department_id), notes.get(case.id), citizens.get(case.citizen_id))
        for case in cases
    ]


def request_row(case: Case, agency: str | None, notes: str | None, citizen: Citizen | None) -> dict[str, Any]:
    match = ADDRESS_ID.search(case.location_text or "")
    address = ADDRESS_ID.sub("", case.location_text or "") if match else case.location_text
    return {
        "service_request_id": case.reference,
        "status": open311_status(case.status),
        "status_notes": redact(notes, citizen) if notes else None,
        "service_name": case.topic,
        "service_code": case.service_code or topic_code(case.topic),
        "description": redact(case.description, citizen),
        "agency_responsible": agency,
        "service_notice": None,
        "requested_datetime": iso(case.created_at),
        "updated_datetime": iso(case.updated_at),
        "expected_datetime": iso(case.sla_due_at),
        "address": address or None,
        "address_id": match.group(1) if match else None,
        "zipcode": None,
        "lat": case.latitude,
        "long": case.longitude,
        "media_url": case.media_url or None,
    }
