"""Search backends.  The embedded tantivy engine is the default; Meilisearch when ``search_url`` is set.

* :class:`concelho.search.embedded.TantivyBackend`: index files under ``<data_dir>/search``;
* :class:`concelho.search.meili.MeilisearchBackend`: a Meilisearch server (``search_url``,
  ``search_api_key``, ``search_index_prefix``).

Both implement :class:`concelho.search.contract.SearchBackend`.  Building a backend does no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from concelho.suite.settings import Settings

from .contract import SearchBackend, SearchUnavailable

if TYPE_CHECKING:
    from .embedded import TantivyBackend
    from .meili import MeilisearchBackend

__all__ = ["MeilisearchBackend", "SearchBackend", "SearchUnavailable", "TantivyBackend", "backend_for"]


def __getattr__(name: str) -> Any:  # lazy: importing this module loads neither engine
    if name == "TantivyBackend":
        from .embedded import TantivyBackend

        return TantivyBackend
    if name == "MeilisearchBackend":
        from .meili import MeilisearchBackend

        return MeilisearchBackend
    raise AttributeError(name)


def backend_for(settings: Settings) -> SearchBackend:
    """Meilisearch when ``search_url`` is set, else the embedded engine under ``<data_dir>/search``."""
    from .synonyms import DEFAULT_SYNONYMS

    if settings.search_url:
        from .meili import MeilisearchBackend

        return MeilisearchBackend(
            settings.search_url, settings.search_api_key, settings.search_index_prefix, synonyms=DEFAULT_SYNONYMS
        )
    from .embedded import TantivyBackend

    return TantivyBackend(settings.data_dir / "search", synonyms=DEFAULT_SYNONYMS)
