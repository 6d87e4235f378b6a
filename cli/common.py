"""Shared CLI plumbing: loading the suite, one-line errors, JSON or table output."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from concelho.suite.db import Database
from concelho.suite.plugins import PluginError, PluginRegistry
from concelho.suite.settings import Settings, SettingsError, load_settings
from rich.console import Console
from rich.table import Table

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line on stderr and exit non-zero (never a traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def first_line(text: str) -> str:
    """The first non-empty line of an error message (never an IndexError on empty text)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip() or "unknown error")


@dataclass
class Suite:
    settings: Settings
    registry: PluginRegistry


_loaded: Suite | None = None


def load_suite() -> Suite:
    """Settings and plugin registry for this CLI run (errors become one line)."""
    global _loaded
    if _loaded is None:
        try:
            settings = load_settings()
            registry = PluginRegistry.from_settings(settings)
            registry.load_models()
        except (SettingsError, PluginError) as exc:
            fail(str(exc), 2)
        _loaded = Suite(settings, registry)
    return _loaded


def reset_loaded() -> None:
    global _loaded
    _loaded = None


def missing_database(settings: Settings) -> str | None:
    """The path of a SQLite database file that does not exist yet (None otherwise).

    Commands that only read or change data must not create an empty file by connecting.
    """
    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        path = make_url(settings.database_url).database
        if path and path != ":memory:" and not Path(path).exists():
            return path
    return None


def require_database(settings: Settings) -> None:
    path = missing_database(settings)
    if path:
        fail(f"database not found at {path}: run `suite init` (or `suite db upgrade`) first")


def run_db(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(session)`` against the configured database; DB errors become one line."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    suite = load_suite()
    require_database(suite.settings)

    async def main() -> T:
        database = Database(suite.settings.database_url)
        try:
            async with database.sessionmaker() as session:
                return await fn(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except (OperationalError, ProgrammingError) as exc:
        reason = first_line(str(exc.orig or "") or str(exc))
        if re.search(r'database ".*" does not exist', reason):
            fail(f"database error: {reason}: create it, then run `suite init`")
        if "no such table" in reason or "does not exist" in reason:
            fail(f"database is not initialised ({reason}): run `suite db upgrade`")
        fail(f"database error: {reason}")


def emit(
    data: Any,
    as_json: bool,
    message: str | None = None,
    *,
    columns: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Print ``data`` as JSON (for scripts) or as a message / table (for people)."""
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str, indent=2) + "\n")
        return
    if columns is not None and isinstance(data, list):
        table = Table(title=title)
        for col in columns:
            table.add_column(col)
        for row in data:
            table.add_row(*[_cell(row.get(c)) for c in columns])
        console.print(table)
        return
    console.print(message if message is not None else data, highlight=False)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def progress_bar(enabled: bool, total: int | None = None):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr, or a null context: for ``--json``, when stderr is not a terminal or when
    ``total`` says there is nothing to do (the caller adds its task and advances ``bar`` when it is not None)."""
    from contextlib import nullcontext

    if not enabled or total == 0 or not err_console.is_terminal:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    )  # fmt: skip
