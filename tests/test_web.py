"""The web layer over HTTP: security headers, HTMX fragments, languages, error pages, probes,
vendored static files and the HTML every page is built from (landmarks, CSP-safe markup, one <h1>)."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from concelho.suite.app import create_app
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from .conftest import csrf_token, login, post_form, settings_for

ROOT = Path(__file__).resolve().parents[1]
BASE_URL = "http://testserver.local"
URL_ATTRIBUTES = {"href", "src", "action", "formaction"}


# --------------------------------------------------------------------------------------------
# Reading HTML
# --------------------------------------------------------------------------------------------
class Page(HTMLParser):
    """Start tags with their attributes, the text of each <script> and the <h1> count of a document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self._script: tuple[dict[str, str], list[str]] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag == "script":
            self._script = (attributes, [])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None

    def find(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def csp_problems(self) -> list[str]:
        """Markup a CSP without 'unsafe-inline'/'unsafe-eval' would block (or that smuggles script)."""
        problems = []
        for attrs, text in self.scripts:
            if attrs.get("type", "").lower().endswith("json") and not attrs.get("src"):
                continue  # a data block (JSON-LD): never executed, not governed by script-src
            if not attrs.get("src") or text.strip():
                problems.append(f"inline <script>: {text.strip()[:60]!r}")
        problems += ["<style> element" for _ in self.find("style")]
        for tag, attrs in self.tags:
            for name, value in attrs.items():
                if name == "style" or name.startswith(("on", "hx-on")):
                    problems.append(f"<{tag} {name}={value[:40]!r}>")
                if name in URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
                    problems.append(f"<{tag} {name}={value!r}>")
        return problems


def check_page(response, label: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Problems of one full HTML page: inline script/style and anything but exactly one <h1>."""
    page = Page(response.text)
    problems = [f"{label}: {p}" for p in page.csp_problems()]
    if len(page.find("h1")) != 1:
        problems.append(f"{label}: {len(page.find('h1'))} <h1> elements")
    return problems


def assert_security_headers(response) -> None:  # type: ignore[no-untyped-def]
    csp = response.headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert directives.get("script-src") == ["'self'"], csp
    assert directives.get("object-src") == ["'none'"], csp
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy") == "strict-origin-when-cross-origin"
    assert response.headers.get("x-frame-options") == "DENY"


# --------------------------------------------------------------------------------------------
# Security headers and caching
# --------------------------------------------------------------------------------------------
def test_security_headers_on_pages_errors_and_static_files(client, make_user):
    page = client.get("/")
    assert page.status_code == 200
    assert_security_headers(page)

    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert_security_headers(missing)

    static = client.get("/static/core/suite.js")
    assert static.status_code == 200
    assert_security_headers(static)

    make_user("ana")  # a plain employee: no core.admin
    login(client, "ana")
    denied = client.get("/admin/", follow_redirects=False)
    assert denied.status_code == 403
    assert_security_headers(denied)

    api_missing = client.get("/api/nope")
    assert api_missing.status_code == 404
    assert_security_headers(api_missing)


def test_strict_transport_security_only_over_https(tmp_path, database_url):
    plain = client_for(settings_for(tmp_path / "plain", database_url))
    secure = client_for(settings_for(tmp_path / "tls", database_url, SUITE_BASE_URL="https://camara.example"))
    with plain, secure:
        assert "strict-transport-security" not in plain.get("/").headers
        assert secure.get("/").headers["strict-transport-security"].startswith("max-age=31536000")


def test_html_responses_vary_on_hx_request(client):
    for response in (client.get("/"), client.get("/accessibility"), client.get("/no/such/page")):
        vary = [part.strip().lower() for part in response.headers.get("vary", "").split(",")]
        assert "hx-request" in vary, response.url


# --------------------------------------------------------------------------------------------
# HTMX: fragments for hx-get/hx-post, whole pages for boosted links and history restores
# --------------------------------------------------------------------------------------------
def test_htmx_request_gets_only_the_content_block(client):
    full = client.get("/accessibility")
    fragment = client.get("/accessibility", headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert "<html" in full.text and "<main" in full.text
    for whole_page_only in ("<html", "<head", "<body", "<main", "<header", "<footer", "skip-link"):
        assert whole_page_only not in fragment.text, whole_page_only
    assert fragment.text.count("<h1>") == 1
    assert fragment.text.strip() in full.text  # exactly the page's content block


def test_boosted_and_history_restore_requests_get_the_whole_page(client):
    for extra in ({"hx-boosted": "true"}, {"hx-history-restore-request": "true"}):
        response = client.get("/accessibility", headers={"hx-request": "true", **extra})
        assert response.status_code == 200
        assert response.text.lstrip().lower().startswith("<!doctype html>"), extra
        assert '<main id="main"' in response.text


def test_htmx_error_is_a_fragment_too(client):
    response = client.get("/no/such/page", headers={"hx-request": "true"})
    assert response.status_code == 404
    assert "<html" not in response.text
    assert "<h1>Página não encontrada</h1>" in response.text


# --------------------------------------------------------------------------------------------
# Languages
# --------------------------------------------------------------------------------------------
def test_default_language_is_european_portuguese(client):
    response = client.get("/")
    assert '<html lang="pt-PT">' in response.text
    assert "suite_lang" not in response.headers.get("set-cookie", "")
    assert "Saltar para o conteúdo principal" in response.text


def test_lang_parameter_switches_language_and_is_remembered(client):
    response = client.get("/?lang=en")
    assert '<html lang="en">' in response.text
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("suite_lang="))
    assert cookie.startswith("suite_lang=en;")
    assert "Path=/" in cookie and "SameSite=lax" in cookie
    assert client.cookies.get("suite_lang") == "en"

    later = client.get("/accessibility")  # no parameter: the cookie keeps English
    assert '<html lang="en">' in later.text
    assert "<h1>Accessibility statement</h1>" in later.text

    back = client.get("/?lang=pt")
    assert '<html lang="pt-PT">' in back.text
    assert client.cookies.get("suite_lang") == "pt"


def test_accept_language_is_used_without_cookie_and_unknown_codes_are_ignored(client):
    assert '<html lang="en">' in client.get("/", headers={"accept-language": "en-GB,en;q=0.9"}).text
    unknown = client.get("/?lang=xx")
    assert '<html lang="pt-PT">' in unknown.text
    assert "suite_lang" not in unknown.headers.get("set-cookie", "")


def test_language_switch_links_point_at_the_current_page(client):
    page = Page(client.get("/accessibility").text)
    switch = {a.get("hreflang"): a for a in page.find("a") if a.get("hreflang")}
    assert switch["en"]["href"] == "/accessibility?lang=en"
    assert switch["pt"]["href"] == "/accessibility?lang=pt"
    assert switch["pt"].get("aria-current") == "true"


# --------------------------------------------------------------------------------------------
# Error pages
# --------------------------------------------------------------------------------------------
def test_friendly_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert [a for a in page.find("a") if a.get("href") == "/" and "Ir para a página inicial" in response.text]
    assert "<h1>Página não encontrada</h1>" in response.text
    assert "Traceback" not in response.text
    english = client.get("/no/such/page?lang=en")
    assert english.status_code == 404
    assert "<h1>Page not found</h1>" in english.text and "Go to the home page" in english.text


def test_api_404_is_json(client):
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status_code": 404, "detail": "Not Found"}


def test_sign_out_works_from_the_form_expired_page(client, make_user):
    """Regression: the CSRF-failure page had an empty token, so its own sign-out form was refused again."""
    make_user("boss", roles=["admin", "employee"])
    login(client, "boss")
    expired = client.post("/intranet/alerts/", data={"message": "Sem token"}, follow_redirects=False)
    assert expired.status_code == 403
    assert "O formulário expirou" in expired.text
    token = next(a["value"] for a in Page(expired.text).find("input") if a.get("name") == "_csrf_token")
    assert token == csrf_token(client)
    assert f'"x-csrftoken": "{token}"' in expired.text
    response = client.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/intranet/", follow_redirects=False).status_code == 303  # signed out


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------
def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) >= {"database", "storage", "search"}
    assert all(value == "ok" for value in body["checks"].values()), body


def test_readyz_503_when_storage_is_broken(tmp_path, database_url):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the storage folder should be")
    settings = settings_for(tmp_path / "var", database_url, SUITE_STORAGE_DIR=str(blocker / "files"))
    with client_for(settings) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["storage"].startswith("error")
        assert body["checks"]["database"] == "ok"
        assert client.get("/healthz").status_code == 200  # liveness does not depend on storage


def client_for(settings) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(settings), base_url=BASE_URL)


# --------------------------------------------------------------------------------------------
# Vendored static files
# --------------------------------------------------------------------------------------------
def test_vendored_htmx_matches_the_recorded_checksum(client):
    vendored = (ROOT / "static" / "VENDORED.md").read_text()
    row = next(line for line in vendored.splitlines() if line.startswith("| core/htmx.min.js |"))
    recorded = re.findall(r"\b[0-9a-f]{64}\b", row)
    assert len(recorded) == 1, row
    assert "2.0.11" in row
    response = client.get("/static/core/htmx.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert hashlib.sha256(response.content).hexdigest() == recorded[0]
    assert hashlib.sha256((ROOT / "static/core/htmx.min.js").read_bytes()).hexdigest() == recorded[0]


# --------------------------------------------------------------------------------------------
# The HTML of every page
# --------------------------------------------------------------------------------------------
def test_base_layouts_have_skip_link_and_landmarks(client, make_user):
    make_user("boss", roles=["admin", "employee"])
    portal = client.get("/").text
    login(client, "boss")
    intranet = client.get("/intranet/").text
    for html in (portal, intranet):
        page = Page(html)
        body_tags = [name for name, _ in page.tags[[n for n, _ in page.tags].index("body") + 1 :]]
        first_link = next(attrs for name, attrs in page.tags if name == "a")
        assert body_tags[0] == "a" and first_link == {"class": "skip-link", "href": "#main"}
        mains = page.find("main")
        assert len(mains) == 1 and mains[0]["id"] == "main"
        assert len(page.find("header")) == 1
        assert len(page.find("footer")) == 1
        assert page.find("nav") and all(nav.get("aria-label") for nav in page.find("nav"))
        assert html.index("skip-link") < html.index("<header") < html.index("<main") < html.index("<footer")


def get_routes_without_parameters(app) -> list[str]:  # type: ignore[no-untyped-def]
    paths = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and "GET" in route.methods and not route.path_parameters:
            paths.append(route.path)
    return sorted(paths)


def test_every_page_is_csp_safe_and_has_one_h1(client, make_user):
    """No inline <script>, <style>, style= or on*= attributes (the CSP would block them), one <h1>."""
    problems: list[str] = []
    checked: list[str] = []

    def check(response, label: str) -> None:  # type: ignore[no-untyped-def]
        assert response.status_code < 500, f"{label}: HTTP {response.status_code}"
        if response.headers.get("content-type", "").startswith("text/html"):
            checked.append(label)
            problems.extend(check_page(response, label))

    paths = get_routes_without_parameters(client.app)
    for path in paths:  # signed out: public pages, login redirects
        check(client.get(path), f"anonymous {path}")
    check(client.get("/no/such/page"), "404")
    check(client.get("/no/such/page?lang=en"), "404 en")
    check(post_form(client, "/login", {"username": "ghost", "password": "wrong"}), "login error")

    boss_id = make_user("boss", roles=["admin", "employee"])
    make_user("ana")
    login(client, "ana")
    check(client.get("/admin/"), "403")
    client.cookies.clear()

    login(client, "boss")
    raised = post_form(client, "/intranet/alerts/", {"message": "Estrada cortada", "level": "danger"})
    assert raised.status_code == 303  # so the banner is on the portal pages below
    for path in paths:
        check(client.get(path), f"admin {path}")
        check(client.get(f"{path}?lang=en"), f"admin {path} en")
    check(client.get(f"/admin/users/{boss_id}"), "user detail")
    check(client.get("/admin/users/999999"), "user 404")
    check(post_form(client, "/intranet/alerts/", {"message": "", "level": "nope"}), "alerts form errors")

    assert {
        "anonymous /",
        "anonymous /login",
        "admin /intranet",
        "admin /intranet/alerts",
        "admin /admin",
    } <= set(checked), checked
    assert not problems, "\n".join(problems)


def test_page_responses_send_what_litestars_own_response_would():
    """``HTMLResponse`` skips Litestar's serialisation path: same status, headers and body, byte for byte;
    with a cookie it takes Litestar's path (which sets it)."""
    import asyncio

    from concelho.suite.render import HTMLResponse
    from litestar import Request, Response
    from litestar.datastructures import Cookie
    from litestar.enums import MediaType

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"", "state": {}}
    request: Request = Request(scope)  # type: ignore[arg-type]

    async def sent(response: Response) -> list[dict]:
        messages: list[dict] = []

        async def send(message: dict) -> None:
            messages.append(message)

        await response.to_asgi_response(None, request)(scope, None, send)  # type: ignore[arg-type]
        return messages

    for status in (200, 404):
        kwargs = {"content": "<p>olá &amp; até já</p>", "status_code": status, "media_type": MediaType.HTML,
                  "headers": {"Vary": "HX-Request, Accept-Language, Cookie", "X-Extra": "1"}}  # fmt: skip
        ours, theirs = asyncio.run(sent(HTMLResponse(**kwargs))), asyncio.run(sent(Response(**kwargs)))
        assert ours == theirs and ours[1]["body"] == "<p>olá &amp; até já</p>".encode()
    cookie = Cookie(key="suite_lang", value="en", path="/")
    with_cookie = asyncio.run(sent(HTMLResponse(content="<p>x</p>", media_type=MediaType.HTML, cookies=[cookie])))
    headers = with_cookie[0]["headers"]
    assert any(name == b"set-cookie" and value.startswith(b"suite_lang=en") for name, value in headers)
