"""Who may do what with a document or a folder.

Rights (the workspace's roles come from the workspaces plugin, ``ROLE_ACTIONS``):

* **read**: anyone who may read the workspace (members; every employee for an open workspace),
  plus whoever a share reaches (a workspace's members or a named employee, on the document or on a
  folder above it);
* **edit** (new version, restore a version, rename): workspace editors and owners, members for what
  they uploaded themselves, and edit shares;
* **organise** (move, copy, trash, restore from the trash): as edit, but never through a share;
* **share**: workspace editors and owners; **purge** (delete for good): owners;
* **upload** (new files and folders): any role with ``upload``, or an edit share on the folder.

Holders of ``workspaces.admin`` may do everything.  Someone who may not read gets 404, never 403.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from concelho.plugins.workspaces.models import Membership, Workspace
from concelho.plugins.workspaces.services import ROLE_ACTIONS, Access
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Document, Folder, Share
from .tree import ancestors


@dataclass(frozen=True)
class Rights:
    read: bool = False
    edit: bool = False
    organise: bool = False
    upload: bool = False
    share: bool = False
    purge: bool = False
    #: Reached only through a share (not through the workspace).
    via_share: bool = False


NO_RIGHTS = Rights()


@dataclass
class Viewer:
    """Who is asking: user id, whether they administer every workspace, and their memberships."""

    user_id: int
    is_admin: bool = False
    roles: dict[int, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, user: Any) -> Viewer:
        rows = await session.execute(
            select(Membership.workspace_id, Membership.role).where(Membership.user_id == user.id)
        )
        return cls(user.id, bool(user.has("workspaces.admin")), {ws: role for ws, role in rows})

    def access(self, workspace: Workspace) -> Access:
        return Access(workspace, self.roles.get(workspace.id), self.is_admin)


async def share_level(
    session: AsyncSession, viewer: Viewer, document_id: int | None, folder_ids: Sequence[int]
) -> str | None:
    """The best share reaching ``viewer`` on the document or any of ``folder_ids`` (``edit`` > ``read``)."""
    targets = []
    if document_id is not None:
        targets.append(Share.document_id == document_id)
    if folder_ids:
        targets.append(Share.folder_id.in_(list(folder_ids)))
    if not targets:
        return None
    grantees = [Share.user_id == viewer.user_id]
    if viewer.roles:
        grantees.append(Share.workspace_id.in_(list(viewer.roles)))
    rows = await session.execute(
        select(Share.permission, Share.workspace_id, Share.user_id).where(or_(*targets), or_(*grantees))
    )
    best: str | None = None
    for permission, workspace_id, user_id in rows:
        level = permission
        if user_id is None and level == "edit" and "upload" not in ROLE_ACTIONS[viewer.roles[workspace_id]]:
            level = "read"  # viewers of a workspace stay viewers of what is shared with it
        if level == "edit" or best is None:
            best = level
    return best


def _workspace_rights(acc: Access, created_by: int | None, viewer: Viewer) -> Rights:
    own = created_by is not None and created_by == viewer.user_id and acc.can("upload")
    organise = acc.can("write") or own
    return Rights(
        read=acc.can("read"),
        edit=organise,
        organise=organise,
        upload=acc.can("upload"),
        share=acc.can("write"),
        purge=acc.can("manage"),
    )


def _with_share(rights: Rights, level: str | None, can_upload: bool = False) -> Rights:
    if level is None or (rights.read and (rights.edit or level == "read")):
        return rights
    return Rights(
        read=True,
        edit=rights.edit or level == "edit",
        organise=rights.organise,
        upload=rights.upload or (can_upload and level == "edit"),
        share=rights.share,
        purge=rights.purge,
        via_share=not rights.read,
    )


async def document_rights(session: AsyncSession, viewer: Viewer, workspace: Workspace, document: Document) -> Rights:
    rights = _workspace_rights(viewer.access(workspace), document.created_by, viewer)
    if rights.edit:
        return rights
    chain = await ancestors(session, document.folder_id)
    return _with_share(rights, await share_level(session, viewer, document.id, [f.id for f in chain]))


async def folder_rights(session: AsyncSession, viewer: Viewer, workspace: Workspace, folder: Folder | None) -> Rights:
    rights = _workspace_rights(viewer.access(workspace), folder.created_by if folder else None, viewer)
    if folder is None or rights.edit:
        return rights
    chain = await ancestors(session, folder.id)
    return _with_share(rights, await share_level(session, viewer, None, [f.id for f in chain]), can_upload=True)
