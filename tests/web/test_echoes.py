"""Relay's own writes come back as webhooks; they are recognised and not read again (no echo loop).

The sandbox portal sends a property change for every subscribed property an API call
changes, Relay's own owner writes included, as HubSpot does. Those events report values the
store already holds (the snapshot takes on what Relay wrote), so they are processed without a
read; a rep's change of the owner reports a new value and is read and decided.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from sqlalchemy import Engine, func, select

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.events import EventsRun, process_events
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import InboxRow
from connector.web.app import create_app
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.runner import SandboxServer
from crm_sandbox.seed import generate
from tests.web.conftest import SECRET, WEBHOOK_ENV


@dataclass
class Portal:
    sandbox: HubSpotSandbox
    sdk: HubSpot
    config: RelayConfig
    engine: Engine

    def settle(self) -> None:
        """Wait until the portal delivered every webhook it has."""
        deadline = time.monotonic() + 10
        time.sleep(0.1)
        while time.monotonic() < deadline and not (self.sandbox.webhooks and self.sandbox.webhooks.idle()):
            time.sleep(0.02)

    def batch_reads(self) -> int:
        return sum(1 for e in self.sandbox.ledger.entries() if e.path.endswith("/contacts/batch/read"))

    def decide(self) -> EventsRun:
        self.settle()
        (run,) = process_events(self.config, self.engine)
        return run


@pytest.fixture()
def portal(tmp_path: Path) -> Iterator[Portal]:
    sandbox = HubSpotSandbox(generate(seed=3, leads=5), client_secret=SECRET, webhook_url="http://127.0.0.1:9/unset")
    url = sandbox.start().url
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=dict(os.environ, HUBSPOT_BASE_URL=url, **WEBHOOK_ENV))
    relay = SandboxServer(create_app(config, engine), port=0, name="relay").start()  # stores; decided by hand here
    assert sandbox.webhooks is not None
    sandbox.webhooks.url = relay.url + "/webhooks/hubspot"
    try:
        yield Portal(sandbox, HubSpot(access_token="sandbox-token", host=url), config, engine)
    finally:
        relay.stop()
        sandbox.stop()
        engine.dispose()


def test_relays_own_owner_write_comes_back_and_is_not_read_again_but_a_reps_change_is(portal: Portal) -> None:
    contact = portal.sdk.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "echo@initech.example", "firstname": "Echo", "lastname": "Loop", "jobtitle": "VP Sales",
        "company": "Initech", "demo_requested": "true"})).id
    first = portal.decide()
    assert first.records == 1 and first.echoes == 0
    owner = portal.sdk.crm.contacts.basic_api.get_by_id(contact, properties=["hubspot_owner_id"]).properties[
        "hubspot_owner_id"]
    assert owner

    reads = portal.batch_reads()
    echo = portal.decide()  # the portal told Relay about the owner Relay wrote

    assert echo.echoes == echo.events >= 1 and echo.records == 0 and echo.summary is None
    assert portal.batch_reads() == reads  # not read again
    with session_factory(portal.engine).begin() as session:
        assert session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.processed_at.is_(None))) == 0

    others = [o.id for o in portal.sdk.crm.owners.owners_api.get_page(limit=100).results if o.id != owner]
    portal.sdk.crm.contacts.basic_api.update(contact, SimplePublicObjectInput(properties={
        "hubspot_owner_id": others[0]}))  # a rep hands the lead to a colleague in the CRM
    handed = portal.decide()
    assert handed.echoes == 0 and handed.records == 1 and portal.batch_reads() == reads + 1
