"""Saving, publishing and revising content.  Used by the editor, importers, the CLI and plugins alike."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from concelho.search.outbox import content_doc_id, enqueue, enqueue_item
from sqlalchemy import BindParameter, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import record
from ..cache import bump_cache_generation
from ..models import KeyValue
from ..models import as_utc as _aware
from .markdown import render_markdown
from .models import AUDIENCES, STATUSES, ContentItem, ContentRevision
from .tags import clean_tags
from .types import ContentType

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: Fields a revision snapshots (and a restore brings back).
SNAPSHOT_FIELDS = (
    "title", "slug", "summary", "body", "language", "audience", "workspace_id", "category", "tags", "data",
    "parent_id", "sort_order", "department_id", "publish_at", "unpublish_at", "review_at", "hero_image_id",
)  # fmt: skip
#: Workflow actions → (allowed from, resulting status, permission needed).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "submit": (("draft",), "review", "content.edit"),
    "publish": (("draft", "review", "archived"), "published", "content.publish"),
    "unpublish": (("published",), "draft", "content.publish"),
    "archive": (("draft", "review", "published"), "archived", "content.publish"),
    "reject": (("review",), "draft", "content.publish"),
}


class ContentError(ValueError):
    """Invalid content; ``errors`` maps field names to messages fit for a form."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def slugify(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:200] or "item"


@dataclass
class ContentInput:
    """Editable fields of an item, as typed in a form or read from an import row."""

    title: str
    slug: str = ""
    summary: str = ""
    body: str = ""
    language: str = "pt"
    audience: str = "public"
    workspace_id: int | None = None
    category: str = ""
    tags: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    parent_id: int | None = None
    sort_order: int = 0
    department_id: int | None = None
    publish_at: datetime | None = None
    unpublish_at: datetime | None = None
    review_at: datetime | None = None
    hero_image_id: int | None = None
    external_id: str | None = None
    translation_of: int | None = None

    @classmethod
    def from_item(cls, item: ContentItem) -> ContentInput:
        return cls(**{name: getattr(item, name) for name in SNAPSHOT_FIELDS}, external_id=item.external_id)


def published_clause(now: datetime | BindParameter[Any] | None = None):  # type: ignore[no-untyped-def]
    """SQL condition: the item is visible on the portal now (or at ``now``, a time or a bound parameter)."""
    now = datetime.now(UTC) if now is None else now
    return and_(
        ContentItem.status == "published",
        or_(ContentItem.publish_at.is_(None), ContentItem.publish_at <= now),
        or_(ContentItem.unpublish_at.is_(None), ContentItem.unpublish_at > now),
    )


def is_live(item: ContentItem, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return (
        item.status == "published"
        and (item.publish_at is None or _aware(item.publish_at) <= now)
        and (item.unpublish_at is None or _aware(item.unpublish_at) > now)
    )


async def validate(
    session: AsyncSession, ctype: ContentType, data: ContentInput, item_id: int | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check an input; returns (type-specific data parsed, errors by field)."""
    errors: dict[str, str] = {}
    if not data.title.strip():
        errors["title"] = "Write a title."
    elif len(data.title) > 300:
        errors["title"] = "The title must have at most 300 characters."
    data.slug = (data.slug or slugify(data.title)).strip().lower()
    if not SLUG_RE.match(data.slug):
        errors["slug"] = "Use lowercase letters, digits and dashes only."
    else:
        clash = (
            await session.execute(
                select(ContentItem.id).where(
                    ContentItem.type == ctype.name,
                    ContentItem.slug == data.slug,
                    ContentItem.id != (item_id or -1),
                )
            )
        ).first()
        if clash:
            errors["slug"] = "Another item of this type already uses this address."
    if data.language not in ("pt", "en"):
        errors["language"] = "Choose Portuguese or English."
    if data.audience not in AUDIENCES:
        errors["audience"] = "Choose who may see this item."
    if data.audience == "workspace" and not data.workspace_id:
        errors["audience"] = "Choose the workspace."
    if ctype.categories and data.category and data.category not in ctype.categories:
        errors["category"] = f"Choose one of: {', '.join(ctype.categories)}."
    if len(data.summary) > 1000:
        errors["summary"] = "The summary must have at most 1000 characters."
    if data.publish_at and data.unpublish_at and _aware(data.unpublish_at) <= _aware(data.publish_at):
        errors["unpublish_at"] = "The end of publication must come after its start."
    if data.parent_id is not None:
        if not ctype.hierarchical:
            errors["parent_id"] = "This type of content has no parent."
        elif item_id is not None and data.parent_id == item_id:
            errors["parent_id"] = "An item cannot be its own parent."
        else:
            parent = await session.get(ContentItem, data.parent_id)
            if parent is None or parent.type != ctype.name:
                errors["parent_id"] = "The parent does not exist."
            elif item_id is not None:
                cursor, hops = parent, 0
                while cursor is not None and cursor.parent_id is not None and hops < 100:
                    if cursor.parent_id == item_id:
                        errors["parent_id"] = "That parent would make a loop."
                        break
                    cursor, hops = await session.get(ContentItem, cursor.parent_id), hops + 1
    if data.hero_image_id is not None:
        from .models import Media

        hero = await session.get(Media, data.hero_image_id)
        if hero is None or hero.kind != "image":
            errors["hero_image_id"] = "Choose an image from the media library."
    parsed, data_errors = ctype.parse_data(data.data)
    errors.update(data_errors)
    data.tags = clean_tags(data.tags, limit=30)
    return parsed, errors


def _snapshot(item: ContentItem) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SNAPSHOT_FIELDS:
        value = getattr(item, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def _add_revision(session: AsyncSession, item: ContentItem, actor_id: int | None, note: str) -> None:
    number = (
        await session.execute(
            select(func.coalesce(func.max(ContentRevision.number), 0)).where(ContentRevision.content_id == item.id)
        )
    ).scalar_one() + 1
    session.add(
        ContentRevision(
            content_id=item.id, number=number, snapshot=_snapshot(item), status=item.status,
            author_id=actor_id, note=note[:300],
        )
    )  # fmt: skip


async def save(
    session: AsyncSession,
    ctype: ContentType,
    data: ContentInput,
    *,
    actor_id: int | None = None,
    actor: str = "",
    item: ContentItem | None = None,
    status: str | None = None,
    note: str = "",
) -> ContentItem:
    """Create or update an item and keep a revision; the caller commits and then emits ``content.saved``."""
    parsed, errors = await validate(session, ctype, data, item.id if item else None)
    if status is not None and status not in STATUSES:
        errors["status"] = f"Unknown status {status!r}."
    if errors:
        raise ContentError(errors)
    now = datetime.now(UTC)
    values = asdict(data)
    values.pop("translation_of")
    external_id = values.pop("external_id")
    values["data"] = parsed
    if item is None:
        item = ContentItem(type=ctype.name, author_id=actor_id, external_id=external_id, **values)
        session.add(item)
    else:
        for key, value in values.items():
            setattr(item, key, value)
        if external_id:
            item.external_id = external_id
    if status is not None:
        item.status = status
        if status == "published" and item.published_at is None:
            item.published_at = _aware(data.publish_at) or now
    item.body_html = render_markdown(item.body)
    item.updated_at = now
    await session.flush()
    if not item.translation_group:
        if data.translation_of:
            original = await session.get(ContentItem, data.translation_of)
            item.translation_group = (original.translation_group or str(original.id)) if original else str(item.id)
            if original is not None and not original.translation_group:
                original.translation_group = item.translation_group
        else:
            item.translation_group = str(item.id)
    await _add_revision(session, item, actor_id, note)
    await enqueue_item(session, item)
    await bump_cache_generation(session)
    await record(session, "content.saved", actor_id=actor_id, actor=actor, target=f"{item.type}:{item.id}")
    return item


async def transition(
    session: AsyncSession, item: ContentItem, action: str, *, actor_id: int | None = None, actor: str = ""
) -> ContentItem:
    """Move an item through the workflow (the caller checked the action's permission)."""
    if action not in TRANSITIONS:
        raise ContentError({"action": f"Unknown action {action!r}."})
    allowed, target, _ = TRANSITIONS[action]
    if item.status not in allowed:
        raise ContentError({"action": f"Cannot {action} an item that is {item.status}."})
    item.status = target
    now = datetime.now(UTC)
    if target == "published" and item.published_at is None:
        item.published_at = _aware(item.publish_at) or now
    item.updated_at = now
    await _add_revision(session, item, actor_id, action)
    await enqueue_item(session, item)
    await bump_cache_generation(session)
    await record(session, f"content.{action}", actor_id=actor_id, actor=actor, target=f"{item.type}:{item.id}")
    return item


async def revisions(session: AsyncSession, item_id: int) -> list[ContentRevision]:
    return list(
        (
            await session.execute(
                select(ContentRevision)
                .where(ContentRevision.content_id == item_id)
                .order_by(ContentRevision.number.desc())
            )
        ).scalars()
    )


async def restore(
    session: AsyncSession,
    ctype: ContentType,
    item: ContentItem,
    number: int,
    *,
    actor_id: int | None,
    actor: str,
) -> ContentItem:
    """Bring back a revision's fields as a new revision (history is never rewritten)."""
    revision = (
        await session.execute(
            select(ContentRevision).where(ContentRevision.content_id == item.id, ContentRevision.number == number)
        )
    ).scalar_one_or_none()
    if revision is None:
        raise ContentError({"revision": f"No revision {number}."})
    snap = dict(revision.snapshot)
    for key in ("publish_at", "unpublish_at", "review_at"):
        if snap.get(key):
            snap[key] = datetime.fromisoformat(snap[key])
    data = ContentInput(**{k: snap.get(k) for k in SNAPSHOT_FIELDS if k in snap})
    data.tags = list(data.tags or [])
    data.data = dict(data.data or {})
    return await save(
        session, ctype, data, actor_id=actor_id, actor=actor, item=item, note=f"restored revision {number}"
    )


def diff_revisions(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per changed field, a list of (op, text) with op in ' ', '-', '+' (rendered as <del>/<ins>)."""
    out = []
    for name in SNAPSHOT_FIELDS:
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        a_lines = _lines(a)
        b_lines = _lines(b)
        ops: list[tuple[str, str]] = []
        for line in difflib.ndiff(a_lines, b_lines):
            if line.startswith("? "):
                continue
            ops.append((line[0], line[2:]))
        out.append((name, ops))
    return out


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in sorted(value.items())]
    return str(value).splitlines() or [""]


async def publish_scheduled(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Archive expired items and invalidate caches when scheduled items go live; returns counts."""
    now = now or datetime.now(UTC)
    expired = list(
        (
            await session.execute(
                select(ContentItem).where(
                    ContentItem.status == "published",
                    ContentItem.unpublish_at.is_not(None),
                    ContentItem.unpublish_at <= now,
                )
            )
        ).scalars()
    )
    for item in expired:
        item.status = "archived"
        await _add_revision(session, item, None, "expired")
    marker = (
        await session.execute(select(KeyValue).where(KeyValue.namespace == "cache", KeyValue.key == "scheduled_at"))
    ).scalar_one_or_none()
    last = datetime.fromisoformat(marker.value.decode()) if marker else datetime.fromtimestamp(0, UTC)
    went_live_ids = [
        (type_name, item_id)
        for type_name, item_id in await session.execute(
            select(ContentItem.type, ContentItem.id).where(
                ContentItem.status == "published",
                ContentItem.publish_at > last,
                ContentItem.publish_at <= now,
            )
        )
    ]
    went_live = len(went_live_ids)
    await enqueue(session, [content_doc_id(t, i) for t, i in went_live_ids])
    await enqueue(session, [content_doc_id(item.type, item.id) for item in expired])
    if marker is None:
        session.add(KeyValue(namespace="cache", key="scheduled_at", value=now.isoformat().encode()))
    else:
        marker.value = now.isoformat().encode()
    if expired or went_live:
        await bump_cache_generation(session)
    await session.commit()
    return {"archived": len(expired), "published": int(went_live)}


async def delete_item(
    session: AsyncSession, item: ContentItem, *, actor_id: int | None = None, actor: str = ""
) -> None:
    """Delete an item with its revisions and attachments; children keep existing (moved to the top)."""
    from sqlalchemy import update as sql_update

    await session.execute(sql_update(ContentItem).where(ContentItem.parent_id == item.id).values(parent_id=None))
    target = f"{item.type}:{item.id}"
    await enqueue_item(session, item, "delete")
    await session.delete(item)
    await bump_cache_generation(session)
    await record(session, "content.deleted", actor_id=actor_id, actor=actor, target=target)


async def set_attachments(session: AsyncSession, item: ContentItem, media_ids: list[int]) -> None:
    """Replace the item's attached media (order as given); unknown ids are ignored."""
    from sqlalchemy import delete as sql_delete

    from .models import ContentAttachment, Media

    known = set((await session.execute(select(Media.id).where(Media.id.in_(media_ids or [-1])))).scalars())
    await session.execute(sql_delete(ContentAttachment).where(ContentAttachment.content_id == item.id))
    for order, media_id in enumerate(dict.fromkeys(media_ids)):
        if media_id in known:
            session.add(ContentAttachment(content_id=item.id, media_id=media_id, sort_order=order))
