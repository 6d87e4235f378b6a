"""What portal plugins share: finding live items, SEO metadata, breadcrumbs, JSON-LD, rendering.

Plugins call these instead of querying the content tables themselves.  Anonymous pages read through
:func:`portal_reads` (the app's read-only runner, ``database.reads``: Core statements, no ORM session
per request) and get rows of ``core_content``/``core_media`` with the models' attribute names; the
helpers also accept an ``AsyncSession`` (staff pages, jobs), whose reads see its own uncommitted changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import NotFoundException
from markupsafe import Markup
from sqlalchemy import Row, Select, and_, bindparam, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Reader, ScopedReads, as_reader
from ..render import render, request_language
from ..request_scope import request_path
from ..templating import iso_datetime
from .markdown import plain_text
from .models import ContentAttachment, ContentItem, Media
from .service import published_clause
from .types import ContentType


@dataclass
class Crumb:
    label: str
    url: str | None = None


#: A content item as the portal reads it: a row of ``core_content`` (same attribute names as
#: :class:`ContentItem`, read-only), or an ORM instance where a caller passes its own.
Item = Row[Any] | ContentItem
#: Where portal reads run: a request's :func:`portal_reads`, the app's ``database.reads``, or a session.
Source = Reader | AsyncSession


@dataclass
class PageResult:
    items: list[Any]
    page: int
    pages: int
    total: int


def base_url(request: Request) -> str:
    return request.app.state.suite.settings.base_url.rstrip("/")


_READS_KEY = "suite.reads"


def portal_reads(request: Request) -> Reader:
    """The reads of this request: the app's read-only runner (no ORM session) with a per-request memo.

    Pages, their slots and helpers called for the same request share it, so what one loaded (an
    item's translations, its media) is not read again.
    """
    state = request.scope.setdefault("state", {})
    reads = state.get(_READS_KEY)
    if reads is None:
        reads = state[_READS_KEY] = ScopedReads(request.app.state.suite.database.reads)
    return reads


# Statements of the hot portal reads are built once, with bound parameters: building a select and
# computing its cache key cost more than running it.  ``now`` is always ``live_params()["now"]``.
_NOW = bindparam("now", type_=ContentItem.__table__.c.publish_at.type)
#: SQL condition: a public item visible on the portal at ``:now``.
LIVE_PUBLIC = and_(ContentItem.audience == "public", published_clause(_NOW))
_TYPE = bindparam("type", type_=ContentItem.__table__.c.type.type)
_SLUG = bindparam("slug", type_=ContentItem.__table__.c.slug.type)
_GROUP = ContentItem.__table__.alias("translated")
_SAME = ContentItem.__table__.alias("same_group")
_CONTENT = ContentItem.__table__
#: The live item at (type, slug) and the live items of its translation group, in one round trip
#: (by primary key, so each part uses its own index).
_ITEM_AND_TRANSLATIONS = (
    select(
        _CONTENT,
        # Whether it has attachments: an item with neither hero image nor attachments (most) needs
        # no media query (see :func:`item_media`).
        select(ContentAttachment.content_id)
        .where(ContentAttachment.content_id == _CONTENT.c.id)
        .exists()
        .label("has_attachments"),
    )
    .where(
        ContentItem.id.in_(
            union_all(
                select(ContentItem.id).where(ContentItem.type == _TYPE, ContentItem.slug == _SLUG),
                select(_SAME.c.id)
                .join(_GROUP, _GROUP.c.translation_group == _SAME.c.translation_group)
                .where(_GROUP.c.type == _TYPE, _GROUP.c.slug == _SLUG, _GROUP.c.translation_group != ""),
            )
        ),
        LIVE_PUBLIC,
    )
    .order_by(ContentItem.id)
)
_TRANSLATIONS = (
    select(_CONTENT)
    .where(ContentItem.translation_group == bindparam("group"), ContentItem.id != bindparam("id"), LIVE_PUBLIC)
    .order_by(ContentItem.id)
)
_CONTENT_ID = bindparam("content_id", type_=ContentAttachment.__table__.c.content_id.type)
#: An item's hero image (when public) and its public attachments, in one round trip.
_MEDIA = (
    select(Media.__table__, ContentAttachment.content_id.label("attached_to"))
    .outerjoin(
        ContentAttachment, and_(ContentAttachment.media_id == Media.id, ContentAttachment.content_id == _CONTENT_ID)
    )
    .where(
        Media.id.in_(
            union_all(
                select(ContentAttachment.media_id).where(ContentAttachment.content_id == _CONTENT_ID),
                select(bindparam("hero_id", type_=Media.__table__.c.id.type)),
            )
        ),
        Media.audience == "public",
    )
    .order_by(ContentAttachment.sort_order, Media.title)
)
_BY_ID = select(_CONTENT).where(ContentItem.id == bindparam("id", type_=_CONTENT.c.id.type))
_TRANSLATIONS_MEMO = "suite.translations"
_MEDIA_MEMO = "suite.media"


def live_params(**params: Any) -> dict[str, Any]:
    """Parameters of a statement built on :data:`LIVE_PUBLIC` (``now`` plus ``params``)."""
    return {"now": datetime.now(UTC), **params}


def _memo(reads: Reader, name: str) -> dict[Any, Any]:
    """The reader's memo of portal reads (one request's): loaded once, reused by every caller."""
    memo = reads.memo
    return {} if memo is None else memo.setdefault(name, {})


async def live_item(db: Source, ctype: ContentType, slug: str) -> Any:
    """The published public item of ``ctype`` at ``slug`` (a row), or 404.

    Its live translations come in the same query and are kept for :func:`translations_of`.
    """
    reads = as_reader(db)
    rows = await reads.all(_ITEM_AND_TRANSLATIONS, live_params(type=ctype.name, slug=slug))
    item = next((row for row in rows if row.type == ctype.name and row.slug == slug), None)
    if item is None:
        raise NotFoundException("This page does not exist or is no longer published.")
    _memo(reads, _TRANSLATIONS_MEMO)[item.id] = [row for row in rows if row is not item]
    return item


async def item_by_id(db: Source, item_id: int) -> Any:
    """The content item with ``item_id`` (a row, whatever its state), or None."""
    return await as_reader(db).first(_BY_ID, {"id": item_id})


async def live_items(
    db: Source,
    type_name: str,
    language: str,
    *,
    page: int = 1,
    per_page: int = 10,
    category: str | None = None,
    order_by: Any = None,
    where: tuple[Any, ...] = (),
    columns: tuple[Any, ...] | None = None,
) -> PageResult:
    """Published public items of one type and language, newest first, paginated.

    One query: the page's rows carry the total; only a page past the end costs a second one (the
    count, to show the last page instead).  ``columns`` narrows the rows to what the page shows
    (e.g. :data:`CARD_COLUMNS`: no bodies, no JSON to decode); by default every column.
    """
    params = live_params(type=type_name, language=language, category=category or "")
    if where or order_by is not None:
        query = _listing(bool(category), where, order_by, columns)
    else:
        query = _default_listing(bool(category), columns)
    reads = as_reader(db)
    page = max(1, page)
    rows = await reads.all(query, {**params, "limit": per_page, "offset": (page - 1) * per_page})
    if rows:
        total = rows[0].total
    elif page == 1:
        total = 0
    else:
        counted = select(func.count()).select_from(
            query.with_only_columns(ContentItem.id).order_by(None).limit(None).offset(None).subquery()
        )
        total = int(await reads.scalar(counted, params) or 0)
    pages = max(1, -(-total // per_page))
    if page > pages:
        page = pages
        rows = await reads.all(query, {**params, "limit": per_page, "offset": (page - 1) * per_page})
    return PageResult(list(rows), page, pages, total)


#: The columns of a listing card: title, summary, link (type, slug, language), date and category.
CARD_COLUMNS = (
    _CONTENT.c.id,
    _CONTENT.c.type,
    _CONTENT.c.slug,
    _CONTENT.c.language,
    _CONTENT.c.title,
    _CONTENT.c.summary,
    _CONTENT.c.category,
    _CONTENT.c.published_at,
)


def _listing(
    by_category: bool, where: tuple[Any, ...] = (), order_by: Any = None, columns: tuple[Any, ...] | None = None
) -> Select[Any]:
    conditions = [ContentItem.type == bindparam("type"), ContentItem.language == bindparam("language"), LIVE_PUBLIC]
    if by_category:
        conditions.append(ContentItem.category == bindparam("category"))
    conditions.extend(where)
    # The total as a column: counted once, on the index, whatever the page (a window count would
    # have to gather every matching row first).
    total = select(func.count()).where(*conditions).correlate(None).scalar_subquery()
    order = order_by if order_by is not None else (ContentItem.published_at.desc(), ContentItem.id.desc())
    if not isinstance(order, tuple | list):
        order = (order,)
    query = select(*(columns or (_CONTENT,)), total.label("total")).where(*conditions).order_by(*order)
    return query.limit(bindparam("limit")).offset(bindparam("offset"))


@cache
def _default_listing(by_category: bool, columns: tuple[Any, ...] | None = None) -> Select[Any]:
    return _listing(by_category, columns=columns)


async def translations_of(db: Source, item: Item) -> list[Any]:
    """Live public items in the same translation group (other languages)."""
    if not item.translation_group:
        return []
    reads = as_reader(db)
    memo = _memo(reads, _TRANSLATIONS_MEMO)
    if item.id not in memo:
        memo[item.id] = list(await reads.all(_TRANSLATIONS, live_params(group=item.translation_group, id=item.id)))
    return list(memo[item.id])


async def ancestors(db: Source, item: Item) -> list[Any]:
    """The items above ``item`` (``parent_id`` chain), root first, whatever their state."""
    reads = as_reader(db)
    chain: list[Any] = []
    cursor = item
    while cursor.parent_id is not None and len(chain) < 20:
        parent = await item_by_id(reads, cursor.parent_id)
        if parent is None:
            break
        chain.append(parent)
        cursor = parent
    return list(reversed(chain))


_JSON_LD_ENCODER = msgspec.json.Encoder(enc_hook=str)


def json_ld(data: dict[str, Any]) -> Markup:
    """A JSON-LD block safe to embed in HTML (``<`` escaped so it can't close the script).

    Compact UTF-8 JSON from msgspec (Litestar's own encoder; several times faster than ``json.dumps``);
    values JSON has no type for (dates…) are written with ``str()``.
    """
    text = _JSON_LD_ENCODER.encode({"@context": "https://schema.org", **data}).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(f'<script type="application/ld+json">{text}</script>')  # noqa: S704 - escaped JSON


def item_schema(request: Request, ctype: ContentType, item: Item, extra: dict[str, Any] | None = None) -> dict:
    url = base_url(request) + ctype.url_for(item)
    site = request.app.state.suite.settings.site_name
    data: dict[str, Any] = {
        "@type": ctype.schema_type,
        "name": item.title,
        "url": url,
        "inLanguage": "pt-PT" if item.language == "pt" else "en",
    }
    if item.summary:
        data["description"] = item.summary
    if ctype.schema_type == "NewsArticle":
        data.update(
            {
                "headline": item.title[:110],
                "datePublished": iso_datetime(item.published_at or item.created_at),
                "dateModified": iso_datetime(item.updated_at),
                "publisher": {"@type": "GovernmentOrganization", "name": site},
            }
        )
    if extra:
        data.update(extra)
    return data


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What the base template needs for the head of a page: title, canonical URL, alternates, Open Graph.

    An object rather than a dict: templates read ``meta.title`` as an attribute, which a dict only
    answers after a failed attribute lookup.
    """

    title: str
    description: str
    canonical: str
    #: hreflang alternates: language code → absolute URL.
    alternates: dict[str, str]
    #: Where the language switch goes: an item's translation when it has one (else the same page).
    switch: dict[str, str]
    updated: datetime | None
    og_type: str
    image: str | None
    language: str


def page_meta(
    request: Request,
    *,
    title: str,
    description: str = "",
    path: str | None = None,
    language: str | None = None,
    alternates: dict[str, str] | None = None,
    updated: datetime | None = None,
    og_type: str = "website",
    image: str | None = None,
) -> PageMeta:
    """Canonical URL, hreflang alternates and Open Graph data for the base template."""
    root = base_url(request)
    language = language or request_language(request)
    path = path if path is not None else request_path(request)
    canonical = root + path + ("" if language == "pt" else ("&" if "?" in path else "?") + f"lang={language}")
    alt = alternates
    if alt is None:
        alt = {"pt": root + path, "en": root + path + ("&" if "?" in path else "?") + "lang=en"}
    return PageMeta(
        title=title,
        description=description,
        canonical=canonical,
        alternates=alt,
        switch={code: url.removeprefix(root) or "/" for code, url in (alternates or {}).items()},
        updated=updated,
        og_type=og_type,
        image=image,
        language=language,
    )


async def render_item(
    request: Request,
    db: Source,
    ctype: ContentType,
    item: Item,
    template: str,
    *,
    crumbs: list[Crumb] | None = None,
    schema: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> Response:
    """Render a content item page with breadcrumbs, alternates, canonical URL, OG and JSON-LD."""
    root = base_url(request)
    others = await translations_of(db, item)
    alternates = {item.language: root + ctype.url_for(item)}
    for other in others:
        alternates[other.language] = root + ctype.url_for(other)
    if crumbs is None:
        crumbs = [Crumb("Home", "/")]
        if ctype.section_label:
            crumbs.append(Crumb(ctype.section_label, ctype.section_url))
        if ctype.hierarchical:
            crumbs.extend(Crumb(a.title, ctype.url_for(a)) for a in await ancestors(db, item))
        crumbs.append(Crumb(item.title))
    request.scope.setdefault("state", {})["lang"] = item.language
    hero, attachments = await item_media(db, item)
    meta = page_meta(
        request,
        title=item.title,
        description=item.summary or plain_text(item.body, 200),
        path=ctype.path_for(item),
        language=item.language,
        alternates=alternates,
        updated=item.updated_at,
        og_type="article" if ctype.schema_type == "NewsArticle" else "website",
        image=f"{root}/media/{hero.id}/medium" if hero is not None else None,
    )
    return await render(
        request,
        template,
        {
            "item": item,
            "ctype": ctype,
            "crumbs": crumbs,
            "meta": meta,
            "translations": others,
            "json_ld": json_ld(schema or item_schema(request, ctype, item)),
            "hero": hero,
            "attachments": attachments,
            **(context or {}),
        },
    )


async def item_media(db: Source, item: Item) -> tuple[Any, list[Any]]:
    """The item's public hero image and public attached documents (in their order), in one query.

    Both are rows of ``core_media`` (plus ``attached_to``, the item's id when attached).
    """
    if item.hero_image_id is None and getattr(item, "has_attachments", True) is False:
        return None, []  # known from the item's own row (see _ITEM_AND_TRANSLATIONS)
    reads = as_reader(db)
    memo = _memo(reads, _MEDIA_MEMO)
    key = (item.id, item.hero_image_id)
    if key not in memo:
        hero = None
        attachments: list[Any] = []
        for media in await reads.all(_MEDIA, {"content_id": item.id, "hero_id": item.hero_image_id}):
            if media.id == item.hero_image_id and media.kind == "image":
                hero = media
            if media.attached_to is not None:
                attachments.append(media)
        memo[key] = (hero, attachments)
    hero, attachments = memo[key]
    return hero, list(attachments)


def now_utc() -> datetime:
    return datetime.now(UTC)


def _catalogue(by_category: bool, where: tuple[Any, ...] = (), order_by: Any = None) -> Select[Any]:
    query = select(_CONTENT).where(ContentItem.type == bindparam("type"), LIVE_PUBLIC, *where)
    if by_category:
        query = query.where(ContentItem.category == bindparam("category"))
    order = order_by if order_by is not None else (ContentItem.sort_order, ContentItem.title, ContentItem.id)
    if not isinstance(order, tuple | list):
        order = (order,)
    return query.order_by(*order).limit(bindparam("limit"))


@cache
def _default_catalogue(by_category: bool) -> Select[Any]:
    return _catalogue(by_category)


async def live_items_preferring(
    db: Source,
    type_name: str,
    language: str,
    *,
    category: str | None = None,
    where: tuple[Any, ...] = (),
    order_by: Any = None,
    limit: int = 2000,
) -> list[Any]:
    """Published public items of one type (rows), one per translation group: the ``language`` version when there is
    one, else the Portuguese original (else any).  For catalogues that must stay complete in every language."""
    if where or order_by is not None:
        query = _catalogue(bool(category), where, order_by)
    else:
        query = _default_catalogue(bool(category))
    params = live_params(type=type_name, category=category or "", limit=limit)
    rows = await as_reader(db).all(query, params)

    def group(item: Any) -> str:
        return item.translation_group or f"#{item.id}"

    def rank(item: Any) -> int:
        return 0 if item.language == language else 1 if item.language == "pt" else 2

    chosen: dict[str, Any] = {}
    for item in rows:
        current = chosen.get(group(item))
        if current is None or rank(item) < rank(current):
            chosen[group(item)] = item
    return [item for item in rows if chosen[group(item)] is item]
