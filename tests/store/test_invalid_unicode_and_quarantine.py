"""Lone surrogates (invalid Unicode) are stored safely, and a record without a CRM id can be quarantined.

Issue 7: a lone surrogate in any text field crashed the content hash of snapshots (and
the database refused it in text columns); quarantine must take records without an id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from connector.store import SyncStatus
from connector.store._types import content_hash
from connector.store.repositories import (
    Audit,
    AuditEntryIn,
    CrmRef,
    Identities,
    Quarantine,
    Records,
    SnapshotIn,
    SyncRuns,
)

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BROKEN = "Ada \ud800 Lovelace"  # what a CRM's broken "\ud800" JSON escape decodes to
SHOWN = "Ada \ufffd Lovelace"


def test_a_snapshot_with_a_lone_surrogate_is_stored_hashed_and_compared(db: Database) -> None:
    canonical = {"first_name": BROKEN, "email": "ada@x.example", "notes": ["ok", "\udfff"], "\ud801key": 1}
    with db.sessions.begin() as session:
        records = Records(session)
        assert records.upsert_snapshot("sf-prod", "Lead", "00Q1", kind="person", canonical=canonical, seen_at=T0)
        assert records.upsert_snapshots(
            "sf-prod", "Lead", [SnapshotIn("00Q2", "person", canonical)], seen_at=T0
        ) == {"00Q2"}
    with db.sessions.begin() as session:
        records = Records(session)
        # The same broken value read again is no change; the stored form is the replaced one.
        assert not records.upsert_snapshot("sf-prod", "Lead", "00Q1", kind="person", canonical=canonical, seen_at=T0)
        assert records.upsert_snapshots("sf-prod", "Lead", [SnapshotIn("00Q2", "person", canonical)], seen_at=T0) == set()
        stored = records.get("sf-prod", "Lead", "00Q1")
    assert stored is not None
    assert stored.canonical == {"first_name": SHOWN, "email": "ada@x.example", "notes": ["ok", "\ufffd"], "\ufffdkey": 1}
    assert stored.content_hash == content_hash(canonical) == content_hash(stored.canonical)


def test_quarantine_and_audit_keep_a_lone_surrogate_as_a_replacement_character(db: Database) -> None:
    with db.sessions.begin() as session:
        entry = Quarantine(session).add(
            "sf-prod", "Lead", f"LastName: {BROKEN} is not a name", {"LastName": BROKEN}, crm_id="00Q1", at=T0
        )
        audit = Audit(session)
        audit.append("sf-prod", "quarantined", object_name="Lead", crm_id="00Q1", detail={"reason": BROKEN}, at=T0)
        audit.append_many(
            [AuditEntryIn("sf-prod", "scored", object_name="Lead", crm_id="00Q1", detail={BROKEN: [BROKEN]}, at=T0)]
        )
    with db.sessions() as session:
        (kept,) = Quarantine(session).list("sf-prod")
        trail = Audit(session).for_record("sf-prod", "Lead", "00Q1")
    assert (kept.id, kept.reason, kept.payload) == (entry, f"LastName: {SHOWN} is not a name", {"LastName": SHOWN})
    assert [(e.action, e.detail) for e in trail] == [("quarantined", {"reason": SHOWN}), ("scored", {SHOWN: [SHOWN]})]


def test_keys_ids_and_run_errors_with_a_lone_surrogate_are_stored(db: Database) -> None:
    with db.sessions.begin() as session:
        relay_id = Identities(session).resolve_many(
            "person", [(f"{BROKEN}@x.example", CrmRef("sf-prod", "Lead", "00Q\udc80"))], now=T0
        )
        runs = SyncRuns(session)
        run_id = runs.start("sf-prod", "incremental", now=T0)
        runs.finish(run_id, SyncStatus.FAILED, error=f"MappingError: {BROKEN}", now=T0)
    with db.sessions() as session:
        assert Identities(session).find("person", f"{SHOWN}@x.example") == next(iter(relay_id.values()))
        assert Identities(session).relay_id_for(CrmRef("sf-prod", "Lead", "00Q\ufffd")) is not None
        assert SyncRuns(session).get(run_id).error == f"MappingError: {SHOWN}"


def test_a_record_without_a_crm_id_is_quarantined(db: Database) -> None:
    with db.sessions.begin() as session:
        run_id = SyncRuns(session).start("sf-prod", "incremental", now=T0)
        quarantine = Quarantine(session)
        entry = quarantine.add("sf-prod", "Lead", "Id: missing", {"LastName": "Nobody"}, crm_id=None,
                               run_id=run_id, at=T0)
        Audit(session).append("sf-prod", "quarantined", object_name="Lead", crm_id=None, run_id=run_id,
                              detail={"reason": "Id: missing"}, at=T0)
    with db.sessions() as session:
        (kept,) = Quarantine(session).list("sf-prod", run_id=run_id)
        (logged,) = Audit(session).for_run(run_id)
    assert (kept.id, kept.crm_id, kept.reason, kept.payload) == (entry, None, "Id: missing", {"LastName": "Nobody"})
    assert logged.crm_id is None and logged.action == "quarantined"
