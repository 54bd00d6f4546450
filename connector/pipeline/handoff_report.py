"""Handoff metrics per transition, read from the store (``relay report handoffs``).

Issue 11: "Handoff metrics stored per transition: time to accept, time to first touch,
conversion (MQL -> SQL -> Opportunity -> Closed Won), time to kickoff". Every figure comes
from what the syncs already stored (SLA clocks, record snapshots, governance findings,
approvals, handoffs); nothing here calls a CRM or writes. Targets are seed 002's: "Metrics &
KPIs" (Lead Response Time < 1 hour, Lead Acceptance Rate > 80 %, Lead-to-MQL > 35 %,
MQL-to-SQL > 40 %, SQL-to-Opp > 70 %) and "Customer Handoff SOP" (handoff completeness 100 %,
kickoff within 3 days 95 %); seed 003's oversight matrix names the KPI of each handoff.

The transitions and how each is measured:

* **Lead -> owner** (Lead/MQL -> SDR, seed 003 "Time-to-first-touch"): one SLA clock is one
  owner given one lead. *Time to first touch* is ``first_touch_at - started_at`` of the clocks
  whose lead was touched after its clock started (a lead already worked when Relay first saw
  its owner opens its clock touched: nothing was measured, it is left out and counted);
  median, p90 (nearest rank) and the share touched within 60 minutes. *Lead acceptance*:
  the share of clocks whose lead was touched by the time its SLA was breached (the tier's
  ``response_minutes * escalation_percent``, in business hours when sla.yaml enables them:
  the moment the clock escalates to the manager). A clock still inside its SLA at ``now``,
  one closed untouched before its SLA came due (the lead changed owner or was converted),
  and one of a tier sla.yaml no longer knows are not judged.
* **Funnel** (Lead -> MQL -> SQL -> Opportunity -> Closed Won): see :class:`FunnelDefinition`,
  the one place the stages are defined. Each rate is the later stage's count over the
  earlier one's, except SQL -> Opportunity: the share of the SQLs that became an opportunity
  (converted by Relay, whose dispositions ledger holds the CRM's opportunity id, or converted in
  the CRM: Salesforce ``IsConverted``). Opportunity -> Closed Won compares the deals' counts.
* **Opportunity -> Closed** (seed 003 "AE -> Opportunity": stage gates, forecast hygiene):
  governance findings by code (open, resolved), approvals requested, approved, pending, and
  the time from request to approval (median).
* **Closed Won -> Customer Success**: the won deals of the pipelines handoffs.yaml hands to
  CS; *handoff completeness* is the share of them handed over (a handoff is recorded only
  when the form is 100 % complete); *time to handoff* ``recorded_at - occurred_at``;
  *time to kickoff* ``done_at - occurred_at`` (median); *kickoff on time*: a kickoff is on
  time when its date (UTC) is not after its due date (as ``connector.pipeline.deals`` audits
  it), judged over the kickoffs done and those still pending past their due date at ``now``.
* **Closed Lost**: the lost deals handed over (a reason recorded: the loss interview and
  follow-up made) against those whose loss reason is missing.

``since`` keeps what started at or after it: clocks by ``started_at``; people and deals by
their ``created_at`` (the CRM's), else when Relay first saw them; findings by ``first_seen``;
approvals by when they were requested (else approved); handoffs by ``occurred_at``; won and
lost deals by when they closed (their handoff's ``occurred_at``, else the CRM's stage date,
else the close date).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, not_, or_, select
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.core.clocks import add_working_time, calendar_for
from connector.core.governance.models import filled
from connector.core.governance.rules import StageOutcome, StageRules
from connector.core.rules import Rules
from connector.pipeline.deals import as_moment
from connector.store.db import read_snapshot
from connector.store.expressions import (
    JsonFields,
    age,
    iso_date_prefix,
    percentiles,
    seconds_between,
    stripped,
)
from connector.store.models import (
    ApprovalRow,
    ApprovalStatus,
    ClockStatus,
    DispositionRow,
    DispositionStatus,
    FindingStatus,
    GovernanceFindingRow,
    HandoffRow,
    RecordRow,
    SlaClockRow,
)

Unit = Literal["percent", "minutes", "hours", "days", "count"]
Status = Literal["pass", "miss", "n/a"]
FunnelStage = Literal["lead", "mql", "sql"]

MAX_NOTE_EXAMPLES = 3
"""Records named in a note about unreadable values (the rest are counted)."""


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A KPI target: ``value op target`` passes (``< 60`` minutes, ``> 80`` per cent)."""

    op: Literal["<", "<=", ">", ">="]
    value: float
    unit: Unit
    source: str

    def met(self, value: float | Fraction) -> bool:
        """Whether ``value`` meets the target (exact for fractions: 4 of 5 is not above 80 %)."""
        bound = Fraction(self.value)
        given = value if isinstance(value, Fraction) else Fraction(value)
        return {"<": given < bound, "<=": given <= bound, ">": given > bound, ">=": given >= bound}[self.op]

    def describe(self) -> str:
        """The target as the SOP writes it (``< 60 min``, ``> 80 %``, ``>= 95 %``)."""
        units = {"percent": " %", "minutes": " min", "hours": " h", "days": " d", "count": ""}
        return f"{self.op} {self.value:g}{units[self.unit]}"


TARGETS: dict[str, Target] = {
    "lead_response": Target("<", 60, "minutes", "seed 002 Metrics & KPIs: Lead Response Time <1 hour"),
    "lead_acceptance": Target(">", 80, "percent", "seed 002 Metrics & KPIs: Lead Acceptance Rate >80%"),
    "lead_to_mql": Target(">", 35, "percent", "seed 002 Metrics & KPIs: Lead-to-MQL Rate >35%"),
    "mql_to_sql": Target(">", 40, "percent", "seed 002 Metrics & KPIs: MQL-to-SQL Rate >40%"),
    "sql_to_opportunity": Target(">", 70, "percent", "seed 002 Metrics & KPIs: SQL-to-Opp Rate >70%"),
    "handoff_completeness": Target(">=", 100, "percent", "seed 002 Customer Handoff SOP: Handoff completeness 100%"),
    "kickoff_on_time": Target(">=", 95, "percent", "seed 002 Customer Handoff SOP: Kickoff within 3 days 95%"),
    "loss_reason_recorded": Target(">=", 100, "percent", "seed 002 Closed Lost Actions: document reasons"),
}
"""The SOP targets, by metric key."""


@dataclass(frozen=True)
class Metric:
    """One figure of the report, with its target when the SOP sets one.

    ``value`` is in ``unit`` (``None``: nothing to measure yet); for a rate, ``numerator`` of
    ``denominator`` (the target is checked on the exact fraction).
    """

    key: str
    label: str
    value: float | None
    unit: Unit
    numerator: int | None = None
    denominator: int | None = None
    target: Target | None = None

    @property
    def status(self) -> Status | None:
        """``pass`` or ``miss`` against the target, ``n/a`` when there is nothing to judge, None without a target."""
        if self.target is None:
            return None
        if self.value is None:
            return "n/a"
        exact: float | Fraction = self.value
        if self.unit == "percent" and self.numerator is not None and self.denominator:
            exact = Fraction(100 * self.numerator, self.denominator)
        return "pass" if self.target.met(exact) else "miss"

    def shown(self) -> str:
        """The value as the table prints it (``75.0 % (3/4)``, ``42.0 min``, ``-`` for none)."""
        if self.value is None:
            return "-" if self.denominator is None else f"- (0/{self.denominator})"
        text = _format(self.value, self.unit)
        if self.unit == "percent" and self.denominator is not None:
            text += f" ({self.numerator}/{self.denominator})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = {"key": self.key, "label": self.label, "value": self.value, "unit": self.unit}
        if self.denominator is not None:
            out["numerator"], out["denominator"] = self.numerator, self.denominator
        if self.target is not None:
            out["target"] = {"op": self.target.op, "value": self.target.value, "source": self.target.source}
            out["status"] = self.status
        return out


def _format(value: float, unit: Unit) -> str:
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "minutes":
        return f"{value:.1f} min"
    if unit == "hours":
        return f"{value:.1f} h"
    if unit == "days":
        return f"{value:.2f} d"
    return f"{value:,.0f}"


def _rate(key: str, label: str, numerator: int, denominator: int) -> Metric:
    value = 100 * numerator / denominator if denominator else None
    return Metric(key, label, value, "percent", numerator, denominator, TARGETS.get(key))


def median(values: Sequence[float]) -> float | None:
    """The median (the mean of the two middle values for an even count), None for none."""
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank (the ceil(0.9 n)-th smallest), None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


# --------------------------------------------------------------------------- the funnel's definition


MQL_CATEGORIES = ("Hot", "Warm", "Qualified")
"""Score categories (scoring.yaml) that make a lead marketing qualified (seed 002: Qualified 40-59 and up)."""
SQL_STATUSES = ("Qualified", "Closed - Converted", "OPEN_DEAL")
"""Lead statuses of a sales qualified lead: the SOP's Qualified (what the Qualified disposition sets),
Salesforce's converted lead, HubSpot's ``OPEN_DEAL`` lead status (a deal is open for it)."""


@dataclass(frozen=True)
class FunnelDefinition:
    """Where a lead stands in the funnel, from its snapshot: the one definition the report uses.

    * lead: a live person record of an object whose people are leads (the mapping's
      ``person_kind``: Salesforce Lead, HubSpot contacts as shipped);
    * MQL: its ``relay_score`` is at least ``mql_min_score`` (the lowest score of the Hot, Warm
      and Qualified categories of scoring.yaml: 40 with the SOP's), or, without a score, its
      ``relay_score_category`` is one of them;
    * SQL: its status is one of ``sql_statuses`` (compared without case), its disposition
      (dispositions.yaml ``field``) is one whose action creates the opportunity, or the CRM
      says it is converted. An SQL counts as an MQL too (it passed that stage);
    * opportunity: a live deal record; Closed Won: one whose stage is a ``won`` stage of its
      pipeline in stages.yaml.
    """

    mql_min_score: int
    mql_categories: frozenset[str]
    sql_statuses: frozenset[str]
    sql_dispositions: frozenset[str]
    disposition_field: str

    @classmethod
    def from_rules(cls, rules: Rules) -> FunnelDefinition:
        """The definition with the rules' score categories and dispositions."""
        mins = [c.min for c in rules.scoring.categories if c.name in MQL_CATEGORIES]
        creating = {name: d for name, d in rules.dispositions.dispositions.items() if d.action == "create_opportunity"}
        statuses = {*SQL_STATUSES, *(d.status for d in creating.values() if d.status)}
        return cls(
            mql_min_score=min(mins) if mins else 40,
            mql_categories=frozenset(c.lower() for c in MQL_CATEGORIES),
            sql_statuses=frozenset(s.strip().lower() for s in statuses),
            sql_dispositions=frozenset(creating),
            disposition_field=rules.dispositions.field,
        )

    def stage(self, values: Mapping[str, Any]) -> FunnelStage:
        """The furthest stage a lead's snapshot values show (``lead``, ``mql`` or ``sql``)."""
        status = values.get("status")
        if isinstance(status, str) and status.strip().lower() in self.sql_statuses:
            return "sql"
        disposition = values.get(self.disposition_field)
        if isinstance(disposition, str) and disposition.strip() in self.sql_dispositions:
            return "sql"
        if values.get("is_converted") in (True, 1):
            return "sql"
        score = values.get("relay_score")
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            return "mql" if score >= self.mql_min_score else "lead"
        category = values.get("relay_score_category")
        if isinstance(category, str) and category.strip().lower() in self.mql_categories:
            return "mql"
        return "lead"

    @property
    def fields(self) -> tuple[str, ...]:
        """The snapshot fields :meth:`stage` reads."""
        return tuple(dict.fromkeys(("status", self.disposition_field, "is_converted", "relay_score",
                                    "relay_score_category")))

    def stage_sql(self, conn: Connection, fields: JsonFields) -> ColumnElement[Any]:
        """:meth:`stage` as a SQL expression over a snapshot's :attr:`fields` (the report groups by it).

        The same tests in the same order, on the JSON kinds :meth:`stage` checks (a text status, a
        numeric score that is no boolean, ``is_converted`` true or 1); ``tests/pipeline/
        test_handoff_report.py`` holds the two to the same answers over a table of snapshots.
        """
        def text(key: str) -> ColumnElement[Any]:
            return stripped(conn, fields.text(key))

        converted = or_(fields.is_("is_converted", "true"),
                        and_(fields.is_("is_converted", "number"), fields.number("is_converted") == 1))
        return case(
            (and_(fields.is_("status", "string"), func.lower(text("status")).in_(sorted(self.sql_statuses))), "sql"),
            (and_(fields.is_(self.disposition_field, "string"),
                  text(self.disposition_field).in_(sorted(self.sql_dispositions))), "sql"),
            (converted, "sql"),
            (fields.is_("relay_score", "number"),
             case((fields.number("relay_score") >= self.mql_min_score, "mql"), else_="lead")),
            (and_(fields.is_("relay_score_category", "string"),
                  func.lower(text("relay_score_category")).in_(sorted(self.mql_categories))), "mql"),
            else_="lead")


def deal_outcome(stages: StageRules, pipeline: Any, stage: Any) -> tuple[str | None, StageOutcome | None]:
    """The stages.yaml pipeline key of a deal and its stage's outcome (None: a pipeline or stage it does not know)."""
    found = stages.pipeline_for(pipeline if isinstance(pipeline, str) else None)
    if found is None:
        return None, None
    key, rules = found
    index = rules.index_of(stage if isinstance(stage, str) else None)
    return key, (rules.stages[index].outcome if index is not None else None)


# --------------------------------------------------------------------------- the figures


@dataclass
class LeadOwnerFigures:
    """Lead -> owner: time to first touch and lead acceptance (one SLA clock is one owner given one lead)."""

    clocks: int = 0
    measured: int = 0
    """Clocks whose lead was touched after the clock started (their time to first touch is measured)."""
    touch_median: float | None = None
    touch_p90: float | None = None
    within_hour: int = 0
    already_touched: int = 0
    accepted: int = 0
    judged: int = 0
    within_sla_still: int = 0
    closed_before_due: int = 0
    unknown_tier: int = 0
    unknown_tiers: list[str] = field(default_factory=list)
    """The tiers sla.yaml does not define that clocks have (sorted)."""

    def measure(self, touch_minutes: Sequence[float]) -> None:
        """The time-to-first-touch figures of these minutes."""
        self.measured = len(touch_minutes)
        self.touch_median, self.touch_p90 = median(touch_minutes), p90(touch_minutes)
        self.within_hour = sum(1 for m in touch_minutes if m <= 60)

    def metrics(self) -> list[Metric]:
        return [
            Metric("clocks", "owners given a lead (SLA clocks)", self.clocks, "count"),
            Metric("lead_response", "time to first touch, median", self.touch_median, "minutes",
                   target=TARGETS["lead_response"]),
            Metric("lead_response_p90", "time to first touch, p90", self.touch_p90, "minutes"),
            _rate("first_touch_within_hour", "first touch within 1 hour", self.within_hour, self.measured),
            _rate("lead_acceptance", "lead acceptance (touched before the SLA breach)", self.accepted, self.judged),
            Metric("still_within_sla", "untouched, still within their SLA", self.within_sla_still, "count"),
            Metric("already_touched", "already touched when the clock started (not measured)",
                   self.already_touched, "count"),
        ]


@dataclass
class FunnelFigures:
    """Lead -> MQL -> SQL -> Opportunity -> Closed Won, as counts of what reached each stage."""

    leads: int = 0
    mql: int = 0
    sql: int = 0
    sql_with_opportunity: int = 0
    """SQLs that became an opportunity: converted by Relay (the dispositions ledger holds the CRM's
    opportunity id) or converted in the CRM (Salesforce ``IsConverted``)."""
    opportunities: int = 0
    won: int = 0
    lost: int = 0
    unknown_stage: int = 0

    def metrics(self) -> list[Metric]:
        return [
            Metric("leads", "leads", self.leads, "count"),
            Metric("mql", "marketing qualified (MQL)", self.mql, "count"),
            Metric("sql", "sales qualified (SQL)", self.sql, "count"),
            Metric("opportunities", "opportunities", self.opportunities, "count"),
            Metric("closed_won", "Closed Won", self.won, "count"),
            _rate("lead_to_mql", "Lead -> MQL", self.mql, self.leads),
            _rate("mql_to_sql", "MQL -> SQL", self.sql, self.mql),
            _rate("sql_to_opportunity", "SQL -> Opportunity", self.sql_with_opportunity, self.sql),
            _rate("opportunity_to_won", "Opportunity -> Closed Won", self.won, self.opportunities),
        ]


@dataclass
class DealFigures:
    """Opportunity -> Closed: governance findings by code and approvals."""

    findings: dict[str, dict[str, int]] = field(default_factory=dict)
    """code -> {"open": n, "resolved": n}."""
    approvals_requested: int = 0
    approvals_approved: int = 0
    approvals_pending: int = 0
    approved_without_request: int = 0
    approval_hours: list[float] = field(default_factory=list)

    def metrics(self) -> list[Metric]:
        open_total = sum(c.get("open", 0) for c in self.findings.values())
        resolved_total = sum(c.get("resolved", 0) for c in self.findings.values())
        return [
            Metric("findings_open", "governance findings open", open_total, "count"),
            Metric("findings_resolved", "governance findings resolved", resolved_total, "count"),
            Metric("approvals_requested", "approvals requested", self.approvals_requested, "count"),
            Metric("approvals_approved", "approvals recorded", self.approvals_approved, "count"),
            Metric("approvals_pending", "approvals pending", self.approvals_pending, "count"),
            Metric("approved_without_request", "approved before Relay asked", self.approved_without_request,
                   "count"),
            Metric("time_to_approval", "time from request to approval, median", median(self.approval_hours),
                   "hours"),
        ]


@dataclass
class ClosedWonFigures:
    """Closed Won -> Customer Success: completeness of the handoff and the kickoff."""

    won_deals: int = 0
    handed_over: int = 0
    handoffs: int = 0
    handoff_hours: list[float] = field(default_factory=list)
    kickoff_days: list[float] = field(default_factory=list)
    kickoffs_done: int = 0
    on_time: int = 0
    pending: int = 0
    overdue: int = 0

    def metrics(self) -> list[Metric]:
        return [
            Metric("won_deals", "won deals handed to CS by the rules", self.won_deals, "count"),
            Metric("handoffs", "handoffs made", self.handoffs, "count"),
            _rate("handoff_completeness", "handoff completeness (won deals handed over)", self.handed_over,
                  self.won_deals),
            Metric("time_to_handoff", "time from the win to the handoff, median", median(self.handoff_hours),
                   "hours"),
            Metric("time_to_kickoff", "time to kickoff, median", median(self.kickoff_days), "days"),
            _rate("kickoff_on_time", "kickoff on time (by its due date)", self.on_time,
                  self.kickoffs_done + self.overdue),
            Metric("kickoffs_done", "kickoffs done", self.kickoffs_done, "count"),
            Metric("kickoffs_pending", "kickoffs pending", self.pending, "count"),
            Metric("kickoffs_overdue", "kickoffs pending past their due date", self.overdue, "count"),
        ]


@dataclass
class ClosedLostFigures:
    """Closed Lost: handed over with a reason, or the reason missing."""

    lost_deals: int = 0
    handed_over: int = 0
    reason_missing: int = 0

    def metrics(self) -> list[Metric]:
        return [
            Metric("lost_deals", "lost deals", self.lost_deals, "count"),
            _rate("loss_reason_recorded", "handed over with a loss reason", self.handed_over, self.lost_deals),
            Metric("loss_reason_missing", "loss reason missing", self.reason_missing, "count"),
        ]


_Figures = LeadOwnerFigures | FunnelFigures | DealFigures | ClosedWonFigures | ClosedLostFigures

TRANSITIONS: tuple[tuple[str, str], ...] = (
    ("lead_to_owner", "Lead -> owner (Lead/MQL -> SDR)"),
    ("funnel", "Funnel (Lead -> MQL -> SQL -> Opportunity -> Closed Won)"),
    ("opportunity_to_closed", "Opportunity -> Closed (stage gates, approvals)"),
    ("closed_won_to_cs", "Closed Won -> Customer Success"),
    ("closed_lost", "Closed Lost"),
)


@dataclass
class HandoffReport:
    """The handoff metrics of one connection (or all), from ``since`` (or all time), at ``now``."""

    now: datetime
    since: datetime | None
    connection: str | None
    definition: FunnelDefinition
    lead_owner: LeadOwnerFigures = field(default_factory=LeadOwnerFigures)
    funnel: FunnelFigures = field(default_factory=FunnelFigures)
    deals: DealFigures = field(default_factory=DealFigures)
    closed_won: ClosedWonFigures = field(default_factory=ClosedWonFigures)
    closed_lost: ClosedLostFigures = field(default_factory=ClosedLostFigures)
    notes: list[str] = field(default_factory=list)
    before_relay: int = 0
    """Closed deals won or lost before Relay first read them (handoffs.yaml ``recent_days``): not measured."""

    @property
    def empty(self) -> bool:
        """Whether the store holds nothing to report on (no clock, lead, deal, finding, approval or handoff)."""
        d = self.deals
        return not (self.lead_owner.clocks or self.funnel.leads or self.funnel.opportunities or d.findings
                    or d.approvals_requested or d.approvals_approved or self.closed_won.handoffs
                    or self.closed_lost.handed_over)

    def sections(self) -> list[tuple[str, str, list[Metric]]]:
        """(key, title, metrics) per transition, in funnel order."""
        figures: dict[str, _Figures] = {"lead_to_owner": self.lead_owner, "funnel": self.funnel, "opportunity_to_closed": self.deals,
                   "closed_won_to_cs": self.closed_won, "closed_lost": self.closed_lost}
        return [(key, title, figures[key].metrics()) for key, title in TRANSITIONS]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every transition's metrics, the findings by code and the funnel's definition."""
        d = self.definition
        return {
            "now": self.now.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "connection": self.connection,
            "empty": self.empty,
            "transitions": {key: {"title": title, "metrics": [m.as_dict() for m in metrics]}
                            for key, title, metrics in self.sections()},
            "findings_by_code": {code: dict(counts) for code, counts in sorted(self.deals.findings.items())},
            "definition": {"mql_min_score": d.mql_min_score, "mql_categories": sorted(d.mql_categories),
                           "sql_statuses": sorted(d.sql_statuses), "sql_dispositions": sorted(d.sql_dispositions)},
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- reading the store


def handoff_report(engine: Engine, *, config: RelayConfig, now: datetime, connection: str | None = None,
                   since: datetime | None = None) -> HandoffReport:
    """The handoff metrics from the store: a pure read (one transaction), no CRM call.

    Args:
        engine: The store.
        config: The configuration: which objects hold leads (the mappings), the SLA tiers,
            score categories, dispositions, pipelines and the Closed Won handoff's pipelines.
        now: Aware datetime: what is pending, overdue or still within its SLA is judged at it.
        connection: Only this connection's records (None: every connection in the store).
        since: Only what started at or after it (see the module docstring); aware.

    Raises:
        ValueError: ``now`` or ``since`` is naive (named).
    """
    for name, value in (("now", now), ("since", since)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"handoff_report: {name} must be an aware datetime, got {value.isoformat()}")
    now = now.astimezone(UTC)
    since = since.astimezone(UTC) if since is not None else None
    rules = config.rules
    report = HandoffReport(now, since, connection, FunnelDefinition.from_rules(rules))
    with read_snapshot(engine) as conn:
        _lead_owner(conn, report, rules)
        _people(conn, report, config)
        handoffs = _handoffs(conn, report)
        _deals(conn, report, rules, handoffs)
        if report.before_relay:
            report.notes.append(f"{report.before_relay} deal(s) closed before Relay first read them (handoffs.yaml "
                                "recent_days): not measured")
        _findings(conn, report)
        _approvals(conn, report)
    return report


def _where_connection(query: Any, column: Any, connection: str | None) -> Any:
    return query if connection is None else query.where(column == connection)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Unreadable:
    """Values of snapshots that cannot be read (a created_at that is no date): counted, a few named."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, what: str, where: str, value: Any) -> None:
        self.count[what] += 1
        shown = self.examples.setdefault(what, [])
        if len(shown) < MAX_NOTE_EXAMPLES:
            shown.append(f"{where}: {value!r}")

    def notes(self) -> list[str]:
        return [f"{n} record(s) with an unreadable {what} (first seen used instead): "
                f"{'; '.join(self.examples[what])}" for what, n in sorted(self.count.items())]


def _moment(value: Any, where: str, what: str, unreadable: _Unreadable) -> datetime | None:
    """An ISO date or datetime of a snapshot as an aware datetime (``deals.as_moment``); an unreadable one is noted."""
    if value is None or value == "":
        return None
    found = as_moment(value)
    if found is None:
        unreadable.add(what, where, value)
    return found


def _lead_owner(conn: Connection, report: HandoffReport, rules: Rules) -> None:
    """Time to first touch and lead acceptance of the SLA clocks.

    In calendar time (business hours off, as shipped) the database counts (one aggregate and the
    percentiles); with business hours each clock's breach follows its owner's calendar, one clock at
    a time in Python.
    """
    if rules.sla.business_hours.enabled:
        _lead_owner_by_calendar(conn, report, rules)
    else:
        _lead_owner_in_sql(conn, report, rules)
    figures = report.lead_owner
    if figures.unknown_tier:
        report.notes.append(f"{figures.unknown_tier} SLA clock(s) of tier(s) sla.yaml does not define "
                            f"({', '.join(figures.unknown_tiers)}): their acceptance is not judged")
    if figures.closed_before_due:
        report.notes.append(f"{figures.closed_before_due} SLA clock(s) closed untouched before their SLA came due "
                            "(owner changed, converted): their acceptance is not judged")


def _clock_scope(report: HandoffReport) -> list[ColumnElement[bool]]:
    c = SlaClockRow.__table__.c
    scope: list[ColumnElement[bool]] = []
    if report.connection is not None:
        scope.append(c.connection == report.connection)
    if report.since is not None:
        scope.append(c.started_at >= report.since)
    return scope


def _lead_owner_in_sql(conn: Connection, report: HandoffReport, rules: Rules) -> None:
    """:func:`_lead_owner_by_calendar`'s figures counted by the database (calendar time: a clock's breach is
    its start plus the tier's seconds); times compared to the millisecond."""
    table = SlaClockRow.__table__
    c = table.c
    scope = _clock_scope(report)
    breach = {t.name: t.response_minutes * 60 * t.escalation_percent // 100 for t in rules.sla.tiers}
    after = case(breach, value=c.tier, else_=None) if breach else literal(None)
    known = c.tier.in_(list(breach))
    touched = c.first_touch_at.is_not(None)
    already = and_(touched, c.first_touch_at <= c.started_at)
    measured = and_(touched, c.first_touch_at > c.started_at)
    took = seconds_between(conn, c.first_touch_at, c.started_at)
    untouched_known = and_(c.first_touch_at.is_(None), known)
    within = and_(untouched_known, age(conn, report.now, c.started_at) < after)
    closed_before = and_(untouched_known, not_(within), c.status == ClockStatus.CLOSED.value,
                         c.closed_at.is_not(None), seconds_between(conn, c.closed_at, c.started_at) < after)

    def count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = conn.execute(select(
        func.count(), count(already), count(and_(measured, known)), count(and_(measured, known, took <= after)),
        count(within), count(closed_before), count(and_(not_(already), not_(known))),
        count(and_(measured, took <= 3600)), count(and_(untouched_known, not_(within), not_(closed_before))),
    ).select_from(table).where(*scope)).one()
    figures = report.lead_owner
    figures.clocks, figures.already_touched = int(row[0]), int(row[1])
    figures.judged, figures.accepted = int(row[2]) + int(row[8]), int(row[3])
    figures.within_sla_still, figures.closed_before_due, figures.unknown_tier = int(row[4]), int(row[5]), int(row[6])
    n, middle, high = percentiles(conn, took, [*scope, measured], table)
    figures.measured, figures.within_hour = n, int(row[7])
    figures.touch_median = middle / 60 if middle is not None else None
    figures.touch_p90 = high / 60 if high is not None else None
    if figures.unknown_tier:
        figures.unknown_tiers = sorted(str(t) for t in conn.execute(
            select(c.tier).where(*scope, not_(already), not_(known)).distinct()).scalars())


def _lead_owner_by_calendar(conn: Connection, report: HandoffReport, rules: Rules) -> None:
    """The lead -> owner figures, each clock's breach by its owner's calendar."""
    table = SlaClockRow.__table__
    query = select(table.c.tier, table.c.owner_email, table.c.started_at, table.c.first_touch_at, table.c.status,
                   table.c.closed_at).where(*_clock_scope(report))
    figures, now = report.lead_owner, report.now
    policy, routing = rules.sla, rules.routing
    unknown_tiers: set[str] = set()
    touch_minutes: list[float] = []
    for row in conn.execute(query.order_by(table.c.id)):
        figures.clocks += 1
        started = _aware(row.started_at)
        touched = _aware(row.first_touch_at) if row.first_touch_at is not None else None
        if touched is not None and touched <= started:
            figures.already_touched += 1
            continue
        if touched is not None:
            touch_minutes.append((touched - started).total_seconds() / 60)
        breach = _breach_at(row.tier, row.owner_email, started, policy, routing)
        if breach is None:
            figures.unknown_tier += 1
            unknown_tiers.add(row.tier)
            continue
        if touched is not None:
            figures.judged += 1
            figures.accepted += touched <= breach
        elif breach > now:
            figures.within_sla_still += 1
        elif row.status == ClockStatus.CLOSED.value and row.closed_at is not None and _aware(row.closed_at) < breach:
            figures.closed_before_due += 1
        else:
            figures.judged += 1
    figures.measure(touch_minutes)
    figures.unknown_tiers = sorted(unknown_tiers)


def _breach_at(tier_name: str, owner: str, started: datetime, policy: Any, routing: Any) -> datetime | None:
    """When a clock's SLA is breached: its escalation to the manager (None: sla.yaml has no such tier)."""
    tier = policy.tier(tier_name)
    if tier is None:
        return None
    seconds = tier.response_minutes * 60 * tier.escalation_percent // 100
    return add_working_time(started, seconds, calendar_for(owner, policy, routing))


def _json_number(text: Any) -> Any:
    """A JSON value that is no string, from its text (a number, true, a list...), as :func:`_moment` is given it."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _lead_objects(config: RelayConfig) -> frozenset[tuple[str, str]]:
    """(connection, object) pairs whose people are leads, by the mappings."""
    found: set[tuple[str, str]] = set()
    for name in config.relay.connections:
        try:
            mapping = config.mapping_for(name)
        except KeyError:
            continue
        for object_name, obj in mapping.objects.items():
            if obj.entity != "person":
                continue
            try:
                if obj.people_are == "lead":
                    found.add((name, object_name))
            except ValueError:
                continue
    return frozenset(found)


def _people(conn: Connection, report: HandoffReport, config: RelayConfig) -> None:
    """The funnel's people: live person snapshots of lead objects, by their furthest stage.

    The database groups them by connection, object, stage (:meth:`FunnelDefinition.stage_sql`) and,
    with ``since``, by where their ``created_at`` falls: an ISO date two days or more from ``since``'s
    is clearly in or out whatever its time and offset; a missing or empty one falls back on when
    Relay first saw the record. The rest (a date next to ``since``'s, anything that is not an ISO date)
    is read here one record at a time, as before, and what cannot be read is named in a note.
    """
    table = RecordRow.__table__
    c = table.c
    scope: list[ColumnElement[bool]] = [c.kind == "person", c.deleted.is_(False), c.merged_into.is_(None)]
    if report.connection is not None:
        scope.append(c.connection == report.connection)
    keys = (*report.definition.fields, "created_at")
    people = select(c.connection, c.object, c.crm_id, c.first_seen,
                    JsonFields.pack(conn, c.canonical, keys).label("doc")).where(*scope).cte("people")
    if conn.dialect.name == "sqlite":  # one parse of each snapshot, not one per field read
        people = people.prefix_with("MATERIALIZED")
    fields = JsonFields(conn, people.c.doc, keys)
    since = report.since
    if since is None:
        place: ColumnElement[Any] = literal("in")
    else:
        created = stripped(conn, fields.text("created_at"))
        day = func.substr(created, 1, 10)
        missing = or_(fields.is_("created_at", "null"), func.coalesce(fields.text("created_at"), "") == "")
        dated = and_(fields.is_("created_at", "string"), iso_date_prefix(conn, created))
        place = case(
            (missing, case((people.c.first_seen >= since, "in"), else_="out")),
            (not_(dated), "check"),
            (day >= (since.date() + timedelta(days=2)).isoformat(), "in"),
            (day <= (since.date() - timedelta(days=2)).isoformat(), "out"),
            else_="check")
    d = DispositionRow.__table__.c
    converted_by_relay = select(d.id).where(
        d.connection == people.c.connection, d.object == people.c.object, d.crm_id == people.c.crm_id,
        d.status == DispositionStatus.CONVERTED.value, d.opportunity_id.is_not(None)).exists()
    opportunity = case((or_(converted_by_relay, fields.is_("is_converted", "true")), 1), else_=0)
    placed = select(people.c.connection, people.c.object, people.c.crm_id, people.c.first_seen,
                    report.definition.stage_sql(conn, fields).label("stage"), place.label("place"),
                    opportunity.label("opportunity"), fields.text("created_at").label("created_at"),
                    fields.kind("created_at").label("kind")).cte("placed")
    placed = placed.prefix_with("MATERIALIZED")  # each snapshot's stage and place computed once, then grouped
    p = placed.c
    check = p.place == "check"
    one = case((check, p.crm_id), else_=None).label("one")
    """The records to place here, one group each; the rest are counted in groups."""
    leads = _lead_objects(config)
    stages: Counter[str] = Counter()
    converted = 0
    skipped: Counter[str] = Counter()
    unreadable = _Unreadable()
    query = select(p.connection, p.object, p.stage, p.place, p.opportunity, one, func.count().label("n"),
                   func.min(p.first_seen).label("first_seen"),
                   func.min(case((check, p.created_at), else_=None)).label("created_at"),
                   func.min(case((check, p.kind), else_=None)).label("kind")) \
        .group_by(p.connection, p.object, p.stage, p.place, p.opportunity, one) \
        .order_by(p.connection, p.object, one)
    for row in conn.execute(query):
        if (row.connection, row.object) not in leads:
            if row.connection not in config.relay.connections:
                skipped[row.connection] += row.n
            continue
        counted = 0
        if row.place == "in":
            counted = row.n
        elif row.place == "check" and since is not None:
            value = row.created_at if row.kind == "string" else _json_number(row.created_at)
            where = f"records[{row.connection}/{row.object}/{row.one}].created_at"
            moment = _moment(value, where, "person created_at", unreadable)
            counted = int((moment or _aware(row.first_seen)) >= since)
        stages[row.stage] += counted
        if row.stage == "sql" and row.opportunity:
            converted += counted
    funnel = report.funnel
    funnel.leads = sum(stages.values())
    funnel.sql = stages["sql"]
    funnel.sql_with_opportunity = converted
    funnel.mql = stages["mql"] + stages["sql"]
    report.notes.extend(unreadable.notes())
    for name, n in sorted(skipped.items()):
        report.notes.append(f"{n} person record(s) of connection {name!r}, which config/relay.yaml no longer has: "
                            "not counted (their kind, lead or contact, is unknown)")


@dataclass(frozen=True)
class _Handoff:
    object: str
    crm_id: str
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    due_at: datetime | None
    done_at: datetime | None
    before_relay: bool = False
    """Won or lost long before Relay first read the deal (handoffs.yaml ``recent_days``): not measured."""


def _handoffs(conn: Connection, report: HandoffReport) -> dict[tuple[str, str, str, str], _Handoff]:
    """Every handoff by (connection, object, CRM id, kind); the Closed Won ones measured."""
    table = HandoffRow.__table__
    query = select(table.c.connection, table.c.object, table.c.crm_id, table.c.kind, table.c.occurred_at,
                   table.c.recorded_at, table.c.due_at, table.c.done_at, table.c.detail)
    query = _where_connection(query, table.c.connection, report.connection)
    found: dict[tuple[str, str, str, str], _Handoff] = {}
    won = report.closed_won
    for row in conn.execute(query.order_by(table.c.id)):
        item = _Handoff(row.object, row.crm_id, row.kind, _aware(row.occurred_at), _aware(row.recorded_at),
                        _aware(row.due_at) if row.due_at is not None else None,
                        _aware(row.done_at) if row.done_at is not None else None,
                        bool((row.detail or {}).get("before_relay")))
        found[(row.connection, row.object, row.crm_id, row.kind)] = item
        if item.kind != "closed_won" or item.before_relay or (
                report.since is not None and item.occurred_at < report.since):
            continue
        won.handoffs += 1
        won.handoff_hours.append(max((item.recorded_at - item.occurred_at).total_seconds(), 0) / 3600)
        if item.done_at is not None:
            won.kickoffs_done += 1
            won.kickoff_days.append((item.done_at - item.occurred_at).total_seconds() / 86400)
            won.on_time += item.due_at is None or item.done_at.date() <= item.due_at.date()
        else:
            won.pending += 1
            won.overdue += item.due_at is not None and report.now.date() > item.due_at.date()
    return found


def _deals(conn: Connection, report: HandoffReport, rules: Rules,
           handoffs: Mapping[tuple[str, str, str, str], _Handoff]) -> None:
    """Opportunities, Closed Won and Closed Lost from the live deal snapshots."""
    table = RecordRow.__table__
    canonical = table.c.canonical
    reason_field = rules.handoffs.closed_lost.reason_field
    fields = list(dict.fromkeys(("pipeline", "stage", "created_at", "stage_entered_at", "close_date", reason_field)))
    query = select(table.c.connection, table.c.object, table.c.crm_id, table.c.first_seen,
                   *(canonical[name].label(f"f_{i}") for i, name in enumerate(fields)))
    query = query.where(table.c.kind == "deal", table.c.deleted.is_(False), table.c.merged_into.is_(None))
    query = _where_connection(query, table.c.connection, report.connection)
    cs_pipelines = rules.handoffs.closed_won.pipelines
    funnel, won, lost = report.funnel, report.closed_won, report.closed_lost
    unreadable = _Unreadable()
    unknown: Counter[str] = Counter()
    for row in conn.execute(query.order_by(table.c.connection, table.c.object, table.c.crm_id)):
        values = {name: row[4 + i] for i, name in enumerate(fields)}
        label = f"records[{row.connection}/{row.object}/{row.crm_id}]"
        first_seen = _aware(row.first_seen)
        key, outcome = deal_outcome(rules.stages, values.get("pipeline"), values.get("stage"))
        if outcome is None:
            unknown[f"{values.get('pipeline') or '(default)'}/{values.get('stage')}"] += 1
        created = _moment(values.get("created_at"), f"{label}.created_at", "deal created_at", unreadable)
        if report.since is None or (created or first_seen) >= report.since:
            funnel.opportunities += 1
            funnel.won += outcome == "won"
            funnel.lost += outcome == "lost"
            funnel.unknown_stage += outcome is None
        if outcome not in ("won", "lost"):
            continue
        kind = "closed_won" if outcome == "won" else "closed_lost"
        handoff = handoffs.get((row.connection, row.object, row.crm_id, kind))
        if handoff is not None and handoff.before_relay:
            report.before_relay += 1
            continue
        closed_at = (handoff.occurred_at if handoff is not None else None) \
            or _moment(values.get("stage_entered_at"), f"{label}.stage_entered_at", "deal stage_entered_at",
                       unreadable) \
            or _moment(values.get("close_date"), f"{label}.close_date", "deal close_date", unreadable) \
            or first_seen
        if report.since is not None and closed_at < report.since:
            continue
        if outcome == "won":
            if cs_pipelines is None or key in cs_pipelines:
                won.won_deals += 1
                won.handed_over += handoff is not None
        else:
            lost.lost_deals += 1
            if handoff is not None:
                lost.handed_over += 1
            elif not filled(values.get(reason_field)):
                lost.reason_missing += 1
    report.notes.extend(unreadable.notes())
    if unknown:
        shown = ", ".join(f"{name} ({n})" for name, n in sorted(unknown.items())[:MAX_NOTE_EXAMPLES])
        report.notes.append(f"{sum(unknown.values())} deal(s) in a pipeline or stage stages.yaml does not know "
                            f"(pipeline/stage: {shown}{', ...' if len(unknown) > MAX_NOTE_EXAMPLES else ''}): "
                            "counted as opportunities, never as won or lost")


def _findings(conn: Connection, report: HandoffReport) -> None:
    table = GovernanceFindingRow.__table__
    query = select(table.c.code, table.c.status)
    query = _where_connection(query, table.c.connection, report.connection)
    if report.since is not None:
        query = query.where(table.c.first_seen >= report.since)
    counts: dict[str, dict[str, int]] = {}
    for row in conn.execute(query):
        code, status = str(row.code), str(row.status)
        bucket = counts.setdefault(code, {FindingStatus.OPEN.value: 0, FindingStatus.RESOLVED.value: 0})
        bucket[status] = bucket.get(status, 0) + 1
    report.deals.findings = dict(sorted(counts.items()))


def _approvals(conn: Connection, report: HandoffReport) -> None:
    table = ApprovalRow.__table__
    query = select(table.c.status, table.c.requested_at, table.c.approved_at)
    query = _where_connection(query, table.c.connection, report.connection)
    if report.since is not None:
        query = query.where(
            (table.c.requested_at >= report.since)
            | and_(table.c.requested_at.is_(None), table.c.approved_at >= report.since))
    figures = report.deals
    for row in conn.execute(query):
        status, requested_at, approved_at = row.status, row.requested_at, row.approved_at
        if requested_at is not None:
            figures.approvals_requested += 1
        if status == ApprovalStatus.APPROVED.value:
            figures.approvals_approved += 1
            if requested_at is None:
                figures.approved_without_request += 1
            elif approved_at is not None:
                hours = (_aware(approved_at) - _aware(requested_at)).total_seconds() / 3600
                figures.approval_hours.append(max(hours, 0.0))
        else:
            figures.approvals_pending += 1


__all__ = [
    "MQL_CATEGORIES",
    "SQL_STATUSES",
    "TARGETS",
    "ClosedLostFigures",
    "ClosedWonFigures",
    "DealFigures",
    "FunnelDefinition",
    "FunnelFigures",
    "HandoffReport",
    "LeadOwnerFigures",
    "Metric",
    "Target",
    "deal_outcome",
    "handoff_report",
    "median",
    "p90",
]
