"""``suite crm``: Open311 API keys, exports, KPI report, legacy import, GDPR requests and retention."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from concelho.cli.common import (
    console,
    emit,
    err_console,
    fail,
    first_line,
    load_suite,
    progress_bar,
    require_database,
    run_db,
)

from .cli_records import register as register_records
from .open311_cli import apikeys_app

app = typer.Typer(help="Citizen CRM (API keys, exports, reports, imports, GDPR).", no_args_is_help=True)
app.add_typer(apikeys_app, name="apikeys")
register_records(app)  # import, gdpr (cli_records.py)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (Lisbon time)")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (included)")]
DepartmentOpt = Annotated[str, typer.Option("--department", help="Department code")]


@app.command("export")
def export(
    kind: Annotated[str, typer.Argument(help="cases, interactions or citizens")],
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or xlsx")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")] = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    channel: Annotated[str, typer.Option("--channel", help="Only this channel")] = "",
    status: Annotated[str, typer.Option("--status", help="Only cases with this status")] = "",
    department: DepartmentOpt = "",
    anonymize: Annotated[bool, typer.Option("--anonymize", help="Pseudonyms instead of personal data")] = False,
    delimiter: Annotated[str, typer.Option("--delimiter", help="CSV field separator (one character, or 'tab')")] = ",",
    bom: Annotated[bool, typer.Option("--bom", help="Start the CSV with a UTF-8 BOM (for Excel)")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary (needs --output)")] = False,
) -> None:
    """Export cases, interactions or citizens as CSV, JSON Lines or XLSX (rows streamed, dates ISO 8601 UTC)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from .exports import FORMATS, ExportError, ExportSpec, open_export, record_export, write
    from .reports import ReportError, parse_day

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}: choose {', '.join(FORMATS)}")
    delimiter = "\t" if delimiter.lower() in ("tab", "\\t") else delimiter
    if len(delimiter) != 1 or delimiter in '"\r\n':
        fail(f"--delimiter must be one character (not a quote or a line break), got {delimiter!r}")
    if fmt == "xlsx" and output is None:
        fail("xlsx needs --output FILE")
    if json_output and output is None:
        fail("--json prints a summary, so the rows need --output FILE")
    if output is not None and not output.parent.is_dir():
        fail(f"folder {output.parent} does not exist")
    try:
        first = parse_day(date_from, "--from") if date_from else None
        last = parse_day(date_to, "--to") if date_to else None
        spec = ExportSpec(kind, first, last, channel, status, department, anonymize)
        spec.check()
    except (ExportError, ReportError) as exc:
        fail(str(exc))
    suite = load_suite()
    require_database(suite.settings)
    url = suite.settings.database_url
    partial = output.with_name(output.name + ".part") if output is not None else None
    try:
        with open_export(url, suite.settings.secret_key, spec) as rows:
            total = rows.count()
            with progress_bar(not json_output, total) as bar:
                task = bar.add_task(f"exporting {kind}", total=total) if bar else None
                tick = (lambda n: bar.advance(task, n)) if bar else None
                written = write(rows, fmt, partial or sys.stdout, delimiter=delimiter, bom=bom, tick=tick)
        if partial is not None:
            partial.replace(output)  # type: ignore[arg-type]
    except ExportError as exc:
        fail(str(exc))
    except (OperationalError, ProgrammingError) as exc:
        fail(f"database error: {first_line(str(exc.orig or exc))}")
    except BrokenPipeError:
        # The reader of stdout stopped early (``| head``): not an error of the export; keep Python quiet at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except OSError as exc:
        fail(f"cannot write {output or 'standard output'}: {exc.strerror or exc}")
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    record_export(url, spec, fmt, written)
    summary = {"kind": kind, "format": fmt, "rows": written, "output": str(output) if output else "-",
               "anonymized": anonymize, "filters": spec.filters()}  # fmt: skip
    if json_output:
        emit(summary, True)
    else:
        target = output or "standard output"
        (console if output else err_console).print(f"exported {written} {kind} to {target}", highlight=False)


def _report_table(report: dict[str, Any]) -> None:
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f} %"

    period = report["period"]
    scope = report["department"]["code"] if report["department"] else "all departments"
    contacts, cases, sla = report["contacts"], report["cases"], report["sla"]
    median = cases["median_hours_to_first_answer"]
    table = Table(title=f"CRM key figures {period['from']} – {period['to']} ({scope})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in (
        ("contacts", contacts["total"]),
        ("contacts online", f"{contacts['online']} ({pct(contacts['share_online'])})"),
        ("cases opened", cases["opened"]),
        ("cases closed", cases["closed"]),
        ("median time to first answer", "—" if median is None else f"{median:.1f} h"),
        ("SLA compliance", f"{pct(sla['compliance'])} ({sla['on_time']} on time, {sla['late']} late, "
                           f"{sla['pending']} pending)"),
        ("open cases overdue now", cases["open_overdue_now"]),
        ("services available online", report["services_online"]),
    ):  # fmt: skip
        table.add_row(label, str(value))
    console.print(table)
    channels = Table(title="Contacts per channel")
    for col in ("channel", "contacts", "share"):
        channels.add_column(col, justify="left" if col == "channel" else "right")
    for channel, n in contacts["by_channel"].items():
        channels.add_row(channel, str(n), pct(n / contacts["total"] if contacts["total"] else None))
    console.print(channels)
    months = Table(title="Per month")
    for col in ("month", "contacts", "online", "opened", "closed"):
        months.add_column(col, justify="left" if col == "month" else "right")
    for row in report["months"]:
        months.add_row(*(str(row[c]) for c in ("month", "contacts", "online", "opened", "closed")))
    console.print(months)


@app.command("report")
def report(
    date_from: FromOpt = None, date_to: ToOpt = None, department: DepartmentOpt = "", json_output: JsonOpt = False
) -> None:
    """Key figures of a period (default: this year): contacts per channel, share online, cases opened and closed,
    median time to first answer, SLA compliance, overdue cases, services online, per month."""
    from . import reports

    if (date_from is None) != (date_to is None):
        fail("give both --from and --to (or neither, for this year)")
    try:
        period = reports.Period.parse(date_from, date_to) if date_from and date_to else reports.this_year()
    except reports.ReportError as exc:
        fail(str(exc))

    async def op(session):  # type: ignore[no-untyped-def]
        scope = await reports.department_by_code(session, department) if department else None
        return (await reports.compute(session, period, scope)).as_dict()

    try:
        result = run_db(op)
    except reports.ReportError as exc:
        fail(str(exc))
    if json_output:
        emit(result, True)
    else:
        _report_table(result)
