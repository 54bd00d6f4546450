"""Stage gates, movement policies, hygiene, approvals at the gate, and handoffs (SOP boundary cases)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.core.governance.handoffs import closed_lost, closed_won, decide_sdr_to_ae, sdr_to_ae
from connector.core.governance.models import ApprovalRecord, Deal, FieldChange, StageChange
from connector.core.governance.rules import HandoffRules, StagePolicies, StageRules
from connector.core.governance.stages import evaluate_deal, quarter_end
from connector.core.models import RecordRef, RoutingState
from connector.core.rules import Rules

from .helpers import NOW

REF = RecordRef(connection="salesforce", object="Opportunity", crm_id="006A")
OWNER = "liam.walsh@northwind.example"
SOP = StageRules().pipelines["sales"].stages
EXIT: dict[str, list[str]] = {s.name: [c.field or "" for c in s.exit_criteria] for s in SOP}


def _all_met(upto: str) -> dict[str, Any]:
    names = [s.name for s in SOP]
    return {f: True for s in names[: names.index(upto)] for f in EXIT[s]}


def deal(stage: str, criteria: dict[str, Any] | None = None, **kw: Any) -> Deal:
    base: dict[str, Any] = {"ref": REF, "name": "Acme - Platform", "stage": stage, "owner_email": OWNER,
                            "next_step": "Call", "close_date": date(2026, 4, 30), "stage_entered_at": NOW - timedelta(days=1)}
    base.update(kw)
    return Deal(**base, criteria=_all_met(stage) if criteria is None else criteria)


@pytest.mark.parametrize("stage", ["Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won"])
def test_each_stage_needs_every_earlier_exit_criterion(rules: Rules, stage: str) -> None:
    assert evaluate_deal(deal(stage), [], rules, NOW).gate_status == "passed"
    names = [s.name for s in SOP]
    for earlier in names[: names.index(stage)]:
        for field in EXIT[earlier]:
            criteria = {**_all_met(stage), field: False}
            result = evaluate_deal(deal(stage, criteria), [], rules, NOW)
            assert [(v.stage, v.missing) for v in result.violations] == [(earlier, (field,))]
            assert result.gate_status == "flagged"
            flag = next(f for f in result.findings if f.code == "gate_flagged")
            assert flag.task is not None and flag.task.assignee_email == OWNER
            assert field in flag.message and "Acme - Platform" in flag.message


def test_prospecting_and_closed_lost_owe_no_gate(rules: Rules) -> None:
    assert evaluate_deal(deal("Prospecting", {}), [], rules, NOW).violations == ()
    assert evaluate_deal(deal("Closed Lost", {}), [], rules, NOW).violations == ()


def test_hubspot_stage_ids_are_the_same_stages(rules: Rules) -> None:
    hubspot = deal("contractsent", {**_all_met("Negotiation"), "decision_date": None}, pipeline="default")
    result = evaluate_deal(hubspot, [], rules, NOW)
    assert result.stage == "Negotiation" and result.violations[0].missing == ("decision_date",)


def test_unknown_stage_is_named(rules: Rules) -> None:
    result = evaluate_deal(deal("Qualification", {}), [], rules, NOW)
    assert [f.code for f in result.findings] == ["unknown_stage"]
    assert "'Qualification'" in result.findings[0].message and "Prospecting" in result.findings[0].message


def test_manager_told_after_the_grace_period(rules: Rules) -> None:
    criteria = {**_all_met("Proposal"), "roi_validated": False}
    moved = [StageChange("Solution Design", "Proposal", NOW - timedelta(days=2), "liam")]
    within = evaluate_deal(deal("Proposal", criteria), moved, rules, NOW - timedelta(seconds=1))
    assert "gate_escalated" not in within.counts
    after = evaluate_deal(deal("Proposal", criteria), moved, rules, NOW)
    escalation = next(f for f in after.findings if f.code == "gate_escalated")
    assert escalation.task is not None and escalation.task.assignee_email == "marcus.chen@northwind.example"


def test_enforce_sets_the_stage_back_to_the_first_gate_not_passed(rules: Rules) -> None:
    enforcing = rules.model_copy(update={"stages": StageRules(policies=StagePolicies(gate="enforce"))})
    criteria = {**_all_met("Negotiation"), "champion_identified": False, "roi_validated": False}
    result = evaluate_deal(deal("Negotiation", criteria), [], enforcing, NOW)
    assert result.reset is not None and (result.reset.from_stage, result.reset.to_stage) == ("Negotiation", "Discovery")
    assert "Champion identified" in result.reset.reason and result.gate_status == "reset"
    hubspot = evaluate_deal(deal("contractsent", criteria, pipeline="default"), [], enforcing, NOW)
    assert hubspot.reset is not None and hubspot.reset.to_value == "qualifiedtobuy"


@pytest.mark.parametrize(("percent", "approver", "email"), [
    (10, None, None), (11, "Sales Manager", "marcus.chen@northwind.example"),
    (20, "Sales Manager", "marcus.chen@northwind.example"), (21, "VP Sales", "dana.whitfield@northwind.example"),
    (31, "CEO", "dana.whitfield@northwind.example")])
def test_discount_needs_its_approver_before_closed_won(rules: Rules, percent: float, approver: str | None,
                                                        email: str | None) -> None:
    negotiating = evaluate_deal(deal("Negotiation", discount_percent=percent), [], rules, NOW)
    assert [(a.approver_title, a.approver_email) for a in negotiating.approvals] == (
        [(approver, email)] if approver else [])
    won = evaluate_deal(deal("Closed Won", discount_percent=percent), [], rules, NOW)
    assert ("approval_gate_flagged" in won.counts) == (approver is not None)
    approved = deal("Closed Won", discount_percent=percent,
                    approvals=(ApprovalRecord(matrix="discount", approver=email or "x", at=NOW, value=percent),))
    assert evaluate_deal(approved, [], rules, NOW).gate_status == "passed"


def test_movement_policies(rules: Rules) -> None:
    skipped = [StageChange("Prospecting", "Proposal", NOW - timedelta(hours=1), "liam")]
    result = evaluate_deal(deal("Proposal"), skipped, rules, NOW)
    assert "skipped Discovery, Solution Design" in next(f for f in result.findings if f.code == "stage_skipped").message
    reopened = [StageChange("Closed Lost", "Negotiation", NOW - timedelta(hours=1))]
    assert evaluate_deal(deal("Negotiation"), reopened, rules, NOW).counts.get("deal_reopened") == 1
    back = [StageChange("Proposal", "Discovery", NOW - timedelta(hours=1))]
    assert "stage_backwards" not in evaluate_deal(deal("Discovery"), back, rules, NOW).counts  # allowed by default
    to_lost = [StageChange("Prospecting", "Closed Lost", NOW - timedelta(hours=1))]
    assert evaluate_deal(deal("Closed Lost", {}), to_lost, rules, NOW).counts == {}


@given(st.permutations(range(4)))
def test_evaluation_does_not_depend_on_history_order(rules: Rules, order: list[int]) -> None:
    history: list[StageChange | FieldChange] = [
        StageChange(None, "Prospecting", NOW - timedelta(days=30)),
        StageChange("Prospecting", "Solution Design", NOW - timedelta(days=20)),
        StageChange("Solution Design", "Closed Lost", NOW - timedelta(days=10)),
        StageChange("Closed Lost", "Solution Design", NOW - timedelta(days=5)),
    ]
    target = deal("Solution Design", {"discovery_call_scheduled": True}, stage_entered_at=None)
    expected = evaluate_deal(target, history, rules, NOW)
    assert evaluate_deal(target, [history[i] for i in order], rules, NOW) == expected
    assert set(expected.counts) >= {"stage_skipped", "deal_reopened", "gate_flagged"}


@pytest.mark.parametrize(("stage", "days", "overdue"), [
    ("Prospecting", 7, False), ("Prospecting", 8, True), ("Discovery", 14, False), ("Discovery", 15, True),
    ("Proposal", 7, False), ("Proposal", 8, True), ("Negotiation", 15, True)])
def test_stage_duration_edges(rules: Rules, stage: str, days: int, overdue: bool) -> None:
    result = evaluate_deal(deal(stage, stage_entered_at=NOW - timedelta(days=days)), [], rules, NOW)
    assert ("stage_overdue" in result.counts) == overdue


def test_hygiene_findings(rules: Rules) -> None:
    result = evaluate_deal(deal("Discovery", close_date=NOW.date() - timedelta(days=1), next_step=" "), [], rules, NOW)
    assert {"close_date_past", "next_step_missing"} <= set(result.counts)
    assert evaluate_deal(deal("Discovery", close_date=NOW.date()), [], rules, NOW).counts == {}
    end = quarter_end(NOW.date())
    assert end == date(2026, 3, 31)
    late = [FieldChange("amount", 10000, 5000, datetime(2026, 3, 18, tzinfo=NOW.tzinfo)),
            FieldChange("close_date", "2026-03-30", "2026-04-30", datetime(2026, 3, 17, tzinfo=NOW.tzinfo))]
    assert evaluate_deal(deal("Discovery"), late, rules, NOW).counts == {"late_quarter_change": 1}
    assert quarter_end(date(2026, 1, 5), fiscal_year_start_month=2) == date(2026, 1, 31)


def test_closed_won_kickoff_due_within_three_days() -> None:
    rules = HandoffRules()
    won_at = NOW
    form = {name: "x" for name in rules.closed_won.form_fields}
    decision = closed_won(deal("Closed Won", form), won_at, rules, "grace.kim@northwind.example", NOW)
    assert decision.complete and decision.due_at == won_at + timedelta(days=3)
    kickoff = decision.tasks[0]
    assert (kickoff.assignee_email, kickoff.due_at) == ("grace.kim@northwind.example", won_at + timedelta(days=3))
    assert [t.subject for t in decision.tasks[1:]] == [
        "Send the internal win notification", "Introduce Customer Success to the customer", "Request referrals"]
    incomplete = closed_won(deal("Closed Won", {**form, "risk_factors": ""}), won_at, rules, None, NOW)
    assert not incomplete.complete and incomplete.missing == ("risk_factors",) and incomplete.tasks == ()
    assert "6/7" in incomplete.findings[0].message


def test_closed_lost_needs_a_reason() -> None:
    rules = HandoffRules()
    assert closed_lost(deal("Closed Lost", {}), NOW, rules, NOW).findings[0].code == "loss_reason_missing"
    lost = closed_lost(deal("Closed Lost", {}, loss_reason="Price"), NOW, rules, NOW)
    assert [t.due_at for t in lost.tasks] == [NOW + timedelta(days=7), NOW + timedelta(days=90)]


def test_sdr_to_ae_checklist_blocks_the_owner_change() -> None:
    values = {"meeting_outcome": "Held", "handoff_notes": "Pain: routing", "next_step": "Demo", "budget": "50k",
              "authority": "VP Ops", "need": "routing"}
    blocked = sdr_to_ae(REF, values, HandoffRules(), StageRules(), "chloe.martin@northwind.example", OWNER, NOW)
    assert not blocked.complete and blocked.missing == ("timeline",)
    done = sdr_to_ae(REF, {**values, "timeline": "Q2"}, HandoffRules(), StageRules(), "chloe.martin@northwind.example",
                     OWNER, NOW)
    assert done.complete and done.tasks[0].assignee_email == OWNER and "Pain: routing" in done.tasks[0].description


def test_an_enforced_stage_gate_only_flags_a_won_deal(rules: Rules) -> None:
    enforced = rules.model_copy(update={"stages": StageRules.model_validate(
        {**StageRules().model_dump(), "policies": {**StagePolicies().model_dump(), "gate": "enforce"}})})
    criteria = {**_all_met("Closed Won"), "decision_date": None}
    won = evaluate_deal(deal("Closed Won", criteria), [], enforced, NOW)
    assert won.reset is None and won.gate_status == "flagged"
    assert [(v.stage, v.policy) for v in won.violations] == [("Proposal", "flag")]
    negotiation = evaluate_deal(deal("Negotiation", criteria), [], enforced, NOW)
    assert negotiation.reset is not None and negotiation.reset.to_stage == "Proposal"


LEAD = RecordRef(connection="salesforce", object="Lead", crm_id="00QA")
CHECKLIST = {"meeting_outcome": "Held", "handoff_notes": "Pain: routing", "next_step": "Demo", "budget": "50k",
             "authority": "VP Ops", "need": "routing", "timeline": "Q2"}
SDR = "chloe.martin@northwind.example"


def test_an_incomplete_checklist_routes_nobody_and_tasks_the_sdr(rules: Rules) -> None:
    values = {**CHECKLIST, "next_step": " ", "budget": None}
    decision, state = decide_sdr_to_ae(LEAD, values, SDR, "US", rules, RoutingState(), {}, NOW)
    assert not decision.complete and decision.missing == ("next_step", "budget")
    assert decision.receiver_email is None and state == RoutingState()  # the rotation did not move
    [finding] = decision.findings
    assert finding.task is not None and finding.task.assignee_email == SDR
    assert "next_step, budget" in finding.message


def test_an_sdr_hands_over_to_the_next_sales_rep_of_the_region(rules: Rules) -> None:
    state = RoutingState()
    picked = []
    for _ in range(4):
        decision, state = decide_sdr_to_ae(LEAD, CHECKLIST, SDR, "US", rules, state, {}, NOW)
        assert decision.complete and decision.tasks[0].assignee_email == decision.receiver_email
        picked.append(decision.receiver_email)
    # NA sales reps in roster order, the inactive one (lucas.silva) never
    assert picked == ["liam.walsh@northwind.example", "emma.rossi@northwind.example",
                      "ava.thompson@northwind.example", "liam.walsh@northwind.example"]
    assert "round robin (sales_reps:NA, pick 1)" in (decide_sdr_to_ae(
        LEAD, CHECKLIST, SDR, "US", rules, RoutingState(), {}, NOW)[0].reason or "")
    emea, _ = decide_sdr_to_ae(LEAD, CHECKLIST, SDR, "DE", rules, RoutingState(), {}, NOW)
    assert emea.receiver_email == "noah.fischer@northwind.example"
    task = emea.tasks[0]
    assert task.due_at == NOW + timedelta(days=1) and "Pain: routing" in task.description and SDR in task.description


def test_an_ae_owner_keeps_the_lead_and_an_inactive_region_falls_back(rules: Rules) -> None:
    kept, state = decide_sdr_to_ae(LEAD, CHECKLIST, "Olivia.Grant@northwind.example", "US", rules, RoutingState(), {},
                                   NOW)
    assert kept.receiver_email == "olivia.grant@northwind.example" and state == RoutingState()
    assert "AE already" in (kept.reason or "")
    # an AE the CRM says is inactive hands over like an SDR would
    moved, _ = decide_sdr_to_ae(LEAD, CHECKLIST, "olivia.grant@northwind.example", "US", rules, RoutingState(),
                                {"olivia.grant@northwind.example": False}, NOW)
    assert moved.receiver_email == "liam.walsh@northwind.example"
    # APAC has one sales rep: when the CRM says he left, the group's fallback (every region) answers
    apac, _ = decide_sdr_to_ae(LEAD, CHECKLIST, None, "JP", rules, RoutingState(),
                               {"ethan.park@northwind.example": False}, NOW)
    assert apac.receiver_email == "liam.walsh@northwind.example" and "fallback" in (apac.reason or "")


def test_nobody_available_leaves_the_owner(rules: Rules) -> None:
    everyone_gone = {m.email: False for m in rules.routing.team}
    decision, _ = decide_sdr_to_ae(LEAD, CHECKLIST, SDR, "US", rules, RoutingState(), everyone_gone, NOW)
    assert decision.complete and decision.receiver_email is None and "nobody available" in (decision.reason or "")
