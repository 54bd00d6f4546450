"""Erasure of a data subject's personal data inside the audit log, which stays append-only otherwise.

``audit_log`` gains ``erased_at`` and ``erasure``. The triggers that refused every UPDATE now let
one kind through: a named erasure (``relay forget-person``), which sets ``erasure`` (its name: the
subject's pseudonymous key) and ``erased_at``, and may change nothing but ``detail`` besides. An
entry is erased once per subject: ``erased_at`` goes from NULL to a time, or, for an entry that
names two people, forward to a later time under another erasure's name. Every other UPDATE, every DELETE and TRUNCATE are refused as before.

Revision ID: 0017_privacy
Revises: 0016_console
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017_privacy"
down_revision: str | None = "0016_console"
branch_labels: str | None = None
depends_on: str | None = None

_UNCHANGED = ("id", "at", "run_id", "connection", "object", "crm_id", "relay_id", "action", "rules_version")
"""The columns an erasure may not change (``detail`` is what it rewrites)."""

_SQLITE_ERASURE = " AND ".join(
    ["NEW.erased_at IS NOT NULL", "NEW.erasure IS NOT NULL", "NEW.erasure <> ''",
     "(OLD.erased_at IS NULL OR (NEW.erased_at > OLD.erased_at AND NEW.erasure <> OLD.erasure))"]
    + [f"NEW.{column} IS OLD.{column}" for column in _UNCHANGED]
)
_POSTGRESQL_ERASURE = " AND ".join(
    ["NEW.erased_at IS NOT NULL", "NEW.erasure IS NOT NULL", "NEW.erasure <> ''",
     "(OLD.erased_at IS NULL OR (NEW.erased_at > OLD.erased_at AND NEW.erasure <> OLD.erasure))"]
    + [f"NEW.{column} IS NOT DISTINCT FROM OLD.{column}" for column in _UNCHANGED]
)

_SQLITE_APPEND_ONLY = """
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed'); END
"""
_SQLITE_ERASURE_ONLY = f"""
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    WHEN NOT ({_SQLITE_ERASURE})
    BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed (only a named erasure may rewrite a detail)');
    END
"""

_POSTGRESQL_APPEND_ONLY = """
    CREATE OR REPLACE FUNCTION relay_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
"""
_POSTGRESQL_ERASURE_ONLY = f"""
    CREATE OR REPLACE FUNCTION relay_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF {_POSTGRESQL_ERASURE} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'audit_log is append-only: UPDATE is not allowed (only a named erasure may rewrite a detail)'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
"""


def upgrade() -> None:
    """Add ``audit_log.erased_at`` and ``audit_log.erasure``; let a named erasure through the triggers."""
    dialect = op.get_bind().dialect.name
    # Plain ALTER TABLE (no batch copy): SQLite would rebuild the table and lose its triggers.
    op.add_column("audit_log", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("audit_log", sa.Column("erasure", sa.String(length=100), nullable=True))
    if dialect == "sqlite":
        op.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        op.execute(sa.text(_SQLITE_ERASURE_ONLY))
    elif dialect == "postgresql":
        op.execute(sa.text(_POSTGRESQL_ERASURE_ONLY))
    else:
        raise RuntimeError(f"Relay's migrations support SQLite and PostgreSQL, not {dialect!r}")


def downgrade() -> None:
    """Refuse every UPDATE again and drop the two columns (the erasures made stay made)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(sa.text("DROP TRIGGER audit_log_no_update"))
    else:
        op.execute(sa.text(_POSTGRESQL_APPEND_ONLY))
    op.drop_column("audit_log", "erasure")
    op.drop_column("audit_log", "erased_at")
    if dialect == "sqlite":
        op.execute(sa.text(_SQLITE_APPEND_ONLY))
