"""Alert management pages (intranet, HTMX-enhanced) for holders of ``alerts.manage``."""

from __future__ import annotations

from datetime import datetime

from concelho.suite.auth.guards import permission_required
from concelho.suite.i18n import N_
from concelho.suite.render import render
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from .services import AlertError, AlertInput, all_alerts, clear_alert, raise_alert


def _parse_end(raw: str) -> tuple[datetime | None, str | None]:
    if not raw.strip():
        return None, None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None, N_("Use a date and time like 2026-12-01T18:00.")
    if value.tzinfo is None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo("Europe/Lisbon"))
    return value, None


class AlertsController(Controller):
    path = "/intranet/alerts"
    guards = [permission_required("alerts.manage")]

    async def _page(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        return await render(
            request,
            "alerts/manage.html",
            {"alerts": await all_alerts(db), "form": form or {"level": "warning"}, "errors": errors or {}},
            status_code=status,
        )

    @get("/", name="alerts:manage")
    async def manage(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        return await self._page(request, db)

    @post("/", name="alerts:raise")
    async def create(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        raw = await request.form()
        form = {k: str(raw.get(k, "")) for k in ("message", "message_en", "level", "link_url", "ends_at")}
        ends_at, end_error = _parse_end(form["ends_at"])
        data = AlertInput(form["message"], form["level"], form["message_en"], form["link_url"], ends_at)
        errors = data.validate()
        if end_error:
            errors["ends_at"] = end_error
        if errors:
            return await self._page(request, db, form, errors, 400)
        try:
            await raise_alert(db, data, request.scope["user"].username)
        except AlertError as exc:  # pragma: no cover - validate() already ran
            return await self._page(request, db, form, {"message": str(exc)}, 400)
        await db.commit()
        await request.app.state.suite.events.emit("alerts.changed")
        return Redirect("/intranet/alerts/", status_code=303)

    @post("/{alert_id:int}/clear", name="alerts:clear")
    async def clear(self, request: Request, db: NamedDependency[AsyncSession], alert_id: FromPath[int]) -> Response:
        try:
            await clear_alert(db, alert_id, request.scope["user"].username)
        except AlertError:
            gone = N_("This alert no longer exists.")
            return await self._page(request, db, errors={"clear": gone}, status=404)
        await db.commit()
        await request.app.state.suite.events.emit("alerts.changed")
        return Redirect("/intranet/alerts/", status_code=303)
