"""Migration 0008 builds the ``notifications`` table the model describes, with its one-row-per-key invariant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, insert
from sqlalchemy.exc import IntegrityError

from connector.store.models import Base, NotificationRow


def test_the_table_matches_the_model(engine: Engine) -> None:
    metadata = MetaData()
    Base.metadata.tables["notifications"].to_metadata(metadata)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
    assert [d for d in diff if "notifications" in repr(d)] == []
    assert "notifications" in Base.metadata.tables


def test_an_idempotency_key_holds_one_row_and_a_status_must_be_known(engine: Engine) -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    row = {"idempotency_key": "assigned:email:1", "kind": "assigned", "channel": "email", "recipient": "a@b.example",
           "connection": "hubspot", "object": "contacts", "crm_id": "1", "payload": {}, "status": "pending",
           "attempts": 0, "created_at": now, "next_attempt_at": now}
    with engine.begin() as connection:
        connection.execute(insert(NotificationRow), row)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(NotificationRow), row)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(NotificationRow), {**row, "idempotency_key": "k2", "status": "lost"})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(NotificationRow), {**row, "idempotency_key": "k3", "channel": "fax"})
