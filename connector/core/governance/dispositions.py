"""Lead and contact dispositions, recycling and nurture tracks.

Seed 002 "Lead Disposition": Qualified -> create the opportunity, Not Ready -> return to
marketing nurture, Bad Fit -> disqualify, No Response -> recycle after 90 days, Do Not Contact ->
suppress everywhere; a disposition is expected within 24 hours of contact. Recycled people come
back on their date and are routed again, never to the owner who returned them. Seed 002
"Lead Nurturing": the nurture track by score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.core.governance.models import GovernanceFinding, TaskSpec, filled
from connector.core.governance.rules import DispositionRules, NurtureTrack
from connector.core.models import RecordRef


@dataclass(frozen=True)
class DispositionDecision:
    """What a disposition does to one person.

    ``recycle_at``: when a recycled person is routed again; ``excluded_owner``: who returned it
    (never routed to them again). ``suppress``: never routed, enriched or sent to outreach again.
    """

    ref: RecordRef
    disposition: str
    action: str
    status: str | None
    recycle_at: datetime | None = None
    excluded_owner: str | None = None
    suppress: bool = False
    nurture: bool = False


def disposition_decision(ref: RecordRef, value: str, rules: DispositionRules, decided_at: datetime,
                         owner_email: str | None) -> DispositionDecision:
    """The actions of the disposition ``value`` a rep set at ``decided_at`` on a person they own.

    Raises:
        ValueError: naming the record, the value and the known dispositions when ``value`` is not one.
    """
    disposition = rules.dispositions.get(value.strip())
    if disposition is None:
        raise ValueError(f"{ref}: disposition '{value}' is not one of dispositions.yaml "
                         f"({', '.join(rules.dispositions)})")
    recycle_at = None
    if disposition.action == "recycle" and disposition.recycle_days is not None:
        recycle_at = decided_at + timedelta(days=disposition.recycle_days)
    return DispositionDecision(
        ref, value.strip(), disposition.action, disposition.status, recycle_at,
        owner_email if disposition.action == "recycle" else None,
        suppress=disposition.action == "suppress", nurture=disposition.action == "return_to_nurture")


def recycle_due(decision: DispositionDecision, now: datetime) -> bool:
    """Whether a recycled person is due to be routed again at ``now`` (on its date or after)."""
    return decision.recycle_at is not None and now >= decision.recycle_at


def recycle_candidates(candidates: Sequence[str], decision: DispositionDecision) -> tuple[str, ...]:
    """The owners a recycled person may be routed to: every candidate but the one who returned it."""
    excluded = (decision.excluded_owner or "").strip().lower()
    return tuple(c for c in candidates if c.strip().lower() != excluded)


def disposition_overdue(ref: RecordRef, first_contact_at: datetime | None, disposition: str | None,
                        rules: DispositionRules, now: datetime, owner_email: str | None) -> GovernanceFinding | None:
    """A finding and an owner task when no disposition was set ``due_hours`` after first contact.

    None when there was no contact yet, a disposition is set, or the time is not up.
    """
    if first_contact_at is None or filled(disposition):
        return None
    due = first_contact_at + timedelta(hours=rules.due_hours)
    if now < due:
        return None
    message = (f"{ref} was first contacted {first_contact_at.isoformat()} and has no {rules.field} "
               f"{rules.due_hours} hours later (due {due.isoformat()})")
    task = TaskSpec("Set the disposition", f"{message}: choose one of {', '.join(rules.dispositions)}.",
                    now, "owner", owner_email, "High")
    return GovernanceFinding("disposition_missing", ref, message, f"{ref}:disposition_missing:{first_contact_at.isoformat()}",
                             (rules.field,), task)


def nurture_track(score: int, rules: DispositionRules) -> NurtureTrack | None:
    """The nurture track for a score (None when no track covers it: 80 and up go to sales)."""
    return next((t for t in rules.tracks if t.min <= score <= t.max), None)
