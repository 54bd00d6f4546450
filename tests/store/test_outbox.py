"""The outbox: one row per idempotency key, drained in order, failures retried then given up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import IdempotencyKeyConflict, InvalidStoreValue, OutboxStatus, StoreError
from connector.store.repositories import Outbox, SyncRuns

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TASK = {
    "Subject": "Call Ada (Hot lead, 5 min SLA)",
    "WhoId": "00Q1",
    "OwnerId": "005A",
    "ActivityDate": "2026-03-02",
}


def _rows(db: Database) -> int:
    with db.engine.connect() as connection:
        count: int = connection.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    return count


def test_enqueueing_the_same_key_twice_keeps_one_row_and_returns_it(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = SyncRuns(session).start("sf-prod", "incremental", now=T0)
        first = Outbox(session).enqueue(
            "sf-prod", "Task", "create", TASK, "task:00Q1:sla", run_id=run_id, now=T0
        )
    with db.sessions.begin() as session:
        again = Outbox(session).enqueue(
            "sf-prod", "Task", "create", {**TASK, "Subject": "retried"}, "task:00Q1:sla"
        )

    assert again.id == first.id and again.payload == TASK
    assert first.status is OutboxStatus.PENDING and first.attempts == 0 and first.run_id == run_id
    assert _rows(db) == 1


def test_sessions_racing_to_enqueue_the_same_key_leave_one_row(db: Database) -> None:
    contenders = 4
    barrier = threading.Barrier(contenders)
    ids: list[int] = []
    errors: list[BaseException] = []

    def enqueue() -> None:
        barrier.wait()
        try:
            with db.sessions.begin() as session:
                message = Outbox(session).enqueue(
                    "sf-prod", "Task", "create", TASK, "task:race", now=T0
                )
            ids.append(message.id)
        except BaseException as exc:  # pragma: no cover - reported in the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=enqueue) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(ids) == contenders and len(set(ids)) == 1
    assert _rows(db) == 1


def test_the_database_refuses_a_duplicate_idempotency_key(db: Database) -> None:
    with db.sessions.begin() as session:
        Outbox(session).enqueue("sf-prod", "Task", "create", TASK, "task:00Q1:sla", now=T0)
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (connection, object, operation, payload, idempotency_key, status, attempts, created_at) "
                "VALUES ('sf-prod', 'Task', 'create', '{}', 'task:00Q1:sla', 'pending', 0, :at)"
            ),
            {"at": T0 if db.backend == "postgresql" else "2026-03-02 09:00:00.000000"},
        )


def test_a_key_reused_for_another_write_is_refused(db: Database) -> None:
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        outbox.enqueue(
            "sf-prod", "Lead", "update", {"OwnerId": "005A"}, "owner:00Q1:r1", crm_id="00Q1"
        )
        with pytest.raises(IdempotencyKeyConflict, match="owner:00Q1:r1"):
            outbox.enqueue(
                "sf-prod", "Lead", "update", {"OwnerId": "005A"}, "owner:00Q1:r1", crm_id="00Q2"
            )
        with pytest.raises(
            InvalidStoreValue, match=r"outbox\[owner:00Q9\].crm_id: an update needs"
        ):
            outbox.enqueue("sf-prod", "Lead", "update", {"OwnerId": "005A"}, "owner:00Q9")
        with pytest.raises(
            InvalidStoreValue, match="'delete' is not one of create, update, upsert"
        ):
            outbox.enqueue("sf-prod", "Lead", "delete", {}, "x", crm_id="00Q1")


def test_pending_returns_a_connections_unsent_messages_oldest_first(db: Database) -> None:
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        ids = [
            outbox.enqueue("sf-prod", "Task", "create", TASK, f"task:{n}", now=T0).id
            for n in range(5)
        ]
        outbox.enqueue("hubspot", "tasks", "create", TASK, "hs-task:1", now=T0)
        outbox.mark_sent(ids[0], crm_result={"id": "00T1", "success": True}, crm_id="00T1")
        outbox.mark_failed(ids[1], "503 Service Unavailable")
        outbox.mark_failed(ids[2], "FIELD_CUSTOM_VALIDATION_EXCEPTION: Subject", retriable=False)

    with db.sessions() as session:
        outbox = Outbox(session)
        pending = outbox.pending("sf-prod", limit=10, lock=True)
        assert [message.id for message in pending] == [ids[1], ids[3], ids[4]]
        assert [message.id for message in outbox.pending("sf-prod", limit=2)] == [ids[1], ids[3]]
        sent = outbox.get(ids[0])
        dead = outbox.get(ids[2])
        counts = outbox.counts("sf-prod")
    assert (
        sent.status is OutboxStatus.SENT
        and sent.crm_id == "00T1"
        and sent.crm_result == {"id": "00T1", "success": True}
    )
    assert sent.sent_at is not None and sent.attempts == 1
    assert (
        dead.status is OutboxStatus.DEAD
        and dead.last_error is not None
        and "Subject" in dead.last_error
    )
    assert counts == {
        OutboxStatus.PENDING: 2,
        OutboxStatus.SENT: 1,
        OutboxStatus.FAILED: 1,
        OutboxStatus.DEAD: 1,
    }


def test_a_failing_message_goes_dead_after_max_attempts(db: Database) -> None:
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        message = outbox.enqueue("sf-prod", "Task", "create", TASK, "task:1", now=T0)
        statuses = [
            outbox.mark_failed(message.id, f"503 attempt {n}", max_attempts=3).status
            for n in range(1, 4)
        ]
        with pytest.raises(StoreError, match="is dead"):
            outbox.mark_sent(message.id)
    assert statuses == [OutboxStatus.FAILED, OutboxStatus.FAILED, OutboxStatus.DEAD]


def test_marking_sent_twice_keeps_the_first_result(db: Database) -> None:
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        message = outbox.enqueue("sf-prod", "Task", "create", TASK, "task:1", now=T0)
        outbox.mark_sent(message.id, crm_result={"id": "00T1"}, now=T0 + timedelta(seconds=1))
        again = outbox.mark_sent(message.id, crm_result={"id": "00T2"})
        with pytest.raises(StoreError, match="already sent"):
            outbox.mark_failed(message.id, "late failure")
    assert again.crm_result == {"id": "00T1"} and again.sent_at == T0 + timedelta(seconds=1)


def test_newer_updates_of_several_records_take_over_their_waiting_ones_in_one_statement(db: Database) -> None:
    """A page that updates several records again folds each one's waiting update into the new one.

    Several superseded rows go in one executemany UPDATE (it failed on every backend when its
    WHERE held an IN list, which cannot be expanded per row).
    """
    from connector.store.repositories import OutboxMessageIn

    records = ["00Q1", "00Q2", "00Q3"]
    with db.sessions.begin() as session:
        Outbox(session).enqueue_many([
            OutboxMessageIn("sf-prod", "Lead", "update", {"fields": {"Title": f"old {r}", "OwnerId": "005A"}},
                            f"upd:old:{r}", crm_id=r) for r in records
        ], now=T0)
    with db.sessions.begin() as session:
        Outbox(session).enqueue_many([
            OutboxMessageIn("sf-prod", "Lead", "update", {"fields": {"OwnerId": "005B"}}, f"upd:new:{r}", crm_id=r)
            for r in records
        ], now=T0 + timedelta(minutes=1))

    with db.sessions.begin() as session:
        outbox = Outbox(session)
        for record in records:
            old, new = outbox.by_key(f"upd:old:{record}"), outbox.by_key(f"upd:new:{record}")
            assert old is not None and new is not None
            assert old.status is OutboxStatus.DEAD and old.last_error == f"superseded by upd:new:{record}"
            assert new.status is OutboxStatus.PENDING
            assert new.payload["fields"] == {"Title": f"old {record}", "OwnerId": "005B"}  # the newer value wins
