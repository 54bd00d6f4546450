"""The webhook inbox: events stored before they are acknowledged, processed later, each once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.store.errors import InboxEventNotFound
from connector.store.models import InboxRow
from connector.store.repositories._common import (
    insert_many_or_ignore,
    insert_or_ignore,
    is_postgresql,
    json_document,
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


def _event(row: InboxRow) -> InboxEvent:
    return InboxEvent(
        id=row.id,
        provider=row.provider,
        event_key=row.event_key,
        payload=row.payload,
        received_at=row.received_at,
        processed_at=row.processed_at,
    )


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
        self, provider: str, events: Sequence[tuple[str, Any]], *, received_at: datetime | None = None
    ) -> int:
        """Store webhook events, each unless the same (provider, event key) was stored before.

        One executemany ``INSERT ... ON CONFLICT DO NOTHING``; every event is checked before
        anything is written. A key that comes twice in ``events`` is stored once.

        Args:
            provider: e.g. ``"hubspot"``.
            events: ``(event_key, payload)`` pairs, in the order received.
            received_at: When they arrived; defaults to now.

        Returns:
            How many events were new (the others are redeliveries).
        """
        provider = text_value(provider, "webhook_inbox.provider", PROVIDER_LEN)
        at = when(received_at, f"webhook_inbox[{provider}].received_at")
        rows: dict[str, dict[str, Any]] = {}
        for event_key, payload in events:
            key = text_value(event_key, f"webhook_inbox[{provider}].event_key", EVENT_KEY_LEN)
            if key not in rows:
                rows[key] = {"provider": provider, "event_key": key, "received_at": at,
                             "payload": json_document(payload, f"webhook_inbox[{provider}/{key}].payload")}
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
