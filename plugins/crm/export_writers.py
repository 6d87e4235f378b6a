"""Writers of a CRM export: CSV (lines made by the database, written whole per batch when nothing needs
quoting), JSON Lines and XLSX (openpyxl write-only)."""

from __future__ import annotations

import codecs
import csv
import gc
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .export_plans import FORMATS, FORMULA_START, RS, SEP, XLSX_MAX_CELL, XLSX_MAX_ROWS, ExportError, Plan

if TYPE_CHECKING:
    from .exports import ExportRows

# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
Tick = Callable[[int], None]


def neutralise(value: str) -> str:
    """``'=1+1`` for ``=1+1``: a spreadsheet shows the text instead of evaluating it."""
    return "'" + value if value and value[0] in FORMULA_START else value


def csv_ready(batch: list[list[Any]], plan: Plan) -> list[list[Any]]:
    """Free-text cells neutralised, yes/no as ``true``/``false`` (in place; None is written as an empty cell)."""
    text, flags = plan.text, plan.flags
    for row in batch:
        for i in text:
            value = row[i]
            if value and value[0] in FORMULA_START:
                row[i] = "'" + value
        for i in flags:
            row[i] = "true" if row[i] else "false"
    return batch


def write_csv(
    rows: ExportRows, out: TextIO, *, delimiter: str = ",", bom: bool = False, tick: Tick | None = None
) -> int:
    """CSV exactly as ``csv.writer`` writes it (minimal quoting, CRLF line ends); see :class:`CsvLines` for the
    plans whose cells the database writes as text."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(rows.header)
    total = 0
    if not rows.plan.lines_ready:
        for batch in rows.batches():
            writer.writerows(csv_ready(batch, rows.plan))
            total += len(batch)
            if tick:
                tick(len(batch))
        return total
    lines = CsvLines(rows, out, delimiter)
    with paused_gc():
        for part in rows.lines(as_bytes=lines.binary):
            lines.write(part)
            total += len(part)
            if tick:
                tick(len(part))
    return total


class CsvLines:
    """Batches of ``(line, key)`` (:meth:`ExportRows.lines`) written as ``csv.writer`` would write the cells.

    A batch's lines are joined with line ends. If the text then holds no delimiter and no quote, and exactly the
    :data:`SEP` and line ends put there, no cell needs quotes: with :data:`SEP` replaced by the delimiter it is
    what ``csv.writer`` writes. Otherwise, when the delimiters and quotes found are many for the batch, the whole
    batch is split into cells for ``csv.writer``; when few, each line gets the same test and only the others go
    through ``csv.writer``. A line whose cells hold :data:`SEP` itself is read again as a typed row. On SQLite,
    into a UTF-8 file or terminal, lines are the bytes SQLite makes and go to the byte stream under ``out`` as
    they are: nothing is decoded or encoded but the rows that need quotes."""

    def __init__(self, rows: ExportRows, out: TextIO, delimiter: str) -> None:
        stream = utf8_stream(out) if rows.bytes_ready else None
        self.rows, self.binary, self.width = rows, stream is not None, len(rows.header)
        self.put: Callable[[Any], Any] = stream.write if stream is not None else out.write
        codes = (SEP, delimiter, "\r\n", "\n", "\r", '"')
        self.sep, self.delimiter, self.end, self.lf, self.cr, self.quote = (
            (c.encode() for c in codes) if self.binary else codes
        )
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, delimiter=delimiter, lineterminator="\r\n")

    def plain(self, text: Any, lines: int) -> bool:
        """``text`` (``lines`` lines joined by line ends) needs no quotes."""
        return (self.delimiter not in text and self.quote not in text
                and text.count(self.sep) == (self.width - 1) * lines and text.count(self.lf) == lines - 1
                and text.count(self.cr) == lines - 1)  # fmt: skip

    def write(self, part: list[tuple[Any, Any]]) -> None:
        n = len(part)
        text = self.end.join([line for line, _ in part])
        if self.plain(text, n):
            self.put(text.replace(self.sep, self.delimiter))
            self.put(self.end)
            return
        # About this many rows need quotes: few, look at each row; many, quote them all.
        suspects = text.count(self.delimiter) + text.count(self.quote)
        if suspects * 4 >= n:
            self.put(self.quoted(part))
            return
        pieces, dirty = [], []
        for line, key in part:
            if self.plain(line, 1):
                if dirty:
                    pieces.append(self.quoted(dirty))
                    dirty = []
                pieces += (line.replace(self.sep, self.delimiter), self.end)
            else:
                dirty.append((line, key))
        if dirty:
            pieces.append(self.quoted(dirty))
        self.put(self.end[:0].join(pieces))

    def quoted(self, part: list[tuple[Any, Any]]) -> Any:
        """Rows as ``csv.writer`` writes them (encoded for the byte stream). The batch's lines are joined, decoded
        and split into cells in one go, or line by line when a cell holds :data:`SEP` or :data:`RS`."""
        n, width = len(part), self.width
        text = (b"\x1e" if self.binary else RS).join([line for line, _ in part])
        if self.binary:
            text = text.decode()
        cells = text.replace(RS, SEP).split(SEP) if text.count(RS) == n - 1 else []
        if len(cells) == width * n:
            each = iter(cells)
            rows: Any = zip(*[each] * width, strict=True)
        else:
            rows = []
            for line, key in part:
                row = (line.decode() if self.binary else line).split(SEP)
                rows.append(row if len(row) == width else csv_ready([self.rows.row(key)], self.rows.plan)[0])
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerows(rows)
        text = self.buffer.getvalue()
        return text.encode() if self.binary else text


def utf8_stream(out: TextIO) -> Any:
    """The byte stream under ``out`` (flushed first) when ``out`` writes UTF-8 to one (a file, the terminal)."""
    binary, encoding = getattr(out, "buffer", None), getattr(out, "encoding", None)
    if binary is None or not encoding or codecs.lookup(encoding).name != "utf-8":
        return None
    out.flush()
    return binary


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while rows stream: the driver makes a tuple per row (no cycles), and the
    collector would walk every batch again and again (about 5 % of a CSV export)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_jsonl(rows: ExportRows, out: TextIO, *, tick: Tick | None = None) -> int:
    header, dumps, total = rows.header, json.dumps, 0
    for batch in rows.batches():
        out.write("".join(dumps(dict(zip(header, row, strict=True)), ensure_ascii=False) + "\n" for row in batch))
        total += len(batch)
        if tick:
            tick(len(batch))
    return total


def write_xlsx(rows: ExportRows, path: Path, *, sheet: str = "export", tick: Tick | None = None) -> int:
    """One sheet per :data:`XLSX_MAX_ROWS` rows (Excel's limit), each with the header; booleans and numbers stay
    typed, dates are ISO text like in the other formats."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    ws, in_sheet, sheets = None, XLSX_MAX_ROWS, 0
    text, total = rows.plan.text, 0
    for batch in rows.batches():
        for row in batch:
            if in_sheet == XLSX_MAX_ROWS:
                sheets += 1
                ws, in_sheet = book.create_sheet(sheet if sheets == 1 else f"{sheet}-{sheets}"), 0
                ws.append(rows.header)
            for i in text:
                if row[i]:
                    row[i] = neutralise(ILLEGAL_CHARACTERS_RE.sub("", row[i]))[:XLSX_MAX_CELL]
            ws.append(row)  # type: ignore[union-attr]
            in_sheet += 1
        total += len(batch)
        if tick:
            tick(len(batch))
    if ws is None:
        book.create_sheet(sheet).append(rows.header)
    book.save(path)
    return total


def write(rows: ExportRows, fmt: str, out: TextIO | Path, *, delimiter: str = ",", bom: bool = False,
          tick: Tick | None = None) -> int:  # fmt: skip
    """Write every row in ``fmt`` to ``out`` (a text stream, or a path for XLSX); the number of rows written."""
    if fmt == "xlsx":
        if not isinstance(out, Path):
            raise ExportError("xlsx needs --output FILE")
        return write_xlsx(rows, out, sheet=rows.kind, tick=tick)
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as fh:
            return write(rows, fmt, fh, delimiter=delimiter, bom=bom, tick=tick)
    if fmt == "csv":
        return write_csv(rows, out, delimiter=delimiter, bom=bom, tick=tick)
    if fmt == "jsonl":
        return write_jsonl(rows, out, tick=tick)
    raise ExportError(f"unknown format {fmt!r}: choose {', '.join(FORMATS)}")
