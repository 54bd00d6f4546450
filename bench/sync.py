"""Sync N leads from each sandbox CRM and compare the API calls made with the minimum.

The minimum is what the batch limits allow: for every object, records read ÷ page
size (rounded up), plus, for every kind of write, records written ÷ write batch size
(rounded up). Relay's own overhead (auth, owners, creating its HubSpot properties)
comes on top. Target: within 10% of the minimum.

    python bench/sync.py --leads 10000 [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from connector.config.loader import load_config
from connector.pipeline.sync import run_sync
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.salesforce import SalesforceSandbox
from connector.sandbox.seed import generate
from connector.store.migrate import open_store


def _minimum_calls(read: Counter[str], page_size: int, writes: Counter[str], batch_size: int) -> int:
    reads = sum(math.ceil(n / page_size) for n in read.values() if n)
    return reads + sum(math.ceil(n / batch_size) for n in writes.values() if n)


def _write_counts(ledger_entries: list[dict]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in ledger_entries:
        if entry["records_written"] and entry["method"] in ("POST", "PATCH", "PUT", "DELETE"):
            counts[f"{entry['method']} {entry['kind'] or entry['path']}"] += entry["records_written"]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    args = parser.parse_args()

    started = time.perf_counter()
    data = generate(seed=args.seed, leads=args.leads, anchor=datetime(2026, 1, 5, 9, tzinfo=UTC))
    print(f"seed data for {args.leads:,} leads generated in {time.perf_counter() - started:.1f} s")
    sf = SalesforceSandbox(data, daily_limit=10_000_000)
    hs = HubSpotSandbox(data, ten_second_limit=1_000_000, daily_limit=100_000_000, search_per_second=1000)
    sf_server, hs_server = sf.start(), hs.start()
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    url = f"sqlite:///{tmp / 'relay.db'}" if args.database == "sqlite" else args.database
    try:
        env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_server.url, HUBSPOT_BASE_URL=hs_server.url)
        config = load_config(env=env)
        engine = open_store(url)
        rows = []
        for name, sandbox in (("salesforce", sf), ("hubspot", hs)):
            conn = config.connection(name)
            for attempt in ("first", "second"):
                sandbox.ledger.reset()
                summary = run_sync(config, name, engine)
                entries = [e.__dict__ for e in sandbox.ledger.entries()]
                read = Counter({obj: n for obj, n in summary.read.items()})
                owners_objects = [m for m, om in config.mapping_for(name).objects.items() if om.entity == "owner"]
                for obj in owners_objects:
                    read.pop(obj, None)  # the owners list is overhead, not the records synced
                writes = _write_counts(entries)
                minimum = _minimum_calls(read, conn.page_size, writes, conn.write_batch_size)
                rows.append(
                    (name, attempt, summary.records_read, sum(writes.values()), summary.seconds,
                     len(entries), summary.api_call_total, minimum)
                )
        engine.dispose()
    finally:
        hs.stop()
        sf.stop()

    print(f"\n{'connection':<11}{'run':<7}{'read':>8}{'written':>9}{'seconds':>9}{'rec/s':>8}"
          f"{'calls(server)':>14}{'calls(relay)':>13}{'minimum':>9}{'over min':>10}")
    for name, attempt, read_n, written, seconds, server_calls, relay_calls, minimum in rows:
        over = (server_calls - minimum) / minimum * 100 if minimum else float("nan")
        print(f"{name:<11}{attempt:<7}{read_n:>8,}{written:>9,}{seconds:>9.1f}{read_n / seconds:>8,.0f}"
              f"{server_calls:>14}{relay_calls:>13}{minimum:>9}{over:>9.1f}%")
    print("\nminimum = reads ÷ page size + writes ÷ batch size, per object and kind of write;"
          " 'over min' counts every call the sandbox received (auth, owners, properties included).")


if __name__ == "__main__":
    main()
