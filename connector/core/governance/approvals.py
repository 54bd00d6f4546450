"""Approval matrices: a measured value -> the approver, resolved to a person of the team roster.

Seed 002 "Negotiation" (discount: 0-10 % Sales Rep, 11-20 % Sales Manager, 21-30 % VP Sales,
> 30 % CEO), seed 002 "Campaign Planning" (budget) and seed 001 7.3.1 (discount approval
routing). A deal that needs an approval gets an approval request for the approver and cannot
pass the matrix's ``required_before`` gate (Closed Won) until the approval is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from connector.core.governance.models import ApprovalRecord, ApprovalRequest, Deal, TaskSpec
from connector.core.governance.rules import ApprovalMatrix, ApprovalRules, MatrixRow

if TYPE_CHECKING:
    from connector.core.rules import RoutingRules


@dataclass(frozen=True)
class ResolvedApprover:
    """An approver title resolved to a team member (``email`` None when nobody fits: ``reason`` says why)."""

    title: str
    email: str | None
    reason: str
    self_approved: bool = False


def row_for(matrix: ApprovalMatrix, value: float) -> MatrixRow:
    """The row that decides ``value``: the first whose upper bound admits it.

    A value between two rows therefore goes to the stricter (higher) row, and a value under
    the first row to the first; validated matrices end with an unbounded row.
    """
    return next((row for row in matrix.rows if row.admits_upper(value)), matrix.rows[-1])


def approver_for(rules: ApprovalRules, matrix: str, value: float) -> str:
    """The approver title for ``value`` in the matrix called ``matrix``.

    Raises:
        KeyError: naming the known matrices when there is no such matrix.
    """
    try:
        found = rules.matrices[matrix]
    except KeyError:
        raise KeyError(f"no approval matrix '{matrix}' in approvals.yaml (known: {', '.join(rules.matrices)})") from None
    return row_for(found, value).approver


def resolve_approver(rules: ApprovalRules, title: str, owner_email: str | None, routing: RoutingRules) -> ResolvedApprover:
    """Who ``title`` is for a deal owned by ``owner_email``, through routing.yaml's team.

    ``owner``: the owner (self-approved, no approval step). ``manager``: ``levels`` up the
    owner's manager chain (owners outside the roster: routing.yaml's ``escalation_default``).
    ``role``: the first active member with the role in the owner's region, else in any region.
    ``member``: that member, when active.
    """
    approver = rules.approvers[title]
    if approver.kind == "owner":
        return ResolvedApprover(title, owner_email, f"{title}: the deal owner approves", self_approved=True)
    if approver.kind == "manager":
        if owner_email is None:
            return ResolvedApprover(title, None, f"{title}: the deal has no owner in the team, so no manager")
        chain = [e for e in routing.escalation_chain(owner_email) if _active(routing, e)]
        if len(chain) >= approver.levels:
            return ResolvedApprover(title, chain[approver.levels - 1],
                                    f"{title}: {approver.levels} level(s) above {owner_email}")
        return ResolvedApprover(title, None, f"{title}: {owner_email} has no active manager "
                                             f"{approver.levels} level(s) up in routing.yaml")
    if approver.kind == "role":
        assert approver.role is not None
        members = [m for m in routing.members_with_role(approver.role) if m.active]
        owner = routing.member(owner_email) if owner_email else None
        local = [m for m in members if owner is not None and m.region in (owner.region, "global")]
        pool = local or members
        chosen = pool[0] if pool else None
        if chosen is None:
            return ResolvedApprover(title, None, f"{title}: no active team member has role '{approver.role}'")
        return ResolvedApprover(title, chosen.email, f"{title}: role {approver.role}")
    assert approver.email is not None
    if _active(routing, approver.email):
        return ResolvedApprover(title, approver.email, f"{title}: {approver.email}")
    return ResolvedApprover(title, None, f"{title}: {approver.email} is not an active team member")


def _active(routing: RoutingRules, email: str) -> bool:
    member = routing.member(email)
    return member is not None and member.active


def _covers(record: ApprovalRecord, matrix: str, value: float) -> bool:
    return record.matrix == matrix and (record.value is None or record.value >= value)


def approval_recorded(deal: Deal, matrix: str, value: float) -> ApprovalRecord | None:
    """The deal's approval for ``matrix`` that covers ``value`` (recorded for it or a larger value)."""
    return next((r for r in deal.approvals if _covers(r, matrix, value)), None)


def deal_measure(deal: Deal, matrix: ApprovalMatrix) -> float | None:
    """The value a matrix measures on a deal (None when the deal has none, or it is not a number)."""
    value = deal.value(matrix.measure)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def approvals_needed(deal: Deal, rules: ApprovalRules, routing: RoutingRules, now: datetime) -> tuple[ApprovalRequest, ...]:
    """The approvals ``deal`` needs and has not recorded, one per matrix, each with its approver's task.

    Matrices whose measure the deal lacks are skipped; values the owner may approve themselves
    need nothing.
    """
    requests: list[ApprovalRequest] = []
    for key, matrix in rules.matrices.items():
        value = deal_measure(deal, matrix)
        if value is None:
            continue
        title = row_for(matrix, value).approver
        resolved = resolve_approver(rules, title, deal.owner_email, routing)
        if resolved.self_approved or approval_recorded(deal, key, value) is not None:
            continue
        unit = f" {matrix.unit}" if matrix.unit else ""
        reason = (f"deal {deal.label}: {matrix.measure} {value:g}{unit} needs approval by {title} "
                  f"({row_for(matrix, value).describe()})")
        gate = f"; it cannot move to {matrix.required_before} until approved" if matrix.required_before else ""
        task = TaskSpec(
            subject=f"Approve {matrix.measure} {value:g}{unit} on {deal.name or deal.ref.crm_id}",
            description=f"{reason}{gate}. {resolved.reason}."
                        + ("" if resolved.email else " Nobody in routing.yaml fits: RevOps must assign it."),
            due_at=now + timedelta(days=rules.task_due_days), assignee="approver",
            assignee_email=resolved.email, priority="High")
        requests.append(ApprovalRequest(key, value, title, resolved.email, reason, task))
    return tuple(requests)
