"""Syncs against CRMs that misbehave: rate limits, outages, partial batch failures, refused records.

Each faulty run is compared with a fault-free run of the same data: the owners, Relay
fields and tasks must come out the same, and whatever the CRM refused for good must be
reported in the summary and the audit log with the CRM's own error code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from connector.pipeline.summary import NoProgress
from connector.store.models import OutboxRow
from crm_sandbox.common import FaultSettings, Ledger
from crm_sandbox.seed import SeedData

from ._baseline import (
    Outcome,
    RecordedWaits,
    config_for,
    fast_policy,
    fault_free_outcome,
    sync_with_policy,
)
from ._crm import is_read, read_crm, sobject
from ._expect import routing_problems, task_problems
from ._shared import computed_once
from ._store import audit, rows
from ._world import LEADS, SEED, Crms, config_copy

CONNECTIONS = ("salesforce", "hubspot")
SMALL_BATCH = 25


@pytest.fixture(scope="module")
def baseline(
    request: pytest.FixtureRequest, seed_data: SeedData, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    """What both CRMs show after a fault-free sync of the same data (computed once per session)."""
    def compute() -> Any:
        return fault_free_outcome(seed_data, tmp_path_factory.mktemp("baseline")).to_json()

    return Outcome.from_json(computed_once(request, tmp_path_factory, f"baseline-{SEED}-{LEADS}", compute))


def _outcome(crms: Crms) -> Outcome:
    return Outcome.of([read_crm(crms.salesforce, crms.hubspot, c) for c in CONNECTIONS])


def _faulted(ledger: Ledger) -> dict[str, set[str]]:
    """The faults that hit reads and writes (by kind of call)."""
    hit: dict[str, set[str]] = {"read": set(), "write": set()}
    for entry in ledger.entries():
        if entry.fault:
            hit["read" if is_read(entry) else "write"].add(entry.fault)
    return hit


def test_rate_limits_outages_and_partial_batch_failures_change_nothing_in_the_outcome(
    relay_env: object, crms: Crms, engine: Engine, baseline: Outcome, tmp_path: Path
) -> None:
    # Small write batches: more write calls for the faults to hit (the decisions do not depend on it).
    small_batches = config_copy(tmp_path / "config", salesforce={"write_batch_size": SMALL_BATCH},
                                hubspot={"write_batch_size": SMALL_BATCH})
    # 429 with Retry-After: 1 and 503 on any call; one record in ten of a batch write refused for a
    # passing reason (the sandboxes only fail records of composite/batch writes).
    faults = FaultSettings(script=["rate_limit", "server_error", "rate_limit"], rate_limit=0.12, server_error=0.12,
                           retry_after=1, partial_failure=0.1, path_pattern="", seed=3)
    crms.salesforce.faults.configure(faults)
    crms.hubspot.faults.configure(faults)
    waits = RecordedWaits()
    config = config_for(crms, small_batches)

    summaries = {c: sync_with_policy(config, c, engine, fast_policy(waits)) for c in CONNECTIONS}

    crms.salesforce.faults.configure(FaultSettings())
    crms.hubspot.faults.configure(FaultSettings())
    for ledger in (crms.salesforce.ledger, crms.hubspot.ledger):
        assert _faulted(ledger) == {"read": {"rate_limit", "server_error"}, "write": {"rate_limit", "server_error"}}, (
            f"{ledger.server}: both faults must hit reads and writes"
        )
        biggest = max(e.records_written for e in ledger.entries())
        assert 0 < biggest <= SMALL_BATCH, f"{ledger.server}: a write call carried {biggest} records"
    assert 1.0 in waits.asked, "the CRM's Retry-After: 1 was not honoured"
    # Each CRM refused some records of its batches for a passing reason; the writer sent them again
    # and nothing was refused for good.
    for connection, code in (("salesforce", "UNABLE_TO_LOCK_ROW"), ("hubspot", "INTERNAL_ERROR")):
        retried = rows(engine, OutboxRow, OutboxRow.connection == connection, OutboxRow.attempts > 1)
        assert retried, f"{connection}: no batch record failed, the test proves nothing"
        assert {(r.status, (r.last_error or "").split(":")[0]) for r in retried} == {("sent", code)}
        assert summaries[connection].write_failures == [], [str(f) for f in summaries[connection].write_failures]
        assert audit(engine, connection, "write_failed") == []
    # The outcome is the fault-free one.
    assert baseline.differences(_outcome(crms)) == []


class _RepLeavesMidSync(NoProgress):
    """While Relay reads Leads, an admin deactivates a rep and a rep deletes a lead (after it was read)."""

    def __init__(self, crms: Crms, user_id: str, lead_id: str) -> None:
        self.crms, self.user_id, self.lead_id = crms, user_id, lead_id

    def object_started(self, object_name: str) -> None:
        if object_name == "Lead":
            sobject(self.crms.salesforce, "User").update(self.user_id, {"IsActive": False})

    def page_done(self, object_name: str, records: int) -> None:
        if object_name == "Lead":
            sobject(self.crms.salesforce, "Lead").delete(self.lead_id)


def test_records_the_crm_refuses_for_good_are_reported_with_its_error_and_the_rest_is_written(
    relay_env: object, crms: Crms, engine: Engine, baseline: Outcome, tmp_path: Path
) -> None:
    sf_baseline = baseline.records["salesforce"]
    before = read_crm(crms.salesforce, crms.hubspot, "salesforce")
    with_task = {crm_id: o[0] for crm_id, o in sf_baseline.items() if o[4] == 1}
    owners = sorted(set(with_task.values()), key=lambda o: (-list(with_task.values()).count(o), str(o)))
    leaving = str(owners[0])
    # Relay's update of these records sets the leaver as owner; their tasks are the leaver's.
    handed_to_leaver = {crm_id for crm_id, o in sf_baseline.items()
                        if o[0] == leaving and before.people[crm_id].owner_id != leaving}
    leavers_tasks = {crm_id for crm_id, owner in with_task.items() if owner == leaving}
    deleted = next(crm_id for crm_id, owner in sorted(with_task.items())
                   if owner != leaving and before.people[crm_id].object == "Lead")

    summary = sync_with_policy(config_for(crms), "salesforce", engine, fast_policy(RecordedWaits()),
                               progress=_RepLeavesMidSync(crms, leaving, deleted))

    refused = {(f.crm_id, f.code) for f in summary.write_failures if f.operation == "update"}
    assert refused == {(lead, "INACTIVE_OWNER_OR_USER") for lead in handed_to_leaver} | {(deleted, "ENTITY_IS_DELETED")}
    task_refusals = [f for f in summary.write_failures if f.operation != "update"]
    # A task whose owner could not be written is never sent (OWNER_NOT_WRITTEN); the CRM refuses the rest.
    assert {f.code for f in task_refusals} <= {"INACTIVE_OWNER_OR_USER", "ENTITY_IS_DELETED",
                                                  "INVALID_CROSS_REFERENCE_KEY", "OWNER_NOT_WRITTEN"}
    assert len(task_refusals) == len(leavers_tasks) + 1
    logged = {(row.crm_id, row.detail["code"]) for row in audit(engine, "salesforce", "write_failed")}
    assert refused <= logged
    assert all(f.message for f in summary.write_failures)
    # Everything else landed as in a fault-free run.
    after = Outcome.of([read_crm(crms.salesforce, crms.hubspot, "salesforce")])
    assert Outcome({"salesforce": sf_baseline}).differences(after, ignore=handed_to_leaver | leavers_tasks | {deleted}) == []

    # The next full sync routes the leaver's leads to active reps, each with its follow-up task.
    again = sync_with_policy(config_for(crms), "salesforce", engine, fast_policy(RecordedWaits()), full=True)

    assert again.write_failures == []
    view = read_crm(crms.salesforce, crms.hubspot, "salesforce")
    active_users = set(view.owner_ids_by_email.values())
    assert {crm_id: view.people[crm_id].owner_id for crm_id in handed_to_leaver
            if view.people[crm_id].owner_id not in active_users} == {}
    problems = routing_problems(view, engine, "salesforce") + task_problems(view, engine, "salesforce")
    assert [p for p in problems if deleted not in p] == []
