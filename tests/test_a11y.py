"""axe-core (WCAG 2.0 / 2.1, levels A and AA) on every kind of portal page and the editor's main screens.

axe-core is vendored in tests/vendor/ (see its README) and injected with ``page.evaluate`` (not a
<script> tag, which the pages' CSP would block).  Pages are opened in real Chromium, in Portuguese
and in English, against the server of tests/test_browser.py (shared through tests/browser_fixtures.py);
detail pages are found by following the first link of their listing page, so any demo content will do.
A page type whose plugin is not in the plugin registry is skipped, with that reason in the report.
Skipped without Chromium unless ``SUITE_TEST_REQUIRE_BROWSER=1``, like the other browser tests.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .browser_fixtures import (
    Server,
    Tab,
    broken_references,
    card_links,
    describe_violations,
    open_tab,
    require_plugin,
    run_axe,
    sign_in,
)

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.browser

LANGS = ("pt", "en")


@dataclass(frozen=True)
class Screen:
    name: str
    plugin: str | None  # None: a core page
    path: str
    link: str | None = None  # regex of a link path to follow from ``path`` (detail pages)
    links: str = ".card a[href]"  # where those links are
    status: int = 200
    ready: str | None = None  # a selector to wait for (scripts that change the page after load)
    also: tuple[str, ...] = ()  # other listing pages to look for ``link`` on, in turn
    act: Callable[[Any], None] | None = None  # what a visitor does first (submit a form…)


def _fail_login(page: Any) -> None:
    """A failed sign-in (an unknown account: the admin's failure counter stays at zero)."""
    page.locator("#username").fill("ninguem")
    page.locator("#password").fill("not-the-password")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert page.locator("#login-error").count() == 1, "no error shown for a failed sign-in"


def _submit_empty_contact_form(page: Any) -> None:
    """Fale Connosco sent empty: the form comes back with its errors (the server's, not the browser's)."""
    page.evaluate("document.querySelectorAll('main form').forEach((f) => { f.noValidate = true; })")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").last.click()
    assert page.locator("[aria-invalid=true]").count() >= 1, "no field marked invalid"


PORTAL = [
    Screen("home", None, "/"),
    Screen("news-list", "news", "/noticias"),
    Screen("feedback-thanks", "news", "/noticias?feedback=thanks"),
    Screen("news-detail", "news", "/noticias", link=r"^/noticias/(?!feed\.)[^/]+$"),
    Screen("events-list", "events", "/agenda"),
    Screen("events-list-bad-filter", "events", "/agenda?de=ontem"),
    Screen("events-calendar", "events", "/agenda/calendario"),
    Screen(
        "event-detail",
        "events",
        "/agenda",
        link=r"^/agenda/(?!calendario$|agenda\.ics$)[^/]+$",
        also=("/agenda?passados=1",),  # once the demo's events are over
    ),
    Screen("services-list", "services", "/servicos"),
    Screen("service-detail", "services", "/servicos", link=r"^/servicos/[^/]+$"),
    Screen("council-root", "pages", "/camara"),
    Screen("council-page", "pages", "/camara", link=r"^/camara/(?!organograma$|executivo$|recrutamento|documentos)"),
    Screen("org-chart", "pages", "/camara/organograma"),
    Screen("executive", "pages", "/camara/executivo"),
    Screen("recruitment", "pages", "/camara/recrutamento"),
    Screen("job-offer", "pages", "/camara/recrutamento", link=r"^/camara/recrutamento/[^/]+$"),
    Screen("documents", "pages", "/camara/documentos"),
    Screen("document", "pages", "/camara/documentos", link=r"^/camara/documentos/[^/]+$", links="#results h3 a"),
    Screen("territory-root", "pages", "/concelho"),
    Screen("territory-page", "pages", "/concelho", link=r"^/concelho/[^/]+$"),
    Screen("places-list", "places", "/locais"),
    Screen("place-detail", "places", "/locais", link=r"^/locais/(?!mapa$|locais\.geojson$)[^/]+$"),
    Screen("places-map", "places", "/locais/mapa", ready=".leaflet-container"),
    # With the location picker's map shown (crm/location-map.js).
    Screen("contact-form", "crm", "/fale-connosco", ready="#crm-location-map.leaflet-container"),
    Screen(
        "contact-form-errors",
        "crm",
        "/fale-connosco",
        act=_submit_empty_contact_form,
        ready="#crm-location-map.leaflet-container",
    ),
    Screen("search-results", None, "/pesquisa?q=c%C3%A2mara"),
    Screen("accessibility-statement", None, "/accessibility"),
    Screen("login", None, "/login"),
    Screen("login-failed", None, "/login", act=_fail_login),
    Screen("not-found", None, "/esta-pagina-nao-existe", status=404),
]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def same_origin_only(tab: Tab, server: Server) -> Tab:
    """Refuse requests to other hosts (map tiles): the tests stay offline and deterministic."""
    tab.page.context.route(lambda url: not url.startswith(server.url), lambda route: route.abort())
    return tab


def assert_html(response: Any) -> None:
    """Served as HTML (a page answered from the page cache once came back as "MediaType.HTML")."""
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("text/html"), f"{response.url} is served as {content_type!r}"


def open_screen(page: Any, screen: Screen, lang: str) -> str:
    """Go to the screen (following the first matching link for detail pages); returns its URL."""
    response = page.goto(screen.path)
    assert response is not None
    if screen.link:
        assert response.status == 200, f"{screen.path} answered {response.status}"
        assert_html(response)  # the listing was seen by an earlier test: this answer comes from the cache
        found = card_links(page.locator("main"), screen.link, screen.links)
        for listing in screen.also:
            if not found:
                page.goto(listing)
                found = card_links(page.locator("main"), screen.link, screen.links)
        assert found, f"no link matching {screen.link} on {screen.path}: add demo content or fix the pattern"
        in_lang = [href for href in found if ("lang=en" in href) == (lang == "en")]
        response = page.goto((in_lang or found)[0])
        assert response is not None
    assert response.status == screen.status, f"{page.url} answered {response.status}, not {screen.status}"
    assert_html(response)
    page.wait_for_load_state("load")
    if screen.act:
        screen.act(page)
    if screen.ready:
        page.locator(screen.ready).first.wait_for()
    return page.url


def assert_accessible(page: Any, axe_source: str, label: str) -> None:
    broken = broken_references(page)
    assert not broken, f"references to missing ids on {label} ({page.url}):\n" + "\n".join(broken)
    violations = run_axe(page, axe_source)
    assert not violations, f"axe found {len(violations)} violation(s) on {label} ({page.url}):\n" + describe_violations(
        violations
    )


# --------------------------------------------------------------------------------------------
# Portal pages, anonymous, in both languages
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("screen", PORTAL, ids=[s.name for s in PORTAL])
def test_portal_page_has_no_axe_violations(
    screen: Screen,
    lang: str,
    make_tab: Callable[..., Tab],
    server: Server,
    installed_plugins: frozenset[str],
    axe_source: str,
) -> None:
    require_plugin(installed_plugins, screen.plugin)
    page = same_origin_only(make_tab(lang=lang), server).page
    open_screen(page, screen, lang)
    expected = "pt-PT" if lang == "pt" else "en"
    if not screen.link:  # a detail page may be in the other language, when it has no translation
        assert page.evaluate("document.documentElement.lang") == expected
    assert_accessible(page, axe_source, f"{screen.name} ({lang})")


def test_every_portal_plugin_has_its_pages_checked(portal_plugins: frozenset[str]) -> None:
    """A plugin with a link in the portal's navigation must have its page types in PORTAL."""
    missing = sorted(portal_plugins - {s.plugin for s in PORTAL})
    assert not missing, f"portal plugins whose pages test_a11y.py does not check: {missing}"


# --------------------------------------------------------------------------------------------
# The editor's screens, signed in
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Editor:
    """What the module's editor made: a signed-in browser state, a draft with two revisions."""

    storage_state: dict[str, Any]
    item_id: int


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (96, 64), (40, 90, 150)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def editor(browser: Any, server: Server) -> Iterator[Editor]:
    """Signs in once, writes a draft (saved twice, so the history has a diff) and uploads an image."""
    tab = open_tab(browser, server, lang="en")
    page = tab.page
    try:
        sign_in(page)
        _new_item_form(page)
        token = uuid.uuid4().hex[:8]
        page.get_by_role("textbox", name="Title", exact=True).fill(f"Acessibilidade: rascunho {token}")
        page.get_by_label("Text (Markdown)").fill("Um rascunho com **texto forte** e uma lista:\n\n- um\n- dois")
        with page.expect_navigation():
            page.get_by_role("button", name="Save", exact=True).click()
        saved = re.search(r"/intranet/content/(\d+)\?saved=1$", page.url)
        assert saved, f"the draft was not saved: {page.url}\n{page.locator('main').inner_text()[:1000]}"
        page.get_by_label("Summary").fill(f"Segunda versão {token}.")
        with page.expect_navigation():
            page.get_by_role("button", name="Save", exact=True).click()
        assert "saved=1" in page.url, page.url

        page.goto("/intranet/media/")
        page.get_by_label("File", exact=True).set_input_files(
            files=[{"name": f"praca-{token}.png", "mimeType": "image/png", "buffer": _png()}]
        )
        page.get_by_role("textbox", name="Title", exact=True).fill(f"Praça {token}")
        page.get_by_label("Alternative text (required for images)").fill("Praça central com árvores")
        with page.expect_navigation():
            page.get_by_role("button", name="Upload").click()
        assert "uploaded=1" in page.url, f"the upload failed: {page.locator('main').inner_text()[:1000]}"
        yield Editor(page.context.storage_state(), int(saved.group(1)))
    finally:
        page.context.close()


def _new_item_links(page: Any) -> list[str]:
    """The content list's "New: <type>" links, one per registered content type."""
    page.goto("/intranet/content/")
    links = page.locator('main a[href^="/intranet/content/new?type="]').evaluate_all(
        "links => links.map((a) => a.getAttribute('href'))"
    )
    assert links, "the content list offers no type to create"
    return links


def _new_item_form(page: Any) -> None:
    """The new item form of a news article (of the first type when the news plugin is not installed)."""
    links = _new_item_links(page)
    page.goto(next((href for href in links if href.endswith("type=news.article")), links[0]))


def _form_with_errors(page: Any) -> None:
    _new_item_form(page)
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("^(Save|Guardar)$")).click()
    assert page.locator(".field-error").count() > 0, "an empty form was accepted"


@dataclass(frozen=True)
class EditorScreen:
    name: str
    plugin: str | None
    open: Callable[[Any, Editor], Any]


EDITOR = [
    EditorScreen("intranet-home", None, lambda page, ed: page.goto("/intranet/")),
    EditorScreen("content-list", None, lambda page, ed: page.goto("/intranet/content/")),
    EditorScreen("content-new", None, lambda page, ed: _new_item_form(page)),
    EditorScreen("content-new-with-errors", None, lambda page, ed: _form_with_errors(page)),
    EditorScreen("content-edit", None, lambda page, ed: page.goto(f"/intranet/content/{ed.item_id}?saved=1")),
    EditorScreen("content-history", None, lambda page, ed: page.goto(f"/intranet/content/{ed.item_id}/history")),
    EditorScreen(
        "content-history-diff", None, lambda page, ed: page.goto(f"/intranet/content/{ed.item_id}/history?a=1&b=2")
    ),
    EditorScreen("media-library", None, lambda page, ed: page.goto("/intranet/media/")),
    EditorScreen("alerts-manage", "alerts", lambda page, ed: page.goto("/intranet/alerts/")),
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("screen", EDITOR, ids=[s.name for s in EDITOR])
def test_editor_screen_has_no_axe_violations(
    screen: EditorScreen,
    lang: str,
    make_tab: Callable[..., Tab],
    server: Server,
    editor: Editor,
    installed_plugins: frozenset[str],
    axe_source: str,
) -> None:
    require_plugin(installed_plugins, screen.plugin)
    page = same_origin_only(make_tab(lang=lang, storage_state=editor.storage_state), server).page
    screen.open(page, editor)
    assert re.search(r"/intranet/", page.url), f"not an intranet page (signed out?): {page.url}"
    page.wait_for_load_state("networkidle")  # the editor's HTMX requests made on load (live preview)
    assert page.evaluate("document.documentElement.lang") == ("pt-PT" if lang == "pt" else "en")
    if screen.name == "content-history-diff":
        assert page.locator("pre.diff").count() > 0, "no diff shown between the two revisions"
    if screen.name == "media-library":
        assert page.locator("main img").count() > 0, "the uploaded image is not listed"
    assert_accessible(page, axe_source, f"{screen.name} ({lang})")


@pytest.mark.parametrize("lang", LANGS)
def test_new_item_form_of_every_content_type_has_no_axe_violations(
    lang: str, make_tab: Callable[..., Tab], server: Server, editor: Editor, axe_source: str
) -> None:
    """Each type adds its own fields (choices, check boxes, dates, parent page…) to the editor's form."""
    page = same_origin_only(make_tab(lang=lang, storage_state=editor.storage_state), server).page
    failures = []
    for href in _new_item_links(page):
        page.goto(href)
        page.wait_for_load_state("networkidle")
        broken = broken_references(page)
        violations = run_axe(page, axe_source)
        if broken or violations:
            failures.append(f"{href}:\n" + "\n".join(broken) + describe_violations(violations))
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------------
# The checks themselves
# --------------------------------------------------------------------------------------------
def test_the_checks_catch_known_problems(make_tab: Callable[..., Tab], server: Server, axe_source: str) -> None:
    """Broken markup added to a real page is reported: the checks above cannot pass vacuously."""
    page = make_tab(lang="en").page
    page.goto("/login")
    assert run_axe(page, axe_source) == []
    assert broken_references(page) == []
    page.evaluate(
        """() => {
            document.querySelector('main').insertAdjacentHTML('beforeend',
                '<img src="/static/core/missing.png"><input type="text" name="x">'
                + '<p class="low" aria-describedby="nowhere">faint text</p><a href="/x"></a>');
            document.querySelector('p.low').style.color = '#bbb';  // CSSOM: allowed by the CSP
        }"""
    )
    found = {v["id"] for v in run_axe(page, axe_source)}
    assert {"image-alt", "label", "color-contrast", "link-name"} <= found, found
    broken = broken_references(page)
    assert len(broken) == 1 and broken[0].endswith("faint text</p>: aria-describedby -> #nowhere"), broken
