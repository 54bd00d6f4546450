"""Sync runs: start one per connection, count what it did, finish it, recover crashed ones."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from connector.store._types import scrub_text
from connector.store.errors import (
    InvalidStoreValue,
    RunNotFound,
    RunNotRunning,
    RunSuperseded,
    SyncAlreadyRunning,
)
from connector.store.models import (
    CONNECTION_LEN,
    HOLDER_LEN,
    OBJECT_LEN,
    ONE_RUNNING_WHERE,
    ApiCallRow,
    SyncMode,
    SyncRunRow,
    SyncStatus,
)
from connector.store.repositories._common import (
    enum_value,
    insert_or_ignore,
    optional_text,
    text_value,
    when,
)

COUNT_KEYS = ("read", "changed", "routed", "tasks", "api_calls", "errors")
"""Counts every run carries (starting at zero); other non-negative counts may be added."""

FINAL_STATUSES = (SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.CRASHED)


@dataclass(frozen=True)
class SyncRun:
    """A sync run as stored."""

    id: int
    connection: str
    object: str | None
    mode: SyncMode
    status: SyncStatus
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    error: str | None
    holder: str | None = None
    """The process running it (``host:pid:start``), when it said."""


def _run(row: SyncRunRow) -> SyncRun:
    return SyncRun(
        id=row.id,
        connection=row.connection,
        object=row.object,
        mode=SyncMode(row.mode),
        status=SyncStatus(row.status),
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        counts=dict(row.counts),
        error=row.error,
        holder=row.holder,
    )


def _checked_counts(counts: Mapping[str, int], where: str) -> dict[str, int]:
    checked: dict[str, int] = {}
    for key, value in counts.items():
        if not isinstance(key, str) or not key:
            raise InvalidStoreValue(f"{where}: count names must be non-empty text, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidStoreValue(
                f"{where}[{key!r}]: expected a non-negative integer, got {value!r}"
            )
        checked[key] = value
    return checked


class SyncRuns:
    """Repository of sync runs. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def start(
        self,
        connection: str,
        mode: SyncMode | str,
        *,
        object_name: str | None = None,
        now: datetime | None = None,
        take_over_stale_before: datetime | None = None,
        holder: str | None = None,
    ) -> int:
        """Start a sync run for ``connection``.

        The database holds at most one running full or incremental sync per connection
        (partial unique index); a second start is refused. ``events`` runs (the records
        pushed to Relay, read by id; no cursor moves) run beside it and beside each other.

        Args:
            connection: Connection name, e.g. ``"salesforce-prod"``.
            mode: ``full``, ``incremental`` or ``events``.
            object_name: The one CRM object this run reads, or ``None`` for all.
            now: Start time (aware); defaults to the current time.
            take_over_stale_before: If given, a running sync of this connection whose
                last heartbeat is older than this is first marked ``crashed``, so this
                run takes over from a process that died. Pass ``now - threshold`` to
                take over only a silent run; pass ``now`` (or later) to take over any
                running sync, live or not (``--force``). The run taken over learns it
                was superseded at its next heartbeat (:class:`RunSuperseded`), and its
                error names the run that took over.
            holder: The process that runs it (``host:pid:start``), so that a take-over can
                tell at once when that process is gone.

        Returns:
            The new run's id.

        Raises:
            SyncAlreadyRunning: If the connection already has a running sync (its id,
                start and last heartbeat are on the exception).
            InvalidStoreValue: If an argument is malformed.
        """
        connection = text_value(connection, "sync_runs.connection", CONNECTION_LEN)
        sync_mode = enum_value(SyncMode, mode, "sync_runs.mode")
        object_name = optional_text(object_name, "sync_runs.object", OBJECT_LEN)
        started_at = when(now, "sync_runs.started_at")
        taken_over: list[int] = []
        events = sync_mode is SyncMode.EVENTS
        if take_over_stale_before is not None:
            taken_over = self.mark_stale_runs_crashed(connection, take_over_stale_before, now=started_at,
                                                      events=events)
        values = {
            "connection": connection,
            "object": object_name,
            "mode": sync_mode.value,
            "status": SyncStatus.RUNNING.value,
            "started_at": started_at,
            "heartbeat_at": started_at,
            "counts": dict.fromkeys(COUNT_KEYS, 0),
            "holder": optional_text(holder, "sync_runs.holder", HOLDER_LEN),
        }
        if events:  # side by side with any other run: nothing to refuse
            return int(self._session.execute(insert(SyncRunRow).values(**values).returning(SyncRunRow.id)).scalar_one())
        row = None
        for _attempt in range(2):
            row = insert_or_ignore(
                self._session,
                SyncRunRow,
                values,
                conflict_columns=["connection"],
                conflict_where=text(ONE_RUNNING_WHERE),  # the index's own predicate, as a literal
                returning=[SyncRunRow.id],
            )
            if row is not None:
                break
            running = self.running(connection)
            if running is not None:
                raise SyncAlreadyRunning(connection, running.id, running.started_at, running.heartbeat_at)
            # The running sync finished between our insert and our look: try once more.
        if row is None:
            raise SyncAlreadyRunning(connection, None, None)
        run_id: int = row[0]
        for old_id in taken_over:
            self._session.execute(
                update(SyncRunRow)
                .where(SyncRunRow.id == old_id)
                .values(error=func.coalesce(SyncRunRow.error, "") + f"; taken over by run {run_id}")
                .execution_options(synchronize_session=False)
            )
        return run_id

    def get(self, run_id: int) -> SyncRun:
        """Return the run with ``run_id``.

        Raises:
            RunNotFound: If there is none.
        """
        row = self._session.get(SyncRunRow, run_id, populate_existing=True)
        if row is None:
            raise RunNotFound(run_id)
        return _run(row)

    def running(self, connection: str) -> SyncRun | None:
        """Return the running full or incremental sync of ``connection``, if any (events runs run beside it)."""
        row = self._session.scalars(
            select(SyncRunRow)
            .where(
                SyncRunRow.connection == connection, SyncRunRow.status == SyncStatus.RUNNING.value,
                SyncRunRow.mode != SyncMode.EVENTS.value,
            )
            .execution_options(populate_existing=True)
        ).first()
        return _run(row) if row else None

    def recent(
        self, connection: str | None = None, limit: int = 20, *, modes: Collection[SyncMode] | None = None
    ) -> list[SyncRun]:
        """Return the latest runs, newest first, optionally of one connection and of some modes.

        Each :class:`SyncRun` carries what ``relay runs list`` shows: id, connection,
        object, mode, status, start, last heartbeat, finish, counts and error.
        """
        query = select(SyncRunRow).order_by(SyncRunRow.id.desc()).limit(limit)
        if connection is not None:
            query = query.where(SyncRunRow.connection == connection)
        if modes is not None:
            query = query.where(SyncRunRow.mode.in_(sorted(mode.value for mode in modes)))
        return [
            _run(row)
            for row in self._session.scalars(query.execution_options(populate_existing=True))
        ]

    def heartbeat(self, run_id: int, *, now: datetime | None = None) -> None:
        """Record that the running sync ``run_id`` is alive (call once per page).

        Raises:
            RunNotFound: If there is no such run.
            RunSuperseded: If the run was marked crashed meanwhile (another sync took
                over): the caller must stop, and roll back the page it is writing.
            RunNotRunning: If the run was finished meanwhile.
        """
        at = when(now, "sync_runs.heartbeat_at")
        self._update_running(run_id, {"heartbeat_at": at})

    def add_counts(
        self, run_id: int, counts: Mapping[str, int], *, now: datetime | None = None
    ) -> SyncRun:
        """Add ``counts`` to the running sync's counts and refresh its heartbeat.

        Args:
            run_id: The running sync.
            counts: Increments, e.g. ``{"read": 200, "changed": 17, "api_calls": 1}``.
            now: Heartbeat time; defaults to the current time.

        Returns:
            The run with its new counts.

        Raises:
            RunSuperseded: If another sync took over the run (see :meth:`heartbeat`).
            RunNotRunning: If the run was finished meanwhile.
        """
        increments = _checked_counts(counts, "sync_runs.counts")
        current = self._require_running(run_id)
        merged = dict(current.counts)
        for key, value in increments.items():
            merged[key] = merged.get(key, 0) + value
        self._update_running(
            run_id, {"counts": merged, "heartbeat_at": when(now, "sync_runs.heartbeat_at")}
        )
        return self.get(run_id)

    def finish(
        self,
        run_id: int,
        status: SyncStatus | str,
        *,
        counts: Mapping[str, int] | None = None,
        error: str | None = None,
        now: datetime | None = None,
    ) -> SyncRun:
        """Finish the running sync ``run_id``.

        Args:
            run_id: The running sync.
            status: ``succeeded`` or ``failed`` (or ``crashed``).
            counts: Final increments to add to the run's counts. If API calls were
                counted for this run with :class:`ApiCalls`, their total becomes
                ``counts["api_calls"]``.
            error: What went wrong, for a failed run.
            now: Finish time; defaults to the current time.

        Returns:
            The finished run.

        Raises:
            RunSuperseded: If another process marked it crashed and took over.
            RunNotRunning: If the run is not running any more for another reason.
        """
        final = enum_value(SyncStatus, status, "sync_runs.status")
        if final not in FINAL_STATUSES:
            raise InvalidStoreValue(
                f"sync_runs.status: a run finishes as one of {', '.join(FINAL_STATUSES)}, not {final.value!r}"
            )
        increments = _checked_counts(counts or {}, "sync_runs.counts")
        current = self._require_running(run_id)
        merged = dict(current.counts)
        for key, value in increments.items():
            merged[key] = merged.get(key, 0) + value
        counted_calls = self._session.scalar(
            select(func.coalesce(func.sum(ApiCallRow.count), 0)).where(ApiCallRow.run_id == run_id)
        )
        if counted_calls:
            merged["api_calls"] = int(counted_calls)
        finished_at = when(now, "sync_runs.finished_at")
        self._update_running(
            run_id,
            {
                "status": final.value,
                "finished_at": finished_at,
                "counts": merged,
                "error": None if error is None else scrub_text(error),
            },
        )
        return self.get(run_id)

    def mark_stale_runs_crashed(
        self, connection: str, older_than: datetime, *, now: datetime | None = None, events: bool = False
    ) -> list[int]:
        """Mark running syncs of ``connection`` whose last heartbeat is before ``older_than`` as crashed.

        A run whose process was killed stays ``running`` and blocks the connection;
        this frees it. ``events`` picks the events runs instead of the full and
        incremental ones (a dead worker's events run blocks nothing, but should not
        show as running). Returns the ids of the runs marked crashed.
        """
        cutoff = when(older_than, "older_than")
        finished_at = when(now, "sync_runs.finished_at")
        result = self._session.execute(
            update(SyncRunRow)
            .where(
                SyncRunRow.connection == connection,
                SyncRunRow.status == SyncStatus.RUNNING.value,
                SyncRunRow.heartbeat_at < cutoff,
                (SyncRunRow.mode == SyncMode.EVENTS.value) if events else (SyncRunRow.mode != SyncMode.EVENTS.value),
            )
            .values(
                status=SyncStatus.CRASHED.value,
                finished_at=finished_at,
                error=f"no heartbeat since before {cutoff.isoformat()}; marked crashed",
            )
            .returning(SyncRunRow.id)
            .execution_options(synchronize_session=False)
        )
        return [row[0] for row in result]

    def mark_gone_events_runs_crashed(
        self, connection: str, is_gone: Callable[[str], bool], *, now: datetime | None = None
    ) -> list[int]:
        """Mark running events runs of ``connection`` whose process ``is_gone`` says is dead as crashed; their ids.

        A worker killed on this host leaves its events run ``running``; its events are taken
        again at once (their claims are freed), and its run should not show as going on.
        """
        rows = self._session.execute(
            select(SyncRunRow.id, SyncRunRow.holder).where(
                SyncRunRow.connection == connection, SyncRunRow.status == SyncStatus.RUNNING.value,
                SyncRunRow.mode == SyncMode.EVENTS.value)
        ).all()
        gone = [run_id for run_id, holder in rows if holder and is_gone(holder)]
        if not gone:
            return []
        self._session.execute(
            update(SyncRunRow)
            .where(SyncRunRow.id.in_(gone), SyncRunRow.status == SyncStatus.RUNNING.value)
            .values(status=SyncStatus.CRASHED.value, finished_at=when(now, "sync_runs.finished_at"),
                    error="its process is gone (killed); marked crashed")
            .execution_options(synchronize_session=False)
        )
        return gone

    def _require_running(self, run_id: int) -> SyncRun:
        run = self.get(run_id)
        if run.status is SyncStatus.CRASHED:
            raise RunSuperseded(run_id, run.error)
        if run.status is not SyncStatus.RUNNING:
            raise RunNotRunning(run_id, run.status.value)
        return run

    def _update_running(self, run_id: int, values: dict[str, Any]) -> None:
        result = self._session.execute(
            update(SyncRunRow)
            .where(SyncRunRow.id == run_id, SyncRunRow.status == SyncStatus.RUNNING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            self._require_running(run_id)
            raise RunNotRunning(run_id, "unknown")
