"""What a change tells the rest of the suite: search outbox rows (in the caller's transaction) and the
workspace's activity feed."""

from __future__ import annotations

from collections.abc import Iterable

from concelho.plugins.workspaces.models import Workspace
from concelho.plugins.workspaces.services import log_activity
from sqlalchemy.ext.asyncio import AsyncSession

from .naming import doc_id


async def enqueue_search(session: AsyncSession, document_ids: Iterable[int | None], action: str = "upsert") -> None:
    """Mark the documents for the search index (``upsert`` or ``delete``), in the caller's transaction."""
    from concelho.search.outbox import enqueue

    await enqueue(session, [doc_id(i) for i in document_ids if i is not None], action)


async def activity(session: AsyncSession, workspace: Workspace, actor_id: int | None, verb: str, target: str,
                   url: str = "") -> None:  # fmt: skip
    await log_activity(session, workspace.id, actor_id, verb, target, url)
