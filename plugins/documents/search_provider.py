"""Documents in the search index: one :class:`SearchDocument` per live document, with its current text.

Visibility: ``audience="workspace"`` and ``workspace_ids`` = the owning workspace plus every workspace
the document (or a folder above it) is shared with, so the engine only ever returns a document to
members of those workspaces.  Documents of open workspaces are indexed the same way (members only):
the index never widens what a workspace's visibility could later narrow.  Shares with named people
are *not* in the index (the contract has no per-user field): those people reach the document through
"Shared with me" and its page, where the rights are checked again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from concelho.plugins.workspaces.models import Workspace
from concelho.search.contract import SearchDocument
from concelho.search.providers import SearchProvider, doc_pk
from concelho.suite.i18n import N_
from concelho.suite.models import as_utc as _aware
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Document, Version
from .naming import DOC_TYPE, doc_id, document_url
from .sharing import document_workspace_ids

LABEL = N_("Document")
SUMMARY_CHARS = 300


class DocumentProvider(SearchProvider):
    def types(self) -> list[str]:
        return [DOC_TYPE]

    def type_label(self, type_name: str) -> str:
        return LABEL

    async def _build(self, session: AsyncSession, documents: list[Document]) -> list[SearchDocument]:
        if not documents:
            return []
        texts = dict(
            (
                await session.execute(
                    select(Version.document_id, Version.text)
                    .join(Document, Document.id == Version.document_id)
                    .where(Version.document_id.in_([d.id for d in documents]))
                    .where(Version.number == Document.current_version)
                )
            ).all()
        )
        spaces = {
            w.id: w
            for w in (
                await session.execute(select(Workspace).where(Workspace.id.in_({d.workspace_id for d in documents})))
            ).scalars()
        }
        visible = await document_workspace_ids(session, documents)
        out = []
        for document in documents:
            workspace = spaces.get(document.workspace_id)
            if workspace is None:
                continue
            text = texts.get(document.id) or ""
            out.append(
                SearchDocument(
                    id=doc_id(document.id),
                    type=DOC_TYPE,
                    title=document.name,
                    url=document_url(workspace, document),
                    summary=" ".join(text[:SUMMARY_CHARS].split()),
                    body=text,
                    category=document.content_type,
                    section="documents",
                    language="pt",
                    published_at=_aware(document.created_at),
                    updated_at=_aware(document.updated_at),
                    audience="workspace",
                    workspace_ids=visible.get(document.id, [document.workspace_id]),
                    extra={"workspace": workspace.slug, "size": document.size},
                )
            )
        return out

    async def documents(self, session: AsyncSession, ids: list[str]) -> dict[str, SearchDocument | None]:
        out: dict[str, SearchDocument | None] = dict.fromkeys(ids)
        pks = {int(doc_pk(i)) for i in ids if doc_pk(i).isdigit()}
        if not pks:
            return out
        rows = list(
            (
                await session.execute(select(Document).where(Document.id.in_(pks), Document.trashed_at.is_(None)))
            ).scalars()
        )
        for doc in await self._build(session, [r for r in rows if r.current_version > 0]):
            if doc.id in out:
                out[doc.id] = doc
        return out

    async def all_documents(
        self, session: AsyncSession, type_: str | None = None, batch: int = 500
    ) -> AsyncIterator[list[SearchDocument]]:
        if type_ not in (None, DOC_TYPE):
            return
        last = 0
        while True:
            rows = list(
                (
                    await session.execute(
                        select(Document)
                        .where(Document.trashed_at.is_(None), Document.current_version > 0, Document.id > last)
                        .order_by(Document.id)
                        .limit(batch)
                    )
                ).scalars()
            )
            if not rows:
                return
            last = rows[-1].id
            yield await self._build(session, rows)

    async def counts(self, session: AsyncSession) -> dict[str, int]:
        n = (
            await session.execute(
                select(func.count())
                .select_from(Document)
                .where(Document.trashed_at.is_(None), Document.current_version > 0)
            )
        ).scalar_one()
        return {DOC_TYPE: int(n)}

    async def stale_ids(self, session: AsyncSession, type_: str) -> list[str]:
        if type_ != DOC_TYPE:
            return []
        rows = await session.execute(select(Document.id).where(Document.trashed_at.is_not(None)))
        return [doc_id(pk) for (pk,) in rows]
