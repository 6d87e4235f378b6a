"""CRM citizens (staff side): intake dedupe, consents and contacts of every case, search, duplicate candidates and
merges, the citizen 360°, the counter screen, view logging, permissions, case merges and HTMX fragments."""

from __future__ import annotations

import re
from typing import Any

import pytest
from concelho.plugins.crm import citizens, services
from concelho.suite.i18n import LANG_COOKIE

from .browser_fixtures import broken_references, describe_violations, run_axe, sign_in
from .conftest import login, post_form, run

pytest_plugins = ["tests.browser_fixtures"]

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
MARIA_NIF = "212345672"
ANA_NIF = "198765436"
OTHER_NIF = "234567813"
LIGHTS = "Via pública e iluminação"
BASE = "/intranet/crm"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture
def cz_settings(tmp_path, database_url):  # type: ignore[no-untyped-def]
    from .conftest import settings_for

    config = tmp_path / "suite.toml"
    config.write_text(
        '[plugins.crm]\nrate_limit = 100\ntopics = ["Via pública e iluminação|OBRAS|5", "Ação social|SOCIAL|10", '
        '"Água e saneamento||3"]\n',
        encoding="utf-8",
    )
    return settings_for(tmp_path / "var", database_url, SUITE_CONFIG=str(config))


@pytest.fixture
def cz(cz_settings, make_user):  # type: ignore[no-untyped-def]
    """The app with departments OBRAS and SOCIAL, a ``crm_agent`` role and staff: ``obras`` and ``social``
    (agents of those departments), ``gestor`` (admin: crm.manage) and ``plain`` (no CRM permission)."""
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    run(_seed_departments(cz_settings))
    for username in ("obras", "social"):
        make_user(username, ["employee", "crm_agent"])
    make_user("gestor", ["admin"])
    make_user("plain", ["employee"])
    run(_place(cz_settings, {"obras": "OBRAS", "social": "SOCIAL", "gestor": "OBRAS"}))
    with TestClient(create_app(cz_settings), base_url="http://testserver.local") as client:
        client.cookies.set(LANG_COOKIE, "en")  # assertions read the English texts
        yield client


async def _seed_departments(settings) -> None:  # type: ignore[no-untyped-def]
    from concelho.suite.db import Database
    from concelho.suite.models import Department, Role

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            session.add_all(
                [Department(code="OBRAS", name="Obras Municipais"), Department(code="SOCIAL", name="Ação Social")]
            )
            session.add(Role(name="crm_agent", label="CRM agent", permissions=["intranet.access", "crm.view"]))
    finally:
        await database.dispose()


async def _place(settings, assignments: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
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


def sql(settings, statement: str, **params: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Rows of one SQL statement as dicts (writes are committed)."""
    from concelho.suite.db import Database
    from sqlalchemy import text

    async def go() -> list[dict[str, Any]]:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                result = await session.execute(text(statement), params)
                return [dict(row) for row in result.mappings()] if result.returns_rows else []
        finally:
            await database.dispose()

    return run(go())


def with_session(settings, work):  # type: ignore[no-untyped-def]
    """Run ``await work(session)`` in a committed session and return its result."""
    from concelho.suite.db import Database

    async def go() -> Any:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    return run(go())


def web_case(client, **overrides: Any) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Send the public contact form; returns (reference, tracking token)."""
    form = {
        "topic": LIGHTS,
        "description": "Candeeiro apagado na Rua Direita.",
        "name": "Maria Antónia Silva",
        "email": "maria.silva@example.pt",
        "phone": "",
        "nif": "",
        "location_text": "Rua Direita, 12",
        "consent": "1",
        **overrides,
    }
    response = post_form(client, "/fale-connosco/", form)
    assert response.status_code == 303, response.text
    match = re.search(r"/acompanhar/([A-Z]+-\d{4}-\d{6})\?t=([^&]+)", response.headers["location"])
    assert match
    return match.group(1), match.group(2)


def case_row(settings, reference: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return sql(settings, "SELECT * FROM crm_case WHERE reference = :r", r=reference)[0]


def citizen_rows(settings) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return sql(settings, "SELECT * FROM crm_citizen ORDER BY id")


def as_user(client, username: str) -> None:  # type: ignore[no-untyped-def]
    client.cookies.clear()
    client.cookies.set(LANG_COOKIE, "en")
    assert login(client, username).status_code in (302, 303)


def views(settings, citizen_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    rows = sql(
        settings,
        "SELECT details FROM core_audit WHERE action = 'crm.citizen_viewed' AND target = :t ORDER BY id",
        t=f"crm.citizen:{citizen_id}",
    )
    import json

    return [(r["details"] if isinstance(r["details"], dict) else json.loads(r["details"]))["screen"] for r in rows]


def counter_form(**overrides: Any) -> dict[str, Any]:
    return {
        "citizen_id": "",
        "channel": "phone",
        "direction": "in",
        "topic": "Água e saneamento",
        "service_code": "",
        "department_id": "",
        "notes": "",
        "occurred_at": "",
        **overrides,
    }


# --------------------------------------------------------------------------------------------
# Intake
# --------------------------------------------------------------------------------------------
def test_intake_reuses_the_citizen_by_nif_then_email_then_phone(cz, cz_settings):
    first, _ = web_case(cz, nif=MARIA_NIF)
    by_nif, _ = web_case(cz, nif=f"PT {MARIA_NIF}", email="outro.endereco@example.pt", phone="912 345 678")
    by_email, _ = web_case(cz, email="MARIA.SILVA@EXAMPLE.PT", name="Maria Silva")
    by_phone, _ = web_case(cz, email="", phone="+351 912345678")
    people = citizen_rows(cz_settings)
    assert len(people) == 1
    maria = people[0]
    # Empty fields are filled (the phone), recorded ones are kept (e-mail and name).
    assert maria["nif"] == MARIA_NIF and maria["phone"] == "912345678"
    assert maria["email"] == "maria.silva@example.pt" and maria["name"] == "Maria Antónia Silva"
    assert maria["name_folded"] == "maria antonia silva"
    for reference in (first, by_nif, by_email, by_phone):
        assert case_row(cz_settings, reference)["citizen_id"] == maria["id"]
    # The differing e-mail is not lost: the contact that opened the case says so, for the staff.
    note = sql(
        cz_settings,
        "SELECT i.notes FROM crm_interaction i JOIN crm_case c ON c.id = i.case_id WHERE c.reference = :r",
        r=by_nif,
    )[0]["notes"]
    assert "outro.endereco@example.pt" in note
    # Mail only ever goes to the address on record (the one the right of access and erasure know about).
    mails = sql(cz_settings, "SELECT * FROM core_mail_outbox ORDER BY id")
    assert [m["to"] for m in mails] == ["maria.silva@example.pt"] * 4
    assert by_nif in mails[1]["subject"] and by_phone in mails[3]["subject"]


def test_intake_creates_a_record_for_somebody_else(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    # Same e-mail but another NIF: another person (a shared family address), never merged silently.
    other, _ = web_case(cz, nif=OTHER_NIF, name="Rui Silva")
    stranger, _ = web_case(cz, name="João Gonçalves", email="joao.goncalves@example.pt")
    people = citizen_rows(cz_settings)
    assert [p["name"] for p in people] == ["Maria Antónia Silva", "Rui Silva", "João Gonçalves"]
    assert people[2]["name_folded"] == "joao goncalves"
    assert case_row(cz_settings, other)["citizen_id"] == people[1]["id"]
    assert case_row(cz_settings, stranger)["citizen_id"] == people[2]["id"]


def test_every_case_gets_its_consent_and_contact_rows(cz, cz_settings):
    reference, _ = web_case(cz, nif=MARIA_NIF, phone="912 345 678")

    async def open311_case(session: Any) -> int:
        data = services.CaseInput(
            topic="Buraco na via", description="Buraco grande.", name="Maria Silva", email="", phone="912345678",
            consent=True, channel="open311", service_code="BURACO",
        )  # fmt: skip
        case, _token = await services.create_case(session, data, prefix="VM")
        return int(case.id)

    open311_id = with_session(cz_settings, open311_case)
    web = case_row(cz_settings, reference)
    consents = sql(cz_settings, "SELECT * FROM crm_consent ORDER BY id")
    assert [(c["purpose"], c["granted"], c["channel"]) for c in consents] == [
        ("data_processing", True, "web"),
        ("data_processing", True, "open311"),
    ]
    assert {c["citizen_id"] for c in consents} == {web["citizen_id"]}  # the phone matched the same record
    contacts = sql(cz_settings, "SELECT * FROM crm_interaction ORDER BY id")
    assert [(i["case_id"], i["channel"], i["direction"]) for i in contacts] == [
        (web["id"], "web", "in"),
        (open311_id, "open311", "in"),
    ]
    obras = sql(cz_settings, "SELECT id FROM core_department WHERE code = 'OBRAS'")[0]["id"]
    assert contacts[0]["topic"] == LIGHTS and contacts[0]["department_id"] == obras
    assert contacts[1]["service_code"] == "BURACO"
    assert str(contacts[0]["occurred_at"])[:19] == str(web["created_at"])[:19]


def test_first_public_reply_sets_first_answered_at(cz, cz_settings):
    reference, _ = web_case(cz)
    case_id = case_row(cz_settings, reference)["id"]
    as_user(cz, "obras")
    post_form(cz, f"{BASE}/casos/{case_id}/mensagem", {"body": "Nota", "kind": "internal_note"})
    assert case_row(cz_settings, reference)["first_answered_at"] is None
    assert (
        post_form(cz, f"{BASE}/casos/{case_id}/mensagem", {"body": "Reparado.", "kind": "public_reply"}).status_code
        == 303
    )
    answered = case_row(cz_settings, reference)["first_answered_at"]
    assert answered is not None
    post_form(cz, f"{BASE}/casos/{case_id}/mensagem", {"body": "De novo.", "kind": "public_reply"})
    assert case_row(cz_settings, reference)["first_answered_at"] == answered


# --------------------------------------------------------------------------------------------
# Search, creation, duplicates
# --------------------------------------------------------------------------------------------
def test_search_by_nif_name_phone_and_email_with_pages(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF, phone="912 345 678")
    web_case(cz, name="José Gonçalves", email="jose.goncalves@example.pt")
    for n in range(30):
        sql(
            cz_settings,
            "INSERT INTO crm_citizen (name, name_folded, nif, email, phone, address, created_at, updated_at) "
            "VALUES (:n, :f, '', '', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            n=f"Munícipe {n:02d}",
            f=f"municipe {n:02d}",
        )
    as_user(cz, "obras")
    for query in (MARIA_NIF[:5], "912345678", "SILVA", "antónia", "MARIA.SILVA@"):
        page = cz.get(f"{BASE}/cidadaos", params={"q": query})
        assert page.status_code == 200 and "Maria Antónia Silva" in page.text, query
        assert "José Gonçalves" not in page.text, query
    assert "José Gonçalves" in cz.get(f"{BASE}/cidadaos", params={"q": "jose goncalves"}).text
    listing = cz.get(f"{BASE}/cidadaos", params={"q": "municipe"})
    rows = re.compile(r'href="/intranet/crm/cidadaos/\d+"')
    assert len(rows.findall(listing.text)) == 25 and "Munícipe 00" in listing.text
    assert 'rel="next"' in listing.text
    second = cz.get(f"{BASE}/cidadaos", params={"q": "municipe", "page": "2"})
    assert len(rows.findall(second.text)) == 5 and "Munícipe 29" in second.text
    assert "Nobody matches" in cz.get(f"{BASE}/cidadaos", params={"q": "ninguém assim"}).text


def test_duplicate_candidates(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF, phone="912345678")
    web_case(cz, name="Maria Antonia Silva", email="m.a.silva@example.pt")  # similar name only
    web_case(cz, name="Marta Sousa", email="marta@example.pt", phone="934 000 111")
    web_case(cz, name="Maria Antónia Silva", nif=OTHER_NIF, email="homonima@example.pt")  # another NIF: another person

    async def candidates(session: Any) -> list[tuple[str, list[str]]]:
        probe = citizens.CitizenInput(name="Maria A. Silva", nif=MARIA_NIF, phone="934000111").probe()
        return [(c.citizen.name, c.reasons) for c in await citizens.duplicate_candidates(session, probe)]

    found = with_session(cz_settings, candidates)
    assert found == [
        ("Maria Antónia Silva", ["Same NIF", "Similar name"]),
        ("Marta Sousa", ["Same phone"]),
        ("Maria Antonia Silva", ["Similar name"]),
    ]


def test_staff_create_a_citizen_with_validation_and_duplicate_check(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    as_user(cz, "obras")
    assert cz.get(f"{BASE}/cidadaos/novo").status_code == 200
    bad = post_form(cz, f"{BASE}/cidadaos/novo", {"name": "", "nif": "212345670", "email": "x@", "phone": "12"})
    assert bad.status_code == 400
    for field in ("name", "nif", "email", "phone"):
        assert f'id="{field}-error"' in bad.text
    assert 'value="212345670"' in bad.text and 'value="x@"' in bad.text
    form = {"name": "Maria Silva", "nif": "", "email": "", "phone": "", "address": "Rua Nova, 3, Vila Serena"}
    warned = post_form(cz, f"{BASE}/cidadaos/novo", form)
    assert warned.status_code == 409 and 'id="crm-duplicates"' in warned.text and "Maria Antónia Silva" in warned.text
    assert 'name="create_anyway"' in warned.text and "Rua Nova, 3, Vila Serena" in warned.text
    assert len(citizen_rows(cz_settings)) == 1
    created = post_form(cz, f"{BASE}/cidadaos/novo", {**form, "create_anyway": "1"})
    assert created.status_code == 303
    new_id = int(created.headers["location"].rsplit("/", 1)[1])
    row = next(p for p in citizen_rows(cz_settings) if p["id"] == new_id)
    assert row["name_folded"] == "maria silva" and row["address"] == "Rua Nova, 3, Vila Serena"
    assert sql(cz_settings, "SELECT action FROM core_audit WHERE target = :t", t=f"crm.citizen:{new_id}")[0] == {
        "action": "crm.citizen_created"
    }
    edited = post_form(
        cz, f"{BASE}/cidadaos/{new_id}/editar", {**form, "phone": "+351 961 222 333", "email": "maria.s@example.pt"}
    )
    assert edited.status_code == 303
    row = next(p for p in citizen_rows(cz_settings) if p["id"] == new_id)
    assert row["phone"] == "961222333" and row["email"] == "maria.s@example.pt"
    bad_edit = post_form(cz, f"{BASE}/cidadaos/{new_id}/editar", {**form, "nif": "999999999"})
    assert bad_edit.status_code == 400 and 'id="nif-error"' in bad_edit.text and 'value="999999999"' in bad_edit.text


def test_consents_are_recorded_and_withdrawn(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    maria = citizen_rows(cz_settings)[0]["id"]
    as_user(cz, "obras")
    url = f"{BASE}/cidadaos/{maria}/consentimentos"
    given = {"purpose": "newsletter", "granted": "1", "consent_channel": "counter", "consent_note": "Assinou."}
    assert post_form(cz, url, given).status_code == 303
    withdrawn = {"purpose": "data_processing", "granted": "0", "consent_channel": "letter", "consent_note": ""}
    assert post_form(cz, url, withdrawn).status_code == 303
    bad = post_form(cz, url, {"purpose": "spam", "granted": "1", "consent_channel": "pombo", "consent_note": "x"})
    assert bad.status_code == 400 and 'id="purpose-error"' in bad.text and 'id="consent_channel-error"' in bad.text
    rows = sql(
        cz_settings, "SELECT purpose, granted, channel FROM crm_consent WHERE citizen_id = :c ORDER BY id", c=maria
    )
    assert rows == [
        {"purpose": "data_processing", "granted": True, "channel": "web"},
        {"purpose": "newsletter", "granted": True, "channel": "counter"},
        {"purpose": "data_processing", "granted": False, "channel": "letter"},
    ]
    assert citizen_rows(cz_settings)[0]["consent_at"] is None
    page = cz.get(f"{BASE}/cidadaos/{maria}")
    consents = page.text[page.text.index('id="crm-consents"') :]
    assert "Withdrawn" in consents[: consents.index("</table>")]
    assert "Consent withdrawn" in page.text and "Assinou." in page.text


# --------------------------------------------------------------------------------------------
# Merging citizens
# --------------------------------------------------------------------------------------------
def test_merge_keeps_the_whole_history_and_redirects(cz, cz_settings):
    ana_ref, _ = web_case(cz, name="Ana Ferreira", nif=ANA_NIF, email="ana.ferreira@example.pt")
    dup_ref, _ = web_case(
        cz, name="Ana Ferreira", email="aferreira@example.pt", phone="913 456 789", description="Lixo por recolher."
    )
    ana, dup = (p["id"] for p in citizen_rows(cz_settings))
    dup_case = case_row(cz_settings, dup_ref)["id"]
    as_user(cz, "gestor")
    post_form(cz, f"{BASE}/casos/{dup_case}/mensagem", {"body": "Nota sobre o lixo", "kind": "internal_note"})
    page = cz.get(f"{BASE}/cidadaos/{ana}")
    assert page.status_code == 200 and 'id="crm-candidates"' in page.text
    assert f'href="{BASE}/cidadaos/{dup}/fundir?em={ana}"' in page.text

    confirm = cz.get(f"{BASE}/cidadaos/{dup}/fundir", params={"em": ana})
    assert confirm.status_code == 200 and "aferreira@example.pt" in confirm.text and ANA_NIF in confirm.text
    unconfirmed = post_form(cz, f"{BASE}/cidadaos/{dup}/fundir", {"into": ana})
    assert unconfirmed.status_code == 400 and 'id="crm-merge-error"' in unconfirmed.text
    merged = post_form(cz, f"{BASE}/cidadaos/{dup}/fundir", {"into": ana, "confirm": "1"})
    assert merged.status_code == 303 and merged.headers["location"] == f"{BASE}/cidadaos/{ana}?fundido={dup}"

    rows = {p["id"]: p for p in citizen_rows(cz_settings)}
    assert rows[dup]["merged_into_id"] == ana
    assert (
        rows[ana]["email"] == "ana.ferreira@example.pt" and rows[ana]["phone"] == "913456789"
    )  # filled, not overwritten
    for table in ("crm_case", "crm_interaction", "crm_consent"):
        assert {r["citizen_id"] for r in sql(cz_settings, f"SELECT citizen_id FROM {table}")} == {ana}, table  # noqa: S608
    audit = sql(
        cz_settings,
        "SELECT actor FROM core_audit WHERE action = 'crm.citizen_merged' AND target = :t",
        t=f"crm.citizen:{dup}",
    )
    assert audit == [{"actor": "gestor"}]

    redirect = cz.get(f"{BASE}/cidadaos/{dup}", follow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["location"] == f"{BASE}/cidadaos/{ana}"
    survivor = cz.get(f"{BASE}/cidadaos/{ana}?fundido={dup}").text
    timeline = survivor[survivor.index('id="crm-timeline"') :]
    assert ana_ref in timeline and dup_ref in timeline and "Nota sobre o lixo" in timeline
    assert "Duplicate record merged into this one" in timeline and "aferreira@example.pt" in timeline
    assert 'id="crm-merged"' in survivor and 'id="crm-candidates"' not in survivor
    # Merging again, or into a merged record, is refused.
    again = post_form(cz, f"{BASE}/cidadaos/{dup}/fundir", {"into": ana, "confirm": "1"})
    assert again.status_code == 409 and 'id="crm-merge-error"' in again.text


def test_two_different_nifs_are_never_merged(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    web_case(cz, nif=OTHER_NIF, email="outra@example.pt")
    first, second = (p["id"] for p in citizen_rows(cz_settings))
    as_user(cz, "gestor")
    refused = post_form(cz, f"{BASE}/cidadaos/{second}/fundir", {"into": first, "confirm": "1"})
    assert refused.status_code == 409 and "different NIFs" in refused.text
    assert all(p["merged_into_id"] is None for p in citizen_rows(cz_settings))


# --------------------------------------------------------------------------------------------
# The counter screen
# --------------------------------------------------------------------------------------------
def test_counter_registers_phone_contacts_found_by_nif_and_by_phone(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF, phone="912 345 678")
    maria = citizen_rows(cz_settings)[0]["id"]
    as_user(cz, "obras")
    empty = cz.get(f"{BASE}/balcao")
    assert empty.status_code == 200 and re.search(r'id="q"[^>]*autofocus', empty.text)

    by_nif = cz.get(f"{BASE}/balcao", params={"q": MARIA_NIF})
    assert f'name="citizen_id" value="{maria}" checked' in by_nif.text
    assert re.search(r'id="channel"[^>]*autofocus', by_nif.text)
    obras = str(sql(cz_settings, "SELECT id FROM core_department WHERE code = 'OBRAS'")[0]["id"])
    assert f'<option value="{obras}" selected>' in by_nif.text  # the agent's department by default
    saved = post_form(
        cz,
        f"{BASE}/balcao",
        counter_form(citizen_id=str(maria), notes="Ligou a perguntar pela fatura da água.", department_id=obras),
    )
    assert saved.status_code == 303
    assert re.fullmatch(rf"{BASE}/balcao\?registado=\d+&canal=phone", saved.headers["location"])
    done = cz.get(saved.headers["location"])
    assert 'id="crm-registered"' in done.text and "Maria Antónia Silva" in done.text
    assert '<option value="phone" selected>' in done.text and re.search(r'id="q"[^>]*autofocus', done.text)

    by_phone = cz.get(f"{BASE}/balcao", params={"q": "+351 912 345 678", "canal": "phone"})
    assert f'name="citizen_id" value="{maria}" checked' in by_phone.text
    second = post_form(
        cz, f"{BASE}/balcao", counter_form(citizen_id=str(maria), direction="out", notes="Devolvi a chamada.")
    )
    assert second.status_code == 303

    contacts = sql(cz_settings, "SELECT * FROM crm_interaction WHERE staff_id IS NOT NULL ORDER BY id")
    staff = sql(cz_settings, "SELECT id FROM core_user WHERE username = 'obras'")[0]["id"]
    assert [(c["citizen_id"], c["channel"], c["direction"], c["staff_id"]) for c in contacts] == [
        (maria, "phone", "in", staff),
        (maria, "phone", "out", staff),
    ]
    page = cz.get(f"{BASE}/cidadaos/{maria}").text
    timeline = page[page.index('id="crm-timeline"') :]
    assert timeline.index("Devolvi a chamada.") < timeline.index("Ligou a perguntar pela fatura da água.")
    assert timeline.count("crm-channel-phone") == 2 and timeline.count("crm-channel-web") == 1
    assert "Contact: Phone" in timeline


def test_counter_keeps_input_on_errors_and_quick_creates(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    maria = citizen_rows(cz_settings)[0]["id"]
    as_user(cz, "obras")
    nothing_chosen = post_form(cz, f"{BASE}/balcao", counter_form(notes="Sem cidadão"))
    assert nothing_chosen.status_code == 400 and 'id="citizen_id-error"' in nothing_chosen.text
    bad = post_form(
        cz,
        f"{BASE}/balcao",
        counter_form(
            citizen_id="new", new_name="", new_nif="212345670", topic="", notes="Texto que fica", channel="pombo"
        ),
    )
    assert bad.status_code == 400
    for field in ("new_name", "new_nif", "topic", "channel"):
        assert f'id="{field}-error"' in bad.text, field
    assert 'value="212345670"' in bad.text and "Texto que fica" in bad.text
    future = post_form(cz, f"{BASE}/balcao", counter_form(citizen_id=str(maria), occurred_at="2999-01-01T10:00"))
    assert future.status_code == 400 and 'id="occurred_at-error"' in future.text
    assert f'value="{maria}" checked' in future.text  # the picked citizen stays picked

    # A NIF already on record: choose it, or confirm a new record.
    clash = post_form(cz, f"{BASE}/balcao", counter_form(citizen_id="new", new_name="M. Silva", new_nif=MARIA_NIF))
    assert clash.status_code == 409 and f'name="citizen_id" value="{maria}"' in clash.text
    assert 'name="create_anyway"' in clash.text and 'value="M. Silva"' in clash.text
    assert sql(cz_settings, "SELECT COUNT(*) AS n FROM crm_interaction WHERE staff_id IS NOT NULL")[0]["n"] == 0

    quick = post_form(
        cz,
        f"{BASE}/balcao",
        counter_form(citizen_id="new", new_name="Luís Marques", new_phone="961 000 222", channel="counter"),
    )
    assert quick.status_code == 303
    luis = citizen_rows(cz_settings)[-1]
    assert (luis["name"], luis["phone"], luis["name_folded"]) == ("Luís Marques", "961000222", "luis marques")
    contact = sql(cz_settings, "SELECT * FROM crm_interaction WHERE citizen_id = :c", c=luis["id"])
    assert [(c["channel"], c["topic"]) for c in contact] == [("counter", "Água e saneamento")]
    # Searching a name prefills the quick-create name.
    assert (
        'id="new_name" name="new_name" type="text" maxlength="200" value="Ninguém Conhecido"'
        in cz.get(f"{BASE}/balcao", params={"q": "Ninguém Conhecido"}).text
    )


def test_counter_files_are_kept_and_checked(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    maria = citizen_rows(cz_settings)[0]["id"]
    as_user(cz, "obras")
    form = counter_form(citizen_id=str(maria), channel="letter", notes="Carta digitalizada.")
    rejected = post_form(cz, f"{BASE}/balcao", form, files={"files": ("carta.pdf", b"MZ nope", "application/pdf")})
    assert (
        rejected.status_code == 400 and 'id="files-error"' in rejected.text and "Carta digitalizada." in rejected.text
    )
    assert sql(cz_settings, "SELECT COUNT(*) AS n FROM crm_interaction WHERE channel = 'letter'")[0]["n"] == 0
    saved = post_form(cz, f"{BASE}/balcao", form, files={"files": ("carta.png", PNG, "image/png")})
    assert saved.status_code == 303
    page = cz.get(f"{BASE}/cidadaos/{maria}").text
    link = re.search(r'href="(/intranet/crm/interacoes/ficheiros/\d+)">carta.png', page)
    assert link, page
    download = cz.get(link.group(1))
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["cache-control"] == "private, no-store"


def test_open_a_case_from_a_counter_contact(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    maria = citizen_rows(cz_settings)[0]["id"]
    as_user(cz, "obras")
    post_form(
        cz, f"{BASE}/balcao", counter_form(citizen_id=str(maria), topic=LIGHTS, notes="Poste caído na Rua do Sol.")
    )
    contact = sql(cz_settings, "SELECT id FROM crm_interaction WHERE staff_id IS NOT NULL")[0]["id"]
    opened = post_form(cz, f"{BASE}/interacoes/{contact}/caso", {})
    assert opened.status_code == 303
    case = sql(cz_settings, "SELECT * FROM crm_case WHERE channel = 'phone'")[0]
    assert opened.headers["location"] == f"{BASE}/casos/{case['id']}"
    assert case["citizen_id"] == maria and case["description"] == "Poste caído na Rua do Sol." and case["sla_due_at"]
    assert sql(cz_settings, "SELECT case_id FROM crm_interaction WHERE id = :i", i=contact)[0]["case_id"] == case["id"]
    mail = sql(cz_settings, "SELECT * FROM core_mail_outbox ORDER BY id")[-1]
    assert mail["to"] == "maria.silva@example.pt" and case["reference"] in mail["subject"]
    assert f"/fale-connosco/acompanhar/{case['reference']}?t=" in mail["body"]
    twice = post_form(cz, f"{BASE}/interacoes/{contact}/caso", {})
    assert twice.status_code == 409 and "already opened" in twice.text


# --------------------------------------------------------------------------------------------
# Visibility, logging, permissions
# --------------------------------------------------------------------------------------------
def test_the_360_shows_other_departments_cases_without_their_history(cz, cz_settings):
    reference, _ = web_case(cz, nif=MARIA_NIF)  # routed to OBRAS
    case_id = case_row(cz_settings, reference)["id"]
    maria = citizen_rows(cz_settings)[0]["id"]
    as_user(cz, "obras")
    post_form(cz, f"{BASE}/casos/{case_id}/mensagem", {"body": "Nota reservada das obras", "kind": "internal_note"})
    mine = cz.get(f"{BASE}/cidadaos/{maria}").text
    assert f'href="{BASE}/casos/{case_id}"' in mine and "Nota reservada das obras" in mine
    as_user(cz, "social")
    theirs = cz.get(f"{BASE}/cidadaos/{maria}").text
    assert reference in theirs and f'href="{BASE}/casos/{case_id}"' not in theirs
    assert "Nota reservada das obras" not in theirs and "handled by another department" in theirs
    assert "Contact: Web" in theirs  # contacts are listed for everyone with crm.view


def test_every_view_of_a_citizen_record_is_logged(cz, cz_settings):
    reference, _ = web_case(cz, nif=MARIA_NIF)
    maria = citizen_rows(cz_settings)[0]["id"]
    case_id = case_row(cz_settings, reference)["id"]
    as_user(cz, "obras")
    assert cz.get(f"{BASE}/cidadaos", params={"q": "silva"}).status_code == 200  # a search list is not a record view
    assert views(cz_settings, maria) == []
    cz.get(f"{BASE}/cidadaos/{maria}")
    cz.get(f"{BASE}/cidadaos/{maria}/editar")
    cz.get(f"{BASE}/balcao", params={"cidadao": maria})
    cz.get(f"{BASE}/balcao", params={"q": MARIA_NIF})
    cz.get(f"{BASE}/casos/{case_id}")
    assert views(cz_settings, maria) == ["360", "edit", "counter", "counter", "case"]
    actors = sql(cz_settings, "SELECT DISTINCT actor FROM core_audit WHERE action = 'crm.citizen_viewed'")
    assert actors == [{"actor": "obras"}]


NEW_GETS = (
    "/cidadaos", "/cidadaos/novo", "/cidadaos/1", "/cidadaos/1/editar", "/cidadaos/1/fundir?em=2", "/balcao",
    "/balcao?q=212345672", "/interacoes/ficheiros/1",
)  # fmt: skip
NEW_POSTS = (
    "/cidadaos/novo", "/cidadaos/1/editar", "/cidadaos/1/consentimentos", "/cidadaos/1/fundir", "/balcao",
    "/interacoes/1/caso", "/casos/1/fundir",
)  # fmt: skip


def test_permissions_on_every_new_route(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    web_case(cz, nif=OTHER_NIF, email="outra@example.pt")
    for path in NEW_GETS:
        assert cz.get(BASE + path, follow_redirects=False).status_code in (401, 302, 303), path
    as_user(cz, "plain")
    for path in NEW_GETS:
        response = cz.get(BASE + path, follow_redirects=False)
        assert response.status_code == 403 and "Maria" not in response.text, path
    for path in NEW_POSTS:
        assert post_form(cz, BASE + path, {"name": "X", "into": "2", "confirm": "1"}).status_code == 403, path
    nav = cz.get("/intranet/").text
    assert f'href="{BASE}/cidadaos"' not in nav and f'href="{BASE}/balcao"' not in nav

    as_user(cz, "obras")  # an agent: citizens yes, merges no
    assert f'href="{BASE}/cidadaos"' in cz.get("/intranet/").text
    page = cz.get(f"{BASE}/cidadaos/1").text
    assert "/fundir" not in page
    assert cz.get(f"{BASE}/cidadaos/1/fundir?em=2").status_code == 403
    assert post_form(cz, f"{BASE}/cidadaos/1/fundir", {"into": "2", "confirm": "1"}).status_code == 403
    assert post_form(cz, f"{BASE}/casos/1/fundir", {"reference": "x", "confirm": "1"}).status_code == 403
    assert 'id="crm-case-merge"' not in cz.get(f"{BASE}/casos/1").text
    assert all(p["merged_into_id"] is None for p in citizen_rows(cz_settings))


# --------------------------------------------------------------------------------------------
# Merging duplicate cases
# --------------------------------------------------------------------------------------------
def test_case_merge_closes_the_duplicate_and_keeps_its_tracking_link(cz, cz_settings):
    survivor_ref, survivor_token = web_case(cz)
    dup_ref, dup_token = web_case(cz, description="O mesmo candeeiro apagado.")
    survivor, dup = case_row(cz_settings, survivor_ref), case_row(cz_settings, dup_ref)
    as_user(cz, "gestor")
    assert 'id="crm-case-merge"' in cz.get(f"{BASE}/casos/{dup['id']}").text
    unknown = post_form(cz, f"{BASE}/casos/{dup['id']}/fundir", {"reference": "VM-1999-000001", "confirm": "1"})
    assert unknown.status_code == 400 and 'id="crm-merge-error"' in unknown.text
    unconfirmed = post_form(cz, f"{BASE}/casos/{dup['id']}/fundir", {"reference": survivor_ref})
    assert unconfirmed.status_code == 400
    itself = post_form(cz, f"{BASE}/casos/{dup['id']}/fundir", {"reference": dup_ref, "confirm": "1"})
    assert itself.status_code == 409
    merged = post_form(cz, f"{BASE}/casos/{dup['id']}/fundir", {"reference": survivor_ref.lower(), "confirm": "1"})
    assert merged.status_code == 303 and merged.headers["location"] == f"{BASE}/casos/{survivor['id']}"

    dup = case_row(cz_settings, dup_ref)
    assert dup["merged_into_id"] == survivor["id"] and dup["status"] == "closed" and dup["closed_at"] is not None
    events = sql(cz_settings, "SELECT case_id, kind, body FROM crm_case_event ORDER BY id")
    assert (dup["id"], "status_change", "closed") in [tuple(e.values()) for e in events]
    assert any(e["case_id"] == dup["id"] and e["kind"] == "internal_note" and survivor_ref in e["body"] for e in events)
    assert any(e["case_id"] == survivor["id"] and e["kind"] == "internal_note" and dup_ref in e["body"] for e in events)
    assert sql(cz_settings, "SELECT target FROM core_audit WHERE action = 'crm.case_merged'") == [
        {"target": f"crm.case:{dup['id']}"}
    ]
    staff_page = cz.get(f"{BASE}/casos/{dup['id']}").text
    assert 'id="crm-merged-into"' in staff_page and 'id="crm-case-merge"' not in staff_page

    cz.cookies.clear()
    tracking = cz.get(f"/fale-connosco/acompanhar/{dup_ref}", params={"t": dup_token})
    assert tracking.status_code == 200 and 'id="crm-merged"' in tracking.text and survivor_ref in tracking.text
    assert "O mesmo candeeiro apagado." in tracking.text and survivor_token not in tracking.text
    assert cz.get(f"/fale-connosco/acompanhar/{survivor_ref}", params={"t": dup_token}).status_code == 404


# --------------------------------------------------------------------------------------------
# HTMX
# --------------------------------------------------------------------------------------------
def test_htmx_requests_get_fragments(cz, cz_settings):
    web_case(cz, nif=MARIA_NIF)
    as_user(cz, "obras")
    fragment = cz.get(f"{BASE}/cidadaos", params={"q": "silva"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div id="results"')
    assert "<html" not in fragment.text and "Maria Antónia Silva" in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    full = cz.get(f"{BASE}/cidadaos", params={"q": "silva"})
    assert "<html" in full.text and "<h1>" in full.text and "HX-Request" in full.headers["vary"]

    counter = cz.get(f"{BASE}/balcao", params={"q": "mar"}, headers={"HX-Request": "true"})
    assert counter.text.lstrip().startswith('<div id="counter-citizens"') and "<h1>" not in counter.text
    assert 'name="citizen_id"' in counter.text and "Maria Antónia Silva" in counter.text
    assert "HX-Request" in counter.headers["vary"]
    boosted = cz.get(f"{BASE}/balcao", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.text


# --------------------------------------------------------------------------------------------
# In Chromium (last in the module: the module-scoped browser keeps an event loop open in this thread)
# --------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("lang", ["pt", "en"])
def test_counter_flow_in_a_browser_is_keyboard_friendly_and_accessible(make_tab, axe_source, lang):
    import secrets

    from playwright.sync_api import expect

    def check(label: str) -> None:
        assert not broken_references(page), label
        violations = run_axe(page, axe_source)
        assert not violations, f"{label} ({lang}):\n" + describe_violations(violations)

    tab = make_tab(lang="en")  # sign_in() reads the English labels; ?lang= then keeps the language in a cookie
    page = tab.page
    sign_in(page)
    page.goto(f"{BASE}/balcao?lang={lang}")
    assert page.evaluate("document.activeElement.id") == "q"
    check("counter")
    name = "Teste " + "".join(secrets.choice("bcdfghjklmnprstvz") for _ in range(10)).title()
    phone = "96" + "".join(secrets.choice("0123456789") for _ in range(7))
    page.evaluate("document.querySelector('h1').dataset.kept = 'yes'")
    page.locator("#q").press_sequentially(name, delay=10)  # htmx follows the typing
    expect(page.locator("#new_name")).to_have_value(name)
    assert page.evaluate("document.querySelector('h1').dataset.kept") == "yes"  # not reloaded
    assert page.locator("#citizen-new").is_checked()
    page.locator("#new_phone").fill(phone)
    page.locator("#channel").select_option("phone")
    page.locator("#topic").fill("Água e saneamento")
    page.locator("#notes").fill("Pediu a segunda via da fatura.")
    with page.expect_navigation():
        page.locator("#topic").press("Enter")  # Enter saves
    assert page.locator("#crm-registered").count() == 1
    assert page.evaluate("document.activeElement.id") == "q"  # ready for the next person
    assert page.locator("#channel").input_value() == "phone"
    check("counter after saving")

    page.locator("#crm-registered a").first.click()
    page.wait_for_url("**/intranet/crm/cidadaos/*")
    assert "Pediu a segunda via da fatura." in page.locator("#crm-timeline").inner_text()
    check("citizen 360")

    page.goto(f"{BASE}/balcao?q={phone}")  # a phone of one record picks it at once
    assert page.locator("#counter-selected input[name=citizen_id]").is_checked()
    assert page.evaluate("document.activeElement.id") == "channel"

    page.goto(f"{BASE}/cidadaos/novo")
    page.locator("#name").fill(name)
    page.locator("#email").fill("nao-e-email")
    page.evaluate("document.querySelector('#crm-citizen-form').noValidate = true")  # the server's messages
    page.locator("#crm-citizen-form button[type=submit]").click()
    page.wait_for_selector("#email-error")
    check("citizen form with errors")
    page.locator("#email").fill("")
    page.locator("#crm-citizen-form button[type=submit]").click()
    page.wait_for_selector("#crm-duplicates")
    check("citizen form with duplicates")
    page.locator("#create_anyway").check()
    page.locator("#crm-citizen-form button[type=submit]").click()
    page.wait_for_selector("#crm-candidates")
    page.locator("#crm-candidates a[href*='/fundir']").first.click()
    page.wait_for_selector("#crm-merge")
    check("merge confirmation")
    page.locator("#confirm").check()
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#crm-merged")
    check("citizen 360 after a merge")
    page.goto(f"{BASE}/cidadaos?q={name}")
    check("citizens list")
    expected = re.compile(r"status of 40[09] .*/intranet/crm/cidadaos/novo\)$")  # the re-rendered forms
    assert [p for p in tab.problems() if not expected.search(p)] == []
