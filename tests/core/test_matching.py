"""The person matcher: normalisers, pair scores, clusters that do not chain (pure, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.matching import match_people, score_records
from connector.core.matching.normalize import (
    company_key,
    email_key,
    first_name_groups,
    is_disposable_domain,
    is_free_mail_domain,
    last_name_key,
    name_key,
    phone_key,
    registered_domain,
    split_first,
    title_key,
)
from connector.core.rules import MatchingRules, MatchWeights

# --- normalisers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "key"), [
    ("Jane.Doe@Acme.COM", "jane.doe@acme.com"),
    ("  jane.doe+news@acme.com ", "jane.doe@acme.com"),
    ("J.A.N.E.doe+x@googlemail.com", "janedoe@gmail.com"),
    ('"Jane Doe" <jane@acme.com>', "jane@acme.com"),
    ("mailto:jane@acme.com", "jane@acme.com"),
    ("jane.doe@outlook.com", "jane.doe@outlook.com"),  # dots are significant outside Gmail
    ("not an address", None),
    ("", None),
    (None, None),
])
def test_email_key(raw: str | None, key: str | None) -> None:
    assert email_key(raw) == key


@pytest.mark.parametrize(("raw", "domain"), [
    ("shop.acme.com.au", "acme.com.au"),
    ("https://www.Acme.co.uk/about?x=1", "acme.co.uk"),
    ("eu.acme.example", "acme.example"),
    ("acme.com:8080", "acme.com"),
    ("co.uk", None),  # a public suffix alone is nobody's domain
    ("localhost", None),
    ("", None),
])
def test_registered_domain_uses_the_public_suffix_list(raw: str, domain: str | None) -> None:
    assert registered_domain(raw) == domain


def test_free_and_disposable_mail_come_from_the_maintained_lists() -> None:
    assert is_free_mail_domain("gmail.com") and is_free_mail_domain("yahoo.co.uk") and is_free_mail_domain("gmx.de")
    assert not is_free_mail_domain("acme.com")
    assert is_disposable_domain("mailinator.com")
    assert not is_disposable_domain("acme.com")


@pytest.mark.parametrize(("raw", "key"), [
    ("+1 (415) 555-0134", "155550134"),
    ("415.555.0134 ext. 12", "155550134"),
    ("001 415 555 0134", "155550134"),
    ("0044 20 7946 0958", "079460958"),
    ("+44 (0)20 7946 0958 x3", "079460958"),
    ("0000000000", None),
    ("n/a", None),
    ("12345", None),
])
def test_phone_key_is_the_line_however_it_was_typed(raw: str, key: str | None) -> None:
    assert phone_key(raw) == key


def test_names_lose_case_accents_initials_and_punctuation() -> None:
    assert name_key("  JOSÉ  María ") == "jose maria"
    assert name_key("O'Brien-Smith") == "obrien smith"
    assert split_first("John A.") == ("john", "a")
    assert split_first("J.") == ("j", "")
    assert last_name_key("Fang P.") == "fang"
    assert "robert" in first_name_groups("bob") and "william" in first_name_groups("bill")
    assert first_name_groups("robert") & first_name_groups("bob")


@pytest.mark.parametrize(("raw", "key"), [
    ("The ACME Corp., Inc.", "acme"),
    ("Acme Pty Ltd", "acme"),
    ("ACME GMBH & CO. KG", "acme"),
    ("Grupo Bimbo S.A. de C.V.", "grupo bimbo"),
    ("Société Générale S.A.", "societe generale"),
    ("Procter & Gamble Co.", "procter and gamble"),
    ("Intl Business Machines Corp", "international business machines"),
    ("Inc.", "inc"),  # a name that is nothing but a legal form keeps it
])
def test_company_key_drops_legal_forms_of_every_country(raw: str, key: str) -> None:
    assert company_key(raw) == key


def test_title_key_reads_abbreviations_alike() -> None:
    assert title_key("Sr. VP of SALES") == title_key("senior vice president sales")
    assert title_key("CEO") == "chief executive officer"


# --- pair scores ---------------------------------------------------------------------------------


def _person(**fields: str) -> dict[str, str]:
    return {"id": fields.pop("id", "x"), **fields}


def test_an_email_variant_and_a_nickname_are_one_person() -> None:
    score, reasons = score_records(
        _person(first_name="Robert", last_name="Smith", email="Bob.Smith+crm@acme.com", phone="+1 415 555 0134"),
        _person(first_name="Bob", last_name="Smith", email="bob.smith@acme.com", phone="(415) 555-0134"),
    )
    assert score >= MatchingRules().match_at
    assert "email +9.0" in reasons and "first_name +2.5" in reasons


def test_colleagues_with_the_switchboard_and_the_surname_are_two_people() -> None:
    score, reasons = score_records(
        _person(first_name="Anna", last_name="Smith", email="anna.smith@acme.com", phone="+1 415 555 0100"),
        _person(first_name="John", last_name="Smith", email="john.smith@acme.com", phone="+1 415 555 0100"),
    )
    assert score < MatchingRules().review_at
    assert "email -10.0" in reasons and "first_name -6.0" in reasons


def test_namesakes_at_other_companies_are_not_a_match() -> None:
    score, _ = score_records(
        _person(first_name="Maria", last_name="Garcia", email="maria.garcia@acme.com", company="Acme", country="US"),
        _person(first_name="Maria", last_name="Garcia", email="mgarcia@globex.es", company="Globex", country="ES"),
    )
    assert score < MatchingRules().review_at


def test_a_personal_address_with_the_name_phone_and_company_is_a_match() -> None:
    score, _ = score_records(
        _person(first_name="Chiara", last_name="Parri", email="chiara.parri@evergreen.com", phone="+1 281 495 1797",
                company="Evergreen LLC"),
        _person(first_name="Chiara", last_name="Parri", email="chiara.parri84@yahoo.co.uk", phone="2814951797",
                company="Evergreen Group"),
    )
    assert score >= MatchingRules().match_at


def test_names_alone_are_at_most_a_review_item() -> None:
    score, _ = score_records(_person(first_name="Xanthippe", last_name="Quaglierini"),
                             _person(first_name="Xanthippe", last_name="Quaglierini"))
    assert MatchingRules().review_at <= score < MatchingRules().match_at


def test_swapped_first_and_last_name_still_agree() -> None:
    score, reasons = score_records(
        _person(first_name="Hugo", last_name="Fontaine", email="hugo.fontaine@umber.fr"),
        _person(first_name="Fontaine", last_name="Hugo", email="hugo.fontaine@umber.fr"),
    )
    assert score >= MatchingRules().match_at
    assert "first_name +" in reasons


def test_a_typo_in_the_local_part_is_not_a_colleague_but_a_convention_is() -> None:
    rules = MatchingRules()
    typo, _ = score_records(_person(first_name="Stacie", last_name="Wright", email="stacie_wright@lynx.example"),
                            _person(first_name="Stacie", last_name="Wright", email="stacie_wrihgt@lynx.example"))
    namesake, _ = score_records(_person(first_name="Johan", last_name="Olsen", email="johan_olsen@rook.com"),
                                _person(first_name="Johan", last_name="Olsen", email="johan_olsen2@rook.com"))
    assert typo >= rules.match_at
    assert namesake < rules.review_at


def test_placeholders_say_nothing() -> None:
    _, reasons = score_records(_person(first_name="Ann", last_name="Lee", company="[not provided]"),
                               _person(first_name="Ann", last_name="Lee", company="Initech"))
    assert "company" not in reasons


# --- clusters ------------------------------------------------------------------------------------


def _ids(result: Any) -> list[set[str]]:
    return sorted((set(ids) for ids in result.clusters().values()), key=sorted)


def test_a_family_sharing_a_mailbox_is_never_one_person() -> None:
    result = match_people([
        _person(id="1", first_name="Rosalia", last_name="Ferrandiz", email="rosaliaandjorge@gmail.com"),
        _person(id="2", first_name="Jorge", last_name="Ferrandiz", email="rosaliaandjorge@gmail.com"),
    ])
    assert result.clusters() == {}


def test_a_shared_phone_or_domain_never_chains_people_together() -> None:
    # 30 colleagues, one switchboard, one domain, one company: 30 people
    staff = [_person(id=str(k), first_name=first, last_name=last, email=f"{first}.{last}@acme.com".lower(),
                     phone="+1 415 555 0100", company="Acme Inc")
             for k, (first, last) in enumerate((f, la) for f in ("Ann", "Bob", "Cai", "Dee", "Eve", "Fay")
                                               for la in ("Lee", "Moss", "Ng", "Orr", "Pike"))]
    assert match_people(staff).clusters() == {}


def test_a_chain_of_neighbours_does_not_become_one_cluster() -> None:
    # 1~2 by the address, 2~3 by name + phone + company; but 1 and 3 have two different first
    # names: 3 stays out, whatever links it to 2
    result = match_people([
        _person(id="1", first_name="Anna", last_name="Berg", email="anna.berg@gmail.com"),
        _person(id="2", first_name="Anna", last_name="Berg", email="anna.berg@gmail.com", phone="+46 8 123 456 78",
                company="Volvo AB"),
        _person(id="3", first_name="Annika", last_name="Berg", phone="+46 8 123 456 78", company="Volvo AB"),
    ])
    assert _ids(result) == [{"1", "2"}]


def test_the_cluster_label_is_the_position_of_its_first_record() -> None:
    result = match_people([
        _person(id="a", first_name="Jane", last_name="Doe"),
        _person(id="b", first_name="John", last_name="Roe", email="john.roe@acme.com"),
        _person(id="c", first_name="Johnny", last_name="Roe", email="JOHN.ROE+x@acme.com"),
    ])
    assert result.labels == [0, 1, 1]
    assert [p.decision for p in result.pairs()] == ["same"]


def test_a_lower_match_threshold_matches_more() -> None:
    records = [_person(id="1", first_name="Emily", last_name="Miller", company="Orchidview Education"),
               _person(id="2", first_name="Emily", last_name="Miller", company="Orchidview Education",
                       email="emily@orchidview.test")]
    assert match_people(records, MatchingRules(match_at=20.0)).clusters() == {}
    assert len(match_people(records, MatchingRules(match_at=5.0, review_at=4.0)).clusters()) == 1


def test_rules_refuse_thresholds_out_of_order() -> None:
    with pytest.raises(ValueError, match="review_at"):
        MatchingRules(match_at=4.0, review_at=6.0)
    with pytest.raises(ValueError, match="block limit"):
        MatchingRules(block_limits={"phone": 1})


# --- properties ----------------------------------------------------------------------------------

_first = st.sampled_from(["Anna", "Bob", "Robert", "José", "Jose", "Li", "Mary", "Marie", "J.", ""])
_last = st.sampled_from(["Smith", "Smyth", "Garcia", "García", "Ng", "de Vries", ""])
_email = st.sampled_from(["", "anna@acme.com", "ANNA@acme.com", "bob.smith@gmail.com", "bobsmith@gmail.com",
                          "info@acme.com", "a.smith@acme.com", "smith@globex.es"])
_phone = st.sampled_from(["", "+1 415 555 0100", "(415) 555-0100", "+44 20 7946 0958"])
_company = st.sampled_from(["", "Acme Inc", "ACME", "Globex GmbH", "[not provided]"])
_country = st.sampled_from(["", "US", "United States", "DE"])
_records = st.fixed_dictionaries({"first_name": _first, "last_name": _last, "email": _email, "phone": _phone,
                                  "company": _company, "country": _country})


@settings(max_examples=150, deadline=None)
@given(_records, _records)
def test_a_score_is_symmetric(left: dict[str, str], right: dict[str, str]) -> None:
    assert score_records(left, right) == pytest.approx(score_records(right, left))  # type: ignore[comparison-overlap]


@settings(max_examples=100, deadline=None)
@given(_records)
def test_a_record_with_an_email_or_a_name_and_phone_matches_itself(record: dict[str, str]) -> None:
    score, _ = score_records(record, dict(record))
    strong = email_key(record["email"]) is not None and not record["email"].startswith("info@")
    identified = strong or (name_key(record["first_name"]) and name_key(record["last_name"])
                            and phone_key(record["phone"]))
    if identified:
        assert score >= MatchingRules().match_at


@settings(max_examples=60, deadline=None)
@given(st.lists(_records, min_size=2, max_size=12), st.floats(min_value=5.0, max_value=15.0))
def test_every_merged_pair_scores_the_threshold_and_no_cluster_holds_a_conflict(
        records: list[dict[str, str]], match_at: float) -> None:
    rules = MatchingRules(match_at=match_at, review_at=4.0, cluster_floor=0.0, cluster_average=min(5.5, match_at))
    people = [{"id": str(k), **r} for k, r in enumerate(records)]
    result = match_people(people, rules)
    for members in result.clusters().values():
        for x in members:
            for y in members:
                if x < y:
                    _, reasons = score_records(people[int(x)], people[int(y)], rules)
                    assert "first_name -6.0" not in reasons
    # two records joined by one pair alone scored at least the threshold
    for pair in result.pairs():
        if pair.decision == "same" and len(result.clusters().get(result.labels[int(pair.left)], [])) == 2:
            assert pair.score >= match_at - 1e-9


def test_weights_are_configurable() -> None:
    heavy = MatchingRules(weights=MatchWeights(phone_exact=20.0))
    light, _ = score_records(_person(first_name="A", last_name="B", phone="+1 415 555 0100"),
                             _person(first_name="A", last_name="B", phone="4155550100"))
    strong, _ = score_records(_person(first_name="A", last_name="B", phone="+1 415 555 0100"),
                              _person(first_name="A", last_name="B", phone="4155550100"), heavy)
    assert strong == light + 16.0


def test_a_changed_last_name_on_the_same_address_is_still_the_person() -> None:
    score, reasons = score_records(
        _person(first_name="Maria", last_name="Lopez", email="maria.l.writes@gmail.com", phone="+1 415 555 0177"),
        _person(first_name="Maria", last_name="Henderson", email="Maria.L.Writes@gmail.com"),
    )
    assert score >= MatchingRules().match_at
    assert "last_name -3.0" in reasons  # half the conflict: a name change, not another person


def test_a_page_on_a_shared_site_is_no_organisation() -> None:
    left = _person(first_name="Xanthippe", last_name="Quaglierini", website="https://www.linkedin.com/in/xq")
    right = _person(first_name="Xanthippe", last_name="Quaglierini", website="linkedin.com/in/xquag")
    score, reasons = score_records(left, right)
    assert score < MatchingRules().match_at and "domain" not in reasons
    assert registered_domain("a.github.io") != registered_domain("b.github.io")  # private suffixes count


def test_any_value_reads_as_text_and_a_missing_id_is_its_row() -> None:
    result = match_people([{"id": "1", "first_name": 42, "phone": ["+1 415 555 0100"]}, {"first_name": None},
                           {"id": "1"}])
    assert result.ids == ["1", "row:2", "1"]
