"""Search backends.  The embedded tantivy engine is the default; Meilisearch when ``search_url`` is set.

This module holds the contract and health checks the core needs today (``suite check``,
``/readyz``); indexing and querying grow here (see the search issue).
"""

from __future__ import annotations

from pathlib import Path

from concelho.suite.settings import Settings

from .contract import SearchBackend, SearchUnavailable

__all__ = ["EmbeddedBackend", "MeilisearchBackend", "SearchBackend", "SearchUnavailable", "backend_for"]


class EmbeddedBackend:
    """tantivy index files under ``<data_dir>/search``."""

    name = "embedded"

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def health(self) -> str:
        try:
            import tantivy
        except ImportError as exc:  # pragma: no cover - dependency is pinned
            raise SearchUnavailable(f"tantivy is not installed: {exc}") from exc
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            probe = self.index_dir / ".probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise SearchUnavailable(f"index folder {self.index_dir} is not writable: {exc.strerror}") from exc
        return f"tantivy {getattr(tantivy, '__version__', '')} at {self.index_dir}".replace("  ", " ")


class MeilisearchBackend:
    """A Meilisearch server reached with the official client."""

    name = "meilisearch"

    def __init__(self, url: str, api_key: str = "", index_prefix: str = "suite") -> None:
        self.url = url
        self.api_key = api_key
        self.index_prefix = index_prefix

    def health(self) -> str:
        import meilisearch
        from meilisearch.errors import MeilisearchError

        client = meilisearch.Client(self.url, self.api_key or None, timeout=3)
        try:
            status = client.health()
        except (MeilisearchError, OSError) as exc:
            raise SearchUnavailable(f"Meilisearch at {self.url} is unreachable: {exc}") from exc
        except Exception as exc:  # requests' connection errors
            raise SearchUnavailable(f"Meilisearch at {self.url} is unreachable: {type(exc).__name__}") from exc
        return f"meilisearch {status.get('status', '?')} at {self.url}"


def backend_for(settings: Settings) -> SearchBackend:
    if settings.search_url:
        return MeilisearchBackend(settings.search_url, settings.search_api_key, settings.search_index_prefix)
    return EmbeddedBackend(settings.data_dir / "search")
