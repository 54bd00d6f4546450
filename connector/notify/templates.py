"""An alert in words: a lead's :class:`~connector.notify.alert.Alert` as subject, text and a short SMS,
an :class:`~connector.notify.alert.OperationsAlert` as subject and text, from its kind's template."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.notify.alert import Alert, AlertKind, FactValue, OperationsAlert
from connector.notify.settings import OPERATIONS_EVENTS, OperationsTemplate, Template

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


def format_fact(value: FactValue) -> str:
    """One fact of an operations alert as the admins read it: a list joined with commas, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value)


def operations_values(alert: OperationsAlert) -> dict[str, str]:
    """The placeholders of an operations alert: ``event``, ``recipient``, ``at`` and the facts of its kind."""
    filled = {name: format_fact(alert.facts.get(name)) for name in OPERATIONS_EVENTS[alert.kind].facts}
    filled.update(event=OPERATIONS_EVENTS[alert.kind].words, recipient=alert.recipient.name,
                  at=format_due(alert.at))
    return filled


def render_operations(alert: OperationsAlert, template: OperationsTemplate) -> Message:
    """The message of an operations alert in the words of ``template``; its ``sms`` is the subject
    (operations alerts go by email and Slack only)."""
    filled = operations_values(alert)
    subject = " ".join(string.Template(template.subject).safe_substitute(filled).split())
    return Message(subject=subject, text=string.Template(template.text).safe_substitute(filled), sms=subject[:SMS_MAX])
