"""Sync cursors remember when deletions were last listed, so HubSpot's listing can wait.

HubSpot reports deletions only through the ``archived=true`` listing, which pages through
every archived record of an object whatever its age: on every scheduled run that was a call
per 100 archived records per object. A connection now lists them at most every
``deletions_every_minutes`` (HubSpot: 60); ``deletions_since`` is where the next listing
starts, so nothing deleted in between is missed.

Revision ID: 0004_deletion_checks
Revises: 0003_lookup_indexes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_deletion_checks"
down_revision: str | None = "0003_lookup_indexes"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``sync_cursors.deletions_checked_at`` and ``deletions_since`` (empty: list on the next run)."""
    with op.batch_alter_table("sync_cursors") as batch:
        batch.add_column(sa.Column("deletions_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deletions_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the two columns."""
    with op.batch_alter_table("sync_cursors") as batch:
        batch.drop_column("deletions_since")
        batch.drop_column("deletions_checked_at")
