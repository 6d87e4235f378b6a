"""Finding things in a workspace's tree of folders and documents (live ones unless said otherwise)."""

from __future__ import annotations

from typing import Any

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.i18n import N_
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import DocumentError
from .models import Document, Folder

MAX_DEPTH = 32


async def ancestors(session: AsyncSession, folder_id: int | None) -> list[Folder]:
    """The folder and its parents, nearest first."""
    chain: list[Folder] = []
    seen: set[int] = set()
    while folder_id is not None and folder_id not in seen and len(chain) < MAX_DEPTH:
        seen.add(folder_id)
        folder = await session.get(Folder, folder_id)
        if folder is None:
            break
        chain.append(folder)
        folder_id = folder.parent_id
    return chain


async def descendants(session: AsyncSession, folder: Folder) -> tuple[list[Folder], list[Document]]:
    """Every folder below ``folder`` (itself included) and every document in them."""
    folders = [folder]
    frontier = [folder.id]
    while frontier and len(folders) < 100_000:
        children = list((await session.execute(select(Folder).where(Folder.parent_id.in_(frontier)))).scalars())
        folders.extend(children)
        frontier = [c.id for c in children]
    ids = [f.id for f in folders]
    docs: list[Document] = []
    for start in range(0, len(ids), 500):
        docs.extend(
            (await session.execute(select(Document).where(Document.folder_id.in_(ids[start : start + 500])))).scalars()
        )
    return folders, docs


async def get_folder(session: AsyncSession, workspace: Workspace, folder_id: int | None) -> Folder | None:
    """The folder of ``workspace`` (``None`` for the root); raises when it is not there."""
    if folder_id is None:
        return None
    folder = await session.get(Folder, folder_id)
    if folder is None or folder.workspace_id != workspace.id:
        raise DocumentError(N_("No such folder."))
    return folder


async def get_document(session: AsyncSession, workspace: Workspace, document_id: int) -> Document:
    document = await session.get(Document, document_id)
    if document is None or document.workspace_id != workspace.id:
        raise DocumentError(N_("No such document."))
    return document


def _live_in(model: type[Folder] | type[Document], workspace: Workspace, folder: Folder | None) -> Select[Any]:
    """A query for the live ``model`` rows of ``workspace`` right in ``folder`` (``None``: at the top)."""
    column = Folder.parent_id if model is Folder else Document.folder_id
    place = column == folder.id if folder else column.is_(None)
    return select(model).where(model.workspace_id == workspace.id, place, model.trashed_at.is_(None))


async def list_folder(
    session: AsyncSession, workspace: Workspace, folder: Folder | None
) -> tuple[list[Folder], list[Document]]:
    folders = (await session.execute(_live_in(Folder, workspace, folder).order_by(func.lower(Folder.name)))).scalars()
    documents = await session.execute(_live_in(Document, workspace, folder).order_by(func.lower(Document.name)))
    return list(folders), list(documents.scalars())


async def find_folder(session: AsyncSession, workspace: Workspace, parent: Folder | None, name: str) -> Folder | None:
    query = _live_in(Folder, workspace, parent).where(func.lower(Folder.name) == name.lower())
    return (await session.execute(query)).scalars().first()


async def find_document(
    session: AsyncSession, workspace: Workspace, folder: Folder | None, name: str
) -> Document | None:
    query = _live_in(Document, workspace, folder).where(func.lower(Document.name) == name.lower())
    return (await session.execute(query)).scalars().first()
