"""The in-process background job loops (suite/jobs.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from concelho.suite.jobs import run_periodically


async def test_a_job_loop_woken_and_cancelled_at_once_stops() -> None:
    """A shutdown right after a content change (the wake-up event set, then the loop cancelled before
    it resumes) stops the loop: it must not run on, or the app's shutdown waits for it for ever."""
    wake = asyncio.Event()
    runs: list[int] = []

    async def job(_state: Any) -> None:
        runs.append(len(runs))

    task = asyncio.create_task(run_periodically(None, [job], 60, wake))
    for _ in range(5):  # the first run, then the wait for the event
        await asyncio.sleep(0)
    assert runs == [0]
    wake.set()
    task.cancel()
    done, _pending = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()
    assert runs == [0]


async def test_a_job_loop_runs_again_when_woken_and_after_its_interval() -> None:
    wake = asyncio.Event()
    runs: list[float] = []
    loop = asyncio.get_running_loop()

    async def job(_state: Any) -> None:
        runs.append(loop.time())

    task = asyncio.create_task(run_periodically(None, [job], 1.0, wake))
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        wake.set()  # runs again at once, not after the interval
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(runs) == 2 and runs[1] - runs[0] < 0.5
        for _ in range(100):  # and again after the interval, with no wake-up (waited for up to 5 s)
            if len(runs) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(runs) == 3 and runs[2] - runs[1] >= 0.9
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
