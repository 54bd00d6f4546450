"""Sync cursors: where each object's incremental read stands; checkpointed per page, forward only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from connector.cursor import id_order_key
from connector.store.errors import CursorMovedBackwards
from connector.store.models import CONNECTION_LEN, CRM_ID_LEN, OBJECT_LEN, SyncCursorRow
from connector.store.repositories._common import (
    aware,
    insert_or_ignore,
    is_postgresql,
    optional_text,
    text_value,
    when,
)


@dataclass(frozen=True)
class Cursor:
    """The last (modification time, id) read for one object of one connection."""

    connection: str
    object: str
    last_modified: datetime
    last_id: str | None
    updated_at: datetime
    deletions_checked_at: datetime | None = None
    """When deletions were last listed (Relay's clock); see :meth:`Cursors.deletions_listed`."""
    deletions_since: datetime | None = None
    """Where the next listing of deletions starts (the CRM's clock)."""

    @property
    def position(self) -> tuple[datetime, str | None]:
        """The (last_modified, last_id) pair the next read starts after."""
        return (self.last_modified, self.last_id)


def _cursor(row: SyncCursorRow) -> Cursor:
    return Cursor(
        connection=row.connection,
        object=row.object,
        last_modified=row.last_modified,
        last_id=row.last_id,
        updated_at=row.updated_at,
        deletions_checked_at=row.deletions_checked_at,
        deletions_since=row.deletions_since,
    )


class Cursors:
    """Repository of sync cursors. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, connection: str, object_name: str, *, for_update: bool = False) -> Cursor | None:
        """Return the cursor of ``object_name`` in ``connection``, or ``None`` if it never ran."""
        query = select(SyncCursorRow).where(
            SyncCursorRow.connection == connection, SyncCursorRow.object == object_name
        )
        if for_update and is_postgresql(self._session):
            query = query.with_for_update()
        row = self._session.scalars(query.execution_options(populate_existing=True)).first()
        return _cursor(row) if row else None

    def all(self, connection: str) -> list[Cursor]:
        """Return every cursor of ``connection``, by object name."""
        rows = self._session.scalars(
            select(SyncCursorRow)
            .where(SyncCursorRow.connection == connection)
            .order_by(SyncCursorRow.object)
            .execution_options(populate_existing=True)
        )
        return [_cursor(row) for row in rows]

    def advance(
        self,
        connection: str,
        object_name: str,
        last_modified: datetime,
        last_id: str | None = None,
        *,
        now: datetime | None = None,
        allow_backwards: bool = False,
    ) -> Cursor:
        """Move the cursor forward to (``last_modified``, ``last_id``); call after each page.

        Staying at the same position is accepted (a retried page). Ids at the same
        timestamp are ordered by :func:`id_order_key`.

        A full sync reads from the start, so its first page ends before the stored
        position: checkpoint that page with ``allow_backwards=True`` (in the page's own
        transaction, so the old position stays if the page fails), and the following
        pages without it. The database's forward-only trigger guards updates only; a
        backwards move replaces the row (DELETE + INSERT) in the caller's transaction.

        Args:
            connection: The connection.
            object_name: The CRM object.
            last_modified: Modification time of the last record of the page (aware).
            last_id: CRM id of that record.
            now: When; defaults to now.
            allow_backwards: Accept a position before the stored one (a full sync's
                first page). Incremental syncs never pass it.

        Raises:
            CursorMovedBackwards: If the position is before the stored one and
                ``allow_backwards`` is false. Use :meth:`reset` or ``allow_backwards``
                for a full resync.
            InvalidStoreValue: If an argument is malformed (e.g. a naive datetime).
        """
        connection = text_value(connection, "sync_cursors.connection", CONNECTION_LEN)
        object_name = text_value(object_name, "sync_cursors.object", OBJECT_LEN)
        modified = aware(last_modified, f"sync_cursors[{connection}/{object_name}].last_modified")
        last_id = optional_text(
            last_id, f"sync_cursors[{connection}/{object_name}].last_id", CRM_ID_LEN
        )
        updated_at = when(now, "sync_cursors.updated_at")
        values = {"last_modified": modified, "last_id": last_id, "updated_at": updated_at}
        inserted = insert_or_ignore(
            self._session,
            SyncCursorRow,
            {"connection": connection, "object": object_name, **values},
            conflict_columns=["connection", "object"],
            returning=[SyncCursorRow.connection],
        )
        if inserted is not None:
            return Cursor(connection, object_name, modified, last_id, updated_at)
        current = self.get(connection, object_name, for_update=True)
        assert current is not None
        proposed = (modified, last_id)
        current_key = (current.last_modified, id_order_key(current.last_id))
        proposed_key = (modified, id_order_key(last_id))
        if proposed_key < current_key:
            if not allow_backwards:
                raise CursorMovedBackwards(connection, object_name, current.position, proposed)
            self.reset(connection, object_name)
            self._session.execute(
                insert(SyncCursorRow).values(connection=connection, object=object_name, **values)
            )
            return Cursor(connection, object_name, modified, last_id, updated_at)
        if proposed_key == current_key:
            return current
        self._session.execute(
            update(SyncCursorRow)
            .where(SyncCursorRow.connection == connection, SyncCursorRow.object == object_name)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return Cursor(connection, object_name, modified, last_id, updated_at)

    def deletions_listed(self, connection: str, object_name: str, since: datetime, *, now: datetime) -> bool:
        """Record that deletions of ``object_name`` were listed at ``now``; the next listing starts at ``since``.

        For CRMs that report deletions only in a listing of their own (HubSpot's archived
        records), which a connection asks for at most every ``deletions_every_minutes``.
        ``since`` is on the CRM's clock: the read position from which this listing looked.

        Returns:
            ``False`` when the object has no cursor yet (nothing read: nothing to remember).
        """
        where = f"sync_cursors[{connection}/{object_name}]"
        result = self._session.execute(
            update(SyncCursorRow)
            .where(SyncCursorRow.connection == connection, SyncCursorRow.object == object_name)
            .values(deletions_checked_at=aware(now, f"{where}.deletions_checked_at"),
                    deletions_since=aware(since, f"{where}.deletions_since"))
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def reset(self, connection: str, object_name: str | None = None) -> int:
        """Forget the cursor(s) of ``connection`` so the next sync reads everything again.

        Args:
            connection: The connection.
            object_name: One object, or ``None`` for all objects of the connection.

        Returns:
            How many cursors were removed.
        """
        statement = delete(SyncCursorRow).where(SyncCursorRow.connection == connection)
        if object_name is not None:
            statement = statement.where(SyncCursorRow.object == object_name)
        result = self._session.execute(statement.execution_options(synchronize_session=False))
        removed: int = result.rowcount  # type: ignore[attr-defined]
        return removed
