"""Tables of the workspaces plugin."""

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

VISIBILITIES = ("open", "private")
ROLES = ("owner", "editor", "member", "viewer")


def _now() -> datetime:
    return datetime.now(UTC)


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces_workspace"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    visibility: str = Field(default="private", max_length=10)
    #: 5 GiB does not fit PostgreSQL's ``integer``: a BIGINT column.
    quota_bytes: int = Field(default=5 * 1024**3, sa_type=BigInteger)
    archived: bool = Field(default=False)
    created_by: int | None = Field(default=None, foreign_key="core_user.id")
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Membership(SQLModel, table=True):
    __tablename__ = "workspaces_membership"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="core_user.id", index=True, ondelete="CASCADE")
    role: str = Field(default="member", max_length=10)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class JoinRequest(SQLModel, table=True):
    __tablename__ = "workspaces_join_request"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="core_user.id", ondelete="CASCADE")
    message: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Activity(SQLModel, table=True):
    """What happened in a workspace (joined, uploaded, commented…), newest first on its home."""

    __tablename__ = "workspaces_activity"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE")
    actor_id: int | None = Field(default=None, foreign_key="core_user.id")
    verb: str = Field(max_length=40)
    target: str = Field(default="", max_length=300)
    url: str = Field(default="", max_length=300)
    at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)


class Announcement(SQLModel, table=True):
    """A message editors and owners post on the workspace home; members comment on it."""

    __tablename__ = "workspaces_announcement"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE")
    author_id: int | None = Field(default=None, foreign_key="core_user.id")
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)


class Comment(SQLModel, table=True):
    __tablename__ = "workspaces_comment"

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="workspaces_announcement.id", index=True, ondelete="CASCADE")
    author_id: int | None = Field(default=None, foreign_key="core_user.id")
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
