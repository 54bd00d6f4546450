"""decide_people: the whole core on a batch, as the pipeline calls it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.decide import decide_people
from connector.core.models import ExistingAssignment, Owner, Person, RoutingState
from connector.core.rules import Rules

from .helpers import NOW, account, lead, owner, ref, team

HOT = {"title": "VP of Sales", "employees": 5000, "annual_revenue": 5e8, "industry": "Software",
       "demo_requested": True, "pricing_page_visits": 2, "page_views": 12, "form_submissions": 1}
WARM = {"title": "Marketing Manager", "employees": 300, "industry": "Technology",
        "page_views": 3, "webinar_attended": True, "email_clicks": 3, "content_downloads": 2}


def test_hot_lead_end_to_end(rules: Rules) -> None:
    person = lead(1, first_name="JANE", email=" Jane@Hooli.example ", phone="(415) 555-2671",
                  country="United States", state="California", company="HOOLI INC", **HOT)
    decisions, state = decide_people([person], [], [], rules, RoutingState(), NOW)
    (d,) = decisions
    assert d.rules_version == rules.version and d.decided_at == NOW
    assert d.score is not None and d.score.category == "Hot"
    assert d.routing is not None and d.routing.owner_email in {team("olivia.grant"),
                                                               team("rafael.ortiz")}
    assert d.routing.reason == (f"Score {d.score.total} (category Hot), SLA tier Hot -> senior rep, "
                                "region NA, round robin")
    assert d.routing.source == "relay" and not d.routing.kept_existing
    assert d.sla is not None and d.sla.due_at == NOW + timedelta(minutes=5)
    assert d.sla.escalation_chain == (team("marcus.chen"), team("dana.whitfield"))
    assert d.task is not None and d.task.priority == "High" and d.task.due_at == d.sla.due_at
    assert d.task.subject == f"Follow up: Jane Doe (Hooli Inc), SLA tier Hot, score {d.score.total} (category Hot)"
    assert d.field_updates["email"] == "jane@hooli.example"
    assert d.field_updates["phone"] == "+14155552671"
    assert d.field_updates["country"] == "US" and d.field_updates["state"] == "CA"
    assert d.field_updates["relay_score"] == d.score.total
    assert d.field_updates["relay_score_category"] == "Hot"
    assert d.field_updates["relay_sla_due"] == d.sla.due_at
    assert d.field_updates["relay_id"] == d.identity_id
    assert state.position("senior_reps:NA").assigned == 1


def test_unchanged_write_back_fields_are_not_repeated(rules: Rules) -> None:
    person = lead(1, **WARM)
    (first,), _ = decide_people([person], [], [], rules, RoutingState(), NOW)
    updated = person.model_copy(update=dict(first.field_updates))
    existing = {person.ref: ExistingAssignment(owner_email=first.routing.owner_email,  # type: ignore[union-attr,arg-type]
                                               tier="Warm", assigned_at=NOW)}
    (second,), _ = decide_people([updated], [], [], rules, RoutingState(), NOW, existing)
    assert second.field_updates == {}


def test_nurture_lead_gets_score_but_no_owner_or_task(rules: Rules) -> None:
    (d,), state = decide_people([lead(1, email="x@gmail.com")], [], [], rules, RoutingState(), NOW)
    assert d.routing is not None and d.routing.owner_email is None
    assert d.routing.tier == "Nurture"
    assert d.sla is None and d.task is None
    assert "relay_sla_due" not in d.field_updates
    assert state == RoutingState()


def test_matched_account_owner_and_relay_matched_account(rules: Rules) -> None:
    accounts = [account("001A", "acme.example", owner_id="005G", name="Acme")]
    owners = [owner("005G", "grace.kim")]
    (d,), _ = decide_people([lead(1, email="bob@acme.example", **WARM)], accounts, owners, rules,
                            RoutingState(), NOW)
    assert d.matched_account == accounts[0].ref
    assert d.routing is not None and d.routing.owner_email == team("grace.kim")
    assert d.field_updates["relay_matched_account"] == "001A"
    # The CSM is outside the sales chain of command: escalation goes to the director.
    assert d.sla is not None and d.sla.escalation_chain == (team("dana.whitfield"),)


def test_account_with_inactive_owner_routes_by_score(rules: Rules) -> None:
    accounts = [account("001A", "acme.example", owner_id="005L")]
    owners = [owner("005L", "liam.walsh", active=False)]
    (d,), _ = decide_people([lead(1, email="bob@acme.example", **WARM)], accounts, owners, rules,
                            RoutingState(), NOW)
    assert d.routing is not None and d.routing.rule == "warm_sales_rep"
    assert d.routing.owner_email != team("liam.walsh")


def test_same_person_in_both_crms_is_routed_once(rules: Rules) -> None:
    sf = lead(1, email="jane.doe@hooli.example", **HOT)
    hs = lead("501", email="Jane.Doe+events@hooli.example", connection="hubspot",
              object="contacts", kind="lead")  # HubSpot contacts are routed as leads (mappings/hubspot.yaml)
    decisions, state = decide_people([sf, hs], [], [], rules, RoutingState(), NOW)
    a, b = decisions
    assert a.identity_id == b.identity_id
    assert a.duplicates == (hs.ref,) and b.duplicates == (sf.ref,)
    assert a.routing == b.routing and a.sla == b.sla
    assert state.position("senior_reps:NA").assigned == 1  # one round-robin turn, not two
    assert a.task is not None and b.task is None  # one task, on the best-scoring record


def test_existing_assignment_is_never_assigned_twice(rules: Rules) -> None:
    person = lead(1, **HOT)
    existing = {person.ref: ExistingAssignment(owner_email=team("rafael.ortiz"), tier="Hot",
                                               assigned_at=NOW - timedelta(hours=1))}
    (d,), state = decide_people([person], [], [], rules, RoutingState(), NOW, existing)
    assert d.routing is not None and d.routing.kept_existing
    assert d.routing.owner_email == team("rafael.ortiz")
    assert d.sla is None and d.task is None
    # A record that never carried a reason is told why it keeps its owner, once...
    assert d.field_updates["relay_routing_reason"].startswith("Already assigned to")
    assert state == RoutingState()
    # ...and a record that carries one keeps it.
    explained = person.model_copy(update={"relay_routing_reason": "Hot lead (score 90) -> senior rep"})
    (again,), _ = decide_people([explained], [], [], rules, RoutingState(), NOW, existing)
    assert "relay_routing_reason" not in again.field_updates


def test_existing_assignment_of_a_duplicate_applies_to_the_person(rules: Rules) -> None:
    sf = lead(1, email="jane@hooli.example", **HOT)
    hs = lead("9", email="jane@hooli.example", connection="hubspot", object="contacts",
              kind="lead")  # HubSpot contacts are routed as leads (mappings/hubspot.yaml)
    existing = {hs.ref: ExistingAssignment(owner_email=team("emma.rossi"), tier="Warm",
                                           assigned_at=NOW)}
    decisions, state = decide_people([sf, hs], [], [], rules, RoutingState(), NOW, existing)
    assert {d.routing.owner_email for d in decisions} == {team("emma.rossi")}  # type: ignore[union-attr]
    assert state == RoutingState()


def test_owned_contact_keeps_its_crm_owner(rules: Rules) -> None:
    contact = lead("003", kind="contact", object="Contact", owner_id="005E", **HOT)
    (d,), state = decide_people([contact], [], [owner("005E", "emma.rossi")], rules,
                                RoutingState(), NOW)
    assert d.routing is not None and d.routing.kept_existing
    assert d.routing.owner_email == team("emma.rossi")
    assert d.sla is None and d.task is None
    assert state == RoutingState()


def test_lead_owned_by_a_rep_keeps_its_owner(rules: Rules) -> None:
    person = lead(1, owner_id="005E", **HOT)
    (d,), state = decide_people([person], [], [owner("005E", "emma.rossi")], rules, RoutingState(), NOW)
    assert d.routing is not None and d.routing.kept_existing and d.routing.rule == "crm_lead_owner"
    assert d.routing.owner_email == team("emma.rossi")
    assert d.task is None and state == RoutingState()


def test_lead_sitting_with_a_queue_user_is_routed(rules: Rules) -> None:
    queue = Owner(id="005Q", email="lead.queue@northwind.example", active=True, connection="salesforce")
    inactive_rep = owner("005L", "lucas.silva", active=False)
    people = [lead(1, owner_id="005Q", **HOT), lead(2, owner_id="005L", **HOT)]
    decisions, _ = decide_people(people, [], [queue, inactive_rep], rules, RoutingState(), NOW)
    for d in decisions:
        assert d.routing is not None and not d.routing.kept_existing
        assert d.routing.owner_email in {team("olivia.grant"), team("rafael.ortiz")}
        assert d.task is not None


def test_rep_owned_leads_are_rerouted_when_configured(rules: Rules) -> None:
    routing = rules.routing.model_copy(update={"reroute_rep_owned_leads": True})
    rerouting = Rules(scoring=rules.scoring, routing=routing, sla=rules.sla)
    (d,), _ = decide_people([lead(1, owner_id="005E", **HOT)], [], [owner("005E", "emma.rossi")],
                            rerouting, RoutingState(), NOW)
    assert d.routing is not None and not d.routing.kept_existing
    assert d.routing.owner_email in {team("olivia.grant"), team("rafael.ortiz")}


def test_kept_owner_who_left_is_flagged(rules: Rules) -> None:
    person = lead(1, **HOT)
    existing = {person.ref: ExistingAssignment(owner_email=team("lucas.silva"), tier="Warm",
                                               assigned_at=NOW)}
    (d,), _ = decide_people([person], [], [], rules, RoutingState(), NOW, existing)
    assert d.routing is not None and d.routing.owner_email == team("lucas.silva")
    assert [f.code for f in d.findings] == ["owner_inactive"]


def test_converted_lead_is_scored_but_not_routed(rules: Rules) -> None:
    (d,), state = decide_people([lead(1, is_converted=True, **HOT)], [], [], rules,
                                RoutingState(), NOW)
    assert d.score is not None and d.routing is None and d.sla is None
    assert state == RoutingState()


def test_bad_records_are_quarantined_and_the_batch_goes_on(rules: Rules) -> None:
    ghost = Person(kind="lead", ref=ref("ghost"), email="not an email")
    good = lead(2, **WARM)
    decisions, _ = decide_people([ghost, good], [], [], rules, RoutingState(), NOW)
    bad, ok = decisions
    assert bad.quarantined
    assert bad.quarantine_reason == "no valid email, name or company: nothing identifies this person"
    assert {f.code for f in bad.findings} >= {"invalid_email", "missing_required"}
    assert bad.routing is None and bad.score is None
    assert not ok.quarantined and ok.routing is not None and ok.routing.owner_email


def test_crashing_stage_quarantines_one_record_only(rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.core.decide as decide_module

    real = decide_module.score_person

    def flaky(cleaned, scoring):  # type: ignore[no-untyped-def]
        if cleaned.person.ref.crm_id == "boom":
            raise RuntimeError("scoring exploded")
        return real(cleaned, scoring)

    monkeypatch.setattr(decide_module, "score_person", flaky)
    decisions, _ = decide_people([lead("boom"), lead(2, **WARM)], [], [], rules, RoutingState(), NOW)
    assert decisions[0].quarantine_reason == "could not decide: RuntimeError: scoring exploded"
    assert decisions[1].routing is not None


def test_missing_fields_are_findings_not_quarantine(rules: Rules) -> None:
    person = Person(kind="lead", ref=ref(7), email="sam@hooli.example")
    (d,), _ = decide_people([person], [], [], rules, RoutingState(), NOW)
    assert not d.quarantined
    assert sorted(f.field for f in d.findings if f.code == "missing_required") == [
        "company", "first_name", "last_name"]


def test_unassignable_lead_gets_a_finding(rules: Rules) -> None:
    owners = [owner(f"U{i}", m.email.split("@")[0], active=False)
              for i, m in enumerate(rules.routing.team) if m.role in ("sdr", "sdr_manager")]
    person = lead(1, title="Analyst", employees=300, industry="Software", page_views=5,
                  email_clicks=2)
    (d,), _ = decide_people([person], [], owners, rules, RoutingState(), NOW)
    assert d.score is not None and 40 <= d.score.total < 60
    assert d.routing is not None and d.routing.owner_email is None
    assert any(f.code == "no_active_owner" for f in d.findings)


def test_duplicate_refs_are_decided_once_with_the_last_version(rules: Rules) -> None:
    old = lead(1, title="Intern")
    new = lead(1, **HOT)
    decisions, _ = decide_people([old, lead(2), new], [], [], rules, RoutingState(), NOW)
    assert [d.ref.crm_id for d in decisions] == ["1", "2"]
    assert decisions[0].score is not None and decisions[0].score.category == "Hot"


def test_round_robin_follows_input_order_and_is_deterministic(rules: Rules) -> None:
    people = [lead(i, **WARM) for i in range(6)]
    first, s1 = decide_people(people, [], [], rules, RoutingState(), NOW)
    again, s2 = decide_people(people, [], [], rules, RoutingState(), NOW)
    assert first == again and s1 == s2
    owners_seen = [d.routing.owner_email for d in first]  # type: ignore[union-attr]
    assert len(set(owners_seen[:3])) == 3 and owners_seen[:3] == owners_seen[3:]


def test_state_carries_over_between_batches(rules: Rules) -> None:
    people = [lead(i, **WARM) for i in range(4)]
    whole, _ = decide_people(people, [], [], rules, RoutingState(), NOW)
    part1, state = decide_people(people[:2], [], [], rules, RoutingState(), NOW)
    part2, _ = decide_people(people[2:], [], [], rules, state, NOW)
    assert [d.routing for d in whole] == [d.routing for d in part1 + part2]


def test_naive_now_is_refused(rules: Rules) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_people([lead(1)], [], [], rules, RoutingState(), datetime(2026, 1, 1))


# ---------------------------------------------------------------- properties

any_text = st.one_of(st.none(), st.text(max_size=30),
                     st.sampled_from(["US", "Deutschland", "JP", "globex.example", "VP Sales",
                                      "(415) 555-2671", "CEO", "x@gmail.com"]))
emails = st.one_of(st.none(), st.text(max_size=20),
                   st.sampled_from(["a@acme.example", "A@Acme.example", "b@globex.example",
                                    "c.d@gmail.com", "cd+x@googlemail.com", "e@tyrell.example"]))
people_strategy = st.lists(
    st.builds(
        lambda i, conn, email, first, company, title, country, phone, score_bits, converted: lead(
            i % 12, connection=conn, email=email, first_name=first, company=company, title=title,
            country=country, phone=phone, demo_requested=score_bits[0], employees=score_bits[1],
            page_views=score_bits[2], is_converted=converted),
        st.integers(min_value=0, max_value=40), st.sampled_from(["salesforce", "hubspot"]),
        emails, any_text, any_text, any_text, any_text, any_text,
        st.tuples(st.booleans(), st.one_of(st.none(), st.integers(0, 10**5)),
                  st.one_of(st.none(), st.integers(-3, 50))),
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(people=people_strategy)
def test_every_record_gets_exactly_one_decision(rules: Rules, people: list[Person]) -> None:
    accounts = [account("A1", "acme.example", owner_id="U1")]
    decisions, _ = decide_people(people, accounts, [owner("U1", "grace.kim")], rules,
                                 RoutingState(), NOW)
    assert [d.ref for d in decisions] == list(dict.fromkeys(p.ref for p in people))
    for d in decisions:
        assert d.quarantined or d.score is not None
        assert d.rules_version == rules.version
        if d.routing is not None and d.routing.owner_email is not None:
            member = rules.routing.member(d.routing.owner_email)
            assert member is None or member.active


@settings(max_examples=40, deadline=None)
@given(people=people_strategy)
def test_a_second_run_never_assigns_anyone_twice(rules: Rules, people: list[Person]) -> None:
    first, state = decide_people(people, [], [], rules, RoutingState(), NOW)
    ledger = {
        d.ref: ExistingAssignment(owner_email=d.routing.owner_email, tier=d.routing.tier,
                                  assigned_at=NOW)
        for d in first
        if d.routing is not None and d.routing.owner_email and not d.routing.kept_existing
    }
    later = NOW + timedelta(hours=2)
    second, state2 = decide_people(people, [], [], rules, state, later, ledger)
    assert state2 == state  # no round-robin turn was used
    for before, after in zip(first, second, strict=True):
        if before.ref in ledger:
            assert after.routing is not None and after.routing.kept_existing
            assert after.routing.owner_email == ledger[before.ref].owner_email
            assert after.sla is None and after.task is None


# ---------------------------------------------------------------- one vocabulary

EARLY = {"title": "Analyst", "employees": 300, "industry": "Technology", "page_views": 2}
"""A profile that scores in category Early (20-39), which is SLA tier Cold (0-39)."""


def test_category_and_sla_tier_are_named_as_different_things(rules: Rules) -> None:
    accounts = [account("001A", "acme.example", owner_id="005G", name="Acme")]
    (d,), _ = decide_people([lead(1, email="bob@acme.example", **EARLY)], accounts,
                            [owner("005G", "grace.kim")], rules, RoutingState(), NOW)
    assert d.score is not None and d.score.category == "Early" and 20 <= d.score.total < 40
    assert d.routing is not None and d.routing.tier == "Cold" and d.sla is not None and d.task is not None
    total = d.score.total
    assert d.routing.reason == (f"Matched account Acme -> account owner {team('grace.kim')}; "
                                f"score {total} (category Early), SLA tier Cold")
    assert d.task.subject == f"Follow up: Jane Doe (Acme), SLA tier Cold, score {total} (category Early)"
    assert f"This record: score {total} (category Early); demographic" in d.task.description
    assert "SLA tier Cold: respond by" in d.task.description
    for text in (d.routing.reason, d.task.subject, d.task.description):
        assert "(Cold" not in text and "(Early)" not in text  # never a bare tier or category


def test_nurture_reason_names_the_category_and_no_sla(rules: Rules) -> None:
    (d,), _ = decide_people([lead(1, email="x@gmail.com", **EARLY)], [], [], rules, RoutingState(), NOW)
    assert d.score is not None and d.routing is not None
    assert d.routing.reason == (f"Score {d.score.total} (category {d.score.category}) -> marketing nurture, "
                                "no sales owner, no SLA")


def test_shared_reason_says_the_score_is_the_best_records(rules: Rules) -> None:
    """Each record has its own score; the shared routing reason cites the best one as such."""
    sf = lead(1, email="jane.doe@hooli.example", **HOT)
    hs = lead("501", email="jane.doe@hooli.example", connection="hubspot", object="contacts", **WARM)
    (a, b), _ = decide_people([sf, hs], [], [], rules, RoutingState(), NOW)
    assert a.score is not None and b.score is not None and a.score.total > b.score.total
    assert a.routing is not None and a.routing == b.routing
    assert a.routing.reason.startswith(
        f"Score {a.score.total} (category Hot; best of this person's 2 records), SLA tier Hot -> senior rep")
    # The task sits on the best record and cites that record's own score.
    assert a.task is not None and b.task is None
    assert a.task.subject.endswith(f"score {a.score.total} (category Hot)")
    assert a.field_updates["relay_score"] == a.score.total and b.field_updates["relay_score"] == b.score.total


def test_single_record_reason_cites_its_own_score(rules: Rules) -> None:
    (d,), _ = decide_people([lead(1, **WARM)], [], [], rules, RoutingState(), NOW)
    assert d.score is not None and d.routing is not None
    assert d.routing.reason.startswith(f"Score {d.score.total} (category {d.score.category}), SLA tier ")
    assert "best of" not in d.routing.reason


def test_routing_source_tells_whose_owner_it_is(rules: Rules) -> None:
    routed, owned, kept = lead(1, **HOT), lead(2, owner_id="005E", **HOT), lead(3, **HOT)
    existing = {kept.ref: ExistingAssignment(owner_email=team("rafael.ortiz"), tier="Hot", assigned_at=NOW)}
    decisions, _ = decide_people([routed, owned, kept], [], [owner("005E", "emma.rossi")], rules,
                                 RoutingState(), NOW, existing)
    sources = [(d.routing.source, d.routing.kept_existing) for d in decisions]  # type: ignore[union-attr]
    assert sources == [("relay", False), ("crm_owner", True), ("existing", True)]
    assert decisions[2].routing.reason == f"Already assigned to {team('rafael.ortiz')} (SLA tier Hot); kept"  # type: ignore[union-attr]
