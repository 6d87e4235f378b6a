"""The plugin contract, checked for every installed plugin: its name is its namespace everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from concelho.suite import migrate
from concelho.suite.db import sync_url
from concelho.suite.plugins import Plugin, PluginRegistry, discover, order_plugins
from concelho.suite.settings import Settings
from litestar.routes import HTTPRoute
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from .conftest import settings_for

INSTALLED: dict[str, Plugin] = discover()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def only_settings(tmp_path: Path, name: str, database_url: str | None = None) -> Settings:
    return settings_for(
        tmp_path / "var",
        database_url or f"sqlite:///{tmp_path / 'contract.db'}",
        SUITE_PLUGINS=name,
    )


def model_tables(plugin: Plugin) -> set[str]:
    """Tables mapped by classes that live in the plugin's package."""
    plugin.load_models()
    tables: set[str] = set()
    for mapper in SQLModel._sa_registry.mappers:
        module = mapper.class_.__module__
        if module == plugin.package or module.startswith(plugin.package + "."):
            tables.update(t.name for t in mapper.tables)
    return tables


@pytest.fixture(params=sorted(INSTALLED), ids=str)
def plugin(request: pytest.FixtureRequest) -> Plugin:
    return INSTALLED[request.param]


def test_every_builtin_plugin_is_installed():
    assert "alerts" in INSTALLED


def test_name_is_a_usable_namespace(plugin):
    assert plugin.name.isidentifier()
    assert plugin.name == plugin.name.lower()
    assert plugin.name != "core"
    assert ":" not in plugin.name and "." not in plugin.name


def test_templates_live_under_their_namespace(plugin):
    folder = plugin.path / "templates"
    for path in files_under(folder) if folder.is_dir() else []:
        assert path.relative_to(folder).parts[0] == plugin.name, f"{path} is outside templates/{plugin.name}/"
    stray = [p for p in files_under(plugin.path) if p.suffix == ".html" and folder not in p.parents]
    assert stray == [], f"templates outside {folder}: {stray}"


def test_static_files_live_under_their_namespace(plugin):
    folder = plugin.path / "static"
    for path in files_under(folder) if folder.is_dir() else []:
        assert path.relative_to(folder).parts[0] == plugin.name, f"{path} is outside static/{plugin.name}/"
    if plugin.static_dir is not None:
        assert plugin.static_dir == folder / plugin.name


def test_tables_carry_the_prefix(plugin):
    for table in model_tables(plugin):
        assert table.startswith(plugin.name + "_"), f"table {table!r} of {plugin.name} lacks the prefix"


def test_tables_have_migrations(plugin, tmp_path):
    if model_tables(plugin):
        assert plugin.migrations_dir is not None, f"{plugin.name} has tables but no migrations/"
    if plugin.migrations_dir is None:
        assert model_tables(plugin) == set()
        return
    settings = only_settings(tmp_path, plugin.name)
    registry = PluginRegistry.from_settings(settings)
    branch_heads = migrate.heads(settings, registry)
    assert len(branch_heads.get(plugin.name, [])) == 1, f"{plugin.name} heads: {branch_heads}"
    assert all(len(heads) == 1 for heads in branch_heads.values()), branch_heads
    assert "?" not in branch_heads, "a revision belongs to no labelled branch"


def test_migration_files_belong_to_their_branch(plugin, tmp_path):
    from alembic.script import ScriptDirectory

    settings = only_settings(tmp_path, plugin.name)
    registry = PluginRegistry.from_settings(settings)
    script = ScriptDirectory.from_config(migrate.alembic_config(settings, registry))
    mine = [
        sc
        for sc in script.walk_revisions()
        if plugin.migrations_dir and Path(sc.path).resolve().parent == plugin.migrations_dir.resolve()
    ]
    for sc in mine:
        assert plugin.name in migrate._branch_of(script, sc.revision), f"{sc.path} is not on its branch"
        assert sc.revision.startswith(plugin.name + "_"), f"revision id {sc.revision!r} lacks the prefix"
    assert bool(mine) == (plugin.migrations_dir is not None)


def test_route_names_carry_the_prefix(plugin, tmp_path):
    from concelho.suite.app import create_app

    app = create_app(only_settings(tmp_path, plugin.name))
    checked = 0
    for route in app.routes:
        for handler in route.route_handlers:
            owned = handler.opt.get("plugin") == plugin.name or route.path.startswith(f"/static/{plugin.name}/")
            if not owned:
                continue
            if isinstance(route, HTTPRoute) and handler.http_methods == {"OPTIONS"} and handler.name is None:
                continue  # Litestar's automatic OPTIONS handler
            assert handler.name, f"unnamed handler {handler} on {route.path}"
            assert handler.name.startswith(plugin.name + ":"), f"{handler.name!r} on {route.path}"
            checked += 1
    expected = bool(plugin.route_handlers()) or plugin.static_dir is not None
    assert (checked > 0) == expected
    # Nothing outside the plugin claims its namespace either.
    for route in app.routes:
        for handler in route.route_handlers:
            if (handler.name or "").startswith(plugin.name + ":"):
                assert handler.opt.get("plugin") == plugin.name or route.path.startswith(f"/static/{plugin.name}/")


def test_permissions_carry_the_prefix(plugin):
    for permission, label in plugin.permissions.items():
        assert permission.startswith(plugin.name + "."), permission
        assert label.strip(), f"permission {permission} needs a label"


def test_nav_items_and_hooks_are_well_formed(plugin):
    for item in plugin.nav_items():
        assert item.area in {"portal", "intranet", "admin"}
        assert item.url.startswith("/")
        assert item.permission is None or item.permission in plugin.permissions or item.permission.startswith("core.")
    for slot, renderer in plugin.template_hooks().items():
        assert slot.isidentifier()
        assert callable(renderer)


def test_plugin_loads_alone(plugin, tmp_path, empty_database_url):
    """SUITE_PLUGINS=<name>: requirements are pulled in, the schema migrates, the app boots."""
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    settings = only_settings(tmp_path, plugin.name, empty_database_url("sqlite"))
    expected = [p.name for p in order_plugins([plugin.name], INSTALLED)]

    registry = PluginRegistry.from_settings(settings)
    registry.load_models()
    assert [p.name for p in registry.plugins] == expected
    migrate.upgrade(settings, registry)
    assert migrate.pending(settings, registry) == []

    engine = create_engine(sync_url(settings.database_url))
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    prefixes = ("core_", *(name + "_" for name in expected))
    assert all(t.startswith(prefixes) for t in tables), sorted(tables)
    assert model_tables(plugin) <= tables

    app = create_app(settings)
    assert [p.name for p in app.state.suite.registry.plugins] == expected
    with TestClient(app, base_url="http://testserver.local") as client:
        assert client.get("/").status_code == 200
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
