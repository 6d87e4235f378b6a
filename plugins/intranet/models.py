"""Tables of the intranet plugin: read receipts of corporate news and in-app notifications."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class ReadReceipt(SQLModel, table=True):
    """An employee opened (or confirmed reading) a corporate news item."""

    __tablename__ = "intranet_read_receipt"
    __table_args__ = (UniqueConstraint("content_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    content_id: int = Field(foreign_key="core_content.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="core_user.id", index=True, ondelete="CASCADE")
    read_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Notification(SQLModel, table=True):
    """Something for one user to look at (a mention, a reply, a new document), shown in the app and mailed."""

    __tablename__ = "intranet_notification"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="core_user.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=20)
    #: Who caused it (a display name kept as text: it stays readable if the account goes).
    actor: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=300)
    url: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)
    read_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    #: When the notification went out in an e-mail digest (each is mailed at most once).
    emailed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
