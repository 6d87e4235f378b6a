"""Portuguese tax number (NIF/NIPC) validation: nine digits, a valid first digit(s) and the mod-11 check digit."""

from __future__ import annotations

import re

#: Leading digits allowed for NIF (people: 1-3, 45 non-residents) and NIPC (companies and other bodies).
_PREFIXES = ("1", "2", "3", "45", "5", "6", "70", "71", "72", "74", "75", "77", "78", "79", "8", "90", "91", "98", "99")


def normalize(value: str) -> str:
    """The digits of ``value`` without spaces, dots or a ``PT`` prefix."""
    cleaned = re.sub(r"[\s.\-]", "", value or "").upper()
    return cleaned[2:] if cleaned.startswith("PT") else cleaned


def is_valid(value: str) -> bool:
    nif = normalize(value)
    if not re.fullmatch(r"\d{9}", nif) or not nif.startswith(_PREFIXES):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(nif[:8], range(9, 1, -1), strict=True))
    check = 11 - total % 11
    return int(nif[8]) == (0 if check >= 10 else check)
