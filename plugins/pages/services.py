"""Queries and rules of the council and territory sections, shared by the controllers (and any CLI or job)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from concelho.suite.content.models import ContentAttachment, ContentItem, Media
from concelho.suite.content.portal import (
    LIVE_PUBLIC,
    Source,
    item_by_id,
    live_item,
    live_items_preferring,
    live_params,
    translations_of,
)
from concelho.suite.content.service import is_live, published_clause
from concelho.suite.db import as_reader
from concelho.suite.i18n import N_
from concelho.suite.models import Department
from litestar.exceptions import NotFoundException
from sqlalchemy import and_, bindparam, select, union_all

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


def menu_order(items: Iterable[Any]) -> list[Any]:
    """Menu order: sort order, then title."""
    return sorted(items, key=lambda i: (i.sort_order, title_key(i.title), i.id or 0))


# -- the page tree ---------------------------------------------------------------------------------
# Items are rows of ``core_content`` read through a reader (see ``concelho.suite.content.portal``).
_CONTENT = ContentItem.__table__


async def find_page(db: Source, slug: str) -> Any:
    """The live public page at ``slug`` (any language), or None."""
    query = select(_CONTENT).where(ContentItem.type == PAGE.name, ContentItem.slug == slug, *_live_public())
    return await as_reader(db).first(query)


async def in_language(db: Source, item: Any, language: str) -> Any:
    """``item`` or its live translation into ``language`` when there is one."""
    if item is None or item.language == language:
        return item
    return next((t for t in await translations_of(db, item) if t.language == language), item)


async def section_root(db: Source, section: str, language: str) -> tuple[Any, list[Any]]:
    """The live root page of ``section`` in ``language`` (else as written) and its live translations
    (by id), in one statement; (None, []) when the section has no root page."""
    try:
        original = await live_item(db, PAGE, section)  # slug == section; keeps its translations for us
    except NotFoundException:
        return None, []
    root = await in_language(db, original, language)
    group = sorted([original, *await translations_of(db, original)], key=lambda i: i.id)
    return root, [i for i in group if i is not root]


#: SQL condition: a page under ``:parent_id`` in ``:language`` (live or not).
_CHILD = and_(
    ContentItem.type == PAGE.name,
    ContentItem.parent_id == bindparam("parent_id", type_=_CONTENT.c.parent_id.type),
    ContentItem.language == bindparam("language", type_=_CONTENT.c.language.type),
)
_CHILDREN = select(_CONTENT).where(_CHILD, LIVE_PUBLIC)
_KIN = _CONTENT.alias("kin")
#: The live children and the live items of their translation groups (by primary key, so each part
#: uses its own index).
_CHILDREN_AND_TRANSLATIONS = select(_CONTENT).where(
    ContentItem.id.in_(
        union_all(
            select(ContentItem.id).where(_CHILD),
            select(_KIN.c.id)
            .join(_CONTENT, _CONTENT.c.translation_group == _KIN.c.translation_group)
            .where(_CHILD, LIVE_PUBLIC, ContentItem.translation_group != ""),
        )
    ),
    LIVE_PUBLIC,
)


async def children(db: Source, parent_id: int, language: str) -> list[Any]:
    """Live public pages under ``parent_id`` in ``language``, in menu order."""
    return menu_order(await as_reader(db).all(_CHILDREN, live_params(parent_id=parent_id, language=language)))


async def children_and_slugs(db: Source, parent_id: int, language: str) -> tuple[list[Any], set[str]]:
    """:func:`children`, and the slugs of those pages and of their live translations, in one statement."""
    rows = await as_reader(db).all(_CHILDREN_AND_TRANSLATIONS, live_params(parent_id=parent_id, language=language))
    kids = [r for r in rows if r.type == PAGE.name and r.parent_id == parent_id and r.language == language]
    return menu_order(kids), {r.slug for r in rows}


async def live_ancestors(db: Source, item: Any) -> list[Any]:
    """Live public ancestors of ``item``, root first (hidden ones are skipped)."""
    reads = as_reader(db)
    chain: list[Any] = []
    seen = {item.id}
    cursor = item
    while cursor.parent_id is not None and cursor.parent_id not in seen and len(chain) < 20:
        parent = await item_by_id(reads, cursor.parent_id)
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

    siblings: list[Any]
    children: list[Any]
    current_id: int | None


async def side_menu(db: Source, item: Any) -> Menu:
    reads = as_reader(db)
    kids = await children(reads, item.id, item.language) if item.id is not None else []
    siblings = await children(reads, item.parent_id, item.language) if item.parent_id is not None else []
    if not any(s.id == item.id for s in siblings):
        siblings = [item] if kids else []
    return Menu(siblings, kids, item.id)


_ATTACHMENTS = (
    select(Media.__table__)
    .join(ContentAttachment, ContentAttachment.media_id == Media.id)
    .where(ContentAttachment.content_id == bindparam("content_id"), Media.audience == "public")
    .order_by(ContentAttachment.sort_order, Media.title)
)


async def attachments(db: Source, item: Any) -> list[Any]:
    """Public media (rows) attached to ``item``, in order (no query when its row says it has none)."""
    if not getattr(item, "has_attachments", True):  # a row of live_item's statement
        return []
    return list(await as_reader(db).all(_ATTACHMENTS, {"content_id": item.id}))


# -- items of the generated pages ----------------------------------------------------------------
async def localized_items(db: Source, type_name: str, language: str) -> list[Any]:
    """Live public items of a type, one per translation group: in ``language`` when translated, else Portuguese."""
    return await live_items_preferring(db, type_name, language)


def executive(items: Sequence[Any]) -> list[Any]:
    """President, vice-president, then councillors; within a role by ``order`` then name."""

    def key(item: Any) -> tuple[int, int, str]:
        data = item.data or {}
        role = data.get("role")
        order = data.get("order")
        return (
            ROLES.index(role) if role in ROLES else len(ROLES),
            order if isinstance(order, int) else 10_000,
            title_key(item.title),
        )

    return sorted(items, key=key)


def deadline_of(item: Any) -> date | None:
    try:
        return date.fromisoformat(str((item.data or {}).get("deadline", ""))[:10])
    except ValueError:
        return None


def split_jobs(items: Sequence[Any], on: date) -> tuple[list[Any], list[Any]]:
    """(open offers, soonest deadline first; closed offers, latest deadline first)."""
    open_, closed = [], []
    for item in items:
        deadline = deadline_of(item)
        (open_ if deadline is not None and deadline >= on else closed).append(item)
    open_.sort(key=lambda i: (deadline_of(i) or date.max, title_key(i.title)))
    closed.sort(key=lambda i: (deadline_of(i) or date.min, title_key(i.title)), reverse=True)
    return open_, closed


def document_year(item: Any) -> int | None:
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

    def apply(self, items: Iterable[Any]) -> list[Any]:
        out = [
            i for i in items
            if (self.kind is None or (i.data or {}).get("doc_kind") == self.kind)
            and (self.year is None or document_year(i) == self.year)
        ]  # fmt: skip
        out.sort(key=lambda i: title_key(i.title))
        return sorted(out, key=lambda i: str((i.data or {}).get("published_on") or ""), reverse=True)


def document_years(items: Iterable[Any]) -> list[int]:
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


_DEPARTMENTS = select(
    Department.id, Department.parent_id, Department.name, Department.email, Department.phone
).order_by(Department.sort_order, Department.name)


async def org_chart(db: Source) -> list[OrgUnit]:
    """The departments as a tree (siblings by sort order, then name)."""
    rows = await as_reader(db).all(_DEPARTMENTS)
    units = {dep.id: OrgUnit(dep.name, dep.email or None, dep.phone or None) for dep in rows}
    roots: list[OrgUnit] = []
    for dep in rows:  # in sibling order, so each parent's children keep it
        parent = units.get(dep.parent_id) if dep.parent_id is not None else None
        if dep.parent_id is not None and parent is None:
            continue  # under a department that is gone: department_tree() leaves these out too
        (parent.children if parent is not None else roots).append(units[dep.id])
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
