"""Portal reads: related news, the query budget of anonymous pages, cached bodies and forged CSRF cookies,
and the one-trip SQLite driver adapter."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event, text

from .conftest import login, post_form


def publish_article(editor: TestClient, title: str, **fields: str) -> str:
    data = {"title": title, "body": "Texto.", "language": "pt", "audience": "public", **fields}
    created = post_form(editor, "/intranet/content/new?type=news.article", data)
    assert created.status_code == 303, created.text
    url = created.headers["location"].split("?")[0]
    assert post_form(editor, f"{url}/action", {"action": "publish"}).status_code == 303
    return url


@pytest.fixture
def editor(client, make_user):  # type: ignore[no-untyped-def]
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    return client


@pytest.fixture
def anon(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver.local") as visitor:
        yield visitor


def related_titles(html: str) -> list[str]:
    section = re.search(r'<section aria-labelledby="related-title">(.*?)</section>', html, re.S)
    return re.findall(r">([^<]+)</a></li>", section.group(1)) if section else []


def test_related_news_are_same_category_first_then_shared_tags(editor, anon):
    publish_article(editor, "Alvo", category="obras", tags="ponte, rio, escola")
    publish_article(editor, "Mesma categoria", category="obras")
    publish_article(editor, "Duas etiquetas", category="cultura", tags="ponte, rio")
    publish_article(editor, "Uma etiqueta", category="cultura", tags="escola")
    publish_article(editor, "Sem nada em comum", category="cultura", tags="festa")
    publish_article(editor, "Other language", category="obras", tags="ponte", language="en")
    draft = {"title": "Rascunho", "body": "x", "language": "pt", "audience": "public", "category": "obras"}
    assert post_form(editor, "/intranet/content/new?type=news.article", draft).status_code == 303
    page = anon.get("/noticias/alvo")
    assert page.status_code == 200
    assert related_titles(page.text) == ["Mesma categoria", "Duas etiquetas", "Uma etiqueta"]
    # Without a category, tags alone decide; without either, there is nothing related.
    publish_article(editor, "Sem categoria", tags="rio")
    assert related_titles(anon.get("/noticias/sem-categoria").text) == ["Duas etiquetas", "Alvo"]
    publish_article(editor, "Isolada")
    assert related_titles(anon.get("/noticias/isolada").text) == []


def test_related_news_compare_whole_tags_in_sql(editor, anon):
    """Tags are compared whole and exactly (accents, quotes, one tag inside another), on both databases."""
    publish_article(editor, "Alvo", tags='proteção civil, rio, "aspas"')
    publish_article(editor, "Acentos iguais", tags="proteção civil")
    publish_article(editor, "Sem acentos", tags="protecao civil")
    publish_article(editor, "Aspas iguais", tags='"aspas"')
    publish_article(editor, "Parte de outra", tags="rio Sereno, aspas")
    publish_article(editor, "Maiusculas", tags="Rio")
    assert sorted(related_titles(anon.get("/noticias/alvo").text)) == ["Acentos iguais", "Aspas iguais"]
    publish_article(editor, "Duas em comum", tags='rio, "aspas"')
    assert related_titles(anon.get("/noticias/alvo").text)[0] == "Duas em comum"


def in_background_job() -> bool:
    from concelho.suite.jobs import TASK_PREFIX

    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: not a request either
        return True
    return task is not None and task.get_name().startswith(TASK_PREFIX)


class Statements:
    """Content-store queries the app's engine runs while ``counting`` is on."""

    def __init__(self, app: Any) -> None:
        self.seen: list[str] = []
        self.counting = False
        database = app.state.suite.database
        event.listen(database.engine.sync_engine, "before_cursor_execute", self._seen)
        # Anonymous pages read through ``database.reads``: on SQLite its own (sync) engine.
        if database.reads.sync_engine is not None:
            event.listen(database.reads.sync_engine, "before_cursor_execute", self._seen)
            # … and statements it runs in their prepared form (suite/prepared.py) skip that event.
            database.reads.on_prepared.append(lambda sql: self._seen(None, None, sql))

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Reads of the content store by the request only: the search indexer and the scheduler run in
        # background tasks on the same engine (and load content items too).
        if not self.counting or in_background_job():
            return
        if re.search(r"FROM core_(content|media)\b", statement):
            self.seen.append(statement)

    def during(self, client: TestClient, url: str) -> list[str]:
        client.get(url)  # warm: slots, the cache generation
        self.seen.clear()
        self.counting = True
        try:
            assert client.get(url).status_code == 200
        finally:
            self.counting = False
        return list(self.seen)


def test_anonymous_pages_keep_to_their_query_budget(editor, anon, app):
    """An uncached article page: item with translations, then related news (no media query for an item
    its own row shows has no hero image and no attachments); a list: one query."""
    url = publish_article(editor, "Orçamento", category="orçamento", tags="contas")
    en = post_form(editor, "/intranet/content/new?type=news.article",
                   {"title": "Budget", "body": "x", "language": "en", "audience": "public",
                    "translation_of": url.rsplit("/", 1)[1]})  # fmt: skip
    post_form(editor, f"{en.headers['location'].split('?')[0]}/action", {"action": "publish"})
    state = app.state.suite
    state.page_cache.enabled = False
    state.page_cache.poll_seconds = 3600
    statements = Statements(app)
    article = statements.during(anon, "/noticias/orcamento")
    assert len(article) == 2, article
    assert not any("FROM core_media" in sql for sql in article)
    assert len(statements.during(anon, "/noticias")) == 1
    assert len(statements.during(anon, "/")) <= 1
    assert 'hreflang="en" href="http://127.0.0.1:8000/noticias/budget?lang=en"' in anon.get("/noticias/orcamento").text


def test_a_forged_csrf_cookie_never_enters_or_leaves_the_page_cache(editor, app):
    publish_article(editor, "Cache segura")
    with TestClient(app, base_url="http://testserver.local") as forger:
        forger.cookies.set("suite_csrf", "div")
        first = forger.get("/noticias/cache-segura")
        assert first.status_code == 200
    with TestClient(app, base_url="http://testserver.local") as visitor:
        page = visitor.get("/noticias/cache-segura").text
        token = visitor.cookies.get("suite_csrf")
        assert token and f'value="{token}"' in page
        assert "<div" in page and "__suite_csrf_token__" not in page  # the page was not stored with "div" swapped out
        hit = visitor.get("/noticias/cache-segura").text
        assert hit == page
    with TestClient(app, base_url="http://testserver.local") as forger:
        forger.cookies.set("suite_csrf", "x<script>alert(1)</script>")
        served = forger.get("/noticias/cache-segura").text
        assert "<script>alert(1)" not in served


# --------------------------------------------------------------------------------------------
# The SQLite adapter: one trip to the connection's thread per statement
# --------------------------------------------------------------------------------------------
async def _driver_checks(path: Path) -> dict[str, Any]:
    import aiosqlite
    from concelho.suite.db import Database

    trips = {"n": 0}
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips["n"] += 1
        return await original(self, fn, *args, **kwargs)

    database = Database(f"sqlite:///{path}")
    out: dict[str, Any] = {}
    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    try:
        async with database.session() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
        trips["n"] = 0
        async with database.sessionmaker() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        out["read_trips"] = trips["n"]
        async with database.session() as session:
            conn = await session.connection()
            inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
            out["lastrowid"] = inserted.lastrowid
            await conn.execute(text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}])
            out["updated"] = (await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))).rowcount
            out["returning"] = (await conn.execute(text("DELETE FROM t WHERE id = 3 RETURNING name"))).all()
        async with database.sessionmaker() as session:
            out["rows"] = (await session.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
            try:
                await session.execute(text("SELECT * FROM missing"))
            except Exception as exc:  # the driver's error, as SQLAlchemy raises it
                out["error"] = type(exc.orig).__name__  # type: ignore[attr-defined]
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
        await database.dispose()
    return out


def test_sqlite_statements_take_one_trip_and_keep_dbapi_results(tmp_path):
    out = asyncio.run(_driver_checks(tmp_path / "driver.db"))
    assert out["read_trips"] == 1  # the statement; no trip for the rollback of a read-only session
    assert out["lastrowid"] == 1
    assert out["updated"] == 2
    assert [tuple(r) for r in out["returning"]] == [("c!",)]
    assert [tuple(r) for r in out["rows"]] == [(1, "a"), (2, "b!")]
    assert out["error"] == sqlite3.OperationalError.__name__


# --------------------------------------------------------------------------------------------
# database.reads: read-only statements outside any ORM session
# --------------------------------------------------------------------------------------------
async def _reads_checks(url: str) -> dict[str, Any]:
    from concelho.suite.content.models import ContentItem
    from concelho.suite.db import Database
    from sqlalchemy import bindparam, select

    table = ContentItem.__table__
    by_slug = select(table.c.id, table.c.title, table.c.tags, table.c.created_at).where(
        table.c.slug == bindparam("slug")
    )
    database = Database(url)
    reads = database.reads
    out: dict[str, Any] = {"sync": reads.sync_engine is not None}
    try:
        out["before"] = await reads.first(by_slug, {"slug": "fresca"})  # the connection exists from now on
        async with database.session() as session:
            session.add(ContentItem(type="news.article", slug="fresca", title="Primeira", tags=["a"]))
        row = await reads.first(by_slug, {"slug": "fresca"})
        out["inserted"] = (row.title, row.tags, row.created_at is not None)
        for title in ("Segunda", "Terceira"):
            async with database.session() as session:
                item = (await session.execute(select(ContentItem).where(ContentItem.slug == "fresca"))).scalar_one()
                item.title = title
            out.setdefault("updated", []).append(
                await reads.scalar(select(table.c.title).where(table.c.slug == "fresca"))
            )
        try:
            await reads.all(text("UPDATE core_content SET title = 'escrita' WHERE slug = 'fresca'"))
            out["write"] = "allowed"
        except Exception as exc:
            out["write"] = type(exc).__name__
        # A failed statement leaves the reader usable.
        out["after_error"] = await reads.scalar(select(table.c.title).where(table.c.slug == "fresca"))
    finally:
        await database.dispose()
    return out


def test_reads_see_committed_writes_at_once_and_cannot_write(database_url):
    out = asyncio.run(_reads_checks(database_url))
    assert out["sync"] is database_url.startswith("sqlite")
    assert out["before"] is None
    assert out["inserted"] == ("Primeira", ["a"], True)
    assert out["updated"] == ["Segunda", "Terceira"]  # never an old snapshot
    assert out["write"] != "allowed"
    assert out["after_error"] == "Terceira"


def test_reads_of_an_in_memory_sqlite_database_use_its_engine():
    """A second engine on an in-memory database would see another, empty database: no sync engine then."""
    from concelho.suite.db import Reads, is_memory_sqlite
    from sqlalchemy.ext.asyncio import create_async_engine

    async def check() -> Any:
        engine = create_async_engine("sqlite+aiosqlite://")
        reads = Reads("sqlite://", engine)
        try:
            assert reads.sync_engine is None
            return await reads.scalar(text("SELECT 41 + 1"))
        finally:
            reads.dispose()
            await engine.dispose()

    assert asyncio.run(check()) == 42
    assert is_memory_sqlite("sqlite://") and is_memory_sqlite("sqlite:///:memory:")
    assert is_memory_sqlite("sqlite:///file:x?mode=memory&uri=true")
    assert not is_memory_sqlite("sqlite:////var/suite.db") and not is_memory_sqlite("postgresql://h/db")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # on PostgreSQL the reads use the app's engine
def test_anonymous_pages_open_no_session_on_sqlite(editor, anon, app, database_url):
    """Anonymous pages read through ``database.reads``; on SQLite the app's async engine is not touched."""
    assert database_url.startswith("sqlite")
    publish_article(editor, "Sem sessão", tags="destaque")
    state = app.state.suite
    state.page_cache.enabled = False
    state.page_cache.poll_seconds = 3600
    checkouts: list[int] = []
    engine = state.database.engine.sync_engine

    def listener(*_: Any) -> None:
        if not in_background_job():  # the search indexer and the scheduler have their own sessions
            checkouts.append(1)

    for url in ("/", "/noticias", "/noticias/sem-sessao", "/agenda", "/servicos", "/locais", "/camara"):
        anon.get(url)  # warm: slots, the cache generation, the events schedule
        event.listen(engine, "checkout", listener)
        try:
            assert anon.get(url).status_code == 200, url
        finally:
            event.remove(engine, "checkout", listener)
        assert checkouts == [], url


def query_plan(settings: Any, query: Any, values: dict[str, Any]) -> list[str]:
    """The database's plan for ``query`` with ``values`` (plus ``now``), one line per step.

    PostgreSQL is told not to scan tables whole, so that on the tests' tiny tables it shows which
    index it would read on large ones.
    """
    from concelho.suite.db import sync_url
    from sqlalchemy import create_engine

    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            compiled = query.compile(dialect=conn.dialect)
            sqlite = conn.dialect.name == "sqlite"
            now = "2026-11-29 00:00:00.000000" if sqlite else datetime(2026, 11, 29, tzinfo=UTC)
            params = compiled.construct_params({**values, "now": now})
            args = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
            if not sqlite:
                conn.exec_driver_sql("SET enable_seqscan = off")
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            return [str(row) for row in conn.exec_driver_sql(explain + compiled.string, args).all()]
    finally:
        engine.dispose()


def test_home_highlights_read_the_partial_highlight_index(app, settings):
    """The highlights query repeats the partial index's condition, so the database reads that index
    (a few rows) instead of every item; on PostgreSQL the planner must prove the same implication."""
    from concelho.suite.pages import _highlights_query

    query = _highlights_query(tuple(app.state.suite.registry.content_types()))
    plan = query_plan(settings, query, {"language": "pt"})
    assert any("ix_core_content_highlight" in row for row in plan), plan


@pytest.mark.parametrize("by_category", [False, True], ids=["all", "category"])
def test_portal_listings_and_their_counts_read_the_live_index(settings, by_category):
    """A listing page and its total read ``ix_core_content_live``: on SQLite the count reads nothing
    but the index (long articles keep the columns it tests on overflow pages), neither part scans the
    table, and the page's rows come in listing order (newest first, then by id) with no sort."""
    from concelho.suite.content.portal import CARD_COLUMNS, _default_listing

    query = _default_listing(by_category, CARD_COLUMNS)
    values = {"type": "news.article", "language": "pt", "category": "obras", "limit": 10, "offset": 0}
    plan = query_plan(settings, query, values)
    assert sum("ix_core_content_live" in row for row in plan) >= 2, plan  # the page's rows and the count
    if settings.database_url.startswith("sqlite"):
        assert any("COVERING INDEX ix_core_content_live" in row for row in plan), plan
        assert not any("SCAN core_content" in row for row in plan), plan
        assert not any("TEMP B-TREE" in row for row in plan), plan


def test_stored_tags_are_clean_text_once_each():
    from concelho.suite.content.tags import clean_tags, wanted_tags

    raw = [" ponte ", "ponte", "rio\x1fSereno", "\t", None, 7, "a\x7fb"]
    assert clean_tags(raw) == ["ponte", "rioSereno", "7", "ab"]
    assert clean_tags(["a", "b", "c"], limit=2) == ["a", "b"]
    assert wanted_tags(["ponte", "rio\x1f"]) == "\x1fponte\x1frio\x1f"


def test_a_query_string_that_is_not_utf8_still_gets_the_page(anon):
    """Browsers percent-encode, but raw bytes in the query must fail neither a page, its cached copy, the 404
    page nor the sign-in redirect (which passes them on percent-encoded)."""

    async def get(path: str, query: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"testserver.local")],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver.local", 80),
            "state": {},
        }
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = dict(message["headers"])
            else:
                answer["body"] += message.get("body", b"")

        await anon.app(scope, receive, send)
        return answer["status"], answer["body"], answer["headers"]

    query = b"categoria=\xff\xfe&pagina=1"
    for path in ("/", "/noticias", "/accessibility"):
        for _ in range(2):  # rendered, then served from the page cache
            status, body, _headers = anon.blocking_portal.call(get, path, query)
            assert status == 200, (path, body[:300])
            assert b"<h1" in body
    status, body, _headers = anon.blocking_portal.call(get, "/noticias/nao-existe", query)
    assert status == 404 and b"<h1" in body, body[:300]
    status, body, _headers = anon.blocking_portal.call(get, "/open311/v2/services.json", query)
    assert status == 200 and body.startswith(b"["), body[:300]
    status, _body, headers = anon.blocking_portal.call(get, "/intranet/content/", query)
    assert status == 303
    assert headers[b"location"] == b"/login?next=/intranet/content%3Fcategoria%3D%FF%FE%26pagina%3D1"
