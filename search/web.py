"""Search pages and API.

* ``/pesquisa`` — portal search (public; anonymous visibility): search-as-you-type with HTMX, facet
  checkboxes, snippets, pagination, "did you mean", best bets; scoped with ``?tipo=noticias`` …
* ``/intranet/pesquisa`` — what the signed-in employee may see (current department and workspaces).
* ``/intranet/pesquisa/relatorio`` — queries that found nothing (``content.edit``).
* ``/intranet/pesquisa/destaques`` — best bets; ``/intranet/pesquisa/sinonimos`` — synonyms.
* ``GET /api/search`` — JSON (in the OpenAPI schema at ``/api/schema/openapi.json``).
* ``/opensearch.xml`` — OpenSearch description (linked from every page's ``<head>``).

When the engine is unreachable every page and the API answer from the database fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape as xml_escape

from concelho.suite.auth.guards import PUBLIC, intranet_required, permission_required
from concelho.suite.i18n import LANGUAGE_NAMES, N_
from concelho.suite.render import render
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .contract import SearchQuery, Visibility
from .models import SearchBestBet, SearchMiss, SearchSynonym
from .service import (
    SearchOutcome,
    apply_synonyms,
    bump_best_bets_version,
    bump_synonyms_version,
    invalidate_best_bets,
    normalize_query,
    parse_words,
    run_search,
    runtime,
    top_misses,
)
from .visibility import visibility_for

PER_PAGE = 10
MAX_PAGE = 100
#: Scoped searches: ``/pesquisa?tipo=noticias`` → the type(s) behind each word.
SCOPES: dict[str, tuple[str, ...]] = {
    "noticias": ("news.article",),
    "servicos": ("services.service",),
    "documentos": ("pages.document",),
    "agenda": ("events.event",),
    "locais": ("places.place",),
    "paginas": ("pages.page",),
    "emprego": ("pages.job",),
}
SCOPE_TITLES = {
    "noticias": N_("Search news"),
    "servicos": N_("Search services"),
    "documentos": N_("Search documents"),
}
FACET_PARAMS = {"type": "tipo", "category": "categoria", "language": "lingua"}
FACET_LABELS = {"type": N_("Type"), "category": N_("Category"), "language": N_("Language")}
EDIT = permission_required("content.edit")


# ------------------------------------------------------------------------------------------------
# Shared by the portal and intranet pages
# ------------------------------------------------------------------------------------------------
@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class FacetView:
    name: str
    param: str
    label: str
    values: list[FacetValue] = field(default_factory=list)


def _scope_of(type_name: str) -> str:
    return next((slug for slug, types in SCOPES.items() if types == (type_name,)), type_name)


def _types_for(raw: list[str], known: set[str]) -> list[str]:
    out: list[str] = []
    for value in raw:
        for type_name in SCOPES.get(value, (value,)):
            if type_name in known and type_name not in out:
                out.append(type_name)
    return out


@dataclass
class SearchForm:
    q: str
    tipo: list[str]
    categoria: list[str]
    lingua: list[str]
    page: int

    @classmethod
    def from_request(cls, request: Request) -> SearchForm:
        params = request.query_params
        try:
            page = int(params.get("page") or 1)
        except ValueError:
            page = 1

        def many(name: str) -> list[str]:
            return list(dict.fromkeys(v.strip() for v in params.getall(name, []) if v and v.strip()))[:20]

        return cls(
            q=" ".join(str(params.get("q") or "").split())[:200],
            tipo=many("tipo"),
            categoria=many("categoria"),
            lingua=[v for v in many("lingua") if v in LANGUAGE_NAMES],
            page=min(max(1, page), MAX_PAGE),
        )

    def query_string(self, **changes: Any) -> str:
        values: dict[str, Any] = {"q": self.q, "tipo": self.tipo, "categoria": self.categoria, "lingua": self.lingua}
        values.update(changes)
        page = changes.get("page", 1)
        pairs = [(k, v) for k, vs in values.items() if k != "page" for v in (vs if isinstance(vs, list) else [vs]) if v]
        if page and page != 1:
            pairs.append(("page", str(page)))
        return urlencode(pairs)


async def _search_page(
    request: Request,
    db: AsyncSession,
    visibility: Visibility,
    template: str,
    base_path: str,
    *,
    context: dict[str, Any] | None = None,
) -> Response:
    state = request.app.state.suite
    rt = runtime(state)
    form = SearchForm.from_request(request)
    known = set(rt.providers.types())
    types = _types_for(form.tipo, known)
    filters: dict[str, list[str]] = {}
    if types:
        filters["type"] = types
    if form.categoria:
        filters["category"] = form.categoria
    if form.lingua:
        filters["language"] = form.lingua
    query = SearchQuery(
        text=form.q,
        visibility=visibility,
        filters=filters,
        limit=PER_PAGE,
        offset=(form.page - 1) * PER_PAGE,
    )
    outcome = await run_search(state, db, query, log_miss=True)
    facets = _facet_views(outcome, form, types, rt)
    pages = max(1, math.ceil(outcome.result.total / PER_PAGE)) if outcome.result.total else 1
    scope = form.tipo[0] if len(form.tipo) == 1 and form.tipo[0] in SCOPE_TITLES else None
    return await render(
        request,
        template,
        {
            "form": form,
            "outcome": outcome,
            "result": outcome.result,
            "facets": facets,
            "page": form.page,
            "pages": min(pages, MAX_PAGE),
            "base_path": base_path,
            "scope_title": SCOPE_TITLES.get(scope or ""),
            "type_label": rt.providers.label,
            **(context or {}),
        },
        block="results",
    )


def _facet_views(outcome: SearchOutcome, form: SearchForm, types: list[str], rt: Any) -> list[FacetView]:
    views: list[FacetView] = []
    selected = {"type": set(types), "category": set(form.categoria), "language": set(form.lingua)}
    for name in ("type", "category", "language"):
        counts = dict(outcome.result.facets.get(name) or {})
        for value in selected[name]:
            counts.setdefault(value, 0)
        values = []
        for value, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if name == "type":
                param_value, label = _scope_of(value), rt.providers.label(value)
            elif name == "language":
                param_value, label = value, LANGUAGE_NAMES.get(value, value)
            else:
                param_value, label = value, value.capitalize()
            values.append(FacetValue(param_value, label, count, value in selected[name]))
        if values:
            views.append(FacetView(name, FACET_PARAMS[name], FACET_LABELS[name], values))
    return views


# ------------------------------------------------------------------------------------------------
# Portal
# ------------------------------------------------------------------------------------------------
class PortalSearchController(Controller):
    path = "/"
    opt = PUBLIC

    @get("/pesquisa", name="search:portal")
    async def portal(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        return await _search_page(request, db, Visibility.anonymous(), "search/portal.html", "/pesquisa")

    @get("/opensearch.xml", name="search:opensearch")
    async def opensearch(self, request: Request) -> Response:
        settings = request.app.state.suite.settings
        root = settings.base_url.rstrip("/")
        name = settings.site_name
        short = name if len(name) <= 16 else name.rsplit(" ", 1)[-1][:16]
        root = xml_escape(root)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<OpenSearchDescription xmlns="http://a9.com/-/spec/opensearch/1.1/">\n'
            f"  <ShortName>{xml_escape(short)}</ShortName>\n"
            f"  <Description>{xml_escape(name)}</Description>\n"
            "  <InputEncoding>UTF-8</InputEncoding>\n"
            "  <Language>pt-PT</Language>\n"
            f'  <Url type="text/html" method="get" template="{root}/pesquisa?q={{searchTerms}}"/>\n'
            f'  <Url type="application/json" method="get" template="{root}/api/search?q={{searchTerms}}"/>\n'
            f'  <Url type="application/opensearchdescription+xml" rel="self" template="{root}/opensearch.xml"/>\n'
            "</OpenSearchDescription>\n"
        )
        return Response(body, media_type="application/opensearchdescription+xml; charset=utf-8")


# ------------------------------------------------------------------------------------------------
# Intranet
# ------------------------------------------------------------------------------------------------
class IntranetSearchController(Controller):
    path = "/intranet/pesquisa"
    guards = [intranet_required]

    @get("/", name="search:intranet")
    async def intranet(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        state = request.app.state.suite
        visibility = await visibility_for(db, state.registry, request.scope["user"])
        return await _search_page(request, db, visibility, "search/intranet.html", "/intranet/pesquisa")

    # -- zero-result report --------------------------------------------------------------------
    @get("/relatorio", name="search:report", guards=[EDIT])
    async def report(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        return await render(request, "search/report.html", {"misses": await top_misses(db)})

    @post("/relatorio/{miss_id:int}/apagar", name="search:report_dismiss", guards=[EDIT])
    async def dismiss(self, db: NamedDependency[AsyncSession], miss_id: FromPath[int]) -> Response:
        await db.execute(delete(SearchMiss).where(SearchMiss.id == miss_id))
        await db.commit()
        return Redirect("/intranet/pesquisa/relatorio", status_code=303)

    # -- best bets -----------------------------------------------------------------------------
    @get("/destaques", name="search:best_bets", guards=[EDIT])
    async def best_bets(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        return await self._best_bets_page(request, db, {}, {})

    async def _best_bets_page(
        self, request: Request, db: AsyncSession, form: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> Response:
        state = request.app.state.suite
        rt = runtime(state)
        order = (SearchBestBet.query, SearchBestBet.sort_order, SearchBestBet.id)
        bets = list((await db.execute(select(SearchBestBet).order_by(*order))).scalars())
        docs = await rt.providers.documents(db, [b.doc_id for b in bets if b.doc_id])
        q = str(request.query_params.get("q") or form.get("query") or "").strip()
        candidates = None
        if q:
            visibility = await visibility_for(db, state.registry, request.scope["user"])
            candidates = await run_search(state, db, SearchQuery(q, visibility=visibility, limit=10), best_bets=False)
        return await render(
            request,
            "search/best_bets.html",
            {
                "bets": bets,
                "docs": docs,
                "q": q,
                "candidates": candidates,
                "form": form,
                "errors": errors,
                "type_label": rt.providers.label,
            },
            status_code=status,
        )

    @post("/destaques", name="search:best_bets_add", guards=[EDIT])
    async def add_best_bet(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        raw = await request.form()
        form = {k: str(raw.get(k, "")).strip() for k in ("query", "doc_id", "url", "title")}
        errors: dict[str, str] = {}
        query = normalize_query(form["query"])
        if not query:
            errors["query"] = N_("Write the search words this result is for.")
        doc_id, url = form["doc_id"], form["url"]
        if doc_id:
            found = await runtime(request.app.state.suite).providers.documents(db, [doc_id])
            if found.get(doc_id) is None:
                errors["doc_id"] = N_("This item does not exist or is not published.")
        elif url:
            if not (url.startswith("/") and not url.startswith("//")) and not url.startswith(("https://", "http://")):
                errors["url"] = N_("Use an address starting with / or https://.")
            if not form["title"]:
                errors["title"] = N_("Write the title to show.")
        else:
            errors["doc_id"] = N_("Choose an item or write an address.")
        if errors:
            return await self._best_bets_page(request, db, form, errors, 400)
        position = len(list((await db.execute(select(SearchBestBet.id).where(SearchBestBet.query == query))).all()))
        db.add(
            SearchBestBet(
                query=query, doc_id=doc_id, url="" if doc_id else url, title=form["title"][:300], sort_order=position
            )
        )
        await bump_best_bets_version(db)
        await db.commit()
        invalidate_best_bets(request.app.state.suite)
        return Redirect(f"/intranet/pesquisa/destaques?{urlencode({'q': query})}", status_code=303)

    @post("/destaques/{bet_id:int}/remover", name="search:best_bets_remove", guards=[EDIT])
    async def remove_best_bet(
        self, request: Request, db: NamedDependency[AsyncSession], bet_id: FromPath[int]
    ) -> Response:
        bet = await db.get(SearchBestBet, bet_id)
        if bet is None:
            raise NotFoundException("No such best bet")
        await db.delete(bet)
        await bump_best_bets_version(db)
        await db.commit()
        invalidate_best_bets(request.app.state.suite)
        return Redirect("/intranet/pesquisa/destaques", status_code=303)

    # -- synonyms ------------------------------------------------------------------------------
    @get("/sinonimos", name="search:synonyms", guards=[EDIT])
    async def synonyms(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        return await self._synonyms_page(request, db, {}, {})

    async def _synonyms_page(
        self,
        request: Request,
        db: AsyncSession,
        form: dict[str, Any],
        errors: dict[str, str],
        status: int = 200,
        notice: str | None = None,
    ) -> Response:
        rows = list((await db.execute(select(SearchSynonym).order_by(SearchSynonym.term))).scalars())
        return await render(
            request,
            "search/synonyms.html",
            {"rows": rows, "form": form, "errors": errors, "notice": notice},
            status_code=status,
        )

    @post("/sinonimos", name="search:synonyms_add", guards=[EDIT])
    async def add_synonyms(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        raw = await request.form()
        form: dict[str, Any] = {
            "term": str(raw.get("term", "")).strip(),
            "synonyms": str(raw.get("synonyms", "")).strip(),
            "mutual": raw.get("mutual") == "on",
        }
        errors: dict[str, str] = {}
        term = normalize_query(form["term"])[:100]
        words = [w for w in parse_words(form["synonyms"]) if w != term]
        if not term:
            errors["term"] = N_("Write a word.")
        if not words:
            errors["synonyms"] = N_("Write at least one synonym.")
        if errors:
            return await self._synonyms_page(request, db, form, errors, 400)
        row = (await db.execute(select(SearchSynonym).where(SearchSynonym.term == term))).scalar_one_or_none()
        if row is None:
            db.add(SearchSynonym(term=term, synonyms=words, mutual=form["mutual"]))
        else:
            row.synonyms = list(dict.fromkeys([*row.synonyms, *words]))
            row.mutual = form["mutual"]
            row.updated_at = datetime.now(UTC)
        await bump_synonyms_version(db)
        await db.commit()
        return await _after_synonyms_change(request, db)

    @post("/sinonimos/{row_id:int}/remover", name="search:synonyms_remove", guards=[EDIT])
    async def remove_synonyms(
        self, request: Request, db: NamedDependency[AsyncSession], row_id: FromPath[int]
    ) -> Response:
        row = await db.get(SearchSynonym, row_id)
        if row is None:
            raise NotFoundException("No such synonym")
        await db.delete(row)
        await bump_synonyms_version(db)
        await db.commit()
        return await _after_synonyms_change(request, db)


async def _after_synonyms_change(request: Request, db: AsyncSession) -> Response:
    """Give the synonyms to the engine now; if it is down they are applied when it is back."""
    try:
        await apply_synonyms(request.app.state.suite, db)
        flag = "ok"
    except Exception:
        flag = "later"
    return Redirect(f"/intranet/pesquisa/sinonimos?saved={flag}", status_code=303)


# ------------------------------------------------------------------------------------------------
# JSON API (documented in the OpenAPI schema)
# ------------------------------------------------------------------------------------------------
@dataclass
class ApiHit:
    id: str
    type: str
    title: str
    url: str
    #: HTML-safe: escaped text with ``<mark>`` around the words that matched.
    snippet: str
    language: str
    category: str
    published_at: datetime | None


@dataclass
class ApiBestBet:
    title: str
    url: str
    summary: str


@dataclass
class ApiSearchResponse:
    query: str
    total: int
    limit: int
    offset: int
    hits: list[ApiHit]
    #: Counts per value of ``type``, ``category``, ``section`` and ``language``.
    facets: dict[str, dict[str, int]]
    suggestion: str | None
    best_bets: list[ApiBestBet]
    #: True when the search engine was unreachable and the results come from a simpler database search.
    fallback: bool


@get(
    "/search",
    name="search:api",
    # A safe, read-only JSON endpoint: no CSRF cookie to hand out.
    opt={**PUBLIC, "csrf_exempt": True},
    summary="Full-text search",
    description=(
        "Searches the portal's published content (and, for a signed-in employee, what they may see on the "
        "intranet). Results come ranked by relevance, with HTML-safe snippets, facet counts and a "
        "correction when nothing matched. When the search engine is unreachable the answer comes from a "
        "simpler database search and `fallback` is true."
    ),
    tags=["search"],
)
async def api_search(
    request: Request,
    q: Annotated[str, QueryParameter(description="Words to search for", max_length=200)] = "",
    type_: Annotated[
        list[str] | None,
        QueryParameter(name="type", description="Only these types (`news.article`, or a scope such as `noticias`)"),
    ] = None,
    category: Annotated[list[str] | None, QueryParameter(description="Only these categories")] = None,
    language: Annotated[list[str] | None, QueryParameter(description="Only these languages (`pt`, `en`)")] = None,
    limit: Annotated[int, QueryParameter(ge=0, le=50, description="Hits to return")] = 10,
    offset: Annotated[int, QueryParameter(ge=0, le=1000, description="Hits to skip")] = 0,
) -> ApiSearchResponse:
    state = request.app.state.suite
    rt = runtime(state)
    filters: dict[str, list[str]] = {}
    if type_:
        filters["type"] = _types_for(type_, set(rt.providers.types())) or ["-"]  # unknown types match nothing
    if category:
        filters["category"] = category[:20]
    if language:
        filters["language"] = language[:5]
    query = SearchQuery(text=" ".join(q.split()), filters=filters, limit=limit, offset=offset)
    user = request.scope.get("user")
    if user is None:  # anonymous: no database session unless the search needs one
        outcome = await run_search(state, None, query)
    else:
        async with state.database.sessionmaker() as db:
            query.visibility = await visibility_for(db, state.registry, user)
            outcome = await run_search(state, db, query)
    return ApiSearchResponse(
        query=query.text,
        total=outcome.result.total,
        limit=limit,
        offset=offset,
        hits=[
            ApiHit(h.id, h.type, h.title, h.url, h.snippet, h.language, h.category, h.published_at)
            for h in outcome.result.hits
        ],
        facets=outcome.result.facets,
        suggestion=outcome.result.suggestion,
        best_bets=[ApiBestBet(b.title, b.url, b.summary) for b in outcome.best_bets],
        fallback=outcome.fallback,
    )


def route_handlers() -> list[Any]:
    """Page routes (kept out of the OpenAPI schema by the app) and the API router (in the schema)."""
    return [
        PortalSearchController,
        IntranetSearchController,
        Router(path="/api", route_handlers=[api_search], include_in_schema=True, opt=PUBLIC),
    ]


def openapi_config(site_name: str, version: str) -> OpenAPIConfig:
    """OpenAPI for the JSON API only, served at ``/api/schema/openapi.json`` (public)."""
    return OpenAPIConfig(
        title=f"{site_name} API",
        version=version,
        description="Public JSON API. Page routes are not part of this schema.",
        render_plugins=[JsonRenderPlugin()],
        openapi_router=Router(path="/api/schema", route_handlers=[], include_in_schema=False, opt=PUBLIC),
    )


__all__ = ["api_search", "openapi_config", "route_handlers"]
