"""Migrations match the models on SQLite and PostgreSQL; one head per branch; down to base and back."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from concelho.suite import migrate
from concelho.suite.db import install_sqlite_pragmas, metadata, sync_url
from concelho.suite.paths import MIGRATIONS_DIR
from concelho.suite.plugins import PluginRegistry
from concelho.suite.settings import Settings
from sqlalchemy import create_engine, inspect

from .conftest import settings_for

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def env_include_object(branch: str | None = None) -> Any:
    """``include_object`` exactly as written in suite/migrations/env.py (which runs on import)."""
    source = (MIGRATIONS_DIR / "env.py").read_text()
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "include_object")
    namespace: dict[str, Any] = {"branch": branch}
    exec(compile(ast.Module(body=[func], type_ignores=[]), "env.py", "exec"), namespace)  # noqa: S102
    return namespace["include_object"]


def schema_diff(settings: Settings) -> list[Any]:
    engine = create_engine(sync_url(settings.database_url))
    install_sqlite_pragmas(engine)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "target_metadata": metadata,
                    "include_object": env_include_object(),
                    "compare_type": True,
                    "render_as_batch": conn.dialect.name == "sqlite",
                },
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def table_names(settings: Settings) -> set[str]:
    engine = create_engine(sync_url(settings.database_url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def migrated(request: pytest.FixtureRequest, tmp_path, empty_database_url) -> tuple[Settings, PluginRegistry]:  # type: ignore[no-untyped-def]
    settings = settings_for(tmp_path / "var", empty_database_url(request.param))
    registry = PluginRegistry.from_settings(settings)
    registry.load_models()
    assert sorted(migrate.pending(settings, registry)) == sorted(
        head for heads in migrate.heads(settings, registry).values() for head in heads
    )
    migrate.upgrade(settings, registry)
    return settings, registry


def test_include_object_filter_is_the_one_env_py_uses():
    include = env_include_object()
    assert include(None, "alembic_version", "table", True, None) is False
    assert include(None, "core_user", "table", True, None) is True
    alerts_only = env_include_object("alerts")
    assert alerts_only(None, "alerts_alert", "table", True, None) is True
    assert alerts_only(None, "core_user", "table", True, None) is False


@pytest.mark.parametrize("migrated", BACKENDS, indirect=True)
def test_upgraded_schema_matches_the_models(migrated):
    settings, registry = migrated
    assert migrate.pending(settings, registry) == []
    tables = table_names(settings)
    assert {"core_user", "core_audit", "alerts_alert"} <= tables
    assert set(metadata.tables) <= tables
    diff = schema_diff(settings)
    assert diff == [], f"models and migrations differ: {diff}"


@pytest.mark.parametrize("migrated", BACKENDS, indirect=True)
def test_one_head_per_branch(migrated):
    settings, registry = migrated
    heads = migrate.heads(settings, registry)
    expected = {"core", *(p.name for p in registry if p.migrations_dir)}
    assert set(heads) == expected
    for branch, revisions in heads.items():
        assert len(revisions) == 1, f"branch {branch} has heads {revisions}"
    current = migrate.current(settings, registry)
    assert sorted(current) == sorted(f"{revs[0]} ({branch})" for branch, revs in heads.items())


@pytest.mark.parametrize("migrated", BACKENDS, indirect=True)
def test_downgrade_to_base_and_upgrade_again(migrated):
    settings, registry = migrated
    migrate.downgrade(settings, registry, "base")
    assert table_names(settings) - {"alembic_version"} == set()
    assert migrate.current(settings, registry) == []
    assert migrate.pending(settings, registry) != []

    migrate.upgrade(settings, registry)
    assert migrate.pending(settings, registry) == []
    assert set(metadata.tables) <= table_names(settings)
    assert schema_diff(settings) == []


@pytest.mark.parametrize("migrated", BACKENDS, indirect=True)
def test_upgrade_is_idempotent(migrated):
    settings, registry = migrated
    before = migrate.current(settings, registry)
    migrate.upgrade(settings, registry)
    assert migrate.current(settings, registry) == before
