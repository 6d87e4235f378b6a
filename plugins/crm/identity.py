"""Who a citizen is: the folded form of names, normalised phones, records in use, the survivor of merges.

Phones are stored normalised (:func:`normalize_phone`: digits, ``+`` only for foreign numbers, Portuguese numbers
without +351) so that look-ups use the index; e-mails are compared case-insensitively, names through their folded
form (``Citizen.name_folded``, see :func:`fold_name`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Citizen


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


def active_citizens() -> Any:
    """The condition of records in use: neither merged into another nor erased."""
    return and_(Citizen.merged_into_id.is_(None), Citizen.erased_at.is_(None))


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
