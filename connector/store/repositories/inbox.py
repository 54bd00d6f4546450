"""The webhook inbox: events stored before they are acknowledged, processed later, each once."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from connector.store.errors import InboxEventNotFound, InvalidStoreValue
from connector.store.models import CONNECTION_LEN, CRM_ID_LEN, HOLDER_LEN, OBJECT_LEN, InboxRow
from connector.store.repositories._common import (
    insert_many_or_ignore,
    insert_or_ignore,
    is_postgresql,
    json_document,
    optional_text,
    text_value,
    when,
)

PROVIDER_LEN = 50
EVENT_KEY_LEN = 500


@dataclass(frozen=True)
class InboxEvent:
    """A stored webhook event."""

    id: int
    provider: str
    event_key: str
    payload: Any
    received_at: datetime
    processed_at: datetime | None
    claimed_by: str | None = None
    claimed_until: datetime | None = None


@dataclass(frozen=True)
class EventRecord:
    """The record an event is about, kept in its own columns so claims can keep a record to one worker.

    Attributes:
        connection: The connection that pushed it.
        object: The CRM object (None: the event names no record, e.g. an association change).
        crm_id: The record's CRM id (None likewise).
    """

    connection: str | None = None
    object: str | None = None
    crm_id: str | None = None


def _event(row: InboxRow) -> InboxEvent:
    return InboxEvent(
        id=row.id,
        provider=row.provider,
        event_key=row.event_key,
        payload=row.payload,
        received_at=row.received_at,
        processed_at=row.processed_at,
        claimed_by=row.claimed_by,
        claimed_until=row.claimed_until,
    )


def _record_columns(record: EventRecord | None, where: str) -> dict[str, str | None]:
    record = record or EventRecord()
    if not isinstance(record, EventRecord):
        raise InvalidStoreValue(f"{where}: expected an EventRecord, got {type(record).__name__}")
    return {
        "connection": optional_text(record.connection, f"{where}.connection", CONNECTION_LEN),
        "object": optional_text(record.object, f"{where}.object", OBJECT_LEN),
        "crm_id": optional_text(record.crm_id, f"{where}.crm_id", CRM_ID_LEN),
    }


class Inbox:
    """Repository of the webhook inbox. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def store(
        self, provider: str, event_key: str, payload: Any, *, received_at: datetime | None = None
    ) -> bool:
        """Store a webhook event unless the same (provider, event key) was stored before.

        Args:
            provider: e.g. ``"hubspot"`` or ``"salesforce"``.
            event_key: The event's unique key (for HubSpot: event id, subscription
                type, object id and occurred-at combined).
            payload: The event as received (JSON-like).
            received_at: When it arrived; defaults to now.

        Returns:
            ``True`` if the event is new, ``False`` if it is a redelivery.
        """
        provider = text_value(provider, "webhook_inbox.provider", PROVIDER_LEN)
        event_key = text_value(event_key, f"webhook_inbox[{provider}].event_key", EVENT_KEY_LEN)
        where = f"webhook_inbox[{provider}/{event_key}]"
        inserted = insert_or_ignore(
            self._session,
            InboxRow,
            {
                "provider": provider,
                "event_key": event_key,
                "payload": json_document(payload, f"{where}.payload"),
                "received_at": when(received_at, f"{where}.received_at"),
            },
            conflict_columns=["provider", "event_key"],
            returning=[InboxRow.id],
        )
        return inserted is not None

    def store_many(
        self,
        provider: str,
        events: Sequence[tuple[str, Any] | tuple[str, Any, EventRecord | None]],
        *,
        received_at: datetime | None = None,
    ) -> int:
        """Store webhook events, each unless the same (provider, event key) was stored before.

        One executemany ``INSERT ... ON CONFLICT DO NOTHING``; every event is checked before
        anything is written. A key that comes twice in ``events`` is stored once.

        Args:
            provider: e.g. ``"hubspot"``.
            events: ``(event_key, payload)`` or ``(event_key, payload, record)`` tuples, in the
                order received; ``record`` names the record the event is about.
            received_at: When they arrived; defaults to now.

        Returns:
            How many events were new (the others are redeliveries).
        """
        provider = text_value(provider, "webhook_inbox.provider", PROVIDER_LEN)
        at = when(received_at, f"webhook_inbox[{provider}].received_at")
        rows: dict[str, dict[str, Any]] = {}
        for event in events:
            event_key, payload = event[0], event[1]
            record = event[2] if len(event) > 2 else None
            key = text_value(event_key, f"webhook_inbox[{provider}].event_key", EVENT_KEY_LEN)
            where = f"webhook_inbox[{provider}/{key}]"
            if key not in rows:
                rows[key] = {"provider": provider, "event_key": key, "received_at": at,
                             "payload": json_document(payload, f"{where}.payload"),
                             **_record_columns(record, where)}
        inserted = insert_many_or_ignore(self._session, InboxRow, list(rows.values()),
                                         ["provider", "event_key"], returning=["id"])
        return len(inserted)

    def unprocessed(
        self, provider: str | None = None, limit: int = 100, *, lock: bool = False
    ) -> list[InboxEvent]:
        """Return events not yet processed, oldest first.

        Args:
            provider: Only this provider's events; ``None`` for all.
            limit: At most this many.
            lock: On PostgreSQL, lock the rows and skip those another worker holds.
        """
        query = select(InboxRow).where(InboxRow.processed_at.is_(None))
        if provider is not None:
            query = query.where(InboxRow.provider == provider)
        query = query.order_by(InboxRow.id).limit(limit)
        if lock and is_postgresql(self._session):
            query = query.with_for_update(skip_locked=True)
        return [
            _event(row)
            for row in self._session.scalars(query.execution_options(populate_existing=True))
        ]

    def claim(
        self,
        holder: str,
        *,
        now: datetime,
        lease: timedelta,
        limit: int = 100,
        provider: str | None = None,
        connections: Collection[str] | None = None,
    ) -> list[InboxEvent]:
        """Claim up to ``limit`` unprocessed events for ``holder`` until ``now + lease``, oldest first.

        An event is free when nobody claimed it or its claim expired (the worker died or
        gave up). Events about a record another holder's live claim covers are left: one
        record is never decided by two workers at once, whatever order its events came
        in. Every free event of a record that is claimed goes with it (up to ``limit``).
        On PostgreSQL the claim is serialised by a transaction-level advisory lock (claims
        are short) and the rows are locked; on SQLite the write transaction serialises it.

        Args:
            holder: Who claims (``host:pid:start/thread``).
            now: The time; claims that end before it are expired.
            lease: How long the claim holds (longer than a pass takes).
            limit: At most this many events.
            provider: Only this provider's events; ``None`` for all.
            connections: Only events of these connections (and those that name none);
                ``None`` for all.

        Returns:
            The claimed events, oldest first.
        """
        holder = text_value(holder, "webhook_inbox.claimed_by", HOLDER_LEN)
        at = when(now, "webhook_inbox claim time")
        until = at + lease
        if is_postgresql(self._session):
            self._session.execute(text("SELECT pg_advisory_xact_lock(hashtext('relay.webhook_inbox.claim'))"))
        held = aliased(InboxRow)
        busy = (
            select(held.id)
            .where(
                held.processed_at.is_(None), held.claimed_until >= at, held.claimed_by != holder,
                held.connection == InboxRow.connection, held.object == InboxRow.object, held.crm_id == InboxRow.crm_id,
            )
            .exists()
        )
        free = or_(InboxRow.claimed_until.is_(None), InboxRow.claimed_until < at, InboxRow.claimed_by == holder)
        query = select(InboxRow.id).where(InboxRow.processed_at.is_(None), free, ~busy)
        if provider is not None:
            query = query.where(InboxRow.provider == provider)
        if connections is not None:
            query = query.where(or_(InboxRow.connection.in_(sorted(connections)), InboxRow.connection.is_(None)))
        ids = list(self._session.scalars(query.order_by(InboxRow.id).limit(limit)))
        if not ids:
            return []
        self._session.execute(
            update(InboxRow).where(InboxRow.id.in_(ids)).values(claimed_by=holder, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        rows = self._session.scalars(
            select(InboxRow).where(InboxRow.id.in_(ids)).order_by(InboxRow.id).execution_options(populate_existing=True)
        )
        return [_event(row) for row in rows]

    def release(self, event_ids: Sequence[int], holder: str) -> int:
        """Give up ``holder``'s claims on these events (a pass that failed): the next pass takes them at once."""
        done = 0
        wanted = sorted(set(event_ids))
        for start in range(0, len(wanted), 500):
            result = self._session.execute(
                update(InboxRow)
                .where(InboxRow.id.in_(wanted[start:start + 500]), InboxRow.claimed_by == holder,
                       InboxRow.processed_at.is_(None))
                .values(claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            done += int(getattr(result, "rowcount", 0))
        return done

    def release_abandoned(self, *, now: datetime, is_gone: Callable[[str], bool]) -> int:
        """Free the live claims of workers ``is_gone`` says are dead (killed on this host): their events are free at once."""
        at = when(now, "webhook_inbox claim time")
        holders = self._session.scalars(
            select(InboxRow.claimed_by).distinct().where(InboxRow.processed_at.is_(None), InboxRow.claimed_until >= at)
        )
        gone = sorted(holder for holder in holders if holder and is_gone(holder))
        if not gone:
            return 0
        result = self._session.execute(
            update(InboxRow).where(InboxRow.claimed_by.in_(gone), InboxRow.processed_at.is_(None))
            .values(claimed_until=None).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))

    def backlog(self, *, now: datetime) -> dict[str, int]:
        """Unprocessed events: ``waiting`` (free), ``claimed`` (a live claim), ``expired`` (a claim that ran out)."""
        at = when(now, "webhook_inbox backlog time")
        state = case((InboxRow.claimed_until.is_(None), "waiting"), (InboxRow.claimed_until < at, "expired"),
                     else_="claimed")
        rows = self._session.execute(
            select(state, func.count()).where(InboxRow.processed_at.is_(None)).group_by(state)
        )
        counts = {"waiting": 0, "claimed": 0, "expired": 0}
        counts.update({str(name): int(count) for name, count in rows})
        return counts

    def mark_processed(self, event_id: int, *, now: datetime | None = None) -> None:
        """Record that an event was processed (its decisions are in the same transaction).

        Raises:
            InboxEventNotFound: If there is no such event.
        """
        result = self._session.execute(
            update(InboxRow)
            .where(InboxRow.id == event_id)
            .values(processed_at=when(now, "webhook_inbox.processed_at"))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise InboxEventNotFound(event_id)

    def mark_processed_many(self, event_ids: Sequence[int], *, now: datetime | None = None) -> int:
        """Record that these events were processed (one UPDATE per 500); returns how many were not already."""
        at = when(now, "webhook_inbox.processed_at")
        done = 0
        wanted = sorted(set(event_ids))
        for start in range(0, len(wanted), 500):
            result = self._session.execute(
                update(InboxRow)
                .where(InboxRow.id.in_(wanted[start:start + 500]), InboxRow.processed_at.is_(None))
                .values(processed_at=at)
                .execution_options(synchronize_session=False)
            )
            done += int(getattr(result, "rowcount", 0))
        return done
