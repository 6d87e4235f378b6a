"""The intranet plugin object and the corporate news content type."""

from __future__ import annotations

from typing import Any

from concelho.suite.content.types import ContentType, FieldSpec
from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin, PluginError
from concelho.suite.request_scope import request_path

CLASSIFICATIONS = ("interno", "restrito", "confidencial")

NEWS = ContentType(
    name="intranet.news",
    label=N_("Intranet news"),
    url_pattern="/intranet/noticias/{slug}",
    fields=(
        FieldSpec(
            "must_read",
            N_("Must read"),
            "bool",
            help=N_("Employees are asked to read it; the publisher sees who has."),
        ),
        FieldSpec("classification", N_("Classification"), "choice", choices=CLASSIFICATIONS),
    ),
    schema_type="NewsArticle",
    section_label=N_("Intranet news"),
    section_url="/intranet/noticias",
    listed_in_sitemap=False,
    extra={
        # Import files may say "type": "internal"; of those rows only the news ones are ours (the
        # documents of workspaces share the type and say "internal_kind": "document").
        "import_aliases": ("internal", "intranet-news"),
        "import_when": {"internal_kind": ("news", "")},
        "default_audience": "internal",
    },
)

DEFAULT_QUICK_LINKS = [
    {"label": N_("Workspaces"), "url": "/intranet/espacos/"},
    {"label": N_("Intranet news"), "url": "/intranet/noticias"},
    {"label": N_("Notifications"), "url": "/intranet/notificacoes"},
]


def parse_quick_links(raw: Any) -> list[dict[str, str]]:
    """``quick_links``: a list of ``{label, url}`` tables or ``"label | url"`` strings; URLs are local or http(s)."""
    if not isinstance(raw, list):
        raise PluginError("[plugins.intranet] quick_links must be a list of {label, url} tables")
    links = []
    for entry in raw:
        if isinstance(entry, str) and "|" in entry:
            label, url = (part.strip() for part in entry.split("|", 1))
        elif isinstance(entry, dict):
            label, url = str(entry.get("label") or "").strip(), str(entry.get("url") or "").strip()
        else:
            raise PluginError(f"[plugins.intranet] quick_links: {entry!r} is not a {{label, url}} table")
        local = url.startswith("/") and not url.startswith("//")
        if not label or not (local or url.startswith(("https://", "http://"))):
            raise PluginError(f"[plugins.intranet] quick_links: {entry!r} needs a label and a local or http(s) address")
        links.append({"label": label, "url": url})
    return links


class IntranetPlugin(Plugin):
    name = "intranet"
    label = "Intranet home"
    version = "0.1.0"
    requires = ("workspaces",)

    def default_settings(self) -> dict[str, Any]:
        return {
            #: Links shown on the employee home: [{label = "…", url = "…"}] or ["label | url"].
            "quick_links": DEFAULT_QUICK_LINKS,
            #: How many news items the home shows.
            "home_news": 5,
        }

    def configure(self, settings: Any) -> None:
        self.settings = self.settings_for(settings)

    def settings_for(self, settings: Any) -> dict[str, Any]:
        """The effective settings of one app (plugin objects are shared by every app of the process)."""
        values = {**self.default_settings(), **settings.for_plugin(self.name)}
        values["quick_links"] = parse_quick_links(values["quick_links"])
        try:
            values["home_news"] = max(1, min(20, int(values["home_news"])))
        except (TypeError, ValueError):
            raise PluginError("[plugins.intranet] home_news must be a whole number") from None
        return values

    def content_types(self) -> list[ContentType]:
        return [NEWS]

    def route_handlers(self) -> list[Any]:
        from .controllers import IntranetNewsController, NotificationsController

        return [IntranetNewsController, NotificationsController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("News"), "/intranet/noticias", area="intranet", order=10)]

    def template_hooks(self) -> dict[str, Any]:
        from .controllers import home_block, notifications_badge

        return {"intranet_home": home_block, "intranet_header": notifications_badge, "head": self.stylesheet}

    def stylesheet(self, request: Any) -> str:
        from markupsafe import Markup

        if not request_path(request).startswith("/intranet"):
            return ""
        return Markup('<link rel="stylesheet" href="/static/intranet/intranet.css">')

    def on_startup(self, app: Any) -> None:
        """Notifications from other plugins' events, on this app's own bus (it holds this app's database)."""
        from .services import notification_listeners

        state = app.state.suite
        for event_name, listener in notification_listeners(state.database).items():
            state.events.on(event_name, listener)

    def background_jobs(self) -> list[Any]:
        from .services import daily_digest_job

        return [daily_digest_job]

    def cli(self):  # type: ignore[no-untyped-def]
        from .cli import app

        return app
