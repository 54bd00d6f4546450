"""Quarantine: CRM records Relay could not process, kept with the reason for a human to look at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.store.models import CONNECTION_LEN, CRM_ID_LEN, OBJECT_LEN, QuarantineRow
from connector.store.repositories._common import json_object, optional_text, text_value, when


@dataclass(frozen=True)
class QuarantinedRecord:
    """A record kept aside, with why."""

    id: int
    connection: str
    object: str
    crm_id: str | None
    reason: str
    payload: dict[str, Any]
    at: datetime
    run_id: int | None


class Quarantine:
    """Repository of quarantined records. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        connection: str,
        object_name: str,
        reason: str,
        payload: Mapping[str, Any],
        *,
        crm_id: str | None = None,
        run_id: int | None = None,
        at: datetime | None = None,
    ) -> int:
        """Keep a bad record aside with the reason it was refused.

        Args:
            connection: Connection it came from.
            object_name: CRM object.
            reason: What is wrong, naming the field (e.g. ``"Email: 'x@' is not an email"``).
            payload: The record as received (JSON-like).
            crm_id: Its CRM id, if it has one.
            run_id: The sync run that read it.
            at: When; defaults to now.

        Returns:
            The quarantine entry's id.
        """
        where = f"quarantine[{connection}/{object_name}/{crm_id}]"
        row = self._session.execute(
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

    def list(
        self, connection: str, *, run_id: int | None = None, limit: int = 100
    ) -> list[QuarantinedRecord]:
        """Return the newest quarantined records of ``connection`` (of one run, if given)."""
        query = select(QuarantineRow).where(QuarantineRow.connection == connection)
        if run_id is not None:
            query = query.where(QuarantineRow.run_id == run_id)
        rows = self._session.scalars(query.order_by(QuarantineRow.id.desc()).limit(limit))
        return [
            QuarantinedRecord(
                id=row.id,
                connection=row.connection,
                object=row.object,
                crm_id=row.crm_id,
                reason=row.reason,
                payload=dict(row.payload),
                at=row.at,
                run_id=row.run_id,
            )
            for row in rows
        ]
