"""SLA clocks that act: one row per owner's clock on a person record.

A clock opens when a person record has an owner (Relay's routing, a named account, or a rep
who owns it by hand), records the steps fired (reminder, escalations, re-queue, nurture),
the first touch and the lead's stage, and closes when the lead is worked, re-queued,
nurtured or changes owner. At most one is open per record (partial unique index); the
periodic job finds due clocks through a partial index on ``next_due_at``.

Revision ID: 0007_sla_clocks
Revises: 0006_concurrent_events
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_sla_clocks"
down_revision: str | None = "0006_concurrent_events"
branch_labels: str | None = None
depends_on: str | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status = 'open'")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    """Create ``sla_clocks`` with its one-open-per-record and due-clock indexes."""
    op.create_table(
        "sla_clocks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        _str("connection", 100),
        _str("object", 100),
        _str("crm_id", 64),
        _str("relay_id", 36, nullable=True),
        _str("owner_email", 320),
        _str("owner_crm_id", 64, nullable=True),
        _str("tier", 64),
        _str("group_key", 200, nullable=True),
        _str("region", 64, nullable=True),
        _str("source", 32),
        _ts("started_at"),
        _str("stage", 16),
        _ts("stage_since"),
        _ts("first_touch_at", nullable=True),
        sa.Column("fired", sa.JSON(), nullable=False),
        _ts("next_due_at", nullable=True),
        _str("status", 16),
        _str("closed_reason", 64, nullable=True),
        _ts("closed_at", nullable=True),
        _ts("updated_at"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_sla_clocks_status"),
        sa.CheckConstraint("stage IN ('new', 'contacted', 'other')", name="ck_sla_clocks_stage"),
        sa.PrimaryKeyConstraint("id", name="pk_sla_clocks"),
    )
    op.create_index("uq_sla_clocks_one_open", "sla_clocks", ["connection", "object", "crm_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("ix_sla_clocks_record", "sla_clocks", ["connection", "object", "crm_id", "id"])
    op.create_index("ix_sla_clocks_due", "sla_clocks", ["next_due_at"], sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("ix_sla_clocks_relay_id", "sla_clocks", ["relay_id"])


def downgrade() -> None:
    """Drop ``sla_clocks`` (the clocks' history goes; the audit log keeps every step fired)."""
    op.drop_index("ix_sla_clocks_relay_id", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_due", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_record", table_name="sla_clocks")
    op.drop_index("uq_sla_clocks_one_open", table_name="sla_clocks")
    op.drop_table("sla_clocks")
