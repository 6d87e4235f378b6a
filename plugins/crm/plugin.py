"""The CRM plugin object: settings (topics, reference prefix, limits), routes, navigation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin, PluginError
from concelho.suite.request_scope import request_path
from markupsafe import Markup

if TYPE_CHECKING:
    from concelho.suite.settings import Settings

DEFAULT_TOPICS = [
    "Via pública e iluminação||5",
    "Ambiente e resíduos||5",
    "Água e saneamento||3",
    "Urbanismo||15",
    "Ação social||10",
    "Outro assunto||15",
]


def parse_settings(raw: dict[str, Any]) -> dict[str, Any]:
    prefix = str(raw.get("reference_prefix") or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{1,8}", prefix):
        raise PluginError(f"[plugins.crm] reference_prefix must be 1-8 letters, got {prefix!r}")
    topics = raw.get("topics") or []
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise PluginError('[plugins.crm] topics must be a list of "Label|DEPARTMENT-CODE|SLA days" strings')
    out = {**raw, "reference_prefix": prefix}
    out["open311_jurisdiction"] = str(raw.get("open311_jurisdiction") or "").strip()
    for key in ("rate_limit", "rate_window_seconds", "max_attachments", "attachment_max_bytes", "open311_rate_limit"):
        try:
            out[key] = int(raw[key])
        except (TypeError, ValueError):
            raise PluginError(f"[plugins.crm] {key} must be a whole number") from None
        if out[key] < 1:
            raise PluginError(f"[plugins.crm] {key} must be at least 1")
    try:
        out["retention_years"] = int(raw.get("retention_years", 5))
    except (TypeError, ValueError):
        raise PluginError("[plugins.crm] retention_years must be a whole number (0 turns the purge off)") from None
    if out["retention_years"] < 0:
        raise PluginError("[plugins.crm] retention_years must be 0 (off) or more")
    location_map = raw.get("location_map", True)
    if not isinstance(location_map, bool):
        raise PluginError("[plugins.crm] location_map must be true or false")
    out["location_map"] = location_map
    return out


class CrmPlugin(Plugin):
    name = "crm"
    label = "Citizen contact (Fale Connosco)"
    version = "0.1.0"
    permissions = {
        "crm.view": "See and answer the citizen cases of one's department",
        "crm.manage": "See every citizen case, route and assign cases",
    }

    def default_settings(self) -> dict[str, Any]:
        return {
            "reference_prefix": "VM",
            # One topic per entry: "Label|DEPARTMENT-CODE|SLA days" (department and SLA optional).
            "topics": list(DEFAULT_TOPICS),
            "rate_limit": 10,  # submissions per IP and window
            "rate_window_seconds": 3600,
            "max_attachments": 3,
            "attachment_max_bytes": 10 * 1024 * 1024,
            # Open311 GeoReport v2 (docs/OPEN311.md): the jurisdiction_id clients may send, POSTs per key and window.
            "open311_jurisdiction": "cm-vilaserena.example",
            "open311_rate_limit": 100,
            # GDPR retention (docs/CRM.md): people inactive this many years, with no open case, are erased daily.
            "retention_years": 5,
            # The map next to the location fields of the public forms (tiles and centre: the core map_* settings).
            "location_map": True,
        }

    def configure(self, settings: Settings) -> None:
        self.settings = self.settings_for(settings)

    def settings_for(self, settings: Settings) -> dict[str, Any]:
        """The effective settings of one app (plugin objects are shared by every app of the process)."""
        return parse_settings({**self.default_settings(), **settings.for_plugin(self.name)})

    def limit_store(self, state: Any) -> Any:
        """The app's store of submissions per IP (for the rate limit)."""
        cache = state.plugin_cache(self.name)
        store = cache.get("limit_store")
        if store is None:
            from concelho.suite.stores import DatabaseStore

            store = cache["limit_store"] = DatabaseStore(state.database, "crm.submissions.ip")
        return store

    def route_handlers(self) -> list[Any]:
        from .controllers import CasesController, ContactController, ServiceRequestController
        from .dashboard import DashboardController
        from .open311 import Open311Controller
        from .staff import CitizensController

        return [
            ContactController,
            ServiceRequestController,
            CasesController,
            Open311Controller,
            DashboardController,
            CitizensController,
        ]

    async def load_demo(self, session: Any) -> int:
        """CRM roles (``crm_agent``, ``crm_manager``), the demo counter staff's role and a year of contacts."""
        from .demo import load

        return await load(session)

    def background_jobs(self) -> list[Any]:
        from .gdpr import retention_job

        return [retention_job]

    def cli(self):  # type: ignore[no-untyped-def]
        from .cli import app

        return app

    def template_hooks(self) -> dict[str, Any]:
        return {"head": self.render_stylesheet}

    def render_stylesheet(self, request: Any) -> str:
        """Only on the plugin's own pages."""
        if not request_path(request).startswith(("/fale-connosco", "/pedidos/", "/intranet/crm/")):
            return ""
        return Markup('<link rel="stylesheet" href="/static/crm/crm.css">')

    def nav_items(self) -> list[NavItem]:
        return [
            NavItem(N_("Contact us"), "/fale-connosco", area="portal", order=90),
            NavItem(N_("Citizen cases"), "/intranet/crm/casos", area="intranet", permission="crm.view", order=40),
            NavItem(N_("Citizens"), "/intranet/crm/cidadaos", area="intranet", permission="crm.view", order=42),
            NavItem(N_("Counter"), "/intranet/crm/balcao", area="intranet", permission="crm.view", order=43),
            NavItem(N_("CRM dashboard"), "/intranet/crm/painel", area="intranet", permission="crm.view", order=41),
        ]
