"""One deal's whole governance decision: gates, approvals and its handoff, with the CS owner routed.

``decide_deal`` joins ``stages.evaluate_deal`` (gates, movement, hygiene, approvals) with the
handoff its stage calls for (Closed Won -> Customer Success, Closed Lost) and the field values
Relay writes back (the gate status, the stage an enforced gate sets back, the CS owner). Pure:
the deal, its history, the rules, the round-robin state and ``now`` in; the decision and the
new state out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from connector.core.governance.handoffs import HandoffDecision, closed_lost, closed_won
from connector.core.governance.models import (
    Deal,
    DealGovernance,
    FieldChange,
    GovernanceFinding,
    StageChange,
    filled,
)
from connector.core.governance.stages import evaluate_deal
from connector.core.models import RoutingState
from connector.core.routing import pick_round_robin

if TYPE_CHECKING:
    from connector.core.rules import Rules

CS_GROUP = "cs"
"""Round-robin group key prefix of the Customer Success owners (``cs:<role>``)."""


@dataclass(frozen=True)
class DealDecision:
    """Everything Relay decided about one deal.

    ``field_updates``: canonical deal fields to write (the gate status, the stage set back, the
    CS owner as an email: the pipeline writes the CRM user's id); ``handoff``: the handoff due now
    (None when the deal's stage calls for none, or it was made before); ``cs_owner_email`` and
    ``cs_reason``: who takes the customer over and why.
    """

    governance: DealGovernance
    handoff: HandoffDecision | None = None
    cs_owner_email: str | None = None
    cs_reason: str | None = None
    transition_at: datetime | None = None
    field_updates: Mapping[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> tuple[GovernanceFinding, ...]:
        """The gate, movement, hygiene and handoff findings, in that order."""
        return self.governance.findings + (self.handoff.findings if self.handoff is not None else ())


def entered_outcome_at(deal: Deal, history: Sequence[StageChange | FieldChange], stage_ids: Sequence[str],
                       now: datetime) -> datetime:
    """When the deal last entered its (closed) stage: the history, else the CRM's stage date, else the close date."""
    ids = {deal.stage, *stage_ids}
    into = sorted(c.at for c in history if isinstance(c, StageChange) and c.to_stage in ids)
    if into:
        return into[-1]
    if deal.stage_entered_at is not None:
        return deal.stage_entered_at
    if deal.close_date is not None:
        return datetime.combine(deal.close_date, time(12), tzinfo=UTC)
    return now


def decide_deal(deal: Deal, history: Sequence[StageChange | FieldChange], rules: Rules, now: datetime,
                state: RoutingState, *, handed_off: frozenset[str] = frozenset(),
                owner_emails: Mapping[str, str] | None = None,
                active_owners: Mapping[str, bool] | None = None) -> tuple[DealDecision, RoutingState]:
    """Decide one deal.

    Args:
        deal: The deal as read, with its recorded approvals.
        history: Its stage and amount/close-date changes.
        rules: The rules (stages, approvals, handoffs, routing).
        now: Aware datetime.
        state: Round-robin positions (the CS owner is routed with them).
        handed_off: The handoff kinds already made for this deal (``closed_won``, ``closed_lost``): not again.
        owner_emails: CRM user id -> email, to read a CS owner the form names by id.
        active_owners: Email -> whether the CRM user is active (absent: active).

    Returns:
        The decision and the new round-robin state.
    """
    governance = evaluate_deal(deal, history, rules, now)
    updates: dict[str, Any] = {}
    if governance.stage is not None:
        updates["relay_gate_status"] = governance.gate_status
    if governance.reset is not None:
        updates["stage"] = governance.reset.to_value
    found = rules.stages.pipeline_for(deal.pipeline)
    if found is None or governance.stage is None or governance.reset is not None:
        return DealDecision(governance, field_updates=updates), state
    key, pipeline = found
    stage = pipeline.stages[pipeline.index_of(governance.stage) or 0]
    spec = rules.handoffs.closed_won
    kind = ("closed_won" if stage.outcome == "won" and (spec.pipelines is None or key in spec.pipelines)
            else "closed_lost" if stage.outcome == "lost" else None)
    if kind is None or kind in handed_off:
        return DealDecision(governance, field_updates=updates), state
    at = entered_outcome_at(deal, history, [*stage.ids, stage.name], now)
    recent = rules.handoffs.recent_days
    if recent is not None and at < now - timedelta(days=recent):
        before = HandoffDecision(deal.ref, kind, complete=True, before_relay=True)
        return DealDecision(governance, before, transition_at=at, field_updates=updates), state
    if kind == "closed_won":
        return _closed_won(deal, governance, at, rules, now, state, updates, owner_emails or {}, active_owners or {})
    handoff = closed_lost(deal, at, rules.handoffs, now)
    return DealDecision(governance, handoff, transition_at=at, field_updates=updates), state


def _closed_won(deal: Deal, governance: DealGovernance, won_at: datetime, rules: Rules, now: datetime,
                state: RoutingState, updates: dict[str, Any], owner_emails: Mapping[str, str],
                active_owners: Mapping[str, bool]) -> tuple[DealDecision, RoutingState]:
    spec = rules.handoffs.closed_won
    named = deal.value(spec.cs_owner_field) if spec.cs_owner_field else None
    others_missing = [f for f in spec.form_fields if f != spec.cs_owner_field and not filled(deal.value(f))]
    cs_email: str | None = None
    reason: str | None = None
    if filled(named):
        text = str(named).strip()
        cs_email = owner_emails.get(text) or (text.lower() if "@" in text else None)
        reason = f"named on the handoff form ({text})"
    elif not others_missing and spec.cs_owner_field:  # the rest is complete: Relay routes the CSM
        members = [m for m in rules.routing.members_with_role(spec.cs_role)
                   if m.active and active_owners.get(m.email, True)]
        if members:
            group = f"{CS_GROUP}:{spec.cs_role}"
            chosen, state = pick_round_robin(group, members, state)
            cs_email = chosen.email
            reason = f"round robin among role {spec.cs_role} ({group}, pick {state.position(group).assigned})"
        else:
            reason = f"no active team member has role {spec.cs_role} in routing.yaml"
    form_deal = deal
    if spec.cs_owner_field and not filled(named):  # Relay fills it: the owner is not asked for it
        form_deal = deal.model_copy(update={"criteria": {**deal.criteria, spec.cs_owner_field: cs_email or "routed"}})
        if cs_email is not None:
            updates[spec.cs_owner_field] = cs_email
    handoff = closed_won(form_deal, won_at, rules.handoffs, cs_email, now)
    if handoff.complete and cs_email is not None and spec.onboarding_owner_field \
            and str(deal.value(spec.onboarding_owner_field) or "").strip().lower() != cs_email:
        updates[spec.onboarding_owner_field] = cs_email
    return DealDecision(governance, handoff, cs_email, reason, won_at, updates), state
