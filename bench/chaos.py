"""Chaos at scale: sync N leads from both sandbox CRMs while they misbehave and ``relay sync`` is SIGKILLed.

The sandboxes answer 10 % of requests with 429 (Retry-After), 5 % with 503, make 2 % slow,
hold 1 % past the client's timeout, lose the answer of 1 % after applying them and
answer 0.5 % each with a body that is not JSON, an HTML page or a truncated body (the
kinds the sandbox knows), and fail 5 % of the records of batch writes for a passing
reason. Each connection's ``relay sync`` process is killed with SIGKILL ``--kills`` times at
seeded moments and resumed with ``relay sync --take-over``. The same data is also synced
once without faults or kills. Both CRMs are then read back through the official SDKs.

Prints the runs, kills, faults injected per kind (from the sandbox ledgers), failed calls
that were retried, API calls against the fault-free run, wall times, and the checks: lost
decisions, duplicate tasks, double assignments, store and CRM disagreeing, audit gaps and
differences from the fault-free end state (all must be 0; the exit status is 1 otherwise).

    python bench/chaos.py --leads 10000 [--seed 42] [--kills 3] [--without-malformed] [--database URL]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checks live in tests/ (SDK read-back)

from connector.config.loader import RelayConfig, load_config
from connector.store.migrate import open_store
from crm_sandbox.common import FaultSettings, Ledger
from crm_sandbox.seed import SeedData, generate
from tests.e2e._baseline import Outcome
from tests.e2e._crm import CrmView, read_crm, write_calls
from tests.e2e._world import SHIPPED_MAPPINGS, Crms, config_copy, relay_env_for, running_crms
from tests.faults._chaos import (
    CHAOS_RATES,
    CONNECTIONS,
    MALFORMED_RATES,
    Checks,
    ConnectionRun,
    chaos_settings,
    check_chaos,
    injected_faults,
    kill_plans,
    relay_command,
    resent_records,
    sync_with_kills,
)


def sandboxes(data: SeedData) -> AbstractContextManager[Crms]:
    """Both sandbox CRMs on ephemeral ports, with limits that do not throttle a benchmark."""
    return running_crms(data, salesforce_options={"daily_limit": 10_000_000},
                        hubspot_options={"ten_second_limit": 1_000_000, "daily_limit": 100_000_000,
                                         "search_per_second": 1000})


@dataclass
class Pass:
    """One pass over both connections: the processes, the ledgers' figures, the CRMs afterwards."""

    runs: dict[str, ConnectionRun]
    calls: dict[str, int]
    writes: dict[str, int]
    failed_calls: dict[str, int]
    faults: dict[str, dict[str, Counter[str]]]
    resent: dict[str, int]
    seconds: dict[str, float]
    before: dict[str, CrmView]
    after: dict[str, CrmView]
    config: RelayConfig


def _failed(ledger: Ledger) -> int:
    """Calls that got no usable answer (a fault, a 429, a 5xx, a closed connection): each one retried."""
    return sum(1 for e in ledger.entries() if e.fault or e.status == 0 or e.status == 429 or e.status >= 500)


def one_pass(
    data: SeedData, where: Path, database: str, args: argparse.Namespace, *, kill_spread: dict[str, int] | None = None,
) -> Pass:
    """Sync both connections on fresh sandboxes: without faults, or with faults and kills.

    Args:
        kill_spread: Per connection, the most write calls a process makes before its kill (None:
            no faults, no kills). With a fault-free run's write calls W, W // (kills + 1) leaves
            work for every kill.
    """
    chaos = kill_spread is not None
    where.mkdir(parents=True)
    url = f"sqlite:///{where / 'relay.db'}" if database == "sqlite" else database
    rng = random.Random(args.kill_seed)
    with sandboxes(data) as crms:
        env_settings = relay_env_for(crms, url, where)
        config_dir = config_copy(where / "config")
        command = relay_command(config_dir, args.read_timeout)
        env = dict(env_settings.environ(), RELAY_CONFIG_DIR=str(config_dir))
        config = load_config(config_dir, SHIPPED_MAPPINGS, env=env)
        ledgers = {"salesforce": crms.salesforce.ledger, "hubspot": crms.hubspot.ledger}
        before = {c: read_crm(crms.salesforce, crms.hubspot, c) for c in CONNECTIONS}
        for ledger in ledgers.values():
            ledger.reset()
        if chaos:
            settings = chaos_settings(args.fault_seed, retry_after=args.retry_after,
                                      hold_seconds=2 * args.read_timeout, slow_ms=(100, 2000))
            crms.salesforce.faults.configure(settings)
            crms.hubspot.faults.configure(settings)
        runs, seconds = {}, {}
        for connection in CONNECTIONS:
            plans = kill_plans(rng, args.kills, kill_spread[connection]) if kill_spread is not None else []
            started = time.perf_counter()
            runs[connection] = sync_with_kills(connection, ledgers[connection], env, plans, where,
                                               command=command, deadline_s=args.process_deadline)
            seconds[connection] = time.perf_counter() - started
            print(f"  {'chaos' if chaos else 'fault-free'} {connection}: {len(runs[connection].processes)} "
                  f"process(es), {runs[connection].kills} killed, {seconds[connection]:.1f} s")
        crms.salesforce.faults.configure(FaultSettings())
        crms.hubspot.faults.configure(FaultSettings())
        engine = open_store(url)
        try:
            resent = {c: resent_records(engine, c) for c in CONNECTIONS}
        finally:
            engine.dispose()
        after = {c: read_crm(crms.salesforce, crms.hubspot, c) for c in CONNECTIONS}
        return Pass(
            runs=runs, calls={c: len(ledgers[c].entries()) for c in CONNECTIONS},
            writes={c: len(write_calls(ledgers[c])) for c in CONNECTIONS},
            failed_calls={c: _failed(ledgers[c]) for c in CONNECTIONS},
            faults={c: injected_faults(ledgers[c]) for c in CONNECTIONS}, resent=resent, seconds=seconds,
            before=before, after=after, config=config,
        )


def _checks(chaos: Pass, baseline: Outcome, database: str, where: Path) -> Checks:
    url = f"sqlite:///{where / 'relay.db'}" if database == "sqlite" else database
    engine = open_store(url)
    try:
        return check_chaos(chaos.before, chaos.after, engine, chaos.config, baseline, chaos.runs)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42, help="seed of the data")
    parser.add_argument("--fault-seed", type=int, default=11, help="seed of the sandboxes' faults")
    parser.add_argument("--kill-seed", type=int, default=5, help="seed of the kill moments")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per connection")
    parser.add_argument("--max-writes-before-kill", type=int, default=50,
                        help="a process is killed after 1..N write calls the CRM answered (N at most the "
                             "fault-free run's write calls / (kills + 1))")
    parser.add_argument("--read-timeout", type=float, default=5.0,
                        help="Relay's HTTP read timeout (s); held answers are held twice as long")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds the injected 429s announce")
    parser.add_argument("--process-deadline", type=float, default=1800.0, help="most seconds one process may take")
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL (chaos pass only)")
    parser.add_argument("--without-malformed", action="store_true",
                        help="no malformed answers (not JSON, HTML, truncated): the issue's fault mix only")
    args = parser.parse_args()
    if args.without_malformed:
        MALFORMED_RATES.clear()

    started = time.perf_counter()
    data = generate(seed=args.seed, leads=args.leads, anchor=datetime(2026, 1, 5, 9, tzinfo=UTC))
    print(f"seed data for {args.leads:,} leads generated in {time.perf_counter() - started:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="relay-chaos-"))
    print("fault-free pass")
    clean = one_pass(data, tmp / "fault-free", "sqlite", args)
    print("chaos pass")
    spread = {c: max(1, min(args.max_writes_before_kill, clean.writes[c] // (args.kills + 1))) for c in CONNECTIONS}
    chaos = one_pass(data, tmp / "chaos", args.database, args, kill_spread=spread)
    baseline = Outcome.of(list(clean.after.values()))
    checks = _checks(chaos, baseline, args.database, tmp / "chaos")

    kinds = [*CHAOS_RATES, *MALFORMED_RATES]
    print(f"\n{'connection':<11}{'runs':>5}{'kills':>6}{'calls':>8}{'fault-free':>11}{'extra':>8}"
          f"{'failed':>8}{'re-sent':>8}{'seconds':>9}{'fault-free s':>13}")
    for c in CONNECTIONS:
        extra = (chaos.calls[c] - clean.calls[c]) / clean.calls[c] * 100 if clean.calls[c] else float("nan")
        print(f"{c:<11}{len(chaos.runs[c].processes):>5}{chaos.runs[c].kills:>6}{chaos.calls[c]:>8,}"
              f"{clean.calls[c]:>11,}{extra:>7.1f}%{chaos.failed_calls[c]:>8}{chaos.resent[c]:>8}"
              f"{chaos.seconds[c]:>9.1f}{clean.seconds[c]:>13.1f}")
    print(f"\nfaults injected (sandbox ledgers; reads / writes), partial batch failures at {5}% of records:")
    print(f"{'connection':<11}" + "".join(f"{k:>17}" for k in kinds))
    for c in CONNECTIONS:
        hit = chaos.faults[c]
        print(f"{c:<11}" + "".join(f"{hit['read'][k]:>10} / {hit['write'][k]:<4}" for k in kinds))
    print("\nkills (write calls the CRM answered in each process; the last one finished):")
    for c in CONNECTIONS:
        print(f"  {c}: " + ", ".join(f"{p.writes}{' killed' if p.killed else f' exit {p.exit_code}'}"
                                     for p in chaos.runs[c].processes))
    print("\nchecks (CRMs read back through simple-salesforce and hubspot-api-client):")
    for name, problems in checks.as_dict().items():
        print(f"  {name.replace('_', ' '):<26}{len(problems):>6}")
        for problem in problems[:5]:
            print(f"      {problem[:300]}")
    print(f"\n'failed' = calls answered by a fault, a 429 or a 5xx, or left without an answer (each retried);"
          f" 're-sent' = outbox messages that took more than one attempt. Total {time.perf_counter() - started:.0f} s.")
    raise SystemExit(1 if checks.all() else 0)


if __name__ == "__main__":
    main()
