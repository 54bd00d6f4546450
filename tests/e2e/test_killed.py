"""``relay sync`` killed with SIGKILL while it writes, and ``relay sync --take-over`` after it.

The killed process leaves its sync run marked running, so a plain rerun is refused
(exit 3); the take-over finishes the work with one assignment and one task per lead.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import load_config
from connector.store.models import SyncRunRow, SyncStatus
from crm_sandbox.common import FaultSettings

from ._cli import relay, relay_process, sync_summary
from ._crm import read_salesforce, write_calls
from ._expect import after_crash_problems
from ._store import rows
from ._world import Crms, RelayEnv, config_copy

KILL_AFTER_WRITES = 3
"""Write calls the CRM must have answered before the sync process is killed."""
WRITE_BATCH = 10
"""Records per write call: many calls, so the kill lands between them."""
LATENCY_MS = 40
KILL_DEADLINE_S = 120


def test_a_killed_sync_process_is_taken_over_without_duplicates(
    relay_env: RelayEnv, crms: Crms, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = config_copy(tmp_path / "config", salesforce={"write_batch_size": WRITE_BATCH})
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))
    env = dict(relay_env.environ(), RELAY_CONFIG_DIR=str(config_dir))
    config = load_config(config_dir, relay_env.mappings_dir, env=env)
    before = read_salesforce(crms.salesforce)
    crms.salesforce.faults.configure(FaultSettings(latency_ms=LATENCY_MS))

    process = relay_process(["sync", "salesforce"], env)
    try:
        deadline = time.monotonic() + KILL_DEADLINE_S
        while len(write_calls(crms.salesforce.ledger)) < KILL_AFTER_WRITES:
            assert process.poll() is None, f"relay sync ended before it could be killed: {process.communicate()}"
            assert time.monotonic() < deadline, f"relay sync made no writes within {KILL_DEADLINE_S} s"
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
    after = read_salesforce(crms.salesforce)
    assert after_crash_problems("salesforce", before, after, engine, config) == []
    assert tasks_at_kill < len(after.relay_tasks())
