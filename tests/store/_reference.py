"""The single-record store writes as they were before the set-based ``*_many`` methods.

They are the model the set-based methods must match: a loop of these calls and one
``*_many`` call must leave the same rows and answer the same. They are kept here, apart
from the store (whose single-record methods are now thin wrappers over the ``*_many``
ones), so the comparison is with the old statements and not with the new code itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.orm import Session

from connector.store._types import _json_default, scrub_text
from connector.store.errors import ActiveAssignmentConflict, StoreError
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    AssignmentRow,
    AssignmentStatus,
    OutboxRow,
    OutboxStatus,
    QuarantineRow,
    RecordRow,
)
from connector.store.repositories import (
    Assignment,
    AssignmentIn,
    Assignments,
    Outbox,
    OutboxMessage,
    Records,
)
from connector.store.repositories._common import (
    insert_or_ignore,
    json_object,
    optional_text,
    text_value,
    when,
)
from connector.store.repositories.assignments import _assignment_values


def old_to_json_document(value: Any) -> Any:
    """The JSON round trip the store made of every document (``json.loads`` of its canonical text)."""
    return json.loads(
        scrub_text(
            json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
        )
    )


def mark_deleted(session: Session, connection: str, object_name: str, crm_id: str, seen_at: datetime) -> bool:
    at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
    result = session.execute(
        update(RecordRow)
        .where(
            RecordRow.connection == connection,
            RecordRow.object == object_name,
            RecordRow.crm_id == crm_id,
            RecordRow.deleted.is_(False),
        )
        .values(deleted=True, last_seen=at)
        .execution_options(synchronize_session=False)
    )
    flipped: bool = result.rowcount == 1  # type: ignore[attr-defined]
    return flipped


def mark_merged(
    session: Session, connection: str, object_name: str, crm_id: str, merged_into: str, seen_at: datetime
) -> bool:
    at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
    merged_into = text_value(merged_into, f"records[{connection}/{object_name}/{crm_id}].merged_into", CRM_ID_LEN)
    result = session.execute(
        update(RecordRow)
        .where(
            RecordRow.connection == connection,
            RecordRow.object == object_name,
            RecordRow.crm_id == crm_id,
            (RecordRow.merged_into.is_(None)) | (RecordRow.merged_into != merged_into),
        )
        .values(merged_into=merged_into, last_seen=at)
        .execution_options(synchronize_session=False)
    )
    merged: bool = result.rowcount > 0  # type: ignore[attr-defined]
    return merged


def upsert_snapshot(
    session: Session,
    connection: str,
    object_name: str,
    crm_id: str,
    *,
    kind: str,
    canonical: Mapping[str, Any],
    relay_id: str | None,
    deleted: bool,
    merged_into: str | None,
    seen_at: datetime,
) -> bool:
    from connector.store._types import content_hash

    where = f"records[{connection}/{object_name}/{crm_id}]"
    connection = text_value(connection, "records.connection", CONNECTION_LEN)
    object_name = text_value(object_name, "records.object", OBJECT_LEN)
    crm_id = text_value(crm_id, "records.crm_id", CRM_ID_LEN)
    kind = text_value(kind, f"{where}.kind", 32)
    document = json_object(canonical, f"{where}.canonical")
    relay_id = optional_text(relay_id, f"{where}.relay_id", RELAY_ID_LEN)
    merged_into = optional_text(merged_into, f"{where}.merged_into", CRM_ID_LEN)
    at = when(seen_at, f"{where}.seen_at")
    digest = content_hash(document)
    inserted = insert_or_ignore(
        session,
        RecordRow,
        {
            "connection": connection, "object": object_name, "crm_id": crm_id, "kind": kind,
            "canonical": document, "content_hash": digest, "relay_id": relay_id, "deleted": bool(deleted),
            "merged_into": merged_into, "first_seen": at, "last_seen": at,
        },
        conflict_columns=["connection", "object", "crm_id"],
        returning=[RecordRow.crm_id],
    )
    if inserted is not None:
        return True
    current = Records(session).get(connection, object_name, crm_id)
    assert current is not None
    changed = current.content_hash != digest or current.deleted != bool(deleted) or current.merged_into != merged_into
    values: dict[str, Any] = {"last_seen": max(at, current.last_seen), "kind": kind}
    if changed:
        values.update(canonical=document, content_hash=digest, deleted=bool(deleted), merged_into=merged_into)
    if relay_id is not None:
        values["relay_id"] = relay_id
    session.execute(
        update(RecordRow)
        .where(RecordRow.connection == connection, RecordRow.object == object_name, RecordRow.crm_id == crm_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return changed


def quarantine_add(
    session: Session,
    connection: str,
    object_name: str,
    reason: str,
    payload: Mapping[str, Any],
    *,
    crm_id: str | None,
    run_id: int | None,
    at: datetime | None,
) -> int:
    where = f"quarantine[{connection}/{object_name}/{crm_id}]"
    row = session.execute(
        insert(QuarantineRow)
        .values(
            connection=text_value(connection, "quarantine.connection", CONNECTION_LEN),
            object=text_value(object_name, "quarantine.object", OBJECT_LEN),
            crm_id=optional_text(crm_id, f"{where}.crm_id", CRM_ID_LEN),
            reason=text_value(reason, f"{where}.reason", 10_000),
            payload=json_object(payload, f"{where}.payload"),
            at=when(at, f"{where}.at"),
            run_id=run_id,
        )
        .returning(QuarantineRow.id)
    ).one()
    entry_id: int = row[0]
    return entry_id


def record_assignment(session: Session, item: AssignmentIn) -> Assignment:
    values = _assignment_values(item)
    connection, object_name, crm_id = values["connection"], values["object"], values["crm_id"]
    assignments = Assignments(session)
    current = assignments.active_for(connection, object_name, crm_id)
    if current is not None:
        same = (current.owner_email, current.owner_crm_id, current.tier, current.rule, current.rules_version)
        if same == (values["owner_email"], values["owner_crm_id"], values["tier"], values["rule"],
                    values["rules_version"]):
            return current
        session.execute(
            update(AssignmentRow)
            .where(AssignmentRow.id == current.id, AssignmentRow.status == AssignmentStatus.ACTIVE.value)
            .values(status=AssignmentStatus.SUPERSEDED.value)
            .execution_options(synchronize_session=False)
        )
    inserted = insert_or_ignore(
        session, AssignmentRow, values, conflict_columns=["connection", "object", "crm_id"],
        conflict_where=text("status = 'active'"), returning=[AssignmentRow.id],
    )
    if inserted is None:
        raise ActiveAssignmentConflict(connection, object_name, crm_id)
    active = assignments.active_for(connection, object_name, crm_id)
    assert active is not None
    return active


def _update_message(session: Session, message_id: int, values: dict[str, Any]) -> None:
    if isinstance(values.get("last_error"), str):
        values = {**values, "last_error": scrub_text(values["last_error"])}
    session.execute(
        update(OutboxRow).where(OutboxRow.id == message_id).values(**values)
        .execution_options(synchronize_session=False)
    )


def mark_failed(session: Session, message_id: int, error: str, retriable: bool, max_attempts: int) -> OutboxMessage:
    outbox = Outbox(session)
    message = outbox.get(message_id)
    if message.status is OutboxStatus.SENT:
        raise StoreError(f"outbox message {message_id} ({message.idempotency_key}) was already sent")
    attempts = message.attempts + 1
    dead = not retriable or attempts >= max_attempts
    status = OutboxStatus.DEAD if dead else OutboxStatus.FAILED
    _update_message(session, message_id, {"status": status.value, "attempts": attempts, "last_error": error})
    return outbox.get(message_id)


def replace_payload(session: Session, message_id: int, payload: Mapping[str, Any], error: str) -> OutboxMessage:
    outbox = Outbox(session)
    message = outbox.get(message_id)
    if message.status not in (OutboxStatus.PENDING, OutboxStatus.FAILED):
        raise StoreError(
            f"outbox message {message_id} ({message.idempotency_key}) is {message.status.value}; "
            "its payload cannot be replaced"
        )
    _update_message(session, message_id, {
        "payload": json_object(payload, f"outbox[{message.idempotency_key}].payload"),
        "status": OutboxStatus.FAILED.value,
        "attempts": message.attempts + 1,
        "last_error": error,
    })
    return outbox.get(message_id)


def cancel(session: Session, message_id: int, reason: str) -> OutboxMessage:
    outbox = Outbox(session)
    message = outbox.get(message_id)
    if message.status is OutboxStatus.SENT:
        raise StoreError(f"outbox message {message_id} ({message.idempotency_key}) was already sent")
    _update_message(session, message_id, {"status": OutboxStatus.DEAD.value, "last_error": reason})
    return outbox.get(message_id)


def mark_sent(
    session: Session,
    message_id: int,
    *,
    crm_result: Mapping[str, Any] | None,
    crm_id: str | None,
    now: datetime,
) -> OutboxMessage:
    outbox = Outbox(session)
    message = outbox.get(message_id)
    if message.status is OutboxStatus.SENT:
        return message
    if message.status is OutboxStatus.DEAD:
        raise StoreError(
            f"outbox message {message_id} ({message.idempotency_key}) is dead; it cannot be marked sent"
        )
    values: dict[str, Any] = {
        "status": OutboxStatus.SENT.value,
        "sent_at": when(now, f"outbox[{message.idempotency_key}].sent_at"),
        "attempts": message.attempts + 1,
        "crm_result": None
        if crm_result is None
        else json_object(crm_result, f"outbox[{message.idempotency_key}].crm_result"),
    }
    if crm_id is not None and message.crm_id is None:
        values["crm_id"] = text_value(crm_id, f"outbox[{message.idempotency_key}].crm_id", CRM_ID_LEN)
    _update_message(session, message_id, values)
    return outbox.get(message_id)
