"""The page cache's generation poll: one poll at a time, and a failed poll is retried."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from concelho.suite.cache import PageCache


class GatedReads:
    """A read-only runner whose generation read waits until the test lets it answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.answer: Any = b"7"

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        self.calls += 1
        await self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeDatabase:
    def __init__(self) -> None:
        self.reads = GatedReads()


async def test_requests_arriving_during_a_poll_do_not_start_their_own() -> None:
    database = FakeDatabase()
    cache = PageCache(database)  # type: ignore[arg-type]
    cache.poll_seconds = 3600
    waiting = [asyncio.create_task(cache.generation()) for _ in range(16)]
    await asyncio.sleep(0)  # every task has reached the poll (or found one running)
    assert database.reads.calls == 1
    database.reads.gate.set()
    generations = await asyncio.gather(*waiting)
    assert generations[0] == 7
    # The others answered at once with the generation known before the poll (none yet).
    assert set(generations[1:]) == {-1}
    assert await cache.generation() == 7
    assert database.reads.calls == 1


async def test_a_failed_poll_is_tried_again_by_the_next_request() -> None:
    database = FakeDatabase()
    cache = PageCache(database)  # type: ignore[arg-type]
    cache.poll_seconds = 3600
    database.reads.answer = OSError("database is locked")
    database.reads.gate.set()
    with pytest.raises(OSError, match="locked"):
        await cache.generation()
    database.reads.answer = b"3"
    assert await cache.generation() == 3
    assert database.reads.calls == 2
