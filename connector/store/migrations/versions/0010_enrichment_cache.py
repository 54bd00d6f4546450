"""Enrichment: what each provider answered, cached with a time to live.

One row per (provider, kind, key): the canonical values a provider's answer mapped to (or that it
found nothing), the hash of the provider's URL and mapping when it answered, and when. Readers
decide freshness from ``fetched_at`` and the provider's TTL in enrichment.yaml; failures are
never stored (``connector/enrich/cache.py``).

Revision ID: 0010_enrichment_cache
Revises: 0009_api_budget
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_enrichment_cache"
down_revision: str | None = "0009_api_budget"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``enrichment_cache``."""
    op.create_table(
        "enrichment_cache",
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lookup_key", sa.String(length=320), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('company', 'person')", name="ck_enrichment_cache_kind"),
        sa.CheckConstraint("outcome IN ('found', 'not_found')", name="ck_enrichment_cache_outcome"),
        sa.PrimaryKeyConstraint("provider", "kind", "lookup_key", name="pk_enrichment_cache"),
    )
    op.create_index("ix_enrichment_cache_fetched_at", "enrichment_cache", ["fetched_at"])


def downgrade() -> None:
    """Drop ``enrichment_cache`` (every provider is asked afresh)."""
    op.drop_index("ix_enrichment_cache_fetched_at", table_name="enrichment_cache")
    op.drop_table("enrichment_cache")
