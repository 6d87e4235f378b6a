"""Import citizens and interactions from a legacy CRM (CSV: a spreadsheet or another system's export).

Every row is checked first; when any row is wrong, :class:`LegacyImportError` lists every problem with its line
number and nothing is written.  Otherwise all rows are written in one transaction with bulk ``INSERT``/``UPDATE``
statements (``INSERT`` in batches of :data:`INSERT_BATCH` rows, on SQLite straight to the driver's ``executemany``;
lookups loaded once).  Rows match earlier imports by ``external_id``:
the same values leave the record unchanged, different ones update it.  A citizen erased since (GDPR) is never
brought back: its rows, and the interactions of an erased citizen, are skipped.

Columns (header names, any order; ``nif`` is accepted for ``citizen_nif``):

* citizens: ``external_id,name,nif,email,phone,address,consent_at,created_at`` (``external_id`` and ``name``
  required);
* interactions: ``external_id,citizen_external_id,citizen_nif,channel,direction,occurred_at,topic,service_code,
  department_code,staff_username,notes`` (``external_id``, ``channel`` and ``occurred_at`` required; the citizen by
  its ``citizen_external_id`` or ``citizen_nif``, both empty for an anonymous contact).

Dates are ISO 8601 (``2024-03-05``, ``2024-03-05T10:20``, with or without offset) or ``dd/mm/yyyy [hh:mm[:ss]]``;
times without an offset are Lisbon time.  Channels and directions also accept their Portuguese names.
"""

from __future__ import annotations

import csv
import io
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from concelho.suite.audit import record
from concelho.suite.models import Department, User, as_utc
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import nif as nif_rules
from .citizens import fold_name, normalize_phone
from .models import CHANNELS, DIRECTIONS, Citizen, Consent, Interaction
from .services import EMAIL_RE, PHONE_RE

KINDS = ("citizens", "interactions")
ENCODINGS = ("utf-8", "cp1252")
DELIMITERS = (",", ";")
CITIZEN_COLUMNS = ("external_id", "name", "nif", "email", "phone", "address", "consent_at", "created_at")
INTERACTION_COLUMNS = (
    "external_id", "citizen_external_id", "citizen_nif", "channel", "direction", "occurred_at", "topic",
    "service_code", "department_code", "staff_username", "notes",
)  # fmt: skip
REQUIRED = {"citizens": ("external_id", "name"), "interactions": ("external_id", "channel", "occurred_at")}
ALIASES = {"interactions": {"nif": "citizen_nif"}}
#: Portuguese names of channels and directions found in legacy exports.
CHANNEL_ALIASES = {
    "balcao": "counter", "presencial": "counter", "atendimento presencial": "counter", "telefone": "phone",
    "telefonico": "phone", "carta": "letter", "correio": "letter", "e-mail": "email", "correio eletronico": "email",
    "portal": "web", "site": "web", "internet": "web",
}  # fmt: skip
DIRECTION_ALIASES = {"entrada": "in", "recebido": "in", "inbound": "in", "saida": "out", "enviado": "out",
                     "outbound": "out"}  # fmt: skip
LENGTHS = {"external_id": 80, "name": 200, "email": 200, "phone": 40, "address": 500, "topic": 80, "service_code": 40}
#: Rows per look-up query (``IN (…)``) and per progress tick.
BATCH = 1000
#: Rows per bulk ``INSERT`` (one ``executemany``: fewer round trips to aiosqlite's thread).
INSERT_BATCH = 5000
LISBON = ZoneInfo("Europe/Lisbon")
#: Where a consent recorded by the import comes from (``crm_consent.channel``).
CONSENT_CHANNEL = "import"
CONSENT_NOTE = "Importado do sistema anterior"
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE_PUNCTUATION = re.compile(r"[.\-()/]")
_SPACES = re.compile(r"\s+")
_NIF_JUNK = re.compile(r"[\s.\-]")
_NIF_ASCII = re.compile(r"[0-9]{9}")
_NIF_WEIGHTS = tuple(range(9, 1, -1))

#: ``progress(stage, done, total)``: stage is ``"validating"`` or ``"importing"``.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line or None, "message": self.message}


class LegacyImportError(ValueError):
    """The file cannot be imported; ``errors`` holds every problem with its line (nothing was written)."""

    def __init__(self, errors: list[RowError], rows: int = 0) -> None:
        self.errors = errors
        self.rows = rows
        super().__init__(f"{len(errors)} error(s), first: {errors[0]}" if errors else "import failed")


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Rows of citizens erased since an earlier import (never brought back).
    skipped: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "skipped": self.skipped, "dry_run": self.dry_run,
        }  # fmt: skip


#: ``_plain`` of the few distinct channel/direction spellings a file holds (bounded: see :func:`_plain`).
_FOLDED: dict[str, str] = {}
_FOLDED_MAX = 10_000


def _plain(text: str) -> str:
    folded = _FOLDED.get(text)
    if folded is None:
        folded = fold_name(text).strip()
        if len(_FOLDED) < _FOLDED_MAX:
            _FOLDED[text] = folded
    return folded


def _alias(aliases: dict[str, str], raw: str) -> str:
    """``raw`` folded, then translated when it is a Portuguese name (one dict look-up for a known spelling)."""
    plain = _plain(raw)
    return aliases.get(plain, plain)


def _normalize_nif(value: str) -> str:
    """:func:`nif.normalize` with a precompiled pattern."""
    if not value:
        return ""
    cleaned = _NIF_JUNK.sub("", value).upper()
    return cleaned[2:] if cleaned.startswith("PT") else cleaned


def _nif_valid(nif: str) -> bool:
    """:func:`nif.is_valid` of a normalised NIF (the common case of nine ASCII digits computed here)."""
    if not _NIF_ASCII.fullmatch(nif):
        return nif_rules.is_valid(nif)
    if not nif.startswith(nif_rules._PREFIXES):
        return False
    total = sum(map(operator.mul, map(int, nif[:8]), _NIF_WEIGHTS))
    check = 11 - total % 11
    return int(nif[8]) == (0 if check >= 10 else check)


def _checked_phone(phone: str) -> str:
    """:func:`normalize_phone` of a stripped number that ``PHONE_RE`` accepted (only ``+``, ASCII digits and
    spaces)."""
    international = phone.startswith("+")
    digits = phone.replace(" ", "").replace("+", "")
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    if digits.startswith("351") and len(digits) == 12:
        return digits[3:]
    return f"+{digits}" if international and digits else digits


def parse_when(text: str) -> datetime:
    """An ISO 8601 or ``dd/mm/yyyy [hh:mm[:ss]]`` date as an aware UTC datetime (Lisbon time without an offset);
    raises ``ValueError``."""
    text = text.strip()
    if _ISO.match(text):  # the usual case first (a dd/mm/yyyy date never starts with four digits and a dash)
        value = datetime.fromisoformat(text)
    else:
        match = _DMY.fullmatch(text)
        if not match:
            raise ValueError(text)
        day, month, year, hour, minute, second = match.groups()
        value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=LISBON)
    if value.year < 1900:
        raise ValueError(text)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _read_text(source: str | Path | IO[Any], encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise LegacyImportError([RowError(0, f"unknown encoding {encoding!r} (use {' or '.join(ENCODINGS)})")])
    if isinstance(source, str | Path):
        try:
            raw: bytes | str = Path(source).read_bytes()
        except FileNotFoundError:
            raise LegacyImportError([RowError(0, f"file not found: {source}")]) from None
        except IsADirectoryError:
            raise LegacyImportError([RowError(0, f"{source} is a folder, not a CSV file")]) from None
        except OSError as exc:
            raise LegacyImportError([RowError(0, f"cannot read {source}: {exc.strerror or exc}")]) from None
    else:
        raw = source.read()
    if isinstance(raw, str):
        return raw.lstrip("\ufeff")
    try:
        return raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = " (an Excel export? try --encoding cp1252)" if encoding == "utf-8" else ""
        raise LegacyImportError([RowError(line, f"not {encoding} text{hint}")]) from None


def read_rows(
    source: str | Path | IO[Any], kind: str, *, delimiter: str | None = None, encoding: str = "utf-8"
) -> list[tuple[int, dict[str, str]]]:
    """The file's rows as (line number, values by column); header or shape problems raise
    :class:`LegacyImportError` with every problem found."""
    if kind not in KINDS:
        raise LegacyImportError([RowError(0, f"unknown kind {kind!r} (use {' or '.join(KINDS)})")])
    if delimiter is not None and delimiter not in DELIMITERS:
        raise LegacyImportError([RowError(0, f"unknown delimiter {delimiter!r} (use , or ;)")])
    text = _read_text(source, encoding)
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise LegacyImportError([RowError(1, "the file is empty (the first line must name the columns)")])
    if delimiter is None:
        delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    known = CITIZEN_COLUMNS if kind == "citizens" else INTERACTION_COLUMNS
    aliases = ALIASES.get(kind, {})
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [aliases.get(h.strip().lower(), h.strip().lower()) for h in next(reader)]
    except csv.Error as exc:
        raise LegacyImportError([RowError(1, str(exc))]) from None
    problems = []
    missing = [c for c in REQUIRED[kind] if c not in header]
    if missing:
        problems.append(RowError(1, f"missing column(s) {', '.join(missing)}"))
    unknown = [h for h in header if h not in known]
    if unknown:
        problems.append(RowError(1, f"unknown column(s) {', '.join(unknown)} (known: {', '.join(known)})"))
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(RowError(1, f"repeated column(s) {', '.join(repeated)}"))
    if kind == "interactions" and "citizen_external_id" not in header and "citizen_nif" not in header:
        problems.append(RowError(1, "missing column citizen_external_id or citizen_nif"))
    if problems:
        raise LegacyImportError(problems)
    rows: list[tuple[int, dict[str, str]]] = []
    width = len(header)
    line = reader.line_num + 1  # where the next record starts
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not "".join(cells).strip():  # only empty or blank cells
                continue
            if len(cells) == width:
                rows.append((start, dict(zip(header, map(str.strip, cells), strict=True))))
                continue
            if len(cells) > width and "".join(cells[width:]).strip():
                problems.append(RowError(start, f"{len(cells)} fields, the header has {len(header)}"))
                continue
            rows.append((start, {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}))
    except csv.Error as exc:
        problems.append(RowError(line, str(exc)))
    if problems:
        raise LegacyImportError(problems, len(rows))
    return rows


# --------------------------------------------------------------------------------------------
# Validation of one row
# --------------------------------------------------------------------------------------------
class _Row:
    """Collects one row's problems while its values are checked."""

    def __init__(self, line: int, values: dict[str, str], errors: list[RowError]) -> None:
        self.line, self.values, self.errors = line, values, errors

    def error(self, message: str) -> None:
        self.errors.append(RowError(self.line, message))

    def text(self, name: str, required: bool = False) -> str:
        value = self.values.get(name, "")
        if required and not value:
            self.error(f"{name} is empty")
        if name in LENGTHS and len(value) > LENGTHS[name]:
            self.error(f"{name} has more than {LENGTHS[name]} characters")
        return value

    def when(self, name: str, now: datetime, required: bool = False) -> datetime | None:
        raw = self.text(name, required)
        if not raw:
            return None
        try:
            value = parse_when(raw)
        except ValueError:
            self.error(f"{name} {raw!r} is not a date (use 2024-03-05, 2024-03-05T10:20 or 05/03/2024)")
            return None
        if value > now + timedelta(days=1):
            self.error(f"{name} {raw!r} is in the future")
        return value


def _citizen_values(row: _Row, now: datetime) -> dict[str, Any]:
    nif = nif_rules.normalize(row.text("nif"))
    if nif and not nif_rules.is_valid(nif):
        row.error(f"nif {row.values['nif']!r} is not a valid NIF (check digit)")
    email = row.text("email")
    if email and not EMAIL_RE.fullmatch(email):
        row.error(f"email {email!r} is not an e-mail address")
    phone = _SPACES.sub(" ", _PHONE_PUNCTUATION.sub(" ", row.text("phone"))).strip()
    if phone and not PHONE_RE.fullmatch(phone):
        row.error(f"phone {row.values['phone']!r} is not a phone number (9 or more digits)")
    phone = normalize_phone(phone)
    name = " ".join(row.text("name", required=True).split())
    return {
        "external_id": row.text("external_id", required=True),
        "name": name,
        "name_folded": fold_name(name),
        "nif": nif,
        "email": email,
        "phone": phone,
        "address": row.text("address"),
        "consent_at": row.when("consent_at", now),
        "created_at": row.when("created_at", now),
    }


#: Dates already parsed (bounded): a file often repeats a day (``consent_at``, dates without a time).
_WHENS: dict[str, datetime] = {}
_WHENS_MAX = 4096


def _when_ok(raw: str, limit: datetime) -> datetime | None:
    """A date cell that :meth:`_Row.when` accepts without an error, else None (the slow path reports it)."""
    value = _WHENS.get(raw)
    if value is None:
        try:
            value = parse_when(raw)
        except ValueError:
            return None
        if len(_WHENS) < _WHENS_MAX:
            _WHENS[raw] = value
    return None if value > limit else value


def _citizen_fast(raw: dict[str, str], limit: datetime) -> dict[str, Any] | None:
    """:func:`_citizen_values` of a row without any problem, or None when the row has one (or may have)."""
    get = raw.get
    external_id, name, email, phone, address = get("external_id", ""), get("name", ""), get("email", ""), \
        get("phone", ""), get("address", "")  # fmt: skip
    if not external_id or len(external_id) > 80 or not name or len(name) > 200 or len(email) > 200 \
            or len(phone) > 40 or len(address) > 500:  # fmt: skip
        return None
    nif = _normalize_nif(get("nif", ""))
    if nif and not _nif_valid(nif):
        return None
    if email and not EMAIL_RE.fullmatch(email):
        return None
    if phone:
        phone = _SPACES.sub(" ", _PHONE_PUNCTUATION.sub(" ", phone)).strip()
        if phone and not PHONE_RE.fullmatch(phone):
            return None
        phone = _checked_phone(phone)
    dates = []
    for column in ("consent_at", "created_at"):
        text = get(column, "")
        value = _when_ok(text, limit) if text else None
        if text and value is None:
            return None
        dates.append(value)
    name = " ".join(name.split())
    return {
        "external_id": external_id, "name": name, "name_folded": fold_name(name), "nif": nif, "email": email,
        "phone": phone, "address": address, "consent_at": dates[0], "created_at": dates[1],
    }  # fmt: skip


def _interaction_fast(
    raw: dict[str, str], limit: datetime, departments: dict[str, int], staff: dict[str, int]
) -> dict[str, Any] | None:
    """:func:`_interaction_values` of a row without any problem, or None when the row has one (or may have)."""
    get = raw.get
    raw_channel, external_id, occurred = get("channel", ""), get("external_id", ""), get("occurred_at", "")
    topic, service_code = get("topic", ""), get("service_code", "")
    if not raw_channel or not external_id or len(external_id) > 80 or not occurred or len(topic) > 80 \
            or len(service_code) > 40:  # fmt: skip
        return None
    channel = _alias(CHANNEL_ALIASES, raw_channel)
    if channel not in CHANNELS:
        return None
    direction = _alias(DIRECTION_ALIASES, get("direction", "")) or "in"
    if direction not in DIRECTIONS:
        return None
    code = get("department_code", "")
    department_id = None
    if code:
        department_id = departments.get(code)
        if department_id is None:
            return None
    username = get("staff_username", "")
    staff_id = None
    if username:
        staff_id = staff.get(username.lower())
        if staff_id is None:
            return None
    ref_nif = _normalize_nif(get("citizen_nif", ""))
    if ref_nif and not _nif_valid(ref_nif):
        return None
    occurred_at = _when_ok(occurred, limit)
    if occurred_at is None:
        return None
    return {
        "external_id": external_id, "citizen_ref": get("citizen_external_id", ""), "citizen_nif": ref_nif,
        "channel": channel, "direction": direction, "occurred_at": occurred_at, "topic": topic,
        "service_code": service_code, "department_id": department_id, "staff_id": staff_id,
        "notes": get("notes", ""),
    }  # fmt: skip


def _interaction_values(row: _Row, now: datetime, departments: dict[str, int], staff: dict[str, int]) -> dict[str, Any]:
    raw_channel = row.text("channel", required=True)
    channel = _alias(CHANNEL_ALIASES, raw_channel)
    if raw_channel and channel not in CHANNELS:
        row.error(f"channel {raw_channel!r} is not one of {', '.join(CHANNELS)}")
    raw_direction = row.text("direction")
    direction = _alias(DIRECTION_ALIASES, raw_direction) or "in"
    if direction not in DIRECTIONS:
        row.error(f"direction {raw_direction!r} is not 'in' or 'out'")
    code = row.text("department_code")
    if code and code not in departments:
        row.error(f"department_code {code!r} does not exist (see suite departments list)")
    username = row.text("staff_username")
    if username and username.lower() not in staff:
        row.error(f"staff_username {username!r} is not a user")
    ref_nif: str | None = nif_rules.normalize(row.text("citizen_nif"))
    if ref_nif and not nif_rules.is_valid(ref_nif):
        row.error(f"citizen_nif {row.values['citizen_nif']!r} is not a valid NIF (check digit)")
        ref_nif = None  # reported: not looked up
    return {
        "external_id": row.text("external_id", required=True),
        "citizen_ref": row.text("citizen_external_id"),
        "citizen_nif": ref_nif,
        "channel": channel,
        "direction": direction,
        "occurred_at": row.when("occurred_at", now, required=True),
        "topic": row.text("topic"),
        "service_code": row.text("service_code"),
        "department_id": departments.get(code) if code else None,
        "staff_id": staff.get(username.lower()) if username else None,
        "notes": row.values.get("notes", ""),
    }


# --------------------------------------------------------------------------------------------
# Look-ups
# --------------------------------------------------------------------------------------------
def _chunks(items: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _rows_where_in(session: AsyncSession, columns: list[Any], key: Any, values: Iterable[Any]) -> list[Any]:
    wanted = sorted(set(values))
    found: list[Any] = []
    for chunk in _chunks(wanted):
        found.extend((await session.execute(select(*columns).where(key.in_(chunk)))).all())
    return found


async def _by_external_id(session: AsyncSession, table: Any, columns: list[Any], wanted: Iterable[str]) -> list[Any]:
    """The rows of ``table`` with one of the ``wanted`` external ids; one query (on the unique index) when the
    table has none at all, as on a first import."""
    probe = select(table.c.id).where(table.c.external_id.is_not(None)).limit(1)
    if (await session.execute(probe)).first() is None:
        return []
    return await _rows_where_in(session, columns, table.c.external_id, wanted)


@dataclass
class _CitizenRef:
    id: int
    merged_into_id: int | None
    erased: bool


async def _citizen_refs(session: AsyncSession, key: Any, values: Iterable[Any]) -> list[tuple[Any, _CitizenRef]]:
    cols = [key, Citizen.id, Citizen.merged_into_id, Citizen.erased_at]
    return [(r[0], _CitizenRef(r[1], r[2], r[3] is not None)) for r in await _rows_where_in(session, cols, key, values)]


async def _survivors(session: AsyncSession, refs: list[_CitizenRef]) -> dict[int, _CitizenRef]:
    """Each citizen id → the record it was merged into at the end of the chain (itself when not merged)."""
    known = {r.id: r for r in refs}
    while True:
        missing = {r.merged_into_id for r in known.values() if r.merged_into_id and r.merged_into_id not in known}
        if not missing:
            break
        for ref in await _citizen_refs(session, Citizen.id, missing):
            known[ref[1].id] = ref[1]
    result = {}
    for ref in refs:
        current, seen = ref, {ref.id}
        while current.merged_into_id and current.merged_into_id in known and current.merged_into_id not in seen:
            seen.add(current.merged_into_id)
            current = known[current.merged_into_id]
        result[ref.id] = current
    return result


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------
#: The file column each stored value comes from (when not the same name).
_SOURCE = {"name_folded": "name", "department_id": "department_code", "staff_id": "staff_username"}


def _provided(item: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    """The values of columns the file has: an existing record keeps the others (and its dates when the cell is
    empty: a consent is never withdrawn by omission)."""
    return {
        k: v
        for k, v in item.items()
        if _SOURCE.get(k, k) in raw and not (v is None and k in ("created_at", "consent_at"))
    }


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) or isinstance(new, datetime):
        return old is not None and new is not None and as_utc(old) == as_utc(new)
    return (old or "") == (new or "") if isinstance(new, str) else old == new


def _stamp(value: datetime) -> str:
    # isoformat() always writes a four-digit year: the first 26 characters are the fields, without any offset.
    return value.isoformat(" ", "microseconds")[:26]


_STAMP_SAMPLES = (datetime(2024, 3, 5, 10, 20, 0, 0, UTC), datetime(987, 12, 31, 23, 59, 59, 123456),
                  datetime(2024, 3, 5, 10, 20, 1, 5, UTC))  # fmt: skip


def _fast_processor(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process``, or for SQLite's ``DATETIME`` processor the same text ~5× faster (checked on samples first):
    the datetime's fields as given, ``YYYY-MM-DD HH:MM:SS.ffffff``, no offset."""
    try:
        same = process is not None and process(None) is None and all(process(v) == _stamp(v) for v in _STAMP_SAMPLES)
    except Exception:  # not a datetime processor
        same = False
    if not same or process is None:
        return process
    slow = process
    last: list[Any] = [None, None]  # the previous value and its text: ``now`` is in every row

    def fast(value: Any) -> Any:
        if value is last[0]:
            return last[1]
        text = _stamp(value) if value.__class__ is datetime else slow(value)
        last[0], last[1] = value, text
        return text

    return fast


async def _bulk_insert(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], tick: Callable[[int], None]
) -> None:
    """``INSERT`` of ``rows`` (dicts with the same keys) in batches of :data:`INSERT_BATCH`, in the session's
    transaction.  On SQLite the statement is compiled once and its parameters made here (the columns' own bind
    processors and defaults), then sent with the driver's ``executemany``: SQLAlchemy would otherwise build every
    row's parameters one by one."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    defaults: dict[str, Any] = {}
    for column in compiled.insert_prefetch:  # Python-side defaults of the columns not given
        default = column.default
        if default is not None and (default.is_scalar or default.is_callable):
            defaults[column.key] = default.arg if default.is_scalar else default.arg(None)
    names = list(compiled.positiontup or ())
    if (
        dialect.name != "sqlite"
        or set(names) != set(keys) | set(defaults)
        or len(compiled.insert_prefetch) != len(defaults)
        or any(len(row) != len(keys) or row.keys() != rows[0].keys() for row in rows)
    ):  # SQLAlchemy's own executemany (PostgreSQL: asyncpg's, batched by SQLAlchemy)
        for chunk in _chunks(rows, INSERT_BATCH):
            await session.execute(insert(table), chunk)
            tick(len(chunk))
        return
    processors = [_fast_processor(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    sql = compiled.string

    def parameters(chunk: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        columns = []
        for name, process in zip(names, processors, strict=True):
            if name in defaults:
                value = defaults[name]
                column: list[Any] = [process(value) if process else value] * len(chunk)
            elif process is None:
                column = [row[name] for row in chunk]
            else:
                column = [process(row[name]) for row in chunk]
            columns.append(column)
        return list(zip(*columns, strict=True))

    for chunk in _chunks(rows, INSERT_BATCH):
        await connection.exec_driver_sql(sql, parameters(chunk))
        tick(len(chunk))


async def _bulk_update(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], tick: Callable[[int], None]
) -> None:
    """Rows are ``{"row_id": id, column: value…}`` (grouped by their set of columns)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(k for k in row if k != "row_id")), []).append(row)
    for columns, group in by_columns.items():
        # Bound parameters may not share the columns' names in an UPDATE's SET clause.
        stmt = update(table).where(table.c.id == bindparam("row_id")).values({c: bindparam(f"v_{c}") for c in columns})
        params = [{"row_id": row["row_id"], **{f"v_{c}": row[c] for c in columns}} for row in group]
        for chunk in _chunks(params):
            await session.execute(stmt, chunk)
            tick(len(chunk))


async def _import_citizens(
    session: AsyncSession, rows: list[tuple[int, dict[str, str]]], report: ImportReport, now: datetime,
    progress: Progress,
) -> Callable[[], Any] | None:  # fmt: skip
    errors: list[RowError] = []
    values: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    limit = now + timedelta(days=1)
    for index, (line, raw) in enumerate(rows, 1):
        row = _Row(line, raw, errors)
        item = _citizen_fast(raw, limit) or _citizen_values(row, now)
        ext = item["external_id"]
        if ext in seen:
            row.error(f"external_id {ext!r} repeats line {seen[ext]}")
        seen.setdefault(ext, line)
        values.append(item)
        if index % BATCH == 0:
            progress("validating", index, len(rows))
    if errors:
        raise LegacyImportError(errors, len(rows))
    t = Citizen.__table__
    columns = [t.c.external_id, t.c.id, t.c.erased_at, *(t.c[k] for k in CITIZEN_COLUMNS if k != "external_id")]
    existing = {r.external_id: r for r in await _by_external_id(session, t, columns, seen)}
    new, changed, consents_for = [], [], []
    for item, (_line, raw) in zip(values, rows, strict=True):
        old = existing.get(item["external_id"])
        if old is None:
            new.append({**item, "created_at": item["created_at"] or now, "updated_at": now})
            if item["consent_at"]:
                consents_for.append(item)
            continue
        if old.erased_at is not None:
            report.skipped += 1
            continue
        fields = {k: v for k, v in _provided(item, raw).items() if k != "external_id"}
        diff = {k: v for k, v in fields.items() if k != "name_folded" and not _same(getattr(old, k), v)}
        if not diff:
            report.unchanged += 1
            continue
        changed.append({"row_id": old.id, **fields, "updated_at": now})
        if "consent_at" in diff:
            consents_for.append(item)
    report.created, report.updated = len(new), len(changed)

    async def write() -> None:
        total = len(new) + len(changed)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress("importing", done, total)

        await _bulk_insert(session, t, new, tick)
        await _bulk_update(session, t, changed, tick)
        if consents_for:
            ids = dict(await _rows_where_in(session, [t.c.external_id, t.c.id], t.c.external_id,
                                            [c["external_id"] for c in consents_for]))  # fmt: skip
            consent_rows = [
                {"citizen_id": ids[c["external_id"]], "purpose": "data_processing", "granted": True,
                 "channel": CONSENT_CHANNEL, "note": CONSENT_NOTE, "created_at": c["consent_at"]}
                for c in consents_for
            ]  # fmt: skip
            await _bulk_insert(session, Consent.__table__, consent_rows, lambda n: None)

    return write


async def _import_interactions(
    session: AsyncSession, rows: list[tuple[int, dict[str, str]]], report: ImportReport, now: datetime,
    progress: Progress,
) -> Callable[[], Any] | None:  # fmt: skip
    departments = dict((await session.execute(select(Department.code, Department.id))).all())
    staff = {u.lower(): i for u, i in (await session.execute(select(User.username, User.id))).all()}
    errors: list[RowError] = []
    values: list[tuple[_Row, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    limit = now + timedelta(days=1)
    for index, (line, raw) in enumerate(rows, 1):
        row = _Row(line, raw, errors)
        item = _interaction_fast(raw, limit, departments, staff) or _interaction_values(row, now, departments, staff)
        ext = item["external_id"]
        if ext in seen:
            row.error(f"external_id {ext!r} repeats line {seen[ext]}")
        seen.setdefault(ext, line)
        values.append((row, item))
        if index % BATCH == 0:
            progress("validating", index, len(rows))
    t = Interaction.__table__
    columns = [t.c.external_id, t.c.id, t.c.citizen_id, *(t.c[k] for k in _INTERACTION_FIELDS)]
    existing = {r.external_id: r for r in await _by_external_id(session, t, columns, seen)}
    by_ext = dict(await _citizen_refs(session, Citizen.external_id, {i["citizen_ref"] for _, i in values} - {""}))
    by_nif: dict[str, list[_CitizenRef]] = {}
    for key, ref in await _citizen_refs(session, Citizen.nif, {i["citizen_nif"] for _, i in values} - {"", None}):
        by_nif.setdefault(key, []).append(ref)
    linked_ids = {r.citizen_id for r in existing.values() if r.citizen_id}
    linked = {ref.id: ref for _, ref in await _citizen_refs(session, Citizen.id, linked_ids)}
    survivors = await _survivors(session, [*by_ext.values(), *(r for refs in by_nif.values() for r in refs)])
    new, changed = [], []
    for row, item in values:
        old = existing.get(item["external_id"])
        if old is not None and old.citizen_id in linked and linked[old.citizen_id].erased:
            report.skipped += 1
            continue
        target = _resolve_citizen(row, item, by_ext, by_nif, survivors)
        if target is False:
            continue
        if target is not None and target.erased:
            report.skipped += 1
            continue
        citizen_id = target.id if target is not None else None
        if old is None:
            new.append({
                "channel": item["channel"], "direction": item["direction"], "occurred_at": item["occurred_at"],
                "topic": item["topic"], "service_code": item["service_code"], "department_id": item["department_id"],
                "staff_id": item["staff_id"], "notes": item["notes"], "citizen_id": citizen_id,
                "external_id": item["external_id"], "case_id": None, "created_at": now,
            })  # fmt: skip
            continue
        fields = {k: item[k] for k in _INTERACTION_FIELDS}
        fields["citizen_id"] = citizen_id
        fields = {k: v for k, v in fields.items() if k == "citizen_id" or _SOURCE.get(k, k) in row.values}
        if all(_same(getattr(old, k), v) for k, v in fields.items()):
            report.unchanged += 1
        else:
            changed.append({"row_id": old.id, **fields})
    if errors:
        raise LegacyImportError(errors, len(rows))
    report.created, report.updated = len(new), len(changed)

    async def write() -> None:
        total = len(new) + len(changed)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress("importing", done, total)

        await _bulk_insert(session, t, new, tick)
        await _bulk_update(session, t, changed, tick)

    return write


_INTERACTION_FIELDS = ("channel", "direction", "occurred_at", "topic", "service_code", "department_id", "staff_id",
                       "notes")  # fmt: skip


def _resolve_citizen(
    row: _Row, item: dict[str, Any], by_ext: dict[str, _CitizenRef], by_nif: dict[str, list[_CitizenRef]],
    survivors: dict[int, _CitizenRef],
) -> _CitizenRef | bool | None:  # fmt: skip
    """The citizen a row refers to (the record it was merged into), None when anonymous, False on an error."""
    ext, nif = item["citizen_ref"], item["citizen_nif"]
    if nif is None:
        return False
    if ext:
        if ext not in by_ext:
            row.error(f"citizen_external_id {ext!r} matches no citizen (import the citizens first)")
            return False
        return survivors[by_ext[ext].id]
    if nif:
        refs = by_nif.get(nif)
        if not refs:
            row.error(f"citizen_nif {nif} matches no citizen (import the citizens first)")
            return False
        # Several records may share a NIF before staff merge them: take the oldest surviving one.
        return min((survivors[r.id] for r in refs), key=lambda r: (r.erased, r.id))
    return None


async def import_csv(
    session: AsyncSession,
    kind: str,
    source: str | Path | IO[Any],
    *,
    dry_run: bool = False,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    progress: Progress | None = None,
    actor: str = "cli",
) -> ImportReport:
    """Validate every row of ``source`` (a path or a binary/text stream), then write all rows in one transaction
    (committed here), or nothing with ``dry_run``.  Raises :class:`LegacyImportError` listing every problem."""
    rows = read_rows(source, kind, delimiter=delimiter, encoding=encoding)
    report = ImportReport(kind=kind, rows=len(rows), dry_run=dry_run)
    tick = progress or (lambda stage, done, total: None)
    now = datetime.now(UTC)
    planner = _import_citizens if kind == "citizens" else _import_interactions
    write = await planner(session, rows, report, now, tick)
    tick("validating", len(rows), len(rows))
    if dry_run or write is None:
        await session.rollback()
        return report
    try:
        await write()
        name = Path(source).name if isinstance(source, str | Path) else getattr(source, "name", "")
        await record(session, "crm.legacy_import", actor=actor, target=f"crm.{kind}", source=str(name)[:200],
                     **{k: v for k, v in report.as_dict().items() if k != "kind"})  # fmt: skip
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return report
