"""Quarantine: CRM records Relay could not process, kept with the reason for a human to look at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import CONNECTION_LEN, CRM_ID_LEN, OBJECT_LEN, QuarantineRow
from connector.store.repositories._common import (
    chunked,
    json_object,
    optional_text,
    table_of,
    text_value,
    utcnow,
    when,
)

REASON_LEN = 10_000


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


@dataclass(frozen=True)
class QuarantineIn:
    """One bad record to keep aside with :meth:`Quarantine.add_many` (the parameters of :meth:`Quarantine.add`)."""

    connection: str
    object_name: str
    reason: str
    payload: Mapping[str, Any] = field(hash=False)
    crm_id: str | None = None
    run_id: int | None = None
    at: datetime | None = None


def _values(entry: QuarantineIn, now: datetime) -> dict[str, Any]:
    """Checked column values of one entry; errors name ``quarantine[connection/object/crm_id]``."""
    where = f"quarantine[{entry.connection}/{entry.object_name}/{entry.crm_id}]"
    return {
        "connection": text_value(entry.connection, "quarantine.connection", CONNECTION_LEN),
        "object": text_value(entry.object_name, "quarantine.object", OBJECT_LEN),
        "crm_id": optional_text(entry.crm_id, f"{where}.crm_id", CRM_ID_LEN),
        "reason": text_value(entry.reason, f"{where}.reason", REASON_LEN),
        "payload": json_object(entry.payload, f"{where}.payload"),
        "at": now if entry.at is None else when(entry.at, f"{where}.at"),
        "run_id": entry.run_id,
    }


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
        (entry_id,) = self.add_many([QuarantineIn(connection, object_name, reason, payload, crm_id, run_id, at)])
        return entry_id

    def add_many(self, entries: Sequence[QuarantineIn]) -> list[int]:
        """Keep many bad records aside, in order, as :meth:`add` does for each.

        Per 500 entries, one multi-row ``INSERT ... RETURNING id``. Every entry is
        checked before anything is written, so a malformed one adds none. Entries
        without ``at`` share one timestamp (now).

        Args:
            entries: The records, as :meth:`add` takes them.

        Returns:
            The new entries' ids, in the order given (ascending).

        Raises:
            InvalidStoreValue: If an entry is malformed; the message names the record
                and field, e.g. ``quarantine[sf-prod/Lead/00Q1].reason: must not be empty``.
        """
        now = utcnow()
        rows = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, QuarantineIn):
                raise InvalidStoreValue(f"quarantine[#{index}]: expected a QuarantineIn, got {type(entry).__name__}")
            rows.append(_values(entry, now))
        table = table_of(QuarantineRow)
        ids: list[int] = []
        for chunk in chunked(rows):
            # Rows are inserted in the order given and take ascending ids (rowid, sequence),
            # so sorting the ids pairs them with the entries without a sentinel column
            # (which would make SQLite insert row by row).
            ids.extend(sorted(self._session.scalars(insert(table).returning(table.c.id), list(chunk))))
        return ids

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
