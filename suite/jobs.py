"""Periodic background work inside the server process (default single-machine setup).

Every ``interval`` seconds: publish scheduled content / archive expired content (which
also refreshes page caches).  Failures are logged and retried on the next tick; they
never reach a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("suite.jobs")

Job = Callable[[Any], Awaitable[Any]]


async def _publish_scheduled(state: Any) -> Any:
    from .content.service import publish_scheduled

    async with state.database.sessionmaker() as session:
        counts = await publish_scheduled(session)
    if counts["published"] or counts["archived"]:
        await state.events.emit("cache.invalidate")
    return counts


DEFAULT_JOBS: list[Job] = [_publish_scheduled]


async def run_periodically(state: Any, jobs: list[Job], interval: float) -> None:
    while True:
        for job in jobs:
            try:
                await job(state)
            except Exception:
                log.exception("background job %s failed", getattr(job, "__name__", job))
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def background_jobs(state: Any, jobs: list[Job] | None = None, interval: float = 60.0):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(run_periodically(state, jobs or DEFAULT_JOBS, interval))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
