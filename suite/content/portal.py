"""What portal plugins share: finding live items, SEO metadata, breadcrumbs, JSON-LD, rendering.

Plugins call these instead of querying the content tables themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response
from litestar.exceptions import NotFoundException
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..render import render, request_language
from .markdown import plain_text
from .models import ContentAttachment, ContentItem, Media
from .service import published_clause
from .types import ContentType


@dataclass
class Crumb:
    label: str
    url: str | None = None


@dataclass
class PageResult:
    items: list[ContentItem]
    page: int
    pages: int
    total: int


def base_url(request: Request) -> str:
    return request.app.state.suite.settings.base_url.rstrip("/")


async def live_item(db: AsyncSession, ctype: ContentType, slug: str) -> ContentItem:
    """The published public item of ``ctype`` at ``slug``, or 404."""
    item = (
        await db.execute(
            select(ContentItem).where(
                ContentItem.type == ctype.name,
                ContentItem.slug == slug,
                ContentItem.audience == "public",
                published_clause(),
            )
        )
    ).scalar_one_or_none()
    if item is None:
        raise NotFoundException("This page does not exist or is no longer published.")
    return item


async def live_items(
    db: AsyncSession,
    type_name: str,
    language: str,
    *,
    page: int = 1,
    per_page: int = 10,
    category: str | None = None,
    order_by: Any = None,
    where: tuple[Any, ...] = (),
) -> PageResult:
    """Published public items of one type and language, newest first, paginated."""
    query = select(ContentItem).where(
        ContentItem.type == type_name,
        ContentItem.language == language,
        ContentItem.audience == "public",
        published_clause(),
        *where,
    )
    if category:
        query = query.where(ContentItem.category == category)
    total = (await db.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    order = order_by if order_by is not None else (ContentItem.published_at.desc(), ContentItem.id.desc())
    if not isinstance(order, tuple | list):
        order = (order,)
    rows = (await db.execute(query.order_by(*order).limit(per_page).offset((page - 1) * per_page))).scalars().all()
    return PageResult(list(rows), page, pages, total)


async def translations_of(db: AsyncSession, item: ContentItem) -> list[ContentItem]:
    """Live public items in the same translation group (other languages)."""
    if not item.translation_group:
        return []
    rows = await db.execute(
        select(ContentItem).where(
            ContentItem.translation_group == item.translation_group,
            ContentItem.id != item.id,
            ContentItem.audience == "public",
            published_clause(),
        )
    )
    return list(rows.scalars())


async def ancestors(db: AsyncSession, item: ContentItem) -> list[ContentItem]:
    chain: list[ContentItem] = []
    cursor = item
    while cursor.parent_id is not None and len(chain) < 20:
        parent = await db.get(ContentItem, cursor.parent_id)
        if parent is None:
            break
        chain.append(parent)
        cursor = parent
    return list(reversed(chain))


def json_ld(data: dict[str, Any]) -> Markup:
    """A JSON-LD block safe to embed in HTML (``<`` escaped so it can't close the script)."""
    text = json.dumps({"@context": "https://schema.org", **data}, ensure_ascii=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(f'<script type="application/ld+json">{text}</script>')  # noqa: S704 - escaped JSON


def item_schema(request: Request, ctype: ContentType, item: ContentItem, extra: dict[str, Any] | None = None) -> dict:
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
                "datePublished": (item.published_at or item.created_at).isoformat(),
                "dateModified": item.updated_at.isoformat(),
                "publisher": {"@type": "GovernmentOrganization", "name": site},
            }
        )
    if extra:
        data.update(extra)
    return data


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
) -> dict[str, Any]:
    """Canonical URL, hreflang alternates and Open Graph data for the base template."""
    root = base_url(request)
    language = language or request_language(request)
    path = path if path is not None else request.url.path
    canonical = root + path + ("" if language == "pt" else ("&" if "?" in path else "?") + f"lang={language}")
    alt = alternates
    if alt is None:
        alt = {"pt": root + path, "en": root + path + ("&" if "?" in path else "?") + "lang=en"}
    return {
        "title": title,
        "description": description,
        "canonical": canonical,
        "alternates": alt,
        # Where the language switch goes: an item's translation when it has one (else the same page).
        "switch": {code: url.removeprefix(root) or "/" for code, url in (alternates or {}).items()},
        "updated": updated,
        "og_type": og_type,
        "image": image,
        "language": language,
    }


async def render_item(
    request: Request,
    db: AsyncSession,
    ctype: ContentType,
    item: ContentItem,
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


async def item_media(db: AsyncSession, item: ContentItem) -> tuple[Media | None, list[Media]]:
    """The item's public hero image and public attached documents (in their order)."""
    hero = None
    if item.hero_image_id is not None:
        candidate = await db.get(Media, item.hero_image_id)
        if candidate is not None and candidate.kind == "image" and candidate.audience == "public":
            hero = candidate
    rows = await db.execute(
        select(Media)
        .join(ContentAttachment, ContentAttachment.media_id == Media.id)
        .where(ContentAttachment.content_id == item.id, Media.audience == "public")
        .order_by(ContentAttachment.sort_order, Media.title)
    )
    return hero, list(rows.scalars())


def now_utc() -> datetime:
    return datetime.now(UTC)


async def live_items_preferring(
    db: AsyncSession,
    type_name: str,
    language: str,
    *,
    category: str | None = None,
    where: tuple[Any, ...] = (),
    order_by: Any = None,
    limit: int = 2000,
) -> list[ContentItem]:
    """Published public items of one type, one per translation group: the ``language`` version when there is
    one, else the Portuguese original (else any).  For catalogues that must stay complete in every language."""
    query = select(ContentItem).where(
        ContentItem.type == type_name, ContentItem.audience == "public", published_clause(), *where
    )
    if category:
        query = query.where(ContentItem.category == category)
    order = order_by if order_by is not None else (ContentItem.sort_order, ContentItem.title, ContentItem.id)
    if not isinstance(order, tuple | list):
        order = (order,)
    rows = list((await db.execute(query.order_by(*order).limit(limit))).scalars())

    def group(item: ContentItem) -> str:
        return item.translation_group or f"#{item.id}"

    def rank(item: ContentItem) -> int:
        return 0 if item.language == language else 1 if item.language == "pt" else 2

    chosen: dict[str, ContentItem] = {}
    for item in rows:
        current = chosen.get(group(item))
        if current is None or rank(item) < rank(current):
            chosen[group(item)] = item
    return [item for item in rows if chosen[group(item)] is item]
