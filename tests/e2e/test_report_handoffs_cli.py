"""``relay report handoffs``: the tables a user reads, ``--json``, an empty store, a broken one.

The store (SQLite always, PostgreSQL when configured) holds rows written through the repositories
the sync uses; only settled things (touched leads, kickoffs done), so the figures do not depend on
the moment the command runs. Relay runs on its packaged defaults.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from connector import cli
from connector.config.settings import PACKAGED_DEFAULTS
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.repositories import ClockIn, FindingIn, HandoffIn, Repositories, SnapshotIn

from ._cli import relay

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, store_url: str) -> Engine:
    """A migrated store at RELAY_DATABASE_URL, Relay on its packaged config, tables 200 columns wide."""
    monkeypatch.setenv("RELAY_DATABASE_URL", store_url)
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(PACKAGED_DEFAULTS / "config"))
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(PACKAGED_DEFAULTS / "mappings"))
    monkeypatch.setenv("RELAY_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(cli.console, "width", 200)
    engine = create_engine_for(store_url)
    migrate.upgrade(engine)
    return engine


def _fill(engine: Engine) -> None:
    with session_factory(engine).begin() as session:
        repos = Repositories(session)
        repos.clocks.open_many([  # Warm (60 min SLA), touched after 20, 40, 50 and 90 minutes
            ClockIn("salesforce", "Lead", f"L{m}", "rep@example.com", "Warm", START, "relay", stage="contacted",
                    first_touch_at=START + timedelta(minutes=m)) for m in (20, 40, 50, 90)], now=START)
        repos.records.upsert_snapshots("salesforce", "Lead", [
            SnapshotIn("P1", "person", {"relay_score": 85}),
            SnapshotIn("P2", "person", {"relay_score": 50}),
            SnapshotIn("P3", "person", {"relay_score": 30}),
            SnapshotIn("P4", "person", {"relay_score": 10, "status": "Qualified"}),
            SnapshotIn("P5", "person", {"relay_score": 45}),
        ], seen_at=START)
        repos.records.upsert_snapshots("salesforce", "Opportunity", [
            SnapshotIn("D1", "deal", {"stage": "Prospecting"}),
            SnapshotIn("D2", "deal", {"stage": "Closed Won"}),
            SnapshotIn("D3", "deal", {"stage": "Closed Won"}),
        ], seen_at=START)
        repos.handoffs.add_many("salesforce", [
            HandoffIn("Opportunity", crm_id, "closed_won", START, "ae@example.com", "csm@example.com",
                      START + timedelta(days=3)) for crm_id in ("D2", "D3")], now=START + timedelta(hours=1))
        for handoff, days in zip(repos.handoffs.all("salesforce", "closed_won"), (2, 3), strict=True):
            repos.handoffs.done(handoff.id, START + timedelta(days=days))
        repos.findings.add_many("salesforce", [FindingIn("Opportunity", "D1", "D1:gate", "gate_flagged",
                                                         "past Prospecting without its criteria", None)], now=START)
    engine.dispose()


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def test_the_tables_show_each_figure_with_its_target(store: Engine) -> None:
    _fill(store)
    result = relay("report", "handoffs", "--connection", "salesforce")
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    expected = [
        "Lead -> owner (Lead/MQL -> SDR)",
        "owners given a lead (SLA clocks) 4",
        "time to first touch, median 45.0 min < 60 min pass",
        "time to first touch, p90 90.0 min",
        "first touch within 1 hour 75.0 % (3/4)",
        "lead acceptance (touched before the SLA breach) 75.0 % (3/4) > 80 % miss",
        "leads 5",
        "Lead -> MQL 80.0 % (4/5) > 35 % pass",
        "MQL -> SQL 25.0 % (1/4) > 40 % miss",
        "SQL -> Opportunity 0.0 % (0/1) > 70 % miss",  # P4 is Qualified, not converted: no opportunity yet
        "Opportunity -> Closed Won 66.7 % (2/3)",
        "gate_flagged 1 0",
        "handoff completeness (won deals handed over) 100.0 % (2/2) >= 100 % pass",
        "time to kickoff, median 2.50 d",
        "kickoff on time (by its due date) 100.0 % (2/2) >= 95 % pass",
        "handed over with a loss reason - (0/0) >= 100 % n/a",
    ]
    for row in expected:
        assert row in lines, f"{row!r} not printed:\n{result.stdout}"


def test_json_holds_the_same_report(store: Engine) -> None:
    _fill(store)
    result = relay("report", "handoffs", "--json", "--since", START.strftime("%Y-%m-%d"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["empty"] is False and data["since"] == START.strftime("%Y-%m-%dT00:00:00+00:00")
    acceptance = {m["key"]: m for m in data["transitions"]["lead_to_owner"]["metrics"]}["lead_acceptance"]
    assert (acceptance["numerator"], acceptance["denominator"], acceptance["status"]) == (3, 4, "miss")
    assert acceptance["target"] == {"op": ">", "value": 80, "source": "seed 002 Metrics & KPIs: Lead Acceptance "
                                                                      "Rate >80%"}
    assert data["findings_by_code"] == {"gate_flagged": {"open": 1, "resolved": 0}}

    later = relay("report", "handoffs", "--json", "--since", (START + timedelta(days=2)).strftime("%Y-%m-%d"))
    assert json.loads(later.stdout)["empty"] is True


def test_an_empty_store_says_so_and_exits_0(store: Engine) -> None:
    result = relay("report", "handoffs")
    assert result.exit_code == 0, result.output
    assert "nothing to report yet" in result.stdout and "every connection, all time" in result.stdout


def test_a_bad_since_or_connection_is_refused_by_name(store: Engine) -> None:
    bad_date = relay("report", "handoffs", "--since", "last week")
    assert bad_date.exit_code == 2 and "--since" in bad_date.stderr
    unknown = relay("report", "handoffs", "--connection", "pipedrive")
    assert unknown.exit_code == 1 and "no connection 'pipedrive'" in " ".join(unknown.stderr.split())


def test_a_broken_store_is_an_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broken = tmp_path / "relay.db"
    broken.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{broken}")
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(PACKAGED_DEFAULTS / "config"))
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(PACKAGED_DEFAULTS / "mappings"))
    result = relay("report", "handoffs")
    assert result.exit_code == 1
    assert "error:" in result.stderr and str(broken) in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
