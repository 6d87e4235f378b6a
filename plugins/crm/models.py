"""Tables of the CRM plugin: citizens and their consents, interactions (every contact, any channel), cases with
their history and attachments, Open311 API keys and the per-year reference counter."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, Text
from sqlmodel import Column, Field, SQLModel

CHANNELS = ("web", "counter", "phone", "letter", "fax", "email", "open311")
#: Channels that count as "online" in the KPIs (the portal and apps through Open311).
ONLINE_CHANNELS = ("web", "open311")
DIRECTIONS = ("in", "out")
STATUSES = ("new", "assigned", "in_progress", "waiting_citizen", "answered", "closed", "reopened")
EVENT_KINDS = ("public_reply", "internal_note", "status_change", "citizen_reply", "attachment")


def _now() -> datetime:
    return datetime.now(UTC)


class Citizen(SQLModel, table=True):
    """A person the council is in contact with. Merged records stay (``merged_into_id``) so history is kept;
    erased ones are pseudonymised (``erased_at``) and keep only what the statistics need."""

    __tablename__ = "crm_citizen"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    #: Lower-case, accent-free name for look-ups and duplicate detection.
    name_folded: str = Field(default="", max_length=200, index=True)
    nif: str = Field(default="", max_length=9, index=True)
    email: str = Field(default="", max_length=200, index=True)
    phone: str = Field(default="", max_length=40, index=True)
    address: str = Field(default="", max_length=500)
    consent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    #: Id in the legacy CRM it was imported from (idempotent re-imports).
    external_id: str | None = Field(default=None, max_length=80, unique=True)
    merged_into_id: int | None = Field(default=None, foreign_key="crm_citizen.id", index=True, ondelete="SET NULL")
    erased_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Consent(SQLModel, table=True):
    """One consent given or withdrawn by a citizen (history, never overwritten)."""

    __tablename__ = "crm_consent"

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="crm_citizen.id", index=True, ondelete="CASCADE")
    purpose: str = Field(default="data_processing", max_length=40)  # data_processing, contact_email, newsletter…
    granted: bool = Field(default=True)
    channel: str = Field(default="web", max_length=20)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)


class Interaction(SQLModel, table=True):
    """Every contact with the council, whatever the channel and direction; cases link to the one that opened them."""

    __tablename__ = "crm_interaction"

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int | None = Field(default=None, foreign_key="crm_citizen.id", index=True, ondelete="SET NULL")
    case_id: int | None = Field(default=None, foreign_key="crm_case.id", index=True, ondelete="SET NULL")
    channel: str = Field(default="web", max_length=20, index=True)
    direction: str = Field(default="in", max_length=3)
    topic: str = Field(default="", max_length=80)
    service_code: str = Field(default="", max_length=40)
    department_id: int | None = Field(default=None, foreign_key="core_department.id", index=True, ondelete="SET NULL")
    staff_id: int | None = Field(default=None, foreign_key="core_user.id", index=True, ondelete="SET NULL")
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    occurred_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)
    external_id: str | None = Field(default=None, max_length=80, unique=True)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class InteractionFile(SQLModel, table=True):
    """A file kept with an interaction (a scanned letter, a fax, an e-mail attachment)."""

    __tablename__ = "crm_interaction_file"

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="crm_interaction.id", index=True, ondelete="CASCADE")
    storage_key: str = Field(max_length=64)
    filename: str = Field(max_length=300)
    content_type: str = Field(max_length=100)
    size: int = Field(default=0)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class ApiKey(SQLModel, table=True):
    """An Open311 client's key: only its SHA-256 is stored; the key is shown once when created."""

    __tablename__ = "crm_api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    last_used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


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
    department_id: int | None = Field(default=None, foreign_key="core_department.id", index=True, ondelete="SET NULL")
    assignee_id: int | None = Field(default=None, foreign_key="core_user.id", index=True, ondelete="SET NULL")
    status: str = Field(default="new", max_length=20, index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    location_text: str = Field(default="", max_length=500)
    latitude: float | None = Field(default=None)
    longitude: float | None = Field(default=None)
    sla_due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    #: When staff first sent the citizen a public reply (median time to answer).
    first_answered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    #: The case this duplicate was merged into (the duplicate is closed and keeps its history).
    merged_into_id: int | None = Field(default=None, foreign_key="crm_case.id", index=True, ondelete="SET NULL")
    #: Open311: the client's media URL, the key that filed it and the token handed back.
    media_url: str = Field(default="", max_length=500)
    api_key_id: int | None = Field(default=None, foreign_key="crm_api_key.id", ondelete="SET NULL")
    api_token: str | None = Field(default=None, max_length=64, unique=True)


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
