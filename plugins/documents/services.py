"""Document rules: who may do what, folders, files and versions, trash, quota and shares.

Controllers, the CLI and the search provider call these; nothing here knows about HTTP.  Every
function that changes a document adds the search outbox row in the caller's transaction; files
are put into the storage before the rows that point at them and removed only after the rows that
pointed at them are gone (:func:`collect_garbage`, after the commit).

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

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from concelho.plugins.workspaces.models import Membership, Workspace
from concelho.plugins.workspaces.services import ROLE_ACTIONS, Access, log_activity
from concelho.suite.audit import record
from concelho.suite.content.media import safe_filename
from concelho.suite.i18n import N_
from concelho.suite.storage import LocalStorage, StagedFile
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import PERMISSIONS, Document, Folder, Share, Version

DOC_TYPE = "documents.document"
MAX_DEPTH = 32
MAX_NAME = 200


class DocumentError(ValueError):
    """Refused; the message is fit to show (an English msgid, translated where shown)."""


class QuotaError(DocumentError):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def human_size(n: int | None) -> str:
    """``512 B``, ``1.5 KB``, ``25.0 MB``…"""
    value = float(n or 0)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def doc_id(document_id: int) -> str:
    return f"{DOC_TYPE}:{document_id}"


def base_url(workspace: Workspace) -> str:
    return f"/intranet/espacos/{workspace.slug}/documentos/"


def document_url(workspace: Workspace, document: Document) -> str:
    return f"{base_url(workspace)}d/{document.id}/"


def folder_url(workspace: Workspace, folder: Folder | None) -> str:
    return base_url(workspace) if folder is None else f"{base_url(workspace)}pasta/{folder.id}/"


def clean_folder_name(name: str) -> str:
    """A folder name made harmless like a file name (slashes become dashes; dots are kept)."""
    name = (name or "").replace("/", "-").replace("\\", "-").strip()
    if not name.strip(". "):
        raise DocumentError(N_("Give the folder a name."))
    # ``safe_filename`` keeps what is before the last dot: the added dot keeps the whole name.
    return safe_filename(name + ".", "").strip()[:MAX_NAME]


def clean_document_name(name: str, content_type: str) -> str:
    """A harmless file name with the extension of the real (sniffed) type."""
    return safe_filename(name, content_type).strip()[:255]


# ------------------------------------------------------------------------------------------------
# Rights
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------
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


async def list_folder(
    session: AsyncSession, workspace: Workspace, folder: Folder | None
) -> tuple[list[Folder], list[Document]]:
    parent = Folder.parent_id == folder.id if folder else Folder.parent_id.is_(None)
    in_folder = Document.folder_id == folder.id if folder else Document.folder_id.is_(None)
    folders = (
        await session.execute(
            select(Folder)
            .where(Folder.workspace_id == workspace.id, parent, Folder.trashed_at.is_(None))
            .order_by(func.lower(Folder.name))
        )
    ).scalars()
    documents = (
        await session.execute(
            select(Document)
            .where(Document.workspace_id == workspace.id, in_folder, Document.trashed_at.is_(None))
            .order_by(func.lower(Document.name))
        )
    ).scalars()
    return list(folders), list(documents)


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


async def usage(session: AsyncSession, workspace_id: int) -> int:
    """Bytes the workspace uses: every distinct file of every version (trash included, until purged)."""
    distinct = (
        select(Version.storage_key, Version.size)
        .join(Document, Document.id == Version.document_id)
        .where(Document.workspace_id == workspace_id)
        .distinct()
        .subquery()
    )
    return int((await session.execute(select(func.coalesce(func.sum(distinct.c.size), 0)))).scalar_one())


async def _key_in_workspace(session: AsyncSession, workspace_id: int, key: str) -> bool:
    row = await session.execute(
        select(Version.id)
        .join(Document, Document.id == Version.document_id)
        .where(Document.workspace_id == workspace_id, Version.storage_key == key)
        .limit(1)
    )
    return row.first() is not None


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


# ------------------------------------------------------------------------------------------------
# Folders
# ------------------------------------------------------------------------------------------------
async def find_folder(session: AsyncSession, workspace: Workspace, parent: Folder | None, name: str) -> Folder | None:
    parent_clause = Folder.parent_id == parent.id if parent else Folder.parent_id.is_(None)
    return (
        (
            await session.execute(
                select(Folder).where(
                    Folder.workspace_id == workspace.id,
                    parent_clause,
                    func.lower(Folder.name) == name.lower(),
                    Folder.trashed_at.is_(None),
                )
            )
        )
        .scalars()
        .first()
    )


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
    await _enqueue(session, [d.id for d in docs])


# ------------------------------------------------------------------------------------------------
# Files and versions
# ------------------------------------------------------------------------------------------------
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


async def find_document(
    session: AsyncSession, workspace: Workspace, folder: Folder | None, name: str
) -> Document | None:
    in_folder = Document.folder_id == folder.id if folder else Document.folder_id.is_(None)
    return (
        (
            await session.execute(
                select(Document).where(
                    Document.workspace_id == workspace.id,
                    in_folder,
                    func.lower(Document.name) == name.lower(),
                    Document.trashed_at.is_(None),
                )
            )
        )
        .scalars()
        .first()
    )


class Budget:
    """What is left of a workspace's quota during one transaction (one usage query, then kept up to date)."""

    def __init__(self, workspace: Workspace, used: int, keys: set[str] | None = None) -> None:
        self.workspace = workspace
        self.used = used
        self.keys: set[str] = set(keys or ())
        #: With every key of the workspace loaded (bulk imports), no query is needed per file.
        self.complete = keys is not None

    @classmethod
    async def load(cls, session: AsyncSession, workspace: Workspace, *, all_keys: bool = False) -> Budget:
        keys = None
        if all_keys:
            rows = await session.execute(
                select(Version.storage_key)
                .join(Document, Document.id == Version.document_id)
                .where(Document.workspace_id == workspace.id)
                .distinct()
            )
            keys = {key for (key,) in rows}
        return cls(workspace, await usage(session, workspace.id), keys)

    async def charge(self, session: AsyncSession, key: str, size: int) -> None:
        """Count a new file; raises :class:`QuotaError` when it does not fit (the same content counts once)."""
        if key in self.keys:
            return
        if not self.complete and await _key_in_workspace(session, self.workspace.id, key):
            return
        if self.used + size > self.workspace.quota_bytes:
            raise QuotaError(N_("Not enough space left in this workspace (quota reached)."))
        self.used += size
        self.keys.add(key)


async def check_quota(session: AsyncSession, workspace: Workspace, key: str, size: int) -> None:
    await (await Budget.load(session, workspace)).charge(session, key, size)


async def remaining(session: AsyncSession, workspace: Workspace) -> int:
    return max(0, workspace.quota_bytes - await usage(session, workspace.id))


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
        await _enqueue(session, [existing.id])
        return Added(existing, version, "version")
    await budget.charge(session, new.staged.key, new.staged.size)
    document = Document(
        workspace_id=workspace.id, folder_id=folder.id if folder else None, name=name, created_by=actor_id,
        import_key=import_key,
    )  # fmt: skip
    session.add(document)
    await session.flush()
    version = await _new_version(session, blobs, document, new, actor_id)
    await _enqueue(session, [document.id])
    return Added(document, version, "created")


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
    await _enqueue(session, dict.fromkeys(item.document.id for item in plans if item.document is not None))


async def add_version(
    session: AsyncSession, blobs: Blobs, workspace: Workspace, document: Document, new: NewFile, actor_id: int | None
) -> Version:
    await check_quota(session, workspace, new.staged.key, new.staged.size)
    version = await _new_version(session, blobs, document, new, actor_id)
    await _enqueue(session, [document.id])
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
    await _enqueue(session, [document.id])
    return version


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
    await _enqueue(session, [document.id])


async def move_document(session: AsyncSession, workspace: Workspace, document: Document, target: Folder | None) -> None:
    if target is not None and target.trashed_at is not None:
        raise DocumentError(N_("No such folder."))
    existing = await find_document(session, workspace, target, document.name)
    if existing is not None and existing.id != document.id:
        raise DocumentError(N_("A document with this name already exists there."))
    document.folder_id = target.id if target else None
    await _enqueue(session, [document.id])


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
    await _enqueue(session, [copy.id])
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


# ------------------------------------------------------------------------------------------------
# Trash
# ------------------------------------------------------------------------------------------------
async def trash_document(session: AsyncSession, document: Document) -> None:
    if document.trashed_at is None:
        document.trashed_at = now()
        await _enqueue(session, [document.id])


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
    await _enqueue(session, [document.id])


async def trash_folder(session: AsyncSession, folder: Folder) -> None:
    """Trash the folder and everything in it not already trashed (with the same stamp)."""
    if folder.trashed_at is not None:
        return
    stamp = now()
    folders, docs = await descendants(session, folder)
    for item in [*folders, *docs]:
        if item.trashed_at is None:
            item.trashed_at = stamp
    await _enqueue(session, [d.id for d in docs])


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
    await _enqueue(session, restored)


async def trash(session: AsyncSession, workspace: Workspace) -> tuple[list[Folder], list[Document]]:
    """What the trash page lists: trashed things whose folder was not trashed with them."""
    folders = list(
        (
            await session.execute(
                select(Folder)
                .where(Folder.workspace_id == workspace.id, Folder.trashed_at.is_not(None))
                .order_by(Folder.trashed_at.desc())
            )
        ).scalars()
    )
    documents = list(
        (
            await session.execute(
                select(Document)
                .where(Document.workspace_id == workspace.id, Document.trashed_at.is_not(None))
                .order_by(Document.trashed_at.desc())
            )
        ).scalars()
    )
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
    await _enqueue(session, [document.id], "delete")
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
    await _enqueue(session, ids, "delete")
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


# ------------------------------------------------------------------------------------------------
# Shares
# ------------------------------------------------------------------------------------------------
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
        await _enqueue(session, [share.document_id])
    elif share.folder_id:
        folder = await session.get(Folder, share.folder_id)
        if folder is not None:
            _, docs = await descendants(session, folder)
            await _enqueue(session, [d.id for d in docs])


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


# ------------------------------------------------------------------------------------------------
# Search outbox, activity
# ------------------------------------------------------------------------------------------------
async def _enqueue(session: AsyncSession, document_ids: Iterable[int | None], action: str = "upsert") -> None:
    from concelho.search.outbox import enqueue

    await enqueue(session, [doc_id(i) for i in document_ids if i is not None], action)


async def activity(session: AsyncSession, workspace: Workspace, actor_id: int | None, verb: str, target: str,
                   url: str = "") -> None:  # fmt: skip
    await log_activity(session, workspace.id, actor_id, verb, target, url)
