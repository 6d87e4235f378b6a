"""``suite``: the administrators' command line.  Plugin sub-apps are mounted by plugin name."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
from concelho.suite import __version__

from .common import emit, fail, first_line, load_suite, missing_database, reset_loaded, run_db
from .content import app as content_app
from .db import app as db_app
from .demo import app as demo_app
from .departments import app as departments_app
from .groups import app as groups_app
from .mail import app as mail_app
from .search import app as search_app
from .users import app as users_app
from .worker import worker

app = typer.Typer(
    name="suite",
    help="Concelho: intranet, public portal and citizen CRM of a municipality.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
plugins_app = typer.Typer(help="Installed plugins.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"suite {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (default ./suite.toml if present)"),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    if config is not None:
        if not config.is_file():
            fail(f"config file not found: {config}", 2)
        os.environ["SUITE_CONFIG"] = str(config)
        reset_loaded()


@app.command()
def init(
    admin_username: Annotated[str, typer.Option(help="Username of the first administrator")] = "admin",
    admin_email: Annotated[str | None, typer.Option(help="E-mail of the first administrator")] = None,
    admin_password: Annotated[str | None, typer.Option(help="Password (prompted when omitted)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create ./var, the secret key, the database and the first administrator (safe to re-run)."""
    from concelho.suite.settings import SECRET_FILE, SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc), 2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    secret_path = settings.data_dir / SECRET_FILE
    created_secret = False
    if not settings.secret_key and not secret_path.exists():
        # Created private from the start (no window where the umask leaves it readable).
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        created_secret = True
    reset_loaded()
    suite = load_suite()
    from concelho.suite import migrate
    from concelho.suite.users import UserError, create_user, ensure_default_roles

    try:
        migrate.upgrade(suite.settings, suite.registry)
    except Exception as exc:
        fail(f"database migration failed: {first_line(str(exc))}")

    async def roles_and_admin(session):  # type: ignore[no-untyped-def]
        from concelho.suite.models import User
        from sqlalchemy import select

        # The roles are kept even when creating the administrator fails below.
        await ensure_default_roles(session, list(suite.registry.permissions()))
        await session.flush()
        has_admin = (await session.execute(select(User.id).where(User.is_superuser.is_(True)).limit(1))).first()
        await session.commit()
        return has_admin is not None

    has_admin = run_db(roles_and_admin)
    admin_created = None
    if not has_admin:
        email = admin_email
        password = admin_password
        if email is None or password is None:
            if not sys.stdin.isatty():
                fail("no administrator yet: pass --admin-email and --admin-password (no terminal to prompt)")
            email = email or typer.prompt("Administrator e-mail")
            password = password or typer.prompt("Administrator password", hide_input=True, confirmation_prompt=True)

        async def make_admin(session):  # type: ignore[no-untyped-def]
            user = await create_user(
                session,
                username=admin_username,
                email=email,
                password=password,
                name="Administrator",
                kind="admin",
            )
            await session.commit()
            return user.username

        try:
            admin_created = run_db(make_admin)
        except UserError as exc:
            fail(str(exc))
    emit(
        {
            "data_dir": str(settings.data_dir),
            "secret_created": created_secret,
            "admin_created": admin_created,
            "database": suite.settings.masked()["database_url"],
        },
        json_output,
        f"ready: data in {settings.data_dir}"
        + (f", administrator {admin_created!r} created" if admin_created else ", administrator already present"),
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Run the web server (uvicorn)."""
    import uvicorn
    from concelho.suite.app import create_app
    from concelho.suite.plugins import PluginError
    from concelho.suite.settings import SettingsError

    suite = load_suite()
    from .common import require_database

    require_database(suite.settings)
    try:
        create_app(suite.settings)  # fail fast, in this process, with a clear message
    except (SettingsError, PluginError) as exc:
        fail(str(exc), 2)
    uvicorn.run(
        "concelho.suite.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def check(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Print the effective configuration (secrets masked) and check database, storage and search."""
    from concelho.search.backends import backend_for
    from concelho.suite import migrate
    from concelho.suite.storage import LocalStorage

    suite = load_suite()
    results: dict[str, str] = {}
    absent = missing_database(suite.settings)
    if absent:  # connecting would create an empty file
        results["database"] = f"not found at {absent}: run `suite init`"
    else:
        try:
            missing = migrate.pending(suite.settings, suite.registry)
            results["database"] = "ok" if not missing else f"needs `suite db upgrade` (missing {', '.join(missing)})"
        except Exception as exc:
            results["database"] = f"error: {first_line(str(exc))}"
    try:
        LocalStorage(suite.settings.storage_dir).check()
        results["storage"] = "ok"
    except OSError as exc:
        results["storage"] = f"error: {exc.strerror or exc}"
    try:
        backend_for(suite.settings).health()
        results["search"] = "ok"
    except Exception as exc:
        results["search"] = f"error: {exc}"
    if not suite.settings.secret_key:
        results["secret_key"] = "missing: run `suite init`"  # noqa: S105
    ok = all(v == "ok" for v in results.values())
    if json_output:
        emit({"ok": ok, "settings": suite.settings.masked(), "checks": results}, True)
    else:
        from rich.table import Table

        from .common import console

        table = Table(title="Effective configuration")
        table.add_column("setting")
        table.add_column("value")
        for key, value in suite.settings.masked().items():
            table.add_row(key, str(value))
        console.print(table)
        for key, value in results.items():
            console.print(f"{key:10} {'[green]' if value == 'ok' else '[red]'}{value}[/]", highlight=False)
    if not ok:
        raise typer.Exit(1)


def _app_for_listing(create_app, settings):  # type: ignore[no-untyped-def]
    """Build the app only to read its routes, leaving the process's logging as it was.

    Litestar installs its logging handlers (bound to the current stderr) on the root logger when
    an app is built; a listing must not keep them (they outlive the command when run in-process).
    """
    import logging

    saved = {name: (lg.handlers[:], lg.level) for name in ("", "litestar") for lg in [logging.getLogger(name)]}
    try:
        return create_app(settings)
    finally:
        for name, (handlers, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)


@plugins_app.command("list")
def plugins_list(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Name, version, state and routes of every installed plugin."""
    from concelho.suite.app import create_app
    from litestar.routes import HTTPRoute

    suite = load_suite()
    routes: dict[str, list[str]] = {}
    if suite.settings.secret_key:
        app_ = _app_for_listing(create_app, suite.settings)
        for route in app_.routes:
            if isinstance(route, HTTPRoute):
                for handler in route.route_handlers:
                    owner = (handler.name or "").split(":", 1)[0]
                    routes.setdefault(owner, []).append(f"{'/'.join(sorted(handler.http_methods))} {route.path}")
    rows = [
        {
            "name": info.name,
            "version": info.version,
            "state": info.state,
            "requires": list(info.requires),
            "source": info.source,
            "routes": sorted(set(info.routes if info.routes else routes.get(info.name, []))),
        }
        for info in suite.registry.describe()
    ]
    emit(rows, json_output, columns=["name", "version", "state", "requires", "routes"], title="Plugins")


app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(departments_app, name="departments")
app.add_typer(groups_app, name="groups")
app.add_typer(mail_app, name="mail")
app.add_typer(plugins_app, name="plugins")
app.add_typer(demo_app, name="demo")
app.add_typer(content_app, name="content")
app.add_typer(search_app, name="search")
app.command()(worker)


def _enabled_check(plugin_name: str):  # type: ignore[no-untyped-def]
    def ensure_enabled() -> None:
        if plugin_name not in load_suite().registry:
            fail(f"plugin {plugin_name!r} is disabled (see SUITE_PLUGINS / SUITE_PLUGINS_EXCLUDE)", 2)

    return ensure_enabled


def _mount_plugin_clis() -> None:
    """Mount every installed plugin's Typer app as ``suite <name>``."""
    from concelho.suite.plugins import PluginError, discover

    try:
        available = discover()
    except PluginError as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return
    for name, plugin in sorted(available.items()):
        sub = plugin.cli()
        if sub is None:
            continue

        sub.callback()(_enabled_check(name))
        app.add_typer(sub, name=name, help=sub.info.help or plugin.label)


_mount_plugin_clis()


def main() -> None:
    app()
