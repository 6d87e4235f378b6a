"""Checking one row of a legacy CSV file: its values as stored, or every problem with its line.

Each kind has a fast path for the usual row without any problem and a slow path that reports every problem.
"""

from __future__ import annotations

import operator
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import nif as nif_rules
from .identity import fold_name, normalize_phone
from .legacy_rows import RowError
from .models import CHANNELS, DIRECTIONS
from .services import EMAIL_RE, PHONE_RE

#: Portuguese names of channels and directions found in legacy exports.
CHANNEL_ALIASES = {
    "balcao": "counter", "presencial": "counter", "atendimento presencial": "counter", "telefone": "phone",
    "telefonico": "phone", "carta": "letter", "correio": "letter", "e-mail": "email", "correio eletronico": "email",
    "portal": "web", "site": "web", "internet": "web",
}  # fmt: skip
DIRECTION_ALIASES = {"entrada": "in", "recebido": "in", "inbound": "in", "saida": "out", "enviado": "out",
                     "outbound": "out"}  # fmt: skip
LENGTHS = {"external_id": 80, "name": 200, "email": 200, "phone": 40, "address": 500, "topic": 80, "service_code": 40}
LISBON = ZoneInfo("Europe/Lisbon")
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE_PUNCTUATION = re.compile(r"[.\-()/]")
_SPACES = re.compile(r"\s+")
_NIF_JUNK = re.compile(r"[\s.\-]")
_NIF_ASCII = re.compile(r"[0-9]{9}")
_NIF_WEIGHTS = tuple(range(9, 1, -1))


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


class RowCheck:
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


def citizen_values(row: RowCheck, now: datetime) -> dict[str, Any]:
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
    """A date cell that :meth:`RowCheck.when` accepts without an error, else None (the slow path reports it)."""
    value = _WHENS.get(raw)
    if value is None:
        try:
            value = parse_when(raw)
        except ValueError:
            return None
        if len(_WHENS) < _WHENS_MAX:
            _WHENS[raw] = value
    return None if value > limit else value


def citizen_fast(raw: dict[str, str], limit: datetime) -> dict[str, Any] | None:
    """:func:`citizen_values` of a row without any problem, or None when the row has one (or may have)."""
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


def interaction_fast(
    raw: dict[str, str], limit: datetime, departments: dict[str, int], staff: dict[str, int]
) -> dict[str, Any] | None:
    """:func:`interaction_values` of a row without any problem, or None when the row has one (or may have)."""
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


def interaction_values(
    row: RowCheck, now: datetime, departments: dict[str, int], staff: dict[str, int]
) -> dict[str, Any]:
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
