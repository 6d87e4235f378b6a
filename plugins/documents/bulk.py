"""Keeping many files at once (imports): the rules of :func:`versions.add_file` with a handful of queries."""

from __future__ import annotations

from dataclasses import dataclass

from concelho.plugins.workspaces.models import Workspace
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .activity import enqueue_search
from .errors import QuotaError
from .models import Document, Folder, Version
from .naming import clean_document_name, now
from .quota import Budget
from .versions import Blobs, NewFile


class Index:
    """A workspace's live documents by import key and by (folder, name), for bulk imports (one query)."""

    def __init__(self) -> None:
        self.by_key: dict[str, Document] = {}
        self.by_name: dict[tuple[int | None, str], Document] = {}
        #: Storage key of each document's current version (``id(document)`` → key).
        self.current: dict[int, str] = {}

    @classmethod
    async def load(cls, session: AsyncSession, workspace: Workspace) -> Index:
        index = cls()
        rows = await session.execute(
            select(Document, Version.storage_key)
            .outerjoin(Version, (Version.document_id == Document.id) & (Version.number == Document.current_version))
            .where(Document.workspace_id == workspace.id, Document.trashed_at.is_(None))
        )
        for document, key in rows:
            index.add(document, key or "")
        return index

    def add(self, document: Document, key: str) -> None:
        if document.import_key:
            self.by_key[document.import_key] = document
        self.by_name[(document.folder_id, document.name.lower())] = document
        self.current[id(document)] = key

    def find(self, folder_id: int | None, name: str, import_key: str | None) -> Document | None:
        found = self.by_key.get(import_key) if import_key else None
        return found or self.by_name.get((folder_id, name.lower()))


@dataclass
class BulkItem:
    folder: Folder | None
    new: NewFile
    import_key: str | None = None
    #: Set by :func:`add_files`: ``created``, ``version``, ``unchanged`` or an error message.
    outcome: str = ""
    document: Document | None = None


async def add_files(
    session: AsyncSession, blobs: Blobs, workspace: Workspace, items: list[BulkItem], actor_id: int | None,
    budget: Budget, index: Index,
) -> None:  # fmt: skip
    """Keep many files at once (imports): the same rules as :func:`add_file` (a same-named or same-key
    document gets a new version, identical content adds nothing, the quota is checked), with a
    handful of queries for the whole list.  Sets each item's ``outcome``; refused items keep nothing."""
    plans: list[BulkItem] = []
    for item in items:
        name = clean_document_name(item.new.filename, item.new.content_type)
        folder_id = item.folder.id if item.folder else None
        existing = index.find(folder_id, name, item.import_key)
        if existing is not None and index.current.get(id(existing)) == item.new.staged.key:
            item.outcome, item.document = "unchanged", existing
            continue
        try:
            await budget.charge(session, item.new.staged.key, item.new.staged.size)
        except QuotaError as exc:
            item.outcome = str(exc)
            continue
        if existing is None:
            existing = Document(workspace_id=workspace.id, folder_id=folder_id, name=name, created_by=actor_id,
                                import_key=item.import_key)  # fmt: skip
            session.add(existing)
            item.outcome = "created"
        else:
            item.outcome = "version"
        item.document = existing
        index.add(existing, item.new.staged.key)
        plans.append(item)
    if not plans:
        return
    await session.flush()  # ids of the new documents, in one round trip
    versions = []
    for item in plans:
        document = item.document
        assert document is not None
        blobs.commit(item.new.staged)
        number = document.current_version + 1
        versions.append(
            Version(
                document_id=document.id, number=number, storage_key=item.new.staged.key, size=item.new.staged.size,
                content_type=item.new.content_type, filename=document.name, uploaded_by=actor_id, text=item.new.text,
            )
        )  # fmt: skip
        document.current_version = number
        document.size = item.new.staged.size
        document.content_type = item.new.content_type
        document.updated_at = now()
    session.add_all(versions)
    await session.flush()
    await enqueue_search(session, dict.fromkeys(item.document.id for item in plans if item.document is not None))
