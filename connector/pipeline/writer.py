"""The outbox writer: drains a connection's pending writes to its CRM in full batches.

Decisions reach the CRM only through the outbox (DESIGN.md: ledger + audit + outbox
in one transaction, then a writer). Every message carries an idempotency key; task
creates are upserts keyed by it in the CRM, so a batch retried after a crash never
creates a second task.

Record updates go before tasks, and a follow-up task waits for the update that writes
its owner (``OutboxPayload.after``): it is held while that update waits, and given up
("owner not written") when the CRM refused it for good, so no rep gets a task for a
record they do not own. An update the CRM refuses for good is sent again at once
without its clean-up (hygiene) fields and any other field the CRM named, so a
refused normalised company name never costs the owner, score and SLA; what was left
out is reported (summary and ``write_failed`` audit entry).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.base import CrmAdapter, WriteOp, WriteResult
from connector.adapters.errors import CrmError, RecordError
from connector.pipeline.heartbeat import holder_is_gone, this_process
from connector.pipeline.summary import SyncSummary, WriteFailure
from connector.store.models import OutboxOperation, OutboxStatus
from connector.store.repositories import (
    Audit,
    AuditEntryIn,
    MessageStatus,
    Outbox,
    OutboxMessage,
    Records,
)

log = logging.getLogger(__name__)

FETCH_BATCHES = 10
"""How many CRM batches' worth of messages one outbox read fetches."""
CLAIM_LEASE = timedelta(minutes=5)
"""How long a writer holds the messages it claimed; a writer that died leaves them to the next after it."""
FINAL_PASSES = 4
"""How often the final drain of a run offers a passing failure to the CRM again."""
OWNER_NOT_WRITTEN = "OWNER_NOT_WRITTEN"
"""The code a follow-up task is given up with when the update of its owner was refused for good."""


@dataclass(frozen=True)
class OutboxPayload:
    """What an outbox message holds: a CRM write, field names native to the CRM.

    Attributes:
        fields: CRM field -> value.
        external_id_field: The upsert key field (tasks).
        associations: Records to link to (HubSpot tasks).
        purpose: ``update`` (a person record) or ``task``.
        hygiene_fields: The fields of ``fields`` that are clean-up rewrites (normalised
            name, company, phone...); the others are the decision (owner, score,
            category, reason, SLA due, matched account, Relay id), written together.
        after: Idempotency key of the record update this write waits for (a task waits
            for the update that writes its owner).
        canonical: For a record update, CRM field -> ``[canonical field, value]``: once the
            CRM accepted the update, the record's snapshot in the store takes these values.
        refused: What the CRM refused of an earlier version of this update
            (``{"code", "message", "fields"}``): those fields were left out.
    """

    fields: dict[str, Any]
    external_id_field: str | None = None
    associations: tuple[tuple[str, str], ...] = ()
    purpose: str = "update"
    hygiene_fields: tuple[str, ...] = ()
    after: str | None = None
    refused: dict[str, Any] | None = None
    canonical: dict[str, list[Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "fields": self.fields,
            "external_id_field": self.external_id_field,
            "associations": [list(pair) for pair in self.associations],
            "purpose": self.purpose,
        }
        if self.hygiene_fields:
            data["hygiene_fields"] = list(self.hygiene_fields)
        if self.after is not None:
            data["after"] = self.after
        if self.refused is not None:
            data["refused"] = self.refused
        if self.canonical:
            data["canonical"] = self.canonical
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboxPayload:
        refused = data.get("refused")
        return cls(
            fields=dict(data.get("fields") or {}),
            external_id_field=data.get("external_id_field"),
            associations=tuple((str(o), str(i)) for o, i in data.get("associations") or ()),
            purpose=str(data.get("purpose") or "update"),
            hygiene_fields=tuple(str(f) for f in data.get("hygiene_fields") or ()),
            after=None if data.get("after") is None else str(data["after"]),
            refused=dict(refused) if isinstance(refused, dict) else None,
            canonical=dict(data["canonical"]) if isinstance(data.get("canonical"), dict) else None,
        )


def to_write_op(message: OutboxMessage) -> WriteOp:
    """The adapter write an outbox message asks for."""
    payload = OutboxPayload.from_json(message.payload)
    return WriteOp(
        object=message.object,
        operation=message.operation.value,
        fields=payload.fields,
        crm_id=message.crm_id,
        idempotency_key=message.idempotency_key,
        external_id_field=payload.external_id_field,
        associations=payload.associations,
    )


class OutboxWriter:
    """Sends one connection's outbox through its adapter.

    Args:
        adapter: The connection's adapter.
        sessions: Session factory of Relay's store.
        batch_size: The CRM's write batch size (records per call).
        summary: Where sent records and refused ones are counted.
        now: Clock.
        on_sent: Called with the number of records each batch sent (progress).
    """

    def __init__(
        self,
        adapter: CrmAdapter,
        sessions: sessionmaker[Session],
        batch_size: int,
        summary: SyncSummary,
        now: Callable[[], datetime],
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self.sessions = sessions
        self.batch_size = batch_size
        self.summary = summary
        self.now = now
        self.on_sent = on_sent
        self.holder = f"{this_process()}/writer-{id(self):x}"
        """Whose claim the messages this writer sends carry (writers of other runs send others)."""
        self._retry_later: set[int] = set()
        self._released = False

    def drain(self, *, final: bool) -> int:
        """Send pending messages; unless ``final``, only whole batches (API calls are a budget).

        A message the CRM refused for a passing reason (a row lock, a rolled-back
        batch) is tried again in the final drain, up to ``FINAL_PASSES`` times, after
        the adapter's retry backoff (a row lock is held by another transaction for a
        moment: an immediate retry mostly meets it again); one it refused for good is
        marked dead and reported with the CRM's error.

        Returns:
            The number of messages sent successfully.
        """
        if not final:
            return self._drain_once(final=False, last_chance=False)
        sent = 0
        for attempt in range(1, FINAL_PASSES + 1):
            if attempt > 1:
                self._wait_before_pass(attempt - 1)
            self._retry_later.clear()
            sent += self._drain_once(final=True, last_chance=attempt == FINAL_PASSES)
            if not self._retry_later:
                break
        return sent

    def _wait_before_pass(self, failed_passes: int) -> None:
        policy = self.adapter.retry
        policy.pause(policy.backoff(failed_passes), context="outbox drain")

    def _drain_once(self, *, final: bool, last_chance: bool) -> int:
        connection = self.adapter.connection
        attempted: set[int] = set()
        sent = 0
        while True:
            with self.sessions.begin() as session:
                if not self._released:  # what writers killed on this host claimed is free at once
                    Outbox(session).release_abandoned(connection, now=self.now(), is_gone=holder_is_gone)
                    self._released = True
                fetched = Outbox(session).claim(connection, self.holder, now=self.now(), lease=CLAIM_LEASE,
                                                limit=self.batch_size * FETCH_BATCHES)
            offered = [m for m in fetched if m.id not in attempted]
            fresh = self._ready(offered)
            if len(fresh) < len(offered):  # held back (waiting for their owner's update): another writer may send them
                ready = {m.id for m in fresh}
                with self.sessions.begin() as session:
                    Outbox(session).release([m.id for m in offered if m.id not in ready], self.holder)
            if not fresh:
                return sent
            groups: dict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
            for message in fresh:
                groups[(message.object, message.operation.value)].append(message)
            batch: list[OutboxMessage] = []
            # Record updates first: a task's owner must be on the record before the task lands.
            ordered = sorted(groups.values(), key=lambda ms: ms[0].operation is not OutboxOperation.UPDATE)
            for messages in ordered:
                take = len(messages) if final else len(messages) - len(messages) % self.batch_size
                batch.extend(messages[:take])
            if not batch:
                return sent
            attempted.update(m.id for m in batch)
            sent += self._send(batch, last_chance=last_chance)
            if not final and len(fetched) < self.batch_size * FETCH_BATCHES:
                return sent

    def _ready(self, messages: list[OutboxMessage]) -> list[OutboxMessage]:
        """The messages that may be sent now: a task waits for the update of its owner.

        A task whose update was sent (or that waits for nothing) is ready; one whose
        update is still waiting is held (left out, still pending); one whose update was
        refused for good is given up as "owner not written", reported and audited.
        """
        waits = {m.id: p.after for m in messages if (p := OutboxPayload.from_json(m.payload)).after}
        if not waits:
            return messages
        ready: list[OutboxMessage] = []
        given_up: list[tuple[OutboxMessage, str]] = []
        cancelled: list[AuditEntryIn] = []
        with self.sessions.begin() as session:
            outbox = Outbox(session)
            updates = outbox.superseded_by(sorted(set(waits.values())))
            for message in messages:
                key = waits.get(message.id)
                update = None if key is None else updates.get(key)
                if update is None or update.status is OutboxStatus.SENT:
                    ready.append(message)
                elif update.status is OutboxStatus.DEAD:
                    reason, entry = self._give_up_task(message, update)
                    given_up.append((message, reason))
                    cancelled.append(entry)
            if given_up:
                outbox.cancel_many([(task.id, reason) for task, reason in given_up])
                Audit(session).append_many(cancelled)
        return ready

    def _give_up_task(self, task: OutboxMessage, update: MessageStatus) -> tuple[str, AuditEntryIn]:
        """Report a follow-up task given up; the reason to cancel it with and its audit entry."""
        reason = (f"owner not written: the update of {update.object} {update.crm_id} ({update.idempotency_key}) "
                  f"was refused: {update.last_error or 'no reason given'}")
        self.summary.write_failures.append(
            WriteFailure(task.object, None, task.operation.value, OWNER_NOT_WRITTEN, reason)
        )
        entry = AuditEntryIn(
            task.connection,
            "task_cancelled",
            object_name=update.object,
            crm_id=update.crm_id,
            run_id=self.summary.run_id,
            detail={"code": OWNER_NOT_WRITTEN, "message": reason, "idempotency_key": task.idempotency_key,
                    "update_key": update.idempotency_key},
            at=self.now(),
        )
        log.warning("%s: follow-up task %s not created: %s", task.connection, task.idempotency_key, reason)
        return reason, entry

    def _send(self, messages: list[OutboxMessage], *, last_chance: bool) -> int:
        ops = [to_write_op(m) for m in messages]
        try:
            results = self.adapter.write(ops)
        except CrmError as exc:
            # The whole call failed after retries: keep every message for the next drain.
            with self.sessions.begin() as session:
                Outbox(session).mark_failed_many([(message.id, str(exc), True) for message in messages])
            raise
        sent: list[tuple[int, str | None, dict[str, Any] | None]] = []
        audit_entries: list[AuditEntryIn] = []
        again: list[OutboxMessage] = []
        written: list[tuple[str, str, dict[str, Any]]] = []
        replacements: list[tuple[int, dict[str, Any], str]] = []
        failures: list[tuple[OutboxMessage, WriteResult]] = []
        with self.sessions.begin() as session:
            outbox = Outbox(session)
            audit = Audit(session)
            for message, result in zip(messages, results, strict=True):
                if result.success:
                    sent.append((message.id, result.crm_id if message.crm_id is None else None,
                                 {"id": result.crm_id, "created": result.created}))
                    audit_entries.extend(self._count_success(message, result))
                    written.extend(_written_values(message))
                    continue
                narrowed = _without_refused_fields(message, result)
                if narrowed is not None:
                    replacements.append((message.id, narrowed.to_json(), f"{_code(result)}: {_text(result)}"))
                else:
                    failures.append((message, result))
            if replacements:
                again.extend(outbox.replace_payload_many(replacements))
            if failures:
                marked = outbox.mark_failed_many([
                    (message.id, f"{_code(result)}: {_text(result)}", bool(getattr(result.error, "retriable", False)))
                    for message, result in failures
                ])
                for (message, result), failed in zip(failures, marked, strict=True):
                    entry = self._record_failure(message, result, failed, last_chance=last_chance)
                    if entry is not None:
                        audit_entries.append(entry)
            if sent:
                outbox.mark_sent_many(sent, now=self.now())
            if written:  # the snapshots now show what the CRM holds, Relay's own values included
                Records(session).merge_written(self.adapter.connection, written)
            if audit_entries:
                audit.append_many(audit_entries)
        if self.on_sent is not None:
            self.on_sent(len(messages))
        retried = self._send(again, last_chance=last_chance) if again else 0
        return len(sent) + retried

    def _count_success(self, message: OutboxMessage, result: WriteResult) -> list[AuditEntryIn]:
        purpose = OutboxPayload.from_json(message.payload).purpose
        if purpose == "task":
            if result.created:
                self.summary.tasks_created += 1
            return [AuditEntryIn(
                message.connection,
                "task_created",
                object_name=message.object,
                crm_id=result.crm_id,
                run_id=self.summary.run_id,
                detail={"idempotency_key": message.idempotency_key, "created": result.created,
                        "fields": message.payload.get("fields", {})},
                at=self.now(),
            )]
        if message.operation in (OutboxOperation.UPDATE, OutboxOperation.UPSERT):
            self.summary.records_updated += 1
        payload = OutboxPayload.from_json(message.payload)
        if payload.refused is None:
            return []
        # Written without the fields the CRM refused: report those.
        code = str(payload.refused.get("code") or "UNKNOWN_ERROR")
        left_out = [str(f) for f in payload.refused.get("fields") or []]
        text = (f"{payload.refused.get('message') or 'the CRM gave no reason'} "
                f"(not written: {', '.join(left_out)}; the rest of the update was written)")
        self.summary.write_failures.append(
            WriteFailure(message.object, message.crm_id, message.operation.value, code, text)
        )
        log.warning("%s refused %s of %s %s: %s", message.connection, ", ".join(left_out), message.object,
                    message.crm_id, text)
        return [AuditEntryIn(
            message.connection,
            "write_failed",
            object_name=message.object,
            crm_id=message.crm_id,
            run_id=self.summary.run_id,
            detail={"code": code, "message": text, "retriable": False, "partial": True,
                    "idempotency_key": message.idempotency_key, "fields": left_out,
                    "written": sorted(payload.fields)},
            at=self.now(),
        )]

    def _record_failure(
        self, message: OutboxMessage, result: WriteResult, failed: OutboxMessage, *, last_chance: bool
    ) -> AuditEntryIn | None:
        """After ``failed`` was marked: retry it later, or report it and return its audit entry."""
        error = result.error
        code, text = _code(result), _text(result)
        retriable = bool(getattr(error, "retriable", False))
        if retriable and failed.status.value != "dead":
            self._retry_later.add(message.id)
            if not last_chance:
                return None
        failure = WriteFailure(message.object, message.crm_id, message.operation.value, code, text)
        self.summary.write_failures.append(failure)
        if code in OWNER_REFUSED:
            self.adapter.forget_owners()  # the owners list said active: the next run reads it afresh
        entry = AuditEntryIn(
            message.connection,
            "write_failed",
            object_name=message.object,
            crm_id=message.crm_id,
            run_id=self.summary.run_id,
            detail={"code": code, "message": text, "retriable": retriable,
                    "idempotency_key": message.idempotency_key,
                    "fields": list(getattr(error, "fields", None) or []),
                    "earlier": OutboxPayload.from_json(message.payload).refused},
            at=self.now(),
        )
        log.warning("%s refused %s", message.connection, failure)
        return entry


OWNER_REFUSED = frozenset({"INACTIVE_OWNER_OR_USER"})
"""Codes by which the CRM refuses an owner Relay took for active: its owners list is out of date."""


def _written_values(message: OutboxMessage) -> list[tuple[str, str, dict[str, Any]]]:
    """The canonical values an update the CRM accepted put on its record (the fields it carried)."""
    payload = OutboxPayload.from_json(message.payload)
    if message.operation is not OutboxOperation.UPDATE or not message.crm_id or not payload.canonical:
        return []
    values = {str(pair[0]): pair[1] for crm_field, pair in payload.canonical.items()
              if crm_field in payload.fields and isinstance(pair, list) and len(pair) == 2}
    return [(message.object, message.crm_id, values)] if values else []


def _code(result: WriteResult) -> str:
    return (result.error.code if result.error is not None else None) or "UNKNOWN_ERROR"


def _text(result: WriteResult) -> str:
    return str(result.error) if result.error is not None else "the CRM gave no reason"


def _without_refused_fields(message: OutboxMessage, result: WriteResult) -> OutboxPayload | None:
    """The update to send again after the CRM refused it for good, or None when there is none.

    The fields the CRM named are left out (all hygiene fields when it named none); the
    decision fields (owner, score, category, reason, SLA, matched account, Relay id) are
    written together or not at all, so a refusal naming one of them sends nothing again.
    Each refusal leaves out more, so a record is sent again a few times at most.
    """
    error = result.error
    if message.operation is not OutboxOperation.UPDATE or not isinstance(error, RecordError) or error.retriable:
        return None
    payload = OutboxPayload.from_json(message.payload)
    named = {str(f) for f in error.fields}
    hygiene = set(payload.hygiene_fields)
    decision = set(payload.fields) - hygiene
    if named & decision:
        return None
    drop = named or hygiene
    kept = {name: value for name, value in payload.fields.items() if name not in drop}
    left_out = sorted(set(payload.fields) - set(kept))
    if not kept or not left_out:
        return None
    earlier = payload.refused or {}
    refused = {
        "code": earlier.get("code") or _code(result),
        "message": earlier.get("message") or _text(result),
        "fields": [*earlier.get("fields", []), *left_out],
    }
    return replace(payload, fields=kept, hygiene_fields=tuple(f for f in payload.hygiene_fields if f in kept),
                   refused=refused)
