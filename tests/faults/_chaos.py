"""The chaos run: ``relay sync`` as real processes against faulty sandbox CRMs, SIGKILLed and taken over.

Shared by ``tests/faults/test_chaos.py`` (a CI-sized run) and ``bench/chaos.py`` (10,000 leads).
A run syncs each connection in turn (Salesforce, then HubSpot, as the fault-free baseline
does) while both sandboxes inject faults under a seed; each connection's sync process is
killed with SIGKILL at seeded moments (once the CRM has answered a seeded number of write
calls, plus a seeded pause) and resumed with ``relay sync CONNECTION --take-over``.
Afterwards the CRMs are read back through the official SDKs (``tests/e2e/_crm.py``) and
checked against the store and against a fault-free run of the same seed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.crms.hubspot.settings import HubSpotConnection
from connector.crms.salesforce.settings import SalesforceConnection
from connector.store.models import AssignmentRow, OutboxRow, OutboxStatus
from crm_sandbox.common import FaultSettings, Ledger
from tests.e2e._baseline import Outcome
from tests.e2e._cli import RELAY
from tests.e2e._crm import CrmView, is_read, write_calls
from tests.e2e._expect import (
    Expectation,
    RoutingRulesInForce,
    one_task_per_person_across,
    routing_problems,
    task_problems,
)
from tests.e2e._store import audit, rows

REPO = Path(__file__).resolve().parents[2]
CONNECTIONS = ("salesforce", "hubspot")

CHAOS_RATES: dict[str, float] = {
    "rate_limit": 0.10,  # 429 with Retry-After
    "server_error": 0.05,  # 503
    "slow": 0.02,  # answered late, within the client's timeout
    "hold": 0.01,  # applied, answer held past the client's timeout
    "lost_after_apply": 0.01,  # applied, connection closed without an answer
}
"""Probability per request of each request fault (the issue's mix)."""
MALFORMED_RATES: dict[str, float] = {
    "invalid_json": 0.005,  # 200 whose JSON body is not JSON (nothing applied)
    "html": 0.005,  # 200 text/html maintenance page (nothing applied)
    "truncated": 0.005,  # JSON answer cut in half (applied)
}
"""Malformed answers a client must retry. (An error object with
200, a repeated page link and spoilt records are left out: Relay rightly stops or quarantines on
those, so the end state could not equal a fault-free run's.)"""
PARTIAL_FAILURE = 0.05
"""Probability that a record of a batch write fails for a passing reason."""
WRITE_PATHS = r"/composite/sobjects|/batch/(create|update|upsert|archive)"
"""Salesforce sObject Collections and HubSpot batch writes."""
READ_PATHS = r"/composite$|/query|/search$|/crm/v3/objects/[a-z_]+$"
"""Salesforce Composite reads and queries, HubSpot searches and list pages."""
TAKE_OVER = ("--take-over",)
"""How a killed sync is resumed: at once, without ``--force`` (a SIGKILLed process on this host
is recognised as dead although its heartbeat is still fresh)."""


def chaos_settings(
    seed: int, *, retry_after: float, hold_seconds: float, slow_ms: tuple[int, int],
) -> FaultSettings:
    """The sandbox fault settings of a chaos run.

    Every kind of :data:`CHAOS_RATES` and :data:`MALFORMED_RATES` is set. Some are also
    scripted, so that a small run meets each at least once whatever the order of its calls
    (the kills change it): 429 and 503 once on a read and once on a write, a lost answer, a
    held one and a truncated one on a write, a slow answer and one that is not JSON on a read.

    Args:
        seed: Seed of the sandbox's fault sequence.
        retry_after: Seconds the 429 answers announce.
        hold_seconds: How long a held answer is held (more than the client's timeout).
        slow_ms: Bounds of a slow answer's delay (less than the client's timeout).
    """
    scripted = [(kind, path) for kind in ("rate_limit", "server_error") for path in (READ_PATHS, WRITE_PATHS)]
    scripted += [("lost_after_apply", WRITE_PATHS), ("hold", WRITE_PATHS), ("slow", READ_PATHS),
                 ("truncated", WRITE_PATHS), ("invalid_json", READ_PATHS)]
    return FaultSettings(
        **CHAOS_RATES, **MALFORMED_RATES, partial_failure=PARTIAL_FAILURE, retry_after=retry_after, seed=seed,
        hold_seconds=hold_seconds, slow_ms=list(slow_ms),
        script=[{"fault": kind, "path": path} for kind, path in scripted if kind in {**CHAOS_RATES, **MALFORMED_RATES}],
    )


@dataclass(frozen=True)
class KillPlan:
    """When to kill one sync process: after the CRM answered ``writes`` write calls of it, ``pause`` s later."""

    writes: int
    pause: float


def kill_plans(rng: random.Random, kills: int, max_writes: int, max_pause: float = 0.3) -> list[KillPlan]:
    """``kills`` seeded kill moments: 1..``max_writes`` write calls into a run, plus a pause."""
    return [KillPlan(rng.randint(1, max_writes), round(rng.uniform(0.0, max_pause), 3)) for _ in range(kills)]


@dataclass
class ProcessRun:
    """One ``relay sync`` process of a chaos run."""

    args: list[str]
    killed: bool
    writes: int
    """Write calls the CRM answered while this process ran."""
    exit_code: int | None
    seconds: float
    summary: dict[str, Any] | None = None
    stderr: str = ""


@dataclass
class ConnectionRun:
    """The processes that synced one connection, to the end."""

    connection: str
    processes: list[ProcessRun] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return sum(p.killed for p in self.processes)

    @property
    def final(self) -> ProcessRun:
        return self.processes[-1]

    @property
    def stopped(self) -> list[ProcessRun]:
        """Runs that a CRM error stopped (exit 1)."""
        return [p for p in self.processes if not p.killed and p.exit_code == 1]


def relay_command(config_dir: Path, read_timeout: float) -> list[str]:
    """``relay``, with ``read_timeout`` (seconds) set on every connection of the copied ``config_dir``.

    Held answers are held past this timeout; the default (60 s) would cost a CI run minutes.

    Returns:
        The command to put before ``relay``'s arguments.
    """
    for model in (SalesforceConnection, HubSpotConnection):
        assert "read_timeout" in model.model_fields, f"{model.__name__} has no read_timeout setting"
    relay_yaml = config_dir / "relay.yaml"
    text = relay_yaml.read_text()
    block = re.search(r"(?ms)^connections:\n.*?(?=^\S|\Z)", text)  # the connections, not later sections
    assert block is not None, f"no connections: section in {relay_yaml}"
    connections, n = re.subn(r"(?m)^(  [A-Za-z0-9_-]+:\n)(?!    read_timeout:)",
                             rf"\g<1>    read_timeout: {read_timeout}\n", block.group(0))
    assert n >= 1, f"no connection found in {relay_yaml} to set read_timeout on"
    relay_yaml.write_text(text[:block.start()] + connections + text[block.end():])
    return list(RELAY)


def _tail(path: Path, limit: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-limit:]


MAX_STOPPED_RUNS = 3
"""Runs of one connection that may end on an error before the harness gives up (each is
followed by another ``relay sync``, as the next scheduled run would be; the checks report them)."""


def _one_process(
    args: list[str], command: Sequence[str], env: dict[str, str], ledger: Ledger, plan: KillPlan | None,
    out: Path, err: Path, deadline_s: float,
) -> ProcessRun:
    """Run ``relay ARGS`` to its end, or SIGKILL it at ``plan``'s moment if it gets there."""
    writes_before = len(write_calls(ledger))
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([*command, *args], env=env, cwd=REPO, stdout=stdout, stderr=stderr, text=True)
    killed = False
    try:
        if plan is not None:
            while len(write_calls(ledger)) - writes_before < plan.writes and process.poll() is None:
                assert time.monotonic() - started < deadline_s, (
                    f"relay {' '.join(args)} made fewer than {plan.writes} write calls in {deadline_s} s")
                time.sleep(0.005)
            time.sleep(plan.pause)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
        try:
            process.wait(timeout=max(1.0, deadline_s - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"relay {' '.join(args)} did not finish within {deadline_s} s:\n"
                                 f"{_tail(err)}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    result = ProcessRun(args, killed, len(write_calls(ledger)) - writes_before, process.returncode,
                        round(time.monotonic() - started, 2), stderr=_tail(err))
    if not killed and process.returncode in (0, 4):
        result.summary = json.loads(out.read_text())
    return result


def sync_with_kills(
    connection: str, ledger: Ledger, env: dict[str, str], plans: Sequence[KillPlan], scratch: Path,
    *, command: Sequence[str] = RELAY, deadline_s: float = 600.0,
) -> ConnectionRun:
    """Sync ``connection`` with ``relay sync`` processes: one killed per plan, then one that finishes.

    The first process runs ``relay sync CONNECTION --json``; the one after a kill adds
    :data:`TAKE_OVER`. A process is killed with SIGKILL once ``ledger`` holds ``plan.writes``
    more write calls than when it started, ``plan.pause`` seconds later. A run that a CRM
    error stops (exit 1) is followed by another ``relay sync`` (at most
    :data:`MAX_STOPPED_RUNS` times), its kill moment still to come; the run is recorded.

    Args:
        connection: ``salesforce`` or ``hubspot``.
        ledger: The ledger of that connection's sandbox.
        env: The environment of ``relay`` (config, store, sandbox URLs).
        plans: The kill moments, in order.
        scratch: Where the processes' output goes.
        command: How to start ``relay`` (see :func:`relay_command`).
        deadline_s: Most seconds one process may take.

    Raises:
        AssertionError: a process finished before its kill (the plans left it too little work),
            exited otherwise than 0, 1 or 4 (writes the CRM refused), too many runs stopped on
            errors, or a process outlived ``deadline_s``.
    """
    run = ConnectionRun(connection)
    pending = list(plans)
    while True:
        index = len(run.processes)
        after_kill = bool(run.processes) and run.processes[-1].killed
        args = ["sync", connection, "--json", *(TAKE_OVER if after_kill else ())]
        plan = pending[0] if pending else None
        result = _one_process(args, command, env, ledger, plan, scratch / f"{connection}-{index}.out",
                              scratch / f"{connection}-{index}.err", deadline_s)
        run.processes.append(result)
        if result.killed:
            pending.pop(0)
            continue
        if result.exit_code == 1 and len(run.stopped) <= MAX_STOPPED_RUNS:
            continue
        assert result.exit_code in (0, 4), f"relay {' '.join(args)} exited {result.exit_code}:\n{result.stderr}"
        assert plan is None, (f"relay {' '.join(args)} finished (exit {result.exit_code}) after {result.writes} "
                              f"write calls, before its kill at {plan}:\n{result.stderr}")
        return run


@dataclass
class Checks:
    """What a chaos run must not have done, each as the problems found (empty lists when all is well)."""

    lost_decisions: list[str] = field(default_factory=list)
    duplicate_tasks: list[str] = field(default_factory=list)
    double_assignments: list[str] = field(default_factory=list)
    store_and_crm_disagree: list[str] = field(default_factory=list)
    audit_incomplete: list[str] = field(default_factory=list)
    differs_from_fault_free: list[str] = field(default_factory=list)
    runs_stopped_by_errors: list[str] = field(default_factory=list)
    writes_refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return dataclasses.asdict(self)

    def all(self) -> list[str]:
        return [f"{name}: {problem}" for name, problems in self.as_dict().items() for problem in problems]


def _split(problems: list[str], *markers: str) -> tuple[list[str], list[str]]:
    hit = [p for p in problems if any(m in p for m in markers)]
    return hit, [p for p in problems if p not in hit]


def check_chaos(
    before: dict[str, CrmView], after: dict[str, CrmView], engine: Engine, config: RelayConfig,
    baseline: Outcome, runs: dict[str, ConnectionRun],
) -> Checks:
    """Everything a chaos run may have got wrong, read from the CRMs (after), the store and the runs.

    Args:
        before: Each connection's CRM before the run.
        after: Each connection's CRM after the run (read through the official SDKs).
        engine: Relay's store.
        config: The configuration the run used.
        baseline: What a fault-free run of the same seed left in the CRMs.
        runs: The processes of each connection (runs stopped by an error, writes refused).
    """
    checks = Checks()
    for connection, run in runs.items():
        checks.runs_stopped_by_errors += [
            f"{connection}: relay {' '.join(p.args)} exited 1: "
            + " ".join(" ".join(line.split()) for line in p.stderr.splitlines() if "WARNING" not in line)[-600:]
            for p in run.stopped]
        summary = run.final.summary or {}
        checks.writes_refused += [f"{connection}: {failure}" for failure in summary.get("write_failures", [])]
    rules = RoutingRulesInForce.of(config)
    for connection, view in after.items():
        checks.lost_decisions += Expectation(connection, before[connection], view, rules).problems(engine)
        try:
            checks.store_and_crm_disagree += routing_problems(view, engine, connection)
        except AssertionError as exc:  # two active assignments of one record (tests/e2e/_store.py)
            checks.double_assignments.append(str(exc))
        missing, other = _split(task_problems(view, engine, connection), "has 0 open Relay tasks")
        checks.lost_decisions += missing
        doubled, other = _split(other, "open Relay tasks", "has Relay tasks")
        checks.duplicate_tasks += doubled
        unaudited, other = _split(other, "audit log")
        checks.audit_incomplete += unaudited
        checks.store_and_crm_disagree += other
        keys = Counter(t.idempotency_key for t in view.relay_tasks())
        checks.duplicate_tasks += [f"{connection}: {n} tasks with idempotency key {key}"
                                   for key, n in keys.items() if n > 1]
        checks.double_assignments += _double_assignments(engine, connection)
        checks.audit_incomplete += _audit_gaps(engine, connection)
    checks.duplicate_tasks += one_task_per_person_across(list(after.values()))
    checks.differs_from_fault_free += baseline.differences(Outcome.of(list(after.values())))
    return checks


def _double_assignments(engine: Engine, connection: str) -> list[str]:
    active = Counter(row.crm_id for row in rows(engine, AssignmentRow, AssignmentRow.connection == connection,
                                                 AssignmentRow.status == "active"))
    problems = [f"{connection} {crm_id} has {n} active assignments" for crm_id, n in active.items() if n > 1]
    assigned = Counter(row.crm_id for row in audit(engine, connection, "assigned"))
    problems += [f"{connection} {crm_id} was assigned {n} times" for crm_id, n in assigned.items() if n > 1]
    return problems


def _audit_gaps(engine: Engine, connection: str) -> list[str]:
    """Assignments without their audit line, writes not delivered, writes failed for good."""
    assigned = {row.crm_id for row in audit(engine, connection, "assigned")}
    problems = [f"{connection} {row.object} {row.crm_id}: active assignment without an 'assigned' audit line"
                for row in rows(engine, AssignmentRow, AssignmentRow.connection == connection,
                                AssignmentRow.status == "active") if row.crm_id not in assigned]
    messages = rows(engine, OutboxRow, OutboxRow.connection == connection)
    by_key = {row.idempotency_key: row for row in messages}
    problems += [f"{connection} outbox {row.id} ({row.object} {row.crm_id or '(new)'}): {row.status} after "
                 f"{row.attempts} attempts, last error {row.last_error!r}"
                 for row in messages
                 if row.status != OutboxStatus.SENT.value and not _folded_into_a_sent_one(row, by_key)]
    problems += [f"{connection} {row.object} {row.crm_id}: write_failed {row.detail}"
                 for row in audit(engine, connection, "write_failed")]
    return problems


def _folded_into_a_sent_one(row: OutboxRow, by_key: dict[str, OutboxRow]) -> bool:
    """Whether a message was superseded by a newer update of its record that (in the end) was sent.

    Such a message is not lost: its values travelled in the newer one (see Outbox.enqueue_many).
    """
    seen: set[str] = set()
    while row.status == OutboxStatus.DEAD.value and (row.crm_result or {}).get("superseded_by"):
        key = str(row.crm_result["superseded_by"])
        if key in seen or key not in by_key:
            return False
        seen.add(key)
        row = by_key[key]
    return row.status == OutboxStatus.SENT.value


def injected_faults(ledger: Ledger) -> dict[str, Counter[str]]:
    """The faults a sandbox injected, by kind, on reads and on writes (from its ledger)."""
    found: dict[str, Counter[str]] = {"read": Counter(), "write": Counter()}
    for entry in ledger.entries():
        if entry.fault:
            found["read" if is_read(entry) else "write"][entry.fault] += 1
    return found


def resent_records(engine: Engine, connection: str) -> int:
    """Outbox messages that took more than one attempt (records the writer sent again)."""
    return len(rows(engine, OutboxRow, OutboxRow.connection == connection, OutboxRow.attempts > 1))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took."""
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started
