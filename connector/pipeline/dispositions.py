"""Dispositions in the people path: acted on once, recycled on their date, suppressed everywhere, converted.

A rep sets a disposition on a lead or contact (dispositions.yaml: ``Qualified`` -> create the
opportunity, ``Not Ready`` -> marketing nurture, ``Bad Fit`` -> disqualify, ``No Response`` ->
recycle after 90 days, ``Do Not Contact`` -> suppress). Two halves:

* in each people page's transaction (:func:`page_dispositions`, called by ``pages.people_page``):
  each disposition value first seen on a record (with its date: the same value set again with a
  new date is a new disposition) is recorded in the ledger (``repos.dispositions``) and audited,
  once; the core is told, per record (:class:`~connector.core.decide.Disposed`), whether its
  person is suppressed (never routed, no SLA, no task, no nurture track, across every record of
  the person), recycled (its date has come: routed afresh, never to the owner who returned it) or
  held (keeps the owner it has, no new one); the disposition's lead status is written with the
  decision when it is first acted on; a recycled person's new assignment closes its ledger row
  (audited ``recycled``);
* after the people pages of a sync (:func:`run_disposition_pass`): the people whose recycle date
  has come are decided again from their snapshots (as the owner propagation does: no read),
  open SLA clocks of suppressed people are closed (their reminders are outreach), leads first
  touched ``due_hours`` ago without a disposition get a finding and one task for their owner, and
  ``Qualified`` leads are converted (``CrmAdapter.convert_lead``) once their SDR -> AE checklist is
  complete, owned by their AE (``sdr_handoff``). A conversion is in the ledger
  (``pending``) before the CRM is asked and closed with its answer; a run killed in between asks
  again (a lead converted already answers ``already_converted``).

Enrichment skips suppressed people (:func:`suppressed_people`, asked by ``enrichment.PageEnricher``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.errors import CrmError, FatalError, RecordError
from connector.config.mappings import ObjectMapping
from connector.core.decide import Disposed
from connector.core.governance.dispositions import disposition_decision, disposition_overdue
from connector.core.governance.rules import DispositionRules
from connector.core.identity import person_key
from connector.core.models import ExistingAssignment, LeadDecision, Person, RecordRef, TaskDecision
from connector.mapping.engine import MappingError, as_read_back, written_fields
from connector.pipeline.context import PagePlan, RunContext
from connector.pipeline.records import MappedRecord, person_from_snapshot
from connector.pipeline.sdr_handoff import hand_over, handed_over
from connector.pipeline.writeback import task_message
from connector.store.db import serialize_decisions
from connector.store.models import DispositionStatus
from connector.store.repositories import OutboxMessageIn, Repositories
from connector.store.repositories.dispositions import (
    Disposition,
    DispositionFindingIn,
    DispositionIn,
    Dispositions,
)

log = logging.getLogger(__name__)

OVERDUE_LOOKBACK = timedelta(days=7)
"""First touches older than this are not chased for a missing disposition: turning the check on must not
task every lead ever touched (each sync looks, so a due one is found within minutes, not days)."""
HELD_ACTIONS = frozenset({"create_opportunity", "return_to_nurture", "disqualify"})
"""Actions after which a person keeps the owner it has and gets no new one."""


# --------------------------------------------------------------------------- the page side


def disposition_of(person: Person, rules: DispositionRules) -> str:
    """The disposition a record shows (dispositions.yaml ``field``, ``disposition`` as shipped), stripped; empty for none."""
    value = getattr(person, rules.field, None)
    return value.strip() if isinstance(value, str) else ""


def stamp_of(at: datetime | None) -> str:
    """How the ledger keys a disposition's date: ISO-8601 in UTC, empty when the record gives none."""
    return at.astimezone(UTC).isoformat() if at is not None else ""


@dataclass
class PageDispositions:
    """What the ledger says of a page's people, for their decisions.

    Attributes:
        disposed: Per record: suppressed, recycled or held (records with nothing to say are absent).
        recycling: The ledger rows of the records recycled by this page's decisions.
    """

    disposed: dict[RecordRef, Disposed] = field(default_factory=dict)
    recycling: dict[RecordRef, Disposition] = field(default_factory=dict)

    def adjust(self, relay_ids: Mapping[RecordRef, str], existing: dict[RecordRef, ExistingAssignment],
               own: set[RecordRef], stale: set[RecordRef]) -> None:
        """A recycled person's assignments give way: routed afresh, the new assignment supersedes the old."""
        people = {relay_ids[ref] for ref, d in self.disposed.items() if d.state == "recycled" and ref in relay_ids}
        if not people:
            return
        for ref, relay_id in relay_ids.items():
            if relay_id in people:
                existing.pop(ref, None)
                if ref in own:
                    own.discard(ref)
                    stale.add(ref)

    def after(self, ctx: RunContext, plan: PagePlan, decisions: Sequence[LeadDecision],
              relay_ids: Mapping[RecordRef, str], repos: Repositories) -> None:
        """Close the rows of the people this page recycled (audited ``recycled``), once they have an owner here."""
        if not self.recycling:
            return
        by_ref = {d.ref: d for d in decisions}
        owners: dict[int, str | None] = {}
        for ref, row in self.recycling.items():
            decision = by_ref.get(ref)
            routing = decision.routing if decision is not None and not decision.quarantined else None
            owner = routing.owner_email.strip().lower() if routing is not None and routing.owner_email else None
            # Routed to nobody by the rules (a score for marketing nurture) is routed; nobody available is not.
            unrouted = routing is None or (owner is None and routing.fallback == "none") \
                or (owner is not None and owner not in ctx.owner_ids_by_email)
            if unrouted:
                plan.findings["recycle_unrouted"] += 1
                plan.audit("recycle_unrouted", object_name=ref.object, crm_id=ref.crm_id, relay_id=relay_ids.get(ref),
                           detail={"disposition": row.value, "recycle_at": _iso(row.recycle_at),
                                   "reason": routing.reason if routing is not None else "not decided",
                                   "problem": "nobody here can own it: it is recycled again at the next sync"},
                           at=ctx.now())
                continue
            owners[row.id] = owner
            plan.audit("recycled", object_name=ref.object, crm_id=ref.crm_id, relay_id=relay_ids.get(ref),
                       rules_version=decision.rules_version if decision is not None else None,
                       detail={"disposition": row.value, "decided_at": row.decided_at.isoformat(),
                               "recycle_at": _iso(row.recycle_at), "returned_by": row.excluded_owner_email,
                               "new_owner_email": owner, "reason": routing.reason if routing else None},
                       at=ctx.now())
        repos.dispositions.mark_recycled(owners, now=ctx.now())


def page_dispositions(ctx: RunContext, plan: PagePlan, people: Sequence[Person], relay_ids: Mapping[RecordRef, str],
                      mappings: Mapping[RecordRef, ObjectMapping], existing: Mapping[RecordRef, ExistingAssignment],
                      repos: Repositories) -> PageDispositions:
    """Record the dispositions first seen on a page's people (audited, once) and say what each means for routing.

    ``people``: the page's records and their person's other records (siblings); ``existing``:
    their active assignments (whose owner returned a recycled person, when the CRM says nobody).
    """
    rules = ctx.config.rules.dispositions
    now = ctx.now()
    ledger = repos.dispositions
    known: dict[RecordRef, list[Disposition]] = {}
    for obj in sorted({p.ref.object for p in people}):
        by_id = ledger.for_records(ctx.connection, obj, [p.ref.crm_id for p in people if p.ref.object == obj])
        for crm_id, found in by_id.items():
            known[RecordRef(connection=ctx.connection, object=obj, crm_id=crm_id)] = found
    owners = {o.id: o.email.strip().lower() for o in ctx.owners if o.email and o.connection in (None, ctx.connection)}
    first_seen: list[DispositionIn] = []
    stale_rows: list[int] = []
    for person in people:
        value = disposition_of(person, rules)
        rows = known.get(person.ref, [])
        current = _current(rows, value, person.disposition_at)
        stale_rows.extend(r.id for r in rows if r.status in (DispositionStatus.WAITING, DispositionStatus.PENDING)
                          and r is not current)  # the rep's latest word stands
        if not value or current is not None:
            continue
        assignment = existing.get(person.ref)
        owner = owners.get(person.owner_id or "") or (assignment.owner_email.lower() if assignment else None)
        first_seen.append(_first_seen(person, value, rules, now, owner, relay_ids.get(person.ref),
                                      mappings[person.ref]))
    if stale_rows:
        ledger.supersede(stale_rows)
    acted: dict[RecordRef, Disposition] = {}
    for row in ledger.record_many(first_seen):
        ref = RecordRef(connection=row.connection, object=row.object, crm_id=row.crm_id)
        known.setdefault(ref, []).append(row)
        acted[ref] = row
        _audit_first_seen(plan, row, rules, mappings[ref])
    suppressions = ledger.suppressions(set(relay_ids.values()))
    page = PageDispositions()
    for person in people:
        ref = person.ref
        current = _current(known.get(ref, []), disposition_of(person, rules), person.disposition_at)
        first = current is not None and acted.get(ref) is current
        status = _status_to_write(person, mappings[ref], _lead_status(current, rules)) \
            if current is not None and first else None
        # A disposition the record gives no date for gets the one Relay keyed it by: every store reads the same.
        dated = current.decided_at if current is not None and first and person.disposition_at is None \
            and current.stamp else None
        suppressing = suppressions.get(relay_ids.get(ref, ""))
        if suppressing is not None:
            page.disposed[ref] = Disposed("suppressed", _note(suppressing), status=status, dated=dated)
            continue
        if current is None or current.status in (DispositionStatus.SUPERSEDED, DispositionStatus.RECYCLED):
            continue
        if current.action == "recycle" and current.status == DispositionStatus.WAITING:
            if current.recycle_at is not None and current.recycle_at <= now:
                excluded = frozenset(e for e in (current.excluded_owner_email, current.owner_email) if e)
                page.disposed[ref] = Disposed("recycled", _note(current), excluded=excluded)
                page.recycling[ref] = current
            else:
                due = current.recycle_at.date().isoformat() if current.recycle_at else "never"
                page.disposed[ref] = Disposed("held", f"{_note(current)}; recycled on {due}", status=status,
                                              dated=dated)
        elif current.action in HELD_ACTIONS:  # a refused conversion too: the rep's Qualified stands
            page.disposed[ref] = Disposed("held", _note(current), status=status, dated=dated,
                                          nurture=current.action == "return_to_nurture")
    return page


def _status_to_write(person: Person, mapping: ObjectMapping, status: str | None) -> str | None:
    """The disposition's lead status, unless the record shows it already as the CRM keeps it (HubSpot's
    ``UNQUALIFIED`` is the SOP's ``Unqualified``) or the mapping writes no status (Salesforce contacts)."""
    if status is None or "status" not in written_fields(mapping):
        return None
    try:
        shown = as_read_back(mapping, {"status": status}).get("status")
    except MappingError:
        return status  # the write names the problem (the record is set aside with it)
    return None if shown == person.status else status


def _current(rows: Sequence[Disposition], value: str, at: datetime | None) -> Disposition | None:
    """The ledger row of the disposition a record shows (the latest of that value and date), if any.

    A record that shows no date matches the row Relay keyed by the date it writes (until that
    write lands), unless that row was recycled: Relay cleared it then, so it is set anew.
    """
    if not value:
        return None
    for row in reversed(rows):
        if row.value != value:
            continue
        if at is not None and row.stamp == stamp_of(at):
            return row
        if at is None and row.status != DispositionStatus.RECYCLED:
            return row
    return None


def _dated(mapping: ObjectMapping, now: datetime) -> datetime | None:
    """``now`` as the mapping writes and reads back the disposition's date (None: it does not write one)."""
    if "disposition_at" not in written_fields(mapping):
        return None
    try:
        value = as_read_back(mapping, {"disposition_at": now}).get("disposition_at")
    except MappingError:
        return None
    return value if isinstance(value, datetime) else None


def _first_seen(person: Person, value: str, rules: DispositionRules, now: datetime,
                owner: str | None, relay_id: str | None, mapping: ObjectMapping) -> DispositionIn:
    """The ledger row of a disposition first seen: what it does, decided by the core.

    Keyed by its date, or, when the record gives none, by the time Relay first saw it (as the CRM
    keeps it: Relay writes it to the record with the decision).
    """
    ref = person.ref
    decided_at = person.disposition_at or _dated(mapping, now) or now
    stamp = stamp_of(person.disposition_at or _dated(mapping, now))
    base: dict[str, Any] = {"connection": ref.connection, "object_name": ref.object, "crm_id": ref.crm_id,
                            "value": value, "stamp": stamp, "seen_at": now, "decided_at": decided_at,
                            "relay_id": relay_id, "owner_email": owner}
    try:
        decision = disposition_decision(ref, value, rules, decided_at, owner)
    except ValueError as exc:
        return DispositionIn(**base, action="unknown", status=DispositionStatus.FAILED,
                             error=f"{exc} (field {_crm_field(mapping, rules.field)})")
    if decision.action == "create_opportunity":
        convertible = person.kind == "lead" and not person.is_converted
        status = DispositionStatus.PENDING if convertible else DispositionStatus.DONE
        error = None if convertible else (f"{ref} is a {person.kind}{' already converted' if person.is_converted else ''}"
                                          ": there is no lead to convert")
        return DispositionIn(**base, action=decision.action, status=status, error=error)
    if decision.action == "recycle":
        return DispositionIn(**base, action=decision.action, status=DispositionStatus.WAITING,
                             recycle_at=decision.recycle_at, excluded_owner_email=decision.excluded_owner)
    return DispositionIn(**base, action=decision.action, status=DispositionStatus.DONE, suppressed=decision.suppress)


def _crm_field(mapping: ObjectMapping, canonical: str) -> str:
    return next((fm.crm for fm in mapping.read_fields() if fm.canonical == canonical), canonical)


def _lead_status(row: Disposition, rules: DispositionRules) -> str | None:
    """The lead status a disposition acted on now writes (none for a recycle already due: the lead comes back)."""
    disposition = rules.dispositions.get(row.value)
    if disposition is None:
        return None
    if row.action == "recycle" and row.recycle_at is not None and row.recycle_at <= row.seen_at:
        return None
    return disposition.status


def _note(row: Disposition) -> str:
    by = f" by {row.owner_email}" if row.owner_email else ""
    return f"{row.value} set {row.decided_at.date().isoformat()}{by}"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _audit_first_seen(plan: PagePlan, row: Disposition, rules: DispositionRules, mapping: ObjectMapping) -> None:
    if row.status == DispositionStatus.FAILED:
        plan.findings["disposition_unknown"] += 1
        plan.audit("disposition_unknown", object_name=row.object, crm_id=row.crm_id, relay_id=row.relay_id,
                   detail={"field": _crm_field(mapping, rules.field), "value": row.value, "message": row.error},
                   at=row.seen_at)
        return
    plan.audit("disposition", object_name=row.object, crm_id=row.crm_id, relay_id=row.relay_id,
               detail={"value": row.value, "action": row.action, "decided_at": row.decided_at.isoformat(),
                       "disposition_at": row.stamp or None, "owner_email": row.owner_email,
                       "lead_status": _lead_status(row, rules), "recycle_at": _iso(row.recycle_at),
                       "never_to": row.excluded_owner_email, "suppressed": row.suppressed,
                       "ledger_status": row.status, "note": row.error},
               at=row.seen_at)


# --------------------------------------------------------------------------- enrichment


def suppressed_people(sessions: sessionmaker[Session], people: Sequence[Person],
                      rules: DispositionRules) -> dict[RecordRef, str]:
    """Which of these people are suppressed, and why: enrichment skips them.

    A person is suppressed by a suppressing disposition on the record itself (known to Relay or
    first read now) or on any record of the same person (its identity, its email's identity, the
    relay id it holds), in any CRM.
    """
    suppress = {name for name, d in rules.dispositions.items() if d.action == "suppress"}
    found: dict[RecordRef, str] = {}
    for person in people:
        if disposition_of(person, rules) in suppress:
            found[person.ref] = f"suppressed: {rules.field} {disposition_of(person, rules)!r} on {person.ref}"
    rest = [p for p in people if p.ref not in found]
    if not rest:
        return found
    with sessions.begin() as session:
        ledger = Dispositions(session)
        for (connection, obj) in sorted({(p.ref.connection, p.ref.object) for p in rest}):
            group = [p for p in rest if (p.ref.connection, p.ref.object) == (connection, obj)]
            hits = ledger.suppressing(connection, obj, [(p.ref.crm_id, person_key(p.email), p.relay_id)
                                                        for p in group])
            for person in group:
                hit = hits.get(person.ref.crm_id)
                if hit is not None:
                    found[person.ref] = f"suppressed: {hit.value} set {hit.decided_at.date().isoformat()} on {hit.label}"
    return found


# --------------------------------------------------------------------------- after the people pages


def run_disposition_pass(ctx: RunContext) -> None:
    """After a sync's people pages: recycles due, suppressed people's clocks, missing dispositions, conversions.

    Call it in ``sync._run_steps`` after the owner propagation (before the final drain). A dry
    run recycles and finds (in its uncommitted session) but converts nothing.
    """
    page_size = ctx.resolved.settings.page_size
    for mapping in ctx.resolved.person_objects:
        ctx.check_not_taken_over()
        recycle_due(ctx, mapping, page_size)
    ctx.check_not_taken_over()
    close_suppressed_clocks(ctx)
    ctx.check_not_taken_over()
    flag_missing_dispositions(ctx)
    if not ctx.dry_run:
        convert_qualified(ctx)
    if ctx.writer is not None:
        ctx.writer.drain(final=True)  # what the pass planned goes now, whole batches or not


def recycle_due(ctx: RunContext, mapping: ObjectMapping, page_size: int) -> int:
    """Decide again, from their snapshots, the people of ``mapping`` whose recycle date has come; returns how many.

    The page path routes them afresh, never to the owner who returned them, and closes their
    ledger rows. A record deleted or merged away meanwhile is not recycled (its row says why).
    """
    from connector.pipeline.pages import people_page  # pages calls this module per page

    with ctx.transaction() as session:
        repos = Repositories(session)
        due = repos.dispositions.due(ctx.connection, mapping.name, ctx.now())
        snapshots = repos.records.get_many(ctx.connection, mapping.name, [d.crm_id for d in due])
        gone: dict[int, str] = {}
        for row in due:
            snapshot = snapshots.get(row.crm_id)
            if snapshot is None or snapshot.deleted or snapshot.merged_into:
                state = "was never read" if snapshot is None else "was deleted" if snapshot.deleted \
                    else f"was merged into {snapshot.merged_into}"
                gone[row.id] = f"{row.label} {state} before its recycle date"
        if gone:
            repos.dispositions.supersede(sorted(gone), errors=gone)
    records: list[MappedRecord] = []
    for crm_id in dict.fromkeys(d.crm_id for d in due if d.id not in gone):
        snapshot = snapshots[crm_id]
        record = person_from_snapshot(ctx.connection, mapping, crm_id, dict(snapshot.canonical), snapshot.last_seen)
        if isinstance(record.model, Person):
            records.append(record)
    ctx.enrichments = {}  # not read in this run: nothing was enriched
    for start in range(0, len(records), page_size):
        with ctx.transaction() as session:
            serialize_decisions(session, ctx.connection)
            repos = Repositories(session)
            plan = people_page(ctx, mapping, records[start:start + page_size], repos, decide_unchanged=True)
            plan.quality = None  # not read in this run: their data quality counted when they were
            plan.write(repos, ctx.now())
            if ctx.summary.run_id is not None:
                repos.sync_runs.heartbeat(ctx.summary.run_id, now=ctx.now())
        plan.add_to(ctx.summary)
        if ctx.writer is not None:
            ctx.writer.drain(final=False)
    return len(records)


def close_suppressed_clocks(ctx: RunContext) -> int:
    """Close the open SLA clocks of suppressed people in this connection (their reminders are outreach)."""
    now = ctx.now()
    with ctx.transaction() as session:
        serialize_decisions(session, ctx.connection)
        repos = Repositories(session)
        closed = repos.dispositions.close_suppressed_clocks(ctx.connection, now=now)
        for clock in closed:
            repos.audit.append(ctx.connection, "sla_clock_closed", object_name=clock.object, crm_id=clock.crm_id,
                               relay_id=clock.relay_id, run_id=ctx.summary.run_id, at=now,
                               detail={"reason": "suppressed", "owner_email": clock.owner_email,
                                       "clock_id": clock.clock_id})
    return len(closed)


def flag_missing_dispositions(ctx: RunContext) -> int:
    """A finding and one task for the owner of each lead first touched ``due_hours`` ago with no disposition.

    Once per first touch (the finding's key); the task goes to the owner whose clock saw the
    touch, through the outbox. Returns how many were found now.
    """
    rules = ctx.config.rules.dispositions
    now = ctx.now()
    plan = ctx.new_page()
    found = 0
    with ctx.transaction() as session:
        serialize_decisions(session, ctx.connection)
        repos = Repositories(session)
        candidates = repos.dispositions.overdue_candidates(
            ctx.connection, now - timedelta(hours=rules.due_hours), first_touch_after=now - OVERDUE_LOOKBACK)
        suppressed = repos.dispositions.suppressions({c.relay_id for c in candidates if c.relay_id})
        for candidate in candidates:
            mapping = ctx.resolved.mapping(candidate.object)
            snapshot = repos.records.get(ctx.connection, candidate.object, candidate.crm_id)
            if mapping is None or snapshot is None or snapshot.deleted or snapshot.merged_into \
                    or (candidate.relay_id or "") in suppressed:
                continue
            record = person_from_snapshot(ctx.connection, mapping, candidate.crm_id, dict(snapshot.canonical),
                                          snapshot.last_seen)
            person = record.model
            if not isinstance(person, Person) or person.is_converted:
                continue
            current = disposition_of(person, rules) or None
            if person.disposition_at is not None and person.disposition_at < candidate.started_at:
                current = None  # set before this owner got the lead: the earlier owner's does not count
            finding = disposition_overdue(person.ref, candidate.first_touch_at, current, rules, now,
                                          candidate.owner_email)
            if finding is None or finding.task is None:
                continue
            owner_id = ctx.owner_ids_by_email.get(candidate.owner_email.strip().lower())
            message: OutboxMessageIn | None = None
            problem: str | None = None
            if owner_id is None:
                problem = f"{candidate.owner_email} has no active user in {ctx.connection}: no task was created"
            else:
                spec = finding.task
                task = TaskDecision(subject=f"{spec.subject}: {_label(person)}"[:255], description=spec.description,
                                    due_at=spec.due_at, owner_email=candidate.owner_email, priority=spec.priority)
                try:
                    planned = task_message(ctx.resolved.tasks, person, task, owner_id,
                                           "dispo-" + candidate.first_touch_at.strftime("%Y%m%dT%H%M%S"))
                    message = OutboxMessageIn(ctx.connection, planned.object, planned.operation,
                                              planned.payload.to_json(), planned.idempotency_key, crm_id=planned.crm_id)
                except MappingError as exc:
                    problem = str(exc)
            added = repos.dispositions.add_finding(DispositionFindingIn(
                ctx.connection, candidate.object, candidate.crm_id, finding.key, candidate.first_touch_at,
                candidate.first_touch_at + timedelta(hours=rules.due_hours), finding.message,
                relay_id=candidate.relay_id, owner_email=candidate.owner_email,
                task_key=message.idempotency_key if message is not None else None), now=now)
            if not added:
                continue
            found += 1
            plan.findings[finding.code] += 1
            if message is not None:
                plan.outbox.append(message)
            plan.audit("disposition_overdue", object_name=candidate.object, crm_id=candidate.crm_id,
                       relay_id=candidate.relay_id, at=now,
                       detail={"message": finding.message, "owner_email": candidate.owner_email,
                               "first_touch_at": candidate.first_touch_at.isoformat(), "clock_id": candidate.clock_id,
                               "task_key": message.idempotency_key if message is not None else None,
                               "problem": problem})
        plan.write(repos, now)
    plan.add_to(ctx.summary)
    return found


def _label(person: Person) -> str:
    name = " ".join(x for x in (person.first_name, person.last_name) if x) or person.email or person.ref.crm_id
    return name + (f" ({person.company})" if person.company else "")


def opportunity_name(person: Person) -> str:
    """What the opportunity a qualified lead becomes is called: its company and name (Salesforce's own default
    is the company)."""
    name = " ".join(x for x in (person.first_name, person.last_name) if x) or person.email or person.ref.crm_id
    return f"{person.company} - {name}" if person.company else name


def convert_qualified(ctx: RunContext) -> int:
    """Convert the qualified leads waiting in the ledger (``CrmAdapter.convert_lead``); returns how many converted.

    A lead whose SDR -> AE checklist is incomplete waits (``sdr_handoff.hand_over``: one task for
    the SDR); a complete one is converted for its AE, who then gets a task on the new opportunity.

    Each conversion is in the ledger before the CRM is asked (``pending``, attempts counted) and
    closed with its answer: ``converted`` with the opportunity, contact and account ids, or
    ``failed`` when the CRM refuses it (audited, counted). A CRM that cannot answer now leaves it
    pending for the next run; one that refuses the connection as a whole stops the pass.
    """
    with ctx.transaction() as session:
        pending = Repositories(session).dispositions.pending_conversions(ctx.connection)
    if not pending:
        return 0
    if ctx.writer is not None:
        ctx.writer.drain(final=True)  # the lead's status lands before the conversion makes it read-only
    converted = 0
    for row in pending:
        ctx.check_not_taken_over()
        mapping = ctx.resolved.mapping(row.object)
        with ctx.transaction() as session:
            snapshot = Repositories(session).records.get(ctx.connection, row.object, row.crm_id)
        person: Person | None = None
        if mapping is not None and snapshot is not None and not snapshot.deleted and not snapshot.merged_into:
            model = person_from_snapshot(ctx.connection, mapping, row.crm_id, dict(snapshot.canonical),
                                         snapshot.last_seen).model
            person = model if isinstance(model, Person) else None
        if person is None:
            _conversion_failed(ctx, row, f"{row.label} cannot be converted: Relay has no live copy of it "
                                         "(deleted, merged away or never read)")
            continue
        handover = hand_over(ctx, person)  # SDR -> AE: the checklist first, then the AE who owns it
        if handover is None:
            ctx.summary.findings["conversion_waiting"] += 1
            continue
        with ctx.transaction() as session:
            Repositories(session).dispositions.attempt(row.id)  # recorded before the CRM is asked
        try:
            spec = ctx.config.rules.dispositions.dispositions.get(person.disposition or "")
            result = ctx.adapter.convert_lead(row.object, row.crm_id, opportunity_name=opportunity_name(person),
                                              owner_id=handover.owner_id or person.owner_id,
                                              status=spec.converted_status if spec is not None else None)
        except RecordError as exc:
            if exc.retriable:
                _conversion_retried(ctx, row, exc)
                continue
            _conversion_failed(ctx, row, f"{row.label}: the CRM refused the conversion: {exc}")
            continue
        except FatalError as exc:
            _conversion_retried(ctx, row, exc)
            log.warning("conversions of %s stopped: %s", ctx.connection, exc)
            return converted
        except CrmError as exc:
            _conversion_retried(ctx, row, exc)
            continue
        with ctx.transaction() as session:
            repos = Repositories(session)
            done = repos.dispositions.finish_conversion(
                row.id, opportunity_id=result.opportunity_id, contact_id=result.contact_id,
                account_id=result.account_id, now=ctx.now())
            if done:
                repos.audit.append(ctx.connection, "converted", object_name=row.object, crm_id=row.crm_id,
                                   relay_id=row.relay_id, run_id=ctx.summary.run_id, at=ctx.now(),
                                   detail={"disposition": row.value, "opportunity_id": result.opportunity_id,
                                           "contact_id": result.contact_id, "account_id": result.account_id,
                                           "already_converted": result.already_converted,
                                           "opportunity_name": opportunity_name(person),
                                           "owner_id": handover.owner_id or person.owner_id,
                                           "ae_email": handover.handoff.receiver_email})
        if done:
            handed_over(ctx, person, handover, result)
        converted += int(done)
    return converted


def _conversion_failed(ctx: RunContext, row: Disposition, error: str) -> None:
    with ctx.transaction() as session:
        repos = Repositories(session)
        if repos.dispositions.finish_conversion(row.id, error=error, now=ctx.now()):
            repos.audit.append(ctx.connection, "conversion_failed", object_name=row.object, crm_id=row.crm_id,
                               relay_id=row.relay_id, run_id=ctx.summary.run_id, at=ctx.now(),
                               detail={"disposition": row.value, "error": error})
    ctx.summary.findings["conversion_failed"] += 1


def _conversion_retried(ctx: RunContext, row: Disposition, exc: CrmError) -> None:
    with ctx.transaction() as session:
        Repositories(session).dispositions.note_error(row.id, f"{type(exc).__name__}: {exc}")
    ctx.summary.findings["conversion_retried"] += 1
    log.warning("conversion of %s left for the next run: %s", row.label, exc)


__all__ = ["OVERDUE_LOOKBACK", "PageDispositions", "close_suppressed_clocks", "convert_qualified",
           "flag_missing_dispositions", "opportunity_name", "page_dispositions", "recycle_due",
           "run_disposition_pass", "stamp_of", "suppressed_people"]
