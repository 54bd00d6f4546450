"""A data subject's access and erasure across Relay's store, on SQLite and PostgreSQL.

The person is synced from both CRMs (a Salesforce lead and a HubSpot contact: one identity, two
records, their decisions, tasks, alerts, clocks and audit trail), and the store holds more about them
the way Relay's flows leave it: a form submission waiting in the inbox, a quarantined copy of a record
without an id, a write still waiting in the outbox, enrichment answers about their email and domain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from connector.pipeline.capture import store_submissions
from connector.pipeline.submissions import read_fields, submission
from connector.pipeline.sync import run_sync
from connector.privacy.subject import (
    ERASED,
    FORGOTTEN,
    PRIVACY_CONNECTION,
    export_subject,
    forget_subject,
    subject_key,
)
from connector.store.db import session_factory
from connector.store.models import (
    AuditRow,
    ClockStatus,
    EnrichmentCacheRow,
    IdentityRow,
    InboxRow,
    NotificationRow,
    OutboxRow,
    RecordRow,
    SlaClockRow,
)
from connector.store.repositories import OutboxMessageIn, QuarantineIn, Repositories, SnapshotIn

from .conftest import PERSON, World, leaks, rows_of, store_texts

NOW = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
DOMAIN = "privacy-test.example"
NORMALISED = PERSON.email.lower()
PSEUDONYM = "sha256:" + hashlib.sha256(NORMALISED.encode()).hexdigest()
PERSONAL = [PERSON.email, "zebulon", "quixote", "longname", "79460958", "7946 0958"]
"""What must be gone from every table after the erasure (ignoring case)."""


@dataclass
class Synced:
    world: World
    pending_id: int


def _hold_more(world: World) -> int:
    """What Relay's other flows leave in the store about the person; returns the waiting write's id."""
    fields, problems = read_fields([("email", PERSON.email), ("first_name", PERSON.first),
                                    ("last_name", PERSON.last), ("phone", PERSON.phone), ("company", "Privacy Test")])
    assert problems == []
    store_submissions(world.config, world.engine, [submission("website", fields, received_at=NOW, channel="form",
                                                              ip="203.0.113.7")], now=NOW)
    with session_factory(world.engine).begin() as session:
        repos = Repositories(session)
        repos.quarantine.add_many([QuarantineIn(
            "hubspot", "contacts", "record without an id",
            {"properties": {"email": NORMALISED, "firstname": PERSON.first, "lastname": "Quixote",
                            "phone": PERSON.phone}}, at=NOW)])
        repos.outbox.enqueue_many([OutboxMessageIn("salesforce", "Lead", "update",
                                                   {"fields": {"Phone": PERSON.phone, "FirstName": PERSON.first}},
                                                   "privacy-test:waiting", crm_id=world.lead_id)], now=NOW)
        repos.records.upsert_snapshots("salesforce", "Opportunity", [SnapshotIn(
            "006PRIVACY0000001", "deal", {"name": "Privacy Test - Expansion", "budget": "Approved", "stage": "Proposal",
                                          "kickoff_contact": f"{PERSON.first} {PERSON.last.title()} <{PERSON.email}>"})],
            seen_at=NOW)  # a deal whose handoff form names the person: their values go, the deal's facts stay
        for kind, key, answer in (("person", NORMALISED, {"title": "VP Sales", "phone": PERSON.phone}),
                                  ("company", DOMAIN, {"company": "Privacy Test", "employees": 12}),
                                  ("company", "globex.example", {"company": "Globex", "employees": 12000})):
            session.add(EnrichmentCacheRow(provider="clearbit", kind=kind, lookup_key=key, version="v1",
                                           outcome="found", answer=answer, fetched_at=NOW))
    pending = rows_of(world.engine, OutboxRow, OutboxRow.idempotency_key == "privacy-test:waiting")
    return int(pending[0].id)


@pytest.fixture()
def synced(start_world: Callable[[], World]) -> Iterator[Synced]:
    world = start_world()
    for name in ("salesforce", "hubspot"):
        run_sync(world.config, name, world.engine)
    yield Synced(world, _hold_more(world))


def _personal_rows(engine: Engine) -> list[str]:
    return [f"{table}.{column}: {found}" for table, column, value in store_texts(engine)
            for found in leaks(value, PERSONAL)]


def _ledger_size(world: World) -> int:
    return len(world.sf_box.ledger.entries()) + len(world.hs_box.ledger.entries())


# ------------------------------------------------------------------------------------------------ export


def test_export_finds_every_row_that_names_the_person(synced: Synced) -> None:
    world = synced.world
    report = export_subject(world.engine, " ZEBULON.Quixote@privacy-test.EXAMPLE ", now=NOW)

    assert report.subject == PSEUDONYM
    assert sorted(report.records) == sorted([f"salesforce/Lead/{world.lead_id}", f"hubspot/contacts/{world.contact_id}"])
    counts = {name: len(t.rows) for name, t in report.tables.items() if t.rows}
    assert counts["identities"] == 1 and counts["identity_links"] == 2 and counts["records"] == 3  # and the deal
    assert counts["quarantine"] == 1 and counts["webhook_inbox"] == 1 and counts["enrichment_cache"] == 2
    for table in ("assignments", "sla_clocks", "audit_log", "outbox"):
        assert counts.get(table, 0) >= 1, table
    emails = {row["canonical"]["email"].lower() for row in report.tables["records"].rows if row["kind"] == "person"}
    assert emails == {NORMALISED}
    actions = {row["action"] for row in report.tables["audit_log"].rows}
    assert {"assigned", "scored", "task_created"} <= actions
    cached = {row["lookup_key"] for row in report.tables["enrichment_cache"].rows}
    assert cached == {NORMALISED, DOMAIN}  # globex.example is other people's company

    exported = rows_of(world.engine, AuditRow, AuditRow.id == report.audit_id)[0]
    assert exported.action == "subject_exported" and exported.connection == PRIVACY_CONNECTION
    assert exported.detail["subject"] == PSEUDONYM
    assert leaks(repr(exported.detail), PERSONAL) == []


def test_export_of_someone_relay_never_saw_finds_nothing(synced: Synced) -> None:
    report = export_subject(synced.world.engine, "nobody.at.all@nowhere.example", now=NOW)
    assert report.found == 0 and report.records == []


# ------------------------------------------------------------------------------------------------ forget


def test_forget_erases_the_person_from_every_table_and_touches_no_crm(synced: Synced) -> None:
    world = synced.world
    other = rows_of(world.engine, RecordRow, RecordRow.kind == "person", RecordRow.crm_id != world.lead_id,
                    RecordRow.crm_id != world.contact_id)
    others_before = {(r.connection, r.object, r.crm_id): r.canonical for r in other}
    audit_before = len(rows_of(world.engine, AuditRow))
    assert _personal_rows(world.engine), "the store names the person before: the test proves something"
    calls = _ledger_size(world)

    report = forget_subject(world.engine, PERSON.email, now=NOW)

    assert _personal_rows(world.engine) == []
    assert _ledger_size(world) == calls, "forget-person called a CRM"
    lead = world.sf.query(f"SELECT Email, FirstName FROM Lead WHERE Id = '{world.lead_id}'")["records"][0]
    assert lead["Email"].lower() == NORMALISED and lead["FirstName"] == PERSON.first  # the CRM keeps them
    contact = world.hs.crm.contacts.basic_api.get_by_id(world.contact_id, properties=["email"])
    assert contact.properties["email"] == NORMALISED

    after = {(r.connection, r.object, r.crm_id): r.canonical
             for r in rows_of(world.engine, RecordRow, RecordRow.kind == "person")}
    for ref, canonical in others_before.items():
        assert after[ref] == canonical, f"{ref} is another person: untouched"
    erased = after[("salesforce", "Lead", world.lead_id)]
    assert erased["email"] is None and erased["first_name"] is None and erased["phone"] is None
    assert erased["company"] is not None and erased["relay_score"] is not None  # the decision's facts stay
    deal = after.get(("salesforce", "Opportunity", "006PRIVACY0000001")) or rows_of(
        world.engine, RecordRow, RecordRow.crm_id == "006PRIVACY0000001")[0].canonical
    assert deal == {"name": "Privacy Test - Expansion", "budget": "Approved", "stage": "Proposal",
                    "kickoff_contact": f"{ERASED} <{ERASED}>"}
    identity = rows_of(world.engine, IdentityRow, IdentityRow.relay_id.in_(report.relay_ids))
    assert [row.key for row in identity] == ["erased:" + PSEUDONYM.removeprefix("sha256:")]

    audit = rows_of(world.engine, AuditRow)
    assert len(audit) == audit_before + 1, "the audit log lost or gained entries besides the request's own"
    request = audit[-1]
    assert request.action == FORGOTTEN and request.connection == PRIVACY_CONNECTION and request.id == report.audit_id
    assert request.detail["subject"] == PSEUDONYM and request.detail["crm"] == "not touched"
    assert request.detail["tables"]["records"]["erased"] == 3
    rewritten = [row for row in audit if row.erased_at is not None]
    assert rewritten and all(row.erasure == f"forget-person {PSEUDONYM[:23]}" for row in rewritten)
    assert all(PSEUDONYM in row.detail["erased"] for row in rewritten)
    assert any(ERASED in repr(row.detail) for row in rewritten)


def test_forget_stops_everything_that_would_act_on_the_erased_values(synced: Synced) -> None:
    world = synced.world
    forget_subject(world.engine, PERSON.email, now=NOW)

    waiting = rows_of(world.engine, OutboxRow, OutboxRow.id == synced.pending_id)[0]
    assert waiting.status == "dead" and "erased" in (waiting.last_error or "")
    assert waiting.payload["fields"] == {"Phone": ERASED, "FirstName": ERASED}
    inbox = rows_of(world.engine, InboxRow, InboxRow.provider == "capture")
    assert inbox and all(row.processed_at is not None for row in inbox)
    refs = [world.lead_id, world.contact_id]
    assert all(clock.status == ClockStatus.CLOSED.value for clock in rows_of(world.engine, SlaClockRow,
                                                                             SlaClockRow.crm_id.in_(refs)))
    assert all(row.status not in ("pending", "failed", "sending")
               for row in rows_of(world.engine, NotificationRow, NotificationRow.crm_id.in_(refs)))
    cached = {row.lookup_key for row in rows_of(world.engine, EnrichmentCacheRow)}
    assert cached == {"globex.example"}
    snapshots = rows_of(world.engine, RecordRow, RecordRow.crm_id.in_(refs))
    assert snapshots and all(row.relay_id is None for row in snapshots)

    summary = run_sync(world.config, "salesforce", world.engine)  # the CRM still holds them: Relay goes on
    assert summary.run_id is not None


def test_a_dry_run_changes_nothing_and_a_second_erasure_finds_nothing_left(synced: Synced) -> None:
    world = synced.world
    before = sorted(store_texts(world.engine))
    planned = forget_subject(world.engine, PERSON.email, dry_run=True, now=NOW)
    assert sorted(store_texts(world.engine)) == before
    assert planned.audit_id is None and planned.tables["records"].erased == 3

    done = forget_subject(world.engine, PERSON.email, now=NOW)
    assert {n: t.counts() for n, t in done.tables.items()} == {n: t.counts() for n, t in planned.tables.items()}

    again = forget_subject(world.engine, PERSON.email, now=NOW)
    assert again.relay_ids == done.relay_ids and again.records == done.records  # found by the pseudonymous key
    assert sum(t.erased + t.deleted + t.cancelled for t in again.tables.values()) == 0


def test_the_audit_log_stays_append_only_after_an_erasure(synced: Synced) -> None:
    world = synced.world
    report = forget_subject(world.engine, PERSON.email, now=NOW)
    erased = next(row for row in rows_of(world.engine, AuditRow) if row.erased_at is not None)
    untouched = next(row for row in rows_of(world.engine, AuditRow) if row.erased_at is None)
    statements = [
        ("UPDATE audit_log SET detail = :d WHERE id = :id", {"d": "{}", "id": untouched.id}),
        ("UPDATE audit_log SET action = 'scored', erased_at = :at, erasure = 'x' WHERE id = :id",
         {"at": NOW, "id": untouched.id}),
        ("UPDATE audit_log SET detail = :d, erased_at = :at, erasure = :e WHERE id = :id",  # same erasure again
         {"d": "{}", "at": datetime(2030, 1, 1, tzinfo=UTC), "e": erased.erasure, "id": erased.id}),
        ("UPDATE audit_log SET detail = :d, erased_at = NULL, erasure = NULL WHERE id = :id",
         {"d": "{}", "id": erased.id}),
        ("DELETE FROM audit_log WHERE id = :id", {"id": report.audit_id}),
    ]
    for statement, values in statements:
        with pytest.raises(IntegrityError, match="append-only"), world.engine.begin() as connection:
            connection.execute(text(statement), values)
    with world.engine.begin() as connection:  # the one UPDATE it takes: a named erasure, once per subject
        connection.execute(text("UPDATE audit_log SET detail = :d, erased_at = :at, erasure = 'forget-person other' "
                                "WHERE id = :id"), {"d": '{"erased": true}', "at": NOW, "id": untouched.id})
    assert rows_of(world.engine, AuditRow, AuditRow.id == untouched.id)[0].erasure == "forget-person other"


def test_the_pseudonymous_key_is_the_sha256_of_the_normalised_email() -> None:
    assert subject_key(PERSON.email) == PSEUDONYM == subject_key(f"  <{PERSON.email.upper()}> ")
    assert subject_key("Jane.Doe+news@gmail.com") == subject_key("janedoe@googlemail.com")  # as the identity graph


def test_erased_values_never_reach_a_crm_when_relay_syncs_again(synced: Synced) -> None:
    world = synced.world
    forget_subject(world.engine, PERSON.email, now=NOW)
    last = max(row.id for row in rows_of(world.engine, OutboxRow))
    for name in ("salesforce", "hubspot"):
        run_sync(world.config, name, world.engine, full=True)
    new = rows_of(world.engine, OutboxRow, OutboxRow.id > last)
    assert [row.id for row in new if ERASED in repr(row.payload)] == []
    leads = world.sf.query_all("SELECT FirstName, LastName, Email, Phone, Title FROM Lead")["records"]
    tasks = world.sf.query_all("SELECT Subject, Description FROM Task")["records"]
    contacts = world.hs.crm.contacts.get_all(properties=["firstname", "lastname", "email", "phone"])
    shown = repr([dict(r) for r in leads + tasks]) + repr([c.properties for c in contacts])
    assert ERASED not in shown
