"""The search contract every backend implements, and the document every plugin provides.

Plugins never talk to an engine: they give :class:`SearchDocument`s to the indexer
(``search/indexing.py``) through the plugin registry; pages and the API ask a
:class:`SearchBackend` with a :class:`SearchQuery` that already carries the caller's
visibility (:class:`Visibility`), so no backend can return what the caller may not see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

#: Fields used for facets (filterable and countable by every backend).
FACET_FIELDS = ("type", "category", "section", "language")


@dataclass
class SearchDocument:
    """One searchable thing.  ``id`` is ``<plugin>.<kind>:<pk>`` (``news.article:42``)."""

    id: str
    type: str
    title: str
    url: str
    summary: str = ""
    body: str = ""
    tags: list[str] = field(default_factory=list)
    category: str = ""
    section: str = ""
    language: str = "pt"
    published_at: datetime | None = None
    updated_at: datetime | None = None
    #: Visibility: ``public`` (anyone), ``internal`` (any employee) or ``workspace`` (members of ``workspace_ids``);
    #: ``department_ids`` additionally lets members of those departments see an internal item.
    audience: str = "public"
    workspace_ids: list[int] = field(default_factory=list)
    department_ids: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Visibility:
    """What the caller may see; built from *current* memberships at query time."""

    authenticated: bool = False
    workspace_ids: frozenset[int] = frozenset()
    department_ids: frozenset[int] = frozenset()
    #: Superusers see everything (used by admin tools only, never by the portal).
    everything: bool = False

    @classmethod
    def anonymous(cls) -> Visibility:
        return cls()


@dataclass
class SearchQuery:
    text: str
    visibility: Visibility = field(default_factory=Visibility.anonymous)
    #: Equality filters on facet fields, e.g. ``{"type": ["news.article"], "language": ["pt"]}``.
    filters: dict[str, list[str]] = field(default_factory=dict)
    facets: tuple[str, ...] = FACET_FIELDS
    limit: int = 10
    offset: int = 0
    #: ``relevance`` (default: relevance, then recency) or ``recent``.
    sort: str = "relevance"
    highlight: bool = True
    #: Treat the last word as a prefix (search-as-you-type).
    prefix: bool = True


@dataclass
class SearchHit:
    id: str
    type: str
    title: str
    url: str
    #: HTML-safe snippet: escaped text with ``<mark>`` around matches.
    snippet: str = ""
    score: float = 0.0
    language: str = "pt"
    category: str = ""
    published_at: datetime | None = None


@dataclass
class SearchResult:
    hits: list[SearchHit]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    #: A corrected query when nothing matched ("did you mean").
    suggestion: str | None = None
    took_ms: float = 0.0


class SearchUnavailable(RuntimeError):
    """The engine cannot be reached or used; callers fall back to a database search."""


@runtime_checkable
class SearchBackend(Protocol):
    name: str

    def health(self) -> str:
        """A short description when healthy; raises :class:`SearchUnavailable`."""
        ...

    def ensure_index(self) -> None:
        """Create and configure the index (idempotent)."""
        ...

    def upsert(self, documents: list[SearchDocument]) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def count(self, visibility: Visibility | None = None, type_: str | None = None) -> int: ...

    def counts_by_type(self) -> dict[str, int]: ...

    def rebuild(self, documents: list[SearchDocument]) -> None:
        """Replace the whole index atomically with ``documents``."""
        ...

    def configure_synonyms(self, synonyms: dict[str, list[str]]) -> None: ...
