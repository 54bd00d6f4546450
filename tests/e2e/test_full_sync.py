"""``relay sync --full`` at any size: a full read starts over, so its first checkpoint lies behind the cursor."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sandbox.seed import SeedData

from ._cli import relay, sync_summary
from ._world import SEED, RelayEnv, config_copy, seed_for

LEADS = 240
"""More leads than one query page of 200."""


@pytest.fixture(scope="module")
def seed_data() -> SeedData:
    return seed_for(SEED, LEADS)


def test_a_full_sync_of_more_than_one_page_after_incremental_ones_succeeds(
    relay_env: RelayEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_copy(tmp_path / "config", salesforce={"page_size": 200})))
    sync_summary("salesforce")
    sync_summary("salesforce")  # the cursor now stands past every record Relay wrote

    full = sync_summary("salesforce", "--full")

    assert full["mode"] == "full" and full["read"]["Lead"] == LEADS, full["read"]
    assert (full["records_updated"], full["tasks_created"], full["write_failures"]) == (0, 0, [])
    assert relay("sync", "salesforce").exit_code == 0  # and incremental syncs go on from there
