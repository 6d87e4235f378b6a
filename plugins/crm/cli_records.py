"""``suite crm import`` (a legacy CRM's CSV files) and ``suite crm gdpr export|erase|purge`` (data protection)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from concelho.cli.common import emit, err_console, fail, load_suite, progress_bar, run_db

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
CitizenOpt = Annotated[str, typer.Option("--citizen", help="Citizen id, NIF or e-mail address")]

IMPORT_HELP = """Import citizens or interactions from a legacy CRM's CSV file: every row is checked first; any error
lists the lines and imports nothing; otherwise everything is written in one transaction. Re-running is safe:
rows match by external_id (same values: unchanged; changed: updated); erased citizens are never brought back.

\b
citizens:     external_id,name,nif,email,phone,address,consent_at,created_at
interactions: external_id,citizen_external_id,citizen_nif,channel,direction,occurred_at,topic,
              service_code,department_code,staff_username,notes

\b
Required: external_id and name (citizens); external_id, channel, occurred_at and one of
citizen_external_id / citizen_nif (interactions; both empty for an anonymous contact).
Dates: 2024-03-05, 2024-03-05T10:20[+01:00] or 05/03/2024 [10:20] (Lisbon time without an offset).
Channels: web, counter, phone, letter, fax, email, open311 (or balcão, telefone, carta…); direction in/out."""

gdpr_app = typer.Typer(
    help="Data protection: export everything about a person, erase (pseudonymise), retention purge.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``gdpr`` to the ``suite crm`` app."""
    app.command("import", help=IMPORT_HELP)(import_records)
    app.add_typer(gdpr_app, name="gdpr")


def _storage() -> Any:
    from concelho.suite.storage import LocalStorage

    return LocalStorage(load_suite().settings.storage_dir)


# --------------------------------------------------------------------------------------------
# suite crm import
# --------------------------------------------------------------------------------------------
def import_records(
    kind: Annotated[str, typer.Argument(help="citizens or interactions")],
    path: Annotated[Path, typer.Argument(help="CSV file")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count only; import nothing")] = False,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help=", or ; (default: from the header)")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="utf-8 or cp1252 (Excel)")] = "utf-8",
    max_errors: Annotated[int, typer.Option("--max-errors", help="Errors to list")] = 20,
    json_output: JsonOpt = False,
) -> None:
    from .legacy_import import DELIMITERS, ENCODINGS, KINDS, LegacyImportError, import_csv

    if kind not in KINDS:
        fail(f"unknown kind {kind!r}: use citizens or interactions")
    if delimiter is not None and delimiter not in DELIMITERS:
        fail(f"--delimiter must be , or ; (got {delimiter!r})")
    if encoding.lower() not in ENCODINGS:
        fail(f"--encoding must be utf-8 or cp1252 (got {encoding!r})")
    if not path.is_file():
        fail(f"{path}: no such file")
    with progress_bar(not json_output) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if bar is None or not total:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        async def op(session):  # type: ignore[no-untyped-def]
            return await import_csv(session, kind, path, dry_run=dry_run, delimiter=delimiter,
                                    encoding=encoding.lower(), progress=progress)  # fmt: skip

        try:
            report = run_db(op)
        except LegacyImportError as exc:
            error = exc
        else:
            error = None
    if error is not None:
        _import_errors(path, error, max_errors, json_output)
    result = report.as_dict()
    if json_output:
        emit(result, True)
        return
    verb = "checked (dry run)" if dry_run else "imported"
    counts = f"{result['created']} new, {result['updated']} updated, {result['unchanged']} unchanged"
    emit(None, False, f"{path.name}: {result['rows']} {kind} {verb}: {counts}, {result['skipped']} erased")


def _import_errors(path: Path, exc: Any, max_errors: int, json_output: bool) -> None:
    """The first ``max_errors`` problems and how many there are; exit 1 (nothing was imported)."""
    errors = exc.errors
    if json_output:
        emit({"ok": False, "imported": 0, "error_count": len(errors), "errors": [e.as_dict() for e in errors]}, True)
        raise typer.Exit(1)
    for problem in errors[: max(max_errors, 1)]:
        err_console.print(f"  {problem}", highlight=False, soft_wrap=True, markup=False)
    if len(errors) > max_errors:
        err_console.print(f"  … and {len(errors) - max_errors} more", highlight=False)
    fail(f"{path.name}: {len(errors)} error(s), nothing imported")


# --------------------------------------------------------------------------------------------
# suite crm gdpr
# --------------------------------------------------------------------------------------------
def _gdpr_run(op):  # type: ignore[no-untyped-def]
    from .gdpr import GdprError

    try:
        return run_db(op)
    except GdprError as exc:
        fail(str(exc))


@gdpr_app.command("export")
def export(
    citizen: CitizenOpt,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="FILE.zip (data.json and the files) or FILE.json")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Everything held about a person (right of access): the record and those merged into it, consents,
    interactions, cases with every event (internal notes included) and attachments, queued e-mails.
    Without --output the data is printed as JSON (the files only go into a ZIP)."""
    from concelho.suite.audit import record

    from .gdpr import export_data, find_citizen, write_export

    if output is not None:
        if output.suffix.lower() not in (".zip", ".json"):
            fail("--output must end in .zip or .json")
        if not output.parent.is_dir():
            fail(f"folder {output.parent} does not exist")

    async def op(session):  # type: ignore[no-untyped-def]
        person = await find_citizen(session, citizen)
        data, files = await export_data(session, person)
        await record(session, "crm.gdpr_export", actor="cli", target=f"crm.citizen:{person.id}",
                     output="zip" if output and output.suffix.lower() == ".zip" else "json")  # fmt: skip
        await session.commit()
        return person.id, data, files

    citizen_id, data, files = _gdpr_run(op)
    if output is None:
        emit(data, True)
        return
    try:
        counts = write_export(data, files, _storage(), output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    summary = {"citizen_id": citizen_id, "output": str(output), "records": len(data["citizens"]),
               "interactions": len(data["interactions"]), "cases": len(data["cases"]), **counts}  # fmt: skip
    emit(summary, json_output, f"wrote {output}: {summary['cases']} case(s), {summary['interactions']} "
                               f"interaction(s), {counts['files']} file(s)"
                               + (f", {counts['missing_files']} file(s) missing from storage"
                                  if counts["missing_files"] else ""))  # fmt: skip


@gdpr_app.command("erase")
def erase(
    citizen: CitizenOpt,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Erase a person (right to erasure): pseudonymise the record and those merged into it, blank the free text of
    their cases and interactions, delete their files and queued e-mails; the statistics stay the same."""
    from .gdpr import citizen_group, erase_citizens, find_citizen

    if not yes and json_output:
        fail("--json needs --yes (no question can be asked)")

    async def find(session):  # type: ignore[no-untyped-def]
        person = await find_citizen(session, citizen)
        return person.id, person.name, await citizen_group(session, person.id)

    citizen_id, name, group = _gdpr_run(find)
    if not yes:
        merged = f" and {len(group) - 1} merged record(s)" if len(group) > 1 else ""
        if not typer.confirm(f"Erase citizen #{citizen_id} ({name}){merged}? This cannot be undone"):
            fail("nothing erased")

    async def op(session):  # type: ignore[no-untyped-def]
        return await erase_citizens(session, _storage(), [group], actor="cli")

    report = _gdpr_run(op).as_dict()
    emit(report, json_output, f"erased citizen #{citizen_id}: {report['citizens']} record(s), {report['cases']} "
                              f"case(s), {report['interactions']} interaction(s), "
                              f"{report['attachments'] + report['interaction_files']} file(s), "
                              f"{report['messages_deleted']} queued e-mail(s)")  # fmt: skip


@gdpr_app.command("purge")
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; erase nothing")] = False,
    years: Annotated[int | None, typer.Option("--years", help="Instead of the retention_years setting")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Retention: erase everyone whose last activity (interaction, case update) is older than retention_years
    ([plugins.crm] setting) and who has no open case. Also runs daily in the background."""
    from . import gdpr

    suite = load_suite()
    if years is None:
        years = int(suite.registry.get("crm").settings_for(suite.settings)["retention_years"])  # type: ignore[union-attr]
        if years == 0:
            fail("retention is off ([plugins.crm] retention_years = 0): give --years N to purge anyway")
    if years < 1:
        fail("--years must be at least 1")
    with progress_bar(not json_output and not dry_run) as bar:
        task: list[Any] = []

        def progress(done: int, total: int) -> None:
            if bar is None:
                return
            if not task:
                task.append(bar.add_task("erasing", total=total))
            bar.update(task[0], completed=done)

        async def op(session):  # type: ignore[no-untyped-def]
            return await gdpr.purge(session, _storage(), years, dry_run=dry_run, actor="cli", progress=progress)

        report = _gdpr_run(op)
    verb = "would erase" if dry_run else "erased"
    emit(report, json_output, f"{verb} {report['people']} person(s) ({report['records']} record(s)) inactive since "
                              f"{report['cutoff'][:10]}; {report['kept_open_case']} kept for an open case")  # fmt: skip
