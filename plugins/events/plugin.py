"""The events plugin object and its content type."""

from __future__ import annotations

from typing import Any

from concelho.suite.content.types import ContentType, FieldSpec
from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin

CATEGORIES = (
    "concertos", "feiras", "exposições", "desporto", "workshops", "teatro", "cinema", "infantil", "outros",
)  # fmt: skip

EVENT = ContentType(
    name="events.event",
    label=N_("Event"),
    url_pattern="/agenda/{slug}",
    fields=(
        FieldSpec("start", N_("Starts"), "datetime", required=True, help=N_("Date and time in Lisbon time.")),
        FieldSpec("end", N_("Ends"), "datetime"),
        FieldSpec("venue", N_("Venue"), required=True, max_length=300),
        FieldSpec("address", N_("Address"), max_length=300),
        FieldSpec("lat", N_("Latitude"), "float", min_value=-90, max_value=90),
        FieldSpec("lon", N_("Longitude"), "float", min_value=-180, max_value=180),
        FieldSpec("price", N_("Price"), max_length=300),
        FieldSpec("organizer", N_("Organizer"), max_length=300),
        FieldSpec(
            "registration_url",
            N_("Registration link"),
            max_length=500,
            help=N_("An https:// address."),
            pattern=r"https?://[^\s<>\"']+",
            pattern_error=N_("Enter an address starting with https://."),
        ),
    ),
    categories=CATEGORIES,
    schema_type="Event",
    section_label=N_("Events"),
    section_url="/agenda",
    extra={"import_aliases": ("event",)},
)


class EventsPlugin(Plugin):
    name = "events"
    label = "Events"
    version = "0.1.0"

    def content_types(self) -> list[ContentType]:
        return [EVENT]

    def route_handlers(self) -> list[Any]:
        from .controllers import EventsController

        return [EventsController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("Events"), "/agenda", area="portal", order=20)]

    def template_hooks(self) -> dict[str, Any]:
        from .controllers import upcoming_events_block

        return {"home_main": upcoming_events_block}

    def on_startup(self, app: Any) -> None:
        """Keep ``events_schedule`` in step with editor saves of this app (see services.ensure_schedule).

        The listener is registered on the app's own event bus (rather than through ``listeners()``) so it
        holds that app's database: the plugin object is shared by every app built in one process.
        """
        from .services import schedule_listener

        state = app.state.suite
        state.events.on("content.saved", schedule_listener(state.database))
