"""The map next to the location fields of the public CRM forms (Fale Connosco, online requests), over HTTP: without
JavaScript the typed coordinates work alone; the map's assets and settings (the core map settings) are on the page;
``[plugins.crm] location_map = false`` leaves only the fields.  The map itself is driven in tests/test_browser_crm.py.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from concelho.suite.app import create_app
from concelho.suite.plugins import PluginError, PluginRegistry
from litestar.testing import TestClient

from .conftest import post_form, run, settings_for
from .test_crm import tracking, valid_form
from .test_services import import_rows, service

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "crm" / "static" / "crm" / "location-map.js"
BASE_URL = "http://testserver.local"


class Page(HTMLParser):
    """Tags with their attributes, and whether anything inline (script, style, on…) is there."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "script" and not attributes.get("src") and attributes.get("type") != "application/ld+json":
            self.inline.append("<script>")
        if tag == "style" or "style" in attributes or any(k.startswith("on") for k in attributes):
            self.inline.append(f"<{tag} {attributes}>")

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def client_with(tmp_path: Path, database_url: str, toml: str = "", **env: str) -> TestClient:
    config = tmp_path / "suite.toml"
    config.write_text(toml, encoding="utf-8")
    settings = settings_for(tmp_path / "var", database_url, SUITE_CONFIG=str(config), **env)
    return TestClient(create_app(settings), base_url=BASE_URL)


def assert_plain_fields(page: Page) -> None:
    """The typed coordinates, as before the map: labelled text fields in their fieldset."""
    for name in ("latitude", "longitude"):
        (field,) = page.find("input", id=name)
        assert (field["name"], field["type"], field["inputmode"]) == (name, "text", "decimal")
        assert page.find("label", **{"for": name})
    assert page.find("input", id="location_text") and page.find("fieldset")


def test_contact_form_has_the_plain_fields_and_a_hidden_map_for_scripts(client):
    response = client.get("/fale-connosco/")
    assert response.status_code == 200
    page = Page(response.text)
    assert_plain_fields(page)
    assert page.inline == []
    # Hidden without JavaScript: the script shows it once Leaflet has loaded.
    (picker,) = page.find("div", id="crm-location-picker")
    assert "hidden" in picker
    (box,) = page.find("div", id="crm-location-map")
    assert box["role"] == "region" and box["aria-label"] and box["aria-describedby"] == "crm-location-help"
    assert page.find("p", id="crm-location-help") and page.find("p", id="crm-location-status")
    assert page.find("button", id="crm-location-clear", type="button")
    # The core map settings (suite/maps.py) by default: OpenStreetMap tiles around the demo municipality.
    assert box["data-tile-url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in box["data-attribution"]
    assert box["data-attribution-url"] == "https://www.openstreetmap.org/copyright"
    assert (box["data-lat"], box["data-lon"], box["data-zoom"]) == ("39.5", "-8.0", "13")
    assert box["data-marker-label"] and box["data-none-label"]
    scripts = [s["src"] for s in page.find("script")]
    assert "/static/core/leaflet/leaflet.js" in scripts and "/static/crm/location-map.js" in scripts
    assert scripts.index("/static/core/leaflet/leaflet.js") < scripts.index("/static/crm/location-map.js")
    assert page.find("link", rel="stylesheet", href="/static/core/leaflet/leaflet.css")
    for path in (
        "/static/core/leaflet/leaflet.js",
        "/static/core/leaflet/leaflet.css",
        "/static/core/leaflet/images/marker-icon.png",
        "/static/crm/location-map.js",
        "/static/crm/crm.css",
    ):
        assert client.get(path).status_code == 200, path
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "img-src 'self' data: https:" in csp  # https tiles load, no inline code


def test_a_form_sent_back_with_errors_keeps_the_point(client):
    response = post_form(client, "/fale-connosco/", valid_form(latitude="39.501234", longitude="-8.004321", consent=""))
    assert response.status_code == 400
    page = Page(response.text)
    assert page.find("input", id="latitude")[0]["value"] == "39.501234"
    assert page.find("input", id="longitude")[0]["value"] == "-8.004321"
    assert page.find("div", id="crm-location-map")  # the script puts the marker on the kept point


def test_typed_coordinates_are_stored_with_the_case(client, settings):
    from concelho.plugins.crm.models import Case
    from concelho.suite.db import Database
    from sqlalchemy import select

    reference, _ = tracking(post_form(client, "/fale-connosco/", valid_form(latitude="39.5012", longitude="-8.0043")))

    async def point() -> tuple[float | None, float | None]:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                case = (await session.execute(select(Case).where(Case.reference == reference))).scalar_one()
                return case.latitude, case.longitude
        finally:
            await database.dispose()

    assert run(point()) == (39.5012, -8.0043)
    half = post_form(client, "/fale-connosco/", valid_form(latitude="39.5", longitude=""))
    assert half.status_code == 400 and 'id="location_text-error"' in half.text


def test_the_map_follows_the_core_map_settings(tmp_path, database_url):
    env = {
        "SUITE_MAP_TILE_URL": "https://mapas.example/{z}/{x}/{y}.png",
        "SUITE_MAP_TILE_ATTRIBUTION": "Mapas © Vila Serena",
        "SUITE_MAP_TILE_ATTRIBUTION_URL": "",
        "SUITE_MAP_CENTER": "39.61,-8.12",
        "SUITE_MAP_ZOOM": "15",
    }
    with client_with(tmp_path, database_url, **env) as client:
        (box,) = Page(client.get("/fale-connosco/").text).find("div", id="crm-location-map")
    assert box["data-tile-url"] == "https://mapas.example/{z}/{x}/{y}.png"
    assert box["data-attribution"] == "Mapas © Vila Serena" and box["data-attribution-url"] == ""
    assert (box["data-lat"], box["data-lon"], box["data-zoom"]) == ("39.61", "-8.12", "15")


def test_location_map_false_leaves_only_the_fields(tmp_path, database_url):
    with client_with(tmp_path, database_url, "[plugins.crm]\nlocation_map = false\n") as client:
        html = client.get("/fale-connosco/").text
    page = Page(html)
    assert_plain_fields(page)
    assert not page.find("div", id="crm-location-map") and "leaflet" not in html and "location-map.js" not in html


def test_location_map_must_be_true_or_false(tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('[plugins.crm]\nlocation_map = "sim"\n', encoding="utf-8")
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", SUITE_CONFIG=str(config))
    with pytest.raises(PluginError, match=r"\[plugins.crm\] location_map"):
        PluginRegistry.from_settings(settings)


def test_service_request_form_has_the_map_too(cli, tmp_path, client):
    import_rows(cli, tmp_path, [service("OCORR")])
    response = client.get("/pedidos/OCORR")
    assert response.status_code == 200
    page = Page(response.text)
    assert_plain_fields(page)
    assert page.find("div", id="crm-location-map") and page.inline == []
    assert "/static/crm/location-map.js" in [s["src"] for s in page.find("script")]


def test_the_script_writes_text_only_and_keeps_the_fields_the_source_of_truth():
    script = SCRIPT.read_text(encoding="utf-8")
    assert "innerHTML" not in script and "eval(" not in script and "document.write" not in script
    assert "textContent" in script and "escapeHtml" in script  # the status line; the attribution is escaped
    for hook in ('getElementById("latitude")', 'getElementById("longitude")', '"click"', '"dragend"', '"input"'):
        assert hook in script, hook
