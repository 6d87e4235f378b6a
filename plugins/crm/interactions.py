"""Contacts registered by staff (counter, phone, letter, fax, e-mail): the form, their files, and a case opened
from one."""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from concelho.suite.audit import record
from concelho.suite.content.media import MediaError, safe_filename, sniff, upload_chunks
from concelho.suite.i18n import N_
from concelho.suite.models import Department
from concelho.suite.storage import StorageLimitError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import services
from .citizen_records import LISBON, InvalidInput
from .models import DIRECTIONS, Attachment, Case, Citizen, Interaction, InteractionFile

#: Channels staff register by hand (web and Open311 contacts are recorded by the system).
STAFF_CHANNELS = ("counter", "phone", "letter", "fax", "email")
SERVICE_CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}")


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
        key, size = await storage.put_stream(upload_chunks(upload), max_bytes)
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
