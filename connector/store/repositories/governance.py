"""Governance of deals: findings (each task created once), approvals and handoffs.

The caller owns the transaction. A page of deals reads each table once for its records
(``for_records``) and writes what changed with set-based statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.store.models import (
    ApprovalRow,
    ApprovalStatus,
    FindingStatus,
    GovernanceFindingRow,
    HandoffRow,
)

_CHUNK = 500
T = TypeVar("T")


def _chunks(ids: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


@dataclass(frozen=True)
class FindingRecord:
    """One stored finding about a record."""

    id: int
    object: str
    crm_id: str
    key: str
    code: str
    message: str
    status: str
    occurrence: int
    task_key: str | None
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class FindingIn:
    """A finding seen now, with the key of the task created for it (None: it has no task)."""

    object: str
    crm_id: str
    key: str
    code: str
    message: str
    task_key: str | None
    occurrence: int = 1


def _finding(row: GovernanceFindingRow) -> FindingRecord:
    return FindingRecord(row.id, row.object, row.crm_id, row.key, row.code, row.message, row.status,
                         row.occurrence, row.task_key, row.first_seen, row.last_seen, row.resolved_at)


class Findings:
    """Repository of governance findings."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def for_records(self, connection: str, object_name: str, crm_ids: Sequence[str]) -> dict[str, list[FindingRecord]]:
        """Every finding (open and resolved) of these records, by CRM id."""
        found: dict[str, list[FindingRecord]] = {}
        for chunk in _chunks(list(crm_ids)):
            rows = self._session.scalars(select(GovernanceFindingRow).where(
                GovernanceFindingRow.connection == connection, GovernanceFindingRow.object == object_name,
                GovernanceFindingRow.crm_id.in_(chunk)))
            for row in rows:
                found.setdefault(row.crm_id, []).append(_finding(row))
        return found

    def add_many(self, connection: str, findings: Sequence[FindingIn], *, now: datetime) -> None:
        """Record findings seen for the first time."""
        self._session.add_all(GovernanceFindingRow(
            connection=connection, object=f.object, crm_id=f.crm_id, key=f.key, code=f.code, message=f.message,
            status=FindingStatus.OPEN, occurrence=f.occurrence, task_key=f.task_key, first_seen=now, last_seen=now,
            resolved_at=None) for f in findings)
        self._session.flush()

    def reopen_many(self, reopened: Mapping[int, FindingIn], *, now: datetime) -> None:
        """Open resolved findings again (seen again), with their new occurrence and task."""
        for row_id, f in reopened.items():
            self._session.execute(update(GovernanceFindingRow).where(GovernanceFindingRow.id == row_id).values(
                status=FindingStatus.OPEN, occurrence=f.occurrence, task_key=f.task_key, message=f.message,
                last_seen=now, resolved_at=None))

    def seen_many(self, ids: Sequence[int], *, now: datetime) -> None:
        """Open findings seen again: their last sighting moves on."""
        for chunk in _chunks(ids):
            self._session.execute(update(GovernanceFindingRow).where(
                GovernanceFindingRow.id.in_(chunk)).values(last_seen=now))

    def resolve_many(self, ids: Sequence[int], *, now: datetime) -> None:
        """Findings the record no longer shows."""
        for chunk in _chunks(ids):
            self._session.execute(update(GovernanceFindingRow).where(
                GovernanceFindingRow.id.in_(chunk)).values(status=FindingStatus.RESOLVED, resolved_at=now))



@dataclass(frozen=True)
class ApprovalRecordRow:
    """One stored approval of a record: requested, or approved (by whom, when)."""

    id: int
    object: str
    crm_id: str
    matrix: str
    value: float
    approver_title: str | None
    approver_email: str | None
    status: str
    task_key: str | None
    requested_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None


def _approval(row: ApprovalRow) -> ApprovalRecordRow:
    return ApprovalRecordRow(row.id, row.object, row.crm_id, row.matrix, row.value, row.approver_title,
                             row.approver_email, row.status, row.task_key, row.requested_at, row.approved_by,
                             row.approved_at)


class Approvals:
    """Repository of approvals."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def for_records(self, connection: str, object_name: str,
                    crm_ids: Sequence[str]) -> dict[str, list[ApprovalRecordRow]]:
        """Every approval of these records, by CRM id."""
        found: dict[str, list[ApprovalRecordRow]] = {}
        for chunk in _chunks(list(crm_ids)):
            rows = self._session.scalars(select(ApprovalRow).where(
                ApprovalRow.connection == connection, ApprovalRow.object == object_name,
                ApprovalRow.crm_id.in_(chunk)).order_by(ApprovalRow.id))
            for row in rows:
                found.setdefault(row.crm_id, []).append(_approval(row))
        return found

    def request(self, connection: str, object_name: str, crm_id: str, *, matrix: str, value: float,
                approver_title: str, approver_email: str | None, task_key: str | None, now: datetime) -> None:
        """Record an approval requested of ``approver_title`` for ``value``."""
        self._session.add(ApprovalRow(
            connection=connection, object=object_name, crm_id=crm_id, matrix=matrix, value=value,
            approver_title=approver_title, approver_email=approver_email, status=ApprovalStatus.REQUESTED,
            task_key=task_key, requested_at=now, approved_by=None, approved_at=None))
        self._session.flush()

    def approve(self, connection: str, object_name: str, crm_id: str, *, matrix: str, value: float,
                approved_by: str, now: datetime, existing: ApprovalRecordRow | None) -> None:
        """Record the approval of ``value`` (the request's row when there is one)."""
        if existing is not None:
            self._session.execute(update(ApprovalRow).where(ApprovalRow.id == existing.id).values(
                status=ApprovalStatus.APPROVED, approved_by=approved_by, approved_at=now))
            return
        self._session.add(ApprovalRow(
            connection=connection, object=object_name, crm_id=crm_id, matrix=matrix, value=value,
            approver_title=None, approver_email=None, status=ApprovalStatus.APPROVED, task_key=None,
            requested_at=None, approved_by=approved_by, approved_at=now))
        self._session.flush()



@dataclass(frozen=True)
class HandoffIn:
    """A handoff made now."""

    object: str
    crm_id: str
    kind: str
    occurred_at: datetime
    owner_email: str | None
    receiver_email: str | None
    due_at: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)
    done_at: datetime | None = None


@dataclass(frozen=True)
class HandoffRecord:
    """One stored handoff."""

    id: int
    connection: str
    object: str
    crm_id: str
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    owner_email: str | None
    receiver_email: str | None
    due_at: datetime | None
    done_at: datetime | None
    detail: dict[str, Any]


def _handoff(row: HandoffRow) -> HandoffRecord:
    return HandoffRecord(row.id, row.connection, row.object, row.crm_id, row.kind, row.occurred_at, row.recorded_at,
                         row.owner_email, row.receiver_email, row.due_at, row.done_at, dict(row.detail))


class Handoffs:
    """Repository of handoffs (one per record and kind)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def for_records(self, connection: str, object_name: str, crm_ids: Sequence[str]) -> dict[tuple[str, str], HandoffRecord]:
        """The handoffs of these records by (CRM id, kind)."""
        found: dict[tuple[str, str], HandoffRecord] = {}
        for chunk in _chunks(list(crm_ids)):
            rows = self._session.scalars(select(HandoffRow).where(
                HandoffRow.connection == connection, HandoffRow.object == object_name, HandoffRow.crm_id.in_(chunk)))
            for row in rows:
                found[(row.crm_id, row.kind)] = _handoff(row)
        return found

    def add_many(self, connection: str, handoffs: Sequence[HandoffIn], *, now: datetime) -> None:
        """Record handoffs made now."""
        self._session.add_all(HandoffRow(
            connection=connection, object=h.object, crm_id=h.crm_id, kind=h.kind, occurred_at=h.occurred_at,
            recorded_at=now, owner_email=h.owner_email, receiver_email=h.receiver_email, due_at=h.due_at,
            done_at=h.done_at, detail=h.detail) for h in handoffs)
        self._session.flush()

    def done(self, handoff_id: int, done_at: datetime) -> None:
        """When the handoff's follow-through happened (the kickoff)."""
        self._session.execute(update(HandoffRow).where(HandoffRow.id == handoff_id).values(done_at=done_at))

    def all(self, connection: str | None = None, kind: str | None = None) -> list[HandoffRecord]:
        """Every handoff (of one connection and kind), oldest first."""
        query = select(HandoffRow).order_by(HandoffRow.occurred_at, HandoffRow.id)
        if connection is not None:
            query = query.where(HandoffRow.connection == connection)
        if kind is not None:
            query = query.where(HandoffRow.kind == kind)
        return [_handoff(row) for row in self._session.scalars(query)]
