"""Search pages and API on SQLite and PostgreSQL with the embedded engine.

Portal search with and without HTMX, facets and scopes, pagination, "did you mean", best bets,
synonyms, the zero-result report, the intranet search, the JSON API and its OpenAPI schema,
OpenSearch, and the polite database fallback when the engine is down.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from concelho.search.models import SearchMiss, SearchSynonym
from sqlalchemy import select

from ..conftest import login, post_form
from .integration import (  # noqa: F401  (quiet_settings, started_client: fixtures)
    BrokenEngine,
    create_item,
    drain,
    quiet_settings,
    started_client,
    with_db,
)

HTMX = {"HX-Request": "true"}


def results_block(html: str) -> str:
    match = re.search(r'<div id="search-results".*', html, re.S)
    assert match, "no results block"
    return match.group(0)


def titles(html: str) -> list[str]:
    return re.findall(r'<li class="search-hit">.*?<h3><a href="[^"]*"[^>]*>(.*?)</a>', html, re.S)


def seed(app, settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ids = {
        "news": create_item(app, settings, "Obras na biblioteca municipal", summary="A biblioteca fecha para obras",
                            category="obras"),
        "news_en": create_item(app, settings, "Library works", summary="The biblioteca closes", language="en",
                               category="obras"),
        "service": create_item(app, settings, "Cartão de leitor da biblioteca", type_="services.service",
                               summary="Pedir o cartão da biblioteca", data={"service_code": "BIB-01"}),
        "internal": create_item(app, settings, "Escala de turnos da biblioteca", audience="internal"),
    }  # fmt: skip
    drain(app, settings)
    return ids


# ------------------------------------------------------------------------------------------------
# Portal search
# ------------------------------------------------------------------------------------------------
def test_portal_search_page_without_and_with_htmx(app, client, settings):
    seed(app, settings)
    page = client.get("/pesquisa", params={"q": "biblioteca"})
    assert page.status_code == 200
    html = page.text
    assert html.startswith("<!doctype html>") and html.count("<h1") == 1
    # Works without JavaScript: a GET form; with HTMX the input searches as you type.
    form = re.search(r'<form id="search-form"[^>]*>', html).group(0)
    assert 'method="get"' in form and 'action="/pesquisa"' in form
    field = re.search(r'<input type="search" id="search-q"[^>]*>', html, re.S).group(0)
    assert 'hx-get="/pesquisa"' in field and 'hx-trigger="keyup changed delay:300ms, search"' in field
    assert 'hx-target="#search-results"' in field and 'value="biblioteca"' in field
    assert set(titles(html)) == {"Obras na biblioteca municipal", "Library works", "Cartão de leitor da biblioteca"}
    assert "Escala de turnos" not in html  # internal: not on the portal
    assert "<mark>" in html and "Vary" in page.headers and "HX-Request" in page.headers["vary"]

    fragment = client.get("/pesquisa", params={"q": "biblioteca"}, headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="search-results"') and "<html" not in fragment.text
    assert set(titles(fragment.text)) == set(titles(html))

    empty = client.get("/pesquisa")
    assert empty.status_code == 200 and titles(empty.text) == []


def test_facets_filter_by_type_category_and_language(app, client, settings):
    seed(app, settings)
    html = client.get("/pesquisa", params={"q": "biblioteca"}).text
    block = results_block(html)
    for param, value in (("tipo", "noticias"), ("tipo", "servicos"), ("categoria", "obras"), ("lingua", "en")):
        assert re.search(rf'<input type="checkbox" [^>]*name="{param}" value="{value}"', block), (param, value)
    assert re.search(r'name="tipo" value="noticias">\s*<label[^>]*>[^<]*<span class="facet-count">\(2\)', block)

    news = client.get("/pesquisa", params={"q": "biblioteca", "tipo": "noticias"}).text
    assert set(titles(news)) == {"Obras na biblioteca municipal", "Library works"}
    assert re.search(r'name="tipo" value="noticias" checked', news)
    english = client.get("/pesquisa", params={"q": "biblioteca", "tipo": "noticias", "lingua": "en"})
    assert titles(english.text) == ["Library works"]
    services = client.get("/pesquisa", params={"q": "biblioteca", "categoria": "obras", "tipo": "servicos"}).text
    assert titles(services) == []


def test_scoped_searches_map_to_types(app, client, settings):
    seed(app, settings)
    scoped = client.get("/pesquisa", params={"q": "biblioteca", "tipo": "servicos"})
    assert "<h1>Pesquisar serviços</h1>" in scoped.text
    assert titles(scoped.text) == ["Cartão de leitor da biblioteca"]
    assert "<h1>Pesquisar notícias</h1>" in client.get("/pesquisa?tipo=noticias").text
    empty_scope = client.get("/pesquisa?tipo=documentos").text
    assert '<input type="hidden" name="tipo" value="documentos">' in empty_scope  # kept while typing
    assert titles(client.get("/pesquisa", params={"q": "biblioteca", "tipo": "documentos"}).text) == []


def test_pagination_and_highlighted_snippets(app, client, settings):
    for n in range(13):
        create_item(app, settings, f"Aviso de trânsito número {n}", summary=f"Condicionamento <b>{n}</b> na rua")
    drain(app, settings)
    first = client.get("/pesquisa", params={"q": "trânsito"}).text
    assert len(titles(first)) == 10 and "13 resultados" in first
    assert 'rel="next"' in first and 'href="/pesquisa?q=tr%C3%A2nsito&amp;page=2"' in first
    second = client.get("/pesquisa", params={"q": "trânsito", "page": 2}).text
    assert len(titles(second)) == 3 and 'rel="prev"' in second and 'start="11"' in second
    hits = results_block(first).split('<ol class="search-hits"')[1]
    assert "&lt;b&gt;" in hits and "<b>" not in hits  # snippets are escaped text with <mark> only


def test_did_you_mean_offers_a_correction(app, client, settings):
    create_item(app, settings, "Biblioteca municipal renovada", summary="A biblioteca abre ao sábado")
    drain(app, settings)
    html = client.get("/pesquisa", params={"q": "rxnovxda"}).text
    suggestion = re.search(r'<p class="search-suggestion">.*?</p>', html, re.S).group(0)
    assert "Queria dizer" in suggestion and "<strong>renovada</strong>" in suggestion
    assert 'href="/pesquisa?q=renovada"' in suggestion
    assert client.get("/api/search", params={"q": "rxnovxda"}).json()["suggestion"] == "renovada"


def test_zero_result_queries_are_logged_for_the_editors_report(app, client, make_user, settings):
    seed(app, settings)
    for _ in range(3):
        client.get("/pesquisa", params={"q": "  Recolha   de MONSTROS "})
    client.get("/pesquisa", params={"q": "licença de caça"}, headers=HTMX)
    client.get("/pesquisa", params={"q": "biblioteca"})  # found something: not logged

    async def misses(session):  # type: ignore[no-untyped-def]
        rows = await session.execute(select(SearchMiss.query, SearchMiss.count).order_by(SearchMiss.count.desc()))
        return [tuple(r) for r in rows]

    assert with_db(settings, misses) == [("recolha de monstros", 3), ("licença de caça", 1)]

    make_user("funcionario")
    login(client, "funcionario")
    assert client.get("/intranet/pesquisa/relatorio").status_code == 403
    make_user("editora", roles=["editor"])
    client.cookies.clear()
    login(client, "editora")
    report = client.get("/intranet/pesquisa/relatorio")
    assert report.status_code == 200 and "<h1>Pesquisas sem resultados</h1>" in report.text
    rows = re.findall(r"<tr>\s*<td><a [^>]*>(.*?)</a></td>\s*<td>(\d+)</td>", report.text)
    assert rows == [("recolha de monstros", "3"), ("licença de caça", "1")]
    miss_id = re.search(r'action="/intranet/pesquisa/relatorio/(\d+)/apagar"', report.text).group(1)
    assert post_form(client, f"/intranet/pesquisa/relatorio/{miss_id}/apagar").status_code == 303
    assert len(re.findall(r"<tr>\s*<td><a ", client.get("/intranet/pesquisa/relatorio").text)) == 1


# ------------------------------------------------------------------------------------------------
# Best bets and synonyms
# ------------------------------------------------------------------------------------------------
def test_best_bets_pin_results_for_a_query(app, client, make_user, settings):
    ids = seed(app, settings)
    make_user("editora", roles=["editor"])
    login(client, "editora")
    finder = client.get("/intranet/pesquisa/destaques", params={"q": "cartão"})
    assert finder.status_code == 200 and "Cartão de leitor da biblioteca" in finder.text
    service = f"services.service:{ids['service']}"
    assert post_form(client, "/intranet/pesquisa/destaques", {"query": "Horário", "doc_id": service}).status_code == 303
    link = {"query": "horário", "url": "/camara/contactos", "title": "Contactos e horários"}
    assert post_form(client, "/intranet/pesquisa/destaques", link).status_code == 303
    internal = {"query": "horário", "doc_id": f"news.article:{ids['internal']}"}
    assert post_form(client, "/intranet/pesquisa/destaques", internal).status_code == 303
    bad = post_form(client, "/intranet/pesquisa/destaques", {"query": "x", "url": "javascript:alert(1)"})
    assert bad.status_code == 400 and "Use um endereço começado por" in bad.text
    missing = post_form(client, "/intranet/pesquisa/destaques", {"query": "x", "doc_id": "news.article:999999"})
    assert missing.status_code == 400

    client.cookies.clear()
    page = client.get("/pesquisa", params={"q": "horário"}).text
    bets = re.findall(r'<li class="search-hit best-bet">.*?<a href="([^"]+)">(.*?)</a>', page, re.S)
    assert bets == [("/servicos/cartao-de-leitor-da-biblioteca", "Cartão de leitor da biblioteca"),
                    ("/camara/contactos", "Contactos e horários")]  # fmt: skip
    assert "Escala de turnos" not in page  # an internal pinned item stays internal
    api = client.get("/api/search", params={"q": "HORÁRIO"}).json()
    assert [b["title"] for b in api["best_bets"]] == ["Cartão de leitor da biblioteca", "Contactos e horários"]

    login(client, "editora")
    assert "Escala de turnos" in client.get("/intranet/pesquisa", params={"q": "horário"}).text
    listing = client.get("/intranet/pesquisa/destaques").text
    for bet_id in re.findall(r'action="/intranet/pesquisa/destaques/(\d+)/remover"', listing):
        assert post_form(client, f"/intranet/pesquisa/destaques/{bet_id}/remover").status_code == 303
    assert "best-bet" not in client.get("/pesquisa", params={"q": "horário"}).text


def test_best_bets_reach_the_other_workers(app, client, make_user, settings, monkeypatch):
    """Each process keeps its own copy of the best bets; a change made in another one arrives within
    ``TUNING_RECHECK_SECONDS`` (0 here), checked in the background of a search."""
    from concelho.search import service
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    from ..conftest import wait_for

    ids = seed(app, settings)
    make_user("editora", roles=["editor"])
    login(client, "editora")
    monkeypatch.setattr(service, "TUNING_RECHECK_SECONDS", 0.0)
    other = create_app(settings)  # a second worker: same database and index, its own memory
    with TestClient(other, base_url="http://testserver.local") as worker:
        assert wait_for(lambda: service.runtime(other.state.suite).started, timeout=30)

        def bets() -> list[str]:
            return [b["title"] for b in worker.get("/api/search", params={"q": "horário"}).json()["best_bets"]]

        assert bets() == []
        pin = {"query": "horário", "doc_id": f"services.service:{ids['service']}"}
        assert post_form(client, "/intranet/pesquisa/destaques", pin).status_code == 303
        assert wait_for(lambda: bets() == ["Cartão de leitor da biblioteca"], timeout=10)
        listing = client.get("/intranet/pesquisa/destaques").text
        (bet_id,) = re.findall(r'action="/intranet/pesquisa/destaques/(\d+)/remover"', listing)
        assert post_form(client, f"/intranet/pesquisa/destaques/{bet_id}/remover").status_code == 303
        assert wait_for(lambda: bets() == [], timeout=10)


def test_anonymous_api_search_runs_no_sql(app, client, make_user, settings, monkeypatch):
    """Synonyms and best bets are held per process: an anonymous query without pinned results reads
    nothing from the database (a signed-in one still reads the user's current memberships)."""
    from concelho.search import service
    from sqlalchemy import event

    seed(app, settings)
    monkeypatch.setattr(service, "TUNING_RECHECK_SECONDS", 3600.0)
    client.get("/api/search", params={"q": "biblioteca"})  # the first search of the process loads them
    statements: list[str] = []
    engine = app.state.suite.database.engine.sync_engine

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get("/api/search", params={"q": "biblioteca"})
        assert response.status_code == 200 and response.json()["total"] == 3
        assert client.get("/api/search", params={"q": "nadadisto"}).json()["total"] == 0
        assert statements == []
        assert "set-cookie" not in response.headers  # a read-only JSON answer hands out no CSRF cookie
        assert response.headers["x-content-type-options"] == "nosniff"
        make_user("funcionario")
        login(client, "funcionario")
        assert client.get("/api/search", params={"q": "turnos"}).json()["total"] == 1  # internal: employees
        assert any("core_user" in s for s in statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_synonyms_are_edited_and_applied_to_the_engine(app, client, make_user, settings):
    create_item(app, settings, "Dirigível sobrevoa o concelho", summary="Um dirigível no céu")
    drain(app, settings)
    assert client.get("/api/search", params={"q": "zepelim"}).json()["total"] == 0
    make_user("editora", roles=["editor"])
    login(client, "editora")
    assert client.get("/intranet/pesquisa/sinonimos").status_code == 200
    invalid = post_form(client, "/intranet/pesquisa/sinonimos", {"term": "zepelim", "synonyms": " , "})
    assert invalid.status_code == 400 and "Escreva pelo menos um sinónimo." in invalid.text
    saved = post_form(
        client, "/intranet/pesquisa/sinonimos", {"term": "Zepelim", "synonyms": "dirigível, balão", "mutual": "on"}
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("saved=ok")
    assert app.state.suite.search.synonyms["zepelim"][:2] == ["balão", "dirigível"]
    assert "zepelim" in app.state.suite.search.synonyms["balão"]
    assert client.get("/api/search", params={"q": "zepelim"}).json()["total"] == 1

    async def stored(session):  # type: ignore[no-untyped-def]
        return [(r.id, r.term, r.synonyms, r.mutual) for r in (await session.execute(select(SearchSynonym))).scalars()]

    [(row_id, term, words, mutual)] = with_db(settings, stored)
    assert (term, words, mutual) == ("zepelim", ["dirigível", "balão"], True)
    assert post_form(client, f"/intranet/pesquisa/sinonimos/{row_id}/remover").status_code == 303
    assert "zepelim" not in app.state.suite.search.synonyms
    assert client.get("/api/search", params={"q": "zepelim"}).json()["total"] == 0
    with BrokenEngine(app.state.suite.search, ("configure_synonyms",)):
        later = post_form(client, "/intranet/pesquisa/sinonimos", {"term": "zepelim", "synonyms": "dirigível"})
        assert later.headers["location"].endswith("saved=later")


def test_editor_pages_need_content_edit(app, client, make_user, settings):
    for path in ("/intranet/pesquisa/relatorio", "/intranet/pesquisa/destaques", "/intranet/pesquisa/sinonimos"):
        assert client.get(path, follow_redirects=False).status_code in (303, 401)
    make_user("funcionario")
    login(client, "funcionario")
    assert client.get("/intranet/pesquisa").status_code == 200
    for path in ("/intranet/pesquisa/relatorio", "/intranet/pesquisa/destaques", "/intranet/pesquisa/sinonimos"):
        assert client.get(path).status_code == 403
    assert post_form(client, "/intranet/pesquisa/sinonimos", {"term": "a", "synonyms": "b"}).status_code == 403


# ------------------------------------------------------------------------------------------------
# API, OpenAPI, OpenSearch
# ------------------------------------------------------------------------------------------------
def test_json_api(app, client, settings):
    ids = seed(app, settings)
    data = client.get("/api/search", params={"q": "biblioteca", "limit": 2}).json()
    assert data["total"] == 3 and len(data["hits"]) == 2 and data["fallback"] is False
    assert set(data["hits"][0]) >= {"id", "type", "title", "url", "snippet"}
    assert data["facets"]["type"] == {"news.article": 2, "services.service": 1}
    rest = client.get("/api/search", params={"q": "biblioteca", "limit": 2, "offset": 2}).json()
    assert len(rest["hits"]) == 1 and {h["id"] for h in data["hits"] + rest["hits"]} == {
        f"news.article:{ids['news']}", f"news.article:{ids['news_en']}", f"services.service:{ids['service']}",
    }  # fmt: skip
    typed = client.get("/api/search", params=[("q", "biblioteca"), ("type", "servicos")]).json()
    assert [h["id"] for h in typed["hits"]] == [f"services.service:{ids['service']}"]
    assert client.get("/api/search", params={"q": "biblioteca", "type": "nada.disto"}).json()["total"] == 0
    bad = client.get("/api/search", params={"q": "x", "limit": 500})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/json")
    assert client.get("/api/search").json()["total"] == 0


def test_openapi_documents_the_api_only(client):
    schema = client.get("/api/schema/openapi.json")
    assert schema.status_code == 200
    spec = schema.json()
    assert list(spec["paths"]) == ["/api/search"]
    operation = spec["paths"]["/api/search"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "type", "category", "language", "limit", "offset"}
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert "ApiSearchResponse" in str(response)
    assert {"hits", "total", "facets", "fallback"} <= set(
        spec["components"]["schemas"]["ApiSearchResponse"]["properties"]
    )


def test_opensearch_description_is_linked_from_every_page(client):
    head = client.get("/").text.split("</head>")[0]
    assert (
        '<link rel="search" type="application/opensearchdescription+xml"' in head and 'href="/opensearch.xml"' in head
    )
    response = client.get("/opensearch.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/opensearchdescription+xml")
    root = ElementTree.fromstring(response.content)
    ns = {"os": "http://a9.com/-/spec/opensearch/1.1/"}
    assert len(root.find("os:ShortName", ns).text) <= 16
    templates = [u.get("template") for u in root.findall("os:Url", ns)]
    assert "http://127.0.0.1:8000/pesquisa?q={searchTerms}" in templates


# ------------------------------------------------------------------------------------------------
# The engine is down: polite pages, database fallback, never a 500
# ------------------------------------------------------------------------------------------------
def test_fallback_when_the_engine_is_down(app, client, make_user, settings):
    seed(app, settings)
    create_item(app, settings, "Biblioteca do grupo de trabalho", audience="workspace", workspace_id=7)
    with BrokenEngine(app.state.suite.search):
        page = client.get("/pesquisa", params={"q": "biblioteca"})
        assert page.status_code == 200
        assert "A pesquisa está a funcionar de forma simplificada" in page.text
        assert set(titles(page.text)) == {
            "Obras na biblioteca municipal", "Library works", "Cartão de leitor da biblioteca",
        }  # fmt: skip
        assert client.get("/pesquisa", params={"q": "biblioteca", "tipo": "servicos"}).status_code == 200
        fragment = client.get("/pesquisa", params={"q": "biblioteca"}, headers=HTMX)
        assert fragment.status_code == 200 and "forma simplificada" in fragment.text

        data = client.get("/api/search", params={"q": "biblioteca"}).json()
        assert data["fallback"] is True and data["total"] == 3
        assert data["facets"]["type"] == {"news.article": 2, "services.service": 1}
        assert all("grupo de trabalho" not in h["title"] for h in data["hits"])

        make_user("funcionario")
        login(client, "funcionario")
        intranet = client.get("/intranet/pesquisa", params={"q": "biblioteca"})
        assert intranet.status_code == 200 and "forma simplificada" in intranet.text
        assert "Escala de turnos da biblioteca" in intranet.text  # internal: employees see it
        assert "grupo de trabalho" not in intranet.text  # workspace 7: members only
        assert client.get("/readyz").status_code == 503

    assert "forma simplificada" not in client.get("/pesquisa", params={"q": "biblioteca"}).text


def test_dead_meilisearch_url_keeps_every_page_working(tmp_path, database_url):
    """``SUITE_SEARCH_URL`` pointing at nothing: writes succeed, pages answer from the database."""
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    from ..conftest import settings_for

    dead = settings_for(
        tmp_path / "var", database_url, SUITE_SEARCH_URL="http://127.0.0.1:9", SUITE_BACKGROUND_JOBS="false"
    )
    app = create_app(dead)
    assert app.state.suite.search.name == "meilisearch"
    with TestClient(app, base_url="http://testserver.local") as client:
        create_item(app, dead, "Feira medieval no castelo", summary="Três dias de feira")
        result = drain(app, dead)
        assert result.failed == 1 and "unreachable" in (result.error or "")
        page = client.get("/pesquisa", params={"q": "feira"})
        assert page.status_code == 200 and "forma simplificada" in page.text and "Feira medieval" in page.text
        api = client.get("/api/search", params={"q": "feira medieval"}).json()
        assert api["fallback"] is True and api["total"] == 1
