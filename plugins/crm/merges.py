"""Merging duplicates: a citizen's record into another (everything moves, the row stays) and a case into another
(closed with notes, history and tracking link kept)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from concelho.suite.audit import record
from concelho.suite.i18n import N_
from concelho.suite.models import as_utc
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from . import services
from .intake import fill_empty_fields
from .models import Case, Citizen, Consent, Interaction


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
