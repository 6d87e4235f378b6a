"""The indexer: drains the search outbox into the engine; full and partial reindex; status.

Draining takes the oldest due outbox rows (a batch), re-reads the *current* state of each
document through the providers (so the action written in the outbox is only a hint), upserts
live documents and deletes the others, then removes the rows it handled.  When the engine
fails, the rows stay, with ``attempts`` + 1 and ``next_attempt_at`` pushed back exponentially
(2 s, 4 s, 8 s … at most :data:`BACKOFF_MAX`), and the last error kept for ``suite search status``.
If the engine is healthy but one document is refused, the batch is retried one document at a
time so a single bad document never holds back the others.

Only one drainer works at a time, across processes: a lease in ``core_kv`` (compare-and-swap,
renewed after every batch) keeps the in-process job of several web workers and ``suite worker``
from indexing the same document out of order.  A full reindex holds the same lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .contract import SearchBackend, SearchDocument
from .models import SearchOutbox
from .providers import Providers

log = logging.getLogger("suite.search")

BATCH_SIZE = 200
BACKOFF_BASE = 2.0
BACKOFF_MAX = 120.0
LEASE_KEY = ("search", "indexer_lease")
LEASE_TTL = 60.0
UPSERT_CHUNK = 500

Progress = Callable[[int, int], None]


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt number ``attempts + 1`` (attempts ≥ 1)."""
    return min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:1000]


# ------------------------------------------------------------------------------------------------
# The lease: one drainer at a time
# ------------------------------------------------------------------------------------------------
def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def acquire_lease(sessionmaker: async_sessionmaker[AsyncSession], owner: str, ttl: float = LEASE_TTL) -> bool:
    """Take (or renew) the indexer lease; False when another live owner holds it."""
    from concelho.suite.models import KeyValue

    namespace, key = LEASE_KEY
    now = time.time()
    value = f"{owner}|{now + ttl:.3f}".encode()
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(KeyValue.id, KeyValue.value).where(KeyValue.namespace == namespace, KeyValue.key == key)
            )
        ).first()
        if row is None:
            session.add(KeyValue(namespace=namespace, key=key, value=value))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
            return True
        holder, _, until = bytes(row.value).decode(errors="replace").partition("|")
        try:
            expires = float(until)
        except ValueError:
            expires = 0.0
        if holder != owner and expires > now:
            return False
        result = await session.execute(
            update(KeyValue).where(KeyValue.id == row.id, KeyValue.value == row.value).values(value=value)
        )
        await session.commit()
        return bool(result.rowcount == 1)


async def release_lease(sessionmaker: async_sessionmaker[AsyncSession], owner: str) -> None:
    from concelho.suite.models import KeyValue

    namespace, key = LEASE_KEY
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(KeyValue.id, KeyValue.value).where(KeyValue.namespace == namespace, KeyValue.key == key)
            )
        ).first()
        if row is not None and bytes(row.value).decode(errors="replace").partition("|")[0] == owner:
            await session.execute(
                update(KeyValue).where(KeyValue.id == row.id, KeyValue.value == row.value).values(value=b"|0")
            )
            await session.commit()


# ------------------------------------------------------------------------------------------------
# Draining the outbox
# ------------------------------------------------------------------------------------------------
@dataclass
class DrainResult:
    processed: int = 0
    upserted: int = 0
    deleted: int = 0
    failed: int = 0
    batches: int = 0
    #: Another process holds the lease (nothing was done).
    busy: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "upserted": self.upserted,
            "deleted": self.deleted,
            "failed": self.failed,
            "batches": self.batches,
            "busy": self.busy,
            "error": self.error,
        }


@dataclass
class Indexer:
    """Drains one database's outbox into one backend."""

    sessionmaker: async_sessionmaker[AsyncSession]
    backend: SearchBackend
    providers: Providers
    batch_size: int = BATCH_SIZE
    owner: str = field(default_factory=new_owner)
    #: After an engine failure, no new attempt before this (monotonic clock) — the circuit breaker.
    paused_until: float = 0.0
    consecutive_failures: int = 0

    async def has_backlog(self, *, due_only: bool = True) -> bool:
        async with self.sessionmaker() as session:
            query = select(SearchOutbox.id).limit(1)
            if due_only:
                query = query.where(SearchOutbox.next_attempt_at <= datetime.now(UTC))
            return (await session.execute(query)).first() is not None

    async def drain(self, *, max_batches: int | None = None, retry_now: bool = False) -> DrainResult:
        """Process due outbox rows until none is left (or ``max_batches``); ``retry_now`` ignores back-off."""
        result = DrainResult()
        if not retry_now and time.monotonic() < self.paused_until:
            return result
        if not await acquire_lease(self.sessionmaker, self.owner):
            result.busy = True
            return result
        failed_now: set[int] = set()  # rows that failed during this call are not tried again by it
        try:
            while max_batches is None or result.batches < max_batches:
                if not await self._one_batch(result, retry_now, failed_now):
                    break
                result.batches += 1
                await acquire_lease(self.sessionmaker, self.owner)
        finally:
            await release_lease(self.sessionmaker, self.owner)
        return result

    async def _one_batch(self, result: DrainResult, retry_now: bool, failed_now: set[int]) -> bool:
        """One batch; False when there was nothing to do or the engine failed."""
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            query = select(SearchOutbox.id, SearchOutbox.doc_id, SearchOutbox.attempts).order_by(SearchOutbox.id)
            if not retry_now:
                query = query.where(SearchOutbox.next_attempt_at <= now)
            if failed_now:
                query = query.where(SearchOutbox.id.not_in(failed_now))
            rows = (await session.execute(query.limit(self.batch_size))).all()
            if not rows:
                return False
            docs = await self.providers.documents(session, [r.doc_id for r in rows])
            await session.rollback()
        upserts = [d for d in docs.values() if d is not None]
        deletes = [doc_id for doc_id, d in docs.items() if d is None]
        try:
            await asyncio.to_thread(_apply, self.backend, upserts, deletes)
        except Exception as exc:
            return await self._after_failure(result, rows, docs, exc, failed_now)
        await self._done([r.id for r in rows])
        self.consecutive_failures = 0
        self.paused_until = 0.0
        result.processed += len(rows)
        result.upserted += len(upserts)
        result.deleted += len(deletes)
        return True

    async def _after_failure(
        self,
        result: DrainResult,
        rows: list[Any],
        docs: dict[str, SearchDocument | None],
        exc: Exception,
        failed_now: set[int],
    ) -> bool:
        error = _error_text(exc)
        try:
            await asyncio.to_thread(self.backend.health)
            healthy = True
        except Exception:
            healthy = False
        if not healthy or len(docs) == 1:
            # The engine is down (or this one document was refused): keep every row for later.
            self.consecutive_failures += 1
            if not healthy:
                self.paused_until = time.monotonic() + backoff(self.consecutive_failures)
            await self._failed(rows, error)
            failed_now.update(r.id for r in rows)
            result.failed += len(rows)
            result.error = error
            log.warning("search indexing failed (%d row(s) kept for later): %s", len(rows), error)
            return False
        # The engine works: find the document(s) it refuses, one at a time.
        by_doc: dict[str, list[Any]] = {}
        for row in rows:
            by_doc.setdefault(row.doc_id, []).append(row)
        done: list[int] = []
        for doc_id, doc in docs.items():
            try:
                await asyncio.to_thread(_apply, self.backend, [doc] if doc else [], [] if doc else [doc_id])
            except Exception as one_exc:
                await self._failed(by_doc[doc_id], _error_text(one_exc))
                failed_now.update(r.id for r in by_doc[doc_id])
                result.failed += len(by_doc[doc_id])
                result.error = _error_text(one_exc)
                log.warning("search indexing refused %s: %s", doc_id, _error_text(one_exc))
                continue
            done.extend(r.id for r in by_doc[doc_id])
            result.processed += len(by_doc[doc_id])
            if doc:
                result.upserted += 1
            else:
                result.deleted += 1
        await self._done(done)
        return True

    async def _done(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        async with self.sessionmaker() as session:
            await session.execute(delete(SearchOutbox).where(SearchOutbox.id.in_(row_ids)))
            await session.commit()

    async def _failed(self, rows: list[Any], error: str) -> None:
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            by_attempts: dict[int, list[int]] = {}
            for row in rows:
                by_attempts.setdefault(row.attempts + 1, []).append(row.id)
            for attempts, ids in by_attempts.items():
                await session.execute(
                    update(SearchOutbox)
                    .where(SearchOutbox.id.in_(ids))
                    .values(
                        attempts=attempts,
                        next_attempt_at=now + timedelta(seconds=backoff(attempts)),
                        last_error=error,
                    )
                )
            await session.commit()

    # --------------------------------------------------------------------------------------------
    # Reindex
    # --------------------------------------------------------------------------------------------
    async def reindex(self, type_: str | None = None, progress: Progress | None = None, wait: float = 70.0) -> dict:
        """Rebuild the index from the database.

        Without ``type_`` the whole index is replaced atomically (``backend.rebuild``: searches keep
        answering from the old index until the new one is complete).  With ``type_`` that type's live
        documents are upserted and its non-live ones deleted.  The outbox is left alone: rows still in
        it are drained afterwards (re-reading is harmless), so no change made meanwhile is lost.
        """
        if type_ is not None and type_ not in self.providers.by_type:
            raise ValueError(f"unknown document type {type_!r} (known: {', '.join(self.providers.types())})")
        deadline = time.monotonic() + wait
        while not await acquire_lease(self.sessionmaker, self.owner, ttl=600.0):
            if time.monotonic() > deadline:
                raise RuntimeError("another indexer holds the lease; try again in a minute")
            await asyncio.sleep(0.5)
        try:
            async with self.sessionmaker() as session:
                counts = await self.providers.counts(session)
                total = counts.get(type_, 0) if type_ else sum(counts.values())
                docs: list[SearchDocument] = []
                if progress:
                    progress(0, total)
                async for batch in self.providers.all_documents(session, type_):
                    docs.extend(batch)
                    if progress:
                        progress(len(docs), max(total, len(docs)))
                stale = await self.providers.stale_ids(session, type_) if type_ else []
                await session.rollback()
            if type_ is None:
                await asyncio.to_thread(self.backend.rebuild, docs)
            else:
                await asyncio.to_thread(self.backend.ensure_index)
                for start in range(0, len(docs), UPSERT_CHUNK):
                    await asyncio.to_thread(self.backend.upsert, docs[start : start + UPSERT_CHUNK])
                for start in range(0, len(stale), UPSERT_CHUNK):
                    await asyncio.to_thread(self.backend.delete, stale[start : start + UPSERT_CHUNK])
            by_type: dict[str, int] = {}
            for doc in docs:
                by_type[doc.type] = by_type.get(doc.type, 0) + 1
            return {"type": type_, "indexed": len(docs), "deleted": len(stale), "by_type": by_type}
        finally:
            await release_lease(self.sessionmaker, self.owner)

    # --------------------------------------------------------------------------------------------
    # Status
    # --------------------------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """Engine health, documents per type (database vs index) and the outbox backlog."""
        engine: dict[str, Any] = {"backend": getattr(self.backend, "name", type(self.backend).__name__)}
        try:
            engine["detail"] = await asyncio.to_thread(self.backend.health)
            engine["ok"] = True
        except Exception as exc:
            engine["ok"] = False
            engine["detail"] = str(exc) or type(exc).__name__
        index_counts: dict[str, int] | None = None
        if engine["ok"]:
            try:
                index_counts = await asyncio.to_thread(self.backend.counts_by_type)
            except Exception as exc:
                engine["detail"] = f"{engine['detail']} (counting failed: {exc})"
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            db_counts = await self.providers.counts(session)
            backlog = (await session.execute(select(func.count()).select_from(SearchOutbox))).scalar_one()
            due = (
                await session.execute(
                    select(func.count()).select_from(SearchOutbox).where(SearchOutbox.next_attempt_at <= now)
                )
            ).scalar_one()
            failing = (
                await session.execute(select(func.count()).select_from(SearchOutbox).where(SearchOutbox.attempts > 0))
            ).scalar_one()
            oldest = (await session.execute(select(func.min(SearchOutbox.created_at)))).scalar_one()
            last = (
                await session.execute(
                    select(SearchOutbox.last_error, SearchOutbox.attempts)
                    .where(SearchOutbox.attempts > 0)
                    .order_by(SearchOutbox.attempts.desc(), SearchOutbox.id.desc())
                    .limit(1)
                )
            ).first()
        types = sorted(set(db_counts) | set(index_counts or {}))
        return {
            "engine": engine,
            "types": {
                t: {
                    "label": self.providers.label(t),
                    "database": db_counts.get(t, 0),
                    "index": None if index_counts is None else index_counts.get(t, 0),
                }
                for t in types
            },
            "totals": {
                "database": sum(db_counts.values()),
                "index": None if index_counts is None else sum(index_counts.values()),
            },
            "outbox": {
                "backlog": int(backlog),
                "due": int(due),
                "failing": int(failing),
                "oldest": oldest.isoformat() if oldest else None,
                "max_attempts": int(last.attempts) if last else 0,
                "last_error": last.last_error if last else "",
            },
            "in_sync": bool(
                engine["ok"]
                and backlog == 0
                and index_counts is not None
                and all(db_counts.get(t, 0) == index_counts.get(t, 0) for t in types)
            ),
        }


def _apply(backend: SearchBackend, upserts: list[SearchDocument], deletes: list[str]) -> None:
    if upserts:
        backend.upsert(upserts)
    if deletes:
        backend.delete(deletes)
