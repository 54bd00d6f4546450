"""Review items as tasks for a data steward: the task's connection and id on each review item.

Revision ID: 0013_review_tasks
Revises: 0012_merges
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013_review_tasks"
down_revision: str | None = "0012_merges"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``task_connection`` and ``task_id`` to ``match_reviews``."""
    with op.batch_alter_table("match_reviews") as batch:
        batch.add_column(sa.Column("task_connection", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("task_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop the task columns."""
    with op.batch_alter_table("match_reviews") as batch:
        batch.drop_column("task_id")
        batch.drop_column("task_connection")
