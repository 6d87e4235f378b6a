"""Public pages of the council (/camara) and territory (/concelho) sections.

Content pages come from the tree of ``pages.page`` items; the org chart, the executive, recruitment and
documents are generated from data and take their title and introduction from the page of the same slug
when there is one.  Every page is public and served through the page cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from concelho.suite.auth.guards import PUBLIC
from concelho.suite.content.markdown import plain_text
from concelho.suite.content.portal import (
    Crumb,
    Source,
    base_url,
    item_schema,
    json_ld,
    live_item,
    page_meta,
    portal_reads,
    translations_of,
)
from concelho.suite.content.types import ContentType
from concelho.suite.i18n import N_, template_gettext
from concelho.suite.render import render, request_language
from concelho.suite.request_scope import request_query
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from . import services
from .plugin import (
    COUNCILLOR,
    DOC_KINDS,
    DOCUMENT,
    JOB,
    PAGE,
)

DOCUMENTS_PER_PAGE = 20
SECTION_TITLES = {"camara": N_("Council"), "concelho": N_("Municipality")}
SECTION_INTROS = {
    "camara": N_("The municipal council: its executive, services, documents and job offers."),
    "concelho": N_("Living in and visiting the municipality: heritage, culture, environment and services."),
}


@dataclass(frozen=True)
class Special:
    """A council page generated from data."""

    slug: str
    title: str
    summary: str

    @property
    def path(self) -> str:
        return f"/camara/{self.slug}"


SPECIALS = (
    Special("executivo", N_("Executive"), N_("The mayor and the councillors, with their portfolios.")),
    Special("organograma", N_("Organisation chart"), N_("How the municipal services are organised.")),
    Special("recrutamento", N_("Recruitment"), N_("Open job offers and past recruitment procedures.")),
    Special("documentos", N_("Documents and regulations"), N_("Regulations, public notices, minutes and plans.")),
)
SPECIAL_BY_SLUG = {s.slug: s for s in SPECIALS}


def _cached(request: Request, produce: Callable[[], Awaitable[Response]]) -> Awaitable[Response]:
    return request.app.state.suite.page_cache.serve(request, produce)


_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def _redirect(request: Request, path: str) -> Response:
    # The query goes on as it came; bytes that are not printable ASCII (never sent raw by browsers) are
    # percent-encoded, so the Location header stays valid.
    query = quote(request_query(request), safe=_PRINTABLE_ASCII, errors="surrogateescape")
    return Redirect(path + (f"?{query}" if query else ""), status_code=301)


async def _render(
    request: Request,
    db: Source,
    template: str,
    *,
    item: Any,
    title: str,
    path: str,
    crumbs: list[Crumb],
    schema: dict[str, Any],
    context: dict[str, Any] | None = None,
    block: str = "content",
    ctype: ContentType | None = PAGE,
    updated: Any = None,
    translations: list[Any] | None = None,
) -> Response:
    """Render a page of this plugin with breadcrumbs, canonical URL, alternates, Open Graph and JSON-LD.

    With ``ctype`` the page is the item's own page and takes its language (and its ``translations``,
    read here unless the caller has them); without, it keeps the visitor's language and the item only
    introduces what the page generates from data.
    """
    root = base_url(request)
    alternates = None
    if item is None or ctype is None:
        translations = []
    else:
        request.scope.setdefault("state", {})["lang"] = item.language
        if translations is None:
            translations = await translations_of(db, item)
        alternates = {item.language: root + ctype.url_for(item)}
        for other in translations:
            alternates[other.language] = root + ctype.url_for(other)
    language = request_language(request)
    description = (item.summary or plain_text(item.body, 200)) if item is not None else ""
    meta = page_meta(
        request, title=title, description=description, path=path, language=language, alternates=alternates,
        updated=updated or (item.updated_at if item is not None else None),
    )  # fmt: skip
    is_page = item is not None and item.type == PAGE.name
    menu = await services.side_menu(db, item) if is_page and item.parent_id is not None else None  # type: ignore[union-attr]
    files = await services.attachments(db, item) if item is not None else []
    return await render(
        request,
        template,
        {
            "item": item,
            "title": title,
            "crumbs": crumbs,
            "meta": meta,
            "menu": menu,
            "attachments": files,
            "translations": translations,
            "item_url": ctype.url_for if ctype is not None else PAGE.url_for,
            "json_ld": json_ld(schema),
            "page_url": PAGE.url_for,
            "safe_href": services.safe_href,
            "media_url": _media_url(request),
            **(context or {}),
        },
        block=block,
    )


async def _crumbs_to(db: Source, item: Any, language: str | None = None) -> list[Crumb]:
    """Home and the live ancestors of ``item``, each in ``language`` when translated."""
    crumbs = [Crumb(N_("Home"), "/")]
    for ancestor in await services.live_ancestors(db, item):
        if language is not None:
            ancestor = await services.in_language(db, ancestor, language)
        crumbs.append(Crumb(ancestor.title, PAGE.path_for(ancestor)))  # type: ignore[union-attr]
    return crumbs


async def _section_crumbs(db: Source, section: str, language: str) -> list[Crumb]:
    root = await services.in_language(db, await services.find_page(db, section), language)
    return [Crumb(N_("Home"), "/"), Crumb(root.title if root else SECTION_TITLES[section], f"/{section}")]


def _site(request: Request) -> str:
    return request.app.state.suite.settings.site_name


def _page_schema(request: Request, item: Any) -> dict[str, Any]:
    section = (item.data or {}).get("section")
    if item.parent_id is None and section == "camara":
        data: dict[str, Any] = {
            "@type": "GovernmentOrganization",
            "name": item.title,
            "url": base_url(request) + PAGE.url_for(item),
        }
        if item.summary:
            data["description"] = item.summary
        return data
    return item_schema(request, PAGE, item, {"dateModified": item.updated_at.isoformat()})


async def _content_page(request: Request, db: Source, item: Any, translations: list[Any] | None = None) -> Response:
    crumbs = [*await _crumbs_to(db, item), Crumb(item.title)]
    cards: list[Any] = []
    specials: list[Special] = []
    if item.parent_id is None:  # a section root lists its children as cards
        if (item.data or {}).get("section") == "camara":
            # A generated page is offered unless a card, or a translation of one, already has its slug.
            cards, present = await services.children_and_slugs(db, item.id, item.language)
            specials = [s for s in SPECIALS if s.slug not in present]
        else:
            cards = await services.children(db, item.id, item.language)
    return await _render(
        request, db, "pages/page.html", item=item, title=item.title, path=PAGE.path_for(item), crumbs=crumbs,
        schema=_page_schema(request, item), context={"cards": cards, "specials": specials},
        translations=translations,
    )  # fmt: skip


async def _section_root(request: Request, db: Source, section: str) -> Response:
    language = request_language(request)
    root, translations = await services.section_root(db, section, language)
    if root is not None:
        return await _content_page(request, db, root, translations)
    # No root page yet: a plain index so the navigation never leads nowhere.
    title = template_gettext(language)[0](SECTION_TITLES[section])
    return await _render(
        request, db, "pages/page.html", item=None, title=title, path=f"/{section}",
        crumbs=[Crumb(N_("Home"), "/"), Crumb(title)],
        schema={"@type": "WebPage", "name": title, "url": base_url(request) + f"/{section}"},
        context={"cards": [], "specials": SPECIALS if section == "camara" else (), "intro": SECTION_INTROS[section]},
    )  # fmt: skip


async def _page_at(request: Request, db: Source, section: str, slug: str) -> Response:
    item = await live_item(db, PAGE, slug)
    path = PAGE.path_for(item)
    if path != f"/{section}/{slug}":  # a page of the other section, or a root asked for by slug
        return _redirect(request, path)
    if section == "camara" and slug not in SPECIAL_BY_SLUG:
        # A translation of the introduction of a generated page lives on that page.
        for other in await translations_of(db, item):
            if other.slug in SPECIAL_BY_SLUG and PAGE.path_for(other) == f"/camara/{other.slug}":
                return Redirect(f"/camara/{other.slug}?lang={item.language}", status_code=301)
    return await _content_page(request, db, item)


async def _special(
    request: Request,
    db: Source,
    slug: str,
    template: str,
    schema: dict[str, Any],
    context: dict[str, Any],
    *,
    block: str = "content",
    updated: Any = None,
) -> Response:
    """A generated council page, introduced by the content page of the same slug when there is one."""
    special = SPECIAL_BY_SLUG[slug]
    language = request_language(request)
    intro = await services.find_page(db, slug)
    if intro is not None and PAGE.path_for(intro) != special.path:
        intro = None  # a page of the territory section that happens to share the slug
    intro = await services.in_language(db, intro, language)
    if intro is not None:
        crumbs = [*await _crumbs_to(db, intro, language), Crumb(intro.title)]
        title = intro.title
    else:
        title = template_gettext(language)[0](special.title)
        crumbs = [*await _section_crumbs(db, "camara", language), Crumb(title)]
    stamps = [u for u in (updated, intro.updated_at if intro else None) if u is not None]
    return await _render(
        request, db, template, item=intro, title=title, path=special.path, crumbs=crumbs,
        schema={"name": title, "url": base_url(request) + special.path, **schema},
        context={"special": special, **context}, block=block, ctype=None,
        updated=max(stamps) if stamps else None,
    )  # fmt: skip


def _media_url(request: Request) -> Callable[[Any], str]:
    """Address of an attachment's file, served by the media library."""
    return lambda media: request.app.route_reverse("media:file", media_id=media.id, variant="original")


def _latest(items: list[Any]) -> Any:
    return max((i.updated_at for i in items), default=None)


class CamaraController(Controller):
    path = "/camara"
    opt = PUBLIC

    @get("/", name="pages:camara")
    async def root(self, request: Request) -> Response:
        return await _cached(request, lambda: _section_root(request, portal_reads(request), "camara"))

    @get("/organograma", name="pages:org_chart")
    async def org_chart(self, request: Request) -> Response:
        async def produce() -> Response:
            db = portal_reads(request)
            units = await services.org_chart(db)
            schema = {"@type": "GovernmentOrganization", "subOrganization": services.org_schema(units)}
            return await _special(request, db, "organograma", "pages/org_chart.html", schema, {"units": units})

        return await _cached(request, produce)

    @get("/executivo", name="pages:executive")
    async def executive(self, request: Request) -> Response:
        async def produce() -> Response:
            db = portal_reads(request)
            language = request_language(request)
            members = services.executive(await services.localized_items(db, COUNCILLOR.name, language))
            root = base_url(request)
            people = [_person(request, root, m) for m in members]
            schema = {"@type": "GovernmentOrganization", "member": people}
            return await _special(
                request, db, "executivo", "pages/executive.html", schema,
                {"members": members, "role_labels": services.ROLE_LABELS}, updated=_latest(members),
            )  # fmt: skip

        return await _cached(request, produce)

    @get("/recrutamento", name="pages:jobs")
    async def jobs(self, request: Request) -> Response:
        async def produce() -> Response:
            db = portal_reads(request)
            items = await services.localized_items(db, JOB.name, request_language(request))
            open_, closed = services.split_jobs(items, services.today())
            schema = {"@type": "CollectionPage"}
            return await _special(
                request, db, "recrutamento", "pages/jobs.html", schema,
                {"open_jobs": open_, "closed_jobs": closed, "job_url": JOB.url_for}, updated=_latest(items),
            )  # fmt: skip

        return await _cached(request, produce)

    @get("/recrutamento/{slug:str}", name="pages:job")
    async def job(self, request: Request, slug: FromPath[str]) -> Response:
        async def produce() -> Response:
            db = portal_reads(request)
            item = await live_item(db, JOB, slug)
            crumbs = [*await _section_crumbs(db, "camara", item.language),
                      await _special_crumb(db, "recrutamento", item.language),
                      Crumb(item.title)]  # fmt: skip
            deadline = services.deadline_of(item)
            is_open = deadline is not None and deadline >= services.today()
            return await _render(
                request, db, "pages/job.html", item=item, title=item.title, path=JOB.path_for(item), crumbs=crumbs,
                schema=_job_schema(request, item), context={"is_open": is_open}, ctype=JOB,
            )  # fmt: skip

        return await _cached(request, produce)

    @get("/documentos", name="pages:documents")
    async def documents(
        self, request: Request, tipo: FromQuery[str] = "", ano: FromQuery[str] = "", page: FromQuery[int] = 1
    ) -> Response:
        async def produce() -> Response:
            db = portal_reads(request)
            items = await services.localized_items(db, DOCUMENT.name, request_language(request))
            chosen = services.DocumentFilter.parse(tipo, ano)
            found = chosen.apply(items)
            pages = max(1, -(-len(found) // DOCUMENTS_PER_PAGE))
            current = min(max(1, page), pages)
            shown = found[(current - 1) * DOCUMENTS_PER_PAGE : current * DOCUMENTS_PER_PAGE]
            schema = {"@type": "CollectionPage"}
            context = {
                "documents": shown, "total": len(found), "page": current, "pages": pages, "filter": chosen,
                "kinds": DOC_KINDS, "kind_labels": services.DOC_KIND_LABELS, "years": services.document_years(items),
                "document_url": DOCUMENT.url_for,
            }  # fmt: skip
            return await _special(
                request, db, "documentos", "pages/documents.html", schema, context, block="results",
                updated=_latest(items),
            )  # fmt: skip

        return await _cached(request, produce)

    @get("/documentos/{slug:str}", name="pages:document")
    async def document(self, request: Request, slug: FromPath[str]) -> Response:
        async def produce() -> Response:
            db = portal_reads(request)
            item = await live_item(db, DOCUMENT, slug)
            crumbs = [*await _section_crumbs(db, "camara", item.language),
                      await _special_crumb(db, "documentos", item.language),
                      Crumb(item.title)]  # fmt: skip
            return await _render(
                request, db, "pages/document.html", item=item, title=item.title, path=DOCUMENT.path_for(item),
                crumbs=crumbs, schema=_document_schema(request, item), ctype=DOCUMENT,
                context={"kind_labels": services.DOC_KIND_LABELS},
            )  # fmt: skip

        return await _cached(request, produce)

    @get("/{slug:str}", name="pages:camara_page")
    async def page(self, request: Request, slug: FromPath[str]) -> Response:
        return await _cached(request, lambda: _page_at(request, portal_reads(request), "camara", slug))


class ConcelhoController(Controller):
    path = "/concelho"
    opt = PUBLIC

    @get("/", name="pages:concelho")
    async def root(self, request: Request) -> Response:
        return await _cached(request, lambda: _section_root(request, portal_reads(request), "concelho"))

    @get("/{slug:str}", name="pages:concelho_page")
    async def page(self, request: Request, slug: FromPath[str]) -> Response:
        return await _cached(request, lambda: _page_at(request, portal_reads(request), "concelho", slug))


async def _special_crumb(db: Source, slug: str, language: str) -> Crumb:
    special = SPECIAL_BY_SLUG[slug]
    intro = await services.in_language(db, await services.find_page(db, slug), language)
    return Crumb(intro.title if intro is not None else special.title, special.path)


def _person(request: Request, root: str, member: Any) -> dict[str, Any]:
    data = member.data or {}
    person: dict[str, Any] = {
        "@type": "Person",
        "name": member.title,
        "url": root + COUNCILLOR.url_for(member),
        "jobTitle": services.ROLE_LABELS.get(data.get("role", ""), ""),
    }
    if data.get("email"):
        person["email"] = data["email"]
    if data.get("party"):
        person["affiliation"] = {"@type": "Organization", "name": data["party"]}
    if data.get("portfolios"):
        person["knowsAbout"] = list(data["portfolios"])
    if member.summary:
        person["description"] = member.summary
    person["worksFor"] = {"@type": "GovernmentOrganization", "name": _site(request)}
    return person


def _job_schema(request: Request, item: Any) -> dict[str, Any]:
    data = item.data or {}
    root = base_url(request)
    schema: dict[str, Any] = {
        "@type": "JobPosting",
        "title": item.title,
        "url": root + JOB.url_for(item),
        "description": item.summary or plain_text(item.body, 500) or item.title,
        "datePosted": (item.published_at or item.created_at).date().isoformat(),
        "identifier": {"@type": "PropertyValue", "name": _site(request), "value": data.get("reference", "")},
        "hiringOrganization": {"@type": "GovernmentOrganization", "name": _site(request), "url": root + "/"},
        "jobLocation": {"@type": "Place", "address": {"@type": "PostalAddress", "addressCountry": "PT"}},
    }
    if data.get("deadline"):
        schema["validThrough"] = data["deadline"]
    if data.get("positions"):
        schema["totalJobOpenings"] = data["positions"]
    if data.get("regime"):
        schema["employmentType"] = data["regime"]
    return schema


def _document_schema(request: Request, item: Any) -> dict[str, Any]:
    data = item.data or {}
    schema = item_schema(request, DOCUMENT, item)
    if data.get("published_on"):
        schema["datePublished"] = data["published_on"]
    if data.get("version"):
        schema["version"] = data["version"]
    href = services.safe_href(data.get("file_url"))
    if href:
        schema["contentUrl"] = href if href.startswith("http") else base_url(request) + href
    schema["publisher"] = {"@type": "GovernmentOrganization", "name": _site(request)}
    return schema
