"""Sync runs name the process that runs them, so a take-over can tell a dead process at once.

``holder`` is ``host:pid:start`` of the ``relay`` process (``start``: the process's start
time where the system tells it, so a reused pid is not taken for the old process).

Revision ID: 0002_sync_run_holder
Revises: 0001_initial
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_sync_run_holder"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``sync_runs.holder``."""
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Drop ``sync_runs.holder``."""
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("holder")
