"""The console: API users (tokens stored hashed, a role each), the rule sets decisions were made under, paused
connections.

Revision ID: 0016_console
Revises: 0015_dispositions
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016_console"
down_revision: str | None = "0015_dispositions"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ROLES = "'admin', 'manager', 'rep', 'marketing', 'read_only'"


def upgrade() -> None:
    """Create ``api_users``, ``rules_versions`` and ``connection_states``."""
    op.create_table(
        "api_users",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"role IN ({_ROLES})", name="ck_api_users_role"),
        sa.PrimaryKeyConstraint("id", name="pk_api_users"),
        sa.UniqueConstraint("token_hash", name="uq_api_users_token_hash"),
    )
    op.create_index("ix_api_users_name", "api_users", ["name"])
    op.create_table(
        "rules_versions",
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_rules_versions"),
    )
    op.create_index("ix_rules_versions_first_seen", "rules_versions", ["first_seen"])
    op.create_table(
        "connection_states",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_by", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection", name="pk_connection_states"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("connection_states")
    op.drop_index("ix_rules_versions_first_seen", table_name="rules_versions")
    op.drop_table("rules_versions")
    op.drop_index("ix_api_users_name", table_name="api_users")
    op.drop_table("api_users")
