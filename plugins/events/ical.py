"""iCalendar (RFC 5545) documents for events, built with the ``icalendar`` package."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date
from urllib.parse import urlsplit

from concelho.suite.content.markdown import plain_text
from icalendar import Calendar, Event

from .services import EventView, aware

PRODID = "-//Concelho//Agenda municipal//PT"


def calendar(name: str, events: Sequence[tuple[EventView, str]], root_url: str) -> str:
    """A VCALENDAR with one VEVENT per (event, absolute URL), times in Europe/Lisbon with its VTIMEZONE."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Europe/Lisbon")
    host = urlsplit(root_url).hostname or "localhost"
    for view, url in events:
        cal.add_component(vevent(view, url, host))
    if events:
        # Only the rules of the years the events span (the default covers 1970–2038).
        first = min(view.start for view, _ in events).date()
        last = max((view.end or view.start) for view, _ in events).date()
        cal.add_missing_timezones(first_date=date(first.year - 1, 1, 1), last_date=date(last.year + 2, 1, 1))
    return cal.to_ical().decode("utf-8")


def vevent(view: EventView, url: str, host: str) -> Event:
    item = view.item
    data = view.data
    event = Event()
    event.add("uid", f"events-{item.id}@{host}")
    event.add("dtstamp", (aware(item.updated_at) or aware(item.created_at)).astimezone(UTC))  # type: ignore[union-attr]
    event.add("dtstart", view.start)
    if view.end is not None:
        event.add("dtend", view.end)
    event.add("summary", item.title)
    location = ", ".join(p for p in (str(data.get("venue") or ""), str(data.get("address") or "")) if p)
    if location:
        event.add("location", location)
    lat, lon = data.get("lat"), data.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        event.add("geo", (float(lat), float(lon)))
    event.add("url", url)
    description = "\n\n".join(p for p in (item.summary, plain_text(item.body, 2000)) if p)
    if description:
        event.add("description", description.strip())
    if item.category:
        event.add("categories", [item.category])
    event.add("status", "CONFIRMED")
    event.add("last-modified", (aware(item.updated_at) or aware(item.created_at)).astimezone(UTC))  # type: ignore[union-attr]
    return event
