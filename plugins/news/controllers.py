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
from concelho.suite.db import Reader
from concelho.suite.render import base_context, render, request_language
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from markupsafe import Markup
from sqlalchemy import Boolean, Integer, bindparam, func, literal, select, union_all

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


_RELATED_COLUMNS = (
    ContentItem.id,
    ContentItem.title,
    ContentItem.slug,
    ContentItem.language,
    ContentItem.tags,
    ContentItem.published_at,
)
_CANDIDATES = (
    ContentItem.type == ARTICLE.name,
    ContentItem.language == bindparam("language"),
    ContentItem.id != bindparam("id"),
    LIVE_PUBLIC,
)
_SAME_CATEGORY = (
    select(*_RELATED_COLUMNS)
    .where(*_CANDIDATES, ContentItem.category == bindparam("category"), bindparam("category") != "")
    .order_by(ContentItem.published_at.desc())
    .limit(bindparam("limit", type_=Integer))
    .cte("same_category")
)
_RECENT = select(*_RELATED_COLUMNS).where(*_CANDIDATES).order_by(ContentItem.published_at.desc()).limit(60).subquery()
#: Same category first, then (only when those are too few and the item has tags) the 60 most recent
#: candidates for the shared-tags pick, in one round trip.
_RELATED = union_all(
    select(literal(0).label("step"), *_SAME_CATEGORY.c),
    select(literal(1).label("step"), *_RECENT.c).where(
        bindparam("with_tags", type_=Boolean),
        select(func.count()).select_from(_SAME_CATEGORY).scalar_subquery() < bindparam("limit", type_=Integer),
    ),
).order_by("step", _RECENT.c.published_at.desc())


async def related_items(reads: Reader, item: Any, limit: int = 3) -> list[Any]:
    """Same category first, then shared tags; only recent candidates, only the columns shown."""
    rows = await reads.all(
        _RELATED,
        live_params(language=item.language, id=item.id, category=item.category, limit=limit, with_tags=bool(item.tags)),
    )
    picked: list[Any] = [row for row in rows if row.step == 0]
    if len(picked) < limit and item.tags:
        tags = set(item.tags)
        seen = {row.id for row in picked}
        candidates = [r for r in rows if r.step == 1 and r.id not in seen and tags & set(r.tags or [])]
        candidates.sort(key=lambda r: len(tags & set(r.tags or [])), reverse=True)
        picked.extend(candidates[: limit - len(picked)])
    return picked


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
