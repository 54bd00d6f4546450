"""Lead-to-account matching: methods, free-mail, tie-breakers, determinism, the decision's audit."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.accounts import MANUAL_RESEARCH, AccountFound, AccountIndex
from connector.core.decide import decide_people
from connector.core.models import Account, RoutingState
from connector.core.rules import AccountMatchRules, MatchingRules

from .helpers import NOW, account, lead, owner, shipped_rules

OWNERS = [owner("U1", "grace.kim"), owner("U2", "daniel.okafor"), owner("U9", "lucas.silva", active=False)]


def acct(crm_id: str, domain: str | None = None, name: str | None = None, **fields: Any) -> Account:
    fields.setdefault("owner_id", "U1")
    return account(crm_id, domain, name=name, **fields)


def find(index: AccountIndex, email_domain: str | None = None, website: str | None = None,
         company: str | None = None, connection: str = "salesforce",
         rules: AccountMatchRules | None = None) -> AccountFound | None:
    return index.match_person(email_domain, website, company, connection, OWNERS, rules)


def crm_id(found: AccountFound | None) -> str | None:
    return found.account.ref.crm_id if found is not None else None


# ------------------------------------------------------------------------------ each method
def test_email_domain_through_the_public_suffix_list() -> None:
    index = AccountIndex([acct("A1", "acme.com.au", "Acme"), acct("A2", "acme.com", "Acme US")])
    found = find(index, "shop.acme.com.au")
    assert found is not None and crm_id(found) == "A1"
    assert found.match.method == "email_domain"
    assert found.match.score == 0.98  # a parent host of the email's
    assert "shop.acme.com.au" in found.match.detail
    # a public suffix is never a company: co.uk and com.au alone match nobody
    assert find(AccountIndex([acct("A3", "co.uk", "Nobody")]), "acme.co.uk") is None


def test_exact_host_wins_over_the_parent_and_a_sibling_subdomain_still_matches() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme"), acct("A2", "eu.acme.example", "Acme Europe")])
    assert crm_id(find(index, "eu.acme.example")) == "A2"
    found = find(index, "us.acme.example")  # same registered domain: the parent host is closer
    assert crm_id(found) == "A1" and found is not None and found.match.tie_break == "closer match"
    assert find(AccountIndex([acct("A2", "eu.acme.example", "Acme Europe")]), "us.acme.example") \
        is not None  # a sibling host of the same organisation


def test_account_website_counts_like_its_domain() -> None:
    index = AccountIndex([acct("A1", None, "Acme", website="https://www.acme.example/about")])
    found = find(index, "acme.example")
    assert crm_id(found) == "A1" and found is not None and found.match.score == 1.0


def test_person_website_when_the_email_does_not_match() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme")])
    found = find(index, "other.example", website="http://WWW.Acme.example/pricing")
    assert found is not None and found.match.method == "website" and crm_id(found) == "A1"


def test_exact_cleaned_company_name() -> None:
    index = AccountIndex([acct("A1", "acme.example", "ACME Corp., Inc."), acct("A2", "globex.example", "Globex")])
    found = find(index, "acme-mail.example", company="The Acme Corporation")
    assert found is not None and found.match.method == "company_name" and crm_id(found) == "A1"
    assert found.match.score == 0.8


def test_fuzzy_company_name_with_a_typo() -> None:
    index = AccountIndex([acct("A1", "initech.example", "Initech Systems LLC")])
    found = find(index, "initech-corp.example", company="Inittech Systems")
    assert found is not None and found.match.method == "company_fuzzy" and crm_id(found) == "A1"
    assert 0.6 < found.match.score < 0.75 and "~" in found.match.detail


@pytest.mark.parametrize("company", ["Global", "Global Solutions Group", "The Group", "Solutions Inc"])
def test_generic_names_never_match_by_name(company: str) -> None:
    index = AccountIndex([acct("A1", None, "Global Solutions Group"), acct("A2", None, "Global Group"),
                          acct("A3", None, "Solutions")])
    assert find(index, "x.example", company=company) is None


def test_fuzzy_guard_needs_the_distinctive_words_to_agree() -> None:
    index = AccountIndex([acct("A1", None, "Alpha Global Solutions"), acct("A2", None, "Acme")])
    # generic words shared, distinctive ones differ: no match
    assert find(index, "x.example", company="Alpine Global Solutions") is None
    # one letter off in a four-letter name is 75 % alike: under the threshold ("Acme" vs "Acne")
    assert find(index, "x.example", company="Acne") is None


def test_fuzzy_threshold_comes_from_the_rules() -> None:
    index = AccountIndex([acct("A1", None, "Umbrella Pharmaceuticals")])
    assert find(index, "x.example", company="Umbrella Pharmaceutical") is not None
    strict = AccountMatchRules(fuzzy_threshold=99.5)
    assert find(index, "x.example", company="Umbrella Pharmaceutical", rules=strict) is None
    only_domain = AccountMatchRules(methods=["email_domain"])
    assert find(index, "x.example", company="Umbrella Pharmaceuticals", rules=only_domain) is None


def test_stronger_method_decides_before_weaker_ones() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme"), acct("A2", "globex.example", "Globex")])
    found = find(index, "acme.example", website="globex.example", company="Globex")
    assert found is not None and found.match.method == "email_domain" and crm_id(found) == "A1"


# ------------------------------------------------------------------------------ free-mail
@pytest.mark.parametrize("domain", ["gmail.com", "yahoo.co.uk", "mailinator.com", "protonmail.com"])
def test_free_mail_and_disposable_never_match_by_domain(domain: str) -> None:
    index = AccountIndex([acct("A1", domain, "Mail Provider")])
    assert find(index, domain) is None
    assert find(index, domain, website=domain) is None


def test_free_mail_matches_by_exact_unique_name_only() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme Inc"), acct("B1", "b.example", "Twin"),
                          acct("B2", "b2.example", "Twin")])
    found = find(index, "gmail.com", company="ACME")
    assert found is not None and crm_id(found) == "A1" and found.match.method == "company_name"
    assert find(index, "gmail.com", company="Twin") is None  # two accounts: not unique
    assert find(index, "gmail.com", company="Acmee Inc") is None  # never fuzzy
    assert find(index, "gmail.com", company="ACME", rules=AccountMatchRules(free_mail_by_name=False)) is None
    # unique within the person's CRM is enough when the other CRM has its own copy
    both = AccountIndex([acct("A1", "acme.example", "Acme"), acct("H1", "acme.example", "Acme", connection="hubspot")])
    assert crm_id(find(both, "gmail.com", company="Acme", connection="hubspot")) == "H1"


def test_free_mail_lead_gets_manual_research_in_the_decision() -> None:
    rules = shipped_rules()
    people = [lead(1, email="jane@gmail.com", company="Acme"), lead(2, email="joe@gmail.com", company="Nobody Ltd"),
              lead(3, email="ann@acme.example")]
    accounts = [acct("A1", "acme.example", "Acme")]
    decisions, _ = decide_people(people, accounts, OWNERS, rules, RoutingState(), NOW)
    by_id = {d.ref.crm_id: d for d in decisions}
    flagged = {k: [f for f in d.findings if f.code == MANUAL_RESEARCH] for k, d in by_id.items()}
    assert len(flagged["1"]) == 1 and "exact company name only" in flagged["1"][0].message
    assert by_id["1"].matched_account is not None and by_id["1"].account_match is not None
    assert by_id["1"].account_match.method == "company_name"
    assert len(flagged["2"]) == 1 and "no account matched" in flagged["2"][0].message
    assert flagged["2"][0].value == "gmail.com" and by_id["2"].matched_account is None
    assert flagged["3"] == []
    assert by_id["3"].account_match is not None and by_id["3"].account_match.method == "email_domain"


def test_the_decision_audits_how_the_account_matched_and_routes_to_its_owner() -> None:
    rules = shipped_rules()
    people = [lead(1, email="jane@mail.other.example", company="Acme Widgets GmbH")]
    decisions, _ = decide_people(people, [acct("A1", "acme.example", "Acme Widgets")], OWNERS, rules,
                                 RoutingState(), NOW)
    decision = decisions[0]
    assert decision.account_match is not None and decision.account_match.method == "company_name"
    dumped = decision.model_dump(mode="json")["account_match"]
    assert dumped["method"] == "company_name" and dumped["score"] == 0.8
    assert decision.routing is not None and decision.routing.rule == "matched_account_owner"
    assert "Acme Widgets (by company name)" in decision.routing.reason


# ------------------------------------------------------------------------------ tie-breakers
def test_same_crm_first_even_across_crms() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme"), acct("H1", "acme.example", "Acme", connection="hubspot")])
    assert crm_id(find(index, "acme.example", connection="hubspot")) == "H1"
    assert crm_id(find(index, "acme.example", connection="salesforce")) == "A1"
    only_sf = AccountIndex([acct("A1", "acme.example", "Acme")])
    assert crm_id(find(only_sf, "acme.example", connection="hubspot")) == "A1"  # cross-CRM allowed


def test_active_owner_before_the_business_tie_breakers() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme", owner_id="U9", open_opportunities=3),
                          acct("A2", "acme.example", "Acme")])
    found = find(index, "acme.example")
    assert crm_id(found) == "A2" and found is not None and found.match.tie_break == "active owner"


LATE = datetime(2026, 2, 1, tzinfo=UTC)
EARLY = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b", "winner", "reason"),
    [
        ({"open_opportunities": 0, "last_activity_at": LATE}, {"open_opportunities": 2}, "B", "open opportunities"),
        ({"open_opportunities": 1, "last_activity_at": EARLY}, {"open_opportunities": 4, "last_activity_at": LATE},
         "B", "recent activity"),
        ({"last_activity_at": None}, {"last_activity_at": EARLY}, "B", "recent activity"),
        ({"employees": 5000}, {"employees": 50}, "A", "more employees"),
        ({"employees": 50, "annual_revenue": 1e6}, {"employees": 50, "annual_revenue": 2e6}, "B",
         "higher annual revenue"),
        ({}, {}, "A", "lowest record reference"),
    ],
)
def test_each_tie_breaker(a: dict[str, Any], b: dict[str, Any], winner: str, reason: str) -> None:
    index = AccountIndex([acct("B", "acme.example", "Acme B", **b), acct("A", "acme.example", "Acme A", **a)])
    found = find(index, "acme.example")
    assert found is not None and crm_id(found) == winner
    assert found.match.tie_break == reason and found.match.candidates == 2


# ------------------------------------------------------------------------------ determinism
_domains = st.sampled_from(["acme.example", "eu.acme.example", "globex.example", "acme.com.au", None])
_names = st.sampled_from(["Acme", "Acme Inc", "Globex", "Initech Systems", "Global Group", None])


@st.composite
def account_lists(draw: st.DrawFn) -> list[Account]:
    count = draw(st.integers(0, 8))
    return [acct(f"A{i}", draw(_domains), draw(_names),
                 connection=draw(st.sampled_from(["salesforce", "hubspot"])),
                 owner_id=draw(st.sampled_from(["U1", "U9", None])),
                 open_opportunities=draw(st.sampled_from([None, 0, 1, 3])),
                 employees=draw(st.sampled_from([None, 10, 500])))
            for i in range(count)]


@settings(max_examples=80, deadline=None)
@given(accounts=account_lists(), seed=st.integers(0, 2**16),
       email=st.sampled_from(["acme.example", "shop.acme.com.au", "gmail.com", "x.example", None]),
       company=_names, connection=st.sampled_from(["salesforce", "hubspot"]))
def test_order_of_accounts_never_changes_the_match(accounts: list[Account], seed: int, email: str | None,
                                                    company: str | None, connection: str) -> None:
    shuffled = list(accounts)
    random.Random(seed).shuffle(shuffled)
    first = find(AccountIndex(accounts), email, company=company, connection=connection)
    again = AccountIndex(shuffled)
    second = find(again, email, company=company, connection=connection)
    assert first == second
    assert find(again, email, company=company, connection=connection) == second  # remembered answer
    if first is not None and email is not None and first.match.method == "email_domain":
        assert email not in ("gmail.com",)


def test_index_upkeep_forgets_remembered_answers() -> None:
    index = AccountIndex([acct("A1", "acme.example", "Acme")])
    assert crm_id(find(index, "acme.example")) == "A1"
    index.add(acct("A0", "acme.example", "Acme", open_opportunities=1))
    assert crm_id(find(index, "acme.example")) == "A0"
    index.remove(acct("A0").ref)
    assert crm_id(find(index, "x.example", company="Acme")) == "A1"
    index.remove(acct("A1").ref)
    assert find(index, "acme.example") is None and find(index, "x.example", company="Acme") is None


def test_rules_section_defaults_and_validation() -> None:
    assert MatchingRules().accounts.fuzzy_threshold == 90.0
    assert "global" in MatchingRules().accounts.generic_words
    with pytest.raises(ValueError, match="generic_words"):
        AccountMatchRules(generic_words=["Two Words"])
    with pytest.raises(ValueError, match="fuzzy_threshold"):
        AccountMatchRules(fuzzy_threshold=120)
