"""``suite worker``: the background jobs in a process of their own.

The web server runs the same jobs in-process by default (``suite/jobs.py``).  On a bigger
installation run one ``suite worker`` and set ``SUITE_BACKGROUND_JOBS=false`` for the web
workers: scheduled publishing, outgoing mail and search indexing then happen only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated, Any

import typer

from .common import emit, fail, first_line, load_suite, require_database


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run every job once, index the waiting changes, exit")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON (with --once)")] = False,
) -> None:
    """Run the background jobs (scheduled publishing, mail, search indexing) until stopped.

    Set SUITE_BACKGROUND_JOBS=false for the web servers while a worker runs.
    """
    from concelho.search.backends import backend_for
    from concelho.search.service import SearchState, runtime
    from concelho.search.service import startup as search_startup
    from concelho.suite.db import Database
    from concelho.suite.events import EventBus
    from concelho.suite.jobs import DEFAULT_JOBS, background_jobs
    from sqlalchemy.exc import OperationalError, ProgrammingError

    suite = load_suite()
    settings = suite.settings
    require_database(settings)

    async def main() -> Any:
        database = Database(settings.database_url)
        state = SearchState(settings, suite.registry, database, backend_for(settings), EventBus())
        try:
            await search_startup(state)
            if once:
                out: dict[str, Any] = {}
                for job in DEFAULT_JOBS:
                    out[getattr(job, "__name__", str(job)).lstrip("_")] = await job(state)
                out["index_search"] = (await runtime(state).indexer.drain()).as_dict()
                return out
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            logging.getLogger("suite.jobs").info("worker started (jobs every %ss)", settings.jobs_interval_seconds)
            async with background_jobs(state, interval=settings.jobs_interval_seconds):
                await stop.wait()
            return None
        finally:
            await database.dispose()

    if not once:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        typer.echo("suite worker: running background jobs (Ctrl-C to stop)", err=True)
    try:
        result = asyncio.run(main())
    except KeyboardInterrupt:
        return
    except (OperationalError, ProgrammingError) as exc:
        fail(f"database error: {first_line(str(exc.orig or '') or str(exc))}")
    if once:
        emit(result, json_output, "; ".join(f"{k}: {v}" for k, v in result.items()))
