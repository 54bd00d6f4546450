"""Record snapshots: the last canonical form of each CRM record, to tell what changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.store._types import content_hash
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    RecordRow,
)
from connector.store.repositories._common import (
    insert_or_ignore,
    json_object,
    optional_text,
    text_value,
    when,
)


@dataclass(frozen=True)
class RecordSnapshot:
    """The last canonical form Relay saw of one CRM record."""

    connection: str
    object: str
    crm_id: str
    kind: str
    canonical: dict[str, Any]
    content_hash: str
    relay_id: str | None
    deleted: bool
    merged_into: str | None
    first_seen: datetime
    last_seen: datetime


def _snapshot(row: RecordRow) -> RecordSnapshot:
    return RecordSnapshot(
        connection=row.connection,
        object=row.object,
        crm_id=row.crm_id,
        kind=row.kind,
        canonical=dict(row.canonical),
        content_hash=row.content_hash,
        relay_id=row.relay_id,
        deleted=row.deleted,
        merged_into=row.merged_into,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )


class Records:
    """Repository of record snapshots. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, connection: str, object_name: str, crm_id: str) -> RecordSnapshot | None:
        """Return the snapshot of one CRM record, or ``None`` if Relay never saw it."""
        row = self._session.get(
            RecordRow, (connection, object_name, crm_id), populate_existing=True
        )
        return _snapshot(row) if row else None

    def upsert_snapshot(
        self,
        connection: str,
        object_name: str,
        crm_id: str,
        *,
        kind: str,
        canonical: Mapping[str, Any],
        relay_id: str | None = None,
        deleted: bool = False,
        merged_into: str | None = None,
        seen_at: datetime | None = None,
    ) -> bool:
        """Store the latest canonical form of a CRM record.

        Args:
            connection: Connection name.
            object_name: CRM object, e.g. ``"Lead"`` or ``"contacts"``.
            crm_id: The record's id in the CRM.
            kind: Entity kind, e.g. ``"person"`` or ``"account"``.
            canonical: The canonical record (JSON-like; datetimes must be aware).
            relay_id: The identity it belongs to; ``None`` keeps the stored one.
            deleted: Whether the CRM reports the record deleted.
            merged_into: The CRM id it was merged into, if any.
            seen_at: When it was read; defaults to now.

        Returns:
            ``True`` if the record is new or its content, deleted flag or merge
            target changed; ``False`` if it is as last seen.
        """
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
            self._session,
            RecordRow,
            {
                "connection": connection,
                "object": object_name,
                "crm_id": crm_id,
                "kind": kind,
                "canonical": document,
                "content_hash": digest,
                "relay_id": relay_id,
                "deleted": bool(deleted),
                "merged_into": merged_into,
                "first_seen": at,
                "last_seen": at,
            },
            conflict_columns=["connection", "object", "crm_id"],
            returning=[RecordRow.crm_id],
        )
        if inserted is not None:
            return True
        current = self.get(connection, object_name, crm_id)
        assert current is not None
        changed = (
            current.content_hash != digest
            or current.deleted != bool(deleted)
            or current.merged_into != merged_into
        )
        values: dict[str, Any] = {"last_seen": max(at, current.last_seen), "kind": kind}
        if changed:
            values.update(
                canonical=document,
                content_hash=digest,
                deleted=bool(deleted),
                merged_into=merged_into,
            )
        if relay_id is not None:
            values["relay_id"] = relay_id
        self._session.execute(
            update(RecordRow)
            .where(
                RecordRow.connection == connection,
                RecordRow.object == object_name,
                RecordRow.crm_id == crm_id,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return changed

    def for_identity(self, relay_id: str) -> list[RecordSnapshot]:
        """Return every snapshot linked to the identity ``relay_id``."""
        rows = self._session.scalars(
            select(RecordRow)
            .where(RecordRow.relay_id == relay_id)
            .order_by(RecordRow.connection, RecordRow.object, RecordRow.crm_id)
            .execution_options(populate_existing=True)
        )
        return [_snapshot(row) for row in rows]

    def live_of_kind(self, connection: str, kind: str) -> list[RecordSnapshot]:
        """Every snapshot of ``kind`` (e.g. ``account``) of ``connection`` not deleted or merged away."""
        rows = self._session.scalars(
            select(RecordRow)
            .where(
                RecordRow.connection == connection,
                RecordRow.kind == kind,
                RecordRow.deleted.is_(False),
                RecordRow.merged_into.is_(None),
            )
            .order_by(RecordRow.object, RecordRow.crm_id)
            .execution_options(populate_existing=True)
        )
        return [_snapshot(row) for row in rows]

    def mark_merged(
        self, connection: str, object_name: str, crm_id: str, merged_into: str, *, seen_at: datetime | None = None
    ) -> bool:
        """Record that a CRM merge folded this record into ``merged_into`` (HubSpot merges).

        Returns:
            ``True`` if the record was known and not yet marked merged into that record.
        """
        at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
        merged_into = text_value(merged_into, f"records[{connection}/{object_name}/{crm_id}].merged_into", CRM_ID_LEN)
        result = self._session.execute(
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

    def mark_deleted(
        self, connection: str, object_name: str, crm_id: str, *, seen_at: datetime | None = None
    ) -> bool:
        """Flag a known record as deleted in the CRM, keeping its last canonical form.

        Returns:
            ``True`` if the record was known and not yet flagged deleted.
        """
        at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
        result = self._session.execute(
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
