"""Saved backtests: ``relay backtest --save`` keeps a report for the console (``/dashboard/backtest``).

Revision ID: 0018_backtests
Revises: 0017_privacy
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0018_backtests"
down_revision: str | None = "0017_privacy"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``backtest_reports``."""
    op.create_table(
        "backtest_reports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("connection", sa.String(length=100), nullable=True),
        sa.Column("current_version", sa.String(length=128), nullable=False),
        sa.Column("candidate_version", sa.String(length=128), nullable=False),
        sa.Column("candidate_source", sa.String(length=1000), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("owners_changed", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backtest_reports"),
    )
    op.create_index("ix_backtest_reports_created_at", "backtest_reports", ["created_at"])


def downgrade() -> None:
    """Drop it (the saved reports with it)."""
    op.drop_index("ix_backtest_reports_created_at", table_name="backtest_reports")
    op.drop_table("backtest_reports")
