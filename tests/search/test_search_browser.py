"""Search as you type in real Chromium (Playwright) against ``suite serve`` with the demo content.

The server runs its in-process jobs (the default), so the demo import reaches the index through the
outbox without any CLI step.  Skipped without Chromium unless ``SUITE_TEST_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SUITE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-quic"]
SUITE = Path(sys.executable).parent / "suite"
REPORTER = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", (e) => window.__problems.push(`CSP ${e.violatedDirective}`));
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("SUITE_TEST_REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"SUITE_TEST_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("search-browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUITE_")}
    env["SUITE_DATA_DIR"] = str(root / "var")
    init = ["init", "--admin-email", "a@example.org", "--admin-password", "browser-search-2026"]
    for args in (init, ["demo", "load"]):
        done = subprocess.run([str(SUITE), *args], cwd=root, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(
        [str(SUITE), "serve", "--port", str(port)], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # up, and the demo content indexed by the in-process job
            assert process.poll() is None, (root / "serve.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/api/search", params={"q": "recolha"}, timeout=2).json()["total"] > 0:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, "the demo content was not indexed within 60 s"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium was not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:
            _unavailable(f"Chromium did not start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def _page(chromium: Any, site: str, javascript: bool) -> Any:
    context = chromium.new_context(base_url=site, locale="pt-PT", java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    context.add_init_script(REPORTER)
    page = context.new_page()
    page.errors = []

    def console(msg: Any) -> None:
        # Chromium asks for /favicon.ico on its own (no page links it) and logs the 404.
        if msg.type == "error" and not (msg.location or {}).get("url", "").endswith("/favicon.ico"):
            page.errors.append(f"{msg.text} ({(msg.location or {}).get('url', '')})")

    page.on("console", console)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


def test_typing_searches_without_reloading_the_page(chromium: Any, site: str) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, site, javascript=True)
    try:
        page.goto("/pesquisa")
        page.evaluate("window.__sameDocument = true")
        page.locator("#search-q").press_sequentially("recolha", delay=40)
        expect(page.locator("#search-results .search-hit").first).to_be_visible()
        assert page.evaluate("window.__sameDocument === true")  # swapped by HTMX, not a new page
        page.wait_for_url("**/pesquisa?q=recolha")  # the address follows (hx-push-url)
        assert page.locator("#search-results mark").count() > 0
        before = page.locator("#search-results .search-hit").count()

        page.locator("#search-results .search-facets input[name=tipo]").first.check()
        page.wait_for_url("**tipo=*")
        expect(page.locator("#search-results input[name=tipo]:checked")).to_have_count(1)
        assert page.locator("#search-results .search-hit").count() <= before
        assert page.evaluate("window.__sameDocument === true")
        assert page.errors == [] and page.evaluate("window.__problems") == []
    finally:
        page.context.close()


def test_the_form_works_without_javascript(chromium: Any, site: str) -> None:
    page = _page(chromium, site, javascript=False)
    try:
        page.goto("/")
        page.get_by_role("search", name="Pesquisar no sítio").get_by_role("searchbox").fill("recolha")
        page.get_by_role("search", name="Pesquisar no sítio").get_by_role("button").click()
        page.wait_for_url("**/pesquisa?q=recolha")
        assert page.locator(".search-hit").count() > 0
        page.locator(".search-facets input[name=tipo]").first.check()
        page.get_by_role("button", name="Aplicar filtros").click()
        page.wait_for_url("**tipo=*")
        assert page.locator(".search-hit").count() > 0
    finally:
        page.context.close()
