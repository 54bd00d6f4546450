"""A new or lost store over an already-synced CRM writes nothing that is already right.

Moving from SQLite to PostgreSQL, or losing the store, used to rewrite Relay_Id__c on
every lead and contact (new random ids) and hand out new identity ids. Relay ids now come
from the person's key, and a new identity adopts the id the CRM holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.store.migrate import open_store

from ._cli import sync_summary
from ._crm import changed_between, read_crm
from ._world import Crms, RelayEnv


@pytest.mark.parametrize("connection", ["salesforce", "hubspot"])
def test_a_fresh_store_over_a_synced_crm_changes_nothing_there(
    relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connection: str
) -> None:
    sync_summary(connection)
    synced = read_crm(crms.salesforce, crms.hubspot, connection)

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"  # the store is lost: a new one, over the same CRM
    monkeypatch.setenv("RELAY_DATABASE_URL", fresh)
    open_store(fresh).dispose()
    again = sync_summary(connection)

    after = read_crm(crms.salesforce, crms.hubspot, connection)
    assert changed_between(synced, after) == [], "a new store rewrote records that were already right"
    assert (again["records_updated"], again["tasks_created"]) == (0, 0), again
