"""One sync run of one connection: adapter → mapping → core → store (one transaction a page) → outbox writer.

The order of a run:

1. start the run (the database refuses a second running sync of the connection) and
   its heartbeat thread;
2. send what a crashed run left in the outbox;
3. on a first or full sync, make sure Relay's own fields exist in the CRM (HubSpot
   creates its properties) and that every mapped field does;
4. read the owners (none active: stop), then each account object, then each person
   object, page by page from the checkpointed cursor; each page's snapshots,
   identities, decisions (a person with all their known records), assignments,
   round-robin positions, outbox messages, audit entries and cursor are committed in
   ONE transaction, then whole write batches are sent;
5. give people the owner decided for them elsewhere since (from their snapshots);
6. send the rest and close the run with its counts.

A crash anywhere loses nothing and duplicates nothing: an uncommitted page is read
again, a committed one is not, and a message sent twice lands once (task upserts by
idempotency key; record updates are idempotent). A run taken over stops at its next
page boundary; a run past its deadline stops with what it committed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from connector.adapters.base import CrmAdapter, Cursor, FieldSpec, Page
from connector.adapters.budget import Priority
from connector.adapters.errors import ConfigurationError
from connector.adapters.retry import deadline_applied
from connector.config.loader import RelayConfig
from connector.config.mappings import ObjectMapping
from connector.core.decide import keeps_crm_owner
from connector.core.models import Owner, Person
from connector.crms.factory import run_deadline
from connector.pipeline.alerts import send_alerts_now
from connector.pipeline.connections import open_adapter, resolve_connection
from connector.pipeline.context import PagePlan, RunContext, utc_now
from connector.pipeline.deals import deals_page, read_histories
from connector.pipeline.dispositions import run_disposition_pass
from connector.pipeline.enrichment import PageEnricher
from connector.pipeline.heartbeat import Heartbeat, SyncTakenOver, holder_is_gone, this_process
from connector.pipeline.pages import accounts_page, apply_deletions, people_page
from connector.pipeline.plan import planned_writes
from connector.pipeline.quality import store_run_quality
from connector.pipeline.records import MappedRecord, map_record, person_from_snapshot
from connector.pipeline.rule_sets import record_rule_sets
from connector.pipeline.summary import NoProgress, SyncProgress, SyncSummary
from connector.pipeline.writer import OutboxWriter
from connector.store.db import serialize_decisions, session_factory
from connector.store.errors import ConnectionPaused, RunNotRunning
from connector.store.models import SyncMode, SyncStatus
from connector.store.repositories import Repositories

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=5)
"""A running sync whose heartbeat is older than this is taken to have died."""
TAKE_OVER_AFTER = timedelta(minutes=1)
"""``--take-over`` takes over a running sync whose heartbeat is older than this (a live run
beats every 15 s, slow requests included); ``--force`` takes over whatever its heartbeat."""


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
    force: bool = False,
    stale_after: timedelta = STALE_AFTER,
    heartbeat_every: float | None = None,
    changed: Mapping[str, Sequence[str]] | None = None,
    changed_by: Mapping[str, Mapping[str, frozenset[str | None]]] | None = None,
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
        take_over: Take over from a running sync of this connection whose process is gone
            (it ran on this host) or whose heartbeat is older than ``TAKE_OVER_AFTER``.
        force: With ``take_over``: take over even a run whose heartbeat is fresh.
        stale_after: A running sync with no heartbeat for this long is taken over.
        heartbeat_every: Seconds between heartbeats beaten while the run waits on the CRM
            (default ``HEARTBEAT_EVERY``).
        changed: An ``events`` run: object -> ids of records the CRM said changed (webhooks).
            Only those are read (by id, ``read_ids``) and decided, through the same page path;
            no cursor moves, and deletions and owner propagation are left to scheduled runs.
        changed_by: With ``changed``: object -> record id -> the CRM users the pushed events say
            made the changes (None: an event that does not say). A record every change of which
            was made by the CRM user Relay acts as (``CrmAdapter.integration_user_id``) is Relay's
            own write coming back: it is not read (``SyncSummary.echoes``).

    Returns:
        The run's summary.

    Raises:
        SyncAlreadyRunning: when another sync of the connection is running.
        SyncTakenOver: when another sync took this one over; it stopped at a page boundary.
        CrmError: when the CRM refuses the run as a whole (auth, limits, retries exhausted).
    """
    started = time.perf_counter()
    resolved = resolve_connection(config, connection)  # once per run: settings, mapping, objects
    conn_config = resolved.settings
    deadline = run_deadline(conn_config)  # no API call starts, and no retry wait ends, after it
    mode = SyncMode.EVENTS if changed is not None else SyncMode.FULL if full else SyncMode.INCREMENTAL
    if changed is not None and full:
        raise ValueError("a run reads either the records that changed (events) or everything (full), not both")
    summary = SyncSummary(connection=connection, mode=mode.value, dry_run=dry_run)
    sessions = session_factory(engine)
    own_adapter = adapter is None
    # Every call spends the connection's API budget; pushed records may spend the reserve kept for them. A dry
    # run holds one transaction open to the end (SQLite's write lock): its few reads are not counted (the
    # headers of the next counted answer correct the count).
    adapter = adapter or open_adapter(config, connection, engine=None if dry_run else engine,
                                      priority=Priority.REALTIME if mode is SyncMode.EVENTS else Priority.BACKGROUND)
    calls_before = adapter.calls.by_kind()
    progress = progress or NoProgress()
    dry_session = sessions() if dry_run else None
    if dry_session is not None:
        dry_session.begin()
    ctx = RunContext(
        config=config, connection=connection, adapter=adapter, sessions=sessions, summary=summary,
        progress=progress, now=now, dry_run=dry_run, writer=None, dry_session=dry_session, conn=resolved,
        full=full,
    )
    with ctx.transaction() as session:
        runs = Repositories(session).sync_runs
        pause = Repositories(session).connection_states.paused(connection)
        if pause is not None and not dry_run:  # a dry run writes nothing: it may look while paused
            raise ConnectionPaused(connection, pause.paused_at, pause.paused_by, pause.reason)
        if take_over:
            running = runs.running(connection)
            gone = running is not None and holder_is_gone(running.holder)  # killed on this host: no need to wait
            cutoff = now() if force or gone else now() - min(stale_after, TAKE_OVER_AFTER)
        else:
            cutoff = now() - stale_after
        if mode is SyncMode.EVENTS:  # a worker killed on this host: its run is over
            runs.mark_gone_events_runs_crashed(connection, holder_is_gone, now=now())
        summary.run_id = runs.start(connection, mode, now=now(), take_over_stale_before=cutoff, holder=this_process())
        record_rule_sets(Repositories(session), config.rules, now=now(), source=str(config.config_dir))
    if not dry_run and not isinstance(engine.pool, StaticPool):  # an in-memory store: nobody can take over
        options = {} if heartbeat_every is None else {"every": heartbeat_every}
        ctx.heartbeat = Heartbeat(sessions, summary.run_id, now, **options).start()
    if not dry_run and conn_config.write_back:
        ctx.writer = OutboxWriter(adapter, sessions, conn_config.write_batch_size, summary, now, progress.writes_sent)
    status, error = SyncStatus.SUCCEEDED, None
    try:
        ctx.enricher = PageEnricher.for_run(config, engine, dry_run=dry_run)
        with deadline_applied(adapter, deadline):
            if changed is not None:
                _run_changed(ctx, changed, changed_by or {})
            else:
                _run_steps(ctx, full)
    except RunNotRunning as exc:
        status, error = SyncStatus.CRASHED, str(exc)
        assert summary.run_id is not None
        raise SyncTakenOver(connection, summary.run_id) from exc
    except SyncTakenOver:
        status, error = SyncStatus.CRASHED, "taken over"
        raise
    except BaseException as exc:
        status, error = SyncStatus.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if ctx.heartbeat is not None:
            ctx.heartbeat.stop()
        if ctx.enricher is not None:
            ctx.enricher.close()
        summary.api_calls = _calls_since(calls_before, adapter.calls.by_kind())
        summary.seconds = time.perf_counter() - started
        if status is not SyncStatus.CRASHED:  # a run taken over is closed by the run that took it over
            _finish(ctx, status, error)
        if own_adapter:
            adapter.close()
    if not dry_run:
        send_alerts_now(config, engine, now=now())  # Hot leads are told within seconds, not at the minute
        if changed is None and conn_config.duplicates != "report":
            summary.duplicates = _dedupe_after(config, engine, now())
    return summary


def _dedupe_after(config: RelayConfig, engine: Engine, now: datetime) -> dict[str, Any]:
    """The dedupe pass after a sync of a connection that merges or flags its duplicates (the same pass
    as ``relay dedupe run`` and the hourly job); its failures are reported, never the sync's."""
    from connector.pipeline.merges import run_dedupe

    try:
        run = run_dedupe(config, engine, now=now)
    except Exception as exc:  # the sync itself succeeded: say what the pass could not do
        log.exception("dedupe pass after the sync failed")
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"merged": sum(run.merged.values()), "flagged": sum(run.flagged.values()), "linked": run.linked,
            "reviews_queued": run.reviews_queued, "stopped": run.stopped, "failures": run.failures}


def _run_steps(ctx: RunContext, full: bool) -> None:
    """Steps 2-5 of a run (see the module docstring)."""
    conn = ctx.resolved
    page_size = conn.settings.page_size
    _before_reading(ctx, full)
    if full:
        ctx.adapter.forget_owners()  # a full sync re-evaluates everything: against today's users
    objects = [*conn.account_objects, *conn.person_objects, *conn.deal_objects]
    # The first page of every object (and the owners) may come in one call (Salesforce Composite).
    ctx.adapter.prepare_reads([(m.name, m.crm_fields_to_read(), _stored_cursor(ctx, m.name, full)) for m in objects],
                              page_size=page_size)
    _load_owners(ctx)
    for mapping in conn.account_objects:
        ctx.check_not_taken_over()
        _sync_object(ctx, mapping, full, page_size, accounts_page)
    people = conn.person_objects
    for mapping in people:
        ctx.check_not_taken_over()
        _sync_object(ctx, mapping, full, page_size, people_page)
    for mapping in people:
        ctx.check_not_taken_over()
        _propagate_owners(ctx, mapping, page_size)
    ctx.check_not_taken_over()
    run_disposition_pass(ctx)  # recycles due, suppression, overdue dispositions, conversions
    for mapping in conn.deal_objects:  # after people: a deal's owner, approver and CSM are the team's
        ctx.check_not_taken_over()
        _sync_object(ctx, mapping, full, page_size, deals_page)
    ctx.check_not_taken_over()
    if ctx.writer is not None:
        ctx.writer.drain(final=True)


def _before_reading(ctx: RunContext, full: bool) -> None:
    """What a crashed run left in the outbox is sent; on a connection's first run and on full
    syncs, Relay's fields are created or checked and the mapped fields checked."""
    if ctx.writer is None:
        return
    ctx.writer.drain(final=True)
    if full:
        _ensure_fields(ctx)
        check_mapped_fields(ctx.config, ctx.connection, ctx.adapter)
        _fields_checked(ctx, remember=True)
    elif not _has_cursors(ctx) and not _fields_checked(ctx):
        # No sync yet: events runs may come first (pushed records), and many of them. The
        # check costs calls of the CRM's budget, so this process makes it once an hour.
        _ensure_fields(ctx)
        check_mapped_fields(ctx.config, ctx.connection, ctx.adapter)
        _fields_checked(ctx, remember=True)


FIELDS_CHECK_EVERY = 3600.0
"""Seconds a process trusts its last check that Relay's fields exist (until a first sync moves a cursor)."""
_fields_checked_at: dict[tuple[str, str, str], float] = {}


def forget_field_checks() -> None:
    """Check every connection's fields again at its next run (tests: sandboxes of one port come and go)."""
    _fields_checked_at.clear()


def _fields_checked(ctx: RunContext, *, remember: bool = False) -> bool:
    """Whether this process checked the connection's fields, for this mapping, in the last hour (or remember it did)."""
    resolved = ctx.resolved
    key = (ctx.connection, str(getattr(resolved.settings, "base_url", "")),
           hashlib.sha256(resolved.mappings.model_dump_json().encode()).hexdigest())
    if remember:
        _fields_checked_at[key] = time.monotonic()
        return True
    at = _fields_checked_at.get(key)
    return at is not None and time.monotonic() - at < FIELDS_CHECK_EVERY


def _run_changed(ctx: RunContext, changed: Mapping[str, Sequence[str]],
                 changed_by: Mapping[str, Mapping[str, frozenset[str | None]]]) -> None:
    """An events run: the records the CRM said changed, read by id, accounts before people."""
    conn = ctx.resolved
    page_size = conn.settings.page_size
    _before_reading(ctx, full=False)  # pushed records may come before any sync: Relay's fields first
    _load_owners(ctx)
    named = any(author for authors in changed_by.values() for users in authors.values() for author in users)
    own = ctx.adapter.integration_user_id() if named else None
    steps = ([(m, accounts_page) for m in conn.account_objects] + [(m, people_page) for m in conn.person_objects]
             + [(m, deals_page) for m in conn.deal_objects])
    for mapping, handle in steps:
        ids = list(dict.fromkeys(changed.get(mapping.name, ())))
        if own is not None:  # every change Relay's own user made: its own writes coming back, nothing to read
            authors = changed_by.get(mapping.name, {})
            echoes = [i for i in ids if authors.get(i) == frozenset({own})]
            ctx.summary.echoes += len(echoes)
            ids = [i for i in ids if i not in set(echoes)]
        if not ids:
            continue
        ctx.check_not_taken_over()
        ctx.progress.object_started(mapping.name)
        page = ctx.adapter.read_ids(mapping.name, mapping.crm_fields_to_read(), ids)
        for start in range(0, len(page.records), page_size):
            _commit_page(ctx, mapping, Page(object=page.object, records=page.records[start:start + page_size],
                                            merged=page.merged if start == 0 else []), handle)
    ctx.check_not_taken_over()
    if ctx.writer is not None:
        ctx.writer.drain(final=True)


def _commit_page(ctx: RunContext, mapping: ObjectMapping, page: Page, handle: PageHandler, *,
                 full: bool = False, checkpointed: bool = True) -> None:
    """One page in one transaction: mapped, decided, deletions and merges applied, checkpointed, then drained."""
    ctx.check_not_taken_over()
    mapped = [map_record(ctx.connection, mapping, record) for record in page.records]
    # Enriched before the page's transaction: no provider call holds the page's locks.
    ctx.enrichments = (ctx.enricher.enrich_page(mapped, ctx.now()) if ctx.enricher is not None
                       and mapping.entity == "person" else {})
    ctx.histories = read_histories(ctx, mapping, mapped) if mapping.entity == "deal" else {}
    with ctx.transaction() as session:
        serialize_decisions(session, ctx.connection)  # runs side by side decide one page at a time
        repos = Repositories(session)
        plan = handle(ctx, mapping, mapped, repos)
        apply_deletions(ctx, plan, mapping, page.deleted_ids, page.merged, repos)
        plan.write(repos, ctx.now())
        if page.cursor is not None:
            repos.cursors.advance(
                ctx.connection, mapping.name, page.cursor.last_modified, page.cursor.last_id or None, now=ctx.now(),
                allow_backwards=full and not checkpointed,
            )
        assert ctx.summary.run_id is not None
        repos.sync_runs.heartbeat(ctx.summary.run_id, now=ctx.now())
    plan.add_to(ctx.summary)
    ctx.summary.read[mapping.name] += len(page.records)
    ctx.progress.page_done(mapping.name, len(page.records))
    if ctx.writer is not None:
        ctx.writer.drain(final=False)


def _calls_since(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {kind: n - before.get(kind, 0) for kind, n in after.items() if n - before.get(kind, 0)}


def _finish(ctx: RunContext, status: SyncStatus, error: str | None) -> None:
    summary = ctx.summary
    if ctx.dry_session is not None:
        try:
            if status is SyncStatus.SUCCEEDED:  # a failed dry run's plan would be partial: its error is the news
                with ctx.transaction() as session:  # before the rollback: the plan is this run's outbox
                    summary.planned = planned_writes(Repositories(session), ctx.connection,
                                                     ctx.config.mapping_for(ctx.connection), ctx.owners)
        finally:
            ctx.dry_session.rollback()
            ctx.dry_session.close()
        return
    assert summary.run_id is not None
    try:
        with ctx.sessions.begin() as session:
            repos = Repositories(session)
            for kind, count in summary.api_calls.items():
                repos.api_calls.add(ctx.connection, kind, count, at=ctx.now())
            store_run_quality(repos, summary.quality, summary.run_id, ctx.connection, ctx.now())
            repos.sync_runs.finish(summary.run_id, status, counts=summary.counts(), error=error, now=ctx.now())
    except RunNotRunning as exc:  # taken over after its last page: the run that took over owns the row now
        if status is SyncStatus.SUCCEEDED:
            raise SyncTakenOver(ctx.connection, summary.run_id) from exc
        log.warning("sync run %s of %s was taken over before it could record its failure", summary.run_id,
                    ctx.connection)
    except Exception:  # never hide the run's own error behind a bookkeeping one
        log.exception("could not close sync run %s of %s", summary.run_id, ctx.connection)
        if status is SyncStatus.SUCCEEDED:
            raise


def _has_cursors(ctx: RunContext) -> bool:
    with ctx.transaction() as session:
        return bool(Repositories(session).cursors.all(ctx.connection))


def _ensure_fields(ctx: RunContext) -> None:
    """Make sure every field Relay writes exists: HubSpot creates its properties, Salesforce checks them.

    The objects Relay keeps its fields on are checked: the people and accounts it syncs
    (a new store adopts the Relay ids they hold) and its tasks.
    """
    conn = ctx.resolved
    synced = {m.name for m in conn.synced}
    for mapping in conn.mappings.objects.values():
        written = (mapping.entity in ("person", "account", "deal") and mapping.name in synced) or mapping.entity == "task"
        if not written:
            continue
        specs = [FieldSpec.of(spec.model_dump(by_alias=True)) for spec in mapping.create_properties]
        if not specs:
            specs = [FieldSpec.of(fm.crm) for fm in mapping.write_fields()]
        if specs:
            ctx.adapter.ensure_fields(mapping.name, specs)


def mapped_field_problems(config: RelayConfig, connection: str, adapter: CrmAdapter) -> list[ConfigurationError]:
    """Fields the mapping reads from the connection's synced objects that the CRM lacks, one error per object.

    HubSpot answers an unknown property with no value rather than an error, so a typo in
    the mapping would otherwise score every contact without it, silently.
    """
    conn = resolve_connection(config, connection)
    problems = []
    for mapping in conn.synced:
        if mapping.entity not in ("person", "account", "deal"):  # owners come from the CRM's user list, not its objects
            continue
        created = {spec.name for spec in mapping.create_properties}  # Relay creates these on its first sync
        missing = adapter.check_fields(mapping.name, [f for f in mapping.crm_fields_to_read() if f not in created])
        if missing:
            problems.append(conn.unit.missing_fields(mapping.name, missing, connection=connection, source=conn.source))
    return problems


def check_mapped_fields(config: RelayConfig, connection: str, adapter: CrmAdapter) -> None:
    """Refuse to sync when the mapping reads a field the CRM lacks (see :func:`mapped_field_problems`).

    Raises:
        ConfigurationError: naming every missing field, its object and the mapping file.
    """
    problems = mapped_field_problems(config, connection, adapter)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first.message = "; ".join(p.message for p in problems)
        raise first


def _load_owners(ctx: RunContext) -> None:
    """Read the CRM's users (owners) before anything is decided.

    Raises:
        MappingError: when the mapping has no owner object.
        ConfigurationError: when the CRM has no active user with an email: every person
            would be routed to nobody and get a new SLA, so the run stops first.
    """
    owner_mapping = ctx.resolved.owners
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
    if not ctx.owner_ids_by_email:
        raise ConfigurationError(
            f"the CRM returned no active users ({len(owners)} {owner_mapping.name} records read, none active "
            "with an email); Relay will not route or write SLAs. Check the integration user's access to "
            f"{owner_mapping.name} records",
            crm=ctx.resolved.unit.kind, code="NO_ACTIVE_USERS", context=f"read {owner_mapping.name}",
            connection=ctx.connection,
        )


def _stored_cursor(ctx: RunContext, object_name: str, full: bool) -> Cursor | None:
    """Where the read of ``object_name`` starts: its checkpoint, or nothing for a full sync."""
    if full:
        return None
    with ctx.transaction() as session:
        stored = Repositories(session).cursors.get(ctx.connection, object_name)
    return Cursor(stored.last_modified, stored.last_id or "") if stored is not None else None


PageHandler = Callable[[RunContext, ObjectMapping, list[MappedRecord], Repositories], PagePlan]


def _sync_object(
    ctx: RunContext, mapping: ObjectMapping, full: bool, page_size: int, handle: PageHandler
) -> None:
    cursor = _stored_cursor(ctx, mapping.name, full)
    ctx.progress.object_started(mapping.name)
    fields = mapping.crm_fields_to_read()
    checkpointed = False  # a full read starts over: its first checkpoint may lie before the stored cursor
    for page in ctx.adapter.read(mapping.name, fields, cursor, page_size=page_size):
        _commit_page(ctx, mapping, page, handle, full=full, checkpointed=checkpointed)
        checkpointed = checkpointed or page.cursor is not None
    if not ctx.adapter.reads_deletions:
        _list_deletions(ctx, mapping, cursor, full)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _list_deletions(ctx: RunContext, mapping: ObjectMapping, start: Cursor | None, full: bool) -> None:
    """Apply the deletions a CRM lists apart from the changes (HubSpot's archived records), when due.

    The listing pages through every archived record, so a connection asks for it at most
    every ``deletions_every_minutes`` (a full sync always). It looks back to where the last
    listing stood (``deletions_since``), else to where this run's read started, so a
    record deleted while listings waited is still found; the next one starts at the read
    position this one saw.
    """
    with ctx.transaction() as session:
        stored = Repositories(session).cursors.get(ctx.connection, mapping.name)
    every = timedelta(minutes=ctx.resolved.settings.deletions_every_minutes)
    now = ctx.now()
    last = stored.deletions_checked_at if stored is not None else None
    if not full and last is not None and timedelta(0) <= now - last < every:
        return
    if full or start is None:
        since = _EPOCH
    elif stored is not None and stored.deletions_since is not None:
        since = min(stored.deletions_since, start.last_modified)
    else:
        since = start.last_modified
    deleted = ctx.adapter.read_deleted(mapping.name, since)
    plan = ctx.new_page()
    with ctx.transaction() as session:
        serialize_decisions(session, ctx.connection)
        repos = Repositories(session)
        if deleted:
            apply_deletions(ctx, plan, mapping, deleted, (), repos)
            plan.write(repos, ctx.now())
        if stored is not None:
            repos.cursors.deletions_listed(ctx.connection, mapping.name, stored.last_modified, now=now)
    plan.add_to(ctx.summary)


def _propagate_owners(ctx: RunContext, mapping: ObjectMapping, page_size: int) -> None:
    """Give people the owner decided for the same person elsewhere, without reading them again.

    A record synced before its person was routed in another CRM (or through another record)
    may never change again, so no incremental read would bring it back: it is decided again
    from its stored snapshot, and takes the other record's owner as the decision core rules
    (the same path as a record read from the CRM: assignment, audit, outbox). Records whose
    person's owner has no active user in this CRM, and records that keep the owner the CRM
    gives them (which a stale snapshot would only rewrite), are left alone.
    """
    with ctx.transaction() as session:
        waiting = [
            (snapshot, email) for snapshot, email in Repositories(session).records.awaiting_owner(ctx.connection,
                                                                                                  mapping.name)
            if email.strip().lower() in ctx.owner_ids_by_email
        ]
    rebuilt = [person_from_snapshot(ctx.connection, mapping, s.crm_id, s.canonical, s.last_seen) for s, _ in waiting]
    waiting_records = [
        r for r in rebuilt
        if isinstance(r.model, Person) and not keeps_crm_owner(r.model, ctx.config.rules, ctx.owners)
    ]
    for start in range(0, len(waiting_records), page_size):
        records = waiting_records[start:start + page_size]
        with ctx.transaction() as session:
            serialize_decisions(session, ctx.connection)
            repos = Repositories(session)
            plan = people_page(ctx, mapping, records, repos, decide_unchanged=True)
            plan.quality = None  # not read in this run: their data quality counted when they were
            plan.write(repos, ctx.now())
            assert ctx.summary.run_id is not None
            repos.sync_runs.heartbeat(ctx.summary.run_id, now=ctx.now())
        plan.add_to(ctx.summary)
        if ctx.writer is not None:
            ctx.writer.drain(final=False)


__all__ = ["STALE_AFTER", "TAKE_OVER_AFTER", "SyncTakenOver", "run_sync", "utc_now"]
