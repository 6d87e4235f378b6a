"""A small, careful LDIF reader (RFC 2849) for Active Directory exports (``ldifde``, ``ldapsearch -LLL``).

Only what an export holds is read: entries (``changetype: add`` is accepted, other change records
are refused), ``attr: value``, ``attr:: base64`` (UTF-8 text; undecodable values are kept apart as
binary), folded lines (a line that starts with one space continues the previous one), comments
(``#`` lines, folded or not), an optional ``version: 1`` and blank lines between entries.  Values
read from URLs (``attr:< file://…``) are refused: an import never opens files named by its input.

Every entry knows the line where it starts (its ``dn:`` line) so import errors can point at it, and
every problem is reported with its line number, all at once.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

ATTRIBUTE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$|^[0-9]+(\.[0-9]+)*(;[A-Za-z0-9-]+)*$")


class LdifError(ValueError):
    """The text is not LDIF this reader accepts; ``errors`` are line-numbered messages."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors[:5]))


@dataclass
class LdifEntry:
    """One entry: its DN, attributes (names lowercased, values in file order) and its first line."""

    line: int
    dn: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    #: Base64 values that are not UTF-8 text (photos, GUIDs, SIDs), by lowercased attribute name.
    binary: dict[str, list[bytes]] = field(default_factory=dict)

    def first(self, *names: str) -> str:
        """The first non-blank value of the first of ``names`` the entry has (stripped), else ``""``."""
        for name in names:
            for value in self.attributes.get(name.lower(), []):
                if value.strip():
                    return value.strip()
        return ""

    def values(self, name: str) -> list[str]:
        return self.attributes.get(name.lower(), [])

    @property
    def object_classes(self) -> set[str]:
        return {v.strip().lower() for v in self.values("objectclass")}


def _physical_lines(data: str | bytes) -> list[str] | list[bytes]:
    """The lines of ``data``: text, UTF-16 with a byte order mark (``ldifde -u``), or UTF-8 bytes.

    UTF-8 is decoded only after unfolding, so a fold in the middle of a character does no harm.
    """
    if isinstance(data, bytes):
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            try:
                return data.decode("utf-16").removeprefix("\ufeff").split("\n")
            except UnicodeDecodeError:
                raise LdifError(["not UTF-16 text"]) from None
        return data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    return data.removeprefix("\ufeff").split("\n")


def _logical_lines(physical: list[str] | list[bytes]) -> tuple[list[tuple[int, str]], list[str]]:
    """Unfold into (first physical line number, logical line); blank lines are kept as ``""``.

    Comments are dropped (with their folded continuations); bytes are decoded as UTF-8 once unfolded.
    """
    folded: list[tuple[int, Any]] = []
    errors: list[str] = []
    in_comment = False
    for number, raw in enumerate(physical, 1):
        text = isinstance(raw, str)
        line = raw[:-1] if raw.endswith("\r" if text else b"\r") else raw
        if line.startswith(" " if text else b" "):
            if in_comment:
                continue
            if not folded or not folded[-1][1]:
                errors.append(f"line {number}: a continuation line (starting with a space) follows no attribute")
                continue
            first, previous = folded[-1]
            folded[-1] = (first, previous + line[1:])
            continue
        in_comment = line.startswith("#" if text else b"#")
        if not in_comment:
            folded.append((number, line))
    out: list[tuple[int, str]] = []
    for number, line in folded:
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(f"line {number}: not UTF-8 text (export as UTF-8, or base64 with '::')")
                line = line.decode("utf-8", errors="replace")
        out.append((number, line))
    return out, errors


def _value(number: int, name: str, rest: str, errors: list[str]) -> str | bytes | None:
    """The value after ``name:`` — text, decoded base64 (text or bytes), or None on error."""
    if rest.startswith(":"):
        encoded = rest[1:].strip()
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            errors.append(f"line {number}: the base64 value of {name!r} is not valid base64")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    if rest.startswith("<"):
        errors.append(f"line {number}: values read from a URL ({name}:<) are not supported; export the value itself")
        return None
    return rest.lstrip(" ")


def parse_ldif(data: str | bytes) -> list[LdifEntry]:
    """Every entry of ``data``; raises :class:`LdifError` listing every problem with its line number."""
    lines, errors = _logical_lines(_physical_lines(data))
    entries: list[LdifEntry] = []
    current: LdifEntry | None = None
    skipping = False  # inside an entry whose dn line was bad: its other lines add no errors
    first_record = True
    for number, line in lines:
        if line == "":
            current, skipping = None, False
            continue
        name, sep, rest = line.partition(":")
        if not sep:
            if not skipping:
                errors.append(f"line {number}: expected 'attribute: value', got {line[:40]!r}")
            continue
        name = name.strip()
        key = name.lower()
        if current is None and not skipping:
            if first_record and key == "version":
                first_record = False
                if rest.strip() != "1":
                    errors.append(f"line {number}: unsupported LDIF version {rest.strip()!r} (only 1)")
                continue
            first_record = False
            if key != "dn":
                errors.append(f"line {number}: an entry must start with 'dn:', got {name!r}")
                skipping = True
                continue
            dn = _value(number, "dn", rest, errors)
            if dn is None:
                skipping = True
                continue
            if isinstance(dn, bytes):
                errors.append(f"line {number}: the dn is not UTF-8 text")
                skipping = True
                continue
            current = LdifEntry(line=number, dn=dn.strip())
            entries.append(current)
            continue
        if skipping or current is None:
            continue
        if not ATTRIBUTE_RE.match(name):
            errors.append(f"line {number}: {name!r} is not an attribute name")
            continue
        if key == "changetype":
            kind = rest.strip().lower()
            if kind != "add":
                errors.append(
                    f"line {number}: change records ({kind or 'empty'}) cannot be imported; export entries instead"
                )
            continue
        if key == "control":
            errors.append(f"line {number}: change records (control) cannot be imported; export entries instead")
            continue
        value = _value(number, name, rest, errors)
        if value is None:
            continue
        if isinstance(value, bytes):
            current.binary.setdefault(key, []).append(value)
        else:
            current.attributes.setdefault(key, []).append(value)
    if errors:
        raise LdifError(sorted(errors, key=lambda e: int(e.split(":", 1)[0].split()[1])))
    return entries


# ------------------------------------------------------------------------------------------------
# Distinguished names
# ------------------------------------------------------------------------------------------------
def split_dn(dn: str) -> list[tuple[str, str]]:
    """The RDNs of ``dn`` as (attribute lowercased, unescaped value), most specific first.

    Handles ``\\,`` and ``\\2C`` escapes and quoted values; a multi-valued RDN (``a=1+b=2``) keeps
    its first pair.  Raises ``ValueError`` on a malformed DN.
    """
    rdns: list[tuple[str, str]] = []
    if not dn.strip():
        return rdns
    i, n = 0, len(dn)
    while i < n:
        # attribute type
        j = dn.find("=", i)
        if j < 0:
            raise ValueError(f"malformed DN {dn!r}")
        attr = dn[i:j].strip().lower()
        if not attr:
            raise ValueError(f"malformed DN {dn!r}")
        i = j + 1
        while i < n and dn[i] == " ":
            i += 1
        value_bytes = bytearray()
        pending = ""  # unescaped characters since the last hex escape
        quoted = i < n and dn[i] == '"'
        if quoted:
            i += 1
        multi = False
        while i < n:
            ch = dn[i]
            if quoted and ch == '"':
                quoted = False
                i += 1
                continue
            if ch == "\\" and i + 1 < n:
                pair = dn[i + 1 : i + 3]
                if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                    value_bytes += pending.encode()
                    pending = ""
                    value_bytes.append(int(pair, 16))
                    i += 3
                else:
                    pending += dn[i + 1]
                    i += 2
                continue
            if not quoted and ch in ",;+":
                multi = ch == "+"
                break
            pending += ch
            i += 1
        value_bytes += pending.encode()
        try:
            value = value_bytes.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"malformed DN {dn!r}") from None
        rdns.append((attr, value))
        if multi:  # skip the other pairs of a multi-valued RDN
            while i < n and dn[i] != ",":
                i += 2 if dn[i] == "\\" else 1
        i += 1  # past the separator
    return rdns


def dn_key(rdns: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A DN in a form fit for comparisons (Active Directory compares DNs without case)."""
    return tuple((attr, value.casefold()) for attr, value in rdns)
