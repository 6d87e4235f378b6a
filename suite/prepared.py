"""Prepared SQLite reads: a Core statement compiled once, then run with ``sqlite3`` directly.

SQLAlchemy spends about 0.1 ms per execution around a query that SQLite answers in 0.04 ms
(cache key, execution context, result metadata).  For the few statements an anonymous portal
page runs on every request (built once, with bound parameters), :class:`PreparedStatements`
keeps what SQLAlchemy would redo each time: the SQL text, the order of its parameters with
their bind processors, and the columns with their result processors.  Rows are named tuples
(attribute and index access, like SQLAlchemy's ``Row``).

Only statements seen more than once are prepared (one built per call keeps SQLAlchemy's own
path and cache), and only plain ones: no expanding ``IN``, no literal-rendered parameters, no
duplicate column names.  Everything else returns None and the caller runs SQLAlchemy as usual.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import CompoundSelect, Select

_REQUIRED = object()
#: Statements remembered (prepared or seen once): bounded, so statements built per call never pile up.
MAX_STATEMENTS = 512


class Prepared(NamedTuple):
    """What running one statement needs, worked out once."""

    sql: str
    #: Per distinct parameter: its name, its value when the statement fixes it, its bind processor.
    params: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    row: type
    #: (column index, result processor) for the columns that have one.
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: Which of ``params`` each placeholder takes, when a parameter is used more than once (else None).
    order: tuple[int, ...] | None = None

    def run(self, conn: sqlite3.Connection, values: Mapping[str, Any] | None) -> list[Any]:
        values = values or {}
        args = []
        for name, fixed, bind in self.params:
            if name in values:
                value = values[name]
            elif fixed is _REQUIRED:
                raise KeyError(f"the statement needs a value for {name!r}")
            else:
                value = fixed
            args.append(bind(value) if bind is not None and value is not None else value)
        if self.order is not None:
            args = [args[index] for index in self.order]
        rows = conn.execute(self.sql, args).fetchall()
        if not self.processors:
            return [self.row._make(raw) for raw in rows]
        out = []
        for raw in rows:
            cells = list(raw)
            for index, process in self.processors:
                cells[index] = process(cells[index])
            out.append(self.row._make(cells))
        return out


def prepare(statement: Any, dialect: Dialect) -> Prepared | None:
    """``statement`` compiled for ``dialect`` with its processors, or None when it is not a plain select."""
    if not isinstance(statement, Select | CompoundSelect):
        return None
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or not compiled.positiontup:
        return None
    params = []
    # A parameter used in several places (``now`` in a listing and its count) is converted once.
    index_of: dict[str, int] = {}
    order = []
    for name in compiled.positiontup:
        if name not in index_of:
            bind = compiled.binds[name]
            if bind.callable is not None:
                return None
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            index_of[name] = len(params)
            params.append((bind.key, _REQUIRED if bind.required else bind.value, processor))
        order.append(index_of[name])
    columns = list(statement.selected_columns)
    names = [column.key for column in columns]
    if len(set(names)) != len(names) or not all(name.isidentifier() and not name.startswith("_") for name in names):
        return None
    processors = []
    for index, column in enumerate(columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            processors.append((index, process))
    row = namedtuple("Row", names)
    repeated = len(order) != len(params)
    return Prepared(str(compiled), tuple(params), row, tuple(processors), tuple(order) if repeated else None)


class PreparedStatements:
    """Statements prepared on their second use, at most :data:`MAX_STATEMENTS` remembered."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._known: OrderedDict[Any, Prepared | bool] = OrderedDict()

    def get(self, statement: Any) -> Prepared | None:
        """The prepared form of ``statement``, or None (run it through SQLAlchemy)."""
        known = self._known.get(statement)
        if isinstance(known, Prepared):
            return known
        if known is None:  # first sight: remember it, prepare next time
            self._known[statement] = True
            if len(self._known) > MAX_STATEMENTS:
                self._known.popitem(last=False)
            return None
        if known is False:
            return None
        prepared = prepare(statement, self.dialect)
        self._known[statement] = prepared if prepared is not None else False
        return prepared


def rows_equal(ours: Sequence[Any], theirs: Sequence[Any]) -> bool:
    """Whether prepared rows carry the same values as SQLAlchemy's rows (for tests)."""
    return [tuple(row) for row in ours] == [tuple(row) for row in theirs]
