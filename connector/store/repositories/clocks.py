"""SLA clocks: one owner's clock on one person record, opened with the page that saw the owner.

The page path opens and updates clocks (:meth:`Clocks.latest_for_records`,
:meth:`Clocks.open_many`, :meth:`Clocks.save_many`); the periodic job claims the due ones
(:meth:`Clocks.claim_due`, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two job runs never
fire the same step) and saves what fired in the same transaction as its tasks and audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue, StoreError
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    AssignmentRow,
    AssignmentStatus,
    ClockStatus,
    SlaClockRow,
)
from connector.store.repositories._common import (
    aware,
    chunked,
    insert_many_or_ignore,
    is_postgresql,
    json_object,
    optional_text,
    table_of,
    text_value,
    when,
)

STAGES = ("new", "contacted", "other")
STEP_NAMES = frozenset({"remind", "escalate_manager", "escalate_director", "requeue", "nurture"})


class OpenClockConflict(StoreError):
    """Another transaction opened a clock on the same record first."""

    def __init__(self, connection: str, object_name: str, crm_id: str) -> None:
        self.connection, self.object_name, self.crm_id = connection, object_name, crm_id
        super().__init__(f"record {connection}/{object_name}/{crm_id} already has an open SLA clock "
                         "opened by a concurrent transaction; retry the page")


@dataclass(frozen=True)
class Clock:
    """One SLA clock as stored."""

    id: int
    connection: str
    object: str
    crm_id: str
    relay_id: str | None
    owner_email: str
    owner_crm_id: str | None
    tier: str
    group_key: str | None
    region: str | None
    source: str
    started_at: datetime
    stage: str
    stage_since: datetime
    first_touch_at: datetime | None
    fired: dict[str, str]
    next_due_at: datetime | None
    status: ClockStatus
    closed_reason: str | None
    closed_at: datetime | None
    updated_at: datetime

    @property
    def label(self) -> str:
        """``connection/object/crm_id`` (errors and logs)."""
        return f"{self.connection}/{self.object}/{self.crm_id}"


def _clock(row: SlaClockRow | Row[Any]) -> Clock:
    return Clock(
        id=row.id, connection=row.connection, object=row.object, crm_id=row.crm_id, relay_id=row.relay_id,
        owner_email=row.owner_email, owner_crm_id=row.owner_crm_id, tier=row.tier, group_key=row.group_key,
        region=row.region, source=row.source, started_at=row.started_at, stage=row.stage,
        stage_since=row.stage_since, first_touch_at=row.first_touch_at, fired=dict(row.fired or {}),
        next_due_at=row.next_due_at, status=ClockStatus(row.status), closed_reason=row.closed_reason,
        closed_at=row.closed_at, updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class ClockIn:
    """A clock to open with :meth:`Clocks.open_many`."""

    connection: str
    object_name: str
    crm_id: str
    owner_email: str
    tier: str
    started_at: datetime
    source: str
    stage: str = "new"
    stage_since: datetime | None = None
    first_touch_at: datetime | None = None
    next_due_at: datetime | None = None
    owner_crm_id: str | None = None
    relay_id: str | None = None
    group_key: str | None = None
    region: str | None = None
    fired: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ClockUpdate:
    """New values of a clock's moving parts, for :meth:`Clocks.save_many` (all of them are written)."""

    id: int
    stage: str
    stage_since: datetime
    first_touch_at: datetime | None
    fired: Mapping[str, str] = field(hash=False)
    next_due_at: datetime | None
    closed_reason: str | None = None
    """Set: the clock closes with this reason."""


def _stage(value: object, where: str) -> str:
    if value not in STAGES:
        raise InvalidStoreValue(f"{where}: {value!r} is not one of {', '.join(STAGES)}")
    return str(value)


def _fired(value: Mapping[str, str], where: str) -> dict[str, Any]:
    document = json_object(value, where)
    unknown = sorted(set(document) - STEP_NAMES)
    if unknown:
        raise InvalidStoreValue(f"{where}: unknown step(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(STEP_NAMES))})")
    return document


def _optional_when(value: datetime | None, where: str) -> datetime | None:
    return None if value is None else aware(value, where)


def _open_values(item: ClockIn, now: datetime) -> dict[str, Any]:
    where = f"sla_clocks[{item.connection}/{item.object_name}/{item.crm_id}]"
    started = aware(item.started_at, f"{where}.started_at")
    return {
        "connection": text_value(item.connection, f"{where}.connection", CONNECTION_LEN),
        "object": text_value(item.object_name, f"{where}.object", OBJECT_LEN),
        "crm_id": text_value(item.crm_id, f"{where}.crm_id", CRM_ID_LEN),
        "relay_id": optional_text(item.relay_id, f"{where}.relay_id", RELAY_ID_LEN),
        "owner_email": text_value(item.owner_email, f"{where}.owner_email", 320).strip().lower(),
        "owner_crm_id": optional_text(item.owner_crm_id, f"{where}.owner_crm_id", CRM_ID_LEN),
        "tier": text_value(item.tier, f"{where}.tier", 64),
        "group_key": optional_text(item.group_key, f"{where}.group_key", 200),
        "region": optional_text(item.region, f"{where}.region", 64),
        "source": text_value(item.source, f"{where}.source", 32),
        "started_at": started,
        "stage": _stage(item.stage, f"{where}.stage"),
        "stage_since": started if item.stage_since is None else aware(item.stage_since, f"{where}.stage_since"),
        "first_touch_at": _optional_when(item.first_touch_at, f"{where}.first_touch_at"),
        "fired": _fired(item.fired, f"{where}.fired"),
        "next_due_at": _optional_when(item.next_due_at, f"{where}.next_due_at"),
        "status": ClockStatus.OPEN.value,
        "closed_reason": None,
        "closed_at": None,
        "updated_at": now,
    }


def _key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (row["connection"], row["object"], row["crm_id"])


class Clocks:
    """Repository of SLA clocks. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def latest_for_records(
        self, connection: str, object_name: str, crm_ids: Iterable[str], *, lock: bool = False
    ) -> dict[str, Clock]:
        """The latest clock (open or closed) of each of these records that has one, by CRM id.

        Args:
            lock: On PostgreSQL, lock the open ones, so the periodic job (which skips locked
                rows) never fires a step from a state this transaction is changing.
        """
        table = table_of(SlaClockRow)
        found: dict[str, Clock] = {}
        for chunk in chunked(sorted(set(crm_ids))):
            query = (select(table)
                     .where(table.c.connection == connection, table.c.object == object_name,
                            table.c.crm_id.in_(list(chunk)))
                     .order_by(table.c.crm_id, table.c.id))
            if lock and is_postgresql(self._session):
                query = query.with_for_update(of=table)
            for row in self._session.execute(query):
                found[row.crm_id] = _clock(row)  # ordered by id: the last one wins
        return found

    def open_many(self, items: Sequence[ClockIn], *, now: datetime | None = None) -> int:
        """Open a clock on each record (which has no open one: the caller closed it in this transaction).

        Every item is checked before anything is written (InvalidStoreValue naming the record).

        Raises:
            OpenClockConflict: a record given twice, or a concurrent transaction opened one first.
        """
        at = when(now, "sla_clocks.updated_at")
        rows = [_open_values(item, at) for item in items]
        seen: set[tuple[str, str, str]] = set()
        for row in rows:
            if _key(row) in seen:
                raise OpenClockConflict(*_key(row))
            seen.add(_key(row))
        inserted = insert_many_or_ignore(self._session, SlaClockRow, sorted(rows, key=_key),
                                         ["connection", "object", "crm_id"],
                                         returning=["connection", "object", "crm_id"],
                                         conflict_where=text("status = 'open'"))
        if len(inserted) != len(rows):
            missing = seen - {(r.connection, r.object, r.crm_id) for r in inserted}
            raise OpenClockConflict(*sorted(missing)[0])
        return len(rows)

    def save_many(self, updates: Sequence[ClockUpdate], *, now: datetime | None = None) -> int:
        """Write the moving parts of these clocks (one executemany); those with a reason close.

        Returns:
            How many open clocks were written (a clock closed meanwhile is left as it is).
        """
        at = when(now, "sla_clocks.updated_at")
        rows: list[dict[str, Any]] = []
        for item in updates:
            where = f"sla_clocks[#{item.id}]"
            if isinstance(item.id, bool) or not isinstance(item.id, int):
                raise InvalidStoreValue(f"{where}.id: expected an integer, got {item.id!r}")
            rows.append({
                "clock_id": item.id,
                "stage": _stage(item.stage, f"{where}.stage"),
                "stage_since": aware(item.stage_since, f"{where}.stage_since"),
                "first_touch_at": _optional_when(item.first_touch_at, f"{where}.first_touch_at"),
                "fired": _fired(item.fired, f"{where}.fired"),
                "next_due_at": _optional_when(item.next_due_at, f"{where}.next_due_at"),
                "status": ClockStatus.CLOSED.value if item.closed_reason else ClockStatus.OPEN.value,
                "closed_reason": optional_text(item.closed_reason, f"{where}.closed_reason", 64),
                "closed_at": at if item.closed_reason else None,
                "updated_at": at,
            })
        if not rows:
            return 0
        table = table_of(SlaClockRow)
        statement = (
            update(table)
            .where(table.c.id == bindparam("clock_id"), table.c.status == ClockStatus.OPEN.value)
            .values({name: bindparam(name) for name in rows[0] if name != "clock_id"})
        )
        written = 0
        for batch in chunked(sorted(rows, key=lambda r: r["clock_id"])):
            result = self._session.connection().execute(statement, list(batch))
            written += int(getattr(result, "rowcount", 0) or 0)
        return written

    def claim_due(self, now: datetime, *, limit: int = 200, connection: str | None = None) -> list[Clock]:
        """Open clocks whose next step is due at ``now``, earliest first, locked for this transaction.

        On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED``: a second job run (or
        a page updating a clock) never gets the same rows; SQLite serialises transactions.
        """
        cutoff = aware(now, "sla_clocks claim now")
        table = table_of(SlaClockRow)
        query = select(table).where(table.c.status == ClockStatus.OPEN.value, table.c.next_due_at.is_not(None),
                                    table.c.next_due_at <= cutoff)
        if connection is not None:
            query = query.where(table.c.connection == connection)
        query = query.order_by(table.c.next_due_at, table.c.id).limit(limit)
        if is_postgresql(self._session):
            query = query.with_for_update(skip_locked=True)
        return [_clock(row) for row in self._session.execute(query)]

    def due_connections(self, now: datetime) -> list[str]:
        """The connections that have a clock due at ``now``."""
        cutoff = aware(now, "sla_clocks due now")
        table = table_of(SlaClockRow)
        rows = self._session.execute(
            select(table.c.connection).distinct()
            .where(table.c.status == ClockStatus.OPEN.value, table.c.next_due_at.is_not(None),
                   table.c.next_due_at <= cutoff)
            .order_by(table.c.connection))
        return [row.connection for row in rows]

    def listing(self, *, connection: str | None = None, due_before: datetime | None = None,
                include_closed: bool = False, limit: int = 100) -> list[Clock]:
        """Clocks for ``relay clocks list``: open ones by next due time (``due_before``: only those due)."""
        table = table_of(SlaClockRow)
        query = select(table)
        if not include_closed:
            query = query.where(table.c.status == ClockStatus.OPEN.value)
        if connection is not None:
            query = query.where(table.c.connection == connection)
        if due_before is not None:
            query = query.where(table.c.next_due_at.is_not(None),
                                table.c.next_due_at <= aware(due_before, "sla_clocks due_before"))
        query = query.order_by(table.c.next_due_at.is_(None), table.c.next_due_at, table.c.id).limit(limit)
        return [_clock(row) for row in self._session.execute(query)]

    def for_record(self, connection: str, object_name: str, crm_id: str) -> list[Clock]:
        """Every clock of one record, oldest first."""
        table = table_of(SlaClockRow)
        rows = self._session.execute(
            select(table).where(table.c.connection == connection, table.c.object == object_name,
                                table.c.crm_id == crm_id).order_by(table.c.id))
        return [_clock(row) for row in rows]

    def previous_owners(self, connection: str, object_name: str, crm_id: str, relay_id: str | None) -> set[str]:
        """Every owner the person ever had: the assignment ledger (all statuses, every record of the
        person) and every clock (owners by hand included), as lower-case emails."""
        assignments = table_of(AssignmentRow)
        clocks = table_of(SlaClockRow)
        same_record_a = (assignments.c.connection == connection) & (assignments.c.object == object_name) \
            & (assignments.c.crm_id == crm_id)
        same_record_c = (clocks.c.connection == connection) & (clocks.c.object == object_name) \
            & (clocks.c.crm_id == crm_id)
        by_assignment = select(assignments.c.owner_email).where(
            or_(same_record_a, assignments.c.relay_id == relay_id) if relay_id else same_record_a)
        by_clock = select(clocks.c.owner_email).where(
            or_(same_record_c, clocks.c.relay_id == relay_id) if relay_id else same_record_c)
        owners = {str(email).strip().lower() for email in self._session.scalars(by_assignment)}
        owners.update(str(email).strip().lower() for email in self._session.scalars(by_clock))
        return owners

    def release_assignment(self, connection: str, object_name: str, crm_id: str) -> int:
        """Supersede the record's active assignment without a new one (a lead returned to nurture
        with no nurture owner); returns how many were released (0 or 1)."""
        table = table_of(AssignmentRow)
        result = self._session.execute(
            update(table)
            .where(table.c.connection == connection, table.c.object == object_name, table.c.crm_id == crm_id,
                   table.c.status == AssignmentStatus.ACTIVE.value)
            .values(status=AssignmentStatus.SUPERSEDED.value))
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["Clock", "ClockIn", "ClockUpdate", "Clocks", "OpenClockConflict"]
