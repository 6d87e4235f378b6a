"""What the services pages need besides the content store: the catalogue, featured services, links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from concelho.suite.content.portal import Source, item_media, live_items_preferring

from .plugin import CATEGORIES, CATEGORY_LABELS_EN, FEATURED_DEFAULT_COUNT, SERVICE


@dataclass
class CategoryGroup:
    category: str
    label: str
    services: list[Any]


def category_label(category: str, language: str) -> str:
    return CATEGORY_LABELS_EN.get(category, category) if language == "en" else category


async def catalogue(
    db: Source, language: str, *, category: str | None = None, online_only: bool = False
) -> tuple[list[CategoryGroup], int, list[str]]:
    """Live services in ``language`` (or their Portuguese original) grouped by category in catalogue order,
    how many there are, and the categories that have any service (for the filter)."""
    items = await live_items_preferring(db, SERVICE.name, language)
    available = [c for c in CATEGORIES if any(item.category == c for item in items)]
    if category:
        items = [item for item in items if item.category == category]
    if online_only:
        items = [item for item in items if item.data.get("online") is True]
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(item.category if item.category in CATEGORIES else "", []).append(item)
    order = [c for c in CATEGORIES if c in groups] + ([""] if "" in groups else [])
    return [CategoryGroup(c, category_label(c, language), groups[c]) for c in order], len(items), available


async def featured(db: Source, language: str, codes: list[str]) -> list[Any]:
    """The services named by ``codes`` (in that order), or else the first online services."""
    items = await live_items_preferring(db, SERVICE.name, language)
    if codes:
        by_code: dict[str, Any] = {}
        for item in items:
            by_code.setdefault(str(item.data.get("service_code", "")), item)
        return [by_code[code] for code in codes if code in by_code]
    return [item for item in items if item.data.get("online") is True][:FEATURED_DEFAULT_COUNT]


def request_link(template: str, item: Any) -> str | None:
    """The "Request online" address of a service, or None when it has none (never a dead button)."""
    code = str(item.data.get("service_code") or "")
    if not template or item.data.get("online") is not True or not code:
        return None
    return template.replace("{code}", quote(code, safe="")).replace("{slug}", quote(item.slug, safe=""))


def safe_link(url: str) -> bool:
    url = url.strip()
    return (url.startswith("/") and not url.startswith("//")) or url.lower().startswith(("https://", "http://"))


def form_templates(item: Any) -> list[tuple[str, str | None]]:
    """(title, url or None) of each ``Title|URL`` line; a line without a safe URL keeps only its title."""
    out: list[tuple[str, str | None]] = []
    for line in item.data.get("form_templates") or []:
        title, sep, url = str(line).rpartition("|")
        if not sep:
            title, url = str(line), ""
        url = url.strip()
        ok = bool(url) and safe_link(url) and not any(c.isspace() for c in url)
        out.append(((title.strip() or url), url if ok else None))
    return out


async def attached_documents(db: Source, item: Any) -> list[Any]:
    """Public documents of the media library attached to a service (form templates uploaded by editors)."""
    _, attachments = await item_media(db, item)  # the page's own query, shared with render_item
    return [media for media in attachments if media.kind == "document"]
