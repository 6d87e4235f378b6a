"""Portal pages vs a bare Litestar hello route, served the same way, measured side by side with wrk.

    python bench/portal.py [--seconds 5] [--connections 16] [--rounds 3]

Loads the demo municipality and builds its search index, starts three uvicorn servers (1 worker
each, same options): the hello app, the suite with its page cache, and the suite with the page
cache off (same database), warms every page, then measures in rounds: every page in both modes, each
right after a hello run whose rate is its yardstick (the machine's speed drifts within a run); it
prints per page the median round (req/s, p50/p99 latency, × hello) and the ratio's range over rounds.

Each run also reads the CPU time the serving process used (``/proc/PID/stat``) and the CPU time
``wrk`` used: the server's CPU per request, and how busy each was, show whether a run measured the
server (busy all the time) or the client, and let runs on different machines be compared.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
SUITE = str(Path(sys.executable).parent / "suite")
UVICORN = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--workers", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


class Run(NamedTuple):
    """One wrk run against one server."""

    rps: float
    p50: float
    p99: float
    #: CPU time the server process used per request (µs).
    cpu_us: float
    #: Share of the run's wall time the server, and wrk, spent on a CPU (1.0 = one core all the time).
    server_busy: float
    client_busy: float


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, seconds: int, connections: int, server_pid: int) -> Run:
    """:func:`wrk` on ``url``, with the CPU time the server (``server_pid``) and wrk used meanwhile."""
    server_before, client_before = process_cpu(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    rps, p50, p99, requests = wrk(url, seconds, connections)
    wall = time.monotonic() - start
    server = process_cpu(server_pid) - server_before
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (client_after.ru_utime - client_before.ru_utime) + (client_after.ru_stime - client_before.ru_stime)
    return Run(rps, p50, p99, server / max(requests, 1) * 1e6, server / wall, client / wall)


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float, int]:
    """req/s, p50 and p99 latency (ms) and the number of requests of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)  # type: ignore[union-attr]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return rps, pct("50"), pct("99"), requests


def require_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")


def suite_env(data_dir: Path) -> dict[str, str]:
    """The environment of suite commands and servers with their data in ``data_dir`` (no background job runs)."""
    env = {**os.environ, "SUITE_DATA_DIR": str(data_dir), "SUITE_JOBS_INTERVAL_SECONDS": "3600"}
    env.pop("SUITE_CONFIG", None)
    return env


def load_demo(env: dict[str, str], cwd: Path) -> None:
    """A new suite in ``env``'s data folder with the demo municipality."""
    subprocess.run([SUITE, "init", "--admin-email", "a@b.pt", "--admin-password", "bench-password-1"], env=env,
                   check=True, capture_output=True, cwd=cwd)  # fmt: skip
    subprocess.run([SUITE, "demo", "load"], env=env, check=True, capture_output=True, cwd=cwd)


def stop(procs: list[subprocess.Popen[bytes]], work: Path) -> None:
    """Stop the bench's servers and remove its folder."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)
    shutil.rmtree(work, ignore_errors=True)


def first_link(base: str, path: str, prefix: str) -> str | None:
    html = urllib.request.urlopen(base + path, timeout=5).read().decode()  # noqa: S310 - loopback only
    m = re.search(rf'href="({re.escape(prefix)}[a-z0-9-]+)"', html)
    return m.group(1) if m else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_wrk()
    work = Path(tempfile.mkdtemp(prefix="suite-bench-"))
    env = suite_env(work / "var")
    load_demo(env, work)
    # Built now, so no server spends its first seconds (and the measurements') building it.
    subprocess.run([SUITE, "search", "reindex"], env=env, check=True, capture_output=True, cwd=work)
    ports = {"hello": free_port(), "cached": free_port(), "uncached": free_port()}
    procs = [
        subprocess.Popen([*UVICORN, "--port", str(ports["hello"]), "--app-dir", str(HERE), "hello:app"], cwd=work),
        subprocess.Popen(
            [*UVICORN, "--port", str(ports["cached"]), "--factory", "concelho.suite.app:create_app_from_env"],
            env=env,
            cwd=work,
        ),
        subprocess.Popen(
            [*UVICORN, "--port", str(ports["uncached"]), "--factory", "concelho.suite.app:create_app_from_env"],
            env={**env, "SUITE_PAGE_CACHE": "false"},
            cwd=work,
        ),
    ]
    try:
        for port in ports.values():
            wait(f"http://127.0.0.1:{port}/")
        base = f"http://127.0.0.1:{ports['cached']}"
        pages = {"home": "/", "news list": "/noticias"}
        if article := first_link(base, "/noticias", "/noticias/"):
            pages["news detail"] = article
        try:
            if service := first_link(base, "/servicos", "/servicos/"):
                pages["service detail"] = service
        except OSError:
            pass
        hello_url = f"http://127.0.0.1:{ports['hello']}/"
        urls = {(label, mode): f"http://127.0.0.1:{ports[mode]}{path}" for label, path in pages.items()
                for mode in ("cached", "uncached")}  # fmt: skip
        for url in [hello_url, *urls.values()]:
            wrk(url, 1, args.connections)  # warm: templates, prepared statements, caches
        servers = {"hello": procs[0].pid, "cached": procs[1].pid, "uncached": procs[2].pid}
        rounds: list[dict[Any, tuple[Run, float]]] = []
        for _ in range(args.rounds):
            measured: dict[Any, tuple[Run, float]] = {}
            hellos = []
            for key, url in urls.items():
                # The hello right before each page: the pair runs on the machine as it is at that moment.
                hello = measure(hello_url, args.seconds, args.connections, servers["hello"])
                hellos.append((hello, 1.0))
                run = measure(url, args.seconds, args.connections, servers[key[1]])
                measured[key] = (run, run.rps / hello.rps)
            measured["hello"] = sorted(hellos, key=lambda pair: pair[0].rps)[len(hellos) // 2]
            rounds.append(measured)
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, uvicorn 1 worker each, {os.cpu_count()} CPUs, "
              f"{args.rounds} rounds (median shown; × hello against a hello run just before each page)")  # fmt: skip
        print("cpu µs: the server's CPU time per request; busy: share of the run the server / wrk spent on a CPU")
        header = f"{'page':<16}{'mode':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu µs':>8}{'busy':>10}"
        print(f"{header}{'× hello':>9}  range")
        for key in ["hello", *urls]:
            label, mode = ("hello", "bare") if key == "hello" else key
            runs = sorted((r[key] for r in rounds), key=lambda m: m[1] if key != "hello" else m[0].rps)
            run, ratio = runs[len(runs) // 2]
            spread = (
                f"{runs[0][1]:.2f}–{runs[-1][1]:.2f}"
                if key != "hello"
                else f"{min(m[0].rps for m in runs):.0f}–{max(m[0].rps for m in runs):.0f} req/s"
            )
            busy = f"{run.server_busy:.2f}/{run.client_busy:.2f}"
            print(f"{label:<16}{mode:<10}{run.rps:>9.0f}{run.p50:>9.2f}{run.p99:>9.2f}{run.cpu_us:>8.0f}{busy:>10}"
                  f"{ratio:>9.2f}  {spread}")  # fmt: skip
        medians = {key: statistics.median(r[key][1] for r in rounds) for key in urls}
        worst = min((v, k) for k, v in medians.items() if k[1] == "uncached")
        print(f"lowest median uncached ratio: {worst[0]:.2f} ({worst[1][0]})")
    finally:
        stop(procs, work)


if __name__ == "__main__":
    main()
