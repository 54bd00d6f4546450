"""Handoff metrics per transition (``connector.pipeline.handoff_report``), read from a store with known rows.

The rows are written through the repositories the sync uses, into a migrated store (SQLite always,
PostgreSQL when ``RELAY_TEST_POSTGRES_URL`` is set); every figure expected is counted by hand below.
Times: T0 is Monday 2026-03-02 09:00 UTC, the report is made at NOW (ten days later).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig, load_config
from connector.config.settings import PACKAGED_DEFAULTS
from connector.pipeline.handoff_report import (
    FunnelDefinition,
    HandoffReport,
    Metric,
    handoff_report,
    median,
    p90,
)
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.repositories import (
    ClockIn,
    ClockUpdate,
    FindingIn,
    HandoffIn,
    Repositories,
    SnapshotIn,
)
from connector.store.repositories.dispositions import DispositionIn
from tests.support.databases import fresh_postgres_schema

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=10)
SINCE = datetime(2026, 3, 4, tzinfo=UTC)
SF, HS = "salesforce", "hubspot"
OWNER = "rep@example.com"


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    """The packaged defaults: seed 002's SLA tiers, score categories, dispositions, stages and handoffs."""
    return load_config(PACKAGED_DEFAULTS / "config", PACKAGED_DEFAULTS / "mappings", env={})


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store, once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'relay.db'}"
        made = create_engine_for(url)
        migrate.upgrade(made)
        yield made
        made.dispose()
        return
    with fresh_postgres_schema() as url:  # skips locally, fails under CI=true, when not configured
        made = create_engine_for(url)
        migrate.upgrade(made)
        yield made
        made.dispose()


def _write(engine: Engine, work: Any) -> None:
    with session_factory(engine).begin() as session:
        work(Repositories(session))


# --------------------------------------------------------------------------- the known rows


def _clocks(repos: Repositories) -> None:
    """Lead -> owner: one clock per lead (tiers of the packaged sla.yaml: Hot 5 min, Warm 60, Qualified 1440)."""
    later = T0 + timedelta(days=3)

    def touched(crm_id: str, tier: str, started: datetime, minutes: float, connection: str = SF,
                object_name: str = "Lead") -> ClockIn:
        return ClockIn(connection, object_name, crm_id, OWNER, tier, started, "relay", stage="contacted",
                       first_touch_at=started + timedelta(minutes=minutes))

    def untouched(crm_id: str, tier: str, started: datetime) -> ClockIn:
        return ClockIn(SF, "Lead", crm_id, OWNER, tier, started, "relay")

    repos.clocks.open_many([
        touched("L1", "Warm", T0, 30),            # within the hour, accepted
        touched("L2", "Warm", T0, 60),            # exactly 60 min: within the hour and the SLA (boundary)
        touched("L3", "Warm", T0, 61),            # a minute late: neither
        touched("L4", "Qualified", later, 120),   # 2 h on a 24 h SLA: accepted
        untouched("L5", "Hot", later),            # 5 min SLA long gone: not accepted
        untouched("L6", "Qualified", NOW - timedelta(hours=1)),  # still within its 24 h
        touched("L7", "Warm", later, 0),          # already touched when its clock started: not measured
        untouched("L8", "Warm", later),           # closed below, 30 min in: not judged
        touched("L9", "Legacy", later, 10),       # a tier sla.yaml does not know: measured, not judged
        touched("H1", "Warm", T0, 5, HS, "contacts"),
    ], now=T0)
    l8 = repos.clocks.latest_for_records(SF, "Lead", ["L8"])["L8"]
    repos.clocks.save_many([ClockUpdate(l8.id, "new", l8.stage_since, None, {}, None, closed_reason="owner_changed")],
                           now=later + timedelta(minutes=30))


def _people(repos: Repositories) -> None:
    """Funnel people: Salesforce leads (lead kind), a contact (not a lead), HubSpot contacts (leads as shipped)."""
    before, after = "2026-03-01T10:00:00+00:00", "2026-03-05T10:00:00+00:00"

    def lead(crm_id: str, created: str | None, **values: Any) -> SnapshotIn:
        canonical = {"email": f"{crm_id.lower()}@example.com", **values}
        if created is not None:
            canonical["created_at"] = created
        return SnapshotIn(crm_id, "person", canonical)

    repos.records.upsert_snapshots(SF, "Lead", [
        lead("P1", before, relay_score=85, status="Working - Contacted"),          # MQL
        lead("P2", before, relay_score=40, status="Open - Not Contacted"),         # MQL (40 is the boundary)
        lead("P3", before, relay_score=39),                                       # lead
        lead("P4", before, relay_score=20, status="Qualified"),                   # SQL by status
        lead("P5", after, relay_score=55, disposition="Qualified"),               # SQL by disposition
        lead("P6", after, relay_score=62, status="Closed - Converted", is_converted=True),  # SQL converted
        lead("P7", after, relay_score_category="Warm"),                           # MQL by category, no score
        lead("P9", after, relay_score=90),                                        # deleted below
        lead("P10", "2026-02-01T10:00:00+00:00", relay_score=70),                 # MQL, created long before
    ], seen_at=T0)
    repos.records.upsert_snapshots(SF, "Lead", [lead("P8", None)], seen_at=T0 + timedelta(days=3))  # lead, no date
    repos.records.mark_deleted(SF, "Lead", "P9", seen_at=T0)
    repos.records.upsert_snapshots(SF, "Contact", [lead("C1", after, relay_score=90, status="Qualified")], seen_at=T0)
    repos.records.upsert_snapshots(HS, "contacts", [lead("HP1", after, relay_score=45, status="OPEN")], seen_at=T0)
    ledger = repos.dispositions.record_many([
        DispositionIn(SF, object_name, crm_id, "Qualified", "2026-03-05", T0, T0, "create_opportunity", "pending")
        for object_name, crm_id in (("Lead", "P5"), ("Lead", "P4"), ("Contact", "C1"))])
    by_record = {d.crm_id: d.id for d in ledger}
    for crm_id in ("P5", "C1"):  # converted by Relay
        repos.dispositions.finish_conversion(by_record[crm_id], opportunity_id=f"006{crm_id}", now=T0)
    repos.dispositions.finish_conversion(by_record["P4"], error="REQUIRED_FIELD_MISSING", now=T0)  # refused


def _deal(crm_id: str, stage: str, created: str, pipeline: str | None = None, **values: Any) -> SnapshotIn:
    canonical = {"name": f"Deal {crm_id}", "stage": stage, "created_at": f"{created}T08:00:00+00:00", **values}
    if pipeline is not None:
        canonical["pipeline"] = pipeline
    return SnapshotIn(crm_id, "deal", canonical)


WON = {  # deal -> when it was won (the handoff's occurred_at), when Relay handed it over, the kickoff
    "D3": (datetime(2026, 3, 3, 10, 0, tzinfo=UTC), timedelta(hours=2), timedelta(days=3)),  # exactly 3 days: on time
    "D4": (datetime(2026, 3, 3, 23, 59, tzinfo=UTC), timedelta(hours=1),
           timedelta(days=3, minutes=1)),                     # 3 days + 1 minute, on the next day: late
    "D6": (T0, timedelta(hours=5), None),                     # due 03-05, still pending at NOW: overdue
    "D7": (NOW - timedelta(days=1), timedelta(0), None),      # due in two days: pending
    "D12": (datetime(2026, 3, 4, 10, 0, tzinfo=UTC), timedelta(hours=3),
            timedelta(days=3, minutes=1)),                    # 3 days + 1 minute, the same day as due: on time
}


def _deals(repos: Repositories) -> None:
    """Opportunities (the packaged stages.yaml: Salesforce stage names, HubSpot stage ids), handoffs, findings."""
    repos.records.upsert_snapshots(SF, "Opportunity", [
        _deal("D1", "Prospecting", "2026-02-20"),
        _deal("D2", "Negotiation", "2026-03-05"),
        _deal("D3", "Closed Won", "2026-02-25"),
        _deal("D4", "Closed Won", "2026-02-25"),
        _deal("D5", "Closed Won", "2026-03-06", stage_entered_at="2026-03-06T10:00:00+00:00"),  # form incomplete
        _deal("D6", "Closed Won", "2026-02-20"),
        _deal("D7", "Closed Won", "2026-03-05"),
        _deal("D8", "Closed Lost", "2026-02-20", loss_reason="Price"),
        _deal("D9", "Closed Lost", "2026-03-06", stage_entered_at="2026-03-06T10:00:00+00:00"),  # no reason
        _deal("D10", "Closed Lost", "2026-03-06", loss_reason="Timing", close_date="2026-03-03"),  # not yet handed
        _deal("D11", "Weird", "2026-03-06"),
        _deal("D12", "Closed Won", "2026-03-01"),
    ], seen_at=T0)
    repos.records.upsert_snapshots(HS, "deals", [_deal("HD1", "closedwon", "2026-03-05", pipeline="default")],
                                   seen_at=T0)
    for crm_id, (won_at, after, _) in WON.items():
        repos.handoffs.add_many(SF, [HandoffIn("Opportunity", crm_id, "closed_won", won_at, OWNER, "csm@example.com",
                                               won_at + timedelta(days=3))], now=won_at + after)
    repos.handoffs.add_many(SF, [HandoffIn("Opportunity", "D8", "closed_lost", T0, OWNER, None, None)], now=T0)
    made = {h.crm_id: h for h in repos.handoffs.all(SF, "closed_won")}
    for crm_id, (won_at, _, kickoff) in WON.items():
        if kickoff is not None:
            repos.handoffs.done(made[crm_id].id, won_at + kickoff)

    def finding(crm_id: str, code: str) -> FindingIn:
        return FindingIn("Opportunity", crm_id, f"{SF}/Opportunity/{crm_id}:{code}", code, f"{code} on {crm_id}", None)

    repos.findings.add_many(SF, [finding("D1", "gate_flagged")], now=T0)
    repos.findings.add_many(SF, [finding("D2", "gate_flagged"), finding("D2", "stage_skipped")],
                            now=T0 + timedelta(days=3))
    repos.findings.add_many(SF, [finding("D5", "handoff_form_incomplete"), finding("D9", "loss_reason_missing")],
                            now=datetime(2026, 3, 6, 11, tzinfo=UTC))
    skipped = [f for f in repos.findings.for_records(SF, "Opportunity", ["D2"])["D2"] if f.code == "stage_skipped"]
    repos.findings.resolve_many([skipped[0].id], now=T0 + timedelta(days=4))


def _approvals(repos: Repositories) -> None:
    """Discount approvals: two requested then approved (4 h, 10 h), one pending, one approved unasked."""
    def request(crm_id: str, value: float, at: datetime) -> None:
        repos.approvals.request(SF, "Opportunity", crm_id, matrix="discount", value=value,
                                approver_title="Sales Manager", approver_email=None, task_key=None, now=at)

    def approve(crm_id: str, value: float, at: datetime) -> None:
        rows = repos.approvals.for_records(SF, "Opportunity", [crm_id]).get(crm_id, [])
        existing = next((r for r in rows if r.value == value and r.status == "requested"), None)
        repos.approvals.approve(SF, "Opportunity", crm_id, matrix="discount", value=value, approved_by="Manager",
                                now=at, existing=existing)

    request("D2", 25, T0 + timedelta(hours=1))
    approve("D2", 25, T0 + timedelta(hours=5))
    request("D3", 15, T0 + timedelta(days=2))
    approve("D3", 15, T0 + timedelta(days=2, hours=10))
    request("D1", 12, T0 + timedelta(days=4))
    approve("D4", 8, T0 + timedelta(days=3))


@pytest.fixture
def store(engine: Engine) -> Engine:
    """The store with every known row."""
    for work in (_clocks, _people, _deals, _approvals):
        _write(engine, work)
    return engine


# --------------------------------------------------------------------------- reading it


def _metrics(report: HandoffReport) -> dict[str, Metric]:
    return {m.key: m for _, _, metrics in report.sections() for m in metrics}


def test_every_transition_of_one_connection(store: Engine, config: RelayConfig) -> None:
    report = handoff_report(store, config=config, now=NOW, connection=SF)
    m = _metrics(report)

    # Lead -> owner: measured touches 10, 30, 60, 61, 120 min (L7 already touched, L5/L6/L8 untouched).
    lead = report.lead_owner
    assert (lead.clocks, lead.already_touched, lead.within_sla_still, lead.closed_before_due, lead.unknown_tier) \
        == (9, 1, 1, 1, 1)
    assert (lead.measured, lead.touch_median, lead.touch_p90, lead.within_hour) == (5, 60, 120, 3)
    assert m["lead_response"].value == 60 and m["lead_response"].status == "miss"  # < 1 hour: 60 is not
    assert m["lead_response_p90"].value == 120
    assert (m["first_touch_within_hour"].numerator, m["first_touch_within_hour"].denominator) == (3, 5)
    # acceptance judged: L1, L2 (touched at the breach itself), L4 accepted; L3 late, L5 never touched.
    assert (m["lead_acceptance"].numerator, m["lead_acceptance"].denominator) == (3, 5)
    assert m["lead_acceptance"].value == 60 and m["lead_acceptance"].status == "miss"

    # Funnel: leads P1-P8 and P10 (P9 deleted, C1 a contact); MQL P1, P2, P7, P10 and the SQLs P4, P5, P6.
    funnel = report.funnel
    assert (funnel.leads, funnel.mql, funnel.sql) == (9, 7, 3)
    assert (funnel.opportunities, funnel.won, funnel.lost, funnel.unknown_stage) == (12, 6, 3, 1)
    assert (m["lead_to_mql"].numerator, m["lead_to_mql"].denominator, m["lead_to_mql"].status) == (7, 9, "pass")
    assert (m["mql_to_sql"].numerator, m["mql_to_sql"].denominator, m["mql_to_sql"].status) == (3, 7, "pass")
    # SQL -> Opportunity: P6 converted in Salesforce, P5 converted by Relay (its ledger holds the opportunity);
    # P4 (Qualified, not converted) did not become one; C1's conversion is not a lead's.
    assert funnel.sql_with_opportunity == 2
    assert (m["sql_to_opportunity"].numerator, m["sql_to_opportunity"].denominator) == (2, 3)
    assert m["opportunity_to_won"].target is None and m["opportunity_to_won"].status is None

    # Opportunity -> Closed.
    deals = report.deals
    assert deals.findings == {"gate_flagged": {"open": 2, "resolved": 0},
                              "handoff_form_incomplete": {"open": 1, "resolved": 0},
                              "loss_reason_missing": {"open": 1, "resolved": 0},
                              "stage_skipped": {"open": 0, "resolved": 1}}
    assert (deals.approvals_requested, deals.approvals_approved, deals.approvals_pending,
            deals.approved_without_request) == (3, 3, 1, 1)
    assert m["time_to_approval"].value == 7.0  # median of 4 h and 10 h

    # Closed Won -> CS: won D3-D7, D12; handed over all but D5.
    won = report.closed_won
    assert (won.won_deals, won.handed_over, won.handoffs) == (6, 5, 5)
    assert (m["handoff_completeness"].numerator, m["handoff_completeness"].denominator) == (5, 6)
    assert m["handoff_completeness"].status == "miss"
    assert m["time_to_handoff"].value == 2.0  # hours 2, 1, 5, 0, 3
    # done: D3 on time (exactly 3 days), D4 late (3 days + 1 min, next day), D12 on time (same day as due);
    # D6 pending past its due date counts as late; D7 pending within its time is not judged.
    assert (won.kickoffs_done, won.on_time, won.pending, won.overdue) == (3, 2, 2, 1)
    assert (m["kickoff_on_time"].numerator, m["kickoff_on_time"].denominator) == (2, 4)
    assert m["kickoff_on_time"].status == "miss"
    assert m["time_to_kickoff"].value == pytest.approx(3 + 1 / 1440)

    # Closed Lost: D8 handed over; D9 without a reason; D10 has one but is not handed over yet.
    lost = report.closed_lost
    assert (lost.lost_deals, lost.handed_over, lost.reason_missing) == (3, 1, 1)
    assert m["loss_reason_recorded"].status == "miss"

    assert any("tier(s) sla.yaml does not define (Legacy)" in n for n in report.notes)
    assert any("1 deal(s) in a pipeline or stage stages.yaml does not know (pipeline/stage: (default)/Weird (1))" in n
               for n in report.notes)
    assert not report.empty


def test_since_keeps_what_started_from_it(store: Engine, config: RelayConfig) -> None:
    report = handoff_report(store, config=config, now=NOW, connection=SF, since=SINCE)
    m = _metrics(report)
    # Clocks started 03-05: L4-L9; measured L4 (120) and L9 (10); judged L4 (accepted), L5 (not).
    assert (report.lead_owner.clocks, report.lead_owner.measured) == (6, 2)
    assert m["lead_response"].value == 65
    assert (m["lead_acceptance"].numerator, m["lead_acceptance"].denominator) == (1, 2)
    # People created from 03-04: P5, P6 (SQL), P7 (MQL); P8 has no date and was first seen 03-05.
    assert (report.funnel.leads, report.funnel.mql, report.funnel.sql) == (4, 3, 2)
    # Deals created from 03-04: D2, D5, D7, D9, D10, D11; won among them D5, D7.
    assert (report.funnel.opportunities, report.funnel.won) == (6, 2)
    # Won from 03-04: D5 (its stage date), D7, D12 (their handoffs); D12's kickoff on time, D7's pending.
    won = report.closed_won
    assert (won.won_deals, won.handed_over, won.handoffs, won.kickoffs_done, won.on_time, won.overdue) \
        == (3, 2, 2, 1, 1, 0)
    assert m["kickoff_on_time"].status == "pass"
    # Lost from 03-04: D9 only (D8 handed over 03-02, D10 closed 03-03).
    assert (report.closed_lost.lost_deals, report.closed_lost.reason_missing) == (1, 1)
    assert report.deals.findings == {"gate_flagged": {"open": 1, "resolved": 0},
                                     "handoff_form_incomplete": {"open": 1, "resolved": 0},
                                     "loss_reason_missing": {"open": 1, "resolved": 0},
                                     "stage_skipped": {"open": 0, "resolved": 1}}
    d = report.deals
    assert (d.approvals_requested, d.approvals_approved, d.approvals_pending, d.approved_without_request) \
        == (2, 2, 1, 1)
    assert m["time_to_approval"].value == 10.0


def test_connections_are_kept_apart(store: Engine, config: RelayConfig) -> None:
    hubspot = handoff_report(store, config=config, now=NOW, connection=HS)
    m = _metrics(hubspot)
    assert (hubspot.lead_owner.measured, hubspot.lead_owner.touch_median) == (1, 5) and m["lead_acceptance"].status == "pass"
    assert (hubspot.funnel.leads, hubspot.funnel.mql, hubspot.funnel.sql) == (1, 1, 0)
    # HubSpot's stage id closedwon of pipeline "default" is the SOP's Closed Won; nobody handed it over.
    assert (hubspot.funnel.opportunities, hubspot.funnel.won) == (1, 1)
    assert (hubspot.closed_won.won_deals, hubspot.closed_won.handed_over) == (1, 0)
    assert m["sql_to_opportunity"].value is None and m["sql_to_opportunity"].status == "n/a"
    assert hubspot.deals.findings == {}

    everything = handoff_report(store, config=config, now=NOW)
    assert everything.lead_owner.clocks == 10
    assert (everything.funnel.leads, everything.funnel.opportunities, everything.closed_won.won_deals) == (10, 13, 7)


def test_an_empty_store_reports_nothing(engine: Engine, config: RelayConfig) -> None:
    report = handoff_report(engine, config=config, now=NOW)
    assert report.empty
    statuses = {m.key: m.status for m in _metrics(report).values() if m.target is not None}
    assert set(statuses.values()) == {"n/a"}
    assert report.as_dict()["empty"] is True


def test_naive_times_are_refused_by_name(engine: Engine, config: RelayConfig) -> None:
    with pytest.raises(ValueError, match="since must be an aware datetime"):
        handoff_report(engine, config=config, now=NOW, since=datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        handoff_report(engine, config=config, now=datetime(2026, 3, 1))


def test_an_unreadable_created_at_is_named_and_first_seen_used(engine: Engine, config: RelayConfig) -> None:
    _write(engine, lambda repos: repos.records.upsert_snapshots(
        SF, "Lead", [SnapshotIn("PX", "person", {"relay_score": 50, "created_at": "last tuesday"})], seen_at=T0))
    report = handoff_report(engine, config=config, now=NOW, since=T0)
    assert report.funnel.leads == 1 and report.funnel.mql == 1
    assert report.notes == ["1 record(s) with an unreadable person created_at (first seen used instead): "
                            "records[salesforce/Lead/PX].created_at: 'last tuesday'"]


# --------------------------------------------------------------------------- the definitions on their own


def test_percentiles() -> None:
    assert median([]) is None and p90([]) is None
    assert median([3, 1, 2, 10]) == 2.5
    assert p90(list(range(1, 11))) == 9 and p90(list(range(1, 12))) == 10 and p90([7]) == 7


@dataclass(frozen=True)
class _Case:
    values: dict[str, Any]
    stage: str


@pytest.mark.parametrize("case", [
    _Case({"relay_score": 40}, "mql"),
    _Case({"relay_score": 39}, "lead"),
    _Case({"relay_score": 39, "relay_score_category": "Hot"}, "lead"),  # the score decides when there is one
    _Case({"relay_score_category": "qualified"}, "mql"),
    _Case({"status": " qualified "}, "sql"),
    _Case({"status": "OPEN_DEAL"}, "sql"),
    _Case({"disposition": "Qualified"}, "sql"),
    _Case({"disposition": "Not Ready", "relay_score": 10}, "lead"),
    _Case({"is_converted": True}, "sql"),
    _Case({}, "lead"),
], ids=lambda c: repr(c.values))
def test_funnel_stage_of_a_snapshot(config: RelayConfig, case: _Case) -> None:
    assert FunnelDefinition.from_rules(config.rules).stage(case.values) == case.stage


def test_rates_are_judged_exactly(config: RelayConfig) -> None:
    from connector.pipeline.handoff_report import TARGETS

    at_target = Metric("lead_acceptance", "x", 80.0, "percent", 4, 5, TARGETS["lead_acceptance"])
    above = Metric("lead_acceptance", "x", 100 * 81 / 100, "percent", 81, 100, TARGETS["lead_acceptance"])
    kickoff = Metric("kickoff_on_time", "x", 95.0, "percent", 19, 20, TARGETS["kickoff_on_time"])
    assert (at_target.status, above.status, kickoff.status) == ("miss", "pass", "pass")
    assert at_target.shown() == "80.0 % (4/5)"


# --------------------------------------------------------------------------- the database counts as Python does

_ODD_SNAPSHOTS: list[dict[str, Any]] = [
    {"status": "Qualified"}, {"status": "\tclosed - converted\n"}, {"status": "open_deal "}, {"status": 7},
    {"status": ["Qualified"]}, {"status": None, "relay_score": 40}, {"disposition": " Qualified"},
    {"disposition": "qualified"}, {"disposition": 1}, {"is_converted": True}, {"is_converted": 1},
    {"is_converted": 1.0}, {"is_converted": False}, {"is_converted": "true"}, {"is_converted": 2},
    {"relay_score": 40.0}, {"relay_score": 39.999}, {"relay_score": True, "relay_score_category": "Hot"},
    {"relay_score": "55"}, {"relay_score": -3}, {"relay_score": 10 ** 12}, {"relay_score": None},
    {"relay_score_category": " WARM "}, {"relay_score_category": "Cold"}, {"relay_score_category": 40},
    {"relay_score_category": "Hot", "status": "Working"}, {"relay_score": 45, "disposition": "Bad Fit"}, {},
]
"""Snapshots of every JSON kind each tested field can hold (text with whitespace and case, numbers,
booleans, lists, nulls)."""


def test_the_database_gives_each_snapshot_the_stage_python_gives_it(engine: Engine, config: RelayConfig) -> None:
    from sqlalchemy import select

    from connector.store.db import read_snapshot
    from connector.store.expressions import JsonFields
    from connector.store.models import RecordRow

    definition = FunnelDefinition.from_rules(config.rules)
    _write(engine, lambda repos: repos.records.upsert_snapshots(
        SF, "Lead", [SnapshotIn(f"S{i}", "person", values) for i, values in enumerate(_ODD_SNAPSHOTS)], seen_at=T0))
    with read_snapshot(engine) as conn:
        c = RecordRow.__table__.c
        direct = JsonFields(conn, c.canonical)
        rows = conn.execute(select(c.crm_id, definition.stage_sql(conn, direct)).where(c.connection == SF)).all()
        packed = select(c.crm_id, JsonFields.pack(conn, c.canonical, definition.fields).label("doc")).subquery()
        from_packed = conn.execute(select(packed.c.crm_id, definition.stage_sql(
            conn, JsonFields(conn, packed.c.doc, definition.fields)))).all()
    in_sql = {crm_id: stage for crm_id, stage in rows}
    assert {crm_id: stage for crm_id, stage in from_packed} == in_sql
    assert in_sql == {f"S{i}": definition.stage(values) for i, values in enumerate(_ODD_SNAPSHOTS)}
    assert set(in_sql.values()) == {"lead", "mql", "sql"}


@pytest.mark.parametrize("since", [None, SINCE, datetime(2026, 3, 5, 14, 30, tzinfo=UTC)], ids=str)
def test_the_database_counts_the_lead_owner_figures_python_counts(store: Engine, config: RelayConfig,
                                                                 since: datetime | None) -> None:
    from connector.pipeline.handoff_report import (
        HandoffReport,
        _lead_owner_by_calendar,
        _lead_owner_in_sql,
    )
    from connector.store.db import read_snapshot

    definition = FunnelDefinition.from_rules(config.rules)
    in_sql, in_python = (HandoffReport(NOW, since, None, definition) for _ in range(2))
    with read_snapshot(store) as conn:
        _lead_owner_in_sql(conn, in_sql, config.rules)
        _lead_owner_by_calendar(conn, in_python, config.rules)  # business hours off: calendar time
    assert in_sql.lead_owner == in_python.lead_owner
    assert in_sql.lead_owner.clocks > 0


@pytest.mark.parametrize("created_at", [
    "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-02", "2026-03-03T23:59:59-14:00",
    "2026-03-05T00:00:00+00:00", "2026-03-04T23:59:59.999Z", "2026-03-07T01:00:00+14:00",
    "2026-03-05 10:00:00", " 2026-03-09T10:00:00Z ", "2026-03-01T10:00:00.000+0000", "20260309", "last tuesday",
    "", None, 1772668800000, "2026-02-30"])
def test_since_places_a_created_at_as_python_reads_it(engine: Engine, config: RelayConfig,
                                                      created_at: Any) -> None:
    from connector.pipeline.deals import as_moment

    _write(engine, lambda repos: repos.records.upsert_snapshots(
        SF, "Lead", [SnapshotIn("P1", "person", {"relay_score": 50, "created_at": created_at})], seen_at=T0))
    report = handoff_report(engine, config=config, now=NOW, since=SINCE)
    moment = as_moment(created_at) if created_at not in (None, "") else None
    assert report.funnel.leads == int((moment or T0) >= SINCE), (created_at, moment)
    unreadable = created_at not in (None, "") and moment is None
    assert any("unreadable person created_at" in note for note in report.notes) == unreadable
