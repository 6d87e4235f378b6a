"""Streaming exports of the CRM tables (cases, interactions, citizens) to CSV, JSON Lines or XLSX.

Each plan is one SQL query that does the work of every row: the joins (case, citizen, department, staff), dates
as ISO 8601 text in UTC, erased citizens shown as their pseudonym only. Pseudonyms (HMAC-SHA256 with the suite
secret, :class:`Pseudonyms`) are computed in Python once per citizen of the export, into a temporary table
(``crm_export_pseudonym``) that the query joins: the secret never reaches the database server or its logs. Rows
come through the driver's cursor (a named server-side cursor on PostgreSQL; sqlite3 cursors are lazy) in batches
of :data:`BATCH` and are written as they arrive, so memory does not grow with the table (openpyxl's write-only
workbook spools the sheet to a temporary file).

CSV of interactions and citizens (:meth:`ExportRows.lines`, :class:`CsvLines`): the database also writes each
row as the text of its cells (numbers as text, NULL as an empty string, yes/no as ``true``/``false``, formulas
neutralised) joined with :data:`SEP`, so Python does no work per cell: a batch in which no cell holds the
delimiter, a quote or a line break is written in one go, :data:`SEP` replaced by the delimiter (exactly what
``csv.writer`` writes for those cells); rows that need quotes go through ``csv.writer``. Cases (hours and
coordinates are floats, which Python and the databases spell differently), JSON Lines and XLSX use the typed rows
(:meth:`ExportRows.batches`).

Text cells of CSV and XLSX that a spreadsheet would read as a formula get a leading ``'`` (OWASP "CSV
injection"). ``anonymize`` drops every personal column (names, NIF, e-mail, phone, address, free text, staff) and
keeps a stable pseudonym per citizen; erased citizens always export as their pseudonym.
"""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from concelho.suite.audit import audit_entry
from concelho.suite.db import install_sqlite_pragmas, sync_url
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
    create_engine,
    func,
    insert,
    literal,
    select,
    union,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from .models import CHANNELS, STATUSES, Case, Citizen, Interaction
from .reports import local_midnight

KINDS = ("cases", "interactions", "citizens")
FORMATS = ("csv", "jsonl", "xlsx")
BATCH = 5000
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
        cells += [Cell("citizen_name", c.name, TEXT, p.c.pseudonym), Cell("citizen_nif", c.nif, TEXT, None),
                  Cell("citizen_email", c.email, TEXT, None), Cell("citizen_phone", c.phone, TEXT, None),
                  Cell("staff", u.username, TEXT), Cell("notes", i.notes, TEXT, None)]  # fmt: skip
        source = source.outerjoin(c, c.id == i.citizen_id).outerjoin(u, u.id == i.staff_id)
    cells.append(Cell("created_at", iso_sql(i.created_at, dialect)))
    where = _period(i.occurred_at, spec)
    if spec.channel:
        where.append(i.channel == spec.channel)
    if department_id is not None:
        where.append(i.department_id == department_id)
    ids = _distinct_ids(i.citizen_id, where, dialect)
    return Plan(cells, source, where, i, i.id, ids, alive)


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
        cells += [Cell("citizen_name", c.name, TEXT, p.c.pseudonym), Cell("citizen_nif", c.nif, TEXT, None),
                  Cell("citizen_email", c.email, TEXT, None), Cell("citizen_phone", c.phone, TEXT, None),
                  Cell("assignee", u.username, TEXT), Cell("description", k.description, TEXT, None),
                  Cell("location_text", k.location_text, TEXT, None), Cell("latitude", k.latitude, FLOAT, None),
                  Cell("longitude", k.longitude, FLOAT, None)]  # fmt: skip
        source = source.outerjoin(c, c.id == k.citizen_id).outerjoin(u, u.id == k.assignee_id)
    where = _period(k.created_at, spec)
    if spec.channel:
        where.append(k.channel == spec.channel)
    if spec.status:
        where.append(k.status == spec.status)
    if department_id is not None:
        where.append(k.department_id == department_id)
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


def compiled(query: Any, dialect: Any) -> str:
    """SQL text with its values inlined (checked dates, codes and ids), for the driver's own cursor."""
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


#: Set on the export's SQLite connection. The joins look citizens, cases and pseudonyms up in id order of the
#: main table, i.e. at random: with SQLite's default 2 MB page cache almost every look-up is a ``pread`` (1.65
#: million for 1M interactions, against 41,000 for reading the table alone). Bounded caches (32 MB for the
#: database, 16 MB for the temporary pseudonyms) keep most of them in memory: a fixed cost, whatever the size.
SQLITE_PRAGMAS: tuple[str, ...] = ("PRAGMA main.cache_size = -32768", "PRAGMA temp.cache_size = -16384")


def fill_pseudonyms(conn: Connection, plan: Plan, pseudo: Pseudonyms) -> int:
    """The pseudonym of every citizen the rows name, computed here once each, into the temporary table the plan
    joins (SQLite: a function of the connection called by one ``INSERT … SELECT``; PostgreSQL: ``COPY`` from
    here, ``ON COMMIT DROP``). The secret stays in this process. Returns how many."""
    driver: Any = conn.connection.driver_connection
    ids = plan.citizen_ids.subquery()
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE crm_export_pseudonym (id bigint PRIMARY KEY, pseudonym text "
                           "NOT NULL) ON COMMIT DROP")  # fmt: skip
            with driver.cursor(name="crm_export_ids") as found:
                found.execute(compiled(select(ids.c.id), conn.dialect))
                while part := found.fetchmany(BATCH):
                    with cursor.copy("COPY crm_export_pseudonym (id, pseudonym) FROM STDIN") as copy:
                        copy.write("".join([f"{cid}\t{pseudo(cid)}\n" for (cid,) in part]))
            cursor.execute("ANALYZE crm_export_pseudonym")
            cursor.execute("SELECT count(*) FROM crm_export_pseudonym")
            return cursor.fetchone()[0]
    driver.create_function("crm_pseudonym", 1, pseudo, deterministic=True)
    cursor = driver.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.execute("CREATE TEMPORARY TABLE crm_export_pseudonym (id INTEGER PRIMARY KEY, pseudonym TEXT NOT NULL)")
        fill = insert(PSEUDONYMS).from_select(["id", "pseudonym"], select(ids.c.id, func.crm_pseudonym(ids.c.id)))
        cursor.execute(compiled(fill, conn.dialect))
        return cursor.rowcount
    finally:
        cursor.close()


class ExportRows:
    """An export being read: the header, the number of rows and the rows in batches (one connection, one
    transaction: on SQLite the pseudonyms' ``INSERT`` opens it, on PostgreSQL it is repeatable read)."""

    def __init__(self, conn: Connection, kind: str, plan: Plan) -> None:
        self.conn, self.kind, self.plan = conn, kind, plan

    @property
    def header(self) -> list[str]:
        return self.plan.header

    def count(self) -> int:
        return self.conn.execute(self.plan.count).scalar_one()

    def _read(self, query: Any, name: str, raw: bool = False) -> Iterator[list[Any]]:
        """Batches of driver rows (a named server-side cursor on PostgreSQL; sqlite3 cursors are lazy). ``raw``:
        SQLite gives text as its UTF-8 bytes (no decoding per cell)."""
        dialect = self.conn.dialect
        driver: Any = self.conn.connection.driver_connection
        cursor = driver.cursor(name=name) if dialect.name == "postgresql" else driver.cursor()
        try:
            cursor.execute(compiled(query, dialect))
            while True:
                if raw:
                    driver.text_factory = bytes
                try:
                    part = cursor.fetchmany(BATCH)
                finally:
                    if raw:
                        driver.text_factory = str
                if not part:
                    break
                yield part
        finally:
            cursor.close()

    def _typed(self, part: list[Any]) -> list[list[Any]]:
        rows = [list(row) for row in part]
        flags, hours = self.plan.flags, self.plan.hours
        if flags or hours:
            for row in rows:
                for i in flags:
                    row[i] = bool(row[i])
                for i in hours:
                    if row[i] is not None:
                        row[i] = round(row[i], 2)
        return rows

    def batches(self) -> Iterator[list[list[Any]]]:
        """Typed rows (ints, ISO text, floats, booleans, None) in batches."""
        for part in self._read(self.plan.query, "crm_export"):
            yield self._typed(part)

    @property
    def bytes_ready(self) -> bool:
        """:meth:`lines` can give UTF-8 bytes (SQLite)."""
        return self.conn.dialect.name == "sqlite"

    def lines(self, as_bytes: bool = False) -> Iterator[list[tuple[Any, Any]]]:
        """``(line, key)`` per row in batches (only when ``plan.lines_ready``; see ``Plan.line_query``): the line
        as ``str``, or as UTF-8 ``bytes`` when ``as_bytes`` (only when :attr:`bytes_ready`)."""
        query = self.plan.line_query(self.conn.dialect.name)
        yield from self._read(query, "crm_export_lines", raw=as_bytes and self.bytes_ready)

    def row(self, key: Any) -> list[Any]:
        """The typed row of one key (for a line whose cells hold :data:`SEP`)."""
        driver: Any = self.conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            cursor.execute(compiled(self.plan.query.where(self.plan.key == key), self.conn.dialect))
            return self._typed([cursor.fetchone()])[0]
        finally:
            cursor.close()


def sync_engine(database_url: str) -> Any:
    engine = create_engine(sync_url(database_url), pool_size=1, max_overflow=0)
    install_sqlite_pragmas(engine)
    return engine


@contextmanager
def open_export(database_url: str, secret: str, spec: ExportSpec) -> Iterator[ExportRows]:
    """Check ``spec``, resolve the department, open one read transaction (repeatable read on PostgreSQL, so the
    count and the rows agree) and fill the pseudonyms of the citizens the rows name."""
    spec.check()
    pseudo = Pseudonyms(secret)
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            department_id = None
            if spec.department:
                departments = {code: id_ for code, id_ in conn.execute(select(Department.code, Department.id))}
                department_id = departments.get(spec.department)
                if department_id is None:
                    known = ", ".join(sorted(departments)) or "none"
                    raise ExportError(f"unknown department {spec.department!r} (known: {known})")
            plan = PLANS[spec.kind](spec, department_id, conn.dialect.name, datetime.now(UTC))
            fill_pseudonyms(conn, plan, pseudo)
            yield ExportRows(conn, spec.kind, plan)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
Tick = Callable[[int], None]


def neutralise(value: str) -> str:
    """``'=1+1`` for ``=1+1``: a spreadsheet shows the text instead of evaluating it."""
    return "'" + value if value and value[0] in FORMULA_START else value


def csv_ready(batch: list[list[Any]], plan: Plan) -> list[list[Any]]:
    """Free-text cells neutralised, yes/no as ``true``/``false`` (in place; None is written as an empty cell)."""
    text, flags = plan.text, plan.flags
    for row in batch:
        for i in text:
            value = row[i]
            if value and value[0] in FORMULA_START:
                row[i] = "'" + value
        for i in flags:
            row[i] = "true" if row[i] else "false"
    return batch


def write_csv(
    rows: ExportRows, out: TextIO, *, delimiter: str = ",", bom: bool = False, tick: Tick | None = None
) -> int:
    """CSV exactly as ``csv.writer`` writes it (minimal quoting, CRLF line ends); see :class:`CsvLines` for the
    plans whose cells the database writes as text."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(rows.header)
    total = 0
    if not rows.plan.lines_ready:
        for batch in rows.batches():
            writer.writerows(csv_ready(batch, rows.plan))
            total += len(batch)
            if tick:
                tick(len(batch))
        return total
    lines = CsvLines(rows, out, delimiter)
    with paused_gc():
        for part in rows.lines(as_bytes=lines.binary):
            lines.write(part)
            total += len(part)
            if tick:
                tick(len(part))
    return total


class CsvLines:
    """Batches of ``(line, key)`` (:meth:`ExportRows.lines`) written as ``csv.writer`` would write the cells.

    A batch's lines are joined with line ends. If the text then holds no delimiter and no quote, and exactly the
    :data:`SEP` and line ends put there, no cell needs quotes: with :data:`SEP` replaced by the delimiter it is
    what ``csv.writer`` writes. Otherwise, when the delimiters and quotes found are many for the batch, the whole
    batch is split into cells for ``csv.writer``; when few, each line gets the same test and only the others go
    through ``csv.writer``. A line whose cells hold :data:`SEP` itself is read again as a typed row. On SQLite,
    into a UTF-8 file or terminal, lines are the bytes SQLite makes and go to the byte stream under ``out`` as
    they are: nothing is decoded or encoded but the rows that need quotes."""

    def __init__(self, rows: ExportRows, out: TextIO, delimiter: str) -> None:
        stream = utf8_stream(out) if rows.bytes_ready else None
        self.rows, self.binary, self.width = rows, stream is not None, len(rows.header)
        self.put: Callable[[Any], Any] = stream.write if stream is not None else out.write
        codes = (SEP, delimiter, "\r\n", "\n", "\r", '"')
        self.sep, self.delimiter, self.end, self.lf, self.cr, self.quote = (
            (c.encode() for c in codes) if self.binary else codes
        )
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, delimiter=delimiter, lineterminator="\r\n")

    def plain(self, text: Any, lines: int) -> bool:
        """``text`` (``lines`` lines joined by line ends) needs no quotes."""
        return (self.delimiter not in text and self.quote not in text
                and text.count(self.sep) == (self.width - 1) * lines and text.count(self.lf) == lines - 1
                and text.count(self.cr) == lines - 1)  # fmt: skip

    def write(self, part: list[tuple[Any, Any]]) -> None:
        n = len(part)
        text = self.end.join([line for line, _ in part])
        if self.plain(text, n):
            self.put(text.replace(self.sep, self.delimiter))
            self.put(self.end)
            return
        # About this many rows need quotes: few, look at each row; many, quote them all.
        suspects = text.count(self.delimiter) + text.count(self.quote)
        if suspects * 4 >= n:
            self.put(self.quoted(part))
            return
        pieces, dirty = [], []
        for line, key in part:
            if self.plain(line, 1):
                if dirty:
                    pieces.append(self.quoted(dirty))
                    dirty = []
                pieces += (line.replace(self.sep, self.delimiter), self.end)
            else:
                dirty.append((line, key))
        if dirty:
            pieces.append(self.quoted(dirty))
        self.put(self.end[:0].join(pieces))

    def quoted(self, part: list[tuple[Any, Any]]) -> Any:
        """Rows as ``csv.writer`` writes them (encoded for the byte stream). The batch's lines are joined, decoded
        and split into cells in one go, or line by line when a cell holds :data:`SEP` or :data:`RS`."""
        n, width = len(part), self.width
        text = (b"\x1e" if self.binary else RS).join([line for line, _ in part])
        if self.binary:
            text = text.decode()
        cells = text.replace(RS, SEP).split(SEP) if text.count(RS) == n - 1 else []
        if len(cells) == width * n:
            each = iter(cells)
            rows: Any = zip(*[each] * width, strict=True)
        else:
            rows = []
            for line, key in part:
                row = (line.decode() if self.binary else line).split(SEP)
                rows.append(row if len(row) == width else csv_ready([self.rows.row(key)], self.rows.plan)[0])
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerows(rows)
        text = self.buffer.getvalue()
        return text.encode() if self.binary else text


def utf8_stream(out: TextIO) -> Any:
    """The byte stream under ``out`` (flushed first) when ``out`` writes UTF-8 to one (a file, the terminal)."""
    binary, encoding = getattr(out, "buffer", None), getattr(out, "encoding", None)
    if binary is None or not encoding or codecs.lookup(encoding).name != "utf-8":
        return None
    out.flush()
    return binary


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while rows stream: the driver makes a tuple per row (no cycles), and the
    collector would walk every batch again and again (about 5 % of a CSV export)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_jsonl(rows: ExportRows, out: TextIO, *, tick: Tick | None = None) -> int:
    header, dumps, total = rows.header, json.dumps, 0
    for batch in rows.batches():
        out.write("".join(dumps(dict(zip(header, row, strict=True)), ensure_ascii=False) + "\n" for row in batch))
        total += len(batch)
        if tick:
            tick(len(batch))
    return total


def write_xlsx(rows: ExportRows, path: Path, *, sheet: str = "export", tick: Tick | None = None) -> int:
    """One sheet per :data:`XLSX_MAX_ROWS` rows (Excel's limit), each with the header; booleans and numbers stay
    typed, dates are ISO text like in the other formats."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    ws, in_sheet, sheets = None, XLSX_MAX_ROWS, 0
    text, total = rows.plan.text, 0
    for batch in rows.batches():
        for row in batch:
            if in_sheet == XLSX_MAX_ROWS:
                sheets += 1
                ws, in_sheet = book.create_sheet(sheet if sheets == 1 else f"{sheet}-{sheets}"), 0
                ws.append(rows.header)
            for i in text:
                if row[i]:
                    row[i] = neutralise(ILLEGAL_CHARACTERS_RE.sub("", row[i]))[:XLSX_MAX_CELL]
            ws.append(row)  # type: ignore[union-attr]
            in_sheet += 1
        total += len(batch)
        if tick:
            tick(len(batch))
    if ws is None:
        book.create_sheet(sheet).append(rows.header)
    book.save(path)
    return total


def write(rows: ExportRows, fmt: str, out: TextIO | Path, *, delimiter: str = ",", bom: bool = False,
          tick: Tick | None = None) -> int:  # fmt: skip
    """Write every row in ``fmt`` to ``out`` (a text stream, or a path for XLSX); the number of rows written."""
    if fmt == "xlsx":
        if not isinstance(out, Path):
            raise ExportError("xlsx needs --output FILE")
        return write_xlsx(rows, out, sheet=rows.kind, tick=tick)
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as fh:
            return write(rows, fmt, fh, delimiter=delimiter, bom=bom, tick=tick)
    if fmt == "csv":
        return write_csv(rows, out, delimiter=delimiter, bom=bom, tick=tick)
    if fmt == "jsonl":
        return write_jsonl(rows, out, tick=tick)
    raise ExportError(f"unknown format {fmt!r}: choose {', '.join(FORMATS)}")


def record_export(database_url: str, spec: ExportSpec, fmt: str, rows: int, actor: str = "cli") -> None:
    """An audit row: who exported which CRM data, how many rows, anonymised or not."""
    engine = sync_engine(database_url)
    try:
        with Session(engine) as session:
            session.add(audit_entry("crm.exported", actor=actor, target=f"crm.{spec.kind}", format=fmt, rows=rows,
                                    anonymized=spec.anonymize, filters=spec.filters()))  # fmt: skip
            session.commit()
    finally:
        engine.dispose()
