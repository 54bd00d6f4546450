"""Leads per second of the decision core alone (``decide_people``), on one core.

Seeds the sandbox CRMs (``crm_sandbox.seed.generate``), reads their people, accounts and
owners through the shipped mappings as a sync does (``map_record``; HubSpot properties
flattened as the adapter hands them over), and decides the people with the shipped rules
in pages of 100 (HubSpot's page) and of 2,000 (Salesforce's), one connection after the
other, carrying the round-robin state from page to page and building the account index
once per connection (``AccountIndex``), as the pipeline should. Only ``decide_people`` is
timed, in CPU seconds of this process; seeding and mapping are not.

Each page size runs twice: the first pass starts with empty per-value caches (a fresh
worker's first sync: every phone number, email and company is normalised once), the
second ("again") finds them filled (the next sync's re-reads of the same values).
Decisions are the same either way (``tests/core/test_caches.py``).

Goal (issue 8): at least 10,000 leads/s at both page sizes. ``BEFORE`` holds what the code
before issue 8 did on this machine with this script (100,000 leads, accounts passed as a
list and indexed on every call): 1,516 leads/s in pages of 100, 3,274 in pages of 2,000.
The issue's 333 and 1,440 were measured in wall time under heavier load; the ratio
between page sizes is the same story (the account index rebuilt per call).

    python bench/core.py [--leads 100000] [--profile] [--top 15] [--seed 42]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.config.loader import RelayConfig, load_config
from connector.core._cache import clear_value_caches
from connector.core.decide import decide_people
from connector.core.identity import AccountIndex
from connector.core.models import Account, Owner, Person, RoutingState
from connector.pipeline.records import map_record
from connector.process import tune_gc
from crm_sandbox.seed import generate

PAGE_SIZES = (100, 2_000)
GOAL = 10_000
ANCHOR = datetime(2026, 1, 5, 9, tzinfo=UTC)

BEFORE: dict[int, float] = {100: 1_516.0, 2_000: 3_274.0}
"""leads/s this script measured on the code before issue 8 (commit 0151d83), this machine."""


@dataclass
class Connection:
    """One CRM's people, accounts and owners in canonical form."""

    name: str
    people: list[Person]
    accounts: list[Account]
    owners: list[Owner]


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the adapters hand it to the mapping: HubSpot ``properties`` flattened."""
    properties = record.get("properties")
    if not isinstance(properties, dict):
        return record
    return {**{k: v for k, v in record.items() if k != "properties"}, **properties}


def _read(config: RelayConfig, connection: str, object_name: str, records: Sequence[dict[str, Any]]) -> list[Any]:
    mapping = config.object_mapping(connection, object_name)
    models = []
    for record in records:
        mapped = map_record(connection, mapping, _flat(record))
        if mapped.model is not None and not mapped.meta.deleted:
            models.append(mapped.model)
    return models


def seeded(config: RelayConfig, leads: int, seed: int) -> list[Connection]:
    """The seed's people per connection, cut to ``leads`` people in all (same mix as a sync)."""
    data = generate(seed=seed, leads=max(leads // 2, 20), anchor=ANCHOR)
    sf_people = (_read(config, "salesforce", "Lead", data.salesforce["Lead"])
                 + _read(config, "salesforce", "Contact", data.salesforce["Contact"]))
    hs_people = _read(config, "hubspot", "contacts", data.hubspot["contacts"])
    total = len(sf_people) + len(hs_people)
    sf_share = round(leads * len(sf_people) / total) if total else 0
    return [
        Connection("salesforce", sf_people[:sf_share],
                   _read(config, "salesforce", "Account", data.salesforce["Account"]),
                   _read(config, "salesforce", "User", data.salesforce["User"])),
        Connection("hubspot", hs_people[: max(leads - sf_share, 0)],
                   _read(config, "hubspot", "companies", data.hubspot["companies"]),
                   _read(config, "hubspot", "owners", data.hubspot_owners)),
    ]


def run(config: RelayConfig, connections: Sequence[Connection], page_size: int) -> tuple[int, float]:
    """Decide every person in pages of ``page_size``; return (people decided, CPU seconds).

    As a sync does: one connection after the other, the account index built once per
    connection, the round-robin state carried from page to page, no assignment yet.
    CPU time of this process rather than wall time: the core is single-threaded, so this
    is one core's work, and it does not count time other processes took from it.
    """
    rules = config.rules
    decided = 0
    seconds = 0.0
    for conn in connections:
        state = RoutingState()
        started = time.process_time()
        index = AccountIndex(conn.accounts)  # once per run, as the pipeline builds it
        for start in range(0, len(conn.people), page_size):
            page = conn.people[start:start + page_size]
            decisions, state = decide_people(page, index, conn.owners, rules, state, ANCHOR, {})
            decided += len(decisions)
        seconds += time.process_time() - started
    return decided, seconds


def _top(profile: cProfile.Profile, sort: str, count: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(sort).print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000, help="people to decide (default 100,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true",
                        help="also print the top entries of a cProfile of each page size's first pass")
    parser.add_argument("--top", type=int, default=15, help="profile entries to print")
    args = parser.parse_args()

    config = load_config(env={})
    started = time.perf_counter()
    connections = seeded(config, args.leads, args.seed)
    # As a Relay process does at its start (connector/process.py): the seeded records are
    # frozen out of the collector's sight, and it collects less often.
    tune_gc()
    people = sum(len(c.people) for c in connections)
    print(f"{people:,} people ({', '.join(f'{c.name} {len(c.people):,}' for c in connections)}) seeded and "
          f"mapped in {time.perf_counter() - started:.1f} s; rules {config.rules.version}")

    print(f"{'page size':>10} {'people':>9} {'first pass':>11} {'again':>9} {'before':>9} {'speed-up':>17}")
    print(f"{'':>10} {'':>9} {'leads/s':>11} {'leads/s':>9} {'leads/s':>9} {'first / again':>17}")
    for page_size in PAGE_SIZES:
        clear_value_caches()  # first pass: no value seen before (a fresh worker's first sync)
        decided, cold = run(config, connections, page_size)
        _, warm = run(config, connections, page_size)  # again: the next sync's re-reads
        first, again = decided / cold, decided / warm
        before = BEFORE.get(page_size, 0.0)
        gain = f"{first / before:7.1f}x /{again / before:6.1f}x" if before else "-"
        goal = "" if min(first, again) >= GOAL else f"  (goal >= {GOAL:,})"
        print(f"{page_size:>10,} {decided:>9,} {first:>11,.0f} {again:>9,.0f} {before:>9,.0f} {gain:>17}{goal}")

    if args.profile:
        for page_size in PAGE_SIZES:
            clear_value_caches()
            profile = cProfile.Profile()
            profile.enable()
            run(config, connections, page_size)
            profile.disable()
            for sort in ("cumulative", "tottime"):
                print(f"\n--- profile, pages of {page_size:,}, top {args.top} by {sort}")
                print(_top(profile, sort, args.top))


if __name__ == "__main__":
    main()
