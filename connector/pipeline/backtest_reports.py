"""Saved backtests: ``relay backtest --save`` keeps a report in the store, the console shows it.

A backtest replays a period's people twice (:mod:`connector.pipeline.backtest`): seconds to minutes
over a big store, too long for a web request. So the CLI runs it and, with ``--save``, keeps the
report in ``backtest_reports``; the dashboard (``/dashboard/backtest``) and the admin API
(``/api/v1/backtests``) read it back.

What is kept: the report as ``BacktestReport.as_dict()`` gives it (every owner change, tiers, SLA
moves, outcomes, load per rep, fairness, notes), except each record's label (the person's email
or name): a record is named by its CRM id (``salesforce/Lead/00Q...``, the "why" page has the rest
for whoever may read it), an owner by their email. No secret is in a report (the candidate rules
are named by their directory and version). ``relay forget-person`` still looks through the saved
reports (:mod:`connector.privacy.subject`).

Read back, a saved report is rebuilt into a :class:`~connector.pipeline.backtest.BacktestReport`,
so its headline and tables are the very text ``relay backtest`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.pipeline.backtest import (
    BacktestReport,
    FairnessRow,
    LoadRow,
    Outcome,
    OutcomeState,
    OwnerChange,
    Share,
    SlaShift,
    headline,
    text_sections,
)
from connector.store.db import session_factory
from connector.store.models import BacktestReportRow

PAGE_EXAMPLES = 200
"""Owner changes a saved report's page lists (the API gives every one)."""
_SUMMARY = ("id", "created_at", "created_by", "since", "connection", "current_version", "candidate_version",
            "candidate_source", "records", "owners_changed")


def saved_document(report: BacktestReport) -> dict[str, Any]:
    """The report as it is saved: ``as_dict()`` with each owner change's ``label`` (email or name) left out (null)."""
    document = report.as_dict()
    for change in document["owner_changes"]:
        change["label"] = None
    return document


def save_report(engine: Engine, report: BacktestReport, *, created_by: str, now: datetime) -> int:
    """Keep ``report`` in the store (one transaction); returns its id.

    Args:
        engine: The store.
        report: A finished backtest.
        created_by: Who ran it (the OS user, or ``cli``).
        now: When (aware).
    """
    row = BacktestReportRow(
        created_at=now, created_by=(created_by.strip() or "cli")[:100], since=report.since,
        connection=report.connection, current_version=report.current_version,
        candidate_version=report.candidate_version,
        candidate_source=report.candidate_source[:1000] if report.candidate_source is not None else None,
        records=report.records, owners_changed=len(report.owner_changes), report=saved_document(report))
    with session_factory(engine).begin() as session:
        session.add(row)
        session.flush()
        return int(row.id)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(row: Any) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _SUMMARY}
    values["created_at"], values["since"] = _iso(values["created_at"]), _iso(values["since"])
    return values


def saved_backtests(session: Session, *, limit: int = 50) -> list[dict[str, Any]]:
    """The saved backtests, newest first, without their reports (``limit`` at most)."""
    table = BacktestReportRow.__table__
    query = (select(*(table.c[name] for name in _SUMMARY))
             .order_by(table.c.created_at.desc(), table.c.id.desc()).limit(max(1, limit)))
    return [_summary(row) for row in session.execute(query)]


def saved_backtest(session: Session, report_id: int) -> dict[str, Any] | None:
    """One saved backtest: what was replayed, its headline (as ``relay backtest`` prints it) and the whole report."""
    row = session.get(BacktestReportRow, report_id)
    if row is None:
        return None
    return {**_summary(row), "headline": headline(report_from_dict(row.report)), "report": row.report}


# --------------------------------------------------------------------------- a saved report, rebuilt


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _outcome(ref: str, label: str, side: Mapping[str, Any]) -> Outcome:
    return Outcome(ref, label, cast(OutcomeState, side.get("state") or "unassigned"), owner=side.get("owner"),
                   tier=side.get("tier"), rule=side.get("rule"), reason=side.get("reason"), score=side.get("score"),
                   sla_due=_when(side.get("sla_due")), group=side.get("group"))


def _share(values: Mapping[str, Any]) -> Share:
    return Share(int(values.get("picks") or 0), values.get("share"), values.get("weight"), values.get("weight_share"))


def report_from_dict(document: Mapping[str, Any]) -> BacktestReport:
    """The report a saved document (``BacktestReport.as_dict()``) was made from, as far as its text needs it."""
    changes = []
    for change in document.get("owner_changes") or []:
        ref, label = str(change["ref"]), str(change.get("label") or "")
        changes.append(OwnerChange(ref, label, _outcome(ref, label, change["before"]),
                                   _outcome(ref, label, change["after"])))
    sla_fields = {f.name for f in fields(SlaShift)}
    return BacktestReport(
        current_version=str(document["current_version"]), candidate_version=str(document["candidate_version"]),
        since=_when(document.get("since")), connection=document.get("connection"),
        candidate_source=document.get("candidate_source"), records=int(document.get("records") or 0),
        skipped=dict(document.get("skipped") or {}), owner_changes=changes,
        tier_changes={(str(t["before"]), str(t["after"])): int(t["records"]) for t in document.get("tier_changes") or []},
        sla=SlaShift(**{k: v for k, v in (document.get("sla") or {}).items() if k in sla_fields}),
        states={str(s): (int(v["before"]), int(v["after"])) for s, v in (document.get("states") or {}).items()},
        load=[LoadRow(str(r["owner"]), int(r["before"]), int(r["after"])) for r in document.get("load") or []],
        fairness=[FairnessRow(str(r["group"]), str(r["owner"]), _share(r["before"]), _share(r["after"]))
                  for r in document.get("fairness") or []],
        notes=[str(n) for n in document.get("notes") or []],
    )


def text_view(document: Mapping[str, Any], *, examples: int = PAGE_EXAMPLES,
              every_one: str = "the API lists every one") -> dict[str, Any]:
    """A saved report as ``relay backtest`` prints it: headline lines, tables of text, notes.

    Sections are ``{"title", "columns", "rows"}`` (a cell may hold several lines, ``\\n`` between);
    the owner changes list the first ``examples`` (the rule's own changes first), their title
    saying ``every_one`` where the rest are.
    """
    report = report_from_dict(document)
    sections = []
    for section in text_sections(report, examples=examples):
        title = section.title
        if title.startswith("owner changes (first "):
            title = f"owner changes (first {min(examples, len(report.owner_changes)):,} of " \
                    f"{len(report.owner_changes):,}; {every_one})"
        sections.append({"title": title, "columns": list(section.columns),
                         "rows": [list(_lines(cell) for cell in row) for row in section.rows]})
    return {"headline": headline(report), "sections": sections, "notes": list(report.notes)}


def _lines(cell: str) -> str:
    """A cell's lines without the empty ones (a record's label is not saved)."""
    return "\n".join(line for line in cell.split("\n") if line.strip())


__all__ = ["PAGE_EXAMPLES", "report_from_dict", "save_report", "saved_backtest", "saved_backtests",
           "saved_document", "text_view"]
