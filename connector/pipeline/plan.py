"""What a dry run would write, in terms an admin checks: record, field, old -> new; tasks to create.

A dry run decides everything in one uncommitted transaction, so its outbox holds every
write a real run would send, with CRM field names and values. That alone does not say
what would *change*: the decision fields are sent as a group (see
``connector.pipeline.writeback``), most of them at the value the CRM already holds. So
each update is set against the record's snapshot in the same transaction, which holds
the canonical values Relay just read from the CRM (a dry run never folds its own writes
into snapshots): the outbox payload pairs each CRM field with its canonical name
(``OutboxPayload.canonical``), so the old value is the snapshot's value of that
canonical field. Fields sent at the value the CRM holds are not changes; a field whose
old value Relay cannot know (no snapshot, a canonical name the payload lacks) is shown
as unknown rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connector.config.mappings import MappingFile
from connector.core.models import Owner
from connector.pipeline.summary import PlannedChange, PlannedRecord, PlannedTask, PlannedWrite
from connector.pipeline.writer import OutboxPayload
from connector.store.repositories import OutboxMessage, RecordSnapshot, Repositories

ALL_PENDING = 10_000_000
"""Upper bound handed to ``Outbox.pending``: a plan lists every waiting write, not a batch."""
_PURPOSE_ORDER = {"update": 0, "task": 1}


def planned_writes(repos: Repositories, connection: str, mappings: MappingFile,
                   owners: Sequence[Owner]) -> list[PlannedWrite]:
    """Every write waiting in ``connection``'s outbox, described against the stored snapshots.

    Called at the end of a dry run, inside its transaction (before the rollback): the
    outbox then holds this run's decisions (and whatever an earlier crashed run left
    waiting, which a real run would send first), and the snapshots hold what was read.
    Two queries: the waiting messages, and the connection's live person snapshots.
    """
    messages = repos.outbox.pending(connection, limit=ALL_PENDING)
    if not messages:
        return []
    snapshots = {(s.object, s.crm_id): s for kind in ("person", "deal")
                 for s in repos.records.live_of_kind(connection, kind)}
    return describe_writes(messages, snapshots, mappings, owners)


def describe_writes(
    messages: Iterable[OutboxMessage],
    snapshots: Mapping[tuple[str, str], RecordSnapshot],
    mappings: MappingFile,
    owners: Sequence[Owner],
) -> list[PlannedWrite]:
    """The plan for ``messages``: updates (by object, then record) before tasks, in a stable order.

    Args:
        messages: Outbox messages waiting to be sent.
        snapshots: Stored snapshots by ``(object, crm_id)`` (the old values and record labels).
        mappings: The connection's mapping file (CRM field -> canonical name where a payload lacks it).
        owners: The CRM's users, to show an owner id with its email.
    """
    known = _Known(
        snapshots=snapshots,
        by_id={crm_id: (obj, crm_id) for obj, crm_id in snapshots},
        canonical_names={name: {fm.crm: fm.canonical for fm in m.write_fields()} for name, m in mappings.objects.items()},
        owner_emails={o.id: o.email for o in owners if o.email},
    )
    planned = []
    for message in messages:
        payload = OutboxPayload.from_json(message.payload)
        planned.append(_task(message, payload, known) if payload.purpose == "task" else _update(message, payload, known))
    planned.sort(key=_order)
    return planned


@dataclass(frozen=True)
class _Known:
    """What a plan is described with, looked up once for all its writes."""

    snapshots: Mapping[tuple[str, str], RecordSnapshot]
    by_id: Mapping[str, tuple[str, str]]
    """``(object, crm_id)`` of each snapshot by its CRM id (a Salesforce task names its person by id only)."""
    canonical_names: Mapping[str, Mapping[str, str]]
    """Object -> CRM field -> canonical name, for the fields the mapping writes."""
    owner_emails: Mapping[str, str]

    def owner_label(self, owner_id: Any) -> str | None:
        return self.owner_emails.get(str(owner_id)) if owner_id is not None else None


def _order(write: PlannedWrite) -> tuple[Any, ...]:
    record = write.record
    task = write.task
    return (_PURPOSE_ORDER.get(write.purpose, 2), write.object, record.object if record else "",
            record.crm_id if record else "", write.crm_id or "", task.subject or "" if task else "")


def _update(message: OutboxMessage, payload: OutboxPayload, known: _Known) -> PlannedWrite:
    snapshot = known.snapshots.get((message.object, message.crm_id)) if message.crm_id else None
    paired = {crm: pair for crm, pair in (payload.canonical or {}).items() if isinstance(pair, list) and len(pair) == 2}
    by_crm = known.canonical_names.get(message.object, {})
    changes = []
    for crm_field, new in payload.fields.items():
        canonical = str(paired[crm_field][0]) if crm_field in paired else by_crm.get(crm_field)
        old_known = snapshot is not None and canonical is not None and canonical in snapshot.canonical
        old = snapshot.canonical[canonical] if old_known and snapshot is not None and canonical else None
        # Old and new both as canonical values: the CRM's form may differ (HubSpot sends numbers as text).
        if crm_field in paired:
            new = paired[crm_field][1]
        if old_known and same_value(old, new):
            continue
        is_owner = canonical == "owner_id"
        changes.append(PlannedChange(
            field=crm_field, canonical=canonical, old=old if old_known else None, new=new, old_known=old_known,
            old_label=known.owner_label(old) if is_owner else None,
            new_label=known.owner_label(new) if is_owner else None,
        ))
    record = PlannedRecord(message.object, message.crm_id or "", _label(snapshot)) if message.crm_id else None
    return PlannedWrite(message.object, message.operation.value, message.crm_id, dict(payload.fields),
                        purpose="update", record=record, changes=tuple(changes))


def _task(message: OutboxMessage, payload: OutboxPayload, known: _Known) -> PlannedWrite:
    by_canonical = {canonical: crm for crm, canonical in known.canonical_names.get(message.object, {}).items()}

    def value(canonical: str) -> Any:
        name = by_canonical.get(canonical)
        return payload.fields.get(name) if name is not None else None

    linked: tuple[str, str] | None = None
    person_id = value("person_id") or value("related_id")
    if person_id:  # Salesforce: the task names its person (WhoId) or deal (WhatId); find which object it is
        linked = known.by_id.get(str(person_id), ("", str(person_id)))
    elif payload.associations:  # HubSpot: the task is associated with its contact
        linked = payload.associations[0]
    record = PlannedRecord(linked[0], linked[1], _label(known.snapshots.get(linked))) if linked else None
    owner_id = value("owner_id")
    task = PlannedTask(
        subject=_text(value("subject")),
        owner_id=_text(owner_id),
        owner_label=known.owner_label(owner_id),
        due=_text(value("due_at")),
        priority=_text(value("priority")),
    )
    return PlannedWrite(message.object, message.operation.value, message.crm_id, dict(payload.fields),
                        purpose="task", record=record, task=task)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _label(snapshot: RecordSnapshot | None) -> str | None:
    """A person as an admin recognises them: ``First Last <email>`` from the stored snapshot."""
    if snapshot is None:
        return None
    values = snapshot.canonical
    name = " ".join(str(values[k]).strip() for k in ("first_name", "last_name") if values.get(k))
    email = str(values.get("email") or "").strip()
    if name and email:
        return f"{name} <{email}>"
    return name or email or (str(values["name"]).strip() if values.get("name") else None)  # a deal: its name


def same_value(old: Any, new: Any) -> bool:
    """Whether two canonical values are the same value, however each is written.

    The snapshot keeps what was read (``26.0``, ``2026-01-15T12:00:00.000Z``); the payload
    what Relay writes (``26``, ``2026-01-15T12:00:00+00:00``): equal numbers and equal
    instants are the same value, not a change.
    """
    if old == new:
        return True
    if old is None or new is None or isinstance(old, bool) or isinstance(new, bool):
        return False
    if isinstance(old, int | float) and isinstance(new, int | float):
        return math.isclose(float(old), float(new), rel_tol=0, abs_tol=1e-9)
    old_when, new_when = _instant(old), _instant(new)
    if old_when is not None and new_when is not None:
        return old_when == new_when
    return False


def _instant(value: Any) -> datetime | date | None:
    """``value`` as a datetime (aware) or date when it is one or an ISO-8601 text of one."""
    if isinstance(value, datetime | date):
        return value
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) == 10:
        return parsed.date()
    return parsed if parsed.tzinfo is not None else None


__all__ = ["describe_writes", "planned_writes", "same_value"]
