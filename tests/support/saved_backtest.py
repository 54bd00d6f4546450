"""A real backtest over a synced store, saved as ``relay backtest --save`` saves it (for the console's tests).

The candidate is the shipped rules with Warm from 70 instead of 60 (``routing.yaml``), as an admin
would write it: the people the syncs gave a sales rep with a score of 60 to 69 go to the SDR team.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from connector.config.diff import load_rules_dir
from connector.config.loader import RelayConfig
from connector.config.settings import PACKAGED_DEFAULTS
from connector.pipeline.backtest import BacktestReport, backtest
from connector.pipeline.backtest_reports import save_report

WARM_AT_60 = "min_score: 60, group: sales_reps"
WARM_AT_70 = "min_score: 70, group: sales_reps"


@dataclass(frozen=True)
class SavedBacktest:
    id: int
    report: BacktestReport
    candidate: Path


def warm_at_70(target: Path) -> Path:
    """A copy of the shipped rules with Warm (sales reps) from 70: the candidate rules directory."""
    rules = target / "rules"
    shutil.copytree(PACKAGED_DEFAULTS / "config" / "rules", rules)
    routing = rules / "routing.yaml"
    text = routing.read_text(encoding="utf-8")
    assert text.count(WARM_AT_60) == 1
    routing.write_text(text.replace(WARM_AT_60, WARM_AT_70), encoding="utf-8")
    return rules


def save_warm_at_70(engine: Engine, config: RelayConfig, tmp: Path, *, created_by: str = "tester") -> SavedBacktest:
    """Backtest the people synced in the last day under the candidate, and save the report."""
    candidate = warm_at_70(tmp)
    report = backtest(engine, config, since=datetime.now(UTC) - timedelta(days=1), candidate=load_rules_dir(candidate),
                      candidate_source=str(candidate))
    assert report.owner_changes, "the candidate moves nobody: the tests would prove nothing"
    return SavedBacktest(save_report(engine, report, created_by=created_by, now=datetime.now(UTC)), report, candidate)


__all__ = ["SavedBacktest", "save_warm_at_70", "warm_at_70"]
