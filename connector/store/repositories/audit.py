"""The audit log: append-only record of every decision Relay acted on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    AuditAction,
    AuditRow,
)
from connector.store.repositories._common import json_object, optional_text, text_value, when

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
        action_text = text_value(str(action), "audit_log.action", ACTION_LEN)
        where = f"audit_log[{action_text}]"
        row = self._session.execute(
            insert(AuditRow)
            .values(
                at=when(at, f"{where}.at"),
                run_id=run_id,
                connection=text_value(connection, f"{where}.connection", CONNECTION_LEN),
                object=optional_text(object_name, f"{where}.object", OBJECT_LEN),
                crm_id=optional_text(crm_id, f"{where}.crm_id", CRM_ID_LEN),
                relay_id=optional_text(relay_id, f"{where}.relay_id", RELAY_ID_LEN),
                action=action_text,
                rules_version=optional_text(rules_version, f"{where}.rules_version", 128),
                detail=json_object(detail, f"{where}.detail"),
            )
            .returning(AuditRow.id)
        ).one()
        entry_id: int = row[0]
        return entry_id

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

    def for_run(self, run_id: int, *, limit: int = 10_000) -> list[AuditEntry]:
        """Return the entries a sync run wrote, oldest first."""
        rows = self._session.scalars(
            select(AuditRow).where(AuditRow.run_id == run_id).order_by(AuditRow.id).limit(limit)
        )
        return [_entry(row) for row in rows]
