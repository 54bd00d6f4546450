"""PostgreSQL: ``records.canonical`` and ``audit_log.detail`` become ``jsonb``.

The report, the dashboard and the admin API read fields *inside* these two columns in SQL (a
snapshot's status, score, pipeline and stage; an audit entry's owner and step). ``json`` keeps the
text and parses the whole document again for every field read; ``jsonb`` is parsed once, when
written (the funnel's six fields of 62,500 snapshots: 3.2 s from ``json``, 0.15 s from ``jsonb``).

``jsonb`` refuses the NUL character (``\\u0000``), which ``json`` kept: Relay now writes U+FFFD
instead (``connector.store._types.json_text``), and this migration does the same to what a store
already holds. The rewrite takes a while on a large store (every row of both tables is rewritten,
under an exclusive lock: stop syncs and ``relay serve`` first). SQLite has one JSON type: nothing
changes there.

Revision ID: 0019_jsonb
Revises: 0018_backtests
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision: str = "0019_jsonb"
down_revision: str | None = "0018_backtests"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (("records", "canonical"), ("audit_log", "detail"))

_NUL = r"(?<!\\)((?:\\\\)*)\\u0000"
"""A ``\\u0000`` escape in JSON text: after an even run of backslashes (as in ``json_text``)."""


def upgrade() -> None:
    """``json`` -> ``jsonb`` on PostgreSQL, NUL escapes replaced by U+FFFD."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb USING ("
            f"CASE WHEN strpos({column}::text, '\\u0000') > 0 "
            f"THEN regexp_replace({column}::text, '{_NUL}', '\\1\\\\ufffd', 'g') "
            f"ELSE {column}::text END)::jsonb")


def downgrade() -> None:
    """Back to ``json`` (the text ``jsonb`` gives: keys in its order; NULs stay U+FFFD)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE json USING {column}::text::json")
