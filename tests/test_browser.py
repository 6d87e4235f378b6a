"""Real Chromium (Debian's) through Playwright against the real server (``suite serve``).

The session starts one server on a throw-away data directory (``suite init`` + ``suite demo
load``, SQLite), exactly as the README's ``make demo`` does.  Without Chromium the tests are
skipped, unless ``SUITE_TEST_REQUIRE_BROWSER=1`` (CI) makes that an error.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SUITE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ADMIN_EMAIL = "admin@vilaserena.example"
ADMIN_PASSWORD = "browser-test-password-2026"
SUITE = Path(sys.executable).parent / "suite"
INTRANET_HOME = re.compile(r"/intranet/?$")
ALERTS_PAGE = re.compile(r"/intranet/alerts/?$")
SERVE_TIMEOUT = 90  # seconds; generous for loaded CI machines

# Collects what the page reports about itself: runtime errors and CSP violations (init scripts
# run through the DevTools protocol, so the page's own CSP does not block this one).
REPORTER = """
window.__suiteProblems = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__suiteProblems.push(`CSP ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


def _required() -> bool:
    return os.environ.get("SUITE_TEST_REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"SUITE_TEST_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(f"{reason} (set SUITE_TEST_REQUIRE_BROWSER=1 to make this an error)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    data_dir: Path
    log: Path
    site_name: str


def _suite_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUITE_")}
    env["SUITE_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``suite init`` + ``suite demo load`` + ``suite serve`` in a temporary directory."""
    if not SUITE.exists():
        pytest.fail(f"no suite command next to the interpreter ({SUITE}): is the package installed?")
    root = tmp_path_factory.mktemp("browser-server")
    data_dir = root / "var"
    env = _suite_env(data_dir)
    for args in (
        ["init", "--admin-email", ADMIN_EMAIL, "--admin-password", ADMIN_PASSWORD],
        ["demo", "load"],
    ):
        result = subprocess.run(
            [str(SUITE), *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, f"suite {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"

    from concelho.suite.settings import load_settings

    site_name = load_settings(environ=env).site_name
    port = _free_port()
    log = root / "serve.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [str(SUITE), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"suite serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"suite serve did not answer /healthz within {SERVE_TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(url=url, data_dir=data_dir, log=log, site_name=site_name)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: while Playwright's sync API is open its event loop counts as
    # running in this thread, so every later test calling asyncio.run() would fail.
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium was not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e .[test])")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            _unavailable(f"Chromium at {CHROMIUM} did not start: {str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    """A page plus everything it complained about."""

    page: Any
    javascript: bool = True
    console_errors: list[str] = field(default_factory=list)
    favicon_misses: int = 0

    def console_message(self, msg: Any) -> None:
        if msg.type != "error":
            return
        if (msg.location or {}).get("url", "").endswith("/favicon.ico"):
            # Chromium asks for /favicon.ico on its own and logs the 404 as a console error;
            # the pages never reference it, so this is not an error of the page.
            self.favicon_misses += 1
            return
        self.console_errors.append(f"{msg.text} ({(msg.location or {}).get('url', '')})")

    def problems(self) -> list[str]:
        """Console errors (CSP reports land there too) and violations seen by the page itself."""
        reported = self.page.evaluate("window.__suiteProblems || []") if self.javascript else []
        return [*self.console_errors, *reported]


def _open(browser: Any, server: Server, *, javascript: bool = True) -> Tab:
    context = browser.new_context(
        base_url=server.url,
        locale="en-GB",  # Accept-Language: en -> English pages, stable texts for the tests
        java_script_enabled=javascript,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(10_000)
    context.add_init_script(REPORTER)
    page = context.new_page()
    tab = Tab(page, javascript)
    page.on("console", lambda msg: tab.console_message(msg))
    page.on("pageerror", lambda exc: tab.console_errors.append(f"uncaught: {exc}"))
    return tab


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    tab = _open(browser, server)
    yield tab
    tab.page.context.close()


@pytest.fixture
def nojs_tab(browser: Any, server: Server) -> Iterator[Tab]:
    tab = _open(browser, server, javascript=False)
    yield tab
    tab.page.context.close()


def sign_in(page: Any) -> None:
    page.goto("/login")
    page.get_by_label("Username or e-mail").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(INTRANET_HOME)


def raise_alert_with_form(page: Any, message: str) -> None:
    page.goto("/intranet/alerts/")
    page.get_by_label("Message (Portuguese)").fill(message)
    page.get_by_label("Level").select_option("info")
    page.get_by_role("button", name="Raise alert").click()
    page.wait_for_url(ALERTS_PAGE)


def alert_row(page: Any, message: str) -> Any:
    return page.locator("#alerts-table tbody tr", has_text=message)


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------
def test_smoke_portal_sign_in_and_intranet(tab: Tab, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = tab.page
    page.goto("/")
    expect(page).to_have_title(server.site_name)
    expect(page.get_by_role("heading", level=1)).to_have_text(server.site_name)
    banner = page.get_by_role("region", name="Alerts")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("rough seas")  # the demo alert, in English (Accept-Language)

    page.get_by_role("link", name="Staff sign in").click()
    page.wait_for_url(re.compile(r"/login(\?.*)?$"))
    page.get_by_label("Username or e-mail").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(INTRANET_HOME)
    greeting = page.get_by_role("heading", level=1)
    expect(greeting).to_contain_text("Hello")
    expect(greeting).to_contain_text("Administrator")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    shot = tmp_path / "intranet.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5_000, f"suspiciously small screenshot ({len(data)} bytes)"
    assert tab.problems() == []


@pytest.mark.parametrize("path", ["/", "/login"])
def test_skip_link_is_first_and_moves_focus_to_main(tab: Tab, path: str) -> None:
    page = tab.page
    page.goto(path)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => ({cls: document.activeElement.className, href: document.activeElement.getAttribute('href'),"
        " text: document.activeElement.textContent.trim()})"
    )
    assert focused == {"cls": "skip-link", "href": "#main", "text": "Skip to main content"}
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["width"] > 1 and box["height"] > 1, "focused skip link is not visible"
    assert box["y"] >= 0 and box["x"] >= 0, f"focused skip link is off-screen: {box}"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.evaluate("document.activeElement.tagName") == "MAIN"


def test_no_console_errors_or_csp_violations(tab: Tab) -> None:
    page = tab.page
    seen: dict[str, list[str]] = {}
    for path in ("/", "/login"):
        page.goto(path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.htmx") == "object", f"htmx did not load on {path}"
        seen[path] = tab.problems()
        tab.console_errors.clear()
    sign_in(page)
    for path in ("/intranet/", "/intranet/alerts/"):
        page.goto(path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.htmx") == "object", f"htmx did not load on {path}"
        seen[path] = tab.problems()
        tab.console_errors.clear()
    assert {path: problems for path, problems in seen.items() if problems} == {}


def test_htmx_post_carries_the_csrf_header_from_the_body(tab: Tab, server: Server) -> None:
    from playwright.sync_api import expect

    page = tab.page
    sign_in(page)
    page.goto("/intranet/alerts/")
    assert page.evaluate("typeof window.htmx") == "object"
    hx_headers = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))")
    assert hx_headers.get("x-csrftoken"), hx_headers

    # Without the token the server refuses a POST: the header below is what makes it pass.
    refused = page.evaluate(
        """async () => (await fetch('/intranet/alerts/', {method: 'POST',
            headers: {'content-type': 'application/x-www-form-urlencoded'},
            body: 'message=no-token&level=info'})).status"""
    )
    assert refused == 403
    tab.console_errors.clear()  # Chromium logs that (expected) 403 as a console error

    message = f"htmx alert {uuid.uuid4().hex[:8]}"
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/intranet/alerts/")) as sent:
        outcome = page.evaluate(
            """(message) => new Promise((resolve) => {
                document.body.addEventListener('htmx:afterRequest', (e) => resolve({
                    status: e.detail.xhr.status, successful: e.detail.successful}), {once: true});
                htmx.ajax('POST', '/intranet/alerts/', {source: document.body, swap: 'none',
                    values: {message: message, message_en: message, level: 'info'}});
            })""",
            message,
        )
    headers = sent.value.all_headers()
    assert headers.get("x-csrftoken") == hx_headers["x-csrftoken"]
    assert headers.get("hx-request") == "true"
    assert "_csrf_token" not in (sent.value.post_data or ""), "the token should travel in the header only"
    assert outcome == {"status": 200, "successful": True}  # 303 to the page, followed by the XHR

    page.goto("/intranet/alerts/")
    expect(alert_row(page, message)).to_contain_text("active")
    page.goto("/")
    expect(page.get_by_role("region", name="Alerts")).to_contain_text(message)
    assert tab.problems() == []


def test_clear_button_swaps_the_table_with_htmx(tab: Tab) -> None:
    from playwright.sync_api import expect

    page = tab.page
    sign_in(page)
    message = f"clear me with htmx {uuid.uuid4().hex[:8]}"
    raise_alert_with_form(page, message)
    row = alert_row(page, message)
    expect(row).to_contain_text("active")

    page.evaluate("window.__sameDocument = true")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/clear")) as sent:
        row.get_by_role("button", name="Clear").click()
    headers = sent.value.all_headers()
    assert headers.get("hx-request") == "true"
    assert headers.get("x-csrftoken")
    expect(row).to_contain_text("cleared")
    expect(row.get_by_role("button", name="Clear")).to_have_count(0)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded instead of swapped"
    assert page.locator("#alerts-table").count() == 1, "the table was nested instead of replaced"

    page.goto("/")
    expect(page.get_by_role("region", name="Alerts")).not_to_contain_text(message)
    assert tab.problems() == []


def test_clear_button_works_without_javascript(nojs_tab: Tab) -> None:
    from playwright.sync_api import expect

    page = nojs_tab.page
    sign_in(page)
    message = f"clear me without js {uuid.uuid4().hex[:8]}"
    raise_alert_with_form(page, message)
    row = alert_row(page, message)
    expect(row).to_contain_text("active")

    with page.expect_navigation():
        row.get_by_role("button", name="Clear").click()
    assert ALERTS_PAGE.search(page.url), page.url
    expect(alert_row(page, message)).to_contain_text("cleared")
    page.goto("/")
    expect(page.get_by_role("region", name="Alerts")).not_to_contain_text(message)
    assert nojs_tab.console_errors == []
