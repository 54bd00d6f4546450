"""Indexes for the lookups a page makes by identity, so none of them scans a whole table.

A sync page looks up the active assignments of the identities it decides and the person
records of those identities in its connection; the owner propagation at the end of a run
joins every record of an object to the active assignments of its identity. Without an
index on ``assignments.relay_id`` that join scanned the assignments once per record
(10,000 leads: 4-6 seconds per object, growing with the square of the store), and SQLite
answered ``connection = ? AND kind = ? AND relay_id IN (...)`` by walking all of a
connection's records. A run's call count is summed by run id alone.

Revision ID: 0003_lookup_indexes
Revises: 0002_sync_run_holder
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_lookup_indexes"
down_revision: str | None = "0002_sync_run_holder"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index active assignments by identity, person records by connection and identity, calls by run."""
    op.create_index(
        "ix_assignments_active_relay_id",
        "assignments",
        ["relay_id"],
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_records_connection_kind_relay_id", "records", ["connection", "kind", "relay_id"])
    op.create_index("ix_api_calls_run_id", "api_calls", ["run_id"])


def downgrade() -> None:
    """Drop the three indexes."""
    op.drop_index("ix_api_calls_run_id", table_name="api_calls")
    op.drop_index("ix_records_connection_kind_relay_id", table_name="records")
    op.drop_index("ix_assignments_active_relay_id", table_name="assignments")
