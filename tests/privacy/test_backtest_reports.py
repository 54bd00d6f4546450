"""Saved backtests and a data subject's requests, on SQLite and PostgreSQL.

The person (:data:`~tests.privacy.conftest.PERSON`, a Qualified lead) is synced from both CRMs; a
candidate rule set that sends Qualified leads to the sales reps instead of the SDR team moves them, so a real backtest's
owner changes list their records. Saved (``relay backtest --save``), the report keeps their CRM ids
and nothing else of theirs; ``relay export-person`` finds it and ``relay forget-person`` leaves it so.
A report that does hold their values (a label, as ``--json`` prints it) loses them to the erasure.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector.config.diff import load_rules_dir
from connector.config.settings import PACKAGED_DEFAULTS
from connector.pipeline.backtest import BacktestReport, backtest
from connector.pipeline.backtest_reports import save_report
from connector.pipeline.sync import run_sync
from connector.privacy.subject import ERASED, export_subject, forget_subject
from connector.store.db import session_factory
from connector.store.models import BacktestReportRow

from .conftest import PERSON, World, leaks, rows_of, store_texts

NOW = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)


def _qualified_to_sales_reps(world: World, tmp: Path) -> BacktestReport:
    rules = tmp / "rules"
    shutil.copytree(PACKAGED_DEFAULTS / "config" / "rules", rules)
    routing = rules / "routing.yaml"
    text = routing.read_text(encoding="utf-8")
    old = "group: sdr_team, tier: Qualified"
    assert text.count(old) == 1
    routing.write_text(text.replace(old, "group: sales_reps, tier: Qualified"), encoding="utf-8")
    return backtest(world.engine, world.config, since=datetime.now(UTC) - timedelta(days=1),
                    candidate=load_rules_dir(rules), candidate_source=str(rules))


def _in_reports(world: World) -> list[str]:
    values = PERSON.values()
    return [f"{column}: {found}" for table, column, value in store_texts(world.engine) if table == "backtest_reports"
            for found in leaks(value, values)]


def test_a_saved_backtest_keeps_only_the_persons_crm_ids_and_the_requests_find_it(
        start_world: Callable[[], World], tmp_path: Path) -> None:
    world = start_world()
    for name in ("salesforce", "hubspot"):
        run_sync(world.config, name, world.engine)
    report = _qualified_to_sales_reps(world, tmp_path)
    theirs = {f"salesforce/Lead/{world.lead_id}", f"hubspot/contacts/{world.contact_id}"}
    moved = [c for c in report.owner_changes if c.ref in theirs]
    assert moved, "the candidate does not move the person: the test would prove nothing"
    assert any(c.label.lower() == PERSON.email.lower() for c in moved)  # the report in memory names them

    saved = save_report(world.engine, report, created_by="tester", now=NOW)
    assert _in_reports(world) == []
    kept = rows_of(world.engine, BacktestReportRow, BacktestReportRow.id == saved)[0].report
    assert theirs & {c["ref"] for c in kept["owner_changes"]}

    exported = export_subject(world.engine, PERSON.email, now=NOW)
    assert [row["id"] for row in exported.tables["backtest_reports"].rows] == [saved]

    forgotten = forget_subject(world.engine, PERSON.email, now=NOW)
    finding = forgotten.tables["backtest_reports"]
    assert finding.counts() == {"found": 1, "erased": 0, "deleted": 0, "cancelled": 0}
    assert finding.note == "kept: the records' CRM ids (pseudonymous) in saved backtests"
    assert rows_of(world.engine, BacktestReportRow, BacktestReportRow.id == saved)[0].report == kept

    # a report that does name them (labels, as --json prints them) loses their values, and only theirs
    with session_factory(world.engine).begin() as session:
        row = BacktestReportRow(created_at=NOW, created_by="tester", since=report.since, connection=None,
                                current_version=report.current_version, candidate_version=report.candidate_version,
                                candidate_source=None, records=report.records,
                                owners_changed=len(report.owner_changes), report=report.as_dict())
        session.add(row)
        session.flush()
        labelled = row.id
    assert _in_reports(world)
    again = forget_subject(world.engine, PERSON.email, now=NOW + timedelta(seconds=1))
    assert again.tables["backtest_reports"].erased == 1
    assert _in_reports(world) == []
    erased = rows_of(world.engine, BacktestReportRow, BacktestReportRow.id == labelled)[0].report
    document = report.as_dict()   # the rest of the report, the other people's labels too, is untouched
    document["owner_changes"] = [{**c, "label": None} if c["ref"] in theirs else c for c in document["owner_changes"]]
    assert erased == document and ERASED not in repr(erased)
