"""Deletions, merges, quarantine, reassignments and outbox failures, a page at a time.

Each ``*_many`` method must leave the same rows and answer the same as the loop of
single-record calls it replaces; the loop runs the old statements (``_reference``), and
the single-record methods (now thin wrappers) are checked against them too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import InvalidStoreValue, OutboxMessageNotFound, OutboxStatus, StoreError
from connector.store.models import AssignmentRow, OutboxRow, QuarantineRow, RecordRow
from connector.store.repositories import (
    Assignment,
    AssignmentIn,
    Assignments,
    Outbox,
    OutboxMessage,
    OutboxMessageIn,
    Quarantine,
    QuarantineIn,
    Records,
    SnapshotIn,
)

from . import _reference as reference
from ._helpers import PAGE, SETTINGS, T0, result_of, rolled_back, statements, table
from .conftest import Database

EARLIER, LATER = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
BROKEN = "Ada \ud800"  # a lone surrogate, as a CRM's broken JSON escape decodes it

# --- records: deletions and merges ------------------------------------------------------

KNOWN = ["00Q1", "00Q2", "00Q3", "00Q4"]
record_ids = st.sampled_from([*KNOWN, "00Q9", BROKEN])
seen_times = st.sampled_from([EARLIER, LATER])


def _stored_records(session: Session) -> None:
    """Two live records, one deleted, one merged into 00W1, one whose id held a lone surrogate."""
    Records(session).upsert_snapshots(
        "sf-prod",
        "Lead",
        [
            SnapshotIn("00Q1", "person", {"n": 1}),
            SnapshotIn("00Q2", "person", {"n": 2}, deleted=True),
            SnapshotIn("00Q3", "person", {"n": 3}, merged_into="00W1"),
            SnapshotIn("00Q4", "person", {"n": 4}),
            SnapshotIn(BROKEN, "person", {"n": 5}),
        ],
        seen_at=T0,
    )
    Records(session).upsert_snapshots("hs-prod", "contacts", [SnapshotIn("00Q1", "person", {"n": 1})], seen_at=T0)


@SETTINGS
@given(ids=st.lists(record_ids, max_size=8), at=seen_times)
def test_mark_deleted_many_ends_as_marking_one_by_one(db: Database, ids: list[str], at: Any) -> None:
    scrubbed = [i.replace("\ud800", "\ufffd") for i in ids]  # the store keeps (and finds) ids as valid text
    with rolled_back(db) as session:
        _stored_records(session)
        expected = [i for i in scrubbed if reference.mark_deleted(session, "sf-prod", "Lead", i, at)]
        expected_rows = table(session, RecordRow)
    with rolled_back(db) as session:
        _stored_records(session)
        assert Records(session).mark_deleted_many("sf-prod", "Lead", ids, seen_at=at) == expected
        assert table(session, RecordRow) == expected_rows
    with rolled_back(db) as session:
        _stored_records(session)
        records = Records(session)
        assert [s for i, s in zip(ids, scrubbed, strict=True)
                if records.mark_deleted("sf-prod", "Lead", i, seen_at=at)] == expected
        assert table(session, RecordRow) == expected_rows


@SETTINGS
@given(
    pairs=st.lists(st.tuples(record_ids, st.sampled_from(["00W1", "00W2"])), max_size=8),
    at=seen_times,
)
def test_mark_merged_many_ends_as_marking_one_by_one(db: Database, pairs: list[tuple[str, str]], at: Any) -> None:
    scrubbed = [(loser.replace("\ud800", "\ufffd"), winner) for loser, winner in pairs]
    with rolled_back(db) as session:
        _stored_records(session)
        expected = [p for p in scrubbed if reference.mark_merged(session, "sf-prod", "Lead", *p, at)]
        expected_rows = table(session, RecordRow)
    with rolled_back(db) as session:
        _stored_records(session)
        assert Records(session).mark_merged_many("sf-prod", "Lead", pairs, seen_at=at) == expected
        assert table(session, RecordRow) == expected_rows
    with rolled_back(db) as session:
        _stored_records(session)
        records = Records(session)
        assert [s for p, s in zip(pairs, scrubbed, strict=True)
                if records.mark_merged("sf-prod", "Lead", *p, seen_at=at)] == expected
        assert table(session, RecordRow) == expected_rows


def test_mark_merged_many_checks_every_pair_before_writing_and_names_the_record(db: Database) -> None:
    with db.sessions.begin() as session:
        _stored_records(session)
    with db.sessions.begin() as session:
        records = Records(session)
        with pytest.raises(InvalidStoreValue, match=r"records\[sf-prod/Lead/00Q4\]\.merged_into: must not be empty"):
            records.mark_merged_many("sf-prod", "Lead", [("00Q1", "00W2"), ("00Q4", " ")], seen_at=LATER)
        with pytest.raises(InvalidStoreValue, match=r"records\[sf-prod/Lead\] merge #1: expected \(crm_id, merged_into\)"):
            records.mark_merged_many("sf-prod", "Lead", [("00Q1", "00W2"), "00Q4"], seen_at=LATER)  # type: ignore[list-item]
        with pytest.raises(InvalidStoreValue, match=r"records\[sf-prod/Lead\]\.seen_at: naive"):
            records.mark_deleted_many("sf-prod", "Lead", ["00Q1"], seen_at=LATER.replace(tzinfo=None))
        with pytest.raises(InvalidStoreValue, match=r"records\[sf-prod/Lead\] id #1: expected text, got int 7"):
            records.mark_deleted_many("sf-prod", "Lead", ["00Q1", 7], seen_at=LATER)  # type: ignore[list-item]
        snapshot = records.get("sf-prod", "Lead", "00Q1")
    assert snapshot is not None and (snapshot.merged_into, snapshot.deleted) == (None, False)


# --- quarantine -------------------------------------------------------------------------

payload_values = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=4), st.just(BROKEN))
quarantine_entries = st.lists(
    st.builds(
        QuarantineIn,
        connection=st.sampled_from(["sf-prod", "hs-prod"]),
        object_name=st.sampled_from(["Lead", "contacts"]),
        reason=st.sampled_from(["Email: 'x@' is not an email", f"LastName: {BROKEN} is not a name"]),
        payload=st.dictionaries(st.sampled_from(["Email", "LastName", BROKEN]), payload_values, max_size=3),
        crm_id=st.sampled_from([None, "00Q1", BROKEN]),
        run_id=st.none(),
        at=st.sampled_from([EARLIER, T0]),
    ),
    max_size=8,
)


@SETTINGS
@given(entries=quarantine_entries)
def test_add_many_keeps_the_same_entries_as_adding_one_by_one(db: Database, entries: list[QuarantineIn]) -> None:
    def added(ids: list[int], session: Session) -> None:
        assert ids == [row["id"] for row in table(session, QuarantineRow)]  # ascending, in the order given

    with rolled_back(db) as session:
        added([reference.quarantine_add(session, e.connection, e.object_name, e.reason, e.payload, crm_id=e.crm_id,
                                        run_id=e.run_id, at=e.at) for e in entries], session)
        expected_rows = table(session, QuarantineRow, without=("id",))
    with rolled_back(db) as session:
        added(Quarantine(session).add_many(entries), session)
        assert table(session, QuarantineRow, without=("id",)) == expected_rows
    with rolled_back(db) as session:
        quarantine = Quarantine(session)
        added([quarantine.add(e.connection, e.object_name, e.reason, e.payload, crm_id=e.crm_id, run_id=e.run_id,
                              at=e.at) for e in entries], session)
        assert table(session, QuarantineRow, without=("id",)) == expected_rows


def test_add_many_names_a_bad_entry_and_adds_none(db: Database) -> None:
    entries = [
        QuarantineIn("sf-prod", "Lead", "Email: bad", {"Email": "x@"}, crm_id="00Q1"),
        QuarantineIn("sf-prod", "Lead", "Revenue: not a number", {"AnnualRevenue": float("nan")}, crm_id="00Q2"),
    ]
    with db.sessions.begin() as session:
        with pytest.raises(
            InvalidStoreValue, match=r"quarantine\[sf-prod/Lead/00Q2\]\.payload\.AnnualRevenue: nan is not a finite"
        ):
            Quarantine(session).add_many(entries)
        assert Quarantine(session).list("sf-prod") == []


def test_add_many_stamps_entries_without_a_time_with_one_now(db: Database) -> None:
    with db.sessions.begin() as session:
        ids = Quarantine(session).add_many(
            [QuarantineIn("sf-prod", "Lead", f"Email: bad {n}", {}, crm_id=f"00Q{n}") for n in range(3)]
        )
        kept = Quarantine(session).list("sf-prod")
    assert [k.id for k in reversed(kept)] == ids and len({k.at for k in kept}) == 1


# --- assignments ------------------------------------------------------------------------

assignment_items = st.lists(
    st.builds(
        AssignmentIn,
        connection=st.just("sf-prod"),
        object_name=st.sampled_from(["Lead", "Contact"]),
        crm_id=st.sampled_from(["00Q1", "00Q2", "00Q3"]),
        owner_email=st.sampled_from(["ana@relay.example", "ben@relay.example"]),
        owner_crm_id=st.sampled_from([None, "005A"]),
        tier=st.sampled_from([None, "Warm"]),
        rule=st.sampled_from([None, "round_robin"]),
        reason=st.sampled_from([None, "round robin (emea)"]),
        score=st.sampled_from([None, 40, 80]),
        rules_version=st.sampled_from(["v1", "v2"]),
        relay_id=st.none(),
        sla_due=st.sampled_from([None, LATER]),
        assigned_at=st.sampled_from([T0, LATER]),
    ),
    max_size=8,
)


def _stored_assignments(session: Session) -> None:
    Assignments(session).record_new_many([
        AssignmentIn("sf-prod", "Lead", "00Q1", "ana@relay.example", tier="Warm", rule="round_robin",
                     rules_version="v1", assigned_at=EARLIER),
        AssignmentIn("sf-prod", "Contact", "00Q2", "ben@relay.example", owner_crm_id="005A", rules_version="v2",
                     assigned_at=EARLIER),
    ])


def _ledger(session: Session) -> tuple[dict[Any, list[dict[str, Any]]], dict[int, tuple[Any, int]]]:
    """Each record's assignments in order (without ids), and where each id stands in its record's history.

    Ids are surrogates: a loop inserts in the order given, a page in key order, and
    PostgreSQL does not roll sequences back; what must match is each record's history.
    """
    history: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    place: dict[int, tuple[Any, int]] = {}
    for row in table(session, AssignmentRow):
        key = (row["connection"], row["object"], row["crm_id"])
        place[row.pop("id")] = (key, len(history[key]))
        history[key].append(row)
    return dict(history), place


def _answers(answers: list[Assignment], place: dict[int, tuple[Any, int]]) -> list[tuple[Any, Assignment]]:
    return [(place[a.id], replace(a, id=0)) for a in answers]


@SETTINGS
@given(items=assignment_items)
def test_record_many_ends_as_recording_one_by_one(db: Database, items: list[AssignmentIn]) -> None:
    with rolled_back(db) as session:
        _stored_assignments(session)
        answers = [reference.record_assignment(session, item) for item in items]
        expected_history, place = _ledger(session)
        expected = _answers(answers, place)
    with rolled_back(db) as session:
        _stored_assignments(session)
        answers = Assignments(session).record_many(items)
        history, place = _ledger(session)
        assert history == expected_history
        assert _answers(answers, place) == expected
    with rolled_back(db) as session:
        _stored_assignments(session)
        assignments = Assignments(session)
        answers = [
            assignments.record(
                i.connection, i.object_name, i.crm_id, owner_email=i.owner_email, owner_crm_id=i.owner_crm_id,
                tier=i.tier, rule=i.rule, reason=i.reason, score=i.score, rules_version=i.rules_version,
                relay_id=i.relay_id, sla_due=i.sla_due, assigned_at=i.assigned_at,
            )
            for i in items
        ]
        history, place = _ledger(session)
        assert history == expected_history
        assert _answers(answers, place) == expected


def test_record_many_checks_every_item_before_writing(db: Database) -> None:
    with db.sessions.begin() as session:
        _stored_assignments(session)
    with db.sessions.begin() as session:
        assignments = Assignments(session)
        with pytest.raises(InvalidStoreValue, match=r"assignments\[sf-prod/Lead/00Q3\]\.owner_email: must not be empty"):
            assignments.record_many([
                AssignmentIn("sf-prod", "Lead", "00Q1", "ben@relay.example", assigned_at=LATER),
                AssignmentIn("sf-prod", "Lead", "00Q3", " ", assigned_at=LATER),
            ])
        active = assignments.active_for("sf-prod", "Lead", "00Q1")
    assert active is not None and active.owner_email == "ana@relay.example"


# --- outbox: failures, replaced payloads, cancellations ---------------------------------


def _stored_messages(session: Session) -> list[int]:
    """Messages pending, failed once, sent, dead and failed twice; the last id does not exist."""
    outbox = Outbox(session)
    outbox.enqueue_many(
        [OutboxMessageIn("sf-prod", "Lead", "update", {"fields": {"Status": str(n)}}, f"upd:{n}", crm_id=f"00Q{n}")
         for n in range(5)],
        now=T0,
    )
    ids = [message.id for message in outbox.pending("sf-prod")]
    reference.mark_failed(session, ids[1], "503", True, 5)
    reference.mark_sent(session, ids[2], crm_result={"id": "00Q2"}, crm_id=None, now=T0)
    reference.mark_failed(session, ids[3], "FIELD_CUSTOM_VALIDATION_EXCEPTION", False, 5)
    reference.mark_failed(session, ids[4], "503", True, 5)
    reference.mark_failed(session, ids[4], "503", True, 5)
    return [*ids, max(ids) + 1000]


def _messages(answers: Any, ids: list[int]) -> Any:
    """Answers with message ids as positions (PostgreSQL does not roll sequences back), or the error type."""
    if isinstance(answers, type):
        return answers
    return [(ids.index(m.id), replace(m, id=0)) for m in answers]


def _same_outcome(db: Database, loop: Any, bulk: Any) -> None:
    """``loop(session, ids)`` and ``bulk(session, ids)`` answer the same, and leave the same rows when they succeed."""
    with rolled_back(db) as session:
        ids = _stored_messages(session)
        expected = _messages(result_of(lambda: loop(session, ids)), ids)
        expected_rows = table(session, OutboxRow, without=("id",))
    with rolled_back(db) as session:
        ids = _stored_messages(session)
        answer = _messages(result_of(lambda: bulk(session, ids)), ids)
        assert answer == expected
        if not isinstance(answer, type):
            assert table(session, OutboxRow, without=("id",)) == expected_rows


errors = st.sampled_from(["503 Service Unavailable", f"INVALID_FIELD: {BROKEN}"])
positions = st.sampled_from([0, 1, 1, 3, 4, 4, 4, 2, 5])  # 2 is sent, 5 does not exist: those fail the call


@SETTINGS
@given(
    failures=st.lists(st.tuples(positions, errors, st.booleans()), max_size=8),
    max_attempts=st.sampled_from([3, 5]),
)
def test_mark_failed_many_ends_as_failing_one_by_one(
    db: Database, failures: list[tuple[int, str, bool]], max_attempts: int
) -> None:
    _same_outcome(
        db,
        lambda session, ids: [reference.mark_failed(session, ids[n], e, r, max_attempts) for n, e, r in failures],
        lambda session, ids: Outbox(session).mark_failed_many(
            [(ids[n], e, r) for n, e, r in failures], max_attempts=max_attempts
        ),
    )
    _same_outcome(
        db,
        lambda session, ids: [reference.mark_failed(session, ids[n], e, r, max_attempts) for n, e, r in failures],
        lambda session, ids: [
            Outbox(session).mark_failed(ids[n], e, retriable=r, max_attempts=max_attempts) for n, e, r in failures
        ],
    )


@SETTINGS
@given(
    replacements=st.lists(
        st.tuples(positions, st.dictionaries(st.sampled_from(["Status", BROKEN]), st.text(max_size=3)), errors),
        max_size=8,
    )
)
def test_replace_payload_many_ends_as_replacing_one_by_one(
    db: Database, replacements: list[tuple[int, dict[str, Any], str]]
) -> None:
    _same_outcome(
        db,
        lambda session, ids: [reference.replace_payload(session, ids[n], p, e) for n, p, e in replacements],
        lambda session, ids: Outbox(session).replace_payload_many([(ids[n], p, e) for n, p, e in replacements]),
    )
    _same_outcome(
        db,
        lambda session, ids: [reference.replace_payload(session, ids[n], p, e) for n, p, e in replacements],
        lambda session, ids: [Outbox(session).replace_payload(ids[n], p, e) for n, p, e in replacements],
    )


@SETTINGS
@given(cancellations=st.lists(st.tuples(positions, errors), max_size=8))
def test_cancel_many_ends_as_cancelling_one_by_one(db: Database, cancellations: list[tuple[int, str]]) -> None:
    _same_outcome(
        db,
        lambda session, ids: [reference.cancel(session, ids[n], reason) for n, reason in cancellations],
        lambda session, ids: Outbox(session).cancel_many([(ids[n], reason) for n, reason in cancellations]),
    )
    _same_outcome(
        db,
        lambda session, ids: [reference.cancel(session, ids[n], reason) for n, reason in cancellations],
        lambda session, ids: [Outbox(session).cancel(ids[n], reason) for n, reason in cancellations],
    )


def test_outbox_many_methods_check_everything_before_writing(db: Database) -> None:
    with db.sessions.begin() as session:
        ids = _stored_messages(session)
    pending, failed, sent, dead, _, missing = ids
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        with pytest.raises(OutboxMessageNotFound, match=str(missing)):
            outbox.mark_failed_many([(pending, "503", True), (missing, "503", True)])
        with pytest.raises(StoreError, match=r"\(upd:2\) was already sent"):
            outbox.cancel_many([(pending, "owner not written"), (sent, "owner not written")])
        with pytest.raises(StoreError, match=r"\(upd:3\) is dead; its payload cannot be replaced"):
            outbox.replace_payload_many([(failed, {"fields": {}}, "INVALID_FIELD"), (dead, {}, "INVALID_FIELD")])
        with pytest.raises(InvalidStoreValue, match=r"outbox\[upd:1\]\.payload\.fields\.Revenue: inf is not a finite"):
            outbox.replace_payload_many([(failed, {"fields": {"Revenue": float("inf")}}, "INVALID_FIELD")])
        with pytest.raises(InvalidStoreValue, match=r"mark_failed_many\[#0\]: retriable must be True or False"):
            outbox.mark_failed_many([(pending, "503", "yes")])  # type: ignore[list-item]
        assert (outbox.get(pending).status, outbox.get(failed).attempts) == (OutboxStatus.PENDING, 1)


def test_two_new_updates_of_one_record_in_a_page_leave_the_later_with_both(db: Database) -> None:
    """As if enqueued one after the other: the CRM never gets one record twice in a batch."""
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        assert outbox.enqueue_many([
            OutboxMessageIn("sf-prod", "Lead", "update", {"fields": {"Phone": "1", "Title": "VP"}}, "upd:a",
                            crm_id="00Q1"),
            OutboxMessageIn("sf-prod", "Lead", "update", {"fields": {"Phone": "2"}}, "upd:b", crm_id="00Q1"),
        ], now=T0) == 2
        earlier, later = outbox.by_key("upd:a"), outbox.by_key("upd:b")
        waiting = outbox.pending("sf-prod")
    assert earlier is not None and later is not None
    assert (earlier.status, earlier.last_error) == (OutboxStatus.DEAD, "superseded by upd:b")
    assert later.payload["fields"] == {"Phone": "2", "Title": "VP"}
    assert [m.idempotency_key for m in waiting] == ["upd:b"]


# --- a page costs a few statements per 500 records --------------------------------------


def test_a_page_of_deletions_merges_quarantine_reassignments_and_failures_costs_a_few_statements_per_500(
    db: Database,
) -> None:
    chunks = PAGE // 500
    ids = [f"00Q{n}" for n in range(PAGE)]
    with db.sessions.begin() as session:
        Records(session).upsert_snapshots("sf-prod", "Lead", [SnapshotIn(i, "person", {"n": 1}) for i in ids],
                                          seen_at=T0)
        Assignments(session).record_new_many([AssignmentIn("sf-prod", "Lead", i, "ana@relay.example") for i in ids])
        Outbox(session).enqueue_many([OutboxMessageIn("sf-prod", "Task", "create", {}, f"t:{i}") for i in ids])
    costs: dict[str, int] = {}
    with db.sessions.begin() as session:
        session.execute(select(1))  # the transaction is open before counting
        records, outbox = Records(session), Outbox(session)
        message_ids = [m.id for m in outbox.pending("sf-prod", limit=PAGE)]
        calls: dict[str, Any] = {
            "mark_deleted_many": lambda: records.mark_deleted_many("sf-prod", "Lead", ids[: PAGE // 2], seen_at=LATER),
            "mark_merged_many": lambda: records.mark_merged_many(
                "sf-prod", "Lead", [(i, "00W1") for i in ids[PAGE // 2 :]], seen_at=LATER
            ),
            "add_many": lambda: Quarantine(session).add_many(
                [QuarantineIn("sf-prod", "Lead", "Email: bad", {"Email": "x@"}, crm_id=i) for i in ids]
            ),
            "record_many": lambda: Assignments(session).record_many(
                [AssignmentIn("sf-prod", "Lead", i, "ben@relay.example") for i in ids]
            ),
            "mark_failed_many": lambda: outbox.mark_failed_many([(i, "503", True) for i in message_ids]),
            "replace_payload_many": lambda: outbox.replace_payload_many([(i, {"n": 1}, "x") for i in message_ids]),
            "cancel_many": lambda: outbox.cancel_many([(i, "owner not written") for i in message_ids]),
        }
        answers: dict[str, Any] = {}
        for name, call in calls.items():
            with statements(db) as sent:
                answers[name] = call()
            costs[name] = len(sent)
    assert answers["mark_deleted_many"] == ids[: PAGE // 2]
    assert answers["mark_merged_many"] == [(i, "00W1") for i in ids[PAGE // 2 :]]
    assert len(answers["add_many"]) == PAGE and len(answers["record_many"]) == PAGE
    assert {m.status for m in answers["cancel_many"]} == {OutboxStatus.DEAD}
    expected = {"mark_deleted_many": 1, "mark_merged_many": 2, "add_many": 1, "record_many": 3,
                "mark_failed_many": 2, "replace_payload_many": 2, "cancel_many": 2}
    for name, per_chunk in expected.items():
        share = chunks // 2 if name.startswith(("mark_deleted", "mark_merged")) else chunks
        assert costs[name] <= per_chunk * share, costs


def test_the_single_record_answers_of_the_outbox_are_its_messages(db: Database) -> None:
    with db.sessions.begin() as session:
        pending = _stored_messages(session)[0]
    with db.sessions.begin() as session:
        outbox = Outbox(session)
        failed: OutboxMessage = outbox.mark_failed(pending, f"UNABLE_TO_LOCK_ROW {BROKEN}")
        assert failed == outbox.get(pending)
        assert (failed.status, failed.attempts, failed.last_error) == (
            OutboxStatus.FAILED, 1, "UNABLE_TO_LOCK_ROW Ada \ufffd"
        )
        assert outbox.cancel(pending, "owner not written") == outbox.get(pending)
