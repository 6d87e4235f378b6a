"""Plugin ordering and selection, namespace rules, and a real third-party plugin found by entry points."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.plugins import Plugin, PluginError, PluginRegistry, discover, order_plugins
from concelho.suite.settings import Settings, load_settings

from .conftest import TEST_SECRET, login, post_form


def fake(name: str, *requires: str, permissions: dict[str, str] | None = None) -> Plugin:
    """A table-less plugin object (no package, no routes) for registry tests."""
    attrs: dict[str, Any] = {
        "name": name,
        "requires": tuple(requires),
        "models_module": None,
        "permissions": permissions or {},
    }
    return type(f"Fake_{name}", (Plugin,), attrs)()


def pool(*plugins: Plugin) -> dict[str, Plugin]:
    return {p.name: p for p in plugins}


def names(plugins: list[Plugin]) -> list[str]:
    return [p.name for p in plugins]


def plain_settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings(environ={"SUITE_DATA_DIR": str(tmp_path / "var"), "SUITE_SECRET_KEY": TEST_SECRET, **env})


# --------------------------------------------------------------------------------------------
# order_plugins
# --------------------------------------------------------------------------------------------
def test_requirements_come_first():
    available = pool(fake("news", "media", "tags"), fake("media", "tags"), fake("tags"), fake("events"))
    ordered = names(order_plugins(["news", "events"], available))
    assert ordered == ["tags", "media", "news", "events"]
    assert sorted(ordered) == sorted(set(ordered))  # each once


def test_requirements_are_pulled_in_even_when_not_selected():
    available = pool(fake("news", "media"), fake("media"))
    assert names(order_plugins(["news"], available)) == ["media", "news"]


def test_missing_requirement_is_named():
    available = pool(fake("news", "media"))
    with pytest.raises(PluginError, match=r"^plugin 'news' requires 'media', which is not installed"):
        order_plugins(["news"], available)


def test_circular_requirement_shows_the_cycle():
    available = pool(fake("a", "b"), fake("b", "c"), fake("c", "a"), fake("root", "a"))
    with pytest.raises(PluginError, match=r"^circular plugin requirement: a -> b -> c -> a$"):
        order_plugins(["root"], available)


def test_plugin_requiring_itself_is_circular():
    with pytest.raises(PluginError, match=r"^circular plugin requirement: loop -> loop$"):
        order_plugins(["loop"], pool(fake("loop", "loop")))


def test_unknown_selected_plugin_lists_installed():
    with pytest.raises(PluginError, match=r"^unknown plugin 'nope' \(installed: a, b\)$"):
        order_plugins(["nope"], pool(fake("b"), fake("a")))


# --------------------------------------------------------------------------------------------
# SUITE_PLUGINS / SUITE_PLUGINS_EXCLUDE
# --------------------------------------------------------------------------------------------
def test_all_installed_plugins_are_enabled_by_default(tmp_path):
    registry = PluginRegistry.from_settings(plain_settings(tmp_path), pool(fake("b", "a"), fake("a"), fake("c")))
    assert names(registry.plugins) == ["a", "b", "c"]
    assert "a" in registry and registry.get("zzz") is None


def test_suite_plugins_selects_and_pulls_requirements(tmp_path):
    settings = plain_settings(tmp_path, SUITE_PLUGINS="b")
    registry = PluginRegistry.from_settings(settings, pool(fake("b", "a"), fake("a"), fake("c")))
    assert names(registry.plugins) == ["a", "b"]
    states = {info.name: info.state for info in registry.describe()}
    assert states == {"a": "enabled", "b": "enabled", "c": "disabled"}


def test_unknown_plugin_in_suite_plugins(tmp_path):
    settings = plain_settings(tmp_path, SUITE_PLUGINS="alerts,guestbok")
    with pytest.raises(PluginError, match=r"unknown plugin 'guestbok' \(installed: .*alerts"):
        PluginRegistry.from_settings(settings)


def test_unknown_plugin_in_suite_plugins_fails_create_app(tmp_path):
    from concelho.suite.app import create_app

    with pytest.raises(PluginError, match="unknown plugin 'guestbok'"):
        create_app(plain_settings(tmp_path, SUITE_PLUGINS="guestbok"))


def test_exclude_removes_a_plugin(tmp_path):
    settings = plain_settings(tmp_path, SUITE_PLUGINS_EXCLUDE="c")
    registry = PluginRegistry.from_settings(settings, pool(fake("a"), fake("c")))
    assert names(registry.plugins) == ["a"]
    assert {i.name: i.state for i in registry.describe()} == {"a": "enabled", "c": "disabled"}


def test_exclude_of_a_real_plugin_takes_its_routes_away(tmp_path):
    from concelho.suite.app import create_app

    app = create_app(plain_settings(tmp_path, SUITE_PLUGINS_EXCLUDE="alerts"))
    assert "alerts" not in app.state.suite.registry
    paths = {route.path for route in app.routes}
    assert "/" in paths
    assert not any(p.startswith(("/intranet/alerts", "/static/alerts")) for p in paths)
    assert app.state.suite.registry.hooks().get("portal_top") is None


def test_excluded_requirement_is_reported(tmp_path):
    settings = plain_settings(tmp_path, SUITE_PLUGINS_EXCLUDE="a")
    with pytest.raises(PluginError, match=r"plugin 'b' requires 'a', which is not installed or is excluded"):
        PluginRegistry.from_settings(settings, pool(fake("b", "a"), fake("a")))


def test_exclude_of_unknown_plugin_is_an_error(tmp_path):
    settings = plain_settings(tmp_path, SUITE_PLUGINS_EXCLUDE="ghost")
    with pytest.raises(PluginError, match=r"SUITE_PLUGINS_EXCLUDE names unknown plugin 'ghost'"):
        PluginRegistry.from_settings(settings, pool(fake("a")))


def test_enabled_and_excluded_at_once_is_an_error(tmp_path):
    settings = plain_settings(tmp_path, SUITE_PLUGINS="a", SUITE_PLUGINS_EXCLUDE="a")
    with pytest.raises(PluginError, match=r"plugin 'a' is both enabled and excluded"):
        PluginRegistry.from_settings(settings, pool(fake("a")))


# --------------------------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------------------------
def test_permission_outside_namespace_is_refused(tmp_path):
    rogue = fake("rogue", permissions={"core.admin": "Take over the site"})
    registry = PluginRegistry.from_settings(plain_settings(tmp_path), pool(rogue))
    with pytest.raises(PluginError, match=r"plugin 'rogue' declares permission 'core.admin' outside"):
        registry.permissions()


def test_permission_outside_namespace_stops_create_app(tmp_path):
    from concelho.suite.app import create_app

    rogue = fake("rogue", permissions={"rogues.steal": "Prefix is not the plugin name plus a dot"})
    with pytest.raises(PluginError, match="outside its namespace"):
        create_app(plain_settings(tmp_path), available=pool(rogue))


def test_permissions_inside_namespace_join_core_ones(tmp_path):
    plugin = fake("news", permissions={"news.publish": "Publish news"})
    perms = PluginRegistry.from_settings(plain_settings(tmp_path), pool(plugin)).permissions()
    assert perms["news.publish"] == "Publish news"
    assert "core.admin" in perms


def test_plugin_settings_table_is_merged_over_defaults(tmp_path):
    class Tuned(Plugin):
        name = "tuned"
        models_module = None

        def default_settings(self) -> dict[str, Any]:
            return {"page_size": 10, "title": "Default"}

    (tmp_path / "suite.toml").write_text('[plugins.tuned]\ntitle = "Custom"\n')
    settings = load_settings(config_file=tmp_path / "suite.toml", environ={"SUITE_SECRET_KEY": TEST_SECRET})
    registry = PluginRegistry.from_settings(settings, {"tuned": Tuned()})
    assert registry.get("tuned").settings == {"page_size": 10, "title": "Custom"}  # type: ignore[union-attr]


def test_an_app_works_out_each_plugin_s_settings_once(tmp_path, database_url):
    """Plugin objects are shared by the apps of a process: each app keeps its own effective settings."""
    from concelho.suite.app import create_app

    from .conftest import settings_for

    config = tmp_path / "suite.toml"
    config.write_text('[plugins.services]\nfeatured = ["CERT-X"]\n', encoding="utf-8")
    plain = create_app(settings_for(tmp_path / "a", database_url)).state.suite
    tuned = create_app(settings_for(tmp_path / "b", database_url, SUITE_CONFIG=str(config))).state.suite
    assert tuned.plugin_settings("services")["featured"] == ["CERT-X"]
    assert plain.plugin_settings("services")["featured"] == []
    assert tuned.plugin_settings("services") is tuned.plugin_settings("services")
    assert plain.plugin_settings("places") == plain.registry.get("places").settings_for(plain.settings)  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="no plugin named 'nope'"):
        plain.plugin_settings("nope")


def test_what_a_plugin_keeps_for_an_app_goes_with_that_app(tmp_path, database_url):
    """Plugin objects outlive apps: a store or cache a plugin kept by ``id(state)`` could reach a later app
    that got a dead app's id (the CRM rate limit then counted another test's submissions)."""
    import gc

    from concelho.suite.app import create_app

    from .conftest import settings_for

    first = create_app(settings_for(tmp_path / "a", database_url)).state.suite
    crm = first.registry.get("crm")
    assert crm.limit_store(first) is first.plugin_cache("crm")["limit_store"]  # type: ignore[union-attr]
    assert crm.limit_store(first).database is first.database  # type: ignore[union-attr]
    del first
    gc.collect()
    second = create_app(settings_for(tmp_path / "b", database_url)).state.suite
    assert "limit_store" not in second.plugin_cache("crm")
    assert crm.limit_store(second).database is second.database  # type: ignore[union-attr]
    assert not [name for name, value in vars(crm).items() if isinstance(value, dict) and name != "settings"]


def test_builtin_plugins_are_found_by_entry_points():
    found = discover()
    assert "alerts" in found
    assert found["alerts"].package == "concelho.plugins.alerts"
    assert found["alerts"].path.name == "alerts"


# --------------------------------------------------------------------------------------------
# A throwaway third-party package
# --------------------------------------------------------------------------------------------
DEMO_INIT = '''
"""A guestbook published by a third party: nothing in the suite knows its name."""

from typing import Any

from concelho.suite.auth.guards import PUBLIC
from concelho.suite.plugins import NavItem, Plugin
from concelho.suite.render import render
from litestar import Request, Response, get
from markupsafe import Markup

RECEIVED: list[tuple[str, dict[str, Any]]] = []


@get("/guestbook", name="guestbook:index", opt=PUBLIC)
async def index(request: Request) -> Response:
    greeting = request.app.state.suite.registry.get("guestbook").settings["greeting"]
    return await render(request, "guestbook/index.html", {"greeting": greeting})


class GuestbookPlugin(Plugin):
    name = "guestbook"
    label = "Guestbook"
    version = "0.1"
    requires = ("alerts",)
    permissions = {"guestbook.moderate": "Moderate guestbook entries"}
    models_module = None  # no tables

    def default_settings(self) -> dict[str, Any]:
        return {"greeting": "Welcome, visitor"}

    def route_handlers(self) -> list[Any]:
        return [index]

    def nav_items(self) -> list[NavItem]:
        return [NavItem("Guestbook", "/guestbook", area="portal", order=5)]

    def template_hooks(self) -> dict[str, Any]:
        return {"home_main": self.teaser}

    def listeners(self) -> dict[str, list[Any]]:
        return {"alerts.changed": [self.on_alerts_changed]}

    def teaser(self, request: Any) -> Markup:
        return Markup('<aside id="guestbook-teaser">Sign the guestbook</aside>')

    async def on_alerts_changed(self, **payload: Any) -> None:
        RECEIVED.append(("alerts.changed", payload))


plugin = GuestbookPlugin()
'''

DEMO_TEMPLATE = """{% extends "core/base_portal.html" %}
{% block content %}
<div class="wrap">
  <h1 id="guestbook-title">{{ _("Guestbook") }}</h1>
  <p class="greeting">{{ greeting }}</p>
  <link rel="stylesheet" href="{{ static('guestbook/guestbook.css') }}">
  <a href="{{ url_for('guestbook:index') }}">again</a>
</div>
{% endblock %}
"""

DEMO_CSS = "#guestbook-title { color: rebeccapurple; }\n"


def _write_demo_package(root: Path) -> None:
    pkg = root / "suite_thirdparty_demo"
    (pkg / "templates" / "guestbook").mkdir(parents=True)
    (pkg / "static" / "guestbook").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(DEMO_INIT).lstrip())
    (pkg / "templates" / "guestbook" / "index.html").write_text(DEMO_TEMPLATE)
    (pkg / "static" / "guestbook" / "guestbook.css").write_text(DEMO_CSS)
    dist = root / "suite_thirdparty_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: suite-thirdparty-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[suite.plugins]\nguestbook = suite_thirdparty_demo:plugin\n")
    (dist / "top_level.txt").write_text("suite_thirdparty_demo\n")


def _forget(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture
def thirdparty(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed-looking distribution on sys.path, found only through entry points."""
    root = tmp_path_factory.mktemp("site")
    _write_demo_package(root)
    _forget("suite_thirdparty_demo")
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    try:
        yield root
    finally:
        _forget("suite_thirdparty_demo")
        monkeypatch.undo()
        importlib.invalidate_caches()


def test_thirdparty_plugin_is_discovered_through_entry_points(thirdparty):
    found = discover()
    assert {"alerts", "guestbook"} <= set(found)
    plugin = found["guestbook"]
    assert type(plugin).__module__ == "suite_thirdparty_demo"
    assert plugin.package == "suite_thirdparty_demo"
    assert plugin.path == thirdparty / "suite_thirdparty_demo"
    assert plugin.templates_dir == thirdparty / "suite_thirdparty_demo" / "templates"
    assert plugin.static_dir == thirdparty / "suite_thirdparty_demo" / "static" / "guestbook"
    assert plugin.migrations_dir is None


def test_thirdparty_plugin_works_over_http(thirdparty, settings, make_user):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    demo = importlib.import_module("suite_thirdparty_demo")
    app = create_app(settings)
    registry = app.state.suite.registry
    assert names(registry.plugins).index("alerts") < names(registry.plugins).index("guestbook")
    assert registry.permissions()["guestbook.moderate"] == "Moderate guestbook entries"
    assert app.route_reverse("guestbook:index") == "/guestbook"

    with TestClient(app, base_url="http://testserver.local") as client:
        page = client.get("/guestbook")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert '<h1 id="guestbook-title">Guestbook</h1>' in page.text
        assert '<p class="greeting">Welcome, visitor</p>' in page.text
        assert 'href="/static/guestbook/guestbook.css"' in page.text
        assert 'class="site-header"' in page.text  # extends the core portal layout

        css = client.get("/static/guestbook/guestbook.css")
        assert css.status_code == 200
        assert css.text == DEMO_CSS
        assert client.get("/static/guestbook/missing.css").status_code == 404

        home = client.get("/")
        assert home.status_code == 200
        assert '<aside id="guestbook-teaser">Sign the guestbook</aside>' in home.text
        assert '<a href="/guestbook">Guestbook</a>' in home.text  # portal navigation

        # Its listener hears another plugin's event through the app's event bus.
        make_user("boss", roles=["admin", "employee"])
        assert login(client, "boss").status_code == 303
        demo.RECEIVED.clear()
        raised = post_form(client, "/intranet/alerts/", {"message": "Estrada cortada", "level": "info"})
        assert raised.status_code == 303
        assert demo.RECEIVED == [("alerts.changed", {})]


def test_thirdparty_plugin_settings_table(thirdparty, tmp_path, database_url):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    (tmp_path / "suite.toml").write_text('[plugins.guestbook]\ngreeting = "Bem-vindo"\n')
    settings = load_settings(
        config_file=tmp_path / "suite.toml",
        environ={
            "SUITE_DATA_DIR": str(tmp_path / "var"),
            "SUITE_DATABASE_URL": database_url,
            "SUITE_SECRET_KEY": TEST_SECRET,
        },
    )
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        assert '<p class="greeting">Bem-vindo</p>' in client.get("/guestbook").text


def test_thirdparty_plugin_can_be_excluded(thirdparty, tmp_path, database_url):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    settings = load_settings(
        environ={
            "SUITE_DATA_DIR": str(tmp_path / "var"),
            "SUITE_DATABASE_URL": database_url,
            "SUITE_SECRET_KEY": TEST_SECRET,
            "SUITE_PLUGINS_EXCLUDE": "guestbook",
        }
    )
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        assert client.get("/guestbook").status_code == 404
        assert client.get("/static/guestbook/guestbook.css").status_code == 404
        home = client.get("/")
        assert home.status_code == 200
        assert "guestbook-teaser" not in home.text


def test_thirdparty_plugin_in_cli_listing(thirdparty, cli):
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["guestbook"]["state"] == "enabled"
    assert rows["guestbook"]["version"] == "0.1"
    assert rows["guestbook"]["requires"] == ["alerts"]
    assert rows["guestbook"]["source"] == "suite_thirdparty_demo"
    assert "GET /guestbook" in rows["guestbook"]["routes"]
    assert any(r.endswith("/static/guestbook/{file_path:path}") for r in rows["guestbook"]["routes"])
    assert rows["alerts"]["state"] == "enabled"

    excluded = cli("plugins", "list", "--json", env={"SUITE_PLUGINS_EXCLUDE": "guestbook"})
    assert excluded.exit_code == 0, excluded.output
    states = {row["name"]: row["state"] for row in json.loads(excluded.stdout)}
    assert states["guestbook"] == "disabled"


def test_thirdparty_plugin_is_gone_after_cleanup():
    """The fixture leaves nothing behind: later discovery sees only what is really installed."""
    assert "guestbook" not in discover()
    assert "suite_thirdparty_demo" not in sys.modules


def test_plugin_defined_in_a_nested_package_init(tmp_path, monkeypatch):
    """Regression: a plugin class in ``acme/board/__init__.py`` belongs to ``acme.board``, not ``acme``."""
    pkg = tmp_path / "acme_demo_ns" / "board"
    pkg.mkdir(parents=True)
    (tmp_path / "acme_demo_ns" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text(
        "from concelho.suite.plugins import Plugin\n\n\n"
        "class BoardPlugin(Plugin):\n    name = 'board'\n\n\nplugin = BoardPlugin()\n"
    )
    (pkg / "models.py").write_text("LOADED = True\n")
    _forget("acme_demo_ns")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("acme_demo_ns.board")
        plugin = module.plugin
        assert plugin.package == "acme_demo_ns.board"
        assert plugin.path == pkg
        plugin.load_models()
        assert sys.modules["acme_demo_ns.board.models"].LOADED is True
    finally:
        _forget("acme_demo_ns")
