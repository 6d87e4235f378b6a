"""Media library pages (intranet) and public serving of images and documents."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import File, Redirect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.guards import PUBLIC, permission_required
from ..render import render
from .media import MediaError, UploadInput, content_disposition, store_upload
from .models import Media

PAGE_SIZE = 40


class MediaLibraryController(Controller):
    path = "/intranet/media"
    guards = [permission_required("content.edit")]

    async def _page(
        self, request: Request, db: AsyncSession, kind: str = "", form: dict | None = None,
        error: str | None = None, status: int = 200, page: int = 1,
    ) -> Response:  # fmt: skip
        query = select(Media)
        if kind in ("image", "document"):
            query = query.where(Media.kind == kind)
        total = (await db.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        items = (
            (await db.execute(query.order_by(Media.id.desc()).limit(PAGE_SIZE).offset((max(1, page) - 1) * PAGE_SIZE)))
            .scalars()
            .all()
        )
        return await render(
            request,
            "core/media_library.html",
            {"items": items, "kind": kind, "form": form or {}, "error": error, "total": total, "page": page,
             "max_mb": request.app.state.suite.settings.upload_max_bytes // (1024 * 1024)},
            status_code=status,
        )  # fmt: skip

    @get("/", name="media:library")
    async def index(
        self, request: Request, db: NamedDependency[AsyncSession], kind: FromQuery[str] = "", page: FromQuery[int] = 1
    ) -> Response:
        return await self._page(request, db, kind, page=page)

    @post("/", name="media:upload")
    async def upload(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        data: Annotated[dict, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response:
        state = request.app.state.suite
        upload = data.get("file")
        form = {"title": str(data.get("title", "")), "alt_text": str(data.get("alt_text", ""))}
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self._page(request, db, form=form, error="Choose a file to upload.", status=400)
        user = request.scope["user"]
        try:
            media = await store_upload(
                db, state.storage, upload, UploadInput(form["title"], form["alt_text"]),
                state.settings.upload_max_bytes, user.id, user.username,
            )  # fmt: skip
        except MediaError as exc:
            await db.rollback()
            return await self._page(request, db, form=form, error=str(exc), status=400)
        finally:
            await upload.close()
        await db.commit()
        return Redirect(f"/intranet/media/?uploaded={media.id}", status_code=303)


class PublicMediaController(Controller):
    path = "/"
    opt = PUBLIC

    async def _public(self, db: AsyncSession, media_id: int) -> Media:
        media = await db.get(Media, media_id)
        if media is None or media.audience != "public":
            raise NotFoundException("No such file")
        return media

    @get("/media/{media_id:int}/{variant:str}", name="media:file")
    async def file(
        self, request: Request, db: NamedDependency[AsyncSession], media_id: FromPath[int], variant: FromPath[str]
    ) -> Response:
        media = await self._public(db, media_id)
        storage = request.app.state.suite.storage
        if variant == "original":
            key, content_type = media.sha256, media.content_type
        elif variant in (media.renditions or {}):
            key, content_type = media.renditions[variant]["key"], media.renditions[variant]["type"]
        else:
            raise NotFoundException("No such rendition")
        etag = f'"{key[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(content=b"", status_code=304, headers=headers)
        inline = media.kind == "image" or content_type == "application/pdf"
        return File(
            path=storage.path_for(key),
            media_type=content_type,
            filename=media.filename,
            content_disposition_type="inline" if inline else "attachment",
            headers={**headers, "Content-Disposition": content_disposition(media.filename, inline)},
        )

    @get("/documentos/{media_id:int}", name="media:document")
    async def document_page(
        self, request: Request, db: NamedDependency[AsyncSession], media_id: FromPath[int]
    ) -> Response:
        media = await self._public(db, media_id)
        return await render(request, "core/media_document.html", {"media": media})
