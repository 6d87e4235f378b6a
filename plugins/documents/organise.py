"""Organising a workspace: new folders, renaming, moving and copying folders and documents."""

from __future__ import annotations

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.i18n import N_
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .activity import enqueue_search
from .errors import DocumentError
from .models import Document, Folder, Version
from .naming import clean_document_name, clean_folder_name, now
from .tree import MAX_DEPTH, ancestors, descendants, find_document, find_folder
from .versions import get_version


async def create_folder(
    session: AsyncSession, workspace: Workspace, parent: Folder | None, name: str, actor_id: int | None,
    exist_ok: bool = False,
) -> Folder:  # fmt: skip
    name = clean_folder_name(name)
    if parent is not None and len(await ancestors(session, parent.id)) >= MAX_DEPTH - 1:
        raise DocumentError(N_("Folders cannot be nested this deep."))
    existing = await find_folder(session, workspace, parent, name)
    if existing is not None:
        if exist_ok:
            return existing
        raise DocumentError(N_("A folder with this name already exists here."))
    folder = Folder(workspace_id=workspace.id, parent_id=parent.id if parent else None, name=name, created_by=actor_id)
    session.add(folder)
    await session.flush()
    return folder


async def rename_folder(session: AsyncSession, folder: Folder, workspace: Workspace, name: str) -> None:
    name = clean_folder_name(name)
    parent = await session.get(Folder, folder.parent_id) if folder.parent_id else None
    existing = await find_folder(session, workspace, parent, name)
    if existing is not None and existing.id != folder.id:
        raise DocumentError(N_("A folder with this name already exists here."))
    folder.name = name


async def move_folder(session: AsyncSession, folder: Folder, workspace: Workspace, target: Folder | None) -> None:
    if target is not None:
        if target.trashed_at is not None:
            raise DocumentError(N_("No such folder."))
        if folder.id in {f.id for f in await ancestors(session, target.id)}:
            raise DocumentError(N_("A folder cannot be moved into itself."))
    if await find_folder(session, workspace, target, folder.name) not in (None, folder):
        raise DocumentError(N_("A folder with this name already exists there."))
    folder.parent_id = target.id if target else None
    _, docs = await descendants(session, folder)
    await enqueue_search(session, [d.id for d in docs])


async def rename_document(session: AsyncSession, workspace: Workspace, document: Document, name: str) -> None:
    if not (name or "").strip(". "):
        raise DocumentError(N_("Give the document a name."))
    cleaned = clean_document_name(name, document.content_type)
    folder = await session.get(Folder, document.folder_id) if document.folder_id else None
    existing = await find_document(session, workspace, folder, cleaned)
    if existing is not None and existing.id != document.id:
        raise DocumentError(N_("A document with this name already exists here."))
    document.name = cleaned
    document.updated_at = now()
    await enqueue_search(session, [document.id])


async def move_document(session: AsyncSession, workspace: Workspace, document: Document, target: Folder | None) -> None:
    if target is not None and target.trashed_at is not None:
        raise DocumentError(N_("No such folder."))
    existing = await find_document(session, workspace, target, document.name)
    if existing is not None and existing.id != document.id:
        raise DocumentError(N_("A document with this name already exists there."))
    document.folder_id = target.id if target else None
    await enqueue_search(session, [document.id])


async def copy_document(
    session: AsyncSession, workspace: Workspace, document: Document, target: Folder | None, actor_id: int | None
) -> Document:
    """A new document in ``target`` with the current version (same stored file: no space used)."""
    if target is not None and target.trashed_at is not None:
        raise DocumentError(N_("No such folder."))
    current = await get_version(session, document)
    name = document.name
    if await find_document(session, workspace, target, name) is not None:
        stem, dot, ext = name.rpartition(".")
        base = stem if dot else name
        suffix = f".{ext}" if dot else ""
        for n in range(1, 1000):
            name = f"{base} ({n}){suffix}"
            if await find_document(session, workspace, target, name) is None:
                break
    copy = Document(
        workspace_id=workspace.id, folder_id=target.id if target else None, name=name, current_version=1,
        size=current.size, content_type=current.content_type, created_by=actor_id,
    )  # fmt: skip
    session.add(copy)
    await session.flush()
    session.add(
        Version(
            document_id=copy.id, number=1, storage_key=current.storage_key, size=current.size,
            content_type=current.content_type, filename=current.filename, uploaded_by=actor_id, text=current.text,
        )
    )  # fmt: skip
    await session.flush()
    await enqueue_search(session, [copy.id])
    return copy


async def copy_folder(
    session: AsyncSession, workspace: Workspace, folder: Folder, target: Folder | None, actor_id: int | None
) -> Folder:
    """Copy a folder with everything live inside it (documents keep their stored files: no space used)."""
    if target is not None:
        if target.trashed_at is not None:
            raise DocumentError(N_("No such folder."))
        if folder.id in {f.id for f in await ancestors(session, target.id)}:
            raise DocumentError(N_("A folder cannot be copied into itself."))
    name = folder.name
    if await find_folder(session, workspace, target, name) is not None:
        for n in range(1, 1000):
            name = f"{folder.name} ({n})"
            if await find_folder(session, workspace, target, name) is None:
                break
    copy = await create_folder(session, workspace, target, name, actor_id)
    documents = (
        (
            await session.execute(
                select(Document)
                .where(Document.folder_id == folder.id, Document.trashed_at.is_(None))
                .order_by(Document.id)
            )
        )
        .scalars()
        .all()
    )
    for document in documents:
        await copy_document(session, workspace, document, copy, actor_id)
    children = (
        (
            await session.execute(
                select(Folder).where(Folder.parent_id == folder.id, Folder.trashed_at.is_(None)).order_by(Folder.id)
            )
        )
        .scalars()
        .all()
    )
    for child in children:
        await copy_folder(session, workspace, child, copy, actor_id)
    return copy
