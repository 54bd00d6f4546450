"""The API budget in Relay's store: rows per connection and window, shared by processes that never overspend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from connector.adapters.budget import (
    DAY,
    WINDOW,
    BudgetDeadlineExceeded,
    BudgetLimits,
    Governor,
    LimitSetting,
    Observation,
    Priority,
)
from connector.adapters.retry import Deadline
from connector.pipeline.budget import StoreLedger
from connector.store.db import create_engine_for
from connector.store.errors import InvalidStoreValue
from connector.store.repositories import BudgetRecord, Repositories

from .conftest import Database


def test_lock_creates_both_rows_and_save_round_trips(db: Database) -> None:
    with db.sessions.begin() as session:
        budgets = Repositories(session).budgets
        rows = budgets.lock("hubspot")
        assert set(rows) == {WINDOW, DAY}
        assert rows[DAY].spent == 0 and rows[WINDOW].grants == []
        budgets.save([
            BudgetRecord("hubspot", WINDOW, spent=3, limit_seen=190, grants=[["abc", 1_700_000_000.5, 3]],
                         seen={"window_remaining": 187}),
            BudgetRecord("hubspot", DAY, spent=42, limit_seen=650_000, period="2026-12-07"),
        ], now=datetime(2026, 12, 7, 12, tzinfo=UTC))
    with db.sessions() as session:
        stored = Repositories(session).budgets.get("hubspot")
        assert Repositories(session).budgets.connections() == ["hubspot"]
    assert stored[WINDOW].grants == [["abc", 1_700_000_000.5, 3]]
    assert stored[WINDOW].seen == {"window_remaining": 187}
    assert (stored[DAY].spent, stored[DAY].limit_seen, stored[DAY].period) == (42, 650_000, "2026-12-07")
    assert stored[DAY].updated_at == datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_the_table_is_what_the_migration_made(db: Database) -> None:
    columns = {c["name"]: c for c in inspect(db.engine).get_columns("api_budgets")}
    assert set(columns) == {"connection", "kind", "limit_seen", "spent", "period", "grants", "seen", "updated_at"}
    assert inspect(db.engine).get_pk_constraint("api_budgets")["constrained_columns"] == ["connection", "kind"]


@pytest.mark.parametrize(("record", "named"), [
    (BudgetRecord("hubspot", "hour"), "api_budgets[hubspot/hour].kind: 'hour' is not one of window, day"),
    (BudgetRecord("hubspot", DAY, spent=-1), "api_budgets[hubspot/day].spent: expected a non-negative integer"),
    (BudgetRecord("hubspot", DAY, period="07/12/2026"), "api_budgets[hubspot/day].period"),
    (BudgetRecord("hubspot", DAY, limit_seen=0), "api_budgets[hubspot/day].limit_seen"),
    (BudgetRecord("hubspot", WINDOW, grants=[["a", "noon", 1]]), "api_budgets[hubspot/window].grants[0]"),
])
def test_bad_values_are_refused_naming_the_row_and_field(db: Database, record: BudgetRecord, named: str) -> None:
    with db.sessions.begin() as session:
        budgets = Repositories(session).budgets
        budgets.lock("hubspot")
        with pytest.raises(InvalidStoreValue, match=named.replace("[", r"\[").replace("]", r"\]")):
            budgets.save([record])


def test_the_ledger_learns_from_headers_and_keeps_it(db: Database) -> None:
    limits = BudgetLimits(window=LimitSetting(190), window_seconds=10, day=LimitSetting(650_000), reserve_percent=0)
    governor = Governor("hubspot", StoreLedger(db.engine), limits, priority=Priority.REALTIME)
    governor.acquire("read")
    governor.observe(Observation(window_limit=100, window_remaining=40, day_limit=1_000_000, day_used=5_000))
    governor.release()
    state = StoreLedger(db.engine).state("hubspot")
    assert state.window.limit_seen == 100 and state.day.limit_seen == 1_000_000
    assert state.window.spent(datetime.now(UTC).timestamp(), limits.span) == 60  # the portal counted 60 calls
    assert state.day.spent == 5_000
    assert state.seen is not None and state.seen["window_remaining"] == 40


def test_processes_on_one_database_never_spend_more_than_the_limit_together(db: Database) -> None:
    """Four workers, each with its own engine (its own connections), race for a window of 100 calls."""
    limits = BudgetLimits(window=LimitSetting(100), window_seconds=60, day=LimitSetting(1_000), reserve_percent=0,
                          block=7)
    spent: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def worker() -> None:
        engine = create_engine_for(db.url)
        governor = Governor("hubspot", StoreLedger(engine), limits, priority=Priority.REALTIME)
        calls = 0
        try:
            start.wait()
            while True:
                governor.acquire("read", deadline=Deadline(5))
                calls += 1
        except BudgetDeadlineExceeded:
            pass
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            failures.append(exc)
        finally:
            governor.release()
            spent.append(calls)
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(spent) == 4
    assert sum(spent) <= 100
    assert sum(spent) >= 100 - 3 * limits.block  # at most the blocks others held when each gave up
    with db.sessions() as session:
        rows = Repositories(session).budgets.get("hubspot")
    assert rows[DAY].spent == sum(spent)  # every unspent token came back
    assert sum(int(g[2]) for g in rows[WINDOW].grants) == sum(spent)
