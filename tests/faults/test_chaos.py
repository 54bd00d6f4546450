"""Chaos: both CRMs misbehave and ``relay sync`` is SIGKILLed three times per connection; nothing is lost.

The sandboxes answer 10 % of requests with 429, 5 % with 503, make 2 % slow, hold 1 %
past the client's timeout (applied first), lose the answer of 1 % after applying them,
send a few malformed answers (not JSON, HTML, truncated: when the sandbox knows them), and
fail records of batch writes for a passing reason. Each connection's sync
process is killed at seeded moments and resumed with ``relay sync --take-over``. Read
back through the official SDKs, the CRMs must show no lost decision, no duplicate task,
no double assignment, the store and the CRMs must agree, the audit log must be complete,
and the end state must be the one a fault-free run of the same seed leaves.

``bench/chaos.py`` runs the same with 10,000 leads and prints the figures.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import load_config
from connector.store.models import OutboxRow
from crm_sandbox.common import FaultSettings
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData
from tests.e2e._baseline import Outcome, fault_free_outcome
from tests.e2e._crm import read_crm
from tests.e2e._shared import computed_once
from tests.e2e._store import rows
from tests.e2e._world import Crms, RelayEnv, config_copy, seed_for

from ._chaos import (
    CONNECTIONS,
    chaos_settings,
    check_chaos,
    injected_faults,
    kill_plans,
    relay_command,
    sync_with_kills,
)

SEED = 7
LEADS = 200
KILLS = 3
"""SIGKILLs per connection."""
KILL_SEED = 5
FAULT_SEED = 11
MAX_WRITES_BEFORE_KILL = 6
"""A process is killed after 1..6 write calls (a connection needs 25+ with the batches below)."""
SETTINGS = {"salesforce": {"page_size": 200, "write_batch_size": 10}, "hubspot": {"page_size": 50, "write_batch_size": 10}}
"""Small pages and write batches: many calls for the faults and the kills to land between."""
HTTP_TIMEOUT = 1.0
"""The relay processes' HTTP timeout (seconds); a held answer is held longer."""
HOLD_SECONDS = 3.0
SLOW_MS = (50, 400)
RETRY_AFTER = 0.0
"""Seconds the injected 429s announce: none, to keep CI short (tests/e2e/test_faults.py checks that
Retry-After is honoured; bench/chaos.py announces 1 s)."""
PASSING_ERRORS = {"salesforce": "UNABLE_TO_LOCK_ROW", "hubspot": "INTERNAL_ERROR"}
"""The code each sandbox gives a record of a batch write it fails for a passing reason."""


@pytest.fixture(scope="module")
def seed_data() -> SeedData:
    """The chaos world: seed 7, 200 leads (overrides the e2e default of 150)."""
    return seed_for(SEED, LEADS)


@pytest.fixture(scope="module")
def fault_free(request: pytest.FixtureRequest, seed_data: SeedData, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """What both CRMs show after a fault-free sync of the same data and settings (once per session)."""
    def compute() -> Any:
        where = tmp_path_factory.mktemp("chaos-fault-free")
        return fault_free_outcome(seed_data, where, CONNECTIONS, config_copy(where / "config", **SETTINGS)).to_json()

    return Outcome.from_json(computed_once(request, tmp_path_factory, f"chaos-fault-free-{SEED}-{LEADS}", compute))


@pytest.mark.chaos
def test_killed_three_times_against_faulty_crms_and_nothing_is_lost_or_doubled(
    relay_env: RelayEnv, crms: Crms, engine: Engine, fault_free: Outcome, tmp_path: Path
) -> None:
    config_dir = config_copy(tmp_path / "config", **SETTINGS)
    command = relay_command(config_dir, HTTP_TIMEOUT)
    env = dict(relay_env.environ(), RELAY_CONFIG_DIR=str(config_dir))
    config = load_config(config_dir, relay_env.mappings_dir, env=env)
    sandboxes: dict[str, SalesforceSandbox | HubSpotSandbox] = {"salesforce": crms.salesforce, "hubspot": crms.hubspot}
    before = {c: read_crm(crms.salesforce, crms.hubspot, c) for c in CONNECTIONS}
    faults = chaos_settings(FAULT_SEED, retry_after=RETRY_AFTER, hold_seconds=HOLD_SECONDS, slow_ms=SLOW_MS)
    for sandbox in sandboxes.values():
        sandbox.faults.configure(faults)
    rng = random.Random(KILL_SEED)

    runs = {c: sync_with_kills(c, sandboxes[c].ledger, env, kill_plans(rng, KILLS, MAX_WRITES_BEFORE_KILL),
                               tmp_path, command=command)
            for c in CONNECTIONS}

    for sandbox in sandboxes.values():
        sandbox.faults.configure(FaultSettings())
    after = {c: read_crm(crms.salesforce, crms.hubspot, c) for c in CONNECTIONS}
    # The chaos happened: three kills per connection, every scripted fault kind injected (one of
    # each kind the sandbox knows), 429 and 503 on reads and writes, and records of batch writes
    # refused for a passing reason.
    assert {c: run.kills for c, run in runs.items()} == {c: KILLS for c in CONNECTIONS}
    for connection, sandbox in sandboxes.items():
        hit = injected_faults(sandbox.ledger)
        expected = {entry["fault"] for entry in faults.script if isinstance(entry, dict)}
        assert expected <= set(hit["read"] + hit["write"]), f"{connection}: faults injected {hit}"
        assert {"rate_limit", "server_error"} <= set(hit["read"]) & set(hit["write"]), f"{connection}: {hit}"
        refused = {(r.last_error or "").split(":")[0]
                   for r in rows(engine, OutboxRow, OutboxRow.connection == connection, OutboxRow.attempts > 1)}
        assert PASSING_ERRORS[connection] in refused, f"{connection}: no batch record failed ({refused})"

    checks = check_chaos(before, after, engine, config, fault_free, runs)

    assert checks.all() == [], "\n".join(checks.all())
