"""Tags: how they are stored, and SQL over the ``tags`` JSON column that runs the same on SQLite and PostgreSQL.

Stored tags are trimmed text without control characters, each once (:func:`clean_tags`).

``shared_tags(column, wanted)`` counts the elements of a row's JSON array of tags that are among
``wanted`` (a bound parameter made by :func:`wanted_tags`), so a query can rank rows by the tags they
share without sending every candidate's tags back to Python.  It reads the JSON itself
(``json_each`` / ``json_array_elements_text``), so it does not depend on how the arrays were written,
and looks each tag up in one string of the wanted tags between unit separators (a control character
no stored tag contains), which needs no temporary table per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

_SEPARATOR = "\x1f"
_CONTROL_CHARACTERS = dict.fromkeys([*range(32), 127])


def clean_tags(tags: Iterable[Any], limit: int | None = None) -> list[str]:
    """``tags`` as they are stored: text, control characters removed, trimmed, no empty or repeated tag."""
    out: list[str] = []
    for tag in tags:
        if tag is None:
            continue
        text = str(tag).translate(_CONTROL_CHARACTERS).strip()
        if text and text not in out:
            out.append(text)
    return out if limit is None else out[:limit]


def wanted_tags(tags: Iterable[str]) -> str:
    """The value for ``shared_tags``' second argument: the tags between unit separators."""
    return _SEPARATOR + _SEPARATOR.join(clean_tags(tags)) + _SEPARATOR


class shared_tags(FunctionElement[int]):
    """How many of a row's tags are among the wanted ones (an integer, 0 when none)."""

    type = Integer()
    inherit_cache = True
    name = "shared_tags"

    def __init__(self, column: Any, wanted: Any) -> None:
        super().__init__(column, wanted)


# The fragments below are built from the compiled SQL of the two arguments (a column and a bound
# parameter), never from values: hence the S608 exemptions.
def _arguments(element: shared_tags, compiler: Any, **kw: Any) -> tuple[str, str]:
    column, wanted = element.clauses.clauses
    return compiler.process(column, **kw), compiler.process(wanted, **kw)


@compiles(shared_tags, "sqlite")
def _shared_tags_sqlite(element: shared_tags, compiler: Any, **kw: Any) -> str:
    column, wanted = _arguments(element, compiler, **kw)
    found = f"instr({wanted}, char(31) || row_tag.value || char(31)) > 0"
    return f"(SELECT count(*) FROM json_each({column}) AS row_tag WHERE {found})"  # noqa: S608


@compiles(shared_tags, "postgresql")
def _shared_tags_postgresql(element: shared_tags, compiler: Any, **kw: Any) -> str:
    column, wanted = _arguments(element, compiler, **kw)
    row_tags = f"json_array_elements_text(CAST({column} AS JSON)) AS row_tag(value)"
    found = f"strpos({wanted}, chr(31) || row_tag.value || chr(31)) > 0"
    return f"(SELECT count(*) FROM {row_tags} WHERE {found})"  # noqa: S608
