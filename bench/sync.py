"""Sync N leads from each sandbox CRM: API calls against the minimum, time, and an incremental run.

For each connection, three runs on one store:

* ``first``: a first (full) sync into an empty store;
* ``second``: once the read lag passed, reading back Relay's own writes (nothing to decide,
  nothing written);
* ``touched`` and ``rescored``: scheduled incremental runs after ``--changed`` (1 %) of the
  people were edited in the CRM through its API: a field Relay does not map (their modified
  time moves; nothing to decide), then their title (their score moves: decided, written).

The minimum is what the batch limits allow: for every object, records read ÷ page size
(rounded up), plus, for every kind of write, records written ÷ write batch size (rounded
up); Relay's own overhead (auth, owners, its HubSpot properties) comes on top. Goals: a
first sync within 10 % of the minimum; an incremental run with 1 % changed at most 2 % of a
first sync's calls (the writes a rescore needs come on top of the read).

``--baseline REV`` also runs the benchmark of git revision REV (a temporary worktree, its own
``bench/sync.py``) and prints the first-sync times side by side: same machine, same data.

    python bench/sync.py --leads 10000 [--database sqlite|postgresql://...] [--baseline 0151d83]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.sync import run_sync
from connector.store.migrate import open_store
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import generate

REPO = Path(__file__).resolve().parents[1]
OVERLAP = {"hubspot": 125.0}
"""Seconds the incremental run waits past the one before, per connection (HubSpot re-reads 2 minutes)."""


@dataclass
class Row:
    connection: str
    run: str
    read: int
    written: int
    seconds: float
    server_calls: int
    relay_calls: int
    minimum: int


def _minimum_calls(read: Counter[str], page_size: int, writes: Counter[str], batch_size: int) -> int:
    reads = sum(math.ceil(n / page_size) for n in read.values() if n)
    return reads + sum(math.ceil(n / batch_size) for n in writes.values() if n)


def _write_counts(ledger_entries: list[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in ledger_entries:
        if entry["records_written"] and entry["method"] in ("POST", "PATCH", "PUT", "DELETE"):
            counts[f"{entry['method']} {entry['kind'] or entry['path']}"] += entry["records_written"]
    return counts


def _edit_salesforce(url: str, fraction: float, seed_leads: list[dict[str, Any]], field: str, value: str) -> int:
    """Set ``field`` on ``fraction`` of the leads through the REST API, as a rep would."""
    token = httpx.post(f"{url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    ids = [lead["Id"] for lead in seed_leads][:: max(1, round(1 / fraction))]
    for start in range(0, len(ids), 200):
        records = [{"attributes": {"type": "Lead"}, "Id": i, field: value}
                   for i in ids[start:start + 200]]
        httpx.patch(f"{url}/services/data/v59.0/composite/sobjects", headers=headers,
                    json={"allOrNone": False, "records": records}).raise_for_status()
    return len(ids)


def _edit_hubspot(url: str, fraction: float, seed_contacts: list[dict[str, Any]], field: str, value: str) -> int:
    """Set ``field`` on ``fraction`` of the contacts through the batch API."""
    headers = {"Authorization": "Bearer sandbox-token"}
    ids = [str(contact["id"]) for contact in seed_contacts][:: max(1, round(1 / fraction))]
    for start in range(0, len(ids), 100):
        inputs = [{"id": i, "properties": {field: value}} for i in ids[start:start + 100]]
        httpx.post(f"{url}/crm/v3/objects/contacts/batch/update", headers=headers,
                   json={"inputs": inputs}).raise_for_status()
    return len(ids)


def _run(config: RelayConfig, name: str, run: str, engine: Any, sandbox: Any) -> Row:
    conn = config.connection(name)
    sandbox.ledger.reset()
    summary = run_sync(config, name, engine)
    entries = [e.__dict__ for e in sandbox.ledger.entries()]
    read = Counter(dict(summary.read.items()))
    for obj, mapping in config.mapping_for(name).objects.items():
        if mapping.entity == "owner":
            read.pop(obj, None)  # the owners list is overhead, not the records synced
    writes = _write_counts(entries)
    return Row(name, run, summary.records_read, sum(writes.values()), summary.seconds, len(entries),
               summary.api_call_total, _minimum_calls(read, conn.page_size, writes, conn.write_batch_size))


def measure(leads: int, seed: int, database: str, changed: float) -> list[Row]:
    started = time.perf_counter()
    data = generate(seed=seed, leads=leads, anchor=datetime(2026, 1, 5, 9, tzinfo=UTC))
    print(f"seed data for {leads:,} leads generated in {time.perf_counter() - started:.1f} s", flush=True)
    sf = SalesforceSandbox(data, daily_limit=10_000_000)
    hs = HubSpotSandbox(data, ten_second_limit=1_000_000, daily_limit=100_000_000, search_per_second=1000)
    sf_server, hs_server = sf.start(), hs.start()
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    url = f"sqlite:///{tmp / 'relay.db'}" if database == "sqlite" else database
    rows: list[Row] = []
    try:
        env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_server.url, HUBSPOT_BASE_URL=hs_server.url)
        config = load_config(env=env)
        engine = open_store(url)
        # "touched": a field Relay does not map (the record's modified time moves, nothing to decide);
        # "rescored": the title, which moves the score (decided again, written back).
        cases = {"salesforce": {"touched": ("Description", "Called back, no answer"),
                                "rescored": ("Title", "VP of Revenue Operations")},
                 "hubspot": {"touched": ("address", "1 Market Street"),
                             "rescored": ("jobtitle", "VP of Revenue Operations")}}
        edit = {"salesforce": lambda f, v: _edit_salesforce(sf_server.url, changed, data.salesforce["Lead"], f, v),
                "hubspot": lambda f, v: _edit_hubspot(hs_server.url, changed, data.hubspot["contacts"], f, v)}
        for name, sandbox in (("salesforce", sf), ("hubspot", hs)):
            lag = config.connection(name).read_lag_seconds + 1  # past it, what was written is due for reading
            rows.append(_run(config, name, "first", engine, sandbox))
            time.sleep(lag)
            rows.append(_run(config, name, "second", engine, sandbox))
            # A scheduled run comes minutes later: HubSpot's incremental search starts 2 minutes
            # before its checkpoint (search lags writes), so an earlier run would re-read the echo.
            for case, (field, value) in cases[name].items():
                time.sleep(OVERLAP.get(name, 0))
                edited = edit[name](field, value)
                time.sleep(lag)
                rows.append(_run(config, name, f"{case} {edited}", engine, sandbox))
        engine.dispose()
    finally:
        hs.stop()
        sf.stop()
    return rows


def print_rows(rows: list[Row]) -> None:
    print(f"\n{'connection':<11}{'run':<14}{'read':>8}{'written':>9}{'seconds':>9}{'rec/s':>8}"
          f"{'calls(server)':>14}{'calls(relay)':>13}{'minimum':>9}{'over min':>10}{'of first':>10}")
    first = {row.connection: row.server_calls for row in rows if row.run == "first"}
    for row in rows:
        over = (row.server_calls - row.minimum) / row.minimum * 100 if row.minimum else float("nan")
        share = row.server_calls / first[row.connection] * 100 if first.get(row.connection) else float("nan")
        print(f"{row.connection:<11}{row.run:<14}{row.read:>8,}{row.written:>9,}{row.seconds:>9.1f}"
              f"{row.read / row.seconds if row.seconds else 0:>8,.0f}{row.server_calls:>14}{row.relay_calls:>13}"
              f"{row.minimum:>9}{over:>9.1f}%{share:>9.1f}%")
    print("\nminimum = reads ÷ page size + writes ÷ batch size, per object and kind of write; 'over min' counts"
          " every call the sandbox received (auth, owners, properties included); 'of first' = calls as a share of"
          " the first sync's; 'touched/rescored N' = an incremental run after N people were edited in the CRM.")


_ROW = re.compile(r"^(salesforce|hubspot)\s+(first|second)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)\s")


def baseline(rev: str, leads: int, seed: int) -> dict[tuple[str, str], tuple[int, float]]:
    """Run ``bench/sync.py`` of revision ``rev`` in a temporary worktree: (connection, run) -> (read, seconds)."""
    where = Path(tempfile.mkdtemp(prefix="relay-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    try:
        done = subprocess.run([sys.executable, "bench/sync.py", "--leads", str(leads), "--seed", str(seed)],
                              cwd=where, env=dict(os.environ, PYTHONPATH=str(where)), capture_output=True, text=True,
                              check=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True)
    found: dict[tuple[str, str], tuple[int, float]] = {}
    for line in done.stdout.splitlines():
        match = _ROW.match(line)
        if match:
            found[(match[1], match[2])] = (int(match[3].replace(",", "")), float(match[5]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    parser.add_argument("--changed", type=float, default=0.01, help="share of people edited before the incremental run")
    parser.add_argument("--baseline", metavar="REV", help="also time a first sync with Relay at git revision REV")
    args = parser.parse_args()

    before = baseline(args.baseline, args.leads, args.seed) if args.baseline else {}
    rows = measure(args.leads, args.seed, args.database, args.changed)
    print_rows(rows)
    if before:
        print(f"\nfirst (full) sync, Relay at {args.baseline} vs now (same machine, same data):")
        print(f"{'connection':<11}{'run':<8}{'seconds before':>16}{'seconds now':>13}{'faster':>8}")
        for row in rows:
            if row.run == "first" and (row.connection, row.run) in before:
                _, seconds = before[(row.connection, row.run)]
                print(f"{row.connection:<11}{row.run:<8}{seconds:>16.1f}{row.seconds:>13.1f}"
                      f"{seconds / row.seconds:>7.1f}x")


if __name__ == "__main__":
    main()
