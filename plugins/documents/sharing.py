"""Shares of documents and folders with other workspaces or named employees, and what they mean for search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.audit import record
from concelho.suite.i18n import N_
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .activity import enqueue_search
from .errors import DocumentError
from .models import PERMISSIONS, Document, Folder, Share
from .rights import Viewer
from .tree import ancestors, descendants


async def add_share(
    session: AsyncSession, *, document: Document | None = None, folder: Folder | None = None,
    workspace: Workspace | None = None, user_id: int | None = None, permission: str = "read",
    owner_workspace_id: int, actor_id: int | None = None,
) -> Share:  # fmt: skip
    if permission not in PERMISSIONS:
        raise DocumentError(N_("Choose read or edit."))
    if (workspace is None) == (user_id is None):
        raise DocumentError(N_("Choose a workspace or a person to share with."))
    if workspace is not None and workspace.id == owner_workspace_id:
        raise DocumentError(N_("The workspace already has this document."))
    target = Share.document_id == document.id if document else Share.folder_id == folder.id  # type: ignore[union-attr]
    grantee = Share.workspace_id == workspace.id if workspace else Share.user_id == user_id
    share = (await session.execute(select(Share).where(target, grantee))).scalars().first()
    if share is None:
        share = Share(
            document_id=document.id if document else None, folder_id=folder.id if folder else None,
            workspace_id=workspace.id if workspace else None, user_id=user_id, permission=permission,
            created_by=actor_id,
        )  # fmt: skip
        session.add(share)
    else:
        share.permission = permission
    await session.flush()
    await _enqueue_share(session, share)
    await record(session, "documents.shared", actor_id=actor_id, target=_share_target(share),
                 grantee=f"workspace:{share.workspace_id}" if share.workspace_id else f"user:{share.user_id}",
                 permission=permission)  # fmt: skip
    return share


async def remove_share(session: AsyncSession, share: Share, actor_id: int | None = None) -> None:
    await _enqueue_share(session, share)
    await record(session, "documents.unshared", actor_id=actor_id, target=_share_target(share))
    await session.delete(share)
    await session.flush()


def _share_target(share: Share) -> str:
    return f"documents.document:{share.document_id}" if share.document_id else f"documents.folder:{share.folder_id}"


async def _enqueue_share(session: AsyncSession, share: Share) -> None:
    if share.workspace_id is None:
        return  # shares with people are not in the search index (see docs/STORAGE.md, "Search")
    if share.document_id:
        await enqueue_search(session, [share.document_id])
    elif share.folder_id:
        folder = await session.get(Folder, share.folder_id)
        if folder is not None:
            _, docs = await descendants(session, folder)
            await enqueue_search(session, [d.id for d in docs])


async def shares_of(
    session: AsyncSession, *, document: Document | None = None, folder: Folder | None = None
) -> list[Share]:
    target = Share.document_id == document.id if document else Share.folder_id == folder.id  # type: ignore[union-attr]
    return list((await session.execute(select(Share).where(target).order_by(Share.id))).scalars())


async def shared_with(session: AsyncSession, viewer: Viewer) -> list[tuple[Share, Any, Workspace]]:
    """Documents and folders shared with the viewer or their workspaces, not in their own workspaces."""
    grantees = [Share.user_id == viewer.user_id]
    if viewer.roles:
        grantees.append(Share.workspace_id.in_(list(viewer.roles)))
    shares = list(
        (await session.execute(select(Share).where(or_(*grantees)).order_by(Share.created_at.desc()))).scalars()
    )
    out: list[tuple[Share, Any, Workspace]] = []
    seen: set[tuple[str, int]] = set()
    for share in shares:
        obj: Any = (
            await session.get(Document, share.document_id)
            if share.document_id
            else await session.get(Folder, share.folder_id)
        )
        if obj is None or obj.trashed_at is not None:
            continue
        key = ("d" if share.document_id else "f", obj.id)
        if key in seen or obj.workspace_id in viewer.roles:
            continue
        seen.add(key)
        workspace = await session.get(Workspace, obj.workspace_id)
        if workspace is not None:
            out.append((share, obj, workspace))
    return out


async def document_workspace_ids(session: AsyncSession, documents: Sequence[Document]) -> dict[int, list[int]]:
    """For search: each document's workspace plus every workspace it is shared with (directly or by a folder)."""
    out: dict[int, list[int]] = {}
    folder_cache: dict[int, list[int]] = {}
    doc_ids = [d.id for d in documents]
    direct: dict[int, set[int]] = {}
    if doc_ids:
        rows = await session.execute(
            select(Share.document_id, Share.workspace_id).where(
                Share.document_id.in_(doc_ids), Share.workspace_id.is_not(None)
            )
        )
        for document_id, workspace_id in rows:
            direct.setdefault(document_id, set()).add(workspace_id)
    folder_shares: dict[int, set[int]] = {}
    for folder_id, workspace_id in await session.execute(
        select(Share.folder_id, Share.workspace_id).where(Share.folder_id.is_not(None), Share.workspace_id.is_not(None))
    ):
        folder_shares.setdefault(folder_id, set()).add(workspace_id)
    for document in documents:
        ids = {document.workspace_id, *direct.get(document.id, ())}
        if folder_shares and document.folder_id is not None:
            if document.folder_id not in folder_cache:
                chain = await ancestors(session, document.folder_id)
                folder_cache[document.folder_id] = [w for f in chain for w in folder_shares.get(f.id, ())]
            ids.update(folder_cache[document.folder_id])
        out[document.id] = sorted(ids)
    return out
