"""Outgoing e-mail: always recorded in ``core_mail_outbox``; sent by SMTP when ``smtp_url`` is set.

Without SMTP (the default on a single machine) messages stay in the outbox, where an
administrator can read them (``suite mail list``); nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from sqlalchemy import DateTime, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Column, Field, SQLModel

from .settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


class MailMessage(SQLModel, table=True):
    __tablename__ = "core_mail_outbox"

    id: int | None = Field(default=None, primary_key=True)
    to: str = Field(max_length=300)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    attempts: int = Field(default=0)
    last_error: str = Field(default="", max_length=500)


async def queue_mail(session: AsyncSession, to: str, subject: str, body: str) -> MailMessage:
    """Record a message in the caller's transaction; :func:`send_pending` delivers it later."""
    message = MailMessage(to=to.strip()[:300], subject=subject.strip()[:300], body=body)
    session.add(message)
    return message


def _smtp_send(settings: Settings, message: MailMessage) -> None:
    url = urlparse(settings.smtp_url)
    email = EmailMessage()
    email["From"] = unquote(url.username or "noreply") if "@" in unquote(url.username or "") else "noreply@localhost"
    email["To"] = message.to
    email["Subject"] = message.subject
    email.set_content(message.body)
    port = url.port or (465 if url.scheme == "smtps" else 25)
    cls = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with cls(url.hostname or "localhost", port, timeout=10) as smtp:
        if url.scheme == "smtp+starttls":
            smtp.starttls()
        if url.username and url.password:
            smtp.login(unquote(url.username), unquote(url.password))
        smtp.send_message(email)


async def send_pending(session: AsyncSession, settings: Settings, limit: int = 50) -> int:
    """Send queued messages when SMTP is configured; returns how many were sent."""
    if not settings.smtp_url:
        return 0
    pending = (
        await session.execute(
            select(MailMessage).where(MailMessage.sent_at.is_(None), MailMessage.attempts < 5).limit(limit)
        )
    ).scalars()
    sent = 0
    for message in pending:
        try:
            await asyncio.to_thread(_smtp_send, settings, message)
            message.sent_at = _now()
            sent += 1
        except (OSError, smtplib.SMTPException) as exc:
            message.attempts += 1
            message.last_error = str(exc)[:500]
    await session.commit()
    return sent
