"""The assignment ledger: who owns each CRM record, why, and since when."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.orm import Session

from connector.store.errors import ActiveAssignmentConflict, InvalidStoreValue
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    RELAY_ID_LEN,
    AssignmentRow,
    AssignmentStatus,
)
from connector.store.repositories._common import (
    aware,
    chunked,
    insert_many_or_ignore,
    optional_text,
    table_of,
    text_value,
    utcnow,
    when,
)

_Key = tuple[str, str, str]


@dataclass(frozen=True)
class Assignment:
    """One entry of the assignment ledger."""

    id: int
    relay_id: str | None
    connection: str
    object: str
    crm_id: str
    owner_email: str
    owner_crm_id: str | None
    tier: str | None
    rule: str | None
    reason: str | None
    score: int | None
    rules_version: str | None
    assigned_at: datetime
    sla_due: datetime | None
    status: AssignmentStatus


def _assignment(row: AssignmentRow | Row[Any]) -> Assignment:
    return Assignment(
        id=row.id,
        relay_id=row.relay_id,
        connection=row.connection,
        object=row.object,
        crm_id=row.crm_id,
        owner_email=row.owner_email,
        owner_crm_id=row.owner_crm_id,
        tier=row.tier,
        rule=row.rule,
        reason=row.reason,
        score=row.score,
        rules_version=row.rules_version,
        assigned_at=row.assigned_at,
        sla_due=row.sla_due,
        status=AssignmentStatus(row.status),
    )


@dataclass(frozen=True)
class AssignmentIn:
    """An assignment of a record, for :meth:`Assignments.record_many` or :meth:`Assignments.record_new_many`.

    The parameters of :meth:`Assignments.record`.
    """

    connection: str
    object_name: str
    crm_id: str
    owner_email: str
    owner_crm_id: str | None = None
    tier: str | None = None
    rule: str | None = None
    reason: str | None = None
    score: int | None = None
    rules_version: str | None = None
    relay_id: str | None = None
    sla_due: datetime | None = None
    assigned_at: datetime | None = None


def _assignment_values(item: AssignmentIn, now: datetime | None = None) -> dict[str, Any]:
    """Validated column values of a new active assignment (InvalidStoreValue naming the record)."""
    connection, object_name, crm_id = item.connection, item.object_name, item.crm_id
    where = f"assignments[{connection}/{object_name}/{crm_id}]"
    connection = text_value(connection, "assignments.connection", CONNECTION_LEN)
    object_name = text_value(object_name, "assignments.object", OBJECT_LEN)
    crm_id = text_value(crm_id, "assignments.crm_id", CRM_ID_LEN)
    owner_email = text_value(item.owner_email, f"{where}.owner_email", 320)
    score = item.score
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
        raise InvalidStoreValue(f"{where}.score: expected an integer, got {score!r}")
    return {
        "relay_id": optional_text(item.relay_id, f"{where}.relay_id", RELAY_ID_LEN),
        "connection": connection,
        "object": object_name,
        "crm_id": crm_id,
        "owner_email": owner_email,
        "owner_crm_id": optional_text(item.owner_crm_id, f"{where}.owner_crm_id", CRM_ID_LEN),
        "tier": optional_text(item.tier, f"{where}.tier", 64),
        "rule": optional_text(item.rule, f"{where}.rule", 200),
        "reason": item.reason,
        "score": score,
        "rules_version": optional_text(item.rules_version, f"{where}.rules_version", 128),
        "assigned_at": when(item.assigned_at if item.assigned_at is not None else now, f"{where}.assigned_at"),
        "sla_due": None if item.sla_due is None else aware(item.sla_due, f"{where}.sla_due"),
        "status": AssignmentStatus.ACTIVE.value,
    }


class Assignments:
    """Repository of the assignment ledger. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def active_for(self, connection: str, object_name: str, crm_id: str) -> Assignment | None:
        """Return the active assignment of a CRM record, if any."""
        row = self._session.execute(
            select(table_of(AssignmentRow))
            .where(
                AssignmentRow.connection == connection,
                AssignmentRow.object == object_name,
                AssignmentRow.crm_id == crm_id,
                AssignmentRow.status == AssignmentStatus.ACTIVE.value,
            )
        ).first()
        return _assignment(row) if row else None

    def active_for_records(
        self, connection: str, object_name: str, crm_ids: Iterable[str]
    ) -> dict[str, Assignment]:
        """The active assignment of each of these CRM records that has one, by CRM id.

        One SELECT per 500 ids; records without an active assignment are left out.
        """
        wanted = sorted(set(crm_ids))
        found: dict[str, Assignment] = {}
        for chunk in chunked(wanted):
            rows = self._session.execute(
                select(table_of(AssignmentRow))
                .where(
                    AssignmentRow.connection == connection,
                    AssignmentRow.object == object_name,
                    AssignmentRow.crm_id.in_(list(chunk)),
                    AssignmentRow.status == AssignmentStatus.ACTIVE.value,
                )
            )
            for row in rows:
                found[row.crm_id] = _assignment(row)
        return found

    def active_for_identities(self, relay_ids: Iterable[str]) -> dict[str, Assignment]:
        """The earliest active assignment of each identity (any of its CRM records), by relay id.

        A person known in two CRMs is routed once: the second record reuses this owner.
        """
        wanted = sorted(set(relay_ids))
        found: dict[str, Assignment] = {}
        for start in range(0, len(wanted), 500):
            rows = self._session.execute(
                select(table_of(AssignmentRow))
                .where(
                    AssignmentRow.relay_id.in_(wanted[start : start + 500]),
                    AssignmentRow.status == AssignmentStatus.ACTIVE.value,
                )
                .order_by(AssignmentRow.id)
            )
            for row in rows:
                if row.relay_id is not None and row.relay_id not in found:
                    found[row.relay_id] = _assignment(row)
        return found

    def history(self, connection: str, object_name: str, crm_id: str) -> list[Assignment]:
        """Return every assignment of a CRM record, oldest first."""
        rows = self._session.execute(
            select(table_of(AssignmentRow))
            .where(
                AssignmentRow.connection == connection,
                AssignmentRow.object == object_name,
                AssignmentRow.crm_id == crm_id,
            )
            .order_by(AssignmentRow.id)
        )
        return [_assignment(row) for row in rows]

    def record_new_many(self, items: Sequence[AssignmentIn], *, now: datetime | None = None) -> int:
        """Record the FIRST assignment of many records in one executemany.

        For records that have no active assignment (the caller looked them up in the same
        transaction, e.g. with :meth:`active_for_records`); use :meth:`record` to supersede.

        Returns:
            How many were recorded (all of them).

        Raises:
            ActiveAssignmentConflict: If any record already has an active assignment
                (a concurrent transaction got there first); nothing is written then
                that the caller's rollback would not undo.
            InvalidStoreValue: If an item is malformed (checked before anything is written).
        """
        rows = [_assignment_values(item, now) for item in items]
        rows.sort(key=lambda r: (r["connection"], r["object"], r["crm_id"]))
        seen: set[tuple[str, str, str]] = set()
        for row in rows:
            key = (row["connection"], row["object"], row["crm_id"])
            if key in seen:
                raise ActiveAssignmentConflict(*key)
            seen.add(key)
        inserted = insert_many_or_ignore(
            self._session, AssignmentRow, rows, ["connection", "object", "crm_id"],
            returning=["connection", "object", "crm_id"],
            conflict_where=text("status = 'active'"),
        )
        if len(inserted) != len(rows):
            landed: set[tuple[str, str, str]] = {tuple(r) for r in inserted}
            missing = seen - landed
            raise ActiveAssignmentConflict(*sorted(missing)[0])
        return len(rows)

    def sla_due_before(self, moment: datetime, *, limit: int = 500) -> list[Assignment]:
        """Return active assignments whose SLA is due before ``moment``, earliest first."""
        cutoff = aware(moment, "assignments.sla_due cutoff")
        rows = self._session.execute(
            select(table_of(AssignmentRow))
            .where(
                AssignmentRow.status == AssignmentStatus.ACTIVE.value,
                AssignmentRow.sla_due.is_not(None),
                AssignmentRow.sla_due < cutoff,
            )
            .order_by(AssignmentRow.sla_due, AssignmentRow.id)
            .limit(limit)
        )
        return [_assignment(row) for row in rows]

    def record(
        self,
        connection: str,
        object_name: str,
        crm_id: str,
        *,
        owner_email: str,
        owner_crm_id: str | None = None,
        tier: str | None = None,
        rule: str | None = None,
        reason: str | None = None,
        score: int | None = None,
        rules_version: str | None = None,
        relay_id: str | None = None,
        sla_due: datetime | None = None,
        assigned_at: datetime | None = None,
    ) -> Assignment:
        """Record an assignment, superseding the record's active one (:meth:`record_many` of one).

        Idempotent: if the active assignment already names the same owner, tier,
        rule and rules version, it is returned unchanged (a retried page writes
        nothing). The database keeps at most one active assignment per record.

        Returns:
            The record's active assignment after the call.

        Raises:
            ActiveAssignmentConflict: If a concurrent transaction recorded an
                active assignment for this record first.
            InvalidStoreValue: If an argument is malformed.
        """
        item = AssignmentIn(connection, object_name, crm_id, owner_email, owner_crm_id, tier, rule, reason, score,
                            rules_version, relay_id, sla_due, assigned_at)
        return self.record_many([item])[0]

    def record_many(self, items: Sequence[AssignmentIn], *, now: datetime | None = None) -> list[Assignment]:
        """Record many assignments, each superseding its record's active one, as :meth:`record` does for each.

        An item whose record's active assignment already names the same owner, owner id,
        tier, rule and rules version changes nothing and answers with that assignment.
        Items apply in order: the items are cut into runs in which each record comes
        once (one run, unless a record is given twice), and per run and 500 items the
        store sends one UPDATE of the superseded assignments and one executemany INSERT
        of the new ones (in key order, so concurrent transactions cannot deadlock);
        before that, one SELECT per 500 records of each object reads the active
        assignments. Everything is checked before anything is written.

        Args:
            items: The assignments, as :meth:`record` takes them.
            now: The time of items without ``assigned_at``; defaults to now.

        Returns:
            For each item, in order, its record's active assignment right after it was
            applied (what :meth:`record` returns).

        Raises:
            ActiveAssignmentConflict: If a concurrent transaction recorded an active
                assignment for one of these records first.
            InvalidStoreValue: If an item is malformed (named by record and field).
        """
        now = utcnow() if now is None else aware(now, "assignments.record_many now")
        rows: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if not isinstance(item, AssignmentIn):
                raise InvalidStoreValue(f"assignments[#{index}]: expected an AssignmentIn, got {type(item).__name__}")
            rows.append(_assignment_values(item, now))
        active = self._active_by_key({_key(row) for row in rows})
        results: list[Assignment] = []
        run: list[dict[str, Any]] = []
        in_run: set[_Key] = set()
        for row in rows:
            if _key(row) in in_run:
                results.extend(self._apply_run(run, active))
                run, in_run = [], set()
            run.append(row)
            in_run.add(_key(row))
        results.extend(self._apply_run(run, active))
        return results

    def _active_by_key(self, keys: set[_Key]) -> dict[_Key, Assignment]:
        """The active assignment of each of these records that has one (one SELECT per 500 per object)."""
        found: dict[_Key, Assignment] = {}
        for connection, object_name in sorted({(c, o) for c, o, _ in keys}):
            ids = [crm_id for c, o, crm_id in keys if (c, o) == (connection, object_name)]
            for crm_id, assignment in self.active_for_records(connection, object_name, ids).items():
                found[(connection, object_name, crm_id)] = assignment
        return found

    def _apply_run(self, run: Sequence[dict[str, Any]], active: dict[_Key, Assignment]) -> list[Assignment]:
        """Apply rows of distinct records: supersede what changes, insert the new ones; update ``active``."""
        answers: list[Assignment | None] = []
        superseded: list[int] = []
        fresh: list[dict[str, Any]] = []
        for row in run:
            current = active.get(_key(row))
            if current is not None and _same_decision(current, row):
                answers.append(current)
                continue
            if current is not None:
                superseded.append(current.id)
            fresh.append(row)
            answers.append(None)
        table = table_of(AssignmentRow)
        for ids in chunked(sorted(superseded)):
            self._session.execute(
                update(table)
                .where(table.c.id.in_(list(ids)), table.c.status == AssignmentStatus.ACTIVE.value)
                .values(status=AssignmentStatus.SUPERSEDED.value)
            )
        new_ids: dict[_Key, int] = {}
        for batch in chunked(sorted(fresh, key=_key)):
            inserted = insert_many_or_ignore(
                self._session, AssignmentRow, batch, ["connection", "object", "crm_id"],
                returning=["id", "connection", "object", "crm_id"],
                conflict_where=text("status = 'active'"),  # the index's own predicate, as a literal
            )
            new_ids.update(((r.connection, r.object, r.crm_id), r.id) for r in inserted)
            for row in batch:
                if _key(row) not in new_ids:  # a concurrent transaction recorded one first
                    raise ActiveAssignmentConflict(*_key(row))
        results: list[Assignment] = []
        for row, answer in zip(run, answers, strict=True):
            if answer is None:
                answer = active[_key(row)] = Assignment(
                    id=new_ids[_key(row)],
                    relay_id=row["relay_id"],
                    connection=row["connection"],
                    object=row["object"],
                    crm_id=row["crm_id"],
                    owner_email=row["owner_email"],
                    owner_crm_id=row["owner_crm_id"],
                    tier=row["tier"],
                    rule=row["rule"],
                    reason=row["reason"],
                    score=row["score"],
                    rules_version=row["rules_version"],
                    assigned_at=row["assigned_at"],
                    sla_due=row["sla_due"],
                    status=AssignmentStatus.ACTIVE,
                )
            results.append(answer)
        return results


def _key(row: dict[str, Any]) -> _Key:
    return (row["connection"], row["object"], row["crm_id"])


def _same_decision(current: Assignment, row: dict[str, Any]) -> bool:
    """Whether an active assignment already stands for this decision (a retried page writes nothing)."""
    return (current.owner_email, current.owner_crm_id, current.tier, current.rule, current.rules_version) == (
        row["owner_email"], row["owner_crm_id"], row["tier"], row["rule"], row["rules_version"]
    )
