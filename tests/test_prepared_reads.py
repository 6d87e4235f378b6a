"""Prepared SQLite reads (suite/prepared.py): the same rows as SQLAlchemy, the same pages, plain statements only."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from typing import Any

import pytest
from concelho.suite.content import portal
from concelho.suite.content.models import ContentAttachment, ContentItem
from concelho.suite.prepared import MAX_STATEMENTS, PreparedStatements, prepare
from sqlalchemy import bindparam, create_engine, select, text
from sqlalchemy.orm import Session

from .conftest import settings_for

CSRF = re.compile(r"[0-9a-f]{64,}")


@pytest.fixture
def database_url(sqlite_template, tmp_path):  # type: ignore[no-untyped-def]
    """SQLite only: prepared statements are for its inline reads (PostgreSQL reads go through SQLAlchemy)."""
    target = tmp_path / "suite.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def settings(tmp_path, database_url):  # type: ignore[no-untyped-def]
    """No page cache: every request reads the database."""
    return settings_for(tmp_path / "var", database_url, SUITE_PAGE_CACHE="false")


def _pages(client: Any) -> dict[str, str]:
    paths = ["/", "/noticias", "/noticias?categoria=obras", "/noticias?page=2", "/agenda", "/servicos", "/locais"]
    paths += ["/camara", "/noticias/nao-existe"]
    for listing, pattern in (
        ("/noticias", r'href="(/noticias/(?!feed\.)[^"?/]+)"'),
        ("/servicos", r'href="(/servicos/[^"?/]+)"'),
        ("/locais", r'href="(/locais/(?!mapa|locais\.geojson)[^"?/]+)"'),
    ):
        paths.extend(re.findall(pattern, client.get(listing).text)[:3])
    out = {}
    for lang in ("pt", "en"):
        for path in paths:
            for _ in range(2):  # a statement is prepared on its second use
                response = client.get(path, headers={"accept-language": lang})
            out[f"{lang} {path}"] = f"{response.status_code} {CSRF.sub('TOKEN', response.text)}"
    return out


def test_pages_read_through_prepared_statements_are_the_same(cli, client, app, monkeypatch):
    reads = app.state.suite.database.reads
    assert reads.sync_engine is not None
    assert cli("demo", "load").exit_code == 0
    ran: list[str] = []
    reads.on_prepared.append(ran.append)
    prepared = _pages(client)
    assert ran, "no statement went through the prepared path"
    assert any("FROM core_content" in sql for sql in ran)
    ran.clear()
    with monkeypatch.context() as patch:
        patch.setattr(PreparedStatements, "get", lambda self, statement: None)
        plain = _pages(client)
    assert not ran
    assert prepared.keys() == plain.keys()
    for key, page in prepared.items():
        assert page == plain[key], f"{key} differs when read through SQLAlchemy"
    assert "200 " in prepared["pt /noticias"] and "404 " in prepared["pt /noticias/nao-existe"]


def _fill(engine: Any) -> None:
    with Session(engine) as session:
        for n in range(3):
            session.add(
                ContentItem(
                    type="news.article",
                    slug=f"artigo-{n}",
                    title=f'Artigo <{n}> & "aspas"',
                    summary="Resumo",
                    language="pt",
                    status="published",
                    audience="public",
                    category="obras" if n else "",
                    tags=["ponte", f"t{n}"],
                    data={"n": n, "nested": {"a": [1, 2]}},
                    published_at=datetime(2026, 1, n + 1, 9, 30, tzinfo=UTC),
                )
            )
        session.commit()


def test_prepared_rows_equal_sqlalchemy_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'prepared.db'}"
    engine = create_engine(url)
    try:
        # The content table and the attachments one (the item query asks whether it has any);
        # SQLite checks no foreign key here.
        ContentItem.__table__.create(engine)
        ContentAttachment.__table__.create(engine)
        _fill(engine)
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            live = portal.live_params(type="news.article", language="pt", slug="artigo-1")
            cases = [
                (portal._default_listing(False), {**live, "category": "", "limit": 10, "offset": 0}),
                (
                    portal._default_listing(True, portal.CARD_COLUMNS),
                    {**live, "category": "obras", "limit": 2, "offset": 0},
                ),
                (portal._ITEM_AND_TRANSLATIONS, live),
                (select(ContentItem.__table__).where(ContentItem.id == bindparam("id")), {"id": 2}),
            ]
            for statement, params in cases:
                ours = prepare(statement, engine.dialect)
                assert ours is not None
                mine, theirs = ours.run(raw, params), conn.execute(statement, params).all()
                assert mine and [tuple(row) for row in mine] == [tuple(row) for row in theirs]
                assert mine[0]._fields == tuple(theirs[0]._fields)
                assert mine[0].published_at == theirs[0].published_at
                assert mine[0].title == theirs[0].title
            full = prepare(cases[0][0], engine.dialect)
            assert full is not None
            first = full.run(raw, cases[0][1])[0]
            assert isinstance(first.published_at, datetime) and first.tags and isinstance(first.data, dict)
            with pytest.raises(KeyError, match="limit"):
                full.run(raw, {k: v for k, v in cases[0][1].items() if k != "limit"})
    finally:
        engine.dispose()


def test_only_plain_statements_are_prepared_and_memory_stays_bounded():
    engine = create_engine("sqlite://")
    try:
        dialect = engine.dialect
        table = ContentItem.__table__
        assert prepare(select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True))), dialect) is None
        assert prepare(select(table.c.id, table.c.id.label("id")), dialect) is None  # duplicate names
        assert prepare(text("SELECT 1"), dialect) is None
        statements = PreparedStatements(dialect)
        plain = select(table.c.id).where(table.c.slug == bindparam("slug"))
        assert statements.get(plain) is None  # first sight: SQLAlchemy runs it
        assert statements.get(plain) is not None  # second: prepared
        for n in range(MAX_STATEMENTS + 50):
            statements.get(select(table.c.id).where(table.c.sort_order == n))
        assert len(statements._known) <= MAX_STATEMENTS
    finally:
        engine.dispose()
