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
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.budget import budget_limits
from connector.config.loader import RelayConfig
from connector.pipeline.capture import capture_into
from connector.pipeline.connections import resolve_connection
from connector.pipeline.context import utc_now
from connector.pipeline.heartbeat import holder_is_gone, this_process
from connector.pipeline.records import holds_values
from connector.pipeline.summary import SyncSummary
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.repositories import ConnectionStates, Inbox, InboxEvent, Outbox, Records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventsRun:
    """What one pass did for one connection.

    Attributes:
        connection: The connection the events came from.
        events: Events processed.
        records: Distinct records they named (read by id and decided).
        summary: The events run's summary (None when no event named a record).
        echoes: Events whose values the stored records already held (Relay's own writes coming
            back): processed without a read.
        own_writes: Records not read because every change the CRM pushed about them was made by
            the user Relay acts as (a Salesforce outbound message's ``LastModifiedById``).
    """

    connection: str
    events: int
    records: int
    summary: SyncSummary | None
    echoes: int = 0
    own_writes: int = 0


CLAIM_LEASE = timedelta(minutes=5)
"""How long a pass holds the events it claimed. A worker that dies leaves its claim to run
out; the next pass (any worker's, or the reconciling job each minute) takes the events again."""


def process_events(
    config: RelayConfig,
    engine: Engine,
    *,
    limit: int = 1_000,
    now: Callable[[], datetime] = utc_now,
    holder: str | None = None,
    lease: timedelta = CLAIM_LEASE,
) -> list[EventsRun]:
    """Claim up to ``limit`` unprocessed events, oldest first, and decide the records they name, one run per connection.

    Several workers may call this at once (on PostgreSQL; SQLite serialises them): each
    claims its own events for ``lease``, and events about a record another worker holds
    wait for it, so a record is never decided by two workers at once. Events of a
    connection ``relay.yaml`` does not have are not claimed: they stay stored for when it
    comes back. A run that fails gives its claims back (the next pass takes them at once)
    and raises after the connections before it were processed.

    Args:
        config: The configuration.
        engine: Relay's store.
        limit: At most this many events per pass.
        now: Clock.
        holder: Who claims (default: this process and thread).
        lease: How long the claim holds.
    """
    holder = holder or f"{this_process()}/{threading.get_ident()}"
    sessions = session_factory(engine)
    with sessions.begin() as session:
        inbox = Inbox(session)
        inbox.release_abandoned(now=now(), is_gone=holder_is_gone)  # workers killed on this host
        paused = ConnectionStates(session).all_paused()  # their events wait in the inbox until resumed
        events = inbox.claim(holder, now=now(), lease=lease, limit=limit,
                             connections=[c for c in config.relay.connections if c not in paused])
    by_connection: dict[str, list[InboxEvent]] = {}
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        by_connection.setdefault(str(payload.get("connection")), []).append(event)
    done: list[EventsRun] = []
    for connection, group in by_connection.items():
        if connection not in config.relay.connections:  # stored before its columns named it (an old event)
            log.warning("%d events of connection %r, which relay.yaml does not have, are left unprocessed",
                        len(group), connection)
            with sessions.begin() as session:
                Inbox(session).release([event.id for event in group], holder)
            continue
        changed: dict[str, list[str]] = {}
        authors: dict[str, dict[str, set[str | None]]] = {}
        echoes = _echoes(config, connection, group, sessions)
        for event in group:
            payload = event.payload if isinstance(event.payload, dict) else {}
            if payload.get("object") and payload.get("crm_id") and event.id not in echoes:
                obj, crm_id = str(payload["object"]), str(payload["crm_id"])
                ids = changed.setdefault(obj, [])
                if crm_id not in ids:
                    ids.append(crm_id)
                by = payload.get("changed_by")
                authors.setdefault(obj, {}).setdefault(crm_id, set()).add(by if isinstance(by, str) else None)
        changed_by = {obj: {i: frozenset(users) for i, users in records.items()} for obj, records in authors.items()}
        try:
            capture_into(changed, config, engine, connection, group, now=now())  # form/list people: found or created
            summary = run_sync(config, connection, engine, changed=changed, changed_by=changed_by,
                               now=now) if changed else None
        except BaseException:
            with sessions.begin() as session:
                Inbox(session).release([event.id for event in events], holder)  # processed ones stay processed
            raise
        with sessions.begin() as session:
            Inbox(session).mark_processed_many([event.id for event in group], now=now())
        records = sum(len(ids) for ids in changed.values())
        own_writes = summary.echoes if summary is not None else 0  # records whose changes were all Relay's user's
        records -= own_writes
        log.info("%s: %d events (%d echoes of what the store holds, %d records changed only by Relay's own user), "
                 "%d records decided", connection, len(group), len(echoes), own_writes, records)
        done.append(EventsRun(connection, len(group), records, summary, len(echoes), own_writes))
    return done


def _echoes(config: RelayConfig, connection: str, events: Sequence[InboxEvent],
            sessions: sessionmaker[Session]) -> set[int]:
    """The events whose reported values the stored records already hold: nothing new to read.

    Relay's own writes come back as webhooks (HubSpot sends a property change for each
    property Relay wrote). The snapshot of a record takes on what Relay wrote once it is sent,
    so such a change reports what the store holds already: reading the record again would
    cost an API call and decide nothing. Only events that report their values (the CRM unit
    fills ``WebhookEvent.changes``) are judged; the others are read.
    """
    reported: dict[str, list[tuple[InboxEvent, str, dict[str, Any]]]] = {}
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        changes, obj, crm_id = payload.get("changes"), payload.get("object"), payload.get("crm_id")
        if isinstance(changes, dict) and changes and obj and crm_id:
            reported.setdefault(str(obj), []).append((event, str(crm_id), changes))
    if not reported:
        return set()
    resolved = resolve_connection(config, connection)
    echoes: set[int] = set()
    with sessions.begin() as session:
        records = Records(session)
        for object_name, items in reported.items():
            mapping = resolved.mapping(object_name)
            if mapping is None:
                continue
            snapshots = records.get_many(connection, object_name, [crm_id for _, crm_id, _ in items])
            for event, crm_id, changes in items:
                snapshot = snapshots.get(crm_id)
                if snapshot is not None and not snapshot.deleted and holds_values(mapping, snapshot.canonical, changes):
                    echoes.add(event.id)
    return echoes


def pause_after(config: RelayConfig, runs: Sequence[EventsRun]) -> float:
    """Seconds to wait before the next pass, so that passes do not outrun the CRMs' call windows.

    A pass costs a few calls however few events it holds (a batch read, a batch update, the
    tasks). Back-to-back passes under a steady stream would spend a HubSpot portal's 190 calls
    per 10 s in seconds and then stall every event behind the budget; waiting, after each
    pass, the time its calls take at the window's rate lets the next pass gather the events
    that arrived meanwhile into one batch instead.
    """
    pause = 0.0
    for run in runs:
        if run.summary is None or run.connection not in config.relay.connections:
            continue
        limits = budget_limits(config.connection(run.connection))
        if limits.window is None:
            continue
        per_call = limits.window_seconds / max(1, limits.window.effective(None))
        pause = max(pause, run.summary.api_call_total * per_call)
    return min(pause, MAX_PAUSE)


MAX_PAUSE = 2.0
"""The longest wait between two passes (a pass that needed many calls still lets the next one start soon)."""


LEFT_AFTER = timedelta(minutes=1)
"""A message still waiting this long with no live claim was left by a writer that died: the reconciler sends it."""


def send_left_messages(
    config: RelayConfig, engine: Engine, *, now: Callable[[], datetime] = utc_now, left_after: timedelta = LEFT_AFTER
) -> list[str]:
    """Send what writers that died left in the outbox; returns the connections that had some.

    A run sends the messages it enqueued within moments, and the next run of a connection
    sends what a crashed one left; with events arriving rarely and the schedule far off,
    this does it sooner: for each connection whose oldest unclaimed waiting message is
    older than ``left_after``, an events run with no records (it only drains the outbox).
    """
    sessions = session_factory(engine)
    sent: list[str] = []
    for connection in config.relay.connections:
        with sessions.begin() as session:
            oldest = Outbox(session).oldest_unclaimed(connection, now=now())
        if oldest is None or now() - oldest < left_after:
            continue
        log.info("%s: outbox messages waiting since %s: sending them", connection, oldest.isoformat())
        run_sync(config, connection, engine, changed={}, now=now)
        sent.append(connection)
    return sent


class EventPump:
    """Decides stored events soon after they arrive: ``relay serve``'s own pass, woken by the intake.

    ``poke()`` (the intake calls it once events are stored) wakes a background thread, which
    waits ``settle_seconds`` so a burst of deliveries becomes one pass, then runs
    :func:`process_events` until the inbox holds nothing it can process, waiting between two
    passes the time the last one's calls take at the CRM's call window (:func:`pause_after`),
    so that under a steady stream a pass batches what arrived meanwhile. One pass at a time;
    a pass that fails (the CRM away, another run of the connection going on) is logged and
    tried again after ``retry_seconds``: the events stay stored meanwhile.
    """

    def __init__(self, config: RelayConfig, engine: Engine, *, settle_seconds: float = 0.2,
                 retry_seconds: float = 5.0, limit: int = 1_000) -> None:
        self.config = config
        self.engine = engine
        self.settle_seconds = settle_seconds
        self.retry_seconds = retry_seconds
        self.limit = limit
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="relay-event-pump", daemon=True)

    def start(self) -> EventPump:
        """Start the thread (and one pass for what is stored already) unless it runs; returns self."""
        with self._lock:
            if not self._thread.is_alive() and not self._stop.is_set():
                self._thread.start()
        self._wake.set()
        return self

    def poke(self) -> None:
        """Events were stored: run a pass soon (starting the thread on first use)."""
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the pass under way, if any."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self.settle_seconds)  # a burst of deliveries becomes one pass
            self._wake.clear()
            try:
                while not self._stop.is_set():
                    runs = process_events(self.config, self.engine, limit=self.limit)
                    if not runs:
                        break
                    self.passes += 1
                    self._stop.wait(pause_after(self.config, runs))  # the next pass takes what arrives meanwhile
            except Exception as exc:  # the events stay stored: try again a little later
                log.warning("deciding pushed events failed (%s: %s); trying again in %.0f s", type(exc).__name__,
                            exc, self.retry_seconds)
                if not self._stop.wait(self.retry_seconds):
                    self._wake.set()
