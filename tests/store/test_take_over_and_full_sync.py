"""Taking over a live run, learning one was superseded, and what a full sync needs of the cursors.

Issue 7: ``relay sync --full`` failed with CursorMovedBackwards as soon as an object had
more than one page; a run taken over kept writing; ``relay runs`` needs every field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.store import (
    CursorMovedBackwards,
    RunNotRunning,
    RunSuperseded,
    SyncAlreadyRunning,
    SyncMode,
    SyncStatus,
)
from connector.store.repositories import Cursors, Records, Repositories, SyncRuns

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SHORT = timedelta(seconds=90)


# --- take-over -------------------------------------------------------------------------


def test_the_refusal_names_the_live_runs_id_start_and_last_heartbeat(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        live = runs.start("sf-prod", "incremental", now=T0)
        runs.heartbeat(live, now=T0 + timedelta(seconds=30))
    with db.sessions.begin() as session, pytest.raises(SyncAlreadyRunning) as caught:
        SyncRuns(session).start("sf-prod", "full", now=T0 + timedelta(seconds=40),
                                take_over_stale_before=T0 + timedelta(seconds=40) - SHORT)
    refused = caught.value
    assert (refused.running_run_id, refused.started_at, refused.heartbeat_at) == (
        live, T0, T0 + timedelta(seconds=30)
    )
    assert f"run {live} since {T0.isoformat()}" in str(refused)
    assert f"last heartbeat {(T0 + timedelta(seconds=30)).isoformat()}" in str(refused)
    with db.sessions() as session:
        assert SyncRuns(session).get(live).status is SyncStatus.RUNNING


def test_a_forced_take_over_supersedes_a_live_run_which_learns_it_at_its_next_write(db: Database) -> None:
    with db.sessions.begin() as session:
        live = SyncRuns(session).start("sf-prod", "incremental", now=T0)
    forced_at = T0 + timedelta(seconds=10)  # the live run's heartbeat is fresh
    with db.sessions.begin() as session:
        new = SyncRuns(session).start("sf-prod", "incremental", now=forced_at, take_over_stale_before=forced_at)
    with db.sessions() as session:
        runs = SyncRuns(session)
        assert runs.get(new).status is SyncStatus.RUNNING
        old = runs.get(live)
    assert old.status is SyncStatus.CRASHED and old.finished_at == forced_at
    assert old.error is not None and f"taken over by run {new}" in old.error

    # The superseded process writes its next page: the heartbeat refuses, the page rolls back.
    with pytest.raises(RunSuperseded) as caught, db.sessions.begin() as session:
        repos = Repositories(session)
        repos.records.upsert_snapshot("sf-prod", "Lead", "00Q1", kind="person", canonical={"n": 1}, seen_at=T0)
        repos.sync_runs.heartbeat(live, now=forced_at + timedelta(seconds=1))
    assert isinstance(caught.value, RunNotRunning) and caught.value.run_id == live
    assert f"taken over by run {new}" in str(caught.value)
    with db.sessions() as session:
        assert Records(session).get("sf-prod", "Lead", "00Q1") is None
        runs = SyncRuns(session)
        with pytest.raises(RunSuperseded):
            runs.add_counts(live, {"read": 1})
        with pytest.raises(RunSuperseded):
            runs.finish(live, SyncStatus.SUCCEEDED)
        session.rollback()


def test_a_finished_run_is_not_called_superseded(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        run_id = runs.start("sf-prod", "incremental", now=T0)
        runs.finish(run_id, SyncStatus.SUCCEEDED, now=T0)
    with db.sessions() as session:
        runs = SyncRuns(session)
        with pytest.raises(RunNotRunning) as caught:
            runs.heartbeat(run_id)
        assert not isinstance(caught.value, RunSuperseded)


def test_runs_list_and_show_get_every_field(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        first = runs.start("sf-prod", "full", now=T0)
        runs.add_counts(first, {"read": 250, "errors": 1}, now=T0 + timedelta(minutes=1))
        runs.finish(first, SyncStatus.FAILED, error="CrmError: limit reached", now=T0 + timedelta(minutes=2))
        other = runs.start("hs-prod", "incremental", now=T0 + timedelta(minutes=3))
        second = runs.start("sf-prod", "incremental", now=T0 + timedelta(minutes=4))
    with db.sessions() as session:
        runs = SyncRuns(session)
        assert [run.id for run in runs.recent()] == [second, other, first]
        assert [run.id for run in runs.recent("sf-prod", limit=1)] == [second]
        shown = runs.get(first)
    assert (shown.id, shown.connection, shown.mode, shown.status) == (first, "sf-prod", SyncMode.FULL, SyncStatus.FAILED)
    assert (shown.started_at, shown.heartbeat_at, shown.finished_at) == (
        T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    )
    assert shown.counts["read"] == 250 and shown.counts["errors"] == 1 and shown.error == "CrmError: limit reached"


# --- cursors for a full sync ---------------------------------------------------------------


def _incremental_done(db: Database) -> None:
    with db.sessions.begin() as session:
        Cursors(session).advance("sf-prod", "Lead", T0 + timedelta(days=30), "00Q9")


def test_a_full_sync_checkpoints_its_first_page_backwards_and_then_moves_forward(db: Database) -> None:
    _incremental_done(db)
    pages = [(T0, "00Q2"), (T0 + timedelta(days=1), "00Q5"), (T0 + timedelta(days=31), "00QA")]
    for number, (modified, last_id) in enumerate(pages):
        with db.sessions.begin() as session:
            Cursors(session).advance("sf-prod", "Lead", modified, last_id, now=T0, allow_backwards=number == 0)
        with db.sessions() as session:
            cursor = Cursors(session).get("sf-prod", "Lead")
            assert cursor is not None and cursor.position == (modified, last_id)
    # Incremental checkpoints still refuse to go back.
    with db.sessions.begin() as session, pytest.raises(CursorMovedBackwards):
        Cursors(session).advance("sf-prod", "Lead", T0, "00Q2")


def test_a_full_sync_without_allow_backwards_is_refused_as_before(db: Database) -> None:
    _incremental_done(db)
    with db.sessions.begin() as session, pytest.raises(CursorMovedBackwards):
        Cursors(session).advance("sf-prod", "Lead", T0, "00Q2")


def test_a_failed_first_page_of_a_full_sync_keeps_the_old_cursor(db: Database) -> None:
    _incremental_done(db)
    with pytest.raises(RuntimeError), db.sessions.begin() as session:
        Cursors(session).advance("sf-prod", "Lead", T0, "00Q2", allow_backwards=True)
        raise RuntimeError("the page failed after its checkpoint")
    with db.sessions() as session:
        cursor = Cursors(session).get("sf-prod", "Lead")
    assert cursor is not None and cursor.position == (T0 + timedelta(days=30), "00Q9")


def test_resetting_in_the_first_pages_transaction_works_too(db: Database) -> None:
    _incremental_done(db)
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        assert cursors.reset("sf-prod", "Lead") == 1
        assert cursors.reset("sf-prod", "Lead") == 0
        cursors.advance("sf-prod", "Lead", T0, "00Q2")
    with db.sessions() as session:
        cursor = Cursors(session).get("sf-prod", "Lead")
    assert cursor is not None and cursor.position == (T0, "00Q2")

