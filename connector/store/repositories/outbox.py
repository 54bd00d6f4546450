"""The outbox: CRM writes decided in a transaction, sent later by the writer, each exactly once."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Row, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from connector.store._types import scrub_text
from connector.store.errors import (
    IdempotencyKeyConflict,
    InvalidStoreValue,
    OutboxMessageNotFound,
    StoreError,
)
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    HOLDER_LEN,
    OBJECT_LEN,
    OutboxOperation,
    OutboxRow,
    OutboxStatus,
)
from connector.store.repositories._common import (
    aware,
    chunked,
    enum_value,
    insert_many_or_ignore,
    is_postgresql,
    json_object,
    optional_text,
    table_of,
    text_value,
    utcnow,
    when,
)

IDEMPOTENCY_KEY_LEN = 200
DEFAULT_MAX_ATTEMPTS = 5
DRAINABLE = (OutboxStatus.PENDING.value, OutboxStatus.FAILED.value)


@dataclass(frozen=True)
class OutboxMessage:
    """One CRM write in the outbox."""

    id: int
    connection: str
    object: str
    operation: OutboxOperation
    crm_id: str | None
    payload: dict[str, Any]
    idempotency_key: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    crm_result: dict[str, Any] | None
    created_at: datetime
    sent_at: datetime | None
    run_id: int | None


@dataclass(frozen=True)
class MessageStatus:
    """Where one outbox message stands, without its payload (see :meth:`Outbox.superseded_by`)."""

    id: int
    idempotency_key: str
    object: str
    crm_id: str | None
    status: OutboxStatus
    last_error: str | None


@dataclass(frozen=True)
class OutboxMessageIn:
    """One CRM write to queue with :meth:`Outbox.enqueue_many` (the parameters of :meth:`Outbox.enqueue`)."""

    connection: str
    object_name: str
    operation: OutboxOperation | str
    payload: Mapping[str, Any] = field(hash=False)
    idempotency_key: str
    crm_id: str | None = None


# What an idempotency key stands for: a second write with the same key must match it.
_Identity = tuple[str, str, str, str | None]


def _describe(identity: _Identity) -> str:
    return "/".join(map(str, identity))


def _message(row: OutboxRow | Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        connection=row.connection,
        object=row.object,
        operation=OutboxOperation(row.operation),
        crm_id=row.crm_id,
        payload=dict(row.payload),
        idempotency_key=row.idempotency_key,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        crm_result=None if row.crm_result is None else dict(row.crm_result),
        created_at=row.created_at,
        sent_at=row.sent_at,
        run_id=row.run_id,
    )


def _identity_of(row: Mapping[str, Any]) -> _Identity:
    return (row["connection"], row["object"], row["operation"], row["crm_id"])


def _refuse_conflicts(
    proposed: Mapping[str, Mapping[str, Any]], existing: Mapping[str, _Identity]
) -> None:
    """Raise if a key already in the outbox stands for another write than the one proposed."""
    for key, identity in existing.items():
        wanted = _identity_of(proposed[key])
        if identity != wanted:
            raise IdempotencyKeyConflict(key, _describe(identity), _describe(wanted))


def merge_update_payloads(older: Mapping[str, Any], newer: Mapping[str, Any]) -> dict[str, Any]:
    """One update payload standing for an older and a newer update of the same record.

    Update payloads carry ``fields`` (CRM field -> value) and may list some of them in
    ``hygiene_fields`` (clean-up rewrites, as opposed to decisions). The newer payload
    wins field by field; the older one only adds fields the newer one does not set, and
    such a field stays a hygiene field if it was one.
    """
    merged = dict(newer)
    new_fields = dict(newer.get("fields") or {})
    old_fields = dict(older.get("fields") or {})
    carried = {name: value for name, value in old_fields.items() if name not in new_fields}
    merged["fields"] = {**carried, **new_fields}
    old_hygiene = [f for f in older.get("hygiene_fields") or [] if f in carried]
    new_hygiene = list(newer.get("hygiene_fields") or [])
    if old_hygiene or new_hygiene:
        merged["hygiene_fields"] = list(dict.fromkeys(new_hygiene + old_hygiene))
    old_canonical = {k: v for k, v in dict(older.get("canonical") or {}).items() if k in carried}
    if old_canonical or newer.get("canonical"):
        merged["canonical"] = {**old_canonical, **dict(newer.get("canonical") or {})}
    return merged


class Outbox:
    """Repository of the outbox. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def enqueue(
        self,
        connection: str,
        object_name: str,
        operation: OutboxOperation | str,
        payload: Mapping[str, Any],
        idempotency_key: str,
        *,
        crm_id: str | None = None,
        run_id: int | None = None,
        now: datetime | None = None,
    ) -> OutboxMessage:
        """Queue a CRM write, once per idempotency key.

        Enqueuing the same key again adds no row and returns the existing message
        (whatever its status), so a retried page never writes twice. A new update of a
        record takes over the record's older updates still waiting (see
        :meth:`enqueue_many`, of which this is the one-message case).

        Args:
            connection: Connection to write to.
            object_name: CRM object, e.g. ``"Task"``.
            operation: ``create``, ``update`` or ``upsert``.
            payload: Canonical or CRM fields to write (JSON-like).
            idempotency_key: Unique key of this write, e.g. ``"task:<relay_id>:sla-1h"``.
            crm_id: The record to update, if any.
            run_id: The sync run that decided the write.
            now: Creation time; defaults to now.

        Returns:
            The new message, or the existing one with this key.

        Raises:
            IdempotencyKeyConflict: If the key already belongs to a different write
                (another connection, object, operation or record).
        """
        message = OutboxMessageIn(connection, object_name, operation, payload, idempotency_key, crm_id=crm_id)
        self.enqueue_many([message], run_id=run_id, now=when(now, "outbox.enqueue now"))
        found = self.by_key(scrub_text(idempotency_key))
        assert found is not None
        return found

    def enqueue_many(
        self,
        messages: Sequence[OutboxMessageIn],
        *,
        run_id: int | None = None,
        now: datetime | None = None,
    ) -> int:
        """Queue many CRM writes, each once per idempotency key, in a few statements.

        The same guarantees as :meth:`enqueue`, for a whole page: a key already in the
        outbox (or earlier in ``messages``) adds no row, whatever its payload; a key
        that already stands for a different write (connection, object, operation or
        record) is an error. Everything is checked before anything is written.

        Per 500 messages: one SELECT of the keys already there, one executemany
        ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING``; a key a concurrent
        transaction inserted in between is checked with one more SELECT.

        Args:
            messages: The writes, as :meth:`enqueue` takes them.
            run_id: The sync run that decided them.
            now: Creation time; defaults to now.

        Returns:
            How many messages were new (rows added).

        Raises:
            IdempotencyKeyConflict: If a key already belongs to a different write.
            InvalidStoreValue: If a message is malformed (the error names its key and field).
        """
        created_at = utcnow() if now is None else when(now, "outbox.enqueue_many now")
        rows: dict[str, dict[str, Any]] = {}
        for index, message in enumerate(messages):
            if not isinstance(message, OutboxMessageIn):
                raise InvalidStoreValue(
                    f"outbox.enqueue_many[#{index}]: expected an OutboxMessageIn, got {type(message).__name__}"
                )
            row = self._checked(message, run_id, created_at)
            key = row["idempotency_key"]
            first = rows.get(key)
            if first is None:
                rows[key] = row
            elif _identity_of(first) != _identity_of(row):
                raise IdempotencyKeyConflict(
                    key, _describe(_identity_of(first)), _describe(_identity_of(row))
                )
        added = 0
        for chunk in chunked(list(rows)):
            existing = self._identities(chunk)
            _refuse_conflicts(rows, existing)
            self._supersede_older_updates([rows[key] for key in chunk if key not in existing])
            # In key order, so two transactions inserting the same keys cannot deadlock.
            fresh = [rows[key] for key in sorted(chunk) if key not in existing]
            inserted = {
                key
                for (key,) in insert_many_or_ignore(
                    self._session, OutboxRow, fresh, ["idempotency_key"], ["idempotency_key"]
                )
            }
            added += len(inserted)
            raced = [row["idempotency_key"] for row in fresh if row["idempotency_key"] not in inserted]
            if raced:
                _refuse_conflicts(rows, self._identities(raced))
        return added

    def _supersede_older_updates(self, fresh: Sequence[dict[str, Any]]) -> None:
        """Let each new update of a record take over the record's older updates still waiting.

        A stale update sent after a newer one would overwrite the newer decision (an
        older one refused for a moment is retried in a later pass). So the older
        waiting (pending or failed) updates of the same record are folded into the new
        one, whose own values win (see :func:`merge_update_payloads`), and marked dead
        with ``last_error`` "superseded by <key>" and ``crm_result``
        ``{"superseded_by": <key>}``: they are never sent. Two new updates of one record
        in the chunk end the same way: the later takes over the earlier, which is
        inserted dead (as if they had been enqueued one after the other, and so the CRM
        never gets one record twice in a batch). One SELECT and one executemany UPDATE
        for the whole chunk.
        """
        updates = [row for row in fresh if row["operation"] == OutboxOperation.UPDATE.value]
        if not updates:
            return
        table = table_of(OutboxRow)
        records = {(row["connection"], row["object"], row["crm_id"]) for row in updates}
        older: dict[tuple[str, str, str], list[Any]] = {}
        for connection in {c for c, _, _ in records}:
            crm_ids = sorted({i for c, _, i in records if c == connection})
            for ids in chunked(crm_ids):
                query = (
                    select(table.c.id, table.c.object, table.c.crm_id, table.c.payload)
                    .where(
                        table.c.connection == connection,
                        table.c.operation == OutboxOperation.UPDATE.value,
                        table.c.status.in_(DRAINABLE),
                        table.c.crm_id.in_(list(ids)),
                    )
                    .order_by(table.c.id)
                )
                if is_postgresql(self._session):
                    query = query.with_for_update()
                for found in self._session.execute(query):
                    if (connection, found.object, found.crm_id) in records:
                        older.setdefault((connection, found.object, found.crm_id), []).append(found)
        superseded: list[dict[str, Any]] = []
        earlier: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in updates:
            record = (row["connection"], row["object"], row["crm_id"])
            key = row["idempotency_key"]
            for found in older.pop(record, []):
                row["payload"] = merge_update_payloads(dict(found.payload), row["payload"])
                superseded.append({
                    "b_id": found.id,
                    "b_error": f"superseded by {key}",
                    "b_result": {"superseded_by": key},
                })
            # A page may hold two updates of one record: the later takes over the earlier,
            # which is stored dead, as if the two had been enqueued one after the other.
            before = earlier.get(record)
            if before is not None:
                row["payload"] = merge_update_payloads(before["payload"], row["payload"])
                before.update(status=OutboxStatus.DEAD.value, last_error=f"superseded by {key}",
                              crm_result={"superseded_by": key})
            earlier[record] = row
        statement = (
            update(table)
            # No IN (...) here: an expanding list cannot go with executemany.
            .where(table.c.id == bindparam("b_id"),
                   or_(*(table.c.status == status for status in DRAINABLE)))
            .values(
                status=OutboxStatus.DEAD.value,
                last_error=bindparam("b_error", type_=table.c.last_error.type),
                crm_result=bindparam("b_result", type_=table.c.crm_result.type),
            )
        )
        superseded.sort(key=lambda values: int(values["b_id"]))
        for batch in chunked(superseded):
            self._session.execute(statement, list(batch))

    def superseded_by(self, keys: Sequence[str]) -> dict[str, MessageStatus]:
        """Where the message that finally stands for each of ``keys`` is, following "superseded by" links.

        A key whose message was superseded (see :meth:`enqueue_many`) answers with the
        message that took it over (after at most 20 links); a key not in the outbox is
        left out. Payloads are not read: a writer asks this for every task it holds back.
        """
        table = table_of(OutboxRow)
        columns = (table.c.id, table.c.idempotency_key, table.c.object, table.c.crm_id, table.c.status,
                   table.c.last_error, table.c.crm_result)
        answer: dict[str, MessageStatus] = {}
        wanted = {key: key for key in keys}
        for _ in range(20):
            if not wanted:
                break
            found = {
                row.idempotency_key: row
                for row in self._session.execute(
                    select(*columns).where(table.c.idempotency_key.in_(sorted(set(wanted.values()))))
                )
            }
            following: dict[str, str] = {}
            for key, current in wanted.items():
                row = found.get(current)
                if row is None:
                    continue
                status = OutboxStatus(row.status)
                successor = (row.crm_result or {}).get("superseded_by")
                if status is OutboxStatus.DEAD and isinstance(successor, str) and successor != current:
                    following[key] = successor
                answer[key] = MessageStatus(row.id, row.idempotency_key, row.object, row.crm_id, status,
                                            row.last_error)
            wanted = following
        return answer

    def replace_payload(self, message_id: int, payload: Mapping[str, Any], error: str) -> OutboxMessage:
        """Give a waiting message a new payload and count the attempt (:meth:`replace_payload_many` of one).

        Raises:
            OutboxMessageNotFound: If there is no such message.
            StoreError: If the message was already sent or is dead.
        """
        return self.replace_payload_many([(message_id, payload, error)])[0]

    def replace_payload_many(self, replacements: Sequence[tuple[int, Mapping[str, Any], str]]) -> list[OutboxMessage]:
        """Give waiting messages new payloads (e.g. without fields the CRM refused) and count the attempts.

        Each replacement is ``(message_id, payload, error)``: the message stays drainable
        (status failed, ``last_error`` = ``error``), keeps its key, and its attempts go up
        by one, as :meth:`replace_payload` does for each, in order. Per 500 messages: one
        SELECT and one executemany UPDATE; everything is checked before anything is written.

        Returns:
            Each message right after its replacement, in the order given.

        Raises:
            OutboxMessageNotFound: If a message does not exist.
            StoreError: If a message was already sent or is dead.
            InvalidStoreValue: If a replacement is malformed (a payload is named by the message's key).
        """
        def replaced(message: OutboxMessage, payload: Mapping[str, Any], error: str) -> OutboxMessage:
            if message.status not in (OutboxStatus.PENDING, OutboxStatus.FAILED):
                raise StoreError(
                    f"outbox message {message.id} ({message.idempotency_key}) is {message.status.value}; "
                    "its payload cannot be replaced"
                )
            return replace(
                message,
                payload=json_object(payload, f"outbox[{message.idempotency_key}].payload"),
                status=OutboxStatus.FAILED,
                attempts=message.attempts + 1,
                last_error=scrub_text(error),
            )

        steps: list[tuple[int, Callable[[OutboxMessage], OutboxMessage]]] = []
        for index, item in enumerate(replacements):
            if not (isinstance(item, tuple) and len(item) == 3):
                raise InvalidStoreValue(
                    f"outbox.replace_payload_many[#{index}]: expected (message_id, payload, error), got {item!r}"
                )
            message_id, payload, error = item
            if not isinstance(payload, Mapping):
                raise InvalidStoreValue(
                    f"outbox.replace_payload_many[#{index}]: the payload must be a mapping, got {type(payload).__name__}"
                )
            error = _error_text(error, f"outbox.replace_payload_many[#{index}]")
            steps.append((_message_id(message_id, f"outbox.replace_payload_many[#{index}]"),
                          partial(replaced, payload=payload, error=error)))
        return self._apply(steps, payloads=True)

    def cancel(self, message_id: int, reason: str) -> OutboxMessage:
        """Give up a waiting message without sending it (:meth:`cancel_many` of one).

        Raises:
            OutboxMessageNotFound: If there is no such message.
            StoreError: If the message was already sent.
        """
        return self.cancel_many([(message_id, reason)])[0]

    def cancel_many(self, cancellations: Sequence[tuple[int, str]]) -> list[OutboxMessage]:
        """Give up waiting messages without sending them, as :meth:`cancel` does for each, in order.

        Each cancellation is ``(message_id, reason)``: the message goes dead with
        ``last_error`` = ``reason``. Per 500 messages: one SELECT and one executemany
        UPDATE; everything is checked before anything is written.

        Returns:
            Each message right after it was cancelled, in the order given.

        Raises:
            OutboxMessageNotFound: If a message does not exist.
            StoreError: If a message was already sent.
            InvalidStoreValue: If a cancellation is malformed.
        """
        def cancelled(message: OutboxMessage, reason: str) -> OutboxMessage:
            if message.status is OutboxStatus.SENT:
                raise StoreError(f"outbox message {message.id} ({message.idempotency_key}) was already sent")
            return replace(message, status=OutboxStatus.DEAD, last_error=reason)

        steps: list[tuple[int, Callable[[OutboxMessage], OutboxMessage]]] = []
        for index, item in enumerate(cancellations):
            where = f"outbox.cancel_many[#{index}]"
            if not (isinstance(item, tuple) and len(item) == 2):
                raise InvalidStoreValue(f"{where}: expected (message_id, reason), got {item!r}")
            reason = _error_text(item[1], where)
            steps.append((_message_id(item[0], where), partial(cancelled, reason=reason)))
        return self._apply(steps, payloads=False)

    def _apply(
        self, steps: Sequence[tuple[int, Callable[[OutboxMessage], OutboxMessage]]], *, payloads: bool
    ) -> list[OutboxMessage]:
        """Apply state changes to messages in order, in memory, then write the final states.

        One SELECT per 500 messages reads them; each step turns a message into its next
        state (or raises, before anything is written); one executemany UPDATE per 500
        writes status, attempts and last error (and the payload, if ``payloads``), in id
        order so two transactions cannot deadlock.

        Returns:
            The state after each step, in order.
        """
        current = self._by_ids({message_id for message_id, _ in steps})
        answers: list[OutboxMessage] = []
        final: dict[int, OutboxMessage] = {}
        for message_id, step in steps:
            message = current.get(message_id)
            if message is None:
                raise OutboxMessageNotFound(message_id)
            message = current[message_id] = final[message_id] = step(message)
            answers.append(message)
        table = table_of(OutboxRow)
        values: dict[str, Any] = {
            "status": bindparam("b_status"),
            "attempts": bindparam("b_attempts", type_=table.c.attempts.type),
            "last_error": bindparam("b_last_error", type_=table.c.last_error.type),
        }
        if payloads:
            values["payload"] = bindparam("b_payload", type_=table.c.payload.type)
        statement = update(table).where(table.c.id == bindparam("b_id")).values(**values)
        rows = [
            {
                "b_id": message.id,
                "b_status": message.status.value,
                "b_attempts": message.attempts,
                "b_last_error": message.last_error,
                **({"b_payload": message.payload} if payloads else {}),
            }
            for message in sorted(final.values(), key=lambda message: message.id)
        ]
        for batch in chunked(rows):
            self._session.execute(statement, list(batch))
        return answers

    def _by_ids(self, ids: Collection[int]) -> dict[int, OutboxMessage]:
        """The messages with these ids that exist (one SELECT per 500)."""
        table = table_of(OutboxRow)
        found: dict[int, OutboxMessage] = {}
        for chunk in chunked(sorted(ids)):
            for row in self._session.execute(select(table).where(table.c.id.in_(list(chunk)))):
                found[row.id] = _message(row)
        return found

    def _checked(
        self, message: OutboxMessageIn, run_id: int | None, created_at: datetime
    ) -> dict[str, Any]:
        key = text_value(message.idempotency_key, "outbox.idempotency_key", IDEMPOTENCY_KEY_LEN)
        where = f"outbox[{key}]"
        connection = text_value(message.connection, f"{where}.connection", CONNECTION_LEN)
        object_name = text_value(message.object_name, f"{where}.object", OBJECT_LEN)
        op = enum_value(OutboxOperation, message.operation, f"{where}.operation")
        crm_id = optional_text(message.crm_id, f"{where}.crm_id", CRM_ID_LEN)
        if op is OutboxOperation.UPDATE and crm_id is None:
            raise InvalidStoreValue(f"{where}.crm_id: an update needs the CRM id of the record")
        return {
            "connection": connection,
            "object": object_name,
            "operation": op.value,
            "crm_id": crm_id,
            "payload": json_object(message.payload, f"{where}.payload"),
            "idempotency_key": key,
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "last_error": None,
            "crm_result": None,
            "created_at": created_at,
            "run_id": run_id,
        }

    def _identities(self, keys: Sequence[str]) -> dict[str, _Identity]:
        """What each of ``keys`` already in the outbox stands for (one SELECT)."""
        table = table_of(OutboxRow)
        found = {
            key: (connection, object_name, operation, crm_id)
            for key, connection, object_name, operation, crm_id in self._session.execute(
                select(
                    table.c.idempotency_key,
                    table.c.connection,
                    table.c.object,
                    table.c.operation,
                    table.c.crm_id,
                ).where(table.c.idempotency_key.in_(list(keys)))
            )
        }
        return found

    def waiting_updates(self, connection: str, records: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[Any]]:
        """The payloads of record updates still waiting to be sent, by ``(object, crm_id)``, oldest first."""
        table = table_of(OutboxRow)
        wanted = set(records)
        found: dict[tuple[str, str], list[Any]] = {}
        for ids in chunked(sorted({crm_id for _, crm_id in wanted})):
            rows = self._session.execute(
                select(table.c.object, table.c.crm_id, table.c.payload)
                .where(table.c.connection == connection, table.c.operation == OutboxOperation.UPDATE.value,
                       table.c.status.in_(DRAINABLE), table.c.crm_id.in_(list(ids)))
                .order_by(table.c.id)
            )
            for obj, crm_id, payload in rows:
                if (obj, crm_id) in wanted:
                    found.setdefault((obj, crm_id), []).append(payload)
        return found

    def get(self, message_id: int) -> OutboxMessage:
        """Return the message with ``message_id``.

        Raises:
            OutboxMessageNotFound: If there is none.
        """
        row = self._session.get(OutboxRow, message_id, populate_existing=True)
        if row is None:
            raise OutboxMessageNotFound(message_id)
        return _message(row)

    def by_key(self, idempotency_key: str) -> OutboxMessage | None:
        """Return the message with this idempotency key, if any."""
        row = self._session.execute(
            select(table_of(OutboxRow))
            .where(OutboxRow.idempotency_key == idempotency_key)
        ).first()
        return _message(row) if row else None

    def pending(
        self, connection: str, limit: int = 200, *, lock: bool = False
    ) -> list[OutboxMessage]:
        """Return messages of ``connection`` waiting to be sent (pending or failed), oldest first.

        Args:
            connection: Connection to drain.
            limit: At most this many (one CRM batch, e.g. 200 for Salesforce).
            lock: On PostgreSQL, lock the rows and skip rows other writers hold
                (``FOR UPDATE SKIP LOCKED``) so several writers share the work.
        """
        if limit <= 0:
            raise InvalidStoreValue(f"outbox.pending limit must be positive, got {limit}")
        table = table_of(OutboxRow)
        query = (
            select(table)
            .where(table.c.connection == connection, table.c.status.in_(DRAINABLE))
            .order_by(table.c.id)
            .limit(limit)
        )
        if lock and is_postgresql(self._session):
            query = query.with_for_update(skip_locked=True)
        return [_message(row) for row in self._session.execute(query)]

    def claim(
        self, connection: str, holder: str, *, now: datetime, lease: timedelta, limit: int = 200
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` messages of ``connection`` waiting to be sent, oldest first, for ``holder``.

        Like :meth:`pending`, for writers that may run side by side (runs of one connection
        on several workers): a message is free when nobody claimed it, its claim ran out
        (the writer died) or ``holder`` claimed it before; a claimed message is not given
        to another writer until ``now + lease``. On PostgreSQL the rows are locked while
        claimed (``FOR UPDATE SKIP LOCKED``), so two writers claiming at once take
        disjoint messages; SQLite's write transaction serialises them.
        """
        if limit <= 0:
            raise InvalidStoreValue(f"outbox.claim limit must be positive, got {limit}")
        holder = text_value(holder, "outbox.claimed_by", HOLDER_LEN)
        at = when(now, "outbox claim time")
        table = table_of(OutboxRow)
        free = or_(table.c.claimed_until.is_(None), table.c.claimed_until < at, table.c.claimed_by == holder)
        query = (
            select(table.c.id)
            .where(table.c.connection == connection, table.c.status.in_(DRAINABLE), free)
            .order_by(table.c.id)
            .limit(limit)
        )
        if is_postgresql(self._session):
            query = query.with_for_update(skip_locked=True)
        ids = list(self._session.scalars(query))
        if not ids:
            return []
        self._session.execute(
            update(table).where(table.c.id.in_(ids)).values(claimed_by=holder, claimed_until=at + lease)
        )
        return [_message(row) for row in self._session.execute(select(table).where(table.c.id.in_(ids))
                                                               .order_by(table.c.id))]

    def release(self, message_ids: Collection[int], holder: str) -> int:
        """Give up ``holder``'s claims on these messages (held back, not sent): any writer may take them at once."""
        table = table_of(OutboxRow)
        done = 0
        for ids in chunked(sorted(set(message_ids))):
            result = self._session.execute(
                update(table).where(table.c.id.in_(list(ids)), table.c.claimed_by == holder)
                .values(claimed_until=None)
            )
            done += int(getattr(result, "rowcount", 0))
        return done

    def release_abandoned(self, connection: str, *, now: datetime, is_gone: Callable[[str], bool]) -> int:
        """Free the live claims on ``connection``'s messages of writers ``is_gone`` says are dead (killed runs).

        A claim otherwise holds until its lease runs out; a run that takes over from a killed
        one on the same host sends what the killed one claimed at once.
        """
        table = table_of(OutboxRow)
        at = when(now, "outbox claim time")
        holders = self._session.scalars(
            select(table.c.claimed_by).distinct()
            .where(table.c.connection == connection, table.c.status.in_(DRAINABLE), table.c.claimed_until >= at)
        )
        gone = sorted(holder for holder in holders if holder and is_gone(holder))
        if not gone:
            return 0
        result = self._session.execute(
            update(table).where(table.c.connection == connection, table.c.claimed_by.in_(gone),
                                table.c.status.in_(DRAINABLE)).values(claimed_until=None)
        )
        return int(getattr(result, "rowcount", 0))

    def mark_sent(
        self,
        message_id: int,
        *,
        crm_result: Mapping[str, Any] | None = None,
        crm_id: str | None = None,
        now: datetime | None = None,
    ) -> OutboxMessage:
        """Record that the CRM accepted the write (:meth:`mark_sent_many` of one).

        Marking an already sent message again changes nothing (the first result is kept).

        Args:
            message_id: The message.
            crm_result: What the CRM answered (JSON-like).
            crm_id: The CRM id of a created record, if the message had none.
            now: Send time; defaults to now.

        Raises:
            OutboxMessageNotFound: If there is no such message.
            StoreError: If the message is dead (given up).
        """
        sent_at = when(now, f"outbox message {message_id} sent_at")
        self.mark_sent_many([(message_id, crm_id, crm_result)], now=sent_at)
        return self.get(message_id)

    def mark_sent_many(
        self,
        results: Sequence[tuple[int, str | None, Mapping[str, Any] | None]],
        *,
        now: datetime | None = None,
    ) -> int:
        """Record that the CRM accepted many writes, as :meth:`mark_sent` does for each.

        Each result is ``(message_id, crm_id, crm_result)``: ``crm_id`` is kept only if
        the message had none, attempts go up by one and the status becomes sent. A
        message already sent keeps its first result (so does a repeated id). Per 500
        results: one SELECT and one executemany UPDATE. Everything is checked before
        anything is written.

        Args:
            results: ``(message_id, crm_id or None, crm_result or None)`` per message.
            now: Send time; defaults to now.

        Returns:
            How many messages were newly marked sent.

        Raises:
            OutboxMessageNotFound: If a message does not exist.
            StoreError: If a message is dead (given up).
            InvalidStoreValue: If a CRM id or result is malformed (named by message key).
        """
        sent_at = utcnow() if now is None else when(now, "outbox.mark_sent_many now")
        wanted: dict[int, tuple[str | None, Mapping[str, Any] | None]] = {}
        for index, result in enumerate(results):
            if not (isinstance(result, tuple) and len(result) == 3):
                raise InvalidStoreValue(
                    f"outbox.mark_sent_many[#{index}]: expected (message_id, crm_id, crm_result), got {result!r}"
                )
            message_id, crm_id, crm_result = result
            if isinstance(message_id, bool) or not isinstance(message_id, int):
                raise InvalidStoreValue(
                    f"outbox.mark_sent_many[#{index}]: message id must be an integer, got {message_id!r}"
                )
            wanted.setdefault(message_id, (crm_id, crm_result))
        table = table_of(OutboxRow)
        updates: list[dict[str, Any]] = []
        for chunk in chunked(list(wanted)):
            found = {
                row.id: row
                for row in self._session.execute(
                    select(table.c.id, table.c.status, table.c.idempotency_key, table.c.crm_id).where(
                        table.c.id.in_(list(chunk))
                    )
                )
            }
            for message_id in chunk:
                row = found.get(message_id)
                if row is None:
                    raise OutboxMessageNotFound(message_id)
                if row.status == OutboxStatus.SENT.value:
                    continue
                if row.status == OutboxStatus.DEAD.value:
                    raise StoreError(
                        f"outbox message {message_id} ({row.idempotency_key}) is dead; it cannot be marked sent"
                    )
                crm_id, crm_result = wanted[message_id]
                where = f"outbox[{row.idempotency_key}]"
                updates.append(
                    {
                        "b_id": message_id,
                        "b_sent_at": sent_at,
                        # like mark_sent: a CRM id is only taken (and checked) if the message has none
                        "b_crm_id": None
                        if row.crm_id is not None
                        else optional_text(crm_id, f"{where}.crm_id", CRM_ID_LEN),
                        "b_crm_result": None
                        if crm_result is None
                        else json_object(crm_result, f"{where}.crm_result"),
                    }
                )
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status != OutboxStatus.SENT.value)
            .values(
                status=OutboxStatus.SENT.value,
                sent_at=bindparam("b_sent_at", type_=table.c.sent_at.type),
                attempts=table.c.attempts + 1,
                crm_id=func.coalesce(table.c.crm_id, bindparam("b_crm_id", type_=table.c.crm_id.type)),
                crm_result=bindparam("b_crm_result", type_=table.c.crm_result.type),
            )
        )
        updates.sort(key=lambda values: int(values["b_id"]))  # row locks in id order: no deadlocks
        for batch in chunked(updates):
            self._session.execute(statement, list(batch))
        return len(updates)

    def mark_failed(
        self,
        message_id: int,
        error: str,
        *,
        retriable: bool = True,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> OutboxMessage:
        """Record a failed attempt; the message is retried until ``max_attempts``, then dead.

        :meth:`mark_failed_many` of one.

        Args:
            message_id: The message.
            error: What went wrong (kept as ``last_error``).
            retriable: ``False`` for errors a retry cannot fix (e.g. a validation
                error from the CRM): the message goes dead at once.
            max_attempts: Attempts after which the message goes dead.

        Raises:
            OutboxMessageNotFound: If there is no such message.
            StoreError: If the message was already sent.
        """
        return self.mark_failed_many([(message_id, error, retriable)], max_attempts=max_attempts)[0]

    def mark_failed_many(
        self,
        failures: Sequence[tuple[int, str, bool]],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> list[OutboxMessage]:
        """Record failed attempts of many messages, as :meth:`mark_failed` does for each, in order.

        Each failure is ``(message_id, error, retriable)``: attempts go up by one and
        ``last_error`` becomes ``error``; the message goes dead when the error is not
        retriable or it reached ``max_attempts``, else it is failed (drainable again).
        Per 500 messages: one SELECT and one executemany UPDATE; everything is checked
        before anything is written.

        Args:
            failures: ``(message_id, error, retriable)`` per failed message.
            max_attempts: Attempts after which a message goes dead.

        Returns:
            Each message right after its failure was recorded, in the order given (its
            status says whether it will be tried again).

        Raises:
            OutboxMessageNotFound: If a message does not exist.
            StoreError: If a message was already sent.
            InvalidStoreValue: If a failure is malformed.
        """
        def failed(message: OutboxMessage, error: str, retriable: bool) -> OutboxMessage:
            if message.status is OutboxStatus.SENT:
                raise StoreError(f"outbox message {message.id} ({message.idempotency_key}) was already sent")
            attempts = message.attempts + 1
            dead = not retriable or attempts >= max_attempts
            status = OutboxStatus.DEAD if dead else OutboxStatus.FAILED
            return replace(message, status=status, attempts=attempts, last_error=error)

        steps: list[tuple[int, Callable[[OutboxMessage], OutboxMessage]]] = []
        for index, item in enumerate(failures):
            where = f"outbox.mark_failed_many[#{index}]"
            if not (isinstance(item, tuple) and len(item) == 3):
                raise InvalidStoreValue(f"{where}: expected (message_id, error, retriable), got {item!r}")
            message_id, error, retriable = item
            if not isinstance(retriable, bool):
                raise InvalidStoreValue(f"{where}: retriable must be True or False, got {retriable!r}")
            error = _error_text(error, where)
            steps.append((_message_id(message_id, where), partial(failed, error=error, retriable=retriable)))
        return self._apply(steps, payloads=False)

    def oldest_unclaimed(self, connection: str, *, now: datetime) -> datetime | None:
        """When the oldest message of ``connection`` waiting to be sent with no live claim was enqueued (None: none waits).

        A message a run enqueued is sent by that run within moments; one still waiting a
        while later was left by a writer that died or gave up (the reconciler sends it).
        """
        at = when(now, "outbox claim time")
        table = table_of(OutboxRow)
        found: datetime | None = self._session.scalar(
            select(func.min(table.c.created_at)).where(
                table.c.connection == connection, table.c.status.in_(DRAINABLE),
                or_(table.c.claimed_until.is_(None), table.c.claimed_until < at),
            )
        )
        return aware(found, "outbox.created_at") if found is not None else None

    def counts(self, connection: str) -> dict[OutboxStatus, int]:
        """Return how many messages of ``connection`` are in each status."""
        rows = self._session.execute(
            select(OutboxRow.status, func.count())
            .where(OutboxRow.connection == connection)
            .group_by(OutboxRow.status)
        )
        found = {OutboxStatus(status): int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in OutboxStatus}


def _message_id(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidStoreValue(f"{where}: message id must be an integer, got {value!r}")
    return value


def _error_text(value: object, where: str) -> str:
    """An error or reason to keep as ``last_error``; a CRM's message may hold a lone surrogate."""
    if not isinstance(value, str):
        raise InvalidStoreValue(f"{where}: expected the error as text, got {type(value).__name__} {value!r}")
    return scrub_text(value)
