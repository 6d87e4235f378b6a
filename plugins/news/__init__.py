"""News: articles with categories, pagination, related items and RSS/Atom feeds."""

from .plugin import NewsPlugin

plugin = NewsPlugin()
