"""A Litestar :class:`~litestar.stores.base.Store` kept in the database.

Shared by every worker process, so rate limits hold across ``suite serve --workers N``.
Each limiter gets its own namespace (its own store), never a shared one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.stores.base import NamespacedStore
from sqlalchemy import delete, select

from .db import Database
from .models import KeyValue
from .models import as_utc as _aware


def _expiry(expires_in: int | timedelta | None) -> datetime | None:
    if expires_in is None:
        return None
    seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
    return datetime.now(UTC) + timedelta(seconds=seconds)


class DatabaseStore(NamespacedStore):
    """Key/value store on the ``core_kv`` table, namespaced per limiter or cache."""

    def __init__(self, database: Database, namespace: str = "default") -> None:
        self.database = database
        self.namespace = namespace

    def with_namespace(self, namespace: str) -> DatabaseStore:
        return DatabaseStore(self.database, f"{self.namespace}.{namespace}")

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        async with self.database.session() as session:
            row = (
                await session.execute(select(KeyValue).where(KeyValue.namespace == self.namespace, KeyValue.key == key))
            ).scalar_one_or_none()
            if row is None:
                session.add(KeyValue(namespace=self.namespace, key=key, value=data, expires_at=_expiry(expires_in)))
            else:
                row.value = data
                row.expires_at = _expiry(expires_in)

    async def _row(self, key: str) -> KeyValue | None:
        async with self.database.session() as session:
            row = (
                await session.execute(select(KeyValue).where(KeyValue.namespace == self.namespace, KeyValue.key == key))
            ).scalar_one_or_none()
        if row is not None and row.expires_at is not None and _aware(row.expires_at) <= datetime.now(UTC):
            await self.delete(key)
            return None
        return row

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        row = await self._row(key)
        if row is None:
            return None
        if renew_for is not None and row.expires_at is not None:
            await self.set(key, row.value, renew_for)
        return row.value

    async def delete(self, key: str) -> None:
        async with self.database.session() as session:
            await session.execute(delete(KeyValue).where(KeyValue.namespace == self.namespace, KeyValue.key == key))

    async def delete_all(self) -> None:
        async with self.database.session() as session:
            await session.execute(delete(KeyValue).where(KeyValue.namespace == self.namespace))

    async def delete_expired(self) -> None:
        async with self.database.session() as session:
            await session.execute(
                delete(KeyValue).where(KeyValue.expires_at.is_not(None), KeyValue.expires_at < datetime.now(UTC))
            )

    async def exists(self, key: str) -> bool:
        return await self._row(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await self._row(key)
        if row is None or row.expires_at is None:
            return None
        return max(0, int((_aware(row.expires_at) - datetime.now(UTC)).total_seconds()))
