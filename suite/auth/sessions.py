"""Server-side login sessions in the database.

The cookie carries a random token; the table keeps only its SHA-256.  A token the
server never issued finds no row and is ignored (and its cookie cleared), so a
session id planted by an attacker can never become an authenticated session
(fixation).  Login always issues a brand-new token; a change of the user's roles
(``auth_version``) rotates the token on the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import AuthSession, User
from ..models import as_utc as _aware
from .permissions import CurrentUser, permissions_for

COOKIE_NAME = "suite_session"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class ResolvedSession:
    user: CurrentUser
    token_hash: str
    rotate_to: str | None = None  # new token to set when privileges changed


async def create_session(
    session: AsyncSession, user: User, max_age: int, ip: str | None = None, user_agent: str | None = None
) -> str:
    """Issue a new session token for ``user`` (the caller commits)."""
    token = new_token()
    session.add(
        AuthSession(
            id_hash=hash_token(token),
            user_id=user.id,
            expires_at=datetime.now(UTC) + timedelta(seconds=max_age),
            auth_version=user.auth_version,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token


async def destroy_session(session: AsyncSession, token: str | None) -> None:
    if token:
        await session.execute(delete(AuthSession).where(AuthSession.id_hash == hash_token(token)))


async def destroy_user_sessions(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))


async def resolve_session(session: AsyncSession, token: str, max_age: int) -> ResolvedSession | None:
    """The user behind ``token``, or None if unknown, expired or the account is disabled."""
    token_hash = hash_token(token)
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id_hash == token_hash)
        )
    ).first()
    if row is None:
        return None
    auth, user = row
    if _aware(auth.expires_at) <= datetime.now(UTC) or not user.is_active:
        await session.execute(delete(AuthSession).where(AuthSession.id_hash == token_hash))
        await session.commit()
        return None
    rotate_to = None
    if auth.auth_version != user.auth_version:
        rotate_to = new_token()
        await session.execute(delete(AuthSession).where(AuthSession.id_hash == token_hash))
        session.add(
            AuthSession(
                id_hash=hash_token(rotate_to),
                user_id=user.id,
                expires_at=datetime.now(UTC) + timedelta(seconds=max_age),
                auth_version=user.auth_version,
                ip=auth.ip,
                user_agent=auth.user_agent,
            )
        )
        await session.commit()
        token_hash = hash_token(rotate_to)
    perms = await permissions_for(session, user.id)
    current = CurrentUser(
        id=user.id,
        username=user.username,
        name=user.name,
        email=user.email,
        is_superuser=user.is_superuser,
        department_id=user.department_id,
        permissions=perms,
    )
    return ResolvedSession(user=current, token_hash=token_hash, rotate_to=rotate_to)
