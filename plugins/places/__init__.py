"""Places: points of interest (museums, beaches, parks, council offices …), their pages and the map."""

from .plugin import PlacesPlugin

plugin = PlacesPlugin()
