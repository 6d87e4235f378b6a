"""Alembic driven programmatically: the core branch plus one labelled branch per enabled plugin."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from .db import install_sqlite_pragmas, sync_url
from .paths import MIGRATIONS_DIR
from .plugins import PluginRegistry
from .settings import Settings

CORE_BRANCH = "core"


class MigrationError(RuntimeError):
    """A migration command could not run (message fit for the CLI)."""


def version_locations(registry: PluginRegistry, *, enabled_only: bool = False) -> dict[str, Path]:
    """Migration folders by branch.

    Installed but disabled plugins are included by default: their revisions may already be
    recorded in the database, and Alembic must know them to read its history.  Only the
    enabled branches are upgraded (see :func:`upgrade`).
    """
    locations = {CORE_BRANCH: MIGRATIONS_DIR / "versions"}
    plugins = list(registry) if enabled_only else [registry.available[n] for n in sorted(registry.available)]
    for plugin in plugins:
        if plugin.migrations_dir:
            locations[plugin.name] = plugin.migrations_dir
    return locations


def enabled_branches(registry: PluginRegistry) -> list[str]:
    """Branches that ``upgrade heads`` applies: core, then the enabled plugins having migrations."""
    return list(version_locations(registry, enabled_only=True))


def alembic_config(settings: Settings, registry: PluginRegistry, branch: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_path_separator", "os")
    import os

    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations(registry).values()))
    cfg.set_main_option("sqlalchemy.url", sync_url(settings.database_url).replace("%", "%%"))
    cfg.attributes["branch"] = branch
    return cfg


def _ensure_sqlite_dir(settings: Settings) -> None:
    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(settings: Settings, registry: PluginRegistry, target: str = "heads") -> None:
    """Apply migrations; ``heads`` means the head of every *enabled* branch (disabled plugins wait)."""
    _ensure_sqlite_dir(settings)
    cfg = alembic_config(settings, registry)
    if target != "heads":
        command.upgrade(cfg, target)
        return
    labelled = _labels(ScriptDirectory.from_config(cfg))
    for branch in enabled_branches(registry):
        if branch in labelled:
            command.upgrade(cfg, f"{branch}@head")


def _labels(script: ScriptDirectory) -> set[str]:
    return {label for sc in script.walk_revisions() for label in (sc.branch_labels or ())}


def downgrade(settings: Settings, registry: PluginRegistry, target: str) -> None:
    command.downgrade(alembic_config(settings, registry), target)


def _db_heads(settings: Settings) -> tuple[str, ...]:
    engine = create_engine(sync_url(settings.database_url))
    install_sqlite_pragmas(engine)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()


def pending(settings: Settings, registry: PluginRegistry) -> list[str]:
    """Head revisions not yet applied to the database (empty when up to date)."""
    script = ScriptDirectory.from_config(alembic_config(settings, registry))
    current = _db_heads(settings)
    applied = {sc.revision for sc in script.iterate_revisions(current, "base")} if current else set()
    wanted = set(enabled_branches(registry))
    enabled_heads = {h for h in script.get_heads() if _branch_of(script, h) & wanted}
    return sorted(h for h in enabled_heads if h not in applied)


def current(settings: Settings, registry: PluginRegistry) -> list[str]:
    """The applied head of every branch, as ``"<revision> (<branch>)"``.

    Alembic's version table omits a revision that another applied revision depends on
    (a plugin depending on the core's head), so branches are read from everything applied.
    """
    heads = _db_heads(settings)
    if not heads:
        return []
    script = ScriptDirectory.from_config(alembic_config(settings, registry))
    applied = {sc.revision: sc for sc in script.iterate_revisions(heads, "base")}
    superseded: set[str] = set()
    for sc in applied.values():
        down = sc.down_revision
        superseded.update([down] if isinstance(down, str) else list(down or ()))
    out = []
    for rev in applied:
        if rev in superseded:
            continue
        labels = ",".join(sorted(_branch_of(script, rev))) or "?"
        out.append(f"{rev} ({labels})")
    return sorted(out)


def _branch_of(script: ScriptDirectory, rev: str) -> set[str]:
    """Branch labels on the ``down_revision`` chain of ``rev`` (dependencies not followed)."""
    labels: set[str] = set()
    todo = [rev]
    while todo:
        sc = script.get_revision(todo.pop())
        if sc is None:
            continue
        labels |= set(sc.branch_labels or ())
        down = sc.down_revision
        todo.extend([down] if isinstance(down, str) else list(down or ()))
    return labels


def heads(settings: Settings, registry: PluginRegistry) -> dict[str, list[str]]:
    """Branch label → head revisions (a healthy tree has exactly one per branch)."""
    script = ScriptDirectory.from_config(alembic_config(settings, registry))
    out: dict[str, list[str]] = {}
    for head in script.get_heads():
        for label in _branch_of(script, head) or {"?"}:
            out.setdefault(label, []).append(head)
    return out


def revision(settings: Settings, registry: PluginRegistry, branch: str, message: str, autogenerate: bool = True) -> str:
    locations = version_locations(registry, enabled_only=True)
    if branch not in locations and branch not in registry:
        raise MigrationError(f"unknown branch {branch!r} (branches: {', '.join(sorted(locations))})")
    plugin = registry.get(branch)
    if plugin is not None and plugin.migrations_dir is None:
        # A plugin's first migration: its folder must exist before Alembic lists the version locations.
        (plugin.path / "migrations").mkdir(parents=True, exist_ok=True)
    cfg = alembic_config(settings, registry, branch=branch)
    script = ScriptDirectory.from_config(cfg)
    existing = {label for sc in script.walk_revisions() for label in (sc.branch_labels or ())}
    count = sum(1 for sc in script.walk_revisions() if branch in _branch_of(script, sc.revision))
    rev_id = f"{branch}_{count + 1:04d}"
    buf = io.StringIO()
    with redirect_stdout(buf):
        if branch in existing:
            rev = command.revision(
                cfg, message=message, autogenerate=autogenerate, head=f"{branch}@head", rev_id=rev_id
            )
        else:
            path = (plugin.path / "migrations") if plugin else locations[branch]
            core_heads = [h for h in script.get_heads() if CORE_BRANCH in _branch_of(script, h)]
            rev = command.revision(
                cfg,
                message=message,
                autogenerate=autogenerate,
                head="base",
                branch_label=branch,
                version_path=str(path),
                depends_on=core_heads or None,
                rev_id=rev_id,
            )
    scripts = rev if isinstance(rev, list) else [rev]
    return ", ".join(s.path for s in scripts if s is not None)
