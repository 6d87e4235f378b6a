"""A citizen's record kept by staff: the form (create, correct), consents given or withdrawn, the audited view of a
record; and what the staff pages share: channel, direction and consent labels, Lisbon time, :class:`InvalidInput`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from concelho.suite.audit import record
from concelho.suite.i18n import N_
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from . import services
from .identity import fold_name, normalize_phone
from .models import Citizen, Consent

LISBON = ZoneInfo("Europe/Lisbon")
CHANNEL_LABELS = {
    "web": N_("Web"), "counter": N_("Counter (in person)"), "phone": N_("Phone"), "letter": N_("Letter"),
    "fax": N_("Fax"), "email": N_("E-mail"), "open311": N_("Mobile app (Open311)"),
}  # fmt: skip
DIRECTION_LABELS = {"in": N_("From the citizen"), "out": N_("To the citizen")}
CONSENT_PURPOSES = {
    "data_processing": N_("Processing of personal data"), "contact_email": N_("Contact by e-mail"),
    "contact_phone": N_("Contact by phone"), "newsletter": N_("Newsletter"),
}  # fmt: skip


class InvalidInput(services.CrmError):
    """Bad form input: ``errors`` maps field names to messages (msgids)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values()), ""))
        self.errors = errors


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
