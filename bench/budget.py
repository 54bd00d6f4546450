"""What the API governor costs per call: calls per second with and without it, side by side.

Two measures, each with no governor, the in-memory ledger, the SQLite store and (when
``RELAY_TEST_POSTGRES_URL`` is set) PostgreSQL (a schema of its own, dropped afterwards):

* ``tokens/s``: ``Governor.acquire`` alone, no HTTP, for blocks of 1 and of ``--block``
  tokens per ledger round trip: the governor's own cost per call;
* ``calls/s``: real calls through the HubSpot adapter (a batch read by id) against the
  sandbox HubSpot in this process, whose limits are set far above what the run makes, so
  the governor never waits and only its overhead shows.

    python bench/budget.py [--calls 2000] [--block 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connector.adapters.budget import (
    BudgetLedger,
    BudgetLimits,
    Governor,
    LimitSetting,
    MemoryLedger,
    Priority,
)
from connector.adapters.retry import RetryPolicy
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.pipeline.budget import StoreLedger
from connector.store import migrate
from connector.store.db import create_engine_for
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.seed import generate

HUGE = 10**9


def limits(block: int) -> BudgetLimits:
    """Limits the run never reaches: only the governor's overhead is measured.

    The window is short (0.8 s counted in all), so its log of grants holds about as many as a
    real HubSpot window does at its limit (190 calls: 19 grants of 10), not thousands.
    """
    return BudgetLimits(window=LimitSetting(HUGE), window_seconds=0.5, lease_seconds=0.2, margin_seconds=0.1,
                        day=LimitSetting(HUGE), reserve_percent=20, block=block)


@contextmanager
def ledgers() -> Iterator[list[tuple[str, Callable[[], BudgetLedger]]]]:
    """The ledgers to compare, each a factory giving a fresh one."""
    with tempfile.TemporaryDirectory() as scratch:
        made: list[tuple[str, Callable[[], BudgetLedger]]] = [("memory", MemoryLedger)]
        counter = iter(range(1_000_000))

        def sqlite() -> BudgetLedger:
            engine = create_engine_for(f"sqlite:///{Path(scratch) / f'relay{next(counter)}.db'}")
            migrate.upgrade(engine)
            return StoreLedger(engine)

        made.append(("sqlite", sqlite))
        postgres = os.environ.get("RELAY_TEST_POSTGRES_URL")
        if not postgres:
            yield made
            return
        schema = f"relay_bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine_for(postgres)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            engine = create_engine_for(url)
            migrate.upgrade(engine)

            def postgresql() -> BudgetLedger:
                with engine.begin() as connection:
                    connection.exec_driver_sql("DELETE FROM api_budgets")
                return StoreLedger(engine)

            made.append(("postgresql", postgresql))
            yield made
            engine.dispose()
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()


def tokens_per_second(ledger: BudgetLedger, block: int, count: int) -> float:
    """``acquire`` alone, ``count`` times."""
    governor = Governor("bench", ledger, limits(block), priority=Priority.BACKGROUND)
    started = time.perf_counter()
    for _ in range(count):
        governor.acquire("read")
    governor.release()
    return count / (time.perf_counter() - started)


def calls_per_second(url: str, ids: list[str], governor: Governor | None, count: int) -> float:
    """``count`` batch reads through the adapter (with ``governor``, or none)."""
    adapter = HubSpotAdapter("bench", url, "sandbox-token", governor=governor, retry=RetryPolicy(max_attempts=1),
                             searches_per_second=10_000)
    adapter.read_ids("contacts", ["email"], ids)  # connections warm
    started = time.perf_counter()
    for _ in range(count):
        adapter.read_ids("contacts", ["email"], ids)
    elapsed = time.perf_counter() - started
    adapter.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per measure (default 2000)")
    parser.add_argument("--block", type=int, default=10, help="tokens per ledger round trip (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of each measure (default 3)")
    args = parser.parse_args()
    sandbox = HubSpotSandbox(generate(seed=1, leads=5), ten_second_limit=HUGE, daily_limit=HUGE,
                             search_per_second=HUGE)
    sandbox.start()
    try:
        assert sandbox.server is not None
        url = str(sandbox.server.url)
        listed = requests.get(f"{url}/crm/v3/objects/contacts", params={"limit": 1}, timeout=10,
                              headers={"Authorization": "Bearer sandbox-token"}).json()
        ids = [str(row["id"]) for row in listed["results"]]
        best: dict[str, float] = {}

        def keep(key: str, value: float) -> None:
            best[key] = max(best.get(key, 0.0), value)

        with ledgers() as choices:
            for _ in range(args.repeat):  # interleaved, so a busy moment does not favour one column
                keep("bare", calls_per_second(url, ids, None, args.calls))
                for name, make in choices:
                    keep(f"{name}/1", tokens_per_second(make(), 1, args.calls))
                    keep(f"{name}/n", tokens_per_second(make(), args.block, args.calls))
                    keep(f"{name}/calls", calls_per_second(url, ids, Governor("bench", make(), limits(args.block)),
                                                           args.calls))
            bare = best["bare"]
            rows = [("no governor", "-", "-", f"{bare:,.0f}", "100%")]
            for name, _ in choices:
                governed = best[f"{name}/calls"]
                rows.append((name, f"{best[f'{name}/1']:,.0f}", f"{best[f'{name}/n']:,.0f}", f"{governed:,.0f}",
                             f"{governed / bare:.0%}"))
    finally:
        sandbox.stop()
    header = ("ledger", "tokens/s (block 1)", f"tokens/s (block {args.block})",
              f"calls/s (block {args.block})", "of no governor")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) if i else str(cell).ljust(width)
                        for i, (cell, width) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
