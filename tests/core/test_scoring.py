"""Scoring: the seed's components, caps and category bands."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.hygiene import clean_person
from connector.core.models import Person
from connector.core.rules import Rules
from connector.core.scoring import score_person

from .helpers import lead, ref


@pytest.mark.parametrize(
    ("total", "category"),
    [(0, "Cold"), (19, "Cold"), (20, "Early"), (39, "Early"), (40, "Qualified"),
     (59, "Qualified"), (60, "Warm"), (79, "Warm"), (80, "Hot"), (100, "Hot")],
)
def test_category_band_edges_from_seed_002(rules: Rules, total: int, category: str) -> None:
    assert rules.scoring.category_for(total) == category


def test_category_outside_range_is_an_error(rules: Rules) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        rules.scoring.category_for(101)


def test_ideal_lead_is_hot_with_full_breakdown(rules: Rules) -> None:
    person = lead(title="VP of Sales", employees=5000, annual_revenue=5e8, industry="Software",
                  country="US", demo_requested=True, pricing_page_visits=2, page_views=12,
                  form_submissions=1, email_clicks=1)
    result = score_person(clean_person(person), rules.scoring)
    # demographic: vp 10 + sales 6 + completeness 6 (5/5) + business email 6 = 28
    assert result.demographic == 28
    # firmographic: 1000+ employees 10 + $100M+ 8 + industry 7 + target country 5 = 30
    assert result.firmographic == 30
    # behavioural: demo 15 + pricing 2x4=8 + page views min(12,5)=5 + form 4 + click 2 = 34
    assert result.behavioural == 34
    assert (result.total, result.category) == (92, "Hot")
    rules_hit = {(i.component, i.rule): i.points for i in result.items}
    assert rules_hit[("behavioural", "demo_requested")] == 15
    assert rules_hit[("firmographic", "employees")] == 10


def test_components_are_capped(rules: Rules) -> None:
    person = lead(title="CEO", employees=10**6, annual_revenue=1e12, industry="Software",
                  page_views=1000, email_clicks=1000, form_submissions=1000, content_downloads=1000,
                  pricing_page_visits=1000, webinar_attended=True, demo_requested=True)
    result = score_person(clean_person(person), rules.scoring)
    assert result.behavioural == 40  # 53 possible, capped at the seed's 40
    assert sum(i.points for i in result.items if i.component == "behavioural") > 40
    assert result.total <= 100


def test_free_mail_and_empty_record_score_low(rules: Rules) -> None:
    person = Person(kind="lead", ref=ref(5), email="someone@gmail.com")
    result = score_person(clean_person(person), rules.scoring)
    # only completeness: 1 of 5 fields -> 6 * 1 // 5 = 1
    assert (result.demographic, result.firmographic, result.behavioural) == (1, 0, 0)
    assert result.category == "Cold"


@pytest.mark.parametrize(
    ("employees", "points"), [(9, 0), (10, 2), (49, 2), (50, 5), (199, 5), (200, 8), (999, 8),
                              (1000, 10)],
)
def test_employee_band_edges(rules: Rules, employees: int, points: int) -> None:
    person = lead(employees=employees, country=None)
    result = score_person(clean_person(person), rules.scoring)
    assert result.firmographic == points


counts = st.one_of(st.none(), st.integers(min_value=-5, max_value=10_000))


@settings(max_examples=200, deadline=None)
@given(
    title=st.one_of(st.none(), st.sampled_from(["CEO", "VP Sales", "Director IT", "Engineer", "x"])),
    email=st.one_of(st.none(), st.sampled_from(["a@gmail.com", "b@acme.example", "bad"])),
    employees=st.one_of(st.none(), st.integers(min_value=-10, max_value=10**7)),
    revenue=st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e13, allow_nan=False)),
    industry=st.one_of(st.none(), st.sampled_from(["Software", "Mining", "banking"])),
    country=st.one_of(st.none(), st.sampled_from(["US", "Germany", "Brazil", "??"])),
    page_views=counts, email_clicks=counts, form_submissions=counts,
    content_downloads=counts, pricing_page_visits=counts,
    webinar=st.one_of(st.none(), st.booleans()), demo=st.one_of(st.none(), st.booleans()),
)
def test_score_always_within_bounds(
    rules: Rules, title: str | None, email: str | None, employees: int | None,
    revenue: float | None, industry: str | None, country: str | None, page_views: int | None,
    email_clicks: int | None, form_submissions: int | None, content_downloads: int | None,
    pricing_page_visits: int | None, webinar: bool | None, demo: bool | None,
) -> None:
    person = Person(kind="lead", ref=ref(1), title=title, email=email, employees=employees,
                    annual_revenue=revenue, industry=industry, country=country,
                    page_views=page_views, email_clicks=email_clicks,
                    form_submissions=form_submissions, content_downloads=content_downloads,
                    pricing_page_visits=pricing_page_visits, webinar_attended=webinar,
                    demo_requested=demo)
    result = score_person(clean_person(person), rules.scoring)
    assert 0 <= result.demographic <= 30
    assert 0 <= result.firmographic <= 30
    assert 0 <= result.behavioural <= 40
    assert result.total == result.demographic + result.firmographic + result.behavioural
    assert 0 <= result.total <= 100
    assert result.category == rules.scoring.category_for(result.total)


ORDER = ["Cold", "Early", "Qualified", "Warm", "Hot"]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_category_is_monotone_in_total(rules: Rules, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert ORDER.index(rules.scoring.category_for(low)) <= ORDER.index(
        rules.scoring.category_for(high))
