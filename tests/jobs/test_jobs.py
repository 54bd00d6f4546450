"""Relay's Huey jobs: a scheduled sync enqueued on Redis, consumed, and seen in the CRM.

Runs against the Redis in RELAY_TEST_REDIS_URL and stores Relay's state in SQLite and,
when RELAY_TEST_POSTGRES_URL is set, in PostgreSQL (CI sets both and fails without them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huey import MemoryHuey, RedisHuey, SqliteHuey
from simple_salesforce import Salesforce

from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.repositories import Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate
from jobs.app import JobsConfigError, make_huey
from jobs.tasks import RelayJobs, due_connections, register
from tests.support.databases import fresh_postgres_schema, redis_url

ANCHOR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture()
def sandboxes() -> Iterator[tuple[SalesforceSandbox, HubSpotSandbox, str, str]]:
    data = generate(seed=11, leads=60, anchor=ANCHOR)
    sf, hs = SalesforceSandbox(data), HubSpotSandbox(data)
    sf_url, hs_url = sf.start().url, hs.start().url
    try:
        yield sf, hs, sf_url, hs_url
    finally:
        hs.stop()
        sf.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relay.db'}"
    else:
        with fresh_postgres_schema() as url:
            yield url


@pytest.fixture()
def relay_env(
    monkeypatch: pytest.MonkeyPatch, sandboxes: tuple[SalesforceSandbox, HubSpotSandbox, str, str], database_url: str
) -> str:
    _, _, sf_url, hs_url = sandboxes
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", sf_url)
    monkeypatch.setenv("HUBSPOT_BASE_URL", hs_url)
    monkeypatch.setenv("RELAY_DATABASE_URL", database_url)
    return database_url


@pytest.fixture()
def redis_jobs() -> Iterator[RelayJobs]:
    huey = make_huey(redis_url(), name=f"relay-test-{uuid.uuid4().hex[:12]}")
    assert isinstance(huey, RedisHuey)
    try:
        yield register(huey)
    finally:
        huey.storage.flush_all()


def _consume_one(jobs: RelayJobs) -> None:
    task = jobs.huey.dequeue()
    assert task is not None, "no task was enqueued"
    jobs.huey.execute(task)


def test_sync_job_on_redis_routes_leads_in_the_crm(
    relay_env: str, redis_jobs: RelayJobs, sandboxes: tuple[SalesforceSandbox, HubSpotSandbox, str, str]
) -> None:
    sf = sandboxes[0]
    result = redis_jobs.sync_connection("salesforce")
    assert redis_jobs.huey.pending_count() == 1
    _consume_one(redis_jobs)
    summary = result.get()
    assert summary["connection"] == "salesforce"
    assert sum(summary["routed"].values()) > 0
    assert summary["write_failures"] == []

    # What a rep sees: each routed lead's task exists in Salesforce, owned by the lead's owner.
    engine = open_store(relay_env)
    try:
        with session_factory(engine).begin() as session:
            runs = Repositories(session).sync_runs.recent("salesforce", limit=1)
            assert runs[0].status.value == "succeeded"
            assert runs[0].counts["routed"] == sum(summary["routed"].values())
    finally:
        engine.dispose()
    client = Salesforce(
        instance_url="https://sandbox.example", session_id=sf.access_token(),
        session=sandbox_session(sandboxes[2]), version="59.0",
    )
    tasks = client.query_all(
        "SELECT Id, WhoId, OwnerId, Who.Name FROM Task WHERE Relay_Idempotency_Key__c != null AND WhatId = null"
    )["records"]
    deal_tasks = client.query_all(  # deal governance tasks name an opportunity (WhatId)
        "SELECT Id FROM Task WHERE Relay_Idempotency_Key__c != null AND WhatId != null")["records"]
    assert len(tasks) + len(deal_tasks) == summary["tasks_created"] and tasks
    for task in tasks:
        person = client.query(f"SELECT OwnerId FROM Lead WHERE Id = '{task['WhoId']}'")["records"] or client.query(
            f"SELECT OwnerId FROM Contact WHERE Id = '{task['WhoId']}'"
        )["records"]
        assert person and person[0]["OwnerId"] == task["OwnerId"]


def test_schedule_enqueues_only_due_connections(relay_env: str, redis_jobs: RelayJobs) -> None:
    now = datetime.now(UTC)
    assert due_connections(now) == ["salesforce", "hubspot"]  # never synced: both due

    redis_jobs.huey.execute(redis_jobs.enqueue_due_syncs.s())  # the periodic task, run once by hand
    assert redis_jobs.huey.pending_count() == 2
    _consume_one(redis_jobs)  # salesforce syncs now

    assert due_connections(datetime.now(UTC)) == ["hubspot"]
    # every_minutes: 15 in config/relay.yaml: due again a quarter of an hour later
    assert "salesforce" in due_connections(datetime.now(UTC) + timedelta(minutes=15, seconds=1))


def test_make_huey_picks_storage_from_url(tmp_path: Path) -> None:
    assert isinstance(make_huey("memory://"), MemoryHuey)
    assert isinstance(make_huey("", sqlite_file=tmp_path / "h.db"), SqliteHuey)
    assert isinstance(make_huey(f"sqlite:///{tmp_path / 'x.db'}"), SqliteHuey)
    with pytest.raises(JobsConfigError, match="amqp://x"):
        make_huey("amqp://x")


def test_an_events_run_does_not_put_off_the_scheduled_sync(relay_env: str) -> None:
    """Pushed records are decided by events runs; the schedule still reads the changes every 15 minutes."""
    from connector.config.loader import load_config
    from connector.pipeline.sync import run_sync
    from connector.store.migrate import open_store

    config = load_config()
    engine = open_store(relay_env)
    started = datetime.now(UTC)
    try:
        run_sync(config, "salesforce", engine, now=lambda: started)
        run_sync(config, "salesforce", engine, changed={"Lead": []}, now=lambda: started + timedelta(minutes=14))
    finally:
        engine.dispose()

    assert "salesforce" in due_connections(started + timedelta(minutes=15, seconds=1))


def test_the_worker_decides_pushed_records_every_minute(
    relay_env: str, redis_jobs: RelayJobs, sandboxes: tuple[SalesforceSandbox, HubSpotSandbox, str, str]
) -> None:
    from hubspot import HubSpot
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    from connector.crms.intake import WebhookEvent
    from connector.pipeline.intake import EventInbox
    from connector.store.migrate import open_store

    hs = HubSpot(access_token="sandbox-token", host=sandboxes[3])
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "worker.pushed@initech.example", "firstname": "Worker", "lastname": "Pushed", "jobtitle": "VP Sales",
        "company": "Initech"})).id
    engine = open_store(relay_env)
    try:
        EventInbox(engine).store("hubspot", "hubspot", [
            WebhookEvent(f"62515:contact.creation:{contact}:1:1", "contacts", contact, "contact.creation", {})],
            now=datetime.now(UTC))
    finally:
        engine.dispose()

    done = redis_jobs.huey.execute(redis_jobs.process_pushed_events.s())  # the periodic task, run once by hand

    assert [(d["connection"], d["events"], d["records"]) for d in done["events"]] == [("hubspot", 1, 1)]
    assert done["outboxes_sent"] == []  # the events run sent its own writes: nothing was left
    written = hs.crm.contacts.basic_api.get_by_id(contact, properties=["hubspot_owner_id", "relay_score"])
    assert written.properties["hubspot_owner_id"] and written.properties["relay_score"]



def test_relay_serve_hands_a_delivery_to_a_worker_on_the_embedded_sqlite_queue(
    relay_env: str, tmp_path: Path, sandboxes: tuple[SalesforceSandbox, HubSpotSandbox, str, str]
) -> None:
    """The embedded default: ``relay serve --no-decide`` enqueues on Huey's SQLite storage; the worker decides."""
    import json
    import os
    import time

    import httpx
    from hubspot import HubSpot
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    from connector.config.loader import load_config
    from connector.web.app import create_app
    from crm_sandbox.hubspot.webhooks import sign_v3
    from crm_sandbox.runner import SandboxServer
    from tests.web.conftest import SECRET, WEBHOOK_ENV

    huey = make_huey("", name="relay-embedded", sqlite_file=tmp_path / "relay-huey.db")
    assert isinstance(huey, SqliteHuey)
    jobs = register(huey)
    engine = open_store(relay_env)
    app = create_app(load_config(env=dict(os.environ, **WEBHOOK_ENV)), engine, on_stored=jobs.process_events_now)
    relay = SandboxServer(app, port=0, name="relay").start()
    portal = HubSpot(access_token="sandbox-token", host=sandboxes[3])
    try:
        contact = portal.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
            "email": "embedded.queue@initech.example", "firstname": "Embedded", "lastname": "Queue",
            "jobtitle": "VP Sales", "company": "Initech", "demo_requested": "true"})).id
        body = json.dumps([{"eventId": 1, "subscriptionId": 1, "portalId": 62515, "appId": 1,
                            "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.creation",
                            "attemptNumber": 0, "objectId": int(contact), "changeSource": "CRM_UI"}])
        url, stamp = relay.url + "/webhooks/hubspot", str(int(time.time() * 1000))
        answer = httpx.post(url, content=body, headers={
            "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", url, body, stamp)})
        assert answer.status_code == 200, answer.text
        task = huey.dequeue()  # what relay worker takes from the SQLite queue
        assert task is not None and task.name == "relay.process_events_now"
        task.kwargs["settle"] = 0.0
        done = huey.execute(task)
    finally:
        relay.stop()
        engine.dispose()

    assert [(d["connection"], d["events"], d["records"]) for d in done] == [("hubspot", 1, 1)]
    written = portal.crm.contacts.basic_api.get_by_id(contact, properties=["hubspot_owner_id", "relay_score"])
    assert written.properties["hubspot_owner_id"] and written.properties["relay_score"]


def test_the_hourly_dedupe_pass_runs_once_at_a_time_and_links_people(
        relay_env: str, redis_jobs: RelayJobs, sandboxes: tuple[SalesforceSandbox, HubSpotSandbox, str, str]) -> None:
    from jobs.tasks import run_connection_sync

    run_connection_sync("salesforce")
    run_connection_sync("hubspot")

    done = redis_jobs.huey.execute(redis_jobs.dedupe.s())  # the periodic task, run once by hand
    assert done is not None and done["stopped"] is None and done["failures"] == []
    assert done["merged"] == {} and done["flagged"] == {}  # the shipped setting only reports duplicates
    again = redis_jobs.huey.execute(redis_jobs.dedupe.s())
    assert again is not None and again["linked"] == 0 and again["reviews_queued"] == 0  # nothing new
    with redis_jobs.huey.lock_task("relay.dedupe"):  # another worker's pass holds the lock
        assert redis_jobs.huey.execute(redis_jobs.dedupe.s()) is None
