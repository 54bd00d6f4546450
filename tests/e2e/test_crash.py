"""A sync that dies half-way, in-process or killed with SIGKILL, and the run that takes over.

After the rerun every routed lead has one active assignment, one open follow-up task
and one ``assigned`` line in the audit log: nothing lost, nothing twice.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.summary import NoProgress
from connector.pipeline.sync import run_sync
from connector.sandbox.common import FaultSettings
from connector.sandbox.seed import SeedData
from connector.store.migrate import open_store
from connector.store.models import OutboxRow, OutboxStatus, SyncRunRow, SyncStatus

from ._cli import relay, relay_process, sync_summary
from ._crm import CrmView, read_salesforce, write_calls
from ._expect import Expectation, RoutingRulesInForce, routing_problems, task_problems
from ._store import active_assignments, audit, rows
from ._world import SEED, Crms, RelayEnv, config_copy, running_crms, seed_for

LEADS_OVER_TWO_PAGES = 240
"""More leads than one Salesforce query page of 200 holds."""
PAGE_SIZE = 200
KILL_AFTER_WRITES = 3
"""Write calls the CRM must have answered before the sync process is killed."""


@pytest.fixture(scope="module")
def seed_data() -> SeedData:
    """Leads over two query pages (overrides the 150-lead default)."""
    return seed_for(SEED, LEADS_OVER_TWO_PAGES)


class CrashAfterFirstLeadPage(NoProgress):
    """A progress sink that dies once the first page of Leads is committed (as a killed worker would)."""

    def __init__(self) -> None:
        self.pages: Counter[str] = Counter()

    def page_done(self, object_name: str, records: int) -> None:
        self.pages[object_name] += 1
        if object_name == "Lead":
            raise KeyboardInterrupt("worker stopped after the first page of Leads")


def _crash_free_problems(before: CrmView, view: CrmView, engine: Engine, config: RelayConfig) -> list[str]:
    problems = routing_problems(view, engine, "salesforce") + task_problems(view, engine, "salesforce")
    problems += Expectation("salesforce", before, view, RoutingRulesInForce.of(config)).problems(engine)
    twice = [crm_id for crm_id, n in Counter(r.crm_id for r in audit(engine, "salesforce", "assigned")).items()
             if n > 1]
    if twice:
        problems.append(f"assigned more than once: {twice}")
    keys = Counter(t.idempotency_key for t in view.relay_tasks())
    problems += [f"{n} tasks with idempotency key {key}" for key, n in keys.items() if n > 1]
    return problems


def _owners(view: CrmView) -> dict[str, str | None]:
    return {p.id: p.owner_id for p in view.people.values()}


def test_a_run_that_dies_after_the_first_page_is_finished_by_the_next(
    relay_env: RelayEnv, crms: Crms, engine: Engine, tmp_path: Path, seed_data: SeedData
) -> None:
    config_dir = config_copy(tmp_path / "config", salesforce={"page_size": PAGE_SIZE})
    config = load_config(config_dir, relay_env.mappings_dir, env=relay_env.environ())
    crash = CrashAfterFirstLeadPage()
    before = read_salesforce(crms.salesforce)

    with pytest.raises(KeyboardInterrupt):
        run_sync(config, "salesforce", engine, progress=crash)
    assert crash.pages["Lead"] == 1
    # The first page's decisions are committed, their writes still waiting in the outbox.
    assert len(active_assignments(engine, "salesforce")) > 0
    assert rows(engine, OutboxRow, OutboxRow.status == OutboxStatus.PENDING.value) != []
    summary = run_sync(config, "salesforce", engine, take_over=True)

    assert summary.write_failures == []
    view = read_salesforce(crms.salesforce)
    assert _crash_free_problems(before, view, engine, config) == []

    # The same decisions as a run that never crashed (round-robin positions survived the crash).
    with running_crms(seed_data) as other:
        url = f"sqlite:///{tmp_path / 'uninterrupted.db'}"
        env = dict(relay_env.environ(), SALESFORCE_INSTANCE_URL=other.salesforce_url)
        clean_engine = open_store(url)
        try:
            run_sync(load_config(config_dir, relay_env.mappings_dir, env=env), "salesforce", clean_engine)
        finally:
            clean_engine.dispose()
        assert _owners(read_salesforce(other.salesforce)) == _owners(view)


def test_a_killed_sync_process_is_taken_over_without_duplicates(
    relay_env: RelayEnv, crms: Crms, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = config_copy(tmp_path / "config", salesforce={"page_size": PAGE_SIZE, "write_batch_size": 10})
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))
    env = dict(relay_env.environ(), RELAY_CONFIG_DIR=str(config_dir))
    config = load_config(config_dir, relay_env.mappings_dir, env=env)
    before = read_salesforce(crms.salesforce)
    crms.salesforce.faults.configure(FaultSettings(latency_ms=60))

    process = relay_process(["sync", "salesforce"], env)
    try:
        deadline = time.monotonic() + 120
        while len(write_calls(crms.salesforce.ledger)) < KILL_AFTER_WRITES:
            assert process.poll() is None, f"relay sync ended before it could be killed: {process.communicate()}"
            assert time.monotonic() < deadline, "relay sync made no writes within 2 minutes"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    crms.salesforce.faults.configure(FaultSettings())
    # It died mid-run: its sync run is still marked running, and not every routed lead has its task yet.
    assert [r.status for r in rows(engine, SyncRunRow)] == [SyncStatus.RUNNING.value]
    tasks_at_kill = len(read_salesforce(crms.salesforce).relay_tasks())

    refused = relay("sync", "salesforce")
    assert refused.exit_code == 3, refused.output
    assert "running" in refused.stderr

    summary = sync_summary("salesforce", "--take-over")

    assert summary["write_failures"] == []
    view = read_salesforce(crms.salesforce)
    assert _crash_free_problems(before, view, engine, config) == []
    assert tasks_at_kill < len(view.relay_tasks())
