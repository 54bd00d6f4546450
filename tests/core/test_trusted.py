"""Decisions built without validation (``models.trusted``) are the ones validation builds.

The core builds its output models (``LeadDecision``, ``ScoreResult``, ``RoutingDecision``,
``SlaDecision``, ``TaskDecision``, ``GroupPosition``, ``RoutingState``) from values it made
itself, without validating them again, and copies a cleaned ``Person`` without
``model_copy``'s generic steps. Each is checked here against the model pydantic validation
builds from the same explicit values: equal, the values pass validation (types and
constraints such as the 255-character reason), the same ``__dict__`` in the same order,
the same ``model_fields_set``, the same dump.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from connector.core.decide import decide_people
from connector.core.models import (
    ExistingAssignment,
    LeadDecision,
    Owner,
    Person,
    RecordRef,
    RoutingState,
    trusted,
)
from connector.core.routing import MatchedAccountOwner, RoutingInput, pick_round_robin, route
from connector.core.rules import Rules
from connector.core.sla import sla_for

from .helpers import NOW, team
from .test_caches import OWNERS, account_lists, people_lists


def assert_as_validated(model: BaseModel) -> None:
    """``model`` is what ``type(model)(**explicit values)`` builds, nested models included."""
    explicit = {name: getattr(model, name) for name in model.model_fields_set}
    validated = type(model)(**explicit)
    assert validated == model
    assert list(validated.__dict__) == list(model.__dict__)
    assert validated.__dict__ == model.__dict__
    assert validated.model_fields_set == model.model_fields_set
    assert validated.model_dump(mode="json") == model.model_dump(mode="json")
    assert repr(validated) == repr(model)
    for value in model.__dict__.values():
        if isinstance(value, BaseModel):
            assert_as_validated(value)


def assert_decision_as_validated(decision: LeadDecision, people: dict[RecordRef, Person]) -> None:
    assert_as_validated(decision)
    if decision.hygiene is not None:
        cleaned = decision.hygiene.person
        original = people[decision.ref]
        copied = original.model_copy(update=dict(decision.hygiene.changes)) if decision.hygiene.changes \
            else original
        assert cleaned == copied
        assert list(cleaned.__dict__) == list(copied.__dict__)
        assert cleaned.model_fields_set == copied.model_fields_set
        assert cleaned.__pydantic_extra__ is copied.__pydantic_extra__ is None
        assert cleaned.__pydantic_private__ is copied.__pydantic_private__ is None


ROSTER = [team(x) for x in ("olivia.grant", "rafael.ortiz", "sophie.laurent", "kenji.watanabe", "liam.walsh",
                            "emma.rossi", "ava.thompson", "noah.fischer", "mia.johansson", "ethan.park",
                            "chloe.martin", "jack.wilson", "zoe.adams", "arjun.mehta", "marcus.chen",
                            "priya.nair", "hiro.tanaka", "tom.becker", "dana.whitfield")]


@settings(max_examples=80, deadline=None)
@given(people=people_lists(), accounts=account_lists(), kept=st.lists(st.integers(0, 20), max_size=3),
       inactive=st.sets(st.sampled_from(ROSTER), max_size=12))
def test_decisions_are_what_validation_builds(
    rules: Rules, people: list[Person], accounts: list[Any], kept: list[int], inactive: set[str],
) -> None:
    existing = {p.ref: ExistingAssignment(owner_email=team("emma.rossi"), tier="Warm", assigned_at=NOW)
                for p in people if int(p.ref.crm_id) in kept}
    owners = [*OWNERS, *(Owner(id=f"X{i}", email=email, active=False, connection="salesforce")
                         for i, email in enumerate(sorted(inactive)))]
    decisions, state = decide_people(people, accounts, owners, rules, RoutingState(), NOW, existing)
    latest = {p.ref: p for p in people}
    for decision in decisions:
        assert_decision_as_validated(decision, latest)
    assert_as_validated(state)


@settings(max_examples=200, deadline=None)
@given(score=st.integers(0, 100), country=st.sampled_from([None, "US", "JP", "IN", "DE", "BR"]),
       inactive=st.sets(st.sampled_from(ROSTER), max_size=19),
       domain=st.sampled_from([None, "globex.example", "eu.initech.example", "tyrell.example", "acme.example"]),
       matched=st.one_of(st.none(), st.builds(
           MatchedAccountOwner, account=st.just(RecordRef(connection="salesforce", object="Account", crm_id="A1")),
           label=st.text(max_size=300), owner_email=st.sampled_from([None, "", *ROSTER, "someone@else.example"]),
           owner_active=st.booleans())),
       existing=st.one_of(st.none(), st.builds(
           ExistingAssignment, owner_email=st.sampled_from(ROSTER), tier=st.sampled_from(["Hot", "Warm", ""]),
           assigned_at=st.just(NOW), rule=st.sampled_from([None, "x" * 300]))),
       shared_by=st.integers(1, 3), long_label=st.booleans())
def test_routing_decisions_are_what_validation_builds(
    rules: Rules, score: int, country: str | None, inactive: set[str], domain: str | None,
    matched: MatchedAccountOwner | None, existing: ExistingAssignment | None, shared_by: int, long_label: bool,
) -> None:
    active = dict.fromkeys(inactive, False)
    category = rules.scoring.category_for(score)
    lead = RoutingInput(ref=RecordRef(connection="salesforce", object="Lead", crm_id="1"), score=score,
                        category=category * (40 if long_label else 1), country=country, email_domain=domain,
                        matched_account=matched, existing=existing, shared_by=shared_by)
    state = RoutingState()
    for _ in range(3):
        decision, state = route(lead, rules.routing, rules.sla, state, active)
        assert_as_validated(decision)
        assert len(decision.reason) <= 255
        assert_as_validated(state)
        if decision.owner_email is not None:
            sla = sla_for(decision.tier, NOW, rules.sla, rules.routing.escalation_chain(decision.owner_email))
            if sla is not None:
                assert_as_validated(sla)


def test_round_robin_state_is_what_validation_builds(rules: Rules) -> None:
    state = RoutingState()
    members = rules.routing.members_with_role("sales_rep")
    for _ in range(7):
        _, state = pick_round_robin("sales_reps:NA", [m for m in members if m.active], state)
        assert_as_validated(state)
        assert_as_validated(state.position("sales_reps:NA"))


def test_trusted_fills_defaults_as_validation_does() -> None:
    fields = {"owner_email": None, "tier": "Nurture", "rule": "nurture", "reason": "r", "region": None,
              "group": None, "position": None, "kept_existing": False, "fallback": None, "source": "relay"}
    from connector.core.models import RoutingDecision

    built = trusted(RoutingDecision, fields, frozenset({"owner_email", "tier", "rule", "reason"}))
    assert_as_validated(built)
    assert built == RoutingDecision(owner_email=None, tier="Nurture", rule="nurture", reason="r")
