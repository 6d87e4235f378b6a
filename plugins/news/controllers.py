"""Public news pages: list (pagination, category filter), article, RSS and Atom feeds; home block."""

from __future__ import annotations

from typing import Any

from concelho.suite.auth.guards import PUBLIC
from concelho.suite.cache import cached_slot
from concelho.suite.content.models import ContentItem
from concelho.suite.content.portal import (
    CARD_COLUMNS,
    LIVE_PUBLIC,
    Crumb,
    base_url,
    live_item,
    live_items,
    live_params,
    page_meta,
    portal_reads,
    render_item,
)
from concelho.suite.content.tags import shared_tags, wanted_tags
from concelho.suite.db import Reader
from concelho.suite.render import base_context, render, request_language
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from markupsafe import Markup
from sqlalchemy import Integer, bindparam, select

from .feeds import atom, rss
from .plugin import ARTICLE, CATEGORIES

PER_PAGE = 10


class NewsController(Controller):
    path = "/noticias"
    opt = PUBLIC

    @get("/", name="news:list")
    async def index(self, request: Request, page: FromQuery[int] = 1, categoria: FromQuery[str] = "") -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            category = categoria if categoria in CATEGORIES else None
            result = await live_items(
                portal_reads(request),
                ARTICLE.name,
                lang,
                page=page,
                per_page=PER_PAGE,
                category=category,
                columns=CARD_COLUMNS,
            )
            return await render(
                request,
                "news/list.html",
                {
                    "result": result,
                    "categories": CATEGORIES,
                    "category": category,
                    "ctype": ARTICLE,
                    "crumbs": [Crumb("Home", "/"), Crumb("News")],
                    "meta": page_meta(request, title="News", path="/noticias"),
                },
                block="results",
            )

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/{slug:str}", name="news:detail")
    async def detail(self, request: Request, slug: FromPath[str]) -> Response:
        async def produce() -> Response:
            reads = portal_reads(request)
            item = await live_item(reads, ARTICLE, slug)
            related = await related_items(reads, item)
            return await render_item(request, reads, ARTICLE, item, "news/detail.html", context={"related": related})

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/feed.rss", name="news:rss")
    async def rss_feed(self, request: Request, categoria: FromQuery[str] = "") -> Response:
        items, title, link, self_url, lang = await _feed_items(request, categoria, "rss")
        body = rss(title, link, self_url, title, lang, items)
        return Response(body, media_type="application/rss+xml; charset=utf-8")

    @get("/feed.atom", name="news:atom")
    async def atom_feed(self, request: Request, categoria: FromQuery[str] = "") -> Response:
        items, title, link, self_url, lang = await _feed_items(request, categoria, "atom")
        return Response(atom(title, link, self_url, lang, items), media_type="application/atom+xml; charset=utf-8")


async def _feed_items(request: Request, categoria: str, kind: str) -> tuple[list[tuple[Any, str]], str, str, str, str]:
    lang = request_language(request)
    category = categoria if categoria in CATEGORIES else None
    result = await live_items(portal_reads(request), ARTICLE.name, lang, per_page=30, category=category)
    root = base_url(request)
    site = request.app.state.suite.settings.site_name
    title = f"{site} — {'Notícias' if lang == 'pt' else 'News'}" + (f" ({category})" if category else "")
    query = f"?categoria={category}" if category else ""
    link = root + "/noticias" + query
    self_url = root + f"/noticias/feed.{kind}" + query
    return [(i, root + ARTICLE.url(i.slug, i.language)) for i in result.items], title, link, self_url, lang


#: Related articles are picked among the 60 most recent others in the item's language.
_RECENT = (
    select(
        ContentItem.id,
        ContentItem.title,
        ContentItem.slug,
        ContentItem.language,
        ContentItem.published_at,
        (ContentItem.category == bindparam("category")).label("same_category"),
        shared_tags(ContentItem.tags, bindparam("tags")).label("shared"),
    )
    .where(
        ContentItem.type == ARTICLE.name,
        ContentItem.language == bindparam("language"),
        ContentItem.id != bindparam("id"),
        LIVE_PUBLIC,
    )
    .order_by(ContentItem.published_at.desc())
    .limit(60)
    .subquery("recent")
)
#: Same category first, then by the number of tags shared with the item, newest first; only the
#: rows shown come back (the tags are compared in SQL).
_RELATED = (
    select(_RECENT.c.id, _RECENT.c.title, _RECENT.c.slug, _RECENT.c.language)
    .where(_RECENT.c.same_category | (_RECENT.c.shared > 0))
    .order_by(_RECENT.c.same_category.desc(), _RECENT.c.shared.desc(), _RECENT.c.published_at.desc())
    .limit(bindparam("limit", type_=Integer))
)


async def related_items(reads: Reader, item: Any, limit: int = 3) -> list[Any]:
    """Up to ``limit`` of the 60 most recent other articles in the item's language: those of its
    category first, then those sharing the most tags with it (newest first among equals)."""
    params = live_params(
        language=item.language,
        id=item.id,
        # No category matches nothing (an empty category is no common ground).
        category=item.category or None,
        tags=wanted_tags(item.tags or ()),
        limit=limit,
    )
    return list(await reads.all(_RELATED, params))


@cached_slot
async def latest_news_block(request: Request) -> Markup:
    """Home page slot: the latest three articles."""
    state = request.app.state.suite
    lang = request_language(request)
    result = await live_items(portal_reads(request), ARTICLE.name, lang, per_page=3)
    if not result.items:
        return Markup("")
    tmpl = state.templates.get_template("news/_home.html")
    html = await tmpl.render_async({**base_context(request), "items": result.items, "ctype": ARTICLE})
    return Markup(html)  # noqa: S704 - autoescaped template output
