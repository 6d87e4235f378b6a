"""The trash: trashing and restoring folders and documents, purging them for good, removing unused files.

Stored files are removed only after the rows that pointed at them are gone (:func:`collect_garbage`, after the
commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.i18n import N_
from concelho.suite.storage import LocalStorage
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .activity import enqueue_search
from .errors import DocumentError
from .models import Document, Folder, Share, Version
from .naming import now
from .tree import descendants, find_document, find_folder


async def trash_document(session: AsyncSession, document: Document) -> None:
    if document.trashed_at is None:
        document.trashed_at = now()
        await enqueue_search(session, [document.id])


async def restore_document(session: AsyncSession, workspace: Workspace, document: Document) -> None:
    if document.trashed_at is None:
        return
    folder = await session.get(Folder, document.folder_id) if document.folder_id else None
    if folder is not None and folder.trashed_at is not None:
        document.folder_id = None  # its folder is still in the trash: back to the top
        folder = None
    if await find_document(session, workspace, folder, document.name) is not None:
        raise DocumentError(N_("A document with this name already exists there."))
    document.trashed_at = None
    await enqueue_search(session, [document.id])


async def trash_folder(session: AsyncSession, folder: Folder) -> None:
    """Trash the folder and everything in it not already trashed (with the same stamp)."""
    if folder.trashed_at is not None:
        return
    stamp = now()
    folders, docs = await descendants(session, folder)
    for item in [*folders, *docs]:
        if item.trashed_at is None:
            item.trashed_at = stamp
    await enqueue_search(session, [d.id for d in docs])


async def restore_folder(session: AsyncSession, workspace: Workspace, folder: Folder) -> None:
    """Bring back the folder and what was trashed with it (items trashed before stay in the trash)."""
    if folder.trashed_at is None:
        return
    stamp = folder.trashed_at
    parent = await session.get(Folder, folder.parent_id) if folder.parent_id else None
    if parent is not None and parent.trashed_at is not None:
        folder.parent_id = None
        parent = None
    if await find_folder(session, workspace, parent, folder.name) is not None:
        raise DocumentError(N_("A folder with this name already exists there."))
    folders, docs = await descendants(session, folder)
    restored = []
    for item in [*folders, *docs]:
        if item.trashed_at == stamp:
            item.trashed_at = None
            if isinstance(item, Document):
                restored.append(item.id)
    folder.trashed_at = None
    await enqueue_search(session, restored)


async def _trashed(session: AsyncSession, model: type[Folder] | type[Document], workspace: Workspace) -> list[Any]:
    """The trashed ``model`` rows of ``workspace``, last trashed first."""
    query = select(model).where(model.workspace_id == workspace.id, model.trashed_at.is_not(None))
    return list((await session.execute(query.order_by(model.trashed_at.desc()))).scalars())


async def trash(session: AsyncSession, workspace: Workspace) -> tuple[list[Folder], list[Document]]:
    """What the trash page lists: trashed things whose folder was not trashed with them."""
    folders: list[Folder] = await _trashed(session, Folder, workspace)
    documents: list[Document] = await _trashed(session, Document, workspace)
    stamps = {f.id: f.trashed_at for f in folders}

    def top(item: Any, parent_id: int | None) -> bool:
        return parent_id is None or stamps.get(parent_id) != item.trashed_at

    return [f for f in folders if top(f, f.parent_id)], [d for d in documents if top(d, d.folder_id)]


async def purge_document(session: AsyncSession, document: Document) -> list[str]:
    """Delete a trashed document for good; returns the storage keys to check after the commit."""
    if document.trashed_at is None:
        raise DocumentError(N_("Move the document to the trash first."))
    keys = list(
        (await session.execute(select(Version.storage_key).where(Version.document_id == document.id))).scalars()
    )
    await session.execute(delete(Version).where(Version.document_id == document.id))
    await session.execute(delete(Share).where(Share.document_id == document.id))
    await enqueue_search(session, [document.id], "delete")
    await session.delete(document)
    await session.flush()
    return keys


async def purge_folder(session: AsyncSession, folder: Folder) -> list[str]:
    if folder.trashed_at is None:
        raise DocumentError(N_("Move the folder to the trash first."))
    folders, docs = await descendants(session, folder)
    ids = [d.id for d in docs]
    keys: list[str] = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        keys.extend((await session.execute(select(Version.storage_key).where(Version.document_id.in_(part)))).scalars())
        await session.execute(delete(Version).where(Version.document_id.in_(part)))
        await session.execute(delete(Share).where(Share.document_id.in_(part)))
        await session.execute(delete(Document).where(Document.id.in_(part)))
    folder_ids = [f.id for f in folders]
    await session.execute(delete(Share).where(Share.folder_id.in_(folder_ids)))
    for item in reversed(folders):  # children first
        await session.execute(delete(Folder).where(Folder.id == item.id))
    await enqueue_search(session, ids, "delete")
    return keys


async def collect_garbage(session: AsyncSession, storage: LocalStorage, keys: Iterable[str]) -> list[str]:
    """After a commit: remove the stored files no version points at any more; returns the removed keys."""
    removed = []
    for key in dict.fromkeys(keys):
        used = (await session.execute(select(Version.id).where(Version.storage_key == key).limit(1))).first()
        if used is None:
            await asyncio.to_thread(storage.delete, key)
            removed.append(key)
    return removed
