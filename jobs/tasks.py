"""Relay's background jobs: scheduled syncs of each connection, and the events CRMs pushed. Thin: they call the pipeline.

``enqueue_due_syncs`` runs every minute and enqueues ``sync_connection`` for each
connection whose schedule (``config/relay.yaml``: ``every_minutes`` or ``cron``) is due;
``sync_connection`` runs one incremental sync. ``process_events_now`` decides what the webhook
inbox holds (``relay events``): ``relay serve --no-decide`` enqueues it as events arrive, and
every worker that takes one claims its own share of the events (many workers, one stream).
``process_pushed_events`` runs every minute as the reconciler: events whose claim ran out (a
worker died) are decided, and outbox messages a dead writer left are sent.
``fire_sla_clocks`` fires the SLA clock steps that are due and ``send_notifications`` sends
the alerts that are due, every minute. ``retention`` checks every minute whether ``retention.yaml``'s
``schedule`` (cron) is due and runs retention once for that minute (a dry run unless ``schedule.apply``).
They are registered on a Huey instance by
:func:`register`, so tests can bind them to their own (Redis, memory) instance.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from huey import Huey, crontab
from huey.api import Result, Task
from huey.exceptions import TaskLockedException

log = logging.getLogger(__name__)


DEDUPE_MINUTE = "30"
"""The minute of every hour the dedupe pass runs (``relay dedupe run``: links, review queue, merges)."""
RETENTION_CATCH_UP = timedelta(minutes=60)
"""How long after its cron minute a scheduled retention run still starts when no worker could take it then
(all busy, or none running); a minute is run once (``connector.pipeline.retention.run_scheduled_retention``)."""


@dataclass(frozen=True)
class RelayJobs:
    """The jobs registered on one Huey instance."""

    huey: Huey
    sync_connection: Callable[..., Result]
    enqueue_due_syncs: Callable[..., Any]
    process_pushed_events: Callable[..., Any]
    process_events_now: Callable[..., Result]
    send_notifications: Callable[..., Any]
    fire_sla_clocks: Callable[..., Any]
    dedupe: Callable[..., Any]
    retention: Callable[..., Any]


def run_connection_sync(connection: str, full: bool = False) -> dict[str, Any]:
    """One sync of ``connection`` with the process settings (config dir, database URL)."""
    from connector.config.loader import load_config
    from connector.config.settings import config_location, get_settings
    from connector.pipeline.sync import run_sync
    from connector.store.errors import ConnectionPaused
    from connector.store.migrate import open_store

    settings = get_settings()
    location = config_location(settings)
    config = load_config(location.config_dir, location.mappings_dir)
    engine = open_store(settings.database_url.get_secret_value())
    log.info("sync of %s started (%s)", connection, "full" if full else "incremental")
    try:
        summary = run_sync(config, connection, engine, full=full)
    except ConnectionPaused as exc:  # an admin paused it: not a failure to retry
        log.info("sync of %s skipped: %s", connection, exc)
        return {"connection": connection, "skipped": "paused", "reason": str(exc)}
    except Exception as exc:
        log.error("sync of %s failed: %s", connection, exc)
        raise
    finally:
        engine.dispose()
    log.info("sync of %s finished in %.1f s: read %d, routed %d, updated %d, tasks %d, refused %d, API calls %d",
             connection, summary.seconds, summary.records_read, sum(summary.routed.values()),
             summary.records_updated, summary.tasks_created, len(summary.write_failures), summary.api_call_total)
    return summary.as_dict()


EVENTS_PER_PASS = 200
"""Events one worker claims at a time: a burst is shared by the workers instead of taken whole by one."""
EVENTS_SETTLE = 0.2
"""Seconds a woken worker waits before it claims: the intake tells the workers once per window
(``connector.web.app.HANDOFF_WINDOW``), and the job must take what was stored during it."""
CONFIG_TTL = 30.0
"""Seconds a worker keeps the configuration it loaded before reading it again (an event pass is frequent)."""

_context_lock = threading.Lock()
_context: dict[tuple[str, str, str], tuple[float, Any, Any]] = {}


def _worker_context() -> tuple[Any, Any]:
    """The configuration and the store of this worker process, loaded once and kept ``CONFIG_TTL`` seconds.

    Events passes run many times a second under load; loading and validating the YAML
    and opening the store each time would cost more than deciding the events.
    """
    from connector.config.loader import load_config
    from connector.config.settings import config_location, get_settings
    from connector.store.migrate import open_store

    settings = get_settings()
    location = config_location(settings)
    url = settings.database_url.get_secret_value()
    key = (str(location.config_dir), str(location.mappings_dir), url)
    with _context_lock:
        found = _context.get(key)
        if found is not None and time.monotonic() - found[0] < CONFIG_TTL:
            return found[1], found[2]
        config = load_config(location.config_dir, location.mappings_dir)
        engine = found[2] if found is not None else open_store(url)
        _context[key] = (time.monotonic(), config, engine)
        return config, engine


def run_events_pass(*, limit: int = 1_000, until_empty: bool = False) -> list[dict[str, Any]]:
    """Decide stored webhook events (``relay events``) with the process settings.

    Args:
        limit: Events claimed per pass.
        until_empty: Pass after pass until no event is left to claim (a worker woken by the intake).
    """
    from connector.pipeline.events import pause_after, process_events

    config, engine = _worker_context()
    runs = []
    while True:
        found = process_events(config, engine, limit=limit)
        runs.extend(found)
        if not until_empty or not found:
            break
        time.sleep(pause_after(config, found))  # within the CRM's call window: the next pass batches more
    for run in runs:
        log.info("events of %s: %d processed (%d echoes), %d records decided", run.connection, run.events,
                 run.echoes, run.records)
    return [{"connection": r.connection, "events": r.events, "records": r.records, "echoes": r.echoes,
             "own_writes": r.own_writes,
             "run_id": r.summary.run_id if r.summary is not None else None} for r in runs]


def run_notifications_pass() -> dict[str, Any]:
    """Send the alerts that are due (``connector.pipeline.alerts``) with the process settings."""
    from connector.pipeline.alerts import send_pending_notifications

    config, engine = _worker_context()
    summary = send_pending_notifications(config, engine)
    if summary.outcomes:
        log.info("alerts: %s", ", ".join(f"{n} {status}" for status, n in sorted(summary.outcomes.items())))
    return {"outcomes": dict(summary.outcomes), "errors": summary.errors}


def run_clock_pass() -> dict[str, Any]:
    """Fire the SLA clock steps that are due (``relay clocks fire``) with the process settings."""
    from connector.pipeline.clocks import fire_due_clocks

    config, engine = _worker_context()
    summary = fire_due_clocks(config, engine)
    if summary.fired or summary.errors:
        log.info("SLA clocks: %d steps fired %s, %d errors", len(summary.fired), dict(summary.by_step),
                 len(summary.errors))
    return {"claimed": summary.claimed, "fired": dict(summary.by_step), "errors": summary.errors}


def run_dedupe_pass() -> dict[str, Any]:
    """``relay dedupe run`` with the process settings: links, review queue, merges as configured."""
    from connector.pipeline.merges import run_dedupe

    config, engine = _worker_context()
    run = run_dedupe(config, engine)
    if run.stopped:
        log.warning("dedupe: stopped by the blast-radius guard: %s", run.stopped)
    elif run.merged or run.flagged or run.linked or run.reviews_queued or run.failures:
        log.info("dedupe: merged %s, flagged %s, %d records linked, %d reviews queued, %d failures",
                 dict(run.merged), dict(run.flagged), run.linked, run.reviews_queued, len(run.failures))
    return {"merged": dict(run.merged), "flagged": dict(run.flagged), "linked": run.linked,
            "reviews_queued": run.reviews_queued, "failures": run.failures, "stopped": run.stopped}


def retention_slot(fields: dict[str, str], now: datetime, *, catch_up: timedelta = RETENTION_CATCH_UP) -> datetime | None:
    """The latest minute in ``(now - catch_up, now]`` that a cron expression (``huey.crontab`` fields) matches."""
    due = crontab(**fields)
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    for back in range(max(1, int(catch_up / timedelta(minutes=1)))):
        at = minute - timedelta(minutes=back)
        if due(at.replace(tzinfo=None)):
            return at
    return None


def run_retention_schedule(now: datetime) -> dict[str, Any] | None:
    """The scheduled retention run (``retention.yaml``'s ``schedule``) when its cron minute is due at ``now``.

    ``None`` when the schedule is off or no cron minute fell in the last ``RETENTION_CATCH_UP``; otherwise what
    :func:`connector.pipeline.retention.run_scheduled_retention` did (``ran``, ``done`` by another worker,
    ``busy``, ``failed``). Never raises: an error is logged and returned.
    """
    from connector.pipeline.retention import run_scheduled_retention

    try:
        config, engine = _worker_context()
        schedule = config.rules.retention.schedule
        if not schedule.enabled:
            return None
        slot = retention_slot(schedule.crontab_fields(), now)
        if slot is None:
            return None
        return run_scheduled_retention(config, engine, slot=slot, now=now).as_json()
    except Exception as exc:  # the configuration or the store: logged, the worker goes on
        log.error("retention job failed: %s: %s", type(exc).__name__, exc)
        return {"status": "error", "error": type(exc).__name__}


def run_reconciler() -> dict[str, Any]:
    """Re-drive what workers that died left: inbox events whose claim ran out, outbox messages nobody sends."""
    from connector.pipeline.events import send_left_messages

    config, engine = _worker_context()
    events = run_events_pass(until_empty=True)
    outboxes = send_left_messages(config, engine)
    return {"events": events, "outboxes_sent": outboxes}


def due_connections(now: datetime) -> list[str]:
    """Connections whose schedule is due at ``now`` (UTC), judged by their last sync run."""
    from connector.config.loader import load_config
    from connector.config.settings import config_location, get_settings
    from connector.store.migrate import open_store
    from connector.store.models import SyncMode
    from connector.store.repositories import ConnectionStates, SyncRuns

    settings = get_settings()
    location = config_location(settings)
    config = load_config(location.config_dir, location.mappings_dir)
    engine = open_store(settings.database_url.get_secret_value())
    due: list[str] = []
    try:
        with engine.connect() as connection:
            from sqlalchemy.orm import Session

            session = Session(bind=connection)
            runs = SyncRuns(session)
            paused = ConnectionStates(session).all_paused()
            for name, conn in config.relay.connections.items():
                if name in paused:
                    continue
                schedule = conn.schedule
                if schedule.every_minutes is not None:
                    # Events runs decide pushed records only: the schedule counts the runs that read changes.
                    recent = runs.recent(name, limit=1, modes=(SyncMode.FULL, SyncMode.INCREMENTAL))
                    last = recent[0].started_at if recent else None
                    if last is None or now - last >= timedelta(minutes=schedule.every_minutes):
                        due.append(name)
                else:
                    fields = schedule.crontab_fields() or {}
                    if crontab(**fields)(now.replace(tzinfo=None)):
                        due.append(name)
            session.close()
    finally:
        engine.dispose()
    return due


def register(huey: Huey) -> RelayJobs:
    """Register Relay's jobs on ``huey`` and return them."""

    @huey.task(retries=2, retry_delay=60, name="relay.sync_connection")
    def sync_connection(connection: str, full: bool = False) -> dict[str, Any]:
        return run_connection_sync(connection, full)

    @huey.periodic_task(crontab(minute="*"), name="relay.enqueue_due_syncs")
    def enqueue_due_syncs() -> list[str]:
        due = due_connections(datetime.now(UTC))
        for name in due:
            log.info("sync of %s is due: enqueued", name)
            sync_connection(name)
        return due

    @huey.periodic_task(crontab(minute="*"), name="relay.process_pushed_events")
    def process_pushed_events() -> dict[str, Any]:
        return run_reconciler()

    @huey.task(name="relay.process_events_now")
    def process_events_now(settle: float = EVENTS_SETTLE) -> list[dict[str, Any]]:
        time.sleep(settle)  # deliveries of the intake's handoff window become one batch
        return run_events_pass(limit=EVENTS_PER_PASS, until_empty=True)

    @huey.periodic_task(crontab(minute="*"), name="relay.send_notifications")
    def send_notifications() -> dict[str, Any]:
        return run_notifications_pass()

    @huey.periodic_task(crontab(minute="*"), name="relay.fire_sla_clocks")
    def fire_sla_clocks() -> dict[str, Any]:
        return run_clock_pass()

    @huey.periodic_task(crontab(minute=DEDUPE_MINUTE), name="relay.dedupe")
    def dedupe() -> dict[str, Any] | None:
        try:
            with huey.lock_task("relay.dedupe"):  # one pass at a time, however many workers
                return run_dedupe_pass()
        except TaskLockedException:
            log.info("dedupe: a pass is already running elsewhere")
            return None

    @huey.periodic_task(crontab(minute="*"), name="relay.retention")
    def retention(now: datetime | None = None) -> dict[str, Any] | None:
        return run_retention_schedule(now or datetime.now(UTC))

    return RelayJobs(huey=huey, sync_connection=sync_connection, enqueue_due_syncs=enqueue_due_syncs,
                     process_pushed_events=process_pushed_events, process_events_now=process_events_now,
                     send_notifications=send_notifications, fire_sla_clocks=fire_sla_clocks, dedupe=dedupe,
                     retention=retention)


def _default() -> RelayJobs:
    from jobs.app import huey

    return register(huey)


jobs = _default()
"""Relay's jobs on the Huey instance chosen by ``RELAY_HUEY_URL`` (``relay worker`` consumes them)."""

__all__ = ["RelayJobs", "Task", "due_connections", "jobs", "register", "retention_slot", "run_connection_sync",
           "run_events_pass", "run_notifications_pass", "run_retention_schedule"]
