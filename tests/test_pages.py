"""Pages plugin: the council (/camara) and territory (/concelho) sections, org chart, executive, recruitment,
documents — over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest

from .test_web import check_page

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "portal.jsonl"
DEMO = ROOT / "plugins" / "pages" / "demo"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HX = {"hx-request": "true"}


def corpus_pages() -> list[dict]:
    return [row for row in map(json.loads, CORPUS.read_text().splitlines()) if row["type"] == "page"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def load(cli, path: Path) -> dict:  # type: ignore[no-untyped-def]
    result = cli("content", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def json_ld(html: str) -> list[dict]:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return [json.loads(b) for b in blocks]


def crumbs(html: str) -> list[str]:
    nav = re.search(r'<nav class="breadcrumbs".*?</nav>', html, re.S)
    assert nav is not None
    return [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li>(.*?)</li>", nav.group(0), re.S)]


def section(html: str, css_class: str) -> str:
    match = re.search(rf'<(section|nav) class="{css_class}".*?</\1>', html, re.S)
    assert match is not None, css_class
    return match.group(0)


def page_row(id_: str, slug: str, title: str, *, section: str = "concelho", parent: str | None = "concelho",
             **extra) -> dict:  # type: ignore[no-untyped-def]  # fmt: skip
    return {"id": id_, "type": "page", "slug": slug, "title": title, "section": section, "parent": parent,
            "body": f"Texto de {title}.", **extra}  # fmt: skip


ROOTS = [
    page_row("t-camara", "camara", "A Câmara", section="camara", parent=None),
    page_row("t-concelho", "concelho", "O Concelho", parent=None),
]


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------
def test_corpus_pages_import_cleanly_and_reimport_changes_nothing(cli, tmp_path, client):
    path = write_jsonl(tmp_path / "pages.jsonl", corpus_pages())
    first = load(cli, path)
    assert first["created"] == 40 and first["by_type"] == {"pages.page": 40}
    again = load(cli, path)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 40)
    updated = cli("content", "import", str(path), "--update", "--json")
    assert json.loads(updated.stdout)["updated"] == 0

    for row in corpus_pages():  # every page is where the corpus says it is
        response = client.get(row["url"])
        assert response.status_code == 200, row["url"]
        assert row["title"] in response.text
    # A territory page asked for under the council section is sent to its own address.
    moved = client.get("/camara/praias?lang=pt", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == "/concelho/praias?lang=pt"
    assert client.get("/concelho/camara", follow_redirects=False).headers["location"] == "/camara"


def test_all_demo_files_import_and_render(cli, client):
    created = 0
    for path in sorted(DEMO.glob("*.jsonl")):
        created += load(cli, path)["created"]
    assert created >= 50
    for url in ("/camara", "/concelho", "/camara/contactos", "/camara/organograma", "/camara/executivo",
                "/camara/recrutamento", "/camara/documentos", "/concelho/praias", "/camara?lang=en",
                "/camara/contacts?lang=en", "/camara/recrutamento/tecnico-informatica",
                "/camara/documentos/relatorio-gestao-2025", "/concelho/ponte-dos-cinco-arcos"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
        assert not check_page(response, url)  # one <h1>, nothing the CSP would block
    assert "Horários de atendimento" in client.get("/camara/contactos").text


# --------------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------------
def test_tree_breadcrumbs_and_side_menu(cli, tmp_path, client):
    rows = [
        *ROOTS,
        page_row("t-ambiente", "ambiente", "Ambiente", sort_order=2),
        page_row("t-agua", "agua", "Água", parent="ambiente", sort_order=1),
        page_row("t-residuos", "residuos", "Resíduos", parent="ambiente", sort_order=1),
        page_row("t-ruido", "ruido", "Ruído", parent="ambiente", sort_order=0),
        page_row("t-ecopontos", "ecopontos", "Ecopontos", parent="residuos"),
        page_row("t-rascunho", "rascunho", "Rascunho escondido", parent="ambiente", status="draft"),
    ]
    load(cli, write_jsonl(tmp_path / "tree.jsonl", rows))

    html = client.get("/concelho/ecopontos").text
    assert crumbs(html) == ["Página inicial", "O Concelho", "Ambiente", "Resíduos", "Ecopontos"]
    assert 'href="/concelho/residuos"' in section(html, "breadcrumbs")

    menu = section(client.get("/concelho/residuos").text, "pages-menu")
    # Siblings ordered by sort order then title; the current page is marked and shows its children.
    assert [m for m in re.findall(r">([^<>]+)</a>", menu)] == ["Ruído", "Água", "Resíduos", "Ecopontos"]
    assert '<a href="/concelho/residuos" aria-current="page">' in menu
    assert "Rascunho" not in menu


def test_section_roots_list_their_children_as_cards(cli, tmp_path, client):
    rows = [
        *ROOTS,
        page_row("t-praias", "praias", "Praias", sort_order=2, summary="Praias fluviais."),
        page_row("t-saude", "saude", "Saúde", sort_order=1),
        page_row("t-neto", "neto", "Página neta", parent="praias"),
        page_row("t-executivo", "executivo", "O Executivo", section="camara", parent="camara"),
    ]
    load(cli, write_jsonl(tmp_path / "roots.jsonl", rows))
    concelho = client.get("/concelho").text
    cards = section(concelho, "pages-children")
    assert re.findall(r"<h3><a [^>]+>([^<]+)</a>", cards) == ["Saúde", "Praias"]
    assert "Praias fluviais." in cards and "Página neta" not in cards
    assert 'class="pages-menu"' not in concelho
    camara = section(client.get("/camara").text, "pages-children")
    # The executive page is a child; the other generated council pages are offered too, once each.
    assert camara.count('href="/camara/executivo"') == 1
    for path in ("/camara/organograma", "/camara/recrutamento", "/camara/documentos"):
        assert f'href="{path}"' in camara


def test_section_roots_read_a_constant_number_of_statements(cli, tmp_path, client, app):
    """An uncached /camara reads its root, its cards and what their translations are called in a few
    statements, however many cards there are (no query per card)."""
    from .test_portal_reads import Statements

    state = app.state.suite
    state.page_cache.enabled = False
    state.page_cache.poll_seconds = 3600
    statements = Statements(app)
    en_root = page_row("t-camara-en", "council", "The Council", section="camara", parent=None, lang="en",
                       translation_of="t-camara")  # fmt: skip
    # In English the executive page is a card: its Portuguese original takes the generated page's slug.
    executive = [
        page_row("t-exec", "executivo", "O Executivo", section="camara", parent="camara", sort_order=0),
        page_row("t-exec-en", "executive", "The Executive", section="camara", parent="council", lang="en",
                 translation_of="t-exec", sort_order=0),
    ]  # fmt: skip

    def rows(n: int) -> list[dict]:
        return [*ROOTS, en_root, *executive, *(
            page_row(f"t-filho-{i}", f"filho-{i}", f"Filho {i}", section="camara", parent="camara", sort_order=i + 1)
            for i in range(n)
        )]  # fmt: skip

    counts: dict[str, list[int]] = {"/camara?lang=pt": [], "/camara?lang=en": [], "/concelho?lang=pt": []}
    for n in (3, 6):
        load(cli, write_jsonl(tmp_path / f"children-{n}.jsonl", rows(n)))
        for url, seen in counts.items():
            seen.append(len(statements.during(client, url)))
        cards = section(client.get("/camara?lang=pt").text, "pages-children")
        titles = re.findall(r"<h3><a [^>]+>([^<]+)</a>", cards)
        assert titles == ["O Executivo", *(f"Filho {i}" for i in range(n)), "Organograma", "Recrutamento",
                          "Documentos e regulamentos"]  # fmt: skip
    for url, (three, six) in counts.items():
        assert three == six <= 3, (url, three, six)
    english = section(client.get("/camara?lang=en").text, "pages-children")
    assert re.findall(r'<h3><a href="([^"]+)"', english) == [
        "/camara/executive?lang=en", "/camara/organograma?lang=en", "/camara/recrutamento?lang=en",
        "/camara/documentos?lang=en",
    ]  # fmt: skip


def test_section_roots_work_without_content(client):
    empty = client.get("/camara").text
    assert 'href="/camara/documentos"' in empty and "<h1>Câmara Municipal</h1>" in empty
    assert "<h1>Organograma</h1>" in client.get("/camara/organograma").text
    assert "<h1>Recrutamento</h1>" in client.get("/camara/recrutamento").text
    assert 'href="/camara/documentos?lang=en"' in client.get("/camara?lang=en").text
    for url in ("/camara", "/concelho", "/camara/organograma", "/camara/executivo", "/camara/recrutamento",
                "/camara/documentos", "/camara?lang=en"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
        assert not check_page(response, url)
    assert client.get("/camara/nada").status_code == 404
    assert client.get("/concelho/nada").status_code == 404


def test_nav_items(client):
    html = client.get("/").text
    nav = section(html, "main-nav")
    assert 'href="/camara"' in nav and 'href="/concelho"' in nav
    assert ">Câmara Municipal<" in nav and ">Concelho<" in nav
    english = section(client.get("/?lang=en").text, "main-nav")
    assert ">Council<" in english and ">Municipality<" in english


def test_unpublished_scheduled_and_internal_pages_are_404(cli, tmp_path, client):
    rows = [
        *ROOTS,
        page_row("t-draft", "rascunho", "Rascunho", status="draft"),
        page_row("t-future", "futuro", "Futuro", publish_at="2999-01-01T00:00:00+00:00"),
        page_row("t-internal", "interno", "Interno", audience="internal"),
        page_row("t-archived", "arquivado", "Arquivado", status="archived"),
        page_row("t-ok", "visivel", "Visível"),
    ]
    load(cli, write_jsonl(tmp_path / "hidden.jsonl", rows))
    for slug in ("rascunho", "futuro", "interno", "arquivado"):
        assert client.get(f"/concelho/{slug}").status_code == 404, slug
        assert client.get(f"/camara/{slug}").status_code == 404, slug
    assert client.get("/concelho/visivel").status_code == 200
    cards = section(client.get("/concelho").text, "pages-children")
    assert "Visível" in cards and "Rascunho" not in cards and "Interno" not in cards


def test_xss_in_page_fields_renders_inert(cli, tmp_path, client):
    rows = [
        *ROOTS,
        page_row("t-xss", "xss", XSS, summary=XSS, body=f"{XSS}\n\n[x](javascript:alert(1))", tags=[XSS]),
        page_row("t-xss-child", "xss-filho", "Filho", parent="xss"),
        {"id": "t-doc", "type": "pages.document", "slug": "doc-xss", "title": XSS, "summary": XSS,
         "doc_kind": "outro", "published_on": "2026-01-02", "file_url": "javascript:alert(1)"},
        {"id": "t-vereador", "type": "councillor", "slug": "xss", "title": XSS, "role": "vereador",
         "email": '"><script>alert(1)</script>', "portfolios": [XSS], "party": XSS},
    ]  # fmt: skip
    load(cli, write_jsonl(tmp_path / "xss.jsonl", rows))
    for url in ("/concelho/xss", "/concelho/xss-filho", "/concelho", "/camara/documentos",
                "/camara/documentos/doc-xss", "/camara/executivo"):  # fmt: skip
        html = client.get(url).text
        assert "<script>alert" not in html, url
        assert "<img src=x onerror" not in html, url
        assert 'href="javascript:' not in html.lower(), url
        for block in json_ld(html):  # the JSON-LD still parses and holds the text, escaped
            assert isinstance(block, dict)
    assert "&lt;script&gt;" in client.get("/concelho/xss").text


def test_htmx_request_gets_the_fragment_and_others_the_whole_page(cli, tmp_path, client):
    load(cli, write_jsonl(tmp_path / "p.jsonl", [*ROOTS, page_row("t-p", "praias", "Praias")]))
    full = client.get("/concelho/praias")
    fragment = client.get("/concelho/praias", headers=HX)
    assert "<html" in full.text and "<html" not in fragment.text
    assert "<h1>Praias</h1>" in fragment.text and 'class="breadcrumbs"' in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    boosted = client.get("/concelho/praias", headers={**HX, "hx-boosted": "true"})
    assert "<html" in boosted.text


# --------------------------------------------------------------------------------------------
# SEO: JSON-LD, canonical, alternates, sitemap
# --------------------------------------------------------------------------------------------
def test_json_ld_types_canonical_and_translations(cli, client):
    load(cli, DEMO / "pages.jsonl")
    camara = client.get("/camara").text
    (org,) = json_ld(camara)
    assert org["@context"] == "https://schema.org" and org["@type"] == "GovernmentOrganization"
    assert org["name"] == "Câmara Municipal de Vila Serena"
    praias = client.get("/concelho/praias").text
    (page,) = json_ld(praias)
    assert page["@type"] == "WebPage" and page["url"] == "http://127.0.0.1:8000/concelho/praias"
    assert '<link rel="canonical" href="http://127.0.0.1:8000/concelho/praias">' in praias
    assert 'hreflang="en" href="http://127.0.0.1:8000/concelho/river-beaches?lang=en"' in praias
    english = client.get("/concelho/river-beaches?lang=en").text
    assert '<html lang="en">' in english and "River Beaches" in english
    assert crumbs(english) == ["Home", "The Municipality of Vila Serena", "River Beaches"]
    # The council root in English is the translated root page.
    assert "Vila Serena Town Council" in client.get("/camara?lang=en").text


def test_sitemap_lists_pages_at_their_section_addresses(cli, client):
    for name in ("pages.jsonl", "jobs.jsonl", "documents.jsonl", "councillors.jsonl"):
        load(cli, DEMO / name)
    sitemap = client.get("/sitemap.xml")
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    tree = ElementTree.fromstring(sitemap.content)
    locs = {el.text for el in tree.findall("s:url/s:loc", ns)}
    base = "http://127.0.0.1:8000"
    assert {f"{base}/camara", f"{base}/concelho", f"{base}/concelho/praias", f"{base}/camara/contactos",
            f"{base}/camara/recrutamento/tecnico-informatica", f"{base}/camara/documentos"} <= locs  # fmt: skip
    assert f"{base}/camara/praias" not in locs
    assert not any("#" in loc for loc in locs)  # executive members are anchors, not pages


# --------------------------------------------------------------------------------------------
# Generated council pages
# --------------------------------------------------------------------------------------------
DEPARTMENTS = """code,name,parent_code,email,phone,sort_order
PRES,Presidência,,presidencia@cm.example,+351 210 000 100,1
DAG,Departamento de Administração Geral,PRES,dag@cm.example,+351 210 000 200,2
DRH,Divisão de Recursos Humanos,DAG,rh@cm.example,,1
DOT,Departamento de Obras,PRES,,+351 210 000 300,1
"""
USERS = """username,email,name,employee_number,department,job_title,phone,kind,roles
zeferino.p,zeferino.casa@pessoal.example,Zeferino Privado,9001,DRH,Chefe de divisão,+351 999 888 777,staff,employee
"""


def test_org_chart_shows_the_department_tree_and_no_personal_data(cli, tmp_path, client):
    (tmp_path / "deps.csv").write_text(DEPARTMENTS, encoding="utf-8")
    (tmp_path / "users.csv").write_text(USERS, encoding="utf-8")
    assert cli("departments", "import", str(tmp_path / "deps.csv")).exit_code == 0
    imported = cli("users", "import", str(tmp_path / "users.csv"))
    assert imported.exit_code == 0, imported.output
    html = client.get("/camara/organograma").text
    chart = section(html, "org-chart")
    # Nested lists: PRES > (DOT, DAG > DRH), ordered by sort order.
    assert re.findall(r"<strong>([^<]+)</strong>", chart) == [
        "Presidência", "Departamento de Obras", "Departamento de Administração Geral", "Divisão de Recursos Humanos",
    ]  # fmt: skip
    assert chart.count("<ul") == 3
    assert 'href="mailto:rh@cm.example"' in chart and 'href="tel:+351210000300"' in chart
    for personal in ("Zeferino", "zeferino", "pessoal.example", "999 888 777", "9001", "Chefe de divisão"):
        assert personal not in html, personal
    (org,) = json_ld(html)
    assert org["@type"] == "GovernmentOrganization"
    top = org["subOrganization"][0]
    assert top["name"] == "Presidência" and top["subOrganization"][1]["subOrganization"][0]["email"] == "rh@cm.example"
    assert "Zeferino" not in json.dumps(org)


def test_executive_lists_members_in_order_with_person_json_ld(cli, client):
    load(cli, DEMO / "pages.jsonl")
    load(cli, DEMO / "councillors.jsonl")
    html = client.get("/camara/executivo").text
    names = re.findall(r"<h3>([^<]+)</h3>", section(html, "executive"))
    assert names == ["Marta Lourenço", "Henrique Baptista", "Inês Carvalhal", "Tomás Valente", "Leonor Quintela"]
    assert "Executivo Municipal" in html and "<h1>Executivo Municipal</h1>" in html  # the intro page
    assert "Urbanismo e ordenamento do território" in html and 'id="marta-lourenco"' in html
    assert "Presidente da Câmara" in html
    (org,) = json_ld(html)
    assert org["@type"] == "GovernmentOrganization"
    people = org["member"]
    assert [p["@type"] for p in people] == ["Person"] * 5
    assert people[0]["name"] == "Marta Lourenço" and people[0]["email"] == "marta.lourenco@cm-vilaserena.example"
    assert people[0]["url"] == "http://127.0.0.1:8000/camara/executivo#marta-lourenco"
    english = client.get("/camara/executivo?lang=en").text
    assert "Mayor" in english and "Deputy mayor" in english


def job(slug: str, title: str, deadline: date, **extra) -> dict:  # type: ignore[no-untyped-def]
    row = {"id": f"t-job-{slug}", "type": "job", "slug": slug, "title": title, "reference": f"PC {slug}"}
    return {**row, "deadline": deadline.isoformat(), "positions": 2, "department": "Obras", "body": "R.", **extra}


def test_recruitment_lists_open_offers_first_and_closed_ones_archived(cli, tmp_path, client):
    today = date.today()
    rows = [
        job("fecha-hoje", "Oferta que fecha hoje", today),
        job("aberta-longe", "Oferta aberta longe", today + timedelta(days=40)),
        job("fechada-ontem", "Oferta fechada ontem", today - timedelta(days=2)),
        job("fechada-antiga", "Oferta fechada antiga", today - timedelta(days=200)),
        job("rascunho", "Oferta em rascunho", today + timedelta(days=5), status="draft"),
    ]
    load(cli, write_jsonl(tmp_path / "jobs.jsonl", rows))
    html = client.get("/camara/recrutamento").text
    opened = section(html, "jobs-open")
    archived = section(html, "jobs-archived")
    assert re.findall(r"<h3><a [^>]+>([^<]+)</a>", opened) == ["Oferta que fecha hoje", "Oferta aberta longe"]
    assert re.findall(r"<h3><a [^>]+>([^<]+)</a>", archived) == ["Oferta fechada ontem", "Oferta fechada antiga"]
    assert html.index("jobs-open") < html.index("jobs-archived")
    assert "rascunho" not in html
    detail = client.get("/camara/recrutamento/aberta-longe")
    assert detail.status_code == 200 and "Aberto a candidaturas" in detail.text
    (posting,) = json_ld(detail.text)
    assert posting["@type"] == "JobPosting" and posting["validThrough"] == (today + timedelta(days=40)).isoformat()
    assert posting["identifier"]["value"] == "PC aberta-longe" and posting["totalJobOpenings"] == 2
    assert crumbs(detail.text)[-2:] == ["Recrutamento", "Oferta aberta longe"]
    closed = client.get("/camara/recrutamento/fechada-ontem").text
    assert "Encerrado" in closed
    assert client.get("/camara/recrutamento/rascunho").status_code == 404


def test_documents_filter_by_kind_and_year(cli, client):
    load(cli, DEMO / "documents.jsonl")

    def titles(url: str, **headers: str) -> list[str]:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        return re.findall(r"<h3><a [^>]+>([^<]+)</a>", response.text)

    assert len(titles("/camara/documentos")) == 8
    assert titles("/camara/documentos?tipo=ata") == [
        "Ata da reunião de câmara de 7 de outubro de 2026", "Ata da reunião de câmara de 5 de novembro de 2025",
    ]  # fmt: skip
    assert len(titles("/camara/documentos?ano=2025")) == 3
    assert titles("/camara/documentos?tipo=relat%C3%B3rio&ano=2026") == ["Relatório de Gestão de 2025"]
    assert titles("/camara/documentos?tipo=regulamento&ano=1999") == []
    assert len(titles("/camara/documentos?tipo=nada&ano=abc")) == 8  # unknown filters are ignored
    html = client.get("/camara/documentos?tipo=edital").text
    assert '<option value="edital" selected>' in html and '<option value="2026">' in html
    assert 'href="https://www.cm-vilaserena.example/documentos/edital-epoca-balnear-2026.pdf"' in html
    fragment = client.get("/camara/documentos?tipo=edital", headers=HX)
    assert "<html" not in fragment.text and fragment.text.lstrip().startswith('<div id="results">')
    assert "<h1" not in fragment.text and len(re.findall(r"<h3>", fragment.text)) == 2
    detail = client.get("/camara/documentos/regulamento-taxas-2026").text
    (doc,) = json_ld(detail)
    assert doc["@type"] == "DigitalDocument" and doc["version"] == "3.0" and doc["datePublished"] == "2026-01-15"


@pytest.mark.parametrize("slug", ["organograma", "executivo", "recrutamento", "documentos"])
def test_generated_pages_take_the_intro_page_and_its_menu(cli, tmp_path, client, slug):
    rows = [
        *ROOTS,
        page_row("t-intro", slug, f"Introdução {slug}", section="camara", parent="camara", summary="Resumo."),
        page_row("t-sub", f"{slug}-sub", "Subpágina", section="camara", parent=slug),
    ]
    load(cli, write_jsonl(tmp_path / "intro.jsonl", rows))
    html = client.get(f"/camara/{slug}").text
    assert f"<h1>Introdução {slug}</h1>" in html and "Resumo." in html
    assert crumbs(html) == ["Página inicial", "A Câmara", f"Introdução {slug}"]
    assert f'href="/camara/{slug}-sub"' in section(html, "pages-menu")
