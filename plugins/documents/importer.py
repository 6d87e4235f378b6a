"""Bulk imports: a folder tree from disk, and the workspace documents of a corpus file (JSON lines).

Both go through the same services as the web (type sniffing, zip bomb checks, limits, quota, text
extraction, search outbox) and are idempotent: every document remembers where it came from
(``import_key``), so a second run finds it and adds nothing when the content is the same (a changed
file becomes a new version).  Files that fail a check are skipped and listed with the reason; they
leave nothing in the storage.  Work is committed in batches.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concelho.plugins.workspaces.models import Workspace
from concelho.plugins.workspaces.services import WorkspaceError, create_workspace, get_workspace
from concelho.suite.storage import LocalStorage, StagedFile, StorageLimitError
from sqlalchemy.ext.asyncio import AsyncSession

from . import services as svc
from .intake import check_file_sync

BATCH = 200
CHUNK = 1 << 20
#: The workspaces of the test corpus (``../shared/corpus``), created private when missing.
CORPUS_WORKSPACES = {
    "urbanismo": "Urbanismo",
    "recursos-humanos": "Recursos Humanos",
    "informatica": "Informática",
    "comunicacao": "Comunicação",
    "protecao-civil": "Proteção Civil",
}

#: Called with how many more files were handled.
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    folders: int = 0
    workspaces: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "folders_created": self.folders,
            "workspaces_created": self.workspaces,
            "skipped": self.skipped,
        }

    def count(self, outcome: str) -> None:
        if outcome == "created":
            self.created += 1
        elif outcome == "version":
            self.updated += 1
        else:
            self.unchanged += 1


def _message(exc: Exception, **variables: Any) -> str:
    text = str(exc)
    try:
        return text % variables if variables else text
    except (KeyError, ValueError, TypeError):
        return text


def _key(prefix: str, value: str) -> str:
    key = f"{prefix}:{value}"
    return key if len(key) <= 300 else f"{prefix}#{hashlib.sha256(value.encode()).hexdigest()}"


async def _commit(session: AsyncSession, blobs: svc.Blobs) -> None:
    """Commit a batch; when the commit fails, the files it had put into the storage are removed."""
    try:
        await session.commit()
    except BaseException:
        await session.rollback()
        blobs.rollback()
        raise


def _stage_path(storage: LocalStorage, path: Path, max_bytes: int) -> StagedFile:
    staged = storage.stage(max_bytes)
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                staged.write(chunk)
        staged.finish()
    except BaseException:
        storage.discard(staged)
        raise
    return staged


def _stage_bytes(storage: LocalStorage, data: bytes) -> StagedFile:
    staged = storage.stage()
    try:
        staged.write(data)
        staged.finish()
    except BaseException:
        storage.discard(staged)
        raise
    return staged


Prepared = tuple[str, "svc.NewFile | None", str]


def _prepare(
    storage: LocalStorage, root: Path, paths: list[Path], limits: dict[str, int], known: dict[str, str]
) -> list[Prepared]:
    """In a worker thread: stage, sniff and extract each file; ``(relative path, file or None, reason)``.

    A file whose content is that of the document imported from the same path before (``known``: import
    key → current storage key) is not sniffed or read again: :func:`svc.add_files` will find it unchanged.
    """
    out: list[Prepared] = []
    max_file = limits["max_file_bytes"]
    for path in paths:
        rel = path.relative_to(root).as_posix()
        try:
            staged = _stage_path(storage, path, max_file)
        except StorageLimitError:
            out.append((rel, None, f"larger than {svc.human_size(max_file)}"))
            continue
        except OSError as exc:
            out.append((rel, None, f"cannot be read ({exc.strerror or exc})"))
            continue
        if known.get(_key("path", rel)) == staged.key:
            out.append((rel, svc.NewFile(filename=path.name, staged=staged, content_type=""), ""))
            continue
        try:
            out.append((rel, check_file_sync(path.name, staged, limits["extract_max_bytes"]), ""))
        except svc.DocumentError as exc:
            storage.discard(staged)
            out.append((rel, None, _message(exc)))
        except BaseException:
            storage.discard(staged)
            raise
    return out


def list_files(root: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """Regular files under ``root`` (sorted, symbolic links not followed) and what was left out."""
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                dirnames.remove(name)
                skipped.append({"path": (base / name).relative_to(root).as_posix(), "reason": "symbolic link"})
        dirnames.sort()
        for name in sorted(filenames):
            path = base / name
            if path.is_symlink() or not path.is_file():
                skipped.append({"path": path.relative_to(root).as_posix(), "reason": "not a regular file"})
                continue
            files.append(path)
    return files, skipped


async def import_directory(
    session: AsyncSession,
    storage: LocalStorage,
    workspace: Workspace,
    root: Path,
    limits: dict[str, int],
    actor_id: int | None = None,
    progress: Progress | None = None,
    files: list[Path] | None = None,
) -> ImportReport:
    """Import the tree under ``root`` into ``workspace``, keeping its folders; one commit per batch."""
    root = root.resolve()
    report = ImportReport()
    if files is None:
        files, report.skipped = list_files(root)
    folders: dict[Path, svc.Folder | None] = {Path("."): None}
    budget = await svc.Budget.load(session, workspace, all_keys=True)
    index = await svc.Index.load(session, workspace)
    known = {key: index.current.get(id(doc), "") for key, doc in index.by_key.items()}
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        prepared = await asyncio.to_thread(_prepare, storage, root, chunk, limits, known)
        blobs = svc.Blobs(storage)
        try:
            items = []
            for rel, new, reason in prepared:
                if new is None:
                    report.skipped.append({"path": rel, "reason": reason})
                    continue
                try:
                    folder = await _folder_for(session, workspace, Path(rel).parent, folders, actor_id, report)
                except svc.DocumentError as exc:
                    report.skipped.append({"path": rel, "reason": _message(exc)})
                    continue
                items.append(svc.BulkItem(folder, new, _key("path", rel)))
            await svc.add_files(session, blobs, workspace, items, actor_id, budget, index)
            await _commit(session, blobs)
        except BaseException:
            await session.rollback()
            blobs.rollback()
            raise
        finally:
            for _, new, _ in prepared:
                if new is not None:
                    storage.discard(new.staged)
        _tally(report, items, lambda item: item.import_key.partition(":")[2] if item.import_key else "")
        if progress:
            progress(len(chunk))
    return report


def _tally(report: ImportReport, items: list[svc.BulkItem], label: Callable[[svc.BulkItem], str]) -> None:
    for item in items:
        if item.outcome in ("created", "version", "unchanged"):
            report.count(item.outcome)
        else:
            report.skipped.append({"path": label(item), "reason": _message(ValueError(item.outcome))})


async def _folder_for(
    session: AsyncSession, workspace: Workspace, rel: Path, cache: dict[Path, svc.Folder | None],
    actor_id: int | None, report: ImportReport,
) -> svc.Folder | None:  # fmt: skip
    if rel in cache:
        return cache[rel]
    parent = await _folder_for(session, workspace, rel.parent, cache, actor_id, report)
    existing = await svc.find_folder(session, workspace, parent, svc.clean_folder_name(rel.name))
    folder = existing or await svc.create_folder(session, workspace, parent, rel.name, actor_id, exist_ok=True)
    if existing is None:
        report.folders += 1
    cache[rel] = folder
    return folder


def read_corpus(path: Path) -> list[dict[str, Any]]:
    """The workspace documents of a corpus file: rows with ``audience: workspace`` and a ``workspace``."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise svc.DocumentError(f"line {number}: not JSON ({exc.msg})") from None
            if row.get("audience") == "workspace" and row.get("workspace"):
                rows.append(row)
    return rows


def corpus_text(row: dict[str, Any]) -> str:
    parts = [row.get("title") or "", row.get("summary") or "", row.get("body") or ""]
    return "\n\n".join(p.strip() for p in parts if p and p.strip()) + "\n"


async def import_corpus(
    session: AsyncSession,
    storage: LocalStorage,
    rows: list[dict[str, Any]],
    limits: dict[str, int],
    actor_id: int | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Each row becomes a text document (title, summary and body) in its workspace, created private if missing."""
    report = ImportReport()
    spaces: dict[str, tuple[Workspace, svc.Budget, svc.Index]] = {}
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        blobs = svc.Blobs(storage)
        by_space: dict[str, list[svc.BulkItem]] = {}
        labels: dict[int, str] = {}
        try:
            for row in chunk:
                slug = str(row["workspace"])
                if slug not in spaces:
                    workspace = await _corpus_workspace(session, slug, report)
                    spaces[slug] = (workspace, await svc.Budget.load(session, workspace, all_keys=True),
                                    await svc.Index.load(session, workspace))  # fmt: skip
                label = f"{slug}/{row.get('filename') or row.get('id')}"
                text = corpus_text(row)
                data = text.encode("utf-8")
                if len(data) > limits["max_file_bytes"]:
                    report.skipped.append({"path": label, "reason": "too large"})
                    continue
                filename = str(row.get("filename") or row.get("slug") or row["id"])
                staged = _stage_bytes(storage, data)
                new = svc.NewFile(filename=filename, staged=staged, content_type="text/plain", text=text.strip())
                item = svc.BulkItem(None, new, _key("corpus", str(row["id"])))
                labels[id(item)] = label
                by_space.setdefault(slug, []).append(item)
            for slug, items in by_space.items():
                workspace, budget, index = spaces[slug]
                await svc.add_files(session, blobs, workspace, items, actor_id, budget, index)
            await _commit(session, blobs)
        except BaseException:
            await session.rollback()
            blobs.rollback()
            raise
        finally:
            for items in by_space.values():
                for item in items:
                    storage.discard(item.new.staged)
        for items in by_space.values():
            _tally(report, items, lambda item, labels=labels: labels[id(item)])
        if progress:
            progress(len(chunk))
    return report


async def _corpus_workspace(session: AsyncSession, slug: str, report: ImportReport) -> Workspace:
    try:
        return await get_workspace(session, slug)
    except WorkspaceError:
        pass
    name = CORPUS_WORKSPACES.get(slug, slug)
    workspace = await create_workspace(session, name=name, owner=None, visibility="private", actor="import")
    if workspace.slug != slug:
        raise svc.DocumentError(f"cannot create a workspace with the address {slug!r}")
    report.workspaces.append(slug)
    return workspace
