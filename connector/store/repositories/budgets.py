"""API budgets: one row per connection and window, read and written under a row lock.

The API governor (``connector/adapters/budget.py``) does the accounting; this repository
keeps its state where every process of a connection sees it. One round trip is one
transaction: :meth:`Budgets.lock` (the rows, created when missing, locked with
``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers
already), then :meth:`Budgets.save`. The caller owns the transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import CONNECTION_LEN, ApiBudgetRow
from connector.store.repositories._common import (
    insert_many_or_ignore,
    is_postgresql,
    json_document,
    table_of,
    text_value,
    utcnow,
    when,
)

BUDGET_KINDS = ("window", "day")
"""``window``: the CRM's short rolling window; ``day``: its daily allocation."""
_PERIOD = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class BudgetRecord:
    """One connection's budget in one window, as stored.

    Attributes:
        connection: The connection's name.
        kind: ``window`` or ``day``.
        spent: ``day``: calls counted in ``period``; ``window``: the grants' sum when written.
        limit_seen: The limit the CRM's headers last said (None: not yet).
        period: ``day``: the UTC day counted (``YYYY-MM-DD``).
        grants: ``window``: ``[grant id, epoch seconds, calls]`` of the grants still counted.
        seen: What the last answer's headers said (with ``at``), or None.
        updated_at: When the row was last written (None: never).
    """

    connection: str
    kind: str
    spent: int = 0
    limit_seen: int | None = None
    period: str | None = None
    grants: list[list[Any]] = field(default_factory=list)
    seen: dict[str, Any] | None = None
    updated_at: datetime | None = None


class Budgets:
    """Repository of API budgets. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def clock(self) -> float:
        """The database's clock in epoch seconds (PostgreSQL: ``clock_timestamp()``, one clock for every
        machine); SQLite's store is on this machine: its clock."""
        if is_postgresql(self._session):
            moment = self._session.execute(text("SELECT clock_timestamp()")).scalar_one()
            return float(moment.timestamp())
        return time.time()

    def lock(self, connection: str) -> dict[str, BudgetRecord]:
        """The connection's rows by kind, created when missing and locked until the transaction ends."""
        connection = text_value(connection, "api_budgets.connection", CONNECTION_LEN)
        now = utcnow()
        query = select(ApiBudgetRow).where(ApiBudgetRow.connection == connection).order_by(ApiBudgetRow.kind)
        if is_postgresql(self._session):
            query = query.with_for_update()
        rows = {row.kind: row for row in self._session.scalars(query.execution_options(populate_existing=True))}
        missing = [kind for kind in BUDGET_KINDS if kind not in rows]
        if missing:
            insert_many_or_ignore(self._session, ApiBudgetRow, [
                {"connection": connection, "kind": kind, "spent": 0, "limit_seen": None, "period": None,
                 "grants": [], "seen": None, "updated_at": now} for kind in missing], ["connection", "kind"])
            rows = {row.kind: row for row in self._session.scalars(query.execution_options(populate_existing=True))}
        return {kind: _record(rows[kind]) for kind in BUDGET_KINDS if kind in rows}

    def save(self, records: Sequence[BudgetRecord], *, now: datetime | None = None) -> None:
        """Write ``records`` (rows :meth:`lock` returned, changed) in the caller's transaction.

        Raises:
            InvalidStoreValue: naming the row and the field that is wrong.
        """
        moment = when(now, "api_budgets.updated_at")
        table = table_of(ApiBudgetRow)  # Core statements: a round trip's cost is the governor's cost per call
        for record in records:
            values = _checked(record)
            self._session.execute(
                update(table).where(table.c.connection == record.connection, table.c.kind == record.kind)
                .values(**values, updated_at=moment)
            )

    def get(self, connection: str) -> dict[str, BudgetRecord]:
        """The connection's rows by kind (empty when it never called its CRM through a governor)."""
        rows = self._session.scalars(
            select(ApiBudgetRow).where(ApiBudgetRow.connection == connection).order_by(ApiBudgetRow.kind)
            .execution_options(populate_existing=True))
        return {row.kind: _record(row) for row in rows}

    def connections(self) -> list[str]:
        """Every connection with a budget row, sorted."""
        return list(self._session.scalars(select(ApiBudgetRow.connection).distinct().order_by(ApiBudgetRow.connection)))


def _record(row: ApiBudgetRow) -> BudgetRecord:
    grants = row.grants if isinstance(row.grants, list) else []
    return BudgetRecord(connection=row.connection, kind=row.kind, spent=int(row.spent), limit_seen=row.limit_seen,
                        period=row.period, grants=[list(g) for g in grants if isinstance(g, list)],
                        seen=dict(row.seen) if isinstance(row.seen, dict) else None, updated_at=row.updated_at)


def _checked(record: BudgetRecord) -> dict[str, Any]:
    """The columns of ``record``, each checked."""
    where = f"api_budgets[{record.connection}/{record.kind}]"
    if record.kind not in BUDGET_KINDS:
        raise InvalidStoreValue(f"{where}.kind: {record.kind!r} is not one of {', '.join(BUDGET_KINDS)}")
    if isinstance(record.spent, bool) or not isinstance(record.spent, int) or record.spent < 0:
        raise InvalidStoreValue(f"{where}.spent: expected a non-negative integer, got {record.spent!r}")
    if record.limit_seen is not None and (isinstance(record.limit_seen, bool) or not isinstance(record.limit_seen, int)
                                          or record.limit_seen < 1):
        raise InvalidStoreValue(f"{where}.limit_seen: expected a positive integer or None, got {record.limit_seen!r}")
    if record.period is not None and not (isinstance(record.period, str) and _PERIOD.match(record.period)):
        raise InvalidStoreValue(f"{where}.period: expected a day as YYYY-MM-DD or None, got {record.period!r}")
    grants = []
    for position, grant in enumerate(record.grants):
        ok = (isinstance(grant, list | tuple) and len(grant) == 3 and isinstance(grant[0], str)
              and isinstance(grant[1], int | float) and not isinstance(grant[1], bool)
              and isinstance(grant[2], int) and not isinstance(grant[2], bool) and grant[2] >= 0)
        if not ok:
            raise InvalidStoreValue(f"{where}.grants[{position}]: expected [grant id, epoch seconds, calls >= 0], "
                                    f"got {grant!r}")
        grants.append([grant[0], float(grant[1]), int(grant[2])])
    seen = json_document(record.seen, f"{where}.seen") if record.seen is not None else None
    return {"spent": record.spent, "limit_seen": record.limit_seen, "period": record.period, "grants": grants,
            "seen": seen}
