"""Alerts sent through the notifier: one row per (decision, event kind, channel), sent exactly once.

Revision ID: 0008_notifications
Revises: 0007_sla_clocks
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_notifications"
down_revision: str | None = "0007_sla_clocks"
branch_labels: str | None = None
depends_on: str | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    """Create ``notifications``: a unique idempotency key, due and per-record indexes."""
    op.create_table(
        "notifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        _str("idempotency_key", 200),
        _str("kind", 32),
        _str("channel", 16),
        _str("recipient", 320),
        _str("connection", 100),
        _str("object", 100),
        _str("crm_id", 64),
        _str("relay_id", 36, nullable=True),
        _str("tier", 64, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        _str("status", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _str("provider_id", 200, nullable=True),
        _ts("created_at"),
        _ts("next_attempt_at"),
        _ts("claimed_until", nullable=True),
        _ts("sent_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'dead', 'skipped')", name="ck_notifications_status"
        ),
        sa.CheckConstraint("channel IN ('email', 'sms', 'slack')", name="ck_notifications_channel"),
        sa.CheckConstraint("kind <> ''", name="ck_notifications_kind_not_empty"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("idempotency_key", name="uq_notifications_idempotency_key"),
    )
    op.create_index("ix_notifications_status_next_attempt_at", "notifications", ["status", "next_attempt_at"])
    op.create_index("ix_notifications_record", "notifications", ["connection", "object", "crm_id"])


def downgrade() -> None:
    """Drop ``notifications`` (queued and sent alerts are forgotten)."""
    op.drop_index("ix_notifications_record", table_name="notifications")
    op.drop_index("ix_notifications_status_next_attempt_at", table_name="notifications")
    op.drop_table("notifications")
