"""``suite documents``: import a folder tree or the corpus' workspace documents; usage per workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from concelho.cli.common import emit, fail, load_suite, progress_bar, run_db

app = typer.Typer(help="Workspace documents (import, usage).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _summary(report: dict[str, Any], json_output: bool, title: str) -> None:
    if json_output:
        emit(report, True)
        return
    lines = [
        f"{title}: {report['created']} created, {report['updated']} updated, {report['unchanged']} unchanged, "
        f"{len(report['skipped'])} skipped, {report['folders_created']} folder(s) created"
    ]
    if report["workspaces_created"]:
        lines.append("workspaces created (private): " + ", ".join(report["workspaces_created"]))
    for item in report["skipped"]:
        lines.append(f"  skipped {item['path']}: {item['reason']}")
    emit(None, False, "\n".join(lines))


def _run(op) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from concelho.plugins.workspaces.services import WorkspaceError
    from concelho.suite.users import UserError

    from .errors import DocumentError

    try:
        return run_db(op)
    except (DocumentError, WorkspaceError, UserError) as exc:
        fail(str(exc))


def _context() -> tuple[Any, dict[str, int]]:
    from .plugin import documents_storage

    suite = load_suite()
    plugin = suite.registry.get("documents")
    return documents_storage(suite.settings), plugin.limits(suite.settings)  # type: ignore[union-attr]


async def _actor(session, username: str | None) -> int | None:  # type: ignore[no-untyped-def]
    if not username:
        return None
    from concelho.suite.users import get_user

    return (await get_user(session, username)).id


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A folder to import (or a corpus .jsonl file)")],
    workspace: Annotated[str | None, typer.Option(help="Workspace slug or name")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Username recorded as the uploader")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Import a folder tree into a workspace, keeping its folders; re-running adds nothing new."""
    if path.is_file() and path.suffix == ".jsonl":
        import_corpus(path, as_user, json_output)
        return
    if not path.is_dir():
        fail(f"{path} is not a folder")
    if not workspace:
        fail("say which workspace with --workspace NAME")
    from concelho.plugins.workspaces.services import get_workspace

    from .importer import import_directory, list_files

    storage, limits = _context()
    files, skipped = list_files(path.resolve())
    with progress_bar(not json_output, len(files)) as bar:
        task = bar.add_task("importing", total=len(files)) if bar else None

        def tick(n: int) -> None:
            if bar is not None:
                bar.advance(task, n)

        async def op(session):  # type: ignore[no-untyped-def]
            ws = await get_workspace(session, workspace)
            report = await import_directory(session, storage, ws, path, limits, await _actor(session, as_user),
                                            tick, files=files)  # fmt: skip
            report.skipped = skipped + report.skipped
            return report.as_dict()

        report = _run(op)
    _summary(report, json_output, f"imported {path} into {workspace}")


@app.command("import-corpus")
def import_corpus(
    path: Annotated[Path, typer.Argument(help="JSON lines; rows with audience 'workspace' are imported")],
    as_user: Annotated[str | None, typer.Option("--as", help="Username recorded as the uploader")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Import the workspace documents of a corpus file as text documents (workspaces created private)."""
    from . import importer
    from .errors import DocumentError

    if not path.is_file():
        fail(f"{path} is not a file")
    try:
        rows = importer.read_corpus(path)
    except (DocumentError, OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: {exc}")
    storage, limits = _context()
    with progress_bar(not json_output, len(rows)) as bar:
        task = bar.add_task("importing", total=len(rows)) if bar else None

        def tick(n: int) -> None:
            if bar is not None:
                bar.advance(task, n)

        async def op(session):  # type: ignore[no-untyped-def]
            report = await importer.import_corpus(session, storage, rows, limits, await _actor(session, as_user), tick)
            return report.as_dict()

        report = _run(op)
    _summary(report, json_output, f"imported {path}")


@app.command()
def usage(json_output: JsonOpt = False) -> None:
    """Space used by each workspace's documents against its quota."""
    from concelho.plugins.workspaces.models import Workspace
    from sqlalchemy import select

    from .quota import usage as used

    async def op(session):  # type: ignore[no-untyped-def]
        rows = []
        for ws in (await session.execute(select(Workspace).order_by(Workspace.slug))).scalars():
            n = await used(session, ws.id)
            rows.append({"workspace": ws.slug, "used_bytes": n, "quota_bytes": ws.quota_bytes,
                         "used_percent": round(100 * n / ws.quota_bytes, 1) if ws.quota_bytes else 0})  # fmt: skip
        return rows

    emit(run_db(op), json_output, columns=["workspace", "used_bytes", "quota_bytes", "used_percent"],
         title="Documents: space used")  # fmt: skip
