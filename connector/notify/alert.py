"""The :class:`Alert` value: one message to one recipient about one lead, and what it must say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AlertKind(StrEnum):
    """Why an alert is sent (seed 001 items 37.3 and 49.1: reminder at 50 %, manager at 100 %, then the director)."""

    ASSIGNED = "assigned"
    REMINDER = "reminder"
    ESCALATION_MANAGER = "escalation_manager"
    ESCALATION_DIRECTOR = "escalation_director"
    REQUEUED = "requeued"


class ChannelName(StrEnum):
    """The channels an alert can travel through."""

    EMAIL = "email"
    SMS = "sms"
    SLACK = "slack"


@dataclass(frozen=True)
class Recipient:
    """Who an alert is for, and where each channel reaches them.

    Attributes:
        email: Their email address (a person or a queue's shared address); None when unknown.
        name: How to greet them (the roster name, or the address).
        phone: Their mobile number in E.164 (``+15555550101``), for SMS; None when unknown.
        slack: Their Slack handle or the queue's channel (``@olivia``, ``#sdr-queue``), mentioned in Slack posts.
        role: What they are to the lead: ``owner``, ``manager``, ``director`` or ``queue``.
    """

    email: str | None
    name: str
    phone: str | None = None
    slack: str | None = None
    role: str = "owner"

    def address(self, channel: ChannelName) -> str | None:
        """Where ``channel`` reaches them (None: it cannot)."""
        if channel is ChannelName.EMAIL:
            return self.email
        if channel is ChannelName.SMS:
            return self.phone
        return self.slack or ""  # a Slack webhook posts to its own channel; the handle is only mentioned


@dataclass(frozen=True)
class Alert:
    """One alert: who, about which lead, and everything its message names.

    Attributes:
        kind: Why it is sent (assigned, reminder, escalation to manager or director, re-queued).
        recipient: Who it is for.
        lead: The lead's name as a rep would say it (first and last name, else the email).
        company: The lead's company, if known.
        score: Relay's score (0-100), if scored.
        category: The score's band (Hot, Warm, ...), if scored.
        reasons: Why that score: the scoring rules that earned points, largest first (``"+10 seniority: vp"``).
        tier: The SLA tier (Hot, Warm, Qualified, ...).
        due: When the lead must be contacted (the SLA deadline), if any.
        link: The lead's record in the CRM (a URL), if the CRM unit can build one.
        owner: The email of the rep who owns the lead.
        connection: The connection the lead was read from.
        object: Its CRM object (``Lead``, ``contacts``).
        crm_id: Its CRM id.
        routing_reason: Why it went to its owner (the routing rule's reason).
    """

    kind: AlertKind
    recipient: Recipient
    lead: str
    company: str | None
    score: int | None
    category: str | None
    reasons: tuple[str, ...]
    tier: str
    due: datetime | None
    link: str | None
    owner: str
    connection: str
    object: str
    crm_id: str
    routing_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The alert as plain JSON data (the ``payload`` of its notification row)."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["due"] = self.due.isoformat() if self.due is not None else None
        data["reasons"] = list(self.reasons)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """The alert :meth:`to_json` wrote.

        Raises:
            ValueError: naming the key that is missing or malformed.
        """
        try:
            recipient = Recipient(**dict(data["recipient"]))
            due = data.get("due")
            return cls(
                kind=AlertKind(data["kind"]), recipient=recipient, lead=str(data["lead"]),
                company=data.get("company"), score=data.get("score"), category=data.get("category"),
                reasons=tuple(str(r) for r in data.get("reasons") or ()), tier=str(data["tier"]),
                due=datetime.fromisoformat(due) if due else None, link=data.get("link"),
                owner=str(data["owner"]), connection=str(data["connection"]), object=str(data["object"]),
                crm_id=str(data["crm_id"]), routing_reason=data.get("routing_reason"),
            )
        except KeyError as exc:
            raise ValueError(f"alert payload misses the key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"alert payload is malformed: {exc}") from None
