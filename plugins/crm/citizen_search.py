"""The staff's citizen search (list page and counter): NIF, phone, e-mail or name words, accents and case ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from .identity import active_citizens, fold_name, normalize_phone, phone_variants
from .models import Citizen


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
    select_citizens = select(Citizen).where(active_citizens())
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
    rows = list((await session.execute(select(Citizen).where(active_citizens(), condition).limit(2))).scalars())
    return rows[0] if len(rows) == 1 else None
