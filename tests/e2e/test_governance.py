"""Deal governance end to end: the seeded opportunities and deals, synced, read back through the official SDKs.

The seed records, for every deal, the SOP facts (which exit criteria each passed stage lacks,
the discount and the approver the matrix needs, whether one is recorded, the handoff form's
gaps). From them and the shipped rules (stages.yaml: gates flag, the Proposal gate enforces; a
won deal is never set back), this test says exactly which flags, stage resets, approval tasks
and kickoff tasks each CRM must show, and that a second sync adds none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connector.store.db import create_engine_for
from connector.store.models import ApprovalRow, AuditRow, HandoffRow
from crm_sandbox.seed._model import DealTruth

from ._cli import sync_summary
from ._crm import hubspot_client, salesforce_client
from ._world import Crms, RelayEnv, config_copy

SOP = ["Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
ENFORCED = "Proposal"  # stages.yaml: gate: enforce
PROPOSAL_ID = {"default": "decisionmakerboughtin", "75312468": "128400104"}
SALES_PIPELINES = (None, "default", "75312468")
GOVERNANCE_ACTIONS = ("governance_finding", "approval_requested", "approval_recorded", "handed_off", "stage_reset")


@dataclass(frozen=True)
class DealTask:
    deal: str
    subject: str
    owner: str | None
    due: str | None


def _expected(truth: DealTruth) -> tuple[set[str], bool]:
    """The stages whose gate the deal must be flagged for, and whether its stage must be set back."""
    if truth.pipeline not in SALES_PIPELINES or truth.stage in ("Closed Lost",):
        return set(), False
    misses = set(truth.gate_misses)
    if truth.stage != "Closed Won" and ENFORCED in misses:
        return {s for s in misses if SOP.index(s) < SOP.index(ENFORCED)}, True
    return misses, False


def _sf_tasks(crms: Crms) -> list[DealTask]:
    sf = salesforce_client(crms.salesforce)
    rows = sf.query_all("SELECT WhatId, Subject, OwnerId, ActivityDate FROM Task WHERE WhatId != null")["records"]
    return [DealTask(r["WhatId"], r["Subject"], r["OwnerId"], r["ActivityDate"]) for r in rows]


def _hs_tasks(crms: Crms) -> list[DealTask]:
    hs = hubspot_client(crms.hubspot)
    found = []
    for task in hs.crm.objects.get_all("tasks", properties=["hs_task_subject", "hubspot_owner_id", "hs_timestamp"],
                                       associations=["deals"]):
        linked = task.associations.get("deals") if task.associations else None
        for deal in (linked.results if linked else []):
            p = task.properties
            found.append(DealTask(str(deal.id), p.get("hs_task_subject") or "", p.get("hubspot_owner_id"),
                                  (p.get("hs_timestamp") or "")[:10] or None))
    return found


def _of(tasks: Iterable[DealTask], deal: str, prefix: str) -> list[DealTask]:
    return [t for t in tasks if t.deal == deal and t.subject.startswith(prefix)]


def test_seeded_deals_get_exactly_the_flags_resets_approvals_and_kickoffs_the_sop_calls_for(
        relay_env: RelayEnv, crms: Crms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The seed's wins are months old at its anchor: hand every one over, as an admin would for a backfill.
    config_dir = config_copy(tmp_path / "config")
    handoffs = config_dir / "rules" / "handoffs.yaml"
    handoffs.write_text(handoffs.read_text().replace("recent_days: 30", "recent_days: null"))
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config_dir))
    first = {name: sync_summary(name) for name in ("salesforce", "hubspot")}
    assert all(s["write_failures"] == [] for s in first.values()), first
    truth = crms.seed.truth.deals
    assert truth, "the seed has deals"
    sf = salesforce_client(crms.salesforce)
    hs = hubspot_client(crms.hubspot)
    sf_users = {u["Id"]: u["Email"].lower() for u in sf.query_all("SELECT Id, Email FROM User")["records"]}
    hs_users = {str(o.id): o.email.lower() for o in hs.crm.owners.get_all()}
    csms = {"grace.kim@northwind.example", "daniel.okafor@northwind.example"}
    tasks = {"salesforce": _sf_tasks(crms), "hubspot": _hs_tasks(crms)}
    engine = create_engine_for(relay_env.store_url)
    with engine.connect() as db:
        approvals = {(r.connection, r.crm_id): r for r in db.execute(select(ApprovalRow)).all()}
        handoffs = {(r.connection, r.crm_id, r.kind) for r in db.execute(select(HandoffRow)).all()}
        audit_before = db.execute(select(AuditRow.id).where(AuditRow.action.in_(GOVERNANCE_ACTIONS))).all()
    checked: dict[str, int] = {"flags": 0, "resets": 0, "approvals": 0, "recorded": 0, "kickoffs": 0}
    for (crm, _obj, deal_id), t in truth.items():
        mine = tasks[crm]
        users = sf_users if crm == "salesforce" else hs_users
        flags, reset = _expected(t)
        flagged = {task.subject.split(" exit criteria")[0].removeprefix("Complete the ")
                   for task in _of(mine, deal_id, "Complete the ") if " exit criteria" in task.subject}
        assert flagged == flags, (deal_id, t)
        checked["flags"] += len(flags)
        if crm == "salesforce":
            record = sf.Opportunity.get(deal_id)
            stage, status = record["StageName"], record["Relay_Stage_Gate_Status__c"]
        else:
            props = hs.crm.deals.basic_api.get_by_id(deal_id, properties=["dealstage", "relay_gate_status"]).properties
            stage, status = props["dealstage"], props.get("relay_gate_status")
        if reset:
            assert stage == (ENFORCED if crm == "salesforce" else PROPOSAL_ID[t.pipeline or "default"]), (deal_id, t)
            assert status == "reset"
            checked["resets"] += 1
        else:
            assert stage == t.stage_value, (deal_id, t)
        needs = t.approval is not None and t.stage != "Closed Lost" and not t.approved
        approval_tasks = _of(mine, deal_id, "Approve discount_percent")
        assert len(approval_tasks) == (1 if needs else 0), (deal_id, t, approval_tasks)
        row = approvals.get((crm, deal_id))
        if needs:
            assert row is not None and row.approver_title == t.approval and row.status == "requested", (deal_id, row)
            checked["approvals"] += 1
        elif t.approval is not None and t.approved and t.stage != "Closed Lost":
            assert row is not None and row.status == "approved" and row.approved_by, (deal_id, row)
            checked["recorded"] += 1
        kickoffs = _of(mine, deal_id, "Schedule the customer kickoff call")
        form_gaps = [f for f in t.form_missing if f != "handoff_csm"]
        if t.stage == "Closed Won" and t.pipeline in SALES_PIPELINES and not form_gaps:
            assert len(kickoffs) == 1, (deal_id, t)
            won_at = t.path[-1][1]
            assert kickoffs[0].due == (won_at + timedelta(days=3)).date().isoformat(), (deal_id, kickoffs, won_at)
            assert users.get(kickoffs[0].owner or "") in csms
            assert (crm, deal_id, "closed_won") in handoffs
            checked["kickoffs"] += 1
        else:
            assert kickoffs == [], (deal_id, t)
            if t.stage == "Closed Won" and form_gaps:
                assert _of(mine, deal_id, "Complete the Customer Success handoff form"), (deal_id, t)

    second: dict[str, Any] = {name: sync_summary(name) for name in ("salesforce", "hubspot")}
    assert [s["tasks_created"] for s in second.values()] == [0, 0], second
    with engine.connect() as db:
        audit_after = db.execute(select(AuditRow.id).where(AuditRow.action.in_(GOVERNANCE_ACTIONS))).all()
    assert len(audit_after) == len(audit_before)
    engine.dispose()
    assert all(checked.values()), checked  # the seed exercises every kind
