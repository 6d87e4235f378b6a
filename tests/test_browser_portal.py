"""The portal as a resident and an editor use it, in real Chromium against ``suite serve``.

Same policy as tests/test_browser.py (whose server and browser fixtures this module shares through
tests/browser_fixtures.py): skipped without Chromium unless ``SUITE_TEST_REQUIRE_BROWSER=1``.
Links are discovered on listing pages, so the tests follow whatever the demo content holds.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .browser_fixtures import Server, Tab, card_links, require_plugin, sign_in

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.browser

# The chrome (skip link, navigation, footer) in each language.
CHROME = {
    "pt": {
        "html_lang": "pt-PT",
        "skip": "Saltar para o conteúdo principal",
        "main_nav": "Principal",
        "lang_nav": "Idioma",
        "home": "Página inicial",
        "news": "Notícias",
        "events": "Eventos",
        "services": "Serviços",
        "council": "Câmara Municipal",
        "breadcrumbs": "Caminho de navegação",
        "latest_news": "Últimas notícias",
        "footer": "Declaração de acessibilidade",
        "staff": "Acesso dos trabalhadores",
    },
    "en": {
        "html_lang": "en",
        "skip": "Skip to main content",
        "main_nav": "Main",
        "lang_nav": "Language",
        "home": "Home",
        "news": "News",
        "events": "Events",
        "services": "Services",
        "council": "Council",
        "breadcrumbs": "Breadcrumb",
        "latest_news": "Latest news",
        "footer": "Accessibility statement",
        "staff": "Staff sign in",
    },
}
NEWS_ITEM = r"^/noticias/(?!feed\.)[^/]+$"
EVENT = r"^/agenda/(?!calendario$|agenda\.ics$)[^/]+$"
SERVICE = r"^/servicos/[^/]+$"
# A page under /camara that is content (not one of the generated pages: org chart, executive, …).
COUNCIL_CHILD = r"^/camara/(?!organograma$|executivo$|recrutamento|documentos)[^/]+$"
SAVED = re.compile(r"/intranet/content/(\d+)\?saved=1$")
ITEM_PAGE = re.compile(r"/intranet/content/\d+$")
NEW_NEWS = "/intranet/content/new?type=news.article"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def expect_chrome(page: Any, lang: str) -> None:
    """The page is in ``lang``: <html lang>, skip link, navigation, language switch and footer."""
    from playwright.sync_api import expect

    words = CHROME[lang]
    expect(page.locator("html")).to_have_attribute("lang", words["html_lang"])
    expect(page.locator("a.skip-link")).to_have_text(words["skip"])
    nav = page.get_by_role("navigation", name=words["main_nav"], exact=True)
    for label in ("home", "news", "events", "services", "council"):
        expect(nav.get_by_role("link", name=words[label], exact=True)).to_have_count(1)
    switch = page.get_by_role("navigation", name=words["lang_nav"], exact=True)
    expect(switch.locator('a[aria-current="true"]')).to_have_attribute("hreflang", lang)
    expect(page.get_by_role("contentinfo").get_by_role("link", name=words["footer"])).to_be_visible()
    expect(page.get_by_role("link", name=words["staff"], exact=True)).to_be_visible()


def pick(scope: Any, pattern: str, lang: str) -> str:
    """The first card link in ``scope`` matching ``pattern`` that leads to an item in ``lang``."""
    links = card_links(scope, pattern)
    wanted = [h for h in links if ("lang=en" in h) == (lang == "en")]
    assert wanted, f"no {lang} card link matching {pattern} on {scope.page.url} (links: {links})"
    return wanted[0]


def follow(page: Any, href: str, lang: str) -> str:
    """Click the card link to ``href`` and check the page it opens: same title, right path, ``lang`` chrome."""
    from playwright.sync_api import expect

    link = page.locator(f'main .card a[href="{href}"]').first
    title = " ".join(link.inner_text().split())
    with page.expect_navigation():
        link.click()
    assert urlsplit(page.url).path == urlsplit(href).path, page.url
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect_chrome(page, lang)
    return title


def via_main_nav(page: Any, lang: str, label: str, path: str, lands_in: str | None = None) -> None:
    """Follow a link of the main navigation (in ``lang``); the page it opens is in ``lands_in`` (default: ``lang``)."""
    words = CHROME[lang]
    nav = page.get_by_role("navigation", name=words["main_nav"], exact=True)
    with page.expect_navigation():
        nav.get_by_role("link", name=words[label], exact=True).click()
    assert urlsplit(page.url).path.rstrip("/") == path, page.url
    expect_chrome(page, lands_in or lang)


def switch_language(page: Any, current: str, wanted: str, title: str) -> None:
    """Click the language switch.  On an item with a translation it opens the translation; without one
    the item stays in its own language (chrome included), and the choice applies from the next page on."""
    from playwright.sync_api import expect

    switch = page.get_by_role("navigation", name=CHROME[current]["lang_nav"], exact=True)
    link = switch.locator(f'a[hreflang="{wanted}"]')
    translated = urlsplit(link.get_attribute("href") or "").path != urlsplit(page.url).path
    with page.expect_navigation():
        link.click()
    if translated:
        expect_chrome(page, wanted)
        expect(page.get_by_role("heading", level=1)).not_to_have_text(title)
    else:
        expect_chrome(page, current)
        via_main_nav(page, current, "home", "", lands_in=wanted)


def walk(page: Any, lang: str) -> list[str]:
    """Home → a news item → events → an event → services → a service → council → a council page."""
    from playwright.sync_api import expect

    words = CHROME[lang]
    seen = []
    via_main_nav(page, lang, "home", "")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    latest = page.get_by_role("region", name=words["latest_news"])
    expect(latest).to_be_visible()
    seen.append(follow(page, pick(latest, NEWS_ITEM, lang), lang))
    expect(page.get_by_role("navigation", name=words["breadcrumbs"])).to_contain_text(words["news"])

    via_main_nav(page, lang, "events", "/agenda")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["events"])
    if not card_links(page.locator("main"), EVENT):  # the demo's events are over: past events, then
        with page.expect_navigation():
            page.locator("main .agenda-toggle a").first.click()
    seen.append(follow(page, pick(page.locator("main"), EVENT, lang), lang))

    via_main_nav(page, lang, "services", "/servicos")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["services"])
    seen.append(follow(page, pick(page.locator("main"), SERVICE, lang), lang))

    via_main_nav(page, lang, "council", "/camara")
    council = " ".join(page.get_by_role("heading", level=1).inner_text().split())
    seen.append(follow(page, pick(page.locator("main"), COUNCIL_CHILD, lang), lang))
    expect(page.get_by_role("navigation", name=words["breadcrumbs"])).to_contain_text(council)
    return seen


# --------------------------------------------------------------------------------------------
# A resident's walk
# --------------------------------------------------------------------------------------------
def test_resident_walk_in_portuguese_then_english(make_tab: Any, installed_plugins: frozenset[str]) -> None:

    for plugin in ("news", "events", "services", "pages"):
        require_plugin(installed_plugins, plugin)
    tab: Tab = make_tab(lang="pt")
    page = tab.page
    page.goto("/")
    expect_chrome(page, "pt")
    seen_pt = walk(page, "pt")

    # The language switch, used on the council page where the walk ended.
    switch_language(page, "pt", "en", seen_pt[-1])
    seen_en = walk(page, "en")
    # And back to Portuguese from the switch of an English page.
    switch_language(page, "en", "pt", seen_en[-1])
    via_main_nav(page, "pt", "home", "")
    assert tab.problems() == []


# --------------------------------------------------------------------------------------------
# An editor publishes a news item
# --------------------------------------------------------------------------------------------
MARKDOWN = "As obras na **Rua Direita** terminaram.\n\n- passeios novos\n- iluminação LED"


def news_text() -> tuple[str, str, str]:
    token = uuid.uuid4().hex[:8]
    title = f"Obras concluídas na Rua Direita {token}"
    return title, f"Reabre ao trânsito ({token}).", f"/noticias/obras-concluidas-na-rua-direita-{token}"


def expect_rendered_markdown(region: Any) -> None:
    from playwright.sync_api import expect

    expect(region.locator("strong")).to_have_text("Rua Direita")
    expect(region.locator("li")).to_have_text(["passeios novos", "iluminação LED"])
    expect(region).not_to_contain_text("**")


def save_and_publish(page: Any) -> int:
    """Click Save on the form, then the workflow's Publish button; returns the item id."""
    from playwright.sync_api import expect

    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    saved = SAVED.search(page.url)
    assert saved, f"not saved: {page.url}\n{page.locator('main').inner_text()[:1500]}"
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.locator("main .status")).to_have_text("draft")
    with page.expect_navigation():
        page.get_by_role("button", name="Publish", exact=True).click()
    assert ITEM_PAGE.search(page.url), page.url
    expect(page.locator("main .status")).to_have_text("published")
    expect(page.get_by_role("link", name="View on the portal")).to_be_visible()
    return int(saved.group(1))


def latest_news_titles(page: Any) -> list[str]:
    page.goto("/")
    return page.get_by_role("region", name=CHROME["pt"]["latest_news"]).get_by_role("heading").all_inner_texts()


def expect_on_portal(make_tab: Any, server: Server, title: str, path: str, home_before: list[str], js: bool) -> None:
    """The published item is on the (cached, anonymous) home page, in the RSS feed and at its address."""
    import feedparser
    from playwright.sync_api import expect

    visitor = make_tab(lang="pt", javascript=js).page
    titles = latest_news_titles(visitor)
    assert title in titles, f"{title!r} is not in the home page's latest news: {titles} (before: {home_before})"

    response = httpx.get(f"{server.url}/noticias/feed.rss", timeout=10)
    assert response.status_code == 200
    feed = feedparser.parse(response.content, response_headers=dict(response.headers))
    assert not feed.bozo, feed.get("bozo_exception")
    entries = [e for e in feed.entries if e.title == title]
    assert len(entries) == 1, [e.title for e in feed.entries]
    assert urlsplit(entries[0].link).path == path
    assert entries[0].summary.startswith("Reabre ao trânsito")

    visitor.get_by_role("link", name=title).first.click()
    visitor.wait_for_url(re.compile(re.escape(path) + "$"))
    expect(visitor.get_by_role("heading", level=1)).to_have_text(title)
    expect_rendered_markdown(visitor.locator("main article"))


def test_editor_creates_and_publishes_news_with_live_preview(
    make_tab: Any, server: Server, installed_plugins: frozenset[str]
) -> None:
    from playwright.sync_api import expect

    require_plugin(installed_plugins, "news")
    title, summary, path = news_text()
    # An anonymous visit first, so the home page is in the page cache when the item is published.
    home_before = latest_news_titles(make_tab(lang="pt").page)
    assert title not in home_before

    tab: Tab = make_tab(lang="en")
    page = tab.page
    sign_in(page)
    page.goto(NEW_NEWS)
    expect(page.get_by_role("heading", level=1)).to_have_text("New: News article")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("textbox", name="Title", exact=True).fill(title)
    page.get_by_label("Summary").fill(summary)
    preview = page.get_by_role("region", name="Preview")
    body = page.get_by_label("Text (Markdown)")
    with page.expect_response(
        lambda r: (
            r.url.endswith("/intranet/content/preview")
            and r.request.method == "POST"
            and r.request.headers.get("hx-request") == "true"
            and "LED" in (r.request.post_data or "")
        )  # the request made after the last key
    ) as answered:
        body.press_sequentially(MARKDOWN, delay=5)
    assert answered.value.status == 200
    assert answered.value.request.headers.get("x-csrftoken"), "the preview POST carries no CSRF header"
    expect_rendered_markdown(preview)
    assert page.evaluate("window.__sameDocument === true"), "the preview reloaded the page instead of swapping"
    assert page.url.endswith(NEW_NEWS)

    save_and_publish(page)
    expect(page.get_by_role("region", name="Preview")).to_contain_text("Rua Direita")
    expect_on_portal(make_tab, server, title, path, home_before, js=True)
    assert tab.problems() == []


def test_editor_flow_works_without_javascript(make_tab: Any, server: Server, installed_plugins: frozenset[str]) -> None:
    from playwright.sync_api import expect

    require_plugin(installed_plugins, "news")
    title, summary, path = news_text()
    home_before = latest_news_titles(make_tab(lang="pt", javascript=False).page)
    assert title not in home_before

    tab: Tab = make_tab(lang="en", javascript=False)
    page = tab.page
    sign_in(page)
    page.goto(NEW_NEWS)
    page.get_by_role("textbox", name="Title", exact=True).fill(title)
    page.get_by_label("Summary").fill(summary)
    page.get_by_label("Text (Markdown)").fill(MARKDOWN)
    preview = page.get_by_role("region", name="Preview")
    expect(preview.locator("strong")).to_have_count(0)

    # Without JavaScript the "Preview" submit button renders the form again, input kept, preview filled.
    with page.expect_navigation():
        page.get_by_role("button", name="Preview", exact=True).click()
    assert page.url.endswith(NEW_NEWS), page.url
    expect_rendered_markdown(preview)
    expect(page.get_by_role("textbox", name="Title", exact=True)).to_have_value(title)
    expect(page.get_by_label("Summary")).to_have_value(summary)
    expect(page.get_by_label("Text (Markdown)")).to_have_value(MARKDOWN)
    expect(page.get_by_role("alert")).to_have_count(0)

    save_and_publish(page)
    expect_on_portal(make_tab, server, title, path, home_before, js=False)
    assert tab.console_errors == []
