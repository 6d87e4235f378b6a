"""Raising, clearing and listing alerts (used by the web pages and the CLI alike)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from concelho.suite.audit import record
from concelho.suite.cache import bump_cache_generation
from concelho.suite.db import Reader, as_reader
from concelho.suite.i18n import N_
from concelho.suite.models import as_utc as _aware
from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import LEVELS, Alert


class AlertError(ValueError):
    """Bad alert input; the message names the field."""


@dataclass
class AlertInput:
    message: str
    level: str = "warning"
    message_en: str = ""
    link_url: str = ""
    ends_at: datetime | None = None

    def validate(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.message.strip():
            errors["message"] = N_("Write the alert message.")
        elif len(self.message) > 500:
            errors["message"] = N_("The message must have at most 500 characters.")
        if len(self.message_en) > 500:
            errors["message_en"] = N_("The message must have at most 500 characters.")
        if self.level not in LEVELS:
            errors["level"] = N_("Choose one of: info, warning, danger.")  # the LEVELS
        local = self.link_url.startswith("/") and not self.link_url.startswith(("//", "/\\"))
        if self.link_url and not (local or self.link_url.startswith("https://")):
            errors["link_url"] = N_("The link must be a local path (/…) or an https:// address.")
        if self.ends_at is not None and self.ends_at <= datetime.now(UTC):
            errors["ends_at"] = N_("The end must be in the future.")
        return errors


_NOW = bindparam("now", type_=Alert.__table__.c.ends_at.type)
_ACTIVE = (
    select(Alert.__table__)
    .where(Alert.cleared_at.is_(None), or_(Alert.ends_at.is_(None), Alert.ends_at > _NOW))
    .order_by(Alert.created_at.desc())
)


async def active_alerts(session: Reader | AsyncSession) -> list[Any]:
    """Alerts (rows of ``alerts_alert``) shown now: begun, not cleared, not ended; newest first."""
    now = datetime.now(UTC)
    rows = await as_reader(session).all(_ACTIVE, {"now": now})
    return [a for a in rows if _aware(a.starts_at) <= now]


async def all_alerts(session: AsyncSession, limit: int = 100) -> list[Alert]:
    return list((await session.execute(select(Alert).order_by(Alert.id.desc()).limit(limit))).scalars())


async def raise_alert(session: AsyncSession, data: AlertInput, actor: str) -> Alert:
    errors = data.validate()
    if errors:
        raise AlertError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    alert = Alert(
        message=data.message.strip(),
        message_en=data.message_en.strip(),
        level=data.level,
        link_url=data.link_url.strip(),
        ends_at=data.ends_at,
        created_by=actor,
    )
    session.add(alert)
    await session.flush()
    await bump_cache_generation(session)
    await record(session, "alerts.raised", actor=actor, target=f"alerts.alert:{alert.id}", level=alert.level)
    return alert


async def clear_alert(session: AsyncSession, alert_id: int, actor: str) -> Alert:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise AlertError(f"no alert with id {alert_id}")
    if alert.cleared_at is None:
        alert.cleared_at = datetime.now(UTC)
        await bump_cache_generation(session)
        await record(session, "alerts.cleared", actor=actor, target=f"alerts.alert:{alert.id}")
    return alert
