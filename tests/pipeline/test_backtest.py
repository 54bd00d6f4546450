"""``relay backtest``'s logic (``connector.pipeline.backtest``): replays, the comparison, fairness, the store read.

The replays and the comparison are pure: people built here, the shipped rules and a candidate made
from them by editing the YAML as an admin would. Scores are computed apart from the replay (hygiene
then scoring, as the core does) to say which people a candidate must move. The store tests write
snapshots and assignments through the repositories the sync uses, into a migrated store (SQLite
always, PostgreSQL when configured), and check that a backtest reads them and writes nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.config.diff import load_rules_dir
from connector.config.loader import RelayConfig, load_config
from connector.config.settings import PACKAGED_DEFAULTS
from connector.core.hygiene import clean_person
from connector.core.models import Person, RecordRef
from connector.core.rules import Rules
from connector.core.scoring import score_person
from connector.pipeline.backtest import (
    Outcome,
    ReplayInput,
    ReplayRecord,
    backtest,
    backtest_replays,
    compare,
    disposed_of,
    fairness,
    read_replay,
    replay,
    rotation_weights,
)
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.models import Base
from connector.store.repositories import AssignmentIn, Repositories, SnapshotIn
from tests.support.databases import fresh_postgres_schema

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, within business hours
ETHAN, ARJUN, KENJI = "ethan.park@northwind.example", "arjun.mehta@northwind.example", "kenji.watanabe@northwind.example"
LIAM, EMMA, AVA = "liam.walsh@northwind.example", "emma.rossi@northwind.example", "ava.thompson@northwind.example"


def _rules_copy(tmp: Path, *edits: tuple[str, str, str]) -> Path:
    target = tmp / "rules"
    shutil.copytree(REPO / "config" / "rules", target)
    for file, old, new in edits:
        path = target / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not once in {path}"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def current() -> Rules:
    return load_rules_dir(REPO / "config")


@pytest.fixture(scope="module")
def warm_at_70(tmp_path_factory: pytest.TempPathFactory) -> Rules:
    """The candidate: Warm (sales reps) from 70 instead of 60."""
    return load_rules_dir(_rules_copy(tmp_path_factory.mktemp("warm70"), (
        "routing.yaml", "min_score: 60, group: sales_reps", "min_score: 70, group: sales_reps")))


def _person(i: int, country: str, *, title: str = "VP Sales", page_views: int = 5, email_clicks: int = 0,
            form_submissions: int = 0, connection: str = "salesforce", obj: str = "Lead", **extra: Any) -> Person:
    values: dict[str, Any] = {
        "first_name": f"Pat{i}", "last_name": "Lee", "email": f"pat{i}@firm{i}.example", "company": f"Firm {i} Ltd",
        "title": title, "employees": 1000, "annual_revenue": 200_000_000.0, "industry": "Technology",
        "country": country, "page_views": page_views, "email_clicks": email_clicks,
        "form_submissions": form_submissions, **extra}
    return Person(kind="lead", ref=RecordRef(connection=connection, object=obj, crm_id=f"{obj[:1]}{i:04d}"), **values)


def _score(person: Person, rules: Rules) -> int:
    return score_person(clean_person(person), rules.scoring).total


def _varied(country: str, count: int = 48) -> list[Person]:
    """People of every band: titles, clicks and form submissions vary."""
    titles = ["VP Sales", "Sales Manager", "Intern"]
    return [_person(i, country, title=titles[i % 3], page_views=i % 6, email_clicks=(i // 6) % 4,
                    form_submissions=(i // 24) % 3) for i in range(count)]


def _input(people: list[Person], *, apart: bool = False) -> ReplayInput:
    """One batch (one sync page) at T0, or one batch a minute for each (``apart``)."""
    return ReplayInput(records=[ReplayRecord(p, None, T0 + timedelta(minutes=i if apart else 0))
                                for i, p in enumerate(people)])


# --------------------------------------------------------------------------- the replays compared


def test_a_candidate_raising_a_min_score_moves_exactly_the_people_between_the_scores(
        current: Rules, warm_at_70: Rules) -> None:
    # APAC: one sales rep (Ethan), one SDR (Arjun), one senior rep (Kenji): no rotation ripples
    people = _varied("JP")
    scores = {str(p.ref): _score(p, current) for p in people}
    expected = {ref for ref, s in scores.items() if 60 <= s < 70}
    assert expected and any(s >= 70 for s in scores.values()) and any(40 <= s < 60 for s in scores.values()), scores

    report = backtest_replays(_input(people, apart=True), current, warm_at_70)

    assert {c.ref for c in report.owner_changes} == expected
    for change in report.owner_changes:
        assert (change.before.owner, change.after.owner) == (ETHAN, ARJUN)
        assert (change.before.rule, change.after.rule) == ("warm_sales_rep", "qualified_sdr")
        assert "SLA tier Warm -> sales rep, region APAC" in (change.before.reason or "")
        assert "SLA tier Qualified -> SDR team, region APAC" in (change.after.reason or "")
    assert (report.owners_by_rule, report.owners_by_turn) == (len(expected), 0)
    assert report.tier_changes == {("Warm", "Qualified"): len(expected)}
    assert (report.sla.changed, report.sla.later, report.sla.earlier) == (len(expected), len(expected), 0)
    assert all(before == after for before, after in report.states.values()), report.states
    load = {r.owner: r.delta for r in report.load}
    assert load[ETHAN] == -len(expected) and load[ARJUN] == len(expected)
    assert {owner for owner, delta in load.items() if delta} == {ETHAN, ARJUN}
    assert report.changed and report.candidate_version != report.current_version


def test_the_same_rules_change_nothing(current: Rules) -> None:
    # NA: three sales reps, two SDRs, two senior reps: the rotations turn, the same way both times
    data = _input(_varied("US"))
    report = backtest_replays(data, current, current)
    assert report.owner_changes == [] and report.tier_changes == {} and report.sla.changed == 0
    assert not report.changed and report.same_rules
    assert report.states["assigned"][0] > 20  # not vacuous: most of them were routed
    assert all(r.delta == 0 for r in report.load) and {r.owner for r in report.load} >= {LIAM, EMMA, AVA}
    assert replay(data, current) == replay(data, current)


def test_each_side_starts_a_fresh_rotation_and_the_turn_ripples_are_told_apart(current: Rules,
                                                                              warm_at_70: Rules) -> None:
    # NA: moving one person out of the sales reps' rotation gives the next ones another rep
    people = [_person(i, "US", email_clicks=3, form_submissions=1) for i in range(6)]  # Warm at 73 on both sides
    people[0] = _person(0, "US", email_clicks=3)  # 69: Qualified under the candidate
    assert [_score(p, current) for p in people] == [69, 73, 73, 73, 73, 73]
    report = backtest_replays(_input(people, apart=True), current, warm_at_70)
    assert [c.ref for c in report.owner_changes if c.before.rule != c.after.rule] == [str(people[0].ref)]
    assert report.owners_by_rule == 1 and report.owners_by_turn == len(report.owner_changes) - 1
    assert report.owners_by_turn > 0


def test_one_person_keeps_one_owner_across_records_and_is_one_pick(current: Rules) -> None:
    lead = _person(1, "US")
    contact = lead.model_copy(update={"ref": RecordRef(connection="hubspot", object="contacts", crm_id="901")})
    data = ReplayInput(records=[ReplayRecord(lead, "rid-1", T0), ReplayRecord(contact, "rid-1", T0 + timedelta(hours=1))])
    first, second = replay(data, current)
    assert first.owner == second.owner == LIAM and first.state == second.state == "assigned"
    assert first.sla_due is not None and second.sla_due is None  # kept: no second SLA
    rows = fairness([first, second], current, [first, second], current)
    assert {(r.owner, r.before.picks) for r in rows} == {(LIAM, 1), (EMMA, 0), (AVA, 0)}


def test_compare_refuses_replays_of_other_records(current: Rules) -> None:
    a = [Outcome("salesforce/Lead/1", "x", "nurture")]
    b = [Outcome("salesforce/Lead/2", "x", "nurture")]
    with pytest.raises(ValueError, match="same records in the same order"):
        compare(a, b, current, current)


# --------------------------------------------------------------------------- fairness


def _picked(group: str, owner: str, pick: int, ref: str | None = None) -> Outcome:
    return Outcome(ref or f"salesforce/Lead/{group}-{pick}", "x", "assigned", owner=owner, tier="Warm",
                   rule="warm_sales_rep", group=group, pick=pick)


def test_fairness_is_each_owners_share_of_the_picks_against_their_share_of_the_weight(
        current: Rules, tmp_path: Path) -> None:
    weighted = load_rules_dir(_rules_copy(tmp_path, (
        "routing.yaml", "name: Liam Walsh, role: sales_rep, region: NA,",
        "name: Liam Walsh, role: sales_rep, region: NA, weight: 2,")))
    before = [_picked("sales_reps:NA", LIAM, 1), _picked("sales_reps:NA", EMMA, 2), _picked("sales_reps:NA", LIAM, 3),
              _picked("sales_reps:NA", LIAM, 3, ref="hubspot/contacts/7"),  # the same pick, another record
              _picked("sales_reps:NA", AVA, 4)]
    after = [_picked("sales_reps:NA", LIAM, 1), _picked("sales_reps:NA", LIAM, 2), _picked("sales_reps:NA", EMMA, 3),
             _picked("sales_reps:NA", AVA, 4), Outcome("salesforce/Lead/n", "y", "nurture")]
    rows = {r.owner: r for r in fairness(before, current, after, weighted)}
    assert list(rows) == [LIAM, EMMA, AVA]  # roster order; Lucas is inactive: not in the rotation
    liam, emma = rows[LIAM], rows[EMMA]
    assert (liam.before.picks, liam.before.share, liam.before.weight, liam.before.weight_share) == (2, 0.5, 1, 1 / 3)
    assert (liam.after.picks, liam.after.share, liam.after.weight, liam.after.weight_share) == (2, 0.5, 2, 0.5)
    assert (emma.before.share, emma.after.share, emma.after.weight_share) == (0.25, 0.25, 0.25)


def test_rotation_weights_follow_the_key_routing_uses(current: Rules) -> None:
    assert rotation_weights("sales_reps:NA", current) == {LIAM: 1, EMMA: 1, AVA: 1}
    assert set(rotation_weights("sales_reps:*", current)) == {
        LIAM, EMMA, AVA, "noah.fischer@northwind.example", "mia.johansson@northwind.example", ETHAN}
    assert rotation_weights("role:sales_manager:EMEA", current) == {"priya.nair@northwind.example": 1}
    assert rotation_weights("role:director:*", current) == {"dana.whitfield@northwind.example": 1}
    assert rotation_weights("no_such_group:NA", current) == {}


def test_a_replayed_weighted_rotation_meets_its_weights(current: Rules, tmp_path: Path) -> None:
    weighted = load_rules_dir(_rules_copy(tmp_path, (
        "routing.yaml", "name: Liam Walsh, role: sales_rep, region: NA,",
        "name: Liam Walsh, role: sales_rep, region: NA, weight: 2,")))
    people = [_person(i, "US") for i in range(40)]  # all Warm: 40 picks of sales_reps:NA
    report = backtest_replays(_input(people), current, weighted)
    rows = {r.owner: r for r in report.fairness if r.group == "sales_reps:NA"}
    assert {o: r.after.picks for o, r in rows.items()} == {LIAM: 20, EMMA: 10, AVA: 10}
    assert {o: r.after.share for o, r in rows.items()} == {o: r.after.weight_share for o, r in rows.items()}
    assert sorted(r.before.picks for r in rows.values()) == [13, 13, 14]
    assert {r.owner: r.delta for r in report.load} == {LIAM: 6, EMMA: -3, AVA: -3}


# --------------------------------------------------------------------------- dispositions


def test_dispositions_are_read_from_each_records_own_value_under_each_side(current: Rules) -> None:
    at = T0 - timedelta(days=30)

    def record(value: str, owner: str | None = None, **extra: Any) -> ReplayRecord:
        return ReplayRecord(_person(1, "US", disposition=value, disposition_at=at, **extra), None, T0, owner)

    assert disposed_of(ReplayRecord(_person(1, "US"), None, T0), current) is None
    assert disposed_of(record("Something Else"), current) is None
    suppressed = disposed_of(record("Do Not Contact"), current)
    assert suppressed is not None and suppressed.state == "suppressed"
    held = disposed_of(record("No Response"), current)
    assert held is not None and held.state == "held" and "recycled on 2026-05-01" in held.note
    nurtured = disposed_of(record("Not Ready"), current)
    assert nurtured is not None and (nurtured.state, nurtured.nurture) == ("held", True)
    late = ReplayRecord(_person(1, "US", disposition="No Response", disposition_at=T0 - timedelta(days=91)), None, T0, LIAM)
    recycled = disposed_of(late, current)
    assert recycled is not None and recycled.state == "recycled" and recycled.excluded == frozenset({LIAM})

    other = ReplayRecord(late.person.model_copy(update={"ref": RecordRef(connection="salesforce", object="Lead",
                                                                         crm_id="L0002"),
                                                         "email": "someone@else.example"}), None, T0, LIAM)
    outcomes = replay(ReplayInput(records=[record("Do Not Contact"), other]), current)
    assert outcomes[0].state == "suppressed" and outcomes[1].state == "assigned" and outcomes[1].owner != LIAM


# --------------------------------------------------------------------------- from the store


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    return load_config(PACKAGED_DEFAULTS / "config", PACKAGED_DEFAULTS / "mappings", env={})


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store, once per backend."""
    if request.param == "sqlite":
        made = create_engine_for(f"sqlite:///{tmp_path / 'relay.db'}")
        migrate.upgrade(made)
        yield made
        made.dispose()
        return
    with fresh_postgres_schema() as url:  # skips locally, fails under CI=true, when not configured
        made = create_engine_for(url)
        migrate.upgrade(made)
        yield made
        made.dispose()


def _canonical(person: Person) -> dict[str, Any]:
    return person.model_dump(mode="json", exclude={"kind", "ref", "updated_at"})


def _fill(engine: Engine) -> None:
    """L1: owned by the rep Relay assigned it to; L2: owned in the CRM by a rep (no assignment of its own);
    C1: a contact owned by a CRM user Relay never assigned; L0: seen before the period."""
    with session_factory(engine).begin() as session:
        repos = Repositories(session)
        l1 = _person(1, "US", email_clicks=3, owner_id="005LIAM")  # 69: Warm now, Qualified at 70
        l2 = _person(2, "US", owner_id="005LIAM")
        l0 = _person(3, "US")
        c1 = _person(4, "US", owner_id="005QUEUE", obj="Contact")
        repos.records.upsert_snapshots("salesforce", "Lead", [SnapshotIn("L0003", "person", _canonical(l0))],
                                       seen_at=T0 - timedelta(days=10))
        repos.records.upsert_snapshots("salesforce", "Lead", [
            SnapshotIn("L0001", "person", _canonical(l1)), SnapshotIn("L0002", "person", _canonical(l2))], seen_at=T0)
        repos.records.upsert_snapshots("salesforce", "Contact", [SnapshotIn("C0004", "person", _canonical(c1))],
                                       seen_at=T0 + timedelta(minutes=1))
        repos.assignments.record_many([AssignmentIn("salesforce", "Lead", "L0001", LIAM, "005LIAM", "Warm",
                                                    "warm_sales_rep", assigned_at=T0)], now=T0)


def _everything(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with Session(engine) as session:
        return {table.name: sorted((tuple(map(repr, row)) for row in session.execute(select(table))), key=repr)
                for table in Base.metadata.sorted_tables}


def test_the_store_read_takes_off_only_the_owners_relay_wrote(engine: Engine, config: RelayConfig) -> None:
    _fill(engine)
    with Session(engine) as session:
        data = read_replay(session, config, since=T0 - timedelta(hours=1), rosters=(config.rules,))
    people = {r.person.ref.crm_id: r for r in data.records}
    assert list(people) == ["L0001", "L0002", "C0004"]  # by when they were seen; L0 is older
    assert people["L0001"].person.owner_id is None  # Relay's own decision: decided afresh
    assert people["L0002"].person.owner_id == "005LIAM" and people["C0004"].person.owner_id == "005QUEUE"
    assert people["L0002"].owner_email == LIAM and people["C0004"].owner_email is None
    assert data.known_owner_emails == frozenset({LIAM}) and data.skipped == {}
    outcomes = {o.ref: o for o in replay(data, config.rules)}
    assert outcomes["salesforce/Lead/L0001"].state == "assigned"
    assert (outcomes["salesforce/Lead/L0002"].state, outcomes["salesforce/Lead/L0002"].owner) == ("kept", LIAM)
    assert (outcomes["salesforce/Contact/C0004"].state, outcomes["salesforce/Contact/C0004"].owner) == ("kept", None)


def test_a_backtest_reads_the_store_and_writes_nothing(engine: Engine, config: RelayConfig, warm_at_70: Rules) -> None:
    _fill(engine)
    before = _everything(engine)
    report = backtest(engine, config, since=T0 - timedelta(hours=1), candidate=warm_at_70, candidate_source="cand")
    assert _everything(engine) == before
    assert report.records == 3 and [c.ref for c in report.owner_changes] == ["salesforce/Lead/L0001"]
    change = report.owner_changes[0]
    assert (change.before.rule, change.after.rule) == ("warm_sales_rep", "qualified_sdr")
    assert report.states["kept"] == (2, 2) and report.candidate_source == "cand"
    assert report.as_dict()["owner_changes"][0]["after"]["rule"] == "qualified_sdr"

    itself = backtest(engine, config, since=T0 - timedelta(hours=1))
    assert not itself.changed and itself.candidate_source is None and itself.same_rules
    assert _everything(engine) == before
    with pytest.raises(ValueError, match="aware"):
        backtest(engine, config, since=datetime(2026, 3, 1))
