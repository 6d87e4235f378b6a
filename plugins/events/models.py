"""The events extension table: each event's start and end as indexed columns for listing by date.

The source of truth stays ``ContentItem.data["start"/"end"]``; ``events_schedule`` is a derived
copy kept in step by :func:`concelho.plugins.events.services.ensure_schedule`.
"""

from datetime import datetime

from concelho.suite import db  # noqa: F401  (naming convention)
from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


class EventSchedule(SQLModel, table=True):
    __tablename__ = "events_schedule"

    content_id: int = Field(
        foreign_key="core_content.id", primary_key=True, ondelete="CASCADE", sa_column_kwargs={"autoincrement": False}
    )
    starts_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    ends_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    #: ``ContentItem.updated_at`` when this row was computed; a different value means the row is stale.
    source_updated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
