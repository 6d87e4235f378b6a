"""Intranet pages: corporate news (with read receipts and the publisher's report), notifications, home slots."""

from __future__ import annotations

from typing import Any

from concelho.suite.auth.guards import intranet_required, permission_required
from concelho.suite.content.models import ContentItem
from concelho.suite.render import base_context, render, request_language
from concelho.suite.state import request_db
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from .plugin import NEWS
from .services import (
    KIND_LABELS,
    KIND_SENTENCES,
    count_notifications,
    is_must_read,
    live_news,
    mark_all_read,
    mark_news_read,
    mark_read,
    news_page,
    notifications,
    read_ids,
    reading_report,
    safe_url,
    unread_count,
    unread_must_read,
)

PER_PAGE = 10
NOTES_PER_PAGE = 30


def _when(value: Any) -> str:
    from concelho.plugins.workspaces.services import format_when

    return format_when(value)


def _back(raw: Any, fallback: str) -> str:
    return safe_url(str(raw or "")) or fallback


class IntranetNewsController(Controller):
    path = "/intranet/noticias"
    guards = [intranet_required]

    @get("/", name="intranet:news")
    async def index(self, request: Request, db: NamedDependency[AsyncSession], page: FromQuery[int] = 1) -> Response:
        result = await news_page(db, request_language(request), page, PER_PAGE)
        must = [item.id for item in result.items if is_must_read(item)]
        done = await read_ids(db, request.scope["user"].id, must)
        return await render(
            request,
            "intranet/news_list.html",
            {"result": result, "ctype": NEWS, "unread": set(must) - done, "when": _when},
            block="results",
        )

    @get("/{slug:str}", name="intranet:news_detail")
    async def detail(self, request: Request, db: NamedDependency[AsyncSession], slug: FromPath[str]) -> Response:
        item = await live_news(db, slug)
        if item is None:
            raise NotFoundException()
        user = request.scope["user"]
        receipt = None
        if is_must_read(item):
            receipt = await mark_news_read(db, item.id, user.id)  # opening a must-read item counts as reading it
        return await render(
            request,
            "intranet/news_detail.html",
            {"item": item, "ctype": NEWS, "receipt": receipt, "when": _when},
        )

    @post("/{item_id:int}/lido", name="intranet:news_read")
    async def confirm(self, request: Request, db: NamedDependency[AsyncSession], item_id: FromPath[int]) -> Response:
        """ "I have read it" (from the home page list): records the receipt and goes back."""
        item = await db.get(ContentItem, item_id)
        if item is None or item.type != NEWS.name or await live_news(db, item.slug) is None:
            raise NotFoundException()
        await mark_news_read(db, item.id, request.scope["user"].id)
        form = await request.form()
        return Redirect(_back(form.get("next"), NEWS.url_for(item)), status_code=303)

    @get(
        "/{item_id:int}/leituras",
        name="intranet:news_receipts",
        guards=[permission_required("content.publish")],
    )
    async def receipts(self, request: Request, db: NamedDependency[AsyncSession], item_id: FromPath[int]) -> Response:
        item = await db.get(ContentItem, item_id)
        if item is None or item.type != NEWS.name:
            raise NotFoundException()
        report = await reading_report(db, item)
        return await render(request, "intranet/receipts.html", {"report": report, "item": item, "ctype": NEWS,
                                                                "when": _when})  # fmt: skip


class NotificationsController(Controller):
    path = "/intranet/notificacoes"
    guards = [intranet_required]

    @get("/", name="intranet:notifications")
    async def index(self, request: Request, db: NamedDependency[AsyncSession], page: FromQuery[int] = 1) -> Response:
        user = request.scope["user"]
        total = await count_notifications(db, user.id)
        pages = max(1, -(-total // NOTES_PER_PAGE))
        page = min(max(1, page), pages)
        notes = await notifications(db, user.id, limit=NOTES_PER_PAGE, offset=(page - 1) * NOTES_PER_PAGE)
        return await render(
            request,
            "intranet/notifications.html",
            {
                "notes": notes,
                "unread": await unread_count(db, user.id),
                "page": page,
                "pages": pages,
                "sentences": KIND_SENTENCES,
                "labels": KIND_LABELS,
                "when": _when,
            },
        )

    @post("/{note_id:int}", name="intranet:notification_open")
    async def open(self, request: Request, db: NamedDependency[AsyncSession], note_id: FromPath[int]) -> Response:
        """Mark one notification read and go where it points (or back to the list)."""
        note = await mark_read(db, request.scope["user"].id, note_id)
        if note is None:
            raise NotFoundException()
        await db.commit()
        form = await request.form()
        target = note.url if form.get("go") and note.url else _back(form.get("next"), "/intranet/notificacoes")
        return Redirect(target, status_code=303)

    @post("/lidas", name="intranet:notifications_read_all")
    async def read_all(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        await mark_all_read(db, request.scope["user"].id)
        await db.commit()
        return Redirect("/intranet/notificacoes", status_code=303)


# -- page slots -------------------------------------------------------------------------------------
async def notifications_badge(request: Request) -> Markup:
    """``intranet_header``: a link to the notifications with the unread count."""
    user = request.scope.get("user")
    if user is None or not user.has("intranet.access"):
        return Markup("")
    async with request_db(request) as db:
        count = await unread_count(db, user.id)
    tmpl = request.app.state.suite.templates.get_template("intranet/_badge.html")
    return Markup(await tmpl.render_async({**base_context(request), "count": count}))  # noqa: S704 - autoescaped


async def home_block(request: Request) -> Markup:
    """``intranet_home``: must-read news first, then news, notifications, workspaces, documents, activity, links."""
    from concelho.plugins.workspaces.services import (
        ROLE_LABELS,
        VERB_LABELS,
        my_workspaces,
        recent_activity,
        workspace_ids_for,
    )

    user = request.scope.get("user")
    if user is None:
        return Markup("")
    state = request.app.state.suite
    settings = state.plugin_settings("intranet")
    lang = request_language(request)
    async with request_db(request) as db:
        must = await unread_must_read(db, user.id, lang)
        news = await news_page(db, lang, 1, settings["home_news"])
        notes = await notifications(db, user.id, unread_only=True, limit=5)
        unread = await unread_count(db, user.id)
        spaces = await my_workspaces(db, user.id)
        ids = await workspace_ids_for(db, user.id)
        documents = await recent_activity(db, ids, limit=5, verbs=("uploaded",))
        activity = await recent_activity(db, ids, limit=10)
    tmpl = state.templates.get_template("intranet/_home.html")
    html = await tmpl.render_async(
        {
            **base_context(request),
            "must": must,
            "news": news.items,
            "must_ids": {i.id for i in must},
            "notes": notes,
            "unread": unread,
            "spaces": spaces,
            "documents": documents,
            "activity": activity,
            "links": settings["quick_links"],
            "ctype": NEWS,
            "sentences": KIND_SENTENCES,
            "verb_labels": VERB_LABELS,
            "role_labels": ROLE_LABELS,
            "when": _when,
        }
    )
    return Markup(html)  # noqa: S704 - autoescaped template output
