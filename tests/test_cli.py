"""The ``suite`` command line on SQLite and PostgreSQL: every user mistake is one clear line.

CSV imports (``suite users import``, ``suite departments import``) are in ``test_imports.py``.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.auth.passwords import verify_password
from concelho.suite.db import sync_url
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .conftest import PASSWORD, _with_database

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NEW_PASSWORD = "another-long-passphrase"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def ok(result: Any) -> Any:
    """The command succeeded."""
    assert result.exit_code == 0, result.output
    assert result.exception is None, repr(result.exception)
    return result


def failed(result: Any, *fragments: str, code: int | None = None) -> str:
    """A user mistake: non-zero exit, exactly one ``error:`` line naming it, never a traceback."""
    output = ANSI.sub("", result.output)
    assert result.exit_code != 0, output
    if code is not None:
        assert result.exit_code == code, output
    assert "Traceback" not in output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in ANSI.sub("", result.stderr).splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], output
    return errors[0]


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def users_by_name(cli: Any, **env: Any) -> dict[str, dict[str, Any]]:
    return {row["username"]: row for row in as_json(ok(cli("users", "list", "--json", env=env or None)))}


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


def scalar(database_url: str, sql: str, **params: Any) -> Any:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def run_suite(env: dict[str, str | None], *args: str, input: str | None = None) -> Any:
    """The real Typer app with exactly ``env`` (``None`` removes a variable)."""
    from concelho.cli.common import reset_loaded
    from concelho.cli.main import app as cli_app
    from typer.testing import CliRunner

    reset_loaded()
    try:
        return CliRunner().invoke(cli_app, list(args), env={"SUITE_CONFIG": None, **env}, input=input)
    finally:
        reset_loaded()
        os.environ.pop("SUITE_CONFIG", None)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fresh_env(backend: str, empty_database_url: Any, tmp_path: Path) -> dict[str, str | None]:
    """An empty (unmigrated) database and a data folder with no secret key yet."""
    return {
        "SUITE_DATA_DIR": str(tmp_path / "fresh"),
        "SUITE_DATABASE_URL": empty_database_url(backend),
        "SUITE_SECRET_KEY": None,
    }


# --------------------------------------------------------------------------------------------
# Help
# --------------------------------------------------------------------------------------------
def test_help_lists_every_command(tmp_path):
    result = ok(run_suite({"SUITE_DATA_DIR": str(tmp_path / "var")}, "--help"))
    listed = set(re.findall(r"^\W*([a-z]+)\s{2,}", ANSI.sub("", result.stdout), re.MULTILINE))
    expected = {"init", "serve", "db", "users", "departments", "plugins", "check", "demo", "alerts"}
    assert expected <= listed, result.stdout


def test_no_arguments_shows_help_and_version_works(tmp_path):
    env: dict[str, str | None] = {"SUITE_DATA_DIR": str(tmp_path / "var")}
    assert "Usage" in run_suite(env).output
    version = ok(run_suite(env, "--version"))
    assert re.match(r"suite \d+\.\d+", version.stdout)


# --------------------------------------------------------------------------------------------
# suite init
# --------------------------------------------------------------------------------------------
def test_init_creates_secret_database_and_admin_and_is_safe_to_rerun(fresh_env):
    data_dir = Path(str(fresh_env["SUITE_DATA_DIR"]))
    result = ok(
        run_suite(fresh_env, "init", "--admin-email", "admin@cm.example.pt", "--admin-password", PASSWORD, "--json")
    )
    report = as_json(result)
    assert report["secret_created"] is True
    assert report["admin_created"] == "admin"
    assert report["data_dir"] == str(data_dir)
    secret = data_dir / "secret.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = secret.read_text()
    assert len(key) >= 32
    assert (data_dir / "files").is_dir()

    users = {row["username"]: row for row in as_json(ok(run_suite(fresh_env, "users", "list", "--json")))}
    assert set(users) == {"admin"}
    assert users["admin"]["kind"] == "admin"
    assert users["admin"]["roles"] == ["admin", "employee"]
    url = str(fresh_env["SUITE_DATABASE_URL"])
    admin_hash = scalar(url, "SELECT password_hash FROM core_user WHERE username = 'admin'")
    assert verify_password(admin_hash, PASSWORD)

    checks = as_json(ok(run_suite(fresh_env, "check", "--json")))
    assert checks["ok"] is True
    assert checks["settings"]["secret_key"].startswith("****")
    assert key not in json.dumps(checks)

    # Re-running (no terminal, no options) changes nothing and says so.
    again = ok(run_suite(fresh_env, "init"))
    assert "administrator already present" in again.stdout
    again_json = as_json(ok(run_suite(fresh_env, "init", "--json")))
    assert again_json["secret_created"] is False
    assert again_json["admin_created"] is None
    assert secret.read_text() == key
    assert [u["username"] for u in as_json(ok(run_suite(fresh_env, "users", "list", "--json")))] == ["admin"]


def test_init_without_terminal_or_options_fails_with_one_line(fresh_env):
    failed(run_suite(fresh_env, "init"), "--admin-email", "--admin-password", "no terminal")
    failed(run_suite(fresh_env, "init", "--admin-email", "admin@cm.example.pt"), "no terminal")
    assert as_json(ok(run_suite(fresh_env, "users", "list", "--json"))) == []
    ok(run_suite(fresh_env, "init", "--admin-email", "admin@cm.example.pt", "--admin-password", PASSWORD))
    assert [u["username"] for u in as_json(run_suite(fresh_env, "users", "list", "--json"))] == ["admin"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--admin-email", "not-an-email", "--admin-password", PASSWORD], "invalid e-mail"),
        (["--admin-email", "admin@cm.example.pt", "--admin-password", "short"], "at least 10 characters"),
        (
            ["--admin-username", "Bad Name", "--admin-email", "a@cm.example.pt", "--admin-password", PASSWORD],
            "invalid username",
        ),
    ],
)
def test_init_with_a_bad_administrator_fails_cleanly_and_can_be_retried(fresh_env, options, message):
    failed(run_suite(fresh_env, "init", *options), message)
    assert as_json(ok(run_suite(fresh_env, "users", "list", "--json"))) == []
    # Regression: the default roles were lost when the administrator could not be created.
    ok(run_suite(fresh_env, "users", "create", "maria", "-e", "maria@cm.example.pt", "-p", PASSWORD))
    done = as_json(
        ok(run_suite(fresh_env, "init", "--admin-email", "admin@cm.example.pt", "--admin-password", PASSWORD, "--json"))
    )
    assert done["admin_created"] == "admin"
    assert done["secret_created"] is False  # made by the first, failed, run


def test_init_keeps_a_secret_key_given_in_the_environment(fresh_env):
    env = {**fresh_env, "SUITE_SECRET_KEY": "a-secret-from-the-environment-0123456789"}
    report = as_json(
        ok(run_suite(env, "init", "--admin-email", "admin@cm.example.pt", "--admin-password", PASSWORD, "--json"))
    )
    assert report["secret_created"] is False
    assert not (Path(str(fresh_env["SUITE_DATA_DIR"])) / "secret.key").exists()


# --------------------------------------------------------------------------------------------
# suite users
# --------------------------------------------------------------------------------------------
def test_users_create_and_list(cli):
    created = as_json(
        ok(
            cli(
                "users",
                "create",
                "maria",
                "-e",
                "maria@cm.example.pt",
                "-p",
                PASSWORD,
                "-n",
                "Maria Silva",
                "--kind",
                "staff",
                "--json",
            )
        )
    )
    assert created["username"] == "maria"
    assert created["kind"] == "staff"
    assert isinstance(created["id"], int)
    ok(cli("users", "create", "rui", "-e", "rui@cm.example.pt", "-p", PASSWORD, "-r", "admin", "-r", "employee"))
    users = users_by_name(cli)
    assert users["maria"] == {
        "username": "maria",
        "email": "maria@cm.example.pt",
        "name": "Maria Silva",
        "kind": "staff",
        "active": True,
        "department": None,
        "employee_number": None,
        "roles": ["employee"],
    }
    assert users["rui"]["roles"] == ["admin", "employee"]
    table = ok(cli("users", "list"))
    assert "maria" in table.stdout and "rui" in table.stdout


def test_users_create_prompts_for_the_password(cli, cli_env):
    ok(cli("users", "create", "maria", "-e", "maria@cm.example.pt", input=f"{PASSWORD}\n{PASSWORD}\n"))
    stored = scalar(cli_env["SUITE_DATABASE_URL"], "SELECT password_hash FROM core_user WHERE username='maria'")
    assert verify_password(stored, PASSWORD)
    # No answer (end of input) aborts without a traceback and creates nothing.
    aborted = cli("users", "create", "rui", "-e", "rui@cm.example.pt")
    assert aborted.exit_code != 0
    assert "Traceback" not in aborted.output
    assert "rui" not in users_by_name(cli)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad Name!", "-e", "x@cm.example.pt", "-p", PASSWORD], "invalid username 'bad name!'"),
        (["x", "-e", "x@cm.example.pt", "-p", PASSWORD], "invalid username"),
        (["maria", "-e", "not-an-email", "-p", PASSWORD], "invalid e-mail address 'not-an-email'"),
        (["maria", "-e", "maria@cm.example.pt", "-p", "short"], "at least 10 characters"),
        (["maria", "-e", "maria@cm.example.pt", "-p", PASSWORD, "-r", "nope"], "no role named 'nope'"),
        (
            ["maria", "-e", "maria@cm.example.pt", "-p", PASSWORD, "-r", "employee", "-r", "nope"],
            "no role named 'nope'",
        ),
        (["maria", "-e", "maria@cm.example.pt", "-p", PASSWORD, "--kind", "boss"], "invalid kind 'boss'"),
    ],
    ids=["bad-username", "short-username", "bad-email", "short-password", "unknown-role", "one-bad-role", "bad-kind"],
)
def test_users_create_mistakes_are_one_line_and_create_nothing(cli, cli_env, args, message):
    failed(cli("users", "create", *args), message, code=1)
    assert users_by_name(cli) == {}
    assert scalar(cli_env["SUITE_DATABASE_URL"], "SELECT count(*) FROM core_user_role") == 0


def test_users_create_duplicate_is_refused(cli):
    ok(cli("users", "create", "maria", "-e", "maria@cm.example.pt", "-p", PASSWORD))
    failed(cli("users", "create", "maria", "-e", "other@cm.example.pt", "-p", PASSWORD), "already exists")
    failed(cli("users", "create", "MARIA", "-e", "other@cm.example.pt", "-p", PASSWORD), "already exists")
    failed(cli("users", "create", "rui", "-e", "Maria@CM.example.pt", "-p", PASSWORD), "already exists")
    users = users_by_name(cli)
    assert list(users) == ["maria"]
    assert users["maria"]["email"] == "maria@cm.example.pt"


def test_users_disable_and_enable(cli, make_user):
    make_user("maria")
    assert as_json(ok(cli("users", "disable", "maria", "--json"))) == {"username": "maria", "active": False}
    assert users_by_name(cli)["maria"]["active"] is False
    assert "enabled maria" in ok(cli("users", "enable", "maria")).stdout
    assert users_by_name(cli)["maria"]["active"] is True
    failed(cli("users", "disable", "nobody"), "no user named 'nobody'", code=1)
    failed(cli("users", "enable", "nobody"), "no user named 'nobody'", code=1)


def test_users_set_password(cli, cli_env, make_user):
    make_user("maria")
    url = cli_env["SUITE_DATABASE_URL"]
    before = scalar(url, "SELECT password_hash FROM core_user WHERE username = 'maria'")
    failed(cli("users", "set-password", "maria", "-p", "short"), "at least 10 characters")
    assert scalar(url, "SELECT password_hash FROM core_user WHERE username = 'maria'") == before
    failed(cli("users", "set-password", "nobody", "-p", NEW_PASSWORD), "no user named 'nobody'")
    assert "password set for maria" in ok(cli("users", "set-password", "maria", "-p", NEW_PASSWORD)).stdout
    after = scalar(url, "SELECT password_hash FROM core_user WHERE username = 'maria'")
    assert verify_password(after, NEW_PASSWORD)
    assert not verify_password(after, PASSWORD)
    ok(cli("users", "set-password", "maria", input=f"{PASSWORD}\n{PASSWORD}\n"))
    assert verify_password(scalar(url, "SELECT password_hash FROM core_user WHERE username = 'maria'"), PASSWORD)


def test_users_set_roles(cli, cli_env, make_user):
    make_user("maria")
    url = cli_env["SUITE_DATABASE_URL"]
    version = scalar(url, "SELECT auth_version FROM core_user WHERE username = 'maria'")
    result = as_json(ok(cli("users", "set-roles", "maria", "-r", "admin", "-r", "employee", "-r", "admin", "--json")))
    assert result == {"username": "maria", "roles": ["admin", "employee"]}
    assert users_by_name(cli)["maria"]["roles"] == ["admin", "employee"]
    assert scalar(url, "SELECT auth_version FROM core_user WHERE username = 'maria'") == version + 1
    failed(cli("users", "set-roles", "maria", "-r", "employee", "-r", "nope"), "no role named 'nope'")
    assert users_by_name(cli)["maria"]["roles"] == ["admin", "employee"]
    failed(cli("users", "set-roles", "nobody", "-r", "employee"), "no user named 'nobody'")
    ok(cli("users", "set-roles", "maria", "-r", "employee"))
    assert users_by_name(cli)["maria"]["roles"] == ["employee"]


# --------------------------------------------------------------------------------------------
# suite plugins
# --------------------------------------------------------------------------------------------
def test_plugins_list_shows_alerts_enabled_with_its_routes(cli):
    rows = {row["name"]: row for row in as_json(ok(cli("plugins", "list", "--json")))}
    alerts = rows["alerts"]
    assert alerts["state"] == "enabled"
    assert alerts["source"] == "concelho.plugins.alerts"
    assert alerts["version"]
    assert any("/intranet/alerts" in route for route in alerts["routes"]), alerts["routes"]
    assert any(route.startswith("POST ") for route in alerts["routes"]), alerts["routes"]
    assert "alerts" in ok(cli("plugins", "list")).stdout


def test_unknown_plugin_in_suite_plugins_is_one_line_exit_2(cli):
    for args in (["plugins", "list"], ["users", "list"], ["check"], ["serve"]):
        failed(cli(*args, env={"SUITE_PLUGINS": "nonexistent"}), "unknown plugin 'nonexistent'", code=2)
    failed(cli("users", "list", env={"SUITE_PLUGINS_EXCLUDE": "nonexistent"}), "'nonexistent'", code=2)


def test_excluded_plugin_cli_says_disabled(cli):
    env = {"SUITE_PLUGINS_EXCLUDE": "alerts"}
    failed(cli("alerts", "list", env=env), "'alerts' is disabled", code=2)
    failed(cli("alerts", "raise", "Cheias", env=env), "disabled", code=2)
    rows = {row["name"]: row for row in as_json(ok(cli("plugins", "list", "--json", env=env)))}
    assert rows["alerts"]["state"] == "disabled"
    assert rows["alerts"]["routes"] == []
    ok(cli("users", "list", env=env))


def test_excluding_a_migrated_plugin_keeps_check_and_migrations_working(cli):
    """Regression: Alembic did not know the excluded plugin's revision recorded in the database."""
    env = {"SUITE_PLUGINS_EXCLUDE": "alerts"}
    report = as_json(ok(cli("check", "--json", env=env)))
    assert report["checks"]["database"] == "ok"
    ok(cli("db", "upgrade", env=env))
    current = ok(cli("db", "current", env=env)).stdout
    assert "(alerts)" in current  # its recorded revision is still understood


def test_a_disabled_plugin_is_not_migrated_until_enabled(fresh_env):
    env = {**fresh_env, "SUITE_PLUGINS_EXCLUDE": "alerts"}
    ok(run_suite(env, "init", "--admin-email", "admin@cm.example.pt", "--admin-password", PASSWORD))
    current = ok(run_suite(env, "db", "current")).stdout
    assert current.strip() and "(alerts)" not in current
    assert as_json(ok(run_suite(env, "check", "--json")))["checks"]["database"] == "ok"
    # Enabled again: the check asks for the upgrade, which then applies only what is missing.
    pending = run_suite(fresh_env, "check", "--json")
    assert pending.exit_code == 1
    assert "needs `suite db upgrade`" in as_json(pending)["checks"]["database"]
    ok(run_suite(fresh_env, "db", "upgrade"))
    assert as_json(ok(run_suite(fresh_env, "check", "--json")))["ok"] is True
    ok(run_suite(fresh_env, "alerts", "raise", "Cheias na baixa", "--level", "danger"))


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["users", "list"], ["check"], ["init"], ["plugins", "list"], ["alerts", "list"]])
def test_bad_config_value_is_one_line_naming_it(cli, args):
    line = failed(cli(*args, env={"SUITE_SESSION_MAX_AGE": "abc"}), "SUITE_SESSION_MAX_AGE", code=2)
    assert "'abc'" in line


def test_other_bad_settings_are_one_line(cli):
    failed(cli("check", env={"SUITE_DEBUG": "perhaps"}), "SUITE_DEBUG", code=2)
    failed(cli("check", env={"SUITE_DATABASE_URL": "mysql://db/suite"}), "database_url", code=2)
    failed(cli("check", env={"SUITE_SESSION_MAX_AGE": "0"}), "session_max_age", code=2)


def test_missing_config_file_is_a_clear_error(cli, tmp_path):
    missing = tmp_path / "missing.toml"
    failed(cli("--config", str(missing), "users", "list"), "config file not found", str(missing), code=2)
    failed(cli("--config", str(missing), "init"), "config file not found", code=2)


def test_config_file_is_honoured(cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text(
        'site_name = "Câmara Municipal de Teste"\n'
        "session_max_age = 1234\n"
        'plugins_exclude = ["alerts"]\n'
        "\n[plugins.alerts]\ncache_seconds = 5\n",
        encoding="utf-8",
    )
    report = as_json(ok(cli("--config", str(config), "check", "--json")))
    assert report["settings"]["site_name"] == "Câmara Municipal de Teste"
    assert report["settings"]["session_max_age"] == 1234
    assert report["settings"]["plugins_exclude"] == ["alerts"]
    assert report["settings"]["config_file"] == str(config)
    failed(cli("-c", str(config), "alerts", "list"), "disabled", code=2)
    # The environment still wins over the file.
    report = as_json(ok(cli("-c", str(config), "check", "--json", env={"SUITE_SESSION_MAX_AGE": "99"})))
    assert report["settings"]["session_max_age"] == 99
    # SUITE_CONFIG names the file too.
    report = as_json(ok(cli("check", "--json", env={"SUITE_CONFIG": str(config)})))
    assert report["settings"]["site_name"] == "Câmara Municipal de Teste"


def test_broken_config_files_are_one_line(cli, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("site_name = \n", encoding="utf-8")
    failed(cli("-c", str(broken), "check"), "not valid TOML", code=2)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('colour = "blue"\n', encoding="utf-8")
    failed(cli("-c", str(unknown), "check"), "unknown setting 'colour'", code=2)
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('session_max_age = "soon"\n', encoding="utf-8")
    failed(cli("-c", str(wrong_type), "users", "list"), "session_max_age", code=2)
    failed(cli("-c", str(tmp_path), "check"), "config file not found", code=2)


# --------------------------------------------------------------------------------------------
# Missing or unmigrated database
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["users", "list"],
        ["users", "create", "maria", "-e", "maria@cm.example.pt", "-p", PASSWORD],
        ["users", "disable", "maria"],
        ["departments", "list"],
        ["alerts", "list"],
        ["demo", "load"],
        ["db", "current"],
        ["serve"],
    ],
)
def test_missing_sqlite_database_says_run_init_and_creates_nothing(tmp_path, args):
    database = tmp_path / "nowhere" / "suite.db"
    env: dict[str, str | None] = {
        "SUITE_DATA_DIR": str(tmp_path / "var"),
        "SUITE_DATABASE_URL": f"sqlite:///{database}",
        "SUITE_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    }
    failed(run_suite(env, *args), "database not found", str(database), "run `suite init`", code=1)
    assert not database.exists()
    assert not database.parent.exists()


def test_check_reports_a_missing_sqlite_database_without_creating_it(tmp_path):
    database = tmp_path / "suite.db"
    env: dict[str, str | None] = {
        "SUITE_DATA_DIR": str(tmp_path / "var"),
        "SUITE_DATABASE_URL": f"sqlite:///{database}",
        "SUITE_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    }
    result = run_suite(env, "check", "--json")
    assert result.exit_code == 1, result.output
    report = as_json(result)
    assert report["ok"] is False
    assert "not found" in report["checks"]["database"] and "suite init" in report["checks"]["database"]
    assert not database.exists()


def test_missing_postgres_database_is_one_line(pg_server, tmp_path):
    if pg_server is None:  # pragma: no cover - CI sets SUITE_TEST_REQUIRE_PG
        pytest.skip("PostgreSQL is not available here")
    env: dict[str, str | None] = {
        "SUITE_DATA_DIR": str(tmp_path / "var"),
        "SUITE_DATABASE_URL": _with_database(pg_server, "suite_no_such_database"),
        "SUITE_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    }
    failed(run_suite(env, "users", "list"), "suite_no_such_database", "does not exist", code=1)
    failed(run_suite(env, "db", "current"), "does not exist", code=1)
    report = run_suite(env, "check", "--json")
    assert report.exit_code == 1
    assert "does not exist" in as_json(report)["checks"]["database"]


def test_check_on_migrated_database_is_ok(cli):
    report = as_json(ok(cli("check", "--json")))
    assert report["ok"] is True
    assert report["checks"] == {"database": "ok", "storage": "ok", "search": "ok"}
    assert "secret_key" not in report["checks"]
    human = ok(cli("check"))
    assert "database" in human.stdout and "ok" in human.stdout


def test_check_reports_missing_secret(cli):
    result = cli("check", "--json", env={"SUITE_SECRET_KEY": None})
    assert result.exit_code == 1
    assert "suite init" in as_json(result)["checks"]["secret_key"]


def test_unmigrated_database_needs_upgrade(fresh_env):
    url = str(fresh_env["SUITE_DATABASE_URL"])
    if url.startswith("sqlite"):
        sqlite_path(url).touch()  # an empty SQLite database
    env = {**fresh_env, "SUITE_SECRET_KEY": "test-secret-key-not-for-production-0123456789"}
    result = run_suite(env, "check", "--json")
    assert result.exit_code == 1, result.output
    report = as_json(result)
    assert report["ok"] is False
    assert report["checks"]["database"].startswith("needs `suite db upgrade`")
    assert "missing" in report["checks"]["database"]
    human = run_suite(env, "check")
    assert human.exit_code == 1
    assert "needs `suite db upgrade`" in human.stdout
    failed(run_suite(env, "users", "list"), "not initialised", "suite db upgrade", code=1)
    assert "(empty database)" in ok(run_suite(env, "db", "current")).stdout
    ok(run_suite(env, "db", "upgrade"))
    assert as_json(ok(run_suite(env, "check", "--json")))["ok"] is True


# --------------------------------------------------------------------------------------------
# suite db
# --------------------------------------------------------------------------------------------
def test_db_current_heads_and_idempotent_upgrade(cli):
    heads = as_json(ok(cli("db", "heads", "--json")))
    assert set(heads) >= {"core", "alerts"}
    assert all(len(revs) == 1 for revs in heads.values()), heads
    human_heads = ok(cli("db", "heads")).stdout
    assert "core:" in human_heads and "alerts:" in human_heads

    current = ok(cli("db", "current")).stdout
    # Alembic records the heads only (a branch another one depends on may not show on its own).
    all_heads = {head for revs in heads.values() for head in revs}
    recorded = re.findall(r"^(\S+) \((\S+)\)$", current, re.MULTILINE)
    assert recorded and {rev for rev, _ in recorded} <= all_heads, current
    assert all(rev in heads[label] for rev, label in recorded), current
    assert as_json(ok(cli("db", "current", "--json"))) == [line for line in current.splitlines() if line]

    assert "database upgraded to heads" in ok(cli("db", "upgrade")).stdout
    ok(cli("db", "upgrade"))
    assert ok(cli("db", "current")).stdout == current
    assert as_json(ok(cli("check", "--json")))["checks"]["database"] == "ok"


def test_db_mistakes_are_one_line(cli):
    failed(cli("db", "upgrade", "nonsense"), "nonsense", code=1)
    failed(cli("db", "downgrade", "nonsense"), "nonsense", code=1)
    failed(cli("db", "revision", "-m", "x", "--branch", "nosuchplugin"), "unknown branch 'nosuchplugin'")


def test_db_downgrade_and_upgrade_a_plugin_branch(cli):
    ok(cli("db", "downgrade", "alerts@base"))
    current = ok(cli("db", "current")).stdout
    assert "(alerts)" not in current
    result = cli("check", "--json")
    assert result.exit_code == 1
    assert "alerts_0001" in as_json(result)["checks"]["database"]
    ok(cli("db", "upgrade"))
    assert as_json(ok(cli("check", "--json")))["ok"] is True


# --------------------------------------------------------------------------------------------
# suite alerts
# --------------------------------------------------------------------------------------------
def test_alerts_raise_list_and_clear(cli):
    assert as_json(ok(cli("alerts", "list", "--json"))) == []
    raised = as_json(
        ok(
            cli(
                "alerts",
                "raise",
                "Cheias na baixa da vila",
                "--level",
                "danger",
                "--en",
                "Floods downtown",
                "--until",
                "2099-12-01T18:00+00:00",
                "--json",
            )
        )
    )
    assert raised["level"] == "danger"
    assert raised["message"] == "Cheias na baixa da vila"
    second = as_json(ok(cli("alerts", "raise", "Aviso de calor", "--json")))
    assert second["level"] == "warning"
    rows = as_json(ok(cli("alerts", "list", "--json")))
    assert [r["id"] for r in rows] == [second["id"], raised["id"]]
    assert all(r["active"] for r in rows)
    assert "Cheias" in ok(cli("alerts", "list")).stdout

    assert as_json(ok(cli("alerts", "clear", str(raised["id"]), "--json"))) == {
        "id": raised["id"],
        "cleared": True,
    }
    by_id = {r["id"]: r for r in as_json(ok(cli("alerts", "list", "--json")))}
    assert by_id[raised["id"]]["active"] is False
    assert by_id[second["id"]]["active"] is True


def test_alerts_mistakes_are_one_line(cli):
    failed(cli("alerts", "raise", "Cheias", "--level", "apocalyptic"), "level", "info, warning, danger")
    failed(cli("alerts", "raise", "", "--level", "info"), "message")
    failed(cli("alerts", "raise", "Cheias", "--until", "tomorrow"), "--until", "'tomorrow'")
    failed(cli("alerts", "clear", "999"), "no alert with id 999", code=1)
    assert as_json(ok(cli("alerts", "list", "--json"))) == []
    wrong = cli("alerts", "clear", "abc")
    assert wrong.exit_code == 2
    assert "Traceback" not in wrong.output


# --------------------------------------------------------------------------------------------
# suite demo
# --------------------------------------------------------------------------------------------
def test_demo_load_is_idempotent(cli):
    first = as_json(ok(cli("demo", "load", "--json")))
    assert first["departments"] > 0
    assert first["users"] > 0
    assert first["alerts"] == 1
    users = users_by_name(cli)
    departments = as_json(ok(cli("departments", "list", "--json")))
    second = ok(cli("demo", "load", "--json"))
    assert all(count == 0 for count in as_json(second).values()), second.stdout
    assert "demo already loaded" in ok(cli("demo", "load")).stdout
    assert users_by_name(cli) == users
    assert as_json(ok(cli("departments", "list", "--json"))) == departments
    assert len(as_json(ok(cli("alerts", "list", "--json")))) == 1
