"""Periodic background work inside the server process (default single-machine setup).

Every ``interval`` seconds: publish scheduled content / archive expired content (which
also refreshes page caches).  Every 2 seconds, and at once after a content change: drain
the search outbox into the engine (``search/jobs.py``).  Failures are logged and retried
on the next tick; they never reach a request.

When ``suite worker`` runs these jobs in a process of its own, set
``SUITE_BACKGROUND_JOBS=false`` so the web workers do not run them too.
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
        await state.events.emit("search.changed")
    return counts


async def _index_search(state: Any) -> Any:
    from concelho.search.jobs import index_search

    return await index_search(state)


async def _send_mail(state: Any) -> Any:
    from .mail import send_pending

    if not state.settings.smtp_url:
        return 0
    async with state.database.sessionmaker() as session:
        return await send_pending(session, state.settings)


DEFAULT_JOBS: list[Job] = [_publish_scheduled, _send_mail]
#: Cheap when idle, so they run often: the search indexer (only works when the outbox has rows).
FAST_JOBS: list[Job] = [_index_search]
FAST_INTERVAL = 2.0
#: Background tasks are named ``suite.jobs.*`` (logs, and tests telling their queries from a request's).
TASK_PREFIX = "suite.jobs"


async def run_periodically(state: Any, jobs: list[Job], interval: float, wake: asyncio.Event | None = None) -> None:
    while True:
        for job in jobs:
            try:
                await job(state)
            except Exception:
                log.exception("background job %s failed", getattr(job, "__name__", job))
        if wake is None:
            await asyncio.sleep(interval)
        else:
            # ``asyncio.timeout``, not ``wait_for``: on Python 3.11, ``wait_for`` cancelled just as the
            # event is set returns instead of raising, and the loop would outlive its cancellation
            # (a shutdown right after a content change then waited for this task for ever).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await wake.wait()
            wake.clear()


@contextlib.asynccontextmanager
async def background_jobs(  # type: ignore[no-untyped-def]
    state: Any,
    jobs: list[Job] | None = None,
    interval: float = 60.0,
    fast_jobs: list[Job] | None = None,
    fast_interval: float = FAST_INTERVAL,
):
    from concelho.search.jobs import wake_event

    plugin_jobs = [job for plugin in state.registry for job in plugin.background_jobs()]
    all_jobs = (jobs or DEFAULT_JOBS) + plugin_jobs
    tasks = [asyncio.create_task(run_periodically(state, all_jobs, interval), name=f"{TASK_PREFIX}.periodic")]
    fast = FAST_JOBS if fast_jobs is None else fast_jobs
    if fast:
        fast_loop = run_periodically(state, fast, fast_interval, wake_event(state))
        tasks.append(asyncio.create_task(fast_loop, name=f"{TASK_PREFIX}.fast"))
    try:
        yield tasks[0]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
