"""A sync that dies after its first page of Leads, and the run that takes over.

After the rerun every routed lead has one active assignment, one open follow-up task
and one ``assigned`` line in the audit log, exactly as after a run that never died.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import load_config
from connector.pipeline.summary import NoProgress
from connector.pipeline.sync import run_sync
from connector.store.models import OutboxRow, OutboxStatus
from crm_sandbox.seed import SeedData

from ._baseline import Outcome, fault_free_outcome
from ._crm import read_salesforce
from ._expect import after_crash_problems
from ._shared import computed_once
from ._store import active_assignments, rows
from ._world import SEED, Crms, RelayEnv, config_copy, seed_for

LEADS_OVER_TWO_PAGES = 240
"""More leads than one Salesforce query page of 200 holds."""
PAGE_SIZE = 200


@pytest.fixture(scope="module")
def seed_data() -> SeedData:
    """Leads over two query pages (overrides the 150-lead default)."""
    return seed_for(SEED, LEADS_OVER_TWO_PAGES)


@pytest.fixture(scope="module")
def uninterrupted(
    request: pytest.FixtureRequest, seed_data: SeedData, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    """What Salesforce shows after a sync of the same data that never crashed (once per session)."""
    def compute() -> Any:
        where = tmp_path_factory.mktemp("uninterrupted")
        config_dir = config_copy(where / "config", salesforce={"page_size": PAGE_SIZE})
        return fault_free_outcome(seed_data, where, ("salesforce",), config_dir).to_json()

    name = f"uninterrupted-{SEED}-{LEADS_OVER_TWO_PAGES}-{PAGE_SIZE}"
    return Outcome.from_json(computed_once(request, tmp_path_factory, name, compute))


class CrashAfterFirstLeadPage(NoProgress):
    """A progress sink that dies once the first page of Leads is committed (as a stopped worker would)."""

    def __init__(self) -> None:
        self.pages: Counter[str] = Counter()

    def page_done(self, object_name: str, records: int) -> None:
        self.pages[object_name] += 1
        if object_name == "Lead":
            raise KeyboardInterrupt("worker stopped after the first page of Leads")


def test_a_run_that_dies_after_the_first_page_is_finished_by_the_next(
    relay_env: RelayEnv, crms: Crms, engine: Engine, tmp_path: Path, uninterrupted: Outcome
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
    after = read_salesforce(crms.salesforce)
    assert after_crash_problems("salesforce", before, after, engine, config) == []
    # The same decisions as a run that never crashed (round-robin positions survived the crash).
    assert uninterrupted.differences(Outcome.of([after])) == []
