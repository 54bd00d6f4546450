"""The rules schema: scoring, routing and SLA policy as pydantic models.

These models validate ``config/rules/scoring.yaml``, ``routing.yaml`` and ``sla.yaml``
(``ScoringRules.model_validate(data)`` etc.). Unknown keys are rejected everywhere
(``extra="forbid"``), and cross-field checks raise a ``ValidationError`` whose ``loc``
points at the offending key (e.g. ``rules.2.group``) so the loader can report
file + key path + value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.core._cache import DerivedCache
from connector.core.governance.rules import (
    ApprovalRules,
    ConsentRules,
    DispositionRules,
    HandoffRules,
    RetentionRules,
    StageRules,
    cross_problems,
)

DEMOGRAPHIC_MAX = 30
FIRMOGRAPHIC_MAX = 30
BEHAVIOURAL_MAX = 40
SCORE_MAX = DEMOGRAPHIC_MAX + FIRMOGRAPHIC_MAX + BEHAVIOURAL_MAX

GLOBAL_REGION = "global"
PersonFieldName = Literal[
    "first_name", "last_name", "email", "phone", "title", "company", "website",
    "industry", "employees", "annual_revenue", "country", "state", "city", "lead_source",
]
TaskPriority = Literal["High", "Normal", "Low"]

_EMAIL_RE = re.compile(r"^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_DOMAIN_RE = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")

Loc = tuple[str | int, ...]


class _Problems:
    """Collects cross-field problems and raises them as one ValidationError."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.errors: list[InitErrorDetails] = []

    def add(self, loc: Loc, code: str, message: str, value: Any) -> None:
        # No context is passed, so pydantic-core keeps braces in user values as typed.
        self.errors.append(
            InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=value)
        )

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError.from_exception_data(self.title, self.errors)


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _check_country(problems: _Problems, loc: Loc, code: str) -> None:
    if not re.fullmatch(r"[A-Z]{2}", code) or pycountry.countries.get(alpha_2=code) is None:
        problems.add(loc, "unknown_country", f"'{code}' is not an ISO 3166 alpha-2 country code", code)


# --------------------------------------------------------------------------- scoring


class Band(_Schema):
    """A numeric band: a value >= ``min`` earns ``points`` (the highest band wins)."""

    min: float = Field(ge=0)
    points: int = Field(ge=0)
    label: str | None = None


class SeniorityPoints(_Schema):
    """Points per seniority derived from the job title."""

    c_level: int = Field(default=0, ge=0)
    vp: int = Field(default=0, ge=0)
    director: int = Field(default=0, ge=0)
    manager: int = Field(default=0, ge=0)
    individual: int = Field(default=0, ge=0)
    unknown: int = Field(default=0, ge=0)


class FunctionPoints(_Schema):
    """Points per job function derived from the job title."""

    sales: int = Field(default=0, ge=0)
    marketing: int = Field(default=0, ge=0)
    engineering: int = Field(default=0, ge=0)
    it: int = Field(default=0, ge=0)
    finance: int = Field(default=0, ge=0)
    operations: int = Field(default=0, ge=0)
    hr: int = Field(default=0, ge=0)
    executive: int = Field(default=0, ge=0)
    other: int = Field(default=0, ge=0)


class CompletenessRule(_Schema):
    """Points for filled-in fields: ``points`` x (filled / listed), rounded down."""

    fields: list[PersonFieldName] = Field(min_length=1)
    points: int = Field(ge=0)


class EmailRule(_Schema):
    """Points for a business email versus a free-mail address (gmail, yahoo...)."""

    business: int = Field(ge=0)
    free_mail: int = Field(default=0, ge=0)


class DemographicRules(_Schema):
    """Who the person is (0-30)."""

    seniority: SeniorityPoints
    function: FunctionPoints
    completeness: CompletenessRule
    email: EmailRule


class ListRule(_Schema):
    """``points`` when the value is one of ``values`` (case-insensitive)."""

    points: int = Field(ge=0)
    values: list[str] = Field(min_length=1)


class FirmographicRules(_Schema):
    """What the company is (0-30)."""

    employees: list[Band] = Field(default_factory=list)
    annual_revenue: list[Band] = Field(default_factory=list)
    industries: ListRule | None = None
    countries: ListRule | None = None

    @model_validator(mode="after")
    def _check(self) -> FirmographicRules:
        problems = _Problems("FirmographicRules")
        for name, bands in (("employees", self.employees), ("annual_revenue", self.annual_revenue)):
            for i in range(1, len(bands)):
                if bands[i].min >= bands[i - 1].min:
                    problems.add(
                        (name, i, "min"),
                        "band_order",
                        f"{name}[{i}].min {bands[i].min:g} must be lower than "
                        f"{name}[{i - 1}].min {bands[i - 1].min:g}: list bands from the highest down",
                        bands[i].min,
                    )
        if self.countries is not None:
            for i, code in enumerate(self.countries.values):
                _check_country(problems, ("countries", "values", i), code)
        problems.raise_if_any()
        return self


class CountRule(_Schema):
    """``points_each`` per occurrence, at most ``max_points``."""

    points_each: int = Field(ge=0)
    max_points: int = Field(ge=0)


class BehaviouralRules(_Schema):
    """What the person did (0-40)."""

    page_views: CountRule
    email_clicks: CountRule
    form_submissions: CountRule
    content_downloads: CountRule
    pricing_page_visits: CountRule
    webinar_attended: int = Field(ge=0)
    demo_requested: int = Field(ge=0)


class Category(_Schema):
    """A score category such as ``Hot`` covering totals ``min``..``max`` inclusive."""

    name: str = Field(min_length=1)
    min: int = Field(ge=0, le=SCORE_MAX)
    max: int = Field(ge=0, le=SCORE_MAX)


class ScoringRules(_Schema):
    """The lead scoring model (``config/rules/scoring.yaml``)."""

    demographic: DemographicRules
    firmographic: FirmographicRules
    behavioural: BehaviouralRules
    categories: list[Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_categories(self) -> ScoringRules:
        problems = _Problems("ScoringRules")
        seen: dict[str, int] = {}
        for i, cat in enumerate(self.categories):
            if cat.name in seen:
                problems.add(("categories", i, "name"), "duplicate",
                             f"category '{cat.name}' is already defined at categories[{seen[cat.name]}]",
                             cat.name)
            seen.setdefault(cat.name, i)
            if cat.min > cat.max:
                problems.add(("categories", i, "min"), "band_inverted",
                             f"category '{cat.name}' has min {cat.min} above max {cat.max}", cat.min)
        order = sorted(range(len(self.categories)), key=lambda i: self.categories[i].min)
        expected = 0
        previous: Category | None = None
        for i in order:
            cat = self.categories[i]
            if cat.min > expected:
                problems.add(("categories", i, "min"), "band_gap",
                             f"category '{cat.name}' starts at {cat.min}: totals {expected}.."
                             f"{cat.min - 1} have no category", cat.min)
            elif cat.min < expected and previous is not None:
                problems.add(("categories", i, "min"), "band_overlap",
                             f"category '{cat.name}' ({cat.min}..{cat.max}) overlaps category "
                             f"'{previous.name}' ({previous.min}..{previous.max})", cat.min)
            if cat.max + 1 > expected:
                expected, previous = cat.max + 1, cat
        if expected <= SCORE_MAX:
            problems.add(("categories",), "band_gap",
                         f"totals {expected}..{SCORE_MAX} have no category", expected)
        problems.raise_if_any()
        return self

    def category_for(self, total: int) -> str:
        """Return the category name for a total score.

        Raises:
            ValueError: if ``total`` is outside 0..100 (validated rules cover all of it).
        """
        name = _category_table(self)[total] if 0 <= total <= SCORE_MAX else None
        if name is None:
            raise ValueError(f"score {total} is outside 0..{SCORE_MAX}")
        return name


def _build_category_table(scoring: ScoringRules) -> tuple[str | None, ...]:
    """Category name per total 0..100 (the first category listed that covers it)."""
    return tuple(
        next((cat.name for cat in scoring.categories if cat.min <= total <= cat.max), None)
        for total in range(SCORE_MAX + 1)
    )


_category_table = DerivedCache(_build_category_table)


# --------------------------------------------------------------------------- routing


class TeamMember(_Schema):
    """One person in the sales team roster."""

    email: str
    name: str = Field(min_length=1)
    role: str = Field(min_length=1)
    region: str = Field(min_length=1)
    active: bool = True
    weight: int = Field(default=1, gt=0)
    manager: str | None = None


class GroupFallback(_Schema):
    """What to do when a group has no active member in the lead's region.

    kinds:
        ``all_regions``: round robin over the group's active members in every region.
        ``role_in_region``: the active member(s) with ``role`` in the lead's region.
        ``role``: the active member(s) with ``role`` in any region.
        ``owner``: the member ``email`` if active.
    """

    kind: Literal["all_regions", "role_in_region", "role", "owner"]
    role: str | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _check(self) -> GroupFallback:
        problems = _Problems("GroupFallback")
        if self.kind in ("role_in_region", "role") and not self.role:
            problems.add(("role",), "missing", f"fallback kind '{self.kind}' needs a role", None)
        if self.kind == "owner" and not self.email:
            problems.add(("email",), "missing", "fallback kind 'owner' needs an email", None)
        problems.raise_if_any()
        return self

    @property
    def label(self) -> str:
        """Short name used in routing reasons."""
        if self.kind == "owner":
            return f"owner {self.email}"
        if self.kind == "all_regions":
            return "all regions"
        where = " in region" if self.kind == "role_in_region" else ""
        return f"{self.role}{where}"


class RoundRobinGroup(_Schema):
    """A round-robin group: members of ``role``, per region when ``by_region``."""

    role: str = Field(min_length=1)
    label: str = Field(min_length=1)
    by_region: bool = True
    fallback: list[GroupFallback] = Field(default_factory=list)


class RoutingRule(_Schema):
    """One ordered routing rule; the first that applies decides.

    actions:
        ``named_account_owner``: the lead's email domain is a named account.
        ``matched_account_owner``: the lead matched an account with an active owner.
        ``round_robin``: assign in ``group`` (requires ``group``).
        ``nurture``: no sales owner.
    ``tier`` names the SLA tier; when omitted, the SLA tier is chosen by score.
    """

    name: str = Field(min_length=1)
    action: Literal["named_account_owner", "matched_account_owner", "round_robin", "nurture"]
    min_score: int = Field(default=0, ge=0, le=SCORE_MAX)
    group: str | None = None
    tier: str | None = None


class RoutingRules(_Schema):
    """Team roster, territories, named accounts and the ordered rule list.

    ``reroute_owned_contacts``: when false (the default) a CRM contact that already
    has an owner keeps it; Relay routes leads and unowned contacts only.
    ``reroute_rep_owned_leads``: when false (the default) a lead the CRM already gives
    to an active member of the team keeps that owner; leads owned by anybody else (a
    queue or integration user) are routed.
    """

    team: list[TeamMember] = Field(min_length=1)
    regions: dict[str, list[str]] = Field(min_length=1)
    default_region: str
    named_accounts: dict[str, str] = Field(default_factory=dict)
    groups: dict[str, RoundRobinGroup] = Field(default_factory=dict)
    rules: list[RoutingRule] = Field(min_length=1)
    escalation_default: list[str] = Field(default_factory=list)
    reroute_owned_contacts: bool = False
    reroute_rep_owned_leads: bool = False

    @model_validator(mode="after")
    def _check(self) -> RoutingRules:
        problems = _Problems("RoutingRules")
        emails = self._check_team(problems)
        self._check_regions(problems)
        for domain, owner in self.named_accounts.items():
            if not _DOMAIN_RE.fullmatch(domain):
                problems.add(("named_accounts", domain), "invalid_domain",
                             f"'{domain}' is not a lower-case domain like acme.example", domain)
            if owner not in emails:
                problems.add(("named_accounts", domain), "unknown_owner",
                             f"'{owner}' is not in the team roster", owner)
        roles = {m.role for m in self.team}
        for key, group in self.groups.items():
            if group.role not in roles:
                problems.add(("groups", key, "role"), "unknown_role",
                             f"no team member has role '{group.role}' (known: {_known(roles)})",
                             group.role)
            for i, step in enumerate(group.fallback):
                if step.role is not None and step.role not in roles:
                    problems.add(("groups", key, "fallback", i, "role"), "unknown_role",
                                 f"no team member has role '{step.role}' (known: {_known(roles)})",
                                 step.role)
                if step.email is not None and step.email not in emails:
                    problems.add(("groups", key, "fallback", i, "email"), "unknown_owner",
                                 f"'{step.email}' is not in the team roster", step.email)
        self._check_rules(problems)
        for i, email in enumerate(self.escalation_default):
            if email not in emails:
                problems.add(("escalation_default", i), "unknown_owner",
                             f"'{email}' is not in the team roster", email)
        problems.raise_if_any()
        return self

    def _check_team(self, problems: _Problems) -> set[str]:
        emails: dict[str, int] = {}
        for i, member in enumerate(self.team):
            if not _EMAIL_RE.fullmatch(member.email):
                problems.add(("team", i, "email"), "invalid_email",
                             f"'{member.email}' is not a lower-case email address", member.email)
            if member.email in emails:
                problems.add(("team", i, "email"), "duplicate",
                             f"'{member.email}' is already listed at team[{emails[member.email]}]",
                             member.email)
            emails.setdefault(member.email, i)
            if member.region != GLOBAL_REGION and member.region not in self.regions:
                problems.add(("team", i, "region"), "unknown_region",
                             f"region '{member.region}' is not defined under regions "
                             f"(known: {_known([*self.regions, GLOBAL_REGION])})", member.region)
        for i, member in enumerate(self.team):
            if member.manager is None:
                continue
            if member.manager not in emails:
                problems.add(("team", i, "manager"), "unknown_manager",
                             f"manager '{member.manager}' is not in the team roster", member.manager)
            elif member.manager == member.email:
                problems.add(("team", i, "manager"), "manager_cycle",
                             f"'{member.email}' cannot be their own manager", member.manager)
        self._check_manager_loops(problems, emails)
        return set(emails)

    def _check_manager_loops(self, problems: _Problems, emails: dict[str, int]) -> None:
        """One problem per manager loop (a -> b -> a), at the loop's first member in the roster.

        Members whose chain only runs into a loop are not reported again: fixing the loop fixes them.
        A member who is their own manager is reported by the caller already.
        """
        by_email = {m.email: m for m in self.team}
        reported: set[frozenset[str]] = set()
        for member in self.team:
            chain: list[str] = [member.email]
            current = member.manager
            while current is not None and current in by_email and current not in chain:
                chain.append(current)
                current = by_email[current].manager
            if current is None or current not in chain:
                continue
            loop = chain[chain.index(current):]
            if len(loop) < 2 or frozenset(loop) in reported:
                continue
            reported.add(frozenset(loop))
            first = min(loop, key=lambda email: emails.get(email, len(self.team)))
            start = loop.index(first)
            path = " -> ".join([*loop[start:], *loop[:start], first])
            index = emails.get(first, 0)
            problems.add(("team", index, "manager"), "manager_cycle",
                         f"manager loop: {path}", by_email[first].manager)

    def _check_regions(self, problems: _Problems) -> None:
        owner_region: dict[str, str] = {}
        for region, countries in self.regions.items():
            if region == GLOBAL_REGION:
                problems.add(("regions", region), "reserved",
                             f"'{GLOBAL_REGION}' is reserved for members who cover every region",
                             region)
            for j, code in enumerate(countries):
                _check_country(problems, ("regions", region, j), code)
                if code in owner_region and owner_region[code] != region:
                    problems.add(("regions", region, j), "duplicate",
                                 f"country '{code}' is already in region '{owner_region[code]}'",
                                 code)
                owner_region.setdefault(code, region)
        if self.default_region not in self.regions:
            problems.add(("default_region",), "unknown_region",
                         f"region '{self.default_region}' is not defined under regions "
                         f"(known: {_known(self.regions)})", self.default_region)

    def _check_rules(self, problems: _Problems) -> None:
        names: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.name in names:
                problems.add(("rules", i, "name"), "duplicate",
                             f"rule '{rule.name}' is already defined at rules[{names[rule.name]}]",
                             rule.name)
            names.setdefault(rule.name, i)
            if rule.action == "round_robin":
                if rule.group is None:
                    problems.add(("rules", i, "group"), "missing",
                                 f"rule '{rule.name}' assigns by round robin but names no group "
                                 f"(known: {_known(self.groups)})", None)
                elif rule.group not in self.groups:
                    problems.add(("rules", i, "group"), "unknown_group",
                                 f"'{rule.group}' is not a group defined under groups "
                                 f"(known: {_known(self.groups)})", rule.group)
            elif rule.group is not None:
                problems.add(("rules", i, "group"), "unexpected",
                             f"rule '{rule.name}' has action '{rule.action}', which uses no group",
                             rule.group)
        last = self.rules[-1]
        if last.min_score != 0 or last.action in ("named_account_owner", "matched_account_owner"):
            problems.add(("rules", len(self.rules) - 1), "no_catch_all",
                         "the last rule must apply to every lead (min_score 0, action "
                         "round_robin or nurture) so no lead is left undecided", last.name)

    # ---- lookups used by routing (tables built once per rules object, see _RosterTables)

    def member(self, email: str) -> TeamMember | None:
        """Return the roster entry for ``email`` (case-insensitive), if any."""
        return _roster_tables(self).by_email.get(email.strip().lower())

    def members_with_role(self, role: str) -> tuple[TeamMember, ...]:
        """Return the roster entries with ``role``, in roster order (active or not)."""
        return _roster_tables(self).by_role.get(role, ())

    def named_account_domain(self, domain: str | None) -> str | None:
        """Return the named account ``domain`` belongs to: itself or its nearest parent listed.

        ``emea.umbrella-corp.example`` -> ``umbrella-corp.example`` when that is a named
        account; ``None`` when neither the domain nor a parent of it is one.
        """
        if not domain:
            return None
        named = _roster_tables(self).named
        if domain in named:
            return named[domain]
        labels = domain.split(".")
        found = next((d for d in (".".join(labels[i:]) for i in range(len(labels) - 1))
                      if d in self.named_accounts), None)
        if len(named) < _NAMED_MEMO_MAX:
            named[domain] = found
        return found

    def region_for(self, country: str | None) -> str:
        """Return the region of an ISO alpha-2 country, or ``default_region``."""
        if country:
            region = _roster_tables(self).region_by_country.get(country.strip().upper())
            if region is not None:
                return region
        return self.default_region

    def escalation_chain(self, email: str) -> tuple[str, ...]:
        """Return the manager chain above ``email`` (e.g. rep -> manager -> director).

        Owners outside the roster escalate to ``escalation_default``.
        """
        chains = _roster_tables(self).chains
        chain = chains.get(email)
        if chain is None:
            chain = chains[email] = self._escalation_chain(email)
        return chain

    def _escalation_chain(self, email: str) -> tuple[str, ...]:
        member = self.member(email)
        if member is None:
            return tuple(e for e in self.escalation_default if e != email)
        chain: list[str] = []
        current = member.manager
        while current is not None and current not in chain:
            chain.append(current)
            nxt = self.member(current)
            current = nxt.manager if nxt else None
        return tuple(chain)


@dataclass(frozen=True)
class _RosterTables:
    """Lookups over one ``RoutingRules``: routing asks them for every lead.

    Attributes:
        by_email: Roster entry by (lower-case) email; the first listed wins.
        by_role: Roster entries by role, in roster order.
        region_by_country: Region by ISO country code; the first region listed wins.
        chains: Escalation chains computed so far, by owner email (filled on demand).
        named: Named account (or ``None``) per email/website domain looked up so far.
    """

    by_email: dict[str, TeamMember]
    by_role: dict[str, tuple[TeamMember, ...]]
    region_by_country: dict[str, str]
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    named: dict[str, str | None] = field(default_factory=dict)


_NAMED_MEMO_MAX = 1 << 16
"""Domains whose named account is remembered per rules object (beyond it, looked up each time)."""


def _build_roster_tables(routing: RoutingRules) -> _RosterTables:
    by_email: dict[str, TeamMember] = {}
    by_role: dict[str, list[TeamMember]] = {}
    for member in routing.team:
        by_email.setdefault(member.email, member)
        by_role.setdefault(member.role, []).append(member)
    region_by_country: dict[str, str] = {}
    for region, countries in routing.regions.items():
        for code in countries:
            region_by_country.setdefault(code, region)
    return _RosterTables(by_email, {role: tuple(ms) for role, ms in by_role.items()}, region_by_country)


_roster_tables = DerivedCache(_build_roster_tables)


# --------------------------------------------------------------------------- SLA


class SlaTier(_Schema):
    """Response-time SLA for one tier."""

    name: str = Field(min_length=1)
    min_score: int = Field(ge=0, le=SCORE_MAX)
    response_minutes: int = Field(gt=0)
    reminder_percent: int = Field(default=50, gt=0, le=100)
    escalation_percent: int = Field(default=100, gt=0, le=1000)
    task_priority: TaskPriority = "Normal"
    director_after_minutes: int | None = Field(default=None, gt=0)
    """How long after the escalation to the manager an untouched lead goes to the next level
    (the manager's manager); ``None``: the tier's ``response_minutes`` again."""

    @property
    def further_minutes(self) -> int:
        """Minutes from the manager's escalation to the director's (``director_after_minutes`` or the SLA again)."""
        return self.director_after_minutes if self.director_after_minutes is not None else self.response_minutes

    @model_validator(mode="after")
    def _check(self) -> SlaTier:
        problems = _Problems("SlaTier")
        if self.reminder_percent >= self.escalation_percent:
            problems.add(("reminder_percent",), "reminder_after_escalation",
                         f"reminder at {self.reminder_percent}% must come before escalation at "
                         f"{self.escalation_percent}%", self.reminder_percent)
        problems.raise_if_any()
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PersonKind = Literal["lead", "contact"]
_LEAD_ONLY: tuple[PersonKind, ...] = ("lead",)
_CLOCK_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class SlaStatuses(_Schema):
    """Which CRM lead statuses (the mapped canonical ``status``) mean what for the clocks.

    ``new``: not touched yet (a blank status counts as new). ``contacted``: touched, not yet
    further (the aging stage "Contacted"). Any other status stops the clock for good.
    Compared case-insensitively, so one list covers Salesforce picklist labels and HubSpot
    ``hs_lead_status`` values.
    """

    new: list[str] = Field(min_length=1)
    contacted: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SlaStatuses:
        problems = _Problems("SlaStatuses")
        seen = {value.strip().lower(): i for i, value in enumerate(self.new)}
        for i, value in enumerate(self.contacted):
            if value.strip().lower() in seen:
                problems.add(("contacted", i), "duplicate",
                             f"status '{value}' is already listed under new[{seen[value.strip().lower()]}]", value)
        problems.raise_if_any()
        return self


class SlaAging(_Schema):
    """Aging re-queue (seed 001 item 40): what happens to a lead that stays in a stage too long.

    ``new_minutes``: still New this long after the assignment -> reassigned to the next
    available rep of the same round-robin group (never a previous owner of the person).
    ``contacted_minutes``: still Contacted this long after the first touch -> back to nurture.
    ``requeue_group``: the group of leads assigned without one (a named account, a rep by hand).
    ``nurture_owner``: who owns a lead returned to nurture (a queue user); ``None`` clears the owner.
    ``None`` for a time switches that step off.
    """

    new_minutes: int | None = Field(default=2880, gt=0)
    contacted_minutes: int | None = Field(default=4320, gt=0)
    requeue_group: str | None = None
    nurture_owner: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SlaAging:
        problems = _Problems("SlaAging")
        if self.nurture_owner is not None and not _EMAIL_RE.fullmatch(self.nurture_owner):
            problems.add(("nurture_owner",), "invalid_email",
                         f"'{self.nurture_owner}' is not a lower-case email address", self.nurture_owner)
        problems.raise_if_any()
        return self


class WorkCalendar(_Schema):
    """One team's working time: time zone, working days, hours and public holidays.

    ``country`` (ISO alpha-2, optionally ``subdivision``) names the public holidays (the
    ``holidays`` package); ``extra_holidays`` adds company days off.
    """

    timezone: str = Field(min_length=1)
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    start: str = "09:00"
    end: str = "17:00"
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> WorkCalendar:
        problems = _Problems("WorkCalendar")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.add(("timezone",), "unknown_timezone",
                         f"'{self.timezone}' is not an IANA time zone such as Europe/London", self.timezone)
        for key in ("start", "end"):
            value = getattr(self, key)
            if not _CLOCK_TIME_RE.fullmatch(value):
                problems.add((key,), "invalid_time", f"'{value}' is not a time of day HH:MM (24 h)", value)
        if _CLOCK_TIME_RE.fullmatch(self.start) and _CLOCK_TIME_RE.fullmatch(self.end) and self.start >= self.end:
            problems.add(("end",), "empty_day", f"the working day ends ({self.end}) before it starts ({self.start})",
                         self.end)
        if self.country is not None:
            supported = holidays.list_supported_countries()
            if self.country not in supported:
                problems.add(("country",), "unknown_country",
                             f"'{self.country}' is not a country the holidays package knows (ISO alpha-2, "
                             "e.g. US, GB, DE, JP)", self.country)
            elif self.subdivision is not None and self.subdivision not in supported[self.country]:
                problems.add(("subdivision",), "unknown_subdivision",
                             f"'{self.subdivision}' is not a subdivision of {self.country} "
                             f"(known: {_known(supported[self.country])})", self.subdivision)
        elif self.subdivision is not None:
            problems.add(("subdivision",), "missing", "a subdivision needs a country", self.subdivision)
        problems.raise_if_any()
        return self


class BusinessHours(_Schema):
    """Business-hours calendars per team (the roster region of the owner); off by default.

    When ``enabled``, SLA, escalation and aging times count working minutes of the owner's
    team calendar (``calendars[region]``, else ``default_calendar``); otherwise calendar minutes.
    """

    enabled: bool = False
    calendars: dict[str, WorkCalendar] = Field(default_factory=dict)
    default_calendar: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BusinessHours:
        problems = _Problems("BusinessHours")
        if self.default_calendar is not None and self.default_calendar not in self.calendars:
            problems.add(("default_calendar",), "unknown_calendar",
                         f"'{self.default_calendar}' is not a calendar defined under calendars "
                         f"(known: {_known(self.calendars)})", self.default_calendar)
        if self.enabled and self.default_calendar is None:
            problems.add(("default_calendar",), "missing",
                         "business hours are enabled: name the calendar of owners outside every team "
                         f"(known: {_known(self.calendars)})", None)
        problems.raise_if_any()
        return self

    def calendar_for(self, region: str | None) -> WorkCalendar | None:
        """The calendar of a team (roster region), else the default one; ``None`` when off."""
        if not self.enabled:
            return None
        if region is not None and region in self.calendars:
            return self.calendars[region]
        return self.calendars.get(self.default_calendar or "")


class SlaPolicy(_Schema):
    """Response-time SLAs per tier and the clocks that act on them (``config/rules/sla.yaml``).

    ``clock_person_kinds``: which person records get a clock (``lead``: Salesforce leads and
    HubSpot contacts as shipped; ``contact`` adds the contacts of accounts).
    """

    tiers: list[SlaTier] = Field(min_length=1)
    statuses: SlaStatuses = Field(default_factory=lambda: SlaStatuses(new=["New"], contacted=["Contacted"]))
    aging: SlaAging = Field(default_factory=SlaAging)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    clock_person_kinds: list[PersonKind] = Field(default_factory=lambda: list(_LEAD_ONLY))

    @model_validator(mode="after")
    def _check(self) -> SlaPolicy:
        problems = _Problems("SlaPolicy")
        names: dict[str, int] = {}
        scores: dict[int, int] = {}
        for i, tier in enumerate(self.tiers):
            if tier.name in names:
                problems.add(("tiers", i, "name"), "duplicate",
                             f"tier '{tier.name}' is already defined at tiers[{names[tier.name]}]",
                             tier.name)
            names.setdefault(tier.name, i)
            if tier.min_score in scores:
                problems.add(("tiers", i, "min_score"), "duplicate",
                             f"min_score {tier.min_score} is already used by tiers[{scores[tier.min_score]}]",
                             tier.min_score)
            scores.setdefault(tier.min_score, i)
        if 0 not in scores:
            problems.add(("tiers",), "band_gap",
                         "no tier has min_score 0: low scores would have no SLA tier", None)
        problems.raise_if_any()
        return self

    def tier(self, name: str) -> SlaTier | None:
        """Return the tier called ``name``, if any."""
        return _sla_tables(self).by_name.get(name)

    def tier_for_score(self, score: int) -> SlaTier:
        """Return the tier with the highest ``min_score`` not above ``score``."""
        by_score = _sla_tables(self).by_score
        if 0 <= score < len(by_score):
            found = by_score[score]
            if found is not None:
                return found
        return self._tier_for_score(score)

    def _tier_for_score(self, score: int) -> SlaTier:
        eligible = [t for t in self.tiers if t.min_score <= score]
        if not eligible:
            raise ValueError(f"no SLA tier for score {score}")
        return max(eligible, key=lambda t: t.min_score)


@dataclass(frozen=True)
class _SlaTables:
    """Lookups over one ``SlaPolicy``: tier by name (first listed wins), tier per score 0..100."""

    by_name: dict[str, SlaTier]
    by_score: tuple[SlaTier | None, ...]


def _build_sla_tables(policy: SlaPolicy) -> _SlaTables:
    by_name: dict[str, SlaTier] = {}
    for tier in policy.tiers:
        by_name.setdefault(tier.name, tier)
    by_score: list[SlaTier | None] = []
    for score in range(SCORE_MAX + 1):
        try:
            by_score.append(policy._tier_for_score(score))
        except ValueError:
            by_score.append(None)
    return _SlaTables(by_name, tuple(by_score))


_sla_tables = DerivedCache(_build_sla_tables)


# --------------------------------------------------------------------------- aggregate


# --- matching (config/rules/matching.yaml) -------------------------------------------------------

BlockKind = Literal["email", "phone", "name", "company_last", "company_first",
                    "domain_last", "email_local", "sound_last"]
"""The blocking keys of the matcher (``connector/core/matching/engine.py`` says what each is)."""

DEFAULT_BLOCK_LIMITS: dict[BlockKind, int] = {
    "email": 50, "phone": 12, "name": 25, "company_last": 25,
    "company_first": 25, "domain_last": 25, "email_local": 8, "sound_last": 12,
}


class MatchWeights(_Schema):
    """Points each kind of agreement (positive) or disagreement (negative) adds to a pair's score."""

    email_exact: float = 9.0
    email_role: float = 1.0
    email_typo: float = 4.0
    email_colleague: float = -10.0
    email_other: float = -2.0
    first_exact_max: float = 5.5
    first_exact_min: float = 1.0
    first_nickname: float = 2.5
    first_fuzzy: float = 1.5
    first_initial: float = 0.5
    first_conflict: float = -6.0
    last_exact_max: float = 6.5
    last_exact_min: float = 1.5
    last_fuzzy: float = 2.5
    last_conflict: float = -6.0
    middle_conflict: float = -2.0
    phone_exact: float = 4.0
    phone_shared: float = 0.5
    phone_other: float = -1.0
    company_exact_max: float = 4.0
    company_exact_min: float = 1.0
    company_fuzzy: float = 1.5
    company_other: float = -1.5
    domain_same: float = 1.0
    country_other: float = -4.0
    title_same: float = 0.5
    title_other: float = -2.0


SurvivorRule = Literal["source_priority", "most_complete", "most_recent", "oldest"]
FieldRule = Literal["most_recent", "most_complete", "source_priority", "survivor"]
DEFAULT_SURVIVOR_TESTS: tuple[SurvivorRule, ...] = ("source_priority", "most_complete", "oldest")


class SurvivorshipRules(_Schema):
    """Which record of a duplicate set survives a merge, and which value each field keeps.

    ``survivor``: the tests in order, each breaking the previous one's ties (the lowest record
    reference breaks the last tie). ``fields``: per canonical field, how its value is chosen among
    the set (``default`` for fields not named). A non-empty value is never replaced by an empty one.
    ``source_priority``: connection/object names, most trusted first (``salesforce/Contact``).
    """

    survivor: list[SurvivorRule] = Field(default_factory=lambda: list(DEFAULT_SURVIVOR_TESTS))
    source_priority: list[str] = Field(default_factory=list)
    default: FieldRule = "most_recent"
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SurvivorshipRules:
        problems = _Problems("SurvivorshipRules")
        if len(set(self.survivor)) != len(self.survivor) or not self.survivor:
            problems.add(("survivor",), "bad_survivor_rules", "list each survivor test once, at least one",
                         self.survivor)
        for i, source in enumerate(self.source_priority):
            if source.count("/") != 1 or not all(source.split("/")):
                problems.add(("source_priority", i), "bad_source",
                             f"a source is connection/object (e.g. salesforce/Contact), got {source!r}", source)
        problems.raise_if_any()
        return self


class ReviewRules(_Schema):
    """Where review items go: a task for the data steward in one connection's CRM.

    Both unset (the default): the queue is kept in Relay's store only (``relay dedupe reviews``).
    """

    connection: str | None = None
    steward: str | None = Field(default=None, description="The data steward's email, a user of that CRM.")

    @model_validator(mode="after")
    def _check(self) -> ReviewRules:
        problems = _Problems("ReviewRules")
        if (self.connection is None) != (self.steward is None):
            problems.add(("connection" if self.connection is None else "steward",), "review_half_set",
                         "set both connection and steward (the CRM the review tasks go to and who gets them), "
                         "or neither", self.connection or self.steward)
        if self.steward is not None and not _EMAIL_RE.match(self.steward.strip().lower()):
            problems.add(("steward",), "bad_email", f"{self.steward!r} is not an email address", self.steward)
        problems.raise_if_any()
        return self


class MergeGuard(_Schema):
    """The blast-radius guard: a run that would merge more than this stops and alerts, merging nothing."""

    max_records: int = Field(default=200, ge=0)
    max_share: float = Field(default=0.05, ge=0.0, le=1.0)


AccountMatchMethod = Literal["email_domain", "website", "company_name", "company_fuzzy"]
ACCOUNT_MATCH_METHODS: tuple[AccountMatchMethod, ...] = ("email_domain", "website", "company_name", "company_fuzzy")


class AccountMatchRules(_Schema):
    """How a person is matched to an account (``matching.yaml``, section ``accounts``).

    Methods are tried in the order of their strength (email domain, website, exact company
    name, similar company name); the first that finds an account decides. ``methods`` turns
    methods off (its order is not used). A company name made only of ``generic_words``
    ("Global Solutions Group") never matches by name; a similar name must also agree on its
    distinctive words (the name without generic words, at least ``fuzzy_min_length`` letters).
    """

    methods: list[AccountMatchMethod] = Field(
        default_factory=lambda: list(ACCOUNT_MATCH_METHODS))
    fuzzy_threshold: float = Field(default=90.0, ge=50.0, le=100.0)
    fuzzy_min_length: int = Field(default=4, ge=1, le=50)
    fuzzy_block_limit: int = Field(default=100, ge=10, le=100_000)
    free_mail_by_name: bool = True
    generic_words: list[str] = Field(default_factory=lambda: list(DEFAULT_GENERIC_COMPANY_WORDS))

    @model_validator(mode="after")
    def _check(self) -> AccountMatchRules:
        problems = _Problems("AccountMatchRules")
        for i, word in enumerate(self.generic_words):
            if not word.strip() or word != word.strip().lower() or " " in word:
                problems.add(("generic_words", i), "bad_generic_word",
                             f"a generic word is one lower-case word without spaces, got {word!r}", word)
        if len(set(self.methods)) != len(self.methods):
            problems.add(("methods",), "duplicate_method", "each method may be listed once", self.methods)
        problems.raise_if_any()
        return self


DEFAULT_GENERIC_COMPANY_WORDS: tuple[str, ...] = (
    "global", "group", "solutions", "solution", "international", "holdings", "holding", "systems", "services",
    "service", "technology", "consulting", "consultants", "partners", "enterprises", "enterprise", "company",
    "industries", "associates", "digital", "management", "capital", "media", "laboratories", "ventures",
    "network", "networks", "software", "trading", "worldwide", "america", "americas", "europe", "usa", "national",
    "and", "of", "the", "corporation", "inc", "limited", "ltd", "agency", "studio", "studios", "labs", "data",
    "cloud", "tech", "products", "marketing", "design", "health", "healthcare", "financial", "finance",
)
"""Words that tell no company apart: a name made only of them never matches by name."""


class MatchingRules(_Schema):
    """How people are matched: thresholds, blocking limits, weights (``matching.yaml``).

    A pair scoring ``match_at`` or more is the same person; from ``review_at`` up to it, a
    review item for a data steward; below, different people.
    """

    match_at: float = 7.0
    review_at: float = 4.0
    cluster_floor: float = 0.0
    workplace_margin: float = 1.0
    cluster_average: float = 4.5
    max_cluster_size: int = Field(default=25, ge=2, le=1000)
    max_component: int = Field(default=80, ge=2, le=5000)
    block_limits: dict[BlockKind, int] = Field(default_factory=lambda: dict(DEFAULT_BLOCK_LIMITS))
    weights: MatchWeights = Field(default_factory=MatchWeights)
    accounts: AccountMatchRules = Field(default_factory=AccountMatchRules)
    survivorship: SurvivorshipRules = Field(default_factory=SurvivorshipRules)
    merge_guard: MergeGuard = Field(default_factory=MergeGuard)
    review: ReviewRules = Field(default_factory=ReviewRules)

    @model_validator(mode="after")
    def _check(self) -> MatchingRules:
        problems = _Problems("MatchingRules")
        if self.cluster_floor > self.match_at:
            problems.add(("cluster_floor",), "thresholds_out_of_order",
                         f"cluster_floor ({self.cluster_floor}) must not be above match_at ({self.match_at})",
                         self.cluster_floor)
        if self.review_at >= self.match_at:
            problems.add(("review_at",), "thresholds_out_of_order",
                         f"review_at ({self.review_at}) must be below match_at ({self.match_at})",
                         self.review_at)
        for kind, limit in self.block_limits.items():
            if not 2 <= limit <= 1000:
                problems.add(("block_limits", kind), "block_limit_out_of_range",
                             f"a block limit must be 2..1000 records, got {limit}", limit)
        problems.raise_if_any()
        return self

    def limit(self, kind: str) -> int:
        """Largest block of ``kind`` whose records are compared (a larger block is too common to tell)."""
        return self.block_limits.get(kind, DEFAULT_BLOCK_LIMITS[kind])  # type: ignore[call-overload,index]


# --- data quality (config/rules/quality.yaml) ------------------------------------------------------


SOP_REQUIRED_FIELDS: tuple[PersonFieldName, ...] = ("first_name", "last_name", "email", "company", "lead_source")
"""Seed 002 "Data Entry Standards": the fields marked Required, and Email (Unique, so present)."""


class QualityRules(_Schema):
    """What a sync's data-quality figures are measured against (``quality.yaml``).

    Seed 002 "Data Management SOP": the Data Entry Standards' required fields and the Data
    Quality Metrics' targets (completeness > 95 %, duplicates < 2 %). Both targets are strict:
    exactly 95 % complete, or exactly 2 % duplicates, misses. Nothing here changes a decision,
    so these rules are not part of ``Rules.version``.
    """

    required_fields: list[PersonFieldName] = Field(default_factory=lambda: list(SOP_REQUIRED_FIELDS), min_length=1)
    completeness_min_percent: float = Field(default=95.0, ge=0, le=100)
    duplicates_max_percent: float = Field(default=2.0, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> QualityRules:
        problems = _Problems("QualityRules")
        seen: dict[str, int] = {}
        for i, name in enumerate(self.required_fields):
            if name in seen:
                problems.add(("required_fields", i), "duplicate",
                             f"'{name}' is already listed at required_fields[{seen[name]}]", name)
            seen.setdefault(name, i)
        problems.raise_if_any()
        return self


class Rules(_Schema):
    """All decision rules together; ``version`` identifies them in the audit log."""

    scoring: ScoringRules
    routing: RoutingRules
    sla: SlaPolicy
    matching: MatchingRules = Field(default_factory=lambda: MatchingRules())
    quality: QualityRules = Field(default_factory=lambda: QualityRules())
    # Handoff governance (issue 11, connector/core/governance): no lead decision reads these,
    # so they are not part of ``version``.
    stages: StageRules = Field(default_factory=lambda: StageRules())
    approvals: ApprovalRules = Field(default_factory=lambda: ApprovalRules())
    dispositions: DispositionRules = Field(default_factory=lambda: DispositionRules())
    handoffs: HandoffRules = Field(default_factory=lambda: HandoffRules())
    # Consent and retention (issue 12): the consent gate changes lead decisions (part of ``version``);
    # retention decides no lead (``relay retention run``), so it is not.
    consent: ConsentRules = Field(default_factory=lambda: ConsentRules())
    retention: RetentionRules = Field(default_factory=lambda: RetentionRules())

    @model_validator(mode="after")
    def _check(self) -> Rules:
        problems = _Problems("Rules")
        given = self.model_fields_set  # defaults are not checked against a roster they were not written for
        for loc, code, message, value in cross_problems(
                self.routing, self.stages, self.approvals if "approvals" in given else None,
                self.handoffs if "handoffs" in given else None):
            problems.add(loc, code, message, value)
        tiers = [t.name for t in self.sla.tiers]
        for i, rule in enumerate(self.routing.rules):
            if rule.tier is not None and rule.action != "nurture" and rule.tier not in tiers:
                problems.add(("routing", "rules", i, "tier"), "unknown_tier",
                             f"tier '{rule.tier}' is not an SLA tier in sla.yaml "
                             f"(known: {_known(tiers)})", rule.tier)
        group = self.sla.aging.requeue_group
        if group is not None and group not in self.routing.groups:
            problems.add(("sla", "aging", "requeue_group"), "unknown_group",
                         f"'{group}' is not a group defined under groups in routing.yaml "
                         f"(known: {_known(self.routing.groups)})", group)
        teams = {*self.routing.regions, GLOBAL_REGION}
        for name in self.sla.business_hours.calendars:
            if name not in teams:
                problems.add(("sla", "business_hours", "calendars", name), "unknown_region",
                             f"calendar '{name}' names no team region of routing.yaml (known: {_known(teams)})",
                             name)
        problems.raise_if_any()
        return self

    @property
    def version(self) -> str:
        """Stable hash of the canonical JSON of all rules (16 hex characters).

        Computed once per rules object (the core stamps it on every decision); a copy
        made with ``model_copy(update=...)`` is a new object and gets its own version.
        """
        return _versions(self)


PEOPLE_RULE_PARTS = ("scoring", "routing", "sla", "matching", "dispositions", "consent")
"""The parts of the rules a person's decision depends on: ``Rules.version`` hashes them (and only them)."""


def _rules_version_of(rules: Rules) -> str:
    return rules_version(*(getattr(rules, part) for part in PEOPLE_RULE_PARTS))


_versions = DerivedCache(_rules_version_of)


def rules_version(*parts: BaseModel) -> str:
    """Return a stable hash of the canonical JSON of ``parts``.

    The same rules always give the same version, whatever the key order or
    comments of the YAML files they came from.
    """
    payload: Sequence[Any] = [p.model_dump(mode="json") for p in parts]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
