"""Files and their versions: keeping a received file as a new document or a new version, and going back to an old one.

Files are put into the storage before the rows that point at them (:class:`Blobs` removes them again when
the transaction fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.i18n import N_
from concelho.suite.storage import LocalStorage, StagedFile
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .activity import enqueue_search
from .errors import DocumentError
from .models import Document, Folder, Version
from .naming import clean_document_name, now
from .quota import Budget, check_quota
from .tree import find_document


@dataclass
class NewFile:
    """A received file, checked (type sniffed, size known) but not kept yet."""

    filename: str
    staged: StagedFile
    content_type: str
    text: str = ""


@dataclass
class Added:
    document: Document
    version: Version
    #: ``created`` (new document), ``version`` (new version of a same-named one) or ``unchanged``.
    outcome: str


class Blobs:
    """Files put into the storage during one transaction: removed again if the transaction fails."""

    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage
        self.new: list[str] = []

    def commit(self, staged: StagedFile) -> None:
        if self.storage.commit(staged):
            self.new.append(staged.key)

    def rollback(self) -> None:
        for key in self.new:
            self.storage.delete(key)
        self.new.clear()


async def versions(session: AsyncSession, document: Document) -> list[Version]:
    rows = await session.execute(
        select(Version).where(Version.document_id == document.id).order_by(Version.number.desc())
    )
    return list(rows.scalars())


async def get_version(session: AsyncSession, document: Document, number: int | None = None) -> Version:
    version = (
        await session.execute(
            select(Version).where(
                Version.document_id == document.id, Version.number == (number or document.current_version)
            )
        )
    ).scalar_one_or_none()
    if version is None:
        raise DocumentError(N_("No such version."))
    return version


async def _new_version(
    session: AsyncSession, blobs: Blobs, document: Document, new: NewFile, actor_id: int | None
) -> Version:
    blobs.commit(new.staged)
    number = document.current_version + 1
    version = Version(
        document_id=document.id, number=number, storage_key=new.staged.key, size=new.staged.size,
        content_type=new.content_type, filename=clean_document_name(new.filename, new.content_type),
        uploaded_by=actor_id, text=new.text,
    )  # fmt: skip
    session.add(version)
    document.current_version = number
    document.size = new.staged.size
    document.content_type = new.content_type
    document.updated_at = now()
    await session.flush()
    return version


async def add_file(
    session: AsyncSession,
    blobs: Blobs,
    workspace: Workspace,
    folder: Folder | None,
    new: NewFile,
    actor_id: int | None,
    *,
    may_replace: Any = None,
    import_key: str | None = None,
    budget: Budget | None = None,
) -> Added:
    """Keep ``new`` as a document of ``folder``.

    A document with the same name already there gets a new version when ``may_replace(document)``
    says so (an identical content adds nothing: ``unchanged``); otherwise the upload is refused.
    With ``import_key`` the document is looked up by that key first (re-running an import).  Pass one
    ``budget`` for many files in a transaction (the quota is then summed once).
    """
    budget = budget or await Budget.load(session, workspace)
    name = clean_document_name(new.filename, new.content_type)
    existing = None
    if import_key:
        existing = (
            (
                await session.execute(
                    select(Document).where(Document.workspace_id == workspace.id, Document.import_key == import_key)
                )
            )
            .scalars()
            .first()
        )
    if existing is None:
        existing = await find_document(session, workspace, folder, name)
    if existing is not None:
        if may_replace is None or not await may_replace(existing):
            raise DocumentError(N_("A document with this name already exists here."))
        current = await get_version(session, existing) if existing.current_version else None
        if current is not None and current.storage_key == new.staged.key:
            blobs.storage.discard(new.staged)
            return Added(existing, current, "unchanged")
        await budget.charge(session, new.staged.key, new.staged.size)
        version = await _new_version(session, blobs, existing, new, actor_id)
        if existing.trashed_at is not None:
            existing.trashed_at = None
        await enqueue_search(session, [existing.id])
        return Added(existing, version, "version")
    await budget.charge(session, new.staged.key, new.staged.size)
    document = Document(
        workspace_id=workspace.id, folder_id=folder.id if folder else None, name=name, created_by=actor_id,
        import_key=import_key,
    )  # fmt: skip
    session.add(document)
    await session.flush()
    version = await _new_version(session, blobs, document, new, actor_id)
    await enqueue_search(session, [document.id])
    return Added(document, version, "created")


async def add_version(
    session: AsyncSession, blobs: Blobs, workspace: Workspace, document: Document, new: NewFile, actor_id: int | None
) -> Version:
    await check_quota(session, workspace, new.staged.key, new.staged.size)
    version = await _new_version(session, blobs, document, new, actor_id)
    await enqueue_search(session, [document.id])
    return version


async def restore_version(session: AsyncSession, document: Document, number: int, actor_id: int | None) -> Version:
    """Make an old version current again, as a new version (the history is kept)."""
    old = await get_version(session, document, number)
    if old.number == document.current_version:
        raise DocumentError(N_("This is already the current version."))
    version = Version(
        document_id=document.id, number=document.current_version + 1, storage_key=old.storage_key, size=old.size,
        content_type=old.content_type, filename=old.filename, uploaded_by=actor_id, text=old.text,
    )  # fmt: skip
    session.add(version)
    document.current_version = version.number
    document.size = old.size
    document.content_type = old.content_type
    document.updated_at = now()
    await session.flush()
    await enqueue_search(session, [document.id])
    return version
