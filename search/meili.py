"""Meilisearch backend (``SUITE_SEARCH_URL``), with the official ``meilisearch`` client.

One index, ``<prefix>_documents``.  Its settings (sent by :meth:`MeilisearchBackend.ensure_index`):
searchable attributes in order of importance (title > summary > tags > body), filterable facet and
visibility fields, ``published_at`` sortable and used as the last ranking rule (recency breaks
ties), typo tolerance, Portuguese stop words and the editors' synonyms.

Every write waits for its task to finish (and raises when the task failed), so the indexer only
drops outbox rows that Meilisearch really applied.  A full rebuild fills a fresh index and swaps it
with the live one (``POST /swap-indexes``): searches never see a half-built index.

Document ids (``news.article:42``) contain characters Meilisearch refuses in primary keys, so the
primary key is ``key``, a reversible encoding of the id (:func:`encode_key`); ``id`` is kept as is.
Dates are stored as Unix timestamps (sortable numbers).
"""

from __future__ import annotations

import contextlib
import re
import time
from datetime import UTC, datetime
from typing import Any

from markupsafe import escape

from .contract import FACET_FIELDS, SearchDocument, SearchHit, SearchQuery, SearchResult, SearchUnavailable, Visibility

PRIMARY_KEY = "key"
SEARCHABLE = ["title", "summary", "tags", "body"]
FILTERABLE = ["type", "category", "section", "language", "audience", "workspace_ids", "department_ids"]
SORTABLE = ["published_at"]
RANKING_RULES = ["words", "typo", "proximity", "attribute", "sort", "exactness", "published_at:desc"]
TYPO_TOLERANCE = {"enabled": True, "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8}}
#: Portuguese function words (never worth matching on their own).
STOP_WORDS = [
    "a", "à", "às", "ao", "aos", "as", "o", "os", "um", "uma", "uns", "umas", "de", "do", "da", "dos", "das",
    "em", "no", "na", "nos", "nas", "num", "numa", "por", "pelo", "pela", "pelos", "pelas", "para", "pra", "com",
    "sem", "sob", "e", "ou", "nem", "mas", "que", "se", "como", "quando", "onde", "qual", "quais", "quem",
    "cujo", "cuja", "é", "são", "foi", "ser", "ter", "há", "seu", "sua", "seus", "suas", "lhe", "lhes", "me",
    "te", "vos", "ele", "ela", "eles", "elas", "este", "esta", "estes", "estas", "isto", "esse", "essa",
    "esses", "essas", "isso", "aquele", "aquela", "aqueles", "aquelas", "aquilo", "entre", "sobre", "até",
    "também", "já", "mais", "muito", "muita",
]  # fmt: skip
UPSERT_BATCH = 1000
PRE, POST = "\ue000", "\ue001"  # highlight markers, replaced by <mark> after escaping
_KEY_SAFE = re.compile(r"[A-Za-z0-9_]")


def encode_key(doc_id: str) -> str:
    """``news.article:42`` → ``news-2earticle-3a42`` (only ``[A-Za-z0-9_-]``, reversible)."""
    return "".join(ch if _KEY_SAFE.fullmatch(ch) else "".join(f"-{b:02x}" for b in ch.encode()) for ch in doc_id)


def decode_key(key: str) -> str:
    out = bytearray()
    i = 0
    while i < len(key):
        if key[i] == "-":
            out.append(int(key[i + 1 : i + 3], 16))
            i += 3
        else:
            out.extend(key[i].encode())
            i += 1
    return out.decode()


def quote(value: str | int) -> str:
    """A filter value: numbers bare, strings double-quoted with ``"`` and ``\\`` escaped."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def visibility_filter(visibility: Visibility) -> str | None:
    """The filter expression for what ``visibility`` may see (``None``: everything).

    Same rules as ``search/visibility.py``: public for all; internal for employees or members of the
    document's departments; workspace for members of its workspaces only.
    """
    if visibility.everything:
        return None
    parts = ['audience = "public"']
    if visibility.authenticated:
        parts.append('audience = "internal"')
    elif visibility.department_ids:
        ids = ", ".join(quote(i) for i in sorted(visibility.department_ids))
        parts.append(f'(audience = "internal" AND department_ids IN [{ids}])')
    if visibility.workspace_ids:
        ids = ", ".join(quote(i) for i in sorted(visibility.workspace_ids))
        parts.append(f'(audience = "workspace" AND workspace_ids IN [{ids}])')
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def query_filters(query: SearchQuery) -> list[str]:
    """Visibility plus the equality filters, as a list Meilisearch ANDs together."""
    out: list[str] = []
    visible = visibility_filter(query.visibility)
    if visible:
        out.append(visible)
    for name in FACET_FIELDS:
        values = query.filters.get(name) or []
        if values:
            out.append(f"{name} IN [{', '.join(quote(v) for v in values)}]")
    return out


def _timestamp(value: datetime | None) -> int | None:
    if value is None:
        return None
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def _datetime(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def to_meili(doc: SearchDocument) -> dict[str, Any]:
    return {
        PRIMARY_KEY: encode_key(doc.id),
        "id": doc.id,
        "type": doc.type,
        "title": doc.title,
        "url": doc.url,
        "summary": doc.summary,
        "body": doc.body,
        "tags": list(doc.tags),
        "category": doc.category,
        "section": doc.section,
        "language": doc.language,
        "published_at": _timestamp(doc.published_at),
        "updated_at": _timestamp(doc.updated_at),
        "audience": doc.audience,
        "workspace_ids": list(doc.workspace_ids),
        "department_ids": list(doc.department_ids),
    }


def _marked(text: str) -> str:
    """Escape, then turn the highlight markers into ``<mark>``."""
    return str(escape(text)).replace(PRE, "<mark>").replace(POST, "</mark>")


def _snippet(hit: dict[str, Any]) -> str:
    formatted = hit.get("_formatted") or {}
    for name in ("summary", "body", "title"):
        text = formatted.get(name)
        if isinstance(text, str) and PRE in text and name != "title":
            return _marked(text)
    text = formatted.get("summary") or hit.get("summary") or formatted.get("body") or ""
    return _marked(str(text))


class MeilisearchBackend:
    """A Meilisearch server reached with the official client (``search_url``, ``search_api_key``)."""

    name = "meilisearch"

    def __init__(
        self,
        url: str,
        api_key: str = "",
        index_prefix: str = "suite",
        *,
        synonyms: dict[str, list[str]] | None = None,
        timeout: int = 5,
        task_timeout_ms: int = 60_000,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.index_prefix = re.sub(r"[^A-Za-z0-9_-]", "_", index_prefix or "suite")
        self.uid = f"{self.index_prefix}_documents"
        #: Synonyms given at construction (the suite passes ``DEFAULT_SYNONYMS``) stay underneath the
        #: site's own, which ``configure_synonyms`` replaces (as in the embedded engine).
        self.base_synonyms: dict[str, list[str]] = {k: list(v) for k, v in (synonyms or {}).items()}
        self.synonyms: dict[str, list[str]] = dict(self.base_synonyms)
        self.timeout = timeout
        self.task_timeout_ms = task_timeout_ms
        self._client: Any = None
        self._ready = False

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import meilisearch

            self._client = meilisearch.Client(self.url, self.api_key or None, timeout=self.timeout)
        return self._client

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; every failure becomes :class:`SearchUnavailable` with a readable message."""
        from meilisearch.errors import MeilisearchApiError, MeilisearchError

        try:
            return func(*args, **kwargs)
        except SearchUnavailable:
            raise
        except MeilisearchApiError as exc:
            raise SearchUnavailable(
                f"Meilisearch refused {what}: {getattr(exc, 'message', exc)} ({getattr(exc, 'code', '')})"
            ) from exc
        except MeilisearchError as exc:
            raise SearchUnavailable(f"Meilisearch at {self.url} is unreachable ({what}): {exc}") from exc
        except Exception as exc:  # requests' own errors
            raise SearchUnavailable(f"Meilisearch at {self.url} failed ({what}): {type(exc).__name__}: {exc}") from exc

    def _wait(self, task: Any, what: str) -> None:
        uid = getattr(task, "task_uid", None)
        if uid is None and isinstance(task, dict):
            uid = task.get("taskUid")
        done = self._call(f"waiting for {what}", self.client.wait_for_task, uid, self.task_timeout_ms, 50)
        if done.status != "succeeded":
            error = (done.error or {}).get("message", done.status)
            raise SearchUnavailable(f"Meilisearch task {uid} ({what}) {done.status}: {error}")

    def settings_payload(self) -> dict[str, Any]:
        return {
            "searchableAttributes": SEARCHABLE,
            "filterableAttributes": FILTERABLE,
            "sortableAttributes": SORTABLE,
            "rankingRules": RANKING_RULES,
            "typoTolerance": TYPO_TOLERANCE,
            "stopWords": STOP_WORDS,
            "synonyms": self.synonyms,
            "faceting": {"maxValuesPerFacet": 200},
            "pagination": {"maxTotalHits": 10_000},
        }

    def _index_exists(self, uid: str) -> bool:
        from meilisearch.errors import MeilisearchApiError

        try:
            self.client.http.get(f"indexes/{uid}")
            return True
        except MeilisearchApiError as exc:
            if getattr(exc, "status_code", None) == 404 or getattr(exc, "code", "") == "index_not_found":
                return False
            raise

    def _create_index(self, uid: str) -> None:
        task = self._call("creating an index", self.client.create_index, uid, {"primaryKey": PRIMARY_KEY})
        self._wait(task, f"creation of index {uid}")

    def _configure(self, uid: str) -> None:
        task = self._call("the index settings", self.client.index(uid).update_settings, self.settings_payload())
        self._wait(task, f"settings of index {uid}")

    def _add(self, uid: str, documents: list[SearchDocument]) -> None:
        index = self.client.index(uid)
        for start in range(0, len(documents), UPSERT_BATCH):
            batch = [to_meili(d) for d in documents[start : start + UPSERT_BATCH]]
            task = self._call("documents", index.add_documents, batch, PRIMARY_KEY)
            self._wait(task, "adding documents")

    # -- the contract ------------------------------------------------------------------------
    def health(self) -> str:
        status = self._call("health", self.client.health)
        if status.get("status") != "available":
            raise SearchUnavailable(f"Meilisearch at {self.url} is {status.get('status', 'not available')}")
        return f"meilisearch {status.get('status')} at {self.url} (index {self.uid})"

    def ensure_index(self) -> None:
        if not self._call("reading the index", self._index_exists, self.uid):
            self._create_index(self.uid)
        self._configure(self.uid)
        self._ready = True

    def _ensure_ready(self) -> None:
        if not self._ready:
            self.ensure_index()

    def upsert(self, documents: list[SearchDocument]) -> None:
        if not documents:
            return
        self._ensure_ready()
        self._add(self.uid, documents)

    def delete(self, ids: list[str]) -> None:
        if not ids:
            return
        self._ensure_ready()
        keys = [encode_key(i) for i in ids]
        task = self._call(
            "deleting documents", self.client.http.post, f"indexes/{self.uid}/documents/delete-batch", keys
        )
        self._wait(task, "deleting documents")

    def search(self, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        params: dict[str, Any] = {
            "limit": max(0, query.limit),
            "offset": max(0, query.offset),
            "filter": query_filters(query),
            "facets": list(query.facets),
            "attributesToRetrieve": ["id", "type", "title", "url", "summary", "language", "category", "published_at"],
        }
        if query.highlight:
            params.update(
                attributesToHighlight=["title", "summary", "body"],
                highlightPreTag=PRE,
                highlightPostTag=POST,
                attributesToCrop=["summary", "body"],
                cropLength=30,
                cropMarker="…",
            )
        if query.sort == "recent":
            params["sort"] = ["published_at:desc"]
        raw = self._call("the search", self.client.index(self.uid).search, query.text, params)
        hits = [
            SearchHit(
                id=hit.get("id", ""),
                type=hit.get("type", ""),
                title=hit.get("title", ""),
                url=hit.get("url", ""),
                snippet=_snippet(hit) if query.highlight else str(escape(hit.get("summary", ""))),
                score=float(hit.get("_rankingScore", 0.0) or 0.0),
                language=hit.get("language", "pt"),
                category=hit.get("category", ""),
                published_at=_datetime(hit.get("published_at")),
            )
            for hit in raw.get("hits", [])
        ]
        total = int(raw.get("totalHits", raw.get("estimatedTotalHits", len(hits))) or 0)
        facets = {
            name: {str(k): int(v) for k, v in (values or {}).items()}
            for name, values in (raw.get("facetDistribution") or {}).items()
        }
        suggestion = self._suggest(query) if total == 0 and query.text.strip() else None
        return SearchResult(
            hits=hits, total=total, facets=facets, suggestion=suggestion, took_ms=(time.perf_counter() - started) * 1000
        )

    def _suggest(self, query: SearchQuery) -> str | None:
        """ "Did you mean": the words of the best document matching *some* of the query's words."""
        params = {
            "limit": 1,
            "filter": query_filters(query),
            "matchingStrategy": "frequency",
            "attributesToRetrieve": ["title"],
            "showMatchesPosition": True,
        }
        try:
            raw = self._call("a suggestion", self.client.index(self.uid).search, query.text, params)
        except SearchUnavailable:
            return None
        hits = raw.get("hits") or []
        if not hits:
            return None
        title = hits[0].get("title", "")
        positions = (hits[0].get("_matchesPosition") or {}).get("title") or []
        words = [title[p["start"] : p["start"] + p["length"]].lower() for p in positions if "start" in p]
        words = list(dict.fromkeys(w for w in words if w))
        suggestion = " ".join(words)
        return suggestion if suggestion and suggestion != query.text.strip().lower() else None

    def count(self, visibility: Visibility | None = None, type_: str | None = None) -> int:
        filters: list[str] = []
        visible = visibility_filter(visibility) if visibility is not None else None
        if visible:
            filters.append(visible)
        if type_:
            filters.append(f"type = {quote(type_)}")
        raw = self._call(
            "counting", self.client.index(self.uid).search, "", {"filter": filters, "hitsPerPage": 0, "page": 1}
        )
        return int(raw.get("totalHits", raw.get("estimatedTotalHits", 0)) or 0)

    def counts_by_type(self) -> dict[str, int]:
        raw = self._call("counting", self.client.index(self.uid).search, "", {"limit": 0, "facets": ["type"]})
        return {str(k): int(v) for k, v in ((raw.get("facetDistribution") or {}).get("type") or {}).items() if v}

    def rebuild(self, documents: list[SearchDocument]) -> None:
        """Fill ``<uid>_rebuild_<time>``, swap it with the live index, drop the old one."""
        fresh = f"{self.uid}_rebuild_{int(time.time() * 1000)}"
        self._create_index(fresh)
        try:
            self._configure(fresh)
            self._add(fresh, documents)
            if not self._call("reading the index", self._index_exists, self.uid):
                self._create_index(self.uid)
            task = self._call("swapping indexes", self.client.swap_indexes, [{"indexes": [self.uid, fresh]}])
            self._wait(task, "swapping indexes")
        finally:
            # After the swap ``fresh`` holds the old documents; before it, the unfinished new ones.
            with contextlib.suppress(SearchUnavailable):
                self._wait(self._call("deleting an index", self.client.delete_index, fresh), "deleting an index")
        self._ready = True

    def configure_synonyms(self, synonyms: dict[str, list[str]]) -> None:
        from .synonyms import merge

        self.synonyms = merge(self.base_synonyms, synonyms)
        if not self._ready:
            self.ensure_index()  # sends every setting, synonyms included
            return
        task = self._call("synonyms", self.client.index(self.uid).update_synonyms, self.synonyms)
        self._wait(task, "synonyms")

    def __repr__(self) -> str:
        return f"<MeilisearchBackend {self.url} index={self.uid}>"
