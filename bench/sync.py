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

The sandboxes run in a process of their own (``python -m crm_sandbox``), as a CRM does: in
this one they would share its interpreter and their work would be timed as Relay's.
``--baseline REV`` also times first syncs with Relay as it was at git revision REV (this
harness, REV's ``connector`` from a temporary worktree) and prints both side by side: same
machine, same data, same sandboxes.

    python bench/sync.py --leads 10000 [--database sqlite|postgresql://...] [--baseline 0151d83]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.sync import run_sync
from connector.store.migrate import open_store
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


class Sandboxes:
    """Both sandbox CRMs in a process of their own (``python -m crm_sandbox``), as a CRM is.

    In the benchmark's own process they would share its interpreter, and their work (search,
    SOQL, JSON) would be timed as Relay's. The ledger is read over HTTP.
    """

    def __init__(self, leads: int, seed: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crm_sandbox", "--json", "--seed", str(seed), "--leads", str(leads),
             "--salesforce-port", "0", "--hubspot-port", "0", "--notify-port", "0", "--salesforce-daily-limit", "10000000",
             "--hubspot-ten-second-limit", "1000000", "--hubspot-daily-limit", "100000000",
             "--hubspot-search-per-second", "1000"],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start (see its stderr above)")
        self.settings = json.loads(line)
        self.env: dict[str, str] = self.settings["env"]

    def url(self, name: str) -> str:
        return str(self.settings["sandboxes"][name]["base_url"])

    def reset_ledger(self, name: str) -> None:
        httpx.delete(self.settings["sandboxes"][name]["ledger_url"]).raise_for_status()

    def ledger(self, name: str) -> list[dict[str, Any]]:
        answer = httpx.get(self.settings["sandboxes"][name]["ledger_url"], timeout=60)
        answer.raise_for_status()
        return list(answer.json()["entries"])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


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


def _run(config: RelayConfig, name: str, run: str, engine: Any, sandboxes: Sandboxes) -> Row:
    conn = config.connection(name)
    sandboxes.reset_ledger(name)
    summary = run_sync(config, name, engine)
    entries = sandboxes.ledger(name)
    read = Counter(dict(summary.read.items()))
    for obj, mapping in config.mapping_for(name).objects.items():
        if mapping.entity == "owner":
            read.pop(obj, None)  # the owners list is overhead, not the records synced
    writes = _write_counts(entries)
    return Row(name, run, summary.records_read, sum(writes.values()), summary.seconds, len(entries),
               summary.api_call_total, _minimum_calls(read, conn.page_size, writes, conn.write_batch_size))


def measure(leads: int, seed: int, database: str, changed: float, *, first_only: bool = False) -> list[Row]:
    started = time.perf_counter()
    data = generate(seed=seed, leads=leads)  # the same records the sandbox process seeds: their ids to edit
    sandboxes = Sandboxes(leads, seed)
    print(f"sandboxes seeded with {leads:,} leads in {time.perf_counter() - started:.1f} s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    url = f"sqlite:///{tmp / 'relay.db'}" if database == "sqlite" else database
    rows: list[Row] = []
    try:
        config = load_config(env=dict(os.environ, **sandboxes.env))
        engine = open_store(url)
        # "touched": a field Relay does not map (the record's modified time moves, nothing to decide);
        # "rescored": the title, which moves the score (decided again, written back).
        cases = {"salesforce": {"touched": ("Description", "Called back, no answer"),
                                "rescored": ("Title", "VP of Revenue Operations")},
                 "hubspot": {"touched": ("address", "1 Market Street"),
                             "rescored": ("jobtitle", "VP of Revenue Operations")}}
        edit = {
            "salesforce": lambda f, v: _edit_salesforce(sandboxes.url("salesforce"), changed, data.salesforce["Lead"],
                                                        f, v),
            "hubspot": lambda f, v: _edit_hubspot(sandboxes.url("hubspot"), changed, data.hubspot["contacts"], f, v),
        }
        for name in ("salesforce", "hubspot"):
            lag = config.connection(name).read_lag_seconds + 1  # past it, what was written is due for reading
            rows.append(_run(config, name, "first", engine, sandboxes))
            if first_only:
                continue
            # Runs come minutes apart, as a schedule brings them: HubSpot's incremental search starts 2
            # minutes before its checkpoint (search lags writes) unless an earlier read settled it.
            time.sleep(max(lag, OVERLAP.get(name, 0)))
            rows.append(_run(config, name, "second", engine, sandboxes))
            for case, (field, value) in cases[name].items():
                time.sleep(OVERLAP.get(name, 0))
                edited = edit[name](field, value)
                time.sleep(lag)
                rows.append(_run(config, name, f"{case} {edited}", engine, sandboxes))
        engine.dispose()
    finally:
        sandboxes.stop()
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


_ROW = re.compile(r"^(salesforce|hubspot)\s+(first)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)\s")


def baseline(rev: str, leads: int, seed: int) -> dict[tuple[str, str], tuple[int, float]]:
    """Time first syncs with Relay as it was at ``rev``: this harness, that revision's ``connector``.

    ``rev``'s tree is checked out in a temporary git worktree and put first on ``PYTHONPATH``, so
    this script imports its Relay; the sandboxes run from this checkout, in their own process, for
    both. Returns (connection, run) -> (records read, seconds).
    """
    where = Path(tempfile.mkdtemp(prefix="relay-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--leads", str(leads), "--seed", str(seed),
                               "--first-only"], cwd=where, env=dict(os.environ, PYTHONPATH=f"{where}:{REPO}"),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the baseline run at {rev} failed:\n{done.stderr[-3000:]}")
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
    parser.add_argument("--first-only", action="store_true", help="only the first sync of each connection")
    args = parser.parse_args()

    before = baseline(args.baseline, args.leads, args.seed) if args.baseline else {}
    rows = measure(args.leads, args.seed, args.database, args.changed, first_only=args.first_only)
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
