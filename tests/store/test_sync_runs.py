"""Sync runs: one running sync per connection, enforced by the database; crashed runs recoverable."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import (
    InvalidStoreValue,
    RunNotFound,
    RunNotRunning,
    SyncAlreadyRunning,
    SyncMode,
    SyncStatus,
)
from connector.store.repositories import COUNT_KEYS, SyncRuns

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_started_run_is_running_with_zero_counts(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = SyncRuns(session).start(
            "sf-prod", SyncMode.INCREMENTAL, object_name="Lead", now=T0
        )

    with db.sessions() as session:
        run = SyncRuns(session).get(run_id)
    assert run.status is SyncStatus.RUNNING
    assert run.connection == "sf-prod" and run.object == "Lead" and run.mode is SyncMode.INCREMENTAL
    assert run.started_at == T0 and run.started_at.tzinfo is not None
    assert run.counts == dict.fromkeys(COUNT_KEYS, 0)


def test_a_second_running_sync_of_the_same_connection_is_refused(db: Database) -> None:
    with db.sessions.begin() as session:
        first = SyncRuns(session).start("sf-prod", "full", now=T0)

    with db.sessions.begin() as session, pytest.raises(SyncAlreadyRunning) as refused:
        SyncRuns(session).start("sf-prod", "incremental", now=T0 + timedelta(minutes=1))

    assert refused.value.running_run_id == first
    assert "sf-prod" in str(refused.value) and str(first) in str(refused.value)


def test_the_refusal_leaves_the_callers_transaction_usable(db: Database) -> None:
    with db.sessions.begin() as session:
        SyncRuns(session).start("sf-prod", "full", now=T0)
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        with pytest.raises(SyncAlreadyRunning):
            runs.start("sf-prod", "full", now=T0)
        other = runs.start("hubspot", "full", now=T0)
    with db.sessions() as session:
        assert SyncRuns(session).get(other).status is SyncStatus.RUNNING


def test_other_connections_and_finished_runs_do_not_block(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        first = runs.start("sf-prod", "full", now=T0)
        runs.start("hubspot", "full", now=T0)
        runs.finish(first, SyncStatus.SUCCEEDED, counts={"read": 10}, now=T0 + timedelta(minutes=3))
        second = runs.start("sf-prod", "incremental", now=T0 + timedelta(minutes=4))
    assert second != first


def test_the_database_itself_refuses_a_second_running_row(db: Database) -> None:
    insert = text(
        "INSERT INTO sync_runs (connection, mode, status, started_at, heartbeat_at, counts) "
        "VALUES ('sf-prod', 'full', :status, :at, :at, '{}')"
    )
    with db.engine.begin() as connection:
        connection.execute(insert, {"status": "running", "at": "2026-03-02 09:00:00.000000"})
        connection.execute(insert, {"status": "succeeded", "at": "2026-03-02 09:00:00.000000"})
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(insert, {"status": "running", "at": "2026-03-02 09:00:00.000000"})


def test_finish_adds_counts_and_records_the_error(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        run_id = runs.start("sf-prod", "incremental", now=T0)
        runs.add_counts(
            run_id, {"read": 200, "changed": 12, "api_calls": 1}, now=T0 + timedelta(seconds=5)
        )
        runs.add_counts(run_id, {"read": 37, "changed": 3, "api_calls": 1})
        finished = runs.finish(
            run_id,
            "failed",
            counts={"errors": 1},
            error="Lead 00Q1: 503 from Salesforce",
            now=T0 + timedelta(minutes=1),
        )
    assert finished.status is SyncStatus.FAILED
    assert finished.counts == {
        "read": 237,
        "changed": 15,
        "routed": 0,
        "tasks": 0,
        "api_calls": 2,
        "errors": 1,
    }
    assert finished.error == "Lead 00Q1: 503 from Salesforce"
    assert finished.finished_at == T0 + timedelta(minutes=1)


@pytest.mark.parametrize("bad", [{"read": -1}, {"read": 1.5}, {"read": True}, {"": 1}])
def test_bad_counts_are_refused_naming_the_count(db: Database, bad: dict[str, object]) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        run_id = runs.start("sf-prod", "full", now=T0)
        with pytest.raises(InvalidStoreValue, match=r"sync_runs\.counts"):
            runs.add_counts(run_id, bad)  # type: ignore[arg-type]


def test_a_run_cannot_finish_as_running_or_start_with_an_unknown_mode(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        with pytest.raises(
            InvalidStoreValue, match=r"sync_runs.mode: 'sometimes' is not one of full, incremental"
        ):
            runs.start("sf-prod", "sometimes", now=T0)
        run_id = runs.start("sf-prod", "full", now=T0)
        with pytest.raises(InvalidStoreValue, match="finishes as one of"):
            runs.finish(run_id, "running")


def test_naive_start_times_are_refused(db: Database) -> None:
    with db.sessions.begin() as session, pytest.raises(InvalidStoreValue, match="naive datetime"):
        SyncRuns(session).start("sf-prod", "full", now=datetime(2026, 3, 2, 9, 0))


def test_a_crashed_run_is_marked_crashed_and_frees_the_connection(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        dead = runs.start("sf-prod", "incremental", now=T0)
        runs.heartbeat(dead, now=T0 + timedelta(minutes=2))
        alive = runs.start("hubspot", "incremental", now=T0 + timedelta(minutes=9))

    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        assert runs.mark_stale_runs_crashed("sf-prod", T0 + timedelta(minutes=1)) == []
        crashed = runs.mark_stale_runs_crashed(
            "sf-prod", T0 + timedelta(minutes=10), now=T0 + timedelta(minutes=15)
        )
        assert runs.mark_stale_runs_crashed("hubspot", T0 + timedelta(minutes=5)) == []
        replacement = runs.start("sf-prod", "incremental", now=T0 + timedelta(minutes=15))

    assert crashed == [dead]
    with db.sessions() as session:
        runs = SyncRuns(session)
        assert runs.get(dead).status is SyncStatus.CRASHED
        assert "no heartbeat" in (runs.get(dead).error or "")
        assert runs.get(alive).status is SyncStatus.RUNNING
        assert runs.running("sf-prod") is not None
        assert runs.running("sf-prod").id == replacement  # type: ignore[union-attr]


def test_the_next_run_takes_over_a_stale_one_only_when_asked(db: Database) -> None:
    with db.sessions.begin() as session:
        dead = SyncRuns(session).start("sf-prod", "incremental", now=T0)
    later = T0 + timedelta(hours=2)
    with db.sessions.begin() as session, pytest.raises(SyncAlreadyRunning):
        SyncRuns(session).start("sf-prod", "incremental", now=later)
    with db.sessions.begin() as session:
        new = SyncRuns(session).start(
            "sf-prod",
            "incremental",
            now=later,
            take_over_stale_before=later - timedelta(minutes=30),
        )
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        assert runs.get(dead).status is SyncStatus.CRASHED
        # The process of the crashed run comes back: it may not report success any more.
        with pytest.raises(RunNotRunning, match=f"sync run {dead} is 'crashed'"):
            runs.finish(dead, SyncStatus.SUCCEEDED)
        with pytest.raises(RunNotRunning):
            runs.heartbeat(dead)
        assert runs.get(new).status is SyncStatus.RUNNING


def test_two_sessions_racing_to_start_a_run_exactly_one_wins(db: Database) -> None:
    contenders = 4
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = []
    lock = threading.Lock()

    def contend() -> None:
        barrier.wait()
        try:
            with db.sessions.begin() as session:
                SyncRuns(session).start("sf-prod", "incremental", now=T0)
            outcome = "won"
        except SyncAlreadyRunning:
            outcome = "refused"
        except Exception as exc:  # pragma: no cover - reported in the assertion below
            outcome = f"error: {exc!r}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refused"] * (contenders - 1) + ["won"]
    with db.sessions() as session:
        running = session.execute(
            text("SELECT count(*) FROM sync_runs WHERE status = 'running'")
        ).scalar_one()
    assert running == 1


def test_unknown_runs_are_named_in_the_error(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        with pytest.raises(RunNotFound, match="sync run 4242 does not exist"):
            runs.get(4242)
        with pytest.raises(RunNotFound, match="4242"):
            runs.finish(4242, "succeeded")
        with pytest.raises(RunNotFound, match="4242"):
            runs.heartbeat(4242)
