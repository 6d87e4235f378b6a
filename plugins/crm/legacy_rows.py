"""Reading a legacy CRM's CSV file into rows (header and shape checked), and the errors of an import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
