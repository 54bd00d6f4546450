"""Dispositions: the ledger of dispositions reps set on people (each acted on once) and the findings of
dispositions missing after a first touch (each found once).

Revision ID: 0015_dispositions
Revises: 0014_governance
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_dispositions"
down_revision: str | None = "0014_governance"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STATUSES = "'done', 'waiting', 'recycled', 'pending', 'converted', 'failed', 'superseded'"


def upgrade() -> None:
    """Create ``dispositions`` and ``disposition_findings``."""
    op.create_table(
        "dispositions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("object", sa.String(length=100), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("relay_id", sa.String(length=36), nullable=True),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("stamp", sa.String(length=40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recycle_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("excluded_owner_email", sa.String(length=320), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("new_owner_email", sa.String(length=320), nullable=True),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opportunity_id", sa.String(length=64), nullable=True),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_dispositions_status"),
        sa.PrimaryKeyConstraint("id", name="pk_dispositions"),
        sa.UniqueConstraint("connection", "object", "crm_id", "value", "stamp", name="uq_dispositions_value"),
    )
    op.create_index("ix_dispositions_due", "dispositions", ["connection", "status", "recycle_at"])
    op.create_index("ix_dispositions_relay_id", "dispositions", ["relay_id"])
    op.create_table(
        "disposition_findings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("object", sa.String(length=100), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("relay_id", sa.String(length=36), nullable=True),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("first_touch_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("task_key", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_disposition_findings"),
        sa.UniqueConstraint("connection", "key", name="uq_disposition_findings_key"),
    )
    op.create_index("ix_disposition_findings_record", "disposition_findings", ["connection", "object", "crm_id"])


def downgrade() -> None:
    """Drop ``disposition_findings`` and ``dispositions``."""
    op.drop_index("ix_disposition_findings_record", table_name="disposition_findings")
    op.drop_table("disposition_findings")
    op.drop_index("ix_dispositions_relay_id", table_name="dispositions")
    op.drop_index("ix_dispositions_due", table_name="dispositions")
    op.drop_table("dispositions")
