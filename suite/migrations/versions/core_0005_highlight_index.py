"""highlight index: the home page's highlights read a small partial index, not every item

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-11-29 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0005"
down_revision: str | Sequence[str] | None = "core_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As ``concelho.suite.content.models.HIGHLIGHT_CONDITION`` was when this revision was written.
CONDITION = "lower(CAST(tags AS VARCHAR)) LIKE '%destaque%' OR lower(CAST(tags AS VARCHAR)) LIKE '%highlight%'"


def upgrade() -> None:
    op.create_index(
        "ix_core_content_highlight",
        "core_content",
        ["language", "published_at"],
        unique=False,
        sqlite_where=sa.text(CONDITION),
        postgresql_where=sa.text(CONDITION),
    )


def downgrade() -> None:
    op.drop_index("ix_core_content_highlight", table_name="core_content")
