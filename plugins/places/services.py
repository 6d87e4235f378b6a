"""What the places pages need: the live places, their GeoJSON, their schema.org description."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from concelho.suite.content.portal import Source, live_items_preferring

from .plugin import CATEGORIES, CATEGORY_LABELS_EN, PLACE


def category_label(category: str, language: str) -> str:
    return CATEGORY_LABELS_EN.get(category, category) if language == "en" else category


def coordinates(item: Any) -> tuple[float, float] | None:
    """(lat, lon) of a place, or None when the stored data lacks them."""
    lat, lon = item.data.get("lat"), item.data.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float) and -90 <= lat <= 90 and -180 <= lon <= 180:
        return float(lat), float(lon)
    return None


async def places(db: Source, language: str, category: str | None = None) -> tuple[list[Any], list[str]]:
    """Live places (in ``language`` or their Portuguese original) and the categories that have any."""
    items = await live_items_preferring(db, PLACE.name, language)
    available = [c for c in CATEGORIES if any(item.category == c for item in items)]
    if category:
        items = [item for item in items if item.category == category]
    return items, available


def feature_collection(items: list[Any], root: str, language: str = "pt") -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946: positions are [longitude, latitude])."""
    features = []
    for item in items:
        point = coordinates(item)
        if point is None:
            continue
        lat, lon = point
        features.append(
            {
                "type": "Feature",
                "id": item.slug,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "title": item.title,
                    "url": root + PLACE.url(item.slug, item.language),
                    "category": item.category,
                    "category_label": category_label(item.category, language),
                    "address": item.data.get("address", ""),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def osm_link(lat: float, lon: float) -> str:
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"


def place_schema_extra(item: Any) -> dict[str, Any]:
    data = item.data
    extra: dict[str, Any] = {}
    parts = (("streetAddress", data.get("address")), ("addressLocality", data.get("freguesia")))
    address = {key: value for key, value in parts if value}
    if address:
        extra["address"] = {"@type": "PostalAddress", **address, "addressCountry": "PT"}
    point = coordinates(item)
    if point:
        extra["geo"] = {"@type": "GeoCoordinates", "latitude": point[0], "longitude": point[1]}
        extra["hasMap"] = osm_link(*point)
    if data.get("phone"):
        extra["telephone"] = data["phone"]
    if data.get("email"):
        extra["email"] = data["email"]
    if data.get("website"):
        extra["sameAs"] = data["website"]
    return extra


def map_query(category: str | None, language: str) -> str:
    parts = ([f"categoria={quote(category)}"] if category else []) + (["lang=en"] if language == "en" else [])
    return ("?" + "&".join(parts)) if parts else ""
