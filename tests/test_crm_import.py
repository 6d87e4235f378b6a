"""``suite crm import``: a legacy CRM's citizens and interactions from CSV, checked first, all or nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from concelho.plugins.crm import nif

from .conftest import run
from .test_cli import as_json, failed, ok

FIRST = ["Maria", "João", "Ana", "José", "Inês", "Francisco", "Beatriz", "Tiago", "Mariana", "Rui", "Conceição"]
LAST = ["Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins", "Sousa", "Gonçalves",
        "Lopes", "Marques", "Almeida", "Ribeiro", "Carvalho", "Simões"]  # fmt: skip
STREETS = ["Rua Direita", "Avenida da Liberdade", "Rua do Comércio", "Largo do Município", "Travessa das Flores"]
CITIZEN_COLUMNS = ["external_id", "name", "nif", "email", "phone", "address", "consent_at", "created_at"]
INTERACTION_COLUMNS = ["external_id", "citizen_external_id", "citizen_nif", "channel", "direction", "occurred_at",
                       "topic", "service_code", "department_code", "staff_username", "notes"]  # fmt: skip


def make_nif(n: int) -> str:
    """A valid personal NIF (2xxxxxxx + mod-11 check digit) for the n-th test person."""
    base = f"2{n:07d}"
    check = 11 - sum(int(d) * w for d, w in zip(base, range(9, 1, -1), strict=True)) % 11
    value = base + str(0 if check >= 10 else check)
    assert nif.is_valid(value)
    return value


def bad_nif(n: int) -> str:
    good = make_nif(n)
    value = good[:8] + str((int(good[8]) + 1) % 10)
    assert not nif.is_valid(value)
    return value


def citizen(n: int, **overrides: str) -> dict[str, str]:
    first, last = FIRST[n % len(FIRST)], LAST[n % len(LAST)]
    return {
        "external_id": f"LEG-{n:05d}",
        "name": f"{first} {LAST[(n // 3) % len(LAST)]} {last}",
        "nif": make_nif(n),
        "email": f"{first.lower()}.{last.lower()}{n}@example.pt".replace("ã", "a").replace("ç", "c").replace("ê", "e"),
        "phone": f"91{n:07d}",
        "address": f"{STREETS[n % len(STREETS)]}, {n % 200 + 1}, Vila Serena",
        "consent_at": f"2021-0{n % 9 + 1}-15",
        "created_at": f"{n % 28 + 1:02d}/03/2019",
        **overrides,
    }


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]], delimiter: str = ",",
              encoding: str = "utf-8") -> Path:  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


async def _query(settings, fn):  # type: ignore[no-untyped-def]
    from concelho.suite.db import Database

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            return await fn(session)
    finally:
        await database.dispose()


def count(settings, model) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    async def fn(session):  # type: ignore[no-untyped-def]
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()

    return run(_query(settings, fn))


def citizens_by_external_id(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from concelho.plugins.crm.models import Citizen
    from sqlalchemy import select

    async def fn(session):  # type: ignore[no-untyped-def]
        return {c.external_id: c for c in (await session.execute(select(Citizen))).scalars()}

    return run(_query(settings, fn))


def interactions_by_external_id(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from concelho.plugins.crm.models import Interaction
    from sqlalchemy import select

    async def fn(session):  # type: ignore[no-untyped-def]
        return {i.external_id: i for i in (await session.execute(select(Interaction))).scalars()}

    return run(_query(settings, fn))


def setup_staff(settings, make_user) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Departments OBRAS and AGUA and the user ana.ferreira; returns their ids."""
    from concelho.suite.models import Department

    async def fn(session):  # type: ignore[no-untyped-def]
        ids = {}
        for code, name in (("OBRAS", "Obras Municipais"), ("AGUA", "Águas e Saneamento")):
            department = Department(code=code, name=name)
            session.add(department)
            await session.flush()
            ids[code] = department.id
        return ids

    ids = run(_query(settings, fn))
    ids["ana.ferreira"] = make_user("ana.ferreira")
    return ids


# --------------------------------------------------------------------------------------------
# Citizens
# --------------------------------------------------------------------------------------------
def test_one_bad_row_on_line_57_fails_the_whole_file(cli, settings, tmp_path):
    from concelho.plugins.crm.models import Citizen, Consent

    rows = [citizen(n) for n in range(1, 81)]
    rows[55]["nif"] = bad_nif(56)  # header is line 1, so the 56th row is line 57
    path = write_csv(tmp_path / "cidadaos.csv", CITIZEN_COLUMNS, rows)
    before = count(settings, Citizen), count(settings, Consent)

    result = cli("crm", "import", "citizens", str(path))
    failed(result, "cidadaos.csv", "1 error(s)", "nothing imported")
    assert "line 57: nif" in result.stderr and result.stderr.count("line ") == 1
    assert (count(settings, Citizen), count(settings, Consent)) == before

    rows[55]["nif"] = make_nif(56)
    write_csv(path, CITIZEN_COLUMNS, rows)
    report = as_json(ok(cli("crm", "import", "citizens", str(path), "--json")))
    assert report == {"kind": "citizens", "rows": 80, "created": 80, "updated": 0, "unchanged": 0, "skipped": 0,
                      "dry_run": False}  # fmt: skip
    assert count(settings, Citizen) == before[0] + 80 and count(settings, Consent) == before[1] + 80


def test_every_problem_is_listed_with_its_line(cli, settings, tmp_path):
    from concelho.plugins.crm.models import Citizen

    rows = [citizen(n) for n in range(1, 11)]
    rows[1]["email"] = "maria.silva-arroba-example.pt"  # line 3
    rows[3]["phone"] = "12-34"  # line 5
    rows[4]["created_at"] = "31/02/2019"  # line 6
    rows[6]["external_id"] = rows[5]["external_id"]  # line 8 repeats line 7
    rows[8]["name"] = ""  # line 10
    rows[9]["consent_at"] = "2999-01-01"  # line 11
    path = write_csv(tmp_path / "erros.csv", CITIZEN_COLUMNS, rows)

    result = cli("crm", "import", "citizens", str(path), "--json")
    assert result.exit_code == 1
    report = as_json(result)
    lines = [(e["line"], e["message"].split(" ")[0]) for e in report["errors"]]
    assert lines == [(3, "email"), (5, "phone"), (6, "created_at"), (8, "external_id"), (10, "name"),
                     (11, "consent_at")]  # fmt: skip
    assert report["error_count"] == 6 and report["imported"] == 0
    assert "repeats line 7" in report["errors"][3]["message"] and "future" in report["errors"][5]["message"]

    short = cli("crm", "import", "citizens", str(path), "--max-errors", "2")
    failed(short, "6 error(s)")
    assert "line 3:" in short.stderr and "line 5:" in short.stderr and "line 6:" not in short.stderr
    assert "… and 4 more" in short.stderr
    assert count(settings, Citizen) == 0


def test_dry_run_counts_and_imports_nothing(cli, settings, tmp_path):
    from concelho.plugins.crm.models import Citizen

    path = write_csv(tmp_path / "cidadaos.csv", CITIZEN_COLUMNS, [citizen(n) for n in range(1, 21)])
    report = as_json(ok(cli("crm", "import", "citizens", str(path), "--dry-run", "--json")))
    assert (report["created"], report["dry_run"]) == (20, True)
    assert count(settings, Citizen) == 0
    text = ok(cli("crm", "import", "citizens", str(path), "--dry-run")).stdout
    assert "20 citizens checked (dry run): 20 new" in text
    assert count(settings, Citizen) == 0


def test_rerun_is_idempotent_and_updates_changed_rows(cli, settings, tmp_path):
    from concelho.plugins.crm.models import Citizen, Consent

    rows = [citizen(n) for n in range(1, 31)]
    path = write_csv(tmp_path / "cidadaos.csv", CITIZEN_COLUMNS, rows)
    ok(cli("crm", "import", "citizens", str(path)))
    first = citizens_by_external_id(settings)
    again = as_json(ok(cli("crm", "import", "citizens", str(path), "--json")))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 30)
    assert count(settings, Citizen) == 30 and count(settings, Consent) == 30

    rows[4]["name"] = "Maria da Conceição Simões"
    rows[9]["email"] = "nova.morada@example.pt"
    rows[14]["consent_at"] = "2023-05-02"
    write_csv(path, CITIZEN_COLUMNS, rows)
    changed = as_json(ok(cli("crm", "import", "citizens", str(path), "--json")))
    assert (changed["created"], changed["updated"], changed["unchanged"]) == (0, 3, 27)
    after = citizens_by_external_id(settings)
    assert after["LEG-00005"].name_folded == "maria da conceicao simoes"
    assert after["LEG-00005"].id == first["LEG-00005"].id
    assert after["LEG-00010"].email == "nova.morada@example.pt"
    assert count(settings, Consent) == 31  # the new consent date is recorded as a consent
    assert after["LEG-00002"].updated_at == first["LEG-00002"].updated_at  # untouched rows keep their time

    # A file without some columns leaves those fields as they are.
    write_csv(path, ["external_id", "name"], [{"external_id": r["external_id"], "name": r["name"]} for r in rows])
    partial = as_json(ok(cli("crm", "import", "citizens", str(path), "--json")))
    assert partial["unchanged"] == 30
    assert citizens_by_external_id(settings)["LEG-00010"].email == "nova.morada@example.pt"


def test_a_failure_while_writing_leaves_nothing_and_writes_in_batches(settings, tmp_path):
    """All or nothing even after validation (the transaction is rolled back); rows go in bulk statements."""
    from concelho.plugins.crm.legacy_import import import_csv
    from concelho.plugins.crm.models import Citizen
    from concelho.suite.db import Database
    from sqlalchemy import event

    path = write_csv(tmp_path / "grande.csv", CITIZEN_COLUMNS, [citizen(n) for n in range(1, 2501)])

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(stage: str, done: int, total: int) -> None:
        if stage == "importing" and done >= 1000:
            raise Interrupted

    async def attempt(progress):  # type: ignore[no-untyped-def]
        database = Database(settings.database_url)
        inserts: list[int] = []

        def watch(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT INTO CRM_CITIZEN"):
                inserts.append(1)

        event.listen(database.engine.sync_engine, "before_cursor_execute", watch)
        try:
            async with database.sessionmaker() as session:
                return await import_csv(session, "citizens", path, progress=progress), len(inserts)
        finally:
            await database.dispose()

    with pytest.raises(Interrupted):
        run(attempt(stop_after_first_batch))
    assert count(settings, Citizen) == 0
    report, statements = run(attempt(None))
    assert report.created == 2500 and count(settings, Citizen) == 2500
    assert statements <= 6  # 3 batches of at most 1000 rows, not 2500 statements


def test_excel_export_in_cp1252_with_semicolons(cli, settings, tmp_path):
    rows = [
        citizen(1, name="Conceição Gonçalves Simões", address="Praça da República, 3, 2.º Esq.",
                created_at="05/11/2018 14:30", consent_at="05/11/2018"),
        citizen(2, name="José António Brandão", phone="+351 912 345 678", nif="PT " + make_nif(2)),
    ]  # fmt: skip
    path = write_csv(tmp_path / "excel.csv", CITIZEN_COLUMNS, rows, delimiter=";", encoding="cp1252")

    wrong = cli("crm", "import", "citizens", str(path))
    failed(wrong, "1 error(s)")
    assert "not utf-8 text" in wrong.stderr and "cp1252" in wrong.stderr and "line 2" in wrong.stderr

    ok(cli("crm", "import", "citizens", str(path), "--encoding", "cp1252", "--delimiter", ";"))
    found = citizens_by_external_id(settings)
    assert found["LEG-00001"].name == "Conceição Gonçalves Simões"
    assert found["LEG-00001"].name_folded == "conceicao goncalves simoes"
    assert found["LEG-00001"].address == "Praça da República, 3, 2.º Esq."
    created = found["LEG-00001"].created_at
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    assert created == datetime(2018, 11, 5, 14, 30, tzinfo=UTC)  # Lisbon is UTC+0 in November
    assert found["LEG-00002"].nif == make_nif(2) and found["LEG-00002"].phone == "912345678"
    # The delimiter is found from the header when not given.
    again = as_json(ok(cli("crm", "import", "citizens", str(path), "--encoding", "cp1252", "--json")))
    assert again["unchanged"] == 2


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------
def interaction(n: int, **overrides: str) -> dict[str, str]:
    return {
        "external_id": f"INT-{n:05d}", "citizen_external_id": "", "citizen_nif": "", "channel": "counter",
        "direction": "in", "occurred_at": f"2022-0{n % 9 + 1}-10T10:15", "topic": "Água e saneamento",
        "service_code": "AGUA-LIG", "department_code": "AGUA", "staff_username": "ana.ferreira",
        "notes": f"Pedido de ligação de água n.º {n}", **overrides,
    }  # fmt: skip


def test_interactions_reference_citizens_by_external_id_or_nif(cli, settings, tmp_path, make_user):
    ids = setup_staff(settings, make_user)
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS,
                                                      [citizen(n) for n in range(1, 4)]))))  # fmt: skip
    people = citizens_by_external_id(settings)
    rows = [
        interaction(1, citizen_external_id="LEG-00001"),
        interaction(2, citizen_nif=make_nif(2), channel="Telefone", direction="saída", occurred_at="01/07/2022 10:00",
                    department_code="", staff_username=""),
        interaction(3, citizen_external_id="LEG-00003", channel="carta", notes=""),
        interaction(4, channel="email", department_code="OBRAS"),  # anonymous
    ]  # fmt: skip
    path = write_csv(tmp_path / "contactos.csv", INTERACTION_COLUMNS, rows)
    report = as_json(ok(cli("crm", "import", "interactions", str(path), "--json")))
    assert (report["created"], report["rows"]) == (4, 4)
    found = interactions_by_external_id(settings)
    assert found["INT-00001"].citizen_id == people["LEG-00001"].id
    assert found["INT-00001"].department_id == ids["AGUA"] and found["INT-00001"].staff_id == ids["ana.ferreira"]
    second = found["INT-00002"]
    assert second.citizen_id == people["LEG-00002"].id
    assert (second.channel, second.direction, second.department_id, second.staff_id) == ("phone", "out", None, None)
    when = second.occurred_at if second.occurred_at.tzinfo else second.occurred_at.replace(tzinfo=UTC)
    assert when == datetime(2022, 7, 1, 9, 0, tzinfo=UTC)  # Lisbon summer time is UTC+1
    assert found["INT-00003"].channel == "letter" and found["INT-00004"].citizen_id is None

    again = as_json(ok(cli("crm", "import", "interactions", str(path), "--json")))
    assert (again["created"], again["unchanged"]) == (0, 4)
    rows[0]["notes"] = "Ligação concluída"
    write_csv(path, INTERACTION_COLUMNS, rows)
    assert as_json(ok(cli("crm", "import", "interactions", str(path), "--json")))["updated"] == 1
    assert interactions_by_external_id(settings)["INT-00001"].notes == "Ligação concluída"


def test_interaction_references_and_codes_are_checked(cli, settings, tmp_path, make_user):
    from concelho.plugins.crm.models import Interaction

    setup_staff(settings, make_user)
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS, [citizen(1)]))))
    rows = [
        interaction(1, citizen_external_id="LEG-00001"),
        interaction(2, citizen_external_id="LEG-99999"),  # line 3
        interaction(3, citizen_nif=make_nif(77)),  # line 4: valid NIF, nobody has it
        interaction(4, citizen_nif=bad_nif(1)),  # line 5
        interaction(5, channel="pombo-correio"),  # line 6
        interaction(6, direction="lateral"),  # line 7
        interaction(7, department_code="NADA"),  # line 8
        interaction(8, staff_username="ninguem"),  # line 9
        interaction(9, occurred_at="ontem"),  # line 10
        interaction(1),  # line 11: repeats INT-00001
    ]
    path = write_csv(tmp_path / "contactos.csv", INTERACTION_COLUMNS, rows)
    result = cli("crm", "import", "interactions", str(path), "--json")
    assert result.exit_code == 1
    errors = as_json(result)["errors"]
    assert sorted(e["line"] for e in errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    messages = " | ".join(e["message"] for e in errors)
    for fragment in ("LEG-99999", "matches no citizen", "not a valid NIF", "pombo-correio", "NADA", "ninguem",
                     "ontem", "repeats line 2"):  # fmt: skip
        assert fragment in messages
    assert count(settings, Interaction) == 0


def test_merged_citizens_get_the_interactions_of_their_duplicates(cli, settings, tmp_path, make_user):
    from concelho.plugins.crm.models import Citizen
    from sqlalchemy import update

    setup_staff(settings, make_user)
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS,
                                                      [citizen(1), citizen(2)]))))  # fmt: skip
    people = citizens_by_external_id(settings)

    async def merge(session):  # type: ignore[no-untyped-def]
        await session.execute(update(Citizen).where(Citizen.external_id == "LEG-00002").values(
            merged_into_id=people["LEG-00001"].id))  # fmt: skip

    run(_query(settings, merge))
    path = write_csv(tmp_path / "i.csv", INTERACTION_COLUMNS, [interaction(1, citizen_external_id="LEG-00002")])
    ok(cli("crm", "import", "interactions", str(path)))
    assert interactions_by_external_id(settings)["INT-00001"].citizen_id == people["LEG-00001"].id


def test_python_api_reads_a_stream(settings):
    """bench/crm.py and other callers pass a file object instead of a path."""
    from concelho.plugins.crm.legacy_import import LegacyImportError, import_csv
    from concelho.plugins.crm.models import Citizen
    from concelho.suite.db import Database

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CITIZEN_COLUMNS)
    writer.writeheader()
    writer.writerows([citizen(n) for n in range(1, 6)])

    async def go(data: bytes):  # type: ignore[no-untyped-def]
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                return await import_csv(session, "citizens", io.BytesIO(data))
        finally:
            await database.dispose()

    assert run(go(buffer.getvalue().encode())).created == 5
    with pytest.raises(LegacyImportError) as caught:
        run(go(b"external_id,apelido\nX,Y\n"))
    assert [str(e) for e in caught.value.errors] == [
        "line 1: missing column(s) name",
        "line 1: unknown column(s) apelido (known: " + ", ".join(CITIZEN_COLUMNS) + ")",
    ]
    assert count(settings, Citizen) == 5


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("crm", "import", "pessoas", "{dir}/c.csv"), "unknown kind 'pessoas'"),
        (("crm", "import", "citizens", "{dir}/nao-existe.csv"), "no such file"),
        (("crm", "import", "citizens", "{dir}/c.csv", "--encoding", "latin-9"), "--encoding must be"),
        (("crm", "import", "citizens", "{dir}/c.csv", "--delimiter", "|"), "--delimiter must be"),
        (("crm", "import", "citizens", "{dir}/vazio.csv"), "1 error(s)"),
        (("crm", "import", "interactions", "{dir}/c.csv"), "error(s), nothing imported"),
    ],
)
def test_cli_mistakes_are_one_line(cli, tmp_path, args, fragment):
    write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS, [citizen(1)])
    (tmp_path / "vazio.csv").write_text("", encoding="utf-8")
    failed(cli(*[a.format(dir=tmp_path) for a in args]), fragment)
