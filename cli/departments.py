"""``suite departments``: the organisation tree (org chart)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import emit, fail, load_suite, run_db
from .users import FormatOpt, check_format

app = typer.Typer(help="Departments (the org chart).", no_args_is_help=True)


@app.command("list")
def list_(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Departments in tree order."""
    from concelho.suite.users import department_tree

    async def op(session):  # type: ignore[no-untyped-def]
        tree = await department_tree(session)
        codes = {dep.id: dep.code for _, dep in tree}
        return [
            {"code": dep.code, "name": dep.name, "parent_code": codes.get(dep.parent_id), "depth": depth}
            for depth, dep in tree
        ]

    rows = run_db(op)
    if json_output:
        emit(rows, True)
    else:
        emit(None, False, "\n".join("  " * r["depth"] + f"{r['code']}  {r['name']}" for r in rows) or "(none)")


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV file: code,name[,parent_code,email,phone,sort_order]; or an LDIF export of Active Directory "
            "(organisational units: ou → code, description → name, parent from the DN)"
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report, change nothing")] = False,
    fmt: FormatOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create or update departments from CSV or LDIF (all or nothing; idempotent by code)."""
    from concelho.suite.imports import ImportError_, import_departments

    check_format(fmt)
    load_suite()

    async def op(session):  # type: ignore[no-untyped-def]
        return await import_departments(session, path, dry_run=dry_run, fmt=fmt)

    try:
        result = run_db(op)
    except ImportError_ as exc:
        if json_output:
            emit({"ok": False, "errors": exc.errors}, True)
            raise typer.Exit(1) from None
        for line in exc.errors:
            print(f"{path}: {line}", file=sys.stderr)
        fail(f"{len(exc.errors)} error(s) in {path}; nothing was imported")
    emit(
        {"ok": True, **result.as_dict()},
        json_output,
        f"{'dry run: ' if dry_run else ''}{result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged",
    )
