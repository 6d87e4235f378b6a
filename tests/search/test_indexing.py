"""Search integration on SQLite and PostgreSQL with the embedded engine.

The transactional outbox (every content change writes a row in its own transaction), the indexer
(drain, back-off, recovery after the engine was down: the index equals the database), visibility
of private workspace items in the API (hits, totals and facets), the CLI and the worker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from concelho.search.contract import SearchQuery, SearchUnavailable, Visibility
from concelho.search.indexing import Indexer, acquire_lease, backoff, release_lease
from concelho.search.models import SearchOutbox
from concelho.search.providers import Providers
from concelho.search.visibility import can_see, visibility_for
from concelho.suite.auth.permissions import CurrentUser
from concelho.suite.content.importer import import_content
from concelho.suite.content.models import ContentItem
from concelho.suite.content.service import ContentInput, delete_item, publish_scheduled, save
from concelho.suite.db import Database
from concelho.suite.models import Department, User
from sqlalchemy import select, update

from ..conftest import login, post_form
from .integration import (
    EVERYTHING,
    BrokenEngine,
    act,
    create_item,
    database_ids,
    drain,
    index_ids,
    outbox_count,
    outbox_rows,
    quiet_settings,  # noqa: F401  (the `settings` fixture without in-process jobs)
    run,
    started_client,  # noqa: F401  (the `client` fixture, after the search start-up)
    with_db,
)


def api(client, q: str, **params):  # type: ignore[no-untyped-def]
    response = client.get("/api/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------------------------------------
# The outbox is written in the same transaction as the change
# ------------------------------------------------------------------------------------------------
def test_every_content_change_writes_an_outbox_row_in_its_transaction(app, settings):
    ctype = app.state.suite.registry.content_types()["news.article"]

    async def rolled_back(session):  # type: ignore[no-untyped-def]
        await save(session, ctype, ContentInput(title="Nunca gravado"), status="published")
        await session.rollback()

    with_db(settings, rolled_back)
    assert outbox_count(settings) == 0  # the rollback took the outbox row with it

    item_id = create_item(app, settings, "Feira do livro")
    act(settings, item_id, "unpublish")

    async def remove(session):  # type: ignore[no-untyped-def]
        await delete_item(session, await session.get(ContentItem, item_id), actor="test")
        await session.commit()

    with_db(settings, remove)
    doc_id = f"news.article:{item_id}"
    assert outbox_rows(settings) == [(doc_id, "upsert", 0, ""), (doc_id, "upsert", 0, ""), (doc_id, "delete", 0, "")]


def test_the_importer_writes_outbox_rows_in_bulk_and_a_dry_run_none(app, settings, tmp_path: Path):
    path = tmp_path / "news.jsonl"
    rows = [{"id": f"imp-{n}", "type": "news", "title": f"Notícia importada {n}", "body": "texto"} for n in range(7)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    types = app.state.suite.registry.content_types()

    with_db(settings, lambda s: import_content(s, path, types, dry_run=True))
    assert outbox_count(settings) == 0
    summary = with_db(settings, lambda s: import_content(s, path, types))
    assert summary.created == 7
    assert outbox_count(settings) == 7
    assert drain(app, settings).upserted == 7
    assert api(app_client(app), "importada")["total"] == 7


def app_client(app):  # type: ignore[no-untyped-def]
    from litestar.testing import TestClient

    return TestClient(app, base_url="http://testserver.local")


def test_scheduled_publication_and_expiry_go_through_the_outbox(app, settings):
    soon = create_item(app, settings, "Concerto de ano novo", status="draft")
    later = create_item(app, settings, "Exposição temporária")

    async def schedule(session):  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        await session.execute(
            update(ContentItem).where(ContentItem.id == soon).values(status="published", publish_at=now - timedelta(1))
        )
        await session.execute(update(ContentItem).where(ContentItem.id == later).values(unpublish_at=now))
        await session.commit()
        return await publish_scheduled(session, now + timedelta(seconds=1))

    drain(app, settings)
    assert with_db(settings, schedule) == {"archived": 1, "published": 1}
    assert {d for d, *_ in outbox_rows(settings)} == {f"news.article:{soon}", f"news.article:{later}"}
    drain(app, settings)
    assert index_ids(app) == {f"news.article:{soon}"} == database_ids(app, settings)


# ------------------------------------------------------------------------------------------------
# Editor → outbox → index → portal
# ------------------------------------------------------------------------------------------------
def test_editor_publishes_and_after_draining_the_item_is_searchable_then_gone(app, client, make_user, settings):
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    created = post_form(
        client,
        "/intranet/content/new?type=news.article",
        {"title": "Requalificação do mercado municipal", "summary": "Obras no mercado", "language": "pt",
         "audience": "public", "body": "O mercado reabre em março."},
    )  # fmt: skip
    assert created.status_code == 303
    item_url = created.headers["location"].split("?")[0]
    item_id = int(item_url.rsplit("/", 1)[1])
    doc_id = f"news.article:{item_id}"
    drain(app, settings)
    assert api(client, "mercado")["total"] == 0  # a draft is never indexed

    assert post_form(client, f"{item_url}/action", {"action": "publish"}).status_code == 303
    assert outbox_count(settings) == 1
    assert api(client, "mercado")["total"] == 0  # not before the outbox is drained
    result = drain(app, settings)
    assert (result.processed, result.upserted, result.failed) == (1, 1, 0)
    assert outbox_count(settings) == 0
    found = api(client, "mercado")
    assert [h["id"] for h in found["hits"]] == [doc_id]
    assert found["hits"][0]["url"] == "/noticias/requalificacao-do-mercado-municipal"
    assert "<mark>" in found["hits"][0]["snippet"]

    assert post_form(client, f"{item_url}/action", {"action": "unpublish"}).status_code == 303
    drain(app, settings)
    assert api(client, "mercado")["total"] == 0

    assert post_form(client, f"{item_url}/action", {"action": "publish"}).status_code == 303
    drain(app, settings)
    assert api(client, "mercado")["total"] == 1
    assert post_form(client, f"{item_url}/action", {"action": "archive"}).status_code == 303
    drain(app, settings)
    assert api(client, "mercado")["total"] == 0
    assert index_ids(app) == database_ids(app, settings) == set()


def test_edits_and_deletes_reach_the_index(app, client, make_user, settings):
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    item_id = create_item(app, settings, "Piscina municipal encerrada")
    drain(app, settings)
    assert api(client, "piscina")["total"] == 1
    form = {"title": "Piscina municipal reaberta", "language": "pt", "audience": "public", "body": "Já abriu."}
    assert post_form(client, f"/intranet/content/{item_id}", form).status_code == 303
    drain(app, settings)
    assert [h["title"] for h in api(client, "piscina")["hits"]] == ["Piscina municipal reaberta"]
    assert post_form(client, f"/intranet/content/{item_id}/delete").status_code == 303
    assert outbox_rows(settings)[-1][:2] == (f"news.article:{item_id}", "delete")
    drain(app, settings)
    assert api(client, "piscina")["total"] == 0


# ------------------------------------------------------------------------------------------------
# Visibility
# ------------------------------------------------------------------------------------------------
def test_private_workspace_item_never_reaches_anonymous_visitors_or_non_members(app, client, make_user, settings):
    public_id = create_item(app, settings, "Plano de mobilidade zebra", category="mobilidade")
    private_id = create_item(
        app, settings, "Plano confidencial zebra", audience="workspace", workspace_id=7, category="orçamento"
    )
    drain(app, settings)
    backend = app.state.suite.search
    # It is in the index (members will find it) …
    member = Visibility(authenticated=True, workspace_ids=frozenset({7}))
    found = backend.search(SearchQuery("zebra", visibility=member))
    assert {h.id for h in found.hits} == {f"news.article:{public_id}", f"news.article:{private_id}"}
    assert backend.count(EVERYTHING) == 2

    # … but never in anonymous results, totals or facets.
    anonymous = api(client, "zebra")
    assert [h["id"] for h in anonymous["hits"]] == [f"news.article:{public_id}"]
    assert anonymous["total"] == 1
    assert anonymous["facets"]["category"] == {"mobilidade": 1}
    assert anonymous["facets"]["type"] == {"news.article": 1}
    assert api(client, "confidencial") == {**api(client, "confidencial"), "total": 0, "hits": []}
    assert api(client, "confidencial", category="orçamento")["total"] == 0
    assert "confidencial" not in client.get("/pesquisa", params={"q": "zebra"}).text

    # A signed-in employee who is not a member of workspace 7 does not see it either.
    make_user("funcionario")
    login(client, "funcionario")
    employee = api(client, "zebra")
    assert employee["total"] == 1 and employee["facets"]["category"] == {"mobilidade": 1}
    page = client.get("/intranet/pesquisa", params={"q": "zebra"})
    assert page.status_code == 200 and "confidencial" not in page.text


def test_intranet_visibility_comes_from_current_memberships(app, client, make_user, settings, monkeypatch):
    create_item(app, settings, "Ata reservada do gabinete", audience="workspace", workspace_id=7)
    create_item(app, settings, "Circular interna sobre férias", audience="internal")
    drain(app, settings)
    user_id = make_user("membro")
    login(client, "membro")
    members: set[int] = set()

    async def hook(session, uid):  # type: ignore[no-untyped-def]
        return {7} if uid == user_id and user_id in members else set()

    monkeypatch.setattr(type(app.state.suite.registry), "workspace_ids_for", lambda self, s, uid: hook(s, uid))
    assert "Ata reservada" not in client.get("/intranet/pesquisa", params={"q": "ata reservada"}).text
    members.add(user_id)  # joins the workspace: no new session needed
    assert "Ata reservada" in client.get("/intranet/pesquisa", params={"q": "ata reservada"}).text
    assert api(client, "reservada")["total"] == 1  # the API uses the same visibility
    assert "Circular interna" in client.get("/intranet/pesquisa", params={"q": "circular"}).text
    assert api(app_client(app), "circular")["total"] == 0  # internal: employees only
    members.clear()
    assert "Ata reservada" not in client.get("/intranet/pesquisa", params={"q": "ata reservada"}).text


def test_visibility_reads_the_department_now(app, settings, make_user):
    user_id = make_user("movido")

    async def op(session):  # type: ignore[no-untyped-def]
        dept = Department(name="Obras", code="OBR")
        session.add(dept)
        await session.flush()
        user = CurrentUser(id=user_id, username="movido", name="", email="", is_superuser=False, department_id=None,
                           permissions=frozenset({"intranet.access"}))  # fmt: skip
        before = await visibility_for(session, app.state.suite.registry, user)
        await session.execute(update(User).where(User.id == user_id).values(department_id=dept.id))
        after = await visibility_for(session, app.state.suite.registry, user)
        return before, after, dept.id

    before, after, dept_id = with_db(settings, op)
    assert before.department_ids == frozenset() and after.department_ids == frozenset({dept_id})
    assert after.authenticated and not after.everything
    assert can_see(Visibility(department_ids=frozenset({dept_id})), "internal", department_ids=[dept_id])
    assert not can_see(Visibility(department_ids=frozenset({dept_id})), "workspace", [1], [dept_id])
    assert not can_see(Visibility.anonymous(), "internal")


# ------------------------------------------------------------------------------------------------
# The engine dies: writes keep working, nothing is lost
# ------------------------------------------------------------------------------------------------
def test_killing_the_engine_during_writes_loses_nothing(app, client, make_user, settings, tmp_path):
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    kept = create_item(app, settings, "Biblioteca com horário de verão")
    gone = create_item(app, settings, "Festival de música na praça")
    drain(app, settings)
    assert index_ids(app) == database_ids(app, settings)
    backend = app.state.suite.search

    with BrokenEngine(backend):
        # Writes through the editor, the service, the importer: every one succeeds.
        created = post_form(
            client, "/intranet/content/new?type=news.article",
            {"title": "Nova ciclovia ribeirinha", "language": "pt", "audience": "public"},
        )  # fmt: skip
        assert created.status_code == 303
        new_url = created.headers["location"].split("?")[0]
        assert post_form(client, f"{new_url}/action", {"action": "publish"}).status_code == 303
        assert post_form(client, f"/intranet/content/{gone}/action", {"action": "archive"}).status_code == 303
        create_item(app, settings, "Mercado de natal", summary="Bancas no largo")
        path = tmp_path / "more.jsonl"
        path.write_text(json.dumps({"id": "x-1", "type": "news", "title": "Importada com motor parado"}) + "\n")
        with_db(settings, lambda s: import_content(s, path, app.state.suite.registry.content_types()))
        backlog = outbox_count(settings)
        assert backlog >= 5

        failed = drain(app, settings)
        assert failed.failed == backlog and failed.processed == 0 and "engine killed" in (failed.error or "")
        rows = outbox_rows(settings)
        assert len(rows) == backlog and all(attempts == 1 and "engine killed" in err for _, _, attempts, err in rows)
        drain(app, settings)
        assert {attempts for _, _, attempts, _ in outbox_rows(settings)} == {2}

        create_item(app, settings, "Ainda mais uma notícia")
        assert outbox_count(settings) == backlog + 1  # the backlog grows while the engine is down

        # Searching still works, from the database, politely.
        page = client.get("/pesquisa", params={"q": "mercado"})
        assert page.status_code == 200
        assert "simplified way" in page.text or "forma simplificada" in page.text
        assert "Mercado de natal" in page.text
        fallback = api(client, "ciclovia")
        assert fallback["fallback"] is True and [h["title"] for h in fallback["hits"]] == ["Nova ciclovia ribeirinha"]

    # The engine is back: one drain and the index equals the database, exactly.
    recovered = drain(app, settings)
    assert recovered.failed == 0 and outbox_count(settings) == 0
    expected = database_ids(app, settings)
    assert index_ids(app) == expected
    assert f"news.article:{kept}" in expected and f"news.article:{gone}" not in expected
    assert len(expected) == 5
    assert api(client, "ciclovia")["fallback"] is False


def test_failed_rows_wait_with_exponential_backoff(app, settings):
    create_item(app, settings, "Aviso de corte de água")
    backend = app.state.suite.search
    with BrokenEngine(backend):
        assert drain(app, settings, retry_now=False).failed == 1
        assert drain(app, settings, retry_now=False).processed == 0  # not due yet: nothing tried

    async def next_attempt(session):  # type: ignore[no-untyped-def]
        row = (await session.execute(select(SearchOutbox))).scalar_one()
        return row.attempts, row.next_attempt_at

    attempts, when = with_db(settings, next_attempt)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    assert attempts == 1 and when > datetime.now(UTC)
    assert [backoff(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 64, 120, 120]
    assert drain(app, settings, retry_now=False).processed == 0
    assert drain(app, settings, retry_now=True).processed == 1  # `suite search drain` retries at once


def test_one_refused_document_does_not_hold_back_the_others(app, settings):
    good = [create_item(app, settings, f"Notícia boa {n}") for n in range(3)]
    bad = create_item(app, settings, "Notícia recusada")
    backend = app.state.suite.search
    original = backend.upsert

    def picky(documents):  # type: ignore[no-untyped-def]
        if any(d.id == f"news.article:{bad}" for d in documents):
            raise SearchUnavailable("document refused")
        return original(documents)

    backend.upsert = picky
    try:
        result = drain(app, settings)
    finally:
        del backend.upsert
    assert result.upserted == 3 and result.failed == 1
    assert index_ids(app) == {f"news.article:{i}" for i in good}
    assert [(d, attempts) for d, _, attempts, _ in outbox_rows(settings)] == [(f"news.article:{bad}", 1)]


def test_only_one_indexer_drains_at_a_time(app, settings):
    create_item(app, settings, "Concurso de fotografia")

    async def go():  # type: ignore[no-untyped-def]
        database = Database(settings.database_url)
        try:
            state = app.state.suite
            first = Indexer(database.sessionmaker, state.search, Providers.from_registry(state.registry))
            second = Indexer(database.sessionmaker, state.search, Providers.from_registry(state.registry))
            assert await acquire_lease(database.sessionmaker, first.owner)
            busy = await second.drain()
            await release_lease(database.sessionmaker, first.owner)
            done = await second.drain()
            return busy, done
        finally:
            await database.dispose()

    busy, done = run(go())
    assert busy.busy and busy.processed == 0
    assert not done.busy and done.processed == 1


# ------------------------------------------------------------------------------------------------
# CLI and worker
# ------------------------------------------------------------------------------------------------
def test_cli_reindex_status_query_and_drain(app, cli, settings, make_user):
    ids = [create_item(app, settings, f"Obras na escola {n}", summary="Escola básica") for n in range(3)]
    create_item(app, settings, "Orçamento participativo", type_="news.article", category="orçamento")
    create_item(app, settings, "Regulamento interno", audience="internal")
    make_user("funcionaria")

    status = cli("search", "status", "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert report["engine"]["ok"] is True and report["engine"]["backend"] == "embedded"
    assert report["outbox"]["backlog"] == 5 and report["in_sync"] is False
    assert report["types"]["news.article"]["database"] == 5 and report["types"]["news.article"]["index"] == 0

    drained = cli("search", "drain", "--json")
    assert drained.exit_code == 0, drained.output
    assert json.loads(drained.stdout)["upserted"] == 5

    reindexed = cli("search", "reindex", "--json")
    assert reindexed.exit_code == 0, reindexed.output
    assert json.loads(reindexed.stdout)["indexed"] == 5
    report = json.loads(cli("search", "status", "--json").stdout)
    assert report["in_sync"] is True and report["types"]["news.article"] == {
        "label": "News article", "database": 5, "index": 5,
    }  # fmt: skip

    only = cli("search", "reindex", "--type", "news.article")
    assert only.exit_code == 0 and "indexed 5 document(s)" in only.stdout
    assert cli("search", "reindex", "--type", "nope.nothing").exit_code == 1

    query = json.loads(cli("search", "query", "escola", "--json").stdout)
    assert query["total"] == 3 and {h["id"] for h in query["hits"]} == {f"news.article:{i}" for i in ids}
    assert json.loads(cli("search", "query", "regulamento", "--json").stdout)["total"] == 0
    as_employee = json.loads(cli("search", "query", "regulamento", "--as", "funcionaria", "--json").stdout)
    assert as_employee["total"] == 1 and as_employee["visibility"]["authenticated"] is True
    typed = json.loads(cli("search", "query", "escola", "--type", "services.service", "--json").stdout)
    assert typed["total"] == 0
    assert cli("search", "query", "escola", "--as", "ninguem").exit_code == 1
    table = cli("search", "query", "orcamento")
    assert table.exit_code == 0 and "Orçamento participativo" in table.stdout
    human = cli("search", "status")
    assert human.exit_code == 0 and "in sync" in human.stdout


def test_worker_once_runs_the_jobs_and_indexes(app, cli, settings):
    create_item(app, settings, "Horário das piscinas")
    result = cli("worker", "--once", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["index_search"]["upserted"] == 1
    assert json.loads(cli("search", "status", "--json").stdout)["outbox"]["backlog"] == 0


def test_cli_status_exits_1_when_the_engine_is_unreachable(cli, settings):
    result = cli("search", "status", "--json", env={"SUITE_SEARCH_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["engine"]["ok"] is False and report["engine"]["backend"] == "meilisearch"
    assert "unreachable" in report["engine"]["detail"]


@pytest.mark.parametrize("background", [True])
def test_in_process_job_indexes_soon_after_a_change(tmp_path, database_url, background):
    """With background jobs on (the default), a published item is searchable within seconds, no drain needed."""
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    from ..conftest import settings_for, wait_for

    live = settings_for(tmp_path / "live", database_url)
    assert live.background_jobs is background
    app = create_app(live)
    with TestClient(app, base_url="http://testserver.local") as client:
        create_item(app, live, "Campanha de vacinação animal")
        assert wait_for(lambda: api(client, "vacinação")["total"] == 1, timeout=15)
        assert wait_for(lambda: outbox_count(live) == 0, timeout=5)


def test_an_empty_index_is_rebuilt_at_start_up(tmp_path, database_url):
    """A new engine (or an embedded index of an older schema) is refilled from the database on start-up."""
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    from ..conftest import settings_for, wait_for

    quiet = settings_for(tmp_path / "var", database_url, SUITE_BACKGROUND_JOBS="false")
    app = create_app(quiet)
    create_item(app, quiet, "Roteiro das capelas")
    create_item(app, quiet, "Rascunho das capelas", status="draft")
    with TestClient(app, base_url="http://testserver.local") as client:
        assert wait_for(lambda: api(client, "capelas")["total"] == 1, timeout=15)
    assert index_ids(app) == database_ids(app, quiet)
