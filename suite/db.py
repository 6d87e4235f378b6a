"""Database engines and sessions (SQLAlchemy 2 async) for SQLite and PostgreSQL."""

from __future__ import annotations

import collections
import contextlib
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from threading import Thread
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import Connection, Executable, MetaData, Row, create_engine, event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_
from sqlmodel import SQLModel

from .prepared import PreparedStatements

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata: MetaData = SQLModel.metadata
metadata.naming_convention = NAMING_CONVENTION

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (bulk statements, ``IN (…)`` look-ups kept under driver limits)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def async_url(url: str) -> str:
    """The async-driver form of a database URL (aiosqlite / psycopg 3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database: {backend}")


def sync_url(url: str) -> str:
    """The sync-driver form of a database URL (sqlite3 / psycopg 3), used by Alembic and bulk jobs."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Deleted or overwritten rows are zeroed on disk (GDPR erasure leaves no personal data in free pages).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def install_sqlite_pragmas(engine: Engine) -> None:
    """Foreign keys, WAL and a busy timeout on every SQLite connection."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    """Read-only, and a shorter wait than writers get: these reads run on the event loop (a WAL reader
    is only kept waiting in rare cases, e.g. while another connection recovers the WAL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=1000")
    cursor.close()


def is_memory_sqlite(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database (each connection would see its own)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database in {"", ":memory:"} or parsed.query.get("mode") == "memory" or "mode=memory" in database


def _run_statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any], int, int | None]:
    """On the connection's thread: one cursor, the statement, all its rows, then close."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """An aiosqlite cursor whose statement costs one trip to the connection's thread.

    SQLAlchemy's adapter makes four (create the cursor, execute, fetch all, close), each a queue
    put, a thread wake-up and a loop wake-up; here they run as one call and the cursor's
    description, row count and last row id are kept for SQLAlchemy to read afterwards.
    """

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # already closed on the connection's thread

    def close(self) -> None:
        self._rows.clear()

    def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        connection = self._connection
        try:
            conn = connection._conn
            description, rows, self._rowcount, self._lastrowid = await_(
                connection._execute(_run_statement, conn, operation, parameters, many)
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description = description
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(operation, seq_of_parameters, True)

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """Skips the trip to the connection's thread for a commit or rollback with no transaction open.

    ``sqlite3`` does nothing then either; pooled connections are rolled back on every return, so
    a read-only request saves a trip.
    """

    __slots__ = ()
    _cursor_cls = OneHopCursor

    def _in_transaction(self) -> bool:
        conn = self._connection._connection
        return conn is not None and conn.in_transaction

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()


class OneHopAiosqlite(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI adapter handing out :class:`OneHopConnection` objects."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        if creator_fn:
            connection = creator_fn(*arg, **kw)
        else:
            connection = aiosqlite.connect(*arg, **kw)
            (connection if isinstance(connection, Thread) else connection._thread).daemon = True
        return OneHopConnection(self, await_(connection))


def create_engine_for(url: str, **kwargs: Any) -> AsyncEngine:
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if make_url(url).get_backend_name() == "sqlite":
        kwargs.setdefault("module", OneHopAiosqlite(aiosqlite, sqlite3))
    engine = create_async_engine(async_url(url), pool_pre_ping=not url.startswith("sqlite"), **kwargs)
    install_sqlite_pragmas(engine.sync_engine)
    return engine


Params = Mapping[str, Any] | None


class Reader:
    """Runs read-only Core statements and returns their rows.

    Rows are SQLAlchemy :class:`~sqlalchemy.Row` objects: columns by attribute name, values through
    the columns' types (datetimes, JSON) exactly as the ORM would load them.  Subclasses implement
    :meth:`all`; ``memo`` is what the reads of one request (or one session) already loaded, for the
    helpers that share results between callers (``None``: nothing is shared).
    """

    __slots__ = ()

    @property
    def memo(self) -> dict[str, Any] | None:
        return None

    async def all(self, statement: Executable, params: Params = None) -> Sequence[Row[Any]]:
        """Every row of ``statement``."""
        raise NotImplementedError

    async def first(self, statement: Executable, params: Params = None) -> Row[Any] | None:
        """The first row, or None (give the statement a LIMIT: the others are fetched too)."""
        rows = await self.all(statement, params)
        return rows[0] if rows else None

    async def scalar(self, statement: Executable, params: Params = None) -> Any:
        """The first column of the first row, or None."""
        row = await self.first(statement, params)
        return row[0] if row is not None else None


class Reads(Reader):
    """The app's read-only statements, outside any ORM session: what anonymous portal pages read.

    On a SQLite file: a synchronous engine on the same file (``PRAGMA query_only``), one persistent
    connection per thread, in autocommit mode so every statement sees the latest committed data (no
    read transaction is left open), run inline on the event loop.  WAL readers never wait for
    writers and portal queries are indexed and limited, so this costs less than a trip to a
    driver thread.  Elsewhere (PostgreSQL, in-memory SQLite): a Core connection of the async engine
    per statement.
    """

    __slots__ = ("_connections", "_engine", "_local", "_lock", "_options", "_prepared", "async_engine", "on_prepared")

    def __init__(self, url: str, async_engine: AsyncEngine) -> None:
        self.async_engine = async_engine
        # PostgreSQL: the statement's transaction is READ ONLY (set on the driver, no extra round trip).
        self._options = {"postgresql_readonly": True} if async_engine.dialect.name == "postgresql" else {}
        self._engine: Engine | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._prepared: PreparedStatements | None = None
        #: Called with the SQL of each statement run through a prepared form (tests, diagnostics:
        #: those skip SQLAlchemy's ``before_cursor_execute`` event).
        self.on_prepared: list[Callable[[str], None]] = []
        if make_url(url).get_backend_name() == "sqlite" and not is_memory_sqlite(url):
            self._engine = create_engine(sync_url(url), poolclass=NullPool)
            install_sqlite_pragmas(self._engine)
            event.listen(self._engine, "connect", _sqlite_query_only)
            self._prepared = PreparedStatements(self._engine.dialect)

    @property
    def sync_engine(self) -> Engine | None:
        """The synchronous engine of the inline reads (None when statements go through the async engine)."""
        return self._engine

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            assert self._engine is not None
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop(self, conn: Connection) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        with contextlib.suppress(Exception):  # already broken: the next statement reconnects
            conn.close()

    async def all(self, statement: Executable, params: Params = None) -> Sequence[Row[Any]]:
        if self._engine is None:
            async with self.async_engine.connect() as aconn:
                if self._options:
                    await aconn.execution_options(**self._options)
                return (await aconn.execute(statement, params)).all()
        conn = self._connection()
        try:
            prepared = self._prepared.get(statement) if self._prepared is not None else None
            if prepared is None:
                return conn.execute(statement, params).all()
            for listener in self.on_prepared:
                listener(prepared.sql)
            return prepared.run(conn.connection.dbapi_connection, params)
        except BaseException:
            self._drop(conn)
            raise

    def dispose(self) -> None:
        """Close every thread's connection and the engine."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(Exception):  # closing on shutdown
                conn.close()
        self._local = threading.local()
        if self._engine is not None:
            self._engine.dispose()


class SessionReads(Reader):
    """Reads through an ORM session (they see its uncommitted changes); shares a memo with the session."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def memo(self) -> dict[str, Any]:
        return self.session.info.setdefault("suite.reads", {})

    async def all(self, statement: Executable, params: Params = None) -> Sequence[Row[Any]]:
        return (await self.session.execute(statement, params)).all()


class ScopedReads(Reader):
    """The reads of one request: another reader's statements plus a memo that lives as long as the request."""

    __slots__ = ("_memo", "reader")

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._memo: dict[str, Any] = {}

    @property
    def memo(self) -> dict[str, Any]:
        return self._memo

    async def all(self, statement: Executable, params: Params = None) -> Sequence[Row[Any]]:
        return await self.reader.all(statement, params)


def as_reader(source: Reader | AsyncSession) -> Reader:
    """``source`` as a :class:`Reader` (a session becomes :class:`SessionReads`)."""
    return source if isinstance(source, Reader) else SessionReads(source)


class Database:
    """One engine and session factory per app (or CLI run), and the read-only runner :attr:`reads`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine_for(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        self._reads: Reads | None = None

    @property
    def reads(self) -> Reads:
        """Read-only Core statements without a session (created on first use)."""
        if self._reads is None:
            self._reads = Reads(self.url, self.engine)
        return self._reads

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        if self._reads is not None:
            self._reads.dispose()
            self._reads = None
        await self.engine.dispose()
