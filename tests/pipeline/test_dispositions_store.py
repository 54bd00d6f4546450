"""The dispositions ledger on both stores (SQLite always, PostgreSQL when configured): acted on once,
superseded, due at its date, suppressing every record of a person, conversions closed once, and the
leads whose disposition is overdue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.errors import InvalidStoreValue
from connector.store.repositories import ClockIn, CrmRef, Repositories
from connector.store.repositories.dispositions import DispositionFindingIn, DispositionIn
from tests.support.databases import fresh_postgres_schema

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
JACK = "jack.wilson@northwind.example"


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'relay.db'}"
        engine = create_engine_for(url)
        migrate.upgrade(engine)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()
        return
    with fresh_postgres_schema() as url:
        engine = create_engine_for(url)
        migrate.upgrade(engine)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


def _seen(crm_id: str, value: str = "No Response", stamp: str = "", **kw: object) -> DispositionIn:
    base: dict[str, object] = {"connection": "salesforce", "object_name": "Lead", "crm_id": crm_id, "value": value,
                               "stamp": stamp, "seen_at": NOW, "decided_at": NOW, "action": "recycle",
                               "status": "waiting", "recycle_at": NOW + timedelta(days=90), "relay_id": f"r-{crm_id}",
                               "owner_email": JACK, "excluded_owner_email": JACK}
    base.update(kw)
    return DispositionIn(**base)  # type: ignore[arg-type]


def test_a_disposition_is_recorded_once_and_a_later_one_supersedes_it(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ledger = Repositories(session).dispositions
        [first] = ledger.record_many([_seen("00Q1", stamp="2026-03-01T00:00:00+00:00")])
        assert ledger.record_many([_seen("00Q1", stamp="2026-03-01T00:00:00+00:00")]) == []  # seen again: nothing
        [again] = ledger.record_many([_seen("00Q1", stamp="2026-03-02T00:00:00+00:00")])  # set again, new date
        rows = ledger.for_records("salesforce", "Lead", ["00Q1"])["00Q1"]
    assert [(r.id, r.status) for r in rows] == [(first.id, "superseded"), (again.id, "waiting")]


def test_a_recycle_is_due_exactly_on_its_date_and_closed_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ledger = Repositories(session).dispositions
        [row] = ledger.record_many([_seen("00Q1")])
        at = NOW + timedelta(days=90)
        assert ledger.due("salesforce", "Lead", at - timedelta(microseconds=1)) == []
        assert [r.id for r in ledger.due("salesforce", "Lead", at)] == [row.id]
        assert ledger.due("salesforce", "Contact", at) == []  # per object
        assert ledger.mark_recycled({row.id: "chloe.martin@northwind.example"}, now=at) == 1
        assert ledger.mark_recycled({row.id: "someone@else.example"}, now=at) == 0  # closed once
        assert ledger.due("salesforce", "Lead", at + timedelta(days=1)) == []
        closed = ledger.get(row.id)
    assert closed is not None and (closed.status, closed.new_owner_email, closed.acted_at) == (
        "recycled", "chloe.martin@northwind.example", at)


def test_a_suppression_holds_for_every_record_of_the_person(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        repos = Repositories(session)
        ids = repos.identities.resolve_many("person", [
            ("ray@quinn.example", CrmRef("hubspot", "contacts", "501"), None),
            ("ray@quinn.example", CrmRef("salesforce", "Lead", "00QA"), None),
            ("sam@lee.example", CrmRef("salesforce", "Lead", "00QB"), None),
        ], now=NOW)
        person = ids[CrmRef("hubspot", "contacts", "501")]
        repos.dispositions.record_many([_seen("501", "Do Not Contact", connection="hubspot", object_name="contacts",
                                              action="suppress", status="done", suppressed=True, relay_id=person,
                                              recycle_at=None, excluded_owner_email=None)])
        found = repos.dispositions.suppressing("salesforce", "Lead", [
            ("00QA", "ray@quinn.example", None),     # linked to the person
            ("00QN", "ray@quinn.example", None),     # new, with the person's email
            ("00QR", None, person),                  # holds the person's relay id
            ("00QB", "sam@lee.example", None),       # someone else
        ])
        assert repos.dispositions.suppressions([person, "nobody"]).keys() == {person}
    assert sorted(found) == ["00QA", "00QN", "00QR"]
    assert {d.value for d in found.values()} == {"Do Not Contact"}


def test_a_conversion_is_counted_before_asking_and_closed_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ledger = Repositories(session).dispositions
        [row] = ledger.record_many([_seen("00Q1", "Qualified", action="create_opportunity", status="pending",
                                          recycle_at=None, excluded_owner_email=None)])
        assert [r.id for r in ledger.pending_conversions("salesforce")] == [row.id]
        assert ledger.attempt(row.id) == 1 and ledger.attempt(row.id) == 2  # a crash, asked again
        assert ledger.finish_conversion(row.id, opportunity_id="006A", contact_id="003A", account_id="001A", now=NOW)
        assert not ledger.finish_conversion(row.id, error="late answer", now=NOW)  # the first answer stands
        assert ledger.pending_conversions("salesforce") == []
        done = ledger.get(row.id)
    assert done is not None and (done.status, done.opportunity_id, done.attempts, done.error) == (
        "converted", "006A", 2, None)


def test_bad_values_are_named(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ledger = Repositories(session).dispositions
        with pytest.raises(InvalidStoreValue, match=r"dispositions\[0\] \(salesforce/Lead/00Q1\)\.status: 'later'"):
            ledger.record_many([_seen("00Q1", status="later")])
        with pytest.raises(InvalidStoreValue, match=r"dispositions\[0\] \(salesforce/Lead/00Q1\)\.seen_at"):
            ledger.record_many([_seen("00Q1", seen_at=datetime(2026, 3, 2))])


def test_overdue_candidates_are_the_latest_touched_clocks_without_a_disposition_since(
        sessions: sessionmaker[Session]) -> None:
    touched = NOW - timedelta(hours=25)
    with sessions.begin() as session:
        repos = Repositories(session)
        repos.clocks.open_many([
            ClockIn("salesforce", "Lead", crm_id, JACK, "Qualified", touched - timedelta(hours=1), source="relay",
                    stage="contacted", stage_since=touched, first_touch_at=touched, relay_id=f"r-{crm_id}")
            for crm_id in ("00Q1", "00Q2", "00Q3", "00Q4")], now=NOW)
        # 00Q2: a disposition since its owner got it; 00Q3: one from before (the previous owner's) does not count
        repos.dispositions.record_many([
            _seen("00Q2", "Bad Fit", action="disqualify", status="done", recycle_at=None, seen_at=touched),
            _seen("00Q3", "Bad Fit", action="disqualify", status="done", recycle_at=None,
                  seen_at=touched - timedelta(days=30), decided_at=touched - timedelta(days=30)),
        ])
        cutoff = NOW - timedelta(hours=24)
        found = repos.dispositions.overdue_candidates("salesforce", cutoff, first_touch_after=NOW - timedelta(days=7))
        assert sorted(c.crm_id for c in found) == ["00Q1", "00Q3", "00Q4"]
        assert repos.dispositions.overdue_candidates("salesforce", touched - timedelta(seconds=1)) == []
        assert repos.dispositions.overdue_candidates("salesforce", cutoff, first_touch_after=touched
                                                     + timedelta(seconds=1)) == []
        first = DispositionFindingIn("salesforce", "Lead", "00Q1", "k:00Q1", touched, touched + timedelta(hours=24),
                                     "no disposition", relay_id="r-00Q1", owner_email=JACK, task_key="task:1")
        assert repos.dispositions.add_finding(first, now=NOW)
        assert not repos.dispositions.add_finding(first, now=NOW)  # once
        after = repos.dispositions.overdue_candidates("salesforce", cutoff)
        assert sorted(c.crm_id for c in after) == ["00Q3", "00Q4"]
        assert [f.key for f in repos.dispositions.findings("salesforce")] == ["k:00Q1"]


def test_open_clocks_of_suppressed_people_are_closed(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        repos = Repositories(session)
        repos.clocks.open_many([
            ClockIn("hubspot", "contacts", crm_id, JACK, "Qualified", NOW, source="relay", relay_id=relay_id)
            for crm_id, relay_id in (("501", "r-dnc"), ("502", "r-fine"))], now=NOW)
        repos.dispositions.record_many([_seen("00Q9", "Do Not Contact", action="suppress", status="done",
                                              suppressed=True, relay_id="r-dnc", recycle_at=None)])
        closed = repos.dispositions.close_suppressed_clocks("hubspot", now=NOW)
        assert [(c.crm_id, c.owner_email) for c in closed] == [("501", JACK)]
        assert repos.dispositions.close_suppressed_clocks("hubspot", now=NOW) == []
        clocks = {c.crm_id: c for c in repos.clocks.listing(connection="hubspot", include_closed=True)}
    assert (clocks["501"].status.value, clocks["501"].closed_reason) == ("closed", "suppressed")
    assert clocks["502"].status.value == "open"
