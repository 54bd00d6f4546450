"""Notifications: alerts queued with the decision that causes them, claimed, sent and marked once.

A notification is queued in the transaction of its decision, keyed by an idempotency key
(the decision, the event kind, the channel), so a decision replayed queues nothing new.
Senders claim due notifications under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
a conditional update everywhere), send them outside any transaction, then mark each sent,
failed (retried after a backoff) or dead (given up, error kept). A sender that dies
mid-way leaves its claims to expire: they are claimed again after the lease.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.orm import Session

from connector.store._types import scrub_text
from connector.store.errors import InvalidStoreValue
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    NotificationChannel,
    NotificationRow,
    NotificationStatus,
)
from connector.store.repositories._common import (
    aware,
    chunked,
    enum_value,
    insert_many_or_ignore,
    is_postgresql,
    json_object,
    optional_text,
    table_of,
    text_value,
)

IDEMPOTENCY_KEY_LEN = 200
FINAL = (NotificationStatus.SENT.value, NotificationStatus.DEAD.value, NotificationStatus.SKIPPED.value)


@dataclass(frozen=True)
class NotificationIn:
    """One alert to queue with :meth:`Notifications.enqueue_many`.

    Attributes:
        idempotency_key: Unique per decision, event kind and channel: queuing it again adds nothing.
        kind: The event kind (``assigned``, ``reminder``, ...).
        channel: ``email``, ``sms`` or ``slack``.
        recipient: The address the channel uses (email, phone, Slack handle; empty for a plain Slack post).
        connection, object_name, crm_id: The record it is about.
        payload: The alert (JSON), rendered when sent.
        relay_id: The person's Relay id.
        tier: The SLA tier.
        skipped: Why it cannot be sent (recorded as ``skipped``, never sent); None: it waits to be sent.
    """

    idempotency_key: str
    kind: str
    channel: NotificationChannel | str
    recipient: str
    connection: str
    object_name: str
    crm_id: str
    payload: Mapping[str, Any] = field(hash=False)
    relay_id: str | None = None
    tier: str | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class Notification:
    """One queued alert and where its delivery stands."""

    id: int
    idempotency_key: str
    kind: str
    channel: NotificationChannel
    recipient: str
    connection: str
    object: str
    crm_id: str
    relay_id: str | None
    tier: str | None
    payload: dict[str, Any]
    status: NotificationStatus
    attempts: int
    last_error: str | None
    provider_id: str | None
    created_at: datetime
    next_attempt_at: datetime
    claimed_until: datetime | None
    sent_at: datetime | None


def _notification(row: NotificationRow | Row[Any]) -> Notification:
    return Notification(
        id=row.id, idempotency_key=row.idempotency_key, kind=row.kind, channel=NotificationChannel(row.channel),
        recipient=row.recipient, connection=row.connection, object=row.object, crm_id=row.crm_id,
        relay_id=row.relay_id, tier=row.tier, payload=dict(row.payload), status=NotificationStatus(row.status),
        attempts=row.attempts, last_error=row.last_error, provider_id=row.provider_id, created_at=row.created_at,
        next_attempt_at=row.next_attempt_at, claimed_until=row.claimed_until, sent_at=row.sent_at,
    )


def _due(table: Any, now: datetime) -> Any:
    """Waiting rows whose time has come, and claims whose lease ran out (their sender died)."""
    return or_(
        and_(table.c.status.in_((NotificationStatus.PENDING.value, NotificationStatus.FAILED.value)),
             table.c.next_attempt_at <= now),
        and_(table.c.status == NotificationStatus.SENDING.value, table.c.claimed_until < now),
    )


class Notifications:
    """Repository of the notifications. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def enqueue_many(self, items: Sequence[NotificationIn], *, now: datetime) -> int:
        """Queue alerts, once per idempotency key (one executemany per 500).

        A key already queued (whatever its status) adds nothing: a decision replayed,
        or a page retried, sends no second message.

        Returns:
            How many were newly queued.

        Raises:
            InvalidStoreValue: naming the notification (its key) and the field that is wrong;
                checked before anything is written.
        """
        at = aware(now, "notifications.enqueue_many now")
        rows = [self._checked(item, at) for item in items]
        inserted = 0
        for batch in chunked(rows):
            inserted += len(insert_many_or_ignore(self._session, NotificationRow, list(batch), ["idempotency_key"],
                                                  returning=["id"]))
        return inserted

    def _checked(self, item: NotificationIn, now: datetime) -> dict[str, Any]:
        key = text_value(item.idempotency_key, "notifications.idempotency_key", IDEMPOTENCY_KEY_LEN)
        where = f"notifications[{key}]"
        channel = enum_value(NotificationChannel, item.channel, f"{where}.channel")
        recipient = item.recipient if isinstance(item.recipient, str) else None
        if recipient is None or len(recipient) > 320:
            raise InvalidStoreValue(f"{where}.recipient: expected an address of at most 320 characters, "
                                    f"got {item.recipient!r}")
        skipped = None if item.skipped is None else scrub_text(str(item.skipped))
        return {
            "idempotency_key": key,
            "kind": text_value(item.kind, f"{where}.kind", 32),
            "channel": channel.value,
            "recipient": scrub_text(recipient),
            "connection": text_value(item.connection, f"{where}.connection", CONNECTION_LEN),
            "object": text_value(item.object_name, f"{where}.object", OBJECT_LEN),
            "crm_id": text_value(item.crm_id, f"{where}.crm_id", CRM_ID_LEN),
            "relay_id": optional_text(item.relay_id, f"{where}.relay_id", RELAY_ID_LEN),
            "tier": optional_text(item.tier, f"{where}.tier", 64),
            "payload": json_object(item.payload, f"{where}.payload"),
            "status": (NotificationStatus.SKIPPED if skipped else NotificationStatus.PENDING).value,
            "attempts": 0,
            "last_error": skipped,
            "provider_id": None,
            "created_at": now,
            "next_attempt_at": now,
            "claimed_until": None,
            "sent_at": None,
        }

    def claim_due(self, *, now: datetime, limit: int, lease: timedelta) -> list[Notification]:
        """Claim up to ``limit`` due notifications for this sender, oldest first.

        Each claimed row becomes ``sending`` until ``now + lease`` (its claim token,
        ``claimed_until``) and counts one attempt, so a message that kills its sender every
        time still ends dead. Rows another sender holds are skipped (PostgreSQL: ``SKIP
        LOCKED``; the update re-checks the condition everywhere, so two senders never claim
        the same row).
        """
        if limit <= 0:
            raise InvalidStoreValue(f"notifications.claim_due limit must be positive, got {limit}")
        at = aware(now, "notifications.claim_due now")
        until = at + lease
        table = table_of(NotificationRow)
        query = select(table.c.id).where(_due(table, at)).order_by(table.c.next_attempt_at, table.c.id).limit(limit)
        if is_postgresql(self._session):
            query = query.with_for_update(skip_locked=True)
        ids = [row.id for row in self._session.execute(query)]
        if not ids:
            return []
        claimed = self._session.execute(
            update(table).where(table.c.id.in_(ids), _due(table, at))
            .values(status=NotificationStatus.SENDING.value, claimed_until=until, attempts=table.c.attempts + 1)
            .returning(*table.c)
        ).all()
        return sorted((_notification(row) for row in claimed), key=lambda n: (n.next_attempt_at, n.id))

    def mark_sent(self, claim: Notification, *, provider_id: str | None, now: datetime) -> bool:
        """Record that the provider took the message. False: the claim was lost (its lease ran out and
        another sender claimed it), nothing changed."""
        table = table_of(NotificationRow)
        done = self._session.execute(
            update(table).where(*self._held(table, claim))
            .values(status=NotificationStatus.SENT.value, sent_at=aware(now, "notifications.mark_sent now"),
                    provider_id=optional_text(provider_id, f"notifications[{claim.idempotency_key}].provider_id", 200),
                    claimed_until=None, last_error=None)
        )
        return bool(getattr(done, "rowcount", 0))

    def mark_failed(self, claim: Notification, error: str, *, retriable: bool, max_attempts: int,
                    backoff: Callable[[int], timedelta], now: datetime) -> NotificationStatus | None:
        """Record a failed attempt: ``failed`` (tried again after ``backoff(attempts)``) or ``dead`` when the
        error cannot pass or ``max_attempts`` were made. The error is kept in ``last_error``.

        Returns:
            The new status; None when the claim was lost (nothing changed).
        """
        at = aware(now, "notifications.mark_failed now")
        dead = not retriable or claim.attempts >= max_attempts
        status = NotificationStatus.DEAD if dead else NotificationStatus.FAILED
        table = table_of(NotificationRow)
        done = self._session.execute(
            update(table).where(*self._held(table, claim))
            .values(status=status.value, last_error=scrub_text(error), claimed_until=None,
                    next_attempt_at=at if dead else at + backoff(claim.attempts))
        )
        return status if getattr(done, "rowcount", 0) else None

    def mark_skipped(self, claim: Notification, reason: str, *, now: datetime) -> bool:
        """Record that the notification cannot be sent (its channel is not configured); it is never retried."""
        aware(now, "notifications.mark_skipped now")
        table = table_of(NotificationRow)
        done = self._session.execute(
            update(table).where(*self._held(table, claim))
            .values(status=NotificationStatus.SKIPPED.value, last_error=scrub_text(reason), claimed_until=None,
                    attempts=table.c.attempts - 1)  # nothing was attempted
        )
        return bool(getattr(done, "rowcount", 0))

    @staticmethod
    def _held(table: Any, claim: Notification) -> list[Any]:
        if claim.claimed_until is None:
            raise InvalidStoreValue(f"notification {claim.id} ({claim.idempotency_key}) was not claimed")
        return [table.c.id == claim.id, table.c.status == NotificationStatus.SENDING.value,
                table.c.claimed_until == claim.claimed_until]

    def by_key(self, idempotency_key: str) -> Notification | None:
        """The notification with this key, if any."""
        table = table_of(NotificationRow)
        row = self._session.execute(select(table).where(table.c.idempotency_key == idempotency_key)).first()
        return _notification(row) if row is not None else None

    def for_record(self, connection: str, object_name: str, crm_id: str) -> list[Notification]:
        """The notifications about one record, oldest first."""
        table = table_of(NotificationRow)
        rows = self._session.execute(
            select(table).where(table.c.connection == connection, table.c.object == object_name,
                                table.c.crm_id == crm_id).order_by(table.c.id)
        )
        return [_notification(row) for row in rows]

    def all(self, *, limit: int = 10_000) -> list[Notification]:
        """Every notification, oldest first (at most ``limit``)."""
        table = table_of(NotificationRow)
        return [_notification(row) for row in self._session.execute(select(table).order_by(table.c.id).limit(limit))]

    def counts(self) -> dict[NotificationStatus, int]:
        """How many notifications are in each status."""
        rows = self._session.execute(select(NotificationRow.status, func.count()).group_by(NotificationRow.status))
        found = {NotificationStatus(status): int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in NotificationStatus}
