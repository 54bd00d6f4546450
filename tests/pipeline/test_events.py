"""Events the CRMs pushed, decided: the records they name read by id and written back like a sync's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from sqlalchemy import select

from connector.crms.intake import WebhookEvent
from connector.pipeline import events as events_module
from connector.pipeline.events import process_events
from connector.pipeline.intake import EventInbox
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.models import InboxRow, SyncRunRow
from connector.store.repositories import Repositories
from tests.pipeline.test_deletions_and_merges import World, world  # noqa: F401 - the shared fixture


def _push(world: World, kind: str, connection: str, *events: WebhookEvent) -> None:  # noqa: F811
    EventInbox(world.engine).store(kind, connection, list(events), now=datetime.now(UTC))


def _unprocessed(world: World) -> int:  # noqa: F811
    with session_factory(world.engine).begin() as session:
        return len(session.scalars(select(InboxRow).where(InboxRow.processed_at.is_(None))).all())


def _cursors(world: World, connection: str) -> list[tuple[str, object, object]]:  # noqa: F811
    with session_factory(world.engine).begin() as session:
        return [(c.object, c.last_modified, c.last_id) for c in Repositories(session).cursors.all(connection)]


def test_a_contact_hubspot_pushed_is_decided_and_written_back_once(world: World) -> None:  # noqa: F811
    run_sync(world.config, "hubspot", world.engine)
    before = _cursors(world, "hubspot")
    contact = world.hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "new.buyer@globex.example", "firstname": "New", "lastname": "Buyer", "jobtitle": "VP Sales",
        "company": "Globex"})).id
    creation = WebhookEvent(f"62515:contact.creation:{contact}:1:1", "contacts", contact, "contact.creation",
                            {"objectId": int(contact)})
    change = WebhookEvent(f"62515:contact.propertyChange:{contact}:2:2:email", "contacts", contact,
                          "contact.propertyChange", {"objectId": int(contact), "propertyName": "email"})
    association = WebhookEvent("62515:contact.associationChange:1>2:3:3", "contacts", None,
                               "contact.associationChange", {})
    _push(world, "hubspot", "hubspot", creation, change, association)

    [run] = process_events(world.config, world.engine)

    assert (run.connection, run.events, run.records) == ("hubspot", 3, 1)
    assert run.summary is not None and run.summary.mode == "events" and run.summary.read["contacts"] == 1
    assert run.summary.records_updated == 1
    written = world.hs.crm.contacts.basic_api.get_by_id(contact, properties=["hubspot_owner_id", "relay_score"])
    assert written.properties["hubspot_owner_id"] and written.properties["relay_score"]
    assert _unprocessed(world) == 0
    assert _cursors(world, "hubspot") == before  # an events run moves no checkpoint
    assert process_events(world.config, world.engine) == []  # nothing left: nothing decided twice


def test_a_lead_salesforce_pushed_is_decided_and_written_back(world: World) -> None:  # noqa: F811
    run_sync(world.config, "salesforce", world.engine)
    lead = world.sf.Lead.create({"LastName": "Pushed", "Company": "Initech", "Email": "pushed@initech.example",
                                 "Title": "Director of Operations"}, headers={"Sforce-Auto-Assign": "FALSE"})["id"]
    _push(world, "salesforce", "salesforce",
          WebhookEvent(f"00D5e0000000001:04l{lead[3:15]}", "Lead", lead, "Lead.outbound", {"fields": {"Id": lead}}))

    [run] = process_events(world.config, world.engine)

    assert run.summary is not None and run.summary.read["Lead"] == 1
    written = world.sf.Lead.get(lead)
    assert written["Relay_Score__c"] is not None and written["Relay_Routing_Reason__c"]
    with session_factory(world.engine).begin() as session:
        modes = [r.mode for r in session.scalars(select(SyncRunRow).order_by(SyncRunRow.id))]
    assert modes == ["incremental", "events"]


def test_events_of_a_failed_run_stay_for_the_next_pass(world: World, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    _push(world, "hubspot", "hubspot", WebhookEvent("62515:contact.creation:1:1:1", "contacts", "1",
                                                    "contact.creation", {}))

    def fails(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the CRM went away")

    monkeypatch.setattr(events_module, "run_sync", fails)
    with pytest.raises(RuntimeError):
        process_events(world.config, world.engine)

    assert _unprocessed(world) == 1
