"""The assignment ledger: one active assignment per CRM record, enforced by the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import AssignmentStatus, InvalidStoreValue
from connector.store.repositories import Assignments, Identities

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _assign(
    assignments: Assignments, owner: str, *, rule: str = "region-na", at: datetime = T0
) -> int:
    return assignments.record(
        "sf-prod",
        "Lead",
        "00Q1",
        owner_email=owner,
        owner_crm_id="005A",
        tier="hot",
        rule=rule,
        reason=f"US lead, NA round robin -> {owner}",
        score=85,
        rules_version="r-1a2b",
        sla_due=at + timedelta(minutes=5),
        assigned_at=at,
    ).id


def test_a_new_assignment_supersedes_the_active_one(db: Database) -> None:
    with db.sessions.begin() as session:
        assignments = Assignments(session)
        first = _assign(assignments, "liam.walsh@northwind.example")
        second = _assign(assignments, "emma.rossi@northwind.example", at=T0 + timedelta(hours=1))

    with db.sessions() as session:
        assignments = Assignments(session)
        active = assignments.active_for("sf-prod", "Lead", "00Q1")
        history = assignments.history("sf-prod", "Lead", "00Q1")
    assert active is not None and active.id == second
    assert (
        active.owner_email == "emma.rossi@northwind.example"
        and active.sla_due == T0 + timedelta(hours=1, minutes=5)
    )
    assert [(entry.id, entry.status) for entry in history] == [
        (first, AssignmentStatus.SUPERSEDED),
        (second, AssignmentStatus.ACTIVE),
    ]


def test_recording_the_same_decision_again_writes_nothing(db: Database) -> None:
    with db.sessions.begin() as session:
        assignments = Assignments(session)
        first = _assign(assignments, "liam.walsh@northwind.example")
        retried = _assign(assignments, "liam.walsh@northwind.example", at=T0 + timedelta(minutes=1))
        assert retried == first
        assert len(assignments.history("sf-prod", "Lead", "00Q1")) == 1


def test_the_database_refuses_a_second_active_assignment(db: Database) -> None:
    with db.sessions.begin() as session:
        _assign(Assignments(session), "liam.walsh@northwind.example")
    insert = text(
        "INSERT INTO assignments (connection, object, crm_id, owner_email, assigned_at, status) "
        "VALUES ('sf-prod', 'Lead', '00Q1', 'emma.rossi@northwind.example', :at, :status)"
    )
    at = T0 if db.backend == "postgresql" else "2026-03-02 10:00:00.000000"
    with db.engine.begin() as connection:
        connection.execute(insert, {"at": at, "status": "superseded"})
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(insert, {"at": at, "status": "active"})


def test_sla_sweep_finds_active_assignments_due_before_a_moment(db: Database) -> None:
    with db.sessions.begin() as session:
        assignments = Assignments(session)
        _assign(assignments, "liam.walsh@northwind.example")  # due T0+5m, then superseded
        _assign(
            assignments, "emma.rossi@northwind.example", at=T0 + timedelta(hours=1)
        )  # due T0+1h5m
        assignments.record(
            "sf-prod",
            "Lead",
            "00Q2",
            owner_email="ava.thompson@northwind.example",
            sla_due=T0 + timedelta(hours=24),
        )
        assignments.record("sf-prod", "Lead", "00Q3", owner_email="ava.thompson@northwind.example")
    with db.sessions() as session:
        due = Assignments(session).sla_due_before(T0 + timedelta(hours=2))
    assert [(entry.crm_id, entry.owner_email) for entry in due] == [
        ("00Q1", "emma.rossi@northwind.example")
    ]


def test_assignments_link_to_identities_and_refuse_bad_values(db: Database) -> None:
    with db.sessions.begin() as session:
        relay_id = Identities(session).resolve("person", "ada@globex.example")
        entry = Assignments(session).record(
            "sf-prod",
            "Lead",
            "00Q1",
            owner_email="olivia.grant@northwind.example",
            relay_id=relay_id,
        )
        assert entry.relay_id == relay_id
        with pytest.raises(
            InvalidStoreValue,
            match=r"assignments\[sf-prod/Lead/00Q1\].owner_email: must not be empty",
        ):
            Assignments(session).record("sf-prod", "Lead", "00Q1", owner_email=" ")
        with pytest.raises(InvalidStoreValue, match=r"score: expected an integer"):
            Assignments(session).record(
                "sf-prod",
                "Lead",
                "00Q1",
                owner_email="a@b.example",
                score="high",  # type: ignore[arg-type]
            )
        with pytest.raises(InvalidStoreValue, match=r"sla_due: naive datetime"):
            Assignments(session).record(
                "sf-prod", "Lead", "00Q1", owner_email="a@b.example", sla_due=datetime(2026, 1, 1)
            )
