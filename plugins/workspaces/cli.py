"""``suite workspaces``: create workspaces and manage their members from scripts."""

from __future__ import annotations

from typing import Annotated

import typer
from concelho.cli.common import emit, fail, run_db

app = typer.Typer(help="Workspaces (team spaces with members).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _op(fn):  # type: ignore[no-untyped-def]
    from concelho.suite.users import UserError

    from .services import WorkspaceError

    async def go(session):  # type: ignore[no-untyped-def]
        try:
            result = await fn(session)
        except (WorkspaceError, UserError):
            await session.rollback()
            raise
        await session.commit()
        return result

    try:
        return run_db(go)
    except (WorkspaceError, UserError) as exc:
        fail(str(exc))


@app.command()
def create(
    name: str,
    private: Annotated[
        bool, typer.Option("--private/--open", help="Members only (default) or open to employees")
    ] = True,
    owner: Annotated[str | None, typer.Option(help="Username of the first owner")] = None,
    description: Annotated[str, typer.Option(help="What the workspace is for")] = "",
    json_output: JsonOpt = False,
) -> None:
    """Create a workspace."""
    from concelho.suite.users import get_user

    from .services import create_workspace

    async def op(session):  # type: ignore[no-untyped-def]
        user = await get_user(session, owner) if owner else None
        ws = await create_workspace(session, name=name, owner=user, visibility="private" if private else "open",
                                    description=description)  # fmt: skip
        return {"id": ws.id, "slug": ws.slug, "name": ws.name, "visibility": ws.visibility, "owner": owner}

    data = _op(op)
    emit(data, json_output, f"created workspace {data['name']} ({data['visibility']})")


@app.command("list")
def list_(json_output: JsonOpt = False) -> None:
    """Workspaces with their visibility and member counts."""
    from sqlalchemy import func, select

    from .models import Membership, Workspace

    async def op(session):  # type: ignore[no-untyped-def]
        counts = dict(
            (
                await session.execute(select(Membership.workspace_id, func.count()).group_by(Membership.workspace_id))
            ).all()
        )
        rows = (await session.execute(select(Workspace).order_by(Workspace.name))).scalars().all()
        return [
            {"slug": w.slug, "name": w.name, "visibility": w.visibility, "members": counts.get(w.id, 0)} for w in rows
        ]

    emit(run_db(op), json_output, columns=["slug", "name", "visibility", "members"], title="Workspaces")


@app.command("add-member")
def add_member(
    workspace: str,
    username: str,
    role: Annotated[str, typer.Option(help="owner, editor, member or viewer")] = "member",
    json_output: JsonOpt = False,
) -> None:
    """Add a member (or change their role)."""
    from concelho.suite.users import get_user

    from .services import get_workspace, set_member

    async def op(session):  # type: ignore[no-untyped-def]
        await set_member(session, await get_workspace(session, workspace), await get_user(session, username), role)

    _op(op)
    emit(
        {"workspace": workspace, "username": username, "role": role},
        json_output,
        f"{username} is {role} of {workspace}",
    )


@app.command("remove-member")
def remove_member_(workspace: str, username: str, json_output: JsonOpt = False) -> None:
    """Remove a member (what they wrote stays)."""
    from concelho.suite.users import get_user

    from .services import get_workspace, remove_member

    async def op(session):  # type: ignore[no-untyped-def]
        await remove_member(session, await get_workspace(session, workspace), await get_user(session, username))

    _op(op)
    emit({"workspace": workspace, "username": username, "removed": True}, json_output, f"{username} left {workspace}")
