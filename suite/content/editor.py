"""Editorial back office (intranet, HTMX-enhanced): list, create, edit with live preview, workflow, history."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.guards import permission_required
from ..models import Department
from ..render import render
from .markdown import render_markdown
from .models import STATUSES, ContentAttachment, ContentItem, Media
from .service import (
    TRANSITIONS,
    ContentError,
    ContentInput,
    delete_item,
    diff_revisions,
    restore,
    revisions,
    save,
    set_attachments,
    transition,
)
from .types import ContentType

LISBON = ZoneInfo("Europe/Lisbon")
PAGE_SIZE = 30


def _types(request: Request) -> dict[str, ContentType]:
    return request.app.state.suite.registry.content_types()


def _ctype(request: Request, name: str | None) -> ContentType:
    ctype = _types(request).get(name or "")
    if ctype is None:
        raise NotFoundException("Unknown content type")
    return ctype


def _dt(raw: str) -> tuple[datetime | None, bool]:
    raw = (raw or "").strip()
    if not raw:
        return None, True
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None, False
    return (value if value.tzinfo else value.replace(tzinfo=LISBON)), True


def _int(raw: Any) -> int | None:
    try:
        return int(raw) if str(raw).strip() else None
    except (TypeError, ValueError):
        return None


def form_to_input(form: FormMultiDict, ctype: ContentType) -> tuple[ContentInput, dict[str, str], dict[str, Any]]:
    """Form fields → ContentInput, plus errors for unparseable dates and the raw values to re-display."""
    raw: dict[str, Any] = {k: form.get(k, "") for k in form}
    errors: dict[str, str] = {}
    dates: dict[str, datetime | None] = {}
    for key in ("publish_at", "unpublish_at", "review_at"):
        value, ok = _dt(str(raw.get(key, "")))
        if not ok:
            errors[key] = "Use a date and time like 2026-12-31T18:00."
        dates[key] = value
    data: dict[str, Any] = {}
    for spec in ctype.fields:
        key = f"data.{spec.name}"
        if spec.kind == "multichoice":
            data[spec.name] = form.getall(key, [])
            raw[key] = data[spec.name]
        elif spec.kind == "bool":
            data[spec.name] = key in form
        else:
            data[spec.name] = form.get(key, "")
    item = ContentInput(
        title=str(raw.get("title", "")),
        slug=str(raw.get("slug", "")),
        summary=str(raw.get("summary", "")),
        body=str(raw.get("body", "")),
        language=str(raw.get("language", "pt")),
        audience=str(raw.get("audience", "public")),
        category=str(raw.get("category", "")),
        tags=[t.strip() for t in str(raw.get("tags", "")).split(",")],
        data=data,
        parent_id=_int(raw.get("parent_id")),
        sort_order=_int(raw.get("sort_order")) or 0,
        department_id=_int(raw.get("department_id")),
        hero_image_id=_int(raw.get("hero_image_id")),
        translation_of=_int(raw.get("translation_of")),
        **dates,
    )
    raw["attachments"] = [i for i in (_int(v) for v in form.getall("attachments", [])) if i]
    return item, errors, raw


def item_to_form(item: ContentItem, ctype: ContentType) -> dict[str, Any]:
    """An item's fields as the form shows them; type-specific fields follow their ``FieldSpec`` kind."""
    out: dict[str, Any] = {
        "title": item.title,
        "slug": item.slug,
        "summary": item.summary,
        "body": item.body,
        "language": item.language,
        "audience": item.audience,
        "category": item.category,
        "tags": ", ".join(item.tags or []),
        "parent_id": item.parent_id or "",
        "sort_order": item.sort_order,
        "department_id": item.department_id or "",
        "hero_image_id": item.hero_image_id or "",
    }
    for key in ("publish_at", "unpublish_at", "review_at"):
        value = getattr(item, key)
        out[key] = value.astimezone(LISBON).strftime("%Y-%m-%dT%H:%M") if value else ""
    for name, value in (item.data or {}).items():
        spec = ctype.field(name)
        kind = spec.kind if spec is not None else "text"
        if kind == "datetime" and isinstance(value, str) and value:
            value = datetime.fromisoformat(value).astimezone(LISBON).strftime("%Y-%m-%dT%H:%M")
        elif kind == "lines" and isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        out[f"data.{name}"] = value
    return out


class EditorController(Controller):
    path = "/intranet/content"
    guards = [permission_required("content.edit")]

    async def _form_page(
        self,
        request: Request,
        db: AsyncSession,
        ctype: ContentType,
        form: dict[str, Any],
        errors: dict[str, str],
        item: ContentItem | None = None,
        status: int = 200,
        preview: str | None = None,
    ) -> Response:
        departments = (await db.execute(select(Department).order_by(Department.name))).scalars().all()
        parents: list[ContentItem] = []
        if ctype.hierarchical:
            parents = list(
                (
                    await db.execute(
                        select(ContentItem)
                        .where(ContentItem.type == ctype.name, ContentItem.id != (item.id if item else -1))
                        .order_by(ContentItem.title)
                    )
                ).scalars()
            )
        media = (await db.execute(select(Media).order_by(Media.title).limit(500))).scalars().all()
        if item is not None and "attachments" not in form:
            form["attachments"] = [
                row[0]
                for row in await db.execute(
                    select(ContentAttachment.media_id)
                    .where(ContentAttachment.content_id == item.id)
                    .order_by(ContentAttachment.sort_order)
                )
            ]
        return await render(
            request,
            "core/content_form.html",
            {
                "images": [m for m in media if m.kind == "image"],
                "documents": [m for m in media if m.kind == "document"],
                "ctype": ctype,
                "form": form,
                "errors": errors,
                "item": item,
                "departments": departments,
                "parents": parents,
                "transitions": _allowed_actions(request, item),
                "preview": Markup(preview) if preview is not None else None,  # noqa: S704 - sanitised
            },
            status_code=status,
        )

    @get("/", name="content:list")
    async def index(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        type: FromQuery[str] = "",
        status: FromQuery[str] = "",
        language: FromQuery[str] = "",
        department: FromQuery[int | None] = None,
        q: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Response:
        query = select(ContentItem).where(ContentItem.audience != "workspace")
        if type:
            query = query.where(ContentItem.type == type)
        if status in STATUSES:
            query = query.where(ContentItem.status == status)
        if language in ("pt", "en"):
            query = query.where(ContentItem.language == language)
        if department:
            query = query.where(ContentItem.department_id == department)
        if q.strip():
            query = query.where(func.lower(ContentItem.title).contains(q.strip().lower()))
        total = (await db.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        page = max(1, page)
        items = (
            (
                await db.execute(
                    query.order_by(ContentItem.updated_at.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
                )
            )
            .scalars()
            .all()
        )
        departments = (await db.execute(select(Department).order_by(Department.name))).scalars().all()
        return await render(
            request,
            "core/content_list.html",
            {
                "items": items,
                "types": _types(request),
                "departments": departments,
                "filters": {
                    "type": type,
                    "status": status,
                    "language": language,
                    "department": department,
                    "q": q,
                },
                "statuses": STATUSES,
                "page": page,
                "pages": max(1, -(-total // PAGE_SIZE)),
                "total": total,
            },
            block="results",
        )

    @get("/new", name="content:new")
    async def new(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        type: FromQuery[str],
        translation_of: FromQuery[int | None] = None,
    ) -> Response:
        ctype = _ctype(request, type)
        form: dict[str, Any] = {"language": "pt", "audience": ctype.extra.get("default_audience", "public")}
        if translation_of:
            original = await db.get(ContentItem, translation_of)
            if original is not None and original.type == ctype.name:
                form = {**item_to_form(original, ctype), "slug": "", "translation_of": original.id}
                form["language"] = "en" if original.language == "pt" else "pt"
        return await self._form_page(request, db, ctype, form, {})

    @post("/new", name="content:create")
    async def create(self, request: Request, db: NamedDependency[AsyncSession], type: FromQuery[str]) -> Response:
        ctype = _ctype(request, type)
        form = await request.form()
        data, errors, raw = form_to_input(form, ctype)
        if "preview" in form:
            return await self._form_page(request, db, ctype, raw, errors, preview=render_markdown(data.body))
        if errors:
            return await self._form_page(request, db, ctype, raw, errors, status=400)
        user = request.scope["user"]
        try:
            item = await save(db, ctype, data, actor_id=user.id, actor=user.username, status="draft", note="created")
            await set_attachments(db, item, raw["attachments"])
        except ContentError as exc:
            await db.rollback()
            return await self._form_page(request, db, ctype, raw, exc.errors, status=400)
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(f"/intranet/content/{item.id}?saved=1", status_code=303)

    async def _item(self, db: AsyncSession, item_id: int) -> ContentItem:
        item = await db.get(ContentItem, item_id)
        if item is None or item.audience == "workspace":
            raise NotFoundException("No such content item")
        return item

    @get("/{item_id:int}", name="content:edit")
    async def edit(self, request: Request, db: NamedDependency[AsyncSession], item_id: FromPath[int]) -> Response:
        item = await self._item(db, item_id)
        return await self._form_page(
            request, db, _ctype(request, item.type), item_to_form(item, _ctype(request, item.type)), {}, item
        )

    @post("/{item_id:int}", name="content:update")
    async def update(self, request: Request, db: NamedDependency[AsyncSession], item_id: FromPath[int]) -> Response:
        item = await self._item(db, item_id)
        ctype = _ctype(request, item.type)
        form = await request.form()
        data, errors, raw = form_to_input(form, ctype)
        if "preview" in form:
            return await self._form_page(request, db, ctype, raw, errors, item, preview=render_markdown(data.body))
        if errors:
            return await self._form_page(request, db, ctype, raw, errors, item, status=400)
        user = request.scope["user"]
        try:
            await save(db, ctype, data, actor_id=user.id, actor=user.username, item=item, note="edited")
            await set_attachments(db, item, raw["attachments"])
        except ContentError as exc:
            await db.rollback()
            item = await self._item(db, item_id)
            return await self._form_page(request, db, ctype, raw, exc.errors, item, status=400)
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(f"/intranet/content/{item.id}?saved=1", status_code=303)

    @post("/preview", name="content:preview")
    async def preview(self, request: Request) -> Response:
        """HTMX live preview of the body (sanitised Markdown)."""
        form = await request.form()
        html = render_markdown(str(form.get("body", "")))
        return Response(html, status_code=200, media_type="text/html", headers={"Vary": "HX-Request"})

    @post("/{item_id:int}/action", name="content:action")
    async def action(self, request: Request, db: NamedDependency[AsyncSession], item_id: FromPath[int]) -> Response:
        item = await self._item(db, item_id)
        form = await request.form()
        name = str(form.get("action", ""))
        _check_action(request, name)
        user = request.scope["user"]
        try:
            await transition(db, item, name, actor_id=user.id, actor=user.username)
        except ContentError as exc:
            await db.rollback()
            item = await self._item(db, item_id)
            return await self._form_page(
                request,
                db,
                _ctype(request, item.type),
                item_to_form(item, _ctype(request, item.type)),
                exc.errors,
                item,
                status=409,
            )
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(f"/intranet/content/{item.id}", status_code=303)

    @post("/{item_id:int}/delete", name="content:delete")
    async def delete(self, request: Request, db: NamedDependency[AsyncSession], item_id: FromPath[int]) -> Response:
        item = await self._item(db, item_id)
        user = request.scope["user"]
        if not user.has("content.publish"):
            raise PermissionDeniedException("You do not have permission to do this")
        type_name = item.type
        await delete_item(db, item, actor_id=user.id, actor=user.username)
        await db.commit()
        await request.app.state.suite.events.emit("content.deleted", item_id=item_id, type=type_name)
        return Redirect("/intranet/content/?deleted=1", status_code=303)

    @post("/bulk", name="content:bulk")
    async def bulk(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        form = await request.form()
        name = str(form.get("action", ""))
        _check_action(request, name)
        ids = [i for i in (_int(v) for v in form.getall("ids", [])) if i]
        user = request.scope["user"]
        done, skipped = [], []
        for item_id in ids:
            item = await db.get(ContentItem, item_id)
            if item is None or item.audience == "workspace":
                continue
            try:
                await transition(db, item, name, actor_id=user.id, actor=user.username)
                done.append(item.id)
            except ContentError:
                skipped.append(item.id)
        await db.commit()
        for item_id in done:
            await request.app.state.suite.events.emit("content.saved", item_id=item_id, type="")
        return Redirect(f"/intranet/content/?done={len(done)}&skipped={len(skipped)}", status_code=303)

    @get("/{item_id:int}/history", name="content:history")
    async def history(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        item_id: FromPath[int],
        a: FromQuery[int | None] = None,
        b: FromQuery[int | None] = None,
    ) -> Response:
        item = await self._item(db, item_id)
        revs = await revisions(db, item.id)
        by_number = {r.number: r for r in revs}
        diff = None
        if a and b and a in by_number and b in by_number:
            diff = diff_revisions(by_number[a].snapshot, by_number[b].snapshot)
        return await render(
            request,
            "core/content_history.html",
            {"item": item, "revisions": revs, "diff": diff, "a": a, "b": b},
        )

    @post("/{item_id:int}/restore/{number:int}", name="content:restore")
    async def restore_revision(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        item_id: FromPath[int],
        number: FromPath[int],
    ) -> Response:
        item = await self._item(db, item_id)
        user = request.scope["user"]
        try:
            await restore(db, _ctype(request, item.type), item, number, actor_id=user.id, actor=user.username)
        except ContentError as exc:
            await db.rollback()
            raise NotFoundException(str(exc)) from None
        await db.commit()
        await request.app.state.suite.events.emit("content.saved", item_id=item.id, type=item.type)
        return Redirect(f"/intranet/content/{item.id}?restored={number}", status_code=303)


def _check_action(request: Request, name: str) -> None:
    if name not in TRANSITIONS:
        raise NotFoundException("Unknown action")
    needed = TRANSITIONS[name][2]
    if not request.scope["user"].has(needed):
        raise PermissionDeniedException("You do not have permission to do this")


def _allowed_actions(request: Request, item: ContentItem | None) -> list[str]:
    if item is None:
        return []
    user = request.scope["user"]
    return [name for name, (allowed, _, perm) in TRANSITIONS.items() if item.status in allowed and user.has(perm)]
