"""Login throttling: failures counted per account and per client IP, each in its own store."""

from __future__ import annotations

import hashlib

from litestar.stores.base import Store


class LoginThrottle:
    """Blocks logins after too many recent failures for the account or from the IP.

    Counts are kept for ``window`` seconds from the first failure.  The account key is the
    submitted username (existing or not), so throttling reveals nothing about accounts.
    """

    def __init__(self, account_store: Store, ip_store: Store, max_account: int, max_ip: int, window: int) -> None:
        if account_store is ip_store:
            raise ValueError("each limiter needs its own store")
        self.account_store = account_store
        self.ip_store = ip_store
        self.max_account = max_account
        self.max_ip = max_ip
        self.window = window

    @staticmethod
    def _key(value: str) -> str:
        return hashlib.sha256(value.strip().lower().encode()).hexdigest()

    async def _count(self, store: Store, key: str) -> int:
        raw = await store.get(key)
        return int(raw) if raw else 0

    async def blocked_for(self, username: str, ip: str) -> int:
        """Seconds until another attempt is allowed (0 when allowed now)."""
        waits = []
        for store, key, limit in (
            (self.account_store, self._key(username), self.max_account),
            (self.ip_store, self._key(ip), self.max_ip),
        ):
            if await self._count(store, key) >= limit:
                waits.append((await store.expires_in(key)) or self.window)
        return max(waits, default=0)

    async def failed(self, username: str, ip: str) -> None:
        for store, key in ((self.account_store, self._key(username)), (self.ip_store, self._key(ip))):
            count = await self._count(store, key)
            remaining = await store.expires_in(key) if count else None
            await store.set(key, str(count + 1), expires_in=remaining or self.window)

    async def succeeded(self, username: str) -> None:
        await self.account_store.delete(self._key(username))
