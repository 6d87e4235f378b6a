"""The shared test corpus (``../shared/corpus/portal.jsonl``, 220 pt-PT documents) as SearchDocuments."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path

from concelho.search.contract import SearchDocument, Visibility

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "portal.jsonl"

#: Corpus row type → search document type (``<plugin>.<kind>``).
TYPES = {
    "news": "news.article",
    "event": "events.event",
    "page": "pages.page",
    "service": "services.service",
    "poi": "places.place",
}
#: Workspace slugs of the intranet documents → workspace ids.
WORKSPACES = {"urbanismo": 1, "recursos-humanos": 2, "informatica": 3, "comunicacao": 4, "protecao-civil": 5}

ANONYMOUS = Visibility.anonymous()
EMPLOYEE = Visibility(authenticated=True)


def member_of(*workspaces: str) -> Visibility:
    return Visibility(authenticated=True, workspace_ids=frozenset(WORKSPACES[w] for w in workspaces))


def doc_type(row: dict) -> str:
    if row["type"] == "internal":
        return "intranet.news" if row.get("internal_kind") == "news" else "workspaces.document"
    return TYPES[row["type"]]


def doc_id(row_id: str) -> str:
    """``news-001`` → ``news.article:news-001``."""
    return f"{doc_type(_rows_by_id()[row_id])}:{row_id}"


def to_document(row: dict) -> SearchDocument:
    type_ = doc_type(row)
    body = row.get("body", "")
    description = row.get("description")
    if description and description not in body:
        body = f"{description}\n\n{body}"
    if row.get("required_documents"):
        body += "\n\n" + "\n".join(f"- {d}" for d in row["required_documents"])
    date = row.get("published_at") or (row.get("start") or "")[:10] or None
    return SearchDocument(
        id=f"{type_}:{row['id']}",
        type=type_,
        title=row["title"],
        url=row["url"],
        summary=row.get("summary", ""),
        body=body,
        tags=list(row.get("tags", [])),
        category=row.get("category", "") if row["type"] != "page" else "",
        section=row.get("section", "") if row["type"] == "page" else "",
        language=row.get("lang", "pt"),
        published_at=datetime.fromisoformat(date) if date else None,
        audience=row["audience"],
        workspace_ids=[WORKSPACES[row["workspace"]]] if row.get("workspace") else [],
    )


def rows() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@cache
def _rows_by_id() -> dict[str, dict]:
    return {r["id"]: r for r in rows()}


def documents() -> list[SearchDocument]:
    return [to_document(r) for r in rows()]
