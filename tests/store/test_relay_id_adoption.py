"""A new or rebuilt store gives the relay ids the CRM already holds: derived, or adopted from the CRM.

Issue 7: moving from SQLite to PostgreSQL, or losing the store, used to hand out new
random ids, so the next sync rewrote Relay_Id__c on every lead and contact.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.models import IdentityRow
from connector.store.repositories import (
    CrmRef,
    Identities,
    relay_id_for_key,
    relay_id_for_record,
)
from tests.support.databases import fresh_postgres_schema

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# A CRM as the pipeline reads it: (normalised key or None, record), people on two objects.
PEOPLE: list[tuple[str | None, CrmRef]] = [
    ("ada@globex.example", CrmRef("sf-prod", "Lead", "00Q1")),
    ("grace@initech.example", CrmRef("sf-prod", "Lead", "00Q2")),
    ("ada@globex.example", CrmRef("sf-prod", "Contact", "0031")),  # same person as 00Q1
    (None, CrmRef("sf-prod", "Lead", "00Q3")),  # no email: an identity of its own
    ("linus@hooli.example", CrmRef("hs-prod", "contacts", "501")),
]


@contextmanager
def _another_store(db: Database, tmp_path: Path, name: str) -> Iterator[Database]:
    """Another freshly migrated store on the same backend as ``db``."""
    with ExitStack() as stack:
        if db.backend == "sqlite":
            url = f"sqlite:///{tmp_path / name}"
        else:
            url = stack.enter_context(fresh_postgres_schema())
        engine = create_engine_for(url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        yield Database(engine.dialect.name, url, engine, session_factory(engine))


def _resolve(db: Database, items: list[tuple[str | None, CrmRef, str | None]]) -> dict[CrmRef, str]:
    with db.sessions.begin() as session:
        return Identities(session).resolve_many("person", items, now=T0)


def test_a_fresh_store_over_the_same_crm_gives_the_same_relay_ids(db: Database, tmp_path: Path) -> None:
    # Store A syncs a CRM that holds no relay ids yet; Relay then writes them to the CRM.
    in_a = _resolve(db, [(key, ref, None) for key, ref in PEOPLE])
    crm_holds = dict(in_a)
    assert in_a[PEOPLE[0][1]] == in_a[PEOPLE[2][1]]  # one person, one id
    assert len(set(in_a.values())) == 4

    with _another_store(db, tmp_path, "store-b.db") as store_b:
        # Store B (e.g. after moving to PostgreSQL) reads the same CRM, ids included.
        assert _resolve(store_b, [(key, ref, crm_holds[ref]) for key, ref in PEOPLE]) == in_a
    with _another_store(db, tmp_path, "store-c.db") as store_c:
        # Even without the CRM's values, the ids are derived from the data, not drawn at random.
        assert _resolve(store_c, [(key, ref, None) for key, ref in PEOPLE]) == in_a
    assert in_a[PEOPLE[0][1]] == relay_id_for_key("person", "ada@globex.example")
    assert in_a[PEOPLE[3][1]] == relay_id_for_record("person", PEOPLE[3][1])


def test_a_new_store_adopts_the_ids_an_older_relay_wrote_to_the_crm(db: Database) -> None:
    # An older Relay drew random ids; the CRM holds them. A new store must keep them.
    legacy = {ref: str(uuid.uuid4()) for _, ref in PEOPLE}
    legacy[PEOPLE[2][1]] = legacy[PEOPLE[0][1]]  # the two records of Ada carry one id
    resolved = _resolve(db, [(key, ref, legacy[ref]) for key, ref in PEOPLE])
    assert resolved == legacy


def test_records_of_one_person_carrying_different_ids_end_with_one_the_first_given(db: Database) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    lead, contact = CrmRef("sf-prod", "Lead", "00Q1"), CrmRef("sf-prod", "Contact", "0031")
    resolved = _resolve(db, [("ada@globex.example", lead, first), ("ada@globex.example", contact, second)])
    assert resolved == {lead: first, contact: first}
    # A later page with a third id for the same person joins the existing identity.
    late = CrmRef("hs-prod", "contacts", "77")
    assert _resolve(db, [("ada@globex.example", late, str(uuid.uuid4()))]) == {late: first}


def test_the_store_stays_the_authority_once_a_record_is_linked(db: Database) -> None:
    lead = CrmRef("sf-prod", "Lead", "00Q1")
    stored = _resolve(db, [("ada@globex.example", lead, None)])[lead]
    # Someone edits Relay_Id__c in the CRM: the next sync keeps the store's id (and rewrites it).
    assert _resolve(db, [("ada@globex.example", lead, str(uuid.uuid4()))]) == {lead: stored}


def test_values_that_are_not_relay_ids_are_ignored_not_refused(db: Database) -> None:
    lead, other = CrmRef("sf-prod", "Lead", "00Q1"), CrmRef("sf-prod", "Lead", "00Q2")
    resolved = _resolve(db, [("ada@globex.example", lead, "see notes"), ("bob@x.example", other, "  ")])
    assert resolved == {
        lead: relay_id_for_key("person", "ada@globex.example"),
        other: relay_id_for_key("person", "bob@x.example"),
    }
    upper = str(uuid.uuid4())
    third = CrmRef("sf-prod", "Lead", "00Q3")
    assert _resolve(db, [("cy@x.example", third, upper.upper())]) == {third: upper}


def test_an_id_another_identity_holds_is_not_adopted_twice(db: Database) -> None:
    shared = str(uuid.uuid4())
    a, b, c = (CrmRef("sf-prod", "Lead", f"00Q{n}") for n in range(3))
    # Two different people (different emails) carry the same id, e.g. a value copied by hand.
    resolved = _resolve(db, [("ada@x.example", a, shared), ("bob@x.example", b, shared)])
    assert resolved == {a: shared, b: relay_id_for_key("person", "bob@x.example")}
    # In a later transaction too, and for an account (another kind) carrying it.
    assert _resolve(db, [("cy@x.example", c, shared)]) == {c: relay_id_for_key("person", "cy@x.example")}
    account = CrmRef("sf-prod", "Account", "001")
    with db.sessions.begin() as session:
        got = Identities(session).resolve_many("account", [(None, account, shared)], now=T0)
    assert got == {account: relay_id_for_record("account", account)}
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdentityRow)) == 4


def test_a_record_without_key_joins_the_identity_its_crm_id_names(db: Database) -> None:
    # Ada's contact lost its email in the CRM but still carries her relay id.
    lead, contact = CrmRef("sf-prod", "Lead", "00Q1"), CrmRef("sf-prod", "Contact", "0031")
    ada = str(uuid.uuid4())
    assert _resolve(db, [("ada@globex.example", lead, ada), (None, contact, ada)]) == {lead: ada, contact: ada}


def test_resolve_one_adopts_like_resolve_many(db: Database) -> None:
    held = str(uuid.uuid4())
    with db.sessions.begin() as session:
        identities = Identities(session)
        assert identities.resolve("person", "ada@x.example", adopt=held, now=T0) == held
        lead = CrmRef("sf-prod", "Lead", "00Q9")
        assert identities.resolve("person", "ada@x.example", lead, adopt=str(uuid.uuid4()), now=T0) == held
        assert identities.resolve("person", None, CrmRef("sf-prod", "Lead", "00QA"), now=T0) == relay_id_for_record(
            "person", CrmRef("sf-prod", "Lead", "00QA")
        )


def test_sessions_racing_with_different_crm_ids_agree_on_one_identity_per_key(db: Database) -> None:
    contenders = 4
    barrier = threading.Barrier(contenders)
    results: list[dict[str, str]] = []
    errors: list[BaseException] = []

    def resolve(contender: int) -> None:
        items: list[tuple[str | None, CrmRef, str | None]] = [
            (f"p{n}@x.example", CrmRef(f"conn-{contender}", "Lead", f"00Q{n}"), str(uuid.uuid4())) for n in range(40)
        ]
        barrier.wait()
        try:
            with db.sessions.begin() as session:
                resolved = Identities(session).resolve_many("person", items, now=T0)
            results.append({ref.crm_id: relay_id for ref, relay_id in resolved.items()})
        except BaseException as exc:  # pragma: no cover - reported in the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=resolve, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(result == results[0] for result in results)
    assert len(set(results[0].values())) == 40
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdentityRow)) == 40
