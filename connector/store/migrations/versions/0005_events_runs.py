"""Sync runs of mode ``events``: the records a CRM pushed (webhooks), read by id and decided.

Revision ID: 0005_events_runs
Revises: 0004_deletion_checks
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision: str = "0005_events_runs"
down_revision: str | None = "0004_deletion_checks"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Allow ``sync_runs.mode = 'events'``."""
    with op.batch_alter_table("sync_runs", recreate="auto") as batch:
        batch.drop_constraint("ck_sync_runs_mode", type_="check")
        batch.create_check_constraint("ck_sync_runs_mode", "mode IN ('full', 'incremental', 'events')")


def downgrade() -> None:
    """Back to full and incremental runs only (an events run is kept as an incremental one)."""
    op.execute("UPDATE sync_runs SET mode = 'incremental' WHERE mode = 'events'")
    with op.batch_alter_table("sync_runs", recreate="auto") as batch:
        batch.drop_constraint("ck_sync_runs_mode", type_="check")
        batch.create_check_constraint("ck_sync_runs_mode", "mode IN ('full', 'incremental')")
