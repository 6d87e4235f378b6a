"""Matching imported rows with the records already there: by ``external_id``, citizens also by NIF and through
merges, and which values changed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from concelho.suite.models import as_utc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .legacy_bulk import rows_where_in
from .legacy_values import RowCheck
from .models import Citizen


async def by_external_id(session: AsyncSession, table: Any, columns: list[Any], wanted: Iterable[str]) -> list[Any]:
    """The rows of ``table`` with one of the ``wanted`` external ids; one query (on the unique index) when the
    table has none at all, as on a first import."""
    probe = select(table.c.id).where(table.c.external_id.is_not(None)).limit(1)
    if (await session.execute(probe)).first() is None:
        return []
    return await rows_where_in(session, columns, table.c.external_id, wanted)


@dataclass
class CitizenRef:
    id: int
    merged_into_id: int | None
    erased: bool


async def citizen_refs(session: AsyncSession, key: Any, values: Iterable[Any]) -> list[tuple[Any, CitizenRef]]:
    cols = [key, Citizen.id, Citizen.merged_into_id, Citizen.erased_at]
    return [(r[0], CitizenRef(r[1], r[2], r[3] is not None)) for r in await rows_where_in(session, cols, key, values)]


async def merge_survivors(session: AsyncSession, refs: list[CitizenRef]) -> dict[int, CitizenRef]:
    """Each citizen id → the record it was merged into at the end of the chain (itself when not merged)."""
    known = {r.id: r for r in refs}
    while True:
        missing = {r.merged_into_id for r in known.values() if r.merged_into_id and r.merged_into_id not in known}
        if not missing:
            break
        for ref in await citizen_refs(session, Citizen.id, missing):
            known[ref[1].id] = ref[1]
    result = {}
    for ref in refs:
        current, seen = ref, {ref.id}
        while current.merged_into_id and current.merged_into_id in known and current.merged_into_id not in seen:
            seen.add(current.merged_into_id)
            current = known[current.merged_into_id]
        result[ref.id] = current
    return result


#: The file column each stored value comes from (when not the same name).
SOURCE_COLUMNS = {"name_folded": "name", "department_id": "department_code", "staff_id": "staff_username"}


def provided(item: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    """The values of columns the file has: an existing record keeps the others (and its dates when the cell is
    empty: a consent is never withdrawn by omission)."""
    return {
        k: v
        for k, v in item.items()
        if SOURCE_COLUMNS.get(k, k) in raw and not (v is None and k in ("created_at", "consent_at"))
    }


def same_value(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) or isinstance(new, datetime):
        return old is not None and new is not None and as_utc(old) == as_utc(new)
    return (old or "") == (new or "") if isinstance(new, str) else old == new


def resolve_citizen(
    row: RowCheck, item: dict[str, Any], by_ext: dict[str, CitizenRef], by_nif: dict[str, list[CitizenRef]],
    survivors: dict[int, CitizenRef],
) -> CitizenRef | bool | None:  # fmt: skip
    """The citizen a row refers to (the record it was merged into), None when anonymous, False on an error."""
    ext, nif = item["citizen_ref"], item["citizen_nif"]
    if nif is None:
        return False
    if ext:
        if ext not in by_ext:
            row.error(f"citizen_external_id {ext!r} matches no citizen (import the citizens first)")
            return False
        return survivors[by_ext[ext].id]
    if nif:
        refs = by_nif.get(nif)
        if not refs:
            row.error(f"citizen_nif {nif} matches no citizen (import the citizens first)")
            return False
        # Several records may share a NIF before staff merge them: take the oldest surviving one.
        return min((survivors[r.id] for r in refs), key=lambda r: (r.erased, r.id))
    return None
