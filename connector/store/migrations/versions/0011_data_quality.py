"""Data quality: each sync run's figures per lead source.

One row per (run, lead source): person records decided, required fields filled and measured,
duplicates, invalid emails and phones, enrichment coverage (NULL: not measured), and the SOP
targets in force (``config/rules/quality.yaml``). Written in the run's final transaction
(``connector/pipeline/quality.py``); a run that never finished has no rows.

Revision ID: 0011_data_quality
Revises: 0010_enrichment_cache
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_data_quality"
down_revision: str | None = "0010_enrichment_cache"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``data_quality``."""
    op.create_table(
        "data_quality",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("completeness_percent", sa.Float(), nullable=True),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("duplicate_percent", sa.Float(), nullable=False),
        sa.Column("emails", sa.Integer(), nullable=False),
        sa.Column("invalid_emails", sa.Integer(), nullable=False),
        sa.Column("phones", sa.Integer(), nullable=False),
        sa.Column("invalid_phones", sa.Integer(), nullable=False),
        sa.Column("enriched", sa.Integer(), nullable=True),
        sa.Column("completeness_target", sa.Float(), nullable=False),
        sa.Column("duplicates_target", sa.Float(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("records > 0", name="ck_data_quality_records_positive"),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"], name="fk_data_quality_run_id_sync_runs"),
        sa.PrimaryKeyConstraint("run_id", "source", name="pk_data_quality"),
    )
    op.create_index("ix_data_quality_connection_measured_at", "data_quality", ["connection", "measured_at"])


def downgrade() -> None:
    """Drop ``data_quality`` (the figures of past runs are lost)."""
    op.drop_index("ix_data_quality_connection_measured_at", table_name="data_quality")
    op.drop_table("data_quality")
