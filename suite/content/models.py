"""Tables of the content store (core namespace ``core_``).

Every content item, whatever its type, is one ``core_content`` row; a plugin keeps the
fields particular to its type in ``ContentItem.data`` (validated by the type's field
specs) and, when it needs to query them, in its own extension table keyed by
``content_id``.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from .. import db  # noqa: F401  (naming convention)

STATUSES = ("draft", "review", "published", "archived")
AUDIENCES = ("public", "internal", "workspace")


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Tags that put an item among the home page's highlights (compared in lower case).
HIGHLIGHT_TAGS = ("destaque", "highlight")
#: The cheap text test for those tags (the exact tag match is made on the rows it returns).  The
#: partial index ``ix_core_content_highlight`` has it as its condition, and a query that repeats it
#: word for word reads that small index instead of every item (SQLite and PostgreSQL alike).
HIGHLIGHT_CONDITION = " OR ".join(f"lower(CAST(tags AS VARCHAR)) LIKE '%{tag}%'" for tag in HIGHLIGHT_TAGS)


class ContentItem(SQLModel, table=True):
    __tablename__ = "core_content"
    __table_args__ = (
        UniqueConstraint("type", "slug"),
        # The portal's listings and their counts, read from the index alone: a row of ``core_content``
        # keeps its text (body, body_html) before these columns, so with long articles SQLite would
        # otherwise follow each row's overflow pages just to test who may see it and when.  Equality on
        # the first four leaves the entries in listing order (``published_at``, then ``id``: read
        # backwards, newest first, with no sort even for ties or a page deep in the archive).
        Index(
            "ix_core_content_live",
            "type",
            "language",
            "status",
            "audience",
            "published_at",
            "id",
            "publish_at",
            "unpublish_at",
            "category",
        ),
        Index(
            "ix_core_content_highlight",
            "language",
            "published_at",
            sqlite_where=text(HIGHLIGHT_CONDITION),
            postgresql_where=text(HIGHLIGHT_CONDITION),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=60)
    slug: str = Field(max_length=200)
    title: str = Field(max_length=300)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body_html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    language: str = Field(default="pt", max_length=5)
    #: Items that translate each other share a group (the id of the original by convention).
    translation_group: str = Field(default="", max_length=40, index=True)
    audience: str = Field(default="public", max_length=20, index=True)
    workspace_id: int | None = Field(default=None, index=True)
    status: str = Field(default="draft", max_length=20)
    category: str = Field(default="", max_length=100, index=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    external_id: str | None = Field(default=None, max_length=120, unique=True)
    parent_id: int | None = Field(default=None, foreign_key="core_content.id", index=True)
    sort_order: int = Field(default=0)
    hero_image_id: int | None = Field(default=None, foreign_key="core_media.id")
    department_id: int | None = Field(default=None, foreign_key="core_department.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="core_user.id")
    publish_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    unpublish_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    review_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ContentRevision(SQLModel, table=True):
    """A snapshot of an item's editable fields, kept on every save."""

    __tablename__ = "core_content_revision"

    id: int | None = Field(default=None, primary_key=True)
    content_id: int = Field(foreign_key="core_content.id", index=True, ondelete="CASCADE")
    number: int = Field(default=1)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="draft", max_length=20)
    author_id: int | None = Field(default=None, foreign_key="core_user.id")
    note: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Media(SQLModel, table=True):
    """An image or document in the media library (file kept by the storage, content-addressed)."""

    __tablename__ = "core_media"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="document", max_length=20)  # image | document
    title: str = Field(max_length=300)
    alt_text: str = Field(default="", max_length=300)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=120)
    size: int = Field(default=0)
    sha256: str = Field(max_length=64, index=True)
    width: int | None = Field(default=None)
    height: int | None = Field(default=None)
    renditions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    audience: str = Field(default="public", max_length=20)
    uploaded_by: int | None = Field(default=None, foreign_key="core_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ContentAttachment(SQLModel, table=True):
    __tablename__ = "core_content_attachment"

    content_id: int = Field(foreign_key="core_content.id", primary_key=True, ondelete="CASCADE")
    media_id: int = Field(foreign_key="core_media.id", primary_key=True, ondelete="CASCADE")
    sort_order: int = Field(default=0)


class PageFeedback(SQLModel, table=True):
    """Answers to "was this page useful?"."""

    __tablename__ = "core_page_feedback"

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(max_length=300, index=True)
    useful: bool
    comment: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
