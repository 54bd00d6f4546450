"""Four ``relay worker`` processes on PostgreSQL + Redis decide one stream of pushed events, each record once.

The whole way, over real HTTP and real processes: the sandbox HubSpot portal sends signed
webhook batches (every event twice) to Relay's intake, which stores them and enqueues a job
per delivery on Redis; four worker processes take the jobs, each claiming its own share of
the stored events. At the end every contact has one owner, one active assignment and one
open Relay task, every event is processed, and more than one worker did the work. A worker
killed while it holds events is replaced, and what it held is decided once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from huey import RedisHuey
from sqlalchemy import Engine, func, select

from connector.config.loader import load_config
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import AssignmentRow, InboxRow, OutboxRow, SyncMode, SyncRunRow
from connector.web.app import create_app
from crm_sandbox.common import FaultSettings
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.hubspot.webhooks import WebhookSettings
from crm_sandbox.runner import SandboxServer
from crm_sandbox.seed import generate
from jobs.app import make_huey
from jobs.tasks import register
from tests.e2e._crm import read_hubspot
from tests.e2e._expect import task_problems
from tests.support.databases import fresh_postgres_schema, redis_url
from tests.web.conftest import SECRET, WEBHOOK_ENV

RELAY = [sys.executable, "-m", "connector.cli"]
T = TypeVar("T")


@dataclass
class Stream:
    portal: HubSpotSandbox
    sdk: HubSpot
    engine: Engine
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]]
    logs: Path

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.workers)}.log").open("wb")
        worker = subprocess.Popen([*RELAY, "worker", "--workers", "1"], env=self.env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(worker)
        return worker

    def create_contacts(self, count: int, prefix: str) -> list[str]:
        """``count`` contacts created through the SDK, about 5 a second (a steady stream)."""
        created = []
        for i in range(count):
            created.append(_patiently(lambda i=i: self.sdk.crm.contacts.basic_api.create(
                SimplePublicObjectInputForCreate(properties={
                "email": f"{prefix}{i}@globex{i % 7}.example", "firstname": "Stream",
                "lastname": f"{prefix.title()}{i}", "jobtitle": ("VP Sales", "Director of Operations", "Analyst")[i % 3],
                "company": f"Globex {i % 7}", "country": ("United States", "Germany", "Japan")[i % 3],
                "phone": f"+1 415 555 {i:04d}",  # two in three asked for a demo: sales leads, given an owner
                **({"demo_requested": "true", "pricing_page_visits": "2", "num_conversion_events": "2"}
                   if i % 3 != 2 else {})})).id))
            time.sleep(0.2)
        return created

    def unprocessed(self) -> int:
        with session_factory(self.engine).begin() as session:
            return int(session.scalar(select(func.count()).select_from(InboxRow)
                                      .where(InboxRow.processed_at.is_(None))) or 0)

    def scores(self, ids: list[str]) -> dict[str, str | None]:
        """Relay's score on each contact as the portal holds it (read in the portal, not over its API: polling would
        spend the portal's budget, which Relay shares); every decided contact has one, owned or nurtured."""
        found = {i: self.portal.state.find("contacts", i) for i in ids}
        return {i: (record["properties"].get("relay_score") or None) if record else None
                for i, record in found.items()}

    def settled(self) -> bool:
        """No run going on and nothing waiting in the outbox (a worker's scheduled sync may run beside the events)."""
        with session_factory(self.engine).begin() as session:
            running = session.scalar(select(func.count()).select_from(SyncRunRow).where(SyncRunRow.status == "running"))
            waiting = session.scalar(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.connection == "hubspot", OutboxRow.status.in_(("pending", "failed"))))
        return not running and not waiting

    def wait_until_decided(self, ids: list[str], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.portal.webhooks is not None and self.portal.webhooks.idle() and self.unprocessed() == 0 \
                    and all(self.scores(ids).values()) and self.settled():
                return
            time.sleep(0.25)
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.logs.glob("*.log")))
        raise AssertionError(f"not decided in {seconds} s: {self.unprocessed()} events unprocessed; scores "
                             f"{self.scores(ids)}\n{logs}")


def _patiently(call: Callable[[], T]) -> T:
    """``call``, again after the wait HubSpot asks for when the portal's limit (shared with Relay) is reached."""
    for _ in range(20):
        try:
            return call()
        except ApiException as exc:
            if exc.status != 429:
                raise
            time.sleep(1.0)
    return call()


@pytest.fixture()
def stream(tmp_path: Path) -> Iterator[Stream]:
    with fresh_postgres_schema() as database_url:
        portal = HubSpotSandbox(generate(seed=5, leads=10), client_secret=SECRET, webhook_url="http://127.0.0.1:9/unset",
                                webhook_settings=WebhookSettings(duplicate_rate=0.5, flush_seconds=0.05))
        portal_url = portal.start().url
        queue = f"relay-test-{uuid.uuid4().hex[:12]}"
        env = dict(os.environ, HUBSPOT_BASE_URL=portal_url, RELAY_DATABASE_URL=database_url,
                   RELAY_HUEY_URL=redis_url(), RELAY_HUEY_NAME=queue, RELAY_LOG_LEVEL="INFO", **WEBHOOK_ENV)
        engine = open_store(database_url)
        huey = make_huey(redis_url(), name=queue)
        assert isinstance(huey, RedisHuey)
        jobs = register(huey)
        app = create_app(load_config(env=env), engine, on_stored=jobs.process_events_now)
        relay = SandboxServer(app, port=0, name="relay").start()
        assert portal.webhooks is not None
        portal.webhooks.url = relay.url + "/webhooks/hubspot"
        found = Stream(portal, HubSpot(access_token="sandbox-token", host=portal_url), engine, env, [], tmp_path)
        try:
            yield found
        finally:
            for worker in found.workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in found.workers:
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
            relay.stop()
            portal.stop()
            huey.storage.flush_all()
            engine.dispose()


def _assignments(engine: Engine) -> dict[str, int]:
    with session_factory(engine).begin() as session:
        rows = session.execute(select(AssignmentRow.crm_id, func.count()).where(AssignmentRow.status == "active")
                               .group_by(AssignmentRow.crm_id))
        return {crm_id: int(count) for crm_id, count in rows}


def _events_runs_by_holder(engine: Engine) -> dict[str, int]:
    with session_factory(engine).begin() as session:
        rows = session.execute(select(SyncRunRow.holder, func.count()).where(SyncRunRow.mode == SyncMode.EVENTS.value)
                               .group_by(SyncRunRow.holder))
        return {str(holder): int(count) for holder, count in rows}


def test_four_workers_decide_one_stream_each_record_once(stream: Stream) -> None:
    for _ in range(4):
        stream.start_worker()
    created = stream.create_contacts(40, "first")
    for index, contact in enumerate(created[:20]):  # a second change of half of them, while they are decided
        _patiently(lambda contact=contact, index=index: stream.sdk.crm.contacts.basic_api.update(
            contact, SimplePublicObjectInput(properties={
                "jobtitle": "Chief Revenue Officer" if index % 2 else "Head of Sales"})))
        time.sleep(0.2)
    created += stream.create_contacts(20, "second")

    stream.wait_until_decided(created)

    assert all(worker.poll() is None for worker in stream.workers), "a worker died"
    assignments = _assignments(stream.engine)
    assert {crm_id: n for crm_id, n in assignments.items() if n != 1} == {}
    view = read_hubspot(stream.portal)
    owned = {crm_id for crm_id in created if view.people[crm_id].owner_id}
    assert len(owned) >= 20 and owned <= set(assignments)  # the sales leads among them, each given one owner
    assert task_problems(read_hubspot(stream.portal), stream.engine, "hubspot") == []
    by_worker = _events_runs_by_holder(stream.engine)
    assert len(by_worker) > 1, f"one worker did everything: {by_worker}"


def test_a_worker_killed_holding_events_is_replaced_and_they_are_decided_once(stream: Stream) -> None:
    stream.portal.faults.configure(FaultSettings(latency_ms=1500, path_pattern=r"/crm/v3/objects/contacts/batch/read"))
    victim = stream.start_worker()
    created = stream.create_contacts(5, "killed")
    # The worker's one thread may first run the connections' first scheduled syncs (due at once in a new
    # store; the batch reads are slowed down here): those come first, then the events.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the worker claimed the events and is reading the contacts
        with session_factory(stream.engine).begin() as session:
            if session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.claimed_by.is_not(None),
                                                                            InboxRow.processed_at.is_(None))):
                break
        time.sleep(0.05)
    else:
        raise AssertionError("the worker never claimed the events")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert stream.unprocessed() > 0
    stream.portal.faults.configure(FaultSettings())
    stream.start_worker()  # on this host: the dead worker's claims are free at once
    # No delivery comes to wake it: the job the reconciler's minute would run, enqueued now.
    register(make_huey(stream.env["RELAY_HUEY_URL"], name=stream.env["RELAY_HUEY_NAME"])).process_events_now()

    stream.wait_until_decided(created, seconds=60)

    assignments = _assignments(stream.engine)
    assert {crm_id: n for crm_id, n in assignments.items() if n != 1} == {}
    assert task_problems(read_hubspot(stream.portal), stream.engine, "hubspot") == []
