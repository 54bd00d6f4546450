"""The audit log: append-only record of every decision Relay acted on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    AuditAction,
    AuditRow,
)
from connector.store.repositories._common import (
    TextChecks,
    chunked,
    json_object,
    optional_text,
    table_of,
    text_value,
    utcnow,
    when,
)

ACTION_LEN = 64


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    run_id: int | None
    connection: str
    object: str | None
    crm_id: str | None
    relay_id: str | None
    action: str
    rules_version: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditEntryIn:
    """One audit entry to append with :meth:`Audit.append_many` (the parameters of :meth:`Audit.append`)."""

    connection: str
    action: AuditAction | str
    object_name: str | None = None
    crm_id: str | None = None
    relay_id: str | None = None
    run_id: int | None = None
    rules_version: str | None = None
    detail: Mapping[str, Any] | None = field(default=None, hash=False)
    at: datetime | None = None


def _values(entry: AuditEntryIn, index: int | None, now: datetime | None, texts: TextChecks) -> dict[str, Any]:
    """Checked column values of one entry.

    Errors name ``audit_log[#<index> <object>/<crm_id> <action>].<field>`` (or
    ``audit_log[<action>]`` without an index). Those names are only built when a check
    fails: on a page of thousands of entries the f-strings would cost more than the checks.
    """
    try:
        action = texts.text(str(entry.action), "audit_log.action", ACTION_LEN)
        return {
            "at": now if entry.at is None and now is not None else when(entry.at, "audit_log.at"),
            "run_id": entry.run_id,
            "connection": texts.text(entry.connection, "audit_log.connection", CONNECTION_LEN),
            "object": texts.optional(entry.object_name, "audit_log.object", OBJECT_LEN),
            "crm_id": optional_text(entry.crm_id, "audit_log.crm_id", CRM_ID_LEN),
            "relay_id": optional_text(entry.relay_id, "audit_log.relay_id", RELAY_ID_LEN),
            "action": action,
            "rules_version": texts.optional(entry.rules_version, "audit_log.rules_version", 128),
            "detail": json_object(entry.detail, "audit_log.detail"),
        }
    except InvalidStoreValue:
        _explain(entry, index, now)
        raise


def _explain(entry: AuditEntryIn, index: int | None, now: datetime | None) -> None:
    """Check an entry that failed again, field by field in the same order, raising the error that names it."""
    label = None if index is None else _label(index, entry)
    action = text_value(str(entry.action), "audit_log.action" if label is None else f"audit_log[{label}].action",
                        ACTION_LEN)
    where = f"audit_log[{action}]" if label is None else f"audit_log[{label} {action}]"
    if entry.at is not None or now is None:
        when(entry.at, f"{where}.at")
    text_value(entry.connection, f"{where}.connection", CONNECTION_LEN)
    optional_text(entry.object_name, f"{where}.object", OBJECT_LEN)
    optional_text(entry.crm_id, f"{where}.crm_id", CRM_ID_LEN)
    optional_text(entry.relay_id, f"{where}.relay_id", RELAY_ID_LEN)
    optional_text(entry.rules_version, f"{where}.rules_version", 128)
    json_object(entry.detail, f"{where}.detail")


def _label(index: int, entry: AuditEntryIn) -> str:
    record = "/".join(str(part) for part in (entry.object_name, entry.crm_id) if part is not None)
    return f"#{index}" + (f" {record}" if record else "")


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        run_id=row.run_id,
        connection=row.connection,
        object=row.object,
        crm_id=row.crm_id,
        relay_id=row.relay_id,
        action=row.action,
        rules_version=row.rules_version,
        detail=dict(row.detail),
    )


class Audit:
    """Append-only repository of the audit log: no update or delete, by design.

    The database refuses UPDATE and DELETE on ``audit_log`` (triggers), so not even
    raw SQL can rewrite history.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def append(
        self,
        connection: str,
        action: AuditAction | str,
        *,
        object_name: str | None = None,
        crm_id: str | None = None,
        relay_id: str | None = None,
        run_id: int | None = None,
        rules_version: str | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append one audit entry.

        Args:
            connection: Connection the decision concerns.
            action: e.g. ``assigned``, ``scored``, ``field_update``, ``task_created``,
                ``quarantined``, ``merged``, ``deleted`` (see :class:`AuditAction`).
            object_name: CRM object of the record, if any.
            crm_id: CRM id of the record, if any.
            relay_id: Identity of the record, if known.
            run_id: Sync run that made the decision, if any.
            rules_version: Version (hash) of the rules that decided.
            detail: What was decided and why (JSON-like).
            at: When; defaults to now.

        Returns:
            The entry's id.
        """
        values = _values(
            AuditEntryIn(
                connection=connection,
                action=action,
                object_name=object_name,
                crm_id=crm_id,
                relay_id=relay_id,
                run_id=run_id,
                rules_version=rules_version,
                detail=detail,
                at=at,
            ),
            None,
            None,
            TextChecks(),
        )
        row = self._session.execute(insert(AuditRow).values(**values).returning(AuditRow.id)).one()
        entry_id: int = row[0]
        return entry_id

    def append_many(self, entries: Sequence[AuditEntryIn]) -> int:
        """Append many audit entries, in order, with one executemany INSERT per 500.

        Every entry is checked before anything is written, so a bad one appends none.
        Entries without ``at`` share one timestamp (now).

        Args:
            entries: The entries, as :meth:`append` takes them.

        Returns:
            How many entries were appended.

        Raises:
            InvalidStoreValue: If an entry is malformed; the message names its position,
                record and field, e.g. ``audit_log[#3 Lead/00Q1 assigned].crm_id``.
        """
        now = utcnow()
        texts = TextChecks()
        rows = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, AuditEntryIn):
                raise InvalidStoreValue(
                    f"audit_log[#{index}]: expected an AuditEntryIn, got {type(entry).__name__}"
                )
            rows.append(_values(entry, index, now, texts))
        table = table_of(AuditRow)
        for chunk in chunked(rows):
            self._session.execute(insert(table), list(chunk))
        return len(rows)

    def for_record(self, connection: str, object_name: str, crm_id: str) -> list[AuditEntry]:
        """Return the audit trail of one CRM record, oldest first."""
        rows = self._session.scalars(
            select(AuditRow)
            .where(
                AuditRow.connection == connection,
                AuditRow.object == object_name,
                AuditRow.crm_id == crm_id,
            )
            .order_by(AuditRow.id)
        )
        return [_entry(row) for row in rows]

    def of_action(self, action: str, *, limit: int = 10_000) -> list[AuditEntry]:
        """Return the entries of one action (``handed_off``...), oldest first."""
        rows = self._session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id).limit(limit))
        return [_entry(row) for row in rows]

    def for_run(self, run_id: int, *, limit: int = 10_000) -> list[AuditEntry]:
        """Return the entries a sync run wrote, oldest first."""
        rows = self._session.scalars(
            select(AuditRow).where(AuditRow.run_id == run_id).order_by(AuditRow.id).limit(limit)
        )
        return [_entry(row) for row in rows]
