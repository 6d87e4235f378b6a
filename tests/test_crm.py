"""CRM (Fale Connosco): public form, tracking link, service requests, staff case desk, NIF checksum."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from concelho.plugins.crm import nif

from .conftest import csrf_token, login, post_form, run
from .test_services import import_rows, service

REFERENCE = re.compile(r"VM-\d{4}-\d{6}")
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def valid_form(**overrides: Any) -> dict[str, Any]:
    return {
        "topic": "Via pública e iluminação",
        "description": "Candeeiro apagado na Rua Direita.",
        "name": "Maria Silva",
        "email": "maria@example.org",
        "phone": "",
        "nif": "",
        "location_text": "Rua Direita, 12",
        "consent": "1",
        **overrides,
    }


def submit(client, **overrides: Any) -> Any:  # type: ignore[no-untyped-def]
    return post_form(client, "/fale-connosco/", valid_form(**overrides))


def tracking(response) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text
    match = re.fullmatch(
        r"/fale-connosco/acompanhar/(VM-\d{4}-\d{6})\?t=([^&]+)&recebido=1", response.headers["location"]
    )
    assert match, response.headers["location"]
    return match.group(1), match.group(2)


async def _outbox(settings) -> list[Any]:  # type: ignore[no-untyped-def]
    from concelho.suite.db import Database
    from concelho.suite.mail import MailMessage
    from sqlalchemy import select

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            return list((await session.execute(select(MailMessage).order_by(MailMessage.id))).scalars())
    finally:
        await database.dispose()


async def _setup_staff(settings, assignments: dict[str, str | None]) -> None:  # type: ignore[no-untyped-def]
    """Departments OBRAS and SOCIAL, a ``crm_agent`` role (crm.view) and users' departments."""
    from concelho.suite.db import Database
    from concelho.suite.models import Department, Role, User
    from sqlalchemy import select

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            ids = {}
            for code in ("OBRAS", "SOCIAL"):
                dept = Department(code=code, name=code.title())
                session.add(dept)
                await session.flush()
                ids[code] = dept.id
            session.add(Role(name="crm_agent", label="CRM agent", permissions=["intranet.access", "crm.view"]))
            await session.flush()
            for username, code in assignments.items():
                user = (await session.execute(select(User).where(User.username == username))).scalar_one()
                user.department_id = ids[code] if code else None
    finally:
        await database.dispose()


@pytest.fixture
def crm_settings(tmp_path, database_url):  # type: ignore[no-untyped-def]
    from .conftest import settings_for

    config = tmp_path / "suite.toml"
    config.write_text(
        '[plugins.crm]\nrate_limit = 4\ntopics = ["Via pública e iluminação|OBRAS|5", "Ação social|SOCIAL|10"]\n'
        '[plugins.services]\nrequest_url = "/pedidos/{code}"\n',
        encoding="utf-8",
    )
    return settings_for(tmp_path / "var", database_url, SUITE_CONFIG=str(config))


@pytest.fixture
def crm_client(crm_settings):  # type: ignore[no-untyped-def]
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    with TestClient(create_app(crm_settings), base_url="http://testserver.local") as test_client:
        yield test_client


# --------------------------------------------------------------------------------------------
# NIF
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["123456789", "PT 501 964 843", "999999990", "287024008"])
def test_valid_nifs(value):
    assert nif.is_valid(value)


@pytest.mark.parametrize("value", ["123456780", "12345678", "1234567890", "abcdefghi", "", "400000000", "999999999"])
def test_invalid_nifs(value):
    assert not nif.is_valid(value)


# --------------------------------------------------------------------------------------------
# Citizen side
# --------------------------------------------------------------------------------------------
def test_invalid_form_keeps_the_input_with_messages(client):
    page = client.get("/fale-connosco/")
    assert page.status_code == 200 and "<h1>" in page.text
    response = submit(client, description="", consent="", nif="123456780", email="not-an-email")
    assert response.status_code == 400
    assert "Maria Silva" in response.text and "Rua Direita, 12" in response.text and "123456780" in response.text
    for field in ("description", "consent", "nif", "email"):
        assert f'id="{field}-error"' in response.text
    assert 'value="Via pública e iluminação" selected' in response.text


def test_a_case_gets_a_reference_and_a_private_tracking_link(client, settings):
    reference, token = tracking(submit(client))
    page = client.get(f"/fale-connosco/acompanhar/{reference}?t={token}&recebido=1")
    assert page.status_code == 200
    assert reference in page.text and "Candeeiro apagado" in page.text and 'id="crm-received"' in page.text
    mails = run(_outbox(settings))
    assert [m.to for m in mails] == ["maria@example.org"]
    assert reference in mails[0].subject and f"t={token}" in mails[0].body
    second, _ = tracking(submit(client, description="Outro"))
    assert int(second[-6:]) == int(reference[-6:]) + 1
    assert REFERENCE.fullmatch(second)


def test_the_tracking_link_shows_only_its_case(client):
    reference, token = tracking(submit(client))
    other, other_token = tracking(submit(client, description="Segunda mensagem"))
    assert client.get(f"/fale-connosco/acompanhar/{reference}?t=wrong").status_code == 404
    assert client.get(f"/fale-connosco/acompanhar/{reference}").status_code == 404
    assert client.get(f"/fale-connosco/acompanhar/{other}?t={token}").status_code == 404
    assert client.get("/fale-connosco/acompanhar/VM-2000-000001?t=x").status_code == 404
    page = client.get(f"/fale-connosco/acompanhar/{other}?t={other_token}")
    assert "Segunda mensagem" in page.text and "Candeeiro apagado" not in page.text


def test_the_token_is_stored_only_as_a_hash(client, settings):
    from concelho.suite.db import Database
    from sqlalchemy import text

    _, token = tracking(submit(client))

    async def hashes() -> list[str]:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                return list((await session.execute(text("SELECT token_hash FROM crm_case"))).scalars())
        finally:
            await database.dispose()

    stored = run(hashes())
    assert token not in stored and len(stored[0]) == 64


def test_honeypot_creates_nothing(client, settings):
    response = submit(client, website="http://spam.example")
    assert response.status_code == 200
    assert "VM-" not in response.text
    assert run(_outbox(settings)) == []


def test_rate_limit_per_ip(crm_client):
    for _ in range(4):
        assert submit(crm_client).status_code == 303
    blocked = submit(crm_client)
    assert blocked.status_code == 429
    assert "Maria Silva" in blocked.text  # the input is kept


def test_attachments_are_sniffed_and_the_citizen_can_reply(client):
    token = csrf_token(client)
    data = {**valid_form(), "_csrf_token": token}
    bad = client.post(
        "/fale-connosco/",
        data=data,
        files={"files": ("x.pdf", b"MZ not a pdf", "application/pdf")},
        follow_redirects=False,
    )
    assert bad.status_code == 400 and 'id="files-error"' in bad.text and "Maria Silva" in bad.text
    ok = client.post(
        "/fale-connosco/", data=data, files={"files": ("foto.png", PNG, "image/png")}, follow_redirects=False
    )
    reference, tok = tracking(ok)
    page = client.get(f"/fale-connosco/acompanhar/{reference}?t={tok}")
    link = re.search(r'href="(/fale-connosco/acompanhar/[^"]+/anexos/\d+\?t=[^"]+)"', page.text)
    assert link, page.text
    file = client.get(link.group(1).replace("&amp;", "&"))
    assert file.status_code == 200 and file.content == PNG
    assert client.get(link.group(1).split("?")[0] + "?t=wrong").status_code == 404
    reply = post_form(client, f"/fale-connosco/acompanhar/{reference}", {"t": tok, "body": "Mais informação."})
    assert reply.status_code == 303
    assert "Mais informação." in client.get(f"/fale-connosco/acompanhar/{reference}?t={tok}").text
    assert post_form(client, f"/fale-connosco/acompanhar/{reference}", {"t": "bad", "body": "x"}).status_code == 404


def test_online_service_request_with_fields_from_the_service(cli, tmp_path, crm_client):
    fields = [
        "kind|Tipo de ocorrência|choice|required|Buraco;Candeeiro",
        "when|Desde quando|date|optional",
        "count|Quantos|number",
        "extras|Também|multichoice|optional|Lixo;Sinal",
        "photo|Fotografia|file",
    ]
    import_rows(cli, tmp_path, [service("OCORR", request_fields=fields), service("PRES", online=False)])
    assert 'href="/pedidos/OCORR"' in crm_client.get("/servicos/ocorr").text
    assert crm_client.get("/pedidos/PRES").status_code == 404
    assert crm_client.get("/pedidos/NADA").status_code == 404
    form = crm_client.get("/pedidos/OCORR")
    assert form.status_code == 200 and "Serviço OCORR" in form.text and 'name="x_kind"' in form.text
    assert 'name="x_photo" type="file"' in form.text
    bad = post_form(crm_client, "/pedidos/OCORR", valid_form(topic="", x_kind="Outro", x_when="ontem", x_count="12"))
    assert bad.status_code == 400
    assert 'id="x_kind-error"' in bad.text and 'id="x_when-error"' in bad.text and 'value="ontem"' in bad.text
    assert 'value="12"' in bad.text and "Maria Silva" in bad.text
    good = post_form(
        crm_client,
        "/pedidos/OCORR",
        valid_form(topic="", x_kind="Buraco", x_when="2026-11-01", x_count="3", x_extras=["Lixo", "Sinal"]),
        files={"x_photo": ("foto.png", PNG, "image/png")},
    )
    reference, token = tracking(good)
    page = crm_client.get(f"/fale-connosco/acompanhar/{reference}?t={token}").text
    assert "Serviço OCORR" in page and "Tipo de ocorrência: Buraco" in page and "Também: Lixo, Sinal" in page
    assert "foto.png" in page


# --------------------------------------------------------------------------------------------
# Staff side
# --------------------------------------------------------------------------------------------
def test_staff_need_crm_view_and_see_their_department(crm_client, crm_settings, make_user):
    make_user("plain", ["employee"])
    run(_setup_staff(crm_settings, {}))
    make_user("agente", ["employee", "crm_agent"])
    make_user("social", ["employee", "crm_agent"])
    make_user("chefe", ["admin"])
    run(_setup_staff_departments(crm_settings, {"agente": "OBRAS", "social": "SOCIAL"}))
    reference, token = tracking(submit(crm_client))  # routed to OBRAS by its topic

    assert crm_client.get("/intranet/crm/casos", follow_redirects=False).status_code in (401, 302, 303)
    login(crm_client, "plain")
    for path in ("/intranet/crm/casos", "/intranet/crm/casos/1", "/intranet/crm/anexos/1"):
        assert crm_client.get(path, follow_redirects=False).status_code == 403, path
    assert post_form(crm_client, "/intranet/crm/casos/1/mensagem", {"body": "x"}).status_code == 403

    crm_client.cookies.clear()
    login(crm_client, "social")
    listing = crm_client.get("/intranet/crm/casos")
    assert listing.status_code == 200 and reference not in listing.text
    assert crm_client.get("/intranet/crm/casos/1").status_code == 404

    crm_client.cookies.clear()
    login(crm_client, "agente")
    listing = crm_client.get("/intranet/crm/casos")
    assert reference in listing.text
    detail = crm_client.get("/intranet/crm/casos/1")
    assert detail.status_code == 200 and "maria@example.org" in detail.text

    note = post_form(
        crm_client, "/intranet/crm/casos/1/mensagem", {"body": "Nota interna secreta", "kind": "internal_note"}
    )
    assert note.status_code == 303
    reply = post_form(
        crm_client, "/intranet/crm/casos/1/mensagem", {"body": "Já foi reparado.", "kind": "public_reply"}
    )
    assert reply.status_code == 303
    public = crm_client.get(f"/fale-connosco/acompanhar/{reference}?t={token}").text
    assert "Já foi reparado." in public and "Nota interna secreta" not in public
    mails = run(_outbox(crm_settings))
    assert mails[-1].to == "maria@example.org" and "Já foi reparado." in mails[-1].body
    assert len(mails) == 2  # confirmation + the public reply, nothing for the internal note

    assert post_form(crm_client, "/intranet/crm/casos/1/estado", {"status": "closed"}).status_code == 303
    assert post_form(crm_client, "/intranet/crm/casos/1/estado", {"status": "answered"}).status_code == 400
    assert post_form(crm_client, "/intranet/crm/casos/1/atribuir", {"assignee": "chefe"}).status_code == 403

    crm_client.cookies.clear()
    login(crm_client, "chefe")
    assert reference in crm_client.get("/intranet/crm/casos").text


async def _setup_staff_departments(settings, assignments: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
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


def test_references_are_unique_under_concurrency(settings):
    from concelho.plugins.crm.services import next_reference
    from concelho.suite.db import Database

    async def many() -> list[str]:
        database = Database(settings.database_url)

        async def one() -> str:
            async with database.session() as session:
                return await next_reference(session, "VM", 2031)

        try:
            return list(await asyncio.gather(*(one() for _ in range(6))))
        finally:
            await database.dispose()

    refs = run(many())
    assert sorted(refs) == [f"VM-2031-{n:06d}" for n in range(1, 7)]


def test_overdue_cases_are_highlighted(crm_client, crm_settings, make_user):
    from concelho.suite.db import Database
    from sqlalchemy import text

    make_user("chefe", ["admin"])
    first, _ = tracking(submit(crm_client))
    tracking(submit(crm_client, description="Ainda no prazo"))

    async def backdate() -> None:
        database = Database(crm_settings.database_url)
        try:
            async with database.session() as session:
                await session.execute(
                    text("UPDATE crm_case SET sla_due_at = :due WHERE reference = :ref"),
                    {"due": datetime(2020, 1, 1, tzinfo=UTC), "ref": first},
                )
        finally:
            await database.dispose()

    run(backdate())
    login(crm_client, "chefe")
    listing = crm_client.get("/intranet/crm/casos").text
    assert listing.count('class="crm-overdue"') == 1
    row = listing[listing.index('class="crm-overdue"') :]
    assert first in row[: row.index("</tr>")]
