"""Stage gates, movement policies and pipeline hygiene for one deal: ``evaluate_deal``.

Seed 002 "Sales Stages & Exit Criteria": a deal in a stage has passed the gate of every
earlier open stage, so it must show their exit criteria. A broken gate is flagged (a task to
the owner listing exactly what is missing, the gate-status field, the manager told after the
grace period) or enforced (the stage set back to the first gate the deal has not passed, the
owner told why). Skipping stages, moving backwards and reopening closed deals are policies of
their own. Hygiene: close date in the past, longer in the stage than the SOP's duration, no
next step, amount or close date changed late in the quarter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from connector.core.governance.approvals import approvals_needed
from connector.core.governance.models import (
    ApprovalRequest,
    Deal,
    DealGovernance,
    FieldChange,
    GateStatus,
    GateViolation,
    GovernanceFinding,
    StageChange,
    StageReset,
    TaskAssignee,
    TaskSpec,
    filled,
)
from connector.core.governance.rules import Criterion, Pipeline, StageDef, StageRules

if TYPE_CHECKING:
    from connector.core.rules import Rules

History = Sequence[StageChange | FieldChange]
LATE_QUARTER_FIELDS = ("amount", "close_date")


def criterion_met(deal: Deal, criterion: Criterion, stages: StageRules) -> bool:
    """Whether ``deal`` meets one exit criterion (a framework: every one of its fields filled)."""
    if criterion.field is not None:
        return filled(deal.value(criterion.field))
    fields = stages.frameworks.get(criterion.framework or "", [])
    return bool(fields) and all(filled(deal.value(f)) for f in fields)


def missing_criteria(deal: Deal, stage: StageDef, stages: StageRules) -> list[Criterion]:
    """The exit criteria of ``stage`` that ``deal`` does not meet, in the order the rules list them."""
    return [c for c in stage.exit_criteria if not criterion_met(deal, c, stages)]


def quarter_end(day: date, fiscal_year_start_month: int = 1) -> date:
    """The last day of the (fiscal) quarter ``day`` is in."""
    offset = (day.month - fiscal_year_start_month) % 3
    start_month0 = day.month - 1 - offset
    year = day.year + start_month0 // 12
    end_month0 = start_month0 % 12 + 3
    next_start = date(year + end_month0 // 12, end_month0 % 12 + 1, 1)
    return next_start - timedelta(days=1)


def evaluate_deal(deal: Deal, history: History, rules: Rules, now: datetime) -> DealGovernance:
    """Gate violations, movement findings, hygiene findings and approvals of one deal.

    Args:
        deal: The deal as its mapping reads it.
        history: Its stage changes and amount/close-date changes, in any order (sorted by time here).
        rules: The rules; ``rules.stages``, ``rules.approvals`` and ``rules.routing`` are read.
        now: An aware datetime: task due dates and the grace period count from it.

    Returns:
        The decisions; nothing is written anywhere.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    stages: StageRules = rules.stages
    found = stages.pipeline_for(deal.pipeline)
    if found is None:
        known = ", ".join(f"{k} ({', '.join(p.ids) or k})" for k, p in stages.pipelines.items())
        return _unknown(deal, "unknown_pipeline", f"deal {deal.label} is in pipeline '{deal.pipeline}', which "
                        f"no pipeline of stages.yaml names (known: {known})", None)
    key, pipeline = found
    index = pipeline.index_of(deal.stage)
    if index is None:
        names = ", ".join(s.name for s in pipeline.stages)
        return _unknown(deal, "unknown_stage", f"deal {deal.label} is in stage '{deal.stage}', which pipeline "
                        f"'{key}' of stages.yaml does not have (stages: {names})", key)
    changes = sorted((c for c in history if isinstance(c, StageChange)),
                     key=lambda c: (c.at, c.from_stage or "", c.to_stage))
    current = pipeline.stages[index]
    chain = rules.routing.escalation_chain(deal.owner_email) if deal.owner_email else ()
    ctx = _Context(deal, stages, pipeline, index, changes, now, chain[0] if chain else None)
    violations = ctx.gate_violations()
    requests = approvals_needed(deal, rules.approvals, rules.routing, now) if current.outcome != "lost" else ()
    approval_gates = ctx.approval_gates(requests, rules)
    findings: list[GovernanceFinding] = []
    targets = [pipeline.index_of(v.stage) for v in violations if v.policy == "enforce"]
    targets += [gate - 1 for gate, policy, _ in approval_gates if policy == "enforce"]
    movement, move_target = ctx.movement()
    findings += movement
    reset_to: int | None = None
    if move_target is not None and pipeline.stages[move_target].outcome != "open":
        reset_to = move_target  # an enforced reopen: back to the closed stage, gates no longer apply
    else:
        candidates = [t for t in [*targets, move_target] if t is not None]
        reset_to = min(candidates) if candidates else None
    reset = ctx.reset(reset_to, violations) if reset_to is not None else None
    flagged = [v for v in violations if v.policy == "flag"
               and (reset_to is None or (pipeline.index_of(v.stage) or 0) < reset_to)]
    findings += [ctx.flag(v) for v in flagged] + ctx.escalations(flagged)
    approval_flags = [r for gate, policy, r in approval_gates if policy == "flag"
                      and (reset_to is None or gate <= reset_to)]
    findings += [ctx.approval_flag(r) for r in approval_flags]
    if reset is not None:
        findings.append(ctx.reset_finding(reset))
    if current.outcome == "open":  # a deal set back is in a new stage now: not overdue there
        findings += ctx.hygiene(current, stale=reset is None)
    findings += ctx.late_quarter(history)
    status: GateStatus = ("reset" if reset is not None else "flagged" if flagged or approval_flags
                          else "awaiting_approval" if requests else "passed")
    return DealGovernance(
        ref=deal.ref, pipeline=key, stage=current.name, gate_status=status, violations=tuple(violations),
        findings=tuple(findings), reset=reset, approvals=tuple(requests),
        counts=dict(Counter(f.code for f in findings)))


def _unknown(deal: Deal, code: str, message: str, pipeline: str | None) -> DealGovernance:
    finding = GovernanceFinding(code, deal.ref, message, f"{deal.ref}:{code}:{deal.pipeline}:{deal.stage}")
    return DealGovernance(deal.ref, pipeline, None, "flagged", findings=(finding,), counts={code: 1})


class _Context:
    """One evaluation's inputs, and the findings built from them."""

    def __init__(self, deal: Deal, stages: StageRules, pipeline: Pipeline, index: int,
                 changes: list[StageChange], now: datetime, manager_email: str | None) -> None:
        self.deal, self.stages, self.pipeline, self.index = deal, stages, pipeline, index
        self.changes, self.now, self.manager_email = changes, now, manager_email
        self.policies = stages.policies
        self.due = now + timedelta(days=stages.policies.task_due_days)

    def _finding(self, code: str, message: str, about: str, fields: tuple[str, ...] = (),
                 subject: str | None = None, assignee: TaskAssignee = "owner",
                 priority: Literal["High", "Normal", "Low"] = "Normal") -> GovernanceFinding:
        task = None
        if subject is not None:
            email = self.manager_email if assignee == "owner_manager" else self.deal.owner_email
            task = TaskSpec(subject, message, self.due, assignee, email, priority)
        return GovernanceFinding(code, self.deal.ref, message, f"{self.deal.ref}:{code}:{about}", fields, task)

    def gate_violations(self) -> list[GateViolation]:
        current = self.pipeline.stages[self.index]
        if current.outcome == "lost":
            return []  # a lost deal may have been lost at any stage: no gate is owed
        violations = []
        for stage in self.pipeline.stages[:self.index]:
            if stage.outcome != "open":
                continue
            missing = missing_criteria(self.deal, stage, self.stages)
            if missing:
                policy = stage.gate or self.policies.gate
                if current.outcome != "open":
                    policy = "flag"  # a won deal is booked: a stage gate flags what it skipped, never reopens it
                    # (an approval matrix's own gate may still enforce: that is what it is for)
                violations.append(GateViolation(stage.name, tuple(c.name for c in missing),
                                                tuple(c.label for c in missing), policy))
        return violations

    def approval_gates(self, requests: Sequence[ApprovalRequest], rules: Rules) -> list[tuple[int, str, ApprovalRequest]]:
        """(gate stage index, policy, request) for each pending approval the deal is past the gate of."""
        gates: list[tuple[int, str, ApprovalRequest]] = []
        for request in requests:
            matrix = rules.approvals.matrices[request.matrix]
            gate = self.pipeline.index_of(matrix.required_before)
            if gate is not None and self.index >= gate and self.pipeline.stages[self.index].outcome != "lost":
                gates.append((gate, matrix.policy, request))
        return gates

    def left_at(self, stage: str) -> datetime | None:
        """When the deal first moved past ``stage`` (None when the history does not say)."""
        position = self.pipeline.index_of(stage)
        for change in self.changes:
            before, after = self.pipeline.index_of(change.from_stage), self.pipeline.index_of(change.to_stage)
            if position is not None and after is not None and after > position and (before is None or before <= position):
                return change.at
        return None

    def entered_at(self) -> datetime | None:
        """When the deal entered its current stage."""
        if self.deal.stage_entered_at is not None:
            return self.deal.stage_entered_at
        into = [c.at for c in self.changes if self.pipeline.index_of(c.to_stage) == self.index]
        return into[-1] if into else self.deal.created_at

    def flag(self, violation: GateViolation) -> GovernanceFinding:
        missing = ", ".join(f"{label} ({name})" for label, name in zip(violation.labels, violation.missing, strict=True))
        message = (f"deal {self.deal.label} is past stage {violation.stage} without its exit criteria: "
                   f"missing {missing}")
        return self._finding("gate_flagged", message, violation.stage, violation.missing,
                             f"Complete the {violation.stage} exit criteria: {', '.join(violation.labels)}")

    def escalations(self, flagged: list[GateViolation]) -> list[GovernanceFinding]:
        found = []
        grace = timedelta(days=self.policies.grace_days)
        for violation in flagged:
            since = self.left_at(violation.stage) or self.entered_at()
            if since is None or self.now - since < grace:
                continue
            message = (f"deal {self.deal.label} (owner {self.deal.owner_email or self.deal.owner_id or 'unknown'}) "
                       f"has been past stage {violation.stage} since {since.date().isoformat()} without: "
                       f"{', '.join(violation.labels)} ({self.policies.grace_days}-day grace period over)")
            found.append(self._finding("gate_escalated", message, violation.stage, violation.missing,
                                       f"Deal past {violation.stage} without exit criteria", "owner_manager"))
        return found

    def approval_flag(self, request: ApprovalRequest) -> GovernanceFinding:
        message = f"{request.reason}, and it is already in stage {self.pipeline.stages[self.index].name}"
        return self._finding("approval_gate_flagged", message, request.matrix, (request.matrix,),
                             f"Record the {request.approver_title} approval before closing")

    def reset(self, target: int, violations: list[GateViolation]) -> StageReset:
        current, stage = self.pipeline.stages[self.index], self.pipeline.stages[target]
        value = stage.name
        if self.deal.stage != current.name and self.deal.stage in current.ids:
            position = current.ids.index(self.deal.stage)
            value = stage.ids[min(position, len(stage.ids) - 1)] if stage.ids else stage.name
        reasons = [f"{v.stage}: missing {', '.join(v.labels)}" for v in violations
                   if v.policy == "enforce" and (self.pipeline.index_of(v.stage) or 0) >= target]
        reason = "; ".join(reasons) or f"the move to {current.name} is not allowed (stages.yaml policies)"
        return StageReset(current.name, stage.name, value, reason)

    def reset_finding(self, reset: StageReset) -> GovernanceFinding:
        message = f"deal {self.deal.label} set back from {reset.from_stage} to {reset.to_stage}: {reset.reason}"
        return self._finding("gate_enforced", message, f"{reset.from_stage}>{reset.to_stage}", (),
                             f"Stage set back to {reset.to_stage}", priority="High")

    def movement(self) -> tuple[list[GovernanceFinding], int | None]:
        """Findings for skipped stages, backward moves and reopened deals; the enforced target, if any."""
        found: list[GovernanceFinding] = []
        target: int | None = None
        stages = self.pipeline.stages
        for n, change in enumerate(self.changes):
            before, after = self.pipeline.index_of(change.from_stage), self.pipeline.index_of(change.to_stage)
            if before is None or after is None:
                continue
            latest = n == len(self.changes) - 1 and after == self.index
            when = change.at.isoformat()
            if stages[before].outcome != "open" and stages[after].outcome == "open":
                if self.policies.reopen != "allow":
                    message = (f"deal {self.deal.label} was reopened from {stages[before].name} to "
                               f"{stages[after].name} on {change.at.date().isoformat()} by {change.by or 'unknown'}")
                    found.append(self._finding("deal_reopened", message, when, (), "Closed deal reopened: confirm"))
                    if self.policies.reopen == "enforce" and latest:
                        target = before
                continue
            if stages[before].outcome != "open":
                continue
            skipped = [s.name for s in stages[before + 1:after] if s.outcome == "open"]
            if skipped and stages[after].outcome != "lost" and self.policies.skipping != "allow":
                message = (f"deal {self.deal.label} skipped {', '.join(skipped)}: moved from {stages[before].name} to "
                           f"{stages[after].name} on {change.at.date().isoformat()} by {change.by or 'unknown'}")
                found.append(self._finding("stage_skipped", message, when, (), f"Stage skipped: {', '.join(skipped)}"))
                if self.policies.skipping == "enforce" and latest:
                    target = before + 1
            elif after < before and stages[after].outcome == "open" and self.policies.backwards == "flag":
                message = (f"deal {self.deal.label} moved back from {stages[before].name} to {stages[after].name} "
                           f"on {change.at.date().isoformat()} by {change.by or 'unknown'}")
                found.append(self._finding("stage_backwards", message, when, (), "Deal moved backwards: confirm"))
        return found, target

    def hygiene(self, current: StageDef, *, stale: bool = True) -> list[GovernanceFinding]:
        rules, deal, today = self.stages.hygiene, self.deal, self.now.date()
        found = []
        if rules.past_close_date and deal.close_date is not None and deal.close_date < today:
            found.append(self._finding(
                "close_date_past", f"deal {deal.label} is open with close date {deal.close_date.isoformat()}, "
                f"before today ({today.isoformat()})", deal.close_date.isoformat(), ("close_date",),
                "Update the close date or close the deal"))
        entered = self.entered_at()
        if stale and rules.stale_stage and current.expected_days is not None and entered is not None:
            days = (self.now - entered).days
            if days > current.expected_days.max:
                found.append(self._finding(
                    "stage_overdue", f"deal {deal.label} has been in {current.name} for {days} days; the SOP "
                    f"expects {current.expected_days.min}-{current.expected_days.max} days",
                    f"{current.name}:{entered.isoformat()}", ("stage",), f"Move the deal on from {current.name}"))
        if rules.missing_next_step and not filled(deal.next_step):
            found.append(self._finding("next_step_missing", f"deal {deal.label} in {current.name} has no next step",
                                       current.name, ("next_step",), "Add the next step"))
        return found

    def late_quarter(self, history: History) -> list[GovernanceFinding]:
        rules = self.stages.hygiene
        if rules.late_quarter_days == 0:
            return []
        found = []
        for change in sorted((c for c in history if isinstance(c, FieldChange) and c.field in LATE_QUARTER_FIELDS),
                             key=lambda c: (c.at, c.field)):
            end = quarter_end(change.at.date(), rules.fiscal_year_start_month)
            left = (end - change.at.date()).days
            if left < rules.late_quarter_days:
                message = (f"deal {self.deal.label}: {change.field} changed from {change.old} to {change.new} on "
                           f"{change.at.date().isoformat()} by {change.by or 'unknown'}, {left} day(s) before the "
                           f"quarter ends ({end.isoformat()})")
                found.append(self._finding("late_quarter_change", message, f"{change.field}:{change.at.isoformat()}",
                                           (change.field,), f"Confirm the late {change.field} change"))
        return found
