"""Workers claim stored events for a lease; a record is never held by two workers; a dead worker's claim runs out."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from connector.store.db import create_engine_for, session_factory
from connector.store.models import InboxRow, SyncMode
from connector.store.repositories import EventRecord, Inbox, SyncRuns
from tests.store.conftest import Database

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _store(db: Database, *events: tuple[str, str | None]) -> None:
    """Events (key, crm id) of connection hubspot, object contacts."""
    with db.sessions.begin() as session:
        Inbox(session).store_many("hubspot", [
            (key, {"connection": "hubspot", "object": "contacts", "crm_id": crm_id},
             EventRecord("hubspot", "contacts" if crm_id else None, crm_id)) for key, crm_id in events
        ], received_at=T0)


def _claim(db: Database, holder: str, *, at: datetime = T0, limit: int = 100) -> list[str]:
    with db.sessions.begin() as session:
        return [e.event_key for e in Inbox(session).claim(holder, now=at, lease=LEASE, limit=limit)]


def test_a_claimed_event_is_not_claimed_again_until_its_lease_runs_out(db: Database) -> None:
    _store(db, ("e1", "101"), ("e2", "102"))
    assert _claim(db, "worker-a") == ["e1", "e2"]
    assert _claim(db, "worker-b") == []
    assert _claim(db, "worker-b", at=T0 + LEASE - timedelta(seconds=1)) == []
    assert _claim(db, "worker-b", at=T0 + LEASE + timedelta(seconds=1)) == ["e1", "e2"]  # worker-a died


def test_events_of_a_record_another_worker_holds_wait_for_it(db: Database) -> None:
    _store(db, ("e1", "101"), ("e2", "102"))
    assert _claim(db, "worker-a", limit=1) == ["e1"]
    _store(db, ("e3", "101"), ("e4", None))  # record 101 changes again while worker-a decides it
    assert _claim(db, "worker-b") == ["e2", "e4"]  # e3 waits: 101 is worker-a's; an event of no record is free
    with db.sessions.begin() as session:
        inbox = Inbox(session)
        first = inbox.claim("worker-a", now=T0, lease=LEASE)  # worker-a's own claim goes on with the new event
        inbox.mark_processed_many([e.id for e in first], now=T0)
    assert _claim(db, "worker-c") == []  # e3 went with worker-a's record; e2 and e4 are worker-b's


def test_a_released_claim_is_free_at_once_and_a_processed_event_is_never_claimed(db: Database) -> None:
    _store(db, ("e1", "101"), ("e2", "102"))
    with db.sessions.begin() as session:
        inbox = Inbox(session)
        claimed = inbox.claim("worker-a", now=T0, lease=LEASE)
        inbox.mark_processed_many([claimed[0].id], now=T0)
        assert inbox.release([e.id for e in claimed], "worker-a") == 1  # only the unprocessed one
        assert inbox.backlog(now=T0) == {"waiting": 1, "claimed": 0, "expired": 0}
    assert _claim(db, "worker-b") == ["e2"]
    with db.sessions.begin() as session:
        assert Inbox(session).backlog(now=T0 + LEASE * 2) == {"waiting": 0, "claimed": 0, "expired": 1}


def test_only_the_connections_asked_for_are_claimed(db: Database) -> None:
    with db.sessions.begin() as session:
        Inbox(session).store_many("hubspot", [
            ("gone", {"connection": "old-portal"}, EventRecord("old-portal", "contacts", "1")),
            ("here", {"connection": "hubspot"}, EventRecord("hubspot", "contacts", "1")),
        ], received_at=T0)
        assert [e.event_key for e in Inbox(session).claim("w", now=T0, lease=LEASE, connections=["hubspot"])] == [
            "here"]


def test_four_workers_claiming_at_once_take_each_event_once_and_each_record_once(db: Database) -> None:
    _store(db, *[(f"e{i}", str(100 + i % 25)) for i in range(200)])
    engines = [create_engine_for(db.url) for _ in range(4)]
    taken: dict[str, list[tuple[str, str]]] = {}
    errors: list[BaseException] = []

    def work(name: str, index: int) -> None:
        sessions = session_factory(engines[index])
        mine: list[tuple[str, str]] = []
        try:
            for _ in range(20):
                with sessions.begin() as session:
                    claimed = Inbox(session).claim(name, now=T0, lease=LEASE, limit=7)
                    if claimed:
                        mine.extend((e.event_key, str(e.payload["crm_id"])) for e in claimed)
                        Inbox(session).mark_processed_many([e.id for e in claimed], now=T0)
        except BaseException as exc:  # reported below
            errors.append(exc)
        taken[name] = mine

    threads = [threading.Thread(target=work, args=(f"worker-{i}", i)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert not errors
    keys = [key for mine in taken.values() for key, _ in mine]
    assert sorted(keys) == sorted(f"e{i}" for i in range(200))  # every event once
    with db.sessions.begin() as session:
        assert session.scalars(select(InboxRow).where(InboxRow.processed_at.is_(None))).all() == []


def test_events_runs_go_on_beside_a_sync_and_beside_each_other(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        sync = runs.start("hubspot", SyncMode.INCREMENTAL, now=T0)
        first = runs.start("hubspot", SyncMode.EVENTS, now=T0)
        second = runs.start("hubspot", SyncMode.EVENTS, now=T0)
        assert len({sync, first, second}) == 3
        running = runs.running("hubspot")
        assert running is not None and running.id == sync  # the one reading sync is what blocks another
        later = runs.start("hubspot", SyncMode.EVENTS, now=T0 + timedelta(minutes=10),
                           take_over_stale_before=T0 + timedelta(minutes=5))
        assert runs.get(first).status.value == "crashed"  # a dead worker's events run is closed
        assert runs.get(sync).status.value == "running"  # ... and the reading sync is not touched by it
        assert later not in (first, second)


def test_an_events_run_of_a_process_that_is_gone_is_closed_as_crashed(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        dead = runs.start("hubspot", SyncMode.EVENTS, now=T0, holder="host:1:dead")
        alive = runs.start("hubspot", SyncMode.EVENTS, now=T0, holder="host:2:alive")
        reading = runs.start("hubspot", SyncMode.INCREMENTAL, now=T0, holder="host:1:dead")
        assert runs.mark_gone_events_runs_crashed("hubspot", lambda holder: holder.endswith("dead"), now=T0) == [dead]
        assert [runs.get(i).status.value for i in (dead, alive, reading)] == ["crashed", "running", "running"]
