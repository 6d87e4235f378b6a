"""Open311 API keys: created with a random secret shown once (only its SHA-256 is kept), checked on every
Open311 POST, revoked by id or by the prefix the listing shows."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from concelho.suite.audit import record
from concelho.suite.models import as_utc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ApiKey

#: Every key starts with this marker, so a leaked key is easy to recognise (secret scanners, logs).
KEY_MARKER = "o311_"
PREFIX_LENGTH = 12


class ApiKeyError(ValueError):
    """A key operation that cannot be done (bad name, unknown or ambiguous key)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """``o311_`` and 40 random URL-safe characters (240 bits)."""
    return KEY_MARKER + secrets.token_urlsafe(30)


def describe(key: ApiKey) -> dict[str, Any]:
    """What listings show of a key (never the key or its hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": as_utc(key.created_at).isoformat() if key.created_at else None,
        "last_used_at": as_utc(key.last_used_at).isoformat() if key.last_used_at else None,
        "revoked_at": as_utc(key.revoked_at).isoformat() if key.revoked_at else None,
        "active": key.revoked_at is None,
    }


async def create_key(session: AsyncSession, name: str, actor: str = "cli") -> tuple[ApiKey, str]:
    """A new key named ``name``; returns the row and the plain key (shown once, never stored)."""
    name = name.strip()
    if not name:
        raise ApiKeyError("the key needs a name (--name), e.g. the client application")
    if len(name) > 120:
        raise ApiKeyError("the name must have at most 120 characters")
    plain = new_key()
    key = ApiKey(name=name, key_hash=hash_key(plain), prefix=plain[:PREFIX_LENGTH])
    session.add(key)
    await session.flush()
    await record(session, "crm.apikey_created", actor=actor, target=f"crm.api_key:{key.id}", name=name)
    return key, plain


async def list_keys(session: AsyncSession, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list((await session.execute(query)).scalars())


async def find_key(session: AsyncSession, ident: str) -> ApiKey:
    """The key with id ``ident`` (digits) or whose prefix starts with ``ident`` (at least 6 characters)."""
    ident = ident.strip()
    if ident.isdigit():
        key = await session.get(ApiKey, int(ident))
        if key is None:
            raise ApiKeyError(f"no API key with id {ident}")
        return key
    if len(ident) < 6:
        raise ApiKeyError("give the key's id or at least 6 characters of its prefix (see `suite crm apikeys list`)")
    matches = [k for k in await list_keys(session) if k.prefix.startswith(ident[:PREFIX_LENGTH])]
    if len(ident) > PREFIX_LENGTH:  # a whole key was pasted: it must match exactly
        matches = [k for k in matches if hmac.compare_digest(k.key_hash, hash_key(ident))]
    if not matches:
        raise ApiKeyError(f"no API key with prefix {ident[:PREFIX_LENGTH]!r}")
    if len(matches) > 1:
        ids = ", ".join(str(k.id) for k in matches)
        raise ApiKeyError(f"prefix {ident!r} matches several keys (ids {ids}): revoke by id")
    return matches[0]


async def revoke_key(session: AsyncSession, ident: str, actor: str = "cli") -> ApiKey:
    """Revoke the key named by id or prefix; revoking twice is an error (nothing to do)."""
    key = await find_key(session, ident)
    if key.revoked_at is not None:
        raise ApiKeyError(f"API key {key.id} ({key.name}) is already revoked")
    key.revoked_at = datetime.now(UTC)
    await record(session, "crm.apikey_revoked", actor=actor, target=f"crm.api_key:{key.id}", name=key.name)
    return key


async def verify_key(session: AsyncSession, plain: str) -> ApiKey | None:
    """The active key ``plain`` is, or None (unknown, malformed or revoked); notes when it was last used."""
    if not plain or len(plain) > 200 or not plain.startswith(KEY_MARKER):
        return None
    key = (await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(plain)))).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    key.last_used_at = datetime.now(UTC)
    return key
