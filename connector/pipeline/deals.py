"""What one page of deals does: store snapshots, govern each deal, and plan what Relay writes back.

Runs inside the page's transaction (see ``connector.pipeline.sync``), like the people pages.
The stage history was read before the transaction (``read_histories``: no CRM call holds the
page's locks). Per deal the pure core (``connector.core.governance.deals.decide_deal``)
decides gates, approvals and the handoff; this module makes the decision durable and visible:

- each finding is recorded once (``governance_findings``, by the core's stable key) and its task
  is created then, in the CRM of the deal, for whom the finding names (owner, manager,
  approver); a finding the deal no longer shows is resolved, one seen again is reopened with
  a new task;
- approvals: a request is recorded with the approver's task; the approver's name in the deal's
  ``approved_by`` field records the approval (who, when, for which value), audited;
- the gate status, the stage an enforced gate sets back and the CS owner are written to the deal;
- a handoff (Closed Won -> Customer Success, Closed Lost) is recorded once with its tasks, and
  the kickoff date CS enters later closes it for the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.base import HistoryValue
from connector.config.mappings import ObjectMapping
from connector.core.governance.approvals import deal_measure
from connector.core.governance.deals import DealDecision, decide_deal
from connector.core.governance.models import (
    ApprovalRecord,
    Deal,
    FieldChange,
    GovernanceFinding,
    StageChange,
    TaskSpec,
    filled,
)
from connector.core.models import RoutingState
from connector.core.rules import Rules, rules_version
from connector.mapping.engine import MappingError, to_canonical
from connector.pipeline.context import PagePlan, RunContext
from connector.pipeline.pages import quarantine
from connector.pipeline.records import MappedRecord
from connector.pipeline.writeback import PlannedMessage, deal_update, digest, record_task_message
from connector.store.db import session_factory
from connector.store.repositories import (
    ApprovalRecordRow,
    AuditEntry,
    FindingIn,
    FindingRecord,
    HandoffIn,
    HandoffRecord,
    OutboxMessageIn,
    Repositories,
    SnapshotIn,
)

History = list[StageChange | FieldChange]


DEAL_RULE_PARTS = ("stages", "approvals", "handoffs", "routing")
"""The parts of the rules a deal decision depends on (:func:`governance_version` hashes them)."""


def governance_version(rules: Rules) -> str:
    """The version of the rules a deal decision uses (stages, approvals, handoffs and the team)."""
    return rules_version(*(getattr(rules, part) for part in DEAL_RULE_PARTS))


def read_histories(ctx: RunContext, mapping: ObjectMapping, records: Sequence[MappedRecord]) -> dict[str, History]:
    """The stage (and amount, close date) history of a page's live deals, read before its transaction.

    One CRM call per page (Salesforce: per 500 ids; HubSpot: per 100). A mapping without
    ``history`` reads nothing: the gates then go by the deal's fields alone.
    """
    fields = mapping.history_fields()
    ids = [r.meta.record_id for r in records if r.meta.record_id and not r.meta.deleted and r.model is not None]
    if not fields or not ids:
        return {}
    raw = ctx.adapter.read_history(mapping.name, ids, list(fields))
    emails = {o.id: o.email for o in ctx.owners if o.email}
    return {crm_id: history_changes(mapping, values, emails) for crm_id, values in raw.items()}


def history_changes(mapping: ObjectMapping, values: Sequence[HistoryValue], emails: Mapping[str, str]) -> History:
    """A record's field history (CRM values, oldest first) as the core's stage and field changes.

    Values go through the mapping's read transforms; a value that cannot be read is skipped.
    The first stage is a change from nothing; other fields count from their second value.
    """
    canonical_of = mapping.history_fields()
    last: dict[str, Any] = {}
    seen: set[str] = set()
    changes: History = []
    for entry in sorted(values, key=lambda v: v.at):
        name = canonical_of.get(entry.field)
        if name is None:
            continue
        read, problems = to_canonical(mapping, {entry.field: entry.value})
        if problems:
            continue
        value = read.get(name)
        by = emails.get(entry.by or "", entry.by)
        at = entry.at if entry.at.tzinfo is not None else entry.at.replace(tzinfo=UTC)
        if name == "stage":
            if value is None or (name in seen and last.get(name) == value):
                continue
            changes.append(StageChange(last.get(name) if name in seen else None, str(value), at, by))
        elif name in seen and last.get(name) != value:
            changes.append(FieldChange(name, last.get(name), value, at, by))
        seen.add(name)
        last[name] = value
    return changes


def deals_page(ctx: RunContext, mapping: ObjectMapping, records: list[MappedRecord], repos: Repositories) -> PagePlan:
    """Store a page of deals, govern the changed ones (all of them in a full sync) and plan the writes."""
    plan = ctx.new_page()
    live: list[tuple[Deal, MappedRecord]] = []
    deleted: list[str] = []
    emails = {o.id: o.email.strip().lower() for o in ctx.owners if o.email}
    for record in records:
        if record.model is None:
            quarantine(ctx, plan, mapping, record, record.error or "unreadable record", repos)
            continue
        assert isinstance(record.model, Deal) and record.meta.record_id is not None
        if record.meta.deleted:
            deleted.append(record.meta.record_id)
            continue
        deal = record.model
        if deal.owner_id:
            deal = deal.model_copy(update={"owner_email": emails.get(deal.owner_id)})
        live.append((deal, record))
    now = ctx.now()
    if deleted:
        repos.records.mark_deleted_many(ctx.connection, mapping.name, deleted, seen_at=now)
    if not live:
        return plan
    known = set(repos.records.get_many(ctx.connection, mapping.name, [d.ref.crm_id for d, _ in live]))
    changed = repos.records.upsert_snapshots(
        ctx.connection, mapping.name, [SnapshotIn(d.ref.crm_id, "deal", r.canonical) for d, r in live], seen_at=now)
    plan.changed += len(changed)
    if not ctx.full:
        live = [(d, r) for d, r in live if d.ref.crm_id in changed]
    if not live:
        return plan
    ids = [d.ref.crm_id for d, _ in live]
    page = _PageState(
        findings=repos.findings.for_records(ctx.connection, mapping.name, ids),
        approvals=repos.approvals.for_records(ctx.connection, mapping.name, ids),
        handoffs=repos.handoffs.for_records(ctx.connection, mapping.name, ids),
        version=governance_version(ctx.config.rules), emails=emails,
        active={o.email.strip().lower(): o.active for o in ctx.owners if o.email},
    )
    state = RoutingState.model_validate({"groups": repos.round_robin.load(for_update=True)})
    before = state
    new_handoffs: list[HandoffIn] = []
    for deal, record in live:
        deal = _with_approvals(ctx, plan, mapping, deal, page, repos, now)
        history = ctx.histories.get(deal.ref.crm_id, [])
        handed = frozenset(kind for (crm_id, kind) in page.handoffs if crm_id == deal.ref.crm_id)
        decision, state = decide_deal(deal, history, ctx.config.rules, now, state, handed_off=handed,
                                      owner_emails=emails, active_owners=page.active)
        # Relay governed this deal before (its gate status is in the CRM) but this store never saw it
        # (a new or lost store): what it finds is recorded as already acted on, no task sent twice.
        adopt = deal.ref.crm_id not in known and filled(deal.relay_gate_status)
        try:
            _act(ctx, plan, _Decided(mapping, deal, record, decision, adopt), page, repos, now, new_handoffs)
        except MappingError as exc:
            quarantine(ctx, plan, mapping, record, f"cannot write back: {exc}", repos)
    changed_groups = {k: v.model_dump() for k, v in state.groups.items() if before.groups.get(k) != v}
    if changed_groups:
        repos.round_robin.save(changed_groups, now=now)
    if new_handoffs:
        repos.handoffs.add_many(ctx.connection, new_handoffs, now=now)
    return plan


@dataclass
class _PageState:
    """What the store holds about a page's deals, read once per page."""

    findings: dict[str, list[FindingRecord]]
    approvals: dict[str, list[ApprovalRecordRow]]
    handoffs: dict[tuple[str, str], HandoffRecord]
    version: str
    emails: dict[str, str]
    """CRM user id -> email (lower case)."""
    active: dict[str, bool]


@dataclass(frozen=True)
class _Decided:
    mapping: ObjectMapping
    deal: Deal
    record: MappedRecord
    decision: DealDecision
    adopt: bool = False
    """Record what is found as acted on before (a new store over a governed CRM): no tasks."""


def _with_approvals(ctx: RunContext, plan: PagePlan, mapping: ObjectMapping, deal: Deal, page: _PageState,
                    repos: Repositories, now: datetime) -> Deal:
    """The deal with the approvals recorded for it; an approver's name newly in ``approved_by`` is recorded now."""
    rows = page.approvals.get(deal.ref.crm_id, [])
    records = [ApprovalRecord(matrix=r.matrix, approver=r.approved_by or "?", at=r.approved_at, value=r.value)
               for r in rows if r.status == "approved"]
    for key, matrix in ctx.config.rules.approvals.matrices.items():
        if matrix.approved_by is None:
            continue
        approver = deal.value(matrix.approved_by)
        value = deal_measure(deal, matrix)
        if not filled(approver) or value is None:
            continue
        if any(r.matrix == key and (r.value is None or r.value >= value) for r in records):
            continue
        requested = next((r for r in rows if r.matrix == key and r.status == "requested" and r.value == value), None)
        by = str(approver).strip()[:200]
        repos.approvals.approve(ctx.connection, mapping.name, deal.ref.crm_id, matrix=key, value=value,
                                approved_by=by, now=now, existing=requested)
        records.append(ApprovalRecord(matrix=key, approver=by, at=now, value=value))
        plan.governance["approval_recorded"] += 1
        plan.audit("approval_recorded", object_name=mapping.name, crm_id=deal.ref.crm_id, rules_version=page.version,
                   detail={"matrix": key, "measure": matrix.measure, "value": value, "approved_by": by,
                           "requested_of": requested.approver_title if requested else None,
                           "requested_at": requested.requested_at.isoformat() if requested and requested.requested_at
                           else None}, at=now)
    return deal.model_copy(update={"approvals": tuple(records)}) if records else deal


def _act(ctx: RunContext, plan: PagePlan, item: _Decided, page: _PageState, repos: Repositories, now: datetime,
         new_handoffs: list[HandoffIn]) -> None:
    """Record the decision's findings, approvals and handoff, and plan the deal's update and tasks."""
    deal, decision, mapping = item.deal, item.decision, item.mapping
    gov = decision.governance
    # A deal Relay set back stays "reset" (and its finding open) until it moves on from that stage.
    still_reset = {row.key for row in page.findings.get(deal.ref.crm_id, []) if gov.reset is None
                   and row.status == "open" and row.code == "gate_enforced" and gov.stage is not None
                   and row.key.endswith(f">{gov.stage}")}
    if item.adopt and gov.reset is None and gov.stage is not None and deal.relay_gate_status == "reset":
        key = f"{deal.ref}:gate_enforced:?>{gov.stage}"[:400]  # set back by Relay before this store
        repos.findings.add_many(ctx.connection, [FindingIn(
            mapping.name, deal.ref.crm_id, key, "gate_enforced",
            f"deal {deal.label} was set back to {gov.stage} by Relay before this store (its gate status says reset)",
            None)], now=now)
        still_reset.add(key)
    messages: list[PlannedMessage] = []
    update = _update(ctx, plan, item, page, reset=bool(still_reset))
    if update is not None:
        messages.append(update)
    messages += _findings(ctx, plan, item, page, repos, now, keep=still_reset)
    messages += _approval_requests(ctx, plan, item, page, repos, now)
    messages += _handoff(ctx, plan, item, page, repos, now, new_handoffs)
    if gov.reset is not None:
        plan.audit("stage_reset", object_name=mapping.name, crm_id=deal.ref.crm_id, rules_version=page.version,
                   detail={"from": gov.reset.from_stage, "to": gov.reset.to_stage, "value": gov.reset.to_value,
                           "reason": gov.reset.reason}, at=now)
    for message in messages:
        plan.outbox.append(OutboxMessageIn(ctx.connection, message.object, message.operation,
                                           message.payload.to_json(), message.idempotency_key, crm_id=message.crm_id))


def _update(ctx: RunContext, plan: PagePlan, item: _Decided, page: _PageState, *,
            reset: bool = False) -> PlannedMessage | None:
    desired = dict(item.decision.field_updates)
    if reset and desired.get("relay_gate_status") == "passed":
        desired["relay_gate_status"] = "reset"
    spec = ctx.config.rules.handoffs.closed_won
    cs_field = spec.cs_owner_field
    if cs_field and cs_field in desired:  # the form names the CS owner as a CRM user
        crm_user = ctx.owner_ids_by_email.get(str(desired[cs_field]).lower())
        if crm_user is None:
            del desired[cs_field]
        else:
            desired[cs_field] = crm_user
    update = deal_update(item.mapping, item.deal.ref, item.record.canonical, desired, item.record.meta.modified_at)
    if update is not None:
        plan.audit("field_update", object_name=item.mapping.name, crm_id=item.deal.ref.crm_id,
                   rules_version=page.version, detail={"fields": update.payload.fields}, at=ctx.now())
    return update


def _assignee(ctx: RunContext, deal: Deal, task: TaskSpec) -> tuple[str | None, str]:
    """The active CRM user a task goes to, and who that is in words.

    The person the task names; when they have no active user here, the deal's owner; when the
    owner is inactive too, the first active manager above them (routing.yaml); else nobody.
    """
    if task.assignee_email:
        user = ctx.owner_ids_by_email.get(task.assignee_email.strip().lower())
        if user is not None:
            return user, task.assignee_email
    wanted = task.assignee_email or task.assignee
    owner = (deal.owner_email or "").strip().lower()
    if owner and owner in ctx.owner_ids_by_email:
        return ctx.owner_ids_by_email[owner], f"{owner} (deal owner: {wanted} has no active user in this CRM)"
    for manager in ctx.config.rules.routing.escalation_chain(owner) if owner else ():
        user = ctx.owner_ids_by_email.get(manager.strip().lower())
        if user is not None:
            return user, f"{manager} (manager of {owner}, who is inactive; {wanted} has no active user in this CRM)"
    return None, f"nobody: {wanted} and the deal owner {owner or deal.owner_id or '(none)'} have no active user here"


def _task(ctx: RunContext, plan: PagePlan, deal: Deal, task: TaskSpec, key: str) -> PlannedMessage | None:
    owner, _ = _assignee(ctx, deal, task)
    if owner is None:
        plan.governance["task_without_owner"] += 1
        return None
    return record_task_message(ctx.resolved.tasks, deal.ref, task, owner, key)


def _findings(ctx: RunContext, plan: PagePlan, item: _Decided, page: _PageState, repos: Repositories,
              now: datetime, keep: frozenset[str] | set[str] = frozenset()) -> list[PlannedMessage]:
    """Record findings seen for the first time (or again) with their task; resolve those gone."""
    deal, mapping = item.deal, item.mapping
    stored = {f.key: f for f in page.findings.get(deal.ref.crm_id, [])}
    current: dict[str, GovernanceFinding] = {}
    for finding in item.decision.findings:
        current.setdefault(finding.key[:400], finding)
    messages: list[PlannedMessage] = []
    new: list[FindingIn] = []
    reopened: dict[int, FindingIn] = {}
    seen: list[int] = []
    for key, finding in current.items():
        plan.governance[finding.code] += 1
        row = stored.get(key)
        if row is not None and row.status == "open":
            seen.append(row.id)
            continue
        occurrence = 1 if row is None else row.occurrence + 1
        task_key = None
        if finding.task is not None:
            task_key = "gov:" + digest(ctx.connection, key, occurrence)
            message = None if item.adopt else _task(ctx, plan, deal, finding.task, task_key)
            if message is not None:
                messages.append(message)
            elif not item.adopt:
                task_key = None
        entry = FindingIn(mapping.name, deal.ref.crm_id, key, finding.code, finding.message, task_key, occurrence)
        if row is None:
            new.append(entry)
        else:
            reopened[row.id] = entry
        plan.audit("governance_finding", object_name=mapping.name, crm_id=deal.ref.crm_id, rules_version=page.version,
                   detail={"code": finding.code, "message": finding.message, "fields": list(finding.fields),
                           "task": finding.task.subject if finding.task else None,
                           "assignee": _assignee(ctx, deal, finding.task)[1] if finding.task else None,
                           "occurrence": occurrence, "adopted": item.adopt}, at=now)
    seen += [stored[key].id for key in keep if key in stored and key not in current]
    gone = [row for key, row in stored.items() if row.status == "open" and key not in current and key not in keep]
    for row in gone:
        plan.audit("finding_resolved", object_name=mapping.name, crm_id=deal.ref.crm_id, rules_version=page.version,
                   detail={"code": row.code, "message": row.message, "since": row.first_seen.isoformat()}, at=now)
    if new:
        repos.findings.add_many(ctx.connection, new, now=now)
    if reopened:
        repos.findings.reopen_many(reopened, now=now)
    if seen:
        repos.findings.seen_many(seen, now=now)
    if gone:
        repos.findings.resolve_many([row.id for row in gone], now=now)
    return messages


def _approval_requests(ctx: RunContext, plan: PagePlan, item: _Decided, page: _PageState, repos: Repositories,
                       now: datetime) -> list[PlannedMessage]:
    """Record each approval the deal newly needs, with the approver's task."""
    deal, mapping = item.deal, item.mapping
    rows = page.approvals.get(deal.ref.crm_id, [])
    messages: list[PlannedMessage] = []
    for request in item.decision.governance.approvals:
        if any(r.matrix == request.matrix and r.value == request.value for r in rows):
            continue
        task_key = "approval:" + digest(ctx.connection, deal.ref.object, deal.ref.crm_id, request.matrix, request.value)
        message = None if item.adopt else _task(ctx, plan, deal, request.task, task_key)
        repos.approvals.request(ctx.connection, mapping.name, deal.ref.crm_id, matrix=request.matrix,
                                value=request.value, approver_title=request.approver_title,
                                approver_email=request.approver_email,
                                task_key=task_key if message is not None or item.adopt else None, now=now)
        if message is not None:
            messages.append(message)
        plan.governance["approval_requested"] += 1
        plan.audit("approval_requested", object_name=mapping.name, crm_id=deal.ref.crm_id, rules_version=page.version,
                   detail={"matrix": request.matrix, "value": request.value, "approver": request.approver_title,
                           "approver_email": request.approver_email, "reason": request.reason,
                           "task_to": _assignee(ctx, deal, request.task)[1]}, at=now)
    return messages


def _handoff(ctx: RunContext, plan: PagePlan, item: _Decided, page: _PageState, repos: Repositories, now: datetime,
             new_handoffs: list[HandoffIn]) -> list[PlannedMessage]:
    """Record a complete handoff once with its tasks; note the kickoff of one made before."""
    deal, decision, mapping = item.deal, item.decision, item.mapping
    _kickoff_done(ctx, plan, item, page, repos)
    handoff = decision.handoff
    if handoff is None or not handoff.complete or decision.transition_at is None:
        return []
    if handoff.before_relay:  # won or lost long before Relay first read it: on record, nothing to do
        new_handoffs.append(HandoffIn(mapping.name, deal.ref.crm_id, handoff.kind, decision.transition_at,
                                      deal.owner_email, None, None, {"before_relay": True}))
        plan.governance[f"{handoff.kind}_before_relay"] += 1
        return []
    messages = []
    for n, task in enumerate(() if item.adopt else handoff.tasks):
        message = _task(ctx, plan, deal, task, "handoff:" + digest(ctx.connection, deal.ref.object, deal.ref.crm_id,
                                                                 handoff.kind, n, task.subject))
        if message is not None:
            messages.append(message)
    carry = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in handoff.carry_over.items()}
    detail: dict[str, Any] = {"carry_over": carry, "tasks": [t.subject for t in handoff.tasks],
                              "cs_reason": decision.cs_reason}
    kickoff_field = ctx.config.rules.handoffs.closed_won.kickoff_date_field
    kickoff = as_moment(deal.value(kickoff_field)) if kickoff_field and handoff.kind == "closed_won" else None
    new_handoffs.append(HandoffIn(mapping.name, deal.ref.crm_id, handoff.kind, decision.transition_at,
                                  deal.owner_email, decision.cs_owner_email, handoff.due_at, detail, kickoff))
    plan.governance[f"handoff_{handoff.kind}"] += 1
    plan.audit("handed_off", object_name=mapping.name, crm_id=deal.ref.crm_id, rules_version=page.version,
               detail={"kind": handoff.kind, "at": decision.transition_at.isoformat(),
                       "to": decision.cs_owner_email, "why": decision.cs_reason,
                       "due": handoff.due_at.isoformat() if handoff.due_at else None, **detail}, at=now)
    return messages


def _kickoff_done(ctx: RunContext, plan: PagePlan, item: _Decided, page: _PageState, repos: Repositories) -> None:
    """The kickoff date CS entered on a deal handed over before: its handoff is done (time to kickoff)."""
    field = ctx.config.rules.handoffs.closed_won.kickoff_date_field
    row = page.handoffs.get((item.deal.ref.crm_id, "closed_won"))
    if field is None or row is None or row.done_at is not None or row.detail.get("before_relay"):
        return
    value = item.deal.value(field)
    when = as_moment(value)
    if when is None:
        return
    repos.handoffs.done(row.id, when)
    plan.audit("kickoff_recorded", object_name=item.mapping.name, crm_id=item.deal.ref.crm_id,
               rules_version=page.version,
               detail={"kickoff": when.isoformat(), "due": row.due_at.isoformat() if row.due_at else None,
                       "on_time": row.due_at is None or when.date() <= row.due_at.date()}, at=ctx.now())


def as_moment(value: Any) -> datetime | None:
    """A deal's date or datetime value as an aware datetime (a date: noon UTC, as the core reads a close
    date); None when it is empty or neither."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(12), tzinfo=UTC)
    return None


def governance_examples(engine: Engine, wanted: Sequence[tuple[str, str | None, str]]
                        ) -> list[tuple[int, AuditEntry | None]]:
    """For each (audit action, finding code or handoff kind, _): how many entries, and the first one."""
    found: list[tuple[int, AuditEntry | None]] = []
    with session_factory(engine).begin() as session:
        audit = Repositories(session).audit
        for action, code, _ in wanted:
            entries = [e for e in audit.of_action(action)
                       if code is None or (e.detail or {}).get("code", (e.detail or {}).get("kind")) == code]
            found.append((len(entries), entries[0] if entries else None))
    return found


__all__ = ["as_moment", "deals_page", "governance_examples", "governance_version", "history_changes", "read_histories"]
