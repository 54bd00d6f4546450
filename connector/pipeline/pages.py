"""What one page of a sync does: store snapshots and identities, decide, and plan the writes.

Everything here runs inside the page's transaction (see ``connector.pipeline.sync``).
Each step returns a :class:`~connector.pipeline.context.PagePlan`: the assignments,
outbox messages and audit entries it planned (written by the caller in the same
transaction, with set-based statements) and what it adds to the run's counts (added
once the page committed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connector.config.mappings import ObjectMapping
from connector.core.accounts import match_summary
from connector.core.decide import decide_people
from connector.core.identity import AccountIndex, person_key, site_host
from connector.core.models import (
    Account,
    ExistingAssignment,
    LeadDecision,
    Person,
    RecordRef,
    RoutingDecision,
    RoutingState,
)
from connector.mapping.engine import MappingError, written_fields
from connector.pipeline.alerts import assignment_alerts
from connector.pipeline.clocks import Observed, track_clocks
from connector.pipeline.context import EXAMPLES, PagePlan, RunContext
from connector.pipeline.dispositions import page_dispositions
from connector.pipeline.enrichment import audit_detail
from connector.pipeline.quality import measure_page
from connector.pipeline.records import MappedRecord, account_from_snapshot, person_from_snapshot
from connector.pipeline.summary import DecisionExample
from connector.pipeline.writeback import (
    DECISION_FIELDS,
    PlannedMessage,
    desired_values,
    record_update,
    task_message,
)
from connector.store.repositories import (
    Assignment,
    AssignmentIn,
    CrmRef,
    OutboxMessageIn,
    QuarantineIn,
    Repositories,
    SnapshotIn,
)


def apply_deletions(
    ctx: RunContext,
    plan: PagePlan,
    mapping: ObjectMapping,
    deleted_ids: Sequence[str],
    merged: Sequence[tuple[str, str]],
    repos: Repositories,
) -> None:
    """Mark records the CRM deleted or merged away, and plan their audit entries."""
    now = ctx.now()
    if mapping.entity == "account" and (deleted_ids or merged):
        ctx.accounts = None  # indexed again, without them, before the next people page
    for crm_id in repos.records.mark_deleted_many(ctx.connection, mapping.name, deleted_ids, seen_at=now):
        plan.deleted += 1
        plan.audit("deleted", object_name=mapping.name, crm_id=crm_id, detail={}, at=now)
    repos.records.mark_merged_many(ctx.connection, mapping.name, merged, seen_at=now)
    for loser, winner in merged:
        plan.merged += 1
        plan.audit("merged", object_name=mapping.name, crm_id=loser, detail={"merged_into": winner}, at=now)


def quarantine(ctx: RunContext, plan: PagePlan, mapping: ObjectMapping, record: MappedRecord, reason: str,
               repos: Repositories) -> None:
    """Set a record aside with its reason (the rest of the page goes on)."""
    plan.quarantined += 1
    plan.quarantine.append(QuarantineIn(ctx.connection, mapping.name, reason, record.canonical,
                                        crm_id=record.meta.record_id, run_id=plan.run_id, at=ctx.now()))
    plan.audit("quarantined", object_name=mapping.name, crm_id=record.meta.record_id,
               detail={"reason": reason}, at=ctx.now())


def accounts_page(ctx: RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories) -> PagePlan:
    """Store a page of accounts: identities by domain and snapshots (accounts are matched, not routed)."""
    plan = ctx.new_page()
    live: list[tuple[Account, MappedRecord]] = []
    deleted: list[str] = []
    for record in records:
        if record.model is None:
            quarantine(ctx, plan, mapping, record, record.error or "unreadable record", repos)
            continue
        assert isinstance(record.model, Account) and record.meta.record_id is not None
        if record.meta.deleted:
            deleted.append(record.meta.record_id)
            continue
        live.append((record.model, record))
    if deleted:
        repos.records.mark_deleted_many(ctx.connection, mapping.name, deleted, seen_at=ctx.now())
    if not live:
        return plan
    now = ctx.now()
    refs = {
        account.ref: CrmRef(ctx.connection, mapping.name, account.ref.crm_id) for account, _ in live
    }
    keys = [
        ((account.domain or site_host(account.website) or "").lower() or None, refs[account.ref],
         account.relay_id)  # the id the CRM holds is adopted by a new identity (a new or rebuilt store)
        for account, _ in live
    ]
    relay_ids = repos.identities.resolve_many("account", keys, now=now)
    changed = repos.records.upsert_snapshots(
        ctx.connection, mapping.name,
        [SnapshotIn(a.ref.crm_id, "account", r.canonical, relay_ids[refs[a.ref]]) for a, r in live],
        seen_at=now,
    )
    plan.changed += len(changed)
    ctx.accounts = None  # re-read before the next people page
    return plan


def _accounts(ctx: RunContext, repos: Repositories) -> AccountIndex:
    """The connection's live accounts, indexed once per run after the account objects synced.

    The core matches every page's people against this one index (it remembers its answers
    while the accounts and owners stay the same) instead of indexing the accounts per page.
    """
    if ctx.accounts is None:
        index = AccountIndex()
        for snap in repos.records.live_of_kind(ctx.connection, "account"):
            account = account_from_snapshot(snap.connection, snap.object, snap.crm_id, snap.canonical)
            if account is not None:
                index.add(account)
        ctx.accounts = index
    return ctx.accounts


def _existing_assignments(
    ctx: RunContext, people: Sequence[Person], relay_ids: Mapping[RecordRef, str], repos: Repositories
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


def _owner_can_own_here(ctx: RunContext, assignment: Assignment) -> bool:
    """Whether the assignment's owner is an active user of this connection's CRM."""
    return assignment.owner_email.strip().lower() in ctx.owner_ids_by_email


def people_page(ctx: RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories, *,
                decide_unchanged: bool | None = None) -> PagePlan:
    """Store a page of people, decide them with their other known records, and plan the writes.

    In an incremental sync a record that reads back as Relay left it (its snapshot is unchanged:
    typically the echo of Relay's own write, which only moved its last-modified time) is not
    decided again: nothing about it changed since its last decision. A full sync, and the owner
    sweep (``decide_unchanged=True``), decide every record.
    """
    plan = ctx.new_page()
    people: list[Person] = []
    by_ref: dict[RecordRef, MappedRecord] = {}
    deleted: list[str] = []
    for record in records:
        if record.model is None:
            quarantine(ctx, plan, mapping, record, record.error or "unreadable record", repos)
            continue
        assert isinstance(record.model, Person)
        person = record.model
        if record.meta.deleted:
            deleted.append(person.ref.crm_id)
            continue
        people.append(person)
        by_ref[person.ref] = record
    if deleted:
        repos.records.mark_deleted_many(ctx.connection, mapping.name, deleted, seen_at=ctx.now())
    if not people:
        return plan
    crm_refs = {p.ref: CrmRef(ctx.connection, mapping.name, p.ref.crm_id) for p in people}
    resolved = repos.identities.resolve_many(  # a new identity adopts the relay id the CRM holds
        "person", [(person_key(p.email), crm_refs[p.ref], p.relay_id) for p in people], now=ctx.now()
    )
    relay_ids = {ref: resolved[crm_ref] for ref, crm_ref in crm_refs.items()}
    changed = repos.records.upsert_snapshots(
        ctx.connection, mapping.name,
        [SnapshotIn(p.ref.crm_id, "person", by_ref[p.ref].canonical, relay_ids[p.ref]) for p in people],
        seen_at=ctx.now(),
    )
    plan.changed += len(changed)
    if not (ctx.full if decide_unchanged is None else decide_unchanged):
        people = [p for p in people if p.ref.crm_id in changed]
        if not people:
            return plan
        relay_ids = {p.ref: relay_ids[p.ref] for p in people}  # unchanged ones join as their person's siblings
    mappings = {ref: mapping for ref in by_ref}
    everyone = list(people)
    for sibling, sibling_mapping, relay_id in _siblings(ctx, people, relay_ids, repos):
        assert isinstance(sibling.model, Person)
        everyone.append(sibling.model)
        by_ref[sibling.model.ref] = sibling
        relay_ids[sibling.model.ref] = relay_id
        mappings[sibling.model.ref] = sibling_mapping
    existing, own, stale = _existing_assignments(ctx, everyone, relay_ids, repos)
    # Dispositions: first seen ones recorded (once); suppressed, recycled and held people told to the core.
    disposed = page_dispositions(ctx, plan, everyone, relay_ids, mappings, existing, repos)
    disposed.adjust(relay_ids, existing, own, stale)
    state = RoutingState.model_validate({"groups": repos.round_robin.load(for_update=True)})
    now = ctx.now()
    decisions, new_state = decide_people(
        everyone, _accounts(ctx, repos), ctx.owners, ctx.config.rules, state, now, existing, relay_ids,
        disposed.disposed,
    )
    changed_groups = {k: v.model_dump() for k, v in new_state.groups.items() if state.groups.get(k) != v}
    if changed_groups:
        repos.round_robin.save(changed_groups, now=now)
    persons = {p.ref: p for p in everyone}
    for decision in decisions:
        ref = decision.ref
        _apply_decision(ctx, plan, Decided(mappings[ref], persons[ref], by_ref[ref], decision, relay_ids[ref],
                                           has_own_assignment=ref in own, supersede=ref in stale), repos)
    disposed.after(ctx, plan, decisions, relay_ids, repos)  # recycled people: their ledger rows closed
    # SLA clocks: every owned lead's clock opened, moved on (first touch) or closed, in this transaction.
    # A status Relay writes now (a disposition's) is the status the clock sees.
    track_clocks(ctx, plan, [Observed(mappings[d.ref], _as_written(persons[d.ref], d), d, relay_ids[d.ref])
                             for d in decisions], repos)
    # Data quality of the page's own records (their siblings count with the pages that read them).
    own = {p.ref for p in people}
    plan.quality = measure_page(ctx.config.rules.quality, mapping, [d for d in decisions if d.ref in own], persons,
                                enriched={ref for ref, e in ctx.enrichments.items() if e.enriched}
                                if ctx.enricher is not None else None)
    return plan


def _as_written(person: Person, decision: LeadDecision) -> Person:
    """The person with the lead status the decision writes (a disposition's), as the CRM will hold it."""
    status = decision.field_updates.get("status")
    return person.model_copy(update={"status": status}) if status is not None and status != person.status else person


def _siblings(
    ctx: RunContext, people: Sequence[Person], relay_ids: Mapping[RecordRef, str], repos: Repositories
) -> list[tuple[MappedRecord, ObjectMapping, str]]:
    """The other known records of this page's people in this CRM, rebuilt from their snapshots.

    A person is decided with all their records, not only those that share a page: which
    of their records speaks for them (the best score), the shared owner and the reason
    must not depend on where a page happened to end (after a resumed run, pages end
    elsewhere). Siblings whose decision changes are written like any other record; those
    whose decision stays the same write nothing (their snapshots hold what Relay wrote).
    """
    in_page = {(p.ref.object, p.ref.crm_id) for p in people}
    snapshots = [s for s in repos.records.live_people_of(ctx.connection, set(relay_ids.values()), excluding=in_page)
                 if s.relay_id is not None]
    if not snapshots:
        return []
    waiting = repos.outbox.waiting_updates(ctx.connection, [(s.object, s.crm_id) for s in snapshots])
    found: list[tuple[MappedRecord, ObjectMapping, str]] = []
    for snapshot in snapshots:
        sibling_mapping = ctx.resolved.mapping(snapshot.object)
        if sibling_mapping is None or sibling_mapping.entity != "person" or snapshot.relay_id is None:
            continue
        canonical = dict(snapshot.canonical)
        for payload in waiting.get((snapshot.object, snapshot.crm_id), []):  # what Relay is about to write
            canonical.update({str(pair[0]): pair[1] for pair in dict(payload.get("canonical") or {}).values()
                              if isinstance(pair, list) and len(pair) == 2})
        record = person_from_snapshot(ctx.connection, sibling_mapping, snapshot.crm_id, canonical,
                                      snapshot.last_seen)
        if isinstance(record.model, Person):
            found.append((record, sibling_mapping, snapshot.relay_id))
    return found


@dataclass(frozen=True)
class Decided:
    """One decided record with what applying its decision needs.

    Attributes:
        mapping: Its object's mapping.
        person: The record as the core saw it.
        record: The record as read (canonical values, unreadable fields).
        decision: The core's decision.
        relay_id: Its person's Relay id.
        has_own_assignment: The record has an active assignment of its own (none is recorded again).
        supersede: Its own assignment's owner cannot own records here any more: the new one replaces it.
    """

    mapping: ObjectMapping
    person: Person
    record: MappedRecord
    decision: LeadDecision
    relay_id: str
    has_own_assignment: bool = False
    supersede: bool = False

    @property
    def crm_id(self) -> str:
        return self.person.ref.crm_id


@dataclass(frozen=True)
class Assigned:
    """The owner a decision gives a record in this CRM, and when the assignment was made."""

    owner_crm_id: str
    assignment_key: str | None
    """Set when this run records the assignment (a new task may then be created for it)."""


def _apply_decision(ctx: RunContext, plan: PagePlan, item: Decided, repos: Repositories) -> None:
    """Note the findings, record the assignment, plan the writes and their audit entries."""
    if item.decision.quarantined:
        quarantine(ctx, plan, item.mapping, item.record, item.decision.quarantine_reason or "could not decide", repos)
        return
    _note_findings(plan, item)
    enrichment = ctx.enrichments.get(item.person.ref)
    if enrichment is not None and (enrichment.values or enrichment.skipped):
        plan.audit("enriched" if enrichment.enriched else "not_enriched", object_name=item.mapping.name,
                   crm_id=item.person.ref.crm_id, relay_id=item.relay_id, detail=audit_detail(enrichment))
    assigned = _assign(ctx, plan, item, repos)
    if item.person.is_converted:
        return  # a converted lead is read-only in the CRM (Salesforce refuses updates): write nothing
    try:
        planned = _planned_writes(ctx, item, assigned)
    except MappingError as exc:
        quarantine(ctx, plan, item.mapping, item.record, f"cannot write back: {exc}", repos)
        return
    _enqueue(ctx, plan, item, planned)
    if assigned is not None and assigned.assignment_key is not None:  # the tier's alerts, queued with the page
        plan.notifications.extend(assignment_alerts(ctx.config, item.person, item.decision, item.relay_id))
    if assigned is not None and assigned.assignment_key is not None and len(plan.examples) < EXAMPLES:
        plan.examples.append(_example(item.person, item.decision))


def _note_findings(plan: PagePlan, item: Decided) -> None:
    """Count the decision's data-quality findings and audit each field that could not be read."""
    for finding in item.decision.findings:
        plan.findings[finding.code] += 1
    for problem in item.record.problems:
        plan.findings["unreadable_value"] += 1
        plan.audit("data_quality", object_name=item.mapping.name, crm_id=item.crm_id, relay_id=item.relay_id,
                   detail={"field": problem.field, "value": repr(problem.value), "message": problem.message},
                   at=item.decision.decided_at)


def _assign(ctx: RunContext, plan: PagePlan, item: Decided, repos: Repositories) -> Assigned | None:
    """The owner Relay gives the record here (None: the CRM's own owner stays, or nobody can own it).

    A routed owner without an active user in this CRM is audited as ``unassigned``; a new
    assignment is recorded (and audited) unless the record has its own already.
    """
    decision, routing = item.decision, item.decision.routing
    if routing is None or not routing.owner_email or _owner_from_crm(routing):
        return None
    version = decision.rules_version
    owner_crm_id = ctx.owner_ids_by_email.get(routing.owner_email.lower())
    if owner_crm_id is None:
        plan.findings["owner_not_in_crm"] += 1
        plan.audit("unassigned", object_name=item.mapping.name, crm_id=item.crm_id, relay_id=item.relay_id,
                   rules_version=version,
                   detail={"reason": f"{routing.owner_email} has no active user in {ctx.connection}",
                           "routing": routing.model_dump(mode="json")},
                   at=decision.decided_at)
        return None
    if item.has_own_assignment:
        return Assigned(owner_crm_id, None)
    assignment = AssignmentIn(
        ctx.connection, item.mapping.name, item.crm_id,
        owner_email=routing.owner_email, owner_crm_id=owner_crm_id, tier=routing.tier,
        rule=routing.rule, reason=routing.reason,
        score=decision.score.total if decision.score else None, rules_version=version,
        relay_id=item.relay_id, sla_due=decision.sla.due_at if decision.sla else None,
        assigned_at=decision.decided_at,
    )
    if item.supersede:  # rare: the old owner cannot own records here any more
        plan.reassignments.append(assignment)
    else:
        plan.assignments.append(assignment)
    if routing.kept_existing:
        plan.propagated += 1
    else:
        plan.routed[routing.owner_email] += 1
    plan.audit(
        "assigned", object_name=item.mapping.name, crm_id=item.crm_id, relay_id=item.relay_id,
        rules_version=version,
        detail={
            "owner_email": routing.owner_email, "owner_crm_id": owner_crm_id, "tier": routing.tier,
            "rule": routing.rule, "reason": routing.reason, "region": routing.region,
            "group": routing.group, "kept_existing": routing.kept_existing,
            "score": decision.score.model_dump(mode="json") if decision.score else None,
            "sla": decision.sla.model_dump(mode="json") if decision.sla else None,
            "matched_account": str(decision.matched_account) if decision.matched_account else None,
            "account_match": match_summary(decision.account_match) if decision.account_match else None,
            "duplicates": [str(r) for r in decision.duplicates],
            # seed 001 item 47.3: the consent status goes into the audit trail with the assignment
            "consent": decision.consent.as_json() if decision.consent is not None else None,
        },
        at=decision.decided_at,
    )
    return Assigned(owner_crm_id, decision.decided_at.strftime("%Y%m%dT%H%M%S.%fZ"))


def _owner_from_crm(routing: RoutingDecision) -> bool:
    """The decision keeps the owner the CRM gave the record: Relay writes no owner and records no assignment."""
    return routing.source == "crm_owner"


def _planned_writes(ctx: RunContext, item: Decided, assigned: Assigned | None) -> list[PlannedMessage]:
    """The record update (when anything differs) and, for a new assignment, the owner's follow-up task.

    Raises:
        MappingError: a value cannot be written through the mapping, or there is no task object.
    """
    person, decision = item.person, item.decision
    owner_crm_id = assigned.owner_crm_id if assigned is not None else None
    desired = desired_values(decision, item.relay_id, owner_crm_id)
    enrichment = ctx.enrichments.get(person.ref)
    enriched = {k: v for k, v in enrichment.field_updates().items()
                if k in written_fields(item.mapping)} if enrichment is not None else {}
    current = dict(item.record.canonical)
    # the record as the CRM holds it: an enriched value is on the person, not yet in the CRM
    current.update(person.model_dump(include=(set(desired) | set(DECISION_FIELDS)) - set(enriched)))
    desired.update(enriched)
    planned: list[PlannedMessage] = []
    update = record_update(item.mapping, person, current, desired, item.record.meta.modified_at)
    if update is not None:
        planned.append(update)
    if decision.task is not None and assigned is not None and assigned.assignment_key is not None:
        # The task waits for the update that writes its owner (the writer holds it until then).
        planned.append(task_message(ctx.resolved.tasks, person, decision.task, assigned.owner_crm_id,
                                    assigned.assignment_key,
                                    after=update.idempotency_key if update is not None else None))
    return planned


def _enqueue(ctx: RunContext, plan: PagePlan, item: Decided, planned: Sequence[PlannedMessage]) -> None:
    """Plan the outbox messages and the audit entries of a new score and of each field update."""
    person, decision = item.person, item.decision
    version = decision.rules_version
    if decision.score is not None and (person.relay_score != decision.score.total
                                       or person.relay_score_category != decision.score.category):
        plan.audit("scored", object_name=item.mapping.name, crm_id=item.crm_id, relay_id=item.relay_id,
                   rules_version=version, detail=decision.score.model_dump(mode="json"), at=decision.decided_at)
    for message in planned:
        plan.outbox.append(OutboxMessageIn(ctx.connection, message.object, message.operation,
                                           message.payload.to_json(), message.idempotency_key,
                                           crm_id=message.crm_id))
        if message.payload.purpose == "update":
            plan.audit("field_update", object_name=item.mapping.name, crm_id=item.crm_id, relay_id=item.relay_id,
                       rules_version=version, detail={"fields": message.payload.fields}, at=decision.decided_at)


def _example(person: Person, decision: LeadDecision) -> DecisionExample:
    name = " ".join(x for x in (person.first_name, person.last_name) if x) or person.email or person.ref.crm_id
    return DecisionExample(
        object=person.ref.object, crm_id=person.ref.crm_id, name=name, company=person.company,
        score=decision.score.total if decision.score else None,
        category=decision.score.category if decision.score else None,
        owner_email=decision.routing.owner_email if decision.routing else None,
        reason=decision.routing.reason if decision.routing else None,
        sla_due=decision.sla.due_at.isoformat() if decision.sla else None,
        tier=decision.routing.tier if decision.routing else None,
    )

