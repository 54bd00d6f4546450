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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.base import CrmAdapter, Cursor, FieldSpec
from connector.config.loader import RelayConfig
from connector.config.mappings import ObjectMapping
from connector.core.decide import decide_people
from connector.core.identity import person_key, registered_domain
from connector.core.models import (
    Account,
    ExistingAssignment,
    GroupPosition,
    LeadDecision,
    Owner,
    Person,
    RecordRef,
    RoutingState,
)
from connector.mapping.engine import MappingError
from connector.pipeline.connections import open_adapter
from connector.pipeline.records import MappedRecord, account_from_snapshot, map_record
from connector.pipeline.summary import (
    DecisionExample,
    NoProgress,
    PlannedWrite,
    SyncProgress,
    SyncSummary,
)
from connector.pipeline.writeback import PlannedMessage, desired_values, record_update, task_message
from connector.pipeline.writer import OutboxPayload, OutboxWriter
from connector.store.db import session_factory
from connector.store.models import SyncMode, SyncStatus
from connector.store.repositories import (
    Assignment,
    AssignmentIn,
    AuditEntryIn,
    CrmRef,
    OutboxMessageIn,
    Repositories,
    SnapshotIn,
)

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=5)
"""A running sync whose heartbeat is older than this is taken to have died."""
EXAMPLES = 8
"""How many decisions a summary keeps as examples."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _RunContext:
    config: RelayConfig
    connection: str
    adapter: CrmAdapter
    sessions: sessionmaker[Session]
    summary: SyncSummary
    progress: SyncProgress
    now: Callable[[], datetime]
    dry_run: bool
    writer: OutboxWriter | None
    dry_session: Session | None = None
    owners: list[Owner] = field(default_factory=list)
    owner_ids_by_email: dict[str, str] = field(default_factory=dict)
    accounts: list[Account] | None = None
    page_audit: list[AuditEntryIn] = field(default_factory=list)
    page_outbox: list[OutboxMessageIn] = field(default_factory=list)
    page_assignments: list[AssignmentIn] = field(default_factory=list)

    def audit(self, action: str, **entry: Any) -> None:
        """Buffer an audit entry; it is written with the page (one statement for all)."""
        self.page_audit.append(AuditEntryIn(self.connection, action, run_id=self.summary.run_id, **entry))

    def flush_page(self, repos: Repositories) -> None:
        """Write the page's buffered assignments, outbox messages and audit entries, in its transaction."""
        if self.page_assignments:
            repos.assignments.record_new_many(self.page_assignments, now=self.now())
        if self.page_outbox:
            repos.outbox.enqueue_many(self.page_outbox, run_id=self.summary.run_id, now=self.now())
        if self.page_audit:
            repos.audit.append_many(self.page_audit)
        self.page_audit = []
        self.page_outbox = []
        self.page_assignments = []

    def transaction(self) -> Any:
        """A transaction for one page (one long uncommitted one in a dry run)."""
        if self.dry_session is not None:
            return _NoCommit(self.dry_session)
        return self.sessions.begin()


class _NoCommit:
    """Context manager yielding the dry run's session without committing."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, *exc: object) -> None:
        self.session.flush()


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
    ctx = _RunContext(
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
            _sync_object(ctx, mapping, full, conn_config.page_size, _accounts_page)
        for mapping in (m for m in objects if m.entity == "person"):
            _sync_object(ctx, mapping, full, conn_config.page_size, _people_page)
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


def _finish(ctx: _RunContext, status: SyncStatus, error: str | None) -> None:
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


def _has_cursors(ctx: _RunContext) -> bool:
    with ctx.transaction() as session:
        return bool(Repositories(session).cursors.all(ctx.connection))


def _ensure_fields(ctx: _RunContext) -> None:
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


def _load_owners(ctx: _RunContext) -> None:
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


PageHandler = Callable[[_RunContext, ObjectMapping, list[MappedRecord], Any], None]


def _sync_object(
    ctx: _RunContext, mapping: ObjectMapping, full: bool, page_size: int, handle: PageHandler
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
            _apply_deletions(ctx, mapping, page.deleted_ids, page.merged, repos)
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
                _apply_deletions(ctx, mapping, deleted, (), repos)
                ctx.flush_page(repos)


def _apply_deletions(
    ctx: _RunContext,
    mapping: ObjectMapping,
    deleted_ids: Sequence[str],
    merged: Sequence[tuple[str, str]],
    repos: Repositories,
) -> None:
    for crm_id in deleted_ids:
        if repos.records.mark_deleted(ctx.connection, mapping.name, crm_id, seen_at=ctx.now()):
            ctx.summary.deleted += 1
            ctx.audit("deleted", object_name=mapping.name, crm_id=crm_id,
                      detail={}, at=ctx.now())
    for loser, winner in merged:
        repos.records.mark_merged(ctx.connection, mapping.name, loser, winner, seen_at=ctx.now())
        ctx.summary.merged += 1
        ctx.audit("merged", object_name=mapping.name, crm_id=loser,
                  detail={"merged_into": winner}, at=ctx.now())


def _quarantine(ctx: _RunContext, mapping: ObjectMapping, record: MappedRecord, reason: str, repos: Repositories) -> None:
    ctx.summary.quarantined += 1
    repos.quarantine.add(ctx.connection, mapping.name, reason, record.canonical, crm_id=record.meta.record_id,
                         at=ctx.now())
    ctx.audit("quarantined", object_name=mapping.name, crm_id=record.meta.record_id,
              detail={"reason": reason}, at=ctx.now())


def _accounts_page(ctx: _RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories) -> None:
    live: list[tuple[Account, MappedRecord]] = []
    for record in records:
        if record.model is None:
            _quarantine(ctx, mapping, record, record.error or "unreadable record", repos)
            continue
        assert isinstance(record.model, Account) and record.meta.record_id is not None
        if record.meta.deleted:
            repos.records.mark_deleted(ctx.connection, mapping.name, record.meta.record_id, seen_at=ctx.now())
            continue
        live.append((record.model, record))
    if not live:
        return
    now = ctx.now()
    refs = {
        account.ref: CrmRef(ctx.connection, mapping.name, account.ref.crm_id) for account, _ in live
    }
    keys = [
        ((account.domain or registered_domain(account.website) or "").lower() or None, refs[account.ref])
        for account, _ in live
    ]
    relay_ids = repos.identities.resolve_many("account", keys, now=now)
    changed = repos.records.upsert_snapshots(
        ctx.connection, mapping.name,
        [SnapshotIn(a.ref.crm_id, "account", r.canonical, relay_ids[refs[a.ref]]) for a, r in live],
        seen_at=now,
    )
    ctx.summary.changed += len(changed)
    ctx.accounts = None  # re-read before the next people page


def _accounts(ctx: _RunContext, repos: Repositories) -> list[Account]:
    """The connection's live accounts, read once per run after the account objects synced."""
    if ctx.accounts is None:
        accounts = []
        for snap in repos.records.live_of_kind(ctx.connection, "account"):
            account = account_from_snapshot(snap.connection, snap.object, snap.crm_id, snap.canonical)
            if account is not None:
                accounts.append(account)
        ctx.accounts = accounts
    return ctx.accounts


def _existing_assignments(
    ctx: _RunContext, people: Sequence[Person], relay_ids: Mapping[RecordRef, str], repos: Repositories
) -> tuple[dict[RecordRef, ExistingAssignment], set[RecordRef], set[RecordRef]]:
    """Active assignments of these records, or of other records of the same person.

    Returns:
        The assignments to keep by record, the records that have one of their own, and the
        records whose own assignment must be superseded (its owner cannot own records here).

    An assignment whose owner has no active user in this CRM is left out, so the person is
    routed afresh (the new assignment supersedes it): keeping it would leave the record
    with whoever owned it before (often a queue), because the CRM refuses an inactive
    owner (``INACTIVE_OWNER_OR_USER``), and no later sync would ever route it again.
    """
    by_identity = {
        relay_id: assignment
        for relay_id, assignment in repos.assignments.active_for_identities(set(relay_ids.values())).items()
        if _owner_can_own_here(ctx, assignment)
    }
    mine_by_object: dict[str, dict[str, Assignment]] = {}
    for obj in {p.ref.object for p in people}:
        ids = [p.ref.crm_id for p in people if p.ref.object == obj]
        mine_by_object[obj] = repos.assignments.active_for_records(ctx.connection, obj, ids)
    existing: dict[RecordRef, ExistingAssignment] = {}
    own: set[RecordRef] = set()
    stale: set[RecordRef] = set()
    for person in people:
        ref = person.ref
        mine = mine_by_object[ref.object].get(ref.crm_id)
        if mine is not None and not _owner_can_own_here(ctx, mine):
            stale.add(ref)
            mine = None
        assignment = mine or by_identity.get(relay_ids[ref])
        if mine is not None:
            own.add(ref)
        if assignment is not None:
            existing[ref] = ExistingAssignment(
                owner_email=assignment.owner_email, tier=assignment.tier or "", assigned_at=assignment.assigned_at,
                rule=assignment.rule,
            )
    return existing, own, stale


def _owner_can_own_here(ctx: _RunContext, assignment: Assignment) -> bool:
    """Whether the assignment's owner is an active user of this connection's CRM."""
    return assignment.owner_email.strip().lower() in ctx.owner_ids_by_email


def _people_page(ctx: _RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories) -> None:
    people: list[Person] = []
    by_ref: dict[RecordRef, MappedRecord] = {}
    for record in records:
        if record.model is None:
            _quarantine(ctx, mapping, record, record.error or "unreadable record", repos)
            continue
        assert isinstance(record.model, Person)
        person = record.model
        if record.meta.deleted:
            repos.records.mark_deleted(ctx.connection, mapping.name, person.ref.crm_id, seen_at=ctx.now())
            continue
        people.append(person)
        by_ref[person.ref] = record
    if not people:
        return
    crm_refs = {p.ref: CrmRef(ctx.connection, mapping.name, p.ref.crm_id) for p in people}
    resolved = repos.identities.resolve_many(
        "person", [(person_key(p.email), crm_refs[p.ref]) for p in people], now=ctx.now()
    )
    relay_ids = {ref: resolved[crm_ref] for ref, crm_ref in crm_refs.items()}
    changed = repos.records.upsert_snapshots(
        ctx.connection, mapping.name,
        [SnapshotIn(p.ref.crm_id, "person", by_ref[p.ref].canonical, relay_ids[p.ref]) for p in people],
        seen_at=ctx.now(),
    )
    ctx.summary.changed += len(changed)
    existing, own, stale = _existing_assignments(ctx, people, relay_ids, repos)
    state = RoutingState.model_validate({"groups": repos.round_robin.load(for_update=True)})
    now = ctx.now()
    decisions, new_state = decide_people(
        people, _accounts(ctx, repos), ctx.owners, ctx.config.rules, state, now, existing
    )
    changed_groups = {k: v.model_dump() for k, v in new_state.groups.items() if state.groups.get(k) != v}
    if changed_groups:
        repos.round_robin.save(changed_groups, now=now)
    persons = {p.ref: p for p in people}
    for decision in decisions:
        _apply_decision(ctx, mapping, persons[decision.ref], by_ref[decision.ref], decision,
                        relay_ids[decision.ref], decision.ref in own, decision.ref in stale, repos)


def _apply_decision(
    ctx: _RunContext,
    mapping: ObjectMapping,
    person: Person,
    record: MappedRecord,
    decision: LeadDecision,
    relay_id: str,
    has_own_assignment: bool,
    supersede: bool,
    repos: Repositories,
) -> None:
    summary = ctx.summary
    version = decision.rules_version
    if decision.quarantined:
        _quarantine(ctx, mapping, record, decision.quarantine_reason or "could not decide", repos)
        return
    for finding in decision.findings:
        summary.findings[finding.code] += 1
    for problem in record.problems:
        summary.findings["unreadable_value"] += 1
        ctx.audit("data_quality", object_name=mapping.name, crm_id=person.ref.crm_id,
                  relay_id=relay_id,
                  detail={"field": problem.field, "value": repr(problem.value), "message": problem.message},
                  at=decision.decided_at)

    routing = decision.routing
    owner_crm_id: str | None = None
    assignment_key: str | None = None
    if routing is not None and routing.owner_email and not routing.rule.startswith("crm_"):
        owner_crm_id = ctx.owner_ids_by_email.get(routing.owner_email.lower())
        if owner_crm_id is None:
            summary.findings["owner_not_in_crm"] += 1
            ctx.audit("unassigned", object_name=mapping.name, crm_id=person.ref.crm_id,
                      relay_id=relay_id, rules_version=version,
                      detail={"reason": f"{routing.owner_email} has no active user in {ctx.connection}",
                              "routing": routing.model_dump(mode="json")},
                      at=decision.decided_at)
        elif not has_own_assignment:
            assignment = AssignmentIn(
                ctx.connection, mapping.name, person.ref.crm_id,
                owner_email=routing.owner_email, owner_crm_id=owner_crm_id, tier=routing.tier,
                rule=routing.rule, reason=routing.reason,
                score=decision.score.total if decision.score else None, rules_version=version,
                relay_id=relay_id, sla_due=decision.sla.due_at if decision.sla else None,
                assigned_at=decision.decided_at,
            )
            if supersede:  # rare: the old owner cannot own records here any more
                repos.assignments.record(**asdict(assignment))
            else:
                ctx.page_assignments.append(assignment)
            assignment_key = decision.decided_at.strftime("%Y%m%dT%H%M%S.%fZ")
            if not routing.kept_existing:
                summary.routed[routing.owner_email] += 1
            else:
                summary.propagated += 1
            ctx.audit(
                "assigned", object_name=mapping.name, crm_id=person.ref.crm_id, relay_id=relay_id,
                rules_version=version,
                detail={
                    "owner_email": routing.owner_email, "owner_crm_id": owner_crm_id, "tier": routing.tier,
                    "rule": routing.rule, "reason": routing.reason, "region": routing.region,
                    "group": routing.group, "kept_existing": routing.kept_existing,
                    "score": decision.score.model_dump(mode="json") if decision.score else None,
                    "sla": decision.sla.model_dump(mode="json") if decision.sla else None,
                    "matched_account": str(decision.matched_account) if decision.matched_account else None,
                    "duplicates": [str(r) for r in decision.duplicates],
                },
                at=decision.decided_at,
            )

    if person.is_converted:
        return  # a converted lead is read-only in the CRM (Salesforce refuses updates): write nothing
    desired = desired_values(decision, relay_id, owner_crm_id)
    current = dict(record.canonical)
    current.update(person.model_dump(include=set(desired)))
    planned: list[PlannedMessage] = []
    try:
        update = record_update(mapping, person, current, desired, record.meta.modified_at)
        if update is not None:
            planned.append(update)
        if decision.task is not None and owner_crm_id is not None and assignment_key is not None:
            planned.append(task_message(ctx.config.mapping_for(ctx.connection), person, decision.task,
                                        owner_crm_id, assignment_key))
    except MappingError as exc:
        _quarantine(ctx, mapping, record, f"cannot write back: {exc}", repos)
        return
    if decision.score is not None and (person.relay_score != decision.score.total
                                       or person.relay_score_category != decision.score.category):
        ctx.audit("scored", object_name=mapping.name, crm_id=person.ref.crm_id,
                  relay_id=relay_id, rules_version=version,
                  detail=decision.score.model_dump(mode="json"), at=decision.decided_at)
    for message in planned:
        ctx.page_outbox.append(OutboxMessageIn(ctx.connection, message.object, message.operation,
                                               message.payload.to_json(), message.idempotency_key,
                                               crm_id=message.crm_id))
        if message.payload.purpose == "update":
            ctx.audit("field_update", object_name=mapping.name, crm_id=person.ref.crm_id,
                      relay_id=relay_id, rules_version=version,
                      detail={"fields": message.payload.fields}, at=decision.decided_at)
    if len(summary.examples) < EXAMPLES and routing is not None and assignment_key is not None:
        summary.examples.append(_example(person, decision))


def _example(person: Person, decision: LeadDecision) -> DecisionExample:
    name = " ".join(x for x in (person.first_name, person.last_name) if x) or person.email or person.ref.crm_id
    return DecisionExample(
        object=person.ref.object, crm_id=person.ref.crm_id, name=name, company=person.company,
        score=decision.score.total if decision.score else None,
        category=decision.score.category if decision.score else None,
        owner_email=decision.routing.owner_email if decision.routing else None,
        reason=decision.routing.reason if decision.routing else None,
        sla_due=decision.sla.due_at.isoformat() if decision.sla else None,
    )


__all__ = ["GroupPosition", "run_sync"]
