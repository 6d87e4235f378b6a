"""Places plugin: the importer on the corpus points of interest, the list (category filter, HTMX), a place's page
(facts, JSON-LD Place with geo), the GeoJSON endpoint, the map page (no inline script, works without JavaScript,
configurable tiles), the vendored Leaflet files and XSS."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.app import create_app
from concelho.suite.plugins import PluginError, PluginRegistry
from litestar.testing import TestClient

from .conftest import settings_for
from .content_helpers import corpus_rows, import_rows, json_ld, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "plugins" / "places" / "demo" / "places.jsonl"
LEAFLET = ROOT / "static" / "core" / "leaflet"  # one copy for every map (suite/maps.py)
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BASE_URL = "http://testserver.local"


def place(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"t-{key}", "type": "poi", "title": f"Local {key}", "slug": key, "category": "parques",
        "lat": 39.5, "lon": -8.0, "address": f"Rua {key}, 1", "opening_hours": "Sempre aberto", **fields,
    }  # fmt: skip


class Doc(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts: list[str] = []
        self._inline = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        self._inline = tag == "script" and not attributes.get("src") and attributes.get("type") != "application/ld+json"
        if tag == "style" or "style" in attributes or any(k.startswith("on") for k in attributes):
            self.inline_scripts.append(f"<{tag} {attributes}>")

    def handle_data(self, data: str) -> None:
        if self._inline and data.strip():
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inline = False

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


# --------------------------------------------------------------------------------------------
# Importer
# --------------------------------------------------------------------------------------------
def test_corpus_points_of_interest_import_cleanly_and_reimport_changes_nothing(cli, tmp_path, client):
    rows = corpus_rows("poi")
    path = write_jsonl(tmp_path / "poi.jsonl", rows)
    first = cli("content", "import", str(path), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["created"] == len(rows) == 20
    again = json.loads(cli("content", "import", str(path), "--json").stdout)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 20)
    assert json.loads(cli("content", "import", str(path), "--update", "--json").stdout)["updated"] == 0
    sample = rows[0]
    page = client.get(f"/locais/{sample['slug']}")
    assert page.status_code == 200
    assert sample["address"] in page.text and sample["opening_hours"] in page.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lat": 200}, "lat: Enter a number from -90 to 90."),
        ({"lon": -180.5}, "lon: Enter a number from -180 to 180."),
        ({"lat": None}, "lat: This field is required."),
        ({"lon": "oeste"}, "lon: Enter a number."),
        ({"website": "javascript:alert(1)"}, "website: Write an address that starts with https://."),
        ({"email": '"><script>alert(1)</script>@x.pt'}, "email: Write an e-mail address like geral@example.pt."),
        ({"category": "vulcões"}, "category 'vulcões' is not one of"),
    ],
)
def test_a_bad_place_row_imports_nothing_and_names_the_line(cli, tmp_path, change, message):
    rows = corpus_rows("poi")[:6]
    rows[4] = {k: v for k, v in {**rows[4], **change}.items() if v is not None}
    result = cli("content", "import", str(write_jsonl(tmp_path / "bad.jsonl", rows)))
    assert result.exit_code == 1
    assert f"line 5: {message}" in result.output, result.output
    assert "nothing was imported" in result.output
    assert cli("content", "export", "--type", "places.place").stdout.strip() == ""


def test_demo_places_import_and_lie_around_the_demo_municipality(cli, client):
    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    assert 15 <= sum(r["lang"] == "pt" for r in rows) <= 30 and any(r["lang"] == "en" for r in rows)
    assert all(abs(r["lat"] - 39.5) < 0.2 and abs(r["lon"] + 8.0) < 0.2 for r in rows)
    result = cli("content", "import", str(DEMO), "--json")
    assert result.exit_code == 0, result.output
    collection = client.get("/locais/locais.geojson").json()
    assert len(collection["features"]) == sum(r["lang"] == "pt" for r in rows)


# --------------------------------------------------------------------------------------------
# List and place pages
# --------------------------------------------------------------------------------------------
def test_list_filters_by_category_with_and_without_htmx(cli, tmp_path, client):
    import_rows(cli, tmp_path, corpus_rows("poi"))
    full = client.get("/locais")
    assert full.status_code == 200 and full.text.count('<li class="card"') == 20
    assert Doc(full.text).find("form", action="/locais")[0]["hx-get"] == "/locais"
    beaches = client.get("/locais", params={"categoria": "praias"}).text
    assert beaches.count('<li class="card"') == 4 and '<option value="praias" selected>' in beaches
    assert 'href="/locais/mapa?categoria=praias"' in beaches
    fragment = client.get("/locais?categoria=museus", headers={"hx-request": "true"})
    assert fragment.text.lstrip().startswith('<div id="results"') and "<html" not in fragment.text
    assert fragment.text.count('<li class="card"') == 3
    assert "hx-request" in fragment.headers["vary"].lower()
    assert client.get("/locais?categoria=nada").text.count('<li class="card"') == 20


def test_place_page_shows_address_hours_contacts_and_json_ld_place(cli, tmp_path, client):
    row = place(
        "museu", title="Museu da Vila", category="museus", lat=39.50271, lon=-8.00492, freguesia="Vila Serena",
        address="Rua Direita, 27", opening_hours="Terça a domingo, 10h00–18h00", phone="+351 210 000 410",
        email="museu@cm-vilaserena.example", website="https://museu.example/", summary="História local.",
    )  # fmt: skip
    import_rows(cli, tmp_path, [row])
    html = client.get("/locais/museu").text
    for text in ("Rua Direita, 27", "Terça a domingo, 10h00–18h00", "Vila Serena", "39.50271, -8.00492"):
        assert text in html, text
    doc = Doc(html)
    assert doc.find("a", href="tel:+351210000410") and doc.find("a", href="mailto:museu@cm-vilaserena.example")
    assert doc.find("a", href="https://museu.example/")
    assert len(doc.find("h1")) == 1 and doc.inline_scripts == []
    assert 'class="breadcrumbs"' in html and 'id="page-feedback"' in html
    data = json_ld(html)
    assert data["@type"] == "Place" and data["name"] == "Museu da Vila"
    assert data["geo"] == {"@type": "GeoCoordinates", "latitude": 39.50271, "longitude": -8.00492}
    assert data["address"]["@type"] == "PostalAddress" and data["address"]["streetAddress"] == "Rua Direita, 27"
    assert data["telephone"] == "+351 210 000 410" and data["url"].endswith("/locais/museu")
    assert client.get("/locais/nao-existe").status_code == 404


# --------------------------------------------------------------------------------------------
# GeoJSON
# --------------------------------------------------------------------------------------------
def test_geojson_is_a_feature_collection_of_published_public_places(cli, tmp_path, client):
    rows = corpus_rows("poi")
    import_rows(cli, tmp_path, [*rows, place("rascunho", status="draft"), place("interno", audience="internal")])
    response = client.get("/locais/locais.geojson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == 20
    by_title = {f["properties"]["title"]: f for f in features}
    assert "Local rascunho" not in by_title and "Local interno" not in by_title
    for row in rows:
        feature = by_title[row["title"]]
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [row["lon"], row["lat"]]}  # [lon, lat]
        props = feature["properties"]
        assert props["url"].endswith(f"/locais/{row['slug']}") and props["category"] == row["category"]
        assert props["address"] == row["address"]
    beaches = client.get("/locais/locais.geojson?categoria=praias").json()["features"]
    assert len(beaches) == 4 and {f["properties"]["category"] for f in beaches} == {"praias"}
    etag = response.headers["etag"]
    assert client.get("/locais/locais.geojson", headers={"If-None-Match": etag}).status_code == 304


# --------------------------------------------------------------------------------------------
# The map page
# --------------------------------------------------------------------------------------------
def test_map_page_loads_leaflet_from_self_and_lists_places_without_javascript(cli, tmp_path, client):
    import_rows(cli, tmp_path, [place("jardim", title="Jardim", lat=39.501, lon=-8.002), place("parque")])
    response = client.get("/locais/mapa")
    assert response.status_code == 200
    html = response.text
    doc = Doc(html)
    assert doc.inline_scripts == [] and len(doc.find("h1")) == 1
    sources = [s["src"] for s in doc.find("script")]
    assert "/static/core/leaflet/leaflet.js" in sources and "/static/places/map.js" in sources
    assert all(src.startswith("/static/") for src in sources)
    assert doc.find("link", rel="stylesheet", href="/static/core/leaflet/leaflet.css")
    container = doc.find("div", id="places-map")[0]
    assert "hidden" in container  # shown by map.js; without JavaScript only the list is there
    assert container["data-geojson"] == "/locais/locais.geojson"
    assert container["data-tile-url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in container["data-attribution"]
    assert container["data-attribution-url"] == "https://www.openstreetmap.org/copyright"
    assert doc.find("a", href="/locais/jardim") and "39.50100, -8.00200" in html
    for path in ("/static/places/map.js", "/static/places/places.css", "/static/core/leaflet/images/marker-icon.png"):
        assert client.get(path).status_code == 200, path
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "img-src 'self' data: https:" in csp and "connect-src 'self'" in csp
    filtered = Doc(client.get("/locais/mapa?categoria=parques&lang=en").text)
    assert (
        filtered.find("div", id="places-map")[0]["data-geojson"] == "/locais/locais.geojson?categoria=parques&lang=en"
    )


def test_map_tiles_and_centre_follow_the_core_map_settings(tmp_path, database_url):
    settings = settings_for(
        tmp_path / "core", database_url, SUITE_MAP_TILE_URL="https://mapas.example/{z}/{x}/{y}.png",
        SUITE_MAP_TILE_ATTRIBUTION="Mapas © Vila Serena", SUITE_MAP_CENTER="39.61, -8.12", SUITE_MAP_ZOOM="12",
    )  # fmt: skip
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        container = Doc(client.get("/locais/mapa").text).find("div", id="places-map")[0]
    assert container["data-tile-url"] == "https://mapas.example/{z}/{x}/{y}.png"
    assert container["data-attribution"] == "Mapas © Vila Serena"
    assert (container["data-lat"], container["data-lon"], container["data-zoom"]) == ("39.61", "-8.12", "12")


def test_map_tiles_follow_the_plugin_settings(tmp_path, database_url):
    """The places map's own keys (from before the core map settings) still override the core ones."""
    config = tmp_path / "suite.toml"
    config.write_text(
        '[plugins.places]\ntile_url = "https://tiles.example/{z}/{x}/{y}.png"\n'
        'tile_attribution = "Mapas © Exemplo"\ntile_attribution_url = ""\ncenter = [39.6, -8.1]\nzoom = 11\n',
        encoding="utf-8",
    )
    app = create_app(settings_for(tmp_path / "cfg", database_url, SUITE_CONFIG=str(config)))
    with TestClient(app, base_url=BASE_URL) as client:
        container = Doc(client.get("/locais/mapa").text).find("div", id="places-map")[0]
    assert container["data-tile-url"] == "https://tiles.example/{z}/{x}/{y}.png"
    assert container["data-attribution"] == "Mapas © Exemplo" and container["data-attribution-url"] == ""
    assert (container["data-lat"], container["data-lon"], container["data-zoom"]) == ("39.6", "-8.1", "11")


@pytest.mark.parametrize(
    "tile_url",
    ["http://tile.example/{z}/{x}/{y}.png", "https://tile.example/tiles.png", "javascript:alert(1)//{z}{x}{y}"],
)
def test_a_bad_tile_url_is_refused_at_start(tmp_path, tile_url):
    config = tmp_path / "suite.toml"
    config.write_text(f'[plugins.places]\ntile_url = "{tile_url}"\n', encoding="utf-8")
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", SUITE_CONFIG=str(config))
    with pytest.raises(PluginError, match=r"\[plugins.places\] tile_url"):
        PluginRegistry.from_settings(settings)


def test_map_script_builds_popups_from_text_only():
    script = (ROOT / "plugins" / "places" / "static" / "places" / "map.js").read_text(encoding="utf-8")
    assert "textContent" in script and "innerHTML" not in script and "eval(" not in script
    assert "bindPopup(popup(" in script


# --------------------------------------------------------------------------------------------
# Vendored Leaflet
# --------------------------------------------------------------------------------------------
def test_vendored_leaflet_matches_the_recorded_checksums(client):
    vendored = (ROOT / "static" / "VENDORED.md").read_text(encoding="utf-8")
    rows = [line for line in vendored.splitlines() if line.startswith("| core/leaflet/")]
    recorded = {}
    for row in rows:
        name = row.split("|")[1].strip().removeprefix("core/leaflet/")
        sums = re.findall(r"\b[0-9a-f]{64}\b", row)
        assert len(sums) == 1 and "1.9.4" in row and "leaflet" in row, row
        recorded[name] = sums[0]
    files = {p.relative_to(LEAFLET).as_posix() for p in LEAFLET.rglob("*") if p.is_file()} - {"LICENSE"}
    assert files == set(recorded) and {"leaflet.js", "leaflet.css", "images/marker-icon.png"} <= files
    for name, digest in recorded.items():
        assert hashlib.sha256((LEAFLET / name).read_bytes()).hexdigest() == digest, name
        served = client.get(f"/static/core/leaflet/{name}")
        assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == digest, name
    assert "Leaflet 1.9.4" in (LEAFLET / "leaflet.js").read_text(encoding="utf-8")[:200]
    assert "javascript" in client.get("/static/core/leaflet/leaflet.js").headers["content-type"]
    assert "Redistribution and use in source and binary forms" in (LEAFLET / "LICENSE").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Navigation and XSS
# --------------------------------------------------------------------------------------------
def test_nav_item_points_at_the_places(client):
    assert '<a href="/locais">Locais</a>' in client.get("/").text
    assert '<a href="/locais" aria-current="page">Locais</a>' in client.get("/locais/mapa").text


def test_xss_in_every_field_renders_inert(cli, tmp_path, client):
    row = place(
        "xss", title=XSS, summary=XSS, body=XSS, address=XSS, opening_hours=XSS, freguesia=XSS, tags=[XSS],
        phone="+351 210 000 000",
    )  # fmt: skip
    import_rows(cli, tmp_path, [row])
    for path in ("/locais/xss", "/locais", "/locais/mapa", "/locais?categoria=parques"):
        html = client.get(path).text
        assert "<script>alert" not in html, path
        assert "<img src=x onerror" not in html, path
        assert Doc(html).inline_scripts == [], path
    page = client.get("/locais/xss").text
    assert "&lt;script&gt;" in page and json_ld(page)["name"] == XSS
    geojson = client.get("/locais/locais.geojson")
    assert geojson.headers["x-content-type-options"] == "nosniff"
    assert geojson.json()["features"][0]["properties"]["title"] == XSS  # data, never HTML: map.js uses textContent
