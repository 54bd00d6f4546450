"""SDR -> AE: the handoff checklist before a qualified lead is converted, the AE who owns it, the AE's task.

Seed 001 6-7 (BANT verified and the call documented, then the opportunity is created and the AE
owner assigned) and seed 003's matrix (meeting outcome fields, handoff checklist, auto task
creation; the failure it prevents: "calendar holds" without qualification).
``dispositions.convert_qualified`` asks :func:`hand_over` before it converts a ``Qualified`` lead:

* checklist incomplete (handoffs.yaml ``sdr_to_ae``, decided by the core's
  :func:`~connector.core.governance.handoffs.decide_sdr_to_ae`): the conversion waits; a finding
  in the governance ledger and one task for the SDR (the lead's owner) naming what is missing;
  every later sync looks again and the finding is resolved once the checklist is complete;
* complete: the AE is decided once (an owner who is an AE already keeps it, anyone else hands
  over to the next AE of the region), recorded as a ``sdr_to_ae`` handoff before the CRM is asked
  (a retried conversion reuses it: the rotation moves once), and the conversion is owned by them;
* converted (:func:`handed_over`): the handoff is done and the AE's task, with the checklist's
  values, goes on the new opportunity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector.adapters.base import Conversion
from connector.core.governance.handoffs import decide_sdr_to_ae, sdr_checklist, sdr_to_ae
from connector.core.governance.models import GovernanceFinding
from connector.core.models import Person, RecordRef, RoutingState, TaskDecision
from connector.mapping.engine import MappingError, written_fields
from connector.pipeline.context import PagePlan, RunContext
from connector.pipeline.writeback import deal_update, digest, record_task_message, task_message
from connector.store.db import serialize_decisions
from connector.store.repositories import OutboxMessageIn, Repositories
from connector.store.repositories.governance import (
    FindingIn,
    FindingRecord,
    HandoffIn,
    HandoffRecord,
)

KIND = "sdr_to_ae"
CODE = "handoff_checklist_incomplete"


@dataclass(frozen=True)
class HandOver:
    """Who owns a qualified lead's conversion: the AE, their CRM user, and the stored handoff."""

    handoff: HandoffRecord
    owner_id: str | None
    """The AE's user in this CRM (None: nobody could be routed or they have no user here: the lead's owner)."""


def hand_over(ctx: RunContext, person: Person) -> HandOver | None:
    """The SDR -> AE handoff of a qualified lead about to be converted; None while its checklist is incomplete.

    Decided once: a handoff stored before (a conversion retried) is returned as it is.
    """
    ref = person.ref
    now = ctx.now()
    plan = ctx.new_page()
    with ctx.transaction() as session:
        serialize_decisions(session, ctx.connection)
        repos = Repositories(session)
        stored = repos.handoffs.for_records(ctx.connection, ref.object, [ref.crm_id]).get((ref.crm_id, KIND))
        if stored is not None:
            return HandOver(stored, _user(ctx, stored.receiver_email))
        rules = ctx.config.rules
        emails = {o.id: o.email.strip().lower() for o in ctx.owners if o.email}
        active = {o.email.strip().lower(): o.active for o in ctx.owners if o.email}
        owner_email = emails.get(person.owner_id or "")
        values = {name: getattr(person, name, None) for name in sdr_checklist(rules.handoffs, rules.stages)}
        state = RoutingState.model_validate({"groups": repos.round_robin.load(for_update=True)})
        decision, new_state = decide_sdr_to_ae(ref, values, owner_email, person.country, rules, state, active, now)
        findings = repos.findings.for_records(ctx.connection, ref.object, [ref.crm_id]).get(ref.crm_id, [])
        if not decision.complete:
            _blocked(ctx, plan, repos, person, decision.findings[0], findings, now)
            plan.write(repos, now)
            plan.add_to(ctx.summary)
            return None
        changed = {k: v.model_dump() for k, v in new_state.groups.items() if state.groups.get(k) != v}
        if changed:
            repos.round_robin.save(changed, now=now)
        task = decision.tasks[0] if decision.tasks else None
        repos.handoffs.add_many(ctx.connection, [HandoffIn(
            ref.object, ref.crm_id, KIND, now, owner_email, decision.receiver_email,
            task.due_at if task is not None else None,
            {"reason": decision.reason, "checklist": {k: _text(v) for k, v in values.items()},
             "task": task.subject if task is not None else None})], now=now)
        open_rows = [f.id for f in findings if f.code == CODE and f.status == "open"]
        for row in findings:
            if row.id in open_rows:
                plan.audit("finding_resolved", object_name=ref.object, crm_id=ref.crm_id,
                           detail={"code": row.code, "message": row.message, "since": row.first_seen.isoformat()}, at=now)
        if open_rows:
            repos.findings.resolve_many(open_rows, now=now)
        ae_user = _user(ctx, decision.receiver_email)
        plan.governance["sdr_to_ae"] += 1
        plan.audit("handoff", object_name=ref.object, crm_id=ref.crm_id, relay_id=person.relay_id, at=now,
                   detail={"kind": KIND, "from": owner_email, "to": decision.receiver_email, "reason": decision.reason,
                           "checklist": list(values),
                           "problem": None if ae_user is not None or decision.receiver_email is None
                           else f"{decision.receiver_email} has no active user in {ctx.connection}: "
                                "the conversion keeps the lead's owner"})
        plan.write(repos, now)
        stored = repos.handoffs.for_records(ctx.connection, ref.object, [ref.crm_id])[(ref.crm_id, KIND)]
    plan.add_to(ctx.summary)
    return HandOver(stored, ae_user)


def handed_over(ctx: RunContext, person: Person, handover: HandOver, result: Conversion) -> None:
    """After the conversion: the handoff is done and the AE's task goes on the new opportunity (once, by its key)."""
    now = ctx.now()
    handoff = handover.handoff
    plan = ctx.new_page()
    problem: str | None = None
    message: OutboxMessageIn | None = None
    spec = ctx.config.rules.handoffs.sdr_to_ae.ae_task
    # The mapping's deal object, synced or not: the task only needs to name what it goes on.
    deal_mapping = next((m for m in ctx.resolved.mappings.objects.values() if m.entity == "deal"), None)
    deal_object = deal_mapping.name if deal_mapping is not None else None
    messages: list[OutboxMessageIn] = []
    if handover.owner_id is None:
        problem = "no AE with a user in this CRM: no AE task"
    elif result.opportunity_id is None or deal_object is None:
        problem = ("the CRM created no opportunity" if result.opportunity_id is None
                   else f"the {ctx.connection} mapping has no deal object: the AE task has no opportunity to go on")
    else:
        rules = ctx.config.rules
        checklist = handoff.detail.get("checklist") or {}
        decision = sdr_to_ae(person.ref, checklist, rules.handoffs, rules.stages, handoff.owner_email,
                             handoff.receiver_email, handoff.occurred_at)
        opportunity = RecordRef(connection=ctx.connection, object=deal_object, crm_id=result.opportunity_id)
        try:
            for task in decision.tasks:  # the checklist was complete when stored: the AE task
                planned = record_task_message(ctx.resolved.tasks, opportunity, task, handover.owner_id,
                                              "sdr-ae:" + digest(ctx.connection, person.ref.object, person.ref.crm_id))
                message = OutboxMessageIn(ctx.connection, planned.object, planned.operation,
                                          planned.payload.to_json(), planned.idempotency_key, crm_id=planned.crm_id)
            # The SDR's next step goes on the new deal (the AE starts from it; hygiene asks for one).
            next_step = checklist.get("next_step")
            if deal_mapping is not None and next_step and "next_step" in written_fields(deal_mapping):
                update = deal_update(deal_mapping, opportunity, {}, {"next_step": next_step}, None)
                if update is not None:
                    messages.append(OutboxMessageIn(ctx.connection, update.object, update.operation,
                                                    update.payload.to_json(), update.idempotency_key,
                                                    crm_id=update.crm_id))
        except MappingError as exc:
            problem = str(exc)
    with ctx.transaction() as session:
        repos = Repositories(session)
        repos.handoffs.done(handoff.id, now)
        if message is not None:
            plan.outbox.append(message)
        plan.outbox.extend(messages)
        plan.audit("handoff_done", object_name=person.ref.object, crm_id=person.ref.crm_id, relay_id=person.relay_id,
                   at=now, detail={"kind": KIND, "to": handoff.receiver_email, "opportunity_id": result.opportunity_id,
                                   "task": spec.subject if message is not None else None,
                                   "task_key": message.idempotency_key if message is not None else None,
                                   "problem": problem})
        plan.write(repos, now)
    plan.add_to(ctx.summary)


def _blocked(ctx: RunContext, plan: PagePlan, repos: Repositories, person: Person, finding: GovernanceFinding,
             stored: list[FindingRecord], now: datetime) -> None:
    """Record an incomplete checklist once, with one task for the SDR; an open finding is only seen again."""
    ref = person.ref
    key = finding.key[:400]
    row = next((f for f in stored if f.key == key), None)
    if row is not None and row.status == "open":
        repos.findings.seen_many([row.id], now=now)
        return
    occurrence = 1 if row is None else row.occurrence + 1
    spec = finding.task
    problem: str | None = None
    task_key: str | None = None
    owner_id = _user(ctx, spec.assignee_email) if spec is not None else None
    if spec is None or spec.assignee_email is None or owner_id is None:
        problem = f"{ref}'s owner has no active user in {ctx.connection}: no task was created"
    else:
        task = TaskDecision(subject=spec.subject[:255], description=spec.description, due_at=spec.due_at,
                            owner_email=spec.assignee_email, priority=spec.priority)
        try:
            planned = task_message(ctx.resolved.tasks, person, task, owner_id, f"sdr-ae-checklist-{occurrence}")
            plan.outbox.append(OutboxMessageIn(ctx.connection, planned.object, planned.operation,
                                               planned.payload.to_json(), planned.idempotency_key,
                                               crm_id=planned.crm_id))
            task_key = planned.idempotency_key
        except MappingError as exc:
            problem = str(exc)
    entry = FindingIn(ref.object, ref.crm_id, key, finding.code, finding.message, task_key, occurrence)
    if row is None:
        repos.findings.add_many(ctx.connection, [entry], now=now)
    else:
        repos.findings.reopen_many({row.id: entry}, now=now)
    plan.governance[finding.code] += 1
    plan.audit("governance_finding", object_name=ref.object, crm_id=ref.crm_id, relay_id=person.relay_id, at=now,
               detail={"code": finding.code, "message": finding.message, "fields": list(finding.fields),
                       "task": spec.subject if spec is not None else None, "assignee": spec.assignee_email if spec else None,
                       "task_key": task_key, "occurrence": occurrence, "problem": problem})


def _user(ctx: RunContext, email: str | None) -> str | None:
    return ctx.owner_ids_by_email.get(email.strip().lower()) if email else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)
