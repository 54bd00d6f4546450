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
_DASHBOARD_INDEXES: list[tuple[str, str, list[str], str | None]] = [
    ("ix_sla_clocks_started_at", "sla_clocks", ["started_at"], None),
    ("ix_sla_clocks_owner_started_at", "sla_clocks", ["owner_email", "started_at"], None),
    ("ix_sla_clocks_open_tier_started_at", "sla_clocks", ["tier", "started_at", "first_touch_at", "owner_email"],
     "status = 'open'"),
    ("ix_sla_clocks_open_owner_stage", "sla_clocks", ["owner_email", "stage", "stage_since", "started_at"],
     "status = 'open'"),
    ("ix_sla_clocks_owner_crm_id", "sla_clocks", ["connection", "owner_crm_id"], None),
    ("ix_audit_log_action_at", "audit_log", ["action", "at"], None),
    ("ix_assignments_assigned_at", "assignments", ["assigned_at", "owner_email", "tier"], None),
    ("ix_assignments_owner_crm_id", "assignments", ["connection", "owner_crm_id"], None),
    ("ix_api_calls_at", "api_calls", ["at"], None),
    ("ix_data_quality_measured_at", "data_quality", ["measured_at"], None),
    ("ix_records_kind", "records", ["kind"], None),
    # bench/api.py at 1,000,000 decisions: SQLite (no ANALYZE statistics) otherwise sorts every active
    # assignment, or an owner's, or every run of a connection for the admin API's lists.
    ("ix_assignments_active_owner_assigned", "assignments", ["owner_email", "assigned_at", "id"], "status = 'active'"),
    ("ix_assignments_active_assigned", "assignments", ["assigned_at", "id"], "status = 'active'"),
    ("ix_sync_runs_connection_id", "sync_runs", ["connection", "id"], None),
]
"""(name, table, columns, partial WHERE) of the dashboard's and the admin API's indexes."""


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
    # The dashboard's figures (connector/pipeline/dashboard.py) aggregate a period's rows through these.
    for name, table, columns, where in _DASHBOARD_INDEXES:
        op.create_index(name, table, columns, sqlite_where=sa.text(where) if where else None,
                        postgresql_where=sa.text(where) if where else None)


def downgrade() -> None:
    """Drop them."""
    for name, table, _columns, _where in reversed(_DASHBOARD_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("connection_states")
    op.drop_index("ix_rules_versions_first_seen", table_name="rules_versions")
    op.drop_table("rules_versions")
    op.drop_index("ix_api_users_name", table_name="api_users")
    op.drop_table("api_users")
