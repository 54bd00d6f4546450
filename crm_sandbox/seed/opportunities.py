"""Opportunities and deals that follow seed 002's sales process: stages, history, gates, approvals.

Seed 002 "Sales Process SOP" gives the stages with their durations and exit criteria, the
discount approval matrix and the Closed Won handoff form; "Customer Handoff SOP" what is
carried over to Customer Success. This module plans one deal at a time (``DealPlanner``):
its pipeline and stage, the path of stages it went through with the time of each move (the
Salesforce ``OpportunityHistory`` rows and HubSpot ``propertiesWithHistory`` are written from
it), and its field values; ``assess`` then reads a finished record back and says what is
really true of it (the ground truth Relay's governance is measured against).

What the data set holds, on purpose:

- Every completed stage lasted as long as the SOP says (``EXPECTED_DAYS``); ``STALE_RATE`` of
  the open deals have been in their current stage longer than its maximum.
- A deal in a stage has passed the gate of every earlier open stage, so it shows their exit
  criteria, except ``GATE_MISS_RATE`` of them (one or two criteria missing, mostly the newest
  stage's own paperwork) and the deals that skipped a stage (``SKIP_RATE``: e.g. Discovery ->
  Proposal; the skipped stage's criteria are mostly missing). A Closed Lost deal owes no gate.
- Closed Lost deals were lost from every stage; ``REOPEN_RATE`` of the Negotiation deals were
  reopened from Closed Lost; ``LOSS_REASON_MISSING_RATE`` of the lost deals give no reason.
- Negotiation and Closed Won deals carry discounts. The first of them hit every row and edge
  of the approval matrix (``DISCOUNT_EDGES``), with and without an approver recorded; later
  ones are drawn at random.
- ``FORM_INCOMPLETE_RATE`` of the Closed Won deals lack one or two handoff form fields and
  ``CARRY_OVER_INCOMPLETE_RATE`` one or two carry-over fields.
- The first 14 deals of each CRM show every one of these cases whatever the data set's size
  (``_SCHEDULE``).
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate, pairwise
from typing import Any

from crm_sandbox.hubspot.pipelines import DEFAULT_PIPELINE, ENTERPRISE_PIPELINE, RENEWALS_PIPELINE
from crm_sandbox.schema import CONTRACT_STATES, PAYMENT_STATES
from crm_sandbox.seed._clock import DAY, HOUR, date_of, ms_of_date, to_ms

STAGES: tuple[str, ...] = (
    "Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won", "Closed Lost",
)
#: The open stages of seed 002's sales process, in order.
OPEN_STAGES: tuple[str, ...] = STAGES[:5]
PROBABILITY: dict[str, int] = {
    "Prospecting": 10, "Discovery": 20, "Solution Design": 40, "Proposal": 60, "Negotiation": 80,
    "Closed Won": 100, "Closed Lost": 0,
}
FORECAST_CATEGORY: dict[str, str] = {
    "Prospecting": "Pipeline", "Discovery": "Pipeline", "Solution Design": "Pipeline",
    "Proposal": "Best Case", "Negotiation": "Commit", "Closed Won": "Closed", "Closed Lost": "Omitted",
}
#: ``OpportunityHistory.ForecastCategory`` stores the API names of the forecast categories.
FORECAST_API: dict[str, str] = {
    "Pipeline": "Pipeline", "Best Case": "BestCase", "Commit": "Forecast", "Closed": "Closed", "Omitted": "Omitted",
}
#: Seed 002 stage durations in days (min, max): Prospecting 0-7, Discovery 1-2 weeks,
#: Solution Design 1-2 weeks, Proposal 1 week, Negotiation 1-2 weeks.
EXPECTED_DAYS: dict[str, tuple[int, int]] = {
    "Prospecting": (0, 7), "Discovery": (7, 14), "Solution Design": (7, 14), "Proposal": (0, 7), "Negotiation": (7, 14),
}

#: HubSpot pipelines: the default one and "Enterprise Sales" follow the SOP stages (same order);
#: "Renewals" has stages of its own and no SOP criteria.
SOP_PIPELINES: tuple[str, ...] = (DEFAULT_PIPELINE.id, ENTERPRISE_PIPELINE.id)
RENEWALS: str = RENEWALS_PIPELINE.id
RENEWAL_STAGES: tuple[str, ...] = tuple(s.label for s in RENEWALS_PIPELINE.stages)
_RENEWAL_OPEN = RENEWAL_STAGES[:2]
#: pipeline id -> stage name (SOP name, or the Renewals stage label) -> HubSpot stage id.
HUBSPOT_STAGE_IDS: dict[str, dict[str, str]] = {
    DEFAULT_PIPELINE.id: dict(zip(STAGES, (s.id for s in DEFAULT_PIPELINE.stages), strict=True)),
    ENTERPRISE_PIPELINE.id: dict(zip(STAGES, (s.id for s in ENTERPRISE_PIPELINE.stages), strict=True)),
    RENEWALS: {s.label: s.id for s in RENEWALS_PIPELINE.stages},
}
#: HubSpot default pipeline stage ids by SOP stage (kept for readers of the old name).
HUBSPOT_STAGE: dict[str, str] = HUBSPOT_STAGE_IDS[DEFAULT_PIPELINE.id]

#: How common each stage is after the scheduled first deals.
STAGE_WEIGHTS: tuple[int, ...] = (20, 18, 14, 12, 9, 15, 12)
_STAGE_CUM = tuple(accumulate(STAGE_WEIGHTS))
#: HubSpot deals after the scheduled ones: default, Enterprise Sales, Renewals pipeline.
PIPELINE_WEIGHTS: tuple[tuple[str, int], ...] = ((DEFAULT_PIPELINE.id, 50), (ENTERPRISE_PIPELINE.id, 30), (RENEWALS, 20))
_RENEWAL_WEIGHTS: tuple[int, ...] = (30, 25, 30, 15)
#: Lost from which stage (Prospecting ... Negotiation).
_LOST_FROM_WEIGHTS: tuple[int, ...] = (25, 25, 20, 15, 15)

#: Shares of the randomly drawn deals (after the scheduled first 14 of each CRM).
STALE_RATE = 0.15              # open deals longer than the SOP maximum in their current stage
SKIP_RATE = 0.10               # deals past Solution Design that skipped one stage
REOPEN_RATE = 0.15             # Negotiation deals reopened from Closed Lost
GATE_MISS_RATE = 0.12          # deals owing a gate that miss one or two exit criteria
FORM_INCOMPLETE_RATE = 0.25    # Closed Won deals missing one or two handoff form fields
CARRY_OVER_INCOMPLETE_RATE = 0.20
LOSS_REASON_MISSING_RATE = 0.25
NEXT_STEP_MISSING_RATE = 0.15  # open deals with no next step
APPROVED_RATE = 0.70           # discounts that need an approver and have one recorded
#: Relay's default "late in the quarter" (stages.yaml hygiene.late_quarter_days; not in the seeds).
LATE_QUARTER_DAYS = 14

# criterion (stages.yaml field name) -> (Salesforce field, HubSpot property)
CRITERIA: dict[str, tuple[str, str]] = {
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
    "terms_agreed": ("Terms_Agreed__c", "terms_agreed"),
    "contract_sent": ("Contract_Sent__c", "contract_sent"),
    "signatures_scheduled": ("Signatures_Scheduled__c", "signatures_scheduled"),
    "implementation_planned": ("Implementation_Planned__c", "implementation_planned"),
}
#: Seed 002 "Sales Stages & Exit Criteria", one criterion per checklist item ("Initial pain point
#: uncovered" is Pain_Points__c filled, "Decision date confirmed" Decision_Date__c set).
EXIT: dict[str, tuple[str, ...]] = {
    "Prospecting": ("discovery_call_scheduled", "decision_maker_identified", "pain_points"),
    "Discovery": ("bant_qualified", "champion_identified", "demo_scheduled", "mutual_evaluation_plan"),
    "Solution Design": ("solution_fit_confirmed", "roi_validated", "proposal_requested", "decision_makers_engaged"),
    "Proposal": ("proposal_delivered", "feedback_received", "negotiation_points_identified", "decision_date"),
    "Negotiation": ("terms_agreed", "contract_sent", "signatures_scheduled", "implementation_planned"),
}
#: Seed 002 "Handoff Form" (Closed Won -> Customer Success), canonical name -> (Salesforce, HubSpot).
#: "Risk_Factors__c = None identified" counts as filled: the rep looked and found none.
HANDOFF_FORM: dict[str, tuple[str, str]] = {
    "handoff_csm": ("Handoff_CSM__c", "handoff_csm"),
    "contract_value": ("Amount", "amount"),
    "contract_term": ("Contract_Term_Months__c", "contract_term_months"),
    "go_live_date": ("Go_Live_Date__c", "go_live_date"),
    "key_stakeholders": ("Key_Stakeholders__c", "key_stakeholders"),
    "success_criteria": ("Success_Criteria__c", "success_criteria"),
    "risk_factors": ("Risk_Factors__c", "risk_factors"),
}
#: What Closed Won carries over to Customer Success (issue 11), canonical -> (Salesforce, HubSpot).
CARRY_OVER: dict[str, tuple[str, str]] = {
    "payment_state": ("Payment_State__c", "payment_state"),
    "contract_state": ("Contract_State__c", "contract_state"),
    "kickoff_date": ("Kickoff_Date__c", "kickoff_date"),
    "onboarding_owner": ("Onboarding_Owner__c", "onboarding_owner"),
    "launch_blockers": ("Launch_Blockers__c", "launch_blockers"),
}
DISCOUNT = ("Discount_Percent__c", "discount_percent")
APPROVED_BY = ("Discount_Approved_By__c", "discount_approved_by")
LOSS_REASON = ("Loss_Reason__c", "closed_lost_reason")
NEXT_STEP = ("NextStep", "hs_next_step")
#: Every deal value the seed sets, Salesforce field -> HubSpot property.
DEAL_FIELDS: dict[str, str] = {
    **dict(CRITERIA.values()), DISCOUNT[0]: DISCOUNT[1], APPROVED_BY[0]: APPROVED_BY[1],
    LOSS_REASON[0]: LOSS_REASON[1], NEXT_STEP[0]: NEXT_STEP[1],
    **{sf: hs for sf, hs in HANDOFF_FORM.values() if sf != "Amount"}, **dict(CARRY_OVER.values()),
}

#: Seed 002 Negotiation "Approval Matrix": 0-10 % Sales Rep, 11-20 % Sales Manager, 21-30 % VP Sales,
#: > 30 % CEO. (inclusive upper bound, approver); a value between two rows goes to the stricter one.
APPROVAL_MATRIX: tuple[tuple[float, str], ...] = ((10.0, "Sales Rep"), (20.0, "Sales Manager"),
                                                  (30.0, "VP Sales"), (math.inf, "CEO"))
#: The matrix's rows and edges, in the order the first Negotiation/Closed Won deals of each CRM
#: get them (every row in the first four), and whether an approver is recorded.
DISCOUNT_EDGES: tuple[tuple[float, bool], ...] = (
    (0.0, False), (10.5, False), (20.5, True), (30.5, False), (10.0, False), (11.0, True),
    (20.0, False), (21.0, False), (30.0, True), (31.0, True), (45.0, False),
)
#: Who approves for each title in the sandbox team (approvals.yaml: the director stands in for
#: VP Sales and CEO); a Sales Manager approval is the owner's regional manager.
_APPROVER_NAMES = {"VP Sales": "Dana Whitfield", "CEO": "Dana Whitfield"}

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
_STAKEHOLDERS = (
    "Champion: Head of Revenue Operations\nExecutive: CFO\nTechnical: Salesforce Administrator",
    "Champion: VP Sales\nExecutive: CEO\nTechnical: IT Director",
    "Champion: Marketing Operations Manager\nExecutive: CMO\nTechnical: Integration Engineer",
)
_RISKS = (
    "Data migration from the legacy CRM may slip; mitigation: staged import",
    "Champion changes role next quarter; mitigation: second sponsor named",
    "Security review pending; mitigation: questionnaire sent early",
)
_BLOCKERS = ("SSO configuration pending", "Waiting on the customer's data export", "Security review not signed off")
_NEXT_STEPS = {
    "Prospecting": ("Book the discovery call", "Second outreach call on Thursday"),
    "Discovery": ("Demo with the ops team", "Send the mutual evaluation plan"),
    "Solution Design": ("ROI review with finance", "Technical deep dive"),
    "Proposal": ("Walk through the proposal live", "Collect proposal feedback"),
    "Negotiation": ("Redlines back from legal", "Signature call booked"),
    "Renewal Due": ("Renewal review with the champion", "Usage report to the customer"),
    "Renewal Quoted": ("Chase the renewal quote", "Confirm the new term"),
}
_LOSS_REASONS = ("Price", "Lost to competitor", "No budget", "No decision", "Timing", "Missing feature")
_CHURN_REASONS = ("Budget cut", "Moved to a competitor", "Company acquired")
_PRODUCTS = ("Platform", "Routing Add-on", "Enterprise Suite", "Team Plan", "Expansion", "Pilot")


@dataclass(frozen=True, slots=True)
class Features:
    """What is special about one deal (see the module docstring)."""

    skip: bool = False
    stale: bool = False
    reopen: bool = False
    lost_from: str | None = None
    gate_miss: bool = False
    miss_newest: bool = False  # the gate miss is in the newest passed stage (else mostly)
    form_incomplete: bool = False
    carry_over_incomplete: bool = False
    loss_reason_missing: bool = False
    next_step_missing: bool = False
    recent: bool = False  # closed in the last days before the anchor (a handoff still to make)


#: The first 14 deals of each CRM go round every stage twice (index % 7) and show every case.
_SCHEDULE: dict[int, Features] = {
    1: Features(stale=True),                                   # Discovery, too long in it
    2: Features(gate_miss=True, miss_newest=True),             # Solution Design, Discovery's criteria
    3: Features(skip=True),                                    # Proposal, a stage skipped
    4: Features(gate_miss=True, miss_newest=True),             # Negotiation without Proposal's criteria
    5: Features(recent=True),                                  # Closed Won days ago, form complete
    6: Features(lost_from="Discovery"),                        # Closed Lost with a reason
    7: Features(stale=True),                                   # Prospecting, too long in it
    8: Features(next_step_missing=True),                       # Discovery
    9: Features(stale=True, next_step_missing=True),           # Solution Design
    10: Features(gate_miss=True, miss_newest=True),            # Proposal, Solution Design's criteria
    11: Features(reopen=True),                                 # Negotiation, reopened from Closed Lost
    12: Features(skip=True, form_incomplete=True, carry_over_incomplete=True, recent=True),  # Closed Won
    13: Features(lost_from="Negotiation", loss_reason_missing=True),            # Closed Lost, no reason
}
#: After the first 14, this many deals alternate Negotiation / Closed Won so that the approval
#: matrix's edges are all seeded once a CRM has 25 deals.
_EDGE_RUN = len(DISCOUNT_EDGES) - 4


@dataclass(frozen=True, slots=True)
class Step:
    """One stage a deal entered: when, and its amount and close date as of then."""

    stage: str
    at: int  # ms since the epoch
    amount: float | None
    close: date


@dataclass(slots=True)
class DealPlan:
    """Everything decided about one deal before its record is written.

    Attributes:
        crm: "salesforce" or "hubspot".
        pipeline: the HubSpot pipeline id (None for a Salesforce opportunity).
        stage: the current stage (an SOP name, or a Renewals stage label).
        features: what is special about it.
        steps: the stages it entered, oldest first (the first is its creation).
        skipped: the stages it skipped.
        discount: the discount percent (Negotiation and Closed Won only) or None.
        approved: whether an approver is recorded for a discount that needs one.
        amount: the current amount; ``close``: the current close date.
    """

    crm: str
    pipeline: str | None
    stage: str
    features: Features
    steps: list[Step]
    skipped: tuple[str, ...]
    discount: float | None
    approved: bool
    amount: float
    close: date
    values: dict[str, Any] = field(default_factory=dict)


def approver_for(percent: float | None) -> str | None:
    """The approver title the SOP matrix needs for a discount (None when the rep decides or no discount)."""
    if percent is None:
        return None
    title = next(t for bound, t in APPROVAL_MATRIX if percent <= bound)
    return None if title == "Sales Rep" else title


def quarter_end(day: date) -> date:
    """The last day of the calendar quarter ``day`` is in."""
    last_month = (day.month - 1) // 3 * 3 + 3
    first_next = date(day.year + 1, 1, 1) if last_month == 12 else date(day.year, last_month + 1, 1)
    return first_next - timedelta(days=1)


def _hours(rng: random.Random, low: float, high: float) -> int:
    return int(rng.uniform(low, high) * HOUR)


def _days(rng: random.Random, low: float, high: float) -> int:
    return int(rng.uniform(low, high) * DAY)


class DealPlanner:
    """Plans the deals of one CRM, in order (the first ones follow ``_SCHEDULE``)."""

    def __init__(self, rng: random.Random, anchor: datetime, crm: str) -> None:
        self.rng = rng
        self.anchor = anchor
        self.now = to_ms(anchor)
        self.crm = crm
        self._discounted = 0  # Negotiation / Closed Won deals planned so far

    def plan(self, index: int, employees: int) -> DealPlan:
        """The plan of deal number ``index`` for a customer with ``employees`` staff."""
        pipeline, stage = self._stage(index)
        if pipeline == RENEWALS:
            return self._renewal(stage, employees)
        if index < 2 * len(STAGES):
            features = _SCHEDULE.get(index, Features())
        else:
            features = self._features(stage)
        return self._sop_deal(pipeline, stage, features, employees)

    # -------------------------------------------------------------------------- choices
    def _stage(self, index: int) -> tuple[str | None, str]:
        rng = self.rng
        hubspot = self.crm == "hubspot"
        if index < 2 * len(STAGES):
            pipeline = (DEFAULT_PIPELINE.id if index < len(STAGES) else ENTERPRISE_PIPELINE.id) if hubspot else None
            return pipeline, STAGES[index % len(STAGES)]
        offset = index - 2 * len(STAGES)
        if hubspot:
            if offset == 0:
                return RENEWALS, RENEWAL_STAGES[0]
            offset -= 1
        if offset < _EDGE_RUN:
            pipeline = SOP_PIPELINES[offset % 2] if hubspot else None
            return pipeline, ("Negotiation", "Closed Won")[offset % 2]
        pipeline = None
        if hubspot:
            names, weights = zip(*PIPELINE_WEIGHTS, strict=True)
            pipeline = rng.choices(names, weights)[0]
            if pipeline == RENEWALS:
                return pipeline, rng.choices(RENEWAL_STAGES, _RENEWAL_WEIGHTS)[0]
        return pipeline, STAGES[bisect(_STAGE_CUM, rng.random() * _STAGE_CUM[-1])]

    def _features(self, stage: str) -> Features:
        rng = self.rng
        position = STAGES.index(stage)
        is_open = stage in OPEN_STAGES
        skip = 2 <= position <= 5 and rng.random() < SKIP_RATE
        reopen = stage == "Negotiation" and not skip and rng.random() < REOPEN_RATE
        lost_from = rng.choices(OPEN_STAGES, _LOST_FROM_WEIGHTS)[0] if stage == "Closed Lost" else None
        return Features(
            skip=skip,
            stale=is_open and rng.random() < STALE_RATE,
            reopen=reopen,
            lost_from=lost_from,
            gate_miss=1 <= position <= 5 and rng.random() < GATE_MISS_RATE,
            form_incomplete=stage == "Closed Won" and rng.random() < FORM_INCOMPLETE_RATE,
            carry_over_incomplete=stage == "Closed Won" and rng.random() < CARRY_OVER_INCOMPLETE_RATE,
            loss_reason_missing=stage == "Closed Lost" and rng.random() < LOSS_REASON_MISSING_RATE,
            next_step_missing=is_open and rng.random() < NEXT_STEP_MISSING_RATE,
        )

    def _discount(self) -> tuple[float, bool]:
        rng = self.rng
        number = self._discounted
        self._discounted += 1
        if number < len(DISCOUNT_EDGES):
            return DISCOUNT_EDGES[number]
        roll = rng.random()
        if roll < 0.35:
            percent = 0.0
        elif roll < 0.65:
            percent = float(rng.randint(1, 10))
        elif roll < 0.85:
            percent = float(rng.randint(11, 20))
        elif roll < 0.95:
            percent = float(rng.randint(21, 30))
        else:
            percent = float(rng.randint(31, 45))
        return percent, rng.random() < APPROVED_RATE

    def _close_date(self, closed: bool, recent: bool = False) -> date:
        """Closed deals closed in the past year (``recent``: the last ten days); open ones are expected
        within four months."""
        rng = self.rng
        if closed and recent:
            return (self.anchor - timedelta(days=rng.randint(1, 10))).date()
        if closed:
            return (self.anchor - timedelta(days=rng.randint(1, 330))).date()
        return (self.anchor + timedelta(days=rng.randint(5, 120))).date()

    # ---------------------------------------------------------------------------- paths
    def _dwell(self, stage: str) -> int:
        low, high = EXPECTED_DAYS[stage]
        return _days(self.rng, max(low, 0.1), high - 0.25)

    def _current_dwell(self, stage: str, stale: bool) -> int:
        high = EXPECTED_DAYS[stage][1]
        return _days(self.rng, high + 2, high + 45) if stale else _days(self.rng, 0.05, high - 1.5)

    def _sop_deal(self, pipeline: str | None, stage: str, features: Features, employees: int) -> DealPlan:
        rng = self.rng
        closed = stage in ("Closed Won", "Closed Lost")
        if features.reopen:
            visited = [*OPEN_STAGES, "Closed Lost", "Negotiation"]
        elif stage == "Closed Lost":
            lost_from = features.lost_from or "Prospecting"
            visited = [*OPEN_STAGES[:OPEN_STAGES.index(lost_from) + 1], "Closed Lost"]
        else:
            visited = list(STAGES[:STAGES.index(stage) + 1])
        skipped: tuple[str, ...] = ()
        if features.skip and not features.reopen and stage != "Closed Lost":
            candidates = [s for s in visited[1:-1] if s in OPEN_STAGES]
            if candidates:
                gone = rng.choice(candidates)
                visited.remove(gone)
                skipped = (gone,)
        close = self._close_date(closed, features.recent)
        times = [0] * len(visited)
        if closed:
            times[-1] = ms_of_date(close) + _hours(rng, 8, 18)
        else:
            times[-1] = self.now - self._current_dwell(stage, features.stale)
        for i in range(len(visited) - 2, -1, -1):
            if features.reopen and visited[i] == "Closed Lost":
                gap = _days(rng, 5, 40)  # lost, then won back weeks later
            else:
                gap = self._dwell(visited[i])
            times[i] = times[i + 1] - gap
        discount: float | None = None
        approved = False
        if stage in ("Negotiation", "Closed Won"):
            discount, approved = self._discount()
        final = amount_for(rng, employees)
        initial = final if rng.random() < 0.4 else float(round(final * rng.uniform(0.7, 1.25), -2))
        steps = self._steps(visited, times, initial, final, close, closed)
        return DealPlan(self.crm, pipeline, stage, features, steps, skipped, discount, approved,
                        steps[-1].amount or final, steps[-1].close)

    def _steps(self, visited: Sequence[str], times: Sequence[int], initial: float, final: float,
               close: date, closed: bool) -> list[Step]:
        """Amount and close date as of each move: the amount is revised once the deal reaches
        Proposal or later; the expected close date slips before it is met (or the deal closes)."""
        rng = self.rng
        late = {"Proposal", "Negotiation", "Closed Won"}
        revised = next((i for i, s in enumerate(visited) if s in late), len(visited))
        slip = 0 if rng.random() < 0.5 else rng.randint(7, 30)
        # the earlier expectation: after the move that revised it (or the last open move), else none
        moved = times[revised] if revised < len(visited) and not closed else times[max(len(times) - 2, 0)]
        estimate = max(close - timedelta(days=slip), date_of(moved) + timedelta(days=7))
        if estimate >= close:
            estimate = close
        steps = []
        lost_at = visited.index("Closed Lost") if "Closed Lost" in visited else None
        for i, (stage, at) in enumerate(zip(visited, times, strict=True)):
            amount = final if i >= revised else initial
            if closed:
                day = close if i == len(visited) - 1 else estimate
            elif lost_at is not None and i <= lost_at:  # reopened: the first life of the deal
                lost_day = date_of(times[lost_at])
                day = lost_day if i == lost_at else lost_day + timedelta(days=slip // 2 + 3)
            else:
                day = close if i >= revised or revised == len(visited) else estimate
            steps.append(Step(stage, at, amount, day))
        return steps

    def _renewal(self, stage: str, employees: int) -> DealPlan:
        rng = self.rng
        closed = stage in RENEWAL_STAGES[2:]
        if stage == "Churned" and rng.random() < 0.3:
            visited = [RENEWAL_STAGES[0], stage]
        else:
            visited = list(_RENEWAL_OPEN[:_RENEWAL_OPEN.index(stage) + 1]) if not closed else [*_RENEWAL_OPEN, stage]
        close = self._close_date(closed)
        times = [0] * len(visited)
        times[-1] = ms_of_date(close) + _hours(rng, 8, 18) if closed else self.now - _days(rng, 1, 30)
        for i in range(len(visited) - 2, -1, -1):
            times[i] = times[i + 1] - (_days(rng, 14, 45) if visited[i] == RENEWAL_STAGES[0] else _days(rng, 7, 30))
        amount = amount_for(rng, employees)
        steps = [Step(s, at, amount, close) for s, at in zip(visited, times, strict=True)]
        features = Features(next_step_missing=not closed and rng.random() < NEXT_STEP_MISSING_RATE)
        return DealPlan(self.crm, RENEWALS, stage, features, steps, (), None, False, amount, close)

    # --------------------------------------------------------------------------- values
    def values(self, plan: DealPlan, manager: str, csm_id: str, csm_name: str) -> dict[str, Any]:
        """The deal's field values, by Salesforce field name (``DEAL_FIELDS``; HubSpot renames them).

        Args:
            plan: the deal.
            manager: the owner's sales manager's name (a Sales Manager approval).
            csm_id: the CSM as this CRM names a user (Salesforce User id, HubSpot owner id).
            csm_name: the CSM's name (the onboarding owner).
        """
        rng = self.rng
        stage, features = plan.stage, plan.features
        values: dict[str, Any] = dict.fromkeys(DEAL_FIELDS)
        if plan.pipeline == RENEWALS:
            if stage == "Churned":
                values[LOSS_REASON[0]] = rng.choice(_CHURN_REASONS)
            elif stage in _RENEWAL_OPEN and not features.next_step_missing:
                values[NEXT_STEP[0]] = rng.choice(_NEXT_STEPS[stage])
            return values
        owed = _owed_stages(plan)
        needed = {c for s in owed for c in EXIT[s]}
        met = {c for c in CRITERIA if c in needed or rng.random() < 0.15}  # beyond the gate: work ahead
        if features.gate_miss and owed:
            newest = [c for c in EXIT[owed[-1]] if c in met]
            pool = newest if newest and (rng.random() < 0.75 or features.miss_newest) else sorted(needed & met)
            met -= set(rng.sample(pool, min(len(pool), rng.choice((1, 1, 2)))))
        for skipped in plan.skipped:
            dropped = [c for c in EXIT[skipped] if rng.random() < 0.7] or [rng.choice(EXIT[skipped])]
            met -= set(dropped)
        for criterion, (sf_field, _) in CRITERIA.items():
            values[sf_field] = criterion in met
        values["Pain_Points__c"] = "; ".join(rng.sample(_PAINS, 2)) if "pain_points" in met else None
        values["Decision_Date__c"] = ((plan.close - timedelta(days=rng.randint(3, 20))).isoformat()
                                      if "decision_date" in met else None)
        if plan.discount is not None:
            values[DISCOUNT[0]] = plan.discount
            title = approver_for(plan.discount)
            if title is not None and plan.approved:
                values[APPROVED_BY[0]] = f"{_APPROVER_NAMES.get(title, manager)} ({title})"
        if stage in OPEN_STAGES and not features.next_step_missing:
            values[NEXT_STEP[0]] = rng.choice(_NEXT_STEPS[stage])
        if stage == "Closed Lost" and not features.loss_reason_missing:
            values[LOSS_REASON[0]] = rng.choice(_LOSS_REASONS)
        if stage == "Closed Won":
            self._handoff(plan, values, csm_id, csm_name)
        return values

    def _handoff(self, plan: DealPlan, values: dict[str, Any], csm_id: str, csm_name: str) -> None:
        rng = self.rng
        close = plan.close
        values["Handoff_CSM__c"] = csm_id
        values["Success_Criteria__c"] = rng.choice(_SUCCESS)
        values["Go_Live_Date__c"] = (close + timedelta(days=rng.randint(14, 60))).isoformat()
        values["Contract_Term_Months__c"] = float(rng.choice((12, 12, 24, 36)))
        values["Key_Stakeholders__c"] = rng.choice(_STAKEHOLDERS)
        values["Risk_Factors__c"] = "None identified" if rng.random() < 0.4 else rng.choice(_RISKS)
        if plan.features.form_incomplete:
            # the contract value (the amount) is never the one left out: it drives the forecast
            form = [sf for name, (sf, _) in HANDOFF_FORM.items() if name != "contract_value"]
            for sf_field in rng.sample(form, rng.choice((1, 1, 2))):
                values[sf_field] = None
        values["Payment_State__c"] = rng.choice(PAYMENT_STATES)
        values["Contract_State__c"] = rng.choice(CONTRACT_STATES[2:])
        values["Kickoff_Date__c"] = (close + timedelta(days=rng.randint(1, 5))).isoformat()
        values["Onboarding_Owner__c"] = csm_name
        values["Launch_Blockers__c"] = "None" if rng.random() < 0.6 else rng.choice(_BLOCKERS)
        if plan.features.carry_over_incomplete:
            for sf_field, _ in rng.sample(list(CARRY_OVER.values()), rng.choice((1, 2))):
                values[sf_field] = None


def _owed_stages(plan: DealPlan) -> list[str]:
    """The open SOP stages whose gate the deal has passed (all before its current stage)."""
    if plan.stage == "Closed Lost":  # lost along the way: the stages before the one it was lost from
        lost_from = plan.features.lost_from or "Prospecting"
        return list(OPEN_STAGES[:OPEN_STAGES.index(lost_from)])
    return list(OPEN_STAGES[:STAGES.index(plan.stage)]) if plan.stage != "Closed Won" else list(OPEN_STAGES)


def amount_for(rng: random.Random, employees: int) -> float:
    """A deal size that grows with the customer's size."""
    base = 6_000 if employees < 50 else 25_000 if employees < 1000 else 90_000
    return float(round(base * rng.uniform(0.5, 4.0), -2))


def opportunity_name(rng: random.Random, company: str, renewal: bool = False) -> str:
    """"Globex Corporation - Platform" style names."""
    return f"{company} - {'Renewal' if renewal else rng.choice(_PRODUCTS)}"


def to_hubspot_props(values: Mapping[str, Any], as_string: Callable[[object], str | None]) -> dict[str, str | None]:
    """The deal's HubSpot properties from the Salesforce-named values (``DEAL_FIELDS``)."""
    return {prop: as_string(values.get(sf_field)) for sf_field, prop in DEAL_FIELDS.items()}


# ------------------------------------------------------------------------------ assessment
def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == "false"


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Assessment:
    """What is true of one finished deal record (see ``GroundTruth.deals``)."""

    gate_misses: dict[str, list[str]]
    discount: float | None
    approval: str | None
    approved: bool
    form_missing: list[str]
    carry_over_missing: list[str]
    loss_reason_missing: bool
    next_step_missing: bool


def assess(crm: str, stage: str, renewal: bool, fields: Mapping[str, Any]) -> Assessment:
    """Read a finished deal record: gate misses, approval, handoff form, loss reason, next step.

    Args:
        crm: "salesforce" (``fields`` by Salesforce field name) or "hubspot" (by property name).
        stage: the deal's stage (an SOP name, or a Renewals stage label).
        renewal: True for a deal of the Renewals pipeline (no SOP criteria, no handoff form).
        fields: the record's field values.
    """
    column = 0 if crm == "salesforce" else 1
    gate_misses: dict[str, list[str]] = {}
    form_missing: list[str] = []
    carry_missing: list[str] = []
    if not renewal and stage in STAGES and stage != "Closed Lost":
        for passed in OPEN_STAGES[:STAGES.index(stage)]:
            missing = [c for c in EXIT[passed] if _empty(fields.get(CRITERIA[c][column]))]
            if missing:
                gate_misses[passed] = missing
    if not renewal and stage == "Closed Won":
        form_missing = [name for name, names in HANDOFF_FORM.items() if _empty(fields.get(names[column]))]
        carry_missing = [name for name, names in CARRY_OVER.items() if _empty(fields.get(names[column]))]
    discount = _number(fields.get(DISCOUNT[column]))
    lost = stage in ("Closed Lost", "Churned")
    return Assessment(
        gate_misses=gate_misses,
        discount=discount,
        approval=None if lost else approver_for(discount),
        approved=not _empty(fields.get(APPROVED_BY[column])),
        form_missing=form_missing,
        carry_over_missing=carry_missing,
        loss_reason_missing=lost and _empty(fields.get(LOSS_REASON[column])),
        next_step_missing=(stage in OPEN_STAGES or stage in _RENEWAL_OPEN) and _empty(fields.get(NEXT_STEP[column])),
    )


def late_quarter_changes(steps: Sequence[Step]) -> list[tuple[str, datetime]]:
    """Amount and close-date changes (not the first values) made in the last ``LATE_QUARTER_DAYS``
    days of a calendar quarter, as (canonical field, when)."""
    found = []
    for before, after in pairwise(steps):
        day = date_of(after.at)
        if (quarter_end(day) - day).days >= LATE_QUARTER_DAYS:
            continue
        moment = datetime.fromtimestamp(after.at / 1000, UTC)
        if after.amount != before.amount:
            found.append(("amount", moment))
        if after.close != before.close:
            found.append(("close_date", moment))
    return found


#: What an opportunity in each stage must show (the old single list per stage, kept for
#: ``GroundTruth.stage_violations``): the exit criteria of every earlier open stage; Closed Won
#: also the discount approval and the handoff form.
STAGE_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    stage: tuple(c for s in OPEN_STAGES[:STAGES.index(stage)] for c in EXIT[s]) for stage in OPEN_STAGES
}
STAGE_REQUIREMENTS["Closed Won"] = (
    *(c for s in OPEN_STAGES for c in EXIT[s]), "discount_approval", *HANDOFF_FORM
)
STAGE_REQUIREMENTS["Closed Lost"] = ()


def violations(found: Assessment, stage: str) -> list[str]:
    """The requirements of ``STAGE_REQUIREMENTS[stage]`` an assessed deal breaks (empty when none)."""
    broken = [c for misses in found.gate_misses.values() for c in misses]
    if stage == "Closed Won":
        if found.approval is not None and not found.approved:
            broken.append("discount_approval")
        broken += found.form_missing
    return broken
