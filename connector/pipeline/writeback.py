"""Turning the core's decisions into outbox messages: what a rep will see in the CRM.

Per routed person: the owner, score, category, routing reason, SLA due, matched account
and Relay id on the record (only the values that differ from what the CRM holds), and
one follow-up task for the owner, due at the SLA deadline. Field names come from the
mapping, so nothing here knows which CRM it writes to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.config.mappings import MappingFile, ObjectMapping
from connector.core.models import LeadDecision, Person, TaskDecision
from connector.mapping.engine import MappingError, changed_fields, to_crm
from connector.pipeline.writer import OutboxPayload

TASK_STATUS = "Not Started"


@dataclass(frozen=True)
class PlannedMessage:
    """An outbox message to enqueue."""

    object: str
    operation: str
    crm_id: str | None
    payload: OutboxPayload
    idempotency_key: str


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_update(
    mapping: ObjectMapping,
    person: Person,
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    source_version: datetime | None,
) -> PlannedMessage | None:
    """The update that brings the CRM record to ``desired`` (None when nothing differs).

    Only canonical fields the mapping writes are considered; values equal to what the
    CRM already holds are dropped, so re-running over unchanged records writes nothing.
    The idempotency key covers the record, the values and the record version read, so
    a retried page enqueues the same message once.

    A converted lead gets no update: Salesforce keeps converted leads read-only
    (``CANNOT_UPDATE_CONVERTED_LEAD``), so the write would be refused on every run.
    """
    if person.is_converted:
        return None
    writable = {fm.canonical for fm in mapping.write_fields()}
    wanted = {k: v for k, v in desired.items() if k in writable}
    if not wanted:
        return None
    changes = changed_fields(mapping, current, wanted)
    if not changes:
        return None
    fields = to_crm(mapping, changes)
    ref = person.ref
    key = "upd:" + _digest(ref.connection, ref.object, ref.crm_id, fields, source_version)
    return PlannedMessage(mapping.name, "update", ref.crm_id, OutboxPayload(fields=fields, purpose="update"), key)


def task_message(
    mappings: MappingFile,
    person: Person,
    task: TaskDecision,
    owner_crm_id: str,
    assignment_key: str,
) -> PlannedMessage:
    """The follow-up task for a new assignment, upserted by its idempotency key.

    ``assignment_key`` tells this assignment from any later one of the same record (the
    assignment time), so the key is the same however often the message is retried.

    Raises:
        MappingError: when the mapping has no task object or no idempotency-key field.
    """
    task_mapping = _task_mapping(mappings)
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
    writable = {fm.canonical for fm in task_mapping.write_fields()}
    if "person_id" in writable:
        canonical["person_id"] = ref.crm_id
    fields = to_crm(task_mapping, {k: v for k, v in canonical.items() if k in writable})
    key_field = next(fm.crm for fm in task_mapping.write_fields() if fm.canonical == "idempotency_key")
    associations = () if "person_id" in writable else ((ref.object, ref.crm_id),)
    payload = OutboxPayload(fields=fields, external_id_field=key_field, associations=associations, purpose="task")
    return PlannedMessage(task_mapping.name, "upsert", None, payload, key)


def _task_mapping(mappings: MappingFile) -> ObjectMapping:
    for mapping in mappings.objects.values():
        if mapping.entity == "task":
            if not any(fm.canonical == "idempotency_key" for fm in mapping.write_fields()):
                raise MappingError(
                    f"{mappings.crm} task object {mapping.name}: map canonical 'idempotency_key' to a unique "
                    "external-id field so retried task writes land once"
                )
            return mapping
    raise MappingError(f"the {mappings.crm} mapping has no object with entity: task, so Relay cannot create tasks")


def desired_values(decision: LeadDecision, relay_id: str, owner_crm_id: str | None) -> dict[str, Any]:
    """The canonical values Relay wants on the person record after this decision."""
    desired = {k: v for k, v in decision.field_updates.items() if k != "relay_id"}
    desired["relay_id"] = relay_id
    if owner_crm_id is not None:
        desired["owner_id"] = owner_crm_id
    return desired
