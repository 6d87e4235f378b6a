"""Public services pages: the catalogue (category and "online only" filters), a service, the home block."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

from concelho.suite.auth.guards import PUBLIC
from concelho.suite.cache import cached_slot
from concelho.suite.content.portal import (
    Crumb,
    base_url,
    item_schema,
    live_item,
    page_meta,
    portal_reads,
    render_item,
)
from concelho.suite.i18n import template_gettext
from concelho.suite.render import base_context, render, request_language
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from markupsafe import Markup

from . import services
from .plugin import CATEGORIES, SERVICE

TRUE = {"1", "true", "on", "yes", "sim"}
CHANNEL_NAMES = {
    "pt": {"online": "Online", "presencial": "Presencial", "telefone": "Telefone", "correio": "Correio"},
    "en": {"online": "Online", "presencial": "In person", "telefone": "By phone", "correio": "By post"},
}


def plugin_settings(request: Request) -> dict[str, Any]:
    state = request.app.state.suite
    return state.plugin_settings("services")


class ServicesController(Controller):
    path = "/servicos"
    opt = PUBLIC

    @get("/", name="services:catalogue")
    async def index(self, request: Request, categoria: FromQuery[str] = "", online: FromQuery[str] = "") -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            _ = template_gettext(lang)[0]
            category = categoria if categoria in CATEGORIES else None
            online_only = online.lower() in TRUE
            groups, total, available = await services.catalogue(
                portal_reads(request), lang, category=category, online_only=online_only
            )
            return await render(
                request,
                "services/catalogue.html",
                {
                    "groups": groups,
                    "total": total,
                    "categories": [(c, services.category_label(c, lang)) for c in available],
                    "category": category,
                    "online_only": online_only,
                    "ctype": SERVICE,
                    "crumbs": [Crumb("Home", "/"), Crumb("Services")],
                    "meta": page_meta(
                        request,
                        title=_("Services"),
                        description=_("What you can ask the council for: documents, fees and processing times."),
                        path="/servicos",
                    ),
                },
                block="results",
            )

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/{slug:str}", name="services:detail")
    async def detail(self, request: Request, slug: FromPath[str]) -> Response:
        async def produce() -> Response:
            reads = portal_reads(request)
            item = await live_item(reads, SERVICE, slug)
            link = services.request_link(plugin_settings(request)["request_url"], item)
            lang = item.language
            crumbs = [Crumb("Home", "/"), Crumb("Services", "/servicos")]
            if item.category:
                crumbs.append(Crumb(services.category_label(item.category, lang), _category_url(item.category)))
            crumbs.append(Crumb(item.title))
            return await render_item(
                request, reads, SERVICE, item, "services/detail.html",
                crumbs=crumbs,
                schema=service_schema(request, item, link),
                context={
                    "code": item.data.get("service_code", ""),
                    "channels": [
                        CHANNEL_NAMES[lang].get(c, c) for c in item.data.get("channels") or []
                    ],
                    "forms": services.form_templates(item) + [
                        (m.title, request.app.route_reverse("media:file", media_id=m.id, variant="original"))
                        for m in await services.attached_documents(reads, item)
                    ],
                    "request_link": link,
                    "category_label": services.category_label(item.category, lang),
                    "category_url": _category_url(item.category),
                },
            )  # fmt: skip

        return await request.app.state.suite.page_cache.serve(request, produce)


@lru_cache(maxsize=256)
def _category_url(category: str) -> str:
    """The catalogue filtered by ``category`` (remembered: a handful of categories, quoting is slow)."""
    return f"/servicos?categoria={quote(category)}" if category else "/servicos"


def service_schema(request: Request, item: Any, link: str | None) -> dict[str, Any]:
    """schema.org GovernmentService: type, provider, channels (with the processing time), fee."""
    root = base_url(request)
    page = root + SERVICE.url(item.slug, item.language)
    data = item.data
    names = CHANNEL_NAMES["en" if item.language == "en" else "pt"]
    channels = []
    for channel in data.get("channels") or []:
        entry: dict[str, Any] = {"@type": "ServiceChannel", "name": names.get(channel, channel)}
        if channel == "online":
            entry["serviceUrl"] = (root + link if link.startswith("/") else link) if link else page
        if isinstance(data.get("processing_days"), int):
            entry["processingTime"] = f"P{data['processing_days']}D"
        channels.append(entry)
    extra: dict[str, Any] = {
        "serviceType": services.category_label(item.category, item.language) if item.category else item.title,
        "provider": {
            "@type": "GovernmentOrganization",
            "name": request.app.state.suite.settings.site_name,
            "url": root + "/",
        },
    }
    if data.get("service_code"):
        extra["identifier"] = data["service_code"]
    if data.get("description") and not item.summary:
        extra["description"] = data["description"]
    if channels:
        extra["availableChannel"] = channels
    if data.get("fee"):
        extra["offers"] = {"@type": "Offer", "description": data["fee"]}
    return item_schema(request, SERVICE, item, extra)


@cached_slot
async def featured_services_block(request: Request) -> Markup:
    """Home page slot: the most used services (setting ``featured``, else the first online ones)."""
    state = request.app.state.suite
    lang = request_language(request)
    items = await services.featured(portal_reads(request), lang, plugin_settings(request)["featured"])
    if not items:
        return Markup("")
    tmpl = state.templates.get_template("services/_home.html")
    html = await tmpl.render_async({**base_context(request), "items": items, "ctype": SERVICE})
    return Markup(html)  # noqa: S704 - autoescaped template output
