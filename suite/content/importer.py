"""Bulk content import: JSON Lines, CSV, or a folder of Markdown files with YAML front matter.

Every row is validated first (errors name the line or file); then everything is written
in one transaction with bulk inserts, or nothing is.  Rows are matched by external id
(``id`` / ``external_id``): an existing row is left alone, or updated with ``update=True``
when it differs, so re-running an import changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from concelho.search.outbox import content_doc_id, enqueue
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import record
from ..cache import bump_cache_generation
from .markdown import render_markdown
from .models import AUDIENCES, STATUSES, ContentItem, ContentRevision
from .service import SLUG_RE, SNAPSHOT_FIELDS, slugify
from .tags import clean_tags
from .types import ContentType

CORE_KEYS = {
    "id", "external_id", "type", "title", "slug", "summary", "body", "lang", "language", "audience", "status",
    "category", "tags", "parent", "translation_of", "published_at", "publish_at", "unpublish_at", "review_at",
    "sort_order", "url",
}  # fmt: skip


class ContentImportError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s): " + "; ".join(errors[:3]))


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "by_type": self.by_type,
            "dry_run": self.dry_run,
        }


@dataclass
class _Row:
    where: str
    ctype: ContentType
    external_id: str
    values: dict[str, Any]
    parent: str | None
    translation_of: str | None


def read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(location, raw row) pairs from a .jsonl/.json/.csv file or a folder of .md files."""
    if path.is_dir():
        rows = []
        for md in sorted(path.rglob("*.md")):
            text = md.read_text(encoding="utf-8")
            where = str(md.relative_to(path))
            if not text.startswith("---"):
                raise ContentImportError([f"{where}: no front matter (start the file with ---)"])
            try:
                _, front, body = text.split("---", 2)
                meta = yaml.safe_load(front) or {}
            except (ValueError, yaml.YAMLError) as exc:
                raise ContentImportError([f"{where}: front matter is not valid YAML: {exc}"]) from None
            if not isinstance(meta, dict):
                raise ContentImportError([f"{where}: front matter must be a mapping"])
            meta.setdefault("body", body.strip())
            meta.setdefault("id", md.stem)
            rows.append((where, meta))
        return rows
    if not path.is_file():
        raise ContentImportError([f"{path}: file not found"])
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        for row in reader:
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            for key in ("tags", "channels", "required_documents"):
                if clean.get(key):
                    clean[key] = [t.strip() for t in clean[key].split(";" if ";" in clean[key] else ",") if t.strip()]
            rows.append((f"line {reader.line_num}", clean))
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ContentImportError([f"line {number}: not valid JSON ({exc.msg})"]) from None
        if not isinstance(obj, dict):
            raise ContentImportError([f"line {number}: expected a JSON object"])
        rows.append((f"line {number}", obj))
    return rows


def _resolve_type(
    raw_type: str, types: dict[str, ContentType], raw: dict[str, Any] | None = None
) -> ContentType | None:
    """A type by name, else by import alias.  Types sharing an alias may each claim only some rows with
    ``extra["import_when"]`` (field → accepted values; a missing field reads as "")."""
    if raw_type in types:
        return types[raw_type]
    for ctype in types.values():
        if raw_type in ctype.extra.get("import_aliases", ()) and all(
            str((raw or {}).get(key) or "") in accepted for key, accepted in ctype.extra.get("import_when", {}).items()
        ):
            return ctype
    return None


def _when(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _prepare(where: str, raw: dict[str, Any], types: dict[str, ContentType], errors: list[str]) -> _Row | None:
    ctype = _resolve_type(str(raw.get("type", "")), types, raw)
    if ctype is None:
        errors.append(f"{where}: unknown content type {raw.get('type')!r} (known: {', '.join(sorted(types))})")
        return None
    problems: list[str] = []
    external_id = str(raw.get("external_id") or raw.get("id") or "").strip()
    if not external_id:
        problems.append("id is missing")
    title = str(raw.get("title") or "").strip()
    if not title:
        problems.append("title is missing")
    elif len(title) > 300:
        problems.append("title is longer than 300 characters")
    slug = str(raw.get("slug") or "").strip().lower() or slugify(title)
    if not SLUG_RE.match(slug):
        problems.append(f"slug {slug!r} may only have lowercase letters, digits and dashes")
    language = str(raw.get("language") or raw.get("lang") or "pt")
    if language not in ("pt", "en"):
        problems.append(f"language must be pt or en, got {language!r}")
    audience = str(raw.get("audience") or "public")
    if audience not in AUDIENCES:
        problems.append(f"audience must be one of {', '.join(AUDIENCES)}")
    elif audience == "workspace":
        problems.append("audience 'workspace' needs a workspace; import it with the workspaces plugin")
    status = str(raw.get("status") or "published")
    if status not in STATUSES:
        problems.append(f"status must be one of {', '.join(STATUSES)}")
    category = str(raw.get("category") or "")
    if ctype.categories and category and category not in ctype.categories:
        problems.append(f"category {category!r} is not one of {', '.join(ctype.categories)}")
    tags = raw.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    if not isinstance(tags, list):
        problems.append("tags must be a list")
        tags = []
    dates: dict[str, datetime | None] = {}
    for key in ("published_at", "publish_at", "unpublish_at", "review_at"):
        try:
            dates[key] = _when(raw.get(key))
        except (TypeError, ValueError):
            problems.append(f"{key} is not an ISO date")
            dates[key] = None
    data, data_errors = ctype.parse_data({k: v for k, v in raw.items() if k not in CORE_KEYS})
    problems.extend(f"{k.removeprefix('data.')}: {v}" for k, v in data_errors.items())
    try:
        sort_order = int(raw.get("sort_order") or 0)
    except (TypeError, ValueError):
        problems.append("sort_order must be a whole number")
        sort_order = 0
    parent = raw.get("parent") or None
    if parent and not ctype.hierarchical:
        problems.append(f"{ctype.name} items have no parent")
    if problems:
        errors.extend(f"{where}: {p}" for p in problems)
        return None
    body = str(raw.get("body") or "")
    values = {
        "type": ctype.name,
        "slug": slug,
        "title": title,
        "summary": str(raw.get("summary") or ""),
        "body": body,
        "language": language,
        "audience": audience,
        "status": status,
        "category": category,
        "tags": clean_tags(tags),
        "data": data,
        "sort_order": sort_order,
        "publish_at": dates["publish_at"],
        "unpublish_at": dates["unpublish_at"],
        "review_at": dates["review_at"],
        "published_at": dates["published_at"] if status == "published" else None,
    }
    return _Row(where, ctype, external_id, values, str(parent) if parent else None, raw.get("translation_of"))


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in (*SNAPSHOT_FIELDS, "status"):
        if key in values and key not in ("parent_id", "hero_image_id", "department_id", "workspace_id"):
            value = values[key]
            if isinstance(value, datetime):
                value = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
            out[key] = value
    return out


async def import_content(
    session: AsyncSession,
    path: Path,
    types: dict[str, ContentType],
    *,
    update_existing: bool = False,
    dry_run: bool = False,
    audience: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    actor: str = "cli",
) -> ImportSummary:
    raw_rows = read_rows(path)
    summary = ImportSummary(dry_run=dry_run)
    if audience:
        kept = [(w, r) for w, r in raw_rows if str(r.get("audience") or "public") == audience]
        summary.skipped = len(raw_rows) - len(kept)
        raw_rows = kept
    errors: list[str] = []
    rows = [r for r in (_prepare(where, raw, types, errors) for where, raw in raw_rows) if r is not None]

    seen_ids: dict[str, str] = {}
    seen_slugs: dict[tuple[str, str], str] = {}
    for row in rows:
        if row.external_id in seen_ids:
            errors.append(f"{row.where}: id {row.external_id!r} repeats {seen_ids[row.external_id]}")
        seen_ids.setdefault(row.external_id, row.where)
        key = (row.ctype.name, row.values["slug"])
        if key in seen_slugs:
            errors.append(f"{row.where}: slug {row.values['slug']!r} repeats {seen_slugs[key]}")
        seen_slugs.setdefault(key, row.where)

    existing = {
        item.external_id: item
        for item in (
            await session.execute(select(ContentItem).where(ContentItem.external_id.in_(list(seen_ids))))
        ).scalars()
    }
    taken = {
        (t, s): ext
        for t, s, ext in (
            await session.execute(
                select(ContentItem.type, ContentItem.slug, ContentItem.external_id).where(
                    ContentItem.type.in_({r.ctype.name for r in rows})
                )
            )
        ).all()
    }
    slugs_by_type: dict[tuple[str, str], str] = {(t, s): e or "" for (t, s), e in taken.items()}
    for row in rows:
        owner = slugs_by_type.get((row.ctype.name, row.values["slug"]))
        if owner is not None and owner != row.external_id:
            errors.append(f"{row.where}: slug {row.values['slug']!r} is already used by another item")
    known_slugs = {(r.ctype.name, r.values["slug"]) for r in rows} | set(taken)
    for row in rows:
        if row.parent and (row.ctype.name, row.parent) not in known_slugs:
            errors.append(f"{row.where}: parent {row.parent!r} is neither in the file nor in the database")
        if row.translation_of and row.translation_of not in seen_ids and row.translation_of not in existing:
            known = (
                await session.execute(select(ContentItem.id).where(ContentItem.external_id == row.translation_of))
            ).first()
            if not known:
                errors.append(f"{row.where}: translation_of {row.translation_of!r} is unknown")
    if errors:
        raise ContentImportError(errors)

    now = datetime.now(UTC)
    new_rows = [r for r in rows if r.external_id not in existing]
    changed = []
    for row in rows:
        item = existing.get(row.external_id)
        if item is None:
            continue
        current = _comparable({k: getattr(item, k) for k in (*SNAPSHOT_FIELDS, "status")})
        if current == _comparable(row.values):
            summary.unchanged += 1
        elif update_existing:
            changed.append((row, item))
        else:
            summary.unchanged += 1

    total = len(new_rows) + len(changed)
    done = 0
    batch = 500
    for start in range(0, len(new_rows), batch):
        chunk = new_rows[start : start + batch]
        await session.execute(
            insert(ContentItem),
            [
                {
                    **r.values,
                    "external_id": r.external_id,
                    "body_html": render_markdown(r.values["body"]),
                    "published_at": r.values["published_at"] or (now if r.values["status"] == "published" else None),
                    "created_at": now,
                    "updated_at": now,
                }
                for r in chunk
            ],
        )
        done += len(chunk)
        if progress:
            progress(done, total)
    ids = {
        ext: (item_id, slug, type_name)
        for ext, item_id, slug, type_name in (
            await session.execute(
                select(ContentItem.external_id, ContentItem.id, ContentItem.slug, ContentItem.type).where(
                    ContentItem.external_id.is_not(None)
                )
            )
        ).all()
    }
    by_slug = {(type_name, slug): item_id for item_id, slug, type_name in ids.values()}
    for row, item in changed:
        await session.execute(
            update(ContentItem)
            .where(ContentItem.id == item.id)
            .values(**row.values, body_html=render_markdown(row.values["body"]), updated_at=now)
        )
        done += 1
        if progress:
            progress(done, total)
    # Links that need ids: parents and translation groups.
    touched = [r for r in new_rows] + [r for r, _ in changed]
    for row in touched:
        item_id = ids[row.external_id][0]
        links: dict[str, Any] = {}
        if row.parent:
            links["parent_id"] = by_slug.get((row.ctype.name, row.parent))
        if row.translation_of:
            original = ids.get(row.translation_of)
            if original:
                links["translation_group"] = str(original[0])
                await session.execute(
                    update(ContentItem)
                    .where(ContentItem.id == original[0], ContentItem.translation_group == "")
                    .values(translation_group=str(original[0]))
                )
        elif row.external_id not in existing:
            links["translation_group"] = str(item_id)
        if links:
            await session.execute(update(ContentItem).where(ContentItem.id == item_id).values(**links))
    if touched:
        revision_numbers = {}
        for _row, item in changed:
            revision_numbers[item.id] = (
                await session.execute(
                    select(ContentRevision.number)
                    .where(ContentRevision.content_id == item.id)
                    .order_by(ContentRevision.number.desc())
                    .limit(1)
                )
            ).scalar_one_or_none() or 0
        fresh = (
            await session.execute(
                select(ContentItem).where(ContentItem.id.in_([ids[r.external_id][0] for r in touched]))
            )
        ).scalars()
        revisions = []
        for item in fresh:
            snap = {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in ((k, getattr(item, k)) for k in SNAPSHOT_FIELDS)
            }
            revisions.append(
                {
                    "content_id": item.id,
                    "number": revision_numbers.get(item.id, 0) + 1,
                    "snapshot": snap,
                    "status": item.status,
                    "note": "imported",
                    "created_at": now,
                }
            )
        for start in range(0, len(revisions), batch):
            await session.execute(insert(ContentRevision), revisions[start : start + batch])
        # Search: one outbox row per created or changed item, in this same transaction (bulk insert).
        await enqueue(session, [content_doc_id(r.ctype.name, ids[r.external_id][0]) for r in touched])
        await bump_cache_generation(session)
    summary.created = len(new_rows)
    summary.updated = len(changed)
    for row in touched:
        summary.by_type[row.ctype.name] = summary.by_type.get(row.ctype.name, 0) + 1
    await record(session, "content.imported", actor=actor, target=str(path), **summary.as_dict())
    if dry_run:
        await session.rollback()
    else:
        await session.commit()
    return summary
