"""The alerts plugin end to end over HTTP: who may manage alerts, the form, the portal banner, audit."""

from __future__ import annotations

import re

from concelho.suite.db import sync_url
from sqlalchemy import create_engine, text

from .conftest import login, post_form
from .test_web import Page

MANAGE = "/intranet/alerts/"
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
ESCAPED_XSS = "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


def audit_rows(settings) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT action, actor, target FROM core_audit ORDER BY id"))
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def alert_count(settings) -> int:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM alerts_alert")).scalar_one())
    finally:
        engine.dispose()


def banner(html: str) -> str:
    """The alert region of a portal page ('' when there is none)."""
    match = re.search(r'<div class="alerts-banners".*?</div>\s*</div>\s*</div>', html, re.S)
    return match.group(0) if match else ""


def boss(client, make_user) -> None:  # type: ignore[no-untyped-def]
    make_user("boss", roles=["admin", "employee"])
    assert login(client, "boss").status_code == 303


def raise_alert(client, **fields: str):  # type: ignore[no-untyped-def]
    data = {"message": "", "message_en": "", "level": "warning", "link_url": "", "ends_at": "", **fields}
    return post_form(client, MANAGE, data)


# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------
def test_anonymous_visitors_are_sent_to_sign_in(client, settings):
    response = client.get(MANAGE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/intranet/alerts")
    posted = raise_alert(client, message="Anónimo")
    assert posted.status_code == 401
    assert alert_count(settings) == 0


def test_plain_employees_are_refused(client, make_user, settings):
    make_user("ana")  # role employee: intranet, but not alerts.manage
    login(client, "ana")
    response = client.get(MANAGE, follow_redirects=False)
    assert response.status_code == 403
    assert "<h1>Acesso negado</h1>" in response.text
    assert raise_alert(client, message="Não devia aparecer").status_code == 403
    assert alert_count(settings) == 0
    intranet = client.get("/intranet/")
    assert 'href="/intranet/alerts/"' not in intranet.text  # no menu entry either


# --------------------------------------------------------------------------------------------
# Raising and clearing through the form
# --------------------------------------------------------------------------------------------
def test_admin_raises_an_alert_that_shows_on_the_portal_in_both_languages(client, make_user, settings):
    boss(client, make_user)
    page = client.get(MANAGE)
    assert page.status_code == 200
    assert "<h1>Faixa de alerta</h1>" in page.text
    assert '<a href="/intranet/alerts/" aria-current="page">Alertas</a>' in page.text  # translated nav label
    assert banner(client.get("/").text) == ""

    response = raise_alert(
        client,
        message="Estrada municipal 2 cortada por queda de árvore.",
        message_en="Municipal road 2 closed by a fallen tree.",
        level="danger",
        link_url="/transito",
    )
    assert response.status_code == 303
    assert response.headers["location"] == MANAGE
    listed = client.get(MANAGE).text
    assert "Estrada municipal 2 cortada" in listed
    assert "<td>Perigo</td>" in listed and "<td>ativo</td>" in listed

    client.cookies.clear()  # what any visitor sees
    portuguese = banner(client.get("/").text)
    assert "Estrada municipal 2 cortada por queda de árvore." in portuguese
    assert "Municipal road 2" not in portuguese
    assert 'role="alert"' in portuguese  # danger is announced
    assert '<span class="visually-hidden">Perigo:</span>' in portuguese
    assert '<a href="/transito">Mais informações</a>' in portuguese

    english = banner(client.get("/?lang=en").text)
    assert "Municipal road 2 closed by a fallen tree." in english
    assert "Estrada municipal" not in english
    assert '<span class="visually-hidden">Danger:</span>' in english
    assert '<a href="/transito">More information</a>' in english

    accessibility = client.get("/accessibility?lang=pt").text  # every portal page, not only the home page
    assert "Estrada municipal 2 cortada" in banner(accessibility)


def test_english_banner_falls_back_to_the_portuguese_text(client, make_user):
    boss(client, make_user)
    assert raise_alert(client, message="Aviso amarelo de chuva.", level="info").status_code == 303
    assert "Aviso amarelo de chuva." in banner(client.get("/?lang=en").text)


def test_invalid_input_is_refused_with_inline_messages_and_keeps_what_was_typed(client, make_user, settings):
    boss(client, make_user)
    typed = {
        "message": "   ",
        "message_en": "Kept <English> text",
        "level": "purple",
        "link_url": "javascript:alert(1)",
        "ends_at": "amanhã à tarde",
    }
    response = raise_alert(client, **typed)
    assert response.status_code == 400
    html = response.text
    assert "Corrija os campos assinalados abaixo." in html
    assert "built-in method" not in html  # regression: errors.clear was the dict's clear method
    assert '<p class="field-error" id="message-error">Escreva a mensagem do alerta.</p>' in html
    assert "Escolha um dos níveis: informação, aviso ou perigo." in html
    assert "A ligação tem de ser um caminho local (/…) ou um endereço https://." in html
    assert "Indique a data e a hora no formato 2026-12-01T18:00." in html

    fields = {attrs.get("id"): attrs for attrs in Page(html).find("input") + Page(html).find("select")}
    for name in ("message", "level", "link_url", "ends_at"):
        field = fields.get(name) or next(a for a in Page(html).find("textarea") if a.get("id") == name)
        assert field.get("aria-invalid") == "true", name
        assert field.get("aria-describedby") == f"{name}-error", name
    assert fields["link_url"]["value"] == "javascript:alert(1)"
    assert fields["ends_at"]["value"] == "amanhã à tarde"
    assert ">Kept &lt;English&gt; text</textarea>" in html
    assert 'href="javascript:' not in html
    assert alert_count(settings) == 0
    assert banner(client.get("/").text) == ""

    past = raise_alert(client, message="Fim no passado", ends_at="2000-01-01T10:00")
    assert past.status_code == 400
    assert "O fim tem de ser no futuro." in past.text
    assert ">Fim no passado</textarea>" in past.text

    english = post_form(client, f"{MANAGE}?lang=en", {"message": "", "level": "warning"})
    assert english.status_code == 400
    assert "Write the alert message." in english.text
    assert "Please correct the fields marked below." in english.text
    assert alert_count(settings) == 0


def test_alert_text_and_link_are_escaped(client, make_user):
    boss(client, make_user)
    response = raise_alert(
        client, message=XSS, message_en=XSS, level="warning", link_url='/info" onmouseover="alert(1)'
    )
    assert response.status_code == 303
    for url in ("/", "/?lang=en", MANAGE):
        html = client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert ESCAPED_XSS in html, url
    portal = Page(client.get("/").text)
    links = [a for a in portal.find("a") if a.get("href", "").startswith("/info")]
    assert links == [{"href": '/info" onmouseover="alert(1)'}]  # one attribute, quotes escaped


def test_clearing_takes_the_banner_down_and_everything_is_audited(client, make_user, settings):
    boss(client, make_user)
    assert raise_alert(client, message="Corte de água na Rua Direita.", level="warning").status_code == 303
    assert "Corte de água" in banner(client.get("/").text)
    alert_id = int(re.search(r'action="/intranet/alerts/(\d+)/clear"', client.get(MANAGE).text).group(1))

    cleared = post_form(client, f"/intranet/alerts/{alert_id}/clear")
    assert cleared.status_code == 303
    assert cleared.headers["location"] == MANAGE
    assert banner(client.get("/").text) == ""
    assert banner(client.get("/?lang=en").text) == ""
    listed = client.get(f"{MANAGE}?lang=pt").text  # back to Portuguese (the cookie remembers English)
    assert "<td>retirado</td>" in listed
    assert f'action="/intranet/alerts/{alert_id}/clear"' not in listed  # nothing left to clear

    again = post_form(client, f"/intranet/alerts/{alert_id}/clear")  # already cleared: no second audit row
    assert again.status_code == 303
    gone = post_form(client, "/intranet/alerts/999999/clear")
    assert gone.status_code == 404
    assert '<div class="alert alert-error" role="alert">Este alerta já não existe.</div>' in gone.text
    assert "Corrija os campos" not in gone.text

    rows = [row for row in audit_rows(settings) if row[0].startswith("alerts.")]
    assert rows == [
        ("alerts.raised", "boss", f"alerts.alert:{alert_id}"),
        ("alerts.cleared", "boss", f"alerts.alert:{alert_id}"),
    ]
    audit_page = client.get("/admin/audit").text
    assert "alerts.raised" in audit_page and "alerts.cleared" in audit_page
