"""Helpers and fixtures for the search integration tests (outbox, indexer, pages, API, CLI).

Imported by the test modules (``from .integration import quiet_settings, started_client``): they override
the root ``settings`` (no in-process background jobs: each test drains the outbox itself) and ``client``
(returned once the app's search start-up is over, so it never races with the test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from concelho.search.contract import SearchQuery, SearchUnavailable, Visibility
from concelho.search.indexing import DrainResult, Indexer
from concelho.search.models import SearchOutbox
from concelho.search.providers import Providers
from concelho.suite.content.models import ContentItem
from concelho.suite.content.service import ContentInput, save, transition
from concelho.suite.db import Database
from concelho.suite.settings import Settings
from litestar.testing import TestClient
from sqlalchemy import func, select

from ..conftest import settings_for, wait_for

EVERYTHING = Visibility(everything=True)


@pytest.fixture(name="settings")
def quiet_settings(tmp_path: Path, database_url: str) -> Settings:
    """The root fixture's settings without in-process jobs (tests drain the outbox themselves)."""
    return settings_for(tmp_path / "var", database_url, SUITE_BACKGROUND_JOBS="false")


@pytest.fixture(name="client")
def started_client(app: Any) -> Iterator[TestClient]:
    """The root ``client``, returned once the app's search start-up work is over (no race with the test)."""
    from concelho.search.service import runtime

    with TestClient(app, base_url="http://testserver.local") as test_client:
        assert wait_for(lambda: runtime(app.state.suite).started, timeout=30)
        yield test_client


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_db(settings: Settings, fn: Any) -> Any:
    database = Database(settings.database_url)
    try:
        async with database.sessionmaker() as session:
            return await fn(session)
    finally:
        await database.dispose()


def with_db(settings: Settings, fn: Any) -> Any:
    """Run ``fn(session)`` on a database connection of the test's own (not the app's)."""
    return run(_with_db(settings, fn))


def content_types(app: Any) -> dict[str, Any]:
    return app.state.suite.registry.content_types()


def create_item(
    app: Any,
    settings: Settings,
    title: str,
    *,
    type_: str = "news.article",
    summary: str = "",
    body: str = "",
    status: str = "published",
    audience: str = "public",
    workspace_id: int | None = None,
    department_id: int | None = None,
    language: str = "pt",
    category: str = "",
    data: dict[str, Any] | None = None,
) -> int:
    """Create an item with the content service (as the editor does); returns its id."""
    ctype = content_types(app)[type_]

    async def op(session):  # type: ignore[no-untyped-def]
        item = await save(
            session,
            ctype,
            ContentInput(
                title=title, summary=summary, body=body, audience=audience, workspace_id=workspace_id,
                department_id=department_id, language=language, category=category, data=data or {},
            ),
            actor="test",
            status=status,
        )  # fmt: skip
        await session.commit()
        return int(item.id)

    return with_db(settings, op)


def act(settings: Settings, item_id: int, action: str) -> None:
    async def op(session):  # type: ignore[no-untyped-def]
        item = await session.get(ContentItem, item_id)
        await transition(session, item, action, actor="test")
        await session.commit()

    with_db(settings, op)


def outbox_count(settings: Settings) -> int:
    async def op(session):  # type: ignore[no-untyped-def]
        return (await session.execute(select(func.count()).select_from(SearchOutbox))).scalar_one()

    return int(with_db(settings, op))


def outbox_rows(settings: Settings) -> list[tuple[str, str, int, str]]:
    async def op(session):  # type: ignore[no-untyped-def]
        rows = await session.execute(
            select(SearchOutbox.doc_id, SearchOutbox.action, SearchOutbox.attempts, SearchOutbox.last_error).order_by(
                SearchOutbox.id
            )
        )
        return [tuple(r) for r in rows]

    return with_db(settings, op)


def indexer_for(app: Any, database: Database) -> Indexer:
    state = app.state.suite
    return Indexer(database.sessionmaker, state.search, Providers.from_registry(state.registry))


def drain(app: Any, settings: Settings, *, retry_now: bool = True) -> DrainResult:
    """Drain the outbox into the app's own backend (the one its pages search)."""

    async def go() -> DrainResult:
        database = Database(settings.database_url)
        try:
            indexer = indexer_for(app, database)
            for _ in range(300):  # the app's start-up may be rebuilding an empty index (it holds the lease)
                result = await indexer.drain(retry_now=retry_now)
                if not result.busy:
                    return result
                await asyncio.sleep(0.1)
            raise AssertionError("the indexer lease stayed busy for 30 s")
        finally:
            await database.dispose()

    return run(go())


def index_ids(app: Any) -> set[str]:
    """Every document id in the app's index (whatever its visibility)."""
    backend = app.state.suite.search
    total = backend.count(EVERYTHING)
    result = backend.search(SearchQuery("", visibility=EVERYTHING, limit=max(total, 1) + 10, facets=()))
    ids = {hit.id for hit in result.hits}
    assert len(ids) == total
    return ids


def database_ids(app: Any, settings: Settings) -> set[str]:
    """Ids of every document that belongs in the index, according to the database."""
    providers = Providers.from_registry(app.state.suite.registry)

    async def op(session):  # type: ignore[no-untyped-def]
        return {doc.id async for batch in providers.all_documents(session) for doc in batch}

    return with_db(settings, op)


class BrokenEngine:
    """Makes the app's backend fail like an unreachable engine (every call raises) while in the ``with``."""

    def __init__(self, backend: Any, methods: tuple[str, ...] | None = None):
        self.backend = backend
        # search_now: the embedded engine's search on the caller's thread (service.engine_search)
        self.methods = methods or (
            "upsert", "delete", "search", "search_now", "health", "count", "counts_by_type", "rebuild",
        )  # fmt: skip

    def __enter__(self) -> BrokenEngine:
        def broken(*args: Any, **kwargs: Any) -> Any:
            raise SearchUnavailable("engine killed by the test")

        for name in self.methods:
            setattr(self.backend, name, broken)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in self.methods:
            delattr(self.backend, name)


@pytest.fixture
def fresh_index(app: Any) -> Iterator[Any]:
    """The app's backend with an empty index created."""
    app.state.suite.search.ensure_index()
    yield app.state.suite.search
