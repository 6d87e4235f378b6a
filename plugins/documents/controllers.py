"""Document pages under ``/intranet/espacos/{slug}/documentos/`` and ``/intranet/documentos/partilhados``.

Every handler resolves the workspace and the caller's rights first: who may not read gets 404
(the same answer as for something that does not exist), who may read but not do the action 403.
The two upload handlers read the body themselves (``uploads.py``), after the rights check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.auth.guards import intranet_required
from concelho.suite.content.media import content_disposition
from concelho.suite.i18n import N_
from concelho.suite.models import User
from concelho.suite.render import render
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import File, Redirect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import services as svc
from .intake import check_file
from .models import Document, Folder, Share
from .uploads import Received, Refused, UploadError, receive

NOT_FOUND = N_("Not Found")
NO_RIGHT = N_("You do not have permission to do this")
PREVIEWABLE = {"application/pdf", "image/jpeg", "image/png", "image/gif", "image/webp"}
#: Upload routes read the body themselves: no framework limit, no CSRF middleware (checked in uploads.py).
UPLOAD_OPT = {"csrf_exempt": True}


def _plugin(request: Request) -> Any:
    return request.app.state.suite.registry.get("documents")


def _storage(request: Request) -> Any:
    return _plugin(request).storage_for(request.app.state.suite)


def _limits(request: Request) -> dict[str, int]:
    return _plugin(request).limits(request.app.state.suite.settings)


def _user(request: Request) -> Any:
    return request.scope["user"]


async def _emit(request: Request, name: str, workspace: Workspace, **payload: Any) -> None:
    state = request.app.state.suite
    await state.events.emit(name, workspace_id=workspace.id, workspace_slug=workspace.slug,
                            actor_id=_user(request).id, **payload)  # fmt: skip
    await state.events.emit("search.changed")  # wakes the indexer: the outbox has new rows


@dataclass
class Ctx:
    workspace: Workspace
    viewer: svc.Viewer


async def _context(db: AsyncSession, request: Request, slug: str) -> Ctx:
    workspace = (await db.execute(select(Workspace).where(Workspace.slug == slug))).scalar_one_or_none()
    if workspace is None:
        raise NotFoundException(NOT_FOUND)
    return Ctx(workspace, await svc.Viewer.load(db, _user(request)))


async def _document(db: AsyncSession, ctx: Ctx, document_id: int, *, trashed_ok: bool = False) -> tuple[
    Document, svc.Rights
]:  # fmt: skip
    try:
        document = await svc.get_document(db, ctx.workspace, document_id)
    except svc.DocumentError:
        raise NotFoundException(NOT_FOUND) from None
    rights = await svc.document_rights(db, ctx.viewer, ctx.workspace, document)
    if not rights.read:
        raise NotFoundException(NOT_FOUND)
    if document.trashed_at is not None and not (trashed_ok and rights.organise):
        raise NotFoundException(NOT_FOUND)
    return document, rights


async def _folder(db: AsyncSession, ctx: Ctx, folder_id: int | None, *, trashed_ok: bool = False) -> tuple[
    Folder | None, svc.Rights
]:  # fmt: skip
    try:
        folder = await svc.get_folder(db, ctx.workspace, folder_id)
    except svc.DocumentError:
        raise NotFoundException(NOT_FOUND) from None
    rights = await svc.folder_rights(db, ctx.viewer, ctx.workspace, folder)
    if not rights.read:
        raise NotFoundException(NOT_FOUND)
    if folder is not None and folder.trashed_at is not None and not (trashed_ok and rights.organise):
        raise NotFoundException(NOT_FOUND)
    return folder, rights


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDeniedException(NO_RIGHT)


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


async def _folder_choices(db: AsyncSession, workspace: Workspace) -> list[tuple[int, str]]:
    """Every live folder of the workspace with its path, for move and copy."""
    folders = list(
        (
            await db.execute(
                select(Folder).where(Folder.workspace_id == workspace.id, Folder.trashed_at.is_(None)).limit(5000)
            )
        ).scalars()
    )
    by_id = {f.id: f for f in folders}

    def path(folder: Folder) -> str:
        parts, seen, current = [], set(), folder
        while current is not None and current.id not in seen and len(parts) < svc.MAX_DEPTH:
            seen.add(current.id)
            parts.append(current.name)
            current = by_id.get(current.parent_id) if current.parent_id else None
        return " / ".join(reversed(parts))

    return sorted(((f.id, path(f)) for f in folders), key=lambda item: item[1].lower())


async def _names(db: AsyncSession, user_ids: set[int | None]) -> dict[int, str]:
    ids = [i for i in user_ids if i is not None]
    if not ids:
        return {}
    rows = await db.execute(select(User.id, User.name, User.username).where(User.id.in_(ids)))
    return {uid: name or username for uid, name, username in rows}


def when(value: Any) -> str:
    """A stored time in Lisbon's time zone, ``2026-03-01 14:05``."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo("Europe/Lisbon")).strftime("%Y-%m-%d %H:%M")


HELPERS = {"size": svc.human_size, "when": when}


def _files_message(refused: list[Refused]) -> list[dict[str, Any]]:
    return [{"filename": r.filename, "message": r.message, "variables": r.variables} for r in refused]


class DocumentsController(Controller):
    path = "/intranet/espacos/{slug:str}/documentos"
    guards = [intranet_required]

    # -- pages ------------------------------------------------------------------------------------
    async def _folder_page(
        self, request: Request, db: AsyncSession, ctx: Ctx, folder: Folder | None, rights: svc.Rights, *,
        status: int = 200, refused: list[Refused] | None = None, error: str | None = None,
        error_vars: dict[str, Any] | None = None, form: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        folders, documents = await svc.list_folder(db, ctx.workspace, folder)
        crumbs = list(reversed(await svc.ancestors(db, folder.id))) if folder else []
        if rights.via_share:  # only the folders the share opens, not the names above them
            crumbs = [f for f in crumbs if (await svc.folder_rights(db, ctx.viewer, ctx.workspace, f)).read]
        limits = _limits(request)
        used = await svc.usage(db, ctx.workspace.id)
        shares = await svc.shares_of(db, folder=folder) if folder is not None and rights.share else []
        context = {
            "workspace": ctx.workspace,
            "folder": folder,
            "crumbs": crumbs,
            "folders": folders,
            "documents": documents,
            "rights": rights,
            "used": used,
            "quota": ctx.workspace.quota_bytes,
            "max_size": svc.human_size(limits["max_file_bytes"]),
            "refused": _files_message(refused or []),
            "error": error,
            "error_vars": error_vars or {},
            "form": form or {},
            "uploaded": _int(request.query_params.get("enviados")),
            "base": svc.base_url(ctx.workspace),
            "here": svc.folder_url(ctx.workspace, folder),
            "choices": await _folder_choices(db, ctx.workspace) if folder is not None and rights.organise else [],
            "shares": await self._share_rows(db, shares),
            "workspaces": await self._workspace_choices(db, ctx.workspace) if rights.share and folder else [],
        }
        return await render(request, "documents/folder.html", {**HELPERS, **context}, status_code=status)

    @get("/", name="documents:index")
    async def index(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        ctx = await _context(db, request, slug)
        folder, rights = await _folder(db, ctx, None)
        return await self._folder_page(request, db, ctx, folder, rights)

    @get("/pasta/{folder_id:int}/", name="documents:folder")
    async def folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        ctx = await _context(db, request, slug)
        folder, rights = await _folder(db, ctx, folder_id)
        return await self._folder_page(request, db, ctx, folder, rights)

    async def _share_rows(self, db: AsyncSession, shares: list[Share]) -> list[dict[str, Any]]:
        names = await _names(db, {s.user_id for s in shares})
        rows = []
        for share in shares:
            if share.workspace_id:
                ws = await db.get(Workspace, share.workspace_id)
                label, kind = (ws.name if ws else "?"), "workspace"
            else:
                label, kind = names.get(share.user_id or 0, "?"), "user"
            rows.append({"id": share.id, "label": label, "kind": kind, "permission": share.permission})
        return rows

    async def _workspace_choices(self, db: AsyncSession, workspace: Workspace) -> list[Workspace]:
        rows = await db.execute(
            select(Workspace)
            .where(Workspace.id != workspace.id, Workspace.archived.is_(False))
            .order_by(Workspace.name)
        )
        return list(rows.scalars())

    async def _document_page(
        self, request: Request, db: AsyncSession, ctx: Ctx, document: Document, rights: svc.Rights, *,
        status: int = 200, error: str | None = None, error_vars: dict[str, Any] | None = None,
        refused: list[Refused] | None = None, form: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        history = await svc.versions(db, document)
        folder = await db.get(Folder, document.folder_id) if document.folder_id else None
        crumbs = list(reversed(await svc.ancestors(db, folder.id))) if folder else []
        if rights.via_share:
            crumbs = [f for f in crumbs if (await svc.folder_rights(db, ctx.viewer, ctx.workspace, f)).read]
        names = await _names(db, {v.uploaded_by for v in history} | {document.created_by})
        shares = await svc.shares_of(db, document=document) if rights.share else []
        context = {
            "workspace": ctx.workspace,
            "document": document,
            "folder": folder,
            "crumbs": crumbs,
            "versions": history,
            "names": names,
            "rights": rights,
            "previewable": document.content_type in PREVIEWABLE,
            "is_image": document.content_type.startswith("image/"),
            "error": error,
            "error_vars": error_vars or {},
            "refused": _files_message(refused or []),
            "form": form or {},
            "base": svc.base_url(ctx.workspace),
            "url": svc.document_url(ctx.workspace, document),
            "choices": await _folder_choices(db, ctx.workspace) if rights.organise else [],
            "shares": await self._share_rows(db, shares),
            "workspaces": await self._workspace_choices(db, ctx.workspace) if rights.share else [],
            "max_size": svc.human_size(_limits(request)["max_file_bytes"]),
        }
        return await render(request, "documents/document.html", {**HELPERS, **context}, status_code=status)

    @get("/d/{document_id:int}/", name="documents:document")
    async def document(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        ctx = await _context(db, request, slug)
        document, rights = await _document(db, ctx, document_id, trashed_ok=True)
        return await self._document_page(request, db, ctx, document, rights)

    @get("/lixo", name="documents:trash")
    async def trash(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        ctx = await _context(db, request, slug)
        _, rights = await _folder(db, ctx, None)
        folders, documents = await svc.trash(db, ctx.workspace)
        viewer = ctx.viewer
        documents = [
            d for d in documents if (await svc.document_rights(db, viewer, ctx.workspace, d)).organise
        ] if not rights.organise else documents  # fmt: skip
        return await render(
            request,
            "documents/trash.html",
            {**HELPERS, "workspace": ctx.workspace, "folders": folders if rights.organise else [],
             "documents": documents, "rights": rights, "base": svc.base_url(ctx.workspace)},
        )  # fmt: skip

    # -- files ------------------------------------------------------------------------------------
    async def _serve(self, request: Request, db: AsyncSession, slug: str, document_id: int, inline: bool) -> Response:
        ctx = await _context(db, request, slug)
        document, _ = await _document(db, ctx, document_id, trashed_ok=True)
        try:
            version = await svc.get_version(db, document, _int(request.query_params.get("v")))
        except svc.DocumentError:
            raise NotFoundException(NOT_FOUND) from None
        if inline and version.content_type not in PREVIEWABLE:
            raise NotFoundException(NOT_FOUND)
        storage = _storage(request)
        name = document.name if version.number == document.current_version else version.filename
        name = svc.clean_document_name(name, version.content_type)
        return File(
            path=storage.path_for(version.storage_key),
            media_type=version.content_type,
            filename=name,
            content_disposition_type="inline" if inline else "attachment",
            headers={
                "Content-Disposition": content_disposition(name, inline),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @get("/d/{document_id:int}/descarregar", name="documents:download")
    async def download(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        return await self._serve(request, db, slug, document_id, inline=False)

    @get("/d/{document_id:int}/ver", name="documents:preview")
    async def preview(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        return await self._serve(request, db, slug, document_id, inline=True)

    async def _receive(self, request: Request, db: AsyncSession, workspace: Workspace) -> Received:
        limits = _limits(request)
        quota_left = await svc.remaining(db, workspace)
        await db.commit()  # no connection is held while the body arrives
        return await receive(
            request, _storage(request), max_file_bytes=limits["max_file_bytes"],
            max_body_bytes=limits["max_request_bytes"], quota_left=quota_left,
        )  # fmt: skip

    @post("/enviar", name="documents:upload", opt=UPLOAD_OPT, request_max_body_size=None)
    async def upload(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        ctx = await _context(db, request, slug)
        folder, rights = await _folder(db, ctx, _int(request.query_params.get("pasta")))
        _require(rights.upload)
        try:
            received = await self._receive(request, db, ctx.workspace)
        except UploadError as exc:
            return await self._folder_page(request, db, ctx, folder, rights, status=exc.status, error=str(exc),
                                           error_vars=exc.variables)  # fmt: skip
        storage = _storage(request)
        refused = list(received.refused)
        blobs = svc.Blobs(storage)
        added: list[svc.Added] = []
        extract_max = _limits(request)["extract_max_bytes"]
        viewer = ctx.viewer
        budget = await svc.Budget.load(db, ctx.workspace)

        async def may_replace(document: Document) -> bool:
            return (await svc.document_rights(db, viewer, ctx.workspace, document)).edit

        try:
            if not received.files and not refused:
                return await self._folder_page(request, db, ctx, folder, rights, status=400,
                                               error=N_("Choose one or more files to upload."))  # fmt: skip
            for filename, staged in received.files:
                try:
                    new = await check_file(filename, staged, extract_max)
                    added.append(await svc.add_file(db, blobs, ctx.workspace, folder, new, viewer.user_id,
                                                    may_replace=may_replace, budget=budget))  # fmt: skip
                except svc.DocumentError as exc:
                    storage.discard(staged)
                    refused.append(Refused(filename, str(exc)))
            for item in added:
                if item.outcome != "unchanged":
                    await svc.activity(db, ctx.workspace, viewer.user_id, "uploaded", item.document.name,
                                       svc.document_url(ctx.workspace, item.document))  # fmt: skip
            await db.commit()
        except BaseException:
            await db.rollback()
            blobs.rollback()
            raise
        finally:
            received.discard(storage)
        for item in added:
            if item.outcome == "unchanged":
                continue
            await _emit(request, "documents.created" if item.outcome == "created" else "documents.version_added",
                        ctx.workspace, document_id=item.document.id, title=item.document.name,
                        url=svc.document_url(ctx.workspace, item.document), version=item.version.number)  # fmt: skip
        if refused:
            return await self._folder_page(request, db, ctx, folder, rights, status=400 if not added else 200,
                                           refused=refused)  # fmt: skip
        here = svc.folder_url(ctx.workspace, folder)
        return Redirect(f"{here}?enviados={len(added)}", status_code=303)

    @post("/d/{document_id:int}/versoes", name="documents:new_version", opt=UPLOAD_OPT, request_max_body_size=None)
    async def new_version(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        ctx = await _context(db, request, slug)
        document, rights = await _document(db, ctx, document_id)
        _require(rights.edit)
        try:
            received = await self._receive(request, db, ctx.workspace)
        except UploadError as exc:
            return await self._document_page(request, db, ctx, document, rights, status=exc.status, error=str(exc),
                                             error_vars=exc.variables)  # fmt: skip
        storage = _storage(request)
        blobs = svc.Blobs(storage)
        refused = list(received.refused)
        version = None
        try:
            if received.files:
                filename, staged = received.files[0]
                try:
                    new = await check_file(filename, staged, _limits(request)["extract_max_bytes"])
                    version = await svc.add_version(db, blobs, ctx.workspace, document, new, ctx.viewer.user_id)
                    await svc.activity(db, ctx.workspace, ctx.viewer.user_id, "uploaded", document.name,
                                       svc.document_url(ctx.workspace, document))  # fmt: skip
                    await db.commit()
                except svc.DocumentError as exc:
                    await db.rollback()
                    storage.discard(staged)
                    refused.append(Refused(filename, str(exc)))
        except BaseException:
            await db.rollback()
            blobs.rollback()
            raise
        finally:
            received.discard(storage)
        if version is None:
            ctx = await _context(db, request, slug)
            document, rights = await _document(db, ctx, document_id)
            return await self._document_page(
                request, db, ctx, document, rights, status=400, refused=refused,
                error=None if refused else N_("Choose one or more files to upload."),
            )  # fmt: skip
        await _emit(request, "documents.version_added", ctx.workspace, document_id=document.id, title=document.name,
                    url=svc.document_url(ctx.workspace, document), version=version.number)  # fmt: skip
        return Redirect(svc.document_url(ctx.workspace, document), status_code=303)

    # -- document actions -------------------------------------------------------------------------
    async def _doc_action(
        self, request: Request, db: AsyncSession, slug: str, document_id: int, need: str, action: Any,
        event: str | None, *, trashed_ok: bool = False, redirect: str | None = None,
    ) -> Response:  # fmt: skip
        """Run ``action(ctx, document, form)``; a :class:`DocumentError` re-renders the page with the message.

        The action may return another document (a copy: the redirect goes there) or a dict of extra
        event payload.
        """
        ctx = await _context(db, request, slug)
        document, rights = await _document(db, ctx, document_id, trashed_ok=trashed_ok)
        _require(getattr(rights, need))
        raw = await request.form()
        form = {k: str(v) for k, v in raw.items() if isinstance(v, str)}
        try:
            result = await action(ctx, document, form)
            await db.commit()
        except svc.DocumentError as exc:
            await db.rollback()
            ctx = await _context(db, request, slug)  # the rollback expired what was loaded
            document, rights = await _document(db, ctx, document_id, trashed_ok=True)
            return await self._document_page(request, db, ctx, document, rights, status=400, error=str(exc),
                                             form=form)  # fmt: skip
        target = result if isinstance(result, Document) else document
        extra = result if isinstance(result, dict) else {}
        if event:
            await _emit(request, event, ctx.workspace, document_id=target.id, title=target.name,
                        url=svc.document_url(ctx.workspace, target), **extra)  # fmt: skip
        return Redirect(redirect or svc.document_url(ctx.workspace, target), status_code=303)

    async def _target(self, db: AsyncSession, ctx: Ctx, form: dict[str, str]) -> Folder | None:
        """The folder chosen in a move or copy form, which the caller must be allowed to add to."""
        try:
            target = await svc.get_folder(db, ctx.workspace, _int(form.get("folder_id")))
        except svc.DocumentError:
            raise svc.DocumentError(N_("No such folder.")) from None
        if not (await svc.folder_rights(db, ctx.viewer, ctx.workspace, target)).upload:
            raise svc.DocumentError(NO_RIGHT)
        return target

    @post("/d/{document_id:int}/restaurar-versao", name="documents:restore_version")
    async def restore_version(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> None:
            await svc.restore_version(db, document, _int(form.get("version")) or 0, ctx.viewer.user_id)

        return await self._doc_action(request, db, slug, document_id, "edit", action, "documents.version_restored")

    @post("/d/{document_id:int}/mudar-nome", name="documents:rename")
    async def rename(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> None:
            await svc.rename_document(db, ctx.workspace, document, form.get("name", ""))

        return await self._doc_action(request, db, slug, document_id, "edit", action, "documents.renamed")

    @post("/d/{document_id:int}/mover", name="documents:move")
    async def move(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> None:
            await svc.move_document(db, ctx.workspace, document, await self._target(db, ctx, form))

        return await self._doc_action(request, db, slug, document_id, "organise", action, "documents.moved")

    @post("/d/{document_id:int}/copiar", name="documents:copy")
    async def copy(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> Document:
            target = await self._target(db, ctx, form)
            return await svc.copy_document(db, ctx.workspace, document, target, ctx.viewer.user_id)

        return await self._doc_action(request, db, slug, document_id, "organise", action, "documents.created")

    @post("/d/{document_id:int}/lixo", name="documents:trash_document")
    async def trash_document(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> None:
            await svc.trash_document(db, document)
            await svc.activity(db, ctx.workspace, ctx.viewer.user_id, "trashed", document.name)

        ctx = await _context(db, request, slug)
        document, _ = await _document(db, ctx, document_id)
        back = svc.folder_url(ctx.workspace, await db.get(Folder, document.folder_id) if document.folder_id else None)
        return await self._doc_action(request, db, slug, document_id, "organise", action, "documents.trashed",
                                      redirect=back)  # fmt: skip

    @post("/d/{document_id:int}/restaurar", name="documents:restore_document")
    async def restore_document(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> None:
            await svc.restore_document(db, ctx.workspace, document)

        return await self._doc_action(request, db, slug, document_id, "organise", action, "documents.restored",
                                      trashed_ok=True)  # fmt: skip

    @post("/d/{document_id:int}/eliminar", name="documents:purge_document")
    async def purge_document(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        ctx = await _context(db, request, slug)
        document, rights = await _document(db, ctx, document_id, trashed_ok=True)
        _require(rights.purge)
        name = document.name
        try:
            keys = await svc.purge_document(db, document)
            from concelho.suite.audit import record

            await record(db, "documents.purged", actor_id=ctx.viewer.user_id, target=svc.doc_id(document_id),
                         name=name)  # fmt: skip
            await db.commit()
        except svc.DocumentError as exc:
            await db.rollback()
            ctx = await _context(db, request, slug)
            document, rights = await _document(db, ctx, document_id, trashed_ok=True)
            return await self._document_page(request, db, ctx, document, rights, status=400, error=str(exc))
        await svc.collect_garbage(db, _storage(request), keys)
        await _emit(request, "documents.purged", ctx.workspace, document_id=document_id, title=name, url="")
        return Redirect(f"{svc.base_url(ctx.workspace)}lixo", status_code=303)

    # -- folders ----------------------------------------------------------------------------------
    @post("/nova-pasta", name="documents:create_folder")
    async def create_folder(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        ctx = await _context(db, request, slug)
        raw = await request.form()
        parent, rights = await _folder(db, ctx, _int(raw.get("parent_id")))
        _require(rights.upload)
        try:
            folder = await svc.create_folder(db, ctx.workspace, parent, str(raw.get("name", "")), ctx.viewer.user_id)
            await db.commit()
        except svc.DocumentError as exc:
            await db.rollback()
            ctx = await _context(db, request, slug)
            parent, rights = await _folder(db, ctx, _int(raw.get("parent_id")))
            return await self._folder_page(request, db, ctx, parent, rights, status=400, error=str(exc),
                                           form={"folder_name": str(raw.get("name", ""))})  # fmt: skip
        await _emit(request, "documents.folder_created", ctx.workspace, folder_id=folder.id, title=folder.name,
                    url=svc.folder_url(ctx.workspace, folder))  # fmt: skip
        return Redirect(svc.folder_url(ctx.workspace, folder), status_code=303)

    async def _folder_action(
        self, request: Request, db: AsyncSession, slug: str, folder_id: int, need: str, action: Any, event: str,
        *, trashed_ok: bool = False, back_to_parent: bool = False,
    ) -> Response:  # fmt: skip
        ctx = await _context(db, request, slug)
        folder, rights = await _folder(db, ctx, folder_id, trashed_ok=trashed_ok)
        assert folder is not None
        _require(getattr(rights, need))
        raw = await request.form()
        form = {k: str(v) for k, v in raw.items() if isinstance(v, str)}
        parent_id = folder.parent_id
        try:
            await action(ctx, folder, form)
            await db.commit()
        except svc.DocumentError as exc:
            await db.rollback()
            ctx = await _context(db, request, slug)  # the rollback expired what was loaded
            folder, rights = await _folder(db, ctx, folder_id, trashed_ok=True)
            return await self._folder_page(request, db, ctx, folder, rights, status=400, error=str(exc), form=form)
        await _emit(request, event, ctx.workspace, folder_id=folder.id, title=folder.name,
                    url=svc.folder_url(ctx.workspace, folder))  # fmt: skip
        if back_to_parent:
            parent = await db.get(Folder, parent_id) if parent_id else None
            return Redirect(svc.folder_url(ctx.workspace, parent), status_code=303)
        return Redirect(svc.folder_url(ctx.workspace, folder), status_code=303)

    @post("/pasta/{folder_id:int}/mudar-nome", name="documents:rename_folder")
    async def rename_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, folder: Folder, form: dict[str, str]) -> None:
            await svc.rename_folder(db, folder, ctx.workspace, form.get("name", ""))

        return await self._folder_action(request, db, slug, folder_id, "organise", action, "documents.folder_renamed")

    @post("/pasta/{folder_id:int}/mover", name="documents:move_folder")
    async def move_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, folder: Folder, form: dict[str, str]) -> None:
            await svc.move_folder(db, folder, ctx.workspace, await self._target(db, ctx, form))

        return await self._folder_action(request, db, slug, folder_id, "organise", action, "documents.folder_moved")

    @post("/pasta/{folder_id:int}/copiar", name="documents:copy_folder")
    async def copy_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, folder: Folder, form: dict[str, str]) -> None:
            await svc.copy_folder(db, ctx.workspace, folder, await self._target(db, ctx, form), ctx.viewer.user_id)

        return await self._folder_action(request, db, slug, folder_id, "organise", action, "documents.folder_copied")

    @post("/pasta/{folder_id:int}/lixo", name="documents:trash_folder")
    async def trash_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, folder: Folder, form: dict[str, str]) -> None:
            await svc.trash_folder(db, folder)
            await svc.activity(db, ctx.workspace, ctx.viewer.user_id, "trashed", folder.name)

        return await self._folder_action(request, db, slug, folder_id, "organise", action, "documents.folder_trashed",
                                         back_to_parent=True)  # fmt: skip

    @post("/pasta/{folder_id:int}/restaurar", name="documents:restore_folder")
    async def restore_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, folder: Folder, form: dict[str, str]) -> None:
            await svc.restore_folder(db, ctx.workspace, folder)

        return await self._folder_action(request, db, slug, folder_id, "organise", action,
                                         "documents.folder_restored", trashed_ok=True)  # fmt: skip

    @post("/pasta/{folder_id:int}/eliminar", name="documents:purge_folder")
    async def purge_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        ctx = await _context(db, request, slug)
        folder, rights = await _folder(db, ctx, folder_id, trashed_ok=True)
        assert folder is not None
        _require(rights.purge)
        name = folder.name
        try:
            keys = await svc.purge_folder(db, folder)
            from concelho.suite.audit import record

            await record(db, "documents.folder_purged", actor_id=ctx.viewer.user_id,
                         target=f"documents.folder:{folder_id}", name=name)  # fmt: skip
            await db.commit()
        except svc.DocumentError as exc:
            await db.rollback()
            ctx = await _context(db, request, slug)
            folder, rights = await _folder(db, ctx, folder_id, trashed_ok=True)
            return await self._folder_page(request, db, ctx, folder, rights, status=400, error=str(exc))
        await svc.collect_garbage(db, _storage(request), keys)
        await _emit(request, "documents.folder_purged", ctx.workspace, folder_id=folder_id, title=name, url="")
        return Redirect(f"{svc.base_url(ctx.workspace)}lixo", status_code=303)

    # -- shares -----------------------------------------------------------------------------------
    async def _share_form(self, db: AsyncSession, form: dict[str, str]) -> dict[str, Any]:
        permission = form.get("permission", "read")
        workspace_slug = form.get("workspace", "").strip()
        username = form.get("username", "").strip()
        if bool(workspace_slug) == bool(username):
            raise svc.DocumentError(N_("Choose a workspace or a person to share with."))
        if workspace_slug:
            workspace = (
                await db.execute(select(Workspace).where(Workspace.slug == workspace_slug))
            ).scalar_one_or_none()
            if workspace is None:
                raise svc.DocumentError(N_("No such workspace."))
            return {"workspace": workspace, "permission": permission}
        user = (
            await db.execute(
                select(User).where(func.lower(User.username) == username.lower(), User.is_active.is_(True))
            )
        ).scalar_one_or_none()
        if user is None:
            raise svc.DocumentError(N_("No employee with this username."))
        return {"user_id": user.id, "permission": permission}

    @post("/d/{document_id:int}/partilhar", name="documents:share_document")
    async def share_document(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], document_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, document: Document, form: dict[str, str]) -> dict[str, Any]:
            share = await svc.add_share(db, document=document, owner_workspace_id=ctx.workspace.id,
                                        actor_id=ctx.viewer.user_id, **await self._share_form(db, form))  # fmt: skip
            return {"shared_workspace_id": share.workspace_id, "user_ids": [share.user_id] if share.user_id else []}

        return await self._doc_action(request, db, slug, document_id, "share", action, "documents.shared")

    @post("/pasta/{folder_id:int}/partilhar", name="documents:share_folder")
    async def share_folder(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], folder_id: FromPath[int]
    ) -> Response:
        async def action(ctx: Ctx, folder: Folder, form: dict[str, str]) -> None:
            await svc.add_share(db, folder=folder, owner_workspace_id=ctx.workspace.id, actor_id=ctx.viewer.user_id,
                                **await self._share_form(db, form))  # fmt: skip

        return await self._folder_action(request, db, slug, folder_id, "share", action, "documents.shared")

    @post("/partilhas/{share_id:int}/remover", name="documents:unshare")
    async def unshare(
        self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str], share_id: FromPath[int]
    ) -> Response:
        ctx = await _context(db, request, slug)
        share = await db.get(Share, share_id)
        if share is None:
            raise NotFoundException(NOT_FOUND)
        if share.document_id:
            document, rights = await _document(db, ctx, share.document_id, trashed_ok=True)
            back = svc.document_url(ctx.workspace, document)
        else:
            folder, rights = await _folder(db, ctx, share.folder_id, trashed_ok=True)
            back = svc.folder_url(ctx.workspace, folder)
        _require(rights.share)
        await svc.remove_share(db, share, ctx.viewer.user_id)
        await db.commit()
        await request.app.state.suite.events.emit("search.changed")
        return Redirect(back, status_code=303)


class SharedWithMeController(Controller):
    path = "/intranet/documentos"
    guards = [intranet_required]

    @get("/partilhados", name="documents:shared")
    async def shared(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        viewer = await svc.Viewer.load(db, _user(request))
        rows = []
        for share, obj, workspace in await svc.shared_with(db, viewer):
            is_doc = isinstance(obj, Document)
            url = svc.document_url(workspace, obj) if is_doc else svc.folder_url(workspace, obj)
            rows.append({"name": obj.name, "url": url, "is_doc": is_doc, "workspace": workspace.name,
                         "permission": share.permission, "via_workspace": share.workspace_id is not None})  # fmt: skip
        return await render(request, "documents/shared.html", {**HELPERS, "rows": rows})


def sidebar_link(slug: str) -> str:
    return f"/intranet/espacos/{quote(slug)}/documentos/"
