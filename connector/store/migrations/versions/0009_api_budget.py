"""One API budget per CRM connection: ``api_budgets``, shared by every process and worker.

A row per connection and window (``window``: the CRM's short rolling window, e.g. HubSpot's
10 seconds; ``day``: its daily allocation), read and written under a row lock by the API
governor (``connector/adapters/budget.py``): the grants still counted in the window, the calls
counted today, and what the CRM's rate-limit headers last said.

Revision ID: 0009_api_budget
Revises: 0008_notifications
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_api_budget"
down_revision: str | None = "0008_notifications"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``api_budgets``."""
    op.create_table(
        "api_budgets",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("limit_seen", sa.Integer(), nullable=True),
        sa.Column("spent", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=True),
        sa.Column("grants", sa.JSON(), nullable=False),
        sa.Column("seen", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('window', 'day')", name="ck_api_budgets_kind"),
        sa.CheckConstraint("spent >= 0", name="ck_api_budgets_spent_not_negative"),
        sa.PrimaryKeyConstraint("connection", "kind", name="pk_api_budgets"),
    )


def downgrade() -> None:
    """Drop ``api_budgets`` (the governors start counting afresh)."""
    op.drop_table("api_budgets")
