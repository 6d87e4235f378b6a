"""CRM exports (CSV, JSON Lines, XLSX; filters, anonymisation, CSV injection), the KPI report and the dashboard.

One hand-built dataset (Lisbon year 2025, two departments) is inserted straight into the CRM tables; every expected
figure below is worked out by hand from it in the comments next to the assertion.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .browser_fixtures import broken_references, describe_violations, run_axe, sign_in
from .conftest import TEST_SECRET, login, run

pytest_plugins = ["tests.browser_fixtures"]

OBRAS, SOCIAL = "OBRAS", "SOCIAL"
#: Citizens: (key, name, NIF, e-mail, phone, address, created_at, erased).
CITIZENS = [
    ("maria", "Maria Conceição Silva", "123456789", "maria.silva@example.pt", "+351 912 345 678", "Rua Direita, 12",
     datetime(2025, 1, 10, 9, tzinfo=UTC), False),
    ("joao", "João Pedro Ferreira", "287024008", "joao.ferreira@example.pt", "239 123 456", "Largo do Rossio, 3",
     datetime(2025, 5, 2, 15, tzinfo=UTC), False),
    ("rita", "Rita Alves Apagada", "501964843", "rita.alves@example.pt", "+351 963 222 111", "Travessa do Sol, 7",
     datetime(2024, 11, 3, 11, tzinfo=UTC), True),
    ("hack", "=HYPERLINK(\"http://mal.example\")", "999999990", "hack@example.pt", "@SUM(1+1)", "-2+3",
     datetime(2025, 8, 1, 12, tzinfo=UTC), False),
]  # fmt: skip
PERSONAL = ["Maria Conceição Silva", "Silva", "João Pedro Ferreira", "Ferreira", "Rita Alves", "123456789",
            "287024008", "501964843", "999999990", "maria.silva@example.pt", "joao.ferreira@example.pt",
            "rita.alves@example.pt", "hack@example.pt", "912 345 678", "239 123 456", "963 222 111",
            "Rua Direita", "Largo do Rossio", "Travessa do Sol", "HYPERLINK", "SUM(1+1)", "nota privada",
            "Buraco em frente"]  # fmt: skip
#: Interactions: (topic used as the row's name, channel, direction, department, citizen, occurred_at UTC, notes).
INTERACTIONS = [
    ("T1", "web", "in", OBRAS, "maria", datetime(2025, 1, 1, 0, 30, tzinfo=UTC), "nota privada 1"),
    ("T2", "phone", "in", OBRAS, "joao", datetime(2025, 2, 10, 10, tzinfo=UTC), "nota privada 2"),
    ("T3", "counter", "in", SOCIAL, "rita", datetime(2025, 2, 11, 10, tzinfo=UTC), "nota privada 3"),
    # 23:30 UTC on 30 June is 00:30 on 1 July in Lisbon (summer time): a July contact.
    ("T4", "open311", "in", OBRAS, "maria", datetime(2025, 6, 30, 23, 30, tzinfo=UTC), "=1+2"),
    ("T5", "email", "in", SOCIAL, "hack", datetime(2025, 7, 15, 9, tzinfo=UTC), "@SUM(1+1) nota privada 5"),
    ("T6", "web", "in", SOCIAL, None, datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), ""),
    ("T7", "letter", "out", OBRAS, "joao", datetime(2025, 3, 3, 10, tzinfo=UTC), "nota privada 7"),
    ("T8", "web", "in", OBRAS, "maria", datetime(2024, 12, 31, 23, 59, tzinfo=UTC), "fora do período"),
    ("T9", "phone", "in", OBRAS, "joao", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), "fora do período"),
]


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


#: Cases: reference -> fields (department code, citizen key, created, first answer, due, closed, status, merged).
CASES: dict[str, dict[str, Any]] = {
    # answered after 4 h, before the due date; closed later: on time
    "CASO-A": dict(dept=OBRAS, citizen="maria", created=_at(2025, 3, 1, 9), answered=_at(2025, 3, 1, 13),
                   due=_at(2025, 3, 6, 9), closed=_at(2025, 3, 10, 9), status="closed", channel="web"),
    # answered after 48 h, before the due date: on time
    "CASO-B": dict(dept=OBRAS, citizen="joao", created=_at(2025, 3, 2, 9), answered=_at(2025, 3, 4, 9),
                   due=_at(2025, 3, 7, 9), status="answered", channel="phone"),
    # answered after 10 h: on time
    "CASO-C": dict(dept=SOCIAL, citizen="rita", created=_at(2025, 4, 1, 10), answered=_at(2025, 4, 1, 20),
                   due=_at(2025, 4, 11, 10), status="answered", channel="counter"),
    # never answered, still open, due in May 2025: late, and overdue now
    "CASO-D": dict(dept=SOCIAL, citizen="joao", created=_at(2025, 5, 5, 8), due=_at(2025, 5, 15, 8),
                   status="in_progress", channel="web"),
    # closed without an answer before the due date: on time
    "CASO-E": dict(dept=OBRAS, citizen="hack", created=_at(2025, 11, 20, 10), closed=_at(2025, 11, 25),
                   due=_at(2025, 11, 30), status="closed", channel="email"),
    # opened in 2024, closed in January 2025 after its due date (30 Dec 2024): late, closed in the period
    "CASO-F": dict(dept=OBRAS, citizen="maria", created=_at(2024, 12, 20, 10), closed=_at(2025, 1, 5, 10),
                   due=_at(2024, 12, 30, 10), status="closed", channel="web"),
    # a duplicate merged into CASO-A: left out of every figure
    "CASO-G": dict(dept=OBRAS, citizen="maria", created=_at(2025, 3, 1, 10), answered=_at(2025, 3, 1, 10, 30),
                   closed=_at(2025, 3, 1, 11), due=_at(2025, 3, 2), status="closed", merged="CASO-A", channel="web"),
    # no department, no SLA, never answered
    "CASO-H": dict(dept=None, citizen="maria", created=_at(2025, 6, 1, 12), status="new", channel="web"),
    # 23:30 UTC on 31 Dec is still 2025 in Lisbon; answered 2 h later (in 2026)
    "CASO-I": dict(dept=SOCIAL, citizen="joao", created=_at(2025, 12, 31, 23, 30), answered=_at(2026, 1, 1, 1, 30),
                   status="answered", channel="web"),
    # answered after 456 h, 9 days after the due date: late
    "CASO-J": dict(dept=SOCIAL, citizen="hack", created=_at(2025, 8, 1, 8), answered=_at(2025, 8, 20, 8),
                   due=_at(2025, 8, 11, 8), status="answered", channel="web"),
}  # fmt: skip


async def _insert_dataset(settings) -> None:  # type: ignore[no-untyped-def]
    from concelho.plugins.crm.models import Case, Citizen, Interaction
    from concelho.suite.db import Database
    from concelho.suite.models import Department, Role

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            departments = {}
            for code, name in ((OBRAS, "Obras Municipais"), (SOCIAL, "Ação Social")):
                departments[code] = Department(code=code, name=name)
                session.add(departments[code])
            session.add(Role(name="crm_agent", label="CRM agent", permissions=["intranet.access", "crm.view"]))
            session.add(Role(name="crm_manager", label="CRM manager",
                             permissions=["intranet.access", "crm.view", "crm.manage"]))  # fmt: skip
            citizens = {}
            for key, name, nif, email, phone, address, created, erased in CITIZENS:
                citizens[key] = Citizen(
                    name=name, name_folded=name.lower(), nif=nif, email=email, phone=phone, address=address,
                    created_at=created, updated_at=created, consent_at=created,
                    erased_at=_at(2025, 12, 1) if erased else None,
                )  # fmt: skip
                session.add(citizens[key])
            await session.flush()
            for topic, channel, direction, dept, who, when, notes in INTERACTIONS:
                session.add(Interaction(
                    topic=topic, channel=channel, direction=direction, department_id=departments[dept].id,
                    citizen_id=citizens[who].id if who else None, occurred_at=when, notes=notes, created_at=when,
                ))  # fmt: skip
            cases = {}
            for reference, spec in CASES.items():
                cases[reference] = Case(
                    reference=reference, token_hash="0" * 64, citizen_id=citizens[spec["citizen"]].id,
                    channel=spec["channel"], topic="Via pública", description=f"Buraco em frente ao n.º {reference}",
                    location_text="Rua Direita, 12", latitude=40.2, longitude=-8.4,
                    department_id=departments[spec["dept"]].id if spec["dept"] else None, status=spec["status"],
                    created_at=spec["created"], updated_at=spec["created"], first_answered_at=spec.get("answered"),
                    sla_due_at=spec.get("due"), closed_at=spec.get("closed"),
                )  # fmt: skip
                session.add(cases[reference])
            await session.flush()
            cases["CASO-G"].merged_into_id = cases["CASO-A"].id
    finally:
        await database.dispose()


async def _set_departments(settings, assignments: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from concelho.suite.db import Database
    from concelho.suite.models import Department, User
    from sqlalchemy import select

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            for username, code in assignments.items():
                user = (await session.execute(select(User).where(User.username == username))).scalar_one()
                user.department_id = (
                    await session.execute(select(Department.id).where(Department.code == code))
                ).scalar_one()
    finally:
        await database.dispose()


@pytest.fixture
def dataset(settings) -> None:  # type: ignore[no-untyped-def]
    run(_insert_dataset(settings))


def pseudonym(citizen_id: int) -> str:
    """Computed here independently of the code under test."""
    return "C-" + hmac.new(TEST_SECRET.encode(), f"crm.citizen:{citizen_id}".encode(), hashlib.sha256).hexdigest()[:16]


def citizen_ids(settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async def load() -> dict[str, int]:
        from concelho.plugins.crm.models import Citizen
        from concelho.suite.db import Database
        from sqlalchemy import select

        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                rows = (await session.execute(select(Citizen.id, Citizen.email))).all()
        finally:
            await database.dispose()
        by_email = {email: cid for cid, email in rows}
        return {key: by_email[email] for key, _, _, email, *_ in CITIZENS}

    return run(load())


def csv_rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def jsonl_rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def xlsx_rows(path: Path) -> list[dict[str, Any]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    book.close()
    width = len(rows[0])  # trailing empty cells are not stored
    return [dict(zip(rows[0], r + [None] * (width - len(r)), strict=True)) for r in rows[1:]]


def export(cli, tmp_path: Path, kind: str, fmt: str, *args: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Run ``suite crm export`` and read the rows back with csv / json / openpyxl."""
    if fmt == "xlsx":
        out = tmp_path / f"{kind}-{len(list(tmp_path.glob('*.xlsx')))}.xlsx"
        result = cli("crm", "export", kind, "--format", "xlsx", "--output", str(out), *args)
        assert result.exit_code == 0, result.output
        assert not list(tmp_path.glob("*.part"))
        return xlsx_rows(out)
    result = cli("crm", "export", kind, "--format", fmt, *args)
    assert result.exit_code == 0, result.output
    return csv_rows(result.stdout) if fmt == "csv" else jsonl_rows(result.stdout)


# --------------------------------------------------------------------------------------------
# Exports: exactly the filtered rows, in every format
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_interaction_exports_hold_exactly_the_filtered_rows(cli, tmp_path, dataset, settings, fmt):
    everything = export(cli, tmp_path, "interactions", fmt)
    assert sorted(r["topic"] for r in everything) == [f"T{n}" for n in range(1, 10)]
    # T4 (30 Jun 23:30 UTC) is 1 July in Lisbon: outside a period that ends on 30 June.
    period = export(cli, tmp_path, "interactions", fmt, "--from", "2025-02-01", "--to", "2025-06-30")
    assert sorted(r["topic"] for r in period) == ["T2", "T3", "T7"]
    year = export(cli, tmp_path, "interactions", fmt, "--from", "2025-01-01", "--to", "2025-12-31")
    assert sorted(r["topic"] for r in year) == ["T1", "T2", "T3", "T4", "T5", "T6", "T7"]
    web = export(cli, tmp_path, "interactions", fmt, "--channel", "web", "--department", OBRAS)
    assert sorted(r["topic"] for r in web) == ["T1", "T8"]
    row = next(r for r in everything if r["topic"] == "T4")
    ids = citizen_ids(settings)
    assert row["occurred_at"] == "2025-06-30T23:30:00+00:00"
    assert (row["department_code"], row["department_name"]) == (OBRAS, "Obras Municipais")
    assert row["channel"] == "open311" and row["citizen"] == pseudonym(ids["maria"])
    assert row["citizen_name"] == "Maria Conceição Silva" and row["citizen_nif"] == "123456789"
    anonymous = next(r for r in everything if r["topic"] == "T6")
    assert anonymous["citizen"] in ("", None) and anonymous["citizen_name"] in ("", None)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_case_exports_hold_exactly_the_filtered_rows(cli, tmp_path, dataset, fmt):
    everything = export(cli, tmp_path, "cases", fmt)
    assert sorted(r["reference"] for r in everything) == sorted(CASES)
    social = export(cli, tmp_path, "cases", fmt, "--department", SOCIAL, "--from", "2025-01-01", "--to", "2025-12-31")
    assert sorted(r["reference"] for r in social) == ["CASO-C", "CASO-D", "CASO-I", "CASO-J"]
    answered = export(cli, tmp_path, "cases", fmt, "--status", "answered", "--channel", "web")
    assert sorted(r["reference"] for r in answered) == ["CASO-I", "CASO-J"]
    by_ref = {r["reference"]: r for r in everything}
    a = by_ref["CASO-A"]
    assert a["created_at"] == "2025-03-01T09:00:00+00:00" and a["closed_at"] == "2025-03-10T09:00:00+00:00"
    assert float(a["hours_to_first_answer"]) == 4.0 and float(a["hours_to_close"]) == 216.0
    assert by_ref["CASO-G"]["merged_into"] == "CASO-A"
    assert str(by_ref["CASO-D"]["overdue"]).lower() == "true" and str(a["overdue"]).lower() == "false"
    assert by_ref["CASO-H"]["department_code"] in ("", None)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_citizen_exports_hold_exactly_the_filtered_rows(cli, tmp_path, dataset, settings, fmt):
    ids = citizen_ids(settings)
    everything = export(cli, tmp_path, "citizens", fmt)
    assert sorted(r["citizen"] for r in everything) == sorted(pseudonym(i) for i in ids.values())
    in_2025 = export(cli, tmp_path, "citizens", fmt, "--from", "2025-01-01", "--to", "2025-06-30")
    assert sorted(r["email"] for r in in_2025) == ["joao.ferreira@example.pt", "maria.silva@example.pt"]
    by_id = {r["citizen"]: r for r in everything}
    maria = by_id[pseudonym(ids["maria"])]
    # Maria: T1, T4, T8 and cases A, F, G, H
    assert (int(maria["interactions"]), int(maria["cases"])) == (3, 4)
    rita = by_id[pseudonym(ids["rita"])]  # erased: her pseudonym, nothing personal
    assert rita["name"] == pseudonym(ids["rita"]) and str(rita["erased"]).lower() == "true"
    assert all(rita[k] in ("", None) for k in ("nif", "email", "phone", "address"))


def test_big_xlsx_exports_continue_on_new_sheets(cli, tmp_path, dataset, monkeypatch):
    from concelho.plugins.crm import export_writers
    from openpyxl import load_workbook

    monkeypatch.setattr(export_writers, "XLSX_MAX_ROWS", 4)  # Excel's limit is 1,048,575 rows under the header
    out = tmp_path / "casos.xlsx"
    assert cli("crm", "export", "cases", "--format", "xlsx", "-o", str(out)).exit_code == 0
    book = load_workbook(out, read_only=True)
    assert book.sheetnames == ["cases", "cases-2", "cases-3"]
    sheets = [list(ws.iter_rows(values_only=True)) for ws in book.worksheets]
    assert [len(rows) for rows in sheets] == [5, 5, 3]  # header + 4, header + 4, header + 2
    assert all(rows[0][:2] == ("reference", "created_at") for rows in sheets)
    assert sorted(row[0] for rows in sheets for row in rows[1:]) == sorted(CASES)


def test_csv_options_bom_delimiter_and_file_output(cli, tmp_path, dataset):
    out = tmp_path / "casos.csv"
    result = cli("crm", "export", "cases", "--output", str(out), "--bom", "--delimiter", ";", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == len(CASES)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfreference;created_at;")
    rows = csv_rows(raw.decode("utf-8-sig"), ";")
    assert sorted(r["reference"] for r in rows) == sorted(CASES)
    assert "Buraco em frente ao n.º CASO-A" in {r["description"] for r in rows}
    plain = cli("crm", "export", "cases", "--delimiter", "tab")
    assert plain.stdout.startswith("reference\tcreated_at\t") and not plain.stdout.startswith("\ufeff")
    assert len(csv_rows(plain.stdout, "\t")) == len(CASES)


def test_formula_cells_are_neutralised_in_csv_and_xlsx(cli, tmp_path, dataset):
    rows = export(cli, tmp_path, "citizens", "csv")
    hack = next(r for r in rows if r["email"] == "hack@example.pt")
    assert hack["name"] == '\'=HYPERLINK("http://mal.example")'
    assert hack["phone"] == "'@SUM(1+1)" and hack["address"] == "'-2+3"
    maria = next(r for r in rows if r["email"] == "maria.silva@example.pt")
    assert maria["phone"] == "'+351 912 345 678"
    notes = {r["topic"]: r["notes"] for r in export(cli, tmp_path, "interactions", "csv")}
    assert notes["T4"] == "'=1+2" and notes["T5"] == "'@SUM(1+1) nota privada 5" and notes["T1"] == "nota privada 1"
    # Numbers stay numbers (a negative longitude is not a formula); CASO-C's citizen is erased: no location.
    longitudes = {r["reference"]: r["longitude"] for r in export(cli, tmp_path, "cases", "csv")}
    assert longitudes.pop("CASO-C") == "" and set(longitudes.values()) == {"-8.4"}

    from openpyxl import load_workbook

    out = tmp_path / "i.xlsx"
    assert cli("crm", "export", "interactions", "--format", "xlsx", "-o", str(out)).exit_code == 0
    sheet = load_workbook(out).worksheets[0]
    header = [c.value for c in sheet[1]]
    cells = {row[header.index("topic")].value: row[header.index("notes")] for row in sheet.iter_rows(min_row=2)}
    assert cells["T4"].value == "'=1+2" and cells["T4"].data_type == "s"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
    # JSON Lines is data, not a spreadsheet: kept as typed.
    lines = {r["topic"]: r["notes"] for r in export(cli, tmp_path, "interactions", "jsonl")}
    assert lines["T4"] == "=1+2"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_anonymised_exports_leave_no_personal_data_and_keep_stable_pseudonyms(cli, tmp_path, dataset, settings, fmt):
    ids = citizen_ids(settings)
    texts = []
    exported = {}
    for kind in ("citizens", "interactions", "cases"):
        rows = export(cli, tmp_path, kind, fmt, "--anonymize")
        exported[kind] = rows
        texts.append(json.dumps(rows, ensure_ascii=False, default=str))
        for row in rows:
            assert not {"name", "nif", "email", "phone", "address", "notes", "description", "citizen_name",
                        "staff", "assignee", "location_text", "latitude", "external_id"} & set(row)  # fmt: skip
    blob = "\n".join(texts)
    leaked = [value for value in PERSONAL if value in blob]
    assert leaked == []
    # analytic columns are kept
    assert {r["channel"] for r in exported["interactions"]} == {"web", "phone", "counter", "open311", "email", "letter"}
    case_a = next(r for r in exported["cases"] if r["reference"] == "CASO-A")
    assert case_a["department_code"] == OBRAS and case_a["status"] == "closed"
    assert float(case_a["hours_to_first_answer"]) == 4.0
    # the same pseudonym for the same citizen in every export and every run, computed from the secret
    assert sorted(r["citizen"] for r in exported["citizens"]) == sorted(pseudonym(i) for i in ids.values())
    t1 = next(r for r in exported["interactions"] if r["topic"] == "T1")
    assert t1["citizen"] == pseudonym(ids["maria"])
    assert next(r for r in exported["cases"] if r["reference"] == "CASO-J")["citizen"] == pseudonym(ids["hack"])
    again = export(cli, tmp_path, "interactions", fmt, "--anonymize")
    assert [r["citizen"] for r in again] == [r["citizen"] for r in exported["interactions"]]
    assert len({pseudonym(i) for i in ids.values()}) == len(ids)


def test_exports_are_audited(cli, tmp_path, dataset, settings):
    assert cli("crm", "export", "cases", "--anonymize", "--channel", "web").exit_code == 0

    async def entries() -> list[Any]:
        from concelho.suite.db import Database
        from concelho.suite.models import AuditEntry
        from sqlalchemy import select

        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                query = select(AuditEntry).where(AuditEntry.action == "crm.exported")
                return list((await session.execute(query)).scalars())
        finally:
            await database.dispose()

    [entry] = run(entries())
    assert entry.target == "crm.cases" and entry.actor == "cli"
    # CASO-A, D, F, G, H, I, J are web cases
    assert entry.details == {"format": "csv", "rows": 7, "anonymized": True, "filters": {"channel": "web"}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["interactions", "--from", "2025-02-30"], "--from: '2025-02-30' is not a date"),
        (["interactions", "--to", "ontem"], "--to: 'ontem' is not a date"),
        (["interactions", "--from", "2025-05-01", "--to", "2025-04-01"], "is before --from"),
        (["interactions", "--channel", "pombo"], "unknown channel 'pombo'"),
        (["cases", "--status", "lost"], "unknown status 'lost'"),
        (["interactions", "--status", "new"], "--status applies to cases only"),
        (["cases", "--department", "NADA"], "unknown department 'NADA' (known: OBRAS, SOCIAL)"),
        (["citizens", "--channel", "web"], "do not apply to citizens"),
        (["pedidos"], "unknown export 'pedidos'"),
        (["cases", "--format", "pdf"], "unknown format 'pdf'"),
        (["cases", "--format", "xlsx"], "xlsx needs --output"),
        (["cases", "--json"], "--json prints a summary"),
        (["cases", "--delimiter", ";;"], "--delimiter must be one character"),
    ],
)
def test_bad_export_options_give_one_line_and_exit_1(cli, dataset, args, message):
    result = cli("crm", "export", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_export_to_a_missing_folder_fails_cleanly(cli, tmp_path, dataset):
    result = cli("crm", "export", "cases", "--output", str(tmp_path / "nada" / "x.csv"))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1 and "does not exist" in result.output


# --------------------------------------------------------------------------------------------
# KPI report
# --------------------------------------------------------------------------------------------
EXPECTED_ALL = {
    # T1..T7 (T8 is 2024, T9 is 2026): web T1 T6, phone T2, counter T3, open311 T4, email T5, letter T7
    "contacts": {"total": 7, "online": 3, "share_online": round(3 / 7, 4),
                 "by_channel": {"web": 2, "counter": 1, "phone": 1, "letter": 1, "fax": 0, "email": 1, "open311": 1}},
    "cases": {
        "opened": 8,  # A B C D E H I J (F opened in 2024, G merged)
        "closed": 3,  # F (Jan), A (Mar), E (Nov)
        "answered": 5,  # opened in 2025 and answered: A 4 h, B 48 h, C 10 h, I 2 h, J 456 h
        "median_hours_to_first_answer": 10.0,  # 2 4 [10] 48 456
        "open_overdue_now": 1,  # D
    },
    # with a due date in 2025 or closed in 2025: A B C E on time; D (never answered), F (closed late), J late
    "sla": {"on_time": 4, "late": 3, "pending": 0, "compliance": round(4 / 7, 4)},
    "services_online": 1,
}  # fmt: skip
EXPECTED_MONTHS = {  # month: (contacts, online, opened, closed)
    "2025-01": (1, 1, 0, 1), "2025-02": (2, 0, 0, 0), "2025-03": (1, 0, 2, 1), "2025-04": (0, 0, 1, 0),
    "2025-05": (0, 0, 1, 0), "2025-06": (0, 0, 1, 0), "2025-07": (2, 1, 0, 0), "2025-08": (0, 0, 1, 0),
    "2025-09": (0, 0, 0, 0), "2025-10": (0, 0, 0, 0), "2025-11": (0, 0, 1, 1), "2025-12": (1, 1, 1, 0),
}  # fmt: skip
EXPECTED_OBRAS = {
    "contacts": {"total": 4, "online": 2, "share_online": 0.5,  # T1 T2 T4 T7
                 "by_channel": {"web": 1, "counter": 0, "phone": 1, "letter": 1, "fax": 0, "email": 0, "open311": 1}},
    "cases": {"opened": 3, "closed": 3, "answered": 2, "median_hours_to_first_answer": 26.0,  # (4 + 48) / 2
              "open_overdue_now": 0},
    "sla": {"on_time": 3, "late": 1, "pending": 0, "compliance": 0.75},  # A B E on time, F late
    "services_online": 1,
}  # fmt: skip
EXPECTED_SOCIAL = {
    "contacts": {"total": 3, "online": 1, "share_online": round(1 / 3, 4),  # T3 T5 T6
                 "by_channel": {"web": 1, "counter": 1, "phone": 0, "letter": 0, "fax": 0, "email": 1, "open311": 0}},
    "cases": {"opened": 4, "closed": 0, "answered": 3, "median_hours_to_first_answer": 10.0,  # 2 [10] 456
              "open_overdue_now": 1},
    "sla": {"on_time": 1, "late": 2, "pending": 0, "compliance": round(1 / 3, 4)},  # C on time; D, J late
    "services_online": 1,
}  # fmt: skip


@pytest.fixture
def services(cli, tmp_path, dataset) -> None:  # type: ignore[no-untyped-def]
    """Two services in the content store: one that can be requested online, one that cannot."""
    from .content_helpers import import_rows
    from .test_services import service

    import_rows(cli, tmp_path, [service("LICOBRA"), service("PRESENC", online=False)])


def report(cli, *args: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = cli("crm", "report", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_figures_match_the_hand_computed_ones(cli, services):
    data = report(cli, "--from", "2025-01-01", "--to", "2025-12-31")
    assert data["period"] == {"from": "2025-01-01", "to": "2025-12-31"} and data["department"] is None
    assert {k: data[k] for k in EXPECTED_ALL} == EXPECTED_ALL
    assert {
        m["month"]: (m["contacts"], m["online"], m["opened"], m["closed"]) for m in data["months"]
    } == EXPECTED_MONTHS
    obras = report(cli, "--from", "2025-01-01", "--to", "2025-12-31", "--department", OBRAS)
    assert obras["department"] == {"code": OBRAS, "name": "Obras Municipais"}
    assert {k: obras[k] for k in EXPECTED_OBRAS} == EXPECTED_OBRAS
    social = report(cli, "--from", "2025-01-01", "--to", "2025-12-31", "--department", SOCIAL)
    assert {k: social[k] for k in EXPECTED_SOCIAL} == EXPECTED_SOCIAL
    # A shorter period: 1 February to 1 July (Lisbon) takes T2 T3 T7 and T4 (1 July 00:30 in Lisbon).
    spring = report(cli, "--from", "2025-02-01", "--to", "2025-07-01")
    assert spring["contacts"]["total"] == 4 and spring["contacts"]["by_channel"]["open311"] == 1
    assert [m["month"] for m in spring["months"]] == ["2025-02", "2025-03", "2025-04", "2025-05", "2025-06", "2025-07"]


def test_report_table_and_pending_sla(cli, settings, dataset):
    table = cli("crm", "report", "--from", "2025-01-01", "--to", "2025-12-31")
    assert table.exit_code == 0, table.output
    for text in ("CRM key figures", "57.1 %", "42.9 %", "10.0 h", "Contacts per channel", "2025-07"):
        assert text in table.stdout, text

    async def add_recent_cases() -> None:
        from concelho.plugins.crm.models import Case
        from concelho.suite.db import Database

        now = datetime.now(UTC)
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                due = now + timedelta(days=5)
                session.add(Case(reference="NOVO-1", token_hash="1" * 64, description="x", created_at=now,
                                 sla_due_at=due, status="new"))  # fmt: skip
                answered = now + timedelta(hours=3)
                session.add(Case(reference="NOVO-2", token_hash="2" * 64, description="y", created_at=now,
                                 sla_due_at=due, first_answered_at=answered, status="answered"))  # fmt: skip
        finally:
            await database.dispose()

    run(add_recent_cases())
    from concelho.plugins.crm.reports import today

    first, last = today() - timedelta(days=1), today() + timedelta(days=10)
    data = report(cli, "--from", first.isoformat(), "--to", last.isoformat())
    # NOVO-1 is not answered and not due yet: pending, outside the ratio; NOVO-2 answered on time.
    assert data["sla"] == {"on_time": 1, "late": 0, "pending": 1, "compliance": 1.0}
    assert data["cases"]["opened"] == 2 and data["cases"]["median_hours_to_first_answer"] == 3.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-01-01"], "give both --from and --to"),
        (["--from", "2025-01-01", "--to", "2025-31-12"], "--to: '2025-31-12' is not a date"),
        (["--from", "2025-06-01", "--to", "2025-01-01"], "is before --from"),
        (["--from", "2000-01-01", "--to", "2025-01-01"], "the period is longer than"),
        (["--from", "2025-01-01", "--to", "2025-12-31", "--department", "NADA"], "unknown department 'NADA'"),
    ],
)
def test_bad_report_options_give_one_line_and_exit_1(cli, dataset, args, message):
    result = cli("crm", "report", *args, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


# --------------------------------------------------------------------------------------------
# Dashboard
# --------------------------------------------------------------------------------------------
def figure(html: str, name: str) -> str:
    match = re.search(rf'id="kpi-{name}">([^<]*)<', html)
    assert match, name
    return match.group(1)


def channel_counts(html: str) -> dict[str, int]:
    return {
        code: int(n)
        for code, n in re.findall(r'<tr data-channel="([a-z0-9]+)"><th scope="row">.*?</th><td>(\d+)</td>', html)
    }


def months(html: str) -> dict[str, tuple[int, ...]]:
    table = html[html.index('id="crm-months"') :]
    rows = re.findall(r'<tr><th scope="row">(\d{4}-\d{2})</th>((?:<td>\d+</td>)+)</tr>', table)
    return {month: tuple(int(n) for n in re.findall(r"\d+", cells)) for month, cells in rows}


YEAR = "/intranet/crm/painel?de=2025-01-01&ate=2025-12-31"


@pytest.fixture
def staff(client, settings, make_user, services) -> None:  # type: ignore[no-untyped-def]
    make_user("plain", ["employee"])
    make_user("agente", ["employee", "crm_agent"])
    make_user("semdep", ["employee", "crm_agent"])
    make_user("chefe", ["employee", "crm_manager"])
    run(_set_departments(settings, {"agente": OBRAS, "plain": OBRAS}))


def test_dashboard_needs_crm_view(client, staff):
    assert client.get(YEAR, follow_redirects=False).status_code in (401, 302, 303)
    login(client, "plain")
    assert client.get(YEAR, follow_redirects=False).status_code == 403
    assert 'href="/intranet/crm/painel"' not in client.get("/intranet/").text


def test_manager_dashboard_shows_the_hand_computed_figures(client, staff):
    login(client, "chefe")
    assert 'href="/intranet/crm/painel"' in client.get("/intranet/").text
    page = client.get(YEAR)
    assert page.status_code == 200 and page.text.count("<h1") == 1
    assert figure(page.text, "contacts") == "7" and figure(page.text, "share-online") == "42,9 %"
    assert figure(page.text, "opened") == "8" and figure(page.text, "closed") == "3"
    assert figure(page.text, "median") == "10,0" and figure(page.text, "sla") == "57,1 %"
    assert figure(page.text, "overdue") == "1" and figure(page.text, "services") == "1"
    assert channel_counts(page.text) == EXPECTED_ALL["contacts"]["by_channel"]
    assert months(page.text) == EXPECTED_MONTHS
    assert 'class="crm-bar crm-bar-30 crm-bar-online"' in page.text  # web: 2 of 7 = 28.6 % -> 30
    assert "style=" not in page.text.split("<main", 1)[1]
    social = client.get(YEAR + "&departamento=SOCIAL")
    assert figure(social.text, "contacts") == "3" and figure(social.text, "sla") == "33,3 %"
    assert channel_counts(social.text) == EXPECTED_SOCIAL["contacts"]["by_channel"]
    assert '<option value="SOCIAL" selected>' in social.text


def test_agent_sees_only_the_figures_of_their_department(client, staff):
    login(client, "agente")
    page = client.get(YEAR)
    assert page.status_code == 200
    assert figure(page.text, "contacts") == "4" and figure(page.text, "opened") == "3"
    assert figure(page.text, "median") == "26,0" and figure(page.text, "sla") == "75,0 %"
    assert figure(page.text, "overdue") == "0"
    assert channel_counts(page.text) == EXPECTED_OBRAS["contacts"]["by_channel"]
    assert 'name="departamento"' not in page.text and "Obras Municipais" in page.text
    # asking for another department changes nothing
    other = client.get(YEAR + "&departamento=SOCIAL")
    assert figure(other.text, "contacts") == "4" and channel_counts(other.text) == channel_counts(page.text)
    client.cookies.clear()
    login(client, "semdep")
    lonely = client.get(YEAR)
    assert lonely.status_code == 200 and 'id="kpi-contacts"' not in lonely.text


def test_dashboard_period_shortcuts_fragments_and_bad_input(client, staff):
    login(client, "chefe")
    default = client.get("/intranet/crm/painel")
    from concelho.plugins.crm.reports import today

    year = today().year
    assert f'value="{year}-01-01"' in default.text and f'value="{year}-12-31"' in default.text
    for name in ("month", "30d", "year"):
        assert f'href="/intranet/crm/painel?periodo={name}"' in default.text
    month = client.get("/intranet/crm/painel?periodo=month")
    assert f'value="{today():%Y-%m}-01"' in month.text
    fragment = client.get(YEAR, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "<h1" not in fragment.text
    assert figure(fragment.text, "contacts") == "7" and 'hx-swap-oob="innerHTML"' in fragment.text
    assert 'aria-live="polite"' in default.text and 'hx-target="#crm-panel"' in default.text
    bad = client.get("/intranet/crm/painel?de=2025-02-30&ate=2025-01-01&departamento=NADA")
    assert bad.status_code == 400
    assert 'id="de-error"' in bad.text and 'id="departamento-error"' in bad.text and 'value="2025-02-30"' in bad.text
    assert 'id="kpi-contacts"' not in bad.text
    reversed_dates = client.get("/intranet/crm/painel?de=2025-06-01&ate=2025-01-01")
    assert reversed_dates.status_code == 400 and 'id="ate-error"' in reversed_dates.text
    bad_fragment = client.get("/intranet/crm/painel?de=nada&ate=2025-01-01", headers={"HX-Request": "true"})
    assert bad_fragment.status_code == 200 and 'id="de-error"' in bad_fragment.text


# --------------------------------------------------------------------------------------------
# In Chromium (last in the module: the module-scoped browser keeps an event loop open in this thread)
# --------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("lang", ["pt", "en"])
def test_dashboard_is_accessible_and_htmx_swaps_only_the_panel(make_tab, axe_source, lang):
    tab = make_tab(lang="en")  # sign_in() reads the English labels; ?lang= then keeps the language in a cookie
    page = tab.page
    sign_in(page)
    page.goto(f"/intranet/crm/painel?lang={lang}")
    assert page.evaluate("document.documentElement.lang") == ("pt-PT" if lang == "pt" else "en")
    assert page.locator("#kpi-contacts").count() == 1
    for label in (f"after load ({lang})", f"after a shortcut ({lang})"):
        assert not broken_references(page), label
        violations = run_axe(page, axe_source)
        assert not violations, f"{label}:\n" + describe_violations(violations)
        if "shortcut" in label:
            break
        page.evaluate("document.querySelector('h1').dataset.kept = 'yes'")
        page.locator(".crm-shortcuts a").first.click()  # this month, through htmx
        page.wait_for_url("**/intranet/crm/painel?periodo=month")
        page.wait_for_function("document.querySelector('#de').value.endsWith('-01')")
    assert page.evaluate("document.querySelector('h1').dataset.kept") == "yes"  # the page was not reloaded
    assert page.locator("#crm-dashboard-status").inner_text().strip() != ""
    assert tab.problems() == []
