"""The search indexer as a background job (in the server process, or in ``suite worker``).

``suite/jobs.py`` runs :func:`index_search` every 2 seconds, and at once when a content change
is committed in this process (``content.saved`` / ``content.deleted`` wake it up).  When the
outbox is empty the job costs one indexed query.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .indexing import DrainResult
from .service import refresh_synonyms, runtime

WAKE_EVENTS = ("content.saved", "content.deleted", "search.changed")


async def index_search(state: Any) -> DrainResult | None:
    """Drain the due outbox rows, if any (and re-apply synonyms changed by another process)."""
    rt = runtime(state)
    async with state.database.sessionmaker() as session:
        await refresh_synonyms(state, session)
    if not await rt.indexer.has_backlog():
        return None
    return await rt.indexer.drain()


def wake_event(state: Any) -> asyncio.Event:
    """A new event, set whenever this process commits a searchable change (listeners added once per state)."""
    rt = runtime(state)
    if rt.wake is None:

        def wake(**_: Any) -> None:
            if rt.wake is not None:
                rt.wake.set()

        for name in WAKE_EVENTS:
            state.events.on(name, wake)
    rt.wake = asyncio.Event()
    return rt.wake
