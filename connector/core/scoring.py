"""Scoring: demographic (0-30) + firmographic (0-30) + behavioural (0-40) = 0-100.

Seed 002 "Lead Scoring": each component is capped at its maximum and the total is
put in a category (Hot 80+, Warm 60-79, Qualified 40-59, Early 20-39, Cold 0-19 by
default; the bands come from ``ScoringRules.categories``).
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.core.models import HygieneResult, Person, ScoreComponent, ScoreItem, ScoreResult
from connector.core.rules import (
    BEHAVIOURAL_MAX,
    DEMOGRAPHIC_MAX,
    FIRMOGRAPHIC_MAX,
    Band,
    BehaviouralRules,
    DemographicRules,
    FirmographicRules,
    ScoringRules,
)


def _filled(person: Person, field: str) -> bool:
    value = getattr(person, field, None)
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _band(value: float | None, bands: Sequence[Band]) -> Band | None:
    if value is None:
        return None
    return next((b for b in bands if value >= b.min), None)


def _demographic(cleaned: HygieneResult, rules: DemographicRules) -> list[ScoreItem]:
    items: list[ScoreItem] = []

    def add(rule: str, points: int, detail: str) -> None:
        if points:
            items.append(ScoreItem(component="demographic", rule=rule, points=points, detail=detail))

    add("seniority", getattr(rules.seniority, cleaned.seniority), cleaned.seniority)
    add("function", getattr(rules.function, cleaned.function), cleaned.function)
    fields = rules.completeness.fields
    filled = sum(_filled(cleaned.person, f) for f in fields)
    add("completeness", rules.completeness.points * filled // len(fields),
        f"{filled}/{len(fields)} fields filled")
    if cleaned.email_domain is not None:
        if cleaned.free_mail:
            add("email", rules.email.free_mail, f"free-mail domain {cleaned.email_domain}")
        else:
            add("email", rules.email.business, f"business domain {cleaned.email_domain}")
    return items


def _firmographic(person: Person, rules: FirmographicRules) -> list[ScoreItem]:
    items: list[ScoreItem] = []

    def add(rule: str, points: int, detail: str) -> None:
        if points:
            items.append(ScoreItem(component="firmographic", rule=rule, points=points, detail=detail))

    band = _band(person.employees, rules.employees)
    if band is not None:
        add("employees", band.points, band.label or f">= {band.min:g} employees")
    band = _band(person.annual_revenue, rules.annual_revenue)
    if band is not None:
        add("annual_revenue", band.points, band.label or f">= {band.min:g} revenue")
    if rules.industries and person.industry:
        wanted = {v.strip().lower() for v in rules.industries.values}
        if person.industry.strip().lower() in wanted:
            add("industry", rules.industries.points, person.industry)
    if rules.countries and person.country and person.country in rules.countries.values:
        add("country", rules.countries.points, person.country)
    return items


def _behavioural(person: Person, rules: BehaviouralRules) -> list[ScoreItem]:
    items: list[ScoreItem] = []
    for name in ("page_views", "email_clicks", "form_submissions", "content_downloads",
                 "pricing_page_visits"):
        count = getattr(person, name) or 0
        rule = getattr(rules, name)
        points = min(max(count, 0) * rule.points_each, rule.max_points)
        if points:
            items.append(ScoreItem(component="behavioural", rule=name, points=points,
                                   detail=f"{count} x {rule.points_each}, max {rule.max_points}"))
    if person.webinar_attended and rules.webinar_attended:
        items.append(ScoreItem(component="behavioural", rule="webinar_attended",
                               points=rules.webinar_attended, detail="attended a webinar"))
    if person.demo_requested and rules.demo_requested:
        items.append(ScoreItem(component="behavioural", rule="demo_requested",
                               points=rules.demo_requested, detail="requested a demo"))
    return items


def _capped(items: Sequence[ScoreItem], component: ScoreComponent, cap: int) -> int:
    return min(sum(i.points for i in items if i.component == component), cap)


def score_person(cleaned: HygieneResult, rules: ScoringRules) -> ScoreResult:
    """Score a cleaned person.

    Args:
        cleaned: The hygiene result (normalised person, seniority, function, free mail).
        rules: The scoring model.

    Returns:
        Components capped at 30/30/40, the total, its category and every rule that
        contributed points (uncapped, so the breakdown explains the cap).
    """
    person = cleaned.person
    items = [
        *_demographic(cleaned, rules.demographic),
        *_firmographic(person, rules.firmographic),
        *_behavioural(person, rules.behavioural),
    ]
    demographic = _capped(items, "demographic", DEMOGRAPHIC_MAX)
    firmographic = _capped(items, "firmographic", FIRMOGRAPHIC_MAX)
    behavioural = _capped(items, "behavioural", BEHAVIOURAL_MAX)
    total = demographic + firmographic + behavioural
    return ScoreResult(
        demographic=demographic,
        firmographic=firmographic,
        behavioural=behavioural,
        total=total,
        category=rules.category_for(total),
        items=tuple(items),
    )
