"""live listing index: the portal's listings and their counts read one covering index

Revision ID: core_0006
Revises: core_0005
Create Date: 2026-11-29 11:15:00

``ix_core_content_live`` holds every column a portal listing filters on (type, language, status,
audience, the publishing dates, category) with its entries in listing order (published_at, id), so
the count of a news list and the choice of its page's rows neither sort nor read the items
themselves (long bodies put those columns on overflow pages in SQLite).  It replaces
``ix_core_content_listing`` (type, language, status, published_at), whose leading columns it repeats.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "core_0006"
down_revision: str | Sequence[str] | None = "core_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: In listing order (published_at, then id) before the columns only read.
COLUMNS = [
    "type", "language", "status", "audience", "published_at", "id", "publish_at", "unpublish_at", "category",
]  # fmt: skip


def upgrade() -> None:
    op.create_index("ix_core_content_live", "core_content", COLUMNS, unique=False)
    op.drop_index("ix_core_content_listing", table_name="core_content")


def downgrade() -> None:
    op.create_index(
        "ix_core_content_listing", "core_content", ["type", "language", "status", "published_at"], unique=False
    )
    op.drop_index("ix_core_content_live", table_name="core_content")
