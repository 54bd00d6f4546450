"""Survivorship: which duplicate survives a merge and which value each field keeps (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.matching.survivorship import Member, choose_survivor, plan_merge
from connector.core.rules import SurvivorshipRules

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _m(key: str, days: int = 0, created: int = 0, **values: object) -> Member:
    return Member(key=key, values=values, updated_at=T0 + timedelta(days=days), created_at=T0 + timedelta(days=created))


def test_the_most_complete_record_survives_by_default_then_the_oldest() -> None:
    sparse = _m("hubspot/contacts/1", first_name="Ann", email="ann@acme.com")
    full = _m("hubspot/contacts/2", first_name="Ann", last_name="Lee", email="ann@acme.com", phone="+14155550100")
    assert choose_survivor([sparse, full], SurvivorshipRules()) == (full, "most_complete")
    older = _m("hubspot/contacts/3", created=-30, first_name="Ann", last_name="Lee", email="a@acme.com", phone="1")
    assert choose_survivor([full, older], SurvivorshipRules()) == (older, "oldest")


def test_source_priority_comes_first_when_configured() -> None:
    rules = SurvivorshipRules(source_priority=["salesforce/Contact", "salesforce/Lead"])
    lead = _m("salesforce/Lead/00Q1", first_name="Ann", last_name="Lee", email="ann@acme.com", phone="1", title="VP")
    contact = _m("salesforce/Contact/0031", first_name="Ann")
    assert choose_survivor([lead, contact], rules) == (contact, "source_priority")


def test_fields_take_the_most_recent_value_and_never_an_empty_one() -> None:
    old = _m("hubspot/contacts/1", days=0, title="Director", phone="+14155550100", company="Acme")
    new = _m("hubspot/contacts/2", days=5, title="VP Sales", phone="", company=None)
    plan = plan_merge([old, new], SurvivorshipRules())
    assert plan.survivor == "hubspot/contacts/1"
    assert plan.values["title"].value == "VP Sales" and plan.values["title"].from_key == "hubspot/contacts/2"
    assert plan.values["phone"].value == "+14155550100"  # the newer record's empty phone loses
    assert plan.values["company"].value == "Acme"
    assert plan.updates == {"title": "VP Sales"}


def test_per_field_rules() -> None:
    rules = SurvivorshipRules(fields={"title": "survivor", "company": "most_complete"},
                              source_priority=["salesforce/Lead"])
    a = _m("salesforce/Lead/1", days=0, created=-9, title="CTO", company="Acme", first_name="A", last_name="B",
           email="a@b.co")
    b = _m("salesforce/Lead/2", days=9, title="Chief Technology Officer", company="Acme Widgets International")
    plan = plan_merge([a, b], rules)
    assert plan.survivor == "salesforce/Lead/1"
    assert plan.values["title"].value == "CTO"
    assert plan.values["company"].value == "Acme Widgets International"


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="connection/object"):
        SurvivorshipRules(source_priority=["salesforce"])
    with pytest.raises(ValueError, match="each survivor test once"):
        SurvivorshipRules(survivor=["oldest", "oldest"])


_values = st.fixed_dictionaries({
    "first_name": st.sampled_from(["", "Ann", "Anne", None]),
    "email": st.sampled_from(["", "ann@acme.com", None]),
    "phone": st.sampled_from(["", "+14155550100", None]),
    "title": st.sampled_from(["", "VP", "Director", None]),
})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_values, st.integers(-50, 50), st.integers(-50, 50)), min_size=1, max_size=5))
def test_a_plan_keeps_every_value_someone_had_and_does_not_depend_on_order(
        records: list[tuple[dict[str, object], int, int]]) -> None:
    members = [_m(f"hubspot/contacts/{k}", days, created, **values) for k, (values, days, created) in enumerate(records)]
    plan = plan_merge(members, SurvivorshipRules())
    assert plan_merge(list(reversed(members)), SurvivorshipRules()) == plan
    assert {plan.survivor, *plan.losers} == {m.key for m in members}
    for name in ("first_name", "email", "phone", "title"):
        if any(m.values.get(name) for m in members):
            assert plan.values[name].value  # a field someone filled stays filled
        else:
            assert name not in plan.values


def test_a_placeholder_never_wins_and_an_equal_value_is_no_update() -> None:
    survivor = _m("hubspot/contacts/1", days=0, company="Acme", title="VP", first_name="Ann", last_name="Lee",
                  email="ann@acme.com")
    newer = _m("hubspot/contacts/2", days=5, company="[not provided]", title="VP", first_name="Ann")
    plan = plan_merge([survivor, newer], SurvivorshipRules())
    assert plan.survivor == "hubspot/contacts/1"
    assert plan.values["company"].value == "Acme"
    assert plan.updates == {}  # the newer record's title is the survivor's own
