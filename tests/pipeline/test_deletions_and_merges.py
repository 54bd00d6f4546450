"""Deletions and merges made in the CRMs reach Relay's store on the next incremental sync."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import PublicMergeInput, SimplePublicObjectInput
from simple_salesforce import Salesforce
from sqlalchemy import Engine

from connector.config.loader import RelayConfig, load_config
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.repositories import Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate

ANCHOR = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


@dataclass
class World:
    config: RelayConfig
    engine: Engine
    sf: Salesforce
    hs: HubSpot


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    # Without dispositions: a Qualified one converts its lead, which is a change of the CRM's own
    # (new contact, account, opportunity), not an echo (tests/pipeline/test_dispositions.py).
    data = generate(seed=5, leads=40, anchor=ANCHOR, dispositions=False)
    sf_box, hs_box = SalesforceSandbox(data), HubSpotSandbox(data)
    sf_url, hs_url = sf_box.start().url, hs_box.start().url
    env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, HUBSPOT_BASE_URL=hs_url)
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=env)
    for connection in config.relay.connections.values():
        # These tests change a record and sync at once; the sandbox has no commit lag to wait out.
        connection.read_lag_seconds = 0
    try:
        yield World(
            config=config,
            engine=engine,
            sf=Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                          session=sandbox_session(sf_url), version="59.0"),
            hs=HubSpot(access_token="sandbox-token", host=hs_url),
        )
    finally:
        engine.dispose()
        hs_box.stop()
        sf_box.stop()


def _snapshot(world: World, connection: str, obj: str, crm_id: str) -> tuple[bool, str | None]:
    with session_factory(world.engine).begin() as session:
        snap = Repositories(session).records.get(connection, obj, crm_id)
        assert snap is not None, f"{connection} {obj} {crm_id} was never synced"
        return snap.deleted, snap.merged_into


def _audit_actions(world: World, connection: str, obj: str, crm_id: str) -> list[str]:
    with session_factory(world.engine).begin() as session:
        return [e.action for e in Repositories(session).audit.for_record(connection, obj, crm_id)]


def test_a_lead_deleted_in_salesforce_is_marked_deleted(world: World) -> None:
    run_sync(world.config, "salesforce", world.engine)
    lead_id = world.sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 1")["records"][0]["Id"]
    world.sf.Lead.delete(lead_id)

    summary = run_sync(world.config, "salesforce", world.engine)

    assert summary.deleted == 1
    assert _snapshot(world, "salesforce", "Lead", lead_id) == (True, None)
    assert "deleted" in _audit_actions(world, "salesforce", "Lead", lead_id)


def test_a_contact_archived_in_hubspot_is_marked_deleted(world: World) -> None:
    world.config.connection("hubspot").deletions_every_minutes = 0  # list archived records on every run
    run_sync(world.config, "hubspot", world.engine)
    contact_id = world.hs.crm.contacts.basic_api.get_page(limit=1).results[0].id
    world.hs.crm.contacts.basic_api.archive(contact_id)

    summary = run_sync(world.config, "hubspot", world.engine)

    assert summary.deleted == 1
    assert _snapshot(world, "hubspot", "contacts", contact_id) == (True, None)
    assert "deleted" in _audit_actions(world, "hubspot", "contacts", contact_id)


@pytest.fixture()
def listings(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each object's archived records were listed (HubSpot's read_deleted)."""
    counted: Counter[str] = Counter()
    original = HubSpotAdapter.read_deleted

    def read_deleted(self: HubSpotAdapter, object: str, since: datetime) -> list[str]:
        counted[object] += 1
        return original(self, object, since)

    monkeypatch.setattr(HubSpotAdapter, "read_deleted", read_deleted)
    return counted


def test_hubspot_lists_archived_records_at_most_every_interval_and_misses_none(
    world: World, listings: Counter[str]
) -> None:
    """The archived listing pages through every archived record: once an hour by default, not every run."""
    assert world.config.connection("hubspot").deletions_every_minutes == 60
    start = datetime.now(UTC)
    run_sync(world.config, "hubspot", world.engine, now=lambda: start)
    assert listings == {"contacts": 1, "companies": 1, "deals": 1}  # listed once to begin with
    contact_id = world.hs.crm.contacts.basic_api.get_page(limit=1).results[0].id
    world.hs.crm.contacts.basic_api.archive(contact_id)

    soon = run_sync(world.config, "hubspot", world.engine, now=lambda: start + timedelta(minutes=30))
    assert sum(listings.values()) == 3 and soon.deleted == 0  # not due: the calls are saved
    time.sleep(1.1)  # the CRM's clock counts whole seconds: the next changes come after this run's read
    world.hs.crm.contacts.basic_api.update(
        world.hs.crm.contacts.basic_api.get_page(limit=2).results[1].id,
        SimplePublicObjectInput(properties={"jobtitle": "Head of Growth"}))
    moved = run_sync(world.config, "hubspot", world.engine, now=lambda: start + timedelta(minutes=45))
    assert sum(listings.values()) == 3 and moved.changed == 1  # the read position moved past the archiving

    due = run_sync(world.config, "hubspot", world.engine, now=lambda: start + timedelta(minutes=61))

    assert listings == {"contacts": 2, "companies": 2, "deals": 2}
    assert due.deleted == 1  # looked back to where the last listing stood, not to this run's start
    assert _snapshot(world, "hubspot", "contacts", contact_id) == (True, None)


def test_a_full_sync_always_lists_archived_records(world: World, listings: Counter[str]) -> None:
    start = datetime.now(UTC)
    run_sync(world.config, "hubspot", world.engine, now=lambda: start)
    contact_id = world.hs.crm.contacts.basic_api.get_page(limit=1).results[0].id
    world.hs.crm.contacts.basic_api.archive(contact_id)

    full = run_sync(world.config, "hubspot", world.engine, full=True, now=lambda: start + timedelta(minutes=1))

    assert listings == {"contacts": 2, "companies": 2, "deals": 2} and full.deleted == 1


def test_contacts_merged_in_hubspot_are_recorded_as_merged(world: World) -> None:
    run_sync(world.config, "hubspot", world.engine)
    first, second = (c.id for c in world.hs.crm.contacts.basic_api.get_page(limit=2).results)
    world.hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=first, object_id_to_merge=second))

    summary = run_sync(world.config, "hubspot", world.engine)

    assert summary.merged >= 1
    _, merged_into = _snapshot(world, "hubspot", "contacts", second)
    assert merged_into == first
    assert "merged" in _audit_actions(world, "hubspot", "contacts", second)


def test_an_unreadable_value_is_audited_and_the_record_still_decided(world: World) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    made = world.hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "odd.value@plainfield.example", "firstname": "Odd", "lastname": "Value", "company": "Plainfield",
        "hs_analytics_num_page_views": "12.5",  # a HubSpot number; Relay's mapping reads page views as whole
    }))

    summary = run_sync(world.config, "hubspot", world.engine)

    assert summary.findings["unreadable_value"] >= 1
    with session_factory(world.engine).begin() as session:
        entries = Repositories(session).audit.for_record("hubspot", "contacts", made.id)
    quality = [e for e in entries if e.action == "data_quality"]
    assert quality and quality[0].detail["field"] == "hs_analytics_num_page_views"
    assert "12.5" in quality[0].detail["value"] and "whole number" in quality[0].detail["message"]
    assert "scored" in {e.action for e in entries}  # the rest of the record was decided
