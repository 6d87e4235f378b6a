"""``suite content``: bulk import and export, scheduled publishing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import emit, fail, load_suite, run_db

app = typer.Typer(help="Content store: import, export, scheduled publishing.", no_args_is_help=True)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="JSON Lines (.jsonl), CSV (.csv) or a folder of Markdown files")],
    update: Annotated[bool, typer.Option("--update", help="Update existing items (matched by id) that differ")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report, change nothing")] = False,
    audience: Annotated[str | None, typer.Option(help="Import only rows of this audience (e.g. public)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Import content; every row is validated first and nothing is written on any error."""
    from concelho.suite.content.importer import ContentImportError, import_content
    from rich.progress import Progress

    suite = load_suite()
    types = suite.registry.content_types()
    with Progress(transient=True, disable=json_output) as progress:
        task = progress.add_task("importing", total=None)

        async def op(session):  # type: ignore[no-untyped-def]
            return await import_content(
                session, path, types, update_existing=update, dry_run=dry_run, audience=audience,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )  # fmt: skip

        try:
            summary = run_db(op)
        except ContentImportError as exc:
            progress.stop()
            if json_output:
                emit({"ok": False, "errors": exc.errors}, True)
                raise typer.Exit(1) from None
            for line in exc.errors[:50]:
                print(f"{path}: {line}", file=sys.stderr)
            if len(exc.errors) > 50:
                print(f"… and {len(exc.errors) - 50} more", file=sys.stderr)
            fail(f"{len(exc.errors)} error(s) in {path}; nothing was imported")
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}")
    emit(
        {"ok": True, **summary.as_dict()},
        json_output,
        f"{'dry run: ' if dry_run else ''}{summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged" + (f", {summary.skipped} skipped" if summary.skipped else ""),
    )


@app.command("export")
def export(
    type_: Annotated[str | None, typer.Option("--type", help="Only this content type (e.g. news.article)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")] = None,
) -> None:
    """Export content as JSON Lines (the import format; re-importable)."""
    from concelho.suite.content.models import ContentItem
    from sqlalchemy import select

    suite = load_suite()
    types = suite.registry.content_types()
    if type_ and type_ not in types:
        fail(f"unknown content type {type_!r} (known: {', '.join(sorted(types))})")

    async def op(session):  # type: ignore[no-untyped-def]
        query = select(ContentItem).where(ContentItem.audience != "workspace").order_by(ContentItem.id)
        if type_:
            query = query.where(ContentItem.type == type_)
        items = (await session.execute(query)).scalars().all()
        slugs = {i.id: i.slug for i in items}
        groups: dict[str, str] = {}
        out = []
        for item in items:
            ext = item.external_id or f"{item.type}:{item.id}"
            row = {
                "id": ext, "type": item.type, "title": item.title, "slug": item.slug, "summary": item.summary,
                "body": item.body, "lang": item.language, "audience": item.audience, "status": item.status,
                "category": item.category, "tags": item.tags,
                "published_at": item.published_at.isoformat() if item.published_at else None,
                **item.data,
            }  # fmt: skip
            if item.parent_id:
                row["parent"] = slugs.get(item.parent_id)
            if item.translation_group:
                if item.translation_group in groups:
                    row["translation_of"] = groups[item.translation_group]
                else:
                    groups[item.translation_group] = ext
            out.append(json.dumps({k: v for k, v in row.items() if v not in (None, "")}, ensure_ascii=False))
        return out

    lines = run_db(op)
    text = "\n".join(lines) + ("\n" if lines else "")
    if output:
        output.write_text(text, encoding="utf-8")
        emit(None, False, f"exported {len(lines)} item(s) to {output}")
    else:
        sys.stdout.write(text)


@app.command("publish-scheduled")
def publish_scheduled_(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Archive expired items and refresh caches for items whose publication time has come."""
    from concelho.suite.content.service import publish_scheduled

    load_suite()
    counts = run_db(publish_scheduled)
    emit(counts, json_output, f"{counts['published']} went live, {counts['archived']} archived")
