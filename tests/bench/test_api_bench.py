"""``bench/api.py`` end to end at a tiny size: the store it builds and the run itself (no timing asserted).

The store must look like what syncs leave behind (people in one or both CRMs under one identity,
active and superseded assignments, open and closed SLA clocks, every decision's audit entries),
and Relay's own console must find in it what the bench asks for; the run must answer every endpoint
on both backends with the right answers.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.console import Console
from connector.store import migrate
from connector.store.db import create_engine_for
from tests.support.databases import postgres_base_url

REPO = Path(__file__).resolve().parents[2]
DECISIONS = 1_500


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relay_bench_api", REPO / "bench" / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _bench()


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    return load_config(env={})


@pytest.fixture()
def store(tmp_path: Path, bench: ModuleType, config: RelayConfig) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'bench.db'}")
    migrate.upgrade(engine)
    bench._load(engine, bench.World(config, DECISIONS, 7, float(int(time.time()))), bench.SqliteSink)
    try:
        yield engine
    finally:
        engine.dispose()


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


def test_the_store_looks_like_what_syncs_leave(store: Engine) -> None:
    (people, records, links), = _rows(store, "SELECT (SELECT COUNT(*) FROM identities WHERE kind = 'person'), "
                                             "(SELECT COUNT(*) FROM records WHERE kind = 'person'), "
                                             "(SELECT COUNT(*) FROM identity_links)")
    assert people < records, "some people are known in both CRMs, under one identity"
    unlinked = _rows(store, "SELECT COUNT(*) FROM records r LEFT JOIN identity_links l ON l.connection = r.connection "
                            "AND l.object = r.object AND l.crm_id = r.crm_id WHERE r.kind <> 'deal' AND l.relay_id IS NULL")
    assert unlinked[0][0] == 0 and links >= records, "people and accounts are linked to an identity, deals are not"
    both = _rows(store, "SELECT COUNT(*) FROM (SELECT relay_id FROM identity_links GROUP BY relay_id "
                        "HAVING COUNT(DISTINCT connection) = 2)")
    assert both[0][0] > 0
    assert {s for (s,) in _rows(store, "SELECT DISTINCT status FROM assignments")} == {"active", "superseded"}
    assert {s for (s,) in _rows(store, "SELECT DISTINCT status FROM sla_clocks")} == {"open", "closed"}
    reasons = {r for (r,) in _rows(store, "SELECT DISTINCT closed_reason FROM sla_clocks WHERE status = 'closed'")}
    assert {"worked", "owner_changed"} <= reasons
    owners = _rows(store, "SELECT owner_email, COUNT(*) FROM assignments GROUP BY owner_email ORDER BY 2 DESC")
    assert 15 <= len(owners) <= 20 and owners[0][1] > 4 * owners[-1][1], "about 20 owners, a skewed load"
    actions = {a for (a,) in _rows(store, "SELECT DISTINCT action FROM audit_log")}
    assert {"scored", "field_update", "assigned", "task_created", "sla_clock_started", "sla_clock_closed",
            "sla_reminder", "sla_escalated"} <= actions
    (scored,), = _rows(store, "SELECT COUNT(*) FROM audit_log WHERE action = 'scored'")
    assert DECISIONS * 0.95 <= scored <= DECISIONS, "every decision is scored (re-queues are routed without it)"
    unversioned = _rows(store, "SELECT COUNT(*) FROM audit_log WHERE action IN ('scored', 'assigned') "
                               "AND rules_version IS NULL")
    assert unversioned[0][0] == 0


def test_relay_finds_what_the_bench_asks_for(store: Engine, bench: ModuleType, config: RelayConfig) -> None:
    console = Console(config, store, clock=lambda: datetime.now(UTC))
    sample = bench._sample(store, random.Random(3))
    twin = _rows(store, "SELECT i.key FROM identities i JOIN identity_links l ON l.relay_id = i.relay_id "
                        "WHERE i.kind = 'person' GROUP BY i.key HAVING COUNT(*) = 2 LIMIT 1")[0][0]
    found = console.find_people(twin)
    assert len(found) == 2 and {p["email"] for p in found} == {twin}
    connection, object_name, crm_id = sample.refs[0]
    by_id = console.find_people(crm_id)
    assert [(p["connection"], p["object"], p["crm_id"]) for p in by_id] == [(connection, object_name, crm_id)]
    deal = _rows(store, "SELECT crm_id FROM records WHERE kind = 'deal' LIMIT 1")[0][0]
    assert console.find_people(deal) == [], "a deal is not a person"
    assert console.find_people("00Q5e9999999999EAA") == []
    routed = _rows(store, "SELECT connection, object, crm_id FROM assignments WHERE status = 'superseded' LIMIT 1")[0]
    person = console.person(*routed)
    assert person is not None
    record = next(r for r in person["records"] if (r["connection"], r["object"], r["crm_id"]) == tuple(routed))
    assert [a["status"] for a in record["assignments"]][-1] == "active" and len(record["assignments"]) >= 2
    assigned = [e for e in person["trail"] if e["action"] == "assigned"]
    assert assigned and all(e["rules_version"] and e["detail"]["rule"] for e in assigned)


@pytest.mark.postgres
def test_the_bench_runs_end_to_end(tmp_path: Path, bench: ModuleType) -> None:
    database = postgres_base_url()
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "api.py"), "--decisions", str(DECISIONS), "--requests", "3",
         "--concurrency", "2", "--max-seconds", "20", "--scratch", str(tmp_path), "--database", database,
         "--json", str(out), "--try-indexes"],
        capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    names = [e.name for e in bench.ENDPOINTS]
    uncached = sorted(f"{e.name} (figures uncached, direct)" for e in bench.ENDPOINTS
                      if e.page and "Why" not in e.name)
    for runs in (figures["results"], figures["with_indexes"]):
        assert sorted(runs) == ["2"]  # one concurrency: the run takes half as long, two in flight still exercised
        for by_backend in runs.values():
            assert sorted(by_backend) == ["PostgreSQL", "SQLite"]
            for rows in by_backend.values():
                shown = [r["endpoint"] for r in rows]
                assert [n for n in shown if "uncached" not in n] == names
                # The dashboard's figures are also timed uncached, once (at the first concurrency).
                assert sorted(n for n in shown if "uncached" in n) == uncached
                for row in rows:
                    assert row["n"] > 0 and row["failed"] == 0, row
    for backend in ("SQLite", "PostgreSQL"):
        assert figures["builds"][backend]["rows"]["audit_log"] > 3 * DECISIONS
    assert "| GET /people/{connection}/{object}/{id} (why) |" in done.stdout
    assert "With the candidate indexes, 2 in flight" in done.stdout
