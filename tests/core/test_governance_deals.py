"""``decide_deal``: gates joined with the handoff its stage calls for, the CS owner routed, the writes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.core.governance.deals import decide_deal, entered_outcome_at
from connector.core.governance.models import Deal, StageChange
from connector.core.governance.rules import StageRules
from connector.core.models import RecordRef, RoutingState
from connector.core.rules import Rules

from .helpers import NOW

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rules() -> Rules:
    """The shipped rules: the Enterprise and Renewals pipelines, the enforced Proposal gate."""
    from connector.config.loader import load_config
    return load_config(REPO / "config", REPO / "mappings", env={}).rules

REF = RecordRef(connection="hubspot", object="deals", crm_id="9001")
OWNER = "liam.walsh@northwind.example"
SOP = StageRules().pipelines["sales"].stages
FORM = {"amount": 50_000.0, "contract_term": 12.0, "go_live_date": "2026-03-01", "key_stakeholders": "Ann (champion)",
        "success_criteria": "95 % SLA", "risk_factors": "None identified", "payment_state": "Invoiced"}


def _met() -> dict[str, Any]:
    return {c.field: True for s in SOP if s.outcome == "open" for c in s.exit_criteria if c.field}


def deal(stage: str, criteria: dict[str, Any] | None = None, **kw: Any) -> Deal:
    base: dict[str, Any] = {"ref": REF, "name": "Acme - Platform", "stage": stage, "owner_email": OWNER,
                            "owner_id": "101", "next_step": "Call", "close_date": date(2026, 4, 30),
                            "stage_entered_at": NOW - timedelta(days=1), "pipeline": "default"}
    base.update(kw)
    return Deal(**base, criteria={**_met(), **FORM} if criteria is None else criteria)


def test_a_win_routes_a_csm_round_robin_and_hands_over_with_a_kickoff_in_three_days(rules: Rules) -> None:
    won_at = NOW - timedelta(hours=5)
    history = [StageChange("contractsent", "closedwon", won_at, "101")]
    first, state = decide_deal(deal("closedwon"), history, rules, NOW, RoutingState())
    second, state = decide_deal(deal("closedwon", ref=RecordRef(connection="hubspot", object="deals", crm_id="9002")),
                                history, rules, NOW, state)
    assert {first.cs_owner_email, second.cs_owner_email} == {"grace.kim@northwind.example",
                                                             "daniel.okafor@northwind.example"}
    assert first.handoff is not None and first.handoff.complete and first.transition_at == won_at
    assert first.handoff.due_at == won_at + timedelta(days=3)
    kickoff = first.handoff.tasks[0]
    assert kickoff.assignee_email == first.cs_owner_email and "payment_state: Invoiced" in kickoff.description
    assert first.field_updates == {"relay_gate_status": "passed", "handoff_csm": first.cs_owner_email,
                                   "onboarding_owner": first.cs_owner_email}


def test_a_win_handed_over_before_is_not_handed_over_again(rules: Rules) -> None:
    decision, state = decide_deal(deal("closedwon"), [], rules, NOW, RoutingState(), handed_off=frozenset({"closed_won"}))
    assert decision.handoff is None and state == RoutingState()


def test_an_incomplete_form_routes_nobody_and_tells_the_owner(rules: Rules) -> None:
    criteria = {**_met(), **FORM, "risk_factors": None}
    decision, state = decide_deal(deal("closedwon", criteria), [], rules, NOW, RoutingState())
    assert decision.cs_owner_email is None and state == RoutingState()
    assert decision.handoff is not None and not decision.handoff.complete
    assert decision.handoff.missing == ("risk_factors",)
    assert [f.code for f in decision.findings] == ["handoff_form_incomplete"]


def test_the_csm_the_form_names_by_crm_id_takes_the_customer(rules: Rules) -> None:
    criteria = {**_met(), **FORM, "handoff_csm": "205"}
    decision, state = decide_deal(deal("closedwon", criteria), [], rules, NOW, RoutingState(),
                                  owner_emails={"205": "daniel.okafor@northwind.example"})
    assert decision.cs_owner_email == "daniel.okafor@northwind.example" and state == RoutingState()
    assert "handoff_csm" not in decision.field_updates


def test_renewals_are_not_handed_to_customer_success(rules: Rules) -> None:
    decision, _ = decide_deal(deal("128400203", pipeline="75312469", criteria={}), [], rules, NOW, RoutingState())
    assert decision.handoff is None and decision.governance.stage == "Renewed"


def test_an_enforced_gate_sets_the_stage_back_in_the_deals_own_pipeline(rules: Rules) -> None:
    criteria = {**_met(), **FORM, "decision_date": None}
    enterprise = deal("128400105", criteria, pipeline="75312468")  # Negotiation, Proposal gate (enforce) not met
    decision, _ = decide_deal(enterprise, [], rules, NOW, RoutingState())
    assert decision.governance.reset is not None
    assert decision.field_updates == {"relay_gate_status": "reset", "stage": "128400104"}
    default = deal("contractsent", criteria)
    assert decide_deal(default, [], rules, NOW, RoutingState())[0].field_updates["stage"] == "decisionmakerboughtin"


def test_a_loss_without_a_reason_is_a_finding_and_with_one_schedules_the_interview(rules: Rules) -> None:
    lost_at = NOW - timedelta(days=2)
    history = [StageChange("qualifiedtobuy", "closedlost", lost_at)]
    missing, _ = decide_deal(deal("closedlost", {}), history, rules, NOW, RoutingState())
    assert [f.code for f in missing.findings] == ["loss_reason_missing"]
    done, _ = decide_deal(deal("closedlost", {}, loss_reason="Price"), history, rules, NOW, RoutingState())
    assert done.handoff is not None and done.handoff.complete
    assert [t.due_at for t in done.handoff.tasks] == [lost_at + timedelta(days=7), lost_at + timedelta(days=90)]


def test_when_a_deal_entered_its_closed_stage() -> None:
    d = deal("closedwon", stage_entered_at=None, close_date=date(2026, 1, 10))
    at = NOW - timedelta(days=3)
    assert entered_outcome_at(d, [StageChange("contractsent", "closedwon", at)], ["closedwon"], NOW) == at
    assert entered_outcome_at(d, [], ["closedwon"], NOW).date() == date(2026, 1, 10)


def test_a_win_from_before_relay_is_recorded_without_tasks(rules: Rules) -> None:
    old = [StageChange("contractsent", "closedwon", NOW - timedelta(days=31))]
    decision, state = decide_deal(deal("closedwon"), old, rules, NOW, RoutingState())
    assert decision.handoff is not None and decision.handoff.before_relay and decision.handoff.tasks == ()
    assert decision.cs_owner_email is None and state == RoutingState()
    recent = [StageChange("contractsent", "closedwon", NOW - timedelta(days=29))]
    assert not decide_deal(deal("closedwon"), recent, rules, NOW, RoutingState())[0].handoff.before_relay  # type: ignore[union-attr]
