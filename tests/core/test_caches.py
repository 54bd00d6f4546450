"""The core's speed-ups never change a decision.

Per-value caches (hygiene, identity keys, domains), tables derived once per rules object
(roster, SLA tiers, score categories, ``Rules.version``), an ``AccountIndex`` built once
and updated incrementally: each is checked against the plain way of deciding.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core._cache import clear_value_caches
from connector.core.decide import decide_people
from connector.core.hygiene import clean_person
from connector.core.identity import AccountIndex, match_account, owners_by_id, person_key
from connector.core.models import Account, ExistingAssignment, Owner, Person, RoutingState
from connector.core.rules import SCORE_MAX, Rules, rules_version
from connector.core.scoring import score_person

from .helpers import NOW, account, lead, owner, team

DOMAINS = ["acme.example", "eu.acme.example", "globex.example", "initech.example", "hooli.example",
           "gmail.com", "tyrell.example"]
EMAILS = st.one_of(
    st.none(), st.text(max_size=12),
    st.builds(lambda local, domain, shout: (f"{local}@{domain}".upper() if shout else f"{local}@{domain}"),
              st.sampled_from(["jane", "jane.doe", "jane+crm", "bob", "j.a.n.e"]), st.sampled_from(DOMAINS),
              st.booleans()),
)
TEXT = st.one_of(st.none(), st.text(max_size=12), st.sampled_from([
    "US", "usa", "Deutschland", "JP", "Narnia", "California", "ON", "  new   york ", "VP of Sales",
    "CEO", "intern", "Head of IT", "(415) 555-2671", "+44 20 7946 0958", "555-0000", "ACME INC",
    "globex corporation", "IBM", "https://www.hooli.example/about", "Software"]))
OWNERS = [owner("U1", "grace.kim"), owner("U2", "emma.rossi"), owner("U3", "liam.walsh", active=False),
          owner("H1", "emma.rossi", connection="hubspot"), owner("H2", "olivia.grant", connection="hubspot")]


@st.composite
def people_lists(draw: st.DrawFn) -> list[Person]:
    count = draw(st.integers(min_value=0, max_value=14))
    people = []
    for _ in range(count):
        connection = draw(st.sampled_from(["salesforce", "hubspot"]))
        contact = draw(st.booleans())
        people.append(lead(
            draw(st.integers(min_value=0, max_value=20)),
            connection=connection,
            object=("Contact" if contact else "Lead") if connection == "salesforce" else "contacts",
            kind="contact" if contact else "lead",
            email=draw(EMAILS), first_name=draw(TEXT), last_name=draw(TEXT), company=draw(TEXT),
            title=draw(TEXT), country=draw(TEXT), state=draw(TEXT), phone=draw(TEXT), website=draw(TEXT),
            industry=draw(TEXT),
            owner_id=draw(st.sampled_from([None, "U1", "U2", "U3", "H1", "H2", "Q9"])),
            employees=draw(st.one_of(st.none(), st.integers(-5, 20_000))),
            page_views=draw(st.one_of(st.none(), st.integers(-2, 40))),
            demo_requested=draw(st.booleans()), webinar_attended=draw(st.booleans()),
            is_converted=draw(st.one_of(st.none(), st.booleans())),
        ))
    return people


@st.composite
def account_lists(draw: st.DrawFn) -> list[Account]:
    found: list[Account] = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        connection = draw(st.sampled_from(["salesforce", "hubspot"]))
        found.append(account(f"A{i}", draw(st.one_of(st.none(), st.sampled_from(DOMAINS))),
                             owner_id=draw(st.sampled_from([None, "U1", "U2", "U3", "H1", "H2"])),
                             connection=connection, name=draw(st.sampled_from([None, "Acme", "Globex"])),
                             website=draw(st.sampled_from([None, "https://www.acme.example", "hooli.example/x"]))))
    return found


@settings(max_examples=80, deadline=None)
@given(people=people_lists(), accounts=account_lists(), seed=st.integers(0, 2**16),
       kept=st.lists(st.integers(0, 20), max_size=3))
def test_prebuilt_index_and_warm_caches_decide_as_a_cold_call(
    rules: Rules, people: list[Person], accounts: list[Account], seed: int, kept: list[int],
) -> None:
    existing = {p.ref: ExistingAssignment(owner_email=team("emma.rossi"), tier="Warm", assigned_at=NOW)
                for p in people if int(p.ref.crm_id) in kept}
    clear_value_caches()
    cold, cold_state = decide_people(people, accounts, OWNERS, rules, RoutingState(), NOW, existing)

    # Warm every cache with the same records in another order, then decide with an index
    # that was built in pieces: an extra account added and removed again, the rest added.
    shuffled = list(people)
    random.Random(seed).shuffle(shuffled)
    decide_people(shuffled, accounts, OWNERS, rules, RoutingState(), NOW, existing)
    index = AccountIndex(accounts[: len(accounts) // 2])
    index.add(account("GONE", "acme.example", owner_id="U2"))
    index.update(accounts[len(accounts) // 2:])
    assert index.remove(account("GONE", None).ref) is not None
    warm, warm_state = decide_people(people, index, OWNERS, rules, RoutingState(), NOW, existing)

    assert warm == cold
    assert warm_state == cold_state

    # Each record as if decided alone, without any cache: same hygiene, key, account, score.
    owners = owners_by_id(OWNERS)
    fresh_scoring = rules.scoring.model_copy()  # a new rules object: tables of its own
    latest = {p.ref: p for p in people}
    for decision in warm:
        if decision.quarantined:
            continue
        clear_value_caches()
        cleaned = clean_person(latest[decision.ref])
        assert decision.hygiene == cleaned
        assert decision.score == score_person(cleaned, fresh_scoring)
        assert decision.person_key == person_key(cleaned.person.email)
        found = AccountIndex(accounts).match_person(
            cleaned.email_domain, cleaned.person.website, cleaned.person.company, decision.ref.connection,
            list(owners.values()), rules.matching.accounts)
        assert decision.matched_account == (found.account.ref if found is not None else None)
        assert decision.account_match == (found.match if found is not None else None)


@settings(max_examples=60, deadline=None)
@given(accounts=account_lists(), changed=account_lists(), seed=st.integers(0, 2**16))
def test_incremental_index_matches_like_a_fresh_one(
    accounts: list[Account], changed: list[Account], seed: int,
) -> None:
    """Adding, replacing (same ref) and removing accounts leaves the index a fresh build would be."""
    index = AccountIndex(accounts)
    rng = random.Random(seed)
    gone = {a.ref for a in accounts if rng.random() < 0.3}
    for ref in gone:
        index.remove(ref)
    index.update(changed)  # same refs as some of ``accounts``: replaced
    final = {a.ref: a for a in accounts if a.ref not in gone}
    final.update({a.ref: a for a in changed})
    fresh = AccountIndex(final.values())
    assert len(index) == len(fresh) == len(final)
    assert sorted(index, key=str) == sorted(fresh, key=lambda a: str(a))  # type: ignore[arg-type]
    owners = owners_by_id(OWNERS)
    for domain in [*DOMAINS, "sub.eu.acme.example", "nowhere.example"]:
        for connection in ("salesforce", "hubspot"):
            assert match_account(domain, index, owners, connection) == \
                match_account(domain, list(final.values()), owners, connection)


def test_removing_an_unknown_account_is_harmless() -> None:
    index = AccountIndex([account("A1", "acme.example")])
    assert index.remove(account("A2", "acme.example").ref) is None
    assert [a.ref.crm_id for a in index] == ["A1"]
    assert account("A1", None).ref in index


def test_readding_an_account_replaces_its_domains() -> None:
    index = AccountIndex([account("A1", "acme.example")])
    index.add(account("A1", "globex.example"))  # the account's domain changed in the CRM
    assert match_account("acme.example", index) is None
    assert match_account("globex.example", index).ref.crm_id == "A1"  # type: ignore[union-attr]
    assert len(index) == 1


def test_rules_version_is_computed_once_and_follows_copies(rules: Rules) -> None:
    assert rules.version == rules_version(rules.scoring, rules.routing, rules.sla, rules.matching, rules.dispositions,
                                          rules.consent)
    assert rules.version is rules.version  # the same string object: computed once
    routing = rules.routing.model_copy(update={"reroute_owned_contacts": True})
    changed = rules.model_copy(update={"routing": routing})
    assert changed.version == rules_version(rules.scoring, routing, rules.sla, rules.matching, rules.dispositions,
                                            rules.consent) != rules.version


def test_roster_lookups_follow_a_copied_roster(rules: Rules) -> None:
    """Tables derived from the rules belong to one rules object, never to its copies."""
    assert rules.routing.member(team("emma.rossi")) is not None
    team_without = [m for m in rules.routing.team if m.email != team("emma.rossi")]
    smaller = rules.routing.model_copy(update={"team": team_without})
    assert smaller.member(team("emma.rossi")) is None
    assert rules.routing.member(" Emma.Rossi@northwind.example ") is not None
    assert [m.email for m in smaller.members_with_role("sales_rep")] == \
        [m.email for m in team_without if m.role == "sales_rep"]


def test_owners_of_another_batch_are_not_remembered(rules: Rules) -> None:
    """The account match is remembered within one call only: owners change between calls."""
    accounts = [account("A1", "acme.example", owner_id="U1"), account("A2", "acme.example", owner_id="U2")]
    person = lead(1, email="bob@acme.example")
    with_u1: list[Owner] = [owner("U1", "grace.kim"), owner("U2", "emma.rossi", active=False)]
    with_u2: list[Owner] = [owner("U1", "grace.kim", active=False), owner("U2", "emma.rossi")]
    index = AccountIndex(accounts)
    (first,), _ = decide_people([person], index, with_u1, rules, RoutingState(), NOW)
    (second,), _ = decide_people([person], index, with_u2, rules, RoutingState(), NOW)
    assert first.matched_account == accounts[0].ref
    assert second.matched_account == accounts[1].ref


ADDRESSES = st.builds(
    lambda before, local, domain, after: f"{before}{local}@{domain}{after}",
    st.sampled_from(["", " ", "mailto:", "<", "'", "Jane <", "x@y, "]),
    st.sampled_from(["jane", "Jane", "j.doe", "'q", "o'neil", "a+b", "x_y", ".x", "x.", "-", "a..b", "é"]),
    st.sampled_from(["acme.example", "acme.co", "xn--bcher-kva.example", "bücher.example", "a-.example", "acme",
                     "acme.example.", "ACME.example", "acme\n.example", "acme.c", "acme.123", "-acme.example"]),
    st.sampled_from(["", " ", ">", ", x@y.co", "\n", ".", "'"]),
)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(st.text(max_size=40), ADDRESSES))
def test_clean_address_shortcut_finds_what_the_search_finds(raw: str) -> None:
    """``extract_address`` returns a clean address as it is, without searching the text."""
    from connector.core._email import _search_address, extract_address

    assert extract_address(raw) == (_search_address(raw.strip()) if raw else None)


@settings(max_examples=100, deadline=None)
@given(email=st.one_of(st.sampled_from(["emma.rossi", "dana.whitfield", "nobody", "lucas.silva"]).map(team),
                       st.text(max_size=20)),
       country=st.one_of(st.none(), st.sampled_from(["US", " de ", "jp", "XX", ""]), st.text(max_size=3)),
       score=st.integers(-5, SCORE_MAX + 5))
def test_rules_lookups_answer_as_a_scan_of_the_rules(rules: Rules, email: str, country: str | None,
                                                     score: int) -> None:
    routing, sla, scoring = rules.routing, rules.sla, rules.scoring
    wanted = email.strip().lower()
    assert routing.member(email) == next((m for m in routing.team if m.email == wanted), None)
    code = (country or "").strip().upper()
    assert routing.region_for(country) == next(
        (r for r, codes in routing.regions.items() if country and code in codes), routing.default_region)
    member = routing.member(email)
    chain: list[str] = []
    current = member.manager if member else None
    while current is not None and current not in chain:
        chain.append(current)
        above = routing.member(current)
        current = above.manager if above else None
    expected = tuple(chain) if member else tuple(e for e in routing.escalation_default if e != email)
    assert routing.escalation_chain(email) == expected
    eligible = [t for t in sla.tiers if t.min_score <= score]
    if eligible:
        assert sla.tier_for_score(score) == max(eligible, key=lambda t: t.min_score)
    else:
        with pytest.raises(ValueError, match="no SLA tier"):
            sla.tier_for_score(score)
    category = next((c.name for c in scoring.categories if c.min <= score <= c.max), None)
    if category is None:
        with pytest.raises(ValueError, match="outside"):
            scoring.category_for(score)
    else:
        assert scoring.category_for(score) == category


def test_account_match_is_remembered_per_connection(rules: Rules) -> None:
    """Within a batch the match is remembered per (domain, connection): each CRM's record gets its own account."""
    accounts = [account("A1", "acme.example"), account("H1", "acme.example", connection="hubspot")]
    people = [lead(1, email="bob@acme.example"),
              lead(2, email="ann@acme.example", connection="hubspot", object="contacts"),
              lead(3, email="cy@acme.example")]
    decisions, _ = decide_people(people, AccountIndex(accounts), OWNERS, rules, RoutingState(), NOW)
    assert [d.matched_account.crm_id for d in decisions] == ["A1", "H1", "A1"]  # type: ignore[union-attr]


def test_index_forgets_its_matches_when_accounts_or_owners_change() -> None:
    index = AccountIndex([account("A1", "acme.example", owner_id="U1"), account("A2", "acme.example", owner_id="U2")])
    both_active = [owner("U1", "grace.kim"), owner("U2", "emma.rossi")]
    assert index.match("acme.example", "salesforce", both_active).ref.crm_id == "A1"  # type: ignore[union-attr]
    index.add(account("A0", "acme.example", owner_id="U1"))  # a new account: the lowest ref on acme
    assert index.match("acme.example", "salesforce", both_active).ref.crm_id == "A0"  # type: ignore[union-attr]
    index.add(account("A0", "globex.example", owner_id="U1"))  # its domain changed in the CRM
    assert index.match("acme.example", "salesforce", both_active).ref.crm_id == "A1"  # type: ignore[union-attr]
    assert index.match("globex.example", "salesforce", both_active).ref.crm_id == "A0"  # type: ignore[union-attr]
    index.remove(account("A0", None).ref)
    assert index.match("globex.example", "salesforce", both_active) is None
    u1_left = [owner("U1", "grace.kim", active=False), owner("U2", "emma.rossi")]
    assert index.match("acme.example", "salesforce", u1_left).ref.crm_id == "A2"  # type: ignore[union-attr]
    assert index.match(None, "salesforce", u1_left) is None
