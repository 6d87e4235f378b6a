"""Search document providers: what turns database rows into :class:`SearchDocument`s.

The core :class:`ContentProvider` covers every content type registered by a plugin (all of the
content store).  A plugin with searchable things of its own returns providers from
``Plugin.search_providers()``: subclasses of :class:`SearchProvider` naming the document types
they own.  A plugin's provider may also contribute workspace memberships for visibility by
defining ``async workspace_ids(session, user_id)`` (see ``search/visibility.py``).

A plugin adds outbox rows itself, in the transaction of its change::

    from concelho.search.outbox import enqueue
    await enqueue(session, [f"meetings.minute:{minute.id}"])            # created or changed
    await enqueue(session, [f"meetings.minute:{minute.id}"], "delete")  # removed
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .contract import SearchDocument
from .outbox import content_doc_id


def doc_type(doc_id: str) -> str:
    """``news.article:42`` → ``news.article``."""
    return doc_id.rsplit(":", 1)[0]


def doc_pk(doc_id: str) -> str:
    return doc_id.rsplit(":", 1)[-1]


class SearchProvider:
    """Base class of document providers (override every method)."""

    def types(self) -> list[str]:
        """Document types this provider owns (``<plugin>.<kind>``)."""
        return []

    def type_label(self, type_name: str) -> str:
        return type_name

    async def documents(self, session: AsyncSession, ids: list[str]) -> dict[str, SearchDocument | None]:
        """The current document of each id, or ``None`` when it must not be in the index (gone, not live)."""
        return dict.fromkeys(ids)

    async def all_documents(
        self, session: AsyncSession, type_: str | None = None, batch: int = 500
    ) -> AsyncIterator[list[SearchDocument]]:
        """Every document that belongs in the index (of ``type_`` only, when given), in batches."""
        if False:  # pragma: no cover - an async generator that yields nothing
            yield []

    async def counts(self, session: AsyncSession) -> dict[str, int]:
        """How many documents of each type belong in the index."""
        return {}

    async def stale_ids(self, session: AsyncSession, type_: str) -> list[str]:
        """Ids of ``type_`` known to the database that must *not* be in the index (for a partial reindex)."""
        return []


# ------------------------------------------------------------------------------------------------
# The content store
# ------------------------------------------------------------------------------------------------
def _text_of_data(ctype: Any, data: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    for spec in ctype.fields:
        value = (data or {}).get(spec.name)
        if value in (None, "", []):
            continue
        if spec.kind in {"text", "textarea", "choice"}:
            parts.append(str(value))
        elif spec.kind in {"lines", "multichoice"} and isinstance(value, list):
            parts.extend(str(v) for v in value)
    return parts


def content_document(item: Any, ctype: Any) -> SearchDocument:
    """The search document of a content item (live or not: the caller decides whether to index it)."""
    from concelho.suite.content.markdown import plain_text

    body = " ".join([plain_text(item.body or ""), *_text_of_data(ctype, item.data)]).strip()
    section = (item.data or {}).get("section") if isinstance((item.data or {}).get("section"), str) else None

    def aware(value: Any) -> Any:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    return SearchDocument(
        id=content_doc_id(item.type, item.id),
        type=item.type,
        title=item.title,
        url=ctype.url_for(item),
        summary=item.summary or "",
        body=body,
        tags=list(item.tags or []),
        category=item.category or "",
        section=section or ctype.plugin,
        language=item.language or "pt",
        published_at=aware(item.published_at),
        updated_at=aware(item.updated_at),
        audience=item.audience,
        workspace_ids=[item.workspace_id] if item.workspace_id is not None else [],
        department_ids=[item.department_id] if item.department_id is not None else [],
        extra={"slug": item.slug},
    )


class ContentProvider(SearchProvider):
    """Every item of the content store whose type is registered; only live items are indexed."""

    def __init__(self, content_types: dict[str, Any]) -> None:
        self.content_types = content_types

    def types(self) -> list[str]:
        return sorted(self.content_types)

    def type_label(self, type_name: str) -> str:
        ctype = self.content_types.get(type_name)
        return ctype.label if ctype else type_name

    async def documents(self, session: AsyncSession, ids: list[str]) -> dict[str, SearchDocument | None]:
        from concelho.suite.content.models import ContentItem
        from concelho.suite.content.service import is_live

        out: dict[str, SearchDocument | None] = dict.fromkeys(ids)
        pks = {int(doc_pk(i)) for i in ids if doc_pk(i).isdigit()}
        if not pks:
            return out
        rows = (await session.execute(select(ContentItem).where(ContentItem.id.in_(pks)))).scalars()
        for item in rows:
            doc_id = content_doc_id(item.type, item.id)
            ctype = self.content_types.get(item.type)
            if doc_id in out and ctype is not None and is_live(item):
                out[doc_id] = content_document(item, ctype)
        return out

    def _live(self, type_: str | None) -> list[Any]:
        from concelho.suite.content.models import ContentItem
        from concelho.suite.content.service import published_clause

        types = [type_] if type_ else self.types()
        return [ContentItem.type.in_(types), published_clause()]

    async def all_documents(
        self, session: AsyncSession, type_: str | None = None, batch: int = 500
    ) -> AsyncIterator[list[SearchDocument]]:
        from concelho.suite.content.models import ContentItem

        if type_ is not None and type_ not in self.content_types:
            return
        last = 0
        while True:
            items = list(
                (
                    await session.execute(
                        select(ContentItem)
                        .where(*self._live(type_), ContentItem.id > last)
                        .order_by(ContentItem.id)
                        .limit(batch)
                    )
                ).scalars()
            )
            if not items:
                return
            last = items[-1].id
            yield [content_document(item, self.content_types[item.type]) for item in items]

    async def counts(self, session: AsyncSession) -> dict[str, int]:
        from concelho.suite.content.models import ContentItem

        if not self.content_types:
            return {}
        rows = await session.execute(
            select(ContentItem.type, func.count()).where(*self._live(None)).group_by(ContentItem.type)
        )
        return {type_name: int(n) for type_name, n in rows}

    async def stale_ids(self, session: AsyncSession, type_: str) -> list[str]:
        from concelho.suite.content.models import ContentItem
        from concelho.suite.content.service import published_clause

        rows = await session.execute(select(ContentItem.id).where(ContentItem.type == type_, ~published_clause()))
        return [content_doc_id(type_, pk) for (pk,) in rows]


# ------------------------------------------------------------------------------------------------
# All providers of an app
# ------------------------------------------------------------------------------------------------
def plugin_providers(registry: Any) -> list[Any]:
    """Objects the enabled plugins return from ``search_providers()``."""
    return [provider for plugin in registry for provider in plugin.search_providers()]


class Providers:
    """The content provider plus the plugins' providers, by document type."""

    def __init__(self, providers: Iterable[SearchProvider]) -> None:
        self.providers = list(providers)
        self.by_type: dict[str, SearchProvider] = {}
        for provider in self.providers:
            for type_name in provider.types():
                self.by_type.setdefault(type_name, provider)

    @classmethod
    def from_registry(cls, registry: Any) -> Providers:
        content = ContentProvider(registry.content_types())
        extra = [p for p in plugin_providers(registry) if isinstance(p, SearchProvider)]
        return cls([content, *extra])

    def types(self) -> list[str]:
        return sorted(self.by_type)

    def label(self, type_name: str) -> str:
        provider = self.by_type.get(type_name)
        return provider.type_label(type_name) if provider else type_name

    async def documents(self, session: AsyncSession, ids: Iterable[str]) -> dict[str, SearchDocument | None]:
        """Current documents of ``ids``; ids of unknown types (a disabled plugin's) map to ``None``."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, SearchDocument | None] = dict.fromkeys(wanted)
        grouped: dict[int, tuple[SearchProvider, list[str]]] = {}
        for doc_id in wanted:
            provider = self.by_type.get(doc_type(doc_id))
            if provider is not None:
                grouped.setdefault(id(provider), (provider, []))[1].append(doc_id)
        for provider, group in grouped.values():
            found = await provider.documents(session, group)
            for doc_id in group:
                out[doc_id] = found.get(doc_id)
        return out

    async def all_documents(
        self, session: AsyncSession, type_: str | None = None, batch: int = 500
    ) -> AsyncIterator[list[SearchDocument]]:
        providers = [self.by_type[type_]] if type_ else self.providers
        for provider in providers:
            async for docs in provider.all_documents(session, type_, batch):
                yield docs

    async def counts(self, session: AsyncSession) -> dict[str, int]:
        out: dict[str, int] = {}
        for provider in self.providers:
            for type_name, n in (await provider.counts(session)).items():
                out[type_name] = out.get(type_name, 0) + n
        return out

    async def stale_ids(self, session: AsyncSession, type_: str) -> list[str]:
        provider = self.by_type.get(type_)
        return await provider.stale_ids(session, type_) if provider else []
