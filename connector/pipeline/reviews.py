"""Review items as tasks for a data steward in the CRM, and the steward's decision read back.

``rules/matching.yaml`` ``review: {connection, steward}`` names the CRM and the user. Each open
review item gets one task there (upserted by the key ``review:<id>``, so a retry makes no second
task): both records side by side, the score and its reasons, and what to answer. The steward
starts the task's comments with SAME or DIFFERENT and completes it; the next dedupe pass reads
the task back, records the decision (by ``crm task <id>``), and the item is never asked again.
A completed task without either word stays open (and is named in the pass's problems).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.base import CrmAdapter, WriteOp
from connector.adapters.errors import CrmError
from connector.config.loader import RelayConfig
from connector.core.models import Owner
from connector.mapping.engine import MappingError, to_crm
from connector.pipeline.connections import resolve_connection
from connector.pipeline.records import map_record
from connector.pipeline.writeback import TASK_STATUS
from connector.store.db import session_factory
from connector.store.repositories import Records
from connector.store.repositories.merges import Reviews, ReviewTask, ReviewTasks

REVIEW_TASK_DUE = timedelta(days=3)
"""A steward has this long to answer a review task."""

_ANSWERS = {"same": True, "different": False}


@dataclass
class StewardPass:
    """What one pass over the steward's tasks did."""

    created: int = 0
    decided: int = 0
    problems: list[str] = field(default_factory=list)


def _describe(records: Records, key: str) -> str:
    connection, obj, crm_id = key.split("/", 2)
    snapshot = records.get(connection, obj, crm_id)
    values = snapshot.canonical if snapshot is not None else {}
    lines = [f"{key}"]
    for name in ("first_name", "last_name", "email", "phone", "company", "title", "country"):
        if values.get(name):
            lines.append(f"  {name}: {values[name]}")
    return "\n".join(lines)


def _field(mapping: Any, canonical: str) -> str | None:
    return next((fm.crm for fm in mapping.fields if fm.canonical == canonical), None)


def read_answers(config: RelayConfig, engine: Engine, adapter: CrmAdapter, result: StewardPass) -> None:
    """Record the decisions of the steward's completed tasks (before the pass plans: they bind it)."""
    rules = config.rules.matching.review
    if rules.connection is None:
        return
    tasks = resolve_connection(config, rules.connection).tasks
    if tasks is None:
        return
    with session_factory(engine)() as session:
        items = [i for i in ReviewTasks(session).open() if i.task_connection == rules.connection and i.task_id]
    _read_back(engine, adapter, tasks, items, result)


def create_tasks(config: RelayConfig, engine: Engine, adapter: CrmAdapter, now: datetime,
                 result: StewardPass) -> None:
    """Give every open review item without a task its task for the data steward."""
    rules = config.rules.matching.review
    if rules.connection is None or rules.steward is None:
        return
    resolved = resolve_connection(config, rules.connection)
    tasks = resolved.tasks
    if tasks is None:
        result.problems.append(f"connection {rules.connection!r} maps no task object: review tasks cannot be created "
                               f"(rules/matching.yaml review.connection)")
        return
    sessions = session_factory(engine)
    with sessions() as session:
        waiting = [i for i in ReviewTasks(session).open() if not i.task_id]
    if not waiting:
        return
    owners = [m.model for m in (map_record(rules.connection, resolved.owners, r) for r in adapter.owners())
              if isinstance(m.model, Owner)]
    steward = next((o for o in owners if o.email and o.active and o.email.strip().lower()
                    == rules.steward.strip().lower()), None)
    if steward is None:
        result.problems.append(f"the data steward {rules.steward} is no active user of {rules.connection} "
                               f"(rules/matching.yaml review.steward): review tasks not created")
        return
    writable = {fm.canonical for fm in tasks.write_fields()}
    key_field = next(fm.crm for fm in tasks.write_fields() if fm.canonical == "idempotency_key")
    ops: list[WriteOp] = []
    with sessions() as session:
        records = Records(session)
        for item in waiting:
            description = (
                f"Relay's matcher is not sure these two records are one person (score {item.score:.1f}: "
                f"{item.reasons}).\n\n{_describe(records, item.left_key)}\n\n{_describe(records, item.right_key)}\n\n"
                "Start these comments with SAME or DIFFERENT, then complete the task: Relay reads the answer "
                "back and never asks again.")
            canonical: dict[str, Any] = {
                "subject": f"Relay review {item.id}: one person?", "description": description,
                "due_at": now + REVIEW_TASK_DUE, "owner_id": steward.id, "priority": "Normal",
                "status": TASK_STATUS, "idempotency_key": f"review:{item.id}",
            }
            try:
                fields = to_crm(tasks, {k: v for k, v in canonical.items() if k in writable})
            except MappingError as exc:
                result.problems.append(f"review {item.id}: {exc}")
                continue
            ops.append(WriteOp(tasks.name, "upsert", fields, None, f"review:{item.id}", key_field))
    if not ops:
        return
    try:
        answers = adapter.write(ops)
    except CrmError as exc:
        result.problems.append(f"review tasks not created in {rules.connection}: {exc}")
        return
    with sessions.begin() as session:
        store = ReviewTasks(session)
        for op, answer in zip(ops, answers, strict=True):
            review_id = int(op.idempotency_key.split(":", 1)[1])
            if answer.success and answer.crm_id:
                store.set_task(review_id, rules.connection, str(answer.crm_id))
                result.created += 1
            else:
                result.problems.append(f"review {review_id}: task not created: {answer.error}")


def _read_back(engine: Engine, adapter: CrmAdapter, tasks: Any, items: list[ReviewTask], result: StewardPass) -> None:
    if not items:
        return
    status_field, comments_field = _field(tasks, "status"), _field(tasks, "description")
    if status_field is None or comments_field is None:
        result.problems.append(f"the task mapping {tasks.name} maps no status or description: review answers "
                               "cannot be read back")
        return
    id_field = tasks.id_field
    try:
        page = adapter.read_ids(tasks.name, [status_field, comments_field], [str(i.task_id) for i in items])
    except CrmError as exc:
        result.problems.append(f"review tasks not read back: {exc}")
        return
    by_id = {str(record.get(id_field) or record.get("id")): record for record in page.records}
    decided: list[tuple[ReviewTask, bool, str]] = []
    for item in items:
        record = by_id.get(str(item.task_id))
        if record is None or str(record.get(status_field) or "").strip().lower() != "completed":
            continue
        first = str(record.get(comments_field) or "").strip().split(maxsplit=1)
        answer = _ANSWERS.get(first[0].strip(".,:;!").lower()) if first else None
        if answer is None:
            result.problems.append(f"review {item.id}: task {item.task_id} was completed without SAME or DIFFERENT "
                                   "at the start of its comments; the item stays open")
            continue
        decided.append((item, answer, f"crm task {item.task_id}"))
    if decided:
        with session_factory(engine).begin() as session:
            reviews = Reviews(session)
            for item, same, by in decided:
                reviews.decide(item.id, same, by)
        result.decided += len(decided)
