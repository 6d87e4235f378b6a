"""What a CRM export reads: the options (:class:`ExportSpec`), the pseudonyms, and one SQL plan per kind.

A :class:`Plan` is the query that does the work of every row (joins, ISO dates in UTC, erased citizens, formulas
neutralised for CSV lines); :mod:`.exports` runs it and :mod:`.export_writers` writes the rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from concelho.suite.models import Department, User
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    union,
)
from sqlalchemy.orm import aliased

from .models import CHANNELS, STATUSES, Case, Citizen, Interaction
from .reports import local_midnight

KINDS = ("cases", "interactions", "citizens")
FORMATS = ("csv", "jsonl", "xlsx")
#: First characters that make a spreadsheet evaluate a cell (OWASP CSV injection).
FORMULA_START = frozenset("=+-@\t\r")
XLSX_MAX_CELL = 32767
#: Data rows per sheet (Excel's 1,048,575 rows less the header).
XLSX_MAX_ROWS = 1_048_575
#: Between the cells of a CSV line made by the database (ASCII unit separator), replaced by the delimiter.
SEP = "\x1f"
#: Between the lines of a batch split into cells for ``csv.writer`` (ASCII record separator).
RS = "\x1e"
#: The temporary table of the export's pseudonyms (one connection, dropped with it / at the end of the transaction).
PSEUDONYMS = Table(
    "crm_export_pseudonym", MetaData(), Column("id", Integer, primary_key=True), Column("pseudonym", String)
)


class ExportError(ValueError):
    """A bad option or filter (one line for the CLI)."""


@dataclass(frozen=True)
class ExportSpec:
    """What to export. ``first``/``last`` are Lisbon days, both included (either may be open)."""

    kind: str
    first: date | None = None
    last: date | None = None
    channel: str = ""
    status: str = ""
    department: str = ""
    anonymize: bool = False

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ExportError(f"unknown export {self.kind!r}: choose {', '.join(KINDS)}")
        if self.channel and self.channel not in CHANNELS:
            raise ExportError(f"unknown channel {self.channel!r}: choose {', '.join(CHANNELS)}")
        if self.status and self.status not in STATUSES:
            raise ExportError(f"unknown status {self.status!r}: choose {', '.join(STATUSES)}")
        if self.status and self.kind != "cases":
            raise ExportError("--status applies to cases only")
        if self.kind == "citizens" and (self.channel or self.department):
            raise ExportError("--channel and --department do not apply to citizens")
        if self.first and self.last and self.last < self.first:
            raise ExportError(f"--to ({self.last}) is before --from ({self.first})")

    def filters(self) -> dict[str, Any]:
        """The filters given, for the audit log and the JSON summary."""
        given = {"from": self.first, "to": self.last, "channel": self.channel, "status": self.status,
                 "department": self.department}  # fmt: skip
        return {k: str(v) for k, v in given.items() if v}


class Pseudonyms:
    """``C-`` + 16 hex digits of HMAC-SHA256(secret, ``crm.citizen:<id>``): stable for one secret, not reversible.

    HMAC (RFC 2104) written out over two SHA-256 states prepared once from the key: the same digest as
    ``hmac.new(secret, msg, sha256)``, about twice as fast per call. No cache: memory stays flat however many
    citizens the export meets (each citizen is computed once per export anyway, see ``fill_pseudonyms``)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ExportError("the suite has no secret key (run `suite init`): pseudonyms need one")
        key = secret.encode()
        if len(key) > 64:  # SHA-256's block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, citizen_id: int | None) -> str:
        if citizen_id is None:
            return ""
        inner = self._inner.copy()
        inner.update(b"crm.citizen:%d" % citizen_id)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return "C-" + outer.hexdigest()[:16]


def iso_sql(column: Any, dialect: str) -> Any:
    """``column`` as ISO 8601 text in UTC, made by the database (no datetime object per cell in Python)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
    # SQLite keeps SQLAlchemy's UTC text "YYYY-MM-DD HH:MM:SS.ffffff": cutting it is 4× cheaper than strftime().
    return func.replace(func.substr(column, 1, 19), " ", "T") + "+00:00"


def hours_sql(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return cast(func.extract("epoch", later - earlier) / 3600.0, Float)
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


#: Kinds of cell. Free text is neutralised in CSV and XLSX; flags are yes/no (``true``/``false`` in CSV); hours
#: and coordinates are floats, whose text only Python spells the same everywhere (so those plans use typed rows).
VALUE, TEXT, FLAG, HOURS, FLOAT = "value", "text", "flag", "hours", "float"
#: ``Cell.erased`` of a cell that is not personal data: kept when the citizen is erased.
KEEP = "keep"


@dataclass(frozen=True)
class Cell:
    """One column of an export: its header, the SQL expression of its value, its kind, and what it shows when the
    citizen is erased (:data:`KEEP` the value, ``None`` nothing, or another expression: the pseudonym)."""

    name: str
    expr: Any
    kind: str = VALUE
    erased: Any = KEEP


@dataclass
class Plan:
    """The cells, the FROM clause with its outer joins (``source``: an empty ``select()``), the filters, the main
    table and its key (rows come in key order), the ids of the citizens whose pseudonyms the rows need, and the
    condition "the citizen is not erased" (``alive``, when there are personal cells)."""

    cells: list[Cell]
    source: Any
    where: list[Any]
    main: Any
    key: Any
    citizen_ids: Any
    alive: Any = None
    header: list[str] = field(init=False)
    text: tuple[int, ...] = field(init=False)
    flags: tuple[int, ...] = field(init=False)
    hours: tuple[int, ...] = field(init=False)
    #: Every cell can be written as CSV text by the database (see ``ExportRows.lines``).
    lines_ready: bool = field(init=False)

    def __post_init__(self) -> None:
        self.header = [cell.name for cell in self.cells]
        kinds = [cell.kind for cell in self.cells]
        self.text, self.flags, self.hours = (tuple(n for n, k in enumerate(kinds) if k == kind)
                                             for kind in (TEXT, FLAG, HOURS))  # fmt: skip
        self.lines_ready = not {HOURS, FLOAT} & set(kinds)

    def _erasable(self, cell: Cell, value: Any, text: bool) -> Any:
        """``value``, or what the cell shows when the citizen is erased (``''`` rather than NULL for ``text``)."""
        if cell.erased is KEEP or self.alive is None:
            return value
        if cell.erased is None:
            return case((self.alive, value), else_="" if text else None)
        return case((self.alive, value), else_=func.coalesce(cell.erased, "") if text else cell.erased)

    @property
    def query(self) -> Any:
        """The typed rows."""
        columns = [self._erasable(cell, cell.expr, False).label(f"c{n}") for n, cell in enumerate(self.cells)]
        return self.source.add_columns(*columns).where(*self.where).order_by(self.key)

    @property
    def count(self) -> Any:
        """The same rows counted on the main table alone (the joins are outer joins on unique keys)."""
        return select(func.count()).select_from(self.main).where(*self.where)

    def line_query(self, dialect: str) -> Any:
        """One text per row, then the row's key: every cell as the text CSV writes for it (numbers as text, NULL
        as ``''``, flags as ``true``/``false``, free text neutralised; the erased citizen's pseudonym never needs
        it), the cells joined with :data:`SEP`. One column instead of one per cell: the driver's per-column work
        (an API call and a Python object per cell) costs more than the database joining the text."""
        cells = []
        for cell in self.cells:
            if cell.kind == TEXT:
                value = neutralised_sql(cell.expr, dialect)
            elif cell.kind == FLAG:
                value = case((cell.expr, "true"), else_="false")
            else:
                value = func.coalesce(cast(cell.expr, String), "")
            cells.append(self._erasable(cell, value, True))
        if dialect == "postgresql":
            parts = [cells[0]]
            for cell in cells[1:]:
                parts += [literal(SEP), cell]
            line = func.concat(*parts)
        else:  # ``||`` keeps a NUL character (SQLite's printf() would stop at it)
            line = cells[0]
            for cell in cells[1:]:
                line = line.op("||")(literal(SEP)).op("||")(cell)
        return self.source.add_columns(line.label("line"), self.key).where(*self.where).order_by(self.key)


FORMULA_CHARS = tuple(sorted(FORMULA_START))


def neutralised_sql(expr: Any, dialect: str) -> Any:
    """``expr`` as :func:`neutralise` would leave it (``'`` before a formula), NULL as ``''``, made by the
    database. Most text starts with a letter: one comparison (byte order: every formula character sorts before
    ``A``) settles it before the look at the first character."""
    ordered = expr.collate("C") if dialect == "postgresql" else expr
    formula = func.substr(expr, 1, 1).in_(FORMULA_CHARS)
    return case((ordered >= "A", expr), (formula, literal("'") + expr), else_=func.coalesce(expr, ""))


def _period(column: Any, spec: ExportSpec) -> list[Any]:
    where = []
    if spec.first:
        where.append(column >= local_midnight(spec.first))
    if spec.last:
        where.append(column < local_midnight(spec.last + timedelta(days=1)))
    return where


def _distinct_ids(column: Any, where: list[Any], dialect: str) -> Any:
    """The distinct non-null values of ``column`` in the filtered rows. On SQLite as ``column + 0``: without
    statistics its planner would walk the column's index for the DISTINCT and test the filters row by row
    (0.2 s for 100k rows when the period selects none) instead of using the filter's index."""
    value = column + 0 if dialect == "sqlite" else column
    return select(value.label("id")).where(value.is_not(None), *where).distinct()


def _interactions(spec: ExportSpec, department_id: int | None, dialect: str, now: datetime) -> Plan:
    i, k, c, d, u, p = Interaction, Case, Citizen, Department, User, PSEUDONYMS.alias("p")
    cells = [Cell("id", i.id), Cell("occurred_at", iso_sql(i.occurred_at, dialect)), Cell("channel", i.channel),
             Cell("direction", i.direction), Cell("topic", i.topic, TEXT), Cell("service_code", i.service_code, TEXT),
             Cell("department_code", d.code, TEXT), Cell("department_name", d.name, TEXT),
             Cell("case_reference", k.reference, TEXT), Cell("citizen", func.coalesce(p.c.pseudonym, ""))]  # fmt: skip
    source = (select().select_from(i).outerjoin(k, k.id == i.case_id).outerjoin(d, d.id == i.department_id)
              .outerjoin(p, p.c.id == i.citizen_id))  # fmt: skip
    alive = None
    if not spec.anonymize:
        alive = c.erased_at.is_(None)  # an erased citizen: the pseudonym only (the staff member is kept)
        cells += [*_identity_cells(c, p), Cell("staff", u.username, TEXT), Cell("notes", i.notes, TEXT, None)]
        source = source.outerjoin(c, c.id == i.citizen_id).outerjoin(u, u.id == i.staff_id)
    cells.append(Cell("created_at", iso_sql(i.created_at, dialect)))
    where = _filters(spec, department_id, when=i.occurred_at, channel=i.channel, department=i.department_id)
    ids = _distinct_ids(i.citizen_id, where, dialect)
    return Plan(cells, source, where, i, i.id, ids, alive)


def _identity_cells(c: Any, p: Any) -> list[Cell]:
    """Who the citizen is (identifying exports only); an erased citizen's name becomes the pseudonym."""
    return [Cell("citizen_name", c.name, TEXT, p.c.pseudonym), Cell("citizen_nif", c.nif, TEXT, None),
            Cell("citizen_email", c.email, TEXT, None), Cell("citizen_phone", c.phone, TEXT, None)]  # fmt: skip


def _filters(
    spec: ExportSpec, department_id: int | None, *, when: Any, channel: Any, department: Any, status: Any = None
) -> list[Any]:
    """The export's period, channel, status (when the kind has one) and department conditions."""
    where = _period(when, spec)
    if spec.channel:
        where.append(channel == spec.channel)
    if status is not None and spec.status:
        where.append(status == spec.status)
    if department_id is not None:
        where.append(department == department_id)
    return where


def _cases(spec: ExportSpec, department_id: int | None, dialect: str, now: datetime) -> Plan:
    k, c, d, u, target, p = Case, Citizen, Department, User, aliased(Case), PSEUDONYMS.alias("p")
    overdue = and_(k.sla_due_at.is_not(None), k.status.not_in(("closed", "answered")), k.sla_due_at < now)
    cells = [Cell("reference", k.reference, TEXT), Cell("created_at", iso_sql(k.created_at, dialect)),
             Cell("channel", k.channel), Cell("topic", k.topic, TEXT), Cell("service_code", k.service_code, TEXT),
             Cell("department_code", d.code, TEXT), Cell("department_name", d.name, TEXT), Cell("status", k.status),
             Cell("sla_due_at", iso_sql(k.sla_due_at, dialect)),
             Cell("first_answered_at", iso_sql(k.first_answered_at, dialect)),
             Cell("closed_at", iso_sql(k.closed_at, dialect)),
             Cell("hours_to_first_answer", hours_sql(k.first_answered_at, k.created_at, dialect), HOURS),
             Cell("hours_to_close", hours_sql(k.closed_at, k.created_at, dialect), HOURS),
             Cell("overdue", case((overdue, True), else_=False), FLAG), Cell("merged_into", target.reference, TEXT),
             Cell("citizen", func.coalesce(p.c.pseudonym, ""))]  # fmt: skip
    source = (select().select_from(k).outerjoin(target, target.id == k.merged_into_id)
              .outerjoin(d, d.id == k.department_id).outerjoin(p, p.c.id == k.citizen_id))  # fmt: skip
    alive = None
    if not spec.anonymize:
        alive = c.erased_at.is_(None)
        cells += [*_identity_cells(c, p), Cell("assignee", u.username, TEXT),
                  Cell("description", k.description, TEXT, None),
                  Cell("location_text", k.location_text, TEXT, None), Cell("latitude", k.latitude, FLOAT, None),
                  Cell("longitude", k.longitude, FLOAT, None)]  # fmt: skip
        source = source.outerjoin(c, c.id == k.citizen_id).outerjoin(u, u.id == k.assignee_id)
    where = _filters(
        spec, department_id, when=k.created_at, channel=k.channel, department=k.department_id, status=k.status
    )
    ids = _distinct_ids(k.citizen_id, where, dialect)
    return Plan(cells, source, where, k, k.id, ids, alive)


def _citizens(spec: ExportSpec, department_id: int | None, dialect: str, now: datetime) -> Plan:
    c, me, merged = Citizen, PSEUDONYMS.alias("p"), PSEUDONYMS.alias("m")
    contacts = select(Interaction.citizen_id, func.count().label("n")).group_by(Interaction.citizen_id).subquery()
    cases = select(Case.citizen_id, func.count().label("n")).group_by(Case.citizen_id).subquery()
    cells = [Cell("citizen", func.coalesce(me.c.pseudonym, "")), Cell("consent_at", iso_sql(c.consent_at, dialect)),
             Cell("merged_into", merged.c.pseudonym), Cell("erased", c.erased_at.is_not(None), FLAG),
             Cell("created_at", iso_sql(c.created_at, dialect)), Cell("updated_at", iso_sql(c.updated_at, dialect)),
             Cell("interactions", func.coalesce(contacts.c.n, 0)),
             Cell("cases", func.coalesce(cases.c.n, 0))]  # fmt: skip
    alive = None
    if not spec.anonymize:
        alive = c.erased_at.is_(None)
        cells += [Cell("id", c.id), Cell("external_id", c.external_id, TEXT, None),
                  Cell("name", c.name, TEXT, me.c.pseudonym), Cell("nif", c.nif, TEXT, None),
                  Cell("email", c.email, TEXT, None), Cell("phone", c.phone, TEXT, None),
                  Cell("address", c.address, TEXT, None)]  # fmt: skip
    source = (select().select_from(c).outerjoin(contacts, contacts.c.citizen_id == c.id)
              .outerjoin(cases, cases.c.citizen_id == c.id).outerjoin(me, me.c.id == c.id)
              .outerjoin(merged, merged.c.id == c.merged_into_id))  # fmt: skip
    where = _period(c.created_at, spec)
    ids = union(select(c.id.label("id")).where(*where),
                select(c.merged_into_id.label("id")).where(c.merged_into_id.is_not(None), *where))  # fmt: skip
    return Plan(cells, source, where, c, c.id, ids, alive)


PLANS = {"interactions": _interactions, "cases": _cases, "citizens": _citizens}
