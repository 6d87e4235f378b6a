"""Chromium fixtures shared by the browser test modules (``pytest_plugins = ["tests.browser_fixtures"]``).

Registered as a plugin by every browser test module, so one ``suite serve`` (``suite init`` + ``suite demo
load`` on a throw-away SQLite data directory, as the README's ``make demo`` does) serves the whole session of a
test process.  Without Chromium the tests are skipped, unless ``SUITE_TEST_REQUIRE_BROWSER=1`` (CI) makes that an
error.  Also here: tabs in a chosen language, the plugin registry of the served app (to skip a page only when its
plugin is not installed), link discovery on listing pages and axe-core.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "AXE_SHA256",
    "INTRANET_HOME",
    "Server",
    "Tab",
    "axe_source",
    "broken_references",
    "browser",
    "card_links",
    "installed_plugins",
    "make_tab",
    "nojs_tab",
    "open_tab",
    "portal_plugins",
    "require_plugin",
    "run_axe",
    "server",
    "sign_in",
    "tab",
]

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


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    tab = open_tab(browser, server)
    yield tab
    tab.page.context.close()


@pytest.fixture
def nojs_tab(browser: Any, server: Server) -> Iterator[Tab]:
    tab = open_tab(browser, server, javascript=False)
    yield tab
    tab.page.context.close()


def sign_in(page: Any) -> None:
    page.goto("/login")
    page.get_by_label("Username or e-mail").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(INTRANET_HOME)


LOCALES = {"pt": "pt-PT", "en": "en-GB"}
AXE_PATH = Path(__file__).parent / "vendor" / "axe.min.js"
#: sha256 of tests/vendor/axe.min.js (axe-core 4.14.1, see tests/vendor/README.md).
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def open_tab(browser: Any, server: Server, *, lang: str = "en", javascript: bool = True, **options: Any) -> Tab:
    """A new browser context whose Accept-Language asks for ``lang`` ("pt" or "en"), with one page."""
    context = browser.new_context(
        base_url=server.url,
        locale=LOCALES[lang],
        java_script_enabled=javascript,
        viewport={"width": 1280, "height": 900},
        **options,
    )
    context.set_default_timeout(10_000)
    context.add_init_script(REPORTER)
    page = context.new_page()
    tab = Tab(page, javascript)
    page.on("console", lambda msg: tab.console_message(msg))
    page.on("pageerror", lambda exc: tab.console_errors.append(f"uncaught: {exc}"))
    return tab


@pytest.fixture
def make_tab(browser: Any, server: Server) -> Iterator[Callable[..., Tab]]:
    """``make_tab(lang="pt", javascript=False)``: tabs closed at the end of the test."""
    tabs: list[Tab] = []

    def make(**kwargs: Any) -> Tab:
        tab = open_tab(browser, server, **kwargs)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.page.context.close()


def _registry(server: Server) -> Any:
    from concelho.suite.plugins import PluginRegistry
    from concelho.suite.settings import load_settings

    return PluginRegistry.from_settings(load_settings(environ=_suite_env(server.data_dir)))


@pytest.fixture(scope="session")
def installed_plugins(server: Server) -> frozenset[str]:
    """Names of the plugins the served app loads, from the plugin registry with the server's settings."""
    return frozenset(plugin.name for plugin in _registry(server))


@pytest.fixture(scope="session")
def portal_plugins(server: Server) -> frozenset[str]:
    """The installed plugins that put a link in the portal's main navigation."""
    return frozenset(p.name for p in _registry(server) if any(n.area == "portal" for n in p.nav_items()))


def require_plugin(installed: frozenset[str], name: str | None) -> None:
    """Skip (with the reason in the report) when ``name`` is not in the registry; core pages pass None."""
    if name is not None and name not in installed:
        pytest.skip(f"the {name!r} plugin is not installed (not in the plugin registry: {sorted(installed)})")


def card_links(scope: Any, pattern: str, selector: str = ".card a[href]") -> list[str]:
    """Hrefs of the links (``selector``, cards by default) within ``scope`` (a locator) whose path matches
    ``pattern``, in page order."""
    hrefs = scope.locator(selector).evaluate_all("links => links.map((a) => a.getAttribute('href'))")
    wanted = re.compile(pattern)
    return [href for href in hrefs if wanted.search(href.split("?", 1)[0].split("#", 1)[0])]


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The vendored axe-core, checked against the hash recorded in tests/vendor/README.md."""
    data = AXE_PATH.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == AXE_SHA256, f"{AXE_PATH} is not the recorded axe-core build (sha256 {digest})"
    return data.decode()


def run_axe(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """Inject axe (page.evaluate is not subject to the page's CSP) and return its WCAG 2.0/2.1 A/AA violations."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    return page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({target: n.target.map(String), html: n.html, summary: n.failureSummary})),
            }));
        }""",
        AXE_TAGS,
    )


def broken_references(page: Any) -> list[str]:
    """``aria-labelledby``, ``aria-describedby``, ``aria-controls`` and ``label[for]`` naming ids that do not exist
    (axe only lists these as "needs review": a region or field that silently lost its name or description)."""
    return page.evaluate(
        """() => {
            const broken = [];
            const check = (el, attr, id) => {
                if (!document.getElementById(id)) broken.push(`${el.outerHTML.slice(0, 120)}: ${attr} -> #${id}`);
            };
            for (const attr of ['aria-labelledby', 'aria-describedby', 'aria-controls']) {
                for (const el of document.querySelectorAll(`[${attr}]`)) {
                    el.getAttribute(attr).split(/\\s+/).filter(Boolean).forEach((id) => check(el, attr, id));
                }
            }
            document.querySelectorAll('label[for]').forEach((label) => check(label, 'for', label.htmlFor));
            return broken;
        }"""
    )


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """One block per rule: id, impact, help, then each failing node's selector, markup and why."""
    lines: list[str] = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}  [{violation['helpUrl']}]")
        for node in violation["nodes"]:
            lines.append(f"    at {' > '.join(node['target'])}")
            lines.append(f"       {node['html'][:200]}")
            for reason in (node["summary"] or "").splitlines():
                lines.append(f"       {reason.strip()}")
    return "\n".join(lines)
