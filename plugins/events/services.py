"""Event rules shared by the pages, the feeds and the home block.

``events_schedule`` mirrors each event's ``data["start"]``/``data["end"]`` as indexed UTC columns.
It is kept in step in two ways, both through :func:`ensure_schedule`:

- a ``content.saved`` listener (registered per app in ``EventsPlugin.on_startup``) runs it right after
  an editor save, workflow action or restore;
- every agenda page, feed and the home block run it before querying (only when the page cache
  misses, i.e. after any content change).  That covers imports (``suite content import``, ``suite
  demo load``), which write in bulk from another process and emit no events.

``ensure_schedule`` costs one indexed query when nothing changed: it compares each event's
``updated_at`` with the ``source_updated_at`` recorded in its schedule row.
"""

from __future__ import annotations

import calendar as calendar_module
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton, format_time, get_day_names
from concelho.suite.content.models import ContentItem
from concelho.suite.content.portal import Source
from concelho.suite.content.service import published_clause
from concelho.suite.db import Reader, as_reader
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import EventSchedule
from .plugin import EVENT

log = logging.getLogger("suite.events")

LISBON = ZoneInfo("Europe/Lisbon")
BABEL_LOCALES = {"pt": "pt_PT", "en": "en_GB"}


# -- time helpers -------------------------------------------------------------------------------
def parse_when(raw: Any) -> datetime | None:
    """A stored ``data`` datetime (ISO text, Lisbon time when naive) as an aware UTC datetime."""
    if raw in (None, ""):
        return None
    try:
        value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except (TypeError, ValueError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LISBON)
    return value.astimezone(UTC)


def aware(value: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def local_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` starts in Lisbon."""
    return datetime.combine(day, time.min, tzinfo=LISBON).astimezone(UTC)


def today_lisbon(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(LISBON).date()


def schedule_of(data: dict[str, Any]) -> tuple[datetime, datetime | None] | None:
    """(start, end) in UTC from an event's data; None without a usable start; an end before the start is dropped."""
    start = parse_when(data.get("start"))
    if start is None:
        return None
    end = parse_when(data.get("end"))
    if end is not None and end < start:
        end = None
    return start, end


# -- the schedule table -------------------------------------------------------------------------
#: Events whose schedule row is missing or older than the event.
_STALE = (
    select(ContentItem.id, ContentItem.data, ContentItem.updated_at, EventSchedule.content_id)
    .outerjoin(EventSchedule, EventSchedule.content_id == ContentItem.id)
    .where(
        ContentItem.type == EVENT.name,
        or_(
            EventSchedule.content_id.is_(None),
            EventSchedule.source_updated_at.is_(None),
            EventSchedule.source_updated_at != ContentItem.updated_at,
        ),
    )
)


async def ensure_schedule(session: AsyncSession) -> int:
    """Create, refresh or drop ``events_schedule`` rows of events that changed since; returns rows written.

    Rows are upserted in id order, so workers refreshing at the same time neither clash nor deadlock.
    """
    return await _refresh(session, (await session.execute(_STALE)).all())


async def ensure_schedule_read(reads: Reader, database: Any) -> int:
    """:func:`ensure_schedule` for pages without a session: the check runs on ``reads``; only when some
    schedule rows must change does a session (of ``database``) write them."""
    rows, dropped = _changes(await reads.all(_STALE))
    if not rows and not dropped:
        return 0
    async with database.sessionmaker() as session:
        return await ensure_schedule(session)


def _changes(stale: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """(schedule rows to upsert, content ids whose row goes) for the stale events."""
    rows: list[dict[str, Any]] = []
    dropped: list[int] = []
    for item_id, data, updated_at, existing in sorted(stale, key=lambda row: row[0]):
        when = schedule_of(data or {})
        if when is not None:
            rows.append(
                {"content_id": item_id, "starts_at": when[0], "ends_at": when[1], "source_updated_at": updated_at}
            )
        elif existing is not None:
            dropped.append(item_id)
    return rows, dropped


async def _refresh(session: AsyncSession, stale: Any) -> int:
    rows, dropped = _changes(stale)
    if not rows and not dropped:
        return 0
    try:
        if dropped:
            await session.execute(delete(EventSchedule).where(EventSchedule.content_id.in_(dropped)))
        for start in range(0, len(rows), 500):
            await session.execute(_upsert(session), rows[start : start + 500])
        await session.commit()
    except SQLAlchemyError:
        await session.rollback()
        log.warning("events schedule refresh failed; the next page view retries", exc_info=True)
        return 0
    return len(rows) + len(dropped)


def _upsert(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT (content_id) DO UPDATE, so two workers refreshing at once both succeed."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(EventSchedule)
    return statement.on_conflict_do_update(
        index_elements=[EventSchedule.content_id],
        set_={name: statement.excluded[name] for name in ("starts_at", "ends_at", "source_updated_at")},
    )


def schedule_listener(database: Any) -> Callable[..., Coroutine[Any, Any, None]]:
    """A ``content.saved`` listener bound to one app's database."""

    async def on_content_saved(item_id: int | None = None, type: str = "", **_: Any) -> None:
        if type not in ("", EVENT.name):
            return
        async with database.sessionmaker() as session:
            await ensure_schedule(session)

    return on_content_saved


# -- queries ------------------------------------------------------------------------------------
def last_moment() -> Any:
    """When an event is over: its end, or its start when it has none."""
    return func.coalesce(EventSchedule.ends_at, EventSchedule.starts_at)


def live_clauses(language: str | None = None) -> tuple[Any, ...]:
    """Published public events joined to their schedule (for ``live_items(where=…)`` or a select)."""
    clauses: list[Any] = [
        ContentItem.id == EventSchedule.content_id,
        ContentItem.type == EVENT.name,
        ContentItem.audience == "public",
        published_clause(),
    ]
    if language:
        clauses.append(ContentItem.language == language)
    return tuple(clauses)


def range_clauses(start: datetime | None = None, end: datetime | None = None) -> tuple[Any, ...]:
    """Events that overlap [start, end): still going at ``start`` and begun before ``end``."""
    clauses = []
    if start is not None:
        clauses.append(last_moment() >= start)
    if end is not None:
        clauses.append(EventSchedule.starts_at < end)
    return tuple(clauses)


def ended_before(instant: datetime) -> Any:
    return last_moment() < instant


async def upcoming(
    session: Source, language: str, *, limit: int = 3, category: str | None = None, now: datetime | None = None
) -> list[Any]:
    """Events (rows) not over yet (from the start of today, Lisbon time), soonest first."""
    query = (
        select(ContentItem.__table__)
        .where(*live_clauses(language), *range_clauses(local_midnight(today_lisbon(now))))
        .order_by(EventSchedule.starts_at, ContentItem.id)
        .limit(limit)
    )
    if category:
        query = query.where(ContentItem.category == category)
    return list(await as_reader(session).all(query))


async def in_range(session: Source, language: str, start: datetime, end: datetime) -> list[Any]:
    """Events (rows) that overlap [start, end), soonest first."""
    query = (
        select(ContentItem.__table__)
        .where(*live_clauses(language), *range_clauses(start, end))
        .order_by(EventSchedule.starts_at, ContentItem.id)
        .limit(1000)
    )
    return list(await as_reader(session).all(query))


# -- presentation -------------------------------------------------------------------------------
@dataclass
class EventView:
    """An event with its times in Lisbon and the texts the templates show."""

    item: Any  # a content row (or ContentItem)
    start: datetime
    end: datetime | None
    language: str

    @classmethod
    def of(cls, item: Any) -> EventView:
        when = schedule_of(item.data or {})
        start, end = when if when else (aware(item.published_at or item.created_at), None)
        return cls(item, start.astimezone(LISBON), end.astimezone(LISBON) if end else None, item.language)

    @property
    def data(self) -> dict[str, Any]:
        return self.item.data or {}

    @property
    def locale(self) -> str:
        return BABEL_LOCALES.get(self.language, "pt_PT")

    @property
    def multi_day(self) -> bool:
        return self.end is not None and self.end.date() != self.start.date()

    def day(self, value: datetime) -> str:
        return format_date(value, "full", locale=self.locale)

    def clock(self, value: datetime) -> str:
        return format_time(value, "HH:mm", locale=self.locale)

    @property
    def when_text(self) -> str:
        """``sábado, 5 de dezembro de 2026, 21:30–23:00`` (or ``…, 10:00 – domingo, 6 de …, 18:00``), Lisbon time."""
        text = f"{self.day(self.start)}, {self.clock(self.start)}"
        if self.end is None:
            return text
        if self.multi_day:
            return f"{text} – {self.day(self.end)}, {self.clock(self.end)}"
        return f"{text}–{self.clock(self.end)}"

    def ongoing(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return self.start <= now and (self.end is not None and self.end >= now)

    @property
    def map_url(self) -> str | None:
        lat, lon = self.data.get("lat"), self.data.get("lon")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            return None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"

    @property
    def registration_url(self) -> str | None:
        """Only http(s) addresses become links (never ``javascript:``)."""
        url = str(self.data.get("registration_url") or "").strip()
        return url if url.lower().startswith(("https://", "http://")) else None


# -- month grid ---------------------------------------------------------------------------------
@dataclass
class CalendarDay:
    day: date
    in_month: bool
    events: list[EventView]


def parse_month(raw: str, today: date) -> tuple[date, bool]:
    """First day of the ``YYYY-MM`` month (or of today's month when empty or invalid); and whether it was valid."""
    if not raw:
        return today.replace(day=1), True
    try:
        year, month = (int(part) for part in raw.split("-"))
        if not 1900 <= year <= 2999:
            raise ValueError(raw)
        return date(year, month, 1), True
    except ValueError:
        return today.replace(day=1), False


def shift_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_weeks(first: date, events: list[EventView]) -> list[list[CalendarDay]]:
    """Weeks (Monday first) of the month with the events on every day they cover."""
    weeks = calendar_module.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    by_day: dict[date, list[EventView]] = {}
    for event in events:
        last = (event.end or event.start).date()
        day = max(event.start.date(), weeks[0][0])
        while day <= min(last, weeks[-1][-1]):
            by_day.setdefault(day, []).append(event)
            day += timedelta(days=1)
    return [[CalendarDay(d, d.month == first.month, by_day.get(d, [])) for d in week] for week in weeks]


def weekday_names(language: str) -> list[tuple[str, str]]:
    """(short, full) weekday names, Monday first."""
    locale = BABEL_LOCALES.get(language, "pt_PT")
    short = get_day_names("short" if language == "pt" else "abbreviated", locale=locale)  # seg. / Mon
    wide = get_day_names("wide", locale=locale)
    return [(short[i], wide[i]) for i in range(7)]


def month_label(first: date, language: str) -> str:
    return format_skeleton("yMMMM", first, locale=BABEL_LOCALES.get(language, "pt_PT"))
