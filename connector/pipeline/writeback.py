"""Turning the core's decisions into outbox messages: what a rep will see in the CRM.

Per routed person: the owner, score, category, routing reason, SLA due, matched account
and Relay id on the record, and one follow-up task for the owner, due at the SLA
deadline. Field names come from the mapping, so nothing here knows which CRM it writes to.

The decision fields are one group: when any of them differs from what the CRM holds,
all of them are sent, so an owner is never written without its reason, score and SLA
(and a newer update that takes over an older waiting one carries the whole decision).
Clean-up (hygiene) values are sent with them only where they differ, marked as such
in the payload: when the CRM refuses one, the writer sends the decision again without
them. The task waits for the update (``OutboxPayload.after``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.config.mappings import ObjectMapping
from connector.core.governance.models import TaskSpec
from connector.core.models import LeadDecision, Person, RecordRef, TaskDecision
from connector.mapping.engine import (
    MappingError,
    as_read_back,
    changed_fields,
    to_crm,
    written_fields,
)
from connector.pipeline.writer import OutboxPayload

TASK_STATUS = "Not Started"
DECISION_FIELDS = (
    "owner_id", "relay_score", "relay_score_category", "relay_routing_reason", "relay_sla_due",
    "relay_matched_account", "relay_id", "relay_nurture_track",
)
"""Canonical person fields that carry a decision: written together or not at all."""
RELAY_FIELDS = frozenset(DECISION_FIELDS) - {"owner_id"}
"""Decision fields only Relay writes; the owner is left out (a rep may change it in the CRM meanwhile)."""


@dataclass(frozen=True)
class PlannedMessage:
    """An outbox message to enqueue."""

    object: str
    operation: str
    crm_id: str | None
    payload: OutboxPayload
    idempotency_key: str


def _json_ready(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


_DIGEST_JSON = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))
"""Built once: ``json.dumps`` with these options built an encoder per call (a fifth of an update's planning)."""


def digest(*parts: Any) -> str:
    """A stable 32-hex key of ``parts`` (JSON, sorted keys): idempotency keys are built from it."""
    return hashlib.sha256(_DIGEST_JSON.encode(parts).encode()).hexdigest()[:32]


def record_update(
    mapping: ObjectMapping,
    person: Person,
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    source_version: datetime | None,
) -> PlannedMessage | None:
    """The update that brings the CRM record to ``desired`` (None when nothing differs).

    Only canonical fields the mapping writes are considered. Hygiene values equal to what
    the CRM already holds are dropped; the decision fields (:data:`DECISION_FIELDS`) are
    all sent when any of them differs (Relay's own fields at the value the CRM holds
    when this decision does not set them), so re-running over unchanged records writes
    nothing and a decision is never written in part. The payload lists the hygiene
    fields. The idempotency key covers the record, the values and the record version
    read, so a retried page enqueues the same message once.

    A converted lead gets no update: Salesforce keeps converted leads read-only
    (``CANNOT_UPDATE_CONVERTED_LEAD``), so the write would be refused on every run.
    """
    if person.is_converted:
        return None
    crm_names = written_fields(mapping)
    writable = crm_names.keys()
    wanted = {k: v for k, v in desired.items() if k in writable}
    if not wanted:
        return None
    changes = changed_fields(mapping, current, wanted)
    if not changes:
        return None
    decision = {k: v for k, v in wanted.items() if k in DECISION_FIELDS}
    if any(k in decision for k in changes):
        held = {k: current[k] for k in RELAY_FIELDS & writable if current.get(k) is not None}
        decision = {**held, **decision}
    else:
        decision = {}
    hygiene = {k: v for k, v in changes.items() if k not in DECISION_FIELDS}
    hygiene_fields = to_crm(mapping, hygiene)
    fields = {**hygiene_fields, **to_crm(mapping, decision)}
    read_back = as_read_back(mapping, {k: v for k, v in {**hygiene, **decision}.items() if k in crm_names})
    canonical = {crm_names[k]: [k, _json_ready(v)] for k, v in read_back.items()}
    ref = person.ref
    key = "upd:" + digest(ref.connection, ref.object, ref.crm_id, fields, source_version)
    payload = OutboxPayload(fields=fields, purpose="update",
                            hygiene_fields=tuple(k for k in hygiene_fields if k in fields), canonical=canonical)
    return PlannedMessage(mapping.name, "update", ref.crm_id, payload, key)


def task_message(
    task_mapping: ObjectMapping | None,
    person: Person,
    task: TaskDecision,
    owner_crm_id: str,
    assignment_key: str,
    after: str | None = None,
) -> PlannedMessage:
    """The follow-up task for a new assignment, upserted by its idempotency key.

    ``assignment_key`` tells this assignment from any later one of the same record (the
    assignment time), so the key is the same however often the message is retried.
    ``after`` is the idempotency key of the record update that writes the owner: the
    writer sends the task only once that update landed.

    Args:
        task_mapping: The connection's task object (``ResolvedConnection.tasks``, which checked
            that it maps an idempotency key); None when the mapping has none.

    Raises:
        MappingError: when the mapping has no task object.
    """
    if task_mapping is None:
        raise MappingError(f"the {person.ref.connection} mapping has no object with entity: task, "
                           "so Relay cannot create tasks")
    ref = person.ref
    key = f"task:{ref.connection}:{ref.object}:{ref.crm_id}:{assignment_key}"
    canonical: dict[str, Any] = {
        "subject": task.subject,
        "description": task.description,
        "due_at": task.due_at,
        "owner_id": owner_crm_id,
        "priority": task.priority,
        "status": TASK_STATUS,
        "idempotency_key": key,
    }
    return _task_upsert(task_mapping, canonical, "person_id", ref, key, after)


def _task_upsert(task_mapping: ObjectMapping, canonical: dict[str, Any], link: str, ref: RecordRef, key: str,
                 after: str | None) -> PlannedMessage:
    """The upsert of a task by its idempotency key, linked to ``ref`` through the task field ``link`` when the
    mapping writes it (Salesforce ``WhoId``/``WhatId``), else by an association (HubSpot)."""
    writable = {fm.canonical for fm in task_mapping.write_fields()}
    if link in writable:
        canonical = {**canonical, link: ref.crm_id}
    fields = to_crm(task_mapping, {k: v for k, v in canonical.items() if k in writable})
    key_field = next(fm.crm for fm in task_mapping.write_fields() if fm.canonical == "idempotency_key")
    associations = () if link in writable else ((ref.object, ref.crm_id),)
    payload = OutboxPayload(fields=fields, external_id_field=key_field, associations=associations, purpose="task",
                            after=after)
    return PlannedMessage(task_mapping.name, "upsert", None, payload, key)


def desired_values(decision: LeadDecision, relay_id: str, owner_crm_id: str | None) -> dict[str, Any]:
    """The canonical values Relay wants on the person record after this decision."""
    desired = {k: v for k, v in decision.field_updates.items() if k != "relay_id"}
    desired["relay_id"] = relay_id
    if owner_crm_id is not None:
        desired["owner_id"] = owner_crm_id
    return desired


def deal_update(mapping: ObjectMapping, ref: RecordRef, current: Mapping[str, Any], desired: Mapping[str, Any],
                source_version: datetime | None) -> PlannedMessage | None:
    """The update that writes Relay's decision about a deal (gate status, a stage set back, the CS owner).

    Only canonical fields the mapping writes and whose value differs from ``current`` are sent
    (None when nothing differs). The key covers the record, the values and the version read.
    """
    crm_names = written_fields(mapping)
    wanted = {k: v for k, v in desired.items() if k in crm_names}
    changes = changed_fields(mapping, current, wanted) if wanted else {}
    if not changes:
        return None
    fields = to_crm(mapping, changes)
    read_back = as_read_back(mapping, changes)
    canonical = {crm_names[k]: [k, _json_ready(v)] for k, v in read_back.items()}
    key = "upd:" + digest(ref.connection, ref.object, ref.crm_id, fields, source_version)
    return PlannedMessage(mapping.name, "update", ref.crm_id, OutboxPayload(fields=fields, purpose="update",
                                                                            canonical=canonical), key)


def record_task_message(task_mapping: ObjectMapping | None, ref: RecordRef, task: TaskSpec, owner_crm_id: str,
                        key: str, after: str | None = None) -> PlannedMessage:
    """A task about a record that is not a person (a deal): Salesforce ``WhatId``, HubSpot an association.

    ``key`` is the task's idempotency key (stable for the finding or handoff it is created for).

    Raises:
        MappingError: the mapping has no task object.
    """
    if task_mapping is None:
        raise MappingError(f"the {ref.connection} mapping has no object with entity: task, so Relay cannot create tasks")
    canonical: dict[str, Any] = {
        "subject": task.subject[:255], "description": task.description, "due_at": task.due_at,
        "owner_id": owner_crm_id, "priority": task.priority, "status": TASK_STATUS, "idempotency_key": key,
    }
    return _task_upsert(task_mapping, canonical, "related_id", ref, key, after)
