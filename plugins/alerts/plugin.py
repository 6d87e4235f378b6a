"""The alerts plugin object."""

from __future__ import annotations

import time
from typing import Any

from concelho.suite.cache import cached_slot
from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin
from markupsafe import Markup


class AlertsPlugin(Plugin):
    name = "alerts"
    label = "Alert banner"
    version = "0.1.0"
    permissions = {"alerts.manage": "Raise and clear the portal alert banner"}

    def route_handlers(self) -> list[Any]:
        from .controllers import AlertsController

        return [AlertsController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("Alerts"), "/intranet/alerts/", area="intranet", permission="alerts.manage", order=90)]

    def template_hooks(self) -> dict[str, Any]:
        return {"portal_top": self.render_banner, "head": self.render_stylesheet}

    def cli(self):  # type: ignore[no-untyped-def]
        from .cli import app

        return app

    async def load_demo(self, session: Any) -> int:
        from sqlalchemy import func, select

        from .models import Alert
        from .services import AlertInput, raise_alert

        if (await session.execute(select(func.count()).select_from(Alert))).scalar_one():
            return 0
        await raise_alert(
            session,
            AlertInput(
                "Aviso amarelo de agitação marítima até domingo: evite a zona do paredão.",
                "warning",
                "Yellow warning for rough seas until Sunday: keep away from the sea wall.",
            ),
            "demo",
        )
        return 1

    async def current_alerts(self, request: Any) -> list[Any]:
        """The active alerts, kept for the app with the page-cache generation they were read at: raising
        or clearing an alert moves the generation (and ``alerts.changed`` makes this worker poll it at
        once); an alert reaching its end goes away within the page cache's maximum age."""
        state = request.app.state.suite
        generation = await state.page_cache.generation()
        cache = state.plugin_cache(self.name)
        cached = cache.get("alerts")
        now = time.monotonic()
        if cached is None or cached[0] != generation or now - cached[1] >= state.page_cache.max_age_seconds:
            from concelho.suite.content.portal import portal_reads

            from .services import active_alerts

            alerts = await active_alerts(portal_reads(request))
            cached = cache["alerts"] = (generation, now, alerts)
        return cached[2]

    def render_stylesheet(self, request: Any) -> Markup:
        return Markup('<link rel="stylesheet" href="/static/alerts/alerts.css">')

    @cached_slot
    async def render_banner(self, request: Any) -> Markup:
        """The active alerts (the same for every visitor: kept per language like the home blocks)."""
        state = request.app.state.suite
        alerts = await self.current_alerts(request)
        if not alerts:
            return Markup("")
        from concelho.suite.render import base_context

        tmpl = state.templates.get_template("alerts/banner.html")
        html = await tmpl.render_async({**base_context(request), "alerts": alerts})
        return Markup(html)  # noqa: S704 - autoescaped template output
