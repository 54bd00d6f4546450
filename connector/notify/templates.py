"""An :class:`~connector.notify.alert.Alert` in words: subject, text and a short SMS, from its kind's template."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.notify.alert import Alert, AlertKind
from connector.notify.settings import Template

EVENT_WORDS: dict[AlertKind, str] = {
    AlertKind.ASSIGNED: "New lead assigned",
    AlertKind.REMINDER: "SLA reminder",
    AlertKind.ESCALATION_MANAGER: "SLA breached: escalated to the manager",
    AlertKind.ESCALATION_DIRECTOR: "SLA breached: escalated to the director",
    AlertKind.REQUEUED: "Lead re-queued",
}

SMS_MAX = 320
"""Characters an SMS body may take (two concatenated segments); longer texts are cut with an ellipsis."""

NO_LINK = "(no CRM link: see alerts.yaml links)"


@dataclass(frozen=True)
class Message:
    """What a channel sends: ``subject`` and ``text`` (email, Slack), ``sms`` (one short text)."""

    subject: str
    text: str
    sms: str


def format_due(due: datetime | None) -> str:
    """The deadline as a rep reads it: ``2026-12-07 14:05 UTC`` (``no deadline`` when None)."""
    if due is None:
        return "no deadline"
    return due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def values(alert: Alert) -> dict[str, str]:
    """The placeholders of :data:`connector.notify.settings.PLACEHOLDERS`, filled from ``alert``."""
    reasons = list(alert.reasons)
    return {
        "event": EVENT_WORDS[alert.kind],
        "recipient": alert.recipient.name,
        "lead": alert.lead,
        "company": alert.company or "company unknown",
        "score": "-" if alert.score is None else str(alert.score),
        "category": alert.category or "unscored",
        "why": "\n".join(f"- {reason}" for reason in reasons) or "- no scoring rule earned points",
        "why_short": "; ".join(reasons[:3]) or "no points",
        "tier": alert.tier,
        "due": format_due(alert.due),
        "link": alert.link or NO_LINK,
        "owner": alert.owner,
        "routing_reason": alert.routing_reason or "-",
    }


def render(alert: Alert, template: Template) -> Message:
    """The message of ``alert`` in the words of ``template`` (placeholders were checked when the config loaded)."""
    filled = values(alert)
    sms = string.Template(template.sms).safe_substitute(filled)
    if len(sms) > SMS_MAX:
        sms = sms[: SMS_MAX - 1] + "…"
    subject = " ".join(string.Template(template.subject).safe_substitute(filled).split())
    return Message(subject=subject, text=string.Template(template.text).safe_substitute(filled), sms=sms)
