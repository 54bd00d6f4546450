"""The API governor's ledger in Relay's database, and the governor of a connection's run.

:class:`StoreLedger` keeps each connection's budget in ``api_budgets`` (one row per window),
so every process and worker on the same database (SQLite for one machine, PostgreSQL for
many) spends one budget: a round trip is one transaction that locks the connection's rows,
settles (:func:`connector.adapters.budget.settle`) and writes them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.budget import (
    DAY,
    WINDOW,
    BudgetLimits,
    BudgetState,
    DayState,
    Governor,
    Grant,
    Priority,
    Seen,
    Unused,
    WindowState,
    budget_limits,
    settle,
    utc_day,
)
from connector.config.connection import ConnectionSettings
from connector.store.db import session_factory
from connector.store.models import OutboxStatus
from connector.store.repositories import BudgetRecord, Repositories, SyncRun


class StoreLedger:
    """A :class:`~connector.adapters.budget.BudgetLedger` in Relay's database.

    Args:
        engine: Relay's database (migrated).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    def take(
        self,
        connection: str,
        limits: BudgetLimits,
        *,
        priority: Priority,
        want: int,
        returns: Sequence[Unused] = (),
        seen: Seen | None = None,
    ) -> Grant:
        """One round trip in one transaction (see :meth:`connector.adapters.budget.BudgetLedger.take`)."""
        with self._sessions.begin() as session:
            budgets = Repositories(session).budgets
            records = budgets.lock(connection)
            now = budgets.clock()
            state = state_of(records)
            grant = settle(state, limits, now=now, priority=priority, want=want, returns=returns, seen=seen)
            budgets.save(records_of(connection, state, limits, now), now=datetime.fromtimestamp(now, UTC))
        return grant

    def state(self, connection: str) -> BudgetState:
        """The connection's stored state (for reports; nothing is locked)."""
        with self._sessions() as session:
            return state_of(Repositories(session).budgets.get(connection))


def state_of(records: dict[str, BudgetRecord]) -> BudgetState:
    """The governor's state from the stored rows (missing rows: nothing counted yet)."""
    window, day = records.get(WINDOW), records.get(DAY)
    seen = (day.seen if day is not None else None) or (window.seen if window is not None else None)
    return BudgetState(
        window=WindowState(limit_seen=window.limit_seen, grants=[list(g) for g in window.grants])
        if window is not None else WindowState(),
        day=DayState(limit_seen=day.limit_seen, period=day.period, spent=day.spent) if day is not None else DayState(),
        seen=seen,
    )


def records_of(connection: str, state: BudgetState, limits: BudgetLimits, now: float) -> list[BudgetRecord]:
    """The rows that store ``state``."""
    return [
        BudgetRecord(connection=connection, kind=WINDOW, spent=state.window.spent(now, limits.span),
                     limit_seen=state.window.limit_seen, grants=state.window.grants, seen=state.seen),
        BudgetRecord(connection=connection, kind=DAY, spent=state.day.spent, limit_seen=state.day.limit_seen,
                     period=state.day.period, seen=state.seen),
    ]


def open_governor(
    name: str, settings: ConnectionSettings, engine: Engine, priority: Priority | str = Priority.BACKGROUND
) -> Governor:
    """The governor of connection ``name`` for a run of ``priority``, its budget in ``engine``'s database.

    Args:
        name: The connection's name.
        settings: Its settings (the limits: ``api_window_limit``, ``api_daily_limit``,
            ``api_reserve_percent``, ``api_budget_block`` and the unit's documented defaults).
        engine: Relay's database, shared by every process of the connection.
        priority: ``realtime`` (events runs, form capture) or ``background`` (full and incremental syncs).
    """
    return Governor(name, StoreLedger(engine), budget_limits(settings), priority=Priority(priority),
                    crm=str(settings.kind))


@dataclass(frozen=True)
class LimitUse:
    """One limit of a connection now: calls counted, the limit in force, the calls kept for real time."""

    used: int
    limit: int
    reserve: int


@dataclass(frozen=True)
class ConnectionStatus:
    """What ``relay status`` shows of one connection.

    Attributes:
        name: The connection's name.
        kind: Its CRM.
        window: The short window now (None: the CRM has none).
        window_seconds: The window's length.
        day: The day's calls (None: no daily limit).
        seen: What the last answer's headers said (with ``at``), or None.
        last_run: The latest sync run, or None.
        outbox_pending: Messages waiting to be sent (pending, or failed and to be retried).
    """

    name: str
    kind: str
    window: LimitUse | None
    window_seconds: float
    day: LimitUse | None
    seen: dict[str, Any] | None
    last_run: SyncRun | None
    outbox_pending: int


def connection_status(
    name: str, settings: ConnectionSettings, engine: Engine, *, now: float | None = None
) -> ConnectionStatus:
    """The budget, last run and outbox of connection ``name`` as its store holds them now.

    Args:
        name: The connection's name.
        settings: Its settings (the configured limits).
        engine: Relay's database.
        now: Epoch seconds (default: the database's clock).
    """
    limits = budget_limits(settings)
    with session_factory(engine)() as session:
        repos = Repositories(session)
        records = repos.budgets.get(name)
        moment = now if now is not None else repos.budgets.clock()
        runs = repos.sync_runs.recent(name, limit=1)
        outbox = repos.outbox.counts(name)
    state = state_of(records)
    window = day = None
    if limits.window is not None:
        limit = limits.window.effective(state.window.limit_seen)
        window = LimitUse(state.window.spent(moment, limits.span), limit, limits.reserve(limit))
    if limits.day is not None:
        limit = limits.day.effective(state.day.limit_seen)
        used = state.day.spent if state.day.period == utc_day(moment) else 0
        day = LimitUse(used, limit, limits.reserve(limit))
    return ConnectionStatus(
        name=name, kind=str(settings.kind), window=window, window_seconds=limits.window_seconds, day=day,
        seen=state.seen, last_run=runs[0] if runs else None,
        outbox_pending=outbox[OutboxStatus.PENDING] + outbox[OutboxStatus.FAILED],
    )


def inbox_backlog(engine: Engine) -> dict[str, int]:
    """Webhook events not yet processed (all connections): ``waiting``, ``claimed``, ``expired``."""
    with session_factory(engine)() as session:
        return Repositories(session).inbox.backlog(now=datetime.now(UTC))
