"""A lead synced from the sandbox HubSpot, routed, and its owner alerted through the sink.

The sandbox HubSpot, the notification sink and Relay's store run for real; the test reads the
messages back from the sink, as the rep's phone and mailbox would show them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from sqlalchemy import Engine

from connector.config.loader import RelayConfig
from connector.pipeline.alerts import send_pending_notifications
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import NotificationStatus
from connector.store.repositories import Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.notify import NotifySandbox
from crm_sandbox.seed import generate
from tests.notify.conftest import PORTAL, config_for

FIT = {  # a VP of Sales at a large, well-fitting company: 28 demographic + 30 firmographic points
    "jobtitle": "VP Sales", "company": "Analytical Engines", "numemployees": "5000", "annualrevenue": "500000000",
    "industry": "Software", "country": "US", "state": "CA", "city": "San Francisco", "phone": "+14155550123",
}


@dataclasses.dataclass
class World:
    config: RelayConfig
    engine: Engine
    hs: HubSpot
    sink: NotifySandbox


@pytest.fixture()
def world(tmp_path: Path, sink: NotifySandbox) -> Iterator[World]:
    box = HubSpotSandbox(generate(seed=5, leads=10))
    url = box.start().url
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = config_for(sink, HUBSPOT_BASE_URL=url)
    config.connection("hubspot").read_lag_seconds = 0
    try:
        yield World(config, engine, HubSpot(access_token="sandbox-token", host=url), sink)
    finally:
        engine.dispose()
        box.stop()


def _contact(world: World, first: str, last: str, email: str, **behaviour: str) -> str:
    properties = {"firstname": first, "lastname": last, "email": email, **FIT, **behaviour}
    return str(world.hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=properties)).id)


def test_a_hot_lead_texts_and_emails_its_owner_and_a_warm_lead_only_emails(world: World) -> None:
    run_sync(world.config, "hubspot", world.engine)  # the seeded portal first: its alerts are not this test's
    send_pending_notifications(world.config, world.engine)
    world.sink.messages.clear()
    hot = _contact(world, "Ada", "Lovelace", "ada@analytical-engines.example", demo_requested="true",
                   webinar_attended="true", pricing_page_visits="3")
    warm = _contact(world, "Grace", "Hopper", "grace@analytical-engines.example", hs_analytics_num_page_views="6")

    run_sync(world.config, "hubspot", world.engine)
    summary = send_pending_notifications(world.config, world.engine)

    assert summary.errors == []
    read = world.hs.crm.contacts.basic_api
    hot_row = read.get_by_id(hot, properties=["hubspot_owner_id", "relay_score", "relay_score_category"]).properties
    warm_row = read.get_by_id(warm, properties=["relay_score_category"]).properties
    assert (hot_row["relay_score_category"], warm_row["relay_score_category"]) == ("Hot", "Warm")
    owner = world.hs.crm.owners.owners_api.get_by_id(int(hot_row["hubspot_owner_id"])).email
    link = f"https://app.hubspot.com/contacts/{PORTAL}/record/0-1/{hot}"

    [sms] = world.sink.messages.all("sms")
    phone = world.config.alerts.people[owner].phone if world.config.alerts is not None else None
    assert sms.to == (phone,) and "Ada Lovelace" in sms.text and f"score {hot_row['relay_score']}" in sms.text
    assert "demo_requested" in sms.text and link in sms.text  # the why, and the link to the record
    emails = {m.subject: m for m in world.sink.messages.all("email")}
    [hot_mail] = [m for subject, m in emails.items() if "Ada Lovelace" in (subject or "")]
    assert hot_mail.to == (owner,) and link in hot_mail.text and "Contact them by " in hot_mail.text
    [warm_mail] = [m for subject, m in emails.items() if "Grace Hopper" in (subject or "")]
    assert (warm_mail.subject or "").startswith("[Relay] New Warm lead for you: Grace Hopper")
    assert not any("Grace Hopper" in m.text for m in world.sink.messages.all("sms"))  # Warm: email only
    assert len(world.sink.messages.all()) == 3

    # A second sync over the same records queues nothing: each message was sent once.
    run_sync(world.config, "hubspot", world.engine, full=True)
    assert send_pending_notifications(world.config, world.engine).outcomes == {}
    with session_factory(world.engine).begin() as session:
        rows = Repositories(session).notifications.for_record("hubspot", "contacts", hot)
    assert sorted((r.channel.value, r.status) for r in rows) == [("email", NotificationStatus.SENT),
                                                                  ("sms", NotificationStatus.SENT)]
