"""An owner's open SLA clocks, soonest due first, read from an index.

``GET /api/v1/clocks?owner=`` (and a rep's own clocks) asks for an owner's open clocks ordered by
``next_due_at``. The indexes so far found the owner's clocks but not in that order: SQLite sorted all
of them (the busiest owner of ``bench/api.py``'s store of a million decisions holds 6,084 open clocks:
17-30 ms a request, p99 124 ms); with ``(owner_email, next_due_at, id) WHERE status = 'open'`` it
reads the first hundred in order (1-4 ms).

Revision ID: 0020_clock_owner_due
Revises: 0019_jsonb
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0020_clock_owner_due"
down_revision: str | None = "0019_jsonb"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index an owner's open clocks by due time."""
    op.create_index(
        "ix_sla_clocks_open_owner_due",
        "sla_clocks",
        ["owner_email", "next_due_at", "id"],
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_sla_clocks_open_owner_due", table_name="sla_clocks")
