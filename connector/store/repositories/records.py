"""Record snapshots: the last canonical form of each CRM record, to tell what changed."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from connector.store._types import content_hash, scrub_text
from connector.store.errors import InvalidStoreValue
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    AssignmentRow,
    AssignmentStatus,
    RecordRow,
)
from connector.store.repositories._common import (
    chunked,
    insert_many_or_ignore,
    is_postgresql,
    json_object,
    optional_text,
    table_of,
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


@dataclass(frozen=True)
class SnapshotIn:
    """One record to store with :meth:`Records.upsert_snapshots` (as :meth:`Records.upsert_snapshot` takes it)."""

    crm_id: str
    kind: str
    canonical: Mapping[str, Any] = field(hash=False)
    relay_id: str | None = None
    deleted: bool = False
    merged_into: str | None = None


@dataclass
class _Pending:
    """Where one record of a page stands while the page is folded in memory."""

    row: dict[str, Any]
    stored: dict[str, Any] | None
    changed: bool


def _content(row: Mapping[str, Any]) -> tuple[str, bool, str | None]:
    return (row["content_hash"], bool(row["deleted"]), row["merged_into"])


def _snapshot(row: RecordRow | Row[Any]) -> RecordSnapshot:
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

    def get_many(self, connection: str, object_name: str, crm_ids: Sequence[str]) -> dict[str, RecordSnapshot]:
        """The stored snapshots of these records of one object, by CRM id (those never read are left out)."""
        found: dict[str, RecordSnapshot] = {}
        for batch in chunked(sorted(set(crm_ids))):  # crm_id IN under an equal object: the index's own order
            rows = self._session.scalars(
                select(RecordRow).where(RecordRow.connection == connection, RecordRow.object == object_name,
                                        RecordRow.crm_id.in_(list(batch)))
                .execution_options(populate_existing=True)
            )
            found.update((row.crm_id, _snapshot(row)) for row in rows)
        return found

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
        """Store the latest canonical form of one CRM record (:meth:`upsert_snapshots` of one).

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
        at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
        item = SnapshotIn(crm_id, kind, canonical, relay_id, deleted, merged_into)
        return bool(self.upsert_snapshots(connection, object_name, [item], seen_at=at))

    def upsert_snapshots(
        self,
        connection: str,
        object_name: str,
        items: Sequence[SnapshotIn],
        *,
        seen_at: datetime | None = None,
    ) -> set[str]:
        """Store the latest canonical form of a page of CRM records, as :meth:`upsert_snapshot` does.

        Per 500 records: one SELECT of the stored hashes, one executemany INSERT of
        the new records, one executemany UPDATE of the changed ones and one of the
        unchanged ones (last seen, kind, identity). A record given twice ends as if
        :meth:`upsert_snapshot` had been called twice in order. Everything is checked
        before anything is written.

        Args:
            connection: Connection name.
            object_name: CRM object, e.g. ``"Lead"``.
            items: The records.
            seen_at: When they were read; defaults to now.

        Returns:
            The CRM ids of the records that are new or whose content, deleted flag or
            merge target changed.

        Raises:
            InvalidStoreValue: If a value is malformed; the message names the record
                (``records[connection/object/crm_id]``) and the field.
        """
        connection = text_value(connection, "records.connection", CONNECTION_LEN)
        object_name = text_value(object_name, "records.object", OBJECT_LEN)
        at = when(seen_at, f"records[{connection}/{object_name}].seen_at")
        rows = [self._checked(connection, object_name, index, item, at) for index, item in enumerate(items)]
        changed: set[str] = set()
        ids = list(dict.fromkeys(row["crm_id"] for row in rows))
        for chunk in chunked(ids):
            wanted = set(chunk)
            page = self._fold(connection, object_name, chunk, [r for r in rows if r["crm_id"] in wanted])
            changed.update(crm_id for crm_id, pending in page.items() if pending.changed)
            changed -= self._write(connection, object_name, page)
        return changed

    @staticmethod
    def _checked(
        connection: str, object_name: str, index: int, item: SnapshotIn, at: datetime
    ) -> dict[str, Any]:
        if not isinstance(item, SnapshotIn):
            raise InvalidStoreValue(
                f"records[{connection}/{object_name}] item #{index}: expected a SnapshotIn, got {type(item).__name__}"
            )
        crm_id = text_value(item.crm_id, f"records[{connection}/{object_name}] item #{index}.crm_id", CRM_ID_LEN)
        where = f"records[{connection}/{object_name}/{crm_id}]"
        document = json_object(item.canonical, f"{where}.canonical")
        return {
            "connection": connection,
            "object": object_name,
            "crm_id": crm_id,
            "kind": text_value(item.kind, f"{where}.kind", 32),
            "canonical": document,
            "content_hash": content_hash(document),
            "relay_id": optional_text(item.relay_id, f"{where}.relay_id", RELAY_ID_LEN),
            "deleted": bool(item.deleted),
            "merged_into": optional_text(item.merged_into, f"{where}.merged_into", CRM_ID_LEN),
            "first_seen": at,
            "last_seen": at,
        }

    def _fold(
        self, connection: str, object_name: str, crm_ids: Sequence[str], rows: Sequence[dict[str, Any]]
    ) -> dict[str, _Pending]:
        """Apply the page's rows, in order, to what is stored (one SELECT); nothing is written."""
        table = table_of(RecordRow)
        stored = {
            row.crm_id: dict(row._mapping)
            for row in self._session.execute(
                select(
                    table.c.crm_id,
                    table.c.content_hash,
                    table.c.deleted,
                    table.c.merged_into,
                    table.c.relay_id,
                    table.c.last_seen,
                ).where(
                    table.c.connection == connection,
                    table.c.object == object_name,
                    table.c.crm_id.in_(list(crm_ids)),
                )
            )
        }
        page: dict[str, _Pending] = {}
        for row in rows:
            crm_id = row["crm_id"]
            pending = page.get(crm_id)
            if pending is None:
                before = stored.get(crm_id)
                if before is None:
                    page[crm_id] = _Pending(dict(row), None, True)
                    continue
                pending = page[crm_id] = _Pending({**before, "first_seen": None}, before, False)
            current = pending.row
            if _content(current) != _content(row):
                pending.changed = True
                for key in ("canonical", "content_hash", "deleted", "merged_into"):
                    current[key] = row[key]
            current["kind"] = row["kind"]
            current["last_seen"] = max(row["last_seen"], current["last_seen"])
            if row["relay_id"] is not None:
                current["relay_id"] = row["relay_id"]
        return page

    def _write(self, connection: str, object_name: str, page: Mapping[str, _Pending]) -> set[str]:
        """Write a folded page: executemany INSERT, UPDATE of changed rows, UPDATE of the rest.

        Returns:
            The records thought new that a concurrent transaction stored first, with
            the same content (so they did not change after all).
        """
        # In key order, so two transactions inserting the same records cannot deadlock.
        new = sorted(
            (pending.row for pending in page.values() if pending.stored is None),
            key=lambda row: str(row["crm_id"]),
        )
        inserted = {
            crm_id
            for (crm_id,) in insert_many_or_ignore(
                self._session, RecordRow, new, ["connection", "object", "crm_id"], ["crm_id"]
            )
        }
        table = table_of(RecordRow)
        key = (
            (table.c.connection == connection)
            & (table.c.object == object_name)
            & (table.c.crm_id == bindparam("b_crm_id"))
        )
        light = {
            "kind": bindparam("b_kind"),
            "last_seen": bindparam("b_last_seen", type_=table.c.last_seen.type),
            "relay_id": func.coalesce(bindparam("b_relay_id", type_=table.c.relay_id.type), table.c.relay_id),
        }
        content_updates: list[dict[str, Any]] = []
        seen_updates: list[dict[str, Any]] = []
        for crm_id, pending in sorted(page.items()):  # row locks in key order: no deadlocks
            if pending.stored is None:
                continue
            row = pending.row
            values = {
                "b_crm_id": crm_id,
                "b_kind": row["kind"],
                "b_last_seen": row["last_seen"],
                "b_relay_id": row["relay_id"],
            }
            if _content(row) != _content(pending.stored):
                content_updates.append(
                    {
                        **values,
                        "b_canonical": row["canonical"],
                        "b_content_hash": row["content_hash"],
                        "b_deleted": row["deleted"],
                        "b_merged_into": row["merged_into"],
                    }
                )
            else:
                seen_updates.append(values)
        if content_updates:
            self._session.execute(
                update(table)
                .where(key)
                .values(
                    **light,
                    canonical=bindparam("b_canonical", type_=table.c.canonical.type),
                    content_hash=bindparam("b_content_hash"),
                    deleted=bindparam("b_deleted", type_=table.c.deleted.type),
                    merged_into=bindparam("b_merged_into"),
                ),
                content_updates,
            )
        if seen_updates:
            self._session.execute(update(table).where(key).values(**light), seen_updates)
        raced = [row for row in new if row["crm_id"] not in inserted]
        if not raced:
            return set()
        # A concurrent transaction stored them first: fold them again over what it stored.
        again = self._fold(connection, object_name, [row["crm_id"] for row in raced], raced)
        unchanged = {crm_id for crm_id, pending in again.items() if not pending.changed}
        return unchanged | self._write(connection, object_name, again)

    def for_identity(self, relay_id: str) -> list[RecordSnapshot]:
        """Return every snapshot linked to the identity ``relay_id``."""
        rows = self._session.execute(
            select(table_of(RecordRow))
            .where(RecordRow.relay_id == relay_id)
            .order_by(RecordRow.connection, RecordRow.object, RecordRow.crm_id)
        )
        return [_snapshot(row) for row in rows]

    def live_of_kind(self, connection: str, kind: str) -> list[RecordSnapshot]:
        """Every snapshot of ``kind`` (e.g. ``account``) of ``connection`` not deleted or merged away."""
        rows = self._session.execute(
            select(table_of(RecordRow))
            .where(
                RecordRow.connection == connection,
                RecordRow.kind == kind,
                RecordRow.deleted.is_(False),
                RecordRow.merged_into.is_(None),
            )
            .order_by(RecordRow.object, RecordRow.crm_id)
        )
        return [_snapshot(row) for row in rows]

    def live_people_of(
        self, connection: str, relay_ids: Collection[str], *, excluding: Collection[tuple[str, str]] = ()
    ) -> list[RecordSnapshot]:
        """The live person records of ``connection`` that belong to these identities (one person's records).

        ``excluding`` names (object, CRM id) records to leave out, e.g. the page being
        decided, whose values the caller holds: their snapshots are not read and parsed again.
        """
        table = table_of(RecordRow)
        left_out: dict[str, list[str]] = {}
        for obj, crm_id in excluding:
            left_out.setdefault(obj, []).append(crm_id)
        found: list[RecordSnapshot] = []
        for batch in chunked(sorted(set(relay_ids))):
            query = (
                select(table)
                .where(
                    table.c.connection == connection,
                    table.c.kind == "person",
                    table.c.relay_id.in_(batch),
                    table.c.deleted.is_(False),
                    table.c.merged_into.is_(None),
                )
                .order_by(table.c.object, table.c.crm_id)
            )
            for obj, crm_ids in sorted(left_out.items()):
                query = query.where(~((table.c.object == obj) & table.c.crm_id.in_(sorted(crm_ids))))
            found.extend(_snapshot(row) for row in self._session.execute(query))
        return found

    def merge_written(self, connection: str, items: Sequence[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Fold values Relay wrote to CRM records into their snapshots, so the snapshots show what the CRMs hold.

        A record decided again from its snapshot (its person routed elsewhere, or another of
        its person's records read) then compares with what Relay already wrote, and writes
        nothing that is already there. Two statements for the whole batch.

        Args:
            connection: The connection.
            items: ``(object, crm_id, canonical values written)``, JSON-ready.

        Returns:
            How many snapshots changed.
        """
        wanted = {(obj, crm_id): dict(values) for obj, crm_id, values in items if values}
        if not wanted:
            return 0
        table = table_of(RecordRow)
        changes: list[dict[str, Any]] = []
        by_object: dict[str, list[str]] = {}
        for obj, crm_id in sorted(wanted):
            by_object.setdefault(obj, []).append(crm_id)
        for obj, crm_ids in by_object.items():
            for batch in chunked(crm_ids):  # crm_id IN under an equal object: a row-value IN made SQLite scan
                rows = self._session.execute(
                    select(table.c.crm_id, table.c.canonical, table.c.content_hash).where(
                        table.c.connection == connection, table.c.object == obj, table.c.crm_id.in_(list(batch)))
                )
                for crm_id, canonical, digest in rows:
                    merged = json_object({**dict(canonical), **wanted[(obj, crm_id)]},
                                         f"records[{connection}/{obj}/{crm_id}].canonical")
                    new_digest = content_hash(merged)
                    if new_digest != digest:
                        changes.append({"b_object": obj, "b_crm_id": crm_id, "b_canonical": merged, "b_hash": new_digest})
        if changes:
            statement = (
                update(table)
                .where(table.c.connection == connection, table.c.object == bindparam("b_object"),
                       table.c.crm_id == bindparam("b_crm_id"))
                .values(canonical=bindparam("b_canonical", type_=table.c.canonical.type),
                        content_hash=bindparam("b_hash"))
            )
            for rows_batch in chunked(changes):
                self._session.execute(statement, list(rows_batch))
        return len(changes)

    def awaiting_owner(self, connection: str, object_name: str) -> list[tuple[RecordSnapshot, str]]:
        """Live people of ``object_name`` with no active assignment whose person has one on another record.

        These are the records that should take the owner decided for the same person
        elsewhere (another CRM, or another record of this one) although nothing about
        them changed, so no incremental read returns them.

        Returns:
            ``(snapshot, owner email of the other record's active assignment)``, by CRM id;
            a record whose person has several such assignments comes once (the earliest).
        """
        records = table_of(RecordRow)
        other = table_of(AssignmentRow).alias("other")
        own = table_of(AssignmentRow).alias("own")
        active = AssignmentStatus.ACTIVE.value
        rows = self._session.execute(
            select(records, other.c.owner_email)
            .join(other, (other.c.relay_id == records.c.relay_id) & (other.c.status == active))
            .where(
                records.c.connection == connection,
                records.c.object == object_name,
                records.c.kind == "person",
                records.c.deleted.is_(False),
                records.c.merged_into.is_(None),
                ~exists().where(
                    own.c.connection == records.c.connection,
                    own.c.object == records.c.object,
                    own.c.crm_id == records.c.crm_id,
                    own.c.status == active,
                ),
            )
            .order_by(records.c.crm_id, other.c.id)
        )
        found: dict[str, tuple[RecordSnapshot, str]] = {}
        for row in rows:
            found.setdefault(row.crm_id, (_snapshot(row), str(row.owner_email)))
        return list(found.values())

    def mark_merged(
        self, connection: str, object_name: str, crm_id: str, merged_into: str, *, seen_at: datetime | None = None
    ) -> bool:
        """Record that a CRM merge folded this record into ``merged_into`` (:meth:`mark_merged_many` of one).

        Returns:
            ``True`` if the record was known and not yet marked merged into that record.
        """
        at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
        return bool(self.mark_merged_many(connection, object_name, [(crm_id, merged_into)], seen_at=at))

    def mark_merged_many(
        self,
        connection: str,
        object_name: str,
        pairs: Sequence[tuple[str, str]],
        *,
        seen_at: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """Record CRM merges (HubSpot merges, Salesforce ``MasterRecordId``), as :meth:`mark_merged` does for each.

        A known record whose merge target is not yet the one given takes it, and its last
        seen time becomes ``seen_at``; unknown records are left alone. Pairs apply in
        order, so a record named twice ends merged into the last target. Per 500 records:
        one SELECT of the stored targets (rows locked on PostgreSQL) and one executemany
        UPDATE. Everything is checked before anything is written.

        Args:
            connection: Connection name.
            object_name: CRM object of the merged-away records.
            pairs: ``(crm_id of the merged-away record, crm_id it was merged into)``.
            seen_at: When the merges were read; defaults to now.

        Returns:
            The pairs that changed a record (those :meth:`mark_merged` answers ``True``
            for), in the order given.

        Raises:
            InvalidStoreValue: If a pair is malformed; the message names the record,
                e.g. ``records[hubspot/contacts/901].merged_into``.
        """
        at = when(seen_at, f"records[{connection}/{object_name}].seen_at")
        checked: list[tuple[str, str]] = []
        for index, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise InvalidStoreValue(
                    f"records[{connection}/{object_name}] merge #{index}: expected (crm_id, merged_into), got {pair!r}"
                )
            loser = _crm_id(connection, object_name, index, pair[0])
            winner = text_value(pair[1], f"records[{connection}/{object_name}/{loser}].merged_into", CRM_ID_LEN)
            checked.append((loser, winner))
        if not checked:
            return []
        table = table_of(RecordRow)
        targets: dict[str, str | None] = {}
        for chunk in chunked(sorted({loser for loser, _ in checked})):
            query = select(table.c.crm_id, table.c.merged_into).where(
                table.c.connection == connection,
                table.c.object == object_name,
                table.c.crm_id.in_(list(chunk)),
            )
            if is_postgresql(self._session):
                query = query.with_for_update()
            targets.update((crm_id, merged_into) for crm_id, merged_into in self._session.execute(query))
        changed: list[tuple[str, str]] = []
        final: dict[str, str] = {}
        for loser, winner in checked:
            if loser in targets and targets[loser] != winner:
                targets[loser] = final[loser] = winner
                changed.append((loser, winner))
        statement = (
            update(table)
            .where(
                table.c.connection == connection,
                table.c.object == object_name,
                table.c.crm_id == bindparam("b_crm_id"),
            )
            .values(
                merged_into=bindparam("b_merged_into"),
                last_seen=bindparam("b_last_seen", type_=table.c.last_seen.type),
            )
        )
        updates = [  # in key order, so two transactions cannot deadlock
            {"b_crm_id": loser, "b_merged_into": winner, "b_last_seen": at} for loser, winner in sorted(final.items())
        ]
        for batch in chunked(updates):
            self._session.execute(statement, list(batch))
        return changed

    def mark_deleted(
        self, connection: str, object_name: str, crm_id: str, *, seen_at: datetime | None = None
    ) -> bool:
        """Flag a known record as deleted in the CRM, keeping its last canonical form (:meth:`mark_deleted_many` of one).

        Returns:
            ``True`` if the record was known and not yet flagged deleted.
        """
        at = when(seen_at, f"records[{connection}/{object_name}/{crm_id}].seen_at")
        return bool(self.mark_deleted_many(connection, object_name, [crm_id], seen_at=at))

    def mark_deleted_many(
        self,
        connection: str,
        object_name: str,
        crm_ids: Sequence[str],
        *,
        seen_at: datetime | None = None,
    ) -> list[str]:
        """Flag known records as deleted in the CRM, keeping their last canonical form, as :meth:`mark_deleted` does for each.

        A known record not yet flagged is flagged and its last seen time becomes
        ``seen_at``; a record already flagged, or unknown, is left alone. One
        ``UPDATE ... WHERE crm_id IN (...) AND NOT deleted RETURNING crm_id`` per 500 ids.

        Args:
            connection: Connection name.
            object_name: CRM object of the records.
            crm_ids: Their CRM ids; an id given twice counts once.
            seen_at: When the deletions were read; defaults to now.

        Returns:
            The ids of the records that were live until now (those :meth:`mark_deleted`
            answers ``True`` for), each once, in the order given.

        Raises:
            InvalidStoreValue: If an id is not text (named by position).
        """
        at = when(seen_at, f"records[{connection}/{object_name}].seen_at")
        wanted = list(dict.fromkeys(_crm_id(connection, object_name, i, crm_id) for i, crm_id in enumerate(crm_ids)))
        table = table_of(RecordRow)
        flipped: set[str] = set()
        for chunk in chunked(sorted(wanted)):  # in key order, so two transactions cannot deadlock
            flipped.update(
                self._session.scalars(
                    update(table)
                    .where(
                        table.c.connection == connection,
                        table.c.object == object_name,
                        table.c.crm_id.in_(list(chunk)),
                        table.c.deleted.is_(False),
                    )
                    .values(deleted=True, last_seen=at)
                    .returning(table.c.crm_id)
                )
            )
        return [crm_id for crm_id in wanted if crm_id in flipped]


def _crm_id(connection: str, object_name: str, index: int, crm_id: object) -> str:
    """A CRM id to look a record up by; lone surrogates become U+FFFD, as when it was stored."""
    if not isinstance(crm_id, str):
        raise InvalidStoreValue(
            f"records[{connection}/{object_name}] id #{index}: expected text, got {type(crm_id).__name__} {crm_id!r}"
        )
    return scrub_text(crm_id)
