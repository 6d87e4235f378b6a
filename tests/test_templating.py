"""Per-language compiled templates (suite/templating.py): they render exactly what the plain templates render.

Pages are rendered from a twin of the environment per language in which ``{{ _("literal") }}``,
``static("…")``, ``{{ site_name }}`` are compiled in and plain partials are inlined; these tests
compare its output with the plain environment's, on the demo's portal pages and on small templates.
"""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any

import pytest
from concelho.suite import render as render_module
from concelho.suite.i18n import template_gettext
from concelho.suite.templating import SuiteEnvironment, build_environment, localized
from jinja2 import DictLoader

from .conftest import login, settings_for

DEMO_USER, DEMO_PASSWORD = "bruno.matos", "demo-password-2026"
CSRF = re.compile(r"[0-9a-f]{64,}")


@pytest.fixture
def settings(tmp_path, database_url):  # type: ignore[no-untyped-def]
    """No page cache: every request renders its page."""
    return settings_for(tmp_path / "var", database_url, SUITE_PAGE_CACHE="false")


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages rendered from the plain environment, as before folding."""
    monkeypatch.setattr(render_module, "localized", lambda env, lang, site_name: env)


def _page_paths(client: Any) -> list[str]:
    paths = ["/", "/noticias", "/noticias?feedback=thanks", "/agenda", "/agenda/calendario", "/servicos", "/locais"]
    paths += ["/camara", "/accessibility", "/pagina-que-nao-existe", "/noticias/nao-existe"]
    for listing, pattern in (
        ("/noticias", r'href="(/noticias/(?!feed\.)[^"?/]+)"'),
        ("/agenda?passados=1", r'href="(/agenda/(?!calendario|agenda\.ics)[^"?/]+)"'),
        ("/servicos", r'href="(/servicos/[^"?/]+)"'),
        ("/locais", r'href="(/locais/(?!mapa|locais\.geojson)[^"?/]+)"'),
    ):
        found = re.findall(pattern, client.get(listing).text)
        assert found, f"no detail link on {listing}"
        paths.append(found[0])
    return paths


def _snapshot(client: Any, paths: list[str]) -> dict[str, tuple[int, str]]:
    pages = {}
    for lang in ("pt", "en"):
        for path in paths:
            response = client.get(path, headers={"accept-language": lang})
            pages[f"{lang} {path}"] = (response.status_code, CSRF.sub("TOKEN", response.text))
        response = client.get("/noticias", headers={"accept-language": lang, "hx-request": "true"})
        pages[f"{lang} HX /noticias"] = (response.status_code, CSRF.sub("TOKEN", response.text))
    return pages


def test_portal_pages_render_exactly_as_with_the_plain_templates(cli, client, monkeypatch):
    assert cli("demo", "load").exit_code == 0
    paths = _page_paths(client)
    for signed_in in (False, True):
        if signed_in:
            assert login(client, DEMO_USER, DEMO_PASSWORD).status_code == 303
        folded = _snapshot(client, paths)
        with monkeypatch.context() as patch:
            _plain(patch)
            plain = _snapshot(client, paths)
        assert folded.keys() == plain.keys()
        for key, page in folded.items():
            assert page == plain[key], f"{key} (signed in: {signed_in}) differs from the plain rendering"
        assert "Saltar para o conteúdo principal" in folded["pt /noticias"][1]
        assert "Skip to main content" in folded["en /noticias"][1]
        assert ("/logout" in folded["pt /noticias"][1]) is signed_in


def _env(templates: dict[str, str], *, debug: bool = False, enable_async: bool = False) -> SuiteEnvironment:
    env = build_environment([], debug=debug, enable_async=enable_async)
    env.loader = DictLoader(templates)
    return env


def test_literal_messages_are_translated_and_escaped_when_compiled():
    source = (
        '{{ _("Sign in") }}|{{ gettext(\'Sign in\') }}|{{ _(message) }}|{{ _("Hello, %(name)s", name=who) }}|'
        '{{ _("See the citizen\'s record") }}|{{ _(\'A < B & "C"\') }}|{{ site_name }}|'
        '{{ static("core/suite.css") }}|{{ html_lang }}|{{ x.static("y") }}|{{ fallback or _("Sign in") }}'
    )
    env = _env({"t.html": source})
    runtime = {
        "_": lambda message, **kw: f"runtime:{message}",
        "gettext": lambda message, **kw: f"runtime:{message}",
        "static": lambda path: f"runtime:{path}",
        "message": "<i>",
        "who": "Ana",
        "site_name": "runtime",
        "html_lang": "runtime",
        "x": SimpleNamespace(static=lambda path: f"method:{path}"),
        "fallback": "",
    }
    site = 'Câmara <de> Vila & "Serena"'
    pt = localized(env, "pt", site).get_template("t.html").render(runtime).split("|")
    en = localized(env, "en", site).get_template("t.html").render(runtime).split("|")
    assert pt == [
        "Iniciar sessão",
        "Iniciar sessão",
        "runtime:&lt;i&gt;",  # a variable message is translated when rendered
        "runtime:Hello, %(name)s",  # so is one with arguments
        template_gettext("pt")[0]("See the citizen's record").replace("'", "&#39;"),
        "A &lt; B &amp; &#34;C&#34;",
        "Câmara &lt;de&gt; Vila &amp; &#34;Serena&#34;",
        "/static/core/suite.css",
        "pt-PT",
        "method:y",  # an attribute called like a folded name is left alone
        "Iniciar sessão",
    ]
    assert en[0] == "Sign in" and en[4] == "See the citizen&#39;s record" and en[8] == "en"
    # The plain environment still calls everything when rendering.
    assert env.get_template("t.html").render(runtime).split("|")[0] == "runtime:Sign in"


PARTIALS = {
    "loop.html": "{% for x in xs %}[{{ x }}{{ loop.index }}{% if loop.last %} {{ outer }}{% endif %}]{% endfor %}",
    "sets.html": '{% set y = "inner" %}{{ y }}',
    "macro.html": "{% macro f() %}m{{ y }}{% endmacro %}{{ f() }}",
    "nested.html": '<{% include "loop.html" %}>',
    "self.html": "{{ self }}",
    "amp.html": '{{ _("A & B") }}',
    "main.html": (
        '{% set y = "outer" %}{% for outer in [1, 2] %}{% include "loop.html" %}|{% endfor %}\n'
        '{% include "sets.html" %} {{ y }}\n'
        '{% include "macro.html" with context %}\n'
        '{% include "nested.html" %}\n'
        '  {% include "amp.html" %}\n'
        '{% include "missing.html" ignore missing %}{% include "sets.html" without context %}\n'
        "{% macro g() %}{% include 'loop.html' %}{% endmacro %}{{ g() }}\n"
        '{% include "self.html" %}'
    ),
}


def test_inlined_partials_render_like_includes():
    env = _env(PARTIALS)
    ctx = {"xs": ["a", "<b>"], "_": template_gettext("en")[0]}
    plain = env.get_template("main.html").render(ctx)
    twin = localized(env, "en", "Site")
    assert twin.get_template("main.html").render(ctx) == plain
    assert plain.startswith("[a1][&lt;b&gt;2 1]|[a1][&lt;b&gt;2 2]|inner outer\nmouter<[a1]")
    code = twin.compile(PARTIALS["main.html"], "main.html", raw=True)
    assert "get_template('loop.html'" not in code and "get_template('nested.html'" not in code  # inlined
    assert "get_template('sets.html'" in code and "get_template('macro.html'" in code  # their own scope: included
    # The debug environment (templates reloaded when edited) keeps real includes.
    debug_twin = localized(_env(PARTIALS, debug=True), "en", "Site")
    assert "get_template('loop.html'" in debug_twin.compile(PARTIALS["main.html"], "main.html", raw=True)


def test_async_twin_for_slot_renderers():
    env = _env(PARTIALS, enable_async=True)
    ctx = {"xs": ["a", "<b>"], "_": template_gettext("pt")[0]}

    async def both() -> tuple[str, str]:
        plain = await env.get_template("main.html").render_async(ctx)
        folded = await localized(env, "pt", "Site").get_template("main.html").render_async(ctx)
        return plain, folded

    plain, folded = asyncio.run(both())
    assert folded == plain


def test_item_media_macro_still_renders_the_attachment_list():
    """``core/_item_media.html`` (hero + ``attachment_list``) stays for site templates; pages include its parts."""
    env = build_environment([])
    attachments = [SimpleNamespace(id=3, title="<Plano>", filename="plano.final.pdf", size=2048)]
    hero = SimpleNamespace(id=5, alt_text='"x"', renditions=SimpleNamespace(medium=SimpleNamespace(width=1, height=2)))
    ctx = {"attachments": attachments, "hero": hero, "_": template_gettext("pt")[0]}
    old = env.from_string(
        '{% include "core/_item_media.html" %}'
        '{% from "core/_item_media.html" import attachment_list with context %}{{ attachment_list(attachments) }}'
    ).render(ctx)
    new = env.from_string('{% include "core/_item_hero.html" %}{% include "core/_attachments.html" %}').render(ctx)
    assert new == old
    assert "&lt;Plano&gt;" in new and "(PDF, 2.0 KB)" in new and 'alt="&#34;x&#34;"' in new


def test_names_a_template_rebinds_are_not_folded():
    templates = {
        "set.html": '{% set _ = shout %}{{ _("Sign in") }}|{% include "partial.html" %}',
        "partial.html": '{{ _("Sign in") }}',
        "macro.html": '{% macro static(path) %}macro:{{ path }}{% endmacro %}{{ static("x.css") }}',
        "for.html": '{% for site_name in ["loop"] %}{{ site_name }}{% endfor %}|{{ site_name }}',
        "import.html": '{% from "macro.html" import static %}{{ static("y.css") }}',
        "use.html": '{% set label = _("Sign in") %}{% if _(dynamic) %}{{ label }}|{{ _("Sign in") }}{% endif %}',
    }
    env = _env(templates)
    twin = localized(env, "pt", "Site")
    ctx = {"_": lambda message: f"runtime:{message}", "shout": str.upper, "site_name": "ctx", "dynamic": "d"}
    for name in ("set.html", "macro.html", "for.html", "import.html"):  # what the plain templates render
        assert twin.get_template(name).render(ctx) == env.get_template(name).render(ctx), name
    assert twin.get_template("set.html").render(ctx) == "SIGN IN|SIGN IN"
    assert twin.get_template("for.html").render(ctx) == "loop|ctx"
    # Calls are uses, not bindings: still folded (the context's ``_`` is not called for them).
    assert twin.get_template("use.html").render(ctx) == "Iniciar sessão|Iniciar sessão"
    assert twin.get_template("partial.html").render(ctx) == "Iniciar sessão"


def test_remembered_dates_keep_equal_instants_of_other_zones_apart():
    from datetime import UTC, date, datetime, timedelta, timezone

    from concelho.suite.templating import iso_datetime, iso_day

    utc = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    lisbon_winter_plus_one = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == lisbon_winter_plus_one  # the same instant: equal, and equal hashes
    assert [iso_day(utc), iso_day(lisbon_winter_plus_one)] == ["2026-01-01", "2026-01-02"]
    assert iso_datetime(lisbon_winter_plus_one) == "2026-01-02T00:30:00+01:00"
    assert iso_datetime(utc) == "2026-01-01T23:30:00+00:00"
    assert [iso_day(date(2026, 3, 4)), iso_day(datetime(2026, 3, 4, 5, 6)), iso_day(None)] == ["2026-03-04"] * 2 + [""]


def test_in_debug_an_edited_portal_menu_shows_at_once(tmp_path, database_url):
    """The menu is rendered once per language and section, except when templates reload on change."""
    import os

    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    site = tmp_path / "site"
    (site / "core").mkdir(parents=True)
    menu = site / "core" / "_portal_nav.html"
    menu.write_text('<nav id="menu-one"></nav>')
    settings = settings_for(
        tmp_path / "var", database_url, SUITE_DEBUG="true", SUITE_TEMPLATES_DIR=str(site), SUITE_PAGE_CACHE="false"
    )
    with TestClient(create_app(settings)) as client:
        assert 'id="menu-one"' in client.get("/").text
        menu.write_text('<nav id="menu-two"></nav>')
        later = menu.stat().st_mtime + 10
        os.utime(menu, (later, later))
        assert 'id="menu-two"' in client.get("/").text
