"""CRM: export throughput and memory, and legacy import throughput, each next to a raw sqlite3 baseline.

    python bench/crm.py [--small 100000] [--large 1000000] [--import-rows 100000] [--repeat 3]

A fresh data folder gets ``suite init`` (migrated SQLite), then bulk inserts (sqlite3 ``executemany``) of
departments, staff, citizens (1 per 5 interactions), cases (1 per 10) and ``--small`` interactions.

1. Export rows/s, at ``--small`` and again after growing the table to ``--large``. Every line is one function run
   ``--repeat`` times, best wall time kept; the raw baseline and the export are run alternately (raw, export,
   raw, export, …) so that both see the same load. Each writes a CSV file on the same disk:

   - ``raw SELECT * + csv.writer`` (the baseline, unchanged): ``sqlite3.connect``, ``SELECT * FROM
     crm_interaction`` (13 columns, stored values: no join, dates as stored), ``fetchmany(2000)`` and
     ``csv.writer(…).writerows`` (default dialect).
   - ``export csv``: ``open_export`` + ``rows.count()`` + ``write`` — what ``suite crm export interactions
     --format csv -o FILE`` runs (without the progress bar): engine, department check, the pseudonyms (HMAC)
     of the exported citizens into a temporary table, the row count, then one query that joins the case,
     citizen, department, staff and pseudonym, writes dates as ISO 8601 UTC, blanks erased citizens,
     neutralises formulas and joins each row's 17 cells into one text, and the CSV writer. Target: ≥ 0.5× the
     raw baseline (wall time of the two measured side by side).
   - ``export csv, quoting path``: the same with ``--delimiter ' '``: every row has cells with spaces, so every
     batch goes through ``csv.writer`` (what a file whose notes hold commas costs). Compared with the same raw
     baseline (comma-separated), which is the stricter comparison.
   - ``export csv --anonymize``: no citizen join, no personal columns (11 columns).
   - ``raw SELECT of the same joined columns``: a hand-written SELECT of the export's columns (joins, stored
     dates, no pseudonym, no neutralising) + ``csv.writer``, to show how much of the gap is the query itself.
   - ``typed rows + csv.writer``: the export's query as typed values, neutralised in Python and written by
     ``csv.writer`` (the path cases take; the CSV path of interactions before the database wrote the text).
   - ``export jsonl`` / ``export xlsx`` (at ``--small`` only).

   Wall and CPU time (of this process, all threads) are both shown: the machine may be shared.
2. Peak memory: the real CLI (``suite crm export interactions --format csv -o FILE``) in a subprocess, resident
   set sampled every 10 ms from ``/proc/<pid>/status``, at ``--small`` and at ``--large``. Target:
   peak(large) ≤ 1.5× peak(small).
3. Import rows/s: ``legacy_import.import_csv`` (what ``suite crm import`` runs: every row validated, then bulk
   inserts in one transaction) of ``--import-rows`` interactions (their citizens imported first) into an empty
   CRM, against reading the same CSV with ``csv.reader`` and a raw ``executemany`` INSERT into a copy of the same
   empty database. Target: import ≥ 0.3× raw.

A summary of the three targets is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SUITE = str(Path(sys.executable).parent / "suite")
PASSWORD = "bench-password-0123456789"  # noqa: S105 - a throwaway local account
SECRET = "bench-secret-key-not-for-production-0123456789"  # noqa: S105
CHANNELS = ("web", "counter", "phone", "letter", "fax", "email", "open311")
WEIGHTS = (40, 20, 20, 5, 1, 10, 4)
TOPICS = ("Via pública e iluminação", "Ambiente e resíduos", "Água e saneamento", "Urbanismo", "Ação social")
FIRST = ("Maria", "Ana", "João", "José", "Rita", "Pedro", "Inês", "Luís", "Carla", "Rui", "Sofia", "Tiago")
LAST = ("Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins", "Sousa", "Gomes")
STREETS = ("Rua Direita", "Largo do Rossio", "Avenida da Liberdade", "Travessa do Sol", "Rua de Santo António")
NOTES = (
    "Munícipe pede informação sobre o estado do pedido.",
    "Reclamação sobre recolha de resíduos em atraso na rua.",
    "Pedido de reparação de candeeiro apagado junto ao n.º 12.",
    "Esclarecimento sobre taxas de licenciamento de obras particulares.",
    "Marcação de atendimento presencial para entrega de documentos.",
)
STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite


def rss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


def run(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([SUITE, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"suite {' '.join(args)} failed: {out.stderr or out.stdout}")
    return out.stdout


def copy_db(source: Path, target: Path) -> None:
    """A consistent copy (WAL included) through SQLite's backup API."""
    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def nif(rng: random.Random) -> str:
    digits = [rng.choice((1, 2))] + [rng.randrange(10) for _ in range(7)]
    check = 11 - sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
    return "".join(map(str, digits)) + str(0 if check >= 10 else check)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def seed_reference(db: sqlite3.Connection) -> None:
    db.executemany(
        "INSERT INTO core_department (code, name, sort_order) VALUES (?, ?, 0)",
        [(f"D{n:02d}", f"Divisão {n:02d}") for n in range(1, 11)],
    )
    db.executemany(
        "INSERT INTO core_user (username, email, name, password_hash, kind, is_active, is_superuser, language, "
        "auth_version, created_at) VALUES (?, ?, ?, '', 'employee', 1, 0, 'pt', 1, ?)",
        [(f"agente{n}", f"agente{n}@example.pt", f"Agente {n}", "2025-01-01 00:00:00.000000") for n in range(20)],
    )


def grow(db: sqlite3.Connection, interactions: int, seed: int) -> None:
    """Add ``interactions`` interactions, with 1 citizen per 5 and 1 case per 10 (ids continue the table's)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    base_citizen = db.execute("SELECT coalesce(max(id), 0) FROM crm_citizen").fetchone()[0]
    base_case = db.execute("SELECT coalesce(max(id), 0) FROM crm_case").fetchone()[0]
    users = [r[0] for r in db.execute("SELECT id FROM core_user")]
    departments = [r[0] for r in db.execute("SELECT id FROM core_department")]

    def citizens():  # type: ignore[no-untyped-def]
        for n in range(base_citizen + 1, base_citizen + interactions // 5 + 1):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"
            when = (start + timedelta(minutes=rng.randrange(1_000_000))).strftime(STAMP)
            yield (n, name, name.lower(), nif(rng), f"munícipe{n}@example.pt", f"9{rng.randrange(10**8):08d}",
                   f"{rng.choice(STREETS)}, {rng.randrange(1, 200)}", when, when, when)  # fmt: skip

    db.executemany(
        "INSERT INTO crm_citizen (id, name, name_folded, nif, email, phone, address, consent_at, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        citizens(),
    )

    def cases():  # type: ignore[no-untyped-def]
        for n in range(base_case + 1, base_case + interactions // 10 + 1):
            created = start + timedelta(minutes=rng.randrange(1_000_000))
            answered = created + timedelta(hours=rng.randrange(1, 400))
            yield (n, f"VM-{created.year}-{n:07d}", "0" * 64, base_citizen + rng.randrange(1, interactions // 5 + 1),
                   rng.choice(CHANNELS), rng.choice(TOPICS), rng.choice(departments), rng.choice(("closed", "answered",
                   "in_progress")), rng.choice(NOTES), (created + timedelta(days=10)).strftime(STAMP),
                   created.strftime(STAMP), created.strftime(STAMP), answered.strftime(STAMP))  # fmt: skip

    db.executemany(
        "INSERT INTO crm_case (id, reference, token_hash, citizen_id, channel, topic, department_id, status, "
        "description, sla_due_at, created_at, updated_at, first_answered_at, service_code, location_text, media_url) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '')",
        cases(),
    )

    def rows():  # type: ignore[no-untyped-def]
        for n in range(interactions):
            when = (start + timedelta(seconds=rng.randrange(60_000_000))).strftime(STAMP)
            case = base_case + 1 + n // 10 if n % 3 == 0 else None
            yield (base_citizen + rng.randrange(1, interactions // 5 + 1), case,
                   rng.choices(CHANNELS, WEIGHTS)[0], rng.choice(("in", "in", "in", "out")), rng.choice(TOPICS),
                   rng.choice(departments), rng.choice(users), rng.choice(NOTES), when, when)  # fmt: skip

    db.executemany(
        "INSERT INTO crm_interaction (citizen_id, case_id, channel, direction, topic, department_id, staff_id, "
        "notes, occurred_at, created_at, service_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
        rows(),
    )
    db.commit()


# --------------------------------------------------------------------------------------------
# 1. Export throughput
# --------------------------------------------------------------------------------------------
@dataclass
class Timed:
    rows: int
    wall: float
    cpu: float  # of this process, every thread included (aiosqlite runs in one)

    def line(self, label: str, raw: Timed | None = None, target: str = "") -> str:
        text = f"{label:<40} {self.rows / self.wall:>9,.0f} rows/s {self.wall:7.2f} s wall {self.cpu:7.2f} s CPU"
        if raw is not None:
            text += f"   {raw.wall / self.wall:.2f}× raw wall, {raw.cpu / self.cpu:.2f}× raw CPU{target}"
        return text


def timed(fn: Callable[[], int], repeat: int = 1) -> Timed:
    """The best (shortest wall time) of ``repeat`` runs of ``fn`` (which returns its row count)."""
    return timed_together([fn], repeat)[0]


def timed_together(fns: list[Callable[[], int]], repeat: int = 1) -> list[Timed]:
    """The best of ``repeat`` runs of each of ``fns``, run in turn (a, b, a, b, …) so they share the load."""
    best: list[Timed | None] = [None] * len(fns)
    for _ in range(repeat):
        for n, fn in enumerate(fns):
            wall, cpu = time.perf_counter(), time.process_time()
            rows = fn()
            result = Timed(rows, time.perf_counter() - wall, time.process_time() - cpu)
            current = best[n]
            best[n] = result if current is None or result.wall < current.wall else current
    return [b for b in best if b is not None]


def export_function(url: str, out: Path, fmt: str = "csv", anonymize: bool = False, delimiter: str = ",") -> int:
    """What ``suite crm export interactions --format FMT -o OUT`` runs (count included, progress bar excluded)."""
    from concelho.plugins.crm.exports import ExportSpec, open_export, write

    with open_export(url, SECRET, ExportSpec("interactions", anonymize=anonymize)) as rows:
        rows.count()
        return write(rows, fmt, out, delimiter=delimiter)


def export_typed_rows(url: str, out: Path) -> int:
    """The export's query as typed rows, neutralised in Python (``csv_ready``) and written by ``csv.writer``."""
    from concelho.plugins.crm.exports import ExportSpec, csv_ready, open_export

    with open_export(url, SECRET, ExportSpec("interactions")) as rows, out.open("w", newline="") as fh:
        rows.count()
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(rows.header)
        n = 0
        for batch in rows.batches():
            writer.writerows(csv_ready(batch, rows.plan))
            n += len(batch)
        return n


def export_raw(path: Path, out: Path) -> int:
    db = sqlite3.connect(path)
    cursor = db.execute("SELECT * FROM crm_interaction")
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([c[0] for c in cursor.description])
        n = 0
        while batch := cursor.fetchmany(2000):
            writer.writerows(batch)
            n += len(batch)
    db.close()
    return n


JOINED = (
    "SELECT i.id, i.occurred_at, i.channel, i.direction, i.topic, i.service_code, d.code, d.name, k.reference, "
    "i.citizen_id, c.name, c.nif, c.email, c.phone, u.username, i.notes, i.created_at FROM crm_interaction i "
    "LEFT JOIN core_department d ON d.id = i.department_id LEFT JOIN crm_case k ON k.id = i.case_id "
    "LEFT JOIN crm_citizen c ON c.id = i.citizen_id LEFT JOIN core_user u ON u.id = i.staff_id ORDER BY i.id"
)


def export_raw_joined(path: Path, out: Path) -> int:
    """The export's columns by hand-written SQL, written as they come (no pseudonyms, ISO dates or neutralising)."""
    db = sqlite3.connect(path)
    cursor = db.execute(JOINED)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([c[0] for c in cursor.description])
        n = 0
        while batch := cursor.fetchmany(2000):
            writer.writerows(batch)
            n += len(batch)
    db.close()
    return n


# --------------------------------------------------------------------------------------------
# 2. Peak memory of the CLI
# --------------------------------------------------------------------------------------------
class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (FileNotFoundError, AttributeError, ProcessLookupError):
                return
            time.sleep(0.01)


def cli_export_peak(env: dict[str, str], out: Path, fmt: str = "csv") -> tuple[float, float]:
    """(peak resident MB, seconds) of ``suite crm export interactions`` in a subprocess."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [SUITE, "crm", "export", "interactions", "--format", fmt, "--output", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    sampler = Sampler(process.pid)
    sampler.start()
    _, err = process.communicate()
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"suite crm export failed: {err.decode()}")
    return sampler.peak / 1024, time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# 3. Import throughput
# --------------------------------------------------------------------------------------------
def legacy_files(root: Path, count: int) -> tuple[Path, Path, int]:
    """A citizens CSV (1 per 5 interactions) and an interactions CSV in the legacy layout."""
    rng = random.Random(7)
    start = datetime(2023, 1, 1)
    citizens, interactions = root / "legacy-citizens.csv", root / "legacy-interactions.csv"
    people = max(1, count // 5)
    with citizens.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "nif", "email", "phone", "address", "consent_at", "created_at"])
        for n in range(people):
            writer.writerow([f"L{n}", f"{rng.choice(FIRST)} {rng.choice(LAST)}", nif(rng), f"legado{n}@example.pt",
                             f"9{rng.randrange(10**8):08d}", f"{rng.choice(STREETS)}, {n % 200 + 1}",
                             "2023-01-01", (start + timedelta(hours=n)).isoformat()])  # fmt: skip
    with interactions.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "citizen_external_id", "channel", "direction", "occurred_at", "topic",
                         "department_code", "staff_username", "notes"])  # fmt: skip
        for n in range(count):
            writer.writerow([f"I{n}", f"L{rng.randrange(people)}", rng.choices(CHANNELS[:6], WEIGHTS[:6])[0],
                             rng.choice(("in", "out")), (start + timedelta(minutes=7 * n)).strftime("%Y-%m-%dT%H:%M"),
                             rng.choice(TOPICS), f"D{rng.randrange(1, 11):02d}", f"agente{rng.randrange(20)}",
                             rng.choice(NOTES)])  # fmt: skip
    return citizens, interactions, people


def import_function(url: str, kind: str, path: Path) -> int:
    """What ``suite crm import KIND FILE`` runs: ``legacy_import.import_csv`` in one session."""
    from concelho.plugins.crm.legacy_import import import_csv
    from concelho.suite.db import Database

    async def main() -> int:
        database = Database(url)
        try:
            async with database.sessionmaker() as session:
                report = await import_csv(session, kind, path)
                return report.created
        finally:
            await database.dispose()

    return asyncio.run(main())


def import_raw_citizens(db: sqlite3.Connection, citizens: Path) -> int:
    now = datetime.now(UTC).strftime(STAMP)
    with citizens.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        db.executemany(
            "INSERT INTO crm_citizen (external_id, name, name_folded, nif, email, phone, address, consent_at, "
            "created_at, updated_at) VALUES (?, ?, lower(?), ?, ?, ?, ?, ?, ?, ?)",
            ((r[0], r[1], r[1], r[2], r[3], r[4], r[5], r[6], r[7], now) for r in reader),
        )
    db.commit()
    return db.execute("SELECT count(*) FROM crm_citizen").fetchone()[0]


def import_raw_interactions(db: sqlite3.Connection, interactions: Path) -> int:
    """csv.reader + one executemany, citizens, departments and staff resolved through dicts."""
    now = datetime.now(UTC).strftime(STAMP)
    ids = dict(db.execute("SELECT external_id, id FROM crm_citizen"))
    departments = dict(db.execute("SELECT code, id FROM core_department"))
    users = dict(db.execute("SELECT username, id FROM core_user"))
    with interactions.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        db.executemany(
            "INSERT INTO crm_interaction (external_id, citizen_id, channel, direction, occurred_at, topic, "
            "department_id, staff_id, notes, created_at, service_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
            ((r[0], ids[r[1]], r[2], r[3], r[4], r[5], departments[r[6]], users[r[7]], r[8], now) for r in reader),
        )
    db.commit()
    return db.execute("SELECT count(*) FROM crm_interaction").fetchone()[0]


# --------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the in-process measurements")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="suite-bench-crm-"))
    env = {**os.environ, "SUITE_DATA_DIR": str(root / "var"), "SUITE_SECRET_KEY": SECRET}
    env.pop("SUITE_CONFIG", None)
    env.pop("SUITE_DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("SUITE_DATA_DIR", "SUITE_SECRET_KEY")})
    db_path = root / "var" / "suite.db"
    url = f"sqlite:///{db_path}"
    out = root / "out"
    try:
        run(env, "init", "--admin-email", "admin@example.org", "--admin-password", PASSWORD)
        empty = root / "empty.db"
        db = sqlite3.connect(db_path)
        seed_reference(db)
        db.commit()
        db.close()
        copy_db(db_path, empty)

        load = os.getloadavg()
        print(f"# CRM benchmark: {os.cpu_count()} CPU, SQLite, Python {sys.version.split()[0]}, best of "
              f"{args.repeat}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
        peaks: dict[int, float] = {}
        ratios: dict[int, tuple[float, float]] = {}
        done = 0
        for size in (args.small, args.large):
            started = time.perf_counter()
            db = sqlite3.connect(db_path)
            grow(db, size - done, seed=size)
            db.close()
            done = size
            print(f"\n## {size:,} interactions (generated in {time.perf_counter() - started:.1f} s)", flush=True)
            if size == args.small:
                export_function(url, out)  # warm-up: imports and SQLAlchemy's first compilations, not timed
            raw, ours = timed_together([lambda: export_raw(db_path, out), lambda: export_function(url, out)],
                                       args.repeat)  # fmt: skip
            print(raw.line("raw SELECT * + csv.writer"))
            print(ours.line("export csv (open_export + write)", raw, " (target ≥ 0.5)"), flush=True)
            ratios[size] = (raw.wall / ours.wall, raw.cpu / ours.cpu)
            raw2, quoting = timed_together([lambda: export_raw(db_path, out),
                                            lambda: export_function(url, out, delimiter=" ")], args.repeat)  # fmt: skip
            print(quoting.line("export csv, quoting path (delimiter ' ')", raw2), flush=True)
            anonymous = timed(lambda: export_function(url, out, anonymize=True), args.repeat)
            print(anonymous.line("export csv --anonymize (no citizen join)", raw))
            joined = timed(lambda: export_raw_joined(db_path, out), args.repeat)
            print(joined.line("raw SELECT of the same joined columns", raw))
            typed = timed(lambda: export_typed_rows(url, out), args.repeat)
            print(typed.line("typed rows + csv.writer (cases' path)", raw), flush=True)
            assert raw.rows == ours.rows == quoting.rows == joined.rows == typed.rows == size, (raw, ours, joined)
            if size == args.small:
                for fmt in ("jsonl", "xlsx"):
                    other = timed(lambda fmt=fmt: export_function(url, out, fmt))
                    print(other.line(f"export {fmt} (open_export + write)"), flush=True)
            peak, seconds = cli_export_peak(env, root / "cli.csv")
            print(f"{'suite crm export interactions (CLI)':<40} {size / seconds:>9,.0f} rows/s {seconds:7.2f} s wall"
                  f"   peak RSS {peak:.0f} MB", flush=True)  # fmt: skip
            peaks[size] = peak
            if size == args.small:
                xpeak, xseconds = cli_export_peak(env, root / "cli.xlsx", "xlsx")
                print(f"{'suite crm export … --format xlsx (CLI)':<40} {size / xseconds:>9,.0f} rows/s "
                      f"{xseconds:7.2f} s wall   peak RSS {xpeak:.0f} MB", flush=True)  # fmt: skip
        small, large = peaks[args.small], peaks[args.large]
        print(f"\npeak RSS of the CLI export: {small:.0f} MB at {args.small:,} -> {large:.0f} MB at {args.large:,} "
              f"= {large / small:.2f}× (target ≤ 1.5×)")  # fmt: skip

        print(f"\n## legacy import: {args.import_rows:,} interactions and their citizens into an empty CRM", flush=True)
        citizens_csv, interactions_csv, people = legacy_files(root, args.import_rows)
        for suffix in ("-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        copy_db(empty, db_path)
        ours_c = timed(lambda: import_function(url, "citizens", citizens_csv))
        ours_i = timed(lambda: import_function(url, "interactions", interactions_csv))
        raw_db = root / "raw.db"
        copy_db(empty, raw_db)
        db = sqlite3.connect(raw_db)
        raw_c = timed(lambda: import_raw_citizens(db, citizens_csv))
        raw_i = timed(lambda: import_raw_interactions(db, interactions_csv))
        db.close()
        assert ours_c.rows == raw_c.rows == people and ours_i.rows == raw_i.rows == args.import_rows
        print(raw_c.line("raw csv.reader + executemany, citizens"))
        print(ours_c.line("legacy import_csv, citizens", raw_c))
        print(raw_i.line("raw csv.reader + executemany, contacts"))
        print(ours_i.line("legacy import_csv, interactions", raw_i, " (target ≥ 0.3)"))
        print("\n## targets")
        for size, (wall, cpu) in ratios.items():
            print(f"export csv at {size:>9,}: {wall:.2f}× raw wall, {cpu:.2f}× raw CPU (target ≥ 0.5×)")
        print(f"peak RSS {args.large:,} / {args.small:,}: {large / small:.2f}× (target ≤ 1.5×)")
        print(f"import of interactions: {raw_i.wall / ours_i.wall:.2f}× raw wall (target ≥ 0.3×)")
        load = os.getloadavg()
        print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
