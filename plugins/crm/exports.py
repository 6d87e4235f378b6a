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

This module opens and reads an export (:func:`open_export`, :class:`ExportRows`) and keeps the audit row; the
options and SQL plans are in :mod:`.export_plans`, the CSV/JSON Lines/XLSX writers in :mod:`.export_writers`
(both re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from concelho.suite.audit import audit_entry
from concelho.suite.db import install_sqlite_pragmas, sync_url
from concelho.suite.models import Department
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .export_plans import (  # noqa: F401 - re-exported: the CRM's export API
    FORMATS,
    KINDS,
    PLANS,
    PSEUDONYMS,
    ExportError,
    ExportSpec,
    Plan,
    Pseudonyms,
    neutralised_sql,
)
from .export_writers import Tick, csv_ready, neutralise, write, write_csv, write_jsonl, write_xlsx  # noqa: F401

#: Rows per fetch from the driver's cursor (a batch of the writers).
BATCH = 5000


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
