"""Merges of duplicates (one row per set of one CRM object's records, recorded before the CRM is
asked) and the review queue of borderline pairs (a data steward's decision, never asked again).

Revision ID: 0012_merges
Revises: 0011_data_quality
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012_merges"
down_revision: str | None = "0011_data_quality"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``merges``."""
    op.create_table(
        "merges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("object", sa.String(length=100), nullable=False),
        sa.Column("set_key", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("survivor_id", sa.String(length=64), nullable=False),
        sa.Column("loser_ids", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name="ck_merges_status"),
        sa.CheckConstraint("mode IN ('merge', 'flag')", name="ck_merges_mode"),
        sa.PrimaryKeyConstraint("id", name="pk_merges"),
        sa.UniqueConstraint("connection", "object", "set_key", name="uq_merges_set"),
    )
    op.create_index("ix_merges_status", "merges", ["status"])
    op.create_table(
        "match_reviews",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("left_key", sa.String(length=300), nullable=False),
        sa.Column("right_key", sa.String(length=300), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint("status IN ('open', 'same', 'different')", name="ck_match_reviews_status"),
        sa.PrimaryKeyConstraint("id", name="pk_match_reviews"),
        sa.UniqueConstraint("left_key", "right_key", name="uq_match_reviews_pair"),
    )
    op.create_index("ix_match_reviews_status", "match_reviews", ["status"])


def downgrade() -> None:
    """Drop ``match_reviews`` and ``merges``."""
    op.drop_index("ix_match_reviews_status", table_name="match_reviews")
    op.drop_table("match_reviews")
    op.drop_index("ix_merges_status", table_name="merges")
    op.drop_table("merges")
