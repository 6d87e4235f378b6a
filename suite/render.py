"""One render helper: the full page normally, only a block for HTMX requests.

A request made by ``hx-get``/``hx-post`` (not boosted, not a history restore) gets the
named block (``content`` by default); everything else gets the whole page.  Every
response says ``Vary: HX-Request`` so caches never mix the two.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from jinja2 import Environment, Template
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from .i18n import HTML_LANG, LANG_COOKIE, LANGUAGE_NAMES, negotiate, template_gettext
from .request_scope import query_value, request_path, scope_header, scope_headers
from .security import csrf_config
from .settings import LANGUAGES
from .templating import localized

_HTMX_HEADERS = (b"hx-request", b"hx-boosted", b"hx-history-restore-request")


def is_fragment_request(request: Request) -> bool:
    headers = scope_headers(request.scope, *_HTMX_HEADERS)
    return (
        headers.get(b"hx-request") == "true"
        and headers.get(b"hx-boosted") != "true"
        and headers.get(b"hx-history-restore-request") != "true"
    )


def request_language(request: Request) -> str:
    cached = request.scope.get("state", {}).get("lang")
    if cached:
        return cached
    state = request.app.state.suite
    lang = negotiate(
        query_value(request, "lang"),
        request.cookies.get(LANG_COOKIE),
        scope_header(request.scope, b"accept-language"),
        state.settings.default_language,
    )
    request.scope.setdefault("state", {})["lang"] = lang
    return lang


class NavLink(NamedTuple):
    """A menu entry as a page shows it: translated label, and whether it is the current section."""

    url: str
    label: str
    current: bool


def _nav_entries(state: Any, area: str, lang: str) -> tuple[tuple[Any, str, str], ...]:
    """(entry, translated label, URL prefix it is current under) of every entry of ``area``, once per language."""
    key = (area, lang)
    entries = state.nav_cache.get(key)
    if entries is None:
        gettext = template_gettext(lang)[0]
        entries = state.nav_cache[key] = tuple(
            (item, gettext(item.label), item.url.rstrip("/") + "/") for item in state.registry.nav_items(area)
        )
    return entries


def nav_links(state: Any, area: str, lang: str, user: Any, current_path: str) -> list[NavLink]:
    """The entries of ``area`` the user may see; the labels are translated once per language."""
    entries = _nav_entries(state, area, lang)
    here = current_path + "/"
    return [
        NavLink(item.url, label, here.startswith(prefix))
        for item, label, prefix in entries
        if not item.permission or (user and user.has(item.permission))
    ]


def portal_nav(request: Request, state: Any, lang: str, user: Any, current_path: str) -> Markup:
    """The portal's main menu (``core/_portal_nav.html``), rendered once per language, visible entries and
    current section: it depends on nothing else (menu entries are fixed for the app's life).  With
    templates reloaded on change (debug), it is rendered every time, so an edit shows at once.

    A visitor (no user) sees the entries that need no permission, so their menu is found by which of
    those are current, without building the links.
    """
    visitor_key = None
    if user is None:
        here = current_path + "/"
        current = tuple(
            index
            for index, (item, _label, prefix) in enumerate(_nav_entries(state, "portal", lang))
            if not item.permission and here.startswith(prefix)
        )
        visitor_key = ("visitor", lang, current, current_path == "/")
        html = state.nav_html.get(visitor_key)
        if html is not None:
            return html
    links = tuple(nav_links(state, "portal", lang, user, current_path))
    key = (lang, links, current_path == "/")
    html = state.nav_html.get(key)
    if html is None:
        env = page_templates(request, sync=True)
        gettext = template_gettext(lang)[0]
        values = {"links": links, "on_home": key[2], "lang": lang, "_": gettext}
        html = Markup(env.get_template("core/_portal_nav.html").render(values))  # noqa: S704 - autoescaped template output
        if env.auto_reload:
            return html
        state.nav_html[key] = html
    if visitor_key is not None:
        state.nav_html[visitor_key] = html
    return html


class LangLink(NamedTuple):
    """One entry of the language switch."""

    code: str
    label: str
    href: str
    current: bool


def lang_links(meta: Any, current_path: str, lang: str) -> list[LangLink]:
    """Where the language switch goes: an item's translation when the page has one, else the same page."""
    switch = None
    if meta:
        switch = meta.get("switch") if isinstance(meta, dict) else getattr(meta, "switch", None)
    links = []
    for code in LANGUAGES:
        target = (switch.get(code) if switch else None) or current_path
        href = target if "lang=" in target else f"{target}{'&' if '?' in target else '?'}lang={code}"
        links.append(LangLink(code, LANGUAGE_NAMES[code], href, code == lang))
    return links


#: ``languages`` of the template context: (code, name) of every language, in order.
LANGUAGE_CHOICES = [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]


def static_url(path: str) -> str:
    """``static("core/suite.css")`` in templates (folded into the compiled page when literal)."""
    return f"/static/{path}"


def base_context(request: Request, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """What every template can use: user, language, gettext, csrf token, navigation, slots
    (added to ``into`` when given)."""
    state = request.app.state.suite
    lang = request_language(request)
    gettext, ngettext = template_gettext(lang)
    user = request.scope.get("user")
    path = request_path(request)
    csrf = ScopeState.from_scope(request.scope).csrf_token
    if not isinstance(csrf, str) and (config := csrf_config(request.app)) is not None:
        # Error pages for unknown routes are rendered before the CSRF middleware ran: the token is
        # the cookie's value, so the sign-out form and hx-headers keep working there too.
        csrf = request.cookies.get(config.cookie_name)
    values = {
        "request": request,
        "user": user,
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "languages": LANGUAGE_CHOICES,
        "gettext": gettext,
        "ngettext": ngettext,
        "_": gettext,
        "csrf_token": csrf if isinstance(csrf, str) else "",
        "site_name": state.settings.site_name,
        "nav": lambda area: [
            item
            for item in state.registry.nav_items(area)
            if not item.permission or (user and user.has(item.permission))
        ],
        "nav_links": lambda area: nav_links(state, area, lang, user, path),
        "portal_nav": lambda: portal_nav(request, state, lang, user, path),
        "lang_links": lambda meta: lang_links(meta, path, lang),
        # ``query_value("name")``: a query value (``request.query_params`` builds a multidict each time).
        "query_value": lambda name: query_value(request, name),
        "slot": lambda name: state.render_slot(name, request),
        "url_for": request.app.route_reverse,
        "static": static_url,
        "current_path": path,
    }
    if into is None:
        return values
    into.update(values)
    return into


def page_templates(request: Request, *, sync: bool = False) -> Environment:
    """The template environment for this request's language, with its constants compiled in.

    Slot renderers use it like ``state.templates``:
    ``await page_templates(request).get_template("news/_home.html").render_async({**base_context(request), …})``.
    """
    state = request.app.state.suite
    env = state.sync_templates if sync else state.templates
    return localized(env, request_language(request), state.settings.site_name)


def template_globals(tmpl: Template) -> dict[str, Any]:
    """``tmpl.globals`` as one dict, flattened once per template.

    Jinja keeps a template's globals as a ``ChainMap`` over its environment's, and copying one
    walks it key by key in Python (9 µs a page).  The environments' globals are set when the app
    is built; with templates reloaded on change (debug) they are flattened every time.
    """
    flat: dict[str, Any] | None = tmpl.__dict__.get("_suite_globals")
    if flat is None:
        flat = dict(tmpl.globals)
        if not tmpl.environment.auto_reload:
            tmpl.__dict__["_suite_globals"] = flat
    return flat


async def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    block: str = "content",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    """Render ``template`` (or only ``block`` for an HTMX fragment request) as an HTML response.

    The template renders synchronously (fast).  Page slots are rendered by their (async) plugin
    renderers: before the template for the slots this template asked for last time (it asks for
    the same ones every time), after it for any other, which the template leaves as a marker.
    """
    state = request.app.state.suite
    tmpl = page_templates(request, sync=True).get_template(template)
    # The template's globals and the page's values in one dict, handed to the template as they are
    # (``shared``, as Jinja does for an include) rather than copied twice by ``Template.render``.
    ctx = base_context(request, into=dict(template_globals(tmpl)))
    fragment = is_fragment_request(request) and block in tmpl.blocks
    seen_key = (id(tmpl), fragment and block)
    ready = {name: await state.render_slot(name, request) for name in state.slots_seen.get(seen_key, ())}
    late: list[str] = []

    def slot(name: str) -> Markup:
        html = ready.get(name)
        if html is None:
            late.append(name)
            html = Markup(f"<!--suite-slot:{name}-->")  # noqa: S704 - constant marker
        return html

    ctx["slot"] = slot
    if context:
        ctx.update(context)
    # ``tmpl.new_context(ctx, shared=True)``, given the flattened globals: Jinja would walk the
    # ChainMap again to collect their names.
    env = tmpl.environment
    jinja_context = env.context_class(env, ctx, tmpl.name, tmpl.blocks, globals=template_globals(tmpl))
    try:
        html = "".join(tmpl.blocks[block](jinja_context) if fragment else tmpl.root_render_func(jinja_context))
    except Exception:
        tmpl.environment.handle_exception()  # Jinja's own traceback rewriting, as in Template.render
    if late:
        late = list(dict.fromkeys(late))
        for name in late:
            html = html.replace(f"<!--suite-slot:{name}-->", await state.render_slot(name, request))
        state.slots_seen[seen_key] = (*ready, *late)
    return html_response(request, html, status_code, headers)


def render_sync(request: Request, template: str, context: dict[str, Any], status_code: int) -> Response[str]:
    """Synchronous rendering for exception handlers (page slots stay empty)."""
    ctx = base_context(request)
    ctx["slot"] = lambda name: ""
    ctx.update(context)
    tmpl = page_templates(request, sync=True).get_template(template)
    if is_fragment_request(request) and "content" in tmpl.blocks:
        html = "".join(tmpl.blocks["content"](tmpl.new_context(ctx)))
    else:
        html = tmpl.render(ctx)
    return html_response(request, html, status_code, None)


class PageASGIResponse:
    """The ASGI side of a rendered page: status, encoded headers and body, sent as two messages."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


_HTML_CONTENT_TYPE = (b"content-type", b"text/html; charset=utf-8")


class HTMLResponse(Response[str]):
    """A rendered page.  When nothing but its own headers comes with it (no cookies, background
    task or route-level headers), it becomes an ASGI response directly: the same status, headers
    (lower-cased, then content type and length, as Litestar sends them) and body, without
    Litestar's general serialisation path (a tenth of a small page's time)."""

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> Any:  # type: ignore[override]
        if (
            app is not None
            or self.cookies
            or self.background is not None
            or not isinstance(self.content, str)
            or self.status_code in (204, 304)
            or any(kwargs.get(name) for name in ("background", "cookies", "encoded_headers", "headers"))
            or kwargs.get("is_head_response")
        ):
            return super().to_asgi_response(app, request, **kwargs)
        body = self.content.encode()
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()]
        headers.append(_HTML_CONTENT_TYPE)
        headers.append((b"content-length", str(len(body)).encode()))
        return PageASGIResponse(self.status_code, headers, body)


def html_response(request: Request, html: str, status_code: int, headers: dict[str, str] | None) -> Response[str]:
    response_headers = {"Vary": "HX-Request, Accept-Language, Cookie"}
    if headers:
        response_headers.update(headers)
    cookies = []
    query_lang = query_value(request, "lang")
    if query_lang in LANGUAGES and query_lang != request.cookies.get(LANG_COOKIE):
        cookies.append(Cookie(key=LANG_COOKIE, value=query_lang, max_age=365 * 86400, samesite="lax", path="/"))
    return HTMLResponse(
        content=html,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers=response_headers,
        cookies=cookies,
    )
