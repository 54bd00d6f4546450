"""The model of ``config/rules/alerts.yaml``: channels, who hears about which tier, templates, delivery.

Defaults are the seeds' (seed 002 "Lead Routing": Hot -> SMS + email, Warm -> email,
Qualified -> a queue notification to the SDR team; seed 001 items 1.6.4, 36.10, 37.3, 49.2:
email/Slack to reps, a reminder to the owner at 50 % of the SLA, escalation emails to the
manager at 100 % and then to the director). Unknown keys are errors, as in every rule file.

Secrets and addresses of the channels are environment references (``${RELAY_SMTP_PASSWORD:-}``),
read in ``channels`` and ``links`` only (templates use ``$placeholders`` of their own). A channel
whose required values are empty is *not configured*: its alerts are recorded as skipped with the
reason, never sent and never an error.

The optional ``operations`` section names who hears about Relay's own events rather than a
lead's (the RevOps admins: an address and/or a Slack channel) and the words of each event kind
(:data:`OPERATIONS_EVENTS`: a merge run stopped by the blast-radius guard, ...).
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.config._base import ConfigModel
from connector.notify.alert import AlertKind, ChannelName, OperationsKind

Target = Literal["owner", "manager", "director", "queue"]

DEFAULT_TARGETS: dict[AlertKind, Target] = {
    AlertKind.ASSIGNED: "owner",
    AlertKind.REMINDER: "owner",
    AlertKind.ESCALATION_MANAGER: "manager",
    AlertKind.ESCALATION_DIRECTOR: "director",
    AlertKind.REQUEUED: "owner",
}
"""Who hears about each kind of event unless the tier says otherwise (seed 001 items 37.3, 49.1)."""

PLACEHOLDERS: dict[str, str] = {
    "event": "what happened, in words (\"New lead assigned\", \"SLA reminder\", ...)",
    "recipient": "the recipient's name",
    "lead": "the lead's name",
    "company": "the lead's company (empty when unknown)",
    "score": "Relay's score, 0-100",
    "category": "the score's band (Hot, Warm, ...)",
    "why": "the scoring rules that earned points, one per line",
    "why_short": "the three largest of them, on one line",
    "tier": "the SLA tier",
    "due": "the SLA deadline, e.g. 2026-12-07 14:05 UTC",
    "link": "the lead's record in the CRM",
    "owner": "the owner's email",
    "routing_reason": "why the lead went to its owner",
}
"""What templates may use (``$name`` or ``${name}``, Python's ``string.Template``)."""

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _custom(loc: tuple[str | int, ...], code: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=value)


class EmailChannel(ConfigModel):
    """SMTP: where alert emails are handed over. Empty ``host``: email is not configured."""

    host: str = Field(default="", description="SMTP server; empty: email alerts are skipped.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 submission, 465 SSL, 25 relay).")
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (port 587), ssl (port 465) or none (a local relay).")
    username: str = Field(default="", description="SMTP login; empty: no login.")
    password: SecretStr = Field(default=SecretStr(""), description="SMTP password (from the environment).")
    sender: str = Field(default="relay@localhost", description="The From address.")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    def missing(self) -> str | None:
        """Why email cannot be sent, or None when it is configured."""
        if not self.host.strip():
            return "email is not configured (channels.email.host is empty; set RELAY_SMTP_HOST)"
        return None

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"'{value}' is not an email address")
        return value


class SlackChannel(ConfigModel):
    """A Slack incoming webhook. Empty ``webhook_url``: Slack is not configured."""

    webhook_url: SecretStr = Field(
        default=SecretStr(""), description="Incoming webhook URL (https://hooks.slack.com/services/T../B../X..).")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    def missing(self) -> str | None:
        """Why Slack cannot be posted to, or None when it is configured."""
        if not self.webhook_url.get_secret_value().strip():
            return "Slack is not configured (channels.slack.webhook_url is empty; set RELAY_SLACK_WEBHOOK_URL)"
        return None

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if text and not text.startswith(("https://", "http://")):
            raise ValueError("the webhook URL must start with https:// (or http:// for a local sink)")
        return value


class SmsChannel(ConfigModel):
    """An SMS API in the shape of Twilio's: ``POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json``,
    form fields ``To``, ``From``, ``Body``, basic auth (account sid, auth token). Empty sid, token or
    sender: SMS is not configured."""

    base_url: str = Field(default="https://api.twilio.com", description="The provider's API root.")
    account_sid: str = Field(default="", description="Account id (the basic-auth user).")
    auth_token: SecretStr = Field(default=SecretStr(""), description="Auth token (from the environment).")
    sender: str = Field(default="", description="The sending number (E.164).")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    def missing(self) -> str | None:
        """Why SMS cannot be sent, or None when it is configured."""
        empty = [name for name, value in (("account_sid", self.account_sid),
                                          ("auth_token", self.auth_token.get_secret_value()),
                                          ("sender", self.sender)) if not value.strip()]
        if empty:
            return (f"SMS is not configured (channels.sms.{', channels.sms.'.join(empty)} empty; "
                    "set RELAY_SMS_ACCOUNT_SID, RELAY_SMS_AUTH_TOKEN and RELAY_SMS_FROM)")
        return None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"'{value}' must start with https:// (or http:// for a local sink)")
        return value.rstrip("/")

    @field_validator("sender")
    @classmethod
    def _e164(cls, value: str) -> str:
        if value.strip() and not _E164.match(value.strip()):
            raise ValueError(f"'{value}' is not a phone number in E.164 form (+15555550100)")
        return value.strip()


class Channels(ConfigModel):
    """The three channels and how to reach each."""

    email: EmailChannel = Field(default_factory=EmailChannel)
    slack: SlackChannel = Field(default_factory=SlackChannel)
    sms: SmsChannel = Field(default_factory=SmsChannel)

    def missing(self, channel: ChannelName) -> str | None:
        """Why ``channel`` cannot send, or None when it is configured."""
        settings: EmailChannel | SlackChannel | SmsChannel = getattr(self, channel.value)
        return settings.missing()


class AlertRoute(ConfigModel):
    """Who hears about one kind of event of one tier, and through which channels."""

    channels: list[ChannelName] = Field(min_length=1, description="email, sms and/or slack, each once.")
    to: Target | None = Field(
        default=None, description="owner, manager, director or queue; default by event kind "
        "(assigned, reminder, requeued: owner; escalation_manager: manager; escalation_director: director).")
    queue: str | None = Field(default=None, description="With to: queue, the queue (a key of queues).")

    @model_validator(mode="after")
    def _check(self) -> AlertRoute:
        errors: list[InitErrorDetails] = []
        seen: set[ChannelName] = set()
        for index, channel in enumerate(self.channels):
            if channel in seen:
                errors.append(_custom(("channels", index), "duplicate", f"channel {channel.value} is listed twice",
                                      channel.value))
            seen.add(channel)
        if self.to == "queue" and not self.queue:
            errors.append(_custom(("queue",), "missing_queue", "to: queue needs queue: <a key of queues>", None))
        if self.queue and self.to != "queue":
            errors.append(_custom(("queue",), "queue_without_to", "queue is only read with to: queue", self.queue))
        if errors:
            raise ValidationError.from_exception_data("AlertRoute", errors)
        return self


class TierAlerts(ConfigModel):
    """The alerts of one SLA tier, by event kind; a kind left out sends nothing for that tier."""

    assigned: AlertRoute | None = None
    reminder: AlertRoute | None = None
    escalation_manager: AlertRoute | None = None
    escalation_director: AlertRoute | None = None
    requeued: AlertRoute | None = None

    def route(self, kind: AlertKind) -> AlertRoute | None:
        """The route of ``kind``, if the tier alerts on it."""
        route: AlertRoute | None = getattr(self, kind.value)
        return route


class Contact(ConfigModel):
    """Where a person of the roster is reached besides their email."""

    phone: str | None = Field(default=None, description="Mobile number in E.164 (+15555550101), for SMS.")
    slack: str | None = Field(default=None, description="Slack handle to mention (@olivia.grant).")

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not _E164.match(value):
            raise ValueError(f"'{value}' is not a phone number in E.164 form (+15555550101)")
        return value


class Queue(Contact):
    """A team queue that hears about leads routed to the team (seed 001 item 1.6: "Notification sent to SDR queue")."""

    name: str = Field(min_length=1, description="How messages name the queue (\"SDR queue\").")
    email: str | None = Field(default=None, description="The queue's shared address.")

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"'{value}' is not an email address")
        return value


class Template(ConfigModel):
    """The words of one kind of alert: ``subject`` and ``text`` (email, Slack), ``sms`` (one short line)."""

    subject: str = Field(min_length=1)
    text: str = Field(min_length=1)
    sms: str = Field(min_length=1)

    @model_validator(mode="after")
    def _placeholders(self) -> Template:
        errors: list[InitErrorDetails] = []
        for name in ("subject", "text", "sms"):
            value = getattr(self, name)
            template = string.Template(value)
            if not template.is_valid():
                errors.append(_custom((name,), "invalid_template",
                                      "a $ must start a placeholder ($lead or ${lead}); write $$ for a dollar sign",
                                      value))
                continue
            unknown = [p for p in template.get_identifiers() if p not in PLACEHOLDERS]
            if unknown:
                errors.append(_custom((name,), "unknown_placeholder",
                                      f"unknown placeholder ${unknown[0]} (known: {', '.join(PLACEHOLDERS)})", value))
        if errors:
            raise ValidationError.from_exception_data("Template", errors)
        return self


DEFAULT_TEMPLATES: dict[AlertKind, Template] = {
    AlertKind.ASSIGNED: Template(
        subject="[Relay] New $tier lead for you: $lead, score $score",
        text="Hi $recipient,\n\n$lead ($company) is yours: score $score ($category), SLA tier $tier.\n"
             "Contact them by $due.\n\nWhy this score:\n$why\n\nRouting: $routing_reason\nOpen in the CRM: $link\n",
        sms="Relay: new $tier lead $lead, score $score ($why_short). Call by $due. $link",
    ),
    AlertKind.REMINDER: Template(
        subject="[Relay] Reminder: $lead is waiting (due $due)",
        text="Hi $recipient,\n\n$lead ($company) has not been contacted yet; half of the $tier SLA is gone.\n"
             "Contact them by $due.\n\nScore $score ($category):\n$why\n\nOpen in the CRM: $link\n",
        sms="Relay reminder: $lead ($tier, score $score) due $due. $link",
    ),
    AlertKind.ESCALATION_MANAGER: Template(
        subject="[Relay] SLA breached: $lead ($tier) not contacted by $owner",
        text="Hi $recipient,\n\n$lead ($company), owned by $owner, was due by $due and has not been contacted.\n\n"
             "Score $score ($category):\n$why\n\nOpen in the CRM: $link\n",
        sms="Relay escalation: $lead ($tier, score $score) missed its SLA ($due), owner $owner. $link",
    ),
    AlertKind.ESCALATION_DIRECTOR: Template(
        subject="[Relay] SLA escalation: $lead ($tier) still not contacted",
        text="Hi $recipient,\n\n$lead ($company), owned by $owner, was due by $due; the manager was told and the "
             "lead is still untouched.\n\nScore $score ($category):\n$why\n\nOpen in the CRM: $link\n",
        sms="Relay escalation: $lead ($tier, score $score) still untouched since $due, owner $owner. $link",
    ),
    AlertKind.REQUEUED: Template(
        subject="[Relay] Re-queued to you: $lead, score $score",
        text="Hi $recipient,\n\n$lead ($company) was re-queued to you: score $score ($category), SLA tier $tier.\n"
             "Contact them by $due.\n\nWhy this score:\n$why\n\nRouting: $routing_reason\nOpen in the CRM: $link\n",
        sms="Relay: $lead re-queued to you ($tier, score $score). Call by $due. $link",
    ),
}
"""The words used when ``templates`` leaves a kind out (the shipped alerts.yaml repeats them to edit)."""


OPERATIONS_PLACEHOLDERS: dict[str, str] = {
    "event": "what happened, in words (\"Merges stopped by the blast-radius guard\", ...)",
    "recipient": "who hears it (operations.name)",
    "at": "when it happened, e.g. 2026-12-07 14:00 UTC",
}
"""What every operations template may use, besides the facts of its kind (:data:`OPERATIONS_EVENTS`)."""


def _template_errors(loc: tuple[str | int, ...], value: str, known: Collection[str]) -> list[InitErrorDetails]:
    """The problems of one template text: a stray ``$``, or a placeholder not in ``known``."""
    template = string.Template(value)
    if not template.is_valid():
        return [_custom(loc, "invalid_template",
                        "a $ must start a placeholder ($records or ${records}); write $$ for a dollar sign", value)]
    unknown = [p for p in template.get_identifiers() if p not in known]
    if unknown:
        return [_custom(loc, "unknown_placeholder",
                        f"unknown placeholder ${unknown[0]} (known: {', '.join(known)})", value)]
    return []


class OperationsTemplate(ConfigModel):
    """The words of one kind of operations alert: ``subject`` and ``text`` (email and Slack; no SMS).

    Placeholders: :data:`OPERATIONS_PLACEHOLDERS` and the facts of the kind (checked by
    :class:`OperationsAlerts`, which knows the kind).
    """

    subject: str = Field(min_length=1)
    text: str = Field(min_length=1)


@dataclass(frozen=True)
class OperationsEvent:
    """One kind of Relay's own events: its words, its facts, what makes two of them the same alert.

    Attributes:
        words: What happened, in words (the ``$event`` placeholder).
        facts: The facts the caller gives (each one a placeholder of the kind's template), with their meaning.
        key: The facts that make two events the same news: an event whose key facts match one
            already queued on the same UTC day queues nothing (see ``queue_operations_alert``).
        template: The default words, used when alerts.yaml's ``operations.templates`` leaves the kind out.
    """

    words: str
    facts: dict[str, str]
    key: tuple[str, ...]
    template: OperationsTemplate


OPERATIONS_EVENTS: dict[OperationsKind, OperationsEvent] = {
    OperationsKind.MERGE_GUARD_STOPPED: OperationsEvent(
        words="Merges stopped by the blast-radius guard",
        facts={
            "reason": "why the guard stopped the run (the limit of matching.yaml merge_guard that was passed)",
            "planned_sets": "how many duplicate sets the run would have merged or flagged",
            "records": "how many records the run would have merged away",
            "connections": "the connections whose duplicates it would have acted on",
        },
        key=("connections", "records"),
        template=OperationsTemplate(
            subject="[Relay] Dedupe stopped: $records records would have been merged away",
            text="Hi $recipient,\n\nThe dedupe run at $at merged nothing: $reason.\n\n"
                 "It planned $planned_sets duplicate sets ($records records) in $connections.\n"
                 "Look at `relay dedupe report`, then raise merge_guard in matching.yaml or fix the data; "
                 "the next run tries again.\n",
        ),
    ),
}
"""Relay's own events the admins hear about. A new kind is one more member of
:class:`~connector.notify.alert.OperationsKind` and one more entry here."""


class OperationsAlerts(ConfigModel):
    """Who hears about Relay's own events (a merge run stopped by the blast-radius guard): the RevOps admins.

    Every kind of :data:`OPERATIONS_EVENTS` goes through ``channels``; a channel that is not
    configured (``channels`` at the top of the file) is recorded as skipped with the reason.
    """

    channels: list[ChannelName] = Field(min_length=1, description="email and/or slack, each once.")
    email: str | None = Field(default=None, description="The admins' address; needed when channels has email.")
    slack: str | None = Field(
        default=None, description="The Slack channel or handle the posts name (#revops-alerts); the incoming "
        "webhook posts to its own channel.")
    name: str = Field(default="RevOps", min_length=1, description="How the messages greet the admins.")
    templates: dict[OperationsKind, OperationsTemplate] = Field(
        default_factory=dict, description="Event kind -> its words (subject, text); a kind left out has the default.")

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"'{value}' is not an email address")
        return value

    @field_validator("slack")
    @classmethod
    def _slack_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[#@][^\s#@]+$", value):
            raise ValueError(f"'{value}' is not a Slack channel (#revops-alerts) or handle (@dana)")
        return value

    @model_validator(mode="after")
    def _check(self) -> OperationsAlerts:
        errors: list[InitErrorDetails] = []
        seen: set[ChannelName] = set()
        for index, channel in enumerate(self.channels):
            if channel is ChannelName.SMS:
                errors.append(_custom(("channels", index), "unsupported_channel",
                                      "operations alerts go by email or slack, not sms", channel.value))
            elif channel in seen:
                errors.append(_custom(("channels", index), "duplicate", f"channel {channel.value} is listed twice",
                                      channel.value))
            seen.add(channel)
        if ChannelName.EMAIL in seen and not self.email:
            errors.append(_custom(("email",), "missing_email",
                                  "channels has email: give the admins' address (email: revops@example.com)", None))
        for kind, template in self.templates.items():
            known = [*OPERATIONS_PLACEHOLDERS, *OPERATIONS_EVENTS[kind].facts]
            for name in ("subject", "text"):
                errors.extend(_template_errors(("templates", kind.value, name), getattr(template, name), known))
        if errors:
            raise ValidationError.from_exception_data("OperationsAlerts", errors)
        return self

    def template(self, kind: OperationsKind) -> OperationsTemplate:
        """The words of ``kind``: the file's, else the default."""
        return self.templates.get(kind) or OPERATIONS_EVENTS[kind].template


class Delivery(ConfigModel):
    """How sending is retried: ``backoff_seconds`` doubling per failed attempt up to ``max_backoff_seconds``,
    dead (given up, error kept) after ``max_attempts``."""

    max_attempts: int = Field(default=5, ge=1, le=50)
    backoff_seconds: int = Field(default=30, ge=0, le=86_400)
    max_backoff_seconds: int = Field(default=1800, ge=0, le=86_400)
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Notifications claimed per round.")
    lease_seconds: int = Field(default=300, ge=10, le=86_400,
                               description="A claimed notification not marked within this is claimed again.")


class AlertsFile(ConfigModel):
    """Alerts (``config/rules/alerts.yaml``): channels, routes per tier, contacts, templates, delivery, and
    who hears about Relay's own events (``operations``)."""

    enabled: bool = Field(default=True, description="false: no alert is queued at all.")
    channels: Channels = Field(default_factory=Channels)
    tiers: dict[str, TierAlerts] = Field(default_factory=dict, description="SLA tier name (sla.yaml) -> its alerts.")
    people: dict[str, Contact] = Field(default_factory=dict, description="Roster email -> phone and Slack handle.")
    queues: dict[str, Queue] = Field(default_factory=dict, description="Queue key -> how the queue is reached.")
    templates: dict[AlertKind, Template] = Field(default_factory=dict, description="Event kind -> its words.")
    delivery: Delivery = Field(default_factory=Delivery)
    links: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Connection name -> what its CRM unit needs to link to records (HubSpot: portal_id).")
    operations: OperationsAlerts | None = Field(
        default=None, description="Who hears about Relay's own events (the RevOps admins); none: nobody.")

    @model_validator(mode="after")
    def _check(self) -> AlertsFile:
        errors: list[InitErrorDetails] = []
        for tier, alerts in self.tiers.items():
            for kind in AlertKind:
                route = alerts.route(kind)
                if route is not None and route.queue and route.queue not in self.queues:
                    errors.append(_custom(("tiers", tier, kind.value, "queue"), "unknown_queue",
                                          f"no queue '{route.queue}' under queues (known: "
                                          f"{', '.join(self.queues) or 'none'})", route.queue))
        for email in self.people:
            if not _EMAIL.match(email) or email != email.lower():
                errors.append(_custom(("people", email), "invalid_email",
                                      f"'{email}' is not a lower-case email address", email))
        if errors:
            raise ValidationError.from_exception_data("AlertsFile", errors)
        return self

    def template(self, kind: AlertKind) -> Template:
        """The words of ``kind``: the file's, else the default."""
        return self.templates.get(kind) or DEFAULT_TEMPLATES[kind]

    def contact(self, email: str | None) -> Contact:
        """Phone and Slack handle of the person with ``email`` (empty when not listed)."""
        return self.people.get((email or "").strip().lower()) or Contact()


SUBSTITUTED_SECTIONS = ("channels", "links")
"""The sections whose values may be environment references (secrets, hosts); templates use ``$`` themselves."""


def tier_problems(alerts: AlertsFile, tier_names: Collection[str]) -> list[tuple[tuple[str, ...], str, str]]:
    """The tiers of alerts.yaml that sla.yaml does not have: (key path, tier, why)."""
    known = list(tier_names)
    return [(("tiers", tier), tier, f"no SLA tier '{tier}' in sla.yaml (tiers: {', '.join(known)})")
            for tier in alerts.tiers if tier not in known]


__all__ = [
    "DEFAULT_TARGETS",
    "DEFAULT_TEMPLATES",
    "OPERATIONS_EVENTS",
    "OPERATIONS_PLACEHOLDERS",
    "PLACEHOLDERS",
    "SUBSTITUTED_SECTIONS",
    "AlertRoute",
    "AlertsFile",
    "Channels",
    "Contact",
    "Delivery",
    "EmailChannel",
    "OperationsAlerts",
    "OperationsEvent",
    "OperationsTemplate",
    "Queue",
    "SlackChannel",
    "SmsChannel",
    "Template",
    "TierAlerts",
    "tier_problems",
]
