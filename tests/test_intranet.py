"""The employee home: corporate news with read receipts, notifications, the e-mail digest, the corpus import."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.app import create_app
from concelho.suite.plugins import PluginError, PluginRegistry
from litestar.testing import TestClient

from .conftest import login, post_form, settings_for
from .test_web import check_page
from .test_workspaces import BASE, as_user, build_spaces, db_run, sql

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "portal.jsonl"
NEWS = "/intranet/noticias"
NOTES = "/intranet/notificacoes"


def add_news(
    settings: Any,
    title: str,
    *,
    must_read: bool = False,
    status: str = "published",
    audience: str = "internal",
    body: str = "Texto da notícia.",
) -> dict[str, Any]:
    async def go(session: Any) -> dict[str, Any]:
        from concelho.plugins.intranet.plugin import NEWS as NEWS_TYPE
        from concelho.suite.content.service import ContentInput, save

        data = ContentInput(title=title, body=body, audience=audience, data={"must_read": must_read})
        item = await save(session, NEWS_TYPE, data, status=status, actor="test")
        return {"id": item.id, "slug": item.slug, "url": NEWS_TYPE.url_for(item)}

    return db_run(settings, go)


def notify(settings: Any, user_ids: list[int], kind: str, actor: str, text: str, url: str) -> None:
    async def go(session: Any) -> None:
        from concelho.plugins.intranet.services import notify as add

        await add(session, user_ids, kind, actor=actor, text=text, url=url)

    db_run(settings, go)


def emit(client: TestClient, event: str, **payload: Any) -> None:
    """Emit an event on the app's own bus, in the app's event loop (as a request handler would)."""
    client.blocking_portal.call(partial(client.app.state.suite.events.emit, event, **payload))


# --------------------------------------------------------------------------------------------
# The home page
# --------------------------------------------------------------------------------------------
def test_employee_home_brings_news_workspaces_activity_links_and_notifications(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    add_news(settings, "Nova política de passwords", must_read=True)
    add_news(settings, "Jantar de Natal")
    add_news(settings, "Rascunho secreto", status="draft")
    notify(settings, [spaces["users"]["member"]], "mention", "Eddie", "Prazo", "/intranet/espacos/x/avisos/1")
    as_user(client, "mara")
    home = client.get("/intranet/")
    assert home.status_code == 200 and check_page(home, "home") == []
    html = home.text
    must_section = html[html.index('id="must-read"') : html.index("</section>", html.index('id="must-read"'))]
    assert "Leia, por favor" in must_section and "Nova política de passwords" in must_section
    assert "Jantar de Natal" not in must_section
    for text in (
        "Notícias internas",
        "Jantar de Natal",
        "Os meus espaços de trabalho",
        "Clube de Leitura",
        "Gabinete Jurídico",
        "Atividade nos meus espaços de trabalho",
        "publicou um aviso",
        "Reunião de equipa",
        "Atalhos",
        'href="/intranet/espacos/"',
        "Eddie mencionou-o em “Prazo”",
        "Documentos recentes",
    ):
        assert text in html, text
    assert "Rascunho secreto" not in html
    assert 'id="notifications-count"' in html and "1 por ler" in html  # the header badge
    english = client.get("/intranet/?lang=en").text
    assert "Please read" in english and "Quick links" in english and "Eddie mentioned you in “Prazo”" in english
    # An outsider of the private workspace sees none of its activity.
    as_user(client, "nuno")
    outsider = client.get("/intranet/?lang=pt").text
    assert "Gabinete Jurídico" not in outsider and "Nova política de passwords" in outsider
    assert 'id="notifications-count"' not in outsider
    # The documents plugin's uploads (activity verb "uploaded") are the recent documents.
    db_run(settings, partial(_log_upload, spaces["private"]["id"], spaces["users"]["editor"]))
    as_user(client, "mara")
    docs = client.get("/intranet/").text
    section = docs[docs.index('id="home-docs-title"') : docs.index("</section>", docs.index('id="home-docs-title"'))]
    assert "Ata de março.pdf" in section
    as_user(client, "nuno")
    assert "Ata de março.pdf" not in client.get("/intranet/").text


async def _log_upload(workspace_id: int, actor_id: int, session: Any) -> None:
    from concelho.plugins.workspaces.services import log_activity

    await log_activity(session, workspace_id, actor_id, "uploaded", "Ata de março.pdf", "/intranet/espacos/x/doc")


def test_quick_links_follow_the_plugin_settings(tmp_path, database_url, make_user):
    config = tmp_path / "suite.toml"
    config.write_text(
        '[plugins.intranet]\nquick_links = [{label = "Recibos de vencimento", url = "https://rh.example/recibos"},'
        ' "Refeitório | /intranet/noticias/ementa"]\n',
        encoding="utf-8",
    )
    app = create_app(settings_for(tmp_path / "cfg", database_url, SUITE_CONFIG=str(config)))
    make_user("ana")
    with TestClient(app, base_url="http://testserver.local") as client:
        as_user(client, "ana")
        html = client.get("/intranet/").text
    links = html[html.index('id="home-links-title"') : html.index("</nav>", html.index('id="home-links-title"'))]
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', links) == [
        ("https://rh.example/recibos", "Recibos de vencimento"),
        ("/intranet/noticias/ementa", "Refeitório"),
    ]
    config.write_text('[plugins.intranet]\nquick_links = [{label = "Mau", url = "javascript:alert(1)"}]\n')
    with pytest.raises(PluginError, match=r"\[plugins.intranet\] quick_links"):
        PluginRegistry.from_settings(settings_for(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", SUITE_CONFIG=str(config)))


# --------------------------------------------------------------------------------------------
# Corporate news and must-read tracking
# --------------------------------------------------------------------------------------------
def test_must_read_items_record_who_read_them_and_the_publisher_sees_a_report(client, make_user, settings):
    ana, rui = make_user("ana"), make_user("rui")
    make_user("paula", roles=["publisher"])
    gone = make_user("velho")
    make_user("cidadao", roles=["editor"])  # editor role: intranet access too
    sql(settings, "UPDATE core_user SET is_active = :f WHERE id = :u", f=False, u=gone)
    must = add_news(settings, "Plano de segurança", must_read=True)
    plain = add_news(settings, "Feira do livro")
    draft = add_news(settings, "Ainda não", must_read=True, status="draft")
    public = add_news(settings, "Aberta ao público", audience="public")

    assert client.get(must["url"], follow_redirects=False).status_code == 303  # anonymous → sign in
    as_user(client, "ana")
    listing = client.get(NEWS)
    assert listing.status_code == 200 and check_page(listing, "news list") == []
    for title in ("Plano de segurança", "Feira do livro", "Aberta ao público"):
        assert title in listing.text
    assert "Ainda não" not in listing.text and "ainda não lida" in listing.text
    page = client.get(must["url"])
    assert page.status_code == 200 and check_page(page, "news") == [] and 'id="read-receipt"' in page.text
    client.get(must["url"])  # twice: still one receipt
    assert client.get(plain["url"]).status_code == 200
    assert client.get(f"{NEWS}/{draft['slug']}").status_code == 404
    assert client.get(f"{NEWS}/nao-existe").status_code == 404
    assert "Plano de segurança" not in client.get("/intranet/").text.split('id="home-news-title"')[0]
    assert client.get(f"{NEWS}/{must['id']}/leituras").status_code == 403  # employees: no report

    as_user(client, "rui")
    assert 'id="must-read"' in client.get("/intranet/").text
    confirmed = post_form(client, f"{NEWS}/{must['id']}/lido", {"next": "/intranet/"})
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/intranet/"
    assert 'id="must-read"' not in client.get("/intranet/").text
    assert post_form(client, f"{NEWS}/{draft['id']}/lido").status_code == 404
    evil = post_form(client, f"{NEWS}/{must['id']}/lido", {"next": "//evil.example/"})
    assert evil.headers["location"] == must["url"]

    receipts = sql(settings, "SELECT user_id, content_id FROM intranet_read_receipt ORDER BY user_id")
    assert receipts == [(ana, must["id"]), (rui, must["id"])]  # the plain item recorded nothing

    as_user(client, "paula")
    report = client.get(f"{NEWS}/{must['id']}/leituras")
    assert report.status_code == 200 and check_page(report, "report") == []
    read_part = report.text[report.text.index('id="read-table"') : report.text.index('id="unread-title"')]
    unread_part = report.text[report.text.index('id="unread-table"') :]
    assert "Ana" in read_part and "Rui" in read_part and "Paula" not in read_part
    assert "Paula" in unread_part and "Cidadao" in unread_part
    assert "Velho" not in report.text  # inactive accounts are not counted
    assert "2 de 4 trabalhadores já leram." in report.text
    assert client.get(f"{NEWS}/{public['id']}/leituras").status_code == 200
    assert client.get(f"{NEWS}/999999/leituras").status_code == 404
    assert "Quem já leu" in client.get(must["url"]).text
    # The back office opens intranet news as internal by default.
    form = client.get("/intranet/content/new?type=intranet.news").text
    assert '<option value="internal" selected>' in form


def test_internal_news_of_the_corpus_import_as_intranet_news(cli, client, make_user, settings):
    result = cli("content", "import", str(CORPUS), "--audience", "internal", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["created"] == 15 and summary["by_type"] == {"intranet.news": 15}
    assert summary["skipped"] == 205
    again = json.loads(cli("content", "import", str(CORPUS), "--audience", "internal", "--json").stdout)
    assert again["created"] == 0 and again["unchanged"] == 15
    rows = sql(settings, "SELECT type, audience, status FROM core_content WHERE external_id LIKE 'internal-%'")
    assert set(rows) == {("intranet.news", "internal", "published")} and len(rows) == 15
    make_user("ana")
    as_user(client, "ana")
    listing = client.get(NEWS).text
    assert "Página 1 de 2" in listing
    item = client.get(f"{NEWS}/novo-portal-do-trabalhador-ja-esta-disponivel-na-intranet")
    assert item.status_code == 200 and "Portal do Trabalhador" in item.text
    client.cookies.clear()
    assert "Portal do Trabalhador" not in client.get("/noticias").text  # never on the public portal


def test_only_the_news_rows_of_type_internal_are_intranet_news():
    from concelho.plugins.intranet.plugin import NEWS as NEWS_TYPE
    from concelho.suite.content.importer import _resolve_type

    types = {NEWS_TYPE.name: NEWS_TYPE}
    assert _resolve_type("internal", types, {"internal_kind": "news"}) is NEWS_TYPE
    assert _resolve_type("internal", types, {}) is NEWS_TYPE
    assert _resolve_type("internal", types, {"internal_kind": "document"}) is None
    assert _resolve_type("intranet.news", types, {"internal_kind": "document"}) is NEWS_TYPE


# --------------------------------------------------------------------------------------------
# Notifications
# --------------------------------------------------------------------------------------------
def test_mentions_and_replies_become_notifications(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    ws = spaces["private"]
    as_user(client, "eddie")
    posted = post_form(client, f"{BASE}/{ws['slug']}/avisos", {"title": "Prazo", "body": "@mara e @nuno, até sexta."})
    ann_url = posted.headers["location"]
    as_user(client, "nuno")  # not a member of the private workspace: not told
    assert client.get(NOTES).text.count('class="unread"') == 0
    as_user(client, "mara")
    page = client.get(NOTES)
    assert page.status_code == 200 and check_page(page, "notifications") == []
    assert "Eddie mencionou-o em “Prazo”" in page.text and 'id="notifications-count"' in page.text
    assert post_form(client, f"{ann_url}/comentarios", {"body": "Combinado."}).status_code == 303
    note_ids = dict(
        sql(
            settings,
            "SELECT u.username, n.id FROM intranet_notification n JOIN core_user u "
            "ON u.id = n.user_id WHERE n.kind = 'mention'",
        )
    )
    assert set(note_ids) == {"mara"}
    # The announcement's author hears of the reply.
    assert sql(
        settings,
        "SELECT u.username, n.kind, n.actor, n.text FROM intranet_notification n JOIN core_user u "
        "ON u.id = n.user_id WHERE n.kind = 'reply'",
    ) == [("eddie", "reply", "Mara", "Prazo")]
    opened = post_form(client, f"{NOTES}/{note_ids['mara']}", {"go": "1"})
    assert opened.status_code == 303 and opened.headers["location"] == ann_url
    assert 'id="notifications-count"' not in client.get(NOTES).text
    as_user(client, "eddie")
    assert post_form(client, f"{NOTES}/{note_ids['mara']}").status_code == 404  # not theirs
    assert "1 por ler" in client.get("/intranet/").text
    assert post_form(client, f"{NOTES}/lidas").status_code == 303
    assert sql(settings, "SELECT count(*) FROM intranet_notification WHERE read_at IS NULL") == [(0,)]


def test_new_documents_notify_the_members_of_their_workspace(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    users = spaces["users"]
    emit(
        client,
        "documents.created",
        workspace_id=spaces["private"]["id"],
        workspace_slug=SLUG,
        actor_id=users["editor"],
        document_id=7,
        title="Ata de março.pdf",
        url="/intranet/espacos/x/doc/7",
    )
    rows = sql(settings, "SELECT user_id, kind, actor, text, url FROM intranet_notification ORDER BY user_id")
    assert [r[0] for r in rows] == sorted([users["owner"], users["member"], users["viewer"]])
    assert {r[1:] for r in rows} == {("document", "Eddie", "Ata de março.pdf", "/intranet/espacos/x/doc/7")}
    # Only local addresses are kept; a listener never breaks on odd payloads.
    emit(client, "workspaces.mention", user_ids=[users["outsider"]], actor="X", title="Y", url="//evil.example/")
    emit(client, "documents.created")
    assert sql(settings, "SELECT url FROM intranet_notification WHERE user_id = :u", u=users["outsider"]) == [("",)]
    as_user(client, "vitor")
    assert "Eddie adicionou o documento “Ata de março.pdf”" in client.get(NOTES).text


SLUG = "gabinete-juridico"


# --------------------------------------------------------------------------------------------
# The e-mail digest
# --------------------------------------------------------------------------------------------
def test_digest_queues_one_mail_per_user_in_the_outbox(cli, make_user, settings):
    ana, john, rui = make_user("ana"), make_user("john"), make_user("rui")
    sql(settings, "UPDATE core_user SET language = 'en' WHERE id = :u", u=john)
    notify(settings, [ana, john], "mention", "Eddie", "Prazo", "/intranet/espacos/a/avisos/1")
    notify(settings, [ana], "document", "Olga", "Ata.pdf", "/intranet/espacos/a/doc/2")
    notify(settings, [rui], "reply", "Olga", "Já lido", "/x")
    sql(settings, "UPDATE intranet_notification SET read_at = created_at WHERE user_id = :u", u=rui)

    dry = json.loads(cli("intranet", "digest", "--dry-run", "--json").stdout)
    assert dry["queued"] == 0 and len(dry["digests"]) == 2
    assert sql(settings, "SELECT count(*) FROM core_mail_outbox") == [(0,)]

    result = cli("intranet", "digest", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queued"] == 2 and report["smtp"] is False
    assert {(d["username"], d["notifications"]) for d in report["digests"]} == {("ana", 2), ("john", 1)}
    mails = {
        to: (subject, body) for to, subject, body in sql(settings, 'SELECT "to", subject, body FROM core_mail_outbox')
    }
    subject, body = mails["ana@example.org"]
    assert "2 novas notificações" in subject
    assert "Eddie mencionou-o em “Prazo”" in body and "Olga adicionou o documento “Ata.pdf”" in body
    assert "http://127.0.0.1:8000/intranet/espacos/a/avisos/1" in body and "/intranet/notificacoes" in body
    subject, body = mails["john@example.org"]
    assert "1 new notification" in subject and "Eddie mentioned you in “Prazo”" in body
    assert "rui@example.org" not in mails  # read notifications are not mailed
    # Each notification is mailed once; the outbox is what `suite mail list` shows.
    again = json.loads(cli("intranet", "digest", "--json").stdout)
    assert again["queued"] == 0
    listed = json.loads(cli("mail", "list", "--json").stdout)
    assert {m["to"] for m in listed} == {"ana@example.org", "john@example.org"}
    assert all(m["sent_at"] is None for m in listed)  # no SMTP configured: kept in the outbox
    human = cli("intranet", "digest")
    assert human.exit_code == 0 and "no unread notifications" in human.stdout


def test_intranet_pages_need_the_intranet(client, make_user, settings):
    for path in (NEWS, f"{NEWS}/x", f"{NEWS}/1/leituras", NOTES):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/intranet/")
    outsider = make_user("fora")
    sql(settings, "DELETE FROM core_user_role WHERE user_id = :u", u=outsider)  # no role: no intranet
    login(client, "fora")
    for path in (NEWS, NOTES):
        assert client.get(path).status_code == 403
    assert post_form(client, f"{NOTES}/lidas").status_code == 403


def test_daily_digest_job_runs_only_with_smtp_and_once_a_day(settings, tmp_path, make_user):
    """The background job queues digests once a day when SMTP is configured, never without it."""
    import asyncio

    from concelho.plugins.intranet.services import daily_digest_job
    from concelho.suite.app import create_app

    from .conftest import settings_for

    without = create_app(settings).state.suite
    assert asyncio.run(daily_digest_job(without)) == 0
    with_smtp = create_app(
        settings_for(tmp_path / "smtp", settings.database_url, SUITE_SMTP_URL="smtp://localhost:2525")
    )
    state = with_smtp.state.suite

    user_id = make_user("maria")

    async def twice() -> tuple[int, int, bool]:
        from concelho.plugins.intranet.models import Notification

        async with state.database.sessionmaker() as session:
            session.add(
                Notification(user_id=user_id, kind="mention", actor="Ana", text="mentioned you", url="/intranet/")
            )
            await session.commit()
        first = await daily_digest_job(state)
        from concelho.suite.models import KeyValue
        from sqlalchemy import select

        async with state.database.sessionmaker() as session:
            marked = (
                await session.execute(select(KeyValue).where(KeyValue.key == "digest_sent_at"))
            ).scalar_one_or_none() is not None
        second = await daily_digest_job(state)
        await state.database.dispose()
        return first, second, marked

    first, second, marked = asyncio.run(twice())
    assert (first, second, marked) == (1, 0, True)  # one digest for maria; not again within the day
