"""The migrations build the schema the models describe, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from connector.store import migrate
from connector.store.db import create_engine_for
from connector.store.errors import UnsupportedDatabase
from connector.store.models import AuditRow, Base, RecordRow

from .conftest import Database

EXPECTED_TABLES = {
    "sync_runs",
    "sync_cursors",
    "records",
    "identities",
    "identity_links",
    "assignments",
    "round_robin_positions",
    "outbox",
    "audit_log",
    "quarantine",
    "api_calls",
    "webhook_inbox",
    "sla_clocks",
    "notifications",
    "api_budgets",
}


def _diff(engine: Engine, metadata: MetaData) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_upgrade_brings_an_empty_database_to_head(empty_url: str) -> None:
    assert migrate.current_revision(empty_url) is None
    assert not migrate.is_up_to_date(empty_url)

    migrate.upgrade(empty_url)

    assert migrate.current_revision(empty_url) == migrate.head_revision()
    assert migrate.is_up_to_date(empty_url)
    engine = create_engine_for(empty_url)
    try:
        assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(db: Database) -> None:
    migrate.upgrade(db.url)
    assert migrate.is_up_to_date(db.url)


def test_migration_head_matches_the_models(db: Database) -> None:
    assert _diff(db.engine, Base.metadata) == []


def test_model_comparison_notices_a_table_the_migrations_lack(db: Database) -> None:
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table(
        "not_migrated",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(10)),
    )

    diff = _diff(db.engine, metadata)

    assert [entry[0] for entry in diff if isinstance(entry, tuple)] == ["add_table"]


def test_invariant_indexes_are_partial(db: Database) -> None:
    indexes = {index["name"]: index for index in inspect(db.engine).get_indexes("sync_runs")}
    assert indexes["uq_sync_runs_one_running"]["unique"]
    with db.engine.connect() as connection:
        if db.backend == "sqlite":
            definitions = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'uq_%'"
                )
            ).all()
        else:
            definitions = connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'uq_%'"
                )
            ).all()
    by_name = {name: sql.lower() for name, sql in definitions}
    assert (
        "where" in by_name["uq_sync_runs_one_running"]
        and "running" in by_name["uq_sync_runs_one_running"]
    )
    assert (
        "where" in by_name["uq_assignments_one_active"]
        and "active" in by_name["uq_assignments_one_active"]
    )


def test_downgrade_then_upgrade_round_trips(db: Database) -> None:
    with db.engine.begin() as connection:
        from alembic import command

        command.downgrade(migrate.alembic_config(connection), "base")
    assert migrate.current_revision(db.engine) is None
    assert not (EXPECTED_TABLES & set(inspect(db.engine).get_table_names()))

    migrate.upgrade(db.engine)

    assert migrate.is_up_to_date(db.engine)
    assert _diff(db.engine, Base.metadata) == []


@pytest.mark.parametrize("url", ["mysql://root@localhost/relay", "not a url at all"])
def test_unsupported_database_urls_are_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(UnsupportedDatabase, match="database URL"):
        create_engine_for(url)


@pytest.mark.parametrize(
    ("table", "columns", "values"),
    [
        (
            "sync_runs",
            "connection, mode, status, started_at, heartbeat_at, counts",
            "'c', 'full', 'paused', :at, :at, '{}'",
        ),
        (
            "sync_runs",
            "connection, mode, status, started_at, heartbeat_at, counts",
            "'c', 'partial', 'running', :at, :at, '{}'",
        ),
        ("identities", "relay_id, kind, key, created_at", "'r1', 'deal', 'k', :at"),
        (
            "assignments",
            "connection, object, crm_id, owner_email, assigned_at, status",
            "'c', 'Lead', '1', 'o@x', :at, 'pending'",
        ),
        (
            "outbox",
            "connection, object, operation, payload, idempotency_key, status, attempts, created_at",
            "'c', 'Task', 'delete', '{}', 'k', 'pending', 0, :at",
        ),
        (
            "outbox",
            "connection, object, operation, payload, idempotency_key, status, attempts, created_at",
            "'c', 'Task', 'create', '{}', 'k', 'lost', 0, :at",
        ),
    ],
    ids=[
        "run-status",
        "run-mode",
        "identity-kind",
        "assignment-status",
        "outbox-operation",
        "outbox-status",
    ],
)
def test_the_database_refuses_unknown_states(
    db: Database, table: str, columns: str, values: str
) -> None:
    at = "2026-03-02 09:00:00.000000"
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), {"at": at})


def test_json_documents_become_jsonb_on_postgresql_and_nul_characters_u_fffd_everywhere(empty_url: str) -> None:
    """0019: the snapshot and audit columns are ``jsonb`` on PostgreSQL (read inside by the dashboard);
    ``jsonb`` has no NUL, so what a PostgreSQL store held with one comes back with U+FFFD (SQLite's is
    left as it was), and new writes store U+FFFD on both."""
    from alembic import command

    engine = create_engine_for(empty_url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "0018_backtests")
        held = '{"first_name":"A\\u0000na","note":"C:\\\\u0000dir","tags":["\\u0000"]}'
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO records (connection, object, crm_id, kind, canonical, content_hash, deleted, "
                "first_seen, last_seen) VALUES ('hubspot', 'contacts', '1', 'person', :doc, 'h', false, "
                "'2026-12-07 09:00:00+00', '2026-12-07 09:00:00+00')"), {"doc": held})
            connection.execute(text(
                "INSERT INTO audit_log (at, connection, action, detail) VALUES "
                "('2026-12-07 09:00:00+00', 'hubspot', 'scored', :doc)"), {"doc": held})
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        types = {(c["name"]): str(c["type"]).lower() for c in inspect(engine).get_columns("records")}
        assert types["canonical"] == ("jsonb" if engine.dialect.name == "postgresql" else "json")
        nul = "\ufffd" if engine.dialect.name == "postgresql" else "\x00"
        expected = {"first_name": f"A{nul}na", "note": "C:\\u0000dir", "tags": [nul]}
        with engine.connect() as connection:
            assert connection.execute(select(RecordRow.canonical)).scalar_one() == expected
            assert connection.execute(select(AuditRow.detail)).scalar_one() == expected
        with engine.begin() as connection:  # a new write with a NUL: stored, not refused
            connection.execute(insert(AuditRow).values(at=datetime(2026, 12, 7, tzinfo=UTC), connection="hubspot",
                                                        action="scored", detail={"city": "Os\x00lo"}))
            found = connection.execute(select(AuditRow.detail).where(AuditRow.action == "scored")
                                       .order_by(AuditRow.id.desc())).scalars().first()
        assert found == {"city": "Os\ufffdlo"}
        assert _diff(engine, Base.metadata) == []
    finally:
        engine.dispose()
