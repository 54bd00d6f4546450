"""Append-only audit log, webhook inbox, quarantine, API call counts and round-robin positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import AuditAction, InvalidStoreValue
from connector.store.repositories import ApiCalls, Audit, Inbox, Quarantine, RoundRobin, SyncRuns

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _audit_one(db: Database) -> int:
    with db.sessions.begin() as session:
        run_id = SyncRuns(session).start("sf-prod", "incremental", now=T0)
        return Audit(session).append(
            "sf-prod",
            AuditAction.ASSIGNED,
            object_name="Lead",
            crm_id="00Q1",
            run_id=run_id,
            rules_version="r-1a2b",
            detail={"owner": "liam.walsh@northwind.example", "rule": "region-na", "at": T0},
            at=T0,
        )


def test_audit_entries_are_readable_per_record_and_per_run(db: Database) -> None:
    entry_id = _audit_one(db)
    with db.sessions() as session:
        audit = Audit(session)
        trail = audit.for_record("sf-prod", "Lead", "00Q1")
        by_run = audit.for_run(trail[0].run_id or 0)
    assert [entry.id for entry in trail] == [entry_id] == [entry.id for entry in by_run]
    assert trail[0].action == "assigned" and trail[0].rules_version == "r-1a2b"
    assert trail[0].detail == {
        "owner": "liam.walsh@northwind.example",
        "rule": "region-na",
        "at": "2026-03-02T09:00:00+00:00",
    }


def test_the_audit_repository_offers_no_way_to_change_history() -> None:
    public = {name for name in dir(Audit) if not name.startswith("_")}
    assert public == {"append", "append_many", "for_record", "for_run", "of_action"}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'scored'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = :id",
    ],
)
def test_the_database_refuses_to_update_or_delete_audit_entries(
    db: Database, statement: str
) -> None:
    entry_id = _audit_one(db)
    with pytest.raises(IntegrityError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text(statement), {"id": entry_id})
    with db.sessions() as session:
        assert [entry.action for entry in Audit(session).for_record("sf-prod", "Lead", "00Q1")] == [
            "assigned"
        ]


def test_audit_entries_need_an_action_and_json_detail(db: Database) -> None:
    with db.sessions.begin() as session:
        audit = Audit(session)
        with pytest.raises(InvalidStoreValue, match=r"audit_log\.action: must not be empty"):
            audit.append("sf-prod", "")
        with pytest.raises(InvalidStoreValue, match=r"audit_log\[scored\].detail"):
            audit.append("sf-prod", "scored", detail={"score": object()})


def test_a_redelivered_webhook_event_is_stored_once(db: Database) -> None:
    event = {"eventId": 7, "subscriptionType": "contact.propertyChange", "objectId": 101}
    with db.sessions.begin() as session:
        inbox = Inbox(session)
        assert inbox.store(
            "hubspot", "7:contact.propertyChange:101:1700000000000", [event], received_at=T0
        )
        assert not inbox.store("hubspot", "7:contact.propertyChange:101:1700000000000", [event])
        assert inbox.store(
            "salesforce", "7:contact.propertyChange:101:1700000000000", {"Id": "00Q1"}
        )
    with db.sessions.begin() as session:
        inbox = Inbox(session)
        waiting = inbox.unprocessed(lock=True)
        assert [(item.provider, item.payload) for item in waiting] == [
            ("hubspot", [event]),
            ("salesforce", {"Id": "00Q1"}),
        ]
        inbox.mark_processed(waiting[0].id, now=T0 + timedelta(seconds=2))
    with db.sessions() as session:
        assert [item.provider for item in Inbox(session).unprocessed()] == ["salesforce"]
        assert Inbox(session).unprocessed("hubspot") == []


def test_quarantine_keeps_bad_records_with_their_reason(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = SyncRuns(session).start("sf-prod", "full", now=T0)
        quarantine = Quarantine(session)
        quarantine.add(
            "sf-prod",
            "Lead",
            "Email: 'ada@' is not an email address",
            {"Email": "ada@"},
            crm_id="00Q1",
            run_id=run_id,
            at=T0,
        )
        quarantine.add(
            "sf-prod", "Lead", "LastName: missing", {"Id": "00Q2"}, crm_id="00Q2", run_id=run_id
        )
        with pytest.raises(InvalidStoreValue, match="reason: must not be empty"):
            quarantine.add("sf-prod", "Lead", "", {})
    with db.sessions() as session:
        kept = Quarantine(session).list("sf-prod", run_id=run_id)
    assert [(item.crm_id, item.reason) for item in kept] == [
        ("00Q2", "LastName: missing"),
        ("00Q1", "Email: 'ada@' is not an email address"),
    ]
    assert kept[1].payload == {"Email": "ada@"}


def test_every_api_call_is_counted_per_connection_and_run(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = SyncRuns(session).start("sf-prod", "full", now=T0)
        calls = ApiCalls(session)
        calls.add("sf-prod", "query", run_id=run_id)
        calls.add("sf-prod", "query", 3, run_id=run_id)
        calls.add("sf-prod", "composite", 2, run_id=run_id)
        calls.add("sf-prod", "composite", 5)
        calls.add("hubspot", "search", 4)
        with pytest.raises(InvalidStoreValue, match=r"api_calls\[sf-prod/query\].count"):
            calls.add("sf-prod", "query", -1)
    with db.sessions() as session:
        calls = ApiCalls(session)
        assert calls.totals("sf-prod", run_id=run_id) == {"composite": 2, "query": 4}
        assert calls.totals("sf-prod") == {"composite": 7, "query": 4}
        assert calls.total("sf-prod") == 11 and calls.total("hubspot") == 4


def test_a_finished_run_reports_the_api_calls_counted_for_it(db: Database) -> None:
    with db.sessions.begin() as session:
        runs = SyncRuns(session)
        run_id = runs.start("sf-prod", "full", now=T0)
        ApiCalls(session).add("sf-prod", "query", 3, run_id=run_id)
        ApiCalls(session).add("sf-prod", "composite", 2, run_id=run_id)
        ApiCalls(session).add("sf-prod", "composite", 9)  # outside the run
        finished = runs.finish(run_id, "succeeded", counts={"read": 450})
    assert finished.counts["api_calls"] == 5 and finished.counts["read"] == 450


def test_round_robin_positions_are_saved_and_replaced(db: Database) -> None:
    with db.sessions.begin() as session:
        robin = RoundRobin(session)
        assert robin.load() == {}
        robin.save(
            {"na-reps": {"current": {"liam": 1, "emma": -1}}, "emea-reps": {"current": {}}}, now=T0
        )
        robin.save({"na-reps": {"current": {"liam": -2, "emma": 2}}})
    with db.sessions() as session:
        robin = RoundRobin(session)
        assert robin.load(["na-reps"], for_update=True) == {
            "na-reps": {"current": {"liam": -2, "emma": 2}}
        }
        assert set(robin.load()) == {"na-reps", "emea-reps"}
