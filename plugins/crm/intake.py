"""The citizen of a new case (web form, service request, Open311, staff): matched by NIF, else e-mail, else phone;
empty fields filled, differing details noted and never overwritten."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from . import services
from .identity import active_citizens, fold_name, normalize_phone, phone_variants
from .models import Citizen, Consent


async def find_matching_citizen(
    session: AsyncSession, *, nif: str = "", email: str = "", phone: str = ""
) -> tuple[Citizen | None, str]:
    """The existing (not merged, not erased) citizen with the same NIF, else e-mail, else phone, and how it matched.

    A record with another NIF is never matched by e-mail or phone: a shared family e-mail is not the same person."""
    query = select(Citizen).where(active_citizens()).order_by(Citizen.id).limit(1)
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
