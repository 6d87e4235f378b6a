"""Chromium fixtures shared by the browser test modules (``pytest_plugins = ["tests.browser_fixtures"]``).

The server, the browser and the sign-in helper are the ones of ``tests/test_browser.py``, imported
here rather than copied: as a plugin, this module registers them once for the whole session, so
``test_browser_portal.py`` and ``test_a11y.py`` share one ``suite serve`` (``test_browser.py`` keeps
its own).  What is added: tabs in a chosen language, the plugin registry of the served app (to skip
a page only when its plugin is not installed), link discovery on listing pages and axe-core.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_browser import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    REPORTER,
    Server,
    Tab,
    _suite_env,
    browser,
    server,
    sign_in,
)

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "AXE_SHA256",
    "Server",
    "Tab",
    "axe_source",
    "broken_references",
    "browser",
    "card_links",
    "installed_plugins",
    "make_tab",
    "open_tab",
    "portal_plugins",
    "require_plugin",
    "run_axe",
    "server",
    "sign_in",
]

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
