"""The outbox writer: drains a connection's pending writes to its CRM in full batches.

Decisions reach the CRM only through the outbox (DESIGN.md: ledger + audit + outbox
in one transaction, then a writer). Every message carries an idempotency key; task
creates are upserts keyed by it in the CRM, so a batch retried after a crash never
creates a second task.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.base import CrmAdapter, WriteOp, WriteResult
from connector.adapters.errors import CrmError
from connector.adapters.retry import RetryPolicy
from connector.pipeline.summary import SyncSummary, WriteFailure
from connector.store.models import OutboxOperation
from connector.store.repositories import Audit, AuditEntryIn, Outbox, OutboxMessage

log = logging.getLogger(__name__)

FETCH_BATCHES = 10
"""How many CRM batches' worth of messages one outbox read fetches."""
FINAL_PASSES = 4
"""How often the final drain of a run offers a passing failure to the CRM again."""


@dataclass(frozen=True)
class OutboxPayload:
    """What an outbox message holds: a CRM write, field names native to the CRM."""

    fields: dict[str, Any]
    external_id_field: str | None = None
    associations: tuple[tuple[str, str], ...] = ()
    purpose: str = "update"

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "external_id_field": self.external_id_field,
            "associations": [list(pair) for pair in self.associations],
            "purpose": self.purpose,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboxPayload:
        return cls(
            fields=dict(data.get("fields") or {}),
            external_id_field=data.get("external_id_field"),
            associations=tuple((str(o), str(i)) for o, i in data.get("associations") or ()),
            purpose=str(data.get("purpose") or "update"),
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
        self._retry_later: set[int] = set()

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
        policy = getattr(self.adapter, "retry", None)
        if isinstance(policy, RetryPolicy):
            policy.sleep(policy.backoff(failed_passes))

    def _drain_once(self, *, final: bool, last_chance: bool) -> int:
        connection = self.adapter.connection
        attempted: set[int] = set()
        sent = 0
        while True:
            with self.sessions.begin() as session:
                fetched = Outbox(session).pending(connection, limit=self.batch_size * FETCH_BATCHES, lock=True)
            fresh = [m for m in fetched if m.id not in attempted]
            if not fresh:
                return sent
            groups: dict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
            for message in fresh:
                groups[(message.object, message.operation.value)].append(message)
            batch: list[OutboxMessage] = []
            for messages in groups.values():
                take = len(messages) if final else len(messages) - len(messages) % self.batch_size
                batch.extend(messages[:take])
            if not batch:
                return sent
            attempted.update(m.id for m in batch)
            sent += self._send(batch, last_chance=last_chance)
            if not final and len(fetched) < self.batch_size * FETCH_BATCHES:
                return sent

    def _send(self, messages: list[OutboxMessage], *, last_chance: bool) -> int:
        ops = [to_write_op(m) for m in messages]
        try:
            results = self.adapter.write(ops)
        except CrmError as exc:
            # The whole call failed after retries: keep every message for the next drain.
            with self.sessions.begin() as session:
                outbox = Outbox(session)
                for message in messages:
                    outbox.mark_failed(message.id, f"{exc.code or type(exc).__name__}: {exc}", retriable=True)
            raise
        sent: list[tuple[int, str | None, dict[str, Any] | None]] = []
        audit_entries: list[AuditEntryIn] = []
        with self.sessions.begin() as session:
            outbox = Outbox(session)
            audit = Audit(session)
            for message, result in zip(messages, results, strict=True):
                if result.success:
                    sent.append((message.id, result.crm_id if message.crm_id is None else None,
                                 {"id": result.crm_id, "created": result.created}))
                    audit_entries.extend(self._count_success(message, result))
                else:
                    self._record_failure(outbox, audit, message, result, last_chance=last_chance)
            if sent:
                outbox.mark_sent_many(sent, now=self.now())
            if audit_entries:
                audit.append_many(audit_entries)
        if self.on_sent is not None:
            self.on_sent(len(messages))
        return len(sent)

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
        return []

    def _record_failure(
        self, outbox: Outbox, audit: Audit, message: OutboxMessage, result: WriteResult, *, last_chance: bool
    ) -> None:
        error = result.error
        code = (error.code if error is not None else None) or "UNKNOWN_ERROR"
        text = str(error) if error is not None else "the CRM gave no reason"
        retriable = bool(getattr(error, "retriable", False))
        failed = outbox.mark_failed(message.id, f"{code}: {text}", retriable=retriable)
        if retriable and failed.status.value != "dead":
            self._retry_later.add(message.id)
            if not last_chance:
                return
        failure = WriteFailure(message.object, message.crm_id, message.operation.value, code, text)
        self.summary.write_failures.append(failure)
        audit.append(
            message.connection,
            "write_failed",
            object_name=message.object,
            crm_id=message.crm_id,
            run_id=self.summary.run_id,
            detail={"code": code, "message": text, "retriable": retriable,
                    "idempotency_key": message.idempotency_key,
                    "fields": getattr(error, "fields", None) or []},
            at=self.now(),
        )
        log.warning("%s refused %s", message.connection, failure)
