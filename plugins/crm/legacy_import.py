"""Import citizens and interactions from a legacy CRM (CSV: a spreadsheet or another system's export).

Every row is checked first; when any row is wrong, :class:`LegacyImportError` lists every problem with its line
number and nothing is written.  Otherwise all rows are written in one transaction with bulk ``INSERT``/``UPDATE``
statements (``INSERT`` in batches of :data:`.legacy_bulk.INSERT_BATCH` rows, on SQLite straight to the driver's
``executemany``; lookups loaded once).  Rows match earlier imports by ``external_id``:
the same values leave the record unchanged, different ones update it.  A citizen erased since (GDPR) is never
brought back: its rows, and the interactions of an erased citizen, are skipped.

Columns (header names, any order; ``nif`` is accepted for ``citizen_nif``):

* citizens: ``external_id,name,nif,email,phone,address,consent_at,created_at`` (``external_id`` and ``name``
  required);
* interactions: ``external_id,citizen_external_id,citizen_nif,channel,direction,occurred_at,topic,service_code,
  department_code,staff_username,notes`` (``external_id``, ``channel`` and ``occurred_at`` required; the citizen by
  its ``citizen_external_id`` or ``citizen_nif``, both empty for an anonymous contact).

Dates are ISO 8601 (``2024-03-05``, ``2024-03-05T10:20``, with or without offset) or ``dd/mm/yyyy [hh:mm[:ss]]``;
times without an offset are Lisbon time.  Channels and directions also accept their Portuguese names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from concelho.suite.audit import record
from concelho.suite.models import Department, User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .legacy_bulk import BATCH, bulk_insert, rows_where_in, write_rows
from .legacy_match import (
    SOURCE_COLUMNS,
    CitizenRef,
    by_external_id,
    citizen_refs,
    merge_survivors,
    provided,
    resolve_citizen,
    same_value,
)
from .legacy_rows import CITIZEN_COLUMNS, DELIMITERS, ENCODINGS, KINDS, LegacyImportError, RowError, read_rows
from .legacy_values import RowCheck, citizen_fast, citizen_values, interaction_fast, interaction_values, parse_when
from .models import Citizen, Consent, Interaction

__all__ = [
    "DELIMITERS", "ENCODINGS", "KINDS", "ImportReport", "LegacyImportError", "Progress", "RowError", "import_csv",
    "parse_when", "read_rows",
]  # fmt: skip

#: Where a consent recorded by the import comes from (``crm_consent.channel``).
CONSENT_CHANNEL = "import"
CONSENT_NOTE = "Importado do sistema anterior"

#: ``progress(stage, done, total)``: stage is ``"validating"`` or ``"importing"``.
Progress = Callable[[str, int, int], None]


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Rows of citizens erased since an earlier import (never brought back).
    skipped: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "skipped": self.skipped, "dry_run": self.dry_run,
        }  # fmt: skip


async def _import_citizens(
    session: AsyncSession, rows: list[tuple[int, dict[str, str]]], report: ImportReport, now: datetime,
    progress: Progress,
) -> Callable[[], Any] | None:  # fmt: skip
    errors: list[RowError] = []
    values: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    limit = now + timedelta(days=1)
    for index, (line, raw) in enumerate(rows, 1):
        row = RowCheck(line, raw, errors)
        item = citizen_fast(raw, limit) or citizen_values(row, now)
        ext = item["external_id"]
        if ext in seen:
            row.error(f"external_id {ext!r} repeats line {seen[ext]}")
        seen.setdefault(ext, line)
        values.append(item)
        if index % BATCH == 0:
            progress("validating", index, len(rows))
    if errors:
        raise LegacyImportError(errors, len(rows))
    t = Citizen.__table__
    columns = [t.c.external_id, t.c.id, t.c.erased_at, *(t.c[k] for k in CITIZEN_COLUMNS if k != "external_id")]
    existing = {r.external_id: r for r in await by_external_id(session, t, columns, seen)}
    new, changed, consents_for = [], [], []
    for item, (_line, raw) in zip(values, rows, strict=True):
        old = existing.get(item["external_id"])
        if old is None:
            new.append({**item, "created_at": item["created_at"] or now, "updated_at": now})
            if item["consent_at"]:
                consents_for.append(item)
            continue
        if old.erased_at is not None:
            report.skipped += 1
            continue
        fields = {k: v for k, v in provided(item, raw).items() if k != "external_id"}
        diff = {k: v for k, v in fields.items() if k != "name_folded" and not same_value(getattr(old, k), v)}
        if not diff:
            report.unchanged += 1
            continue
        changed.append({"row_id": old.id, **fields, "updated_at": now})
        if "consent_at" in diff:
            consents_for.append(item)
    report.created, report.updated = len(new), len(changed)

    async def write() -> None:
        await write_rows(session, t, new, changed, progress)
        if consents_for:
            ids = dict(await rows_where_in(session, [t.c.external_id, t.c.id], t.c.external_id,
                                           [c["external_id"] for c in consents_for]))  # fmt: skip
            consent_rows = [
                {"citizen_id": ids[c["external_id"]], "purpose": "data_processing", "granted": True,
                 "channel": CONSENT_CHANNEL, "note": CONSENT_NOTE, "created_at": c["consent_at"]}
                for c in consents_for
            ]  # fmt: skip
            await bulk_insert(session, Consent.__table__, consent_rows, lambda n: None)

    return write


async def _import_interactions(
    session: AsyncSession, rows: list[tuple[int, dict[str, str]]], report: ImportReport, now: datetime,
    progress: Progress,
) -> Callable[[], Any] | None:  # fmt: skip
    departments = dict((await session.execute(select(Department.code, Department.id))).all())
    staff = {u.lower(): i for u, i in (await session.execute(select(User.username, User.id))).all()}
    errors: list[RowError] = []
    values: list[tuple[RowCheck, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    limit = now + timedelta(days=1)
    for index, (line, raw) in enumerate(rows, 1):
        row = RowCheck(line, raw, errors)
        item = interaction_fast(raw, limit, departments, staff) or interaction_values(row, now, departments, staff)
        ext = item["external_id"]
        if ext in seen:
            row.error(f"external_id {ext!r} repeats line {seen[ext]}")
        seen.setdefault(ext, line)
        values.append((row, item))
        if index % BATCH == 0:
            progress("validating", index, len(rows))
    t = Interaction.__table__
    columns = [t.c.external_id, t.c.id, t.c.citizen_id, *(t.c[k] for k in _INTERACTION_FIELDS)]
    existing = {r.external_id: r for r in await by_external_id(session, t, columns, seen)}
    by_ext = dict(await citizen_refs(session, Citizen.external_id, {i["citizen_ref"] for _, i in values} - {""}))
    by_nif: dict[str, list[CitizenRef]] = {}
    for key, ref in await citizen_refs(session, Citizen.nif, {i["citizen_nif"] for _, i in values} - {"", None}):
        by_nif.setdefault(key, []).append(ref)
    linked_ids = {r.citizen_id for r in existing.values() if r.citizen_id}
    linked = {ref.id: ref for _, ref in await citizen_refs(session, Citizen.id, linked_ids)}
    survivors = await merge_survivors(session, [*by_ext.values(), *(r for refs in by_nif.values() for r in refs)])
    new, changed = [], []
    for row, item in values:
        old = existing.get(item["external_id"])
        if old is not None and old.citizen_id in linked and linked[old.citizen_id].erased:
            report.skipped += 1
            continue
        target = resolve_citizen(row, item, by_ext, by_nif, survivors)
        if target is False:
            continue
        if target is not None and target.erased:
            report.skipped += 1
            continue
        citizen_id = target.id if target is not None else None
        if old is None:
            new.append({
                "channel": item["channel"], "direction": item["direction"], "occurred_at": item["occurred_at"],
                "topic": item["topic"], "service_code": item["service_code"], "department_id": item["department_id"],
                "staff_id": item["staff_id"], "notes": item["notes"], "citizen_id": citizen_id,
                "external_id": item["external_id"], "case_id": None, "created_at": now,
            })  # fmt: skip
            continue
        fields = {k: item[k] for k in _INTERACTION_FIELDS}
        fields["citizen_id"] = citizen_id
        fields = {k: v for k, v in fields.items() if k == "citizen_id" or SOURCE_COLUMNS.get(k, k) in row.values}
        if all(same_value(getattr(old, k), v) for k, v in fields.items()):
            report.unchanged += 1
        else:
            changed.append({"row_id": old.id, **fields})
    if errors:
        raise LegacyImportError(errors, len(rows))
    report.created, report.updated = len(new), len(changed)

    async def write() -> None:
        await write_rows(session, t, new, changed, progress)

    return write


_INTERACTION_FIELDS = ("channel", "direction", "occurred_at", "topic", "service_code", "department_id", "staff_id",
                       "notes")  # fmt: skip


async def import_csv(
    session: AsyncSession,
    kind: str,
    source: str | Path | IO[Any],
    *,
    dry_run: bool = False,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    progress: Progress | None = None,
    actor: str = "cli",
) -> ImportReport:
    """Validate every row of ``source`` (a path or a binary/text stream), then write all rows in one transaction
    (committed here), or nothing with ``dry_run``.  Raises :class:`LegacyImportError` listing every problem."""
    rows = read_rows(source, kind, delimiter=delimiter, encoding=encoding)
    report = ImportReport(kind=kind, rows=len(rows), dry_run=dry_run)
    tick = progress or (lambda stage, done, total: None)
    now = datetime.now(UTC)
    planner = _import_citizens if kind == "citizens" else _import_interactions
    write = await planner(session, rows, report, now, tick)
    tick("validating", len(rows), len(rows))
    if dry_run or write is None:
        await session.rollback()
        return report
    try:
        await write()
        name = Path(source).name if isinstance(source, str | Path) else getattr(source, "name", "")
        await record(session, "crm.legacy_import", actor=actor, target=f"crm.{kind}", source=str(name)[:200],
                     **{k: v for k, v in report.as_dict().items() if k != "kind"})  # fmt: skip
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return report
