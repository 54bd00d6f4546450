"""Merges of duplicates (recorded before the CRM is asked, closed with its answer) and the review queue.

The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.store.models import MatchReviewRow, MergeRow, MergeStatus, ReviewStatus
from connector.store.repositories._common import utcnow


@dataclass(frozen=True)
class MergeRecord:
    """One merge (or flag) of one CRM object's duplicate set."""

    id: int
    connection: str
    object: str
    set_key: str
    mode: str
    survivor_id: str
    loser_ids: tuple[str, ...]
    plan: dict[str, Any]
    status: str
    outcome: dict[str, Any] | None
    error: str | None
    created_at: datetime
    done_at: datetime | None


def set_key(crm_ids: Sequence[str], mode: str) -> str:
    """The name of a duplicate set acted on in ``mode``: the mode and its CRM ids, sorted (a hash past
    the column's length). A set flagged before and merged now is another act on it."""
    text = mode + ":" + ",".join(sorted(crm_ids))
    if len(text) <= 200:
        return text
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record(row: MergeRow) -> MergeRecord:
    return MergeRecord(row.id, row.connection, row.object, row.set_key, row.mode, row.survivor_id,
                       tuple(row.loser_ids), dict(row.plan), row.status, row.outcome, row.error, row.created_at,
                       row.done_at)


class Merges:
    """Repository of merges."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def find(self, connection: str, object_name: str, key: str) -> MergeRecord | None:
        """The merge of this set, if one was recorded."""
        row = self._session.scalar(select(MergeRow).where(
            MergeRow.connection == connection, MergeRow.object == object_name, MergeRow.set_key == key))
        return _record(row) if row is not None else None

    def begin(self, connection: str, object_name: str, *, mode: str, survivor_id: str, loser_ids: Sequence[str],
              plan: dict[str, Any], now: datetime | None = None) -> MergeRecord:
        """Record a merge about to be asked of the CRM (``pending``); the set's existing row if there is one."""
        key = set_key([survivor_id, *loser_ids], mode)
        found = self.find(connection, object_name, key)
        if found is not None:
            return found
        row = MergeRow(connection=connection, object=object_name, set_key=key, mode=mode, survivor_id=survivor_id,
                       loser_ids=list(loser_ids), plan=plan, status=MergeStatus.PENDING, outcome=None, error=None,
                       created_at=now or utcnow(), done_at=None)
        try:
            with self._session.begin_nested():  # another pass may record the same set at the same time
                self._session.add(row)
        except IntegrityError:
            found = self.find(connection, object_name, key)
            if found is None:
                raise
            return found
        return _record(row)

    def finish(self, merge_id: int, *, outcome: dict[str, Any] | None = None, error: str | None = None,
               now: datetime | None = None) -> None:
        """Close a pending merge: ``done`` with the CRM's outcome, or ``failed`` with the error.

        A merge another pass closed first keeps that pass's outcome.
        """
        self._session.execute(update(MergeRow).where(MergeRow.id == merge_id,
                                                     MergeRow.status == MergeStatus.PENDING).values(
            status=MergeStatus.FAILED if error is not None else MergeStatus.DONE, outcome=outcome, error=error,
            done_at=now or utcnow()))

    def list(self, connection: str | None = None, status: str | None = None) -> list[MergeRecord]:
        """Merges, oldest first, of a connection and status if given."""
        query = select(MergeRow).order_by(MergeRow.id)
        if connection is not None:
            query = query.where(MergeRow.connection == connection)
        if status is not None:
            query = query.where(MergeRow.status == status)
        return [_record(row) for row in self._session.scalars(query)]


@dataclass(frozen=True)
class ReviewItem:
    """A borderline pair for a data steward."""

    id: int
    left_key: str
    right_key: str
    score: float
    reasons: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


def _review(row: MatchReviewRow) -> ReviewItem:
    return ReviewItem(row.id, row.left_key, row.right_key, row.score, row.reasons, row.status, row.created_at,
                      row.decided_at, row.decided_by)


class Reviews:
    """Repository of the review queue."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def open_many(self, pairs: Sequence[tuple[str, str, float, str]], now: datetime | None = None) -> int:
        """Queue the pairs ``(left, right, score, reasons)`` not queued before (decided or not); returns how many."""
        known = {(r.left_key, r.right_key) for r in self._session.scalars(select(MatchReviewRow))}
        added = 0
        for left, right, score, reasons in pairs:
            a, b = sorted((left, right))
            if (a, b) in known:
                continue
            known.add((a, b))
            try:
                with self._session.begin_nested():  # another pass may queue the same pair at the same time
                    self._session.add(MatchReviewRow(left_key=a, right_key=b, score=score, reasons=reasons,
                                                     status=ReviewStatus.OPEN, created_at=now or utcnow(),
                                                     decided_at=None, decided_by=None))
            except IntegrityError:
                continue
            added += 1
        return added

    def decide(self, review_id: int, same: bool, by: str, now: datetime | None = None) -> ReviewItem:
        """Record a steward's decision.

        Raises:
            KeyError: no review item ``review_id``.
        """
        row = self._session.get(MatchReviewRow, review_id)
        if row is None:
            raise KeyError(f"no review item {review_id} (relay dedupe reviews lists them)")
        row.status = ReviewStatus.SAME if same else ReviewStatus.DIFFERENT
        row.decided_at = now or utcnow()
        row.decided_by = by
        self._session.flush()
        return _review(row)

    def decisions(self) -> dict[tuple[str, str], bool]:
        """Every decided pair: ``(left, right)`` -> same."""
        rows = self._session.scalars(select(MatchReviewRow).where(MatchReviewRow.status != ReviewStatus.OPEN))
        return {(r.left_key, r.right_key): r.status == ReviewStatus.SAME for r in rows}

    def list(self, status: str | None = None) -> list[ReviewItem]:
        """Review items, oldest first, of a status if given."""
        query = select(MatchReviewRow).order_by(MatchReviewRow.id)
        if status is not None:
            query = query.where(MatchReviewRow.status == status)
        return [_review(row) for row in self._session.scalars(query)]


@dataclass(frozen=True)
class ReviewTask:
    """An open review item with its steward task, if it has one."""

    id: int
    left_key: str
    right_key: str
    score: float
    reasons: str
    task_connection: str | None
    task_id: str | None


class ReviewTasks:
    """The review items' steward tasks."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def open(self) -> list[ReviewTask]:
        """Open review items, oldest first."""
        rows = self._session.scalars(select(MatchReviewRow).where(MatchReviewRow.status == ReviewStatus.OPEN)
                                     .order_by(MatchReviewRow.id))
        return [ReviewTask(r.id, r.left_key, r.right_key, r.score, r.reasons, r.task_connection, r.task_id)
                for r in rows]

    def set_task(self, review_id: int, connection: str, task_id: str) -> None:
        """Remember the steward task created for a review item."""
        self._session.execute(update(MatchReviewRow).where(MatchReviewRow.id == review_id).values(
            task_connection=connection, task_id=task_id))
