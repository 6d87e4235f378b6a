"""Citizens' records for staff: intake dedupe, search, duplicate candidates, merges (of citizens and of duplicate
cases), contacts registered by staff with their files, and the citizen's 360° timeline.

Phones are stored normalised (:func:`normalize_phone`: digits, ``+`` only for foreign numbers, Portuguese numbers
without +351) so that look-ups use the index; e-mails are compared case-insensitively, names through their folded
form (``Citizen.name_folded``, see :func:`fold_name`).
"""

from __future__ import annotations

import asyncio
import difflib
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from concelho.suite.audit import record
from concelho.suite.content.media import MediaError, _chunks, safe_filename, sniff
from concelho.suite.i18n import N_
from concelho.suite.models import AuditEntry, Department, User, as_utc
from concelho.suite.storage import StorageLimitError
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from . import services
from .models import DIRECTIONS, Attachment, Case, CaseEvent, Citizen, Consent, Interaction, InteractionFile

LISBON = ZoneInfo("Europe/Lisbon")
#: Channels staff register by hand (web and Open311 contacts are recorded by the system).
STAFF_CHANNELS = ("counter", "phone", "letter", "fax", "email")
CHANNEL_LABELS = {
    "web": N_("Web"), "counter": N_("Counter (in person)"), "phone": N_("Phone"), "letter": N_("Letter"),
    "fax": N_("Fax"), "email": N_("E-mail"), "open311": N_("Mobile app (Open311)"),
}  # fmt: skip
DIRECTION_LABELS = {"in": N_("From the citizen"), "out": N_("To the citizen")}
CONSENT_PURPOSES = {
    "data_processing": N_("Processing of personal data"), "contact_email": N_("Contact by e-mail"),
    "contact_phone": N_("Contact by phone"), "newsletter": N_("Newsletter"),
}  # fmt: skip
#: Two folded names at least this similar (0-1, difflib ratio) make a duplicate candidate.
NAME_SIMILARITY = 0.85
SAME_NIF, SAME_EMAIL, SAME_PHONE = N_("Same NIF"), N_("Same e-mail"), N_("Same phone")
SIMILAR_NAME = N_("Similar name")
#: Reasons that identify a person (a similar name alone does not).
IDENTIFYING = frozenset({SAME_NIF, SAME_EMAIL, SAME_PHONE})
SERVICE_CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
TIMELINE_LIMIT = 300


class InvalidInput(services.CrmError):
    """Bad form input: ``errors`` maps field names to messages (msgids)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values()), ""))
        self.errors = errors


# --------------------------------------------------------------------------------------------
# Identity: folding, phones, matching
# --------------------------------------------------------------------------------------------
async def log_view(session: AsyncSession, user: Any, citizen_id: int | None, screen: str, ip: str | None) -> None:
    """The audit row of one staff view of a citizen's record (committed by the caller)."""
    await record(
        session,
        "crm.citizen_viewed",
        actor_id=user.id,
        actor=user.username,
        target=f"crm.citizen:{citizen_id}",
        ip=ip,
        screen=screen,
    )


def fold_name(name: str) -> str:
    """Lower-case, accent-free ``name`` with single spaces (what ``Citizen.name_folded`` holds)."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())[:200]


def normalize_phone(phone: str) -> str:
    """Digits only; foreign numbers keep a leading ``+``, Portuguese ones lose their +351 / 00351."""
    raw = (phone or "").strip()
    digits = re.sub(r"\D", "", raw)
    international = raw.startswith("+")
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    if digits.startswith("351") and len(digits) == 12:
        return digits[3:]
    return f"+{digits}" if international and digits else digits


def phone_variants(phone: str) -> set[str]:
    """Spellings under which the same (normalised) number may have been stored."""
    key = normalize_phone(phone)
    if not key:
        return set()
    variants = {key}
    if re.fullmatch(r"\d{9}", key):
        variants |= {f"+351{key}", f"00351{key}", f"351{key}", f"{key[:3]} {key[3:6]} {key[6:]}"}
    return variants


def _active() -> Any:
    return and_(Citizen.merged_into_id.is_(None), Citizen.erased_at.is_(None))


async def find_matching_citizen(
    session: AsyncSession, *, nif: str = "", email: str = "", phone: str = ""
) -> tuple[Citizen | None, str]:
    """The existing (not merged, not erased) citizen with the same NIF, else e-mail, else phone, and how it matched.

    A record with another NIF is never matched by e-mail or phone: a shared family e-mail is not the same person."""
    query = select(Citizen).where(_active()).order_by(Citizen.id).limit(1)
    nif = nif_rules.normalize(nif) if nif else ""
    if nif:
        found = (await session.execute(query.where(Citizen.nif == nif))).scalar_one_or_none()
        if found is not None:
            return found, "nif"
        query = query.where(or_(Citizen.nif == "", Citizen.nif == nif))
    if email:
        found = (await session.execute(query.where(func.lower(Citizen.email) == email.lower()))).scalar_one_or_none()
        if found is not None:
            return found, "email"
    if variants := phone_variants(phone):
        found = (await session.execute(query.where(Citizen.phone.in_(variants)))).scalar_one_or_none()
        if found is not None:
            return found, "phone"
    return None, ""


def fill_empty_fields(citizen: Citizen, values: dict[str, str]) -> dict[str, str]:
    """Copy ``values`` into the citizen's empty fields; return the given values that differ from recorded ones
    (nothing recorded is overwritten)."""
    same = {
        "name": lambda a, b: fold_name(a) == fold_name(b),
        "email": lambda a, b: a.casefold() == b.casefold(),
        "phone": lambda a, b: normalize_phone(a) == normalize_phone(b),
    }
    differing: dict[str, str] = {}
    for name, value in values.items():
        if not value:
            continue
        current = getattr(citizen, name)
        if not current:
            setattr(citizen, name, value)
            if name == "name":
                citizen.name_folded = fold_name(value)
        elif not same.get(name, lambda a, b: a == b)(current, value):
            differing[name] = value
    return differing


async def intake_citizen(session: AsyncSession, data: services.CaseInput, now: datetime) -> tuple[Citizen, str]:
    """The citizen of a new case: an existing record (its empty fields filled) or a new one; with consent given, a
    consent row.  Also returns a note listing contact details that differ from the record (for the staff)."""
    nif = nif_rules.normalize(data.nif) if data.nif else ""
    phone = normalize_phone(data.phone)[:40]
    citizen, _ = await find_matching_citizen(session, nif=nif, email=data.email, phone=phone)
    note = ""
    if citizen is None:
        citizen = Citizen(
            name=data.name[:200],
            name_folded=fold_name(data.name),
            nif=nif,
            email=data.email[:200],
            phone=phone,
            # Not the case's location: a report about a street is not where its author lives.
            created_at=now,
            updated_at=now,
        )
        session.add(citizen)
    else:
        given = {"name": data.name[:200], "nif": nif, "email": data.email[:200], "phone": phone}
        if differing := fill_empty_fields(citizen, given):
            labels = {"name": "nome", "nif": "NIF", "email": "e-mail", "phone": "telefone"}
            note = "Dados indicados diferentes dos registados: " + "; ".join(
                f"{labels[k]} {v}" for k, v in differing.items()
            )
        citizen.updated_at = now
    if data.consent:
        citizen.consent_at = now
    await session.flush()
    if data.consent:
        session.add(Consent(citizen_id=citizen.id, purpose="data_processing", channel=data.channel, created_at=now))
    return citizen, note


# --------------------------------------------------------------------------------------------
# Search and duplicates
# --------------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    query: str
    citizens: list[Citizen]
    total: int
    page: int
    per_page: int
    #: The one record whose NIF or phone is exactly the query (the counter picks it at once).
    exact: Citizen | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _search_condition(query: str) -> tuple[Any, Any]:
    """(WHERE clause, first ORDER BY term) for a free query: NIF or phone digits, an e-mail, or a name."""
    if "@" in query:
        return func.lower(Citizen.email).contains(query.lower(), autoescape=True), Citizen.name_folded
    digits = re.sub(r"\D", "", query)
    if re.fullmatch(r"[+\d\s().-]+", query) and len(digits) >= 3:
        phone = normalize_phone(query)
        condition = or_(
            Citizen.nif.startswith(digits, autoescape=True),
            Citizen.phone.contains(phone, autoescape=True),
            Citizen.phone.contains(digits, autoescape=True),
        )
        return condition, Citizen.name_folded
    folded = fold_name(query)
    tokens = folded.split()
    condition = and_(*[Citizen.name_folded.contains(token, autoescape=True) for token in tokens])
    prefix_first = case((Citizen.name_folded.startswith(folded, autoescape=True), 0), else_=1)
    return condition, prefix_first


async def search_citizens(session: AsyncSession, query: str, page: int = 1, per_page: int = 25) -> SearchResult:
    """Active citizens matching ``query`` (NIF, phone, e-mail, or name words, accents and case ignored)."""
    query = " ".join((query or "").split())[:200]
    page = max(1, page)
    select_citizens = select(Citizen).where(_active())
    order: list[Any] = [Citizen.name_folded, Citizen.id]
    if query:
        condition, first = _search_condition(query)
        select_citizens = select_citizens.where(condition)
        order.insert(0, first)
    total = (await session.execute(select(func.count()).select_from(select_citizens.subquery()))).scalar_one()
    rows = (
        await session.execute(select_citizens.order_by(*order).limit(per_page).offset((page - 1) * per_page))
    ).scalars()
    return SearchResult(query, list(rows), total, page, per_page, await exact_match(session, query))


async def exact_match(session: AsyncSession, query: str) -> Citizen | None:
    """The single active citizen whose NIF (valid checksum) or phone is ``query``; None when none or several."""
    if not query or not re.fullmatch(r"[+\d\s().-]+", query):
        return None
    if nif_rules.is_valid(query):
        condition = Citizen.nif == nif_rules.normalize(query)
    elif variants := phone_variants(query):
        condition = Citizen.phone.in_(variants)
    else:
        return None
    rows = list((await session.execute(select(Citizen).where(_active(), condition).limit(2))).scalars())
    return rows[0] if len(rows) == 1 else None


def name_similarity(a: str, b: str) -> float:
    """Similarity (0-1) of two folded names, word order and punctuation ignored; the same first name and surname
    count as the same name ("Maria Silva", "Maria A. Silva" and "Maria Antónia Silva")."""
    words_a, words_b = re.findall(r"\w+", a), re.findall(r"\w+", b)
    if not words_a or not words_b:
        return 0.0
    if len(words_a) > 1 and len(words_b) > 1 and (words_a[0], words_a[-1]) == (words_b[0], words_b[-1]):
        return 1.0
    plain = difflib.SequenceMatcher(None, " ".join(words_a), " ".join(words_b)).ratio()
    ordered = difflib.SequenceMatcher(None, " ".join(sorted(words_a)), " ".join(sorted(words_b))).ratio()
    return max(plain, ordered)


@dataclass
class Candidate:
    citizen: Citizen
    reasons: list[str] = field(default_factory=list)


async def duplicate_candidates(session: AsyncSession, citizen: Citizen, limit: int = 10) -> list[Candidate]:
    """Active records that may be the same person as ``citizen`` (saved or not): same NIF, e-mail or phone, or a
    similar name.  Records with another NIF are left out: two valid, different NIFs are two people."""
    query = select(Citizen).where(_active())
    if citizen.id is not None:
        query = query.where(Citizen.id != citizen.id)
    if citizen.nif:
        query = query.where(or_(Citizen.nif == "", Citizen.nif == citizen.nif))
    found: dict[int, Candidate] = {}

    async def collect(condition: Any, reason: str, max_rows: int = 50) -> list[Citizen]:
        rows = list((await session.execute(query.where(condition).order_by(Citizen.id).limit(max_rows))).scalars())
        for row in rows:
            if reason:
                found.setdefault(row.id, Candidate(row)).reasons.append(reason)
        return rows

    if citizen.nif:
        await collect(Citizen.nif == citizen.nif, SAME_NIF)
    if citizen.email:
        await collect(func.lower(Citizen.email) == citizen.email.lower(), SAME_EMAIL)
    if variants := phone_variants(citizen.phone):
        await collect(Citizen.phone.in_(variants), SAME_PHONE)
    folded = citizen.name_folded or fold_name(citizen.name)
    if tokens := folded.split():
        near = or_(
            Citizen.name_folded.startswith(tokens[0], autoescape=True),
            Citizen.name_folded.contains(tokens[-1], autoescape=True),
        )
        for row in await collect(near, "", max_rows=500):
            if name_similarity(folded, row.name_folded) >= NAME_SIMILARITY:
                found.setdefault(row.id, Candidate(row)).reasons.append(SIMILAR_NAME)
    # Shared identifiers first, then the number of reasons.
    ranked = sorted(found.values(), key=lambda c: (-len(IDENTIFYING & set(c.reasons)), -len(c.reasons), c.citizen.id))
    return ranked[:limit]


async def survivor_of(session: AsyncSession, citizen: Citizen) -> Citizen:
    """The record a merged citizen now lives in (itself when not merged)."""
    seen = {citizen.id}
    while citizen.merged_into_id is not None:
        target = await session.get(Citizen, citizen.merged_into_id)
        if target is None or target.id in seen:
            break
        seen.add(target.id)
        citizen = target
    return citizen


# --------------------------------------------------------------------------------------------
# Staff edits
# --------------------------------------------------------------------------------------------
@dataclass
class CitizenInput:
    """The staff's citizen form (stripped strings)."""

    name: str = ""
    nif: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""

    def validate(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = N_("Write the name.")
        elif len(self.name) > 200:
            errors["name"] = N_("The name must have at most 200 characters.")
        if self.nif and not nif_rules.is_valid(self.nif):
            errors["nif"] = N_("This NIF is not valid (check the digits).")
        if self.email and (len(self.email) > 200 or not services.EMAIL_RE.fullmatch(self.email)):
            errors["email"] = N_("This does not look like an e-mail address.")
        if self.phone and not services.PHONE_RE.fullmatch(self.phone):
            errors["phone"] = N_("Write the phone number with digits only (9 or more).")
        if len(self.address) > 500:
            errors["address"] = N_("The address must have at most 500 characters.")
        return errors

    def values(self) -> dict[str, str]:
        return {
            "name": self.name,
            "nif": nif_rules.normalize(self.nif) if self.nif else "",
            "email": self.email,
            "phone": normalize_phone(self.phone)[:40],
            "address": self.address,
        }

    def probe(self) -> Citizen:
        """An unsaved record with these values (for duplicate look-ups)."""
        values = self.values()
        return Citizen(**values, name_folded=fold_name(values["name"]))


async def create_citizen(session: AsyncSession, data: CitizenInput, actor: Any, ip: str | None = None) -> Citizen:
    errors = data.validate()
    if errors:
        raise InvalidInput(errors)
    citizen = data.probe()
    session.add(citizen)
    await session.flush()
    await record(
        session,
        "crm.citizen_created",
        actor_id=actor.id,
        actor=actor.username,
        target=f"crm.citizen:{citizen.id}",
        ip=ip,
    )
    return citizen


async def update_citizen(
    session: AsyncSession, citizen: Citizen, data: CitizenInput, actor: Any, ip: str | None = None
) -> list[str]:
    """Save the staff's corrections; returns the names of the changed fields (audited, values not logged)."""
    if citizen.erased_at is not None or citizen.merged_into_id is not None:
        raise services.CrmError(N_("This record can no longer be changed."))
    errors = data.validate()
    if errors:
        raise InvalidInput(errors)
    changed = [name for name, value in data.values().items() if getattr(citizen, name) != value]
    for name in changed:
        setattr(citizen, name, data.values()[name])
    if changed:
        citizen.name_folded = fold_name(citizen.name)
        citizen.updated_at = datetime.now(UTC)
        await record(
            session,
            "crm.citizen_updated",
            actor_id=actor.id,
            actor=actor.username,
            target=f"crm.citizen:{citizen.id}",
            ip=ip,
            fields=changed,
        )
    return changed


async def record_consent(
    session: AsyncSession,
    citizen: Citizen,
    *,
    purpose: str,
    granted: bool,
    channel: str,
    note: str,
    actor: Any,
    ip: str | None = None,
) -> Consent:
    """Add a consent given or withdrawn (history is never rewritten); data processing also sets ``consent_at``."""
    errors: dict[str, str] = {}
    if purpose not in CONSENT_PURPOSES:
        errors["purpose"] = N_("Choose a purpose from the list.")
    if channel not in CHANNEL_LABELS:
        errors["consent_channel"] = N_("Choose a channel from the list.")
    if len(note) > 500:
        errors["consent_note"] = N_("The note must have at most 500 characters.")
    if errors:
        raise InvalidInput(errors)
    now = datetime.now(UTC)
    consent = Consent(
        citizen_id=citizen.id, purpose=purpose, granted=granted, channel=channel, note=note, created_at=now
    )
    session.add(consent)
    if purpose == "data_processing":
        citizen.consent_at = now if granted else None
    citizen.updated_at = now
    await record(
        session,
        "crm.consent_recorded",
        actor_id=actor.id,
        actor=actor.username,
        target=f"crm.citizen:{citizen.id}",
        ip=ip,
        purpose=purpose,
        granted=granted,
    )
    return consent


async def latest_consents(session: AsyncSession, citizen: Citizen) -> tuple[dict[str, Consent], list[Consent]]:
    """(the latest consent per purpose, the whole history newest first)."""
    query = (
        select(Consent).where(Consent.citizen_id == citizen.id).order_by(Consent.created_at.desc(), Consent.id.desc())
    )
    history = list((await session.execute(query)).scalars())
    latest: dict[str, Consent] = {}
    for consent in history:
        latest.setdefault(consent.purpose, consent)
    return latest, history


# --------------------------------------------------------------------------------------------
# Merges
# --------------------------------------------------------------------------------------------
async def merge_citizens(
    session: AsyncSession, duplicate: Citizen, survivor: Citizen, actor: Any, ip: str | None = None
) -> dict[str, int]:
    """Merge ``duplicate`` into ``survivor``: its cases, contacts and consents move, the survivor's empty fields
    are filled, the duplicate keeps its row with ``merged_into_id`` (history and audit trail stay)."""
    if duplicate.id == survivor.id:
        raise services.CrmError(N_("A record cannot be merged into itself."))
    if duplicate.merged_into_id is not None or survivor.merged_into_id is not None:
        raise services.CrmError(N_("One of these records was already merged."))
    if duplicate.erased_at is not None or survivor.erased_at is not None:
        raise services.CrmError(N_("Erased records cannot be merged."))
    if duplicate.nif and survivor.nif and duplicate.nif != survivor.nif:
        raise services.CrmError(N_("These records have different NIFs: they are different people."))
    moved: dict[str, int] = {}
    for model, name in ((Case, "cases"), (Interaction, "interactions"), (Consent, "consents")):
        result = await session.execute(
            update(model)
            .where(model.citizen_id == duplicate.id)
            .values(citizen_id=survivor.id)
            .execution_options(synchronize_session=False)
        )
        moved[name] = result.rowcount or 0
    await session.execute(
        update(Citizen)
        .where(Citizen.merged_into_id == duplicate.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    fill_empty_fields(
        survivor,
        {k: getattr(duplicate, k) for k in ("name", "nif", "email", "phone", "address")},
    )
    consents = [as_utc(t) for t in (survivor.consent_at, duplicate.consent_at) if t is not None]
    survivor.consent_at = max(consents) if consents else None
    now = datetime.now(UTC)
    duplicate.merged_into_id = survivor.id
    duplicate.updated_at = survivor.updated_at = now
    await record(
        session,
        "crm.citizen_merged",
        actor_id=actor.id,
        actor=actor.username,
        target=f"crm.citizen:{duplicate.id}",
        ip=ip,
        into=survivor.id,
        **moved,
    )
    return moved


async def merge_case(session: AsyncSession, duplicate: Case, survivor: Case, actor: Any, ip: str | None = None) -> None:
    """Merge a duplicate case into ``survivor``: the duplicate is closed with an internal note naming the survivor
    and keeps its history; the survivor gets a note too.  The duplicate's tracking link keeps working."""
    if duplicate.id == survivor.id:
        raise services.CrmError(N_("A case cannot be merged into itself."))
    if duplicate.merged_into_id is not None:
        raise services.CrmError(N_("This case was already merged."))
    if survivor.merged_into_id is not None:
        raise services.CrmError(N_("That case was itself merged into another one: use the surviving case."))
    author = actor.display_name
    duplicate.merged_into_id = survivor.id
    if duplicate.status != "closed":
        duplicate.status = "closed"
        duplicate.closed_at = datetime.now(UTC)
        await services.add_event(session, duplicate, "status_change", "closed", author)
    await services.add_event(
        session, duplicate, "internal_note", f"Processo duplicado, fundido em {survivor.reference}.", author
    )
    await services.add_event(
        session, survivor, "internal_note", f"O processo duplicado {duplicate.reference} foi fundido neste.", author
    )
    await record(
        session,
        "crm.case_merged",
        actor_id=actor.id,
        actor=actor.username,
        target=f"crm.case:{duplicate.id}",
        ip=ip,
        into=survivor.id,
    )


# --------------------------------------------------------------------------------------------
# Contacts registered by staff
# --------------------------------------------------------------------------------------------
@dataclass
class InteractionInput:
    """A contact typed in by staff (counter, phone, letter, fax, e-mail)."""

    channel: str = "counter"
    direction: str = "in"
    topic: str = ""
    service_code: str = ""
    department_id: str = ""
    notes: str = ""
    occurred_at: str = ""  # "YYYY-MM-DDTHH:MM" in Lisbon time; empty: now

    def validate(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.channel not in STAFF_CHANNELS:
            errors["channel"] = N_("Choose a channel from the list.")
        if self.direction not in DIRECTIONS:
            errors["direction"] = N_("Choose who contacted whom.")
        if not self.topic and not self.service_code:
            errors["topic"] = N_("Write the topic or choose a service.")
        elif len(self.topic) > 80:
            errors["topic"] = N_("The topic must have at most 80 characters.")
        if self.service_code and not SERVICE_CODE_RE.fullmatch(self.service_code):
            errors["service_code"] = N_("Choose a service from the list.")
        if self.department_id and not self.department_id.isdigit():
            errors["department_id"] = N_("Choose a department from the list.")
        if len(self.notes) > 5000:
            errors["notes"] = N_("The notes must have at most 5000 characters.")
        if self.occurred_at:
            when = self.when()
            if when is None:
                errors["occurred_at"] = N_("Enter a date and time like 2026-12-31 14:30.")
            elif when > datetime.now(UTC) + timedelta(minutes=5):
                errors["occurred_at"] = N_("The contact cannot be in the future.")
        return errors

    def when(self) -> datetime | None:
        if not self.occurred_at:
            return datetime.now(UTC)
        try:
            local = datetime.fromisoformat(self.occurred_at.replace(" ", "T"))
        except ValueError:
            return None
        return (local if local.tzinfo else local.replace(tzinfo=LISBON)).astimezone(UTC)


async def register_interaction(
    session: AsyncSession, citizen: Citizen, data: InteractionInput, staff: Any
) -> Interaction:
    """A contact of ``citizen`` registered by ``staff``; raises :class:`InvalidInput`."""
    errors = data.validate()
    department_id: int | None = None
    if data.department_id and "department_id" not in errors:
        department = await session.get(Department, int(data.department_id))
        if department is None:
            errors["department_id"] = N_("Choose a department from the list.")
        else:
            department_id = department.id
    if citizen.merged_into_id is not None or citizen.erased_at is not None:
        errors["citizen_id"] = N_("This record can no longer be changed.")
    if errors:
        raise InvalidInput(errors)
    now = datetime.now(UTC)
    interaction = Interaction(
        citizen_id=citizen.id,
        channel=data.channel,
        direction=data.direction,
        topic=data.topic[:80],
        service_code=data.service_code[:40],
        department_id=department_id,
        staff_id=staff.id,
        notes=data.notes,
        occurred_at=data.when() or now,
        created_at=now,
    )
    session.add(interaction)
    citizen.updated_at = now
    await session.flush()
    return interaction


async def store_interaction_file(
    session: AsyncSession, storage: Any, interaction: Interaction, upload: Any, max_bytes: int
) -> InteractionFile:
    """Keep a scanned letter, a fax or an e-mail attachment (image or PDF, sniffed, size-limited) with the contact;
    raises :class:`MediaError`.  Storage is content-addressed, so a rejected file is removed only when unused."""
    try:
        key, size = await storage.put_stream(_chunks(upload), max_bytes)
    except StorageLimitError:
        raise MediaError(N_("The file is too large.")) from None
    if size == 0:
        storage.delete(key)
        raise MediaError(N_("The file is empty."))
    try:
        content_type = await asyncio.to_thread(sniff, storage.path_for(key), upload.filename or "")
    except MediaError:
        content_type = None
    if content_type not in services.ATTACHMENT_TYPES:
        used = (await session.execute(select(Attachment.id).where(Attachment.storage_key == key))).first() or (
            await session.execute(select(InteractionFile.id).where(InteractionFile.storage_key == key))
        ).first()
        if not used:
            storage.delete(key)
        raise MediaError(N_("Only images (JPEG, PNG, GIF, WebP) and PDF files are accepted."))
    stored = InteractionFile(
        interaction_id=interaction.id,
        storage_key=key,
        filename=safe_filename(upload.filename or "", content_type),
        content_type=content_type,
        size=size,
    )
    session.add(stored)
    return stored


async def open_case_from_interaction(
    session: AsyncSession,
    interaction: Interaction,
    *,
    prefix: str,
    topics: list[services.Topic],
    description: str,
    actor: Any,
    ip: str | None = None,
) -> tuple[Case, str]:
    """A case for a contact registered by staff (same channel, citizen, topic and service), linked to it; routed by
    its topic like web cases, else to the contact's department.  Returns the case and its tracking token."""
    if interaction.case_id is not None:
        raise services.CrmError(N_("A case was already opened from this contact."))
    if interaction.citizen_id is None:
        raise services.CrmError(N_("This contact has no citizen."))
    body = description or interaction.notes or interaction.topic
    if not body or len(body) > 5000:
        raise InvalidInput({"description": N_("Write the message (at most 5000 characters).")})
    topic = next((t for t in topics if t.label == interaction.topic), None)
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(24)
    routed = await services.department_id_for(session, topic.department_code if topic else "")
    case_ = Case(
        reference=await services.next_reference(session, prefix, now.year),
        token_hash=services.hash_token(token),
        citizen_id=interaction.citizen_id,
        channel=interaction.channel,
        topic=interaction.topic[:80],
        service_code=interaction.service_code,
        department_id=routed or interaction.department_id,
        description=body,
        sla_due_at=now + timedelta(days=topic.sla_days) if topic and topic.sla_days else None,
        created_at=now,
        updated_at=now,
    )
    session.add(case_)
    await session.flush()
    interaction.case_id = case_.id
    await record(
        session,
        "crm.case_created",
        actor_id=actor.id,
        actor=actor.username,
        target=f"crm.case:{case_.id}",
        ip=ip,
        channel=case_.channel,
        interaction=interaction.id,
    )
    return case_, token


# --------------------------------------------------------------------------------------------
# The 360° timeline
# --------------------------------------------------------------------------------------------
#: Order of entries that share a time (newest first): the case opening before the contact that opened it.
_KIND_ORDER = {"merged": 0, "case_closed": 1, "case_event": 2, "case_opened": 3, "interaction": 4, "consent": 5}


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # interaction, case_opened, case_closed, case_event, consent, merged
    interaction: Interaction | None = None
    files: list[InteractionFile] = field(default_factory=list)
    case: Case | None = None
    #: The viewer may open the case (services.can_see).
    linked: bool = False
    event: CaseEvent | None = None
    consent: Consent | None = None
    merged: Citizen | None = None
    actor: str = ""


async def timeline(session: AsyncSession, citizen: Citizen, user: Any) -> tuple[list[TimelineEntry], bool]:
    """Everything about ``citizen``, newest first, and whether older entries were cut.

    Visibility: every staff member with ``crm.view`` sees all the citizen's contacts (interactions are the
    contact log, kept for the whole council) and the opening/closing of all their cases (reference, topic and
    status); the history of a case (replies, internal notes) and the link to it only when the viewer may see that
    case (:func:`services.can_see`: managers all, agents their department's and their own)."""
    entries: list[TimelineEntry] = []
    interactions = list(
        (await session.execute(select(Interaction).where(Interaction.citizen_id == citizen.id))).scalars()
    )
    files: dict[int, list[InteractionFile]] = {}
    if interactions:
        query = select(InteractionFile).where(InteractionFile.interaction_id.in_([i.id for i in interactions]))
        for stored in (await session.execute(query.order_by(InteractionFile.id))).scalars():
            files.setdefault(stored.interaction_id, []).append(stored)
    staff_ids = {i.staff_id for i in interactions if i.staff_id}
    names = {}
    if staff_ids:
        names = {
            u.id: u.name or u.username
            for u in (await session.execute(select(User).where(User.id.in_(staff_ids)))).scalars()
        }
    for interaction in interactions:
        entries.append(
            TimelineEntry(
                as_utc(interaction.occurred_at),
                "interaction",
                interaction=interaction,
                files=files.get(interaction.id, []),
                actor=names.get(interaction.staff_id, ""),
            )
        )
    cases = list((await session.execute(select(Case).where(Case.citizen_id == citizen.id))).scalars())
    visible = {c.id for c in cases if services.can_see(user, c)}
    for case_ in cases:
        linked = case_.id in visible
        entries.append(TimelineEntry(as_utc(case_.created_at), "case_opened", case=case_, linked=linked))
        if case_.closed_at is not None:
            entries.append(TimelineEntry(as_utc(case_.closed_at), "case_closed", case=case_, linked=linked))
    if visible:
        by_id = {c.id: c for c in cases}
        events = select(CaseEvent).where(CaseEvent.case_id.in_(visible))
        for event in (await session.execute(events)).scalars():
            case_ = by_id[event.case_id]
            if event.kind == "status_change" and event.body == "closed" and _same_moment(event, case_):
                continue  # shown as the case's closing
            entries.append(TimelineEntry(as_utc(event.created_at), "case_event", case=case_, linked=True, event=event))
    for consent in (await session.execute(select(Consent).where(Consent.citizen_id == citizen.id))).scalars():
        entries.append(TimelineEntry(as_utc(consent.created_at), "consent", consent=consent))
    merged = list((await session.execute(select(Citizen).where(Citizen.merged_into_id == citizen.id))).scalars())
    if merged:
        targets = [f"crm.citizen:{m.id}" for m in merged]
        audit = select(AuditEntry).where(AuditEntry.action == "crm.citizen_merged", AuditEntry.target.in_(targets))
        trail = {a.target: a for a in (await session.execute(audit)).scalars()}
        for other in merged:
            entry = trail.get(f"crm.citizen:{other.id}")
            at = as_utc(entry.at if entry else other.updated_at)
            entries.append(TimelineEntry(at, "merged", merged=other, actor=entry.actor if entry else ""))
    entries.sort(key=lambda e: (e.at, -_KIND_ORDER[e.kind]), reverse=True)
    return entries[:TIMELINE_LIMIT], len(entries) > TIMELINE_LIMIT


def _same_moment(event: CaseEvent, case_: Case) -> bool:
    """Whether a "closed" status change is the case's current closing (listed once, as the closing)."""
    if case_.closed_at is None:
        return False
    return abs((as_utc(event.created_at) - as_utc(case_.closed_at)).total_seconds()) < 5


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as Lisbon wall-clock text."""
    return as_utc(value).astimezone(LISBON).strftime(fmt) if value is not None else ""
