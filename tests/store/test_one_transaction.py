"""Everything one page of decisions writes commits or rolls back together; engines are set up right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import UnsupportedDatabase, migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.repositories import CrmRef, Repositories

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class PageFailed(Exception):
    """Stands for anything going wrong mid-page."""


def _write_page(repos: Repositories, run_id: int) -> None:
    relay_id = repos.identities.resolve(
        "person", "ada@globex.example", CrmRef("sf-prod", "Lead", "00Q1"), now=T0
    )
    repos.records.upsert_snapshot(
        "sf-prod",
        "Lead",
        "00Q1",
        kind="person",
        canonical={"email": "ada@globex.example"},
        relay_id=relay_id,
        seen_at=T0,
    )
    repos.assignments.record(
        "sf-prod",
        "Lead",
        "00Q1",
        owner_email="liam.walsh@northwind.example",
        relay_id=relay_id,
        assigned_at=T0,
    )
    repos.round_robin.save({"na-reps": {"next": "emma.rossi"}}, now=T0)
    repos.outbox.enqueue(
        "sf-prod",
        "Lead",
        "update",
        {"OwnerId": "005A"},
        "owner:00Q1",
        crm_id="00Q1",
        run_id=run_id,
        now=T0,
    )
    repos.audit.append(
        "sf-prod",
        "assigned",
        object_name="Lead",
        crm_id="00Q1",
        relay_id=relay_id,
        run_id=run_id,
        at=T0,
    )
    repos.quarantine.add(
        "sf-prod", "Lead", "Email: missing", {"Id": "00Q2"}, crm_id="00Q2", run_id=run_id, at=T0
    )
    repos.api_calls.add("sf-prod", "query", run_id=run_id, at=T0)
    repos.cursors.advance("sf-prod", "Lead", T0, "00Q1", now=T0)
    repos.sync_runs.add_counts(run_id, {"read": 2, "changed": 1, "routed": 1}, now=T0)


def _counts(db: Database) -> dict[str, int]:
    tables = [
        "identities",
        "identity_links",
        "records",
        "assignments",
        "round_robin_positions",
        "outbox",
        "audit_log",
        "quarantine",
        "api_calls",
        "sync_cursors",
    ]
    with db.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in tables
        }


def test_a_page_that_fails_midway_leaves_nothing_behind(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = Repositories(session).sync_runs.start("sf-prod", "incremental", now=T0)

    with pytest.raises(PageFailed), db.sessions.begin() as session:
        _write_page(Repositories(session), run_id)
        raise PageFailed

    assert set(_counts(db).values()) == {0}
    with db.sessions() as session:
        assert Repositories(session).sync_runs.get(run_id).counts["read"] == 0


def test_a_committed_page_is_all_there(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = Repositories(session).sync_runs.start("sf-prod", "incremental", now=T0)
    with db.sessions.begin() as session:
        _write_page(Repositories(session), run_id)

    assert set(_counts(db).values()) == {1}
    with db.sessions() as session:
        assert Repositories(session).sync_runs.get(run_id).counts["routed"] == 1


def test_sqlite_engines_use_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(db: Database) -> None:

    with pytest.raises(IntegrityError), db.sessions.begin() as session:
        Repositories(session).audit.append("sf-prod", "scored", run_id=999_999, at=T0)


def test_an_in_memory_sqlite_database_can_be_migrated_and_used() -> None:
    engine = create_engine_for("sqlite://")
    try:
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        with session_factory(engine).begin() as session:
            run_id = Repositories(session).sync_runs.start("demo", "full", now=T0)
        with session_factory(engine)() as session:
            assert Repositories(session).sync_runs.get(run_id).connection == "demo"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["postgresql://relay:secret@db.example/relay", "postgres://db.example/relay"]
)
def test_postgresql_urls_without_a_driver_use_psycopg_3(url: str) -> None:
    engine = create_engine_for(url)
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


def test_a_url_that_cannot_be_parsed_is_named_without_its_password() -> None:
    with pytest.raises(UnsupportedDatabase, match="cannot be parsed") as refused:
        create_engine_for("relay:s3cret@localhost")
    assert "s3cret" not in str(refused.value)
