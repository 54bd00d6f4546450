"""What ``relay retention run`` reads and marks in the store: every snapshot of a kind, the retention marks
already made, each owner's last assignment, and a deleted record's snapshot emptied of personal data.

Retention marks are audit entries (``retention_archived``, ``retention_deleted``, ``retention_suppressed``):
the audit log is append-only, so an archive is marked by its entry and never twice. The caller owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connector.store._types import content_hash
from connector.store.models import AssignmentRow, AuditRow, IdentityLinkRow, RecordRow
from connector.store.repositories._common import chunked, table_of, when
from connector.store.repositories.records import RecordSnapshot

Ref = tuple[str, str, str]
"""(connection, object, CRM id)."""


class RetentionStore:
    """Reads and marks of the retention job, over one session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def snapshots(self, kind: str, connections: Collection[str] | None = None) -> list[RecordSnapshot]:
        """Every snapshot of ``kind`` (``person``, ``account``, ``deal``), deleted ones included, in key order."""
        table = table_of(RecordRow)
        query = select(table).where(table.c.kind == kind)
        if connections is not None:
            query = query.where(table.c.connection.in_(sorted(connections)))
        rows = self._session.execute(query.order_by(table.c.connection, table.c.object, table.c.crm_id))
        return [RecordSnapshot(
            connection=row.connection, object=row.object, crm_id=row.crm_id, kind=row.kind,
            canonical=dict(row.canonical), content_hash=row.content_hash, relay_id=row.relay_id,
            deleted=bool(row.deleted), merged_into=row.merged_into, first_seen=row.first_seen,
            last_seen=row.last_seen) for row in rows]

    def marked(self, actions: Collection[str], connections: Collection[str] | None = None) -> dict[Ref, set[str]]:
        """The records that have an audit entry of one of ``actions``, with which actions."""
        query = select(AuditRow.connection, AuditRow.object, AuditRow.crm_id, AuditRow.action).where(
            AuditRow.action.in_(sorted(actions)), AuditRow.crm_id.is_not(None), AuditRow.object.is_not(None))
        if connections is not None:
            query = query.where(AuditRow.connection.in_(sorted(connections)))
        found: dict[Ref, set[str]] = {}
        for connection, object_name, crm_id, action in self._session.execute(query):
            found.setdefault((str(connection), str(object_name), str(crm_id)), set()).add(str(action))
        return found

    def last_assignments(self, emails: Iterable[str]) -> dict[str, datetime]:
        """Each owner's latest assignment (any record, any connection), by lower-case email."""
        wanted = sorted({e.strip().lower() for e in emails if e and e.strip()})
        found: dict[str, datetime] = {}
        for chunk in chunked(wanted):
            owner = func.lower(AssignmentRow.owner_email)
            rows = self._session.execute(select(owner, func.max(AssignmentRow.assigned_at))
                                         .where(owner.in_(list(chunk))).group_by(owner))
            for email, at in rows:
                if at is not None:
                    found[str(email)] = at
        return found

    def blank_snapshots(self, refs: Sequence[Ref], personal: Collection[str], *, now: datetime | None = None) -> int:
        """Empty these person snapshots of their ``personal`` fields, flag them deleted and detach them from
        their identity (their CRM links go too); returns how many changed."""
        at = when(now, "records.last_seen")
        table = table_of(RecordRow)
        links = table_of(IdentityLinkRow)
        changed = 0
        for connection, object_name, crm_id in refs:
            row = self._session.execute(select(table.c.canonical).where(
                table.c.connection == connection, table.c.object == object_name, table.c.crm_id == crm_id)).first()
            if row is None:
                continue
            kept: dict[str, Any] = {k: v for k, v in dict(row.canonical).items() if k not in personal}
            result = self._session.execute(
                update(table).where(table.c.connection == connection, table.c.object == object_name,
                                    table.c.crm_id == crm_id)
                .values(canonical=kept, content_hash=content_hash(kept), deleted=True, relay_id=None, last_seen=at))
            self._session.execute(links.delete().where(links.c.connection == connection, links.c.object == object_name,
                                                       links.c.crm_id == crm_id))
            changed += int(getattr(result, "rowcount", 0) or 0)
        return changed
