"""``suite users``: accounts, roles and bulk import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import emit, fail, load_suite, run_db

app = typer.Typer(help="User accounts.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _run_user_op(fn):  # type: ignore[no-untyped-def]
    from concelho.suite.users import UserError

    async def go(session):  # type: ignore[no-untyped-def]
        try:
            result = await fn(session)
        except UserError:
            await session.rollback()
            raise
        await session.commit()
        return result

    try:
        return run_db(go)
    except UserError as exc:
        fail(str(exc))


@app.command()
def create(
    username: Annotated[str, typer.Argument(help="Login name (lowercase)")],
    email: Annotated[str, typer.Option("--email", "-e", help="E-mail address")],
    password: Annotated[str | None, typer.Option("--password", "-p", help="Password (prompted when omitted)")] = None,
    name: Annotated[str, typer.Option("--name", "-n", help="Full name")] = "",
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="Role (repeatable)")] = None,
    kind: Annotated[str, typer.Option(help="employee, staff or admin")] = "employee",
    json_output: JsonOpt = False,
) -> None:
    """Create a user."""
    from concelho.suite.users import create_user

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def op(session):  # type: ignore[no-untyped-def]
        user = await create_user(
            session, username=username, email=email, password=password, name=name, kind=kind, roles=role
        )
        return {"id": user.id, "username": user.username, "email": user.email, "kind": user.kind}

    data = _run_user_op(op)
    emit(data, json_output, f"created user {data['username']}")


@app.command("list")
def list_(
    json_output: JsonOpt = False, inactive: Annotated[bool, typer.Option(help="Include disabled")] = True
) -> None:
    """List users with their roles."""
    from concelho.suite.models import Department, Role, User, UserRole
    from sqlalchemy import select

    async def op(session):  # type: ignore[no-untyped-def]
        users = (await session.execute(select(User).order_by(User.username))).scalars().all()
        deps = {d.id: d.code for d in (await session.execute(select(Department))).scalars()}
        links = (await session.execute(select(UserRole.user_id, Role.name).join(Role))).all()
        roles: dict[int, list[str]] = {}
        for uid, rname in links:
            roles.setdefault(uid, []).append(rname)
        return [
            {
                "username": u.username,
                "email": u.email,
                "name": u.name,
                "kind": u.kind,
                "active": u.is_active,
                "department": deps.get(u.department_id),
                "employee_number": u.employee_number,
                "roles": sorted(roles.get(u.id, [])),
            }
            for u in users
            if inactive or u.is_active
        ]

    rows = run_db(op)
    emit(
        rows,
        json_output,
        columns=["username", "name", "email", "kind", "active", "department", "roles"],
        title="Users",
    )


@app.command()
def disable(username: str, json_output: JsonOpt = False) -> None:
    """Disable a user (signs them out everywhere)."""
    from concelho.suite.users import set_active

    _run_user_op(lambda s: set_active(s, username, False))
    emit({"username": username, "active": False}, json_output, f"disabled {username}")


@app.command()
def enable(username: str, json_output: JsonOpt = False) -> None:
    """Re-enable a disabled user."""
    from concelho.suite.users import set_active

    _run_user_op(lambda s: set_active(s, username, True))
    emit({"username": username, "active": True}, json_output, f"enabled {username}")


@app.command("set-password")
def set_password_(
    username: str,
    password: Annotated[
        str | None, typer.Option("--password", "-p", help="New password (prompted when omitted)")
    ] = None,
) -> None:
    """Set a user's password (signs them out everywhere)."""
    from concelho.suite.users import set_password

    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    _run_user_op(lambda s: set_password(s, username, password))
    emit(None, False, f"password set for {username}")


@app.command("set-roles")
def set_roles_(
    username: str,
    role: Annotated[list[str], typer.Option("--role", "-r", help="Role (repeatable); replaces the current ones")],
    json_output: JsonOpt = False,
) -> None:
    """Replace a user's roles (their sessions are rotated)."""
    from concelho.suite.users import set_roles

    _run_user_op(lambda s: set_roles(s, username, role))
    emit(
        {"username": username, "roles": sorted(set(role))},
        json_output,
        f"roles of {username}: {', '.join(sorted(set(role)))}",
    )


FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="csv or ldif (default: ldif for .ldif/.ldf files, else csv)"),
]


def check_format(fmt: str | None) -> None:
    from concelho.suite.imports import FORMATS

    if fmt is not None and fmt.strip().lower() not in FORMATS:
        fail(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}", 2)


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV file: username,email[,name,employee_number,department,job_title,phone,kind,roles]; "
            "or an LDIF export of Active Directory (sAMAccountName, mail, displayName, employeeID, department, "
            "title, telephoneNumber, userAccountControl)"
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report, change nothing")] = False,
    deactivate_missing: Annotated[
        bool, typer.Option("--deactivate-missing", help="Full sync: disable users absent from the file")
    ] = False,
    fmt: FormatOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Create or update users from CSV or LDIF; all entries are validated first and nothing changes on any error.

    LDIF: accounts disabled in the directory disable their user (or are skipped when unknown here);
    kind and roles of existing users are kept.
    """
    from concelho.suite.imports import ImportError_, detect_format, import_users
    from rich.progress import Progress

    from .common import err_console

    check_format(fmt)
    load_suite()
    # Progress goes to stderr, and only on a terminal (no stray blank lines in pipes and scripts).
    show_progress = not json_output and err_console.is_terminal
    with Progress(transient=True, console=err_console, disable=not show_progress) as progress:
        task = progress.add_task("importing users", total=None)

        async def op(session):  # type: ignore[no-untyped-def]
            return await import_users(
                session,
                path,
                dry_run=dry_run,
                deactivate_missing=deactivate_missing,
                progress=lambda n: progress.update(task, completed=n),
                fmt=fmt,
            )

        try:
            result = run_db(op)
        except ImportError_ as exc:
            progress.stop()
            if json_output:
                emit({"ok": False, "errors": exc.errors}, True)
                raise typer.Exit(1) from None
            for line in exc.errors:
                print(f"{path}: {line}", file=sys.stderr)
            fail(f"{len(exc.errors)} error(s) in {path}; nothing was imported")
    data = {"ok": True, **result.as_dict(), "deactivated_users": result.details}
    summary = (
        f"{'dry run: ' if dry_run else ''}{result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.deactivated} deactivated"
    )
    if detect_format(path, fmt) == "ldif":
        data.update(skipped=result.skipped, skipped_users=result.skipped_details)
        summary += f", {result.skipped} skipped"
    emit(data, json_output, summary)
