"""The rules schema: shipped files load, and every mistake names its key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from connector.core.rules import RoutingRules, Rules, ScoringRules, SlaPolicy

from .helpers import load_yaml, shipped_rules, team


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> dict[tuple[Any, ...], str]:
    return {tuple(e["loc"]): e["msg"] for e in exc.value.errors()}


def test_shipped_rules_load_with_the_sandbox_team(rules: Rules) -> None:
    emails = {m.email for m in rules.routing.team}
    assert len(emails) == 22
    assert rules.routing.member(team("lucas.silva")).active is False  # type: ignore[union-attr]
    assert rules.routing.named_accounts["globex.example"] == team("olivia.grant")
    assert rules.routing.region_for("NO") == "EMEA"  # quoted in YAML, not read as false
    assert rules.routing.region_for("BR") == "NA"  # anything else -> NA team
    assert rules.routing.region_for(None) == "NA"
    assert [(t.name, t.response_minutes) for t in rules.sla.tiers] == [
        ("Hot", 5), ("Warm", 60), ("Qualified", 1440), ("Cold", 2880)]


@pytest.mark.parametrize(
    ("member", "chain"),
    [
        ("chloe.martin", ("tom.becker", "dana.whitfield")),  # sdr -> sdr manager -> director
        ("olivia.grant", ("marcus.chen", "dana.whitfield")),
        ("noah.fischer", ("priya.nair", "dana.whitfield")),
        ("kenji.watanabe", ("hiro.tanaka", "dana.whitfield")),
        ("dana.whitfield", ()),
    ],
)
def test_escalation_chain_follows_the_roster(rules: Rules, member: str, chain: tuple[str, ...]) -> None:
    assert rules.routing.escalation_chain(team(member)) == tuple(team(c) for c in chain)


def test_owner_outside_roster_escalates_to_default(rules: Rules) -> None:
    assert rules.routing.escalation_chain("someone@else.example") == (team("dana.whitfield"),)


def test_version_is_stable_and_changes_with_content() -> None:
    first = shipped_rules()
    again = shipped_rules()
    assert first.version == again.version
    assert len(first.version) == 16
    data = load_yaml("sla")
    data["tiers"][0]["response_minutes"] = 10
    changed = Rules(scoring=first.scoring, routing=first.routing, sla=SlaPolicy.model_validate(data))
    assert changed.version != first.version


def test_version_ignores_key_order() -> None:
    data = load_yaml("sla")
    reordered = dict(reversed(list({**data, "tiers": [dict(reversed(list(t.items()))) for t in data["tiers"]]}.items())))
    base = shipped_rules()
    a = Rules(scoring=base.scoring, routing=base.routing, sla=SlaPolicy.model_validate(data))
    b = Rules(scoring=base.scoring, routing=base.routing, sla=SlaPolicy.model_validate(reordered))
    assert a.version == b.version


# ---------------------------------------------------------------- routing errors


def routing_data() -> dict[str, Any]:
    return copy.deepcopy(load_yaml("routing"))


def test_unknown_group_in_rule_names_the_key_and_known_groups() -> None:
    data = routing_data()
    data["rules"][2]["group"] = "sdrs"
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    msg = errors_of(exc)[("rules", 2, "group")]
    assert "'sdrs' is not a group defined under groups" in msg
    assert "known: sales_reps, sdr_team, senior_reps" in msg


def test_named_account_owner_must_be_in_roster() -> None:
    data = routing_data()
    data["named_accounts"]["globex.example"] = "nobody@northwind.example"
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert "not in the team roster" in errors_of(exc)[("named_accounts", "globex.example")]


def test_weight_must_be_positive() -> None:
    data = routing_data()
    data["team"][5]["weight"] = 0
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert ("team", 5, "weight") in errors_of(exc)


def test_manager_must_be_in_roster_and_chains_cannot_loop() -> None:
    data = routing_data()
    data["team"][1]["manager"] = "ghost@northwind.example"
    data["team"][0]["manager"] = data["team"][4]["email"]  # dana -> tom -> dana
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    errors = errors_of(exc)
    assert "manager 'ghost@northwind.example' is not in the team roster" in errors[("team", 1, "manager")]
    assert "manager loop:" in errors[("team", 0, "manager")]


def test_one_manager_loop_is_one_problem_however_many_members_report_into_it() -> None:
    data = routing_data()
    emails = [m["email"] for m in data["team"]]
    data["team"][0]["manager"] = emails[1]
    data["team"][1]["manager"] = emails[2]
    data["team"][2]["manager"] = emails[0]  # a loop of three; others report into it
    for member in data["team"][3:]:
        member["manager"] = emails[0]
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    loops = [e for e in exc.value.errors() if "manager loop" in e["msg"]]
    assert len(loops) == 1
    assert loops[0]["loc"] == ("team", 0, "manager")
    assert f"{emails[0]} -> {emails[1]} -> {emails[2]} -> {emails[0]}" in loops[0]["msg"]


def test_typo_key_is_rejected() -> None:
    data = routing_data()
    data["rules"][0]["acton"] = data["rules"][0].pop("action")
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    locs = errors_of(exc)
    assert ("rules", 0, "acton") in locs  # extra key forbidden
    assert ("rules", 0, "action") in locs  # and the real key is missing


def test_several_problems_are_reported_at_once() -> None:
    data = routing_data()
    data["default_region"] = "LATAM"
    data["regions"]["EMEA"].append("US")
    data["team"][3]["region"] = "Mars"
    data["groups"]["sdr_team"]["role"] = "sdrs"
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    errors = errors_of(exc)
    assert "region 'LATAM' is not defined" in errors[("default_region",)]
    assert "already in region 'NA'" in errors[("regions", "EMEA", 16)]
    assert ("team", 3, "region") in errors
    assert "no team member has role 'sdrs'" in errors[("groups", "sdr_team", "role")]


def test_unknown_country_code_in_region() -> None:
    data = routing_data()
    data["regions"]["APAC"].append("XX")
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert "'XX' is not an ISO 3166 alpha-2" in errors_of(exc)[("regions", "APAC", 8)]


def test_last_rule_must_catch_every_lead() -> None:
    data = routing_data()
    data["rules"] = data["rules"][:-1]
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert "last rule must apply to every lead" in errors_of(exc)[("rules", 4)]


def test_round_robin_rule_needs_a_group() -> None:
    data = routing_data()
    del data["rules"][3]["group"]
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert "names no group" in errors_of(exc)[("rules", 3, "group")]


def test_fallback_role_must_exist() -> None:
    data = routing_data()
    data["groups"]["senior_reps"]["fallback"][0]["role"] = "vp_sales"
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert ("groups", "senior_reps", "fallback", 0, "role") in errors_of(exc)


def test_rule_tier_must_be_an_sla_tier() -> None:
    base = shipped_rules()
    data = routing_data()
    data["rules"][2]["tier"] = "Scorching"
    with pytest.raises(ValidationError) as exc:
        Rules(scoring=base.scoring, routing=RoutingRules.model_validate(data), sla=base.sla)
    msg = errors_of(exc)[("routing", "rules", 2, "tier")]
    assert "tier 'Scorching' is not an SLA tier" in msg


# ---------------------------------------------------------------- scoring errors


def scoring_data() -> dict[str, Any]:
    return copy.deepcopy(load_yaml("scoring"))


def test_overlapping_categories_are_rejected() -> None:
    data = scoring_data()
    data["categories"][1]["max"] = 85  # Warm 60-85 overlaps Hot 80-100
    with pytest.raises(ValidationError) as exc:
        ScoringRules.model_validate(data)
    msg = errors_of(exc)[("categories", 0, "min")]
    assert msg == "category 'Hot' (80..100) overlaps category 'Warm' (60..85)"


def test_gap_between_categories_is_rejected() -> None:
    data = scoring_data()
    data["categories"][2]["min"] = 45  # Qualified 45-59 leaves 40..44 uncovered
    with pytest.raises(ValidationError) as exc:
        ScoringRules.model_validate(data)
    assert "totals 40..44 have no category" in errors_of(exc)[("categories", 2, "min")]


def test_categories_must_reach_100() -> None:
    data = scoring_data()
    data["categories"][0]["max"] = 99
    with pytest.raises(ValidationError) as exc:
        ScoringRules.model_validate(data)
    assert "totals 100..100 have no category" in errors_of(exc)[("categories",)]


def test_bands_must_be_listed_from_the_highest_down() -> None:
    data = scoring_data()
    data["firmographic"]["employees"][1]["min"] = 5000
    with pytest.raises(ValidationError) as exc:
        ScoringRules.model_validate(data)
    assert ("firmographic", "employees", 1, "min") in errors_of(exc)


def test_unknown_seniority_key_is_a_typo() -> None:
    data = scoring_data()
    data["demographic"]["seniority"]["clevel"] = 5
    with pytest.raises(ValidationError) as exc:
        ScoringRules.model_validate(data)
    assert ("demographic", "seniority", "clevel") in errors_of(exc)


def test_negative_points_are_rejected() -> None:
    data = scoring_data()
    data["behavioural"]["demo_requested"] = -1
    with pytest.raises(ValidationError) as exc:
        ScoringRules.model_validate(data)
    assert ("behavioural", "demo_requested") in errors_of(exc)


# ---------------------------------------------------------------- SLA errors


def test_sla_needs_a_tier_from_zero_and_unique_names() -> None:
    data = copy.deepcopy(load_yaml("sla"))
    data["tiers"][3]["min_score"] = 20
    data["tiers"][1]["name"] = "Hot"
    with pytest.raises(ValidationError) as exc:
        SlaPolicy.model_validate(data)
    errors = errors_of(exc)
    assert "no tier has min_score 0" in errors[("tiers",)]
    assert "already defined at tiers[0]" in errors[("tiers", 1, "name")]


def test_reminder_must_come_before_escalation() -> None:
    data = copy.deepcopy(load_yaml("sla"))
    data["tiers"][0]["reminder_percent"] = 100
    with pytest.raises(ValidationError) as exc:
        SlaPolicy.model_validate(data)
    assert "must come before escalation" in errors_of(exc)[("tiers", 0, "reminder_percent")]


def test_user_text_with_braces_does_not_break_messages() -> None:
    data = routing_data()
    data["rules"][2]["group"] = "{oops}"
    with pytest.raises(ValidationError) as exc:
        RoutingRules.model_validate(data)
    assert "'{oops}' is not a group" in errors_of(exc)[("rules", 2, "group")]
