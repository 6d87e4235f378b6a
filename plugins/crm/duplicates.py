"""Records that may be the same person: same NIF, e-mail or phone, or a similar name (never two different NIFs)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from concelho.suite.i18n import N_
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .identity import active_citizens, fold_name, phone_variants
from .models import Citizen

#: Two folded names at least this similar (0-1, difflib ratio) make a duplicate candidate.
NAME_SIMILARITY = 0.85
SAME_NIF, SAME_EMAIL, SAME_PHONE = N_("Same NIF"), N_("Same e-mail"), N_("Same phone")
SIMILAR_NAME = N_("Similar name")
#: Reasons that identify a person (a similar name alone does not).
IDENTIFYING = frozenset({SAME_NIF, SAME_EMAIL, SAME_PHONE})


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
    query = select(Citizen).where(active_citizens())
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
