"""The dispositions reps set on people, each acted on once, and the dispositions found missing.

A row per person record and disposition value seen (its date, when the record gives one, tells the
same value set again from the first time): the page that first sees it records it with what Relay
does (status written, recycled on a date, suppressed, converted), so a record read again is never
acted on twice. A conversion is recorded (``pending``) before the CRM is asked and closed with the
CRM's answer; a run that crashed in between asks again. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    ClockStatus,
    DispositionFindingRow,
    DispositionRow,
    DispositionStatus,
    IdentityKind,
    IdentityLinkRow,
    IdentityRow,
    SlaClockRow,
)
from connector.store.repositories._common import (
    aware,
    chunked,
    enum_value,
    insert_many_or_ignore,
    optional_text,
    table_of,
    text_value,
    when,
)

ACTIVE = (DispositionStatus.WAITING.value, DispositionStatus.PENDING.value)
"""Statuses that still have something to do (a recycle to come, a conversion to ask for)."""


@dataclass(frozen=True)
class Disposition:
    """One disposition value seen on one person record, and what Relay did about it."""

    id: int
    connection: str
    object: str
    crm_id: str
    relay_id: str | None
    value: str
    stamp: str
    seen_at: datetime
    decided_at: datetime
    owner_email: str | None
    action: str
    status: str
    recycle_at: datetime | None
    excluded_owner_email: str | None
    suppressed: bool
    new_owner_email: str | None
    acted_at: datetime | None
    opportunity_id: str | None
    contact_id: str | None
    account_id: str | None
    attempts: int
    error: str | None

    @property
    def label(self) -> str:
        """``connection/object/crm_id`` (messages and logs)."""
        return f"{self.connection}/{self.object}/{self.crm_id}"


def _disposition(row: DispositionRow | Row[Any]) -> Disposition:
    return Disposition(
        id=row.id, connection=row.connection, object=row.object, crm_id=row.crm_id, relay_id=row.relay_id,
        value=row.value, stamp=row.stamp, seen_at=row.seen_at, decided_at=row.decided_at,
        owner_email=row.owner_email, action=row.action, status=row.status, recycle_at=row.recycle_at,
        excluded_owner_email=row.excluded_owner_email, suppressed=bool(row.suppressed),
        new_owner_email=row.new_owner_email, acted_at=row.acted_at, opportunity_id=row.opportunity_id,
        contact_id=row.contact_id, account_id=row.account_id, attempts=row.attempts, error=row.error,
    )


@dataclass(frozen=True)
class DispositionIn:
    """A disposition first seen, with what Relay does about it (for :meth:`Dispositions.record_many`)."""

    connection: str
    object_name: str
    crm_id: str
    value: str
    stamp: str
    seen_at: datetime
    decided_at: datetime
    action: str
    status: str
    relay_id: str | None = None
    owner_email: str | None = None
    recycle_at: datetime | None = None
    excluded_owner_email: str | None = None
    suppressed: bool = False
    error: str | None = None


def _values(item: DispositionIn, index: int) -> dict[str, Any]:
    where = f"dispositions[{index}] ({item.connection}/{item.object_name}/{item.crm_id})"
    return {
        "connection": text_value(item.connection, f"{where}.connection", CONNECTION_LEN),
        "object": text_value(item.object_name, f"{where}.object", OBJECT_LEN),
        "crm_id": text_value(item.crm_id, f"{where}.crm_id", CRM_ID_LEN),
        "relay_id": optional_text(item.relay_id, f"{where}.relay_id", RELAY_ID_LEN),
        "value": text_value(item.value, f"{where}.value", 255),
        "stamp": _stamp(item.stamp, f"{where}.stamp"),
        "seen_at": aware(item.seen_at, f"{where}.seen_at"),
        "decided_at": aware(item.decided_at, f"{where}.decided_at"),
        "owner_email": optional_text(item.owner_email, f"{where}.owner_email", 320),
        "action": text_value(item.action, f"{where}.action", 32),
        "status": enum_value(DispositionStatus, item.status, f"{where}.status").value,
        "recycle_at": aware(item.recycle_at, f"{where}.recycle_at") if item.recycle_at is not None else None,
        "excluded_owner_email": optional_text(item.excluded_owner_email, f"{where}.excluded_owner_email", 320),
        "suppressed": bool(item.suppressed),
        "new_owner_email": None,
        "acted_at": None,
        "opportunity_id": None,
        "contact_id": None,
        "account_id": None,
        "attempts": 0,
        "error": item.error,
    }


def _stamp(value: object, where: str) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidStoreValue(f"{where}: expected the disposition date as ISO-8601 text (at most 40 "
                                f"characters, empty for none), got {value!r}")
    return value


@dataclass(frozen=True)
class ClosedClock:
    """An SLA clock closed because its person is suppressed."""

    clock_id: int
    object: str
    crm_id: str
    relay_id: str | None
    owner_email: str


@dataclass(frozen=True)
class OverdueCandidate:
    """A lead's latest SLA clock whose first touch is older than the disposition's due time."""

    clock_id: int
    connection: str
    object: str
    crm_id: str
    relay_id: str | None
    owner_email: str
    started_at: datetime
    first_touch_at: datetime


@dataclass(frozen=True)
class DispositionFindingIn:
    """A missing disposition found (for :meth:`Dispositions.add_finding`)."""

    connection: str
    object_name: str
    crm_id: str
    key: str
    first_touch_at: datetime
    due_at: datetime
    message: str
    relay_id: str | None = None
    owner_email: str | None = None
    task_key: str | None = None


@dataclass(frozen=True)
class DispositionFinding:
    """A missing disposition found, as stored."""

    id: int
    connection: str
    object: str
    crm_id: str
    relay_id: str | None
    key: str
    first_touch_at: datetime
    due_at: datetime
    owner_email: str | None
    task_key: str | None
    message: str
    created_at: datetime


class Dispositions:
    """Repository of the dispositions ledger and the missing-disposition findings."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # ------------------------------------------------------------------ the ledger

    def for_records(self, connection: str, object_name: str, crm_ids: Iterable[str]) -> dict[str, list[Disposition]]:
        """Every disposition of these records, oldest first, by CRM id (records with none are left out)."""
        table = table_of(DispositionRow)
        found: dict[str, list[Disposition]] = {}
        for chunk in chunked(sorted(set(crm_ids))):
            rows = self._session.execute(
                select(table).where(table.c.connection == connection, table.c.object == object_name,
                                    table.c.crm_id.in_(list(chunk))).order_by(table.c.crm_id, table.c.id))
            for row in rows:
                found.setdefault(row.crm_id, []).append(_disposition(row))
        return found

    def record_many(self, items: Sequence[DispositionIn]) -> list[Disposition]:
        """Record dispositions first seen; returns those recorded (one already there is left as it is).

        A record's earlier dispositions still waiting to be recycled or converted are superseded:
        the rep's latest word stands. Every item is checked before anything is written
        (InvalidStoreValue naming the record and the field).
        """
        rows = [_values(item, i) for i, item in enumerate(items)]
        if not rows:
            return []
        inserted = insert_many_or_ignore(self._session, DispositionRow, rows,
                                         ["connection", "object", "crm_id", "value", "stamp"], returning=["id"])
        ids = [int(row.id) for row in inserted]
        if not ids:
            return []
        table = table_of(DispositionRow)
        new = [_disposition(row) for row in self._session.execute(select(table).where(table.c.id.in_(ids))
                                                                  .order_by(table.c.id))]
        newest: dict[tuple[str, str, str], int] = {}
        for item in new:
            newest[(item.connection, item.object, item.crm_id)] = item.id
        for (connection, obj, crm_id), latest in newest.items():
            self._session.execute(
                update(table)
                .where(table.c.connection == connection, table.c.object == obj, table.c.crm_id == crm_id,
                       table.c.id < latest, table.c.status.in_(ACTIVE))
                .values(status=DispositionStatus.SUPERSEDED.value))
        return new

    def supersede(self, ids: Sequence[int], *, errors: Mapping[int, str] | None = None) -> int:
        """Close dispositions still waiting or pending as ``superseded`` (the record says otherwise now, or is
        gone: ``errors`` says why, by id); returns how many."""
        table = table_of(DispositionRow)
        written = 0
        for disposition_id in sorted(set(ids)):
            result = self._session.execute(
                update(table).where(table.c.id == disposition_id, table.c.status.in_(ACTIVE))
                .values(status=DispositionStatus.SUPERSEDED.value, error=(errors or {}).get(disposition_id)))
            written += int(getattr(result, "rowcount", 0) or 0)
        return written

    def close_suppressed_clocks(self, connection: str, *, now: datetime | None = None) -> list[ClosedClock]:
        """Close the open SLA clocks of ``connection`` whose person is suppressed; returns those closed."""
        at = when(now, "sla_clocks.closed_at")
        clocks = table_of(SlaClockRow)
        ledger = table_of(DispositionRow)
        rows = list(self._session.execute(
            select(clocks.c.id, clocks.c.object, clocks.c.crm_id, clocks.c.relay_id, clocks.c.owner_email)
            .where(clocks.c.connection == connection, clocks.c.status == ClockStatus.OPEN.value,
                   clocks.c.relay_id.is_not(None),
                   exists().where(ledger.c.relay_id == clocks.c.relay_id, ledger.c.suppressed.is_(True)))
            .order_by(clocks.c.id)))
        closed: list[ClosedClock] = []
        for row in rows:
            result = self._session.execute(
                update(clocks).where(clocks.c.id == row.id, clocks.c.status == ClockStatus.OPEN.value)
                .values(status=ClockStatus.CLOSED.value, closed_reason="suppressed", closed_at=at, next_due_at=None,
                        updated_at=at))
            if getattr(result, "rowcount", 0):
                closed.append(ClosedClock(row.id, row.object, row.crm_id, row.relay_id, row.owner_email))
        return closed

    def get(self, disposition_id: int) -> Disposition | None:
        """One disposition by id."""
        row = self._session.get(DispositionRow, disposition_id, populate_existing=True)
        return _disposition(row) if row is not None else None

    def suppressions(self, relay_ids: Collection[str]) -> dict[str, Disposition]:
        """The first disposition that suppressed each of these people (by relay id), for those suppressed."""
        table = table_of(DispositionRow)
        found: dict[str, Disposition] = {}
        for chunk in chunked(sorted({r for r in relay_ids if r})):
            rows = self._session.execute(select(table).where(table.c.suppressed.is_(True),
                                                             table.c.relay_id.in_(list(chunk)))
                                         .order_by(table.c.id))
            for row in rows:
                found.setdefault(row.relay_id, _disposition(row))
        return found

    def suppressing(self, connection: str, object_name: str,
                    people: Sequence[tuple[str, str | None, str | None]]) -> dict[str, Disposition]:
        """The suppression that holds for each of these records, known to Relay or not yet (by CRM id).

        ``people``: ``(crm_id, identity key, relay id the record holds)``. A record is suppressed by
        a suppressing disposition of its own, or of its person: the identity it is linked to, the
        identity of its key (a new record of a known person) or the relay id it holds.
        """
        if not people:
            return {}
        links = table_of(IdentityLinkRow)
        identities = table_of(IdentityRow)
        candidates: dict[str, set[str]] = {crm_id: {relay_id} if relay_id else set() for crm_id, _, relay_id in people}
        for chunk in chunked(sorted(candidates)):
            for row in self._session.execute(select(links.c.crm_id, links.c.relay_id).where(
                    links.c.connection == connection, links.c.object == object_name,
                    links.c.crm_id.in_(list(chunk)))):
                candidates[row.crm_id].add(row.relay_id)
        by_key: dict[str, list[str]] = {}
        for crm_id, key, _ in people:
            if key:
                by_key.setdefault(key, []).append(crm_id)
        for chunk in chunked(sorted(by_key)):
            for row in self._session.execute(select(identities.c.key, identities.c.relay_id).where(
                    identities.c.kind == IdentityKind.PERSON.value, identities.c.key.in_(list(chunk)))):
                for crm_id in by_key[row.key]:
                    candidates[crm_id].add(row.relay_id)
        by_person = self.suppressions({r for ids in candidates.values() for r in ids})
        table = table_of(DispositionRow)
        own: dict[str, Disposition] = {}
        for chunk in chunked(sorted(candidates)):
            for hit_row in self._session.execute(select(table).where(
                    table.c.connection == connection, table.c.object == object_name,
                    table.c.crm_id.in_(list(chunk)), table.c.suppressed.is_(True)).order_by(table.c.id)):
                own.setdefault(hit_row.crm_id, _disposition(hit_row))
        found: dict[str, Disposition] = {}
        for crm_id, relay_ids in candidates.items():
            hit = own.get(crm_id) or next((by_person[r] for r in sorted(relay_ids) if r in by_person), None)
            if hit is not None:
                found[crm_id] = hit
        return found

    def due(self, connection: str, object_name: str, now: datetime) -> list[Disposition]:
        """Dispositions of ``object_name`` waiting to be recycled whose ``recycle_at`` has come, earliest first."""
        table = table_of(DispositionRow)
        cutoff = aware(now, "dispositions due now")
        rows = self._session.execute(
            select(table).where(table.c.connection == connection, table.c.status == DispositionStatus.WAITING.value,
                                table.c.object == object_name, table.c.recycle_at.is_not(None),
                                table.c.recycle_at <= cutoff)
            .order_by(table.c.recycle_at, table.c.id))
        return [_disposition(row) for row in rows]

    def mark_recycled(self, owners: Mapping[int, str | None], *, now: datetime | None = None) -> int:
        """Close waiting dispositions as recycled, each with the owner its person was routed to (None: the rules
        routed it to nobody, e.g. marketing nurture); returns how many."""
        at = when(now, "dispositions.acted_at")
        rows = [{"b_id": disposition_id, "b_owner": optional_text(owner, f"dispositions[#{disposition_id}]"
                                                                          ".new_owner_email", 320)}
                for disposition_id, owner in sorted(owners.items())]
        if not rows:
            return 0
        table = table_of(DispositionRow)
        statement = (update(table).where(table.c.id == bindparam("b_id"),
                                         table.c.status == DispositionStatus.WAITING.value)
                     .values(status=DispositionStatus.RECYCLED.value, new_owner_email=bindparam("b_owner"),
                             acted_at=at))
        written = 0
        for batch in chunked(rows):
            result = self._session.connection().execute(statement, list(batch))
            written += int(getattr(result, "rowcount", 0) or 0)
        return written

    def pending_conversions(self, connection: str) -> list[Disposition]:
        """Conversions still to ask the CRM for (new ones, and those a crash or a CRM failure left), oldest first."""
        table = table_of(DispositionRow)
        rows = self._session.execute(
            select(table).where(table.c.connection == connection, table.c.status == DispositionStatus.PENDING.value)
            .order_by(table.c.id))
        return [_disposition(row) for row in rows]

    def attempt(self, disposition_id: int) -> int:
        """Count one more conversion asked of the CRM (before it is asked); returns the attempts so far."""
        table = table_of(DispositionRow)
        self._session.execute(update(table).where(table.c.id == disposition_id)
                              .values(attempts=table.c.attempts + 1))
        found = self._session.scalar(select(table.c.attempts).where(table.c.id == disposition_id))
        if found is None:
            raise InvalidStoreValue(f"no disposition #{disposition_id}")
        return int(found)

    def finish_conversion(self, disposition_id: int, *, opportunity_id: str | None = None,
                          contact_id: str | None = None, account_id: str | None = None, error: str | None = None,
                          now: datetime | None = None) -> bool:
        """Close a pending conversion: ``converted`` with the CRM's ids, or ``failed`` with its refusal.

        Returns:
            False when it was not pending any more (another run closed it first: its answer stands).
        """
        where = f"dispositions[#{disposition_id}]"
        table = table_of(DispositionRow)
        result = self._session.execute(
            update(table).where(table.c.id == disposition_id, table.c.status == DispositionStatus.PENDING.value)
            .values(status=DispositionStatus.FAILED.value if error is not None else DispositionStatus.CONVERTED.value,
                    opportunity_id=optional_text(opportunity_id, f"{where}.opportunity_id", CRM_ID_LEN),
                    contact_id=optional_text(contact_id, f"{where}.contact_id", CRM_ID_LEN),
                    account_id=optional_text(account_id, f"{where}.account_id", CRM_ID_LEN),
                    error=error, acted_at=when(now, f"{where}.acted_at")))
        return bool(getattr(result, "rowcount", 0))

    def note_error(self, disposition_id: int, error: str) -> None:
        """Keep the CRM's last answer on a conversion that stays pending (it is asked again next run)."""
        table = table_of(DispositionRow)
        self._session.execute(update(table).where(table.c.id == disposition_id).values(error=error))

    def listing(self, *, connection: str | None = None, status: str | None = None,
                limit: int = 1000) -> list[Disposition]:
        """Dispositions, oldest first, of a connection and status if given."""
        table = table_of(DispositionRow)
        query = select(table)
        if connection is not None:
            query = query.where(table.c.connection == connection)
        if status is not None:
            query = query.where(table.c.status == enum_value(DispositionStatus, status, "dispositions status").value)
        return [_disposition(row) for row in self._session.execute(query.order_by(table.c.id).limit(limit))]

    # ------------------------------------------------------------------ missing dispositions

    def overdue_candidates(self, connection: str, first_touch_before: datetime, *,
                           first_touch_after: datetime | None = None, limit: int = 1000) -> list[OverdueCandidate]:
        """Leads touched before ``first_touch_before`` with no disposition since their owner got them, not yet found.

        Per record its latest clock only (the owner who has it now); a disposition counts when it
        was decided or first seen after that clock started (an earlier one was the previous
        owner's). ``first_touch_after`` bounds the look back.
        """
        clocks = table_of(SlaClockRow)
        later = clocks.alias("later")
        findings = table_of(DispositionFindingRow)
        ledger = table_of(DispositionRow)

        def same(table: Any) -> Any:  # the same record as the clock
            return and_(table.c.connection == clocks.c.connection, table.c.object == clocks.c.object,
                        table.c.crm_id == clocks.c.crm_id)

        query = select(clocks).where(
            clocks.c.connection == connection,
            clocks.c.first_touch_at.is_not(None),
            clocks.c.first_touch_at <= aware(first_touch_before, "overdue first_touch_before"),
            ~exists().where(same(later), later.c.id > clocks.c.id),
            ~exists().where(same(findings), findings.c.first_touch_at == clocks.c.first_touch_at),
            ~exists().where(same(ledger), or_(ledger.c.decided_at >= clocks.c.started_at,
                                              ledger.c.seen_at >= clocks.c.started_at)),
        )
        if first_touch_after is not None:
            query = query.where(clocks.c.first_touch_at >= aware(first_touch_after, "overdue first_touch_after"))
        rows = self._session.execute(query.order_by(clocks.c.first_touch_at, clocks.c.id).limit(limit))
        return [OverdueCandidate(row.id, row.connection, row.object, row.crm_id, row.relay_id, row.owner_email,
                                 row.started_at, row.first_touch_at) for row in rows]

    def add_finding(self, item: DispositionFindingIn, *, now: datetime | None = None) -> bool:
        """Record a missing disposition; False when it was found before (its task exists already)."""
        where = f"disposition_findings ({item.connection}/{item.object_name}/{item.crm_id})"
        row = {
            "connection": text_value(item.connection, f"{where}.connection", CONNECTION_LEN),
            "object": text_value(item.object_name, f"{where}.object", OBJECT_LEN),
            "crm_id": text_value(item.crm_id, f"{where}.crm_id", CRM_ID_LEN),
            "relay_id": optional_text(item.relay_id, f"{where}.relay_id", RELAY_ID_LEN),
            "key": text_value(item.key, f"{where}.key", 400),
            "first_touch_at": aware(item.first_touch_at, f"{where}.first_touch_at"),
            "due_at": aware(item.due_at, f"{where}.due_at"),
            "owner_email": optional_text(item.owner_email, f"{where}.owner_email", 320),
            "task_key": optional_text(item.task_key, f"{where}.task_key", 200),
            "message": text_value(item.message, f"{where}.message", 100_000),
            "created_at": when(now, f"{where}.created_at"),
        }
        return bool(insert_many_or_ignore(self._session, DispositionFindingRow, [row], ["connection", "key"],
                                          returning=["id"]))

    def findings(self, connection: str | None = None) -> list[DispositionFinding]:
        """Missing dispositions found, oldest first."""
        table = table_of(DispositionFindingRow)
        query = select(table)
        if connection is not None:
            query = query.where(table.c.connection == connection)
        return [DispositionFinding(row.id, row.connection, row.object, row.crm_id, row.relay_id, row.key,
                                   row.first_touch_at, row.due_at, row.owner_email, row.task_key, row.message,
                                   row.created_at)
                for row in self._session.execute(query.order_by(table.c.id))]


__all__ = ["ClosedClock", "Disposition", "DispositionFinding", "DispositionFindingIn", "DispositionIn", "Dispositions",
           "OverdueCandidate"]
