"""Searching for pages, the API and the CLI: engine first, database fallback, best bets, misses, synonyms.

Nothing here ever raises because the engine is unreachable: :func:`run_search` falls back to a
plain database search (``LIKE`` on title and summary over visible live content) and says so with
``SearchOutcome.fallback``.

A search needs the database only when it has to: best bets and synonyms are held per process and
re-checked in the background (two version keys in ``core_kv``, bumped in the transaction that changes
them; the process that made the change reloads at once), so an anonymous API query with no pinned
results runs no SQL at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import and_, case, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .contract import SearchHit, SearchQuery, SearchResult, Visibility
from .indexing import Indexer
from .models import SearchBestBet, SearchMiss, SearchSynonym
from .providers import Providers, doc_type
from .visibility import can_see_document

log = logging.getLogger("suite.search")

SYNONYMS_KEY = ("search", "synonyms_version")
BEST_BETS_KEY = ("search", "best_bets_version")
SYNONYMS_RECHECK_SECONDS = 30.0
#: How often searches check (in the background, one indexed query) whether another process changed
#: synonyms or best bets.
TUNING_RECHECK_SECONDS = 2.0
MAX_QUERY = 200
WORD = re.compile(r"\w+", re.UNICODE)


def normalize_query(text: str) -> str:
    """Lower case, single spaces, at most 200 characters (how misses and best bets are keyed)."""
    return " ".join((text or "").lower().split())[:MAX_QUERY]


# ------------------------------------------------------------------------------------------------
# Per-app runtime (one per SuiteState or worker state)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PinnedRow:
    """A best-bet row as held in memory (``SearchBestBet`` without the ORM)."""

    doc_id: str
    title: str
    url: str


@dataclass
class Runtime:
    indexer: Indexer
    providers: Providers
    synonyms_version: str | None = None
    synonyms_checked: float = 0.0
    wake: asyncio.Event | None = None
    #: The start-up work (:func:`startup`) is over, whatever its outcome.
    started: bool = False
    #: Best bets by normalised query, as of ``best_bets_version`` (``None``: load before the next search).
    best_bets: dict[str, tuple[PinnedRow, ...]] | None = None
    best_bets_version: str | None = None
    #: Moved by :func:`invalidate_best_bets`: a load that began before it does not keep its older rows.
    best_bets_epoch: int = 0
    tuning_checked: float = 0.0
    tuning_task: asyncio.Task[None] | None = None


def runtime(state: Any) -> Runtime:
    """The indexer and providers of ``state`` (anything with ``database``, ``search``, ``registry``)."""
    found = getattr(state, "_search_runtime", None)
    if found is None:
        providers = Providers.from_registry(state.registry)
        found = Runtime(Indexer(state.database.sessionmaker, state.search, providers), providers)
        state._search_runtime = found
    return found


@dataclass(eq=False)
class SearchState:
    """What search needs of an app, for the CLI and ``suite worker`` (the web app uses ``SuiteState``)."""

    settings: Any
    registry: Any
    database: Any
    search: Any
    events: Any


# ------------------------------------------------------------------------------------------------
# Searching
# ------------------------------------------------------------------------------------------------
@dataclass
class BestBet:
    title: str
    url: str
    summary: str = ""
    doc_id: str = ""


@dataclass
class SearchOutcome:
    query: SearchQuery
    result: SearchResult
    #: The engine could not answer; ``result`` comes from the database fallback.
    fallback: bool = False
    error: str | None = None
    best_bets: list[BestBet] = field(default_factory=list)


class _LazySession:
    """The caller's session, or one of our own opened on first use (closed by :meth:`close`)."""

    def __init__(self, state: Any, session: AsyncSession | None) -> None:
        self._state = state
        self._session = session
        self._own: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._own = self._state.database.sessionmaker()
        return self._session

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()


async def run_search(
    state: Any,
    session: AsyncSession | None,
    query: SearchQuery,
    *,
    best_bets: bool = True,
    log_miss: bool = False,
) -> SearchOutcome:
    """Search with the engine (the database when it is down), then best bets and the zero-result log.

    ``session`` may be ``None``: a session is opened only if the database is needed (the fallback, a
    query with best bets, the first search of the process).
    """
    rt = runtime(state)
    lazy = _LazySession(state, session)
    try:
        await _fresh_tuning(state, lazy)
        outcome: SearchOutcome
        if not query.text.strip():
            outcome = SearchOutcome(query, SearchResult(hits=[], total=0))
        else:
            try:
                result = await engine_search(state.search, query)
                outcome = SearchOutcome(query, result)
            except Exception as exc:
                log.warning("search engine unavailable, using the database: %s", exc)
                result = await database_search(lazy.session, query, rt.providers)
                outcome = SearchOutcome(query, result, fallback=True, error=str(exc) or type(exc).__name__)
        if best_bets and query.text.strip() and query.offset == 0:
            rows = (rt.best_bets or {}).get(normalize_query(query.text), ())
            if rows:
                outcome.best_bets = await _visible_bets(lazy.session, rows, query.visibility, rt.providers)
                pinned = {b.doc_id for b in outcome.best_bets if b.doc_id}
                outcome.result.hits = [h for h in outcome.result.hits if h.id not in pinned]
    finally:
        await lazy.close()
    if log_miss and outcome.result.total == 0 and not outcome.best_bets and query.offset == 0 and not query.filters:
        await record_miss(state.database.sessionmaker, query.text)
    return outcome


async def engine_search(backend: Any, query: SearchQuery) -> SearchResult:
    """``backend.search(query)`` without blocking the event loop on I/O.

    An engine in this process (the embedded one) answers with CPU work alone when its index is open and
    current: ``search_now`` then runs it right here, as a page's template rendering runs, because handing
    it to a thread costs more than it saves (a thread wake-up there and one back, each a scheduler delay
    on a busy machine: 0.4–2 ms a query measured on the 2-CPU development machine, more in the p99).
    Whatever may wait (opening or reopening the index, a network engine) goes to a thread.
    """
    search_now = getattr(backend, "search_now", None)
    if search_now is not None:
        result = search_now(query)
        if result is not None:
            return result
    return await asyncio.to_thread(backend.search, query)


def highlight(text: str, terms: list[str], limit: int = 240) -> Markup:
    """Escaped ``text`` (cut around the first match) with ``<mark>`` around the terms."""
    text = " ".join((text or "").split())
    if not terms:
        return escape(text[:limit])
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    first = pattern.search(text)
    start = 0
    if first and first.start() > limit // 2:
        start = text.rfind(" ", 0, first.start() - limit // 4) + 1
    piece = text[start : start + limit]
    out: list[str] = ["…" if start else ""]
    pos = 0
    for match in pattern.finditer(piece):
        out.append(str(escape(piece[pos : match.start()])))
        out.append(f"<mark>{escape(match.group(0))}</mark>")
        pos = match.end()
    out.append(str(escape(piece[pos:])))
    if start + limit < len(text):
        out.append("…")
    return Markup("".join(out))  # noqa: S704 - every piece is escaped


def visibility_clause(visibility: Visibility) -> Any:
    """SQL condition on ``core_content``: what ``visibility`` may see (mirrors ``search/visibility.py``)."""
    from concelho.suite.content.models import ContentItem

    if visibility.everything:
        return ContentItem.id.is_not(None)
    internal = (
        ContentItem.audience == "internal"
        if visibility.authenticated
        else and_(ContentItem.audience == "internal", ContentItem.department_id.in_(visibility.department_ids))
        if visibility.department_ids
        else false()
    )
    workspace = (
        and_(ContentItem.audience == "workspace", ContentItem.workspace_id.in_(visibility.workspace_ids))
        if visibility.workspace_ids
        else false()
    )
    return or_(ContentItem.audience == "public", internal, workspace)


async def database_search(session: AsyncSession, query: SearchQuery, providers: Providers) -> SearchResult:
    """The fallback: every word in the title or the summary of visible live content items."""
    from concelho.suite.content.models import ContentItem
    from concelho.suite.content.service import published_clause

    from .providers import ContentProvider, content_document

    started = time.perf_counter()
    content = next((p for p in providers.providers if isinstance(p, ContentProvider)), None)
    types = content.types() if content else []
    terms = [w for w in WORD.findall(query.text.lower()) if w][:8]
    if not terms or not types:
        return SearchResult(hits=[], total=0)
    base = [ContentItem.type.in_(types), published_clause(), visibility_clause(query.visibility)]
    for term in terms:
        base.append(
            or_(
                func.lower(ContentItem.title).contains(term, autoescape=True),
                func.lower(ContentItem.summary).contains(term, autoescape=True),
            )
        )
    columns = {"type": ContentItem.type, "category": ContentItem.category, "language": ContentItem.language}
    filters = []
    for name, values in query.filters.items():
        if name in columns and values:
            filters.append(columns[name].in_(list(values)))
    where = [*base, *filters]
    total = (await session.execute(select(func.count()).select_from(ContentItem).where(*where))).scalar_one()
    facets: dict[str, dict[str, int]] = {}
    for name in query.facets:
        if name not in columns:
            continue
        rows = await session.execute(
            select(columns[name], func.count()).where(*where).group_by(columns[name]).order_by(func.count().desc())
        )
        facets[name] = {str(value): int(n) for value, n in rows if value not in (None, "")}
    order: list[Any] = [ContentItem.published_at.desc(), ContentItem.id.desc()]
    if query.sort != "recent":  # "relevance": items with the words in their title first
        in_title = sum(case((func.lower(ContentItem.title).contains(t, autoescape=True), 1), else_=0) for t in terms)
        order.insert(0, in_title.desc())  # type: ignore[union-attr]
    items = (
        await session.execute(
            select(ContentItem).where(*where).order_by(*order).limit(query.limit).offset(query.offset)
        )
    ).scalars()
    hits = []
    for item in items:
        ctype = content.content_types[item.type]  # type: ignore[union-attr]
        doc = content_document(item, ctype)
        hits.append(
            SearchHit(
                id=doc.id, type=doc.type, title=doc.title, url=doc.url,
                snippet=str(highlight(doc.summary or doc.body, terms)) if query.highlight else str(escape(doc.summary)),
                language=doc.language, category=doc.category, published_at=doc.published_at,
            )
        )  # fmt: skip
    return SearchResult(hits=hits, total=int(total), facets=facets, took_ms=(time.perf_counter() - started) * 1000)


# ------------------------------------------------------------------------------------------------
# Best bets
# ------------------------------------------------------------------------------------------------
async def best_bets_for(
    session: AsyncSession, text: str, visibility: Visibility, providers: Providers
) -> list[BestBet]:
    """Pinned results for ``text`` that the caller may see, read from the database (searches use the
    per-process copy, :func:`load_best_bets`)."""
    key = normalize_query(text)
    if not key:
        return []
    rows = [
        PinnedRow(r.doc_id, r.title, r.url)
        for r in (
            await session.execute(
                select(SearchBestBet)
                .where(SearchBestBet.query == key)
                .order_by(SearchBestBet.sort_order, SearchBestBet.id)
            )
        ).scalars()
    ]
    return await _visible_bets(session, rows, visibility, providers) if rows else []


async def _visible_bets(
    session: AsyncSession, rows: Sequence[PinnedRow], visibility: Visibility, providers: Providers
) -> list[BestBet]:
    """The rows the caller may see; documents are re-read (never a stale link or a hidden item)."""
    ids = [r.doc_id for r in rows if r.doc_id]
    docs = await providers.documents(session, ids) if ids else {}
    out: list[BestBet] = []
    for row in rows:
        if row.doc_id:
            doc = docs.get(row.doc_id)
            if doc is not None and can_see_document(visibility, doc):
                out.append(BestBet(row.title or doc.title, doc.url, doc.summary, doc.id))
        elif row.url:
            out.append(BestBet(row.title or row.url, row.url))
    return out


async def load_best_bets(state: Any, session: AsyncSession) -> None:
    """Read every best bet into this process's copy (with the version it is as of)."""
    rt = runtime(state)
    epoch = rt.best_bets_epoch
    version = (await _versions(session)).get(BEST_BETS_KEY[1], "0")  # before the rows: never newer than them
    order = (SearchBestBet.query, SearchBestBet.sort_order, SearchBestBet.id)
    columns = (SearchBestBet.query, SearchBestBet.doc_id, SearchBestBet.title, SearchBestBet.url)
    found: dict[str, list[PinnedRow]] = {}
    for key, doc_id, title, url in await session.execute(select(*columns).order_by(*order)):
        found.setdefault(key, []).append(PinnedRow(doc_id or "", title or "", url or ""))
    if epoch == rt.best_bets_epoch:
        rt.best_bets = {key: tuple(rows) for key, rows in found.items()}
        rt.best_bets_version = version


def invalidate_best_bets(state: Any) -> None:
    """Best bets changed in this process (after the commit): reload them before the next search."""
    rt = runtime(state)
    rt.best_bets = None
    rt.best_bets_epoch += 1


async def bump_best_bets_version(session: AsyncSession) -> None:
    """Call in the transaction that changes best bets: every process reloads them."""
    await _bump(session, BEST_BETS_KEY)


# ------------------------------------------------------------------------------------------------
# Zero-result queries
# ------------------------------------------------------------------------------------------------
async def record_miss(sessionmaker: async_sessionmaker[AsyncSession], text: str) -> None:
    """Count a query that found nothing (its own short transaction; failures are only logged)."""
    key = normalize_query(text)
    if len(key) < 2:
        return
    now = datetime.now(UTC)
    try:
        async with sessionmaker() as session:
            bump = update(SearchMiss).where(SearchMiss.query == key).values(count=SearchMiss.count + 1, last_seen=now)
            if (await session.execute(bump)).rowcount == 0:
                session.add(SearchMiss(query=key, count=1, first_seen=now, last_seen=now))
                try:
                    await session.commit()
                    return
                except IntegrityError:  # counted by a concurrent request first
                    await session.rollback()
                    await session.execute(bump)
            await session.commit()
    except Exception:
        log.exception("could not record the search miss %r", key)


async def top_misses(session: AsyncSession, limit: int = 100) -> list[SearchMiss]:
    return list(
        (
            await session.execute(
                select(SearchMiss).order_by(SearchMiss.count.desc(), SearchMiss.last_seen.desc()).limit(limit)
            )
        ).scalars()
    )


# ------------------------------------------------------------------------------------------------
# Synonyms
# ------------------------------------------------------------------------------------------------
def parse_words(raw: str) -> list[str]:
    return list(dict.fromkeys(w for w in (normalize_query(p) for p in re.split(r"[,;\n]", raw or "")) if w))


async def load_synonyms(session: AsyncSession) -> dict[str, list[str]]:
    """The engine's synonym map: ``term → synonyms``; two-way groups map every word to the others."""
    mapping: dict[str, set[str]] = {}
    for row in (await session.execute(select(SearchSynonym).order_by(SearchSynonym.term))).scalars():
        term = normalize_query(row.term)
        words = [w for w in (normalize_query(s) for s in row.synonyms or []) if w and w != term]
        if not term or not words:
            continue
        mapping.setdefault(term, set()).update(words)
        if row.mutual:
            group = {term, *words}
            for word in words:
                mapping.setdefault(word, set()).update(group - {word})
    return {k: sorted(v) for k, v in sorted(mapping.items())}


async def _versions(session: AsyncSession) -> dict[str, str]:
    """The synonyms and best-bets version keys (``core_kv``, namespace ``search``), in one query."""
    from concelho.suite.models import KeyValue

    keys = (SYNONYMS_KEY[1], BEST_BETS_KEY[1])
    rows = await session.execute(
        select(KeyValue.key, KeyValue.value).where(KeyValue.namespace == SYNONYMS_KEY[0], KeyValue.key.in_(keys))
    )
    return {key: bytes(value).decode() for key, value in rows}


async def _synonyms_version(session: AsyncSession) -> str:
    return (await _versions(session)).get(SYNONYMS_KEY[1], "0")


async def _bump(session: AsyncSession, name: tuple[str, str]) -> None:
    from concelho.suite.models import KeyValue

    value = str(time.time_ns()).encode()
    row = (
        await session.execute(select(KeyValue).where(KeyValue.namespace == name[0], KeyValue.key == name[1]))
    ).scalar_one_or_none()
    if row is None:
        session.add(KeyValue(namespace=name[0], key=name[1], value=value))
    else:
        row.value = value


async def bump_synonyms_version(session: AsyncSession) -> None:
    """Call in the transaction that changes synonyms: every process re-applies them."""
    await _bump(session, SYNONYMS_KEY)


async def apply_synonyms(state: Any, session: AsyncSession | None = None) -> dict[str, list[str]]:
    """Give the synonyms in the database to the engine (raises when the engine refuses)."""
    rt = runtime(state)
    if session is None:
        async with state.database.sessionmaker() as own:
            return await apply_synonyms(state, own)
    version = await _synonyms_version(session)
    synonyms = await load_synonyms(session)
    await asyncio.to_thread(state.search.configure_synonyms, synonyms)
    rt.synonyms_version = version
    rt.synonyms_checked = time.monotonic()
    return synonyms


async def refresh_synonyms(state: Any, session: AsyncSession, *, force: bool = False) -> None:
    """Re-apply synonyms when another process changed them (checked at most every 30 s); never raises."""
    rt = runtime(state)
    if not force and time.monotonic() - rt.synonyms_checked < SYNONYMS_RECHECK_SECONDS:
        return
    rt.synonyms_checked = time.monotonic()
    try:
        version = await _synonyms_version(session)
        if force or version != rt.synonyms_version:
            await apply_synonyms(state, session)
    except Exception as exc:
        log.warning("could not apply search synonyms: %s", exc)


async def check_tuning(state: Any, session: AsyncSession) -> None:
    """Re-apply synonyms and reload best bets when another process changed them (one query when neither
    did); never raises."""
    rt = runtime(state)
    rt.tuning_checked = rt.synonyms_checked = time.monotonic()
    try:
        versions = await _versions(session)
        if versions.get(SYNONYMS_KEY[1], "0") != rt.synonyms_version:
            try:
                await apply_synonyms(state, session)
            except Exception as exc:
                log.warning("could not apply search synonyms: %s", exc)
        if rt.best_bets is None or versions.get(BEST_BETS_KEY[1], "0") != rt.best_bets_version:
            await load_best_bets(state, session)
    except Exception as exc:
        log.warning("could not read search synonyms and best bets: %s", exc)
        with contextlib.suppress(Exception):  # leave the caller's session usable
            await session.rollback()


async def _check_tuning_in_background(state: Any) -> None:
    async with state.database.sessionmaker() as session:
        await check_tuning(state, session)


async def _fresh_tuning(state: Any, lazy: _LazySession) -> None:
    """Synonyms and best bets for this search: loaded now on first use (or after a change in this
    process), else re-checked in the background every ``TUNING_RECHECK_SECONDS`` (no search waits)."""
    rt = runtime(state)
    if rt.best_bets is None or not rt.synonyms_checked:
        await check_tuning(state, lazy.session)
        return
    now = time.monotonic()
    if now - rt.tuning_checked >= TUNING_RECHECK_SECONDS and (rt.tuning_task is None or rt.tuning_task.done()):
        rt.tuning_checked = now
        rt.tuning_task = asyncio.create_task(_check_tuning_in_background(state))


async def startup(state: Any) -> None:
    """At start-up (in the background): create the index, apply synonyms, load best bets, and refill an
    index found empty while the database has documents (a new engine, or an embedded index of an older
    schema version).  Failures are only logged: the pages fall back to the database meanwhile."""
    try:
        await _startup(state)
    finally:
        runtime(state).started = True


async def _startup(state: Any) -> None:
    try:
        await asyncio.to_thread(state.search.ensure_index)
    except Exception as exc:
        log.warning("search index not ready: %s", exc)
        return
    async with state.database.sessionmaker() as session:
        await check_tuning(state, session)  # synonyms to the engine, best bets into memory
    try:
        empty = await asyncio.to_thread(state.search.count, Visibility(everything=True)) == 0
        if not empty:
            return
        rt = runtime(state)
        async with state.database.sessionmaker() as session:
            wanted = sum((await rt.providers.counts(session)).values())
        if wanted:
            log.warning("the search index is empty: rebuilding it from the database (%d documents)", wanted)
            await rt.indexer.reindex(wait=0)
    except Exception as exc:  # another process is rebuilding it, or the engine went away
        log.warning("search index not rebuilt at start-up: %s", exc)


# ------------------------------------------------------------------------------------------------
# Labels for facets
# ------------------------------------------------------------------------------------------------
def type_label(state: Any, type_name: str) -> str:
    return runtime(state).providers.label(type_name)


__all__ = [
    "BestBet",
    "PinnedRow",
    "SearchOutcome",
    "apply_synonyms",
    "best_bets_for",
    "bump_best_bets_version",
    "check_tuning",
    "database_search",
    "doc_type",
    "engine_search",
    "highlight",
    "invalidate_best_bets",
    "load_best_bets",
    "load_synonyms",
    "normalize_query",
    "record_miss",
    "refresh_synonyms",
    "run_search",
    "runtime",
    "startup",
    "top_misses",
    "type_label",
    "visibility_clause",
]
