"""``suite search``: rebuild the index, check it, query it as someone, drain the outbox now."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .common import console, emit, fail, load_suite, run_db

app = typer.Typer(help="Full-text search: reindex, status, query.", no_args_is_help=True)


def _search_state(session: Any) -> Any:
    """A :class:`SearchState` on the CLI's database engine and the configured backend."""
    from concelho.search.backends import backend_for
    from concelho.search.service import SearchState
    from concelho.suite.events import EventBus
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    suite = load_suite()

    class _Database:
        sessionmaker = async_sessionmaker(session.bind, expire_on_commit=False, class_=AsyncSession)

    return SearchState(suite.settings, suite.registry, _Database(), backend_for(suite.settings), EventBus())


@app.command()
def reindex(
    type_: Annotated[str | None, typer.Option("--type", help="Only this document type (e.g. news.article)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Rebuild the index from the database (atomically when no --type is given)."""
    from concelho.search.service import runtime
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    load_suite()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=json_output,
    ) as progress:
        task = progress.add_task(f"reading {type_ or 'all documents'}", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            if total and done >= total:
                progress.update(task, description="writing the index")

        async def op(session):  # type: ignore[no-untyped-def]
            state = _search_state(session)
            return await runtime(state).indexer.reindex(type_, progress=step)

        try:
            summary = run_db(op)
        except ValueError as exc:
            progress.stop()
            fail(str(exc))
        except typer.Exit:
            raise
        except Exception as exc:
            progress.stop()
            fail(f"reindex failed: {exc}")
    by_type = ", ".join(f"{t} {n}" for t, n in sorted(summary["by_type"].items())) or "nothing"
    emit(
        {"ok": True, **summary},
        json_output,
        f"indexed {summary['indexed']} document(s) ({by_type})"
        + (f", removed {summary['deleted']}" if summary["deleted"] else "")
        + ("" if type_ else "; the new index replaced the old one"),
    )


@app.command()
def status(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Engine health, documents per type (database vs index) and the outbox backlog; exit 1 when unhealthy."""
    from concelho.search.service import runtime

    load_suite()

    async def op(session):  # type: ignore[no-untyped-def]
        return await runtime(_search_state(session)).indexer.status()

    report = run_db(op)
    if json_output:
        emit(report, True)
    else:
        from rich.table import Table

        engine = report["engine"]
        colour = "green" if engine["ok"] else "red"
        console.print(f"engine   [{colour}]{engine['backend']}: {engine['detail']}[/]", highlight=False)
        table = Table(title="Documents")
        for col in ("type", "label", "database", "index"):
            table.add_column(col, justify="right" if col in ("database", "index") else "left")
        for name, row in report["types"].items():
            index = "?" if row["index"] is None else str(row["index"])
            style = "" if row["index"] == row["database"] else "yellow"
            table.add_row(name, str(row["label"]), str(row["database"]), index, style=style)
        console.print(table)
        box = report["outbox"]
        line = f"outbox   {box['backlog']} waiting ({box['due']} due, {box['failing']} failing)"
        if box["oldest"]:
            line += f", oldest {box['oldest']}"
        console.print(line, highlight=False)
        if box["last_error"]:
            console.print(f"last error ({box['max_attempts']} attempts): {box['last_error']}", highlight=False)
        in_sync = report["in_sync"]
        console.print("in sync" if in_sync else "not in sync", style="green" if in_sync else "yellow")
    if not report["engine"]["ok"]:
        raise typer.Exit(1)


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="What to search for")],
    as_user: Annotated[str | None, typer.Option("--as", help="Search with what this user may see")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this document type")] = None,
    limit: Annotated[int, typer.Option(help="Hits to show", min=1, max=100)] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Search like the portal does (anonymous unless --as USER is given)."""
    from concelho.search.contract import SearchQuery, Visibility
    from concelho.search.service import run_search
    from concelho.search.visibility import visibility_for
    from concelho.suite.auth.permissions import CurrentUser, permissions_for
    from concelho.suite.models import User
    from sqlalchemy import func, select

    suite = load_suite()

    async def op(session):  # type: ignore[no-untyped-def]
        state = _search_state(session)
        visibility = Visibility.anonymous()
        if as_user:
            row = (
                await session.execute(select(User).where(func.lower(User.username) == as_user.lower()))
            ).scalar_one_or_none()
            if row is None:
                return None
            user = CurrentUser(
                id=row.id, username=row.username, name=row.name, email=row.email, is_superuser=row.is_superuser,
                department_id=row.department_id, permissions=await permissions_for(session, row.id),
            )  # fmt: skip
            visibility = await visibility_for(session, suite.registry, user)
        filters = {"type": [type_]} if type_ else {}
        search_query = SearchQuery(text, visibility=visibility, filters=filters, limit=limit)
        outcome = await run_search(state, session, search_query)
        return outcome, visibility

    found = run_db(op)
    if found is None:
        fail(f"no user {as_user!r}")
    outcome, visibility = found
    result = outcome.result
    data = {
        "query": text,
        "as": as_user,
        "visibility": {
            "authenticated": visibility.authenticated,
            "workspace_ids": sorted(visibility.workspace_ids),
            "department_ids": sorted(visibility.department_ids),
        },
        "total": result.total,
        "fallback": outcome.fallback,
        "suggestion": result.suggestion,
        "best_bets": [{"title": b.title, "url": b.url} for b in outcome.best_bets],
        "hits": [
            {"id": h.id, "type": h.type, "title": h.title, "url": h.url, "snippet": h.snippet, "score": h.score}
            for h in result.hits
        ],
        "facets": result.facets,
    }
    if json_output:
        emit(data, True)
        return
    if outcome.fallback:
        print(f"note: the engine is unavailable ({outcome.error}); database fallback", file=sys.stderr)
    rows = [{"id": h.id, "title": h.title, "url": h.url} for h in result.hits]
    emit(rows, False, columns=["id", "title", "url"], title=f"{result.total} result(s) for {text!r}")
    if result.suggestion:
        console.print(f"did you mean: {result.suggestion}", highlight=False)


@app.command()
def drain(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Send every waiting outbox row to the engine now (failed rows are retried at once)."""
    from concelho.search.service import runtime

    load_suite()

    async def op(session):  # type: ignore[no-untyped-def]
        return await runtime(_search_state(session)).indexer.drain(retry_now=True)

    result = run_db(op)
    emit(
        {"ok": result.error is None, **result.as_dict()},
        json_output,
        f"{result.processed} row(s) processed: {result.upserted} indexed, {result.deleted} removed"
        + (f"; {result.failed} failed: {result.error}" if result.failed else "")
        + ("; another indexer is running" if result.busy else ""),
    )
    if result.error:
        raise typer.Exit(1)
