"""SQL over the ``tags`` JSON column that runs the same on SQLite and PostgreSQL.

``shared_tags(column, tags)`` counts the elements of a row's JSON array of tags that are also in
``tags`` (a bound JSON array text, e.g. ``json.dumps(["ponte", "rio"])``), so a query can rank rows
by the tags they share without sending every candidate's tags back to Python.  It reads the JSON
itself (``json_each`` / ``json_array_elements_text``), so it does not depend on how the arrays were
written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class shared_tags(FunctionElement[int]):
    """How many of a row's tags are in a given JSON array of tags (an integer, 0 when none)."""

    type = Integer()
    inherit_cache = True
    name = "shared_tags"

    def __init__(self, column: Any, tags: Any) -> None:
        super().__init__(column, tags)


# The fragments below are built from the compiled SQL of the two arguments (a column and a bound
# parameter), never from values: hence the S608 exemptions.
def _arguments(element: shared_tags, compiler: Any, **kw: Any) -> tuple[str, str]:
    column, tags = element.clauses.clauses
    return compiler.process(column, **kw), compiler.process(tags, **kw)


@compiles(shared_tags, "sqlite")
def _shared_tags_sqlite(element: shared_tags, compiler: Any, **kw: Any) -> str:
    column, tags = _arguments(element, compiler, **kw)
    wanted = f"SELECT wanted.value FROM json_each({tags}) AS wanted"  # noqa: S608
    return f"(SELECT count(*) FROM json_each({column}) AS row_tag WHERE row_tag.value IN ({wanted}))"  # noqa: S608


@compiles(shared_tags, "postgresql")
def _shared_tags_postgresql(element: shared_tags, compiler: Any, **kw: Any) -> str:
    column, tags = _arguments(element, compiler, **kw)
    row_tags = f"json_array_elements_text(CAST({column} AS JSON)) AS row_tag(value)"
    wanted = f"SELECT json_array_elements_text(CAST({tags} AS JSON))"
    return f"(SELECT count(*) FROM {row_tags} WHERE row_tag.value IN ({wanted}))"  # noqa: S608
