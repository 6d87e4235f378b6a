"""``suite groups``: groups of users that share roles."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import emit, fail, run_db

app = typer.Typer(help="Groups (roles shared by their members).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _op(fn):  # type: ignore[no-untyped-def]
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
    name: str, label: Annotated[str, typer.Option(help="Display name")] = "", json_output: JsonOpt = False
) -> None:
    """Create a group."""
    from concelho.suite.users import create_group

    _op(lambda s: create_group(s, name, label))
    emit({"name": name, "label": label}, json_output, f"created group {name}")


@app.command("add-member")
def add_member(group: str, username: str, json_output: JsonOpt = False) -> None:
    """Add a user to a group."""
    from concelho.suite.users import set_group_membership

    _op(lambda s: set_group_membership(s, group, username, True))
    emit({"group": group, "username": username, "member": True}, json_output, f"{username} is in {group}")


@app.command("remove-member")
def remove_member(group: str, username: str, json_output: JsonOpt = False) -> None:
    """Remove a user from a group."""
    from concelho.suite.users import set_group_membership

    _op(lambda s: set_group_membership(s, group, username, False))
    emit({"group": group, "username": username, "member": False}, json_output, f"{username} left {group}")


@app.command("set-roles")
def set_roles_(
    group: str,
    role: Annotated[list[str], typer.Option("--role", "-r", help="Role (repeatable); replaces the current ones")],
    json_output: JsonOpt = False,
) -> None:
    """Replace the roles a group grants."""
    from concelho.suite.users import set_group_roles

    _op(lambda s: set_group_roles(s, group, role))
    emit({"group": group, "roles": sorted(set(role))}, json_output, f"roles of {group}: {', '.join(sorted(set(role)))}")


@app.command("list")
def list_(json_output: JsonOpt = False) -> None:
    """Groups with their roles and members."""
    from concelho.suite.models import Group, GroupMember, GroupRole, Role, User
    from sqlalchemy import select

    async def op(session):  # type: ignore[no-untyped-def]
        groups = (await session.execute(select(Group).order_by(Group.name))).scalars().all()
        roles = (await session.execute(select(GroupRole.group_id, Role.name).join(Role))).all()
        members = (await session.execute(select(GroupMember.group_id, User.username).join(User))).all()
        return [
            {
                "name": g.name,
                "label": g.label,
                "roles": sorted(r for gid, r in roles if gid == g.id),
                "members": sorted(u for gid, u in members if gid == g.id),
            }
            for g in groups
        ]

    emit(run_db(op), json_output, columns=["name", "label", "roles", "members"], title="Groups")
