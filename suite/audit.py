"""Append-only audit log of logins, failures, permission changes and admin actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .models import AuditEntry


def audit_entry(
    action: str,
    *,
    actor_id: int | None = None,
    actor: str = "",
    target: str = "",
    ip: str | None = None,
    **details: Any,
) -> AuditEntry:
    return AuditEntry(action=action, actor_id=actor_id, actor=actor, target=target, ip=ip, details=details)


async def record(session: AsyncSession, action: str, **kwargs: Any) -> None:
    """Add an audit row to ``session`` (committed with the caller's transaction)."""
    session.add(audit_entry(action, **kwargs))
