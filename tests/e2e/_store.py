"""What Relay's store holds after a run: audit log, assignment ledger, outbox, cursors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.store.models import AssignmentRow, AuditRow, OutboxRow, SyncCursorRow, SyncRunRow

Row = TypeVar("Row", AssignmentRow, AuditRow, OutboxRow, SyncCursorRow, SyncRunRow)


def rows(engine: Engine, model: type[Row], *where: Any) -> list[Row]:
    """All rows of ``model`` matching ``where``, detached from their session, in id order."""
    with Session(engine, expire_on_commit=False) as session:
        order = getattr(model, "id", None)
        query = select(model).where(*where)
        if order is not None:
            query = query.order_by(order)
        found: Sequence[Row] = session.scalars(query).all()
        session.expunge_all()
    return list(found)


def audit(engine: Engine, connection: str, action: str) -> list[AuditRow]:
    """The audit log's lines of ``action`` for ``connection``."""
    return rows(engine, AuditRow, AuditRow.connection == connection, AuditRow.action == action)


def active_assignments(engine: Engine, connection: str) -> dict[str, AssignmentRow]:
    """The active assignment of each record of ``connection``, by CRM id."""
    found = rows(engine, AssignmentRow, AssignmentRow.connection == connection, AssignmentRow.status == "active")
    by_record: dict[str, AssignmentRow] = {}
    for row in found:
        assert row.crm_id not in by_record, f"{connection} {row.object} {row.crm_id} has two active assignments"
        by_record[row.crm_id] = row
    return by_record
