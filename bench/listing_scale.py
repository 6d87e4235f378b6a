"""News pages of a council with years of long articles: the live listing index against the index it replaced.

    python bench/listing_scale.py [--articles 3000] [--seconds 3] [--rounds 3]

Loads the demo municipality plus ``--articles`` long news articles in Portuguese (their text is the
shared corpus's news, several articles' bodies to each, about 6 KB of Markdown), then copies the
data folder and puts the old index back in the copy (``ix_core_content_listing``: type, language,
status, published_at) in place of ``ix_core_content_live``.  Two uvicorn servers (1 worker each,
page cache off) serve the two copies; every page is measured with wrk on both, one right after the
other (which goes first alternates by round), in rounds; per page, the new/old req/s ratio of the
median round is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portal import SUITE, UVICORN, free_port, load_demo, require_wrk, stop, suite_env, wait, wrk

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "portal.jsonl"


def long_articles(count: int) -> list[dict[str, object]]:
    """``count`` public news articles, each with the bodies of five corpus articles (newest first)."""
    news = [row for row in map(json.loads, CORPUS.read_text(encoding="utf-8").splitlines()) if row["type"] == "news"]
    if not news:
        raise SystemExit(f"no news in {CORPUS}")
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    rows = []
    for index in range(count):
        base = news[index % len(news)]
        body = "\n\n".join(news[(index + k) % len(news)]["body"] for k in range(5))
        rows.append({
            "id": f"scale-{index}",
            "type": "news",
            "audience": "public",
            "lang": "pt",
            "title": f"{base['title']} ({index})",
            "slug": f"arquivo-{index}",
            "summary": base["summary"],
            "body": body,
            "tags": base.get("tags", []),
            "category": base.get("category", ""),
            "published_at": (start - timedelta(hours=29 * index)).isoformat(),
        })  # fmt: skip
    return rows


def old_index(database: Path) -> None:
    """Put back the listing index that ``ix_core_content_live`` replaced."""
    with sqlite3.connect(database) as conn:
        conn.execute("DROP INDEX ix_core_content_live")
        conn.execute("CREATE INDEX ix_core_content_listing ON core_content (type, language, status, published_at)")


def checkpoint(database: Path) -> None:
    """Write the import's log into the database file, so both servers read a file alone (no long WAL)."""
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_wrk()
    work = Path(tempfile.mkdtemp(prefix="suite-bench-scale-"))
    new_env = suite_env(work / "new")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        load_demo(new_env, work)
        articles = work / "articles.jsonl"
        articles.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in long_articles(args.articles)))
        subprocess.run(
            [SUITE, "content", "import", str(articles)], env=new_env, check=True, capture_output=True, cwd=work
        )
        # Built now, so no server spends the measurements indexing the new articles.
        subprocess.run([SUITE, "search", "reindex"], env=new_env, check=True, capture_output=True, cwd=work)
        checkpoint(work / "new" / "suite.db")
        shutil.copytree(work / "new", work / "old")
        old_index(work / "old" / "suite.db")
        checkpoint(work / "old" / "suite.db")
        old_env = {**new_env, "SUITE_DATA_DIR": str(work / "old")}
        ports = {"old": free_port(), "new": free_port()}
        for name, env in (("old", old_env), ("new", new_env)):
            command = [*UVICORN, "--port", str(ports[name]), "--factory", "concelho.suite.app:create_app_from_env"]
            procs.append(subprocess.Popen(command, env={**env, "SUITE_PAGE_CACHE": "false"}, cwd=work))
        for port in ports.values():
            wait(f"http://127.0.0.1:{port}/")
        deep = args.articles // 10 // 2  # a page in the middle of the archive
        pages = {
            "news list": "/noticias",
            f"news list p.{deep}": f"/noticias?page={deep}",
            "news by category": "/noticias?categoria=obras",
            "news detail": "/noticias/arquivo-7",
            "home": "/",
        }
        for path in pages.values():
            for port in ports.values():
                wrk(f"http://127.0.0.1:{port}{path}", 1, args.connections)  # warm
        rounds: list[dict[str, tuple[float, float]]] = []
        for number in range(args.rounds):
            measured = {}
            for label, path in pages.items():
                # Which build goes first alternates by round: neither gets the machine's better moment.
                order = ("old", "new") if number % 2 == 0 else ("new", "old")
                results = {
                    name: wrk(f"http://127.0.0.1:{ports[name]}{path}", args.seconds, args.connections) for name in order
                }
                measured[label] = (results["old"], results["new"])
            rounds.append(measured)  # type: ignore[arg-type]
        print(f"{args.articles} long articles (+ demo content), wrk -t1 -c{args.connections} -d{args.seconds}s, "
              f"uvicorn 1 worker each, page cache off, {args.rounds} rounds (median round by new/old)")  # fmt: skip
        print(f"{'page':<20}{'old req/s':>10}{'old p99':>9}{'new req/s':>10}{'new p99':>9}{'new/old':>9}  range")
        for label in pages:
            runs = sorted((r[label] for r in rounds), key=lambda pair: pair[1][0] / pair[0][0])
            old, new = runs[len(runs) // 2]
            ratios = [pair[1][0] / pair[0][0] for pair in runs]
            print(f"{label:<20}{old[0]:>10.0f}{old[2]:>9.1f}{new[0]:>10.0f}{new[2]:>9.1f}{new[0] / old[0]:>9.2f}"
                  f"  {min(ratios):.2f}–{max(ratios):.2f}")  # fmt: skip
    finally:
        stop(procs, work)


if __name__ == "__main__":
    sys.exit(main())
