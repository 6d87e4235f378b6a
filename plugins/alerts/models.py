"""Tables of the alerts plugin."""

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

LEVELS = ("info", "warning", "danger")


def _now() -> datetime:
    return datetime.now(UTC)


class Alert(SQLModel, table=True):
    __tablename__ = "alerts_alert"

    id: int | None = Field(default=None, primary_key=True)
    message: str = Field(max_length=500)
    message_en: str = Field(default="", max_length=500)
    level: str = Field(default="warning", max_length=10)
    link_url: str = Field(default="", max_length=500)
    starts_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    ends_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    cleared_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    created_by: str = Field(default="", max_length=80)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
