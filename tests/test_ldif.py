"""LDIF (Active Directory export) imports: the parser's edge cases, then ``suite users|departments import FILE.ldif``
on both databases with the CSV guarantees (line-numbered errors, all or nothing, idempotent, --dry-run, --json)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.ldif import LdifError, dn_key, parse_ldif, split_dn

from .test_cli import as_json, failed, ok, scalar, users_by_name
from .test_imports import department_rows, write


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------
def test_parser_reads_entries_folded_lines_base64_and_comments():
    text = (
        "version: 1\n"
        "# Exported by ldifde\n"
        "#  a folded comment line\n"
        "\n"
        "dn: OU=DAF,DC=cm,DC=local\n"  # line 5
        "objectClass: top\n"
        "objectClass: organizationalUnit\n"
        "ou: DAF\n"
        f"description:: {b64('Departamento de Administração e Finanças')}\n"
        "\n"
        "\n"
        "# between entries\n"
        "dn: CN=Ana,OU=DAF,DC=cm,DC=local\n"  # line 13
        "cn: Ana\n"
        "displayName: Ana Filipa Ferr\n"
        " eira Conceição\n"
        f"title:: {b64('Técnica')[:8]}\n"
        f" {b64('Técnica')[8:]}\n"
        "mail:    ana@cm.example.pt\n"
        "# a comment inside the entry\n"
        "otherTelephone: 1\n"
        "otherTelephone: 2\n"
        "thumbnailPhoto:: /9j/4AAQSkZJRg==\n"
    )
    first, second = parse_ldif(text)
    assert (first.line, first.dn) == (5, "OU=DAF,DC=cm,DC=local")
    assert first.first("description") == "Departamento de Administração e Finanças"
    assert first.object_classes == {"top", "organizationalunit"}
    assert (second.line, second.dn) == (13, "CN=Ana,OU=DAF,DC=cm,DC=local")
    assert second.first("displayName") == "Ana Filipa Ferreira Conceição"
    assert second.first("title") == "Técnica"  # a base64 value folded over two lines
    assert second.first("mail") == "ana@cm.example.pt"
    assert second.values("othertelephone") == ["1", "2"]
    assert "thumbnailphoto" not in second.attributes  # binary: kept apart, never mistaken for text
    assert second.binary["thumbnailphoto"] == [base64.b64decode("/9j/4AAQSkZJRg==")]


def test_parser_reads_crlf_bom_utf16_and_folds_inside_a_character():
    crlf = "\ufeffdn: CN=Zé,DC=x\r\ncn: Zé\r\ndescription: Divis\r\n ão\r\n\r\n"
    (entry,) = parse_ldif(crlf.encode("utf-8"))
    assert entry.first("description") == "Divisão"
    assert entry.dn == "CN=Zé,DC=x"
    (utf16,) = parse_ldif(crlf.encode("utf-16"))  # ldifde -u writes UTF-16 with a byte order mark
    assert utf16.first("cn") == "Zé"
    raw = "dn: CN=x\ndescription: Informação\n".encode()
    cut = raw.index("ç".encode()) + 1  # fold between the two bytes of "ç"
    (folded,) = parse_ldif(raw[:cut] + b"\n " + raw[cut:])
    assert folded.first("description") == "Informação"


def test_parser_accepts_changetype_add_and_refuses_other_records():
    (entry,) = parse_ldif("dn: CN=a,DC=x\nchangetype: add\ncn: a\n")
    assert entry.attributes == {"cn": ["a"]}
    with pytest.raises(LdifError) as caught:
        parse_ldif("dn: CN=a,DC=x\nchangetype: modify\nreplace: mail\nmail: a@b.pt\n-\n")
    assert "line 2: change records (modify) cannot be imported" in caught.value.errors[0]


def test_parser_reports_every_problem_with_its_line():
    text = (
        " continuation at the start\n"  # 1
        "dn: CN=a,DC=x\n"  # 2
        "cn:: not*base64\n"  # 3
        "just some words\n"  # 4
        "photo:< file:///etc/passwd\n"  # 5
        "\n"  # 6
        "cn: no dn first\n"  # 7
        "mail: ignored in a broken entry\n"  # 8
        "\n"
        "dn: CN=b,DC=x\n"  # 10
        "bad attribute!: x\n"  # 11
        "description: caf\xe9\n"  # 12: Latin-1, not UTF-8
    )
    raw = text.encode("latin-1")
    with pytest.raises(LdifError) as caught:
        parse_ldif(raw)
    assert caught.value.errors == [
        "line 1: a continuation line (starting with a space) follows no attribute",
        "line 3: the base64 value of 'cn' is not valid base64",
        "line 4: expected 'attribute: value', got 'just some words'",
        "line 5: values read from a URL (photo:<) are not supported; export the value itself",
        "line 7: an entry must start with 'dn:', got 'cn'",
        "line 11: 'bad attribute!' is not an attribute name",
        "line 12: not UTF-8 text (export as UTF-8, or base64 with '::')",
    ]


def test_parser_version_and_empty_input():
    assert parse_ldif("") == []
    assert parse_ldif("version: 1\n\n# nothing else\n") == []
    with pytest.raises(LdifError, match="unsupported LDIF version '2'"):
        parse_ldif("version: 2\ndn: CN=a\n")


def test_split_dn_unescapes_values():
    assert split_dn('CN=Costa\\, Rui,OU=Divis\\C3\\A3o,OU="A, B", DC=cm') == [
        ("cn", "Costa, Rui"),
        ("ou", "Divisão"),
        ("ou", "A, B"),
        ("dc", "cm"),
    ]
    assert split_dn("cn=a+uid=b,ou=X") == [("cn", "a"), ("ou", "X")]
    assert dn_key(split_dn("OU=DAF,DC=CM")) == dn_key(split_dn("ou=daf, dc=cm"))
    with pytest.raises(ValueError):
        split_dn("no equals sign")


# --------------------------------------------------------------------------------------------
# An Active Directory export
# --------------------------------------------------------------------------------------------
def unit(code: str, parent_dn: str, description: str) -> str:
    return (
        f"dn: OU={code},{parent_dn}\n"
        "objectClass: top\n"
        "objectClass: organizationalUnit\n"
        f"ou: {code}\n"
        f"description:: {b64(description)}\n"
    )


BASE_DN = "DC=cm,DC=local"
CM = f"OU=CM,{BASE_DN}"
DAF = f"OU=DAF,{CM}"
DSI = f"OU=DSI,{DAF}"

UNITS = (
    "version: 1\n"
    "# ldifde -f units.ldf -r (objectClass=organizationalUnit)\n"
    "\n"
    + unit("CM", BASE_DN, "Câmara Municipal")
    + "\n"
    + unit("DAF", CM, "Departamento de Administração e Finanças")
    + "\n"
    # DSI's description is folded in the middle of a word
    + f"dn: {DSI}\nobjectClass: organizationalUnit\nou: DSI\ndescription: Divisão de Sistemas de Informa\n ção\n"
    + "\n"
    + unit("DUR", CM, "Departamento de Urbanismo")
)


def account(
    name: str,
    username: str,
    *,
    parent: str = DAF,
    mail: str | None = None,
    number: str = "",
    department: str = "",
    title: str = "",
    phone: str = "",
    flags: int = 512,
    classes: tuple[str, ...] = ("top", "person", "organizationalPerson", "user"),
) -> str:
    lines = [f"dn: CN={name},{parent}", *[f"objectClass: {c}" for c in classes], f"cn: {name}"]
    lines.append(f"displayName:: {b64(name)}")
    lines.append(f"sAMAccountName: {username}")
    if mail is None:
        mail = f"{username.lower()}@cm.example.pt"
    if mail:
        lines.append(f"mail: {mail}")
    if number:
        lines.append(f"employeeID: {number}")
    if department:
        lines.append(f"department:: {b64(department)}")
    if title:
        lines.append(f"title:: {b64(title)}")
    if phone:
        lines.append(f"telephoneNumber: {phone}")
    lines.append(f"userAccountControl: {flags}")
    return "\n".join(lines) + "\n"


def users_ldif(*entries: str) -> str:
    return "version: 1\n\n" + "\n".join(entries)


ANA = account(
    "Ana Ferreira Conceição", "Ana.Ferreira", number="1001",
    department="Departamento de Administracao e financas",  # by name, without accents or case
    title="Técnica superior", phone="+351 210 000 103",
)  # fmt: skip
RUI = account("Rui Costa", "rui.costa", parent=DSI, number="1002", department="DSI", flags=0x10200)
OLD = account("Antigo Funcionário", "old.timer", mail="", flags=514)  # disabled and unknown here: skipped
COMPUTER = account("PC-001", "PC-001$", parent=f"OU=Computers,{BASE_DN}", mail="",
                   classes=("top", "person", "organizationalPerson", "user", "computer"))  # fmt: skip
CONTACT = (
    f"dn: CN=Fornecedor,OU=Contactos,{BASE_DN}\nobjectClass: top\nobjectClass: person\nobjectClass: contact\n"
    "cn: Fornecedor\nmail: fornecedor@example.org\n"
)
GROUP = f"dn: CN=Todos,{CM}\nobjectClass: group\ncn: Todos\nsAMAccountName: todos\n"
EXPORT = users_ldif(ANA, RUI, OLD, COMPUTER, CONTACT, GROUP)


@pytest.fixture
def units(cli, tmp_path):  # type: ignore[no-untyped-def]
    ok(cli("departments", "import", str(write(tmp_path, "units.ldif", UNITS))))


def test_departments_import_from_ldif_builds_the_tree_and_is_idempotent(cli, tmp_path):
    path = write(tmp_path, "units.ldif", UNITS + "\n" + ANA)  # the user entry is not a department
    dry = as_json(ok(cli("departments", "import", str(path), "--dry-run", "--json")))
    assert (dry["dry_run"], dry["created"]) == (True, 4)
    assert as_json(ok(cli("departments", "list", "--json"))) == []

    report = as_json(ok(cli("departments", "import", str(path), "--json")))
    assert report == {"ok": True, "created": 4, "updated": 0, "unchanged": 0, "deactivated": 0, "dry_run": False}
    rows = as_json(ok(cli("departments", "list", "--json")))
    assert [(r["code"], r["parent_code"], r["depth"]) for r in rows] == [
        ("CM", None, 0),
        ("DAF", "CM", 1),
        ("DSI", "DAF", 2),
        ("DUR", "CM", 1),
    ]
    names = {r["code"]: r["name"] for r in rows}
    assert names["DAF"] == "Departamento de Administração e Finanças"
    assert names["DSI"] == "Divisão de Sistemas de Informação"

    again = ok(cli("departments", "import", str(path)))
    assert again.stdout.strip() == "0 created, 0 updated, 4 unchanged"
    assert as_json(ok(cli("departments", "list", "--json"))) == rows


def test_ldif_departments_keep_what_the_directory_does_not_know(cli, cli_env, tmp_path):
    csv = "code,name,parent_code,email,phone,sort_order\nCM,Câmara,,geral@cm.example.pt,+351 210 000 000,1\n"
    ok(cli("departments", "import", str(write(tmp_path, "d.csv", csv))))
    report = as_json(ok(cli("departments", "import", str(write(tmp_path, "units.ldif", UNITS)), "--json")))
    assert (report["created"], report["updated"]) == (3, 1)  # CM renamed "Câmara Municipal"
    url = cli_env["SUITE_DATABASE_URL"]
    assert scalar(url, "SELECT email FROM core_department WHERE code = 'CM'") == "geral@cm.example.pt"
    assert scalar(url, "SELECT sort_order FROM core_department WHERE code = 'CM'") == 1
    # A unit whose parent OU is not in the file hangs under the department of that code, when there is one.
    more = write(tmp_path, "more.ldif", unit("DSI-RED", DSI, "Redes"))
    ok(cli("departments", "import", str(more)))
    row = department_rows(cli)["DSI-RED"]
    assert (row["parent_code"], row["depth"]) == ("DSI", 3)


def test_users_import_from_ldif_maps_attributes_and_is_idempotent(cli, cli_env, units, tmp_path):
    path = write(tmp_path, "export.ldif", EXPORT)
    first = as_json(ok(cli("users", "import", str(path), "--json")))
    assert first == {
        "ok": True, "created": 2, "updated": 0, "unchanged": 0, "deactivated": 0, "dry_run": False,
        "deactivated_users": [], "skipped": 1, "skipped_users": ["old.timer"],
    }  # fmt: skip
    users = users_by_name(cli)
    assert sorted(users) == ["ana.ferreira", "rui.costa"]  # no computer, contact, group or disabled account
    assert users["ana.ferreira"] == {
        "username": "ana.ferreira",
        "email": "ana.ferreira@cm.example.pt",
        "name": "Ana Ferreira Conceição",
        "kind": "employee",
        "active": True,
        "department": "DAF",
        "employee_number": "1001",
        "roles": ["employee"],
    }
    url = cli_env["SUITE_DATABASE_URL"]
    assert scalar(url, "SELECT job_title FROM core_user WHERE username = 'ana.ferreira'") == "Técnica superior"
    assert scalar(url, "SELECT phone FROM core_user WHERE username = 'ana.ferreira'") == "+351 210 000 103"
    assert scalar(url, "SELECT password_hash FROM core_user WHERE username = 'rui.costa'") == ""
    assert users["rui.costa"]["department"] == "DSI"
    assert users["rui.costa"]["employee_number"] == "1002"  # employeeID

    again = ok(cli("users", "import", str(path)))
    assert again.stdout.strip() == "0 created, 0 updated, 2 unchanged, 0 deactivated, 1 skipped"
    assert users_by_name(cli) == users


def test_ldif_sync_keeps_roles_and_kind_given_here(cli, units, tmp_path):
    path = write(tmp_path, "export.ldif", EXPORT)
    ok(cli("users", "import", str(path)))
    ok(cli("users", "set-roles", "rui.costa", "--role", "editor", "--role", "employee"))
    report = as_json(ok(cli("users", "import", str(path), "--json")))
    assert (report["updated"], report["unchanged"]) == (0, 2)
    assert users_by_name(cli)["rui.costa"]["roles"] == ["editor", "employee"]


def test_ldif_matches_by_employee_number_and_follows_renames(cli, units, tmp_path):
    ok(cli("users", "import", str(write(tmp_path, "export.ldif", EXPORT))))
    renamed = EXPORT.replace("sAMAccountName: Ana.Ferreira", "sAMAccountName: ana.f")
    report = as_json(ok(cli("users", "import", str(write(tmp_path, "renamed.ldif", renamed)), "--json")))
    assert (report["created"], report["updated"]) == (0, 1)
    assert sorted(users_by_name(cli)) == ["ana.f", "rui.costa"]


def test_ldif_disabled_accounts_disable_their_users(cli, cli_env, units, tmp_path):
    ok(cli("users", "import", str(write(tmp_path, "export.ldif", EXPORT))))
    disabled = users_ldif(account("Rui Costa", "rui.costa", parent=DSI, number="1002", department="DSI", flags=514))
    path = write(tmp_path, "disabled.ldif", disabled)
    dry = as_json(ok(cli("users", "import", str(path), "--dry-run", "--json")))
    assert (dry["deactivated"], dry["deactivated_users"]) == (1, ["rui.costa"])
    assert users_by_name(cli)["rui.costa"]["active"] is True

    report = as_json(ok(cli("users", "import", str(path), "--json")))
    assert (report["deactivated"], report["deactivated_users"], report["skipped"]) == (1, ["rui.costa"], 0)
    users = users_by_name(cli)
    assert users["rui.costa"]["active"] is False
    assert users["ana.ferreira"]["active"] is True  # not in the file, no --deactivate-missing: untouched
    again = as_json(ok(cli("users", "import", str(path), "--json")))
    assert (again["deactivated"], again["unchanged"]) == (0, 1)

    # Enabled again in the directory: enabled again here.
    back = as_json(ok(cli("users", "import", str(write(tmp_path, "export2.ldif", EXPORT)), "--json")))
    assert (back["updated"], back["unchanged"]) == (1, 1)
    assert users_by_name(cli)["rui.costa"]["active"] is True


def test_ldif_deactivate_missing(cli, units, make_user, tmp_path):
    make_user("left.us")
    make_user("boss", roles=["admin"], kind="admin")  # a superuser is never disabled by a sync
    path = write(tmp_path, "export.ldif", EXPORT)
    dry = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--dry-run", "--json")))
    assert dry["deactivated_users"] == ["left.us"]
    assert users_by_name(cli)["left.us"]["active"] is True

    report = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--json")))
    assert (report["created"], report["deactivated"], report["deactivated_users"]) == (2, 1, ["left.us"])
    users = users_by_name(cli)
    assert users["left.us"]["active"] is False and users["boss"]["active"] is True
    again = as_json(ok(cli("users", "import", str(path), "--deactivate-missing", "--json")))
    assert (again["created"], again["deactivated"], again["unchanged"]) == (0, 0, 2)


def test_ldif_errors_name_the_line_of_the_entry_and_import_nothing(cli, make_user, units, tmp_path):
    make_user("maria")  # maria@example.org
    text = users_ldif(
        ANA,
        account("Sem Correio", "sem.correio", mail=""),
        account("Mau Correio", "mau", mail="not-an-email"),
        account("Outro", "outro", department="Departamento Inexistente"),
        account("Nome Inválido", "nome inválido", mail="nome@cm.example.pt"),
        account("Paula", "paula", mail="maria@example.org"),
        account("Ana Outra", "ana.ferreira", mail="ana2@cm.example.pt"),
        account("Longo", "longo", title="x" * 201),
    )
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith("dn: ")]
    path = write(tmp_path, "bad.ldif", text)
    result = cli("users", "import", str(path), "--json")
    assert result.exit_code == 1, result.output
    assert as_json(result) == {
        "ok": False,
        "errors": [
            f"line {starts[1]}: e-mail is empty",
            f"line {starts[2]}: invalid e-mail 'not-an-email'",
            f"line {starts[3]}: unknown department 'Departamento Inexistente'",
            f"line {starts[4]}: invalid username 'nome inválido'",
            f"line {starts[5]}: e-mail 'maria@example.org' belongs to another user (maria)",
            f"line {starts[6]}: username 'ana.ferreira' repeats line {starts[0]}",
            f"line {starts[7]}: job_title is longer than 200 characters",
        ],
    }
    human = cli("users", "import", str(path))
    failed(human, "7 error(s)", "nothing was imported", code=1)
    assert f"{path}: line {starts[1]}: e-mail is empty" in human.stderr
    assert list(users_by_name(cli)) == ["maria"]


def test_ldif_syntax_errors_are_line_numbered(cli, tmp_path):
    path = write(tmp_path, "broken.ldif", "dn: OU=A,DC=x\nobjectClass: organizationalUnit\nou:: ***\n\n extra\n")
    result = cli("departments", "import", str(path), "--json")
    assert result.exit_code == 1
    assert as_json(result)["errors"] == [
        "line 3: the base64 value of 'ou' is not valid base64",
        "line 5: a continuation line (starting with a space) follows no attribute",
    ]
    human = cli("departments", "import", str(path))
    failed(human, "2 error(s)", "nothing was imported")
    assert f"{path}: line 3:" in human.stderr
    assert as_json(ok(cli("departments", "list", "--json"))) == []


def test_ldif_department_errors_are_line_numbered(cli, tmp_path):
    text = UNITS + "\n" + unit("DAF", f"OU=DUR,{CM}", "Outro DAF") + "\n" + unit("X" * 41, CM, "Longo")
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith("dn: ")]
    result = cli("departments", "import", str(write(tmp_path, "dup.ldif", text)), "--json")
    assert result.exit_code == 1
    assert as_json(result)["errors"] == [
        f"line {starts[4]}: code 'DAF' repeats line {starts[1]}",
        f"line {starts[5]}: code '{'X' * 41}' is longer than 40 characters",
    ]
    assert as_json(ok(cli("departments", "list", "--json"))) == []


@pytest.mark.parametrize(
    ("command", "content", "message"),
    [
        ("users", UNITS, "the file has no user accounts"),
        ("departments", users_ldif(ANA), "the file has no organisational units"),
        ("users", "dn: CN=a,DC=x\nobjectClass: user\ncn: a\n", "line 1: no sAMAccountName"),
    ],
)
def test_ldif_files_without_what_is_asked_are_refused(cli, tmp_path, command, content, message):
    result = cli(command, "import", str(write(tmp_path, "x.ldif", content)), "--json")
    assert result.exit_code == 1
    assert any(message in e for e in as_json(result)["errors"]), result.output


def test_format_option_and_extensions(cli, tmp_path):
    odd = write(tmp_path, "units.txt", UNITS)
    assert "missing column" in cli("departments", "import", str(odd)).stderr  # read as CSV by default
    report = as_json(ok(cli("departments", "import", str(odd), "--format", "ldif", "--json")))
    assert report["created"] == 4
    ldf = write(tmp_path, "export.LDF", EXPORT)  # ldifde's default extension
    report = as_json(ok(cli("users", "import", str(ldf), "--json")))
    assert (report["created"], report["skipped"]) == (2, 1)
    failed(cli("users", "import", str(ldf), "--format", "xml"), "unknown format 'xml'", code=2)
    csv_as_ldif = write(tmp_path, "users.ldif", "username,email\nana,ana@cm.example.pt\n")
    result = cli("users", "import", str(csv_as_ldif), "--format", "csv", "--json")
    assert as_json(ok(result))["created"] == 1


def test_ldif_export_in_utf16_with_crlf(cli, units, tmp_path):
    path = tmp_path / "unicode.ldf"
    path.write_bytes(EXPORT.replace("\n", "\r\n").encode("utf-16"))
    report = as_json(ok(cli("users", "import", str(path), "--json")))
    assert report["created"] == 2
    assert users_by_name(cli)["ana.ferreira"]["name"] == "Ana Ferreira Conceição"


def test_ldif_unreadable_files_are_clear_errors(cli, tmp_path):
    folder = tmp_path / "folder.ldif"
    folder.mkdir()
    for path, message in (
        (tmp_path / "missing.ldif", "file not found"),
        (folder, "is a folder, not an LDIF file"),
    ):
        result = cli("users", "import", str(path))
        failed(result, "nothing was imported", code=1)
        assert message in result.stderr
    as_json_result: Any = cli("users", "import", str(tmp_path / "missing.ldif"), "--json")
    assert as_json(as_json_result) == {"ok": False, "errors": ["file not found"]}


def test_ldif_entry_line_is_the_dn_line(tmp_path: Path):
    entries = parse_ldif(EXPORT)
    lines = EXPORT.splitlines()
    for entry in entries:
        assert lines[entry.line - 1] == f"dn: {entry.dn}"
