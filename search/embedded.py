"""The embedded search engine: a tantivy index in ``<data_dir>/search``, no server.

Layout on disk::

    <index_dir>/CURRENT        name of the live generation (replaced atomically)
    <index_dir>/gen-<stamp>/   tantivy files of one generation
    <index_dir>/.building-…/   a generation being built by ``rebuild``
    <index_dir>/SWAP.lock      taken (``flock``) while a generation is created or swapped in

``rebuild`` writes a whole new generation next to the live one and then swaps ``CURRENT``;
searches in this and other processes follow the pointer and the commits (a ``stat`` of ``CURRENT``
and one of the generation's ``meta.json`` per call).

Ranking (Meilisearch-like, see ``docs/ARCHITECTURE.md``): every non-stop word of the query must
match (if nothing does, words are relaxed one at a time); a word matches exactly (folded field,
BM25), by stem (singular/plural, BM25), with typos (1 from 5 letters, 2 from 9; constant, lower
score) or, for the word being typed, as a prefix.  Field weights: title > summary > tags > body;
recency (``published_at``) breaks ties.  Visibility and facet filters are one query clause, so
hits, totals, facets, snippets and suggestions all see the same documents.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import tantivy
from concelho.suite.db import batched
from tantivy import Occur, Query

from .analysis import (
    FOLD_TOKENIZER,
    STEM_TOKENIZER,
    Group,
    Matcher,
    Snippet,
    Word,
    edit_distance,
    normalize_synonyms,
    parse_query,
    plain_text,
    register_analyzers,
    stems_of,
    words_with_offsets,
)
from .contract import (
    FACET_FIELDS,
    SearchDocument,
    SearchHit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
    Visibility,
)
from .synonyms import merge

log = logging.getLogger(__name__)

#: Bump when the schema or the analyzers change: an index of another version is replaced by an
#: empty one on open (``suite search reindex`` fills it again).
SCHEMA_VERSION = 2
POINTER = "CURRENT"
SCHEMA_FILE = "SUITE_SCHEMA"
LOCK_FILE = "SWAP.lock"
BUILDING = ".building-"

#: Searchable text fields and their weights (title > summary > tags > body).  Each is indexed stemmed
#: (``<name>_s``, BM25); the short ones also folded (``<name>_f``, BM25 for the exact-spelling bonus).
#: ``text_f`` holds every word of the document, folded, without frequencies or positions: typo and
#: prefix matching (constant scores) and "did you mean" need one automaton there instead of four.
TEXT_FIELDS: tuple[tuple[str, float], ...] = (("title", 6.0), ("summary", 3.0), ("tags", 2.0), ("body", 1.0))
EXACT_FIELDS: tuple[tuple[str, float], ...] = TEXT_FIELDS[:3]
ALL_WORDS = "text_f"
ALL_WORDS_WEIGHT = 1.0
#: How a word may match.  A word matches its stem (any number: BM25 on the stemmed field) and, written
#: exactly so, earns a bonus (BM25 on the folded field); typos and prefixes score less.
STEM_WEIGHT = 1.0
EXACT_WEIGHT = 0.4
TYPO_WEIGHT = 0.5  # constant score
#: The word being typed: its most frequent completions are scored like words (BM25), and any other
#: completion still matches with a constant score.
PREFIX_EXPANSIONS = 12
PREFIX_WEIGHT = 0.8
PREFIX_ANY_WEIGHT = 0.3
SYNONYM_WEIGHT = 0.7
#: Words found in this many documents (and this share of the index) get no typo tolerance.
COMMON_MIN = 500
COMMON_SHARE = 0.01

#: Recency tie-breaker: score × log2(2 + recency) with recency in [0, RECENCY_MAX] (≤ 0.7 %).
RECENCY_MAX = 0.01
_EPOCH_FROM = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_EPOCH_TO = datetime(2050, 1, 1, tzinfo=UTC).timestamp()

#: Documents per commit.  Commits are costly (each writes segments): a big load commits every 25,000.
BATCH_SIZE = 25_000
WRITER_HEAP = 128_000_000
FACET_SIZE = 500
#: From this many documents the facet counts (a second pass over every matching document) run on a helper
#: thread while the calling one does the scored search: tantivy releases the GIL in both, so on two CPUs a
#: query costs about the longer of the two instead of their sum (measured: common words at 100,000
#: documents 11.3 → 7.7 ms p50, 19.9 → 14.5 ms p99).  Below it the hand-over costs more than it saves
#: (+0.15 ms a query at 10,000 documents).
PARALLEL_FACETS_MIN_DOCS = 50_000
SNIPPET_CHARS = 220
RELOAD_EVERY = 5.0  # seconds
HIGHLIGHT_MAX_CHARS = 20_000  # only the start of a very long body is searched for a snippet window
#: The stored payload (JSON), decoded with msgspec (Litestar's own JSON library): ~3× ``json.loads``.
_PAYLOAD = msgspec.json.Decoder(dict[str, Any])


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", tokenizer_name="raw", index_option="basic")
    for name in FACET_FIELDS:
        sb.add_text_field(name, tokenizer_name="raw", fast=True, index_option="basic")
    sb.add_text_field("audience", tokenizer_name="raw", index_option="basic")
    sb.add_unsigned_field("workspace_ids", indexed=True)
    sb.add_unsigned_field("department_ids", indexed=True)
    for name, _ in EXACT_FIELDS:
        sb.add_text_field(f"{name}_f", tokenizer_name=FOLD_TOKENIZER)
    for name, _ in TEXT_FIELDS:
        sb.add_text_field(f"{name}_s", tokenizer_name=STEM_TOKENIZER)
    sb.add_text_field(ALL_WORDS, tokenizer_name=FOLD_TOKENIZER, index_option="basic")
    sb.add_integer_field("published", fast=True)
    sb.add_float_field("recency", fast=True)
    # what a hit shows (title, url, summary, plain body for snippets, dates) as one stored JSON blob
    sb.add_bytes_field("payload", stored=True)
    return sb.build()


def _timestamp(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _recency(ts: int | None) -> float:
    if ts is None:
        return 0.0
    return RECENCY_MAX * min(1.0, max(0.0, (ts - _EPOCH_FROM) / (_EPOCH_TO - _EPOCH_FROM)))


_facets_pool: ThreadPoolExecutor | None = None
_facets_pool_lock = threading.Lock()


def facets_pool() -> ThreadPoolExecutor:
    """The threads that count facets beside a search (shared by every backend of the process)."""
    global _facets_pool
    if _facets_pool is None:
        with _facets_pool_lock:
            if _facets_pool is None:
                _facets_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="search-facets")
    return _facets_pool


class TantivyBackend:
    """The :class:`~concelho.search.contract.SearchBackend` on an embedded tantivy index.

    Nothing touches the disk until the first call (building the app has no side effects).
    One writer at a time (a lock in this process, tantivy's lock file across processes).
    """

    name = "embedded"

    def __init__(self, index_dir: Path, synonyms: dict[str, list[str]] | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.schema = build_schema()
        self._lock = threading.RLock()
        self._index: tantivy.Index | None = None
        self._pointer_state: tuple[int, int] | None = None
        self._path = self.index_dir
        #: Paths stat-ed on every search (as strings: ``os.stat`` without ``pathlib`` on the way).
        self._pointer_file = str(self.index_dir / POINTER)
        self._meta_file = str(self.index_dir / "meta.json")
        self._meta_state: tuple[int, int, int, int] | None = None
        self._reloaded = time.monotonic()
        #: Synonyms given at construction (the suite passes ``DEFAULT_SYNONYMS``) stay underneath the
        #: site's own, which ``configure_synonyms`` replaces (as in the Meilisearch backend).
        self.base_synonyms: dict[str, list[str]] = {k: list(v) for k, v in (synonyms or {}).items()}
        self.synonyms: dict[str, list[str]] = {}
        self._synonyms: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        self.configure_synonyms({})

    # ------------------------------------------------------------------ index lifecycle
    def health(self) -> str:
        version = getattr(tantivy, "__version__", "").split(",")[0].replace("tantivy", "").strip()
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            probe = self.index_dir / ".probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise SearchUnavailable(f"index folder {self.index_dir} is not writable: {exc.strerror}") from exc
        where = f"tantivy {version} at {self.index_dir}".replace("  ", " ")
        if not (self.index_dir / POINTER).exists():
            return f"{where} (no index yet)"
        try:
            docs = self._open().searcher().num_docs
        except (OSError, ValueError) as exc:
            raise SearchUnavailable(f"search index at {self.index_dir} cannot be opened: {exc}") from exc
        return f"{where} ({docs} documents)"

    def ensure_index(self) -> None:
        with self._lock:
            generation = self._read_pointer()
            if generation and self._compatible(self.index_dir / generation):
                self._open()
                return
            with self._exclusive():  # another process may be creating it right now
                generation = self._read_pointer()
                if generation and self._compatible(self.index_dir / generation):
                    self._open()
                    return
                if generation:
                    log.warning("search index %s has another schema version: starting an empty one", generation)
                path = self._new_generation()
                self._create(path)
                self._swap(self._publish(path))

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Across processes: one generation swap (or first creation) at a time."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with (self.index_dir / LOCK_FILE).open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_pointer(self) -> str | None:
        try:
            name = (self.index_dir / POINTER).read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def _compatible(self, path: Path) -> bool:
        try:
            return (path / SCHEMA_FILE).read_text().strip() == str(SCHEMA_VERSION)
        except OSError:
            return False

    def _new_generation(self) -> Path:
        """A folder to build a generation in; :meth:`_publish` gives it its ``gen-`` name when complete."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.index_dir / f"{BUILDING}{stamp}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def _publish(self, path: Path) -> str:
        name = "gen-" + path.name.removeprefix(BUILDING)
        path.rename(self.index_dir / name)
        return name

    def _create(self, path: Path) -> tantivy.Index:
        index = tantivy.Index(self.schema, path=str(path), reuse=False)
        register_analyzers(index)
        (path / SCHEMA_FILE).write_text(str(SCHEMA_VERSION))
        return index

    def _swap(self, generation: str) -> None:
        """Point ``CURRENT`` at ``generation`` atomically, then drop the older generations.

        Call with :meth:`_exclusive` held.  Processes still reading an old generation keep their open
        files (POSIX) and move to the new one on their next call.  Folders of builds that crashed
        (``.building-…``, a day old) go too; builds in progress are left alone.
        """
        tmp = self.index_dir / f".{POINTER}.{uuid.uuid4().hex[:8]}"
        tmp.write_text(generation)
        os.replace(tmp, self.index_dir / POINTER)
        self._index = None
        self._open()
        for old in self.index_dir.glob("gen-*"):
            if old.name != generation:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.index_dir.glob(BUILDING + "*"):
            if time.time() - stale.stat().st_mtime > 86400:
                shutil.rmtree(stale, ignore_errors=True)

    def _open(self) -> tantivy.Index:
        """The live index, reopened when ``CURRENT`` changed (a rebuild here or in another process) and
        reloaded when its ``meta.json`` changed (a commit by another process): two ``stat`` calls."""
        try:
            st = os.stat(self._pointer_file)
        except FileNotFoundError:
            self.ensure_index()
            st = os.stat(self._pointer_file)
        state = (st.st_ino, st.st_mtime_ns)
        index = self._index
        if index is not None and state == self._pointer_state:
            self._follow_commits(index)
            return index
        with self._lock:
            generation = self._read_pointer()
            path = self.index_dir / (generation or "")
            if not generation or not self._compatible(path):
                self.ensure_index()
                return self._open()
            try:
                index = tantivy.Index.open(str(path))
            except ValueError as exc:
                raise SearchUnavailable(f"search index at {path} cannot be opened: {exc}") from exc
            register_analyzers(index)
            self._meta_file = str(path / "meta.json")
            self._meta_state = self._meta_stat()
            self._index, self._pointer_state, self._path = index, state, path
            return index

    def _meta_stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self._meta_file)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def _follow_commits(self, index: tantivy.Index) -> None:
        """Reload the reader after another process's commit (seen on ``meta.json``, which tantivy replaces
        on every commit) and, in case two commits left identical file stats, at most every few seconds."""
        meta = self._meta_stat()
        now = time.monotonic()
        if meta != self._meta_state or now - self._reloaded > RELOAD_EVERY:
            self._meta_state, self._reloaded = meta, now
            if meta is not None:  # None: the generation is gone, CURRENT moves on at the next call
                index.reload()

    def _writer(self, index: tantivy.Index, threads: int = 1) -> tantivy.IndexWriter:
        deadline = time.monotonic() + 30
        while True:
            try:
                return index.writer(heap_size=WRITER_HEAP, num_threads=threads)
            except ValueError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise SearchUnavailable(f"search index at {self.index_dir} is locked: {exc}") from exc
                time.sleep(0.05)

    @staticmethod
    def _threads(count: int) -> int:
        return 1 if count < 2000 else max(1, min(4, os.cpu_count() or 1))

    # ------------------------------------------------------------------ writing
    def _to_tantivy(self, doc: SearchDocument) -> tantivy.Document:
        body = plain_text(doc.body)
        ts = _timestamp(doc.published_at)
        payload = {
            "id": doc.id,
            "type": doc.type,
            "title": doc.title,
            "url": doc.url,
            "summary": doc.summary,
            "body": body,
            "language": doc.language,
            "category": doc.category,
            "published_at": doc.published_at.isoformat() if doc.published_at else None,
        }
        fields: dict[str, Any] = {
            "id": doc.id,
            "type": doc.type,
            "language": doc.language or "pt",
            "audience": doc.audience,
            "title_f": doc.title,
            "title_s": doc.title,
            "summary_f": doc.summary,
            "summary_s": doc.summary,
            "body_s": body,
            "recency": _recency(ts),
            "payload": json.dumps(payload, ensure_ascii=False).encode(),
        }
        if doc.category:
            fields["category"] = doc.category
        if doc.section:
            fields["section"] = doc.section
        if doc.tags:
            fields["tags_f"] = fields["tags_s"] = list(doc.tags)
        fields[ALL_WORDS] = [doc.title, doc.summary, *doc.tags, body]
        if doc.workspace_ids:
            fields["workspace_ids"] = [int(i) for i in doc.workspace_ids]
        if doc.department_ids:
            fields["department_ids"] = [int(i) for i in doc.department_ids]
        if ts is not None:
            fields["published"] = ts
        return tantivy.Document.from_dict(fields, self.schema)

    def upsert(self, documents: list[SearchDocument]) -> None:
        """Add or replace documents by id: one writer, one commit per batch, then reload the reader."""
        if not documents:
            return
        with self._lock:
            index = self._open()
            writer = self._writer(index, self._threads(len(documents)))
            empty = index.searcher().num_docs == 0
            if empty:  # holding the writer now: make sure no other process filled it meanwhile
                index.reload()
                empty = index.searcher().num_docs == 0
            try:
                self._write(writer, documents, empty)
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()
            index.reload()

    def _write(self, writer: tantivy.IndexWriter, documents: Iterable[SearchDocument], empty: bool) -> None:
        """Replace-by-id and add, one commit per batch.  Into an empty index only an id repeated within
        ``documents`` needs a delete (the last one wins): a first load skips 100,000 useless deletes."""
        seen: set[str] = set()
        for batch in batched(documents, BATCH_SIZE):
            for doc in batch:
                if not empty or doc.id in seen:
                    writer.delete_documents_by_term("id", doc.id)
                if empty:
                    seen.add(doc.id)
                writer.add_document(self._to_tantivy(doc))
            writer.commit()

    def delete(self, ids: list[str]) -> None:
        if not ids:
            return
        with self._lock:
            index = self._open()
            writer = self._writer(index)
            try:
                for batch in batched(ids, BATCH_SIZE):
                    for doc_id in batch:
                        writer.delete_documents_by_term("id", doc_id)
                    writer.commit()
            finally:
                writer.wait_merging_threads()
            index.reload()

    def rebuild(self, documents: Iterable[SearchDocument]) -> None:
        """Build a new generation with ``documents``, then swap it in; the old one serves until then."""
        with self._lock:
            path = self._new_generation()
            try:
                index = self._create(path)
                documents = documents if isinstance(documents, list) else list(documents)
                writer = self._writer(index, self._threads(len(documents)))
                try:
                    self._write(writer, documents, empty=True)
                finally:
                    writer.wait_merging_threads()
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            with self._exclusive():
                self._swap(self._publish(path))

    def configure_synonyms(self, synonyms: dict[str, list[str]]) -> None:
        """Replace the site's synonyms (kept on top of the constructor's): one-way expansions as Meilisearch
        reads them (``{"lixo": ["resíduos"]}``; list both directions for a two-way pair, see
        ``synonyms.mutual``).  Takes effect at once, in this process."""
        self.synonyms = merge(self.base_synonyms, synonyms)
        self._synonyms = normalize_synonyms(self.synonyms)

    # ------------------------------------------------------------------ queries
    def _term(self, field: str, value: str) -> Query:
        return Query.term_query(self.schema, field, value)

    def _visibility_query(self, visibility: Visibility) -> Query | None:
        """The rules of ``visibility.can_see``: public to all; internal to employees and to members of the
        document's departments; workspace documents to members of their workspaces; nothing else."""
        if visibility.everything:
            return None
        clauses = [self._term("audience", "public")]
        if visibility.authenticated:
            clauses.append(self._term("audience", "internal"))
        elif visibility.department_ids:
            clauses.append(self._audience_and("internal", "department_ids", visibility.department_ids))
        if visibility.workspace_ids:
            clauses.append(self._audience_and("workspace", "workspace_ids", visibility.workspace_ids))
        if len(clauses) == 1:
            return clauses[0]
        return Query.boolean_query([(Occur.Should, c) for c in clauses])

    def _audience_and(self, audience: str, field: str, ids: frozenset[int]) -> Query:
        members = Query.term_set_query(self.schema, field, sorted(ids))
        return Query.boolean_query([(Occur.Must, self._term("audience", audience)), (Occur.Must, members)])

    def _filter_query(self, visibility: Visibility | None, filters: dict[str, list[str]] | None = None) -> Query | None:
        clauses: list[Query] = []
        vis = self._visibility_query(visibility) if visibility is not None else None
        if vis is not None:
            clauses.append(vis)
        for name, values in (filters or {}).items():
            if name not in FACET_FIELDS:
                raise ValueError(f"cannot filter on {name!r}: filterable fields are {', '.join(FACET_FIELDS)}")
            values = [v for v in values if v]
            if values:
                clauses.append(Query.term_set_query(self.schema, name, list(values)))
        if not clauses:
            return None
        if len(clauses) == 1:
            return clauses[0]
        return Query.boolean_query([(Occur.Must, c) for c in clauses])

    def _word_queries(self, word: Word, searcher: tantivy.Searcher, common: dict[str, bool]) -> tuple[Query, Query]:
        """Documents with ``word`` in any form, scored, and the same documents with fewer clauses and no
        scores (stems and the ``text_f`` automata cover the exact, title and completion clauses): one walk
        builds both, sharing their leaves."""
        typos = 0 if self._common(word, searcher, common) else word.typos
        stems = stems_of(word.text)
        scored: list[tuple[Occur, Query]] = []
        plain: list[tuple[Occur, Query]] = []
        for field, weight in EXACT_FIELDS:
            scored.append((Occur.Should, Query.boost_query(self._term(f"{field}_f", word.text), weight * EXACT_WEIGHT)))
        for field, weight in TEXT_FIELDS:
            for stem in stems:
                term = self._term(f"{field}_s", stem)
                scored.append((Occur.Should, Query.boost_query(term, weight * STEM_WEIGHT)))
                plain.append((Occur.Should, term))
        for field, weight in ((EXACT_FIELDS[0][0] + "_f", EXACT_FIELDS[0][1]), (ALL_WORDS, ALL_WORDS_WEIGHT)):
            automata: list[tuple[Query, float]] = []
            if word.prefix and len(word.text) >= 2:
                prefix = Query.fuzzy_term_query(self.schema, field, word.text, distance=0, prefix=True)
                automata.append((prefix, PREFIX_ANY_WEIGHT))
            if typos:
                fuzzy = Query.fuzzy_term_query(self.schema, field, word.text, distance=typos, prefix=word.prefix)
                automata.append((fuzzy, TYPO_WEIGHT))
            for automaton, boost in automata:
                scored.append((Occur.Should, Query.boost_query(automaton, weight * boost)))
                if field == ALL_WORDS:
                    plain.append((Occur.Should, automaton))
        if word.prefix and len(word.text) >= 3:
            for field, weight in EXACT_FIELDS[:2]:
                for term, _ in searcher.terms_with_prefix(f"{field}_f", word.text, limit=PREFIX_EXPANSIONS):
                    if term != word.text:
                        completion = Query.boost_query(self._term(f"{field}_f", term), weight * PREFIX_WEIGHT)
                        scored.append((Occur.Should, completion))
        return Query.boolean_query(scored), Query.boolean_query(plain)

    @staticmethod
    def _common(word: Word, searcher: tantivy.Searcher, seen: dict[str, bool] | None = None) -> bool:
        """A common word, spelled right, gets no typo tolerance: its typo neighbours are other common
        words (noise, and long posting lists).  ``seen`` keeps the answers of one search."""
        if not word.typos:
            return False
        found = seen.get(word.text) if seen is not None else None
        if found is None:
            found = searcher.doc_freq(ALL_WORDS, word.text) >= max(COMMON_MIN, COMMON_SHARE * searcher.num_docs)
            if seen is not None:
                seen[word.text] = found
        return found

    def _group_queries(self, group: Group, searcher: tantivy.Searcher, common: dict[str, bool]) -> tuple[Query, Query]:
        scored: list[tuple[Occur, Query]] = []
        plain: list[tuple[Occur, Query]] = []
        for i, words in enumerate(group.alternatives):
            if i == 0 and group.parts:
                parts = [self._group_queries(part, searcher, common) for part in group.parts]
                both = tuple(Query.boolean_query([(Occur.Must, p[k]) for p in parts]) for k in (0, 1))
            elif len(words) == 1:
                both = self._word_queries(words[0], searcher, common)
            else:
                each = [self._word_queries(w, searcher, common) for w in words]
                both = tuple(Query.boolean_query([(Occur.Must, q[k]) for q in each]) for k in (0, 1))
            scored.append((Occur.Should, both[0] if i == 0 else Query.boost_query(both[0], SYNONYM_WEIGHT)))
            plain.append((Occur.Should, both[1]))
        if len(scored) == 1:
            return scored[0][1], plain[0][1]
        return Query.boolean_query(scored), Query.boolean_query(plain)

    def _text_queries(
        self, groups: list[Group], must: int, searcher: tantivy.Searcher, common: dict[str, bool] | None = None
    ) -> tuple[Query, Query]:
        """The query for ``groups`` (at least ``must`` of them matching), scored, and without scores."""
        common = {} if common is None else common
        both = [self._group_queries(g, searcher, common) for g in groups]
        if len(both) == 1:
            return both[0]
        return (
            Query.boolean_query([(Occur.Should, q[0]) for q in both], minimum_number_should_match=must),
            Query.boolean_query([(Occur.Should, q[1]) for q in both], minimum_number_should_match=must),
        )

    def _text_query(self, groups: list[Group], must: int, searcher: tantivy.Searcher, scoring: bool = True) -> Query:
        return self._text_queries(groups, must, searcher)[0 if scoring else 1]

    @staticmethod
    def _and(query: Query | None, filter_query: Query | None) -> Query:
        if query is None:
            return filter_query if filter_query is not None else Query.all_query()
        if filter_query is None:
            return query
        return Query.boolean_query([(Occur.Must, query), (Occur.Must, Query.const_score_query(filter_query, 0.0))])

    def search(self, query: SearchQuery) -> SearchResult:
        return self._search(self._open().searcher(), query)

    def search_now(self, query: SearchQuery) -> SearchResult | None:
        """:meth:`search` if it can answer without waiting on anything but the CPU: the index is open and
        current (no lock, no opening of files, no other process's swap to follow); ``None`` otherwise.

        For callers on an event loop (``run_search``): a search is CPU work in this process, and handing
        it to a thread costs more than it saves (two thread wake-ups per query, each a scheduler delay on
        a busy machine), so they call this first and use a thread only when it answers ``None``.
        """
        index = self._index
        if index is None:
            return None
        try:
            st = os.stat(self._pointer_file)
        except FileNotFoundError:
            return None
        if (st.st_ino, st.st_mtime_ns) != self._pointer_state:
            return None
        self._follow_commits(index)
        return self._search(index.searcher(), query)

    def _search(self, searcher: tantivy.Searcher, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        filter_query = self._filter_query(query.visibility, query.filters)
        groups = parse_query(query.text, self._synonyms, prefix=query.prefix)
        limit = max(1, query.limit)
        offset = max(0, query.offset)
        options: dict[str, Any] = {"limit": limit, "offset": offset, "count": True}
        if query.sort == "recent" or not groups:
            options.update(order_by_field="published", order=tantivy.Order.Desc)
        else:
            options["weight_by_field"] = "recency"

        common: dict[str, bool] = {}  # doc_freq lookups, once per word
        final = matching = self._and(None, filter_query)
        must = len(groups)
        if groups:
            scored, plain = self._text_queries(groups, must, searcher, common)
            final, matching = self._and(scored, filter_query), self._and(plain, filter_query)
        # facets: the same documents as the hits, found with fewer clauses and no scores
        wanted = [f for f in query.facets if f in FACET_FIELDS]
        aggs = {f: {"terms": {"field": f, "size": FACET_SIZE}} for f in wanted}
        counting: Future[dict[str, Any]] | None = None
        if wanted and searcher.num_docs >= PARALLEL_FACETS_MIN_DOCS:
            counting = facets_pool().submit(searcher.aggregate, matching, aggs)
        result = searcher.search(final, **options)
        if groups and not result.count and len(groups) > 1:
            # all words must match; when nothing does, accept one word fewer, and so on (cheap counts first)
            for must in range(len(groups) - 1, 0, -1):
                scored, plain = self._text_queries(groups, must, searcher, common)
                if searcher.search(self._and(plain, filter_query), limit=1, count=True).count:
                    final, matching = self._and(scored, filter_query), self._and(plain, filter_query)
                    result = searcher.search(final, **options)
                    counting = None  # counted the documents of all the words: none
                    break
        total = result.count or 0

        hits: list[SearchHit] = []
        matcher = None
        if query.highlight:
            exact_only = {w.text for g in groups for w in g.all_words() if self._common(w, searcher, common)}
            matcher = Matcher(groups, exact_only)
        for score, address in result.hits[: query.limit] if query.limit > 0 else []:
            payload = _PAYLOAD.decode(searcher.doc(address).get_first("payload"))
            hits.append(self._hit(payload, score if isinstance(score, float) else 0.0, matcher))

        facets: dict[str, dict[str, int]] = {f: {} for f in wanted}
        if wanted and total:
            counted = counting.result() if counting is not None else searcher.aggregate(matching, aggs)
            for name, agg in counted.items():
                facets[name] = {b["key"]: b["doc_count"] for b in agg["buckets"]}

        suggestion = None
        if not total and groups:
            suggestion = self._suggest(searcher, query, groups, filter_query)
        return SearchResult(
            hits=hits,
            total=total,
            facets=facets,
            suggestion=suggestion,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    @staticmethod
    def _hit(payload: dict[str, Any], score: float, matcher: Matcher | None) -> SearchHit:
        snippet = ""
        if matcher is not None:
            summary, body = payload.get("summary") or "", (payload.get("body") or "")[:HIGHLIGHT_MAX_CHARS]
            # the summary's window, or the body's when it shows more of the query's words (rendered once)
            chosen = Snippet.of(summary, matcher, SNIPPET_CHARS)
            in_body = None
            if matcher and body and chosen.distinct < matcher.words:  # the summary does not say it all
                in_body = Snippet.of(body, matcher, SNIPPET_CHARS)
                if in_body.distinct > chosen.distinct:
                    chosen = in_body
            snippet = chosen.html()
            if not snippet and body:
                snippet = (in_body or Snippet.of(body, matcher, SNIPPET_CHARS)).html()
        published = payload.get("published_at")
        return SearchHit(
            id=payload["id"],
            type=payload["type"],
            title=payload["title"],
            url=payload["url"],
            snippet=snippet,
            score=score,
            language=payload.get("language") or "pt",
            category=payload.get("category") or "",
            published_at=datetime.fromisoformat(published) if published else None,
        )

    # ------------------------------------------------------------------ did you mean
    def _visible_count(self, searcher: tantivy.Searcher, query: Query, filter_query: Query | None) -> int:
        return searcher.search(self._and(query, filter_query), limit=1, count=True).count or 0

    def _any_field(self, term: str) -> Query:
        return self._term(ALL_WORDS, term)

    def _suggest(
        self, searcher: tantivy.Searcher, query: SearchQuery, groups: list[Group], filter_query: Query | None
    ) -> str | None:
        """A corrected query built from words of documents the caller may see, if it finds something."""
        replacements: dict[str, str] = {}
        for group in groups:
            for word in group.original:
                if self._visible_count(searcher, self._any_field(word.text), filter_query):
                    continue
                better = self._closest_term(searcher, word.text, filter_query)
                if better:
                    replacements[word.text] = better
        if not replacements:
            return None
        parts: list[str] = []
        cursor = 0
        for start, end, folded in words_with_offsets(query.text):
            if folded in replacements:
                parts.append(query.text[cursor:start])
                parts.append(self._display_form(searcher, replacements[folded], filter_query))
                cursor = end
        parts.append(query.text[cursor:])
        suggestion = " ".join("".join(parts).split())
        check = parse_query(suggestion, self._synonyms, prefix=False)
        if not check or not self._visible_count(searcher, self._text_query(check, len(check), searcher), filter_query):
            return None
        return suggestion

    def _closest_term(self, searcher: tantivy.Searcher, word: str, filter_query: Query | None) -> str | None:
        limit = 2 if len(word) >= 5 else 1
        candidates: dict[str, int] = {}
        for term, freq in searcher.terms_with_prefix(ALL_WORDS, word[:1]):
            if abs(len(term) - len(word)) <= limit and term != word:
                candidates[term] = freq
        scored = []
        for term, freq in candidates.items():
            distance = edit_distance(word, term, limit)
            if distance <= limit:
                scored.append((distance, -freq, term))
        scored.sort()
        best: tuple[int, int, str] | None = None
        for distance, _, term in scored[:8]:
            if best is not None and distance > best[0]:
                break
            visible = self._visible_count(searcher, self._any_field(term), filter_query)
            if visible and (best is None or (distance, -visible) < best[:2]):
                best = (distance, -visible, term)
        return best[2] if best else None

    def _display_form(self, searcher: tantivy.Searcher, term: str, filter_query: Query | None) -> str:
        """The word as written in a visible document ("licença", not "licenca")."""
        found = searcher.search(self._and(self._any_field(term), filter_query), limit=1)
        for _, address in found.hits:
            payload = _PAYLOAD.decode(searcher.doc(address).get_first("payload"))
            for text in (payload.get("title", ""), payload.get("summary", ""), payload.get("body", "")):
                for start, end, folded in words_with_offsets(text):
                    if folded == term:
                        return text[start:end].lower()
        return term

    # ------------------------------------------------------------------ counts
    def count(self, visibility: Visibility | None = None, type_: str | None = None) -> int:
        """Documents ``visibility`` may see (all when ``None``), optionally of one type."""
        searcher = self._open().searcher()
        filter_query = self._filter_query(visibility, {"type": [type_]} if type_ else None)
        if filter_query is None:
            return searcher.num_docs
        return searcher.search(filter_query, limit=1, count=True).count or 0

    def counts_by_type(self) -> dict[str, int]:
        """Documents per type over the whole index (for admin tools: no visibility applies)."""
        searcher = self._open().searcher()
        if not searcher.num_docs:
            return {}
        agg = searcher.aggregate(Query.all_query(), {"type": {"terms": {"field": "type", "size": FACET_SIZE}}})
        return {b["key"]: b["doc_count"] for b in agg["type"]["buckets"]}
