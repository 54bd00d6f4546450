"""The consent gate (consent.yaml) as a pure function, and applied by the decision core.

Every consent state against every action with the shipped rules, the combinations (hypothesis), the
channels an outreach task needs, and what ``decide_people`` does with a person in each state: routed
but no task (the reason says why), not routed at all, a task that names the channel left.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.decide import decide_people
from connector.core.governance.consent import (
    UNRESTRICTED,
    consent_of,
    record_states,
    unsubscribed_from,
)
from connector.core.governance.rules import (
    CONSENT_ACTIONS,
    CONSENT_STATES,
    ConsentRules,
    ConsentState,
    DispositionRules,
    LawfulBasis,
)
from connector.core.models import Person, RoutingState
from connector.core.rules import Rules

from .helpers import NOW, lead, team

HOT: dict[str, Any] = {"title": "VP of Sales", "employees": 5000, "annual_revenue": 5e8, "industry": "Software",
       "demo_requested": True, "pricing_page_visits": 2, "page_views": 12, "form_submissions": 1}
SHIPPED = ConsentRules()
EVERYWHERE = SHIPPED.model_copy(update={"lawful_basis": LawfulBasis(required_in=["*"])})
"""The shipped gate with a lawful basis required of everyone (the shipped file requires it nowhere)."""

# What the shipped consent.yaml allows per state (seed 001 item 47, seed 002 GDPR; see the file's comments).
EXPECTED: dict[str, dict[str, bool]] = {
    "email_opt_out": {"outreach_tasks": True, "enrichment": False, "alerts_with_personal_data": True, "routing": True},
    "do_not_call": {"outreach_tasks": True, "enrichment": True, "alerts_with_personal_data": True, "routing": True},
    "no_lawful_basis": {"outreach_tasks": False, "enrichment": False, "alerts_with_personal_data": False,
                        "routing": True},
    "unsubscribed": {"outreach_tasks": True, "enrichment": False, "alerts_with_personal_data": True, "routing": True},
    "do_not_contact": {"outreach_tasks": False, "enrichment": False, "alerts_with_personal_data": False,
                       "routing": False},
}
# Fields that put a (reachable: email and phone on file) record in each state.
IN_STATE: dict[str, dict[str, Any]] = {
    "email_opt_out": {"email_opt_out": True},
    "do_not_call": {"do_not_call": True},
    "no_lawful_basis": {"legal_basis": None},
    "unsubscribed": {"subscription_status": "Unsubscribed"},
    "do_not_contact": {"disposition": "Do Not Contact"},
}
BASIS = "Legitimate interest \u2013 prospect/lead"


def person(states: tuple[str, ...] = (), **fields: Any) -> Person:
    values: dict[str, Any] = {"phone": "+1 415 555 2671", "legal_basis": BASIS}
    for state in states:
        values.update(IN_STATE[state])
    values.update(fields)
    return lead(1, **values)


# --------------------------------------------------------------------------- the pure gate


def test_nobody_restricted_is_unrestricted() -> None:
    status = consent_of(person(), EVERYWHERE, DispositionRules())
    assert status is UNRESTRICTED
    assert all(status.allows(action) for action in CONSENT_ACTIONS) and not status.restricted


@pytest.mark.parametrize(("state", "action"), list(itertools.product(CONSENT_STATES, CONSENT_ACTIONS)))
def test_every_state_and_action_as_shipped(state: str, action: str) -> None:
    status = consent_of(person((state,)), EVERYWHERE, DispositionRules())
    assert status.states == (state,)
    assert status.allows(action) is EXPECTED[state][action]
    assert (status.because(action) == "") is EXPECTED[state][action]


def test_each_state_is_read_from_its_field() -> None:
    rules = EVERYWHERE
    assert record_states(person(), rules, DispositionRules()) == set()
    assert record_states(person(email_opt_out=False, do_not_call=False), rules) == set()
    assert record_states(person(subscription_status="subscribed"), rules) == set()
    assert record_states(person(subscription_status=" NOT_SUBSCRIBED "), rules) == {"unsubscribed"}
    assert record_states(person(legal_basis="  "), rules) == {"no_lawful_basis"}
    assert record_states(person(legal_basis="Something we made up"), rules) == {"no_lawful_basis"}
    # HubSpot's checkbox joins values with ";"; dashes and case do not matter.
    assert record_states(person(legal_basis="Not a basis;legitimate interest - PROSPECT/lead"), rules) == set()
    assert record_states(person(disposition="No Response"), rules, DispositionRules()) == set()
    assert record_states(person(disposition="Do Not Contact"), rules) == set()  # without dispositions.yaml


def test_a_subscription_status_may_name_what_the_person_unsubscribed_from() -> None:
    assert unsubscribed_from("unsubscribed: One to One", SHIPPED) == "One to One"
    assert unsubscribed_from(" Not_Subscribed :  Sales Email ", SHIPPED) == "Sales Email"
    assert unsubscribed_from("unsubscribed", SHIPPED) == ""
    assert unsubscribed_from("subscribed: One to One", SHIPPED) is None  # the part before ":" decides
    assert unsubscribed_from(None, SHIPPED) is None and unsubscribed_from("  ", SHIPPED) is None
    # A value of unsubscribed_values that holds a ":" itself still matches whole.
    own = SHIPPED.model_copy(update={"unsubscribed_values": ["status: opted out"]})
    assert unsubscribed_from("Status: Opted Out", own) == "" and unsubscribed_from("status: in", own) is None
    assert record_states(person(subscription_status="unsubscribed: One to One"), SHIPPED) == {"unsubscribed"}


def test_the_reason_names_the_subscription_types_a_person_left() -> None:
    hubspot = person(subscription_status="unsubscribed: One to One", phone=None, connection="hubspot",
                     object="contacts")
    status = consent_of([hubspot, person(phone=None, email_opt_out=True)], SHIPPED)
    assert status.states == ("email_opt_out", "unsubscribed") and status.unsubscribed_from == ("One to One",)
    assert status.because("outreach_tasks") == ("opted out of email, unsubscribed from One to One; no open channel "
                                                "to reach them (email closed)")
    assert status.as_json()["unsubscribed_from"] == ["One to One"]
    plain = consent_of(person(subscription_status="unsubscribed"), SHIPPED)
    assert plain.words() == "unsubscribed" and "unsubscribed_from" not in plain.as_json()


def test_a_lawful_basis_is_required_only_where_the_rules_say() -> None:
    germany = LawfulBasis(required_in=["DE", "FR"])
    rules = SHIPPED.model_copy(update={"lawful_basis": germany})
    assert consent_of(person(legal_basis=None, country="DE"), rules).states == ("no_lawful_basis",)
    assert consent_of(person(legal_basis=None, country="de "), rules).states == ("no_lawful_basis",)
    assert consent_of(person(legal_basis=None, country="US"), rules) is UNRESTRICTED
    assert consent_of(person(legal_basis=None, country=None), rules) is UNRESTRICTED
    assert consent_of(person(legal_basis=None, country="DE"), SHIPPED) is UNRESTRICTED  # shipped: required nowhere


def test_a_snapshot_is_read_like_a_person() -> None:
    values = {"email": "a@b.example", "email_opt_out": True, "do_not_call": True, "country": "US"}
    status = consent_of(values, SHIPPED)
    assert status.states == ("email_opt_out", "do_not_call")
    assert not status.allows("outreach_tasks") and status.no_channel


def test_outreach_needs_an_open_channel_the_person_can_be_reached_on() -> None:
    opted_out = consent_of(person(("email_opt_out",)), SHIPPED)
    assert opted_out.allows("outreach_tasks") and opted_out.channels == ("phone",) and opted_out.closed == ("email",)
    assert opted_out.note() == "Consent: opted out of email: reach by phone only"
    no_phone = consent_of(person(("email_opt_out",), phone=None), SHIPPED)
    assert not no_phone.allows("outreach_tasks") and no_phone.no_channel
    assert no_phone.because("outreach_tasks") == "opted out of email; no open channel to reach them (email closed)"
    both = consent_of(person(("email_opt_out", "do_not_call")), SHIPPED)
    assert not both.allows("outreach_tasks") and both.channels == ()
    assert both.because("outreach_tasks") == ("opted out of email, do not call; no open channel to reach them "
                                              "(email and phone closed)")
    assert both.allows("routing") and both.allows("alerts_with_personal_data") and not both.allows("enrichment")
    dnc_no_email = consent_of(person(("do_not_call",), email=None), SHIPPED)
    assert not dnc_no_email.allows("outreach_tasks")
    assert consent_of(person(("do_not_call",)), SHIPPED).note() == "Consent: do not call: reach by email only"


def test_a_person_is_judged_on_all_their_records() -> None:
    hubspot = person(("email_opt_out",), phone=None, connection="hubspot", object="contacts")
    salesforce = person(phone="+1 212 555 0100")
    status = consent_of([hubspot, salesforce], SHIPPED)
    assert status.states == ("email_opt_out",)  # the opt-out on one record is the person's
    assert status.allows("outreach_tasks") and status.channels == ("phone",)  # the number on the other reaches them


def test_extra_states_join_and_unknown_ones_are_refused() -> None:
    assert consent_of(person(), SHIPPED, extra_states=("do_not_contact",)).allowed == ()
    with pytest.raises(ValueError, match="unknown consent state 'gone'"):
        consent_of(person(), SHIPPED, extra_states=("gone",))
    with pytest.raises(ValueError, match="unknown consent action 'emails'"):
        UNRESTRICTED.allows("emails")


state_sets = st.sets(st.sampled_from(CONSENT_STATES))
allows_sets = st.lists(st.sets(st.sampled_from(CONSENT_ACTIONS)), min_size=len(CONSENT_STATES),
                       max_size=len(CONSENT_STATES))
closes_sets = st.lists(st.sets(st.sampled_from(("email", "phone"))), min_size=len(CONSENT_STATES),
                       max_size=len(CONSENT_STATES))


@settings(max_examples=300, deadline=None)
@given(states=state_sets, allows=allows_sets, closes=closes_sets, has_email=st.booleans(), has_phone=st.booleans())
def test_a_person_gets_only_what_every_state_allows(states: set[str], allows: list[set[str]],
                                                    closes: list[set[str]], has_email: bool,
                                                    has_phone: bool) -> None:
    rules = ConsentRules.model_validate({
        "states": {name: {"allows": sorted(a) if name != "do_not_contact" else [], "closes": sorted(c)}
                   for name, a, c in zip(CONSENT_STATES, allows, closes, strict=True)},
        "lawful_basis": {"required_in": ["*"]}})
    record = person(tuple(states), email="p@acme.example" if has_email else None,
                    phone="+1 415 555 2671" if has_phone else None)
    status = consent_of(record, rules, DispositionRules())
    assert set(status.states) == states
    closed = {c for s in states for c in rules.state(s).closes}
    reachable = {c for c, ok in (("email", has_email), ("phone", has_phone)) if ok}
    for action in CONSENT_ACTIONS:
        by_states = all(action in rules.state(s).allows for s in states)
        expected = by_states and (action != "outreach_tasks" or not closed or bool(reachable - closed))
        assert status.allows(action) is expected, (action, states)
    assert set(status.channels) == (reachable - closed if states else set())
    assert status.no_channel is (bool(states) and bool(closed) and not (reachable - closed)
                                 and all("outreach_tasks" in rules.state(s).allows for s in states))


# --------------------------------------------------------------------------- in the decision core


def _decide(rules: Rules, *people: Person) -> list[Any]:
    decisions, _ = decide_people(list(people), [], [], rules, RoutingState(), NOW)
    return decisions


def test_unrestricted_person_is_decided_as_before(rules: Rules) -> None:
    (d,) = _decide(rules, person(**HOT))
    assert d.consent is None and d.task is not None and d.sla is not None
    assert "Consent" not in d.task.description


def test_opted_out_without_a_phone_is_routed_with_no_task_and_the_reason_says_why(rules: Rules) -> None:
    (d,) = _decide(rules, person(("email_opt_out",), phone=None, **HOT))
    assert d.routing is not None and d.routing.owner_email in {team("olivia.grant"), team("rafael.ortiz")}
    assert d.task is None and d.sla is None
    assert d.routing.reason.endswith("; no follow-up task or SLA: consent (opted out of email; no open channel to "
                                     "reach them (email closed))")
    assert d.field_updates["relay_routing_reason"] == d.routing.reason and "relay_sla_due" not in d.field_updates
    assert d.consent is not None and d.consent.states == ("email_opt_out",)


def test_opted_out_with_a_phone_gets_a_task_to_call(rules: Rules) -> None:
    (d,) = _decide(rules, person(("email_opt_out",), **HOT))
    assert d.task is not None and d.sla is not None
    assert d.task.description.endswith("Consent: opted out of email: reach by phone only.")
    assert "consent" not in d.routing.reason


@pytest.mark.parametrize("state", CONSENT_STATES)
def test_each_state_in_a_decision(state: str, rules: Rules) -> None:
    everywhere = rules.model_copy(update={"consent": EVERYWHERE})
    (d,) = _decide(everywhere, person((state,), **HOT))
    assert d.consent is not None and d.consent.states == (state,)
    expected = EXPECTED[state]
    routed = d.routing is not None and d.routing.owner_email is not None
    assert routed is expected["routing"]
    assert (d.task is not None) is expected["outreach_tasks"]
    assert (d.sla is not None) is expected["outreach_tasks"]
    if state == "do_not_contact":  # a Do Not Contact disposition on the record: no owner, no task
        assert d.routing is not None and d.routing.rule == "consent_no_routing"
        assert d.routing.reason.startswith("Not routed: consent (Do Not Contact)")


def test_a_state_that_allows_no_routing_gives_no_owner(rules: Rules) -> None:
    strict = EVERYWHERE.model_copy(update={"states": {**EVERYWHERE.states, "no_lawful_basis": ConsentState()}})
    (d,) = _decide(rules.model_copy(update={"consent": strict}), person(("no_lawful_basis",), **HOT))
    assert d.routing is not None and d.routing.owner_email is None and d.routing.rule == "consent_no_routing"
    assert d.routing.reason == "Not routed: consent (no lawful basis recorded); keeps the owner it has, no new one"
    assert d.task is None and d.sla is None


def test_the_opt_out_of_one_record_holds_for_the_person_in_both_crms(rules: Rules) -> None:
    hubspot = person(("email_opt_out",), phone=None, connection="hubspot", object="contacts", **HOT)
    salesforce = person(phone=None, **HOT)
    decisions = _decide(rules, salesforce, hubspot)
    assert {d.routing.owner_email for d in decisions} != {None}
    assert all(d.task is None and d.consent is not None for d in decisions)


def test_unsubscribed_from_one_to_one_without_a_phone_gets_no_task_and_the_reason_names_the_type(
        rules: Rules) -> None:
    (d,) = _decide(rules, person(subscription_status="unsubscribed: One to One", phone=None,
                                 connection="hubspot", object="contacts", **HOT))
    assert d.routing is not None and d.routing.owner_email is not None and d.task is None and d.sla is None
    assert d.routing.reason.endswith("; no follow-up task or SLA: consent (unsubscribed from One to One; no open "
                                     "channel to reach them (email closed))")


def test_consent_changes_the_rules_version(rules: Rules) -> None:
    assert rules.model_copy(update={"consent": EVERYWHERE}).version != rules.version
    off = SHIPPED.model_copy(update={"subscription_types": {"hubspot": []}})
    assert rules.model_copy(update={"consent": off}).version != rules.version
