"""Record snapshots tell what changed; the identity graph gives one relay id per person or account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import IdentityKind, InvalidStoreValue
from connector.store.repositories import CrmRef, Identities, Records

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@globex.example",
    "employees": 250,
}


def test_a_new_record_is_a_change_and_the_same_record_again_is_not(db: Database) -> None:
    with db.sessions.begin() as session:
        records = Records(session)
        assert records.upsert_snapshot(
            "sf-prod", "Lead", "00Q1", kind="person", canonical=LEAD, seen_at=T0
        )
        assert not records.upsert_snapshot(
            "sf-prod",
            "Lead",
            "00Q1",
            kind="person",
            canonical=dict(reversed(LEAD.items())),
            seen_at=T0 + timedelta(hours=1),
        )
        assert records.upsert_snapshot(
            "sf-prod",
            "Lead",
            "00Q1",
            kind="person",
            canonical={**LEAD, "employees": 300},
            seen_at=T0 + timedelta(hours=2),
        )

    with db.sessions() as session:
        snapshot = Records(session).get("sf-prod", "Lead", "00Q1")
    assert snapshot is not None
    assert snapshot.canonical["employees"] == 300
    assert snapshot.first_seen == T0 and snapshot.last_seen == T0 + timedelta(hours=2)
    assert len(snapshot.content_hash) == 64


def test_deletion_and_merge_are_changes_and_keep_the_last_content(db: Database) -> None:
    with db.sessions.begin() as session:
        records = Records(session)
        records.upsert_snapshot(
            "hubspot", "contacts", "101", kind="person", canonical=LEAD, seen_at=T0
        )
        assert records.upsert_snapshot(
            "hubspot",
            "contacts",
            "101",
            kind="person",
            canonical=LEAD,
            merged_into="202",
            seen_at=T0,
        )
        assert records.mark_deleted("hubspot", "contacts", "101", seen_at=T0 + timedelta(days=1))
        assert not records.mark_deleted("hubspot", "contacts", "101")
        assert not records.mark_deleted("hubspot", "contacts", "never-seen")
    with db.sessions() as session:
        snapshot = Records(session).get("hubspot", "contacts", "101")
    assert snapshot is not None
    assert snapshot.deleted and snapshot.merged_into == "202" and snapshot.canonical == LEAD


def test_canonical_datetimes_are_stored_as_iso_utc_and_naive_ones_refused(db: Database) -> None:
    with db.sessions.begin() as session:
        records = Records(session)
        records.upsert_snapshot(
            "sf-prod", "Lead", "00Q2", kind="person", canonical={"created_at": T0}, seen_at=T0
        )
        with pytest.raises(InvalidStoreValue, match=r"records\[sf-prod/Lead/00Q3\].canonical"):
            records.upsert_snapshot(
                "sf-prod",
                "Lead",
                "00Q3",
                kind="person",
                canonical={"created_at": datetime(2026, 1, 1)},
            )
        stored = records.get("sf-prod", "Lead", "00Q2")
        assert stored is not None
        assert stored.canonical == {"created_at": "2026-03-02T09:00:00+00:00"}


def test_the_same_key_resolves_to_the_same_identity_across_crms(db: Database) -> None:
    with db.sessions.begin() as session:
        identities = Identities(session)
        from_salesforce = identities.resolve(
            "person", "ada@globex.example", CrmRef("sf-prod", "Lead", "00Q1"), now=T0
        )
        from_hubspot = identities.resolve(
            IdentityKind.PERSON, "ada@globex.example", CrmRef("hubspot", "contacts", "101")
        )
        company = identities.resolve(
            "account", "globex.example", CrmRef("sf-prod", "Account", "0011")
        )
        other = identities.resolve(
            "person", "grace@initech.example", CrmRef("sf-prod", "Lead", "00Q2")
        )

    assert from_salesforce == from_hubspot
    assert len({from_salesforce, company, other}) == 3
    with db.sessions() as session:
        identities = Identities(session)
        assert identities.links(from_salesforce) == [
            CrmRef("hubspot", "contacts", "101"),
            CrmRef("sf-prod", "Lead", "00Q1"),
        ]
        assert identities.find("person", "ada@globex.example") == from_salesforce


def test_a_linked_record_keeps_its_identity_when_its_key_changes(db: Database) -> None:
    lead = CrmRef("sf-prod", "Lead", "00Q1")
    with db.sessions.begin() as session:
        identities = Identities(session)
        first = identities.resolve("person", "ada@old.example", lead)
        assert identities.resolve("person", "ada@new.example", lead) == first
        assert identities.resolve("person", None, lead) == first


def test_a_record_without_key_gets_an_identity_of_its_own(db: Database) -> None:
    with db.sessions.begin() as session:
        identities = Identities(session)
        one = identities.resolve("person", None, CrmRef("sf-prod", "Lead", "00Q7"))
        two = identities.resolve("person", None, CrmRef("sf-prod", "Lead", "00Q8"))
        assert one != two
        with pytest.raises(InvalidStoreValue, match="give a key"):
            identities.resolve("person", None)
        with pytest.raises(
            InvalidStoreValue, match=r"identities\.kind: 'deal' is not one of person, account"
        ):
            identities.resolve("deal", "x")


def test_the_database_refuses_a_second_identity_with_the_same_key(db: Database) -> None:
    with db.sessions.begin() as session:
        Identities(session).resolve("person", "ada@globex.example")
    insert = text(
        "INSERT INTO identities (relay_id, kind, key, created_at) VALUES (:id, 'person', 'ada@globex.example', :at)"
    )

    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(
            insert,
            {"id": "dup", "at": T0 if db.backend == "postgresql" else "2026-03-02 09:00:00.000000"},
        )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.lists(
        st.sampled_from(["a@x.example", "b@x.example", "c@y.example"]), min_size=1, max_size=8
    )
)
def test_resolving_keys_in_any_order_gives_one_identity_per_distinct_key(
    db: Database, keys: list[str]
) -> None:
    with db.sessions() as session:
        identities = Identities(session)
        resolved = {key: identities.resolve("account", key) for key in keys}
        again = {key: identities.resolve("account", key) for key in reversed(keys)}
        session.rollback()
    assert resolved == again
    assert len(set(resolved.values())) == len(set(keys))


def test_a_persons_records_leave_out_the_ones_the_caller_holds(db: Database) -> None:
    with db.sessions.begin() as session:
        identities, records = Identities(session), Records(session)
        ada = identities.resolve("person", "ada@globex.example", CrmRef("sf-prod", "Lead", "00Q1"), now=T0)
        grace = identities.resolve("person", "grace@initech.example", CrmRef("sf-prod", "Lead", "00Q2"), now=T0)
        for obj, crm_id, relay_id in [("Lead", "00Q1", ada), ("Contact", "0031", ada), ("Lead", "00Q2", grace),
                                      ("Contact", "00Q1", grace)]:  # the same id in another object stays in
            records.upsert_snapshot("sf-prod", obj, crm_id, kind="person", canonical=LEAD, relay_id=relay_id,
                                    seen_at=T0)
        records.upsert_snapshot("hubspot", "contacts", "101", kind="person", canonical=LEAD, relay_id=ada, seen_at=T0)

    with db.sessions() as session:
        records = Records(session)
        every = records.live_people_of("sf-prod", {ada, grace})
        others = records.live_people_of("sf-prod", {ada, grace}, excluding={("Lead", "00Q1"), ("Lead", "00Q2")})

    assert [(s.object, s.crm_id) for s in every] == [("Contact", "0031"), ("Contact", "00Q1"), ("Lead", "00Q1"),
                                                      ("Lead", "00Q2")]
    assert [(s.object, s.crm_id) for s in others] == [("Contact", "0031"), ("Contact", "00Q1")]
