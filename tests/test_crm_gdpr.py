"""``suite crm gdpr``: the right of access (export), erasure that leaves no personal data anywhere, retention."""

from __future__ import annotations

import asyncio
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import csrf_token, login, post_form, run
from .test_cli import as_json, failed, ok
from .test_crm import PNG
from .test_crm_import import CITIZEN_COLUMNS, INTERACTION_COLUMNS, _query, citizen, interaction, make_nif, write_csv

PERSON = {
    "name": "Filomena Carvalhal Quintas",
    "nif": make_nif(4242),
    "email": "filomena.quintas@example.pt",
    "phone": "913 456 782",
    "address": "Travessa das Amoreiras, 7, Vila Serena",
}
#: Words only this person wrote or that were written about her (case, reply, notes, files, legacy record).
PERSON_WORDS = ["Filomena", "Carvalhal", "Quintas", PERSON["nif"], "filomena.quintas", "913456782", "Amoreiras",
                "Pirilampo", "Girassol", "Azevinho", "Gerânio", "Rosmaninho", "Alfazema", "fq.antiga@example.net",
                "38.7171", "-9.1393"]  # fmt: skip
OTHER = {"name": "Bartolomeu Ventura Sardinha", "email": "bartolomeu.sardinha@example.pt"}
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\n% Declaracao de Filomena Carvalhal Quintas\ntrailer << >>\n%%EOF\n"
LEGACY_PDF = b"%PDF-1.4\n% Carta de Filomena Quintas sobre Alfazema\n%%EOF\n"


def send_form(client, files: list[tuple[str, tuple[str, bytes, str]]], **fields: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    data = {"topic": "Via pública e iluminação", "consent": "1", "_csrf_token": csrf_token(client), **fields}
    response = client.post("/fale-connosco/", data=data, files=files, follow_redirects=False)
    assert response.status_code == 303, response.text
    match = re.search(r"/acompanhar/([^?]+)\?t=([^&]+)", response.headers["location"])
    assert match
    return match.group(1), match.group(2)


async def _case_id(session, reference: str) -> int:  # type: ignore[no-untyped-def]
    from concelho.plugins.crm.models import Case
    from sqlalchemy import select

    return (await session.execute(select(Case.id).where(Case.reference == reference))).scalar_one()


def kpis(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Interactions and cases per channel, cases per status and topic: what the statistics count."""
    from concelho.plugins.crm.models import Case, Interaction
    from sqlalchemy import func, select

    async def fn(session):  # type: ignore[no-untyped-def]
        out = {}
        for name, column in (("interactions", Interaction.channel), ("cases", Case.channel),
                             ("status", Case.status), ("topic", Case.topic)):  # fmt: skip
            model = Interaction if name == "interactions" else Case
            rows = await session.execute(select(column, func.count()).select_from(model).group_by(column))
            out[name] = dict(rows.all())
        return out

    return run(_query(settings, fn))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dump_database(settings) -> str:  # type: ignore[no-untyped-def]
    """Every value of every row of every table, as text."""
    from sqlalchemy import select
    from sqlmodel import SQLModel

    async def fn(session):  # type: ignore[no-untyped-def]
        lines = []
        for table in SQLModel.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                lines.append(f"{table.name}: " + " | ".join(_text(value) for value in row))
        return "\n".join(lines)

    return run(_query(settings, fn))


def dump_files(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()] if root.exists() else []


def person_ids(settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from concelho.plugins.crm.models import Citizen
    from sqlalchemy import select

    async def fn(session):  # type: ignore[no-untyped-def]
        rows = (await session.execute(select(Citizen.id, Citizen.nif, Citizen.email, Citizen.external_id))).all()
        return {
            "main": next(r.id for r in rows if r.nif == PERSON["nif"]),
            "legacy": next(r.id for r in rows if r.external_id == "FQ-1"),
            "other": next(r.id for r in rows if r.email == OTHER["email"]),
        }

    return run(_query(settings, fn))


@pytest.fixture
def person(client, settings, cli, make_user, tmp_path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Filomena: a case from the portal with a PDF and a photo, staff's internal note and public reply, her reply,
    a legacy record merged into her current one with its interaction and scanned letter.  Bartolomeu: his own case
    with the very same photo (one content-addressed file for both)."""
    from concelho.plugins.crm.models import Citizen, InteractionFile
    from concelho.suite.storage import LocalStorage
    from sqlalchemy import select, update

    reference, token = send_form(
        client,
        [("files", ("declaracao-filomena.pdf", PDF, "application/pdf")), ("files", ("foto.png", PNG, "image/png"))],
        description="O candeeiro Pirilampo da minha rua está apagado há uma semana.",
        name=PERSON["name"], email=PERSON["email"], phone=PERSON["phone"], nif=PERSON["nif"],
        location_text=PERSON["address"], latitude="38.7171", longitude="-9.1393",
    )  # fmt: skip
    other_reference, _ = send_form(
        client, [("files", ("foto.png", PNG, "image/png"))], description="Buraco na estrada junto ao Malmequer.",
        name=OTHER["name"], email=OTHER["email"], location_text="Rua do Malmequer, 3",
    )  # fmt: skip
    make_user("chefe", ["admin"])
    login(client, "chefe")
    case_id = run(_query(settings, lambda s: _case_id(s, reference)))
    for kind, body in (("internal_note", "A D. Filomena Quintas ligou a insistir (Azevinho)."),
                       ("public_reply", "Cara Filomena, o candeeiro Girassol será reparado amanhã.")):  # fmt: skip
        assert (
            post_form(client, f"/intranet/crm/casos/{case_id}/mensagem", {"kind": kind, "body": body}).status_code
            == 303
        )
    client.cookies.clear()
    reply = post_form(client, f"/fale-connosco/acompanhar/{reference}", {"t": token, "body": "Obrigada! Gerânio."})
    assert reply.status_code == 303

    # Her record in the legacy CRM (another e-mail, no NIF) with a contact, merged into the current one.
    legacy = citizen(1, external_id="FQ-1", name="Filomena C. Quintas", nif="", email="fq.antiga@example.net",
                     phone="", address="Rua da Alfazema, 2")  # fmt: skip
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS, [legacy]))))
    contacts = [
        interaction(1, citizen_external_id="FQ-1", department_code="", staff_username="",
                    notes="Reclamação sobre a Alfazema do vizinho (Rosmaninho)."),
        interaction(2, citizen_nif=PERSON["nif"], channel="phone", department_code="", staff_username="",
                    notes="Telefonou a D. Filomena a perguntar pelo candeeiro."),
    ]  # fmt: skip
    ok(cli("crm", "import", "interactions", str(write_csv(tmp_path / "i.csv", INTERACTION_COLUMNS, contacts))))
    storage = LocalStorage(settings.storage_dir)
    staged = storage.stage()
    staged.write(LEGACY_PDF)
    storage.commit(staged)

    async def link(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.crm.models import Interaction

        main = (await session.execute(select(Citizen.id).where(Citizen.nif == PERSON["nif"]))).scalar_one()
        await session.execute(update(Citizen).where(Citizen.external_id == "FQ-1").values(merged_into_id=main))
        first = (
            await session.execute(select(Interaction.id).where(Interaction.external_id == "INT-00001"))
        ).scalar_one()
        session.add(InteractionFile(interaction_id=first, storage_key=staged.key, filename="carta-filomena.pdf",
                                    content_type="application/pdf", size=len(LEGACY_PDF)))  # fmt: skip

    run(_query(settings, link))
    return {"reference": reference, "other_reference": other_reference, "case_id": case_id, "pdf_key": staged.key}


# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------
def test_export_contains_everything_about_the_person_and_her_files(cli, settings, person, tmp_path):
    target = tmp_path / "filomena.zip"
    summary = as_json(ok(cli("crm", "gdpr", "export", "--citizen", PERSON["email"], "--output", str(target), "--json")))
    assert (summary["records"], summary["cases"], summary["files"], summary["missing_files"]) == (2, 1, 3, 0)
    with zipfile.ZipFile(target) as archive:
        data = json.loads(archive.read("data.json"))
        names = archive.namelist()
        case = data["cases"][0]
        by_name = {a["filename"]: a for a in case["attachments"]}
        assert archive.read(by_name["declaracao-filomena.pdf"]["file"]) == PDF
        assert archive.read(by_name["foto.png"]["file"]) == PNG
        letter = next(f for i in data["interactions"] for f in i["files"])
        assert archive.read(letter["file"]) == LEGACY_PDF
    assert len(names) == 4 and "data.json" in names
    assert {c["name"] for c in data["citizens"]} == {PERSON["name"], "Filomena C. Quintas"}
    main = next(c for c in data["citizens"] if c["nif"])
    assert (main["nif"], main["email"], main["phone"]) == (PERSON["nif"], PERSON["email"], "913456782")
    assert case["reference"] == person["reference"] and "Pirilampo" in case["description"]
    assert (case["latitude"], case["longitude"], case["location_text"]) == (38.7171, -9.1393, PERSON["address"])
    events = {e["kind"]: e for e in case["events"]}
    assert events["internal_note"]["internal"] is True and "Azevinho" in events["internal_note"]["body"]
    assert "Girassol" in events["public_reply"]["body"] and "Gerânio" in events["citizen_reply"]["body"]
    notes = " ".join(i["notes"] for i in data["interactions"])
    assert "Rosmaninho" in notes and "perguntar pelo candeeiro" in notes
    assert {m["to"] for m in data["messages"]} == {PERSON["email"]} and len(data["messages"]) == 2
    assert data["consents"] and all(c["granted"] for c in data["consents"])
    assert OTHER["name"] not in json.dumps(data, ensure_ascii=False) and "Malmequer" not in json.dumps(data)

    # The same by NIF, by id (of the merged-away record: the person's whole file), as JSON or on stdout.
    as_file = tmp_path / "filomena.json"
    ok(cli("crm", "gdpr", "export", "--citizen", PERSON["nif"], "-o", str(as_file)))
    assert json.loads(as_file.read_text(encoding="utf-8"))["cases"][0]["reference"] == person["reference"]
    legacy_id = person_ids(settings)["legacy"]
    printed = as_json(ok(cli("crm", "gdpr", "export", "--citizen", str(legacy_id))))
    assert len(printed["citizens"]) == 2 and printed["cases"][0]["reference"] == person["reference"]
    assert "crm.gdpr_export" in dump_database(settings)


# --------------------------------------------------------------------------------------------
# Erasure
# --------------------------------------------------------------------------------------------
def test_erase_leaves_no_personal_data_anywhere_and_keeps_the_statistics(cli, client, settings, person, tmp_path):
    storage_root = Path(settings.storage_dir)
    before_kpis = kpis(settings)
    before_dump = dump_database(settings)
    for word in PERSON_WORDS:  # the check below is meaningful: everything is there before
        assert word.lower() in before_dump.lower() or word.encode() in b"".join(d for _, d in dump_files(storage_root))
    ids = person_ids(settings)

    report = as_json(ok(cli("crm", "gdpr", "erase", "--citizen", PERSON["nif"], "--yes", "--json")))
    assert (report["citizens"], report["cases"], report["attachments"], report["interaction_files"]) == (2, 1, 2, 1)
    assert report["messages_deleted"] == 2 and report["stored_files_deleted"] == 2  # the photo is Bartolomeu's too

    text = dump_database(settings).lower()
    files = dump_files(storage_root)
    for word in PERSON_WORDS:
        assert word.lower() not in text, word
        assert not any(word.encode() in data for _, data in files), word
    assert PDF not in [d for _, d in files] and LEGACY_PDF not in [d for _, d in files]
    assert f"titular apagado #{ids['main']}" in text and f"titular apagado #{ids['legacy']}" in text
    assert f"crm.citizen_erased | crm.citizen:{ids['main']}" in text

    # Bartolomeu is untouched: record, case, message, mail, and the photo file he shares.
    for word in (OTHER["name"], OTHER["email"], "Malmequer", person["other_reference"]):
        assert word.lower() in text, word
    assert PNG in [d for _, d in files]
    assert kpis(settings) == before_kpis

    # The staff and the citizen's tracking link see a pseudonymised case.
    login(client, "chefe")
    page = client.get(f"/intranet/crm/casos/{person['case_id']}")
    assert page.status_code == 200 and "[apagado]" in page.text and "Pirilampo" not in page.text

    # Re-running the legacy import does not bring anything back.
    again = as_json(ok(cli("crm", "import", "citizens", str(tmp_path / "c.csv"), "--json")))
    assert (again["skipped"], again["updated"]) == (1, 0)
    contacts = as_json(ok(cli("crm", "import", "interactions", str(tmp_path / "i.csv"), "--json")))
    assert (contacts["skipped"], contacts["updated"], contacts["created"]) == (2, 0, 0)
    text = dump_database(settings).lower()
    assert not [w for w in PERSON_WORDS if w.lower() in text]


def test_erase_asks_first_and_unknown_people_are_one_line(cli, settings, person):
    answer_no = cli("crm", "gdpr", "erase", "--citizen", PERSON["email"], input="n\n")
    failed(answer_no, "nothing erased")
    assert PERSON["name"] in dump_database(settings)
    failed(cli("crm", "gdpr", "erase", "--citizen", PERSON["email"], "--json"), "--json needs --yes")
    failed(cli("crm", "gdpr", "erase", "--citizen", "ninguem@example.pt", "--yes"), "no citizen matches")
    failed(cli("crm", "gdpr", "export", "--citizen", make_nif(9999)), "no citizen matches")
    failed(cli("crm", "gdpr", "export", "--citizen", "Filomena"), "not a citizen id, a valid NIF or an e-mail")
    failed(cli("crm", "gdpr", "export", "--citizen", PERSON["email"], "-o", "dados.txt"), ".zip or .json")
    yes = cli("crm", "gdpr", "erase", "--citizen", PERSON["email"], input="y\n")
    assert "erased citizen #" in ok(yes).stdout
    assert PERSON["name"] not in dump_database(settings)


def test_two_records_with_one_email_must_be_told_apart(cli, settings, tmp_path):
    shared = "familia.moura@example.pt"
    rows = [citizen(1, email=shared, name="Rui Moura"), citizen(2, email=shared, name="Sara Moura")]
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS, rows))))
    failed(cli("crm", "gdpr", "erase", "--citizen", shared, "--yes"), "matches 2 citizen records")
    assert "Rui Moura" in dump_database(settings) and "Sara Moura" in dump_database(settings)


# --------------------------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------------------------
def ago(years: float) -> str:
    return (datetime.now(UTC) - timedelta(days=round(365.25 * years))).strftime("%Y-%m-%d")


def test_purge_erases_only_old_inactive_people_without_open_cases(cli, client, settings, tmp_path, make_user):
    from concelho.plugins.crm.models import Case, Citizen, Interaction
    from sqlalchemy import select, update

    people = [
        citizen(1, name="Aurélio Velho Antunes", created_at=ago(9)),  # last contact 7 years ago: erased
        citizen(2, name="Benedita Aberta Fontes", created_at=ago(9)),  # old, but her case is still open: kept
        citizen(3, name="Custódio Fechado Lemos", created_at=ago(9)),  # old closed case: erased
        citizen(4, name="Dália Recente Pinto", created_at=ago(9)),  # contact last year: kept
        citizen(5, name="Dália R. Pinto", created_at=ago(9)),  # Dália's old duplicate, merged: kept with her
        citizen(6, name="Aurélio V. Antunes", created_at=ago(8)),  # Aurélio's duplicate, merged: erased with him
        citizen(7, name="Eduardo Novo Sequeira", created_at=""),  # just imported: kept
    ]
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS, people))))
    contacts = [
        interaction(1, citizen_external_id="LEG-00001", occurred_at=ago(7), department_code="", staff_username=""),
        interaction(2, citizen_external_id="LEG-00004", occurred_at=ago(1), department_code="", staff_username=""),
    ]
    ok(cli("crm", "import", "interactions", str(write_csv(tmp_path / "i.csv", INTERACTION_COLUMNS, contacts))))
    open_ref, _ = send_form(client, [], description="Pedido antigo ainda aberto.", name="Benedita Aberta Fontes",
                            nif=make_nif(2), email="benedita@example.pt")  # fmt: skip
    closed_ref, _ = send_form(client, [], description="Pedido antigo já fechado.", name="Custódio Fechado Lemos",
                              nif=make_nif(3), email="custodio@example.pt")  # fmt: skip
    old = datetime.now(UTC) - timedelta(days=365 * 7)

    async def age(session):  # type: ignore[no-untyped-def]
        ids = {c.external_id: c.id for c in (await session.execute(select(Citizen))).scalars()}
        await session.execute(update(Citizen).where(Citizen.external_id == "LEG-00005").values(
            merged_into_id=ids["LEG-00004"]))  # fmt: skip
        await session.execute(update(Citizen).where(Citizen.external_id == "LEG-00006").values(
            merged_into_id=ids["LEG-00001"]))  # fmt: skip
        for reference, status in ((open_ref, "in_progress"), (closed_ref, "closed")):
            case_id = await _case_id(session, reference)
            await session.execute(update(Case).where(Case.id == case_id).values(
                status=status, created_at=old, updated_at=old))  # fmt: skip
            await session.execute(update(Interaction).where(Interaction.case_id == case_id).values(occurred_at=old))
        return ids

    ids = run(_query(settings, age))
    before = dump_database(settings)

    dry = as_json(ok(cli("crm", "gdpr", "purge", "--dry-run", "--json")))
    assert (dry["people"], dry["records"], dry["kept_open_case"], dry["retention_years"]) == (2, 3, 1, 5)
    assert dump_database(settings) == before

    done = as_json(ok(cli("crm", "gdpr", "purge", "--json")))
    assert (done["people"], done["records"], done["erased"]["citizens"], done["erased"]["cases"]) == (2, 3, 3, 1)
    text = dump_database(settings)
    for gone in ("Aurélio", "Custódio", "custodio@example.pt", "Pedido antigo já fechado"):
        assert gone not in text, gone
    for kept in ("Benedita Aberta Fontes", "Pedido antigo ainda aberto", "Dália Recente Pinto", "Dália R. Pinto",
                 "Eduardo Novo Sequeira"):  # fmt: skip
        assert kept in text, kept
    assert all(f"Titular apagado #{ids[e]}" in text for e in ("LEG-00001", "LEG-00003", "LEG-00006"))
    assert as_json(ok(cli("crm", "gdpr", "purge", "--json")))["people"] == 0
    assert "erase" in ok(cli("crm", "gdpr", "purge", "--years", "1", "--dry-run")).stdout


def test_retention_setting_and_daily_job(cli, settings, tmp_path):
    from concelho.plugins.crm.gdpr import RETENTION_MARKER, retention_job
    from concelho.suite.app import create_app
    from concelho.suite.models import KeyValue
    from sqlalchemy import update

    config = tmp_path / "suite.toml"
    config.write_text("[plugins.crm]\nretention_years = 0\n", encoding="utf-8")
    failed(cli("crm", "gdpr", "purge", env={"SUITE_CONFIG": str(config)}), "retention is off")
    config.write_text('[plugins.crm]\nretention_years = "cinco"\n', encoding="utf-8")
    failed(cli("crm", "gdpr", "purge", env={"SUITE_CONFIG": str(config)}), "retention_years must be a whole number")

    rows = [citizen(1, name="Zulmira Antiga Neves", created_at=ago(12))]
    ok(cli("crm", "import", "citizens", str(write_csv(tmp_path / "c.csv", CITIZEN_COLUMNS, rows))))
    app = create_app(settings)
    state = app.state.suite
    assert retention_job in state.registry.get("crm").background_jobs()

    async def runs() -> list[int]:
        results = [await retention_job(state), await retention_job(state)]  # first run only notes the time
        async with state.database.session() as session:
            await session.execute(
                update(KeyValue)
                .where(KeyValue.namespace == RETENTION_MARKER[0], KeyValue.key == RETENTION_MARKER[1])
                .values(value=(datetime.now(UTC) - timedelta(days=2)).isoformat().encode())
            )
        results += [await retention_job(state), await retention_job(state)]
        await state.database.dispose()
        return results

    assert asyncio.run(runs()) == [0, 0, 1, 0]
    assert "Zulmira" not in dump_database(settings)
