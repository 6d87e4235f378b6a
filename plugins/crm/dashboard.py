"""The CRM dashboard (``/intranet/crm/painel``): the key figures of :mod:`.reports` for a period.

Agents (``crm.view``) see the figures of their own department; managers (``crm.manage``) see every department or
choose one. The period comes from a GET form (``de``/``ate``, Lisbon days, both included) or a shortcut
(``periodo=month|30d|year``). With HTMX the form and the shortcuts replace only the panel; without JavaScript they
load the whole page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from concelho.suite.auth.guards import permission_required
from concelho.suite.i18n import N_
from concelho.suite.models import Department
from concelho.suite.render import is_fragment_request, render, request_language
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import reports
from .citizen_records import CHANNEL_LABELS
from .models import ONLINE_CHANNELS

PATH = "/intranet/crm/painel"
BAD_DATE = N_("Write the date as YYYY-MM-DD.")


def percent(value: float | None, lang: str) -> str:
    if value is None:
        return "—"
    text = f"{100 * value:.1f}"
    return f"{text.replace('.', ',')} %" if lang == "pt" else f"{text}%"


def decimal(value: float | None, lang: str) -> str:
    if value is None:
        return "—"
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "pt" else text


def bar_class(share: float | None) -> str:
    """``crm-bar-0`` … ``crm-bar-100`` in steps of 5 (widths live in dashboard.css: no inline styles under CSP)."""
    return f"crm-bar-{round((share or 0) * 20) * 5}"


def _period(query: Any, errors: dict[str, str]) -> tuple[reports.Period | None, dict[str, str]]:
    """The period asked for (a shortcut wins over the dates; none asked: this year) and the form values."""
    shortcut = reports.preset(str(query.get("periodo", "")))
    if shortcut is not None:
        return shortcut, {"de": shortcut.first.isoformat(), "ate": shortcut.last.isoformat()}
    form = {"de": str(query.get("de", "")).strip(), "ate": str(query.get("ate", "")).strip()}
    if not form["de"] and not form["ate"]:
        year = reports.this_year()
        return year, {"de": year.first.isoformat(), "ate": year.last.isoformat()}
    days = {}
    for key in ("de", "ate"):
        try:
            days[key] = reports.parse_day(form[key], key)
        except reports.ReportError:
            errors[key] = BAD_DATE
    if errors:
        return None, form
    period = reports.Period(days["de"], days["ate"])
    if period.last < period.first:
        errors["ate"] = N_("The end date is before the start date.")
    elif (period.last - period.first).days >= reports.MAX_DAYS:
        errors["ate"] = N_("Choose a period of at most ten years.")
    return (None if errors else period), form


class DashboardController(Controller):
    path = "/intranet/crm"
    guards = [permission_required("crm.view")]

    @get("/painel", name="crm:dashboard")
    async def dashboard(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        user = request.scope["user"]
        lang = request_language(request)
        manager = user.has("crm.manage")
        errors: dict[str, str] = {}
        period, form = _period(request.query_params, errors)
        departments = list((await db.execute(select(Department).order_by(Department.name))).scalars())
        scope: Department | None = None
        notice = ""
        if manager:
            form["departamento"] = str(request.query_params.get("departamento", "")).strip()
            if form["departamento"]:
                scope = next((d for d in departments if d.code == form["departamento"]), None)
                if scope is None:
                    errors["departamento"] = N_("There is no department with that code.")
        else:
            scope = next((d for d in departments if d.id == user.department_id), None)
            if scope is None:
                notice = N_("Your account has no department, so there are no figures to show.")
        kpis = None
        if period is not None and not errors and not notice:
            kpis = await reports.compute(db, period, scope)
        fragment = is_fragment_request(request)
        # htmx swaps no 4xx response: the fragment with the messages goes as 200, the whole page as 400.
        status = 400 if errors and not fragment else 200
        return await render(
            request,
            "crm/dashboard.html",
            {
                "form": form,
                "errors": errors,
                "notice": notice,
                "manager": manager,
                "departments": departments,
                "scope": scope,
                "kpis": kpis,
                "figures": self._figures(kpis, lang) if kpis else None,
                "shortcuts": [
                    (name, label, f"{PATH}?{urlencode({'periodo': name, **self._keep(form, manager)})}")
                    for name, label in reports.PRESETS.items()
                ],
                "fragment": fragment,
            },
            block="panel",
            status_code=status,
            headers={"Cache-Control": "private, no-store"},
        )

    @staticmethod
    def _keep(form: dict[str, str], manager: bool) -> dict[str, str]:
        return {"departamento": form["departamento"]} if manager and form.get("departamento") else {}

    @staticmethod
    def _figures(kpis: reports.Kpis, lang: str) -> dict[str, Any]:
        total = kpis.contacts_total
        channels = [
            {
                "code": code,
                "label": CHANNEL_LABELS.get(code, code),
                "count": n,
                "share": percent(n / total if total else None, lang),
                "bar": bar_class(n / total if total else 0),
                "online": code in ONLINE_CHANNELS,
            }
            for code, n in kpis.contacts_by_channel.items()
        ]
        return {
            "share_online": percent(kpis.share_online, lang),
            "median": decimal(kpis.median_hours_to_first_answer, lang),
            "sla": percent(kpis.sla_compliance, lang),
            "total_share": percent(1.0 if total else None, lang),
            "channels": channels,
        }
