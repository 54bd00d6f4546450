"""``relay backtest`` and ``relay config diff`` after real syncs of both sandbox CRMs.

Both connections are synced through the CLI into a store (SQLite always, PostgreSQL when
configured); then a candidate rule set (a copy of config/rules with Warm from 70 instead of 60)
is backtested over the people the syncs read. What the candidate must change is read from the
store apart from the backtest: the people the syncs routed to the sales reps with a score below
70. The store must be unchanged afterwards, row for row (and, on SQLite, byte for byte).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector import cli
from connector.config.loader import RelayConfig
from connector.pipeline.console import Console
from connector.pipeline.context import utc_now
from connector.store.models import AssignmentRow, BacktestReportRow, Base, RulesVersionRow

from ._cli import relay, sync_summary
from ._store import rows
from ._world import SHIPPED_CONFIG, RelayEnv

SINCE = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def _candidate(tmp_path: Path, old: str, new: str) -> Path:
    target = tmp_path / "candidate" / "rules"
    shutil.copytree(SHIPPED_CONFIG / "rules", target)
    path = target / "routing.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return target


def _everything(engine: Engine) -> dict[str, list[str]]:
    with Session(engine) as session:
        return {table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
                for table in Base.metadata.sorted_tables}


def _file_digest(relay_env: RelayEnv) -> str | None:
    if not relay_env.store_url.startswith("sqlite:///"):
        return None
    return hashlib.sha256(Path(relay_env.store_url.removeprefix("sqlite:///")).read_bytes()).hexdigest()


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


@pytest.fixture
def synced(relay_env: RelayEnv, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Both connections synced once, through the CLI."""
    for connection in ("salesforce", "hubspot"):
        summary = sync_summary(connection)
        assert summary["routed"], summary
    monkeypatch.setattr(cli.console, "width", 200)
    return engine


def test_a_backtest_shows_what_a_candidate_changes_and_writes_nothing(
        synced: Engine, relay_env: RelayEnv, tmp_path: Path) -> None:
    candidate = _candidate(tmp_path, "min_score: 60, group: sales_reps", "min_score: 70, group: sales_reps")
    # what must move, from the ledger: people the syncs gave a sales rep by the Warm rule, scored below 70
    warm_below_70 = {f"{a.connection}/{a.object}/{a.crm_id}" for a in rows(synced, AssignmentRow)
                     if a.status == "active" and a.rule == "warm_sales_rep" and a.score is not None and a.score < 70}
    assert warm_below_70, "the seeded people hold no Warm lead below 70: the test would prove nothing"
    before, digest = _everything(synced), _file_digest(relay_env)

    result = relay("backtest", "--since", SINCE, "--rules", str(candidate), "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    moved = {c["ref"] for c in data["owner_changes"]
             if (c["before"]["rule"], c["after"]["rule"]) == ("warm_sales_rep", "qualified_sdr")}
    assert moved == warm_below_70
    assert data["tier_changes"] == [{"before": "Warm", "after": "Qualified", "records": len(warm_below_70)}]
    assert data["owners_changed_by_rule"] == len(warm_below_70)
    assert data["sla"]["later"] == len(warm_below_70) and data["sla"]["earlier"] == 0
    assert data["same_rules"] is False and data["records"] > len(warm_below_70)
    load = {row["owner"]: row["delta"] for row in data["load"]}
    assert sum(load.values()) == 0  # the same people, owned by others
    assert sum(d for o, d in load.items() if o in {"chloe.martin@northwind.example", "jack.wilson@northwind.example",
                                                    "zoe.adams@northwind.example", "arjun.mehta@northwind.example"}) \
        == len(warm_below_70)  # every one of them went to an SDR

    text = relay("backtest", "--since", SINCE, "--rules", str(candidate))
    assert text.exit_code == 0, text.output
    lines = _lines(text.stdout)
    assert f"owners: {data['owners_changed']} record(s) change owner ({len(warm_below_70)} by another rule, tier " \
           f"or rotation; {data['owners_changed_by_turn']} by a rotation's turn moving on)" in lines, text.stdout
    assert f"Warm Qualified {len(warm_below_70)}" in lines
    for title in ("owner changes", "SLA due times", "outcomes", "load per rep (records owned)",
                  "fairness per round-robin rotation (share of its picks against share of its weight)"):
        assert any(line.startswith(title) for line in lines), f"{title!r} not printed:\n{text.stdout}"
    example = next(c for c in data["owner_changes"] if c["ref"] in warm_below_70)  # the rule's own come first
    shown = next(i for i, line in enumerate(lines) if line.startswith(example["ref"] + " "))
    assert lines[shown].split()[1] == example["before"]["owner"]
    assert lines[shown + 1].split()[:2] == [example["label"], "->"] and example["after"]["owner"] in lines[shown + 1]
    assert example["before"]["reason"] in lines[shown] and example["after"]["reason"] in lines[shown + 1]

    itself = relay("backtest", "--since", SINCE)
    assert itself.exit_code == 0, itself.output
    assert "no change: every record gets the same owner, tier, SLA and outcome" in _lines(itself.stdout)
    assert any(line.startswith("rules: the current rules ") and "against themselves" in line
               for line in _lines(itself.stdout))

    assert _everything(synced) == before, "the backtest wrote to the store"
    assert _file_digest(relay_env) == digest


def test_save_keeps_the_report_for_the_console_without_the_peoples_emails(
        synced: Engine, config: RelayConfig, tmp_path: Path) -> None:
    candidate = _candidate(tmp_path, "min_score: 60, group: sales_reps", "min_score: 70, group: sales_reps")
    before = _everything(synced)
    shown = relay("backtest", "--since", SINCE, "--rules", str(candidate), "--json")
    assert shown.exit_code == 0, shown.output
    data: dict[str, Any] = json.loads(shown.stdout)
    assert "saved" not in data and _everything(synced) == before   # without --save nothing is kept
    labels = {c["label"] for c in data["owner_changes"] if "@" in c["label"]}
    assert labels, "no owner change names a person by email: the test would prove nothing"

    result = relay("backtest", "--since", SINCE, "--rules", str(candidate), "--save")
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert lines[-1] == "saved as backtest 1: /dashboard/backtest/1 on relay serve's dashboard " \
                        "(GET /api/v1/backtests/1)"
    with Session(synced) as session:
        saved = session.scalars(select(BacktestReportRow)).all()
    assert len(saved) == 1
    row = saved[0]
    assert (row.id, row.created_by, row.candidate_source, row.connection) == (1, getpass.getuser(), str(candidate), None)
    assert row.since == datetime.fromisoformat(data["since"]) and row.since.strftime("%Y-%m-%d") == SINCE
    assert (row.current_version, row.candidate_version) == (data["current_version"], data["candidate_version"])
    assert (row.records, row.owners_changed) == (data["records"], data["owners_changed"])
    assert row.report == {**data, "owner_changes": [{**c, "label": None} for c in data["owner_changes"]]}
    kept = json.dumps(row.report).lower()
    assert [label for label in labels if label.lower() in kept] == []

    console = Console(config, synced, clock=utc_now)
    one = console.backtest(1)
    assert one is not None
    assert one["headline"] == [line for line in lines if line.startswith(("backtest: ", "rules: ", "owners: "))]
    assert one["report"] == row.report

    itself = relay("backtest", "--since", SINCE, "--save", "--json")
    assert itself.exit_code == 0, itself.output
    assert json.loads(itself.stdout)["saved"] == {"id": 2, "dashboard": "/dashboard/backtest/2",
                                                  "api": "/api/v1/backtests/2"}
    assert [(b["id"], b["candidate_source"]) for b in console.backtests()] == [(2, None), (1, str(candidate))]


def test_a_candidate_that_does_not_load_is_refused_with_the_loaders_problems(
        synced: Engine, tmp_path: Path) -> None:
    broken = _candidate(tmp_path, "group: sdr_team, tier: Qualified", "group: sdrs, tier: Qualified")
    result = relay("backtest", "--since", SINCE, "--rules", str(broken))
    assert result.exit_code == 1
    assert f"candidate rules {broken} are invalid (1 problem(s)):" in result.stderr
    assert f"{broken / 'routing.yaml'}:" in result.stderr
    assert "rules[4].group: 'sdrs' is not a group defined under groups" in result.stderr

    missing = relay("backtest", "--since", SINCE, "--rules", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and f"{tmp_path / 'nowhere'}: no such directory" in missing.stderr


def test_config_diff_compares_the_version_a_sync_recorded_with_a_candidate(synced: Engine, tmp_path: Path) -> None:
    candidate = _candidate(tmp_path, "min_score: 60, group: sales_reps", "min_score: 70, group: sales_reps")
    with Session(synced) as session:
        people = [r.version for r in session.scalars(select(RulesVersionRow)) if r.rules.get("kind") == "people"]
    assert len(people) == 1
    result = relay("config", "diff", people[0], str(candidate))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"OLD: rules version {people[0]} recorded in the store (people rules")
    assert "routing.yaml: rule warm_sales_rep min_score 60 -> 70 (rules[3].min_score)" in lines
    assert [line for line in lines if line.endswith(")") and ".yaml: " in line and not line.startswith("note")] \
        == ["routing.yaml: rule warm_sales_rep min_score 60 -> 70 (rules[3].min_score)"]

    unknown = relay("config", "diff", "feedface", str(candidate))
    assert unknown.exit_code == 2 and "no rules version 'feedface' recorded in the store" in unknown.stderr
    assert people[0] in unknown.stderr  # the known versions are named
