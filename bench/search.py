"""The embedded search engine vs raw tantivy, side by side, on synthetic pt-PT documents.

    python bench/search.py [--sizes 10000,100000] [--queries 200] [--corpus ../shared/corpus/portal.jsonl]

For each size: generates documents whose words follow the shared corpus' vocabulary and word
frequencies, then measures

* indexing: documents/s through ``TantivyBackend.upsert`` vs a raw tantivy loop (same schema and
  analyzers, the same stored fields, one writer, one commit);
* queries: p50/p99 latency of rare-term, common-term, typo and prefix queries through the backend
  (``search()`` as the portal calls it: visibility filter, 4 facets, snippets) vs one raw tantivy
  search call for the same words (top 10 + count, no facets, no snippets);

and at the end how the p50 grew from the smallest to the largest size.

Columns are :class:`Engine` objects: to add one (say, the HTTP ``/api/search``), append an instance
to the list ``engines()`` returns; it only needs ``index(docs)`` (or nothing, if it reads the
backend's index) and ``query(kind, text)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tantivy
from concelho.search.analysis import FOLD, STOP_WORDS, allowed_typos, register_analyzers
from concelho.search.contract import SearchDocument, SearchQuery, Visibility
from concelho.search.embedded import TantivyBackend, build_schema
from concelho.search.synonyms import DEFAULT_SYNONYMS

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus" / "portal.jsonl"
KINDS = ("rare", "common", "typo", "prefix")
TYPES = ["news.article", "events.event", "pages.page", "services.service", "places.place", "intranet.news"]
CATEGORIES = ["obras", "cultura", "ambiente", "educação", "desporto", "mobilidade", "saúde", "orçamento"]
P99_TARGET_MS = 20.0
INDEX_RATIO_TARGET = 0.5


# --------------------------------------------------------------------------------------------
# Synthetic documents
# --------------------------------------------------------------------------------------------
class Vocabulary:
    def __init__(self, corpus: Path) -> None:
        counts: Counter[str] = Counter()
        with corpus.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                for field in ("title", "summary", "body"):
                    counts.update(w for w in row.get(field, "").split() if w.strip(".,;:!?()[]#*|\"'").isalpha())
                for tag in row.get("tags", []):
                    counts[tag] += 1
        self.words = [w.strip(".,;:!?()[]#*|\"'") for w, _ in counts.most_common()]
        weights = [c for _, c in counts.most_common()]
        total = 0
        self.cum_weights = []
        for weight in weights:
            total += weight
            self.cum_weights.append(total)
        self.tags = [w for w in self.words if len(w) > 4][:400]

    def text(self, rng: random.Random, n: int) -> str:
        return " ".join(rng.choices(self.words, cum_weights=self.cum_weights, k=n))


def make_documents(vocab: Vocabulary, n: int, seed: int = 42) -> list[SearchDocument]:
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    docs = []
    for i in range(n):
        audience = rng.choices(["public", "internal", "workspace"], weights=[90, 6, 4])[0]
        type_ = rng.choice(TYPES) if audience == "public" else "intranet.news"
        paragraphs = [vocab.text(rng, rng.randint(40, 70)) + "." for _ in range(3)]
        docs.append(
            SearchDocument(
                id=f"{type_}:{i}",
                type=type_,
                title=vocab.text(rng, rng.randint(4, 10)).capitalize(),
                url=f"/bench/{i}",
                summary=vocab.text(rng, rng.randint(15, 30)).capitalize() + ".",
                body="\n\n".join(paragraphs),
                tags=rng.sample(vocab.tags, 3),
                category=rng.choice(CATEGORIES),
                published_at=start + timedelta(days=rng.randint(0, 2500)),
                audience=audience,
                workspace_ids=[rng.randint(1, 20)] if audience == "workspace" else [],
            )
        )
    return docs


def make_queries(vocab: Vocabulary, docs: list[SearchDocument], count: int, seed: int = 7) -> dict[str, list[str]]:
    """Words by document frequency in the generated set: rare (1-10 docs), common (top of the list)."""
    rng = random.Random(seed)
    df: Counter[str] = Counter()
    for doc in docs[:5000]:
        df.update(set(FOLD.analyze(doc.title + " " + doc.summary + " " + doc.body)))
    scale = len(docs) / min(len(docs), 5000)
    content = [w for w in df if w not in STOP_WORDS and len(w) > 3 and not w.isdigit()]
    rare = [w for w in content if 1 <= df[w] * scale <= 10] or sorted(content, key=df.__getitem__)[:50]
    common = sorted(content, key=df.__getitem__, reverse=True)[:40]
    mid = [w for w in content if len(w) >= 6 and df[w] * scale >= 20]

    def typo(word: str) -> str:
        i = rng.randrange(1, len(word) - 1)
        if rng.random() < 0.5:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # transposition
        return word[:i] + rng.choice("aeiorstn") + word[i + 1 :]  # substitution

    queries = {
        "rare": [rng.choice(rare) for _ in range(count)],
        "common": [" ".join(rng.sample(common, rng.randint(1, 2))) for _ in range(count)],
        "typo": [typo(w) for w in (rng.choice(mid) for _ in range(count))],
        "prefix": [(w := rng.choice(mid))[: rng.randint(4, min(6, len(w) - 1))] for _ in range(count)],
    }
    return queries


# --------------------------------------------------------------------------------------------
# Engines (columns)
# --------------------------------------------------------------------------------------------
class Engine:
    name = "engine"

    def index(self, docs: list[SearchDocument]) -> float:
        """Index ``docs``; return documents per second (0 when this engine does not index)."""
        return 0.0

    def query(self, kind: str, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class BackendEngine(Engine):
    """The suite's embedded backend, called as the portal calls it."""

    name = "backend"

    def __init__(self, folder: Path) -> None:
        self.backend = TantivyBackend(folder, synonyms=DEFAULT_SYNONYMS)
        self.visibility = Visibility.anonymous()

    def index(self, docs: list[SearchDocument]) -> float:
        self.backend.ensure_index()
        started = time.perf_counter()
        self.backend.upsert(docs)
        return len(docs) / (time.perf_counter() - started)

    def query(self, kind: str, text: str) -> None:
        self.backend.search(SearchQuery(text, visibility=self.visibility, limit=10))


class RawEngine(Engine):
    """tantivy with the same schema and analyzers and nothing else: one writer, one commit, one search."""

    name = "raw tantivy"

    def __init__(self, folder: Path, threads: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.schema = build_schema()
        self.index_ = tantivy.Index(self.schema, path=str(folder), reuse=False)
        register_analyzers(self.index_)
        self.threads = threads

    def index(self, docs: list[SearchDocument]) -> float:
        started = time.perf_counter()
        writer = self.index_.writer(heap_size=128_000_000, num_threads=self.threads)
        for d in docs:
            payload = {"id": d.id, "type": d.type, "title": d.title, "url": d.url, "summary": d.summary, "body": d.body}
            fields: dict[str, Any] = {
                "id": d.id,
                "type": d.type,
                "category": d.category,
                "language": d.language,
                "audience": d.audience,
                "title_f": d.title,
                "title_s": d.title,
                "summary_f": d.summary,
                "summary_s": d.summary,
                "tags_f": d.tags,
                "tags_s": d.tags,
                "body_s": d.body,
                "text_f": [d.title, d.summary, *d.tags, d.body],
                "payload": json.dumps(payload, ensure_ascii=False).encode(),
            }
            writer.add_document(tantivy.Document.from_dict(fields, self.schema))
        writer.commit()
        writer.wait_merging_threads()
        self.index_.reload()
        return len(docs) / (time.perf_counter() - started)

    def query(self, kind: str, text: str) -> None:
        searcher = self.index_.searcher()
        words = FOLD.analyze(text)
        if kind == "prefix":
            query = tantivy.Query.fuzzy_term_query(self.schema, "text_f", words[0], 0, prefix=True)
        elif kind == "typo":
            query = tantivy.Query.fuzzy_term_query(self.schema, "text_f", words[0], allowed_typos(words[0]))
        else:
            query = self.index_.parse_query(" ".join(words), ["text_f"], conjunction_by_default=True)
        searcher.search(query, limit=10, count=True)


class ApiEngine(Engine):
    """``GET /api/search`` of a real ``suite serve`` (uvicorn, 1 worker) over the same documents.

    The documents are written into the server's index folder before it starts (the index is the
    embedded backend's own format), so this column measures the HTTP API on top of ``backend``.
    """

    name = "api"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.client: Any = None

    def index(self, docs: list[SearchDocument]) -> float:
        import httpx

        data = self.folder / "var"
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUITE_")}
        env.update({"SUITE_DATA_DIR": str(data), "SUITE_BACKGROUND_JOBS": "false"})
        suite = str(Path(sys.executable).parent / "suite")
        subprocess.run([suite, "init", "--admin-email", "a@b.pt", "--admin-password", "bench-password-1"],
                       env=env, cwd=self.folder, check=True, capture_output=True)  # fmt: skip
        backend = TantivyBackend(data / "search", synonyms=DEFAULT_SYNONYMS)
        backend.ensure_index()
        backend.upsert(docs)
        del backend
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [suite, "serve", "--port", str(port)], env=env, cwd=self.folder,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        return 0.0

    def query(self, kind: str, text: str) -> None:
        response = self.client.get("/api/search", params={"q": text, "limit": 10})
        response.raise_for_status()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)


def engines(work: Path, threads: int) -> list[Engine]:
    return [BackendEngine(work / "backend"), RawEngine(work / "raw", threads), ApiEngine(work / "api")]


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latencies(engine: Engine, kind: str, queries: list[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per query (CPU time hides other processes on a busy machine)."""
    for text in queries[:10]:  # warm-up
        engine.query(kind, text)
    wall, cpu = [], []
    for text in queries:
        started, started_cpu = time.perf_counter(), time.process_time()
        engine.query(kind, text)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def run_size(vocab: Vocabulary, size: int, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    docs = make_documents(vocab, size)
    queries = make_queries(vocab, docs, count)
    print(f"\n## {size:,} documents (generated in {time.perf_counter() - started:.1f} s)")
    work = Path(tempfile.mkdtemp(prefix="suite-bench-search-"))
    threads = TantivyBackend._threads(size)
    cols = engines(work, threads)
    try:
        rates = {}
        for engine in cols:
            rate = engine.index(docs)
            if rate:
                rates[engine.name] = rate
        base = rates.get("raw tantivy", 0.0)
        print(f"indexing ({threads} writer threads):")
        for name, rate in rates.items():
            ratio = rate / base if base else 0
            print(f"  {name:<14}{rate:>10,.0f} docs/s{'' if name == 'raw tantivy' else f'   {ratio:.2f}× raw'}")
        header = "".join(f"{e.name + ' p50':>16}{'p99':>8}" for e in cols)
        print(f"queries ({count} each, ms):\n  {'kind':<8}{header}")
        stats: dict[str, dict[str, tuple[float, float, float]]] = {}
        for kind in KINDS:
            line = f"  {kind:<8}"
            for engine in cols:
                wall, cpu = latencies(engine, kind, queries[kind])
                p50, p99 = statistics.median(wall), percentile(wall, 99)
                stats.setdefault(engine.name, {})[kind] = (p50, p99, percentile(cpu, 99))
                line += f"{p50:>16.2f}{p99:>8.2f}"
            print(line)
        return {"rates": rates, "stats": stats}
    finally:
        for engine in cols:
            engine.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"corpus not found: {args.corpus}")
    sizes = [int(s) for s in args.sizes.split(",")]
    vocab = Vocabulary(args.corpus)
    engine_version = tantivy.__version__.split(",")[0]
    load = os.getloadavg()[0]
    print(f"# search benchmark: {engine_version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs "
          f"(load average {load:.1f}), vocabulary of {len(vocab.words):,} words")  # fmt: skip
    results = {size: run_size(vocab, size, args.queries) for size in sizes}

    print("\n## summary")
    small, large = results[sizes[0]], results[sizes[-1]]
    for name in large["stats"]:
        growth = "  ".join(
            f"{kind} {large['stats'][name][kind][0] / max(small['stats'][name][kind][0], 1e-6):.2f}×" for kind in KINDS
        )
        print(f"p50 growth {sizes[0]:,}→{sizes[-1]:,} ({name}): {growth}")
    for size in sizes:
        stats = results[size]["stats"]
        if "api" in stats:
            ratios = "  ".join(
                f"{kind} {stats['api'][kind][0] / max(stats['backend'][kind][0], 1e-6):.2f}×" for kind in KINDS
            )
            print(f"{size:>7,} docs: /api/search p50 vs backend.search() p50 (HTTP stack overhead): {ratios}")
    for size in sizes:
        rates = results[size]["rates"]
        ratio = rates["backend"] / rates["raw tantivy"]
        worst = max(p99 for _, p99, _ in results[size]["stats"]["backend"].values())
        worst_cpu = max(cpu for _, _, cpu in results[size]["stats"]["backend"].values())
        print(
            f"{size:>7,} docs: indexing {ratio:.2f}× raw (target ≥ {INDEX_RATIO_TARGET}) "
            f"{'ok' if ratio >= INDEX_RATIO_TARGET else 'MISSED'}; worst backend p99 {worst:.1f} ms wall, "
            f"{worst_cpu:.1f} ms CPU (target ≤ {P99_TARGET_MS:.0f} ms at 100k) "
            f"{'ok' if worst <= P99_TARGET_MS else 'MISSED'}"
        )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
