"""Services plugin: the catalogue over HTTP (filters, HTMX fragments, languages), service pages (facts, forms,
JSON-LD GovernmentService, the "Request online" button and its setting), the home block, the importer on the
corpus service rows, the demo file and XSS."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.app import create_app
from concelho.suite.plugins import PluginError, PluginRegistry
from litestar.testing import TestClient

from .conftest import login, post_form, run, settings_for
from .content_helpers import corpus_rows, import_rows, json_ld, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "plugins" / "services" / "demo" / "services.jsonl"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BASE_URL = "http://testserver.local"


def service(code: str, **fields: Any) -> dict[str, Any]:
    """A small service row in the import format."""
    return {
        "id": f"t-{code.lower()}", "type": "service", "title": f"Serviço {code}", "slug": code.lower(),
        "summary": f"Resumo de {code}.", "category": "Certidões", "service_code": code, "online": True,
        "channels": ["online", "presencial"], "fee": "1,00 €", "processing_days": 3, **fields,
    }  # fmt: skip


class Links(HTMLParser):
    """Start tags with attributes; the text of <script> elements."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        self._in_script = (
            tag == "script" and not attributes.get("src") and attributes.get("type") != "application/ld+json"
        )

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def configured(tmp_path: Path, database_url: str, toml: str) -> TestClient:
    """A second app over the same database, with a suite.toml holding ``toml``."""
    config = tmp_path / "suite.toml"
    config.write_text(toml, encoding="utf-8")
    app = create_app(settings_for(tmp_path / "configured", database_url, SUITE_CONFIG=str(config)))
    return TestClient(app, base_url=BASE_URL)


# --------------------------------------------------------------------------------------------
# Importer: corpus rows, bad rows
# --------------------------------------------------------------------------------------------
def test_corpus_services_import_cleanly_and_reimport_changes_nothing(cli, tmp_path, client):
    rows = corpus_rows("service")
    path = write_jsonl(tmp_path / "services.jsonl", rows)
    first = cli("content", "import", str(path), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["created"] == len(rows) == 40
    again = json.loads(cli("content", "import", str(path), "--json").stdout)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 40)
    updated = json.loads(cli("content", "import", str(path), "--update", "--json").stdout)
    assert updated["updated"] == 0
    exported = [json.loads(line) for line in cli("content", "export", "--type", "services.service").stdout.splitlines()]
    by_code = {row["service_code"]: row for row in exported}
    assert set(by_code) == {row["service_code"] for row in rows}
    sample = next(row for row in rows if row["service_code"] == "EST-RES")
    for key in ("required_documents", "fee", "channels", "processing_days", "online", "description"):
        assert by_code["EST-RES"][key] == sample[key], key
    page = client.get(f"/servicos/{sample['slug']}")
    assert page.status_code == 200 and sample["fee"] in page.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"service_code": None}, "service_code: This field is required."),
        ({"service_code": "cert-res"}, "service_code: Use uppercase letters"),
        ({"channels": ["online", "pombo-correio"]}, "channels: Unknown choice(s): pombo-correio"),
        ({"processing_days": "três"}, "processing_days: Enter a whole number."),
        ({"form_templates": ["Modelo|javascript:alert(1)"]}, "form_templates: Write one form per line"),
        ({"category": "Não existe"}, "category 'Não existe' is not one of"),
    ],
)
def test_a_bad_service_row_imports_nothing_and_names_the_line(cli, tmp_path, change, message):
    rows = corpus_rows("service")[:5]
    rows[2] = {k: v for k, v in {**rows[2], **change}.items() if v is not None}
    result = cli("content", "import", str(write_jsonl(tmp_path / "bad.jsonl", rows)))
    assert result.exit_code == 1
    assert f"line 3: {message}" in result.output, result.output
    assert "nothing was imported" in result.output
    assert cli("content", "export", "--type", "services.service").stdout.strip() == ""


def test_demo_services_import_and_their_form_templates_resolve(cli, client):
    from concelho.plugins.services.services import form_templates
    from concelho.suite.content.models import ContentItem

    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    assert 25 <= sum(r["lang"] == "pt" for r in rows) <= 45 and any(r["lang"] == "en" for r in rows)
    result = cli("content", "import", str(DEMO), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["created"] == len(rows)
    links = set()
    for row in rows:
        item = ContentItem(
            type="services.service", slug="x", title="x", data={"form_templates": row.get("form_templates", [])}
        )
        links.update(url for _title, url in form_templates(item) if url)
    assert links, "the demo offers no form template"
    for url in sorted(links):
        response = client.get(url)
        assert response.status_code == 200 and response.content.startswith(b"%PDF-"), url
    assert client.get("/servicos/certificate-of-residence?lang=en").status_code == 200


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------
@pytest.fixture
def catalogue(cli, tmp_path):  # type: ignore[no-untyped-def]
    rows = [
        *corpus_rows("service"),
        service("BALCAO-ONLY", title="Serviço só ao balcão", category="Cemitérios", online=False,
                channels=["presencial"]),
        service("RASCUNHO", title="Serviço em rascunho", status="draft"),
        service("INTERNO", title="Serviço interno", audience="internal"),
    ]  # fmt: skip
    import_rows(cli, tmp_path, rows)
    return rows


def test_catalogue_groups_services_by_category_and_filters(client, catalogue):
    page = client.get("/servicos")
    assert page.status_code == 200
    html = page.text
    headings = re.findall(r'<h2 id="cat-\d+">([^<]+)</h2>', html)
    assert headings[:3] == ["Atendimento e Informação", "Certidões", "Urbanismo"]
    assert "Cemitérios" in headings and len(headings) == len(set(headings))
    assert html.count('<li class="card"') == 41
    assert "Serviço em rascunho" not in html and "Serviço interno" not in html
    assert 'href="/servicos/cert-res"' in html and "CERT-RES" in html

    certidoes = client.get("/servicos", params={"categoria": "Certidões"}).text
    assert certidoes.count('<li class="card"') == 5
    assert re.findall(r'<h2 id="cat-\d+">([^<]+)</h2>', certidoes) == ["Certidões"]
    assert '<option value="Certidões" selected>' in certidoes

    online = client.get("/servicos?online=1").text
    assert online.count('<li class="card"') == 40 and "Serviço só ao balcão" not in online
    assert 'id="online" name="online" value="1" checked' in online
    both = client.get("/servicos", params={"categoria": "Cemitérios", "online": "1"}).text
    assert "Nenhum serviço corresponde a estes filtros." in both

    unknown = client.get("/servicos", params={"categoria": "<script>"})
    assert unknown.status_code == 200 and unknown.text.count('<li class="card"') == 41


def test_catalogue_filters_work_without_javascript_and_as_htmx_fragments(client, catalogue):
    full = client.get("/servicos?categoria=Educa%C3%A7%C3%A3o")
    form = Links(full.text).find("form", action="/servicos")
    assert form and form[0]["method"] == "get" and form[0]["hx-get"] == "/servicos"
    assert form[0]["hx-target"] == "#results" and form[0]["hx-push-url"] == "true"
    assert Links(full.text).find("label", **{"for": "categoria"}) and Links(full.text).find(
        "label", **{"for": "online"}
    )
    fragment = client.get("/servicos?categoria=Educa%C3%A7%C3%A3o", headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="results"') and "<html" not in fragment.text
    assert fragment.text.count('<li class="card"') == full.text.count('<li class="card"') == 3
    assert "hx-request" in fragment.headers["vary"].lower()
    boosted = client.get("/servicos", headers={"hx-request": "true", "hx-boosted": "true"})
    assert "<html" in boosted.text


def test_english_catalogue_shows_translations_and_falls_back_to_portuguese(cli, tmp_path, client):
    import_rows(
        cli, tmp_path,
        [service("TRAD"), {**service("TRAD", title="Translated service", slug="translated-service", lang="en"),
                            "id": "t-trad-en", "translation_of": "t-trad"},
         service("SO-PT", title="Só em português")],
    )  # fmt: skip
    english = client.get("/servicos?lang=en").text
    assert '<html lang="en">' in english
    assert "Translated service" in english and "Serviço TRAD" not in english
    assert re.search(r'<li class="card" lang="pt">\s*<h3><a href="/servicos/so-pt">Só em português', english)
    assert ">Certificates</h2>" in english
    portuguese = client.get("/servicos?lang=pt").text  # ?lang=en was remembered in a cookie
    assert "Serviço TRAD" in portuguese and "Translated service" not in portuguese


# --------------------------------------------------------------------------------------------
# A service page
# --------------------------------------------------------------------------------------------
def test_service_page_shows_code_fee_documents_channels_time_and_forms(cli, tmp_path, client):
    row = service(
        "EST-RES-T", title="Cartão de residente", category="Mobilidade e Estacionamento",
        description="Emissão do cartão de residente.", who_may_ask="Residentes nas zonas tarifadas.",
        required_documents=["Documento de identificação", "Comprovativo de morada"], fee="15,00 € por ano",
        channels=["online", "presencial", "telefone", "correio"], processing_days=5,
        form_templates=["Pedido em PDF|/static/services/modelos/pedido-cartao-residente.pdf",
                        "Modelo externo|https://formularios.example/residente.pdf"],
        legal_basis="Regulamento Municipal de Estacionamento", body="### Renovação\n\nPode renovar online.",
    )  # fmt: skip
    import_rows(cli, tmp_path, [row, service("IMEDIATO", processing_days=0)])
    page = client.get("/servicos/est-res-t")
    assert page.status_code == 200
    html = page.text
    for text in ("EST-RES-T", "Emissão do cartão de residente.", "Residentes nas zonas tarifadas.",
                 "<li>Documento de identificação</li>", "<li>Comprovativo de morada</li>", "15,00 € por ano",
                 "Online, Presencial, Telefone, Correio", "5 dias úteis", "Regulamento Municipal de Estacionamento",
                 "Documentos necessários", "Taxa", "Como pedir", "Prazo previsto de resposta"):  # fmt: skip
        assert text in html, text
    doc = Links(html)
    assert doc.find("a", href="/static/services/modelos/pedido-cartao-residente.pdf")
    assert doc.find("a", href="https://formularios.example/residente.pdf")
    assert len(doc.find("h1")) == 1 and doc.inline_scripts == []
    assert 'class="breadcrumbs"' in html and 'href="/servicos?categoria=Mobilidade%20e%20Estacionamento"' in html
    assert 'id="page-feedback"' in html and "Última atualização" in html
    assert "<h3>Renovação</h3>" in html
    assert "Imediato" in client.get("/servicos/imediato").text
    assert client.get("/servicos/nao-existe").status_code == 404


def test_json_ld_describes_a_government_service(cli, tmp_path, client):
    row = service("LIC-RUIDO-T", title="Licença de ruído", category="Licenciamento de Atividades",
                  channels=["online", "telefone"], processing_days=10, fee="25,00 €")  # fmt: skip
    import_rows(cli, tmp_path, [row])
    data = json_ld(client.get("/servicos/lic-ruido-t").text)
    assert data["@context"] == "https://schema.org" and data["@type"] == "GovernmentService"
    assert data["name"] == "Licença de ruído" and data["identifier"] == "LIC-RUIDO-T"
    assert data["serviceType"] == "Licenciamento de Atividades"
    assert data["url"].endswith("/servicos/lic-ruido-t")
    assert data["provider"]["@type"] == "GovernmentOrganization" and data["provider"]["name"]
    channels = data["availableChannel"]
    assert [c["@type"] for c in channels] == ["ServiceChannel", "ServiceChannel"]
    assert [c["name"] for c in channels] == ["Online", "Telefone"]
    assert all(c["processingTime"] == "P10D" for c in channels)
    assert channels[0]["serviceUrl"] == data["url"]  # no request form configured: the page itself
    assert data["offers"]["description"] == "25,00 €"


def test_editor_validates_the_service_code_and_publishes_a_service(client, make_user):
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    form = {
        "title": "Licença de teste", "body": "Texto.", "language": "pt", "audience": "public",
        "category": "Licenciamento de Atividades", "data.service_code": "lic teste", "data.fee": "10,00 €",
        "data.channels": ["online", "correio"], "data.processing_days": "4", "data.online": "1",
        "data.required_documents": "Documento de identificação\nPlanta do local",
    }  # fmt: skip
    bad = post_form(client, "/intranet/content/new?type=services.service", form)
    assert bad.status_code in (200, 400, 422)
    assert "Use letras maiúsculas, algarismos e hífenes" in bad.text and 'value="10,00 €"' in bad.text
    created = post_form(
        client, "/intranet/content/new?type=services.service", {**form, "data.service_code": "LIC-TESTE"}
    )
    assert created.status_code == 303, created.text[:500]
    url = created.headers["location"].split("?")[0]
    post_form(client, f"{url}/action", {"action": "publish"})
    page = client.get("/servicos/licenca-de-teste").text
    assert "LIC-TESTE" in page and "<li>Planta do local</li>" in page and "Online, Correio" in page


def test_public_documents_attached_to_a_service_are_offered_as_forms(cli, tmp_path, settings, client):
    from concelho.suite.content.models import ContentAttachment, ContentItem, Media
    from concelho.suite.db import Database
    from sqlalchemy import select

    import_rows(cli, tmp_path, [service("ANEXOS")])

    async def attach() -> list[int]:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                item = (await session.execute(select(ContentItem).where(ContentItem.slug == "anexos"))).scalar_one()
                ids = []
                for title, audience in (("Minuta de requerimento", "public"), ("Parecer interno", "internal")):
                    media = Media(kind="document", title=title, filename="f.pdf", content_type="application/pdf",
                                  sha256="0" * 64, audience=audience)  # fmt: skip
                    session.add(media)
                    await session.flush()
                    session.add(ContentAttachment(content_id=item.id, media_id=media.id))
                    ids.append(int(media.id))
                return ids
        finally:
            await database.dispose()

    public_id, internal_id = run(attach())
    html = client.get("/servicos/anexos").text
    assert Links(html).find("a", href=f"/media/{public_id}/original") and "Minuta de requerimento" in html
    assert f"/media/{internal_id}/" not in html and "Parecer interno" not in html


# --------------------------------------------------------------------------------------------
# "Request online": hidden unless configured, never for offline services
# --------------------------------------------------------------------------------------------
def test_request_online_button_is_hidden_by_default(cli, tmp_path, client):
    import_rows(cli, tmp_path, [service("CERT-X")])
    html = client.get("/servicos/cert-x").text
    assert "Pedir online" not in html and "/pedidos/" not in html
    assert not [a for a in Links(html).find("a") if "button" in a.get("class", "") and a.get("href", "") == "#"]


def test_request_online_button_follows_the_plugin_setting(cli, tmp_path, database_url, client):
    import_rows(
        cli, tmp_path,
        [service("CERT-X"), service("BALCAO", online=False, channels=["presencial"])],
    )  # fmt: skip
    toml = '[plugins.services]\nrequest_url = "/pedidos/{code}?servico={slug}"\n'
    with configured(tmp_path, database_url, toml) as other:
        html = other.get("/servicos/cert-x").text
        buttons = Links(html).find("a", href="/pedidos/CERT-X?servico=cert-x")
        assert len(buttons) == 1 and buttons[0]["class"] == "button" and "Pedir online" in html
        data = json_ld(html)
        online = next(c for c in data["availableChannel"] if c["name"] == "Online")
        assert online["serviceUrl"] == "http://127.0.0.1:8000/pedidos/CERT-X?servico=cert-x"
        offline = other.get("/servicos/balcao").text
        assert "Pedir online" not in offline and "/pedidos/" not in offline
    # The first app (no setting) is not affected by the second one's configuration.
    assert "Pedir online" not in client.get("/servicos/cert-x").text


@pytest.mark.parametrize(
    "value",
    ['"javascript:alert(1)"', '"//evil.example/{code}"', '"/pedidos/{codigo}"', "42"],
)
def test_a_bad_request_url_setting_is_refused_at_start(tmp_path, value):
    config = tmp_path / "suite.toml"
    config.write_text(f"[plugins.services]\nrequest_url = {value}\n", encoding="utf-8")
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", SUITE_CONFIG=str(config))
    with pytest.raises(PluginError, match=r"\[plugins.services\] request_url"):
        PluginRegistry.from_settings(settings)


# --------------------------------------------------------------------------------------------
# Home page block
# --------------------------------------------------------------------------------------------
def test_home_lists_the_first_online_services_or_the_configured_ones(cli, tmp_path, database_url, client):
    rows = [service(f"S{n:02d}", title=f"Serviço {n:02d}", sort_order=n, online=n != 2) for n in range(1, 10)]
    import_rows(cli, tmp_path, rows)
    home = client.get("/").text
    block = home[home.index('id="home-services-title"') :]
    block = block[: block.index("</section>")]
    assert "Serviços mais procurados" in block
    assert re.findall(r">Serviço (\d\d)</a>", block) == ["01", "03", "04", "05", "06", "07"]
    assert 'href="/servicos"' in block
    toml = '[plugins.services]\nfeatured = ["S09", "S02", "NAO-EXISTE"]\n'
    with configured(tmp_path, database_url, toml) as other:
        home = other.get("/").text
        block = home[home.index('id="home-services-title"') :]
        assert re.findall(r">Serviço (\d\d)</a>", block[: block.index("</section>")]) == ["09", "02"]


def test_nav_item_points_at_the_catalogue(client):
    html = client.get("/").text
    assert '<a href="/servicos">Serviços</a>' in html
    assert client.get("/servicos").status_code == 200  # an empty catalogue still renders
    assert "Nenhum serviço corresponde a estes filtros." in client.get("/servicos").text


# --------------------------------------------------------------------------------------------
# XSS
# --------------------------------------------------------------------------------------------
def test_xss_in_every_field_renders_inert(cli, tmp_path, client):
    row = service(
        "XSS", title=XSS, summary=XSS, body=XSS, description=XSS, who_may_ask=XSS, required_documents=[XSS],
        fee=XSS, legal_basis=XSS, form_templates=[f"{XSS}|/static/services/modelos/requerimento-geral.pdf"],
        tags=[XSS],
    )  # fmt: skip
    import_rows(cli, tmp_path, [row])
    for path in ("/servicos/xss", "/servicos", "/servicos?online=1", "/"):
        html = client.get(path).text
        assert "<script>alert" not in html, path
        assert "<img src=x onerror" not in html, path
        assert Links(html).inline_scripts == [], path
    page = client.get("/servicos/xss").text
    assert "&lt;script&gt;" in page
    assert json_ld(page)["name"] == XSS  # escaped inside the JSON-LD block, intact once parsed
