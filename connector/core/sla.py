"""SLA timers: when a new assignment is due, reminded and escalated.

Seed 002 "Response Time SLAs" (Hot 5 min, Warm 1 h, Qualified 24 h, Cold 48 h) and
seed 001 items 37/49 (reminder at 50%, escalation at 100% up the hierarchy).
Times are calendar minutes from the assignment time passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from connector.core.models import SlaDecision, trusted
from connector.core.rules import SlaPolicy


def _after(start: datetime, minutes: int, percent: int) -> datetime:
    # Whole seconds: 50% of 5 minutes is exactly 150 s.
    return start + timedelta(seconds=minutes * 60 * percent // 100)


def sla_for(
    tier: str,
    assigned_at: datetime,
    policy: SlaPolicy,
    escalation_chain: Sequence[str] = (),
) -> SlaDecision | None:
    """Return the SLA timers for an assignment, or ``None`` for a tier without SLA.

    Args:
        tier: The routing tier (``Hot``, ``Warm``...). Tiers not in the policy, such as
            ``Nurture``, have no sales SLA.
        assigned_at: When the lead was assigned (timezone-aware).
        policy: The SLA policy.
        escalation_chain: Who is told on breach, in order (manager, then director).

    Raises:
        ValueError: if ``assigned_at`` is naive.
    """
    if assigned_at.tzinfo is None or assigned_at.utcoffset() is None:
        raise ValueError("assigned_at must be timezone-aware (UTC recommended)")
    found = policy.tier(tier)
    if found is None:
        return None
    minutes = found.response_minutes
    chain = tuple(escalation_chain)
    if type(assigned_at) is not datetime or not all(type(email) is str for email in chain):
        # Not the plain values the core passes (a datetime subclass, a chain of other
        # things): validate them as always.
        return SlaDecision(
            tier=found.name,
            response_minutes=minutes,
            assigned_at=assigned_at,
            due_at=_after(assigned_at, minutes, 100),
            reminder_at=_after(assigned_at, minutes, found.reminder_percent),
            escalate_at=_after(assigned_at, minutes, found.escalation_percent),
            escalation_chain=chain,
            task_priority=found.task_priority,
        )
    # An aware datetime, times after it, a tuple of str and the validated tier's values.
    return trusted(SlaDecision, {
        "tier": found.name,
        "response_minutes": minutes,
        "assigned_at": assigned_at,
        "due_at": _after(assigned_at, minutes, 100),
        "reminder_at": _after(assigned_at, minutes, found.reminder_percent),
        "escalate_at": _after(assigned_at, minutes, found.escalation_percent),
        "escalation_chain": chain,
        "task_priority": found.task_priority,
    }, _SLA_FIELDS)


_SLA_FIELDS = frozenset({"tier", "response_minutes", "assigned_at", "due_at", "reminder_at", "escalate_at",
                         "escalation_chain", "task_priority"})
