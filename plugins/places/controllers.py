"""Public places pages: the list (category filter), a place, the map and its GeoJSON."""

from __future__ import annotations

import json
from typing import Any

from concelho.suite.auth.guards import PUBLIC
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
from concelho.suite.render import render, request_language
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery

from . import services
from .plugin import CATEGORIES, PLACE

GEOJSON = "application/geo+json"


def plugin_settings(request: Request) -> dict[str, Any]:
    state = request.app.state.suite
    return state.plugin_settings("places")


class PlacesController(Controller):
    path = "/locais"
    opt = PUBLIC

    @get("/", name="places:list")
    async def index(self, request: Request, categoria: FromQuery[str] = "") -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            _ = template_gettext(lang)[0]
            category = categoria if categoria in CATEGORIES else None
            items, available = await services.places(portal_reads(request), lang, category)
            return await render(
                request,
                "places/list.html",
                {
                    **_listing_context(lang, category, items, available),
                    "crumbs": [Crumb("Home", "/"), Crumb("Places")],
                    "meta": page_meta(
                        request,
                        title=_("Places"),
                        description=_("Museums, libraries, beaches, parks, sports facilities and council offices."),
                        path="/locais",
                    ),
                },
                block="results",
            )

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/mapa", name="places:map")
    async def map_page(self, request: Request, categoria: FromQuery[str] = "") -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            _ = template_gettext(lang)[0]
            category = categoria if categoria in CATEGORIES else None
            items, available = await services.places(portal_reads(request), lang, category)
            options = plugin_settings(request)
            return await render(
                request,
                "places/map.html",
                {
                    **_listing_context(lang, category, items, available),
                    "geojson_url": "/locais/locais.geojson" + services.map_query(category, lang),
                    "map": options,
                    "crumbs": [Crumb("Home", "/"), Crumb("Places", "/locais"), Crumb("Map of places")],
                    "meta": page_meta(
                        request, title=_("Map of places"), description=_("Places on the map."), path="/locais/mapa"
                    ),
                },
                block="results",
            )

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/locais.geojson", name="places:geojson")
    async def geojson(self, request: Request, categoria: FromQuery[str] = "") -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            category = categoria if categoria in CATEGORIES else None
            items, _available = await services.places(portal_reads(request), lang, category)
            body = json.dumps(services.feature_collection(items, base_url(request), lang), ensure_ascii=False)
            return Response(body, status_code=200, media_type=GEOJSON, headers={"Vary": "Accept-Language, Cookie"})

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/{slug:str}", name="places:detail")
    async def detail(self, request: Request, slug: FromPath[str]) -> Response:
        async def produce() -> Response:
            reads = portal_reads(request)
            item = await live_item(reads, PLACE, slug)
            lang = item.language
            point = services.coordinates(item)
            crumbs = [Crumb("Home", "/"), Crumb("Places", "/locais")]
            if item.category:
                category_url = "/locais" + services.map_query(item.category, "pt")
                crumbs.append(Crumb(services.category_label(item.category, lang), category_url))
            crumbs.append(Crumb(item.title))
            return await render_item(
                request, reads, PLACE, item, "places/detail.html",
                crumbs=crumbs,
                schema=item_schema(request, PLACE, item, services.place_schema_extra(item)),
                context={
                    "point": point,
                    "osm_link": services.osm_link(*point) if point else None,
                    "category_label": services.category_label(item.category, lang),
                    "category_query": services.map_query(item.category, lang),
                },
            )  # fmt: skip

        return await request.app.state.suite.page_cache.serve(request, produce)


def _listing_context(lang: str, category: str | None, items: list[Any], available: list[str]) -> dict[str, Any]:
    return {
        "items": items,
        "category": category,
        "categories": [(c, services.category_label(c, lang)) for c in available],
        "label_of": lambda c: services.category_label(c, lang),
        "coordinates": services.coordinates,
        "ctype": PLACE,
    }
