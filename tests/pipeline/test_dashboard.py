"""The dashboard's figures (``connector.pipeline.dashboard``) over a store with known rows.

Rows are written through the repositories the sync uses, into a migrated store (SQLite always,
PostgreSQL when ``RELAY_TEST_POSTGRES_URL`` is set; CI fails instead of skipping). Every figure
expected is counted by hand in the comments. T0 is Monday 2026-03-02 09:00 UTC; the figures are
taken at NOW (ten days later) over the period from SINCE (two days after T0) unless a test says
otherwise. Owners come from the packaged roster: A (Liam Walsh, sales rep NA), B (Noah Fischer,
sales rep EMEA), C (Chloe Martin, SDR NA).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig, load_config
from connector.config.settings import PACKAGED_DEFAULTS
from connector.pipeline import dashboard
from connector.pipeline.handoff_report import handoff_report
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.repositories import (
    AssignmentIn,
    ClockIn,
    ClockUpdate,
    DataQualityIn,
    FieldFill,
    Repositories,
    SnapshotIn,
)
from connector.store.repositories.dispositions import DispositionIn
from tests.support.databases import fresh_postgres_schema

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=10)
SINCE = T0 + timedelta(days=2)
LATER = T0 + timedelta(days=3)
SF = "salesforce"
A, B, C = "liam.walsh@northwind.example", "noah.fischer@northwind.example", "chloe.martin@northwind.example"
STRANGER = "someone@elsewhere.example"


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    """The packaged defaults: seed 002's SLA tiers, roster, quality targets, stages."""
    return load_config(PACKAGED_DEFAULTS / "config", PACKAGED_DEFAULTS / "mappings", env={})


def _clocks(repos: Repositories) -> None:
    """SLA clocks (packaged sla.yaml: Hot 5 min, Warm 60 min, Qualified 24 h; breach = 100 % of the SLA)."""
    def touched(crm_id: str, owner: str, tier: str, started: datetime, minutes: float,
                group: str | None = None) -> ClockIn:
        at = started + timedelta(minutes=minutes)
        return ClockIn(SF, "Lead", crm_id, owner, tier, started, "relay", stage="contacted", stage_since=at,
                       first_touch_at=at, group_key=group)

    def untouched(crm_id: str, owner: str, tier: str, started: datetime, group: str | None = None) -> ClockIn:
        return ClockIn(SF, "Lead", crm_id, owner, tier, started, "relay", group_key=group)

    repos.clocks.open_many([
        touched("c1", A, "Warm", LATER, 30, "sales_reps:NA"),        # met
        touched("c2", A, "Warm", LATER, 60, "sales_reps:NA"),        # exactly 60 min: met (boundary)
        touched("c3", A, "Warm", LATER, 61),                         # a minute late: missed
        untouched("c4", B, "Hot", LATER + timedelta(hours=1), "sales_reps:EMEA"),  # never touched: missed
        untouched("c5", C, "Qualified", NOW - timedelta(hours=1)),   # 23 h left: not judged
        untouched("c6", C, "Qualified", NOW - timedelta(hours=23, minutes=30)),  # 30 min left: about to breach
        touched("c7", A, "Warm", LATER + timedelta(minutes=5), 0),   # touched when it started: not measured
        untouched("c8", B, "Warm", LATER),                           # closed after 30 min below: not judged
        touched("c9", B, "Hot", LATER, 2, "sales_reps:EMEA"),        # met
        touched("c10", A, "Warm", T0, 200),                          # before SINCE: missed, out of the period
        touched("c11", STRANGER, "Legacy", LATER, 10),               # a tier sla.yaml does not know
        untouched("c12", C, "Qualified", NOW - timedelta(hours=30)),  # breached 6 h ago, still open: missed
    ], now=T0)
    c8 = repos.clocks.latest_for_records(SF, "Lead", ["c8"])["c8"]
    repos.clocks.save_many([ClockUpdate(c8.id, "new", c8.stage_since, None, {}, None, closed_reason="owner_changed")],
                           now=LATER + timedelta(minutes=30))


def _audit(repos: Repositories) -> None:
    """SLA steps, re-queues, returns to nurture and recycles, as the worker and the sync audit them."""
    def step(action: str, name: str, owner: str, at: datetime, crm_id: str) -> None:
        repos.audit.append(SF, action, object_name="Lead", crm_id=crm_id, at=at,
                           detail={"step": name, "owner_email": owner, "tier": "Warm", "notify_email": None})

    step("sla_escalated", "escalate_manager", B, LATER + timedelta(minutes=10), "c4")
    step("sla_escalated", "escalate_director", B, LATER + timedelta(hours=2), "c4")
    step("sla_reminder", "remind", C, LATER + timedelta(hours=12), "c12")
    step("sla_requeued", "requeue", C, LATER + timedelta(days=1), "c12")
    step("sla_nurtured", "nurture", A, LATER + timedelta(days=1, hours=3), "c1")
    step("sla_escalated", "escalate_manager", A, T0 + timedelta(hours=1), "c10")   # before SINCE
    repos.audit.append(SF, "recycled", object_name="Lead", crm_id="r1", at=LATER + timedelta(days=2),
                       detail={"returned_by": C, "new_owner_email": A})
    repos.audit.append(SF, "recycled", object_name="Lead", crm_id="r2", at=T0, detail={"returned_by": C,
                                                                                        "new_owner_email": B})


def _assignments(repos: Repositories) -> None:
    def assign(crm_id: str, owner: str, tier: str, at: datetime, owner_id: str | None = None) -> AssignmentIn:
        return AssignmentIn(SF, "Lead", crm_id, owner, owner_crm_id=owner_id, tier=tier, rule="r", assigned_at=at)

    repos.assignments.record_new_many([
        assign("a1", A, "Hot", LATER, "005A"), assign("a2", A, "Warm", LATER), assign("a3", A, "Warm", LATER),
        assign("a4", B, "Hot", LATER), assign("a5", B, "Hot", LATER),
        assign("a6", C, "Qualified", LATER), assign("a7", C, "Qualified", T0),  # a7: before SINCE
    ], now=T0)


def _deals(repos: Repositories) -> None:
    def deal(crm_id: str, owner: str, stage: str, amount: float) -> SnapshotIn:
        return SnapshotIn(crm_id, "deal", {"name": crm_id, "stage": stage, "amount": amount, "owner_id": owner})

    repos.records.upsert_snapshots(SF, "Opportunity", [
        deal("d1", "005A", "Prospecting", 1000.0), deal("d2", "005A", "Negotiation", 250.5),
        deal("d3", "005A", "Closed Won", 500.0), deal("d4", "005A", "Closed Lost", 700.0),
        deal("d5", "005Z", "Prospecting", 300.0),   # an owner Relay never assigned a lead to
    ], seen_at=T0)


def _quality(repos: Repositories) -> None:
    """Three runs' data-quality rows; the first before SINCE."""
    def row(run: int, source: str, records: int, at: datetime, *, email: tuple[int, int], company: tuple[int, int],
            duplicates: int, phones: tuple[int, int], enriched: int | None) -> DataQualityIn:
        fields = {"first_name": FieldFill(records, records), "email": FieldFill(*email),
                  "company": FieldFill(*company)}
        return DataQualityIn(run, SF, source, records, fields, duplicates, emails=email[0], invalid_emails=1,
                             phones=phones[0], invalid_phones=phones[1], enriched=enriched, completeness_target=95.0,
                             duplicates_target=2.0, measured_at=at)

    runs = []
    for at in (T0, LATER, LATER + timedelta(days=2)):
        runs.append(repos.sync_runs.start(SF, "incremental", now=at))
        repos.sync_runs.finish(runs[-1], "succeeded", now=at + timedelta(minutes=1))
    repos.data_quality.record_many([
        row(runs[0], "Web", 10, T0, email=(1, 10), company=(0, 10), duplicates=5, phones=(4, 4), enriched=None),
        row(runs[1], "Web", 20, LATER, email=(19, 20), company=(18, 20), duplicates=1, phones=(10, 2), enriched=5),
        row(runs[1], "Trade Show", 10, LATER, email=(10, 10), company=(10, 10), duplicates=0, phones=(5, 1),
            enriched=None),
        row(runs[2], "Web", 30, LATER + timedelta(days=2), email=(30, 30), company=(29, 30), duplicates=0,
            phones=(20, 0), enriched=15),
    ])
    repos.api_calls.add(SF, "read", 3, run_id=runs[1], at=LATER)
    repos.api_calls.add(SF, "write", 2, run_id=runs[1], at=LATER + timedelta(minutes=1))
    repos.api_calls.add(SF, "read", 4, run_id=runs[2], at=LATER + timedelta(days=2))
    repos.api_calls.add(SF, "read", 100, run_id=runs[0], at=T0)   # before SINCE
    repos.api_calls.add("hubspot", "search", 7, at=LATER)


def _dispositions(repos: Repositories) -> None:
    def waiting(crm_id: str, owner: str, recycle_at: datetime) -> DispositionIn:
        return DispositionIn(SF, "Lead", crm_id, "No Response", "", seen_at=T0, decided_at=T0, action="recycle",
                             status="waiting", owner_email=owner, recycle_at=recycle_at)

    repos.dispositions.record_many([
        waiting("w1", C, NOW - timedelta(days=1)), waiting("w2", C, NOW + timedelta(days=10)),
        waiting("w3", A, NOW + timedelta(days=45)), waiting("w4", C, NOW + timedelta(days=200)),
    ])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated store holding the known rows, once per backend."""
    def fill(made: Engine) -> None:
        migrate.upgrade(made)
        with session_factory(made).begin() as session:
            repos = Repositories(session)
            for part in (_clocks, _audit, _assignments, _deals, _quality, _dispositions):
                part(repos)

    if request.param == "sqlite":
        made = create_engine_for(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'relay.db'}")
        fill(made)
        yield made
        made.dispose()
        return
    with fresh_postgres_schema() as url:  # skips locally, fails under CI=true, when not configured
        made = create_engine_for(url)
        fill(made)
        yield made
        made.dispose()


def _by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


# --------------------------------------------------------------------------- SLA


def test_sla_compliance_by_tier_team_and_rep(engine: Engine, config: RelayConfig) -> None:
    sla = dashboard.sla_figures(engine, config, now=NOW, since=SINCE)
    total = sla["total"]
    # met: c1, c2, c9; missed: c3 (61 min), c4 (never touched), c12 (breached, open); c10 is before SINCE
    assert (total["clocks"], total["met"], total["missed"], total["judged"]) == (11, 3, 3, 6)
    assert total["compliance_percent"] == 50.0 and total["status"] == "miss"
    tiers = _by(sla["tiers"], "tier")
    assert [t["tier"] for t in sla["tiers"]] == ["Hot", "Warm", "Qualified", "Legacy"]  # sla.yaml's order
    assert (tiers["Warm"]["met"], tiers["Warm"]["missed"], tiers["Warm"]["clocks"]) == (2, 1, 5)  # c1 c2 | c3 | c7 c8
    assert (tiers["Hot"]["met"], tiers["Hot"]["missed"]) == (1, 1)
    assert (tiers["Qualified"]["met"], tiers["Qualified"]["missed"], tiers["Qualified"]["open"]) == (0, 1, 3)
    assert tiers["Legacy"]["judged"] == 0 and tiers["Legacy"]["status"] == "n/a"
    assert any("Legacy" in note for note in sla["notes"])
    teams = {(t["region"], t["role"]): t for t in sla["teams"]}
    assert (teams[("NA", "sales_rep")]["met"], teams[("NA", "sales_rep")]["missed"]) == (2, 1)
    assert teams[("EMEA", "sales_rep")]["compliance_percent"] == 50.0
    assert teams[("NA", "sdr")]["compliance_percent"] == 0.0
    assert teams[("(unknown)", "(unknown)")]["clocks"] == 1
    reps = _by(sla["reps"], "email")
    assert reps[A]["name"] == "Liam Walsh" and (reps[A]["clocks"], reps[A]["met"], reps[A]["missed"]) == (4, 2, 1)
    assert round(reps[A]["compliance_percent"], 2) == 66.67


def test_time_to_first_touch_median_p90_and_the_hour(engine: Engine, config: RelayConfig) -> None:
    touch = dashboard.sla_figures(engine, config, now=NOW, since=SINCE)["first_touch"]
    # touched after their clock started, in the period: 2, 10, 30, 60, 61 minutes
    assert (touch["measured"], touch["median_minutes"], touch["p90_minutes"]) == (5, 30.0, 61.0)
    assert (touch["within_hour"], touch["within_hour_percent"], touch["status"]) == (4, 80.0, "pass")
    everything = dashboard.sla_figures(engine, config, now=NOW)["first_touch"]
    # all time adds c10's 200 minutes: an even count, median (30 + 60) / 2, p90 the 6th of 6
    assert (everything["measured"], everything["median_minutes"], everything["p90_minutes"]) == (6, 45.0, 200.0)


def test_the_sla_figures_agree_with_relay_report_handoffs(engine: Engine, config: RelayConfig) -> None:
    """One definition: the dashboard's time to first touch and compliance are the report's figures."""
    report = handoff_report(engine, config=config, now=NOW, since=SINCE).lead_owner
    sla = dashboard.sla_figures(engine, config, now=NOW, since=SINCE)
    assert sla["first_touch"]["median_minutes"] == pytest.approx(report.touch_median)
    assert (sla["total"]["met"], sla["total"]["judged"]) == (report.accepted, report.judged)


def test_a_reps_own_sla_figures(engine: Engine, config: RelayConfig) -> None:
    mine = dashboard.sla_figures(engine, config, now=NOW, since=SINCE, owner=" Liam.Walsh@northwind.example ")
    assert mine["owner"] == A
    assert {r["email"] for r in mine["reps"]} == {A}
    assert (mine["total"]["clocks"], mine["total"]["met"], mine["total"]["missed"]) == (4, 2, 1)
    assert mine["first_touch"]["median_minutes"] == 60.0   # 30, 60, 61
    assert mine["about_to_breach"]["count"] == 0 and mine["steps"]["escalations_manager"] == 0
    assert mine["steps"]["nurtured"] == 1


def test_clocks_about_to_breach_and_the_steps_fired(engine: Engine, config: RelayConfig) -> None:
    sla = dashboard.sla_figures(engine, config, now=NOW, since=SINCE)
    soon = sla["about_to_breach"]
    assert soon["count"] == 1 and soon["breached_open"] == 2   # c6 in 30 min; c4 and c12 past their SLA
    [item] = soon["items"]
    assert (item["crm_id"], item["owner_email"], item["tier"], item["minutes_left"]) == ("c6", C, "Qualified", 30.0)
    steps = sla["steps"]
    assert (steps["escalations_manager"], steps["escalations_director"], steps["reminders"], steps["requeues"],
            steps["nurtured"]) == (1, 1, 1, 1, 1)
    assert [s["step"] for s in steps["recent"]][:2] == ["nurture", "requeue"]   # latest first
    wider = dashboard.sla_figures(engine, config, now=NOW, since=SINCE, horizon_minutes=24 * 60)["about_to_breach"]
    assert wider["count"] == 2 and [i["crm_id"] for i in wider["items"]] == ["c6", "c5"]


# --------------------------------------------------------------------------- aging


def test_open_leads_by_status_and_age_and_the_aging_events(engine: Engine, config: RelayConfig) -> None:
    aging = dashboard.aging_figures(engine, config, now=NOW, since=SINCE)
    statuses = _by(aging["statuses"], "status")
    new, contacted = statuses["new"], statuses["contacted"]
    # new: c4 (6 d 23 h), c5 (1 h), c6 (23.5 h), c12 (30 h); c8 is closed
    assert new["buckets"] == {"< 1 h": 0, "1-4 h": 1, "4-24 h": 1, "1-2 d": 1, "2-3 d": 0, "3-7 d": 1, "> 7 d": 0}
    assert (new["total"], new["past_threshold"], new["threshold_hours"]) == (4, 1, 48.0)   # c4 is past 48 h
    # contacted since the first touch: c1 c2 c3 c7 c9 c11 ~7 days ago, c10 ~10 days ago; all past 72 h
    assert contacted["buckets"]["3-7 d"] == 6 and contacted["buckets"]["> 7 d"] == 1
    assert (contacted["total"], contacted["past_threshold"]) == (7, 7)
    assert aging["open_total"] == 11
    assert aging["events"] == {"requeues": 1, "nurtured": 1, "recycles": 1}   # r2 was recycled before SINCE
    assert [d["day"] for d in aging["events_by_day"]] == ["2026-03-06", "2026-03-07"]
    assert aging["recycles_waiting"] == {"due": 1, "30d": 1, "60d": 1, "later": 1}


def test_a_reps_own_aging(engine: Engine, config: RelayConfig) -> None:
    mine = dashboard.aging_figures(engine, config, now=NOW, since=SINCE, owner=C)
    assert [s["status"] for s in mine["statuses"]] == ["new"] and mine["open_total"] == 3   # c5 c6 c12
    assert mine["events"] == {"requeues": 1, "nurtured": 0, "recycles": 1}   # r1 was returned by C
    assert mine["recycles_waiting"] == {"due": 1, "30d": 1, "60d": 0, "later": 1}


# --------------------------------------------------------------------------- funnel, fairness


def test_the_funnel_is_relay_report_handoffs(engine: Engine, config: RelayConfig) -> None:
    funnel = dashboard.funnel_figures(engine, config, now=NOW)
    report = handoff_report(engine, config=config, now=NOW).as_dict()
    assert funnel["report"] == report
    counts = {s["key"]: s["count"] for s in funnel["stages"]}
    assert counts["opportunity"] == 5 and counts["won"] == 1   # d1..d5 (d4 lost counts as an opportunity), d3
    recent = dashboard.funnel_figures(engine, config, now=NOW, since=SINCE)
    assert recent["report"] == handoff_report(engine, config=config, now=NOW, since=SINCE).as_dict()
    assert {s["key"]: s["count"] for s in recent["stages"]}["opportunity"] == 0   # first seen at T0, before SINCE
    assert [r["key"] for r in funnel["rates"]][:3] == ["lead_to_mql", "mql_to_sql", "sql_to_opportunity"]
    assert {t["key"] for t in funnel["times"]} >= {"lead_response", "time_to_kickoff"}


def test_fairness_per_rep_against_the_round_robin_weights(engine: Engine, config: RelayConfig) -> None:
    fair = dashboard.fairness_figures(engine, config, now=NOW, since=SINCE)
    reps = _by(fair["reps"], "email")
    assert (reps[A]["leads"], reps[A]["hot_leads"], reps[B]["leads"], reps[B]["hot_leads"], reps[C]["leads"]) == \
        (3, 1, 2, 2, 1)
    assert fair["totals"] == {"leads": 6, "hot_leads": 3}
    assert reps[A]["lead_share_percent"] == 50.0 and round(reps[B]["hot_share_percent"], 2) == 66.67
    # open load now: A c1 c2 c3 c7 c10; B c4 c9; C c5 c6 c12
    assert (reps[A]["open_load"], reps[B]["open_load"], reps[C]["open_load"]) == (5, 2, 3)
    # deals: d1 + d2 open, d3 won, d4 lost (left out); 005A is A by the assignment a1
    assert (reps[A]["open_deals"], reps[A]["open_pipeline"], reps[A]["won_deals"], reps[A]["won_amount"]) == \
        (2, 1250.5, 1, 500.0)
    assert reps["salesforce:005z"]["open_pipeline"] == 300.0 and not reps["salesforce:005z"]["in_roster"]
    assert reps["emma.rossi@northwind.example"]["leads"] == 0   # on the roster, in a routing group, no lead yet
    rotations = _by(fair["rotations"], "rotation")
    na = _by(rotations["sales_reps:NA"]["members"], "email")
    # sales_reps:NA: Liam, Emma, Ava active with weight 1 (Lucas is inactive); Liam had both picks
    assert set(na) == {A, "emma.rossi@northwind.example", "ava.thompson@northwind.example"}
    assert (na[A]["picks"], na[A]["share_percent"], round(na[A]["expected_percent"], 2),
            round(na[A]["deviation_points"], 2)) == (2, 100.0, 33.33, 66.67)
    emea = _by(rotations["sales_reps:EMEA"]["members"], "email")
    assert (emea[B]["picks"], emea[B]["expected_percent"], emea["mia.johansson@northwind.example"]["picks"]) == \
        (2, 50.0, 0)


# --------------------------------------------------------------------------- data quality, API usage


def test_data_quality_added_up_exactly_per_source_and_day(engine: Engine, config: RelayConfig) -> None:
    quality = dashboard.quality_figures(engine, config, now=NOW, since=SINCE)
    total = quality["total"]
    # the period's rows: Web 20 + Trade Show 10 + Web 30 = 60 records; required fields measured:
    # first_name 60/60, email 59/60, company 57/60; last_name and lead_source not mapped here (0/0)
    assert total["records"] == 60 and total["rows"] == 3
    assert total["fields"]["email"] == {"filled": 59, "measured": 60, "percent": 98.33}
    assert total["fields"]["last_name"] == {"filled": 0, "measured": 0, "percent": None}
    assert total["completeness_percent"] == round(100 * 176 / 180, 2) and total["completeness_status"] == "pass"
    assert (total["duplicates"], total["duplicate_percent"], total["duplicates_status"]) == (1, 1.67, "pass")
    assert (total["invalid_phones"], total["phones"], total["invalid_phone_percent"]) == (3, 35, 8.57)
    # enrichment measured on the Web rows only (50 records, 20 enriched)
    assert (total["enriched"], total["enrichment_percent"]) == (20, 40.0)
    sources = {s["source"]: s for s in quality["sources"]}
    assert sources["Web"]["records"] == 50 and sources["Trade Show"]["duplicate_percent"] == 0.0
    assert sources["Trade Show"]["enriched"] is None and sources["Trade Show"]["enrichment_percent"] is None
    assert [d["day"] for d in quality["days"]] == ["2026-03-05", "2026-03-07"]
    everything = dashboard.quality_figures(engine, config, now=NOW)
    # with the first run: 5 duplicates of 10 more, 6 of 70 = 8.57 %, over the 2 % target
    assert (everything["total"]["duplicates"], everything["total"]["duplicates_status"]) == (6, "miss")


def test_api_usage_per_connection_and_day(engine: Engine, config: RelayConfig) -> None:
    usage = dashboard.api_usage_figures(engine, config, now=NOW, since=SINCE)
    connections = _by(usage["connections"], "name")
    sf = connections[SF]
    assert sf["calls_total"] == 9 and sf["calls_by_kind"] == {"read": 7, "write": 2}
    assert [(d["day"], d["calls"]) for d in sf["calls_by_day"]] == [("2026-03-05", 5), ("2026-03-07", 4)]
    assert connections["hubspot"]["calls_by_kind"] == {"search": 7}
    assert sf["day"]["limit"] == 100_000 and sf["day"]["reserve"] == 20_000
    assert connections["hubspot"]["window"]["limit"] == 190


# --------------------------------------------------------------------------- the rest


def test_naive_moments_and_unknown_periods_are_refused(engine: Engine, config: RelayConfig) -> None:
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        dashboard.sla_figures(engine, config, now=NOW.replace(tzinfo=None))
    with pytest.raises(KeyError):
        dashboard.since_of("fortnight", NOW)
    assert dashboard.since_of("7d", NOW) == NOW - timedelta(days=7) and dashboard.since_of("all", NOW) is None


def test_explain_pulls_the_score_routing_sla_and_writes_out_of_a_trail() -> None:
    score = {"total": 72, "category": "Warm", "demographic": 30, "firmographic": 22, "behavioural": 20,
             "items": [{"component": "demographic", "rule": "seniority", "detail": "vp", "points": 12}]}
    assigned = dashboard.explain({"at": "2026-03-05T09:00:00+00:00", "action": "assigned", "connection": SF,
                                  "object": "Lead", "crm_id": "L1", "rules_version": "abc",
                                  "detail": {"rule": "warm_sales_rep", "owner_email": A, "tier": "Warm",
                                             "reason": "Score 72 -> sales rep", "score": score,
                                             "sla": {"tier": "Warm", "due_at": "2026-03-05T10:00:00Z",
                                                     "response_minutes": 60, "escalation_chain": [B]}}})
    assert assigned["routing"]["rule"] == "warm_sales_rep" and assigned["score"]["total"] == 72
    assert assigned["score"]["components"] == {"demographic": 30, "firmographic": 22, "behavioural": 20}
    assert assigned["sla"]["due"] == "2026-03-05T10:00:00Z" and assigned["rules_version"] == "abc"
    assert "warm_sales_rep" in assigned["summary"]
    written = dashboard.explain({"action": "field_update", "connection": "hubspot", "object": "contacts",
                                 "crm_id": "1", "detail": {"fields": {"hubspot_owner_id": "7"}}})
    assert written["written"] == {"crm": "hubspot", "object": "contacts", "fields": {"hubspot_owner_id": "7"}}


def test_the_dashboard_indexes_exist(engine: Engine) -> None:
    names = {"ix_sla_clocks_started_at", "ix_sla_clocks_owner_started_at", "ix_sla_clocks_open_tier_started_at",
             "ix_sla_clocks_open_owner_stage",
             "ix_audit_log_action_at", "ix_assignments_assigned_at", "ix_assignments_owner_crm_id",
             "ix_api_calls_at", "ix_data_quality_measured_at", "ix_records_kind", "ix_sla_clocks_owner_crm_id"}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
        else:
            found = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"))
                        .scalars())
    assert names <= found, names - found


def test_the_figure_cache_computes_once_per_ttl_and_refreshes_a_stale_entry_in_the_background() -> None:
    moments = [0.0]
    calls: list[int] = []
    done = threading.Event()

    def compute() -> dict[str, Any]:
        calls.append(len(calls) + 1)
        if len(calls) == 2:
            done.set()
        return {"n": len(calls)}

    cache = dashboard.FigureCache(60, clock=lambda: moments[0])
    assert cache.get(("sla", "30d", None), compute) == {"n": 1}
    moments[0] = 59.9
    assert cache.get(("sla", "30d", None), compute) == {"n": 1} and calls == [1]   # fresh: not computed again
    assert cache.get(("sla", "7d", None), compute) == {"n": 2}                     # another key: its own figures
    done.clear()
    moments[0] = 200.0
    assert cache.get(("sla", "30d", None), compute) == {"n": 1}   # stale: served at once, refreshed behind
    for _ in range(200):
        if cache.get(("sla", "30d", None), lambda: {"n": -1}) == {"n": 3}:
            break
        time.sleep(0.01)
    assert cache.get(("sla", "30d", None), compute) == {"n": 3} and calls == [1, 2, 3]
    uncached = dashboard.FigureCache(0)
    assert [uncached.get("k", compute)["n"] for _ in range(2)] == [4, 5]


def test_a_failed_refresh_keeps_the_last_figures() -> None:
    moments = [0.0]
    cache = dashboard.FigureCache(10, clock=lambda: moments[0])
    assert cache.get("k", lambda: {"ok": True}) == {"ok": True}
    moments[0] = 11.0

    def broken() -> dict[str, Any]:
        raise RuntimeError("store unavailable")

    assert cache.get("k", broken) == {"ok": True}
    time.sleep(0.2)
    assert cache.get("k", lambda: {"ok": "again"}) in ({"ok": True}, {"ok": "again"})
    time.sleep(0.2)
    assert cache.get("k", lambda: {"ok": "never"}) == {"ok": "again"}
