"""Table of the directory plugin: what a person adds to their account for the staff directory."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class Profile(SQLModel, table=True):
    """Directory details of one user; name, e-mail, job title, department and phone live on ``core_user``."""

    __tablename__ = "directory_profile"

    user_id: int = Field(foreign_key="core_user.id", primary_key=True, ondelete="CASCADE")
    location: str = Field(default="", max_length=200)
    office_phone: str = Field(default="", max_length=40)
    mobile: str = Field(default="", max_length=40)
    photo_id: int | None = Field(default=None, foreign_key="core_media.id", ondelete="SET NULL")
    #: Which fields may appear on the public portal (see ``services.PUBLIC_FIELDS``).
    public_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Listed on the public org chart (decided by administrators; the person chooses the fields).
    show_on_portal: bool = Field(default=False)
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
