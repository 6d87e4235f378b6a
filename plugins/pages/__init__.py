"""Pages: the council ("Câmara") and territory ("Concelho") sections of the portal as a tree of pages,
plus the council pages generated from data (org chart, executive, recruitment, documents)."""

from .plugin import PagesPlugin

plugin = PagesPlugin()
