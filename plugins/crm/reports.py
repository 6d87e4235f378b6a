"""CRM key figures for a period: contacts per channel, share online, cases opened and closed, time to first answer,
SLA compliance, overdue cases and the number of services that can be requested online, with a per-month series.

Periods are whole days in Lisbon time, both ends included (``2026-01-01`` to ``2026-12-31`` is the year 2026); in
SQL they become the half-open UTC interval ``[start, end)``. Every count is a ``GROUP BY`` in the database; only the
median is computed in Python on SQLite (``percentile_cont`` on PostgreSQL).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from concelho.suite.i18n import N_
from concelho.suite.models import Department
from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import CHANNELS, ONLINE_CHANNELS, Case, Interaction

LISBON = ZoneInfo("Europe/Lisbon")
#: The longest period a report covers (the per-month series stays small).
MAX_DAYS = 3660


class ReportError(ValueError):
    """A bad period or department (the message is shown as is, or translated in the pages)."""


def parse_day(value: str, label: str) -> date:
    """``YYYY-MM-DD`` or a :class:`ReportError` naming the option."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(f"{label}: {value!r} is not a date (write YYYY-MM-DD)") from None


def local_midnight(day: date) -> datetime:
    """The UTC moment when ``day`` starts in Lisbon (always bind UTC: SQLite keeps no time zone)."""
    return datetime(day.year, day.month, day.day, tzinfo=LISBON).astimezone(UTC)


def today() -> date:
    return datetime.now(LISBON).date()


@dataclass(frozen=True)
class Period:
    """Whole Lisbon days ``first`` to ``last`` (both included)."""

    first: date
    last: date

    @classmethod
    def parse(cls, first: str, last: str, *, labels: tuple[str, str] = ("--from", "--to")) -> Period:
        period = cls(parse_day(first, labels[0]), parse_day(last, labels[1]))
        period.check(labels)
        return period

    def check(self, labels: tuple[str, str] = ("--from", "--to")) -> None:
        if self.last < self.first:
            raise ReportError(f"{labels[1]} ({self.last}) is before {labels[0]} ({self.first})")
        if (self.last - self.first).days >= MAX_DAYS:
            raise ReportError(f"the period is longer than {MAX_DAYS // 366} years: ask for a shorter one")

    @property
    def start(self) -> datetime:
        return local_midnight(self.first)

    @property
    def end(self) -> datetime:
        """The first moment after the period (exclusive bound)."""
        return local_midnight(self.last + timedelta(days=1))

    def months(self) -> list[tuple[str, datetime]]:
        """``("YYYY-MM", UTC start)`` of each calendar month the period touches (the first one starts with it)."""
        out = [(f"{self.first:%Y-%m}", self.start)]
        cursor = date(self.first.year, self.first.month, 1)
        while True:
            cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
            if cursor > self.last:
                return out
            out.append((f"{cursor:%Y-%m}", local_midnight(cursor)))

    def as_dict(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def this_year(on: date | None = None) -> Period:
    on = on or today()
    return Period(date(on.year, 1, 1), date(on.year, 12, 31))


def preset(name: str, on: date | None = None) -> Period | None:
    """The dashboard's shortcuts: ``month`` (this calendar month), ``30d`` (the last 30 days, today included),
    ``year`` (this calendar year); None for an unknown name."""
    on = on or today()
    if name == "month":
        following = date(on.year + on.month // 12, on.month % 12 + 1, 1)
        return Period(date(on.year, on.month, 1), following - timedelta(days=1))
    if name == "30d":
        return Period(on - timedelta(days=29), on)
    return this_year(on) if name == "year" else None


PRESETS = {"month": N_("This month"), "30d": N_("Last 30 days"), "year": N_("This year")}


@dataclass
class MonthFigures:
    month: str
    contacts: int = 0
    online: int = 0
    opened: int = 0
    closed: int = 0


@dataclass
class Kpis:
    """The key figures of one period (and department, when given). See :func:`compute` for the definitions."""

    period: Period
    department: dict[str, str] | None
    contacts_by_channel: dict[str, int]
    cases_opened: int
    cases_closed: int
    answered_cases: int
    median_hours_to_first_answer: float | None
    sla_on_time: int
    sla_late: int
    sla_pending: int
    open_overdue_now: int
    services_online: int
    months: list[MonthFigures] = field(default_factory=list)

    @property
    def contacts_total(self) -> int:
        return sum(self.contacts_by_channel.values())

    @property
    def contacts_online(self) -> int:
        return sum(n for channel, n in self.contacts_by_channel.items() if channel in ONLINE_CHANNELS)

    @property
    def share_online(self) -> float | None:
        return self.contacts_online / self.contacts_total if self.contacts_total else None

    @property
    def sla_compliance(self) -> float | None:
        decided = self.sla_on_time + self.sla_late
        return self.sla_on_time / decided if decided else None

    def as_dict(self) -> dict[str, Any]:
        share, compliance = self.share_online, self.sla_compliance
        median = self.median_hours_to_first_answer
        return {
            "period": self.period.as_dict(),
            "department": self.department,
            "contacts": {
                "total": self.contacts_total,
                "by_channel": self.contacts_by_channel,
                "online": self.contacts_online,
                "share_online": None if share is None else round(share, 4),
            },
            "cases": {
                "opened": self.cases_opened,
                "closed": self.cases_closed,
                "answered": self.answered_cases,
                "median_hours_to_first_answer": None if median is None else round(median, 2),
                "open_overdue_now": self.open_overdue_now,
            },
            "sla": {
                "on_time": self.sla_on_time,
                "late": self.sla_late,
                "pending": self.sla_pending,
                "compliance": None if compliance is None else round(compliance, 4),
            },
            "services_online": self.services_online,
            "months": [asdict(m) for m in self.months],
        }


async def department_by_code(session: AsyncSession, code: str) -> Department:
    department = (await session.execute(select(Department).where(Department.code == code))).scalar_one_or_none()
    if department is None:
        known = (await session.execute(select(Department.code).order_by(Department.code))).scalars().all()
        raise ReportError(f"unknown department {code!r} (known: {', '.join(known) or 'none'})")
    return department


def _bucket(column: Any, months: list[tuple[str, datetime]]) -> Any:
    """The index of the month ``column`` falls in (rows are already limited to the period)."""
    if len(months) == 1:
        return literal_column("0")
    return case(*[(column < start, i) for i, (_, start) in enumerate(months[1:])], else_=len(months) - 1)


def _in(column: Any, period: Period) -> Any:
    return and_(column >= period.start, column < period.end)


def _hours(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


async def count_online_services(session: AsyncSession) -> int:
    """Live ``services.service`` items marked ``online`` (one per translation group), read from the content store."""
    from concelho.suite.content.portal import live_items_preferring

    items = await live_items_preferring(session, "services.service", "pt", limit=100_000)
    return sum(1 for item in items if (item.data or {}).get("online") is True)


async def compute(
    session: AsyncSession, period: Period, department: Department | None = None, now: datetime | None = None
) -> Kpis:
    """The key figures of ``period``, for one ``department`` or all.

    - contacts: every ``crm_interaction`` (both directions) whose ``occurred_at`` is in the period, by channel;
      share online = contacts on :data:`~.models.ONLINE_CHANNELS` / all contacts.
    - cases opened / closed: cases whose ``created_at`` / ``closed_at`` is in the period. Duplicates merged into
      another case (``merged_into_id`` set) are left out of every case figure.
    - median time to first answer: over the cases opened in the period that have a ``first_answered_at``, in hours.
    - SLA compliance: the cases with an ``sla_due_at`` that is in the period *or* that were closed in the period.
      One is *on time* when it was answered (``first_answered_at``) or closed (``closed_at``) no later than its
      ``sla_due_at``; *late* when that happened after the due moment, or when it is still unanswered and open
      after it (``now``); *pending* otherwise (not answered yet, not due yet). Compliance = on time / (on time +
      late); pending cases do not count.
    - open overdue now: cases not answered or closed whose ``sla_due_at`` has passed (whatever the period).
    - services online: see :func:`count_online_services` (not per department).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    months = period.months()
    figures = [MonthFigures(label) for label, _ in months]

    contacts = dict.fromkeys(CHANNELS, 0)
    where = [_in(Interaction.occurred_at, period)]
    if department is not None:
        where.append(Interaction.department_id == department.id)
    inner = select(
        _bucket(Interaction.occurred_at, months).label("bucket"), Interaction.channel.label("channel")
    ).where(*where)
    sub = inner.subquery()
    by_month = select(sub.c.bucket, sub.c.channel, func.count()).group_by(sub.c.bucket, sub.c.channel)
    for bucket, channel, n in await session.execute(by_month):
        contacts[channel] = contacts.get(channel, 0) + n
        figures[bucket].contacts += n
        if channel in ONLINE_CHANNELS:
            figures[bucket].online += n

    cases = [Case.merged_into_id.is_(None)]
    if department is not None:
        cases.append(Case.department_id == department.id)
    for column, attr in ((Case.created_at, "opened"), (Case.closed_at, "closed")):
        sub = select(_bucket(column, months).label("bucket")).where(*cases, _in(column, period)).subquery()
        for bucket, n in await session.execute(select(sub.c.bucket, func.count()).group_by(sub.c.bucket)):
            setattr(figures[bucket], attr, getattr(figures[bucket], attr) + n)

    hours = _hours(session, Case.first_answered_at, Case.created_at)
    answered = [*cases, _in(Case.created_at, period), Case.first_answered_at.is_not(None)]
    if session.get_bind().dialect.name == "postgresql":
        median_query = select(func.count(), func.percentile_cont(0.5).within_group(hours)).where(*answered)
        answered_count, median = (await session.execute(median_query)).one()
        median = None if median is None else float(median)
    else:
        values = [float(h) for h in (await session.execute(select(hours).where(*answered))).scalars()]
        answered_count, median = len(values), (statistics.median(values) if values else None)

    due = Case.sla_due_at
    on_time = or_(
        and_(Case.first_answered_at.is_not(None), Case.first_answered_at <= due),
        and_(Case.closed_at.is_not(None), Case.closed_at <= due),
    )
    resolved = or_(Case.first_answered_at.is_not(None), Case.closed_at.is_not(None))
    verdict = case((on_time, "on_time"), (or_(resolved, due < now), "late"), else_="pending").label("verdict")
    sub = select(verdict).where(*cases, due.is_not(None), or_(_in(due, period), _in(Case.closed_at, period))).subquery()
    sla = {
        verdict: n for verdict, n in await session.execute(select(sub.c.verdict, func.count()).group_by(sub.c.verdict))
    }

    overdue = await session.execute(
        select(func.count()).where(*cases, Case.status.not_in(("closed", "answered")), due.is_not(None), due < now)
    )
    return Kpis(
        period=period,
        department=None if department is None else {"code": department.code, "name": department.name},
        contacts_by_channel=contacts,
        cases_opened=sum(m.opened for m in figures),
        cases_closed=sum(m.closed for m in figures),
        answered_cases=int(answered_count),
        median_hours_to_first_answer=median,
        sla_on_time=sla.get("on_time", 0),
        sla_late=sla.get("late", 0),
        sla_pending=sla.get("pending", 0),
        open_overdue_now=overdue.scalar_one(),
        services_online=await count_online_services(session),
        months=figures,
    )
