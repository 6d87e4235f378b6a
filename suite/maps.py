"""What every map of the suite shares: the tile server, its attribution and where maps open.

The values are core settings (``map_tile_url``, ``map_tile_attribution``, ``map_tile_attribution_url``,
``map_center``, ``map_zoom``); Leaflet itself is vendored once, in ``static/core/leaflet/`` (served at
``/static/core/leaflet/``, see ``static/VENDORED.md``).  A plugin that shows a map passes
:func:`map_options` to its template and loads :data:`LEAFLET_CSS` and :data:`LEAFLET_JS` with ``static()``.
The page's CSP already allows https images (``img-src 'self' data: https:``), hence the https-only tile URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings

#: Paths for the templates' ``static()`` helper.
LEAFLET_JS = "core/leaflet/leaflet.js"
LEAFLET_CSS = "core/leaflet/leaflet.css"


@dataclass(frozen=True)
class MapOptions:
    """The effective map settings of one app (what map scripts read from ``data-`` attributes)."""

    tile_url: str
    tile_attribution: str
    tile_attribution_url: str
    center: tuple[float, float]
    zoom: int


def map_problem(tile_url: str, attribution_url: str, center: Sequence[float], zoom: int) -> tuple[str, str] | None:
    """``(setting, what is wrong)`` for the first bad value, or None when all of them are usable."""
    if not (tile_url.startswith("https://") or (tile_url.startswith("/") and not tile_url.startswith("//"))):
        return "tile_url", f"must be an https:// URL (the page's CSP only loads https images), got {tile_url!r}"
    if not all(part in tile_url for part in ("{z}", "{x}", "{y}")):
        return "tile_url", f"must contain {{z}}, {{x}} and {{y}}, got {tile_url!r}"
    if attribution_url and not attribution_url.startswith(("https://", "http://")):
        return "tile_attribution_url", f"must be an http(s) URL, got {attribution_url!r}"
    if len(center) != 2 or not (-90 <= center[0] <= 90 and -180 <= center[1] <= 180):
        return "center", f"must be [latitude, longitude], got {list(center)!r}"
    if not 1 <= zoom <= 19:
        return "zoom", f"must be a whole number from 1 to 19, got {zoom!r}"
    return None


def map_options(settings: Settings) -> MapOptions:
    """The core map settings (validated by ``load_settings``)."""
    lat, lon = settings.map_center
    return MapOptions(
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
        tile_attribution_url=settings.map_tile_attribution_url,
        center=(lat, lon),
        zoom=settings.map_zoom,
    )
