"""Shared fixtures: real SQLite and PostgreSQL databases, the app over real HTTP, users, the CLI.

PostgreSQL: ``SUITE_TEST_DATABASE_URL`` (a server URL whose user may create databases), or a
throwaway cluster started from the machine's own binaries (initdb/pg_ctl).  With
``SUITE_TEST_REQUIRE_PG=1`` (CI) a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.settings import Settings, load_settings
from litestar.testing import TestClient

TEST_SECRET = "test-secret-key-not-for-production-0123456789"
PASSWORD = "correct-horse-battery"
_counter = itertools.count()


def _require(var: str) -> bool:
    return os.environ.get(var, "").lower() in {"1", "true", "yes"}


# --------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster for the session
# --------------------------------------------------------------------------------------------
def _find_pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="suite-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _admin_execute(server_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _with_database(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str | None]:
    """URL of a PostgreSQL server for tests, or None when unavailable (and not required)."""
    url = os.environ.get("SUITE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    bindir = _find_pg_bin()
    if bindir is None:
        if _require("SUITE_TEST_REQUIRE_PG"):
            pytest.fail("SUITE_TEST_REQUIRE_PG is set but no PostgreSQL binaries (initdb, pg_ctl) were found")
        yield None
        return
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = f"could not start PostgreSQL from {bindir}: {exc} {detail.decode(errors='replace')[-500:]}"
        if _require("SUITE_TEST_REQUIRE_PG"):
            pytest.fail(message)
        cluster.stop()
        yield None
        return
    try:
        yield cluster.url
    finally:
        cluster.stop()


# --------------------------------------------------------------------------------------------
# Migrated template databases (migrated once, copied per test)
# --------------------------------------------------------------------------------------------
def settings_for(data_dir: Path, database_url: str, **extra: str) -> Settings:
    environ = {
        "SUITE_DATA_DIR": str(data_dir),
        "SUITE_DATABASE_URL": database_url,
        "SUITE_SECRET_KEY": TEST_SECRET,
        **extra,
    }
    return load_settings(environ=environ)


def migrate_database(settings: Settings) -> None:
    from concelho.suite import migrate
    from concelho.suite.plugins import PluginRegistry

    registry = PluginRegistry.from_settings(settings)
    registry.load_models()
    migrate.upgrade(settings, registry)
    run(_seed_roles(settings, registry))


async def _seed_roles(settings: Settings, registry: Any) -> None:
    from concelho.suite.db import Database
    from concelho.suite.users import ensure_default_roles

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            await ensure_default_roles(session, list(registry.permissions()))
    finally:
        await database.dispose()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sqlite-template")
    path = root / "template.db"
    migrate_database(settings_for(root, f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: str | None) -> str | None:
    if pg_server is None:
        return None
    name = f"suite_template_{os.getpid()}"
    _admin_execute(pg_server, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    migrate_database(settings_for(Path(tempfile.mkdtemp()), _with_database(pg_server, name)))
    return name


def _backends() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated database (with default roles) on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "suite.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    server = request.getfixturevalue("pg_server")
    if server is None:
        pytest.skip("PostgreSQL is not available here (set SUITE_TEST_REQUIRE_PG=1 to make this an error)")
    template_name = request.getfixturevalue("pg_template")
    name = f"suite_test_{os.getpid()}_{next(_counter)}"
    _admin_execute(server, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    return _with_database(server, name)


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_server: str | None) -> Any:
    """Factory of empty (unmigrated) databases: ``empty_database_url("sqlite" | "postgres")``."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'empty{next(_counter)}.db'}"
        if pg_server is None:
            pytest.skip("PostgreSQL is not available here (set SUITE_TEST_REQUIRE_PG=1 to make this an error)")
        name = f"suite_empty_{os.getpid()}_{next(_counter)}"
        _admin_execute(pg_server, f'CREATE DATABASE "{name}"')
        return _with_database(pg_server, name)

    return make


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return settings_for(tmp_path / "var", database_url)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    from concelho.suite.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver.local") as test_client:
        yield test_client


async def _create_user(settings: Settings, username: str, password: str, roles: list[str], kind: str) -> int:
    from concelho.suite.db import Database
    from concelho.suite.users import create_user

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            user = await create_user(
                session,
                username=username,
                email=f"{username}@example.org",
                password=password,
                name=username.title(),
                kind=kind,
                roles=roles,
            )
            await session.flush()
            return int(user.id)
    finally:
        await database.dispose()


@pytest.fixture
def make_user(settings: Settings):  # type: ignore[no-untyped-def]
    def make(username: str, roles: list[str] | None = None, kind: str = "employee", password: str = PASSWORD) -> int:
        return run(_create_user(settings, username, password, roles or ["employee"], kind))

    return make


def csrf_token(client: TestClient) -> str:
    token = client.cookies.get("suite_csrf")
    if not token:
        client.get("/login")
        token = client.cookies.get("suite_csrf")
    assert token, "the app did not set a CSRF cookie"
    return token


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "_csrf_token": token, "next": "/intranet/"},
        follow_redirects=False,
    )


def post_form(client: TestClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """POST a form with the CSRF token, as a browser would."""
    return client.post(url, data={**(data or {}), "_csrf_token": csrf_token(client)}, follow_redirects=False, **kwargs)


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "SUITE_DATA_DIR": str(tmp_path / "var"),
        "SUITE_DATABASE_URL": database_url,
        "SUITE_SECRET_KEY": TEST_SECRET,
    }


@pytest.fixture
def cli(cli_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``cli("users", "list", "--json")`` runs the real Typer app in-process."""
    from concelho.cli.common import reset_loaded
    from concelho.cli.main import app as cli_app
    from typer.testing import CliRunner

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):  # type: ignore[no-untyped-def]
        reset_loaded()
        os.environ.pop("SUITE_CONFIG", None)
        result = runner.invoke(cli_app, list(args), env={**cli_env, **(env or {})}, input=input)
        reset_loaded()
        return result

    return invoke


@pytest.fixture(autouse=True)
def _clean_cli_state() -> Iterator[None]:
    from concelho.cli.common import reset_loaded

    reset_loaded()
    yield
    reset_loaded()
    os.environ.pop("SUITE_CONFIG", None)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
