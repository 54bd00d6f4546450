"""Relay's background jobs: scheduled syncs of each connection, and the events CRMs pushed. Thin: they call the pipeline.

``enqueue_due_syncs`` runs every minute and enqueues ``sync_connection`` for each
connection whose schedule (``config/relay.yaml``: ``every_minutes`` or ``cron``) is due;
``sync_connection`` runs one incremental sync. ``process_pushed_events`` runs every minute
too and decides what the webhook inbox holds (``relay events``). Both are registered on a Huey instance by
:func:`register`, so tests can bind them to their own (Redis, memory) instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from huey import Huey, crontab
from huey.api import Result, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayJobs:
    """The jobs registered on one Huey instance."""

    huey: Huey
    sync_connection: Callable[..., Result]
    enqueue_due_syncs: Callable[..., Any]
    process_pushed_events: Callable[..., Any]


def run_connection_sync(connection: str, full: bool = False) -> dict[str, Any]:
    """One sync of ``connection`` with the process settings (config dir, database URL)."""
    from connector.config.loader import load_config
    from connector.config.settings import config_location, get_settings
    from connector.pipeline.sync import run_sync
    from connector.store.migrate import open_store

    settings = get_settings()
    location = config_location(settings)
    config = load_config(location.config_dir, location.mappings_dir)
    engine = open_store(settings.database_url.get_secret_value())
    log.info("sync of %s started (%s)", connection, "full" if full else "incremental")
    try:
        summary = run_sync(config, connection, engine, full=full)
    except Exception as exc:
        log.error("sync of %s failed: %s", connection, exc)
        raise
    finally:
        engine.dispose()
    log.info("sync of %s finished in %.1f s: read %d, routed %d, updated %d, tasks %d, refused %d, API calls %d",
             connection, summary.seconds, summary.records_read, sum(summary.routed.values()),
             summary.records_updated, summary.tasks_created, len(summary.write_failures), summary.api_call_total)
    return summary.as_dict()


def run_events_pass() -> list[dict[str, Any]]:
    """One pass over the stored webhook events (``relay events``) with the process settings."""
    from connector.config.loader import load_config
    from connector.config.settings import config_location, get_settings
    from connector.pipeline.events import process_events
    from connector.store.migrate import open_store

    settings = get_settings()
    location = config_location(settings)
    config = load_config(location.config_dir, location.mappings_dir)
    engine = open_store(settings.database_url.get_secret_value())
    try:
        runs = process_events(config, engine)
    finally:
        engine.dispose()
    for run in runs:
        log.info("events of %s: %d processed, %d records decided", run.connection, run.events, run.records)
    return [{"connection": r.connection, "events": r.events, "records": r.records,
             "run_id": r.summary.run_id if r.summary is not None else None} for r in runs]


def due_connections(now: datetime) -> list[str]:
    """Connections whose schedule is due at ``now`` (UTC), judged by their last sync run."""
    from connector.config.loader import load_config
    from connector.config.settings import config_location, get_settings
    from connector.store.migrate import open_store
    from connector.store.models import SyncMode
    from connector.store.repositories import SyncRuns

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
            for name, conn in config.relay.connections.items():
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
    def process_pushed_events() -> list[dict[str, Any]]:
        return run_events_pass()

    return RelayJobs(huey=huey, sync_connection=sync_connection, enqueue_due_syncs=enqueue_due_syncs,
                     process_pushed_events=process_pushed_events)


def _default() -> RelayJobs:
    from jobs.app import huey

    return register(huey)


jobs = _default()
"""Relay's jobs on the Huey instance chosen by ``RELAY_HUEY_URL`` (``relay worker`` consumes them)."""

__all__ = ["RelayJobs", "Task", "due_connections", "jobs", "register", "run_connection_sync", "run_events_pass"]
