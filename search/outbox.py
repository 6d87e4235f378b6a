"""Writing to the search outbox, inside the caller's database transaction.

Every change to something searchable adds a :class:`~concelho.search.models.SearchOutbox` row with
the same session (so in the same transaction) as the change itself: when the change commits, the
indexer is sure to hear of it; when it rolls back, nothing is left behind.  The engine is never
called here, so a user's write never waits for, or fails because of, the search engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ACTIONS, SearchOutbox

BATCH = 500


def content_doc_id(type_name: str, item_id: int | None) -> str:
    """The search document id of a content item: ``<type>:<pk>`` (``news.article:42``)."""
    return f"{type_name}:{item_id}"


async def enqueue(session: AsyncSession, doc_ids: Iterable[str], action: str = "upsert") -> int:
    """Add one outbox row per (distinct) id; returns how many.  The caller commits."""
    if action not in ACTIONS:
        raise ValueError(f"unknown outbox action {action!r}")
    ids = list(dict.fromkeys(d for d in doc_ids if d))
    if not ids:
        return 0
    now = datetime.now(UTC)
    rows = [
        {"doc_id": doc_id, "action": action, "created_at": now, "attempts": 0, "next_attempt_at": now,
         "last_error": ""}
        for doc_id in ids
    ]  # fmt: skip
    for start in range(0, len(rows), BATCH):
        await session.execute(insert(SearchOutbox), rows[start : start + BATCH])
    return len(ids)


async def enqueue_item(session: AsyncSession, item: object, action: str = "upsert") -> int:
    """Outbox row for one content item (anything with ``type`` and ``id``)."""
    return await enqueue(session, [content_doc_id(item.type, item.id)], action)  # type: ignore[attr-defined]
