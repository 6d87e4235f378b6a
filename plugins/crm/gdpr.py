"""Data protection (GDPR) on the CRM: the right of access (export), erasure (pseudonymisation) and retention.

* **Access** — :func:`export_data` gathers everything held about a person: the citizen record and the records
  merged into it, consents, interactions with their files, cases with *every* event (public replies, citizen
  replies and the services' internal notes: they are data about the person, and the right of access covers
  them) and attachments, and the e-mails queued to the person's address.
* **Erasure** — :func:`erase_citizens` pseudonymises instead of deleting, so the statistics (contacts per channel,
  cases per topic and department, times to answer, SLA) stay the same: the rows stay with their channel, topic,
  department, status and dates; the name becomes ``Titular apagado #<id>``, NIF, e-mail, phone and address are
  emptied, free text (case descriptions, case event texts except status changes, interaction notes, consent
  notes) becomes ``[apagado]``, locations are removed, attachments and interaction files are deleted (the stored
  file too, unless another row still holds the same content-addressed file) and queued e-mails to the person are
  deleted.  ``external_id`` is kept so a re-run of the legacy import recognises the record and does not bring the
  data back.  The audit entry names the record's id only.
* **Retention** — :func:`purge` erases the people whose last activity (record created, interaction, case update)
  is older than ``retention_years`` and who have no open case; also run daily as a background job.

Search: the CRM provides no search documents (``CrmPlugin`` has no ``search_providers``), so no citizen data
reaches any search index and there is nothing to remove there.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from concelho.suite.audit import record
from concelho.suite.content.models import Media
from concelho.suite.db import batched
from concelho.suite.mail import MailMessage
from concelho.suite.models import Department, KeyValue, User, as_utc
from sqlalchemy import bindparam, func, select
from sqlalchemy import delete as _delete
from sqlalchemy import update as _update
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from .identity import fold_name
from .models import Attachment, Case, CaseEvent, Citizen, Consent, Interaction, InteractionFile

ERASED = "[apagado]"
#: Case events whose text is not free text (kept after an erasure).
CODED_EVENT_KINDS = ("status_change",)
BATCH = 500
PURGE_BATCH = 100
RETENTION_MARKER = ("crm", "retention_purge_at")
RETENTION_EVERY = timedelta(hours=24)


class GdprError(ValueError):
    """A request that cannot be carried out (unknown or ambiguous person)."""


def update(model: Any) -> Any:
    return _update(model).execution_options(synchronize_session=False)


def delete(model: Any) -> Any:
    return _delete(model).execution_options(synchronize_session=False)


def erased_name(citizen_id: int) -> str:
    return f"Titular apagado #{citizen_id}"


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    """The distinct ``values``, sorted, in batches for ``IN (…)``."""
    return batched(sorted(set(values)), BATCH)


async def _ids(session: AsyncSession, column: Any, key: Any, values: Iterable[Any]) -> set[Any]:
    found: set[Any] = set()
    for chunk in _chunks(values):
        found.update((await session.execute(select(column).where(key.in_(chunk)))).scalars())
    return found


# --------------------------------------------------------------------------------------------
# Finding the person
# --------------------------------------------------------------------------------------------
async def _survivor(session: AsyncSession, citizen: Citizen) -> Citizen:
    """The record ``citizen`` was merged into, at the end of the chain."""
    seen = {citizen.id}
    while citizen.merged_into_id and citizen.merged_into_id not in seen:
        seen.add(citizen.merged_into_id)
        target = await session.get(Citizen, citizen.merged_into_id)
        if target is None:
            break
        citizen = target
    return citizen


async def find_citizen(session: AsyncSession, reference: str) -> Citizen:
    """The citizen named by an id, a NIF or an e-mail address (the record merged ones point to)."""
    reference = reference.strip()
    normalized = nif_rules.normalize(reference)
    if "@" in reference:
        query = select(Citizen).where(func.lower(Citizen.email) == reference.lower())
    elif nif_rules.is_valid(normalized):
        query = select(Citizen).where(Citizen.nif == normalized)
    elif reference.isdigit() and len(reference) < 10:
        query = select(Citizen).where(Citizen.id == int(reference))
    else:
        raise GdprError(f"{reference!r} is not a citizen id, a valid NIF or an e-mail address")
    matches = list((await session.execute(query.order_by(Citizen.id))).scalars())
    survivors = {c.id: c for c in [await _survivor(session, m) for m in matches]}
    if not survivors:
        raise GdprError(f"no citizen matches {reference!r}")
    if len(survivors) > 1:
        ids = ", ".join(str(i) for i in sorted(survivors))
        raise GdprError(f"{reference!r} matches {len(survivors)} citizen records (ids {ids}): merge them or give an id")
    return next(iter(survivors.values()))


async def citizen_group(session: AsyncSession, citizen_id: int) -> list[int]:
    """``citizen_id`` and every record merged into it (directly or through other merged records)."""
    group, frontier = {citizen_id}, {citizen_id}
    while frontier:
        merged = await _ids(session, Citizen.id, Citizen.merged_into_id, frontier)
        frontier = merged - group
        group |= frontier
    return sorted(group)


# --------------------------------------------------------------------------------------------
# Access: export
# --------------------------------------------------------------------------------------------
@dataclass
class ExportFile:
    """A stored file to put in the ZIP as ``path``."""

    path: str
    storage_key: str


def _when(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _zip_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in name).strip(". ") or "ficheiro"
    return cleaned[:150]


async def _names(session: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict((await session.execute(select(model.id, model.name).where(model.id.in_(sorted(ids))))).all())


async def _all(session: AsyncSession, query: Any) -> list[Any]:
    return list((await session.execute(query)).scalars())


async def export_data(session: AsyncSession, citizen: Citizen) -> tuple[dict[str, Any], list[ExportFile]]:
    """Everything held about ``citizen`` (and the records merged into it) and the stored files to add."""
    ids = await citizen_group(session, citizen.id)
    citizens = await _all(session, select(Citizen).where(Citizen.id.in_(ids)).order_by(Citizen.id))
    consents = await _all(session, select(Consent).where(Consent.citizen_id.in_(ids)).order_by(Consent.id))
    cases = await _all(session, select(Case).where(Case.citizen_id.in_(ids)).order_by(Case.id))
    case_ids = [c.id for c in cases] or [-1]
    interactions = await _all(
        session,
        select(Interaction)
        .where(Interaction.citizen_id.in_(ids) | Interaction.case_id.in_(case_ids))
        .order_by(Interaction.occurred_at, Interaction.id),
    )
    events = await _all(
        session, select(CaseEvent).where(CaseEvent.case_id.in_(case_ids)).order_by(CaseEvent.created_at, CaseEvent.id)
    )
    attachments = await _all(
        session, select(Attachment).where(Attachment.case_id.in_(case_ids)).order_by(Attachment.id)
    )
    interaction_files = await _all(
        session,
        select(InteractionFile)
        .where(InteractionFile.interaction_id.in_([i.id for i in interactions] or [-1]))
        .order_by(InteractionFile.id),
    )
    emails = sorted({c.email.lower() for c in citizens if c.email})
    query = select(MailMessage).where(func.lower(MailMessage.to).in_(emails)).order_by(MailMessage.id)
    messages = await _all(session, query) if emails else []
    department_ids = {x.department_id for x in [*cases, *interactions] if x.department_id}
    staff_ids = {i.staff_id for i in interactions if i.staff_id} | {c.assignee_id for c in cases if c.assignee_id}
    departments = await _names(session, Department, department_ids)
    staff = await _names(session, User, staff_ids)
    references = {c.id: c.reference for c in cases}
    files: list[ExportFile] = []

    def file_entry(prefix: str, row: Attachment | InteractionFile) -> dict[str, Any]:
        path = f"files/{prefix}/{row.id}-{_zip_name(row.filename)}"
        files.append(ExportFile(path, row.storage_key))
        return {"filename": row.filename, "content_type": row.content_type, "size": row.size,
                "created_at": _when(row.created_at), "file": path}  # fmt: skip

    data = {
        "generated_at": datetime.now(UTC).isoformat(),
        "about": "Dados pessoais guardados pelo município no atendimento ao munícipe (CRM), incluindo as notas "
        "internas dos serviços sobre os pedidos.",
        "citizens": [
            {"id": c.id, "name": c.name, "nif": c.nif, "email": c.email, "phone": c.phone, "address": c.address,
             "consent_at": _when(c.consent_at), "external_id": c.external_id, "merged_into_id": c.merged_into_id,
             "erased_at": _when(c.erased_at), "created_at": _when(c.created_at), "updated_at": _when(c.updated_at)}
            for c in citizens
        ],
        "consents": [
            {"citizen_id": c.citizen_id, "purpose": c.purpose, "granted": c.granted, "channel": c.channel,
             "note": c.note, "created_at": _when(c.created_at)}
            for c in consents
        ],
        "interactions": [
            {"id": i.id, "channel": i.channel, "direction": i.direction, "topic": i.topic,
             "service_code": i.service_code, "department": departments.get(i.department_id or 0),
             "staff": staff.get(i.staff_id or 0), "occurred_at": _when(i.occurred_at), "notes": i.notes,
             "case": references.get(i.case_id or 0),
             "files": [file_entry("interactions", f) for f in interaction_files if f.interaction_id == i.id]}
            for i in interactions
        ],
        "cases": [
            {"reference": c.reference, "channel": c.channel, "topic": c.topic, "service_code": c.service_code,
             "department": departments.get(c.department_id or 0), "assignee": staff.get(c.assignee_id or 0),
             "status": c.status, "description": c.description, "location_text": c.location_text,
             "latitude": c.latitude, "longitude": c.longitude, "media_url": c.media_url,
             "created_at": _when(c.created_at), "updated_at": _when(c.updated_at), "closed_at": _when(c.closed_at),
             "sla_due_at": _when(c.sla_due_at), "first_answered_at": _when(c.first_answered_at),
             "events": [
                 {"kind": e.kind, "internal": e.kind == "internal_note", "body": e.body, "author": e.author,
                  "created_at": _when(e.created_at)}
                 for e in events if e.case_id == c.id
             ],
             "attachments": [
                 {**file_entry(f"cases/{c.reference}", a), "from_citizen": a.from_citizen}
                 for a in attachments if a.case_id == c.id
             ]}
            for c in cases
        ],
        "messages": [
            {"to": m.to, "subject": m.subject, "body": m.body, "created_at": _when(m.created_at),
             "sent_at": _when(m.sent_at)}
            for m in messages
        ],
    }  # fmt: skip
    return data, files


def write_export(data: dict[str, Any], files: list[ExportFile], storage: Any, output: Path) -> dict[str, int]:
    """``output`` ``.zip`` (``data.json`` and the files) or ``.json`` (the data only); returns counts."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output.suffix.lower() == ".json":
        output.write_text(text + "\n", encoding="utf-8")
        return {"files": 0, "missing_files": 0}
    missing = 0
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", text + "\n")
        for item in files:
            if storage.exists(item.storage_key):
                archive.write(storage.path_for(item.storage_key), item.path)
            else:
                missing += 1
    return {"files": len(files) - missing, "missing_files": missing}


# --------------------------------------------------------------------------------------------
# Erasure
# --------------------------------------------------------------------------------------------
@dataclass
class EraseReport:
    citizens: int = 0
    cases: int = 0
    case_events: int = 0
    interactions: int = 0
    attachments: int = 0
    interaction_files: int = 0
    stored_files_deleted: int = 0
    messages_deleted: int = 0
    citizen_ids: list[int] = field(default_factory=list)

    def add(self, other: EraseReport) -> None:
        for name in ("citizens", "cases", "case_events", "interactions", "attachments", "interaction_files",
                     "stored_files_deleted", "messages_deleted"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.citizen_ids += other.citizen_ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "citizens": self.citizens, "cases": self.cases, "case_events": self.case_events,
            "interactions": self.interactions, "attachments": self.attachments,
            "interaction_files": self.interaction_files, "stored_files_deleted": self.stored_files_deleted,
            "messages_deleted": self.messages_deleted, "citizen_ids": self.citizen_ids,
        }  # fmt: skip


async def _referenced(session: AsyncSession, key: str) -> bool:
    """Whether any row still holds the content-addressed file ``key`` (CRM files and the media library)."""
    for column in (Attachment.storage_key, InteractionFile.storage_key, Media.sha256):
        if (await session.execute(select(column).where(column == key).limit(1))).first():
            return True
    return False


async def erase_citizens(
    session: AsyncSession, storage: Any, groups: list[list[int]], *, actor: str, reason: str = "request"
) -> EraseReport:
    """Pseudonymise each group of citizen records (a person: a record and those merged into it) and commit;
    then delete the stored files no row holds any more."""
    ids = sorted({i for group in groups for i in group})
    report = EraseReport(citizens=len(ids), citizen_ids=ids)
    if not ids:
        return report
    now = datetime.now(UTC)
    emails = {e.lower() for e in await _ids(session, Citizen.email, Citizen.id, ids) if e}
    case_ids = await _ids(session, Case.id, Case.citizen_id, ids)
    interaction_ids = await _ids(session, Interaction.id, Interaction.citizen_id, ids)
    interaction_ids |= await _ids(session, Interaction.id, Interaction.case_id, case_ids)
    keys = await _ids(session, Attachment.storage_key, Attachment.case_id, case_ids)
    keys |= await _ids(session, InteractionFile.storage_key, InteractionFile.interaction_id, interaction_ids)
    report.cases, report.interactions = len(case_ids), len(interaction_ids)
    for chunk in _chunks(case_ids):
        report.attachments += (await session.execute(delete(Attachment).where(Attachment.case_id.in_(chunk)))).rowcount
        report.case_events += (
            await session.execute(
                update(CaseEvent)
                .where(CaseEvent.case_id.in_(chunk), CaseEvent.kind.not_in(CODED_EVENT_KINDS))
                .values(body=ERASED)
            )
        ).rowcount
        await session.execute(
            update(Case)
            .where(Case.id.in_(chunk))
            .values(description=ERASED, location_text="", latitude=None, longitude=None, media_url="")
        )
    for chunk in _chunks(interaction_ids):
        query = delete(InteractionFile).where(InteractionFile.interaction_id.in_(chunk))
        report.interaction_files += (await session.execute(query)).rowcount
        await session.execute(
            update(Interaction).where(Interaction.id.in_(chunk), Interaction.notes != "").values(notes=ERASED)
        )
    for chunk in _chunks(ids):
        await session.execute(update(Consent).where(Consent.citizen_id.in_(chunk)).values(note=""))
    table = Citizen.__table__
    params = [{"row_id": i, "v_name": erased_name(i), "v_folded": fold_name(erased_name(i)), "v_now": now} for i in ids]
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            name=bindparam("v_name"),
            name_folded=bindparam("v_folded"),
            nif="",
            email="",
            phone="",
            address="",
            erased_at=bindparam("v_now"),
            updated_at=bindparam("v_now"),
        ),
        params,
    )
    for chunk in _chunks(emails):
        query = delete(MailMessage).where(func.lower(MailMessage.to).in_(chunk))
        report.messages_deleted += (await session.execute(query)).rowcount
    for group in groups:
        await record(session, "crm.citizen_erased", actor=actor, target=f"crm.citizen:{min(group)}",
                     records=len(group), reason=reason)  # fmt: skip
    await session.commit()
    for key in sorted(keys):
        if not await _referenced(session, key) and storage.exists(key):
            storage.delete(key)
            report.stored_files_deleted += 1
    return report


async def erase_person(session: AsyncSession, storage: Any, citizen: Citizen, *, actor: str) -> EraseReport:
    """Erase ``citizen`` and the records merged into it (committed)."""
    return await erase_citizens(session, storage, [await citizen_group(session, citizen.id)], actor=actor)


# --------------------------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------------------------
def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


@dataclass
class PurgePlan:
    cutoff: datetime
    #: People to erase: each a list of record ids (the surviving record first).
    groups: list[list[int]]
    people: int = 0
    kept_open_case: int = 0


async def plan_purge(session: AsyncSession, years: int, now: datetime | None = None) -> PurgePlan:
    """The people whose last activity is before ``years`` ago and who have no open (not closed) case."""
    cutoff = years_before(now or datetime.now(UTC), years)
    query = select(Citizen.id, Citizen.merged_into_id, Citizen.created_at, Citizen.erased_at)
    rows = (await session.execute(query)).all()
    parent = {r.id: r.merged_into_id for r in rows}

    def root(citizen_id: int) -> int:
        seen = {citizen_id}
        while parent.get(citizen_id) and parent[citizen_id] in parent and parent[citizen_id] not in seen:
            citizen_id = parent[citizen_id]  # type: ignore[assignment]
            seen.add(citizen_id)
        return citizen_id

    last: dict[int, datetime] = {}
    members: dict[int, list[int]] = {}
    erased = {r.id for r in rows if r.erased_at is not None}

    def touch(citizen_id: int | None, moment: datetime | None) -> None:
        if citizen_id is None or moment is None or citizen_id not in parent:
            return
        top, moment = root(citizen_id), as_utc(moment)
        if top not in last or moment > last[top]:
            last[top] = moment

    for r in rows:
        members.setdefault(root(r.id), []).append(r.id)
        touch(r.id, r.created_at)
    query = select(Interaction.citizen_id, func.max(Interaction.occurred_at)).group_by(Interaction.citizen_id)
    for citizen_id, moment in (await session.execute(query)).all():
        touch(citizen_id, moment)
    query = select(Case.citizen_id, func.max(Case.updated_at)).group_by(Case.citizen_id)
    for citizen_id, moment in (await session.execute(query)).all():
        touch(citizen_id, moment)
    open_cases = (await session.execute(select(Case.citizen_id).where(Case.status != "closed").distinct())).scalars()
    blocked = {root(c) for c in open_cases if c in parent}
    plan = PurgePlan(cutoff=cutoff, groups=[])
    for top, ids in sorted(members.items()):
        if top in erased or last.get(top, cutoff) >= cutoff:
            continue
        if top in blocked:
            plan.kept_open_case += 1
            continue
        plan.groups.append([top, *sorted(i for i in ids if i != top)])
    plan.people = len(plan.groups)
    return plan


async def purge(
    session: AsyncSession,
    storage: Any,
    years: int,
    *,
    dry_run: bool = False,
    actor: str = "system",
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Erase (as :func:`erase_citizens`) everyone past the retention period; ``progress(done, total)``."""
    if years < 1:
        raise GdprError("retention_years must be at least 1 to purge")
    plan = await plan_purge(session, years, now)
    report = EraseReport()
    if not dry_run:
        for start in range(0, len(plan.groups), PURGE_BATCH):
            batch = plan.groups[start : start + PURGE_BATCH]
            report.add(await erase_citizens(session, storage, batch, actor=actor, reason="retention"))
            if progress:
                progress(start + len(batch), len(plan.groups))
    else:
        await session.rollback()
    erased = report.as_dict()
    erased.pop("citizen_ids")
    return {
        "retention_years": years, "cutoff": plan.cutoff.isoformat(), "dry_run": dry_run, "people": plan.people,
        "records": sum(len(g) for g in plan.groups), "kept_open_case": plan.kept_open_case,
        "erased": erased if not dry_run else None,
    }  # fmt: skip


async def retention_job(state: Any) -> int:
    """Background job: the retention purge once a day (``retention_years`` = 0 turns it off).

    The first run after a start with no record of an earlier purge only notes the time, so an upgrade or a fresh
    server never erases at once: the first purge comes a day later (``suite crm gdpr purge`` runs it now)."""
    years = state.plugin_settings("crm")["retention_years"]
    if not years:
        return 0
    now = datetime.now(UTC)
    namespace, key = RETENTION_MARKER
    async with state.database.sessionmaker() as session:
        query = select(KeyValue).where(KeyValue.namespace == namespace, KeyValue.key == key)
        marker = (await session.execute(query)).scalar_one_or_none()
        if marker is None:
            session.add(KeyValue(namespace=namespace, key=key, value=now.isoformat().encode()))
            await session.commit()
            return 0
        if as_utc(datetime.fromisoformat(marker.value.decode())) + RETENTION_EVERY > now:
            return 0
        marker.value = now.isoformat().encode()
        await session.commit()
        report = await purge(session, state.storage, years, actor="system")
    return int(report["people"])
