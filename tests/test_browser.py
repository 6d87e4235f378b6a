"""Real Chromium (Debian's) through Playwright against the real server (``suite serve``).

The session starts one server on a throw-away data directory (``suite init`` + ``suite demo
load``, SQLite), exactly as the README's ``make demo`` does.  Without Chromium the tests are
skipped, unless ``SUITE_TEST_REQUIRE_BROWSER=1`` (CI) makes that an error.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from .browser_fixtures import ADMIN_PASSWORD, INTRANET_HOME, Server, Tab, sign_in

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.browser
ALERTS_PAGE = re.compile(r"/intranet/alerts/?$")


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
