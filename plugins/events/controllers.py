"""Public agenda pages: list (date and category filters, past events, pagination), month calendar, event page,
iCalendar feeds (the whole agenda and one event); the home block."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from concelho.suite.auth.guards import PUBLIC
from concelho.suite.cache import cached_slot
from concelho.suite.content.models import ContentItem
from concelho.suite.content.portal import (
    Crumb,
    base_url,
    item_schema,
    live_item,
    live_items,
    page_meta,
    portal_reads,
    render_item,
)
from concelho.suite.i18n import N_, template_gettext
from concelho.suite.render import base_context, render, request_language
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from markupsafe import Markup

from . import ical
from .models import EventSchedule
from .plugin import CATEGORIES, EVENT
from .services import (
    EventView,
    ended_before,
    ensure_schedule_read,
    in_range,
    live_clauses,
    local_midnight,
    month_label,
    month_weeks,
    parse_month,
    range_clauses,
    shift_month,
    today_lisbon,
    upcoming,
    weekday_names,
)

PER_PAGE = 10
FEED_LIMIT = 500
#: Event titles shown in one calendar cell before "n more".
CELL_LIMIT = 3
BAD_DATE = N_("Enter a date like 2026-12-31.")
DATES_REVERSED = N_("The end date must not be before the start date.")
BAD_MONTH = N_("Enter a month like 2026-12.")
CALENDAR = N_("Calendar")
ICS_TYPE = "text/calendar; charset=utf-8"


def agenda_url(path: str = "/agenda", **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", 0, False)})
    return path + (f"?{query}" if query else "")


def _parse_date(raw: str, errors: dict[str, str], name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        errors[name] = BAD_DATE
        return None


class EventsController(Controller):
    path = "/agenda"
    opt = PUBLIC

    @get("/", name="events:list")
    async def index(
        self,
        request: Request,
        page: FromQuery[int] = 1,
        categoria: FromQuery[str] = "",
        de: FromQuery[str] = "",
        ate: FromQuery[str] = "",
        passados: FromQuery[str] = "",
    ) -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            gettext, _ = template_gettext(lang)
            category = categoria if categoria in CATEGORIES else None
            past = passados in ("1", "on", "true", "sim")
            errors: dict[str, str] = {}
            date_from = _parse_date(de, errors, "de")
            date_to = _parse_date(ate, errors, "ate")
            if date_from and date_to and date_to < date_from:
                errors["ate"] = DATES_REVERSED
                date_to = None
            today = local_midnight(today_lisbon())
            # Upcoming: not over before today.  Past: over before today.  Dates narrow either.
            lower = local_midnight(date_from) if date_from else (None if past else today)
            upper = local_midnight(date_to + timedelta(days=1)) if date_to else None
            where = [*live_clauses(), *range_clauses(lower, upper)]
            if past:
                where.append(ended_before(today))
                order: tuple[Any, ...] = (EventSchedule.starts_at.desc(), ContentItem.id.desc())
            else:
                order = (EventSchedule.starts_at, ContentItem.id)
            reads = portal_reads(request)
            await ensure_schedule_read(reads, request.app.state.suite.database)
            result = await live_items(
                reads,
                EVENT.name,
                lang,
                page=page,
                per_page=PER_PAGE,
                category=category,
                order_by=order,
                where=tuple(where),
            )
            filters = {
                "categoria": category or "",
                "de": date_from.isoformat() if date_from else "",
                "ate": date_to.isoformat() if date_to else "",
                "passados": "1" if past else "",
                "lang": "en" if lang == "en" else "",
            }
            return await render(
                request,
                "events/list.html",
                {
                    "result": result,
                    "events": [EventView.of(i) for i in result.items],
                    "categories": CATEGORIES,
                    "category": category,
                    "past": past,
                    "filtered": bool(category or date_from or date_to),
                    "form": {"de": de, "ate": ate},
                    "errors": errors,
                    "page_url": lambda number: agenda_url(**filters, page=number if number > 1 else 0),
                    "toggle_url": agenda_url(**{**filters, "passados": "" if past else "1"}),
                    "clear_url": agenda_url(passados=filters["passados"], lang=filters["lang"]),
                    "feed_url": agenda_url("/agenda/agenda.ics", categoria=category or "", lang=filters["lang"]),
                    "calendar_url": agenda_url("/agenda/calendario", lang=filters["lang"]),
                    "ctype": EVENT,
                    "crumbs": [Crumb("Home", "/"), Crumb("Events")],
                    "meta": page_meta(request, title=gettext("Events"), path="/agenda"),
                },
                block="results",
            )

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/calendario", name="events:calendar")
    async def month(self, request: Request, mes: FromQuery[str] = "") -> Response:
        async def produce() -> Response:
            lang = request_language(request)
            gettext, _ = template_gettext(lang)
            today = today_lisbon()
            first, valid = parse_month(mes.strip(), today)
            after = shift_month(first, 1)
            reads = portal_reads(request)
            await ensure_schedule_read(reads, request.app.state.suite.database)
            items = await in_range(reads, lang, local_midnight(first), local_midnight(after))
            weeks = month_weeks(first, [EventView.of(i) for i in items])
            suffix = {"lang": "en"} if lang == "en" else {}
            label = month_label(first, lang)
            return await render(
                request,
                "events/calendar.html",
                {
                    "weeks": weeks,
                    "month": first,
                    "month_label": label,
                    "month_value": first.strftime("%Y-%m"),
                    "weekdays": weekday_names(lang),
                    "today": today,
                    "count": len(items),
                    "cell_limit": CELL_LIMIT,
                    "errors": {} if valid else {"mes": BAD_MONTH},
                    "form_mes": mes,
                    "prev_url": agenda_url(
                        "/agenda/calendario", mes=shift_month(first, -1).strftime("%Y-%m"), **suffix
                    ),
                    "next_url": agenda_url("/agenda/calendario", mes=after.strftime("%Y-%m"), **suffix),
                    "prev_label": month_label(shift_month(first, -1), lang),
                    "next_label": month_label(after, lang),
                    "day_url": lambda day: agenda_url(de=day.isoformat(), ate=day.isoformat(), **suffix),
                    "list_url": agenda_url(**suffix),
                    "ctype": EVENT,
                    "crumbs": [Crumb("Home", "/"), Crumb("Events", "/agenda"), Crumb(CALENDAR)],
                    "meta": page_meta(
                        request,
                        title=f"{gettext(CALENDAR)} · {label}",
                        path=agenda_url("/agenda/calendario", mes=first.strftime("%Y-%m")),
                    ),
                },
                block="calendar",
            )

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/agenda.ics", name="events:feed")
    async def feed(self, request: Request, categoria: FromQuery[str] = "") -> Response:
        """Every upcoming event as iCalendar, in Portuguese (``?lang=en``: the English ones)."""

        async def produce() -> Response:
            lang = "en" if request.query_params.get("lang") == "en" else "pt"
            category = categoria if categoria in CATEGORIES else None
            reads = portal_reads(request)
            await ensure_schedule_read(reads, request.app.state.suite.database)
            items = await upcoming(reads, lang, limit=FEED_LIMIT, category=category)
            root = base_url(request)
            site = request.app.state.suite.settings.site_name
            name = f"{site} — {'Agenda' if lang == 'pt' else 'Events'}" + (f" ({category})" if category else "")
            body = ical.calendar(name, [(EventView.of(i), root + EVENT.url(i.slug, i.language)) for i in items], root)
            return Response(body, media_type=ICS_TYPE)

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/{slug:str}", name="events:detail")
    async def detail(self, request: Request, slug: FromPath[str]) -> Response:
        """The event page, or ``/agenda/<slug>.ics`` for the event alone as iCalendar."""

        async def produce() -> Response:
            reads = portal_reads(request)
            if slug.endswith(".ics"):
                item = await live_item(reads, EVENT, slug.removesuffix(".ics"))
                root = base_url(request)
                view = EventView.of(item)
                body = ical.calendar(item.title, [(view, root + EVENT.url(item.slug, item.language))], root)
                return Response(body, media_type=ICS_TYPE)
            item = await live_item(reads, EVENT, slug)
            view = EventView.of(item)
            schema = item_schema(request, EVENT, item, event_schema(request, view))
            return await render_item(
                request,
                reads,
                EVENT,
                item,
                "events/detail.html",
                schema=schema,
                context={"ev": view, "ics_url": f"/agenda/{item.slug}.ics"},
            )

        return await request.app.state.suite.page_cache.serve(request, produce)


def event_schema(request: Request, view: EventView) -> dict[str, Any]:
    """schema.org Event properties (merged into the common item schema)."""
    data = view.data
    site = request.app.state.suite.settings.site_name
    venue = str(data.get("venue") or "")
    address = str(data.get("address") or "")
    place: dict[str, Any] = {
        "@type": "Place",
        "name": venue,
        "address": {"@type": "PostalAddress", "streetAddress": address or venue, "addressCountry": "PT"},
    }
    lat, lon = data.get("lat"), data.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        place["geo"] = {"@type": "GeoCoordinates", "latitude": lat, "longitude": lon}
    schema: dict[str, Any] = {
        "startDate": view.start.isoformat(),
        "eventStatus": "https://schema.org/EventScheduled",
        "eventAttendanceMode": "https://schema.org/OfflineEventAttendanceMode",
        "location": place,
        "organizer": {"@type": "Organization", "name": str(data.get("organizer") or site), "url": base_url(request)},
    }
    if view.end is not None:
        schema["endDate"] = view.end.isoformat()
    if view.registration_url:
        schema["offers"] = {"@type": "Offer", "url": view.registration_url, "description": str(data.get("price") or "")}
    if view.item.category:
        schema["keywords"] = view.item.category
    return schema


@cached_slot
async def upcoming_events_block(request: Request) -> Markup:
    """Home page slot: the next three events."""
    state = request.app.state.suite
    lang = request_language(request)
    reads = portal_reads(request)
    await ensure_schedule_read(reads, state.database)
    items = await upcoming(reads, lang, limit=3)
    if not items:
        return Markup("")
    tmpl = state.templates.get_template("events/_home.html")
    html = await tmpl.render_async(
        {**base_context(request), "events": [EventView.of(i) for i in items], "ctype": EVENT}
    )
    return Markup(html)  # noqa: S704 - autoescaped template output
