"""Events runs side by side, and leased claims on the webhook inbox and the outbox.

* ``uq_sync_runs_one_running`` holds one running *reading* sync per connection (full or
  incremental: they move the cursor); ``events`` runs, which read only the records pushed to
  Relay, run beside it and beside each other (many workers).
* ``webhook_inbox`` names the record an event is about (``connection``, ``object``,
  ``crm_id``, copied from the payload) and who holds it (``claimed_by``, ``claimed_until``):
  a worker claims a batch of events for a lease; events of a record another worker holds
  wait, so one record is never decided by two workers at once; a worker that died leaves
  its claim to expire and the next pass takes the events again.
* ``outbox`` rows are claimed the same way by the writer that sends them, so writers of
  runs going on side by side send disjoint messages (never one message twice at once).

Revision ID: 0006_concurrent_events
Revises: 0005_events_runs
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006_concurrent_events"
down_revision: str | None = "0005_events_runs"
branch_labels: str | None = None
depends_on: str | None = None

_READING = "status = 'running' AND mode <> 'events'"
_ANY = "status = 'running'"


def _one_running(where: str) -> None:
    op.drop_index("uq_sync_runs_one_running", table_name="sync_runs")
    op.create_index("uq_sync_runs_one_running", "sync_runs", ["connection"], unique=True,
                    sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    """Let events runs run side by side; add the inbox's record and claim columns and the outbox's claim columns."""
    _one_running(_READING)
    with op.batch_alter_table("webhook_inbox") as batch:
        batch.add_column(sa.Column("connection", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("object", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("crm_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_webhook_inbox_record", "webhook_inbox", ["connection", "object", "crm_id"],
                    sqlite_where=sa.text("processed_at IS NULL"), postgresql_where=sa.text("processed_at IS NULL"))
    bind = op.get_bind()
    inbox = sa.table("webhook_inbox", sa.column("id", sa.BigInteger), sa.column("payload", sa.JSON),
                     sa.column("processed_at", sa.DateTime(timezone=True)), sa.column("connection", sa.String),
                     sa.column("object", sa.String), sa.column("crm_id", sa.String))
    for row in bind.execute(sa.select(inbox.c.id, inbox.c.payload).where(inbox.c.processed_at.is_(None))):
        payload: Any = row.payload
        if isinstance(payload, str):
            payload = json.loads(payload)
        if not isinstance(payload, dict):
            continue

        def text(key: str, size: int, payload: dict[str, Any] = payload) -> str | None:
            value = payload.get(key)
            return str(value) if value not in (None, "") and len(str(value)) <= size else None

        bind.execute(sa.update(inbox).where(inbox.c.id == row.id).values(
            connection=text("connection", 100), object=text("object", 100), crm_id=text("crm_id", 64)))


def downgrade() -> None:
    """One running sync of any mode per connection again; drop the inbox's and the outbox's new columns."""
    op.execute("UPDATE sync_runs SET status = 'crashed', error = 'stopped by a downgrade' "
               "WHERE status = 'running' AND mode = 'events'")
    _one_running(_ANY)
    op.drop_index("ix_webhook_inbox_record", table_name="webhook_inbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("webhook_inbox") as batch:
        for column in ("claimed_until", "claimed_by", "crm_id", "object", "connection"):
            batch.drop_column(column)
