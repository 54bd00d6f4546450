"""Handoffs where an owner changes: SDR -> AE, Closed Won -> Customer Success, Closed Lost.

Seed 001 5-7 (SAL qualification, assign the AE owner); seed 002 "Closed Won Actions",
"Closed Lost Actions" and "Customer Handoff SOP" (handoff form 100 % complete, kickoff within
3 days); seed 000 "Handoff Checklist".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connector.core.governance.models import Deal, GovernanceFinding, TaskAssignee, TaskSpec, filled
from connector.core.governance.rules import HandoffRules, HandoffTask, StageRules
from connector.core.models import RecordRef, RoutingState
from connector.core.routing import pick_in_group

if TYPE_CHECKING:
    from connector.core.rules import Rules


@dataclass(frozen=True)
class HandoffDecision:
    """One handoff's outcome.

    ``complete``: the checklist or form is fully filled (the handoff counts / the owner may be
    set); ``missing``: the fields that are not; ``tasks``: the tasks to create; ``carry_over``:
    the values copied for the receiving team; ``findings``: what blocks the handoff.
    """

    ref: RecordRef
    kind: str
    complete: bool
    missing: tuple[str, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    carry_over: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[GovernanceFinding, ...] = ()
    due_at: datetime | None = None
    before_relay: bool = False
    """The transition is older than ``recent_days``: recorded as made before Relay, nothing to do."""
    receiver_email: str | None = None
    """Who takes over (SDR -> AE: the AE)."""
    reason: str | None = None
    """Why the receiver was chosen."""


def _task(spec: HandoffTask, at: datetime, description: str, emails: Mapping[TaskAssignee, str | None]) -> TaskSpec:
    return TaskSpec(spec.subject, description, at + timedelta(days=spec.due_days), spec.assignee,
                    emails.get(spec.assignee))


def _blocked(ref: RecordRef, code: str, message: str, missing: tuple[str, ...], owner: str | None,
             subject: str, now: datetime) -> GovernanceFinding:
    task = TaskSpec(subject, message, now + timedelta(days=1), "owner", owner, "High")
    return GovernanceFinding(code, ref, message, f"{ref}:{code}", missing, task)


def sdr_to_ae(ref: RecordRef, values: Mapping[str, Any], rules: HandoffRules, stages: StageRules,
              sdr_email: str | None, ae_email: str | None, now: datetime) -> HandoffDecision:
    """Whether an SDR may hand ``ref`` to the AE: the checklist and framework fields all filled.

    Complete: the AE owner may be set, and the AE gets a task with the context. Incomplete: a
    finding and a task for the SDR listing exactly what is missing; the owner stays.
    """
    checklist = sdr_checklist(rules, stages)
    missing = tuple(name for name in checklist if not filled(values.get(name)))
    if missing:
        message = f"{ref}: the SDR -> AE handoff checklist is incomplete: missing {', '.join(missing)}"
        return HandoffDecision(ref, "sdr_to_ae", False, missing, findings=(
            _blocked(ref, "handoff_checklist_incomplete", message, missing, sdr_email,
                     "Complete the handoff checklist before the AE takes over", now),))
    context = "; ".join(f"{name}: {values.get(name)}" for name in checklist)
    task = _task(rules.sdr_to_ae.ae_task, now, f"{ref} handed over by {sdr_email or 'the SDR'}. {context}",
                 {"ae_owner": ae_email, "owner": sdr_email})
    return HandoffDecision(ref, "sdr_to_ae", True, tasks=(task,), receiver_email=ae_email)


def sdr_checklist(rules: HandoffRules, stages: StageRules) -> list[str]:
    """The fields the SDR -> AE handoff needs: the checklist, then the framework's fields not in it."""
    checklist = list(rules.sdr_to_ae.checklist)
    if rules.sdr_to_ae.framework is not None:
        checklist += [f for f in stages.frameworks.get(rules.sdr_to_ae.framework, []) if f not in checklist]
    return checklist


def decide_sdr_to_ae(ref: RecordRef, values: Mapping[str, Any], owner_email: str | None, country: str | None,
                     rules: Rules, state: RoutingState, active_owners: Mapping[str, bool],
                     now: datetime) -> tuple[HandoffDecision, RoutingState]:
    """The SDR -> AE handoff of a qualified person: the checklist first, then who the AE is.

    Incomplete: the finding for the SDR (the owner), nobody routed (the rotation does not move).
    Complete: an owner whose roster role is one of ``ae_roles`` is the AE already and keeps it;
    anyone else (an SDR, a queue, a stranger) hands over to the next AE of ``ae_group`` in the
    person's region, walking the group's fallback. ``reason`` says which; the AE task carries the
    checklist's values. Nobody available: complete, ``receiver_email`` None and the owner stays.
    """
    spec = rules.handoffs.sdr_to_ae
    decision = sdr_to_ae(ref, values, rules.handoffs, rules.stages, owner_email, None, now)
    if not decision.complete:
        return decision, state
    owner = (owner_email or "").strip().lower() or None
    member = rules.routing.member(owner) if owner is not None else None
    if member is not None and member.role in spec.ae_roles and member.active \
            and active_owners.get(member.email, True):
        ae: str | None = member.email
        reason = f"the owner {member.email} is an AE already (role {member.role}): keeps it"
    else:
        region = rules.routing.region_for(country)
        group = rules.routing.groups[spec.ae_group]
        pick, state = pick_in_group(spec.ae_group, group, region, rules.routing, state, active_owners)
        ae = pick.email
        who = f"the owner {owner}" if owner is not None else "nobody"
        if ae is None:
            reason = f"{who} hands over, but {group.label} ({spec.ae_group}) has nobody available in region {region}"
        else:
            how = "round robin" if pick.fallback is None else f"fallback {pick.fallback}"
            where = f" ({pick.key}, pick {pick.position})" if pick.key is not None else ""
            reason = f"{who} hands over to {group.label} in region {region}, {how}{where}"
    done = sdr_to_ae(ref, values, rules.handoffs, rules.stages, owner, ae, now)
    return replace(done, reason=reason), state


def closed_won(deal: Deal, won_at: datetime, rules: HandoffRules, cs_owner_email: str | None,
               now: datetime) -> HandoffDecision:
    """Closed Won -> Customer Success: the form 100 % complete or the handoff does not count.

    The kickoff task is due ``kickoff_days`` after ``won_at``; the configured tasks (win
    notification, customer introduction, referral request) follow; ``carry_over`` fields are
    copied. An incomplete form is a finding and a task for the deal owner; the tasks wait.
    """
    spec = rules.closed_won
    missing = tuple(name for name in spec.form_fields if not filled(deal.value(name)))
    carry = {name: deal.value(name) for name in spec.carry_over}
    if missing:
        message = (f"deal {deal.label} is Closed Won but its Customer Success handoff form is incomplete "
                   f"({len(spec.form_fields) - len(missing)}/{len(spec.form_fields)}): missing {', '.join(missing)}")
        return HandoffDecision(deal.ref, "closed_won", False, missing, carry_over=carry, findings=(
            _blocked(deal.ref, "handoff_form_incomplete", message, missing, deal.owner_email,
                     "Complete the Customer Success handoff form", now),))
    emails: dict[TaskAssignee, str | None] = {"owner": deal.owner_email, "cs_owner": cs_owner_email}
    context = f"deal {deal.label}, won {won_at.date().isoformat()}, owner {deal.owner_email or deal.owner_id}"
    kickoff_due = won_at + timedelta(days=spec.kickoff_days)
    carried = "; ".join(f"{name}: {carry[name]}" for name in spec.carry_over if filled(carry.get(name)))
    kickoff_text = f"{context}: kickoff due by {kickoff_due.date().isoformat()}" + (
        f". Carried over: {carried}" if carried else "")
    kickoff = TaskSpec(spec.kickoff_task.subject, kickoff_text,
                       kickoff_due, spec.kickoff_task.assignee, emails.get(spec.kickoff_task.assignee), "High")
    tasks = (kickoff, *(_task(t, won_at, context, emails) for t in spec.tasks))
    return HandoffDecision(deal.ref, "closed_won", True, tasks=tasks, carry_over=carry, due_at=kickoff_due)


def closed_lost(deal: Deal, lost_at: datetime, rules: HandoffRules, now: datetime) -> HandoffDecision:
    """Closed Lost: the reason is required; a loss interview, a follow-up reminder, contacts to nurture.

    Without a reason: a finding and a task for the owner, nothing else yet.
    """
    spec = rules.closed_lost
    if not filled(deal.value(spec.reason_field)):
        message = f"deal {deal.label} is Closed Lost without a {spec.reason_field}"
        return HandoffDecision(deal.ref, "closed_lost", False, (spec.reason_field,), findings=(
            _blocked(deal.ref, "loss_reason_missing", message, (spec.reason_field,), deal.owner_email,
                     "Document the loss reason", now),))
    context = f"deal {deal.label} lost {lost_at.date().isoformat()}: {deal.value(spec.reason_field)}"
    emails: dict[TaskAssignee, str | None] = {"owner": deal.owner_email}
    follow_up = TaskSpec("Follow up on the lost deal", context, lost_at + timedelta(days=spec.follow_up_days),
                         "owner", deal.owner_email)
    return HandoffDecision(deal.ref, "closed_lost", True,
                           tasks=(_task(spec.interview_task, lost_at, context, emails), follow_up),
                           carry_over={"contacts_to_nurture": spec.contacts_to_nurture})
