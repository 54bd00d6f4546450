"""The alert values: :class:`Alert`, one message to one recipient about one lead, and
:class:`OperationsAlert`, one message to the RevOps admins about Relay's own events (a merge run
stopped by the blast-radius guard). Both are the JSON ``payload`` of a notification row;
:func:`alert_from_json` reads either back by the payload's ``audience``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
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


class OperationsKind(StrEnum):
    """Relay's own events the RevOps admins hear about (alerts.yaml ``operations``)."""

    MERGE_GUARD_STOPPED = "merge_guard_stopped"


OPERATIONS_AUDIENCE = "operations"
"""The ``audience`` of an :class:`OperationsAlert` payload (a lead alert's payload has none, or ``lead``)."""

FactValue = str | int | float | bool | None | list[str]
"""What one fact of an operations alert may be: a JSON scalar, or a list of texts (the connections)."""


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
        role: What they are to the lead: ``owner``, ``manager``, ``director`` or ``queue``;
            ``operations`` for the RevOps admins of an :class:`OperationsAlert`.
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
        audience = data.get("audience", "lead")
        if audience != "lead":
            raise ValueError(f"alert payload is for the audience {audience!r}, not a lead alert")
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


@dataclass(frozen=True)
class OperationsAlert:
    """One alert to the RevOps admins about Relay itself, not about a lead.

    Attributes:
        kind: The event (``merge_guard_stopped``, ...).
        recipient: The admins (alerts.yaml ``operations``: their address, their Slack channel), role ``operations``.
        facts: What the event's message names, by fact name (``records``, ``reason``, ...); which facts
            each kind has is :data:`connector.notify.settings.OPERATIONS_EVENTS`'s business.
        at: When the event happened.
    """

    kind: OperationsKind
    recipient: Recipient
    facts: Mapping[str, FactValue] = field(hash=False)
    at: datetime

    def to_json(self) -> dict[str, Any]:
        """The alert as plain JSON data (the ``payload`` of its notification row), ``audience: operations``."""
        return {
            "audience": OPERATIONS_AUDIENCE, "kind": self.kind.value, "recipient": asdict(self.recipient),
            "facts": {name: list(value) if isinstance(value, list) else value for name, value in self.facts.items()},
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperationsAlert:
        """The alert :meth:`to_json` wrote.

        Raises:
            ValueError: naming the key that is missing or malformed (an unknown kind, a fact that is
                not a JSON scalar or a list of texts, a key that does not belong).
        """
        if data.get("audience") != OPERATIONS_AUDIENCE:
            raise ValueError(f"operations alert payload has the audience {data.get('audience')!r}, "
                             f"not {OPERATIONS_AUDIENCE!r}")
        unknown = sorted(set(data) - {"audience", "kind", "recipient", "facts", "at"})
        if unknown:
            raise ValueError(f"operations alert payload has the unknown key {unknown[0]!r}")
        try:
            kind = OperationsKind(data["kind"])
            recipient = Recipient(**dict(data["recipient"]))
            facts = data["facts"]
            if not isinstance(facts, Mapping):
                raise ValueError(f"facts must be an object, not {type(facts).__name__}")
            for name, value in facts.items():
                check_fact(kind, str(name), value)
            at = datetime.fromisoformat(str(data["at"]))
        except KeyError as exc:
            raise ValueError(f"operations alert payload misses the key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"operations alert payload is malformed: {exc}") from None
        if at.tzinfo is None:
            raise ValueError(f"operations alert payload: at {data['at']!r} has no time zone")
        return cls(kind=kind, recipient=recipient, facts={str(k): v for k, v in facts.items()}, at=at)


def check_fact(kind: OperationsKind | str, name: str, value: object) -> FactValue:
    """One fact of an operations alert, refused when JSON cannot carry it as the message needs it.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: naming the kind, the fact and its value.
    """
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ValueError(f"{kind} fact {name!r} is {type(value).__name__} {value!r}: expected text, a number, "
                     "true/false, null or a list of texts")


def alert_from_json(data: Mapping[str, Any]) -> Alert | OperationsAlert:
    """The alert a notification's payload holds: an :class:`OperationsAlert` when its ``audience`` is
    ``operations``, else a lead :class:`Alert` (payloads queued before operations alerts have no audience).

    Raises:
        ValueError: naming the key that is missing or malformed.
    """
    if data.get("audience") == OPERATIONS_AUDIENCE:
        return OperationsAlert.from_json(data)
    return Alert.from_json(data)
