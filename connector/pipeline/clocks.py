"""SLA clocks that act: opened and updated with the page that reads a lead, fired by a periodic job.

Two halves:

* :func:`track_clocks` runs inside a people page's transaction (``pages.people_page``): every
  owned lead of a clocked kind (``sla.yaml`` ``clock_person_kinds``) has one open clock for
  its owner, whoever assigned the owner (Relay's routing, a named account, a rep by hand);
  a new owner closes the old clock and opens a new one; the lead's status moving off new is
  its first touch (its time is stored and audited) and stops the reminders and escalations;
  a status past contacted closes the clock.
* :func:`fire_due_clocks` (the Huey task ``relay.fire_sla_clocks`` every minute, and
  ``relay clocks fire``) claims the due clocks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
  asks the core what is due, and writes in one transaction per batch: the step's task on
  the record (owned by whom it is for: the owner, the manager, the director; idempotency key
  per clock and step, so a step fired twice makes one task), the re-queue or nurture owner
  change through the same record-update path as routing's (assignment ledger, owner field,
  routing reason, SLA due, follow-up task for the new owner, a new clock), the audit
  entries and the clock's new state; then the connection's outbox is sent through the
  :class:`~connector.pipeline.writer.OutboxWriter`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.base import CrmAdapter
from connector.adapters.budget import Priority
from connector.config.loader import RelayConfig
from connector.config.mappings import ObjectMapping
from connector.core.clocks import (
    ClockAction,
    ClockState,
    Stage,
    add_working_time,
    calendar_for,
    evaluate,
    next_due_at,
    requeue_group,
    requeue_owner,
    schedule,
    stage_of,
)
from connector.core.models import LeadDecision, Person, RoutingState, TaskDecision
from connector.core.routing import score_text
from connector.core.rules import Rules
from connector.core.sla import sla_for
from connector.mapping.engine import MappingError
from connector.notify.alert import AlertKind
from connector.pipeline.alerts import enqueue_alerts, lead_from_store, send_alerts_now
from connector.pipeline.connections import ResolvedConnection, open_adapter, resolve_connection
from connector.pipeline.context import PagePlan, RunContext, utc_now
from connector.pipeline.records import map_record, person_from_snapshot
from connector.pipeline.summary import SyncSummary, WriteFailure
from connector.pipeline.writeback import DECISION_FIELDS, record_update, task_message
from connector.pipeline.writer import OutboxWriter
from connector.store.db import serialize_decisions, session_factory
from connector.store.models import ClockStatus
from connector.store.repositories import (
    AssignmentIn,
    AuditEntryIn,
    Clock,
    ClockIn,
    ClockUpdate,
    OutboxMessageIn,
    Repositories,
)

log = logging.getLogger(__name__)

BATCH = 200
"""Clocks claimed (and fired) per transaction."""
MAX_BATCHES = 1000
"""Batches one connection fires per job run at most (a guard; each batch moves its clocks past ``now``)."""
REASON_MAX = 255


# --------------------------------------------------------------------------- the page side


@dataclass(frozen=True)
class Observed:
    """One decided person record of a page, as the clocks see it.

    Attributes:
        mapping: Its object's mapping.
        person: The record as read.
        decision: The core's decision about it.
        relay_id: Its person's Relay id.
    """

    mapping: ObjectMapping
    person: Person
    decision: LeadDecision
    relay_id: str


def _owner_of(ctx: RunContext, item: Observed) -> str | None:
    """The owner whose clock the record runs, or None (no owner, a tier without SLA, no user here)."""
    routing = item.decision.routing
    if item.decision.quarantined or routing is None or not routing.owner_email:
        return None
    if _no_outreach(item):
        return None  # consent.yaml allows no outreach: no clock chases the owner to reach out
    if ctx.config.rules.sla.tier(routing.tier) is None:
        return None  # nurture: no sales SLA
    email = routing.owner_email.strip().lower()
    return email if email in ctx.owner_ids_by_email else None


def _no_outreach(item: Observed) -> bool:
    """Whether the person's consent allows no outreach (their clock's reminders and escalations are outreach)."""
    consent = item.decision.consent
    return consent is not None and not consent.allows("outreach_tasks")


def _touched_at(person: Person, since: datetime, now: datetime) -> datetime:
    """When a status change seen now happened: the record's last modification (bounded by ``since`` and now)."""
    changed = person.updated_at
    if changed is None:
        return now
    return max(since, min(changed, now))


def _reads_status(mapping: ObjectMapping) -> bool:
    """Whether the mapping reads the lead status: without it no first touch could ever stop a clock."""
    return any(fm.canonical == "status" for fm in mapping.read_fields())


def track_clocks(ctx: RunContext, plan: PagePlan, observed: Sequence[Observed], repos: Repositories) -> None:
    """Open, update or close the SLA clocks of a page's decided records (in the page's transaction).

    Set-based: one locked SELECT of the records' latest clocks per object, one executemany
    for the changed clocks and one for the new ones. Audit entries go with the page's.
    """
    policy = ctx.config.rules.sla
    kinds = set(policy.clock_person_kinds)
    by_object: dict[str, list[Observed]] = {}
    for item in observed:
        if item.mapping.people_are in kinds and _reads_status(item.mapping):
            by_object.setdefault(item.mapping.name, []).append(item)
    now = ctx.now()
    for object_name, items in by_object.items():
        latest = repos.clocks.latest_for_records(ctx.connection, object_name, [i.person.ref.crm_id for i in items],
                                                 lock=True)
        saves: list[ClockUpdate] = []
        opens: list[ClockIn] = []
        for item in items:
            _track_one(ctx, plan, item, latest.get(item.person.ref.crm_id), now, saves, opens)
        if saves:
            repos.clocks.save_many(saves, now=now)
        if opens:
            repos.clocks.open_many(opens, now=now)


def _track_one(ctx: RunContext, plan: PagePlan, item: Observed, clock: Clock | None, now: datetime,
               saves: list[ClockUpdate], opens: list[ClockIn]) -> None:
    rules = ctx.config.rules
    owner = _owner_of(ctx, item)
    stage = stage_of(item.person.status, rules.sla)
    is_open = clock is not None and clock.status is ClockStatus.OPEN
    if clock is not None and is_open and owner == clock.owner_email:
        _update_stage(ctx, plan, item, clock, stage, now, saves)
        return
    if clock is not None and is_open:
        reason = "owner_changed" if owner is not None else ("converted" if item.person.is_converted else
                                                           "consent" if _no_outreach(item) else "unowned")
        saves.append(ClockUpdate(clock.id, clock.stage, clock.stage_since, clock.first_touch_at, clock.fired,
                                 None, closed_reason=reason))
        _audit(plan, item, "sla_clock_closed", now, {"reason": reason, "owner_email": clock.owner_email,
                                                     "new_owner_email": owner, "clock_id": clock.id})
    if owner is None or stage == "other":
        return  # nobody to clock, or a lead already past contacted: nothing to chase
    if clock is not None and not is_open and clock.owner_email == owner:
        return  # this owner's clock ran its course (worked, or a step ended it)
    routing = item.decision.routing
    assert routing is not None
    started = item.decision.decided_at
    state = ClockState(tier=routing.tier, owner_email=owner, started_at=started, stage=stage, stage_since=started,
                       first_touch_at=None if stage == "new" else started)
    steps = schedule(state, rules.sla, rules.routing)
    region = routing.region or rules.routing.region_for(item.person.country)
    opens.append(ClockIn(
        ctx.connection, item.mapping.name, item.person.ref.crm_id, owner, routing.tier, started,
        source=routing.source, stage=stage, stage_since=started, first_touch_at=state.first_touch_at,
        next_due_at=next_due_at(state, rules.sla, rules.routing), owner_crm_id=ctx.owner_ids_by_email.get(owner),
        relay_id=item.relay_id, group_key=routing.group if routing.source == "relay" else None, region=region,
    ))
    _audit(plan, item, "sla_clock_started", now, {
        "owner_email": owner, "tier": routing.tier, "source": routing.source, "stage": stage,
        "started_at": started.isoformat(), "schedule": {step: at.isoformat() for step, (at, _, _) in steps.items()},
    })


def _update_stage(ctx: RunContext, plan: PagePlan, item: Observed, clock: Clock, stage: Stage, now: datetime,
                  saves: list[ClockUpdate]) -> None:
    """The owner's clock goes on: note a new stage, a first touch, or that the lead is worked."""
    rules = ctx.config.rules
    if stage == clock.stage:
        return
    since = _touched_at(item.person, max(clock.started_at, clock.stage_since), now)
    first_touch = clock.first_touch_at
    if first_touch is None and stage != "new":
        first_touch = since
        sla = schedule(_state(clock), rules.sla, rules.routing)
        breach = sla.get("escalate_manager")
        _audit(plan, item, "sla_first_touch", now, {
            "owner_email": clock.owner_email, "tier": clock.tier, "at": since.isoformat(),
            "status": item.person.status, "minutes": round((since - clock.started_at).total_seconds() / 60, 1),
            "within_sla": breach is None or since <= breach[0], "clock_id": clock.id,
        })
    state = ClockState(tier=clock.tier, owner_email=clock.owner_email, started_at=clock.started_at, stage=stage,
                       stage_since=since, first_touch_at=first_touch, fired=frozenset(clock.fired))
    closed = "worked" if stage == "other" else None
    saves.append(ClockUpdate(clock.id, stage, since, first_touch, clock.fired,
                             None if closed else next_due_at(state, rules.sla, rules.routing), closed_reason=closed))
    if closed:
        _audit(plan, item, "sla_clock_closed", now, {"reason": closed, "status": item.person.status,
                                                     "owner_email": clock.owner_email, "clock_id": clock.id})


def _audit(plan: PagePlan, item: Observed, action: str, at: datetime, detail: dict[str, Any]) -> None:
    plan.audit(action, object_name=item.mapping.name, crm_id=item.person.ref.crm_id, relay_id=item.relay_id,
               rules_version=item.decision.rules_version, detail=detail, at=at)


def _state(clock: Clock) -> ClockState:
    stage: Stage = clock.stage if clock.stage in ("new", "contacted", "other") else "other"  # type: ignore[assignment]
    return ClockState(tier=clock.tier, owner_email=clock.owner_email, started_at=clock.started_at, stage=stage,
                      stage_since=clock.stage_since, first_touch_at=clock.first_touch_at,
                      fired=frozenset(clock.fired))


# --------------------------------------------------------------------------- the job side


@dataclass(frozen=True)
class FiredStep:
    """One step a job run fired (what an alert about it needs).

    Attributes:
        clock_id: The clock.
        connection: Its connection; ``object`` and ``crm_id`` name the record.
        step: ``remind``, ``escalate_manager``, ``escalate_director``, ``requeue`` or ``nurture``.
        owner_email: The owner the clock ran for.
        notify_email: Whom the step is for: the owner, the manager, the director, the new owner
            (re-queue) or the nurture owner; ``None`` when there is nobody.
        reason: Why (also in the audit entry and the task).
        due_at: When the step became due.
        task_key: The idempotency key of the task written to the CRM, if one was.
        delivered: False when the step could not be acted on in the CRM (see ``problem``).
        problem: Why it was not (no CRM user for the manager, no rep left to re-queue to...).
    """

    clock_id: int
    connection: str
    object: str
    crm_id: str
    relay_id: str | None
    step: str
    tier: str
    owner_email: str
    notify_email: str | None
    reason: str
    due_at: datetime
    task_key: str | None = None
    delivered: bool = True
    problem: str | None = None


@dataclass
class FireSummary:
    """What one run of the clock job did, over every connection.

    ``fired`` lists every step (the alerts read it); ``writes`` holds each connection's
    write-back counts (records updated, tasks created, refusals).
    """

    now: datetime
    claimed: int = 0
    fired: list[FiredStep] = field(default_factory=list)
    writes: dict[str, SyncSummary] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def by_step(self) -> Counter[str]:
        """How many of each step fired."""
        return Counter(step.step for step in self.fired)

    @property
    def write_failures(self) -> list[WriteFailure]:
        return [failure for summary in self.writes.values() for failure in summary.write_failures]


@dataclass
class _Connection:
    """What firing a connection's clocks needs, resolved once per job run."""

    name: str
    resolved: ResolvedConnection
    adapter: CrmAdapter
    owner_ids_by_email: dict[str, str]


def fire_due_clocks(
    config: RelayConfig,
    engine: Engine,
    *,
    now: datetime | None = None,
    connection: str | None = None,
    adapters: Mapping[str, CrmAdapter] | None = None,
    batch_size: int = BATCH,
    clock: Callable[[], datetime] = utc_now,
) -> FireSummary:
    """Fire every SLA clock step due at ``now``; idempotent however often (and however many at once) it runs.

    Per connection with due clocks: its owners are read (the CRM's users, to own the tasks),
    then batches of due clocks are claimed, decided by the core and written in one
    transaction each (tasks, owner changes, assignments, new clocks, audit, the clocks' new
    state), then the outbox is sent. A connection that fails (the CRM unreachable) is
    reported in ``errors``; what it committed is sent by the next run (or the next sync).

    Args:
        config: The validated configuration.
        engine: Relay's database.
        now: The time to fire at (default: the clock's now); steps due at or before it fire.
        connection: Only this connection's clocks.
        adapters: Adapters to use by connection (built from the config when missing).
        batch_size: Clocks per transaction.
        clock: The clock for ``now`` and for the writer's timestamps.
    """
    at = now or clock()
    summary = FireSummary(now=at)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        due = Repositories(session).clocks.due_connections(at)
    for name in due:
        if connection is not None and name != connection:
            continue
        if name not in config.relay.connections:
            summary.errors.append(f"{name}: clocks are due, but relay.yaml has no connection {name!r}; "
                                  "they wait until it comes back")
            continue
        adapter = (adapters or {}).get(name)
        own = adapter is None
        try:
            adapter = adapter or open_adapter(config, name, engine=engine, priority=Priority.REALTIME)
            conn = _Connection(name, resolve_connection(config, name), adapter, {})
            conn.owner_ids_by_email = _owner_ids(conn)
            writes = summary.writes[name] = SyncSummary(connection=name, mode="sla")
            _fire_connection(config, sessions, conn, at, batch_size, summary)
            if conn.resolved.settings.write_back:
                OutboxWriter(adapter, sessions, conn.resolved.settings.write_batch_size, writes, clock).drain(final=True)
        except Exception as exc:  # one connection's failure never stops the others'
            log.error("SLA clocks of %s could not fire: %s: %s", name, type(exc).__name__, exc)
            summary.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            if own and adapter is not None:
                adapter.close()
    if summary.fired:
        send_alerts_now(config, engine, now=at)
    return summary


def _owner_ids(conn: _Connection) -> dict[str, str]:
    """The CRM's active users by email (task owners)."""
    ids: dict[str, str] = {}
    for record in conn.adapter.owners():
        mapped = map_record(conn.name, conn.resolved.owners, record)
        owner = mapped.model
        if owner is not None and getattr(owner, "active", False) and getattr(owner, "email", None):
            ids[str(owner.email).strip().lower()] = str(owner.id)  # type: ignore[union-attr]
    return ids


@dataclass
class _Batch:
    """What one transaction of the job writes."""

    outbox: list[OutboxMessageIn] = field(default_factory=list)
    audit: list[AuditEntryIn] = field(default_factory=list)
    saves: list[ClockUpdate] = field(default_factory=list)
    opens: list[ClockIn] = field(default_factory=list)
    assignments: list[AssignmentIn] = field(default_factory=list)
    fired: list[FiredStep] = field(default_factory=list)


def _fire_connection(config: RelayConfig, sessions: Any, conn: _Connection, now: datetime, batch_size: int,
                     summary: FireSummary) -> None:
    for _ in range(MAX_BATCHES):
        with sessions.begin() as session:
            serialize_decisions(session, conn.name)  # a re-queue assigns: never beside a page's decisions
            repos = Repositories(session)
            claimed = repos.clocks.claim_due(now, limit=batch_size, connection=conn.name)
            if not claimed:
                return
            batch = _Batch()
            for clock in claimed:
                _fire_clock(config.rules, repos, conn, clock, now, batch)
            _write_batch(config, repos, batch, now)
        summary.claimed += len(claimed)
        summary.fired.extend(batch.fired)
        if len(claimed) < batch_size:
            return


def _write_batch(config: RelayConfig, repos: Repositories, batch: _Batch, now: datetime) -> None:
    """Write what a batch of fired steps planned, in the caller's transaction, and queue their alerts."""
    repos.clocks.save_many(batch.saves, now=now)  # closes first: a re-queued record opens its next clock
    if batch.assignments:
        repos.assignments.record_many(batch.assignments, now=now)
    if batch.opens:
        repos.clocks.open_many(batch.opens, now=now)
    if batch.outbox:
        repos.outbox.enqueue_many(batch.outbox, run_id=None, now=now)
    if batch.audit:
        repos.audit.append_many(batch.audit)
    for step in batch.fired:  # told at once, in the step's transaction (one alert however often it fires)
        _alert(config, repos, step, now)


@dataclass(frozen=True)
class Requeued:
    """What re-routing one person by hand did: the new owner, or why there is none."""

    connection: str
    object: str
    crm_id: str
    previous_owner: str | None
    new_owner: str | None
    problem: str | None = None


def requeue_now(config: RelayConfig, engine: Engine, connection: str, object_name: str, crm_id: str, *,
                reason: str, now: datetime | None = None, adapter: CrmAdapter | None = None,
                clock: Callable[[], datetime] = utc_now) -> Requeued:
    """Re-route one person now, as the aging re-queue does: the next available rep of the lead's group,
    never a previous owner of the person, with a new assignment, SLA clock and follow-up task in the CRM.

    The record must have an open SLA clock (its group, tier and region are the clock's); ``reason``
    (who asked, why) is written into the routing reason and the audit.
    """
    at = now or clock()
    own = adapter is None
    adapter = adapter or open_adapter(config, connection, engine=engine, priority=Priority.REALTIME)
    sessions = session_factory(engine)
    try:
        conn = _Connection(connection, resolve_connection(config, connection), adapter, {})
        conn.owner_ids_by_email = _owner_ids(conn)
        with sessions.begin() as session:
            serialize_decisions(session, connection)  # a re-queue assigns: never beside a page's decisions
            repos = Repositories(session)
            clocks = [c for c in repos.clocks.for_record(connection, object_name, crm_id)
                      if c.status == ClockStatus.OPEN]
            if not clocks:
                return Requeued(connection, object_name, crm_id, None, None,
                                "it has no open SLA clock (not owned through Relay, or already worked)")
            open_clock = clocks[-1]
            batch = _Batch()
            action = ClockAction("requeue", at, None, reason)
            moved = _requeue(config.rules, repos, conn, open_clock, action, at, batch)
            if moved:  # the old clock closes as a re-queue does; a failed one stays as it was
                fired = {**dict(open_clock.fired), "requeue": at.isoformat()}
                batch.saves.append(ClockUpdate(open_clock.id, open_clock.stage, open_clock.stage_since,
                                               open_clock.first_touch_at, fired, None, closed_reason="requeued"))
            _write_batch(config, repos, batch, at)
        step = batch.fired[-1] if batch.fired else None
        if moved and conn.resolved.settings.write_back:
            OutboxWriter(adapter, sessions, conn.resolved.settings.write_batch_size,
                         SyncSummary(connection=connection, mode="sla"), clock).drain(final=True)
        if moved:
            send_alerts_now(config, engine, now=at)  # the new owner is told, as for an aging re-queue
        return Requeued(connection, object_name, crm_id, open_clock.owner_email,
                        step.notify_email if moved and step is not None else None,
                        None if moved else (step.problem if step is not None else "nobody available"))
    finally:
        if own:
            adapter.close()


_STEP_ALERT = {"remind": AlertKind.REMINDER, "escalate_manager": AlertKind.ESCALATION_MANAGER,
               "escalate_director": AlertKind.ESCALATION_DIRECTOR, "requeue": AlertKind.REQUEUED}


def _alert(config: RelayConfig, repos: Repositories, step: FiredStep, now: datetime) -> None:
    """Queue the alerts of a fired step (alerts.yaml's route for the step's kind and tier); a step not acted on has none."""
    kind = _STEP_ALERT.get(step.step)
    if kind is None or not step.delivered or step.notify_email is None:
        return
    owner = step.notify_email if kind is AlertKind.REQUEUED else step.owner_email
    enqueue_alerts(repos, kind, config=config,
                   lead=lead_from_store(repos, step.connection, step.object, step.crm_id, config.rules),
                   owner_email=owner, tier=step.tier, due=step.due_at, source_key=f"clock:{step.clock_id}:{step.step}",
                   now=now, to_email=None if kind is AlertKind.REQUEUED else step.notify_email)


def _fire_clock(rules: Rules, repos: Repositories, conn: _Connection, clock: Clock, now: datetime,
                batch: _Batch) -> None:
    """Fire what is due on one claimed clock and plan its clock update."""
    state = _state(clock)
    verdict = evaluate(state, rules.sla, rules.routing, now)
    fired = dict(clock.fired)
    closed: str | None = None
    for action in verdict.actions:
        fired[action.step] = now.isoformat()
        if action.step == "requeue":
            closed = "requeued" if _requeue(rules, repos, conn, clock, action, now, batch) else "requeue_failed"
        elif action.step == "nurture":
            _nurture(rules, repos, conn, clock, action, now, batch)
            closed = "nurtured"
        else:
            _task_step(rules, repos, conn, clock, action, now, batch)
    if verdict.done and closed is None:
        closed = "worked"
    batch.saves.append(ClockUpdate(clock.id, clock.stage, clock.stage_since, clock.first_touch_at, fired,
                                   None if closed else verdict.next_due_at, closed_reason=closed))


_STEP_AUDIT = {"remind": "sla_reminder", "escalate_manager": "sla_escalated", "escalate_director": "sla_escalated",
               "requeue": "sla_requeued", "nurture": "sla_nurtured"}
_STEP_TITLE = {"remind": "SLA reminder", "escalate_manager": "SLA breached",
               "escalate_director": "SLA escalation, level 2"}


@dataclass(frozen=True)
class _Record:
    """The clock's record as last read (its snapshot), for task subjects and owner writes."""

    mapping: ObjectMapping
    person: Person
    canonical: dict[str, Any]
    seen: datetime

    @property
    def label(self) -> str:
        p = self.person
        name = " ".join(x for x in (p.first_name, p.last_name) if x) or p.email or p.ref.crm_id
        return name + (f" ({p.company})" if p.company else "")


def _record(repos: Repositories, conn: _Connection, clock: Clock) -> tuple[_Record | None, str | None]:
    mapping = conn.resolved.mapping(clock.object)
    if mapping is None or mapping.entity != "person":
        return None, f"the {conn.name} mapping has no person object {clock.object!r}"
    snapshot = repos.records.get(conn.name, clock.object, clock.crm_id)
    if snapshot is None or snapshot.deleted or snapshot.merged_into:
        state = "never read" if snapshot is None else "deleted" if snapshot.deleted else \
            f"merged into {snapshot.merged_into}"
        return None, f"record {clock.label} is {state}"
    mapped = person_from_snapshot(conn.name, mapping, clock.crm_id, dict(snapshot.canonical), snapshot.last_seen)
    if not isinstance(mapped.model, Person):
        return None, mapped.error or f"record {clock.label}: stored snapshot is not a person"
    return _Record(mapping, mapped.model, dict(snapshot.canonical), snapshot.last_seen), None


def _step(clock: Clock, action: ClockAction, notify: str | None, reason: str, **extra: Any) -> FiredStep:
    return FiredStep(clock_id=clock.id, connection=clock.connection, object=clock.object, crm_id=clock.crm_id,
                     relay_id=clock.relay_id, step=action.step, tier=clock.tier, owner_email=clock.owner_email,
                     notify_email=notify, reason=reason, due_at=action.due_at, **extra)


def _record_audit(batch: _Batch, clock: Clock, step: FiredStep, now: datetime, rules: Rules,
                  **detail: Any) -> None:
    batch.fired.append(step)
    action = _STEP_AUDIT[step.step] if step.delivered else "sla_step_undelivered"
    batch.audit.append(AuditEntryIn(
        clock.connection, action, object_name=clock.object, crm_id=clock.crm_id, relay_id=clock.relay_id,
        rules_version=rules.version, at=now,
        detail={"step": step.step, "level": {"escalate_manager": "manager", "escalate_director": "director"}
                .get(step.step), "owner_email": clock.owner_email, "notify_email": step.notify_email,
                "tier": clock.tier, "reason": step.reason, "due_at": step.due_at.isoformat(),
                "started_at": clock.started_at.isoformat(), "task_key": step.task_key, "problem": step.problem,
                "clock_id": clock.id, **detail},
    ))


def _task_step(rules: Rules, repos: Repositories, conn: _Connection, clock: Clock, action: ClockAction,
               now: datetime, batch: _Batch) -> None:
    """A reminder or an escalation: a task on the record, owned by whom it is for."""
    notify = action.notify
    record, problem = _record(repos, conn, clock)
    notify_id = conn.owner_ids_by_email.get(notify) if notify else None
    if problem is None and notify_id is None:
        problem = f"{notify or 'nobody'} has no active user in {conn.name}: no task was created"
    if record is None or notify is None or notify_id is None or problem is not None:
        _record_audit(batch, clock, _step(clock, action, notify, action.reason, delivered=False, problem=problem),
                      now, rules)
        return
    tier = rules.sla.tier(clock.tier)
    sla_seconds = (tier.response_minutes if tier else 0) * 60
    calendar = calendar_for(clock.owner_email, rules.sla, rules.routing)
    respond_by = add_working_time(clock.started_at, sla_seconds, calendar)
    due = respond_by if action.step == "remind" else now
    lines = [
        f"{_STEP_TITLE[action.step]}: {action.reason}.",
        f"Lead: {record.label}, owner {clock.owner_email}, assigned {clock.started_at.isoformat()}, "
        f"SLA tier {clock.tier}, respond by {respond_by.isoformat()}.",
    ]
    if record.person.relay_score is not None:
        lines.append(f"Relay {score_text(record.person.relay_score, record.person.relay_score_category or '?')}.")
    task = TaskDecision(
        subject=f"{_STEP_TITLE[action.step]}: {record.label}, SLA tier {clock.tier}, owner {clock.owner_email}"[:255],
        description="\n".join(lines), due_at=due, owner_email=notify,
        priority=tier.task_priority if tier is not None and action.step == "remind" else "High",
    )
    try:
        message = task_message(conn.resolved.tasks, record.person, task, notify_id, f"sla{clock.id}-{action.step}")
    except MappingError as exc:
        _record_audit(batch, clock, _step(clock, action, notify, action.reason, delivered=False, problem=str(exc)),
                      now, rules)
        return
    batch.outbox.append(OutboxMessageIn(conn.name, message.object, message.operation, message.payload.to_json(),
                                        message.idempotency_key, crm_id=message.crm_id))
    _record_audit(batch, clock, _step(clock, action, notify, action.reason, task_key=message.idempotency_key),
                  now, rules, task_owner_crm_id=notify_id)


def _owner_write(conn: _Connection, record: _Record, desired: dict[str, Any], batch: _Batch) -> str | None:
    """Plan the record update that writes a new owner (the routing path's ``record_update``); its key."""
    current = dict(record.canonical)
    current.update(record.person.model_dump(include=set(desired) | set(DECISION_FIELDS)))
    update = record_update(record.mapping, record.person, current, desired, record.seen)
    if update is None:
        return None
    batch.outbox.append(OutboxMessageIn(conn.name, update.object, update.operation, update.payload.to_json(),
                                        update.idempotency_key, crm_id=update.crm_id))
    return update.idempotency_key


def _requeue(rules: Rules, repos: Repositories, conn: _Connection, clock: Clock, action: ClockAction,
             now: datetime, batch: _Batch) -> bool:
    """Aging New: the next available rep of the lead's group, never a previous owner of the person."""
    record, problem = _record(repos, conn, clock)
    excluded = repos.clocks.previous_owners(clock.connection, clock.object, clock.crm_id, clock.relay_id)
    excluded.add(clock.owner_email)
    keys = requeue_group(clock.group_key, clock.region, clock.tier, rules.sla, rules.routing)
    active = {m.email: m.email in conn.owner_ids_by_email for m in rules.routing.team}
    new_owner: str | None = None
    key: str | None = None
    if record is not None:
        state = RoutingState.model_validate({"groups": repos.round_robin.load(for_update=True)})
        new_owner, key, new_state = requeue_owner(keys, rules.routing, state, active, excluded)
        if new_owner is None:
            problem = (f"no available rep left in {', '.join(keys) or 'any group'}: every one already owned "
                       f"this person ({', '.join(sorted(excluded))})")
        else:
            changed = {k: v.model_dump() for k, v in new_state.groups.items() if state.groups.get(k) != v}
            repos.round_robin.save(changed, now=now)
    if record is None or new_owner is None or key is None:
        _record_audit(batch, clock, _step(clock, action, None, action.reason, delivered=False, problem=problem),
                      now, rules, excluded=sorted(excluded))
        return False
    owner_crm_id = conn.owner_ids_by_email[new_owner]
    sla = sla_for(clock.tier, now, rules.sla, rules.routing.escalation_chain(new_owner))
    reason = f"Re-queued to {new_owner} (round robin {key}): {action.reason}"[:REASON_MAX]
    desired: dict[str, Any] = {"owner_id": owner_crm_id, "relay_routing_reason": reason}
    if sla is not None:
        desired["relay_sla_due"] = sla.due_at
    update_key = _owner_write(conn, record, desired, batch)
    assignment_key = now.strftime("%Y%m%dT%H%M%S.%fZ")
    task_key = None
    if sla is not None and conn.resolved.tasks is not None:
        task = TaskDecision(
            subject=f"Follow up (re-queued): {record.label}, SLA tier {clock.tier}"[:255],
            description=f"{reason}.\nSLA tier {sla.tier}: respond by {sla.due_at.isoformat()} "
                        f"({sla.response_minutes} min); escalates to {', '.join(sla.escalation_chain) or 'nobody'} "
                        f"at {sla.escalate_at.isoformat()}.",
            due_at=sla.due_at, owner_email=new_owner, priority=sla.task_priority)
        message = task_message(conn.resolved.tasks, record.person, task, owner_crm_id, assignment_key,
                               after=update_key)
        batch.outbox.append(OutboxMessageIn(conn.name, message.object, message.operation, message.payload.to_json(),
                                            message.idempotency_key, crm_id=message.crm_id))
        task_key = message.idempotency_key
    batch.assignments.append(AssignmentIn(
        conn.name, clock.object, clock.crm_id, owner_email=new_owner, owner_crm_id=owner_crm_id, tier=clock.tier,
        rule="aging_requeue", reason=reason, score=record.person.relay_score, rules_version=rules.version,
        relay_id=clock.relay_id, sla_due=sla.due_at if sla else None, assigned_at=now))
    new_state_clock = ClockState(tier=clock.tier, owner_email=new_owner, started_at=now)
    batch.opens.append(ClockIn(
        conn.name, clock.object, clock.crm_id, new_owner, clock.tier, now, source="requeue",
        next_due_at=next_due_at(new_state_clock, rules.sla, rules.routing), owner_crm_id=owner_crm_id,
        relay_id=clock.relay_id, group_key=key, region=clock.region))
    step = _step(clock, action, new_owner, reason, task_key=task_key)
    _record_audit(batch, clock, step, now, rules, new_owner_email=new_owner, new_owner_crm_id=owner_crm_id,
                  group=key, excluded=sorted(excluded))
    batch.audit.append(AuditEntryIn(
        conn.name, "assigned", object_name=clock.object, crm_id=clock.crm_id, relay_id=clock.relay_id,
        rules_version=rules.version, at=now,
        detail={"owner_email": new_owner, "owner_crm_id": owner_crm_id, "tier": clock.tier, "rule": "aging_requeue",
                "reason": reason, "group": key, "previous_owner": clock.owner_email,
                "sla": sla.model_dump(mode="json") if sla else None}))
    return True


def _nurture(rules: Rules, repos: Repositories, conn: _Connection, clock: Clock, action: ClockAction,
             now: datetime, batch: _Batch) -> None:
    """Aging Contacted: back to nurture (the nurture owner, or no owner)."""
    record, problem = _record(repos, conn, clock)
    if record is None:
        _record_audit(batch, clock, _step(clock, action, None, action.reason, delivered=False, problem=problem),
                      now, rules)
        return
    nurture = rules.sla.aging.nurture_owner
    nurture_id = conn.owner_ids_by_email.get(nurture) if nurture else None
    reason = f"Returned to nurture from {clock.owner_email}: {action.reason.removesuffix(': back to nurture')}"[
        :REASON_MAX]
    desired: dict[str, Any] = {"owner_id": nurture_id, "relay_routing_reason": reason}
    if nurture is not None and nurture_id is not None:
        batch.assignments.append(AssignmentIn(
            conn.name, clock.object, clock.crm_id, owner_email=nurture, owner_crm_id=nurture_id, tier="Nurture",
            rule="aging_nurture", reason=reason, score=record.person.relay_score, rules_version=rules.version,
            relay_id=clock.relay_id, assigned_at=now))
    else:
        repos.clocks.release_assignment(conn.name, clock.object, clock.crm_id)
        if nurture is not None:
            problem = f"nurture owner {nurture} has no active user in {conn.name}: the owner is cleared"
    update_key = _owner_write(conn, record, desired, batch)
    step = _step(clock, action, nurture if nurture_id else None, reason, problem=problem)
    _record_audit(batch, clock, step, now, rules, new_owner_email=nurture if nurture_id else None,
                  new_owner_crm_id=nurture_id, update_key=update_key)


# --------------------------------------------------------------------------- listing


def list_clocks(engine: Engine, *, connection: str | None = None, due: bool = False, now: datetime | None = None,
                limit: int = 100) -> list[Clock]:
    """Open clocks, next due first (``due``: only those due at ``now``), for ``relay clocks list``."""
    with session_factory(engine).begin() as session:
        return Repositories(session).clocks.listing(connection=connection,
                                                    due_before=(now or utc_now()) if due else None, limit=limit)


__all__ = ["FireSummary", "FiredStep", "Observed", "fire_due_clocks", "list_clocks", "track_clocks"]
