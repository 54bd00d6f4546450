"""Handoff governance: findings about deals (each task created once), approvals and handoffs.

Revision ID: 0014_governance
Revises: 0013_review_tasks
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014_governance"
down_revision: str | None = "0013_review_tasks"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``governance_findings``, ``approvals`` and ``handoffs``."""
    op.create_table(
        "governance_findings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("object", sa.String(length=100), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("task_key", sa.String(length=200), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_governance_findings_status"),
        sa.PrimaryKeyConstraint("id", name="pk_governance_findings"),
        sa.UniqueConstraint("connection", "key", name="uq_governance_findings_key"),
    )
    op.create_index("ix_governance_findings_record", "governance_findings",
                    ["connection", "object", "crm_id", "status"])
    op.create_table(
        "approvals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("object", sa.String(length=100), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("matrix", sa.String(length=60), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("approver_title", sa.String(length=60), nullable=True),
        sa.Column("approver_email", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_key", sa.String(length=200), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('requested', 'approved')", name="ck_approvals_status"),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.UniqueConstraint("connection", "object", "crm_id", "matrix", "value", name="uq_approvals_value"),
    )
    op.create_index("ix_approvals_record", "approvals", ["connection", "object", "crm_id"])
    op.create_table(
        "handoffs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("object", sa.String(length=100), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_email", sa.String(length=200), nullable=True),
        sa.Column("receiver_email", sa.String(length=200), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
        sa.UniqueConstraint("connection", "object", "crm_id", "kind", name="uq_handoffs_record"),
    )
    op.create_index("ix_handoffs_kind", "handoffs", ["kind", "occurred_at"])


def downgrade() -> None:
    """Drop ``handoffs``, ``approvals`` and ``governance_findings``."""
    op.drop_index("ix_handoffs_kind", table_name="handoffs")
    op.drop_table("handoffs")
    op.drop_index("ix_approvals_record", table_name="approvals")
    op.drop_table("approvals")
    op.drop_index("ix_governance_findings_record", table_name="governance_findings")
    op.drop_table("governance_findings")
