"""``relay dedupe run``: act on the duplicates of one CRM object as each connection is configured.

Per connection, ``duplicates`` in relay.yaml says what happens to a planned merge
(:mod:`connector.pipeline.dedupe`): ``report`` (nothing), ``merge`` (the CRM merges the set:
Salesforce's SOAP ``merge()``, HubSpot's merge API; the survivor takes the winning field values
Relay may write) or ``flag`` (each duplicate gets a task for its owner naming the record it
duplicates). Before anything is asked of a CRM:

* each person's records join one identity in the identity graph (a HubSpot contact, a
  Salesforce lead and a Salesforce contact with different emails): every sync then decides them
  as one person, one owner and one task;
* borderline pairs join the review queue (``relay dedupe reviews``), each once; a steward's
  decision binds every later match (``relay dedupe decide``);
* the blast-radius guard (``merge_guard``) may stop the whole run: nothing is merged, the
  reason is audited and the RevOps admins are alerted (alerts.yaml ``operations``);
* each set is recorded in the ``merges`` table (``pending``) in its own transaction, so a run
  killed after the CRM answered finds it and asks again (a merge already made counts as done);
  a set whose merge is ``done`` is never acted on again.

Each record merged away or flagged is audited with the pair's score, the reasons and the
survivor's field changes; merged records' snapshots are marked merged into the survivor.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.base import CrmAdapter, WriteOp
from connector.adapters.errors import CrmError
from connector.config.loader import RelayConfig
from connector.mapping.engine import MappingError, to_crm, written_fields
from connector.pipeline.alerts import queue_operations_alert, send_alerts_now
from connector.pipeline.connections import open_adapter, resolve_connection
from connector.pipeline.context import utc_now
from connector.pipeline.dedupe import DedupeReport, PlannedMerge, dedupe_report, guard_reason
from connector.pipeline.reviews import StewardPass, create_tasks, read_answers
from connector.pipeline.writeback import TASK_STATUS
from connector.store.db import held_alone, serialize_decisions, session_factory
from connector.store.models import MergeStatus
from connector.store.repositories import Audit, Identities, Records
from connector.store.repositories.audit import AuditEntryIn
from connector.store.repositories.identities import CrmRef
from connector.store.repositories.merges import Merges, Reviews, set_key

log = logging.getLogger(__name__)

FLAG_TASK_DUE = timedelta(days=2)
"""A duplicate's owner has this long to merge or dismiss it."""


@dataclass
class DedupeRun:
    """What ``relay dedupe run`` did."""

    report: DedupeReport
    merged: Counter[str] = field(default_factory=Counter)
    """Records merged away, per ``connection/object``."""
    flagged: Counter[str] = field(default_factory=Counter)
    reported: Counter[str] = field(default_factory=Counter)
    """Records left alone because their connection only reports duplicates."""
    already: Counter[str] = field(default_factory=Counter)
    """Records of sets acted on by an earlier run."""
    failures: list[str] = field(default_factory=list)
    stopped: str | None = None
    reviews_queued: int = 0
    """Borderline pairs put in the review queue by this run (a pair is queued once)."""
    linked: int = 0
    """Records moved to the identity of the person they are (the identity graph)."""
    review_tasks: int = 0
    """Tasks created for the data steward (``review`` in matching.yaml)."""
    reviews_decided: int = 0
    """Review items the steward answered in the CRM, read back by this pass."""
    busy: bool = False
    """Another pass was running (PostgreSQL: one pass at a time across processes); this one did nothing."""


def _split(key: str) -> tuple[str, str, str]:
    connection, obj, crm_id = key.split("/", 2)
    return connection, obj, crm_id


def run_dedupe(config: RelayConfig, engine: Engine, *, now: datetime | None = None) -> DedupeRun:
    """Plan (:func:`dedupe_report`) and act on the duplicates as each connection is configured."""
    with held_alone(engine, "relay.dedupe") as held:
        if not held:
            log.info("dedupe: another pass is running; this one does nothing")
            return DedupeRun(report=DedupeReport(records=0, candidate_pairs=0), busy=True)
        return _locked(config, engine, now)


def _locked(config: RelayConfig, engine: Engine, now: datetime | None) -> DedupeRun:
    adapters: dict[str, CrmAdapter] = {}
    steward = config.rules.matching.review.connection
    stewards = StewardPass()
    try:
        if steward is not None:  # the steward's answers first: they bind this pass's matching
            adapters[steward] = open_adapter(config, steward, engine=engine)
            read_answers(config, engine, adapters[steward], stewards)
        run = _run(config, engine, adapters, now)
        if steward is not None:
            create_tasks(config, engine, adapters[steward], now or utc_now(), stewards)
    finally:
        for adapter in adapters.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
    run.review_tasks, run.reviews_decided = stewards.created, stewards.decided
    run.failures.extend(stewards.problems)
    return run


def _run(config: RelayConfig, engine: Engine, adapters: dict[str, CrmAdapter], now: datetime | None) -> DedupeRun:
    report = dedupe_report(config, engine)
    run = DedupeRun(report=report)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        run.reviews_queued = Reviews(session).open_many(
            [(pair.left, pair.right, pair.score, pair.reasons) for pair in report.reviews], now=now)
    acting = [m for m in report.merges if config.connection(_split(m.plan.survivor)[0]).duplicates != "report"]
    for merge in report.merges:
        if merge not in acting:
            run.reported[merge.source] += len(merge.plan.losers)
    # The guard weighs what this pass would merge away: merge-mode sets not merged before (a flag
    # removes nothing, and a set done in an earlier pass is not done again).
    with sessions() as session:
        merges = Merges(session)
        to_merge = [m for m in acting if _mode(config, m) == "merge"
                    and not _done(merges, m, "merge")]
    guard = guard_reason(config.rules.matching.merge_guard, report.records,
                         sum(len(m.plan.losers) for m in to_merge))
    if guard and to_merge:
        run.stopped = guard
        connections = sorted({_split(m.plan.survivor)[0] for m in to_merge})
        records = sum(len(m.plan.losers) for m in to_merge)
        facts = {"reason": guard, "planned_sets": len(to_merge), "records": records}
        with sessions.begin() as session:
            for connection in connections:
                Audit(session).append(connection, "merge_guard_stopped", detail=facts)
        # the RevOps admins hear of it (alerts.yaml operations; once a day for the same plan)
        queue_operations_alert(config, engine, "merge_guard_stopped", {**facts, "connections": connections},
                               now or utc_now())
        send_alerts_now(config, engine, now=now)
        log.warning("dedupe stopped by the blast-radius guard: %s", guard)
        return run
    with sessions.begin() as session:
        run.linked = _link(session, report, now or utc_now())
    for merge in acting:
        connection = _split(merge.plan.survivor)[0]
        if connection not in adapters:
            adapters[connection] = open_adapter(config, connection, engine=engine)
        _act(config, engine, adapters[connection], merge, run, now or utc_now())
    return run


def _mode(config: RelayConfig, merge: PlannedMerge) -> str:
    return config.connection(_split(merge.plan.survivor)[0]).duplicates


def _done(merges: Merges, merge: PlannedMerge, mode: str) -> bool:
    connection, obj, survivor = _split(merge.plan.survivor)
    found = merges.find(connection, obj, set_key([survivor, *(_split(k)[2] for k in merge.plan.losers)], mode))
    return found is not None and found.status == MergeStatus.DONE


def _link(session: Any, report: DedupeReport, now: datetime) -> int:
    """Join each person's records in the identity graph, so that every sync decides them as one
    person (one owner, one task) although their emails differ; audit each record moved."""
    identities = Identities(session)
    audit = Audit(session)
    for connection in sorted({_split(key)[0] for keys in report.people for key in keys}):
        serialize_decisions(session, connection)  # no page decision reads these identities meanwhile
    moved = 0
    for keys in report.people:
        refs = [CrmRef(*_split(key)) for key in keys]
        before = {ref: identities.relay_id_for(ref) for ref in refs}
        target = identities.join(refs, now=now)
        if target is None:
            continue
        for ref, relay_id in before.items():
            if relay_id is not None and relay_id != target:
                moved += 1
                key = f"{ref.connection}/{ref.object}/{ref.crm_id}"
                other, score, reasons = report.best_pair.get(key, ("", 0.0, ""))
                audit.append(ref.connection, "linked", object_name=ref.object, crm_id=ref.crm_id,
                             relay_id=target, detail={"from": relay_id, "with": keys, "matched": other,
                                                      "score": score, "reasons": reasons}, at=now)
    return moved


def _act(config: RelayConfig, engine: Engine, adapter: CrmAdapter, merge: PlannedMerge, run: DedupeRun,
         now: datetime) -> None:
    plan = merge.plan
    connection, obj, survivor_id = _split(plan.survivor)
    loser_ids = [_split(key)[2] for key in plan.losers]
    mode = config.connection(connection).duplicates
    resolved = resolve_connection(config, connection)
    mapping = resolved.mappings.objects[obj]
    writable = written_fields(mapping)
    values = {name: value for name, value in plan.updates.items() if name in writable}
    sessions = session_factory(engine)
    with sessions.begin() as session:
        record = Merges(session).begin(connection, obj, mode=mode, survivor_id=survivor_id, loser_ids=loser_ids,
                                       plan=_plan_json(merge, values), now=now)
    if record.status == MergeStatus.DONE:
        run.already[merge.source] += len(loser_ids)
        return
    try:
        if mode == "merge":
            outcome = adapter.merge(obj, survivor_id, loser_ids, to_crm(mapping, values) if values else None)
            result: dict[str, Any] = {"survivor_id": outcome.survivor_id, "merged_ids": list(outcome.merged_ids),
                                      "already_merged_ids": list(outcome.already_merged_ids)}
        else:
            result = {"tasks": _flag(resolved, adapter, merge, obj, survivor_id, now)}
    except (CrmError, MappingError) as exc:
        with sessions.begin() as session:
            Merges(session).finish(record.id, error=str(exc))
            Audit(session).append(connection, "merge_failed", object_name=obj, crm_id=survivor_id,
                                  detail={"losers": loser_ids, "error": str(exc)})
        run.failures.append(f"{merge.source} {survivor_id} <- {', '.join(loser_ids)}: {exc}")
        return
    survivor_after = str(result.get("survivor_id") or survivor_id)
    with sessions.begin() as session:
        Merges(session).finish(record.id, outcome=result)
        if mode == "merge":
            Records(session).mark_merged_many(connection, obj, [(loser, survivor_after) for loser in loser_ids])
        Audit(session).append_many([
            AuditEntryIn(connection, "merged" if mode == "merge" else "duplicate_flagged", object_name=obj,
                         crm_id=loser, detail={
                             "survivor": survivor_after, "score": merge.evidence[f"{connection}/{obj}/{loser}"][0],
                             "reasons": merge.evidence[f"{connection}/{obj}/{loser}"][1],
                             "survivor_rule": plan.survivor_rule,
                             "changes": {k: {"from": _text(plan.survivor_values.get(k)), "to": _text(v)}
                                         for k, v in values.items()} if mode == "merge" else {}})
            for loser in loser_ids])
    (run.merged if mode == "merge" else run.flagged)[merge.source] += len(loser_ids)


def _plan_json(merge: PlannedMerge, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "survivor_rule": merge.plan.survivor_rule,
        "values": {k: str(v) for k, v in values.items()},
        "evidence": {k: {"score": s, "reasons": r} for k, (s, r) in merge.evidence.items()},
    }


def _flag(resolved: Any, adapter: CrmAdapter, merge: PlannedMerge, obj: str, survivor_id: str,
          now: datetime) -> list[str]:
    """A task for each duplicate's owner naming the record it duplicates; returns the task ids."""
    tasks = resolved.tasks
    if tasks is None:
        raise MappingError(f"the {resolved.name} mapping has no task object, so duplicates cannot be flagged")
    writable = {fm.canonical for fm in tasks.write_fields()}
    key_field = next(fm.crm for fm in tasks.write_fields() if fm.canonical == "idempotency_key")
    ops: list[WriteOp] = []
    for key in merge.plan.losers:
        connection, _, loser = _split(key)
        score, reasons = merge.evidence[key]
        idempotency = f"dup:{connection}:{obj}:{loser}:{survivor_id}"
        canonical: dict[str, Any] = {
            "subject": f"Possible duplicate of {obj} {survivor_id}",
            "description": (f"Relay's matcher scored this record {score:.1f} against {obj} {survivor_id} "
                            f"({reasons}). Merge the two, or mark them different in Relay's review."),
            "due_at": now + FLAG_TASK_DUE, "priority": "Normal", "status": TASK_STATUS,
            "idempotency_key": idempotency,
        }
        owner = merge.owners.get(key)
        if owner:
            canonical["owner_id"] = owner
        if "person_id" in writable:
            canonical["person_id"] = loser
        fields = to_crm(tasks, {k: v for k, v in canonical.items() if k in writable})
        associations = () if "person_id" in writable else ((obj, loser),)
        ops.append(WriteOp(tasks.name, "upsert", fields, None, idempotency, key_field, associations))
    results = adapter.write(ops)
    failed = [r for r in results if not r.success]
    if failed:
        error = failed[0].error
        raise error if isinstance(error, CrmError) else MappingError(f"task not created: {error}")
    return [str(r.crm_id) for r in results]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)

