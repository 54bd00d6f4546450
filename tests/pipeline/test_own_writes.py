"""Relay's own writes read back: not counted as changes, not decided again; a rep's edit is."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import select

from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.models import AuditRow
from tests.pipeline.test_deletions_and_merges import World, world  # noqa: F401 - the shared fixture


def _actions(world: World, run_id: int | None) -> Counter[str]:  # noqa: F811 - the fixture's value
    with session_factory(world.engine).begin() as session:
        rows = session.execute(select(AuditRow.action).where(AuditRow.run_id == run_id)).scalars()
        return Counter(rows)


@pytest.mark.parametrize("connection", ["salesforce", "hubspot"])
def test_the_echo_of_relays_own_writes_is_not_a_change(world: World, connection: str) -> None:  # noqa: F811
    first = run_sync(world.config, connection, world.engine)
    assert first.records_updated > 0 and first.changed > 0
    time.sleep(1.1)  # the CRM's clock (its Date header) counts whole seconds: let it pass the writes

    echo = run_sync(world.config, connection, world.engine)  # reads back every record Relay wrote

    assert sum(n for obj, n in echo.read.items() if obj not in ("User", "owners")) >= first.records_updated
    assert echo.changed == 0, "Relay's own writes counted as changes since the last run"
    assert echo.records_updated == 0 and echo.tasks_created == 0
    assert not {"scored", "assigned", "field_update"} & set(_actions(world, echo.run_id))


def test_a_reps_edit_after_relays_write_is_decided_again(world: World) -> None:  # noqa: F811
    run_sync(world.config, "salesforce", world.engine)
    run_sync(world.config, "salesforce", world.engine)  # the echo
    lead = world.sf.query("SELECT Id, Relay_Score__c FROM Lead WHERE IsConverted = false ORDER BY Id LIMIT 1")[
        "records"][0]
    world.sf.Lead.update(lead["Id"], {"Title": "Chief Executive Officer"})

    edited = run_sync(world.config, "salesforce", world.engine)

    assert edited.changed == 1
    actions = _actions(world, edited.run_id)
    assert actions["scored"] == 1, actions  # the new title moves the score: decided and written again
    after = world.sf.Lead.get(lead["Id"])
    assert after["Relay_Score__c"] != lead["Relay_Score__c"]


def test_a_full_sync_decides_unchanged_records_again(world: World) -> None:  # noqa: F811
    run_sync(world.config, "salesforce", world.engine)
    full = run_sync(world.config, "salesforce", world.engine, full=True)
    assert full.changed == 0
    assert full.records_updated == 0  # decided again, and the same decisions write nothing
