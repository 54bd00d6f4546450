"""What one page of a sync does: store snapshots and identities, decide, and buffer the writes.

Everything here runs inside the page's transaction (see ``connector.pipeline.sync``);
the buffered assignments, outbox messages and audit entries are written by
``RunContext.flush_page`` in the same transaction, with set-based statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

from connector.config.mappings import ObjectMapping
from connector.core.decide import decide_people
from connector.core.identity import person_key, registered_domain
from connector.core.models import (
    Account,
    ExistingAssignment,
    LeadDecision,
    Person,
    RecordRef,
    RoutingState,
)
from connector.mapping.engine import MappingError
from connector.pipeline.context import RunContext
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
    Repositories,
    SnapshotIn,
)

EXAMPLES = 8
"""How many decisions a summary keeps as examples."""


def apply_deletions(
    ctx: RunContext,
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


def quarantine(ctx: RunContext, mapping: ObjectMapping, record: MappedRecord, reason: str, repos: Repositories) -> None:
    ctx.summary.quarantined += 1
    repos.quarantine.add(ctx.connection, mapping.name, reason, record.canonical, crm_id=record.meta.record_id,
                         at=ctx.now())
    ctx.audit("quarantined", object_name=mapping.name, crm_id=record.meta.record_id,
              detail={"reason": reason}, at=ctx.now())


def accounts_page(ctx: RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories) -> None:
    live: list[tuple[Account, MappedRecord]] = []
    for record in records:
        if record.model is None:
            quarantine(ctx, mapping, record, record.error or "unreadable record", repos)
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
        ((account.domain or registered_domain(account.website) or "").lower() or None, refs[account.ref],
         account.relay_id)  # the id the CRM holds is adopted by a new identity (a new or rebuilt store)
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


def _accounts(ctx: RunContext, repos: Repositories) -> list[Account]:
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


def people_page(ctx: RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories) -> None:
    people: list[Person] = []
    by_ref: dict[RecordRef, MappedRecord] = {}
    for record in records:
        if record.model is None:
            quarantine(ctx, mapping, record, record.error or "unreadable record", repos)
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
    resolved = repos.identities.resolve_many(  # a new identity adopts the relay id the CRM holds
        "person", [(person_key(p.email), crm_refs[p.ref], p.relay_id) for p in people], now=ctx.now()
    )
    relay_ids = {ref: resolved[crm_ref] for ref, crm_ref in crm_refs.items()}
    changed = repos.records.upsert_snapshots(
        ctx.connection, mapping.name,
        [SnapshotIn(p.ref.crm_id, "person", by_ref[p.ref].canonical, relay_ids[p.ref]) for p in people],
        seen_at=ctx.now(),
    )
    ctx.summary.changed += len(changed)
    mappings = {ref: mapping for ref in by_ref}
    everyone = list(people)
    for sibling, sibling_mapping, relay_id in _siblings(ctx, people, relay_ids, repos):
        assert isinstance(sibling.model, Person)
        everyone.append(sibling.model)
        by_ref[sibling.model.ref] = sibling
        relay_ids[sibling.model.ref] = relay_id
        mappings[sibling.model.ref] = sibling_mapping
    existing, own, stale = _existing_assignments(ctx, everyone, relay_ids, repos)
    state = RoutingState.model_validate({"groups": repos.round_robin.load(for_update=True)})
    now = ctx.now()
    decisions, new_state = decide_people(
        everyone, _accounts(ctx, repos), ctx.owners, ctx.config.rules, state, now, existing
    )
    changed_groups = {k: v.model_dump() for k, v in new_state.groups.items() if state.groups.get(k) != v}
    if changed_groups:
        repos.round_robin.save(changed_groups, now=now)
    persons = {p.ref: p for p in everyone}
    for decision in decisions:
        _apply_decision(ctx, mappings[decision.ref], persons[decision.ref], by_ref[decision.ref], decision,
                        relay_ids[decision.ref], decision.ref in own, decision.ref in stale, repos)


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
    objects = ctx.config.mapping_for(ctx.connection).objects
    snapshots = [s for s in repos.records.live_people_of(ctx.connection, set(relay_ids.values()))
                 if (s.object, s.crm_id) not in in_page and s.relay_id is not None]
    if not snapshots:
        return []
    waiting = repos.outbox.waiting_updates(ctx.connection, [(s.object, s.crm_id) for s in snapshots])
    found: list[tuple[MappedRecord, ObjectMapping, str]] = []
    for snapshot in snapshots:
        sibling_mapping = objects.get(snapshot.object)
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


def _apply_decision(
    ctx: RunContext,
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
        quarantine(ctx, mapping, record, decision.quarantine_reason or "could not decide", repos)
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
    current.update(person.model_dump(include=set(desired) | set(DECISION_FIELDS)))
    planned: list[PlannedMessage] = []
    try:
        update = record_update(mapping, person, current, desired, record.meta.modified_at)
        if update is not None:
            planned.append(update)
        if decision.task is not None and owner_crm_id is not None and assignment_key is not None:
            # The task waits for the update that writes its owner (the writer holds it until then).
            planned.append(task_message(ctx.config.mapping_for(ctx.connection), person, decision.task,
                                        owner_crm_id, assignment_key,
                                        after=update.idempotency_key if update is not None else None))
    except MappingError as exc:
        quarantine(ctx, mapping, record, f"cannot write back: {exc}", repos)
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

