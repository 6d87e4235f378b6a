"""CPU per uncached portal page, in-process (no HTTP, no wrk): where bench/portal.py's time goes.

    python bench/portal_cpu.py [--rounds 10] [--batch 150]

Loads the demo municipality into a fresh data folder, builds the app with the page cache off and
calls it as an ASGI app (the way uvicorn would, one request after the other), next to a bare
Litestar hello app called the same way.  Prints, per page, the CPU time of one request: the best
batch (least disturbed by other processes) and the median batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SUITE = str(Path(sys.executable).parent / "suite")


async def call(app: Any, path: str) -> tuple[int, bytes]:
    query = path.partition("?")[2]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/html")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status, body = 0, []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(body)


async def lifespan(app: Any) -> tuple[asyncio.Queue, asyncio.Task]:
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await outbox.get()
    return inbox, task


async def measure(apps: dict[str, Any], pages: dict[str, tuple[str, str]], rounds: int, batch: int) -> None:
    runs: dict[str, list[float]] = {label: [] for label in pages}
    for app_name, path in pages.values():
        for _ in range(50):
            status, _body = await call(apps[app_name], path)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
    for _ in range(rounds):  # pages alternate, so a disturbance hits all of them alike
        for label, (app_name, path) in pages.items():
            app = apps[app_name]
            start = time.process_time()
            for _ in range(batch):
                await call(app, path)
            runs[label].append((time.process_time() - start) / batch * 1000)
    hello = min(runs["hello"])
    print(f"in-process, page cache off, {rounds} batches of {batch} requests, {os.cpu_count()} CPUs")
    print(f"{'page':<16}{'best ms':>9}{'median ms':>11}{'best × hello':>14}")
    for label, values in runs.items():
        print(f"{label:<16}{min(values):>9.3f}{statistics.median(values):>11.3f}{hello / min(values):>14.3f}")


def first_link(html: str, prefix: str) -> str:
    import re

    found = re.search(rf'href="({re.escape(prefix)}[a-z0-9-]+)"', html)
    if not found:
        raise SystemExit(f"no link to {prefix}… in the listing")
    return found.group(1)


async def run(rounds: int, batch: int) -> None:
    sys.path.insert(0, str(HERE))
    import hello
    from concelho.suite.app import create_app_from_env

    suite = create_app_from_env()
    inbox, task = await lifespan(suite)
    bodies = {listing: (await call(suite, listing))[1].decode() for listing in ("/noticias", "/servicos")}
    pages = {
        "hello": ("hello", "/"),
        "robots.txt": ("suite", "/robots.txt"),
        "home": ("suite", "/"),
        "news list": ("suite", "/noticias"),
        "news detail": ("suite", first_link(bodies["/noticias"], "/noticias/")),
        "service detail": ("suite", first_link(bodies["/servicos"], "/servicos/")),
    }
    await measure({"hello": hello.app, "suite": suite}, pages, rounds, batch)
    await inbox.put({"type": "lifespan.shutdown"})
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="suite-bench-cpu-"))
    env = {**os.environ, "SUITE_DATA_DIR": str(work / "var"), "SUITE_JOBS_INTERVAL_SECONDS": "3600"}
    env.pop("SUITE_CONFIG", None)
    try:
        subprocess.run([SUITE, "init", "--admin-email", "a@b.pt", "--admin-password", "bench-password-1"], env=env,
                       check=True, capture_output=True, cwd=work)  # fmt: skip
        subprocess.run([SUITE, "demo", "load"], env=env, check=True, capture_output=True, cwd=work)
        os.environ.update(env)
        os.environ["SUITE_PAGE_CACHE"] = "false"
        os.environ["SUITE_BACKGROUND_JOBS"] = "false"
        os.chdir(work)
        asyncio.run(run(args.rounds, args.batch))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
