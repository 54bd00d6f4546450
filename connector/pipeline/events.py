"""Stored webhook events turned into decisions: the records they name, read by id, decided as a sync decides.

The intake (``relay serve``) stores what the CRMs push; this reads the unprocessed events,
groups them by connection and object (a burst of events about one record is one read), and
runs an ``events`` sync of each connection over those records: the same mapping, decision
core, page transaction and outbox as a scheduled sync, so there is no second decision path.
The events are marked processed once their run succeeded; a run that fails leaves them for
the next pass (at least once in, and the outbox's idempotency keys keep the effects once).
Events that name no record (an association change) or an object the connection does not
sync are marked processed with the rest: there is nothing of theirs to decide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from connector.config.loader import RelayConfig
from connector.pipeline.context import utc_now
from connector.pipeline.summary import SyncSummary
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.repositories import Inbox, InboxEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventsRun:
    """What one pass did for one connection.

    Attributes:
        connection: The connection the events came from.
        events: Events processed.
        records: Distinct records they named (read by id and decided).
        summary: The events run's summary (None when no event named a record).
    """

    connection: str
    events: int
    records: int
    summary: SyncSummary | None


def process_events(
    config: RelayConfig, engine: Engine, *, limit: int = 1_000, now: Callable[[], datetime] = utc_now
) -> list[EventsRun]:
    """Decide the records named by up to ``limit`` unprocessed events, oldest first, one run per connection.

    Events of a connection ``relay.yaml`` no longer has stay unprocessed (logged), for when it
    comes back. A run that fails raises after the connections before it were processed.
    """
    sessions = session_factory(engine)
    with sessions.begin() as session:
        events = Inbox(session).unprocessed(limit=limit)
    by_connection: dict[str, list[InboxEvent]] = {}
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        by_connection.setdefault(str(payload.get("connection")), []).append(event)
    done: list[EventsRun] = []
    for connection, group in by_connection.items():
        if connection not in config.relay.connections:
            log.warning("%d events of connection %r, which relay.yaml does not have, are left unprocessed",
                        len(group), connection)
            continue
        changed: dict[str, list[str]] = {}
        for event in group:
            payload = event.payload
            if payload.get("object") and payload.get("crm_id"):
                ids = changed.setdefault(str(payload["object"]), [])
                if str(payload["crm_id"]) not in ids:
                    ids.append(str(payload["crm_id"]))
        summary = run_sync(config, connection, engine, changed=changed, now=now) if changed else None
        with sessions.begin() as session:
            Inbox(session).mark_processed_many([event.id for event in group], now=now())
        records = sum(len(ids) for ids in changed.values())
        log.info("%s: %d events, %d records decided", connection, len(group), records)
        done.append(EventsRun(connection, len(group), records, summary))
    return done
