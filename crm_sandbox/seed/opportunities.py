"""Opportunities and deals at every stage of seed 002's sales process, and their stage gates.

Seed 002 "Sales Process SOP" lists exit criteria per stage. An opportunity *in* a
stage has passed the gates of every earlier stage, so it must show their exit
criteria; a few stages also carry their own artefacts (a Proposal has been
delivered with a decision date; Negotiation discounts above 10% need an approver
per the approval matrix; Closed Won needs the handoff form). ``STAGE_REQUIREMENTS``
spells this out; ``violations`` checks a record against it.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any

STAGES: tuple[str, ...] = (
    "Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won", "Closed Lost",
)
PROBABILITY: dict[str, int] = {
    "Prospecting": 10, "Discovery": 20, "Solution Design": 40, "Proposal": 60, "Negotiation": 80,
    "Closed Won": 100, "Closed Lost": 0,
}
FORECAST_CATEGORY: dict[str, str] = {
    "Prospecting": "Pipeline", "Discovery": "Pipeline", "Solution Design": "Pipeline",
    "Proposal": "Best Case", "Negotiation": "Commit", "Closed Won": "Closed", "Closed Lost": "Omitted",
}
#: HubSpot default pipeline stage ids, in the same order.
HUBSPOT_STAGE: dict[str, str] = {
    "Prospecting": "appointmentscheduled", "Discovery": "qualifiedtobuy",
    "Solution Design": "presentationscheduled", "Proposal": "decisionmakerboughtin",
    "Negotiation": "contractsent", "Closed Won": "closedwon", "Closed Lost": "closedlost",
}
#: How common each stage is after the first two rounds (which put every stage in twice).
STAGE_WEIGHTS: tuple[int, ...] = (20, 18, 14, 12, 9, 15, 12)
_STAGE_CUM = tuple(accumulate(STAGE_WEIGHTS))
#: Share of opportunities at a stage with requirements that break at least one (≈15% of all).
STAGE_VIOLATION_RATE = 0.21
#: Discount above this percent needs an approver (seed 002 approval matrix: 0-10% the rep).
FREE_DISCOUNT_PERCENT = 10

# criterion -> (Salesforce field, HubSpot property or None when the portal has no such property)
CRITERIA: dict[str, tuple[str, str | None]] = {
    "discovery_call_scheduled": ("Discovery_Call_Scheduled__c", "discovery_call_scheduled"),
    "decision_maker_identified": ("Decision_Maker_Identified__c", "decision_maker_identified"),
    "pain_points": ("Pain_Points__c", "pain_points"),
    "bant_qualified": ("BANT_Qualified__c", "bant_qualified"),
    "champion_identified": ("Champion_Identified__c", "champion_identified"),
    "demo_scheduled": ("Demo_Scheduled__c", "demo_scheduled"),
    "mutual_evaluation_plan": ("Mutual_Evaluation_Plan__c", "mutual_evaluation_plan"),
    "solution_fit_confirmed": ("Solution_Fit_Confirmed__c", "solution_fit_confirmed"),
    "roi_validated": ("ROI_Validated__c", "roi_validated"),
    "proposal_requested": ("Proposal_Requested__c", "proposal_requested"),
    "decision_makers_engaged": ("Decision_Makers_Engaged__c", "decision_makers_engaged"),
    "proposal_delivered": ("Proposal_Delivered__c", "proposal_delivered"),
    "feedback_received": ("Feedback_Received__c", "feedback_received"),
    "negotiation_points_identified": ("Negotiation_Points_Identified__c", "negotiation_points_identified"),
    "decision_date": ("Decision_Date__c", "decision_date"),
    "discount_approval": ("Discount_Approved_By__c", None),
    "terms_agreed": ("Terms_Agreed__c", "terms_agreed"),
    "contract_sent": ("Contract_Sent__c", "contract_sent"),
    "signatures_scheduled": ("Signatures_Scheduled__c", "signatures_scheduled"),
    "implementation_planned": ("Implementation_Planned__c", "implementation_planned"),
    "handoff_csm": ("Handoff_CSM__c", None),
    "success_criteria": ("Success_Criteria__c", "success_criteria"),
    "go_live_date": ("Go_Live_Date__c", None),
    "contract_term": ("Contract_Term_Months__c", None),
}
#: Seed 002 "Sales Stages & Exit Criteria", one criterion per checklist item ("Decision date
#: confirmed" is the Decision_Date__c date being set).
_EXIT: dict[str, tuple[str, ...]] = {
    "Prospecting": ("discovery_call_scheduled", "decision_maker_identified", "pain_points"),
    "Discovery": ("bant_qualified", "champion_identified", "demo_scheduled", "mutual_evaluation_plan"),
    "Solution Design": ("solution_fit_confirmed", "roi_validated", "proposal_requested", "decision_makers_engaged"),
    "Proposal": ("proposal_delivered", "feedback_received", "negotiation_points_identified", "decision_date"),
    "Negotiation": ("terms_agreed", "contract_sent", "signatures_scheduled", "implementation_planned"),
}
#: What an opportunity in each stage must show (criteria names of CRITERIA).
STAGE_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "Prospecting": (),
    "Discovery": _EXIT["Prospecting"],
    "Solution Design": _EXIT["Prospecting"] + _EXIT["Discovery"],
    "Proposal": _EXIT["Prospecting"] + _EXIT["Discovery"] + _EXIT["Solution Design"] + _EXIT["Proposal"],
    "Negotiation": _EXIT["Prospecting"] + _EXIT["Discovery"] + _EXIT["Solution Design"]
    + _EXIT["Proposal"] + ("discount_approval",),
    "Closed Won": _EXIT["Prospecting"] + _EXIT["Discovery"] + _EXIT["Solution Design"]
    + _EXIT["Proposal"] + ("discount_approval",) + _EXIT["Negotiation"]
    + ("handoff_csm", "success_criteria", "go_live_date", "contract_term"),
    "Closed Lost": (),
}

#: The requirements reps skip most often, per stage: the newest paperwork of the stage.
_OFTEN_MISSED: dict[str, tuple[str, ...]] = {
    "Discovery": _EXIT["Prospecting"],
    "Solution Design": _EXIT["Discovery"],
    "Proposal": ("roi_validated",) + _EXIT["Proposal"],
    "Negotiation": ("discount_approval", "decision_date"),
    "Closed Won": ("handoff_csm", "success_criteria", "go_live_date", "contract_term", "contract_sent"),
}

_PAINS = (
    "Leads sit unassigned for days; no SLA tracking",
    "Duplicate records between marketing automation and CRM",
    "Manual round-robin in spreadsheets",
    "Forecast misses because stages are not enforced",
    "No visibility into speed-to-lead",
    "Territory rules live in one admin's head",
)
_SUCCESS = (
    "1. Speed-to-lead under 1 hour\n2. Duplicate rate under 2%\n3. 95% SLA compliance",
    "1. All inbound leads routed within 5 minutes\n2. Forecast accuracy within 10%",
    "1. Stage compliance above 85%\n2. Handoff form complete for every win",
)
_LOSS_REASONS = ("Price", "Lost to competitor", "No budget", "No decision", "Timing", "Missing feature")
_PRODUCTS = ("Platform", "Routing Add-on", "Enterprise Suite", "Team Plan", "Expansion", "Renewal", "Pilot")


def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == "false"


def violations(stage: str, values: Mapping[str, Any], crm: str = "salesforce") -> list[str]:
    """The criteria of ``stage`` that a record's field values break (empty when none).

    Args:
        stage: a name of STAGES.
        values: Salesforce fields or HubSpot properties of the record.
        crm: "salesforce" or "hubspot" (HubSpot lacks some fields; those criteria are skipped).
    """
    broken = []
    for criterion in STAGE_REQUIREMENTS[stage]:
        sf_field, hs_prop = CRITERIA[criterion]
        name = sf_field if crm == "salesforce" else hs_prop
        if name is None:
            continue
        if criterion == "discount_approval":
            percent = values.get("Discount_Percent__c") or 0
            if percent > FREE_DISCOUNT_PERCENT and _empty(values.get(name)):
                broken.append(criterion)
        elif _empty(values.get(name)):
            broken.append(criterion)
    return broken


def _approver(percent: float, manager: str) -> str:
    if percent <= 20:
        return f"{manager} (Sales Manager)"
    if percent <= 30:
        return "Dana Whitfield (VP Sales)"
    return "Avery Lindqvist (CEO)"


def criteria_values(
    rng: random.Random, stage: str, anchor: datetime, close: date, manager: str, csm_id: str,
) -> dict[str, Any]:
    """Salesforce field values of a healthy opportunity in ``stage`` (no violation yet)."""
    needed = set(STAGE_REQUIREMENTS[stage])
    if stage == "Closed Lost":  # lost somewhere along the way: some progress, no requirement
        reached = rng.randrange(len(_EXIT) + 1)
        needed = {c for s in STAGES[:reached] if s in _EXIT for c in _EXIT[s]}
    values: dict[str, Any] = {}
    for criterion, (field, _) in CRITERIA.items():
        if criterion in ("discount_approval", "pain_points", "decision_date", "handoff_csm",
                         "success_criteria", "go_live_date", "contract_term"):
            continue
        # beyond what the stage needs, a criterion is sometimes already met (work ahead)
        values[field] = criterion in needed or rng.random() < 0.15
    values["Pain_Points__c"] = "; ".join(rng.sample(_PAINS, 2)) if "pain_points" in needed or rng.random() < 0.3 else None
    values["Decision_Date__c"] = (close - timedelta(days=rng.randint(3, 20))).isoformat() if "decision_date" in needed else None
    percent = 0.0
    if stage in ("Negotiation", "Closed Won"):
        roll = rng.random()
        percent = 0.0 if roll < 0.4 else float(rng.randint(5, 10) if roll < 0.7 else rng.randint(11, 20) if roll < 0.9 else rng.randint(21, 35))
    values["Discount_Percent__c"] = percent
    values["Discount_Approved_By__c"] = _approver(percent, manager) if percent > FREE_DISCOUNT_PERCENT else None
    won = stage == "Closed Won"
    values["Handoff_CSM__c"] = csm_id if won else None
    values["Success_Criteria__c"] = rng.choice(_SUCCESS) if won else None
    values["Go_Live_Date__c"] = (close + timedelta(days=rng.randint(14, 60))).isoformat() if won else None
    values["Contract_Term_Months__c"] = float(rng.choice((12, 12, 24, 36))) if won else None
    values["Key_Stakeholders__c"] = "Champion, Executive and Technical contacts named" if won else None
    values["Risk_Factors__c"] = None
    # Closed Lost: a reason is required by the SOP; about a quarter of the lost deals lack one.
    lost = stage == "Closed Lost"
    values["Loss_Reason__c"] = rng.choice(_LOSS_REASONS) if lost and rng.random() < 0.75 else None
    values["Relay_Stage_Gate_Status__c"] = None
    values["Relay_Id__c"] = None
    return values


def break_some(rng: random.Random, stage: str, values: dict[str, Any], crm: str = "salesforce") -> None:
    """Break one or two of the stage's requirements in place (a realistic gate violation)."""
    column = 0 if crm == "salesforce" else 1
    candidates = [c for c in STAGE_REQUIREMENTS[stage] if CRITERIA[c][column]]
    focus = [c for c in _OFTEN_MISSED.get(stage, ()) if CRITERIA[c][column]]
    if focus and rng.random() < 0.75:  # what reps skip most is the stage's own paperwork
        candidates = focus
    if not candidates:
        return
    for criterion in rng.sample(candidates, min(len(candidates), rng.choice((1, 1, 2)))):
        field = CRITERIA[criterion][0]
        if criterion == "discount_approval":
            values["Discount_Percent__c"] = float(rng.randint(11, 35))
            values[field] = None
        elif field.endswith("__c") and isinstance(values.get(field), bool):
            values[field] = False
        else:
            values[field] = None


def pick_stage(rng: random.Random, index: int) -> str:
    """Stage of opportunity number ``index``: the first 14 go round every stage twice."""
    values = STAGES
    if index < 2 * len(STAGES):
        return STAGES[index % len(STAGES)]
    return values[bisect(_STAGE_CUM, rng.random() * _STAGE_CUM[-1])]


def amount_for(rng: random.Random, employees: int) -> float:
    """A deal size that grows with the customer's size."""
    base = 6_000 if employees < 50 else 25_000 if employees < 1000 else 90_000
    return float(round(base * rng.uniform(0.5, 4.0), -2))


def close_date(rng: random.Random, stage: str, anchor: datetime) -> date:
    """Closed deals closed in the past year; open ones are expected within four months."""
    if stage.startswith("Closed"):
        return (anchor - timedelta(days=rng.randint(1, 330))).date()
    return (anchor + timedelta(days=rng.randint(5, 120))).date()


def opportunity_name(rng: random.Random, company: str) -> str:
    """"Globex Corporation - Platform" style names."""
    return f"{company} - {rng.choice(_PRODUCTS)}"


def to_hubspot_props(values: Mapping[str, Any], as_string: Callable[[object], str | None]) -> dict[str, str | None]:
    """The deal's custom properties from the Salesforce-named values (fields HubSpot has)."""
    props: dict[str, str | None] = {}
    for _, (field, prop) in CRITERIA.items():
        if prop is not None:
            props[prop] = as_string(values.get(field))
    props["discount_percent"] = as_string(values.get("Discount_Percent__c"))
    props["closed_lost_reason"] = as_string(values.get("Loss_Reason__c"))
    return props
