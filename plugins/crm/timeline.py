"""The citizen's 360° timeline: contacts, cases opened and closed, case history, consents and merged records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from concelho.suite.models import AuditEntry, User, as_utc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import services
from .citizen_records import LISBON
from .models import Case, CaseEvent, Citizen, Consent, Interaction, InteractionFile

TIMELINE_LIMIT = 300
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
