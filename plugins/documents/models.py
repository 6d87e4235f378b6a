"""Tables of the documents plugin.

A document belongs to one workspace (and optionally a folder); its content lives in versions, each
pointing at a file of the content-addressed storage by SHA-256.  Trashing stamps ``trashed_at``
(a folder's descendants get the same stamp, so restoring the folder restores exactly them).
Shares give another workspace's members, or one employee, read or edit rights on a document or a
folder (and everything below it).
"""

from datetime import UTC, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

PERMISSIONS = ("read", "edit")


def _now() -> datetime:
    return datetime.now(UTC)


class Folder(SQLModel, table=True):
    __tablename__ = "documents_folder"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE")
    parent_id: int | None = Field(default=None, foreign_key="documents_folder.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    created_by: int | None = Field(default=None, foreign_key="core_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    trashed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)


class Document(SQLModel, table=True):
    __tablename__ = "documents_document"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE")
    folder_id: int | None = Field(default=None, foreign_key="documents_folder.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=255)
    #: Number of the current version (0 only while the first version is being added).
    current_version: int = Field(default=0)
    #: Size and type of the current version (for listings without a join).
    size: int = Field(default=0, sa_type=BigInteger)
    content_type: str = Field(default="", max_length=120)
    created_by: int | None = Field(default=None, foreign_key="core_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    trashed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    #: Where an import took it from (``corpus:workspace-001``); re-running an import finds it here.
    import_key: str | None = Field(default=None, max_length=300, index=True)


class Version(SQLModel, table=True):
    __tablename__ = "documents_version"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="documents_document.id", index=True, ondelete="CASCADE")
    number: int
    #: SHA-256 of the content: the key of the file in the storage.
    storage_key: str = Field(max_length=64, index=True)
    size: int = Field(sa_type=BigInteger)
    content_type: str = Field(max_length=120)
    filename: str = Field(max_length=255)
    uploaded_by: int | None = Field(default=None, foreign_key="core_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    #: Text extracted for full-text search (bounded; empty when nothing could be read).
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Share(SQLModel, table=True):
    __tablename__ = "documents_share"
    __table_args__ = (
        CheckConstraint("(document_id IS NULL) <> (folder_id IS NULL)", name="one_object"),
        CheckConstraint("(workspace_id IS NULL) <> (user_id IS NULL)", name="one_grantee"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: int | None = Field(default=None, foreign_key="documents_document.id", index=True, ondelete="CASCADE")
    folder_id: int | None = Field(default=None, foreign_key="documents_folder.id", index=True, ondelete="CASCADE")
    #: Members of this workspace get ``permission`` …
    workspace_id: int | None = Field(
        default=None, foreign_key="workspaces_workspace.id", index=True, ondelete="CASCADE"
    )
    #: … or this one employee.
    user_id: int | None = Field(default=None, foreign_key="core_user.id", index=True, ondelete="CASCADE")
    permission: str = Field(default="read", max_length=10)
    created_by: int | None = Field(default=None, foreign_key="core_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
