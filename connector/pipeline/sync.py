"""One sync run of one connection: adapter → mapping → core → store (one transaction a page) → outbox writer.

The order of a run:

1. start the run (the database refuses a second running sync of the connection);
2. send what a crashed run left in the outbox;
3. make sure Relay's own fields exist in the CRM (HubSpot properties);
4. read the owners, then each account object, then each person object, page by page
   from the checkpointed cursor; each page's snapshots, identities, decisions,
   assignments, round-robin positions, outbox messages, audit entries and cursor are
   committed in ONE transaction, then whole write batches are sent;
5. send the rest and close the run with its counts.

A crash anywhere loses nothing and duplicates nothing: an uncommitted page is read
again, a committed one is not, and a message sent twice lands once (task upserts by
idempotency key; record updates are idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.base import CrmAdapter, Cursor, FieldSpec
from connector.config.loader import RelayConfig
from connector.config.mappings import ObjectMapping
from connector.core.models import Owner
from connector.mapping.engine import MappingError
from connector.pipeline.connections import open_adapter
from connector.pipeline.context import RunContext, utc_now
from connector.pipeline.pages import accounts_page, apply_deletions, people_page
from connector.pipeline.records import MappedRecord, map_record
from connector.pipeline.summary import NoProgress, PlannedWrite, SyncProgress, SyncSummary
from connector.pipeline.writer import OutboxPayload, OutboxWriter
from connector.store.db import session_factory
from connector.store.models import SyncMode, SyncStatus
from connector.store.repositories import Repositories

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=5)
"""A running sync whose heartbeat is older than this is taken to have died."""


def run_sync(
    config: RelayConfig,
    connection: str,
    engine: Engine,
    *,
    full: bool = False,
    dry_run: bool = False,
    adapter: CrmAdapter | None = None,
    progress: SyncProgress | None = None,
    now: Callable[[], datetime] = utc_now,
    take_over: bool = False,
    stale_after: timedelta = STALE_AFTER,
) -> SyncSummary:
    """Run one sync of ``connection`` and return what it did.

    Args:
        config: The validated configuration.
        connection: Connection name from ``config/relay.yaml``.
        engine: Relay's database (migrated).
        full: Read everything instead of what changed since the cursor.
        dry_run: Decide and report, write nothing anywhere (CRM or store).
        adapter: The adapter to use (built from the config when omitted).
        progress: Progress sink (the CLI's progress bar).
        now: Clock.
        take_over: Take over from a running sync of this connection whatever its
            heartbeat (use when you know its process died).
        stale_after: A running sync with no heartbeat for this long is taken over.

    Returns:
        The run's summary.

    Raises:
        SyncAlreadyRunning: when another sync of the connection is running.
        CrmError: when the CRM refuses the run as a whole (auth, limits, retries exhausted).
    """
    started = time.perf_counter()
    conn_config = config.connection(connection)
    summary = SyncSummary(connection=connection, mode="full" if full else "incremental", dry_run=dry_run)
    sessions = session_factory(engine)
    own_adapter = adapter is None
    adapter = adapter or open_adapter(config, connection)
    calls_before = adapter.calls.by_kind()
    progress = progress or NoProgress()
    dry_session = sessions() if dry_run else None
    if dry_session is not None:
        dry_session.begin()
    ctx = RunContext(
        config=config, connection=connection, adapter=adapter, sessions=sessions, summary=summary,
        progress=progress, now=now, dry_run=dry_run, writer=None, dry_session=dry_session,
    )
    with ctx.transaction() as session:
        cutoff = now() if take_over else now() - stale_after
        summary.run_id = Repositories(session).sync_runs.start(
            connection, SyncMode.FULL if full else SyncMode.INCREMENTAL, now=now(), take_over_stale_before=cutoff
        )
    if not dry_run and conn_config.write_back:
        ctx.writer = OutboxWriter(adapter, sessions, conn_config.write_batch_size, summary, now, progress.writes_sent)
    status, error = SyncStatus.SUCCEEDED, None
    try:
        if ctx.writer is not None:
            ctx.writer.drain(final=True)  # what a crashed run left behind
            if full or not _has_cursors(ctx):
                _ensure_fields(ctx)  # on a connection's first sync and on full syncs only
        _load_owners(ctx)
        mappings = config.mapping_for(connection)
        objects = [mappings.objects[name] for name in conn_config.objects]
        for mapping in (m for m in objects if m.entity == "account"):
            _sync_object(ctx, mapping, full, conn_config.page_size, accounts_page)
        for mapping in (m for m in objects if m.entity == "person"):
            _sync_object(ctx, mapping, full, conn_config.page_size, people_page)
        if ctx.writer is not None:
            ctx.writer.drain(final=True)
    except BaseException as exc:
        status, error = SyncStatus.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary.api_calls = _calls_since(calls_before, adapter.calls.by_kind())
        summary.seconds = time.perf_counter() - started
        _finish(ctx, status, error)
        close = getattr(adapter, "close", None)
        if own_adapter and callable(close):
            close()
    return summary


def _calls_since(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {kind: n - before.get(kind, 0) for kind, n in after.items() if n - before.get(kind, 0)}


def _finish(ctx: RunContext, status: SyncStatus, error: str | None) -> None:
    summary = ctx.summary
    if ctx.dry_session is not None:
        with ctx.transaction() as session:
            summary.planned = [
                PlannedWrite(m.object, m.operation.value, m.crm_id, OutboxPayload.from_json(m.payload).fields)
                for m in Repositories(session).outbox.pending(ctx.connection, limit=1_000_000)
            ]
        ctx.dry_session.rollback()
        ctx.dry_session.close()
        return
    assert summary.run_id is not None
    try:
        with ctx.sessions.begin() as session:
            repos = Repositories(session)
            for kind, count in summary.api_calls.items():
                repos.api_calls.add(ctx.connection, kind, count, at=ctx.now())
            repos.sync_runs.finish(summary.run_id, status, counts=summary.counts(), error=error, now=ctx.now())
    except Exception:  # never hide the run's own error behind a bookkeeping one
        log.exception("could not close sync run %s of %s", summary.run_id, ctx.connection)
        if status is SyncStatus.SUCCEEDED:
            raise


def _has_cursors(ctx: RunContext) -> bool:
    with ctx.transaction() as session:
        return bool(Repositories(session).cursors.all(ctx.connection))


def _ensure_fields(ctx: RunContext) -> None:
    """Make sure every field Relay writes exists: HubSpot creates its properties, Salesforce checks them.

    Only the objects Relay writes to are checked: the people it syncs and its tasks.
    """
    synced = set(ctx.config.connection(ctx.connection).objects)
    for mapping in ctx.config.mapping_for(ctx.connection).objects.values():
        written = (mapping.entity == "person" and mapping.name in synced) or mapping.entity == "task"
        if not written:
            continue
        specs = [FieldSpec.of(spec.model_dump(by_alias=True)) for spec in mapping.create_properties]
        if not specs:
            specs = [FieldSpec.of(fm.crm) for fm in mapping.write_fields()]
        if specs:
            ctx.adapter.ensure_fields(mapping.name, specs)


def _load_owners(ctx: RunContext) -> None:
    mappings = ctx.config.mapping_for(ctx.connection)
    owner_mapping = next((m for m in mappings.objects.values() if m.entity == "owner"), None)
    if owner_mapping is None:
        raise MappingError(f"the {mappings.crm} mapping has no object with entity: owner; Relay cannot resolve owners")
    owners: list[Owner] = []
    for record in ctx.adapter.owners():
        mapped = map_record(ctx.connection, owner_mapping, record)
        if isinstance(mapped.model, Owner):
            owners.append(mapped.model)
    ctx.owners = owners
    ctx.owner_ids_by_email = {
        o.email.strip().lower(): o.id for o in owners if o.email and o.active
    }
    ctx.summary.read[owner_mapping.name] += len(owners)


PageHandler = Callable[[RunContext, ObjectMapping, list[MappedRecord], Any], None]


def _sync_object(
    ctx: RunContext, mapping: ObjectMapping, full: bool, page_size: int, handle: PageHandler
) -> None:
    with ctx.transaction() as session:
        repos = Repositories(session)
        stored = None if full else repos.cursors.get(ctx.connection, mapping.name)
    cursor = Cursor(stored.last_modified, stored.last_id or "") if stored is not None else None
    ctx.progress.object_started(mapping.name)
    fields = mapping.crm_fields_to_read()
    for page in ctx.adapter.read(mapping.name, fields, cursor, page_size=page_size):
        mapped = [map_record(ctx.connection, mapping, record) for record in page.records]
        with ctx.transaction() as session:
            repos = Repositories(session)
            handle(ctx, mapping, mapped, repos)
            apply_deletions(ctx, mapping, page.deleted_ids, page.merged, repos)
            ctx.flush_page(repos)
            if page.cursor is not None:
                repos.cursors.advance(
                    ctx.connection, mapping.name, page.cursor.last_modified, page.cursor.last_id or None, now=ctx.now()
                )
            assert ctx.summary.run_id is not None
            repos.sync_runs.heartbeat(ctx.summary.run_id, now=ctx.now())
        ctx.summary.read[mapping.name] += len(page.records)
        ctx.progress.page_done(mapping.name, len(page.records))
        if ctx.writer is not None:
            ctx.writer.drain(final=False)
    if not ctx.adapter.reads_deletions:
        since = cursor.last_modified if cursor is not None else datetime(1970, 1, 1, tzinfo=UTC)
        deleted = ctx.adapter.read_deleted(mapping.name, since)
        if deleted:
            with ctx.transaction() as session:
                repos = Repositories(session)
                apply_deletions(ctx, mapping, deleted, (), repos)
                ctx.flush_page(repos)


__all__ = ["STALE_AFTER", "run_sync", "utc_now"]
