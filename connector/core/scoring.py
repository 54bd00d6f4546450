"""Scoring: demographic (0-30) + firmographic (0-30) + behavioural (0-40) = 0-100.

Seed 002 "Lead Scoring": each component is capped at its maximum and the total is
put in a category (Hot 80+, Warm 60-79, Qualified 40-59, Early 20-39, Cold 0-19 by
default; the bands come from ``ScoringRules.categories``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import get_args

from connector.core._cache import DerivedCache
from connector.core.models import (
    HygieneResult,
    JobFunction,
    Person,
    ScoreItem,
    ScoreResult,
    Seniority,
    trusted,
)
from connector.core.rules import (
    BEHAVIOURAL_MAX,
    DEMOGRAPHIC_MAX,
    FIRMOGRAPHIC_MAX,
    Band,
    CountRule,
    ScoringRules,
)

_COUNTS = ("page_views", "email_clicks", "form_submissions", "content_downloads", "pricing_page_visits")
_MEMO_MAX = 8192
"""Items remembered per rules object for values (email domains, industries, counts...); beyond it, made anew."""
_MISSING = ScoreItem("demographic", "(not remembered)", 0)  # memo sentinel: "not looked up yet"


@dataclass(frozen=True, eq=False)
class _Tables:
    """One ``ScoringRules`` in the shape scoring reads it for every person.

    ``ScoreItem`` is immutable, so the items that only depend on the rules and one value
    (a seniority, a band, an email domain, a page-view count) are made once and shared by
    every person who earns them, instead of being made again per person.
    """

    seniority: dict[str, ScoreItem | None]
    function: dict[str, ScoreItem | None]
    completeness_fields: tuple[str, ...]
    completeness: tuple[ScoreItem | None, ...]
    business_mail: int
    free_mail: int
    employees: tuple[tuple[Band, ScoreItem | None], ...]
    annual_revenue: tuple[tuple[Band, ScoreItem | None], ...]
    industries: frozenset[str]
    industry_points: int
    countries: frozenset[str]
    country_points: int
    counts: tuple[tuple[str, CountRule], ...]
    webinar_attended: ScoreItem | None
    demo_requested: ScoreItem | None
    memo: dict[tuple[str, object], ScoreItem | None] = field(default_factory=dict)

    def item(self, key: tuple[str, object], build: Callable[[], ScoreItem | None]) -> ScoreItem | None:
        """The shared item for ``key``: remembered (while the memo has room), else built by ``build``."""
        found = self.memo.get(key, _MISSING)
        if found is not _MISSING:
            return found
        built = build()
        if len(self.memo) < _MEMO_MAX:
            self.memo[key] = built
        return built


def _item(component: str, rule: str, points: int, detail: str) -> ScoreItem | None:
    """An item, or ``None`` when the rule earns no points (such rules are not listed)."""
    return ScoreItem(component, rule, points, detail) if points else None  # type: ignore[arg-type]


def _build_tables(rules: ScoringRules) -> _Tables:
    demo, firmo, behaviour = rules.demographic, rules.firmographic, rules.behavioural
    levels: tuple[Seniority, ...] = get_args(Seniority)
    functions: tuple[JobFunction, ...] = get_args(JobFunction)
    fields = tuple(demo.completeness.fields)
    return _Tables(
        seniority={s: _item("demographic", "seniority", getattr(demo.seniority, s), s) for s in levels},
        function={f: _item("demographic", "function", getattr(demo.function, f), f) for f in functions},
        completeness_fields=fields,
        completeness=tuple(
            _item("demographic", "completeness", demo.completeness.points * filled // len(fields),
                  f"{filled}/{len(fields)} fields filled")
            for filled in range(len(fields) + 1)
        ),
        business_mail=demo.email.business,
        free_mail=demo.email.free_mail,
        employees=tuple((band, _item("firmographic", "employees", band.points,
                                     band.label or f">= {band.min:g} employees")) for band in firmo.employees),
        annual_revenue=tuple((band, _item("firmographic", "annual_revenue", band.points,
                                          band.label or f">= {band.min:g} revenue")) for band in firmo.annual_revenue),
        industries=frozenset(v.strip().lower() for v in firmo.industries.values) if firmo.industries else frozenset(),
        industry_points=firmo.industries.points if firmo.industries else 0,
        countries=frozenset(firmo.countries.values) if firmo.countries else frozenset(),
        country_points=firmo.countries.points if firmo.countries else 0,
        counts=tuple((name, getattr(behaviour, name)) for name in _COUNTS),
        webinar_attended=_item("behavioural", "webinar_attended", behaviour.webinar_attended, "attended a webinar"),
        demo_requested=_item("behavioural", "demo_requested", behaviour.demo_requested, "requested a demo"),
    )


_tables = DerivedCache(_build_tables)


def _filled(person: Person, fields: Sequence[str]) -> int:
    """How many of ``fields`` hold a value (a blank string is empty)."""
    filled = 0
    for name in fields:
        value = getattr(person, name, None)
        if value is not None and (not isinstance(value, str) or value.strip()):
            filled += 1
    return filled


def _band(value: float | None, bands: Sequence[tuple[Band, ScoreItem | None]]) -> ScoreItem | None:
    """The item of the first (highest) band ``value`` reaches, if that band earns points."""
    if value is not None:
        for band, item in bands:
            if value >= band.min:
                return item
    return None


def _demographic(cleaned: HygieneResult, tables: _Tables, items: list[ScoreItem]) -> int:
    """Add the demographic items that earn points to ``items``; return their points (uncapped)."""
    points = 0
    for item in (tables.seniority[cleaned.seniority], tables.function[cleaned.function],
                 tables.completeness[_filled(cleaned.person, tables.completeness_fields)]):
        if item is not None:
            items.append(item)
            points += item.points
    domain = cleaned.email_domain
    if domain is not None:
        if cleaned.free_mail:
            item = tables.item(("free_mail", domain), lambda: _item(
                "demographic", "email", tables.free_mail, f"free-mail domain {domain}"))
        else:
            item = tables.item(("business_mail", domain), lambda: _item(
                "demographic", "email", tables.business_mail, f"business domain {domain}"))
        if item is not None:
            items.append(item)
            points += item.points
    return points


def _firmographic(person: Person, tables: _Tables, items: list[ScoreItem]) -> int:
    """Add the firmographic items that earn points to ``items``; return their points (uncapped)."""
    points = 0
    for value, bands in ((person.employees, tables.employees), (person.annual_revenue, tables.annual_revenue)):
        if value is not None and bands:
            item = _band(value, bands)
            if item is not None:
                items.append(item)
                points += item.points
    industry = person.industry
    if tables.industry_points and industry and industry.strip().lower() in tables.industries:
        item = tables.item(("industry", industry),
                           lambda: _item("firmographic", "industry", tables.industry_points, industry))
        if item is not None:
            items.append(item)
            points += item.points
    country = person.country
    if tables.country_points and country and country in tables.countries:
        item = tables.item(("country", country),
                           lambda: _item("firmographic", "country", tables.country_points, country))
        if item is not None:
            items.append(item)
            points += item.points
    return points


def _count_item(name: str, count: int, rule: CountRule) -> ScoreItem | None:
    return _item("behavioural", name, min(count * rule.points_each, rule.max_points),
                 f"{count} x {rule.points_each}, max {rule.max_points}")


def _behavioural(person: Person, tables: _Tables, items: list[ScoreItem]) -> int:
    """Add the behavioural items that earn points to ``items``; return their points (uncapped)."""
    points = 0
    for name, rule in tables.counts:
        count = getattr(person, name)
        if count and count > 0 and rule.points_each:
            item = tables.item((name, count), partial(_count_item, name, count, rule))
            if item is not None:
                items.append(item)
                points += item.points
    for flag, item in ((person.webinar_attended, tables.webinar_attended),
                       (person.demo_requested, tables.demo_requested)):
        if flag and item is not None:
            items.append(item)
            points += item.points
    return points


_SCORE_FIELDS = frozenset({"demographic", "firmographic", "behavioural", "total", "category", "items"})


def score_person(cleaned: HygieneResult, rules: ScoringRules) -> ScoreResult:
    """Score a cleaned person.

    Args:
        cleaned: The hygiene result (normalised person, seniority, function, free mail).
        rules: The scoring model.

    Returns:
        Components capped at 30/30/40, the total, its category and every rule that
        contributed points (uncapped, so the breakdown explains the cap).
    """
    tables = _tables(rules)
    person = cleaned.person
    items: list[ScoreItem] = []
    demographic = min(_demographic(cleaned, tables, items), DEMOGRAPHIC_MAX)
    firmographic = min(_firmographic(person, tables, items), FIRMOGRAPHIC_MAX)
    behavioural = min(_behavioural(person, tables, items), BEHAVIOURAL_MAX)
    total = demographic + firmographic + behavioural
    # Every value is checked by construction: item points are validated non-negative
    # ints, each component is capped, the category comes from the validated rules.
    return trusted(ScoreResult, {
        "demographic": demographic, "firmographic": firmographic, "behavioural": behavioural,
        "total": total, "category": rules.category_for(total), "items": tuple(items),
    }, _SCORE_FIELDS)
