"""CSV imports through the CLI: all rows validated first, line-numbered errors, all or nothing, idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .test_cli import as_json, failed, ok, scalar, users_by_name

DEPARTMENTS = """code,name,parent_code,email,phone,sort_order
CM,Câmara Municipal,,geral@cm.example.pt,+351 210 000 000,1
DAF,Departamento de Administração e Finanças,CM,daf@cm.example.pt,,2
DSI,Divisão de Sistemas de Informação,DAF,,,1
DUR,Departamento de Urbanismo,CM,,,3
"""

USERS = """username,email,name,employee_number,department,job_title,phone,kind,roles
ana.ferreira,ana.ferreira@cm.example.pt,Ana Ferreira,1001,DAF,Técnica superior,+351 210 000 103,staff,employee
rui.costa,rui.costa@cm.example.pt,Rui Costa,1002,DSI,,,,employee;admin
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_lines(result: Any) -> list[str]:
    """The line-numbered problems printed before the one-line summary."""
    return [line.split(": ", 1)[1] for line in result.stderr.splitlines() if not line.startswith("error:")]


@pytest.fixture
def departments(cli, tmp_path):  # type: ignore[no-untyped-def]
    ok(cli("departments", "import", str(write(tmp_path, "departments.csv", DEPARTMENTS))))


def department_rows(cli: Any) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in as_json(ok(cli("departments", "list", "--json")))}


# --------------------------------------------------------------------------------------------
# suite users import
# --------------------------------------------------------------------------------------------
def test_users_import_creates_users_then_changes_nothing(cli, cli_env, departments, tmp_path):
    path = write(tmp_path, "users.csv", USERS)
    first = as_json(ok(cli("users", "import", str(path), "--json")))
    assert first == {
        "ok": True,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
        "dry_run": False,
        "deactivated_users": [],
    }
    users = users_by_name(cli)
    assert users["ana.ferreira"] == {
        "username": "ana.ferreira",
        "email": "ana.ferreira@cm.example.pt",
        "name": "Ana Ferreira",
        "kind": "staff",
        "active": True,
        "department": "DAF",
        "employee_number": "1001",
        "roles": ["employee"],
    }
    assert users["rui.costa"]["roles"] == ["admin", "employee"]
    assert users["rui.costa"]["department"] == "DSI"
    assert users["rui.costa"]["kind"] == "employee"
    # Imported accounts have no password until one is set.
    assert scalar(cli_env["SUITE_DATABASE_URL"], "SELECT password_hash FROM core_user WHERE username='rui.costa'") == ""

    again = as_json(ok(cli("users", "import", str(path), "--json")))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    human = ok(cli("users", "import", str(path)))
    assert "0 created, 0 updated, 2 unchanged, 0 deactivated" in human.stdout
    assert human.stdout.strip() == "0 created, 0 updated, 2 unchanged, 0 deactivated"
    assert users_by_name(cli) == users


def test_users_import_dry_run_changes_nothing(cli, departments, tmp_path):
    path = write(tmp_path, "users.csv", USERS)
    report = as_json(ok(cli("users", "import", str(path), "--dry-run", "--json")))
    assert report["dry_run"] is True
    assert report["created"] == 2
    assert users_by_name(cli) == {}
    assert "dry run: 2 created" in ok(cli("users", "import", str(path), "--dry-run")).stdout
    assert users_by_name(cli) == {}

    ok(cli("users", "import", str(path)))
    before = users_by_name(cli)
    changed = write(tmp_path, "changed.csv", USERS.replace("Ana Ferreira", "Ana F. Ferreira"))
    report = as_json(ok(cli("users", "import", str(changed), "--dry-run", "--json")))
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 1)
    assert users_by_name(cli) == before


def test_users_import_updates_changed_rows(cli, cli_env, departments, tmp_path):
    ok(cli("users", "import", str(write(tmp_path, "users.csv", USERS))))
    url = cli_env["SUITE_DATABASE_URL"]
    version = scalar(url, "SELECT auth_version FROM core_user WHERE username = 'rui.costa'")
    changed = USERS.replace("Ana Ferreira", "Ana Filipa Ferreira").replace("employee;admin", "employee")
    report = as_json(ok(cli("users", "import", str(write(tmp_path, "changed.csv", changed)), "--json")))
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 2, 0)
    users = users_by_name(cli)
    assert users["ana.ferreira"]["name"] == "Ana Filipa Ferreira"
    assert users["rui.costa"]["roles"] == ["employee"]
    # Losing a role rotates the user's sessions.
    assert scalar(url, "SELECT auth_version FROM core_user WHERE username = 'rui.costa'") == version + 1


def test_users_import_matches_by_employee_number(cli, departments, tmp_path):
    ok(cli("users", "import", str(write(tmp_path, "users.csv", USERS))))
    renamed = USERS.replace("ana.ferreira,ana.ferreira@", "ana.f,ana.ferreira@")
    report = as_json(ok(cli("users", "import", str(write(tmp_path, "renamed.csv", renamed)), "--json")))
    assert (report["created"], report["updated"]) == (0, 1)
    assert sorted(users_by_name(cli)) == ["ana.f", "rui.costa"]


def test_users_import_with_one_bad_row_imports_nothing(cli, departments, tmp_path):
    path = write(
        tmp_path,
        "users.csv",
        "username,email,name\nana.ferreira,ana@cm.example.pt,Ana\nrui.costa,not-an-email,Rui\nzeca,zeca@cm.example.pt,Zé\n",
    )
    result = cli("users", "import", str(path))
    failed(result, "1 error(s)", "nothing was imported", code=1)
    assert f"{path}: line 3: invalid e-mail 'not-an-email'" in result.stderr
    assert error_lines(result) == ["line 3: invalid e-mail 'not-an-email'"]
    assert users_by_name(cli) == {}

    as_json_result = cli("users", "import", str(path), "--json")
    assert as_json_result.exit_code == 1
    assert "Traceback" not in as_json_result.output
    assert as_json(as_json_result) == {"ok": False, "errors": ["line 3: invalid e-mail 'not-an-email'"]}
    assert users_by_name(cli) == {}


def test_users_import_reports_every_problem_with_its_line(cli, make_user, departments, tmp_path):
    make_user("maria")  # e-mail maria@example.org
    path = write(
        tmp_path,
        "users.csv",
        "username,email,department,kind,roles\n"
        "Bad Name,bad@cm.example.pt,,,\n"
        "ana,ana@cm.example.pt,,,employee;chief\n"
        "rui,rui@cm.example.pt,NOPE,,\n"
        "ana,ana2@cm.example.pt,,,\n"
        "zeca,zeca@cm.example.pt,,boss,\n"
        "paula,maria@example.org,,,\n",
    )
    result = cli("users", "import", str(path), "--json")
    assert result.exit_code == 1
    assert as_json(result)["errors"] == [
        "line 2: invalid username 'Bad Name'",
        "line 3: unknown role 'chief'",
        "line 4: unknown department 'NOPE'",
        "line 5: username 'ana' repeats line 3",
        "line 6: kind must be one of employee, staff, admin, got 'boss'",
        "line 7: e-mail 'maria@example.org' belongs to another user (maria)",
    ]
    human = cli("users", "import", str(path))
    failed(human, "6 error(s)", "nothing was imported")
    assert len(error_lines(human)) == 6
    assert list(users_by_name(cli)) == ["maria"]


def test_users_import_deactivate_missing(cli, departments, make_user, tmp_path):
    make_user("old.one")
    make_user("boss", roles=["admin"], kind="admin")  # a superuser is never disabled by a sync
    path = write(tmp_path, "users.csv", USERS)

    dry = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--dry-run", "--json")))
    assert dry["deactivated_users"] == ["old.one"]
    assert users_by_name(cli)["old.one"]["active"] is True

    plain = as_json(ok(cli("users", "import", str(path), "--json")))
    assert plain["deactivated"] == 0
    assert users_by_name(cli)["old.one"]["active"] is True

    report = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--json")))
    assert report["deactivated"] == 1
    assert report["deactivated_users"] == ["old.one"]
    users = users_by_name(cli)
    assert users["old.one"]["active"] is False
    assert users["boss"]["active"] is True
    assert users["ana.ferreira"]["active"] is True and users["rui.costa"]["active"] is True

    again = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--json")))
    assert (again["deactivated"], again["unchanged"]) == (0, 2)

    # Someone disabled but present in the file is enabled again.
    ok(cli("users", "disable", "ana.ferreira"))
    back = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--json")))
    assert (back["updated"], back["deactivated"]) == (1, 0)
    assert users_by_name(cli)["ana.ferreira"]["active"] is True


def test_users_import_accepts_semicolons_and_a_byte_order_mark(cli, tmp_path):
    content = "\ufeffusername;email;name\nana;ana@cm.example.pt;Ana Sá\nrui;rui@cm.example.pt;Rui\n"
    report = as_json(ok(cli("users", "import", str(write(tmp_path, "excel.csv", content)), "--json")))
    assert report["created"] == 2
    assert users_by_name(cli)["ana"]["name"] == "Ana Sá"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "file not found"),
        ("folder", "DIR", "is a folder"),
        ("latin1.csv", "username,email\nzé,ze@cm.example.pt\n".encode("latin-1"), "not UTF-8 text"),
        ("empty.csv", "", "line 1: missing column(s) username, email"),
        ("nomail.csv", "username,name\nana,Ana\n", "line 1: missing column(s) email"),
        ("extra.csv", "username,email,shoe_size\nana,ana@cm.example.pt,42\n", "unknown column(s) shoe_size"),
    ],
)
def test_users_import_unreadable_files_are_clear_errors(cli, tmp_path, name, content, message):
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        write(tmp_path, name, content)
    result = cli("users", "import", str(path))
    failed(result, "nothing was imported", code=1)
    assert message in result.stderr
    assert result.stderr.count(str(path)) == 2  # once on the problem, once on the summary
    as_json_result = cli("users", "import", str(path), "--json")
    assert as_json_result.exit_code == 1
    assert any(message in e for e in as_json(as_json_result)["errors"])
    assert users_by_name(cli) == {}


# --------------------------------------------------------------------------------------------
# suite departments import
# --------------------------------------------------------------------------------------------
def test_departments_import_builds_the_tree_and_is_idempotent(cli, tmp_path):
    path = write(tmp_path, "departments.csv", DEPARTMENTS)
    report = as_json(ok(cli("departments", "import", str(path), "--json")))
    assert report == {"ok": True, "created": 4, "updated": 0, "unchanged": 0, "deactivated": 0, "dry_run": False}
    rows = as_json(ok(cli("departments", "list", "--json")))
    assert [(r["code"], r["parent_code"], r["depth"]) for r in rows] == [
        ("CM", None, 0),
        ("DAF", "CM", 1),
        ("DSI", "DAF", 2),
        ("DUR", "CM", 1),
    ]
    assert rows[1]["name"] == "Departamento de Administração e Finanças"
    human = ok(cli("departments", "list")).stdout
    assert "\n    DSI  Divisão de Sistemas de Informação" in human

    again = as_json(ok(cli("departments", "import", str(path), "--json")))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 4)
    assert as_json(ok(cli("departments", "list", "--json"))) == rows


def test_departments_import_moves_and_renames(cli, departments, tmp_path):
    changed = DEPARTMENTS.replace("DSI,Divisão de Sistemas de Informação,DAF", "DSI,Divisão de Informática,CM")
    report = as_json(ok(cli("departments", "import", str(write(tmp_path, "moved.csv", changed)), "--json")))
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 3)
    dsi = department_rows(cli)["DSI"]
    assert (dsi["name"], dsi["parent_code"], dsi["depth"]) == ("Divisão de Informática", "CM", 1)


def test_departments_import_dry_run_changes_nothing(cli, tmp_path):
    path = write(tmp_path, "departments.csv", DEPARTMENTS)
    report = as_json(ok(cli("departments", "import", str(path), "--dry-run", "--json")))
    assert (report["dry_run"], report["created"]) == (True, 4)
    assert as_json(ok(cli("departments", "list", "--json"))) == []
    assert "(none)" in ok(cli("departments", "list")).stdout


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        (
            "code,name,parent_code\nCM,Câmara,\nDAF,Finanças,CM\nDSI,Informática,ZZ\n",
            ["line 4: parent_code 'ZZ' is neither in the file nor in the database"],
        ),
        (
            "code,name,parent_code\nCM,Câmara,\nA,Alfa,B\nB,Beta,A\n",
            ["line 3: parent_code makes a cycle through 'A'", "line 4: parent_code makes a cycle through 'B'"],
        ),
        (
            "code,name,parent_code\nCM,Câmara,\nDAF,Finanças,CM\nCM,Outra Câmara,\n",
            ["line 4: code 'CM' repeats line 2"],
        ),
        ("code,name,parent_code\nCM,Câmara,CM\n", ["line 2: a department cannot be its own parent"]),
        (
            "code,name,parent_code,email,sort_order\nCM,,,nope,first\n",
            ["line 2: invalid e-mail 'nope'", "line 2: name is empty", "line 2: sort_order must be a whole number"],
        ),
    ],
    ids=["unknown-parent", "cycle", "duplicate-code", "own-parent", "bad-fields"],
)
def test_departments_import_errors_are_line_numbered_and_import_nothing(cli, tmp_path, content, errors):
    path = write(tmp_path, "departments.csv", content)
    result = cli("departments", "import", str(path), "--json")
    assert result.exit_code == 1, result.output
    reported = as_json(result)
    assert reported["ok"] is False
    for error in errors:
        assert error in reported["errors"], reported["errors"]
    human = cli("departments", "import", str(path))
    failed(human, f"{len(reported['errors'])} error(s)", "nothing was imported", code=1)
    assert f"{path}: {errors[0]}" in human.stderr
    assert as_json(ok(cli("departments", "list", "--json"))) == []


def test_departments_import_refuses_a_cycle_through_the_database(cli, departments, tmp_path):
    before = as_json(ok(cli("departments", "list", "--json")))
    path = write(tmp_path, "cycle.csv", "code,name,parent_code\nCM,Câmara Municipal,DSI\n")
    result = cli("departments", "import", str(path))
    failed(result, "1 error(s)", "nothing was imported")
    assert "line 2: parent_code makes a cycle through 'CM'" in result.stderr
    assert as_json(ok(cli("departments", "list", "--json"))) == before


def test_departments_import_parent_from_the_database(cli, departments, tmp_path):
    path = write(tmp_path, "more.csv", "code,name,parent_code\nDSI-RED,Redes,DSI\n")
    report = as_json(ok(cli("departments", "import", str(path), "--json")))
    assert (report["created"], report["unchanged"]) == (1, 0)
    row = department_rows(cli)["DSI-RED"]
    assert (row["parent_code"], row["depth"]) == ("DSI", 3)
