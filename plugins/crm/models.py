"""Tables of the CRM plugin: citizens, cases, their history and attachments, the per-year reference counter."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, Text
from sqlmodel import Column, Field, SQLModel

CHANNELS = ("web", "counter", "phone", "letter", "fax", "email", "open311")
STATUSES = ("new", "assigned", "in_progress", "waiting_citizen", "answered", "closed", "reopened")
EVENT_KINDS = ("public_reply", "internal_note", "status_change", "citizen_reply", "attachment")


def _now() -> datetime:
    return datetime.now(UTC)


class Citizen(SQLModel, table=True):
    __tablename__ = "crm_citizen"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    nif: str = Field(default="", max_length=9, index=True)
    email: str = Field(default="", max_length=200, index=True)
    phone: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=500)
    consent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Counter(SQLModel, table=True):
    """The last reference number handed out per year (incremented inside the case's transaction)."""

    __tablename__ = "crm_counter"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    value: int = Field(default=0)


class Case(SQLModel, table=True):
    __tablename__ = "crm_case"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=40, unique=True)
    token_hash: str = Field(max_length=64)
    citizen_id: int | None = Field(default=None, foreign_key="crm_citizen.id", index=True)
    channel: str = Field(default="web", max_length=20)
    topic: str = Field(default="", max_length=80)
    service_code: str = Field(default="", max_length=40)
    department_id: int | None = Field(default=None, foreign_key="core_department.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="core_user.id", index=True)
    status: str = Field(default="new", max_length=20, index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    location_text: str = Field(default="", max_length=500)
    latitude: float | None = Field(default=None)
    longitude: float | None = Field(default=None)
    sla_due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CaseEvent(SQLModel, table=True):
    __tablename__ = "crm_case_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="crm_case.id", index=True)
    kind: str = Field(max_length=20)
    body: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Attachment(SQLModel, table=True):
    __tablename__ = "crm_attachment"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="crm_case.id", index=True)
    storage_key: str = Field(max_length=64)
    filename: str = Field(max_length=300)
    content_type: str = Field(max_length=100)
    size: int = Field(default=0)
    from_citizen: bool = Field(default=True)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
