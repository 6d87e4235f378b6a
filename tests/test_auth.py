"""Sign-in, sessions (rotation, fixation), CSRF, throttling, enumeration, audit."""

from __future__ import annotations

import pytest
from concelho.suite.db import sync_url
from sqlalchemy import create_engine, text

from .conftest import PASSWORD, csrf_token, login, post_form


def audit_actions(settings) -> list[str]:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT action FROM core_audit ORDER BY id"))]
    finally:
        engine.dispose()


def test_login_sets_hardened_session_cookie_and_opens_intranet(client, make_user, settings):
    make_user("maria")
    response = login(client, "maria")
    assert response.status_code == 303
    assert response.headers["location"] == "/intranet/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("suite_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in tests
    page = client.get("/intranet/")
    assert page.status_code == 200
    assert "Maria" in page.text
    assert "login" in audit_actions(settings)


def test_wrong_password_and_unknown_user_get_the_same_answer(client, make_user, settings):
    make_user("maria")
    client.cookies.set("suite_lang", "en", domain="testserver.local")  # the messages below are English
    wrong = login(client, "maria", "not-the-password")
    unknown = login(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong username or password." in wrong.text
    assert wrong.text.replace("nobody-here", "maria") == unknown.text.replace("nobody-here", "maria")
    assert 'value="maria"' in wrong.text  # the username typed is kept
    assert audit_actions(settings).count("login.failed") == 2


def test_session_id_is_rotated_at_login(client, make_user):
    make_user("maria")
    client.get("/login")
    client.cookies.set("suite_session", "attacker-chosen-session-id", domain="testserver.local")
    response = login(client, "maria")
    new_id = client.cookies.get("suite_session")
    assert response.status_code == 303
    assert new_id and new_id != "attacker-chosen-session-id"


def test_unissued_session_id_is_never_adopted(app, client, make_user):
    """Regression: a planted id must not become a session (fixation), and its cookie is cleared."""
    client.cookies.set("suite_session", "planted-by-attacker", domain="testserver.local")
    response = client.get("/intranet/", follow_redirects=False)
    assert response.status_code == 303
    assert any(
        c.startswith("suite_session=;") or c.startswith('suite_session="";')
        for c in response.headers.get_list("set-cookie")
    )
    # Logging in as the victim does not make the planted id valid.
    make_user("victim")
    fresh = client.__class__(app, base_url="http://testserver.local")
    with fresh:
        login(fresh, "victim")
        attacker = client.__class__(app, base_url="http://testserver.local")
        with attacker:
            attacker.cookies.set("suite_session", "planted-by-attacker", domain="testserver.local")
            assert attacker.get("/intranet/", follow_redirects=False).status_code == 303


def test_privilege_change_rotates_the_session(client, make_user, cli):
    make_user("maria")
    login(client, "maria")
    before = client.cookies.get("suite_session")
    assert client.get("/intranet/alerts/").status_code == 403
    result = cli("users", "set-roles", "maria", "--role", "employee", "--role", "admin")
    assert result.exit_code == 0, result.output
    response = client.get("/intranet/alerts/")
    after = client.cookies.get("suite_session")
    assert response.status_code == 200
    assert after and after != before
    stale = client.__class__(client.app, base_url="http://testserver.local")
    with stale:
        stale.cookies.set("suite_session", before, domain="testserver.local")
        assert stale.get("/intranet/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client, make_user, settings):
    make_user("maria")
    login(client, "maria")
    token = client.cookies.get("suite_session")
    response = post_form(client, "/logout")
    assert response.status_code == 303
    other = client.__class__(client.app, base_url="http://testserver.local")
    with other:
        other.cookies.set("suite_session", token, domain="testserver.local")
        assert other.get("/intranet/", follow_redirects=False).status_code == 303
    assert "logout" in audit_actions(settings)


def test_post_without_csrf_token_is_refused(client, make_user):
    make_user("maria")
    client.cookies.set("suite_lang", "en", domain="testserver.local")  # the messages below are English
    csrf_token(client)
    response = client.post("/login", data={"username": "maria", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert "Reload the page" in response.text
    assert client.cookies.get("suite_session") is None


def test_htmx_requests_send_the_token_in_a_header(client, make_user):
    make_user("boss", roles=["admin", "employee"])
    login(client, "boss")
    page = client.get("/intranet/alerts/")
    token = client.cookies.get("suite_csrf")
    assert f'"x-csrftoken": "{token}"' in page.text  # hx-headers on <body>
    ok = client.post(
        "/intranet/alerts/",
        data={"message": "Teste", "level": "info"},
        headers={"x-csrftoken": token, "hx-request": "true"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    refused = client.post(
        "/intranet/alerts/",
        data={"message": "Teste", "level": "info"},
        headers={"hx-request": "true"},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_login_is_throttled_per_account(client, make_user, settings):
    make_user("maria")
    client.cookies.set("suite_lang", "en", domain="testserver.local")  # the messages below are English
    for _ in range(settings.login_max_failures_account):
        assert login(client, "maria", "wrong-password").status_code == 400
    blocked = login(client, "maria", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.text
    assert client.cookies.get("suite_session") is None
    assert "login.throttled" in audit_actions(settings)


def test_login_is_throttled_per_ip_across_accounts(tmp_path, database_url, make_user):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    from .conftest import settings_for

    settings = settings_for(tmp_path / "v", database_url, SUITE_LOGIN_MAX_FAILURES_IP="3")
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        for name in ("a1", "a2", "a3"):
            assert login(client, name, "wrong-password").status_code == 400
        make_user("maria")
        assert login(client, "maria", PASSWORD).status_code == 429


def test_disabled_user_cannot_sign_in_and_is_signed_out(client, make_user, cli):
    make_user("maria")
    login(client, "maria")
    assert client.get("/intranet/").status_code == 200
    assert cli("users", "disable", "maria").exit_code == 0
    assert client.get("/intranet/", follow_redirects=False).status_code == 303
    assert login(client, "maria").status_code == 400


def test_open_redirect_after_login_is_refused(client, make_user):
    make_user("maria")
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"username": "maria", "password": PASSWORD, "_csrf_token": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/intranet"


def test_audit_log_is_append_only(client, make_user, settings):
    from sqlalchemy.exc import DBAPIError

    make_user("maria")
    login(client, "maria")
    engine = create_engine(sync_url(settings.database_url))
    try:
        for statement in ("UPDATE core_audit SET action = 'forged'", "DELETE FROM core_audit"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    assert "forged" not in audit_actions(settings)


def test_secure_cookie_flag_when_served_over_https(tmp_path, database_url, make_user):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    from .conftest import settings_for

    settings = settings_for(tmp_path / "v", database_url, SUITE_BASE_URL="https://portal.example")
    with TestClient(create_app(settings), base_url="https://testserver.local") as client:
        make_user("maria")
        response = login(client, "maria")
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("suite_session="))
        assert "Secure" in cookie
        assert "strict-transport-security" in response.headers


def test_roles_granted_through_a_group_apply_and_rotate_sessions(client, make_user, cli):
    make_user("maria")
    login(client, "maria")
    before = client.cookies.get("suite_session")
    assert client.get("/intranet/alerts/").status_code == 403
    assert cli("groups", "create", "protecao-civil", "--label", "Proteção Civil").exit_code == 0
    assert cli("groups", "set-roles", "protecao-civil", "--role", "admin").exit_code == 0
    assert cli("groups", "add-member", "protecao-civil", "maria").exit_code == 0
    assert client.get("/intranet/alerts/").status_code == 200
    assert client.cookies.get("suite_session") != before
    listing = cli("groups", "list", "--json")
    assert '"members": [\n      "maria"\n    ]' in listing.stdout
    assert cli("groups", "remove-member", "protecao-civil", "maria").exit_code == 0
    assert client.get("/intranet/alerts/").status_code == 403
    unknown = cli("groups", "add-member", "nao-existe", "maria")
    assert unknown.exit_code == 1 and "no group named" in unknown.output


def test_first_visit_gets_the_csrf_cookie_litestar_would_set(client, app):
    """The suite's CSRF middleware builds the Set-Cookie header once; it must equal Litestar's own."""
    from concelho.suite.security import SuiteCSRFMiddleware, csrf_config
    from litestar.middleware.csrf import CSRFMiddleware

    def litestar_header(config, token):  # type: ignore[no-untyped-def]
        message = {"type": "http.response.start", "headers": []}
        CSRFMiddleware(app=client.app, config=config)._set_cookie_if_needed(message, token)  # type: ignore[arg-type]
        return message["headers"]

    config = csrf_config(app)
    assert config is not None and config.cookie_name == "suite_csrf"
    response = client.get("/robots.txt")
    assert response.status_code == 200
    set_cookies = response.headers.get_list("set-cookie")
    assert len(set_cookies) == 1
    token = client.cookies.get("suite_csrf")
    assert token and set_cookies[0].startswith(f"suite_csrf={token};")
    assert [(b"set-cookie", set_cookies[0].encode())] == litestar_header(config, token)
    # A secure deployment's attributes come through the same way.
    secure = config.__class__(secret="s" * 32, cookie_name="c", cookie_secure=True, cookie_samesite="strict")
    mine = {"type": "http.response.start", "headers": []}
    SuiteCSRFMiddleware(app=client.app, config=secure)._set_cookie_if_needed(mine, "tok")  # type: ignore[arg-type]
    assert mine["headers"] == litestar_header(secure, "tok")
    assert b"Secure" in mine["headers"][0][1] and b"SameSite=strict" in mine["headers"][0][1]
    # A returning visitor (cookie already set) gets no new cookie.
    assert client.get("/robots.txt").headers.get_list("set-cookie") == []


def test_csrf_tokens_are_what_litestar_makes_and_checks(app):
    """New tokens: 32 random bytes in hex, then their HMAC-SHA256 under the secret (Litestar's format)."""
    from concelho.suite.security import SuiteCSRFMiddleware, csrf_config
    from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_hash

    config = csrf_config(app)
    assert config is not None
    ours = SuiteCSRFMiddleware(app=app, config=config)
    tokens = {ours.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 128 and int(token, 16) >= 0
        assert token[64:] == generate_csrf_hash(token=token[:64], secret=config.secret)
        # Litestar's own check accepts it as cookie and form value.
        assert CSRFMiddleware(app=app, config=config)._csrf_tokens_match(token, token)
