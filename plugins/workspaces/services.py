"""Workspace rules: who may read, write and manage.  Other plugins call these (never the tables)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from concelho.suite.audit import record
from concelho.suite.models import User
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ROLES, VISIBILITIES, Activity, JoinRequest, Membership, Workspace

#: What each role may do inside a workspace.
ROLE_ACTIONS = {
    "owner": {"read", "comment", "upload", "write", "manage"},
    "editor": {"read", "comment", "upload", "write"},
    "member": {"read", "comment", "upload"},
    "viewer": {"read"},
}


class WorkspaceError(ValueError):
    """Refused; the message is fit to show."""


def slugify(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:80]


@dataclass(frozen=True)
class Access:
    """A user's standing in one workspace (role None: not a member)."""

    workspace: Workspace
    role: str | None
    is_admin: bool = False

    def can(self, action: str) -> bool:
        if self.is_admin:
            return True
        if self.role is not None:
            return action in ROLE_ACTIONS[self.role]
        # Open workspaces: every employee may read and ask to join.
        return self.workspace.visibility == "open" and action in {"read", "join"}


async def get_workspace(session: AsyncSession, slug_or_name: str) -> Workspace:
    ws = (
        await session.execute(
            select(Workspace).where(
                (Workspace.slug == slug_or_name) | (func.lower(Workspace.name) == slug_or_name.lower())
            )
        )
    ).scalar_one_or_none()
    if ws is None:
        raise WorkspaceError(f"no workspace named {slug_or_name!r}")
    return ws


async def access(session: AsyncSession, workspace: Workspace, user_id: int, is_admin: bool = False) -> Access:
    role = (
        await session.execute(
            select(Membership.role).where(Membership.workspace_id == workspace.id, Membership.user_id == user_id)
        )
    ).scalar_one_or_none()
    return Access(workspace, role, is_admin)


async def workspace_ids_for(session: AsyncSession, user_id: int) -> set[int]:
    """Workspaces whose private content the user may see now (current memberships)."""
    rows = await session.execute(
        select(Membership.workspace_id)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
    )
    return {row[0] for row in rows}


async def readable_workspace_ids(session: AsyncSession, user_id: int) -> set[int]:
    """Member workspaces plus every open workspace (employees may read open ones)."""
    open_ids = {row[0] for row in await session.execute(select(Workspace.id).where(Workspace.visibility == "open"))}
    return open_ids | await workspace_ids_for(session, user_id)


async def log_activity(session: AsyncSession, workspace_id: int, actor_id: int | None, verb: str, target: str = "",
                       url: str = "") -> None:  # fmt: skip
    session.add(Activity(workspace_id=workspace_id, actor_id=actor_id, verb=verb, target=target[:300], url=url[:300]))


async def create_workspace(
    session: AsyncSession, *, name: str, owner: User | None, visibility: str = "private", description: str = "",
    actor: str = "cli",
) -> Workspace:  # fmt: skip
    name = name.strip()
    if not name:
        raise WorkspaceError("the workspace needs a name")
    if visibility not in VISIBILITIES:
        raise WorkspaceError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    slug = slugify(name)
    if not slug:
        raise WorkspaceError("the name must contain letters or digits")
    if (await session.execute(select(Workspace.id).where(Workspace.slug == slug))).first():
        raise WorkspaceError(f"a workspace named {name!r} already exists")
    ws = Workspace(slug=slug, name=name, description=description.strip(), visibility=visibility,
                   created_by=owner.id if owner else None)  # fmt: skip
    session.add(ws)
    await session.flush()
    if owner is not None:
        session.add(Membership(workspace_id=ws.id, user_id=owner.id, role="owner"))
        await log_activity(session, ws.id, owner.id, "created", ws.name)
    await record(
        session, "workspaces.created", actor=actor, target=f"workspaces.workspace:{ws.id}", visibility=visibility
    )
    return ws


async def set_member(
    session: AsyncSession, workspace: Workspace, user: User, role: str, actor: str = "cli"
) -> Membership:
    if role not in ROLES:
        raise WorkspaceError(f"role must be one of {', '.join(ROLES)}")
    if not user.is_active:
        raise WorkspaceError(f"user {user.username!r} is disabled")
    membership = (
        await session.execute(
            select(Membership).where(Membership.workspace_id == workspace.id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if membership is None:
        membership = Membership(workspace_id=workspace.id, user_id=user.id, role=role)
        session.add(membership)
        await log_activity(session, workspace.id, user.id, "joined", user.name or user.username)
    else:
        if membership.role == "owner" and role != "owner":
            await _keep_an_owner(session, workspace, user.id)
        membership.role = role
    await session.execute(
        delete(JoinRequest).where(JoinRequest.workspace_id == workspace.id, JoinRequest.user_id == user.id)
    )
    await record(session, "workspaces.member_set", actor=actor, target=f"{workspace.slug}:{user.username}", role=role)
    return membership


async def _keep_an_owner(session: AsyncSession, workspace: Workspace, leaving_user_id: int) -> None:
    owners = (
        await session.execute(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.workspace_id == workspace.id,
                Membership.role == "owner",
                Membership.user_id != leaving_user_id,
            )
        )
    ).scalar_one()
    if owners == 0:
        raise WorkspaceError("a workspace must keep at least one owner")


async def remove_member(session: AsyncSession, workspace: Workspace, user: User, actor: str = "cli") -> None:
    """Removing (or leaving) keeps everything the member wrote; access ends at once."""
    membership = (
        await session.execute(
            select(Membership).where(Membership.workspace_id == workspace.id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if membership is None:
        raise WorkspaceError(f"{user.username!r} is not a member of {workspace.name!r}")
    if membership.role == "owner":
        await _keep_an_owner(session, workspace, user.id)
    await session.delete(membership)
    await log_activity(session, workspace.id, user.id, "left", user.name or user.username)
    await record(session, "workspaces.member_removed", actor=actor, target=f"{workspace.slug}:{user.username}")
