"""Documents: upload throughput and server memory, and bulk import speed, measured side by side.

    python bench/documents.py [--size-mb 500] [--files 10000]

1. Starts the suite under uvicorn (1 worker, SQLite, in-process jobs off) with a fresh data folder,
   creates a user and a workspace, then uploads one ``--size-mb`` file through the real upload form
   (streamed multipart over HTTP) and compares the throughput with a plain file copy of the same file
   on the same disk.  The server's resident memory is sampled every 10 ms from ``/proc/<pid>/status``
   while the upload runs: the peak over the idle value must stay below 100 MB.
2. Imports a tree of ``--files`` small text files with ``suite documents import`` (files/s), then
   runs the same import again (nothing to do: the idempotent re-run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

SUITE = str(Path(sys.executable).parent / "suite")
CHUNK = 1 << 20
PASSWORD = "bench-password-0123456789"  # noqa: S105 - a throwaway local account
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


def run(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([SUITE, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"suite {' '.join(args)} failed: {out.stderr or out.stdout}")
    return out.stdout


def make_big_file(path: Path, size: int) -> str:
    """``size`` bytes that do not compress, shaped like a scanned PDF (the type is sniffed), and their SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as fh:
        head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        fh.write(head)
        digest.update(head)
        written = len(head)
        while written < size:
            piece = block[: min(CHUNK, size - written)]
            piece = written.to_bytes(8, "little") + piece[8:] if len(piece) > 8 else piece
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def multipart(token: str, path: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    """The upload form's body as a stream (token first, then the file), and its length."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="_csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
        yield tail

    return body(), len(head) + path.stat().st_size + len(tail)


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.01)


def upload_bench(env: dict[str, str], root: Path, size_mb: int) -> dict[str, float]:
    big = root / "digitalizacao.pdf"
    print(f"writing a {size_mb} MB test file…", file=sys.stderr)
    expected = make_big_file(big, size_mb * MB)

    started = time.perf_counter()
    shutil.copyfile(big, root / "copia.pdf")
    copy_seconds = time.perf_counter() - started
    (root / "copia.pdf").unlink()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "concelho.suite.app:create_app_from_env", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--workers", "1"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            client.get("/login")
            token = client.cookies["suite_csrf"]
            login = client.post("/login", data={"username": "bench", "password": PASSWORD, "_csrf_token": token,
                                                "next": "/intranet/"})  # fmt: skip
            assert login.status_code in (200, 303), login.status_code
            client.get("/intranet/espacos/bench/documentos/")  # warm up the pages and the database
            time.sleep(0.5)
            idle = rss_kb(server.pid)
            sampler = Sampler(server.pid)
            sampler.start()
            body, length = multipart(client.cookies["suite_csrf"], big, "benchboundary7MA4YWxkTrZu0gW")
            started = time.perf_counter()
            response = client.post(
                "/intranet/espacos/bench/documentos/enviar", content=body,
                headers={"content-type": "multipart/form-data; boundary=benchboundary7MA4YWxkTrZu0gW",
                         "content-length": str(length)},
            )  # fmt: skip
            upload_seconds = time.perf_counter() - started
            sampler.stop.set()
            sampler.join()
            if response.status_code != 303:
                raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
            stored = Path(env["SUITE_DATA_DIR"]) / "files" / "documents" / expected[:2] / expected[2:4] / expected
            if not stored.is_file():
                raise SystemExit("the uploaded file is not in the storage under its SHA-256")
            peak = max(sampler.peak, rss_kb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    big.unlink()
    return {
        "size_mb": size_mb,
        "copy_seconds": copy_seconds,
        "upload_seconds": upload_seconds,
        "idle_mb": idle / 1024,
        "peak_mb": peak / 1024,
    }


def import_bench(env: dict[str, str], root: Path, count: int) -> dict[str, float]:
    tree = root / "arquivo"
    for i in range(count):
        folder = tree / f"pasta-{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"nota-{i:05d}.txt").write_text(f"Nota {i}: processo n.º {i * 7} de obras particulares.\n" * 20)
    started = time.perf_counter()
    first = json.loads(run(env, "documents", "import", str(tree), "--workspace", "bench", "--json"))
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = json.loads(run(env, "documents", "import", str(tree), "--workspace", "bench", "--json"))
    again_seconds = time.perf_counter() - started
    assert first["created"] == count and again["unchanged"] == count, (first, again)
    return {"files": count, "first_seconds": first_seconds, "again_seconds": again_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="suite-bench-docs-"))
    config = root / "suite.toml"
    limit = (args.size_mb + 10) * MB
    config.write_text(f"[plugins.documents]\nmax_file_bytes = {limit}\nmax_request_bytes = {limit + MB}\n")
    env = {
        **os.environ,
        "SUITE_DATA_DIR": str(root / "var"),
        "SUITE_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
        "SUITE_CONFIG": str(config),
        "SUITE_BACKGROUND_JOBS": "false",
    }
    try:
        run(env, "init", "--admin-email", "admin@example.org", "--admin-password", PASSWORD)
        run(env, "users", "create", "bench", "--email", "bench@example.org", "--password", PASSWORD)
        run(env, "workspaces", "create", "bench", "--owner", "bench")
        # Room for the big file and the import whatever the default quota.
        import sqlite3

        with sqlite3.connect(root / "var" / "suite.db") as db:
            db.execute("UPDATE workspaces_workspace SET quota_bytes = ?", (100 * 1024 * MB,))

        up = upload_bench(env, root, args.size_mb)
        imp = import_bench(env, root, args.files)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    size = up["size_mb"]
    print(f"\nDocuments benchmark ({os.cpu_count()} CPU, SQLite, uvicorn 1 worker)\n")
    print(f"{'':38} {'time':>9} {'throughput':>12}")
    copy_label = f"plain file copy ({size} MB)"
    print(f"{copy_label:38} {up['copy_seconds']:8.2f}s {size / up['copy_seconds']:9.0f} MB/s")
    print(
        f"{f'upload through the app ({size} MB)':38} {up['upload_seconds']:8.2f}s "
        f"{size / up['upload_seconds']:9.0f} MB/s  ({up['copy_seconds'] / up['upload_seconds']:.0%} of copy)"
    )
    over = up["peak_mb"] - up["idle_mb"]
    verdict = "OK" if over < 100 else "OVER THE 100 MB BUDGET"
    print(
        f"\nserver memory: idle {up['idle_mb']:.0f} MB, peak during the upload {up['peak_mb']:.0f} MB "
        f"-> +{over:.0f} MB over idle ({verdict}, budget 100 MB)"
    )
    print(
        f"\nbulk import of {imp['files']} small files: {imp['first_seconds']:.1f}s "
        f"= {imp['files'] / imp['first_seconds']:.0f} files/s; re-run (nothing new): {imp['again_seconds']:.1f}s "
        f"= {imp['files'] / imp['again_seconds']:.0f} files/s"
    )


if __name__ == "__main__":
    main()
