"""CSV exports whose cells the database writes as text (interactions, citizens), on SQLite and PostgreSQL.

The fast path (``ExportRows.texts``: neutralising, NULLs, numbers and flags done in SQL, a batch joined in one go when
nothing needs quotes) must write byte for byte what ``csv.writer`` writes for the typed rows, whatever the cells
hold (delimiters, quotes, line breaks, formulas, non-ASCII), the delimiter and how clean rows and rows that need
quotes share a batch. The cells are also checked against the values inserted, with an independent reader.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import TEST_SECRET

TRICKY = ["with, comma", 'with "quotes"', "line\nbreak", "cr\rinside", "crlf\r\nend", "tab\tinside", "semi;colon",
          "pipe|bar", "=1+2", "+351 912", "-2+3", "@SUM(1)", "\tlead tab", "\rlead cr", " lead space", "",
          "Ação çã ü 😀", "'quoted already", "unit\x1fsep", "record\x1esep", "2025-01-01T00:00", "C-0123",
          "x"]  # fmt: skip
#: Short ones for the NIF (at most 9 characters).
SHORT = ["12,3", '"9"', "=1", "+351", "-1", "@1", "", "1\n2", "123456789", "a;b", "ç"]
START = datetime(2025, 3, 1, 9, tzinfo=UTC)


def pseudonym(citizen_id: int) -> str:
    return "C-" + hmac.new(TEST_SECRET.encode(), f"crm.citizen:{citizen_id}".encode(), hashlib.sha256).hexdigest()[:16]


def neutralised(value: str | None) -> str:
    """What a spreadsheet-safe CSV cell holds (computed here, independently of the code under test)."""
    if value is None:
        return ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _insert(url: str, postgres: bool) -> dict[str, Any]:
    """200 interactions, mostly plain, every 10th full of awkward text; erased, merged and anonymous citizens."""
    from concelho.plugins.crm.exports import sync_engine
    from concelho.plugins.crm.models import Case, Citizen, Interaction
    from concelho.suite.models import Department
    from sqlalchemy.orm import Session

    tricky = TRICKY + ([] if postgres else ["nul\x00inside"])  # PostgreSQL text cannot hold NUL
    engine = sync_engine(url)
    try:
        with Session(engine) as session:
            departments = [
                Department(code="D,1", name='Obras "Municipais"'),
                Department(code="=D2", name="Ação\nSocial"),
                Department(code="D3", name="Plain"),
            ]
            session.add_all(departments)
            citizens = []
            for n in range(40):
                odd = tricky[n % len(tricky)] if n % 4 == 0 else None
                citizens.append(Citizen(
                    name=odd if odd is not None else f"Pessoa {n}", name_folded=f"pessoa {n}",
                    nif=SHORT[n % len(SHORT)] if n % 4 == 0 else f"{100000000 + n}",
                    email=odd or f"p{n}@example.pt", phone=(odd or f"91{n:07d}")[:40],
                    address=odd if odd is not None else f"Rua {n}", external_id=f"{odd}#{n}" if n % 8 == 0 else f"L{n}",
                    consent_at=START, created_at=START + timedelta(days=n), updated_at=START + timedelta(days=n),
                    erased_at=START if n % 7 == 3 else None,
                ))  # fmt: skip
            session.add_all(citizens)
            session.flush()
            citizens[5].merged_into_id = citizens[6].id
            cases = [Case(reference=f"VM-2025-{n:06d}" if n else "=VM,1", token_hash="0" * 64,
                          citizen_id=citizens[n].id, channel="web", topic="t", description="d", created_at=START,
                          updated_at=START) for n in range(5)]  # fmt: skip
            session.add_all(cases)
            session.flush()
            notes = {}
            for n in range(200):
                odd = tricky[(n // 10) % len(tricky)] if n % 10 == 0 else None
                interaction = Interaction(
                    citizen_id=None if n % 13 == 0 else citizens[n % 40].id,
                    case_id=cases[n % 5].id if n % 3 == 0 else None, channel=("web", "phone", "counter")[n % 3],
                    direction="in", topic=odd if odd is not None else f"Tópico {n % 5}",
                    service_code=(odd or "")[:40], department_id=None if n % 11 == 0 else departments[n % 3].id,
                    notes=odd if odd is not None else f"Nota {n}", occurred_at=START + timedelta(hours=n),
                    created_at=START + timedelta(hours=n),
                )  # fmt: skip
                session.add(interaction)
                session.flush()
                notes[interaction.id] = interaction.notes
            session.commit()
            return {"notes": notes, "names": {c.id: (c.name, c.erased_at is not None) for c in citizens}}
    finally:
        engine.dispose()


@pytest.fixture
def awkward(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return _insert(settings.database_url, settings.database_url.startswith("postgresql"))


def _export(url: str, spec: Any, delimiter: str, how: str = "text", path: Path | None = None) -> str:
    """The CSV text of an export: ``text`` into a text stream, ``file`` into a UTF-8 file (on SQLite the bytes go
    straight to the file), ``typed`` the reference: typed rows, neutralised in Python, through ``csv.writer``."""
    from concelho.plugins.crm.exports import csv_ready, open_export, write, write_csv

    out = io.StringIO()
    with open_export(url, TEST_SECRET, spec) as rows:
        assert rows.plan.lines_ready
        if how == "file":
            assert path is not None
            assert write(rows, "csv", path, delimiter=delimiter) == rows.count()
            return path.read_bytes().decode("utf-8")
        if how == "text":
            assert write_csv(rows, out, delimiter=delimiter) == rows.count()
            return out.getvalue()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(rows.header)
        for batch in rows.batches():
            writer.writerows(csv_ready(batch, rows.plan))
    return out.getvalue()


# 1: a batch per row; 8: a few awkward rows among clean ones (row by row); 5000: one batch, many awkward rows.
@pytest.mark.parametrize("batch", [1, 8, 5000])
def test_csv_text_from_the_database_is_exactly_what_csv_writer_writes(settings, awkward, monkeypatch, tmp_path, batch):
    from concelho.plugins.crm import exports

    monkeypatch.setattr(exports, "BATCH", batch)
    url, path = settings.database_url, tmp_path / "export.csv"
    for kind in ("interactions", "citizens"):
        for anonymize in (False, True):
            for delimiter in (",", ";", "\t", " ", "|", "-", "2", "ç", "\x1f"):
                spec = exports.ExportSpec(kind, anonymize=anonymize)
                typed = _export(url, spec, delimiter, "typed")
                assert _export(url, spec, delimiter) == typed, (kind, anonymize, delimiter)
                assert _export(url, spec, delimiter, "file", path) == typed, (kind, anonymize, delimiter)
    spec = exports.ExportSpec("interactions", first=date(2025, 3, 2), last=date(2025, 3, 5), channel="web")
    assert _export(url, spec, ",", "file", path) == _export(url, spec, ",", "typed")


def test_awkward_cells_survive_the_round_trip(settings, awkward):
    from concelho.plugins.crm.exports import ExportSpec

    for delimiter in (",", ";", "\t"):
        text = _export(settings.database_url, ExportSpec("interactions"), delimiter)
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
        assert len(rows) == 200
        names = {pseudonym(cid): name for cid, (name, erased) in awkward["names"].items() if not erased}
        for row in rows:
            note = awkward["notes"][int(row["id"])]
            citizen = row["citizen"]
            erased = citizen and citizen not in names
            assert row["notes"] == ("" if erased else neutralised(note)), row
            if citizen and not erased:
                assert row["citizen_name"] == neutralised(names[citizen])
            elif erased:
                assert row["citizen_name"] == citizen and row["citizen_nif"] == row["citizen_email"] == ""
            assert row["occurred_at"].endswith("+00:00") and int(row["id"]) > 0


def test_formulas_are_neutralised_by_the_database_like_in_python(settings):
    """Every character that starts a formula, and those that look alike but do not."""
    from concelho.plugins.crm.exports import compiled, neutralise, neutralised_sql, sync_engine
    from sqlalchemy import String, literal, select

    values = ["=a", "+a", "-a", "@a", "\ta", "\ra", "a=", " =a", "'=a", "", "A", "@", "ça", "😀=", "\na", "0", "9"]
    engine = sync_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            dialect = conn.dialect
            query = select(*[neutralised_sql(literal(value), dialect.name) for value in values])
            assert list(conn.exec_driver_sql(compiled(query, dialect)).one()) == [neutralise(v) for v in values]
            null = select(neutralised_sql(literal(None, type_=String), dialect.name))
            assert conn.exec_driver_sql(compiled(null, dialect)).scalar() == ""
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "secret", ["short", TEST_SECRET, "x" * 64, "y" * 65, "a much longer secret than one SHA-256 block " * 3, "çé😀"]
)
def test_pseudonyms_are_hmac_sha256(secret):
    from concelho.plugins.crm.exports import Pseudonyms

    pseudo = Pseudonyms(secret)
    for citizen_id in (1, 42, 10**12):
        mac = hmac.new(secret.encode(), f"crm.citizen:{citizen_id}".encode(), hashlib.sha256).hexdigest()
        assert pseudo(citizen_id) == "C-" + mac[:16]
    assert pseudo(None) == ""


def test_the_secret_never_reaches_the_database(settings, awkward):
    """Pseudonyms are computed here; the SQL sent holds neither the secret nor the HMAC pads derived from it."""
    from concelho.plugins.crm import exports

    sent: list[str] = []
    original = exports.compiled

    def spy(query: Any, dialect: Any) -> str:
        sent.append(original(query, dialect))
        return sent[-1]

    pads = [bytes(b ^ pad for b in TEST_SECRET.encode().ljust(64, b"\0")).hex() for pad in (0x36, 0x5C)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exports, "compiled", spy)
        for kind in ("interactions", "citizens", "cases"):
            with exports.open_export(settings.database_url, TEST_SECRET, exports.ExportSpec(kind)) as rows:
                exports.write(rows, "csv", io.StringIO())
    assert len(sent) >= 6
    assert not [sql for sql in sent if TEST_SECRET in sql or any(pad in sql.lower() for pad in pads)]


def test_filtered_exports_make_pseudonyms_only_for_the_citizens_they_name(settings, awkward):
    from concelho.plugins.crm.exports import ExportSpec, open_export, write_csv

    for spec in (ExportSpec("interactions", channel="phone"), ExportSpec("citizens", last=date(2025, 3, 10))):
        with open_export(settings.database_url, TEST_SECRET, spec) as rows:
            text = io.StringIO()
            write_csv(rows, text)
            exported = list(csv.DictReader(io.StringIO(text.getvalue(), newline="")))
            named = {row["citizen"] for row in exported} | {row.get("merged_into") for row in exported}
            named.discard("")
            named.discard(None)
            assert named
            # the temporary table holds those and no other (one HMAC per citizen of the export)
            count = rows.conn.exec_driver_sql("SELECT count(*) FROM crm_export_pseudonym").scalar()
            assert count == len(named), spec
