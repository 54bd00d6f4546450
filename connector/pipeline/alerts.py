"""Alerts: queued with the decision that causes them, then sent exactly once through their channels.

Queuing (:func:`enqueue_alerts`, :func:`assignment_alerts` with the page) runs inside the
transaction of the decision: the notification rows commit or roll back with it, and their
idempotency keys (the decision, the event kind, the channel) make a replayed decision queue
nothing new. Sending (:func:`send_pending_notifications`) claims due rows, sends each one
outside any transaction, and marks it sent, failed (tried again after a backoff) or dead
(given up after ``delivery.max_attempts``, its error kept); a channel that is not configured
marks its alerts skipped, with the reason. It runs right after a run's writer drained and
every minute from the worker (``relay.send_notifications``).

Operational alerts (:func:`queue_operations_alert`) are about Relay itself, not a lead: a
merge run the blast-radius guard stopped, told to the RevOps admins of alerts.yaml's
``operations`` section. They share the table, the sender, the retries and the dead letters;
each is queued at most once per UTC day for the same key facts of its kind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connector.config.loader import RelayConfig
from connector.core.governance.consent import ConsentStatus, consent_of
from connector.core.models import LeadDecision, Person
from connector.core.rules import Rules
from connector.notify.alert import (
    Alert,
    AlertKind,
    ChannelName,
    FactValue,
    OperationsAlert,
    OperationsKind,
    Recipient,
    alert_from_json,
    check_fact,
)
from connector.notify.channels import ChannelError, send
from connector.notify.links import record_url
from connector.notify.settings import DEFAULT_TARGETS, OPERATIONS_EVENTS, AlertsFile, Target
from connector.notify.templates import render, render_operations
from connector.store.db import session_factory
from connector.store.models import NotificationStatus
from connector.store.repositories import Notification, NotificationIn, Repositories

log = logging.getLogger(__name__)

MIN_RETRY_DELAY = timedelta(seconds=1)
"""A failed notification is never due again within the same sending pass."""


@dataclass(frozen=True)
class LeadFacts:
    """What an alert says about its lead.

    Attributes:
        connection, object, crm_id: The record.
        name: The lead's name (first and last name, else the email, else the id).
        company: The lead's company.
        score: Relay's score; category its band.
        reasons: The scoring rules that earned points, largest first (``+10 seniority: vp``).
        relay_id: The person's Relay id.
        routing_reason: Why the lead went to its owner.
    """

    connection: str
    object: str
    crm_id: str
    name: str
    company: str | None = None
    score: int | None = None
    category: str | None = None
    reasons: tuple[str, ...] = ()
    relay_id: str | None = None
    routing_reason: str | None = None


def score_reasons(items: Any) -> tuple[str, ...]:
    """The score's items that earned points as words, largest first (``+10 demographic seniority: VP Sales``).

    ``items`` are ``ScoreItem`` objects or their JSON (as the audit log keeps them).
    """
    found: list[tuple[int, str]] = []
    for item in items or ():
        get = item.get if isinstance(item, dict) else lambda name, _item=item: getattr(_item, name, None)
        points = int(get("points") or 0)
        if points <= 0:
            continue
        detail = str(get("detail") or "").strip()
        words = f"+{points} {get('component')} {get('rule')}" + (f": {detail}" if detail else "")
        found.append((points, words))
    return tuple(words for _, words in sorted(found, key=lambda pair: -pair[0]))


def _name(first: str | None, last: str | None, email: str | None, crm_id: str) -> str:
    return " ".join(part for part in (first, last) if part) or email or crm_id


WITHHELD = "withheld (consent)"
"""What an alert says instead of a company it may not name."""


def withheld(lead: LeadFacts, consent: ConsentStatus | None) -> LeadFacts:
    """``lead`` as an alert may tell it under the person's consent (consent.yaml ``alerts_with_personal_data``).

    Refused: the alert names the record (object and CRM id) and links to it, but no name, email or
    company, and the score's reasons without their details (a title, a country).
    """
    if consent is None or consent.allows("alerts_with_personal_data"):
        return lead
    reasons = tuple(reason.split(":", 1)[0] for reason in lead.reasons)
    return replace(lead, name=f"{lead.object} {lead.crm_id} (personal data withheld: {consent.because('alerts_with_personal_data')})",
                   company=WITHHELD, reasons=reasons)


def lead_from_decision(person: Person, decision: LeadDecision, relay_id: str | None) -> LeadFacts:
    """The facts of a lead just decided (its score and why, the routing reason), as its consent lets an alert tell them."""
    return withheld(_lead_from_decision(person, decision, relay_id), decision.consent)


def _lead_from_decision(person: Person, decision: LeadDecision, relay_id: str | None) -> LeadFacts:
    score = decision.score
    return LeadFacts(
        connection=person.ref.connection, object=person.ref.object, crm_id=person.ref.crm_id,
        name=_name(person.first_name, person.last_name, person.email, person.ref.crm_id), company=person.company,
        score=score.total if score else None, category=score.category if score else None,
        reasons=score_reasons(score.items) if score else (), relay_id=relay_id,
        routing_reason=decision.routing.reason if decision.routing else None,
    )


def lead_from_store(repos: Repositories, connection: str, object_name: str, crm_id: str,
                    rules: Rules | None = None) -> LeadFacts:
    """The facts of a lead as Relay's store knows them: its snapshot (name, company, score) and the
    score and routing reason of its latest ``assigned`` audit entry. For alerts of a clock's steps
    (reminder, escalations, re-queue), which fire long after the decision. With ``rules``, as the
    snapshot's consent lets an alert tell them (:func:`withheld`).
    """
    snapshot = repos.records.get(connection, object_name, crm_id)
    canonical: dict[str, Any] = dict(snapshot.canonical) if snapshot is not None else {}
    assigned = [e for e in repos.audit.for_record(connection, object_name, crm_id) if e.action == "assigned"]
    detail: dict[str, Any] = dict(assigned[-1].detail) if assigned else {}
    score = detail.get("score") if isinstance(detail.get("score"), dict) else None
    total = score.get("total") if score else canonical.get("relay_score")
    consent = consent_of(canonical, rules.consent, rules.dispositions) if rules is not None else None
    return withheld(LeadFacts(
        connection=connection, object=object_name, crm_id=crm_id,
        name=_name(canonical.get("first_name"), canonical.get("last_name"), canonical.get("email"), crm_id),
        company=canonical.get("company"),
        score=int(total) if isinstance(total, (int, float, str)) and str(total).strip().lstrip("-").isdigit() else None,
        category=(score or {}).get("category") or canonical.get("relay_score_category"),
        reasons=score_reasons((score or {}).get("items")),
        relay_id=snapshot.relay_id if snapshot is not None else None,
        routing_reason=detail.get("reason") or canonical.get("relay_routing_reason"),
    ), consent)


def _recipient(config: RelayConfig, alerts: AlertsFile, target: Target, owner_email: str, queue: str | None,
               to_email: str | None) -> Recipient | str:
    """Who ``target`` is for a lead owned by ``owner_email``; a string says why nobody is."""
    routing = config.rules.routing
    if target == "queue":
        found = alerts.queues.get(queue or "")
        if found is None:
            return f"no queue {queue!r} in alerts.yaml queues"
        return Recipient(email=found.email, name=found.name, phone=found.phone, slack=found.slack, role="queue")
    email: str | None
    if to_email:
        email = to_email
    elif target == "owner":
        email = owner_email
    else:
        chain = routing.escalation_chain(owner_email)
        level = 0 if target == "manager" else 1
        email = chain[level] if len(chain) > level else None
        if email is None:
            return (f"{owner_email} has no {target} in routing.yaml (escalation chain: "
                    f"{' -> '.join(chain) or 'empty'})")
    member = routing.member(email)
    contact = alerts.contact(email)
    return Recipient(email=email, name=member.name if member is not None else email, phone=contact.phone,
                     slack=contact.slack, role=target)


def idempotency_key(source_key: str, kind: AlertKind, channel: ChannelName, recipient: str) -> str:
    """The key of one alert: the decision (``source_key``), the event kind, the channel and the recipient."""
    digest = hashlib.sha256(f"{source_key}\x1f{kind.value}\x1f{channel.value}\x1f{recipient}".encode()).hexdigest()
    return f"{kind.value}:{channel.value}:{digest[:48]}"


def enqueue_alerts(
    repos: Repositories,
    alert_kind: AlertKind | str,
    *,
    config: RelayConfig,
    lead: LeadFacts,
    owner_email: str,
    tier: str,
    due: datetime | None,
    source_key: str,
    now: datetime,
    to_email: str | None = None,
) -> int:
    """Queue the alerts of one event about one lead, in the caller's transaction (see :func:`plan_alerts`).

    Returns:
        How many notifications were newly queued.
    """
    items = plan_alerts(alert_kind, config=config, lead=lead, owner_email=owner_email, tier=tier, due=due,
                        source_key=source_key, to_email=to_email)
    return repos.notifications.enqueue_many(items, now=now) if items else 0


def plan_alerts(
    alert_kind: AlertKind | str,
    *,
    config: RelayConfig,
    lead: LeadFacts,
    owner_email: str,
    tier: str,
    due: datetime | None,
    source_key: str,
    to_email: str | None = None,
) -> list[NotificationIn]:
    """The alerts of one event about one lead, to queue with the decision that causes it.

    The tier's route for ``alert_kind`` (alerts.yaml ``tiers``) names the channels and who
    hears it (the owner, their manager or director from routing.yaml's roster, or a queue).
    A recipient a channel cannot reach (no phone for SMS) is queued as skipped, with the reason.

    Args:
        alert_kind: ``assigned``, ``reminder``, ``escalation_manager``, ``escalation_director``, ``requeued``.
        config: Relay's configuration (alerts, roster, connections for the CRM link).
        lead: What the alert says about the lead (:func:`lead_from_decision`, :func:`lead_from_store`).
        owner_email: Who owns the lead.
        tier: Its SLA tier (picks the route).
        due: Its SLA deadline.
        source_key: What caused the event, unique per event (e.g. the assignment, or the clock and
            its step): the same key queues nothing new.
        to_email: Who hears it instead of the route's target (e.g. the manager a clock escalates to).

    Returns:
        The notifications (none when alerts are off or the tier has no route).
    """
    kind = AlertKind(alert_kind)
    alerts = config.alerts
    if alerts is None or not alerts.enabled:
        return []
    tier_alerts = alerts.tiers.get(tier)
    route = tier_alerts.route(kind) if tier_alerts is not None else None
    if route is None:
        return []
    target: Target = route.to or DEFAULT_TARGETS[kind]
    who = _recipient(config, alerts, target, owner_email, route.queue, to_email)
    link = _link(config, lead)
    items: list[NotificationIn] = []
    for channel in route.channels:
        skipped: str | None
        if isinstance(who, str):
            recipient, address, skipped = Recipient(email=None, name=target, role=target), "", who
        else:
            recipient, address = who, who.address(channel) or ""
            skipped = None if address or channel is ChannelName.SLACK else _unreachable(who, channel)
        # A channel that is not configured is recorded as skipped now: no sender claims it (and no pass pays for it).
        skipped = skipped or alerts.channels.missing(channel)
        alert = Alert(kind=kind, recipient=recipient, lead=lead.name, company=lead.company, score=lead.score,
                      category=lead.category, reasons=lead.reasons, tier=tier, due=due, link=link, owner=owner_email,
                      connection=lead.connection, object=lead.object, crm_id=lead.crm_id,
                      routing_reason=lead.routing_reason)
        items.append(NotificationIn(
            idempotency_key=idempotency_key(source_key, kind, channel, recipient.email or recipient.name),
            kind=kind.value, channel=channel.value, recipient=address, connection=lead.connection,
            object_name=lead.object, crm_id=lead.crm_id, payload=alert.to_json(), relay_id=lead.relay_id,
            tier=tier, skipped=skipped,
        ))
    return items


def _unreachable(who: Recipient, channel: ChannelName) -> str:
    if channel is ChannelName.SMS:
        return f"no phone number for {who.email or who.name} (alerts.yaml people)"
    return f"no email address for {who.name} (alerts.yaml queues)"


def _link(config: RelayConfig, lead: LeadFacts) -> str | None:
    alerts = config.alerts
    try:
        settings = config.connection(lead.connection)
    except KeyError:
        return None
    options = alerts.links.get(lead.connection, {}) if alerts is not None else {}
    return record_url(settings, lead.object, lead.crm_id, options)


def assignment_alerts(
    config: RelayConfig, person: Person, decision: LeadDecision, relay_id: str | None,
) -> list[NotificationIn]:
    """The ``assigned`` alerts of a new assignment Relay just recorded (queued with the page: ``pages._apply_decision``).

    An owner carried over from the person's assignment elsewhere (the other CRM) was told
    when that assignment was made: nothing is queued again.
    """
    routing = decision.routing
    if routing is None or not routing.owner_email or routing.kept_existing:
        return []
    ref = person.ref
    source = f"assignment:{ref.connection}/{ref.object}/{ref.crm_id}@{decision.decided_at.isoformat()}"
    return plan_alerts(
        AlertKind.ASSIGNED, config=config, lead=lead_from_decision(person, decision, relay_id),
        owner_email=routing.owner_email, tier=decision.sla.tier if decision.sla else routing.tier,
        due=decision.sla.due_at if decision.sla else None, source_key=source,
    )


OPERATIONS_CONNECTION = "relay"
"""The ``connection`` of an operations alert's notification row: Relay itself, not a CRM."""

OPERATIONS_OBJECT = "operations"
"""The ``object`` of an operations alert's notification row; its ``crm_id`` is the UTC day it was queued for."""


def operations_facts(kind: OperationsKind | str, facts: Mapping[str, object]) -> dict[str, FactValue]:
    """``facts`` checked against the facts of ``kind`` (:data:`~connector.notify.settings.OPERATIONS_EVENTS`):
    each one given, none unknown, each a JSON scalar or a list of texts (a tuple is taken as a list, a set
    as a sorted list).

    Raises:
        ValueError: naming the kind and the fact that is missing, unknown or of the wrong type.
    """
    try:
        event_kind = OperationsKind(kind)
    except ValueError:
        raise ValueError(f"unknown operations alert kind {kind!r} (known: {', '.join(OPERATIONS_EVENTS)})") from None
    expected = OPERATIONS_EVENTS[event_kind].facts
    missing = [name for name in expected if name not in facts]
    if missing:
        raise ValueError(f"{event_kind} alert misses the fact(s) {', '.join(missing)} (it needs: {', '.join(expected)})")
    unknown = sorted(str(name) for name in facts if name not in expected)
    if unknown:
        raise ValueError(f"{event_kind} alert has the unknown fact(s) {', '.join(unknown)} "
                         f"(it takes: {', '.join(expected)})")
    checked: dict[str, FactValue] = {}
    for name in expected:
        value = facts[name]
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, (set, frozenset)):
            value = sorted(value)
        checked[name] = check_fact(event_kind, name, value)
    return checked


def operations_idempotency_key(kind: OperationsKind, facts: Mapping[str, FactValue], day: str,
                               channel: ChannelName, recipient: str) -> str:
    """The key of one operations alert: its kind, the UTC ``day``, the values of the kind's key facts,
    the channel and the recipient. The same event again that day queues nothing; another value of a
    key fact (a different planned merge count) is news at once, and the next day tells again."""
    key = json.dumps({name: facts[name] for name in OPERATIONS_EVENTS[kind].key}, sort_keys=True)
    digest = hashlib.sha256(
        f"operations\x1f{kind.value}\x1f{day}\x1f{key}\x1f{channel.value}\x1f{recipient}".encode()).hexdigest()
    return f"{kind.value}:{channel.value}:{digest[:48]}"


def plan_operations_alerts(
    config: RelayConfig, kind: OperationsKind | str, facts: Mapping[str, object], now: datetime,
) -> list[NotificationIn]:
    """The alerts of one of Relay's own events to the RevOps admins (alerts.yaml ``operations``), to queue.

    One notification per channel of the section; a channel that is not configured is queued as
    skipped, with the reason, as a lead's alerts are.

    Args:
        config: Relay's configuration (alerts.yaml's ``operations`` and channels).
        kind: The event (``merge_guard_stopped``).
        facts: What its message names: exactly the facts of the kind (``OPERATIONS_EVENTS``).
        now: When it happened (time-zone aware); its UTC day is part of the idempotency key.

    Returns:
        The notifications (none when alerts are off or alerts.yaml has no ``operations`` section).

    Raises:
        ValueError: the kind is unknown, a fact is missing, unknown or malformed, or ``now`` is naive.
    """
    checked = operations_facts(kind, facts)
    event_kind = OperationsKind(kind)
    if now.tzinfo is None:
        raise ValueError(f"{event_kind} alert: now {now.isoformat()} has no time zone")
    alerts = config.alerts
    if alerts is None or not alerts.enabled or alerts.operations is None:
        return []
    operations = alerts.operations
    recipient = Recipient(email=operations.email, name=operations.name, slack=operations.slack, role="operations")
    day = now.astimezone(UTC).date().isoformat()
    alert = OperationsAlert(kind=event_kind, recipient=recipient, facts=checked, at=now)
    items: list[NotificationIn] = []
    for channel in operations.channels:
        address = recipient.address(channel) or ""
        items.append(NotificationIn(
            idempotency_key=operations_idempotency_key(event_kind, checked, day, channel, address),
            kind=event_kind.value, channel=channel.value, recipient=address, connection=OPERATIONS_CONNECTION,
            object_name=OPERATIONS_OBJECT, crm_id=day, payload=alert.to_json(),
            # A channel that is not configured is recorded as skipped now: no sender claims it.
            skipped=alerts.channels.missing(channel),
        ))
    return items


def queue_operations_alert(
    config: RelayConfig, engine: Engine, kind: OperationsKind | str, facts: Mapping[str, object], now: datetime,
) -> int:
    """Queue the alerts of one of Relay's own events for the RevOps admins, in a transaction of its own.

    Idempotent per kind, UTC day and the kind's key facts (``merge_guard_stopped``: the
    connections and the planned merge count): a guard that stops every hour on the same
    planned merges tells the admins once a day; a run planning a different count is news at
    once. The sender (:func:`send_pending_notifications`) sends them with the lead alerts.

    Args:
        config: Relay's configuration.
        engine: Relay's database.
        kind: The event (``merge_guard_stopped``).
        facts: Exactly the facts of the kind (``OPERATIONS_EVENTS``), e.g. ``reason``, ``planned_sets``,
            ``records``, ``connections`` for ``merge_guard_stopped``.
        now: When it happened (time-zone aware).

    Returns:
        How many notifications were newly queued, skipped ones (channel not configured) included;
        0 when alerts are off, alerts.yaml has no ``operations`` section, or the same alert was
        queued earlier that day.

    Raises:
        ValueError: the kind is unknown, a fact is missing, unknown or malformed, or ``now`` is naive.
    """
    items = plan_operations_alerts(config, kind, facts, now)
    if not items:
        return 0
    with session_factory(engine).begin() as session:
        return Repositories(session).notifications.enqueue_many(items, now=now)


@dataclass
class SendSummary:
    """What one sending pass did: notifications by outcome, and the errors of those that failed."""

    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.outcomes[NotificationStatus.SENT.value]


def _backoff(alerts: AlertsFile) -> Any:
    delivery = alerts.delivery

    def delay(attempts: int) -> timedelta:
        seconds = min(delivery.backoff_seconds * 2 ** max(0, attempts - 1), delivery.max_backoff_seconds)
        return max(timedelta(seconds=seconds), MIN_RETRY_DELAY)

    return delay


def send_pending_notifications(
    config: RelayConfig, engine: Engine, *, now: datetime | None = None, limit: int = 1_000,
) -> SendSummary:
    """Send the notifications that are due, each once; never raises for a channel's failure.

    Claims up to ``delivery.batch_size`` due notifications at a time (other senders skip
    them), sends each, and marks it: ``sent``; ``failed`` with the error, tried again after
    ``backoff_seconds`` doubling per attempt; ``dead`` after ``max_attempts`` or an error no
    retry can fix (a refused address, wrong credentials); ``skipped`` when its channel is
    not configured. Stops when nothing is due or ``limit`` notifications were handled.

    Args:
        config: Relay's configuration (channels, templates, delivery).
        engine: Relay's database.
        now: The time (default: now); a notification is due when its next attempt is not after it.
        limit: At most this many notifications in this pass.

    Returns:
        How many ended in each status, and the errors met.
    """
    summary = SendSummary()
    alerts = config.alerts
    if alerts is None:
        return summary
    at = now if now is not None else datetime.now(UTC)
    sessions = session_factory(engine)
    lease = timedelta(seconds=alerts.delivery.lease_seconds)
    backoff = _backoff(alerts)
    handled = 0
    while handled < limit:
        with sessions.begin() as session:
            claims = Repositories(session).notifications.claim_due(
                now=at, limit=min(alerts.delivery.batch_size, limit - handled), lease=lease)
        if not claims:
            break
        for claim in claims:
            handled += 1
            status, error, provider_id = _deliver(alerts, claim)
            with sessions.begin() as session:
                notifications = Repositories(session).notifications
                if status is NotificationStatus.SENT:
                    marked = notifications.mark_sent(claim, provider_id=provider_id, now=at)
                    final: NotificationStatus | None = status if marked else None
                elif status is NotificationStatus.SKIPPED:
                    final = status if notifications.mark_skipped(claim, error or "", now=at) else None
                else:
                    final = notifications.mark_failed(claim, error or "", retriable=status is NotificationStatus.FAILED,
                                                      max_attempts=alerts.delivery.max_attempts, backoff=backoff,
                                                      now=at)
            if final is None:
                log.warning("notification %s (%s) was claimed by another sender meanwhile", claim.id,
                            claim.idempotency_key)
                continue
            summary.outcomes[final.value] += 1
            if final in (NotificationStatus.FAILED, NotificationStatus.DEAD):
                summary.errors.append(f"notification {claim.id} ({claim.channel.value} to {claim.recipient or '-'}, "
                                      f"{claim.kind} {claim.connection}/{claim.object}/{claim.crm_id}): {error}")
                log.warning("alert %s %s: %s (attempt %d)", claim.id, final.value, error, claim.attempts)
    return summary


def _deliver(alerts: AlertsFile, claim: Notification) -> tuple[NotificationStatus, str | None, str | None]:
    """Send one claimed notification: (``sent``, None, provider id), (``failed``/``dead``, error, None)
    or (``skipped``, reason, None). ``failed`` means the error may pass on another attempt."""
    channel = ChannelName(claim.channel.value)
    missing = alerts.channels.missing(channel)
    if missing is not None:
        return NotificationStatus.SKIPPED, missing, None
    try:
        alert = alert_from_json(claim.payload)
        if isinstance(alert, OperationsAlert):
            operations_facts(alert.kind, alert.facts)  # each fact of its kind, none other
    except ValueError as exc:
        return NotificationStatus.DEAD, f"notification {claim.id}: {exc}", None
    if isinstance(alert, OperationsAlert):
        template = (alerts.operations.template(alert.kind) if alerts.operations is not None
                    else OPERATIONS_EVENTS[alert.kind].template)
        message = render_operations(alert, template)
    else:
        message = render(alert, alerts.template(alert.kind))
    try:
        delivery = send(alerts.channels, channel, alert, claim.recipient, message, claim.idempotency_key)
    except ChannelError as exc:
        return (NotificationStatus.FAILED if exc.retriable else NotificationStatus.DEAD), str(exc), None
    return NotificationStatus.SENT, None, delivery.provider_id


def send_alerts_now(config: RelayConfig, engine: Engine, *, now: datetime | None = None) -> SendSummary | None:
    """Send what a run just queued, right after it (the minute job catches anything left); never raises.

    A failure here (the store away for a moment) is logged and left to the job: the alerts
    stay queued, and the run that queued them has done its work.
    """
    try:
        return send_pending_notifications(config, engine, now=now)
    except Exception as exc:
        log.warning("alerts were queued but not sent now (%s: %s); the minute job sends them", type(exc).__name__, exc)
        return None

