"""Queries and rules of the council and territory sections, shared by the controllers (and any CLI or job)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from concelho.suite.content.models import ContentAttachment, ContentItem, Media
from concelho.suite.content.portal import live_items_preferring, translations_of
from concelho.suite.content.service import is_live, published_clause
from concelho.suite.i18n import N_
from concelho.suite.models import Department
from concelho.suite.users import department_tree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .plugin import DOC_KINDS, PAGE, ROLES

LISBON = ZoneInfo("Europe/Lisbon")

ROLE_LABELS = {"presidente": N_("Mayor"), "vice-presidente": N_("Deputy mayor"), "vereador": N_("Councillor")}
DOC_KIND_LABELS = {
    "regulamento": N_("Regulation"),
    "edital": N_("Public notice"),
    "ata": N_("Minutes"),
    "plano": N_("Plan"),
    "relatório": N_("Report"),
    "outro": N_("Other"),
}


def today() -> date:
    """Today in the municipality (deadlines are Lisbon dates)."""
    return datetime.now(LISBON).date()


def _live_public() -> tuple[Any, ...]:
    return (ContentItem.audience == "public", published_clause())


def title_key(title: str) -> str:
    """Alphabetical order as a reader expects it ("Água" before "Resíduos"), whatever the database collation."""
    return unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().casefold()


def menu_order(items: Iterable[ContentItem]) -> list[ContentItem]:
    """Menu order: sort order, then title."""
    return sorted(items, key=lambda i: (i.sort_order, title_key(i.title), i.id or 0))


# -- the page tree ---------------------------------------------------------------------------------
async def find_page(db: AsyncSession, slug: str) -> ContentItem | None:
    """The live public page at ``slug`` (any language), or None."""
    query = select(ContentItem).where(ContentItem.type == PAGE.name, ContentItem.slug == slug, *_live_public())
    return (await db.execute(query)).scalar_one_or_none()


async def in_language(db: AsyncSession, item: ContentItem | None, language: str) -> ContentItem | None:
    """``item`` or its live translation into ``language`` when there is one."""
    if item is None or item.language == language:
        return item
    return next((t for t in await translations_of(db, item) if t.language == language), item)


async def children(db: AsyncSession, parent_id: int, language: str) -> list[ContentItem]:
    query = select(ContentItem).where(
        ContentItem.type == PAGE.name, ContentItem.parent_id == parent_id, ContentItem.language == language,
        *_live_public(),
    )  # fmt: skip
    return menu_order((await db.execute(query)).scalars())


async def live_ancestors(db: AsyncSession, item: ContentItem) -> list[ContentItem]:
    """Live public ancestors of ``item``, root first (hidden ones are skipped)."""
    chain: list[ContentItem] = []
    seen = {item.id}
    cursor = item
    while cursor.parent_id is not None and cursor.parent_id not in seen and len(chain) < 20:
        parent = await db.get(ContentItem, cursor.parent_id)
        if parent is None:
            break
        seen.add(parent.id)
        if parent.audience == "public" and is_live(parent):
            chain.append(parent)
        cursor = parent
    return list(reversed(chain))


@dataclass
class Menu:
    """The side menu of a page: its siblings, with its own children under it."""

    siblings: list[ContentItem]
    children: list[ContentItem]
    current_id: int | None


async def side_menu(db: AsyncSession, item: ContentItem) -> Menu:
    kids = await children(db, item.id, item.language) if item.id is not None else []
    siblings = await children(db, item.parent_id, item.language) if item.parent_id is not None else []
    if not any(s.id == item.id for s in siblings):
        siblings = [item] if kids else []
    return Menu(siblings, kids, item.id)


async def attachments(db: AsyncSession, item: ContentItem) -> list[Media]:
    """Public media attached to ``item``, in order."""
    rows = await db.execute(
        select(Media)
        .join(ContentAttachment, ContentAttachment.media_id == Media.id)
        .where(ContentAttachment.content_id == item.id, Media.audience == "public")
        .order_by(ContentAttachment.sort_order, Media.title)
    )
    return list(rows.scalars())


# -- items of the generated pages ----------------------------------------------------------------
async def localized_items(db: AsyncSession, type_name: str, language: str) -> list[ContentItem]:
    """Live public items of a type, one per translation group: in ``language`` when translated, else Portuguese."""
    return await live_items_preferring(db, type_name, language)


def executive(items: Sequence[ContentItem]) -> list[ContentItem]:
    """President, vice-president, then councillors; within a role by ``order`` then name."""

    def key(item: ContentItem) -> tuple[int, int, str]:
        data = item.data or {}
        role = data.get("role")
        order = data.get("order")
        return (
            ROLES.index(role) if role in ROLES else len(ROLES),
            order if isinstance(order, int) else 10_000,
            title_key(item.title),
        )

    return sorted(items, key=key)


def deadline_of(item: ContentItem) -> date | None:
    try:
        return date.fromisoformat(str((item.data or {}).get("deadline", ""))[:10])
    except ValueError:
        return None


def split_jobs(items: Sequence[ContentItem], on: date) -> tuple[list[ContentItem], list[ContentItem]]:
    """(open offers, soonest deadline first; closed offers, latest deadline first)."""
    open_, closed = [], []
    for item in items:
        deadline = deadline_of(item)
        (open_ if deadline is not None and deadline >= on else closed).append(item)
    open_.sort(key=lambda i: (deadline_of(i) or date.max, title_key(i.title)))
    closed.sort(key=lambda i: (deadline_of(i) or date.min, title_key(i.title)), reverse=True)
    return open_, closed


def document_year(item: ContentItem) -> int | None:
    value = str((item.data or {}).get("published_on") or "")
    return int(value[:4]) if value[:4].isdigit() else None


@dataclass
class DocumentFilter:
    kind: str | None = None
    year: int | None = None

    @classmethod
    def parse(cls, kind: str, year: str) -> DocumentFilter:
        """Unknown values are ignored rather than refused (a filter link must never fail)."""
        return cls(kind if kind in DOC_KINDS else None, int(year) if year.strip().isdigit() else None)

    def apply(self, items: Iterable[ContentItem]) -> list[ContentItem]:
        out = [
            i for i in items
            if (self.kind is None or (i.data or {}).get("doc_kind") == self.kind)
            and (self.year is None or document_year(i) == self.year)
        ]  # fmt: skip
        out.sort(key=lambda i: title_key(i.title))
        return sorted(out, key=lambda i: str((i.data or {}).get("published_on") or ""), reverse=True)


def document_years(items: Iterable[ContentItem]) -> list[int]:
    return sorted({y for y in (document_year(i) for i in items) if y is not None}, reverse=True)


def safe_href(url: Any) -> str | None:
    """A link target for a stored address: http(s) or a site path; anything else (javascript:…) is no link."""
    text = str(url or "").strip()
    if text.startswith(("https://", "http://")) or (text.startswith("/") and not text.startswith("//")):
        return text
    return None


# -- the org chart --------------------------------------------------------------------------------
@dataclass
class OrgUnit:
    """A department as the public sees it: name and the department's own contacts, never its staff."""

    name: str
    email: str | None
    phone: str | None
    children: list[OrgUnit] = field(default_factory=list)


async def org_chart(db: AsyncSession) -> list[OrgUnit]:
    tree: list[tuple[int, Department]] = await department_tree(db)
    units: dict[int, OrgUnit] = {}
    roots: list[OrgUnit] = []
    for _depth, dep in tree:
        unit = OrgUnit(dep.name, dep.email or None, dep.phone or None)
        units[dep.id] = unit  # type: ignore[index]
        parent = units.get(dep.parent_id) if dep.parent_id is not None else None
        (parent.children if parent is not None else roots).append(unit)
    return roots


def org_schema(units: Sequence[OrgUnit]) -> list[dict[str, Any]]:
    out = []
    for unit in units:
        entry: dict[str, Any] = {"@type": "Organization", "name": unit.name}
        if unit.email:
            entry["email"] = unit.email
        if unit.phone:
            entry["telephone"] = unit.phone
        if unit.children:
            entry["subOrganization"] = org_schema(unit.children)
        out.append(entry)
    return out
