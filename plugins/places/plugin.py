"""The places plugin object: the ``places.place`` content type and the map settings (the core's, see suite/maps.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from concelho.suite.content.types import ContentType, FieldSpec
from concelho.suite.i18n import N_
from concelho.suite.maps import map_options, map_problem
from concelho.suite.plugins import NavItem, Plugin, PluginError

if TYPE_CHECKING:
    from concelho.suite.settings import Settings

CATEGORIES = (
    "lojas do munícipe", "museus", "bibliotecas", "monumentos", "praias", "parques", "miradouros",
    "equipamentos desportivos", "escolas", "mercados",
)  # fmt: skip
CATEGORY_LABELS_EN = {
    "lojas do munícipe": "citizen service desks", "museus": "museums", "bibliotecas": "libraries",
    "monumentos": "monuments", "praias": "beaches", "parques": "parks", "miradouros": "viewpoints",
    "equipamentos desportivos": "sports facilities", "escolas": "schools", "mercados": "markets",
}  # fmt: skip

PLACE = ContentType(
    name="places.place",
    label="Place",
    url_pattern="/locais/{slug}",
    fields=(
        FieldSpec("lat", N_("Latitude"), "float", required=True, min_value=-90, max_value=90),
        FieldSpec("lon", N_("Longitude"), "float", required=True, min_value=-180, max_value=180),
        FieldSpec("address", N_("Address"), max_length=300),
        FieldSpec("opening_hours", N_("Opening hours"), max_length=500),
        FieldSpec("freguesia", N_("Parish (freguesia)"), max_length=120),
        FieldSpec("phone", N_("Phone"), max_length=40, pattern=r"\+?[0-9][0-9 ().-]{2,38}",
                  pattern_error=N_("Write a phone number with digits, spaces and an optional leading +.")),
        FieldSpec("email", N_("E-mail"), max_length=200, pattern=r"[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+",
                  pattern_error=N_("Write an e-mail address like geral@example.pt.")),
        FieldSpec("website", N_("Website"), max_length=500, pattern=r"https?://[^\s\"'<>]+",
                  pattern_error=N_("Write an address that starts with https://.")),
    ),
    categories=CATEGORIES,
    schema_type="Place",
    section_label=N_("Places"),
    section_url="/locais",
    extra={"import_aliases": ("poi",)},
)  # fmt: skip


def parse_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """Validated map settings of the places map (raises :class:`PluginError` naming the bad one)."""
    try:
        center = [float(v) for v in raw.get("center") or ()]
        zoom = int(raw.get("zoom"))
    except (TypeError, ValueError):
        raise PluginError("[plugins.places] center must be [latitude, longitude] and zoom a whole number") from None
    tile_url = str(raw.get("tile_url") or "").strip()
    attribution_url = str(raw.get("tile_attribution_url") or "").strip()
    if problem := map_problem(tile_url, attribution_url, center, zoom):
        raise PluginError(f"[plugins.places] {problem[0]} {problem[1]}")
    return {
        **raw,
        "tile_url": tile_url,
        "tile_attribution": str(raw.get("tile_attribution") or "").strip(),
        "tile_attribution_url": attribution_url,
        "center": center,
        "zoom": zoom,
    }


class PlacesPlugin(Plugin):
    name = "places"
    label = "Places"
    version = "0.1.0"
    models_module = None

    def configure(self, settings: Settings) -> None:
        self.settings = self.settings_for(settings)

    def settings_for(self, settings: Settings) -> dict[str, Any]:
        """The effective settings of one app (plugin objects are shared by every app of the process): the core map
        settings (``map_*``), which ``tile_url``, ``tile_attribution``, ``tile_attribution_url``, ``center`` and
        ``zoom`` in ``[plugins.places]`` still override for this map (configurations older than the core ones)."""
        core = map_options(settings)
        defaults = {
            "tile_url": core.tile_url,
            "tile_attribution": core.tile_attribution,
            "tile_attribution_url": core.tile_attribution_url,
            # Where the map opens before the places are loaded (and when there are none).
            "center": list(core.center),
            "zoom": core.zoom,
        }
        return parse_settings({**defaults, **settings.for_plugin(self.name)})

    def content_types(self) -> list[ContentType]:
        return [PLACE]

    def route_handlers(self) -> list[Any]:
        from .controllers import PlacesController

        return [PlacesController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("Places"), "/locais", area="portal", order=40)]
