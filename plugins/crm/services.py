"""Cases, citizens and references: the rules shared by the public pages, the staff pages and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from concelho.suite.audit import record
from concelho.suite.content.media import IMAGE_TYPES, MediaError, safe_filename, sniff, upload_chunks
from concelho.suite.i18n import N_
from concelho.suite.mail import queue_mail
from concelho.suite.models import Department
from concelho.suite.storage import StorageLimitError
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from .models import Attachment, Case, CaseEvent, Citizen, Counter, Interaction

#: Attachments citizens may send: images and PDF only.
ATTACHMENT_TYPES = {*IMAGE_TYPES, "application/pdf"}
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE_RE = re.compile(r"\+?[0-9 ]{9,20}")
#: Status workflow: where each status may go next.
TRANSITIONS = {
    "new": ("assigned", "in_progress", "waiting_citizen", "answered", "closed"),
    "assigned": ("in_progress", "waiting_citizen", "answered", "closed"),
    "in_progress": ("waiting_citizen", "answered", "closed"),
    "waiting_citizen": ("in_progress", "answered", "closed"),
    "answered": ("in_progress", "closed", "reopened"),
    "closed": ("reopened",),
    "reopened": ("assigned", "in_progress", "waiting_citizen", "answered", "closed"),
}
STATUS_LABELS = {
    "new": N_("New"), "assigned": N_("Assigned"), "in_progress": N_("In progress"),
    "waiting_citizen": N_("Waiting for citizen"), "answered": N_("Answered"), "closed": N_("Closed"),
    "reopened": N_("Reopened"),
}  # fmt: skip


class CrmError(ValueError):
    """Bad input for a case operation."""


@dataclass(frozen=True)
class Topic:
    label: str
    department_code: str = ""
    sla_days: int | None = None


def parse_topics(raw: Any) -> list[Topic]:
    """Topics from the settings: lines ``Label|DEPARTMENT-CODE|SLA days`` (the last two optional)."""
    topics = []
    for line in raw or []:
        parts = [p.strip() for p in str(line).split("|")]
        if not parts[0]:
            continue
        days = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        topics.append(Topic(parts[0], parts[1] if len(parts) > 1 else "", days))
    return topics


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(case: Case, token: str) -> bool:
    return bool(token) and hmac.compare_digest(case.token_hash, hash_token(token))


@dataclass
class CaseInput:
    """What the public forms send (already stripped strings)."""

    topic: str = ""
    description: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""
    nif: str = ""
    location_text: str = ""
    latitude: str = ""
    longitude: str = ""
    consent: bool = False
    service_code: str = ""
    channel: str = "web"
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self, topics: list[Topic] | None) -> dict[str, str]:
        errors: dict[str, str] = {}
        if topics is not None and self.topic not in {t.label for t in topics}:
            errors["topic"] = N_("Choose a topic.")
        if not self.description:
            errors["description"] = N_("Write your message.")
        elif len(self.description) > 5000:
            errors["description"] = N_("The message must have at most 5000 characters.")
        if not self.name:
            errors["name"] = N_("Write your name.")
        elif len(self.name) > 200:
            errors["name"] = N_("The name must have at most 200 characters.")
        if not self.email and not self.phone:
            errors["email"] = N_("Give an e-mail address or a phone number so we can answer you.")
        if self.email and (len(self.email) > 200 or not EMAIL_RE.fullmatch(self.email)):
            errors["email"] = N_("This does not look like an e-mail address.")
        if self.phone and not PHONE_RE.fullmatch(self.phone):
            errors["phone"] = N_("Write the phone number with digits only (9 or more).")
        if self.nif and not nif_rules.is_valid(self.nif):
            errors["nif"] = N_("This NIF is not valid (check the digits).")
        if len(self.location_text) > 500:
            errors["location_text"] = N_("The location must have at most 500 characters.")
        try:
            lat = float(self.latitude) if self.latitude else None
            lon = float(self.longitude) if self.longitude else None
            if (lat is None) != (lon is None) or (lat is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180)):
                raise ValueError
        except ValueError:
            errors["location_text"] = N_("The map point is not valid.")
        if not self.consent:
            errors["consent"] = N_("You must agree to the processing of your data to send the message.")
        return errors


async def next_reference(session: AsyncSession, prefix: str, year: int) -> str:
    """``PREFIX-YEAR-000123``: the year's counter is incremented in the caller's transaction (the row stays
    locked until commit on PostgreSQL; SQLite serializes writers), so two requests never share a number."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    await session.execute(insert(Counter).values(year=year, value=0).on_conflict_do_nothing(index_elements=["year"]))
    await session.execute(
        update(Counter)
        .where(Counter.year == year)
        .values(value=Counter.value + 1)
        .execution_options(synchronize_session=False)
    )
    value = (await session.execute(select(Counter.value).where(Counter.year == year))).scalar_one()
    return f"{prefix}-{year}-{value:06d}"


async def department_id_for(session: AsyncSession, code: str) -> int | None:
    if not code:
        return None
    return (await session.execute(select(Department.id).where(Department.code == code))).scalar_one_or_none()


async def create_case(
    session: AsyncSession, data: CaseInput, *, prefix: str, topic: Topic | None = None
) -> tuple[Case, str]:
    """A new case for the citizen's existing record (same NIF, else e-mail, else phone) or a new one, with its
    consent and the contact that opened it; returns the case and the plain tracking token (shown once)."""
    from .intake import intake_citizen  # intake.py builds on this module

    now = datetime.now(UTC)
    citizen, differences = await intake_citizen(session, data, now)
    token = secrets.token_urlsafe(24)
    body = data.description
    if data.extra:
        body += "\n\n" + "\n".join(f"{k}: {v}" for k, v in data.extra.items())
    case = Case(
        reference=await next_reference(session, prefix, now.year),
        token_hash=hash_token(token),
        citizen_id=citizen.id,
        channel=data.channel,
        topic=(topic.label if topic else data.topic)[:80],
        service_code=data.service_code[:40],
        department_id=await department_id_for(session, topic.department_code if topic else ""),
        description=body,
        location_text=data.location_text[:500],
        latitude=float(data.latitude) if data.latitude else None,
        longitude=float(data.longitude) if data.longitude else None,
        sla_due_at=now + timedelta(days=topic.sla_days) if topic and topic.sla_days else None,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    session.add(
        Interaction(
            citizen_id=citizen.id,
            case_id=case.id,
            channel=case.channel,
            direction="in",
            topic=case.topic,
            service_code=case.service_code,
            department_id=case.department_id,
            notes=differences,
            occurred_at=now,
            created_at=now,
        )
    )
    await record(session, "crm.case_created", actor="citizen", target=f"crm.case:{case.id}", channel=case.channel)
    return case, token


async def store_attachment(
    session: AsyncSession, storage: Any, case: Case, upload: Any, max_bytes: int, from_citizen: bool = True
) -> Attachment:
    """Keep an uploaded image or PDF (sniffed, size-limited) for ``case``; raises :class:`MediaError`."""
    try:
        key, size = await storage.put_stream(upload_chunks(upload), max_bytes)
    except StorageLimitError:
        raise MediaError(N_("The file is too large.")) from None
    if size == 0:
        storage.delete(key)
        raise MediaError(N_("The file is empty."))
    content_type = None
    try:
        content_type = await asyncio.to_thread(sniff, storage.path_for(key), upload.filename or "")
    except MediaError:
        content_type = None
    if content_type not in ATTACHMENT_TYPES:
        # Never delete here: another case may hold the same (content-addressed) file.
        exists = (await session.execute(select(Attachment.id).where(Attachment.storage_key == key))).first()
        if not exists:
            storage.delete(key)
        raise MediaError(N_("Only images (JPEG, PNG, GIF, WebP) and PDF files are accepted."))
    attachment = Attachment(
        case_id=case.id,
        storage_key=key,
        filename=safe_filename(upload.filename or "", content_type),
        content_type=content_type,
        size=size,
        from_citizen=from_citizen,
    )
    session.add(attachment)
    return attachment


async def add_event(session: AsyncSession, case: Case, kind: str, body: str, author: str) -> CaseEvent:
    event = CaseEvent(case_id=case.id, kind=kind, body=body, author=author[:200])
    session.add(event)
    case.updated_at = datetime.now(UTC)
    if kind == "public_reply" and case.first_answered_at is None:
        case.first_answered_at = case.updated_at
    return event


async def case_by_reference(session: AsyncSession, reference: str) -> Case | None:
    return (await session.execute(select(Case).where(Case.reference == reference))).scalar_one_or_none()


async def citizen_of(session: AsyncSession, case: Case) -> Citizen | None:
    return await session.get(Citizen, case.citizen_id) if case.citizen_id else None


async def events_of(session: AsyncSession, case: Case, public_only: bool) -> list[CaseEvent]:
    query = select(CaseEvent).where(CaseEvent.case_id == case.id)
    if public_only:
        query = query.where(CaseEvent.kind.in_(("public_reply", "citizen_reply", "status_change", "attachment")))
    return list((await session.execute(query.order_by(CaseEvent.created_at, CaseEvent.id))).scalars())


async def attachments_of(session: AsyncSession, case: Case) -> list[Attachment]:
    query = select(Attachment).where(Attachment.case_id == case.id).order_by(Attachment.id)
    return list((await session.execute(query)).scalars())


def can_see(user: Any, case: Case) -> bool:
    """Managers see every case; agents the cases of their department and those assigned to them."""
    if not user.has("crm.view"):
        return False
    if user.has("crm.manage"):
        return True
    return (case.department_id is not None and case.department_id == user.department_id) or (
        case.assignee_id == user.id
    )


async def visible_cases(session: AsyncSession, user: Any, status: str = "", limit: int = 200) -> list[Case]:
    query = select(Case)
    if not user.has("crm.manage"):
        mine = Case.assignee_id == user.id
        query = query.where(or_(Case.department_id == user.department_id, mine) if user.department_id else mine)
    if status:
        query = query.where(Case.status == status)
    return list((await session.execute(query.order_by(Case.created_at.desc()).limit(limit))).scalars())


def is_overdue(case: Case, now: datetime | None = None) -> bool:
    if case.sla_due_at is None or case.status in ("closed", "answered"):
        return False
    due = case.sla_due_at if case.sla_due_at.tzinfo else case.sla_due_at.replace(tzinfo=UTC)
    return due < (now or datetime.now(UTC))


async def change_status(session: AsyncSession, case: Case, status: str, author: str) -> None:
    if status not in TRANSITIONS.get(case.status, ()):
        raise CrmError(N_("This status change is not allowed."))
    case.status = status
    case.closed_at = datetime.now(UTC) if status == "closed" else None
    await add_event(session, case, "status_change", status, author)


async def notify_citizen(session: AsyncSession, case: Case, subject: str, body: str) -> bool:
    """Queue an e-mail to the case's citizen (sent by SMTP when configured, else kept in the outbox)."""
    citizen = await citizen_of(session, case)
    if citizen is None or not citizen.email:
        return False
    await queue_mail(session, citizen.email, subject, body)
    return True


REQUEST_FIELD_KINDS = ("text", "number", "date", "choice", "multichoice", "file")


@dataclass(frozen=True)
class RequestField:
    """An extra field of a service's online request form (from the service's ``request_fields`` lines)."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"x_{self.name}"


def request_fields(service_data: dict[str, Any]) -> list[RequestField]:
    """The extra fields of a service (lines ``name|Label|kind|required|choice1;choice2``); bad lines are skipped."""
    fields: list[RequestField] = []
    for line in service_data.get("request_fields") or []:
        parts = [p.strip() for p in str(line).split("|")]
        if len(parts) < 3 or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", parts[0]) or parts[2] not in REQUEST_FIELD_KINDS:
            continue
        if any(f.name == parts[0] for f in fields):
            continue
        choices = tuple(c.strip() for c in parts[4].split(";") if c.strip()) if len(parts) > 4 else ()
        if parts[2] in ("choice", "multichoice") and not choices:
            continue
        fields.append(RequestField(parts[0], parts[1], parts[2], len(parts) > 3 and parts[3] == "required", choices))
    return fields


def validate_request_fields(
    fields: list[RequestField], form: Any, uploads: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """(values as text by label, errors by field key) of the extra fields; files are checked later when stored."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in fields:
        if spec.kind == "file":
            if spec.required and spec.key not in uploads:
                errors[spec.key] = N_("This field is required.")
            continue
        if spec.kind == "multichoice":
            chosen = [str(v) for v in form.getall(spec.key, [])]
            if any(v not in spec.choices for v in chosen):
                errors[spec.key] = N_("Choose from the list.")
            elif spec.required and not chosen:
                errors[spec.key] = N_("This field is required.")
            elif chosen:
                values[spec.label] = ", ".join(chosen)
            continue
        raw = str(form.get(spec.key, "") or "").strip()
        if not raw:
            if spec.required:
                errors[spec.key] = N_("This field is required.")
            continue
        if len(raw) > 2000:
            errors[spec.key] = N_("The value must have at most 2000 characters.")
        elif spec.kind == "number":
            try:
                float(raw.replace(",", "."))
            except ValueError:
                errors[spec.key] = N_("Enter a number.")
        elif spec.kind == "date":
            try:
                datetime.strptime(raw, "%Y-%m-%d")
            except ValueError:
                errors[spec.key] = N_("Enter a date like 2026-12-31.")
        elif spec.kind == "choice" and raw not in spec.choices:
            errors[spec.key] = N_("Choose from the list.")
        if spec.key not in errors:
            values[spec.label] = raw
    return values, errors
