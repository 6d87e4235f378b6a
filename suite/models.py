"""Core tables (namespace ``core_``): people, organisation, access, sessions, audit."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from . import db  # noqa: F401  (installs the naming convention before tables are declared)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns: read them as the UTC they were stored in."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Department(SQLModel, table=True):
    """A unit of the council; the tree of departments is the org chart."""

    __tablename__ = "core_department"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=200)
    parent_id: int | None = Field(default=None, foreign_key="core_department.id", index=True)
    sort_order: int = Field(default=0)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)


class User(SQLModel, table=True):
    """Anyone who signs in: employees, staff with back-office duties, administrators."""

    __tablename__ = "core_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    email: str = Field(max_length=200, unique=True)
    name: str = Field(default="", max_length=200)
    password_hash: str = Field(default="", max_length=255)
    kind: str = Field(default="employee", max_length=20)  # employee | staff | admin
    is_active: bool = Field(default=True)
    is_superuser: bool = Field(default=False)
    employee_number: str | None = Field(default=None, max_length=40, unique=True)
    department_id: int | None = Field(default=None, foreign_key="core_department.id", index=True)
    job_title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    language: str = Field(default="pt", max_length=5)
    #: Bumped on every change of roles or groups; sessions from an older version are rotated.
    auth_version: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_login_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Role(SQLModel, table=True):
    """A named bundle of permissions (``news.publish`` …) granted to users or groups."""

    __tablename__ = "core_role"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    label: str = Field(default="", max_length=200)
    permissions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Group(SQLModel, table=True):
    __tablename__ = "core_group"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    label: str = Field(default="", max_length=200)


class UserRole(SQLModel, table=True):
    __tablename__ = "core_user_role"

    user_id: int = Field(foreign_key="core_user.id", primary_key=True, ondelete="CASCADE")
    role_id: int = Field(foreign_key="core_role.id", primary_key=True, ondelete="CASCADE")


class GroupRole(SQLModel, table=True):
    __tablename__ = "core_group_role"

    group_id: int = Field(foreign_key="core_group.id", primary_key=True, ondelete="CASCADE")
    role_id: int = Field(foreign_key="core_role.id", primary_key=True, ondelete="CASCADE")


class GroupMember(SQLModel, table=True):
    __tablename__ = "core_group_member"

    group_id: int = Field(foreign_key="core_group.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="core_user.id", primary_key=True, ondelete="CASCADE")


class AuthSession(SQLModel, table=True):
    """A server-side login session; the cookie holds a random id, the table its SHA-256."""

    __tablename__ = "core_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="core_user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    auth_version: int = Field(default=0)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class KeyValue(SQLModel, table=True):
    """Backing table of the database store (rate limiters, caches shared by workers)."""

    __tablename__ = "core_kv"
    __table_args__ = (UniqueConstraint("namespace", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=80)
    key: str = Field(max_length=255)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)


class AuditEntry(SQLModel, table=True):
    """Append-only record of security-relevant actions (a trigger forbids UPDATE/DELETE)."""

    __tablename__ = "core_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor: str = Field(default="", max_length=200)
    action: str = Field(max_length=80, index=True)
    target: str = Field(default="", max_length=200)
    ip: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
