"""SLA clocks that act: the steps due (seed 001 items 37, 40, 49), business hours, re-queue picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connector.core.clocks import (
    STEPS,
    ClockState,
    add_working_time,
    evaluate,
    next_due_at,
    requeue_group,
    requeue_owner,
    schedule,
    stage_of,
)
from connector.core.models import RoutingState
from connector.core.rules import BusinessHours, Rules, SlaPolicy, WorkCalendar

from .helpers import NOW, load_yaml, team

OLIVIA = team("olivia.grant")  # senior rep NA -> marcus.chen -> dana.whitfield
NY = WorkCalendar(timezone="America/New_York", country="US")


def _state(tier: str = "Hot", **given: Any) -> ClockState:
    return ClockState(tier=tier, owner_email=given.pop("owner", OLIVIA), started_at=given.pop("started", NOW),
                      **given)


def _steps(rules: Rules, state: ClockState, now: datetime) -> list[tuple[str, str | None]]:
    return [(a.step, a.notify) for a in evaluate(state, rules.sla, rules.routing, now).actions]


def _with_hours(rules: Rules, enabled: bool = True) -> Rules:
    hours = BusinessHours(enabled=enabled, default_calendar="NA",
                          calendars={"NA": NY, "EMEA": WorkCalendar(timezone="Europe/London", country="GB")})
    return rules.model_copy(update={"sla": rules.sla.model_copy(update={"business_hours": hours})})


def test_statuses_of_both_crms_map_to_stages(rules: Rules) -> None:
    assert [stage_of(s, rules.sla) for s in (None, " ", "Open - Not Contacted", "NEW", "open")] == ["new"] * 5
    assert [stage_of(s, rules.sla) for s in ("Working - Contacted", "IN_PROGRESS", "attempted_to_contact")] \
        == ["contacted"] * 3
    assert [stage_of(s, rules.sla) for s in ("Closed - Converted", "UNQUALIFIED")] == ["other"] * 2


def test_reminder_at_half_the_sla_to_the_owner_and_not_a_second_before(rules: Rules) -> None:
    state = _state("Hot")
    assert _steps(rules, state, NOW + timedelta(seconds=149)) == []
    assert _steps(rules, state, NOW + timedelta(seconds=150)) == [("remind", OLIVIA)]


def test_escalation_to_the_manager_at_the_sla_then_the_director_after_the_sla_again(rules: Rules) -> None:
    reminded = _state("Hot", fired=frozenset({"remind"}))
    assert _steps(rules, reminded, NOW + timedelta(minutes=5)) == [("escalate_manager", team("marcus.chen"))]
    escalated = _state("Hot", fired=frozenset({"remind", "escalate_manager"}))
    assert _steps(rules, escalated, NOW + timedelta(minutes=10) - timedelta(seconds=1)) == []
    assert _steps(rules, escalated, NOW + timedelta(minutes=10)) == [("escalate_director", team("dana.whitfield"))]


def test_the_further_interval_is_configurable_per_tier(rules: Rules) -> None:
    data = load_yaml("sla")
    data["tiers"][0]["director_after_minutes"] = 30
    policy = SlaPolicy.model_validate(data)
    steps = schedule(_state("Hot"), policy, rules.routing)
    assert steps["escalate_director"][0] == NOW + timedelta(minutes=35)


def test_a_job_that_was_down_fires_every_missed_step_once_in_order(rules: Rules) -> None:
    assert _steps(rules, _state("Warm"), NOW + timedelta(hours=3)) == [
        ("remind", OLIVIA), ("escalate_manager", team("marcus.chen")), ("escalate_director", team("dana.whitfield"))]


def test_first_touch_stops_reminders_and_escalations(rules: Rules) -> None:
    touched = _state("Hot", stage="contacted", first_touch_at=NOW + timedelta(minutes=1),
                     stage_since=NOW + timedelta(minutes=1))
    assert _steps(rules, touched, NOW + timedelta(hours=2)) == []
    # ... but a Contacted lead ages: 72 h after the touch it goes back to nurture.
    assert _steps(rules, touched, NOW + timedelta(minutes=1, hours=72)) == [("nurture", None)]


def test_still_new_after_48_hours_is_requeued_with_the_escalations_due_but_no_reminder(rules: Rules) -> None:
    verdict = evaluate(_state("Qualified"), rules.sla, rules.routing, NOW + timedelta(hours=48))
    # The rep losing the lead is not reminded; the breach still reaches the manager and director.
    assert [a.step for a in verdict.actions] == ["escalate_manager", "escalate_director", "requeue"]
    assert verdict.done and verdict.next_due_at is None
    assert "48 h" in verdict.actions[-1].reason
    cold = evaluate(_state("Cold", fired=frozenset({"remind"})), rules.sla, rules.routing, NOW + timedelta(hours=48))
    assert [a.step for a in cold.actions] == ["escalate_manager", "requeue"]  # 48 h SLA = 48 h aging


def test_a_lead_past_contacted_is_done(rules: Rules) -> None:
    verdict = evaluate(_state("Hot", stage="other", first_touch_at=NOW), rules.sla, rules.routing, NOW + timedelta(days=9))
    assert verdict.actions == () and verdict.done


def test_a_cold_lead_owned_by_a_rep_has_the_48_hour_sla(rules: Rules) -> None:
    steps = schedule(_state("Cold", owner=team("liam.walsh")), rules.sla, rules.routing)
    assert steps["remind"][0] == NOW + timedelta(hours=24)
    assert steps["escalate_manager"][0] == NOW + timedelta(hours=48)


def test_nurture_and_unknown_tiers_have_no_clock(rules: Rules) -> None:
    assert schedule(_state("Nurture"), rules.sla, rules.routing) == {}


def test_an_owner_outside_the_roster_escalates_to_the_default_chain(rules: Rules) -> None:
    steps = schedule(_state("Hot", owner="someone@elsewhere.example"), rules.sla, rules.routing)
    assert steps["escalate_manager"][1] == team("dana.whitfield") and "escalate_director" not in steps


def test_aging_steps_switch_off(rules: Rules) -> None:
    policy = rules.sla.model_copy(update={"aging": rules.sla.aging.model_copy(
        update={"new_minutes": None, "contacted_minutes": None})})
    assert "requeue" not in schedule(_state("Hot"), policy, rules.routing)
    assert schedule(_state("Hot", stage="contacted", first_touch_at=NOW), policy, rules.routing) == {}


# --------------------------------------------------------------------------- business hours


def test_business_hours_skip_a_weekend_and_a_daylight_saving_change() -> None:
    friday = datetime(2026, 3, 6, 21, 0, tzinfo=UTC)  # 16:00 in New York (EST)
    # 1 h on Friday, then Monday 9:00 EDT (the clocks moved on Sunday) + 1 h = 14:00 UTC.
    assert add_working_time(friday, 2 * 3600, NY) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert add_working_time(friday, 2 * 3600, None) == datetime(2026, 3, 6, 23, 0, tzinfo=UTC)


def test_business_hours_skip_a_public_holiday() -> None:
    thursday = datetime(2026, 7, 2, 20, 0, tzinfo=UTC)  # 16:00 EDT; Friday 3 July is Independence Day observed
    assert add_working_time(thursday, 2 * 3600, NY) == datetime(2026, 7, 6, 14, 0, tzinfo=UTC)
    london = WorkCalendar(timezone="Europe/London", country="GB", subdivision="ENG", end="17:30")
    good_friday = datetime(2026, 4, 2, 16, 30, tzinfo=UTC)  # Thu 17:30 BST; Good Friday, Easter Monday off
    assert add_working_time(good_friday, 3600, london) == datetime(2026, 4, 7, 9, 0, tzinfo=UTC)


def test_a_24_hour_sla_does_not_expire_over_a_weekend_when_the_policy_says_so(rules: Rules) -> None:
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # 10:00 EST
    state = _state("Qualified", started=friday)
    calendar = schedule(state, rules.sla, rules.routing)
    working = schedule(state, _with_hours(rules).sla, rules.routing)
    assert calendar["escalate_manager"][0] == friday + timedelta(hours=24)  # off by default: Saturday
    # 24 working hours of 8: Fri 7 h, Mon 8, Tue 8, Wed 1 h -> Wednesday 10:00 EDT.
    assert working["escalate_manager"][0] == datetime(2026, 3, 11, 14, 0, tzinfo=UTC)
    assert "business" in working["escalate_manager"][2]


@settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
       seconds=st.integers(min_value=0, max_value=14 * 24 * 3600))
def test_working_time_never_ends_before_calendar_time(start: datetime, seconds: int) -> None:
    due = add_working_time(start, seconds, NY)
    assert due >= start + timedelta(seconds=seconds)
    assert add_working_time(start, seconds, None) == start + timedelta(seconds=seconds)


# --------------------------------------------------------------------------- properties of the steps


_TIERS = st.sampled_from(["Hot", "Warm", "Qualified", "Cold"])
_OFFSETS = st.lists(st.integers(min_value=0, max_value=120 * 3600), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(tier=_TIERS, offsets=_OFFSETS, hours=st.booleans())
def test_a_step_never_fires_before_its_time_and_fired_steps_only_grow(
    rules: Rules, tier: str, offsets: list[int], hours: bool
) -> None:
    used = _with_hours(rules, enabled=hours)
    state = _state(tier)
    fired: list[str] = []
    for offset in sorted(offsets):
        now = NOW + timedelta(seconds=offset)
        verdict = evaluate(state, used.sla, used.routing, now)
        for action in verdict.actions:
            assert action.due_at <= now  # never before its time
            assert action.step not in state.fired  # never twice
        fired.extend(a.step for a in verdict.actions)
        state = ClockState(tier=state.tier, owner_email=state.owner_email, started_at=state.started_at,
                           fired=state.fired | {a.step for a in verdict.actions})
        if verdict.done:
            break
        if verdict.next_due_at is not None:
            assert verdict.next_due_at > now
            assert evaluate(state, used.sla, used.routing, verdict.next_due_at - timedelta(microseconds=1)).actions == ()
    assert len(fired) == len(set(fired))
    assert [STEPS.index(s) for s in fired if s != "requeue"] == sorted(STEPS.index(s) for s in fired if s != "requeue")


@settings(max_examples=100, deadline=None)
@given(tier=_TIERS, offset=st.integers(min_value=0, max_value=120 * 3600))
def test_next_due_is_the_earliest_step_not_fired(rules: Rules, tier: str, offset: int) -> None:
    state = _state(tier)
    due = next_due_at(state, rules.sla, rules.routing)
    assert due == min(at for at, _, _ in schedule(state, rules.sla, rules.routing).values())
    verdict = evaluate(state, rules.sla, rules.routing, NOW + timedelta(seconds=offset))
    assert bool(verdict.actions) == (due is not None and due <= NOW + timedelta(seconds=offset))


# --------------------------------------------------------------------------- re-queue


def test_requeue_picks_the_next_rep_of_the_group_never_a_previous_owner(rules: Rules) -> None:
    keys = requeue_group("sales_reps:NA", "NA", "Warm", rules.sla, rules.routing)
    assert keys == ["sales_reps:NA", "sales_reps:*"]
    previous = {team("liam.walsh"), team("emma.rossi")}
    owner, key, state = requeue_owner(keys, rules.routing, RoutingState(), {}, previous)
    assert (owner, key) == (team("ava.thompson"), "sales_reps:NA")  # lucas.silva is inactive
    assert state.position("sales_reps:NA").assigned == 1
    everyone_na = previous | {team("ava.thompson")}
    owner, key, _ = requeue_owner(keys, rules.routing, RoutingState(), {}, everyone_na)
    assert key == "sales_reps:*" and owner in {team("noah.fischer"), team("mia.johansson"), team("ethan.park")}


def test_requeue_without_a_group_uses_the_tier_rule_or_the_requeue_group(rules: Rules) -> None:
    assert requeue_group(None, "EMEA", "Hot", rules.sla, rules.routing) == ["senior_reps:EMEA", "senior_reps:*"]
    assert requeue_group(None, "EMEA", "Cold", rules.sla, rules.routing) == ["sdr_team:EMEA", "sdr_team:*"]


def test_requeue_finds_nobody_when_every_rep_owned_the_person(rules: Rules) -> None:
    sdrs = {m.email for m in rules.routing.members_with_role("sdr")}
    assert requeue_owner(["sdr_team:NA", "sdr_team:*"], rules.routing, RoutingState(), {}, sdrs) == \
        (None, None, RoutingState())


# --------------------------------------------------------------------------- configuration


def _policy(**changes: Any) -> dict[str, Any]:
    data = load_yaml("sla")
    data.update(changes)
    return data


@pytest.mark.parametrize(("changes", "loc", "text"), [
    ({"business_hours": {"enabled": True, "calendars": {"NA": {"timezone": "Mars/Olympus"}}, "default_calendar": "NA"}},
     ("business_hours", "calendars", "NA", "timezone"), "IANA time zone"),
    ({"business_hours": {"enabled": True, "calendars": {"NA": {"timezone": "UTC", "start": "18:00", "end": "09:00"}},
                         "default_calendar": "NA"}}, ("business_hours", "calendars", "NA", "end"), "before it starts"),
    ({"business_hours": {"enabled": True, "calendars": {"NA": {"timezone": "UTC", "country": "XX"}},
                         "default_calendar": "NA"}}, ("business_hours", "calendars", "NA", "country"), "holidays"),
    ({"business_hours": {"enabled": True, "calendars": {}}}, ("business_hours", "default_calendar"), "enabled"),
    ({"aging": {"nurture_owner": "Not An Email"}}, ("aging", "nurture_owner"), "email"),
    ({"statuses": {"new": ["New"], "contacted": ["new"]}}, ("statuses", "contacted", 0), "already listed"),
])
def test_bad_clock_settings_are_named_by_key(changes: dict[str, Any], loc: tuple[Any, ...], text: str) -> None:
    with pytest.raises(ValidationError) as info:
        SlaPolicy.model_validate(_policy(**changes))
    errors = info.value.errors()
    assert any(e["loc"] == loc and text in e["msg"] for e in errors), errors


def test_requeue_group_and_calendars_must_name_routing_groups_and_teams(rules: Rules) -> None:
    sla = SlaPolicy.model_validate(_policy(
        aging={"requeue_group": "closers"},
        business_hours={"calendars": {"LATAM": {"timezone": "America/Sao_Paulo"}}}))
    with pytest.raises(ValidationError) as info:
        Rules(scoring=rules.scoring, routing=rules.routing, sla=sla)
    locs = {e["loc"] for e in info.value.errors()}
    assert locs == {("sla", "aging", "requeue_group"), ("sla", "business_hours", "calendars", "LATAM")}
