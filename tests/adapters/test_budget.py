"""The API governor against the sandbox CRMs over real HTTP: priorities, learned counts, no 429, deadlines.

What a user would see is read back from the sandboxes' own call ledgers (``GET /__sandbox/ledger``:
every request and the status it got) and from the budget rows in Relay's store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.adapters.budget import (
    DAY,
    WINDOW,
    BudgetDeadlineExceeded,
    BudgetLimits,
    Governor,
    LimitSetting,
    Priority,
    budget_limits,
)
from connector.adapters.retry import Deadline, RetryPolicy
from connector.crms.factory import build_adapter
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.hubspot.settings import HubSpotConnection
from connector.crms.salesforce.adapter import SalesforceAdapter
from connector.crms.salesforce.settings import SalesforceConnection
from connector.pipeline.budget import StoreLedger, open_governor
from connector.store import migrate
from connector.store.db import create_engine_for
from connector.store.repositories import Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData
from tests.support.databases import fresh_postgres_schema

from ._sandbox_helpers import sandbox_admin

NAME = "hubspot"


@contextmanager
def hubspot(seed: SeedData, **options: Any) -> Iterator[tuple[str, list[str]]]:
    """A HubSpot sandbox (rate limits as given) and the ids of a few of its contacts (read before counting)."""
    sandbox = HubSpotSandbox(seed, search_per_second=10_000, **options)
    sandbox.start()
    try:
        assert sandbox.server is not None
        url = str(sandbox.server.url)
        listed = requests.get(f"{url}/crm/v3/objects/contacts", params={"limit": 5}, timeout=10,
                              headers={"Authorization": "Bearer sandbox-token"}).json()
        deadline = time.monotonic() + 5
        while not sandbox.ledger.entries() and time.monotonic() < deadline:
            time.sleep(0.01)  # the sandbox records a call just after answering it
        sandbox.limits.reset()  # that listing is not part of any test's count
        sandbox.ledger.reset()
        yield url, [str(row["id"]) for row in listed["results"]]
    finally:
        sandbox.stop()


def hs_settings(url: str, token: str = "sandbox-token", **extra: Any) -> HubSpotConnection:
    """A HubSpot connection's settings, as ``relay.yaml`` would give them."""
    return HubSpotConnection.model_validate({"kind": "hubspot", "base_url": url,
                                             "credentials": {"access_token": token}, **extra})


def sf_settings(url: str) -> SalesforceConnection:
    """A Salesforce connection's settings (the sandbox's connected app)."""
    return SalesforceConnection.model_validate({"kind": "salesforce", "base_url": url,
                                                "credentials": {"client_id": "sandbox", "client_secret": "sandbox"}})


def statuses(url: str) -> list[int]:
    """The status of every API call the sandbox received, in order (its admin calls left out)."""
    return [int(entry["status"]) for entry in sandbox_admin(url, "GET", "ledger")["entries"]
            if entry["path"].startswith("/crm/")]


def migrated(url: str) -> Engine:
    engine = create_engine_for(url)
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated(f"sqlite:///{tmp_path / 'relay.db'}")
    yield engine
    engine.dispose()


def adapter(url: str, governor: Governor | None, *, deadline: Deadline | None = None) -> HubSpotAdapter:
    return HubSpotAdapter(NAME, url, "sandbox-token", governor=governor, searches_per_second=10_000,
                          retry=RetryPolicy(max_attempts=1).with_deadline(deadline))


def test_backfill_waits_while_a_real_time_call_proceeds(seed: SeedData, engine: Engine) -> None:
    """At the reserve, the scheduled sync's next call waits for the window; the events run's call goes out."""
    limits = BudgetLimits(window=LimitSetting(190, cap=10), window_seconds=2, day=LimitSetting(1_000_000),
                          reserve_percent=20, block=2)  # 10 calls per window, 8 of them for background work
    with hubspot(seed) as (url, ids):
        ledger = StoreLedger(engine)
        backfill = adapter(url, Governor(NAME, ledger, limits, priority=Priority.BACKGROUND))
        events = adapter(url, Governor(NAME, ledger, limits, priority=Priority.REALTIME))
        for _ in range(8):
            backfill.read_ids("contacts", ["email"], ids[:1])
        finished: dict[str, float] = {}

        def ninth() -> None:
            backfill.read_ids("contacts", ["email"], ids[:1])
            finished["backfill"] = time.monotonic()

        waiting = threading.Thread(target=ninth)
        waiting.start()
        time.sleep(0.3)
        assert waiting.is_alive()  # the background call is held at the reserve
        page = events.read_ids("contacts", ["email"], ids[1:2])
        finished["events"] = time.monotonic()
        assert [r["id"] for r in page.records] == ids[1:2]
        assert waiting.is_alive()  # still waiting after the real-time call came back
        waiting.join(15)
        assert not waiting.is_alive()
        calls = statuses(url)
    assert finished["events"] < finished["backfill"]
    assert backfill.governor is not None and backfill.governor.waited > 0
    assert events.governor is not None and events.governor.waited == 0
    assert len(calls) == 10 and HTTPStatus.TOO_MANY_REQUESTS not in calls


def budget_rows(engine: Engine) -> dict[str, Any]:
    """The stored budget of the HubSpot connection, by window."""
    with Session(engine) as session:
        return dict(Repositories(session).budgets.get(NAME))


def test_the_headers_correct_the_count(seed: SeedData, engine: Engine) -> None:
    """Another app spent 30 of the portal's 40 calls: Relay learns it from the headers and stops at 40."""
    limits = budget_limits(hs_settings("http://127.0.0.1:1", "x", api_reserve_percent=0, api_budget_block=5))
    with hubspot(seed, ten_second_limit=40) as (url, ids):
        for _ in range(30):  # the other app, not through Relay
            requests.post(f"{url}/crm/v3/objects/contacts/batch/read", json={"inputs": [{"id": ids[0]}]},
                          headers={"Authorization": "Bearer sandbox-token"}, timeout=10).raise_for_status()
        governor = open_governor(NAME, hs_settings(url, "x", api_reserve_percent=0,
            api_budget_block=5), engine, Priority.REALTIME)
        assert governor.limits == limits
        client = adapter(url, governor, deadline=Deadline(2))
        for _ in range(10):
            client.read_ids("contacts", ["email"], ids[:1])
        with pytest.raises(BudgetDeadlineExceeded) as raised:
            client.read_ids("contacts", ["email"], ids[:1])
        assert statuses(url).count(HTTPStatus.TOO_MANY_REQUESTS) == 0
        assert len(statuses(url)) == 40
    message = str(raised.value)
    assert "connection hubspot" in message and "window limit of 40 calls" in message
    rows = budget_rows(engine)
    assert rows[WINDOW].limit_seen == 40  # X-HubSpot-RateLimit-Max, not the documented 190
    assert rows[WINDOW].spent == 40  # 10 of Relay's calls and the 30 the portal counted besides
    assert rows[WINDOW].seen is not None and rows[WINDOW].seen["window_remaining"] == 0
    assert rows[DAY].spent == 40


def test_no_429_reaches_the_crm_at_a_steady_overload(seed: SeedData) -> None:
    """Two workers (their own engines) on PostgreSQL push 260 calls at a portal allowing 190 per 10 s."""
    with fresh_postgres_schema() as database, hubspot(seed) as (url, ids):
        migrated(database).dispose()
        settings = hs_settings(url, "sandbox-token")
        errors: list[BaseException] = []

        def worker() -> None:
            engine = create_engine_for(database)
            client = build_adapter(NAME, settings, governor=open_governor(NAME, settings, engine),
                                   retry=RetryPolicy(max_attempts=1))
            try:
                for _ in range(130):
                    client.read_ids("contacts", ["email"], ids[:1])
            except BaseException as exc:  # pragma: no cover - shown by the assertion below
                errors.append(exc)
            finally:
                client.close()
                engine.dispose()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        calls = statuses(url)
        engine = create_engine_for(database)
        try:
            rows = budget_rows(engine)
        finally:
            engine.dispose()
    assert len(calls) == 260
    assert HTTPStatus.TOO_MANY_REQUESTS not in calls
    assert rows[DAY].spent == 260 and rows[WINDOW].limit_seen == 190


def test_a_deadline_passed_while_waiting_fails_naming_the_connection_and_the_limit(
    seed: SeedData, engine: Engine
) -> None:
    limits = BudgetLimits(window=LimitSetting(190, cap=5), window_seconds=10, day=None, reserve_percent=20, block=5)
    with hubspot(seed) as (url, ids):
        client = adapter(url, Governor(NAME, StoreLedger(engine), limits, crm="hubspot"), deadline=Deadline(3))
        for _ in range(4):  # 5 calls per window, one kept for real time
            client.read_ids("contacts", ["email"], ids[:1])
        started = time.monotonic()
        with pytest.raises(BudgetDeadlineExceeded) as raised:
            client.read_ids("contacts", ["email"], ids[:1])
        assert time.monotonic() - started < 2  # it did not sleep toward a wait it could not finish
        assert len(statuses(url)) == 4
    error = raised.value
    assert error.code == "API_BUDGET_EXHAUSTED" and error.connection == NAME
    assert str(error).startswith("hubspot (connection hubspot): batch read 1 contacts: API_BUDGET_EXHAUSTED: ")
    assert "the 10 s window limit of 5 calls (4 for background work, 1 kept for real time) is spent" in str(error)
    assert "run_deadline_minutes" in str(error)


def test_salesforce_spends_within_the_orgs_daily_allocation(seed: SeedData, engine: Engine) -> None:
    """Sforce-Limit-Info says the org allows 30 calls a day: a sync stops at 24, real time may use the rest."""
    sandbox = SalesforceSandbox(seed, daily_limit=30)
    sandbox.start()
    try:
        assert sandbox.server is not None
        url = str(sandbox.server.url)
        settings = sf_settings(url)
        assert budget_limits(settings).window is None  # Salesforce has no short window
        background = open_governor("salesforce", settings, engine, Priority.BACKGROUND)
        sync = SalesforceAdapter("salesforce", url, "sandbox", "sandbox", governor=background,
                                 retry=RetryPolicy(max_attempts=1).with_deadline(Deadline(5)))
        made = 0
        with pytest.raises(BudgetDeadlineExceeded, match="the daily limit of 30 calls \\(24 for background work"):
            while made < 40:
                sync.owners()  # one query of the users each time (no owners cache)
                made += 1
        realtime = SalesforceAdapter("salesforce", url, "sandbox", "sandbox",
                                     governor=background.with_priority(Priority.REALTIME),
                                     retry=RetryPolicy(max_attempts=1).with_deadline(Deadline(5)))
        for _ in range(30 - made):
            realtime.owners()
        with pytest.raises(BudgetDeadlineExceeded, match="the daily limit of 30 calls is spent"):
            realtime.owners()
        entries = sandbox_admin(url, "GET", "ledger")["entries"]
    finally:
        sandbox.stop()
    assert made == 24
    data_calls = [e for e in entries if e["path"].startswith("/services/data/v")]
    assert len(data_calls) == 30
    assert all(e["status"] == 200 for e in data_calls)  # never a 403 REQUEST_LIMIT_EXCEEDED


def test_the_factory_hands_each_adapter_its_governor(engine: Engine) -> None:
    for settings in (hs_settings("http://127.0.0.1:1", "x"),
                     sf_settings("http://127.0.0.1:1")):
        governor = open_governor(settings.kind, settings, engine, "realtime")
        opened = build_adapter(settings.kind, settings, governor=governor)
        assert getattr(opened, "governor", None) is governor and governor.priority is Priority.REALTIME
        assert build_adapter(settings.kind, settings).__dict__.get("governor") is None


def test_relay_status_shows_the_budget_the_last_answer_and_the_backlog(
    seed: SeedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from connector import cli
    from connector.cli import app

    monkeypatch.setattr(cli.console, "width", 200)  # as piped (pytest-xdist exports COLUMNS=80)

    database = f"sqlite:///{tmp_path / 'status.db'}"
    engine = migrated(database)
    try:
        with hubspot(seed, ten_second_limit=40) as (url, ids):
            settings = hs_settings(url, "sandbox-token")
            client = build_adapter(NAME, settings, governor=open_governor(NAME, settings, engine))
            for _ in range(3):
                client.read_ids("contacts", ["email"], ids[:1])
            client.close()
    finally:
        engine.dispose()
    monkeypatch.setenv("RELAY_DATABASE_URL", database)
    result = CliRunner().invoke(app, ["status", "hubspot"])
    assert result.exit_code == 0, result.output
    line = next(row.strip() for row in result.output.splitlines() if row.strip().startswith("hubspot"))
    assert "3 / 40 per 10 s" in line  # the portal's own limit, learned from its headers
    assert "3 / 1,000,000" in line  # the day, likewise
    assert "8 of the window, 200,000 of the day" in line
    assert "window 37 of 40 left; day 3 of 1,000,000 used (20" in line  # what the last answer's headers said
    assert "webhook events waiting: 0" in result.output
    unknown = CliRunner().invoke(app, ["status", "pipedrive"])
    assert unknown.exit_code == 1 and "no connection 'pipedrive'" in unknown.output
