"""Routing: who owns a lead, decided by owner EMAIL, with persistent round robin.

Seed 002 "Lead Routing": named accounts first, then the matched account's owner, then
score tiers (Hot -> senior rep, Warm -> sales rep round robin, Qualified -> SDR team,
else nurture), round robin within the lead's territory. Inactive members are never
chosen; a region without an active member falls back as the rules say.

Round robin is smooth weighted round robin (as in nginx): deterministic, fair by
weight within every cycle, and resumable from ``RoutingState`` (state in, state out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from connector.core.models import (
    ExistingAssignment,
    GroupPosition,
    RecordRef,
    RoutingDecision,
    RoutingState,
)
from connector.core.rules import (
    GLOBAL_REGION,
    RoundRobinGroup,
    RoutingRule,
    RoutingRules,
    SlaPolicy,
    TeamMember,
)

REASON_MAX = 255


class MatchedAccountOwner(BaseModel):
    """The account a lead matched and its owner, resolved by the caller."""

    model_config = ConfigDict(frozen=True)

    account: RecordRef
    label: str
    owner_email: str | None
    owner_active: bool


class RoutingInput(BaseModel):
    """What routing needs to know about one lead.

    Attributes:
        ref: The record being routed (for traceability only).
        score: Total score 0..100.
        category: Score category (``Hot``...).
        country: ISO alpha-2 country, used for the territory.
        email_domain: The lead's email domain (for named accounts).
        website_domain: The lead's website domain (second chance for named accounts).
        matched_account: The account matched by domain, with its owner.
        existing: An active assignment from Relay's ledger: the lead keeps it.
    """

    model_config = ConfigDict(frozen=True)

    ref: RecordRef
    score: int
    category: str
    country: str | None = None
    email_domain: str | None = None
    website_domain: str | None = None
    matched_account: MatchedAccountOwner | None = None
    existing: ExistingAssignment | None = None


def _domain_and_parents(domain: str | None) -> list[str]:
    """``eu.globex.example`` -> [``eu.globex.example``, ``globex.example``]."""
    if not domain:
        return []
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _reason(text: str) -> str:
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


def _is_active(email: str, rules: RoutingRules, active_owners: Mapping[str, bool]) -> bool:
    member = rules.member(email)
    if member is not None and not member.active:
        return False
    return active_owners.get(email.lower(), True)


def pick_round_robin(
    group_key: str, members: Sequence[TeamMember], state: RoutingState
) -> tuple[TeamMember, RoutingState]:
    """Pick the next member of a group by smooth weighted round robin.

    Every member's current weight grows by its weight; the highest wins (ties go to
    the earlier member in ``members``) and loses the total weight. Over a cycle of
    ``sum(weights)`` picks each member is chosen exactly ``weight`` times.

    Args:
        group_key: The state key, e.g. ``sales_reps:NA``.
        members: Eligible members, in roster order (must not be empty).
        state: Current round-robin state.

    Returns:
        The chosen member and the new state (the input state is not changed).
    """
    if not members:
        raise ValueError(f"round robin group {group_key} has no eligible member")
    position = state.position(group_key)
    current = dict(position.current)
    total = sum(m.weight for m in members)
    for member in members:
        current[member.email] = current.get(member.email, 0) + member.weight
    best = members[0]
    for member in members[1:]:
        if current[member.email] > current[best.email]:
            best = member
    current[best.email] -= total
    new_position = GroupPosition(current=current, assigned=position.assigned + 1)
    return best, state.with_position(group_key, new_position)


def _members(
    rules: RoutingRules,
    role: str,
    region: str | None,
    active_owners: Mapping[str, bool],
) -> list[TeamMember]:
    return [
        m for m in rules.team
        if m.role == role
        and (region is None or m.region in (region, GLOBAL_REGION))
        and _is_active(m.email, rules, active_owners)
    ]


def _round_robin(
    lead: RoutingInput,
    rule: RoutingRule,
    group_name: str,
    group: RoundRobinGroup,
    tier: str,
    rules: RoutingRules,
    state: RoutingState,
    active_owners: Mapping[str, bool],
    notes: list[str],
) -> tuple[RoutingDecision, RoutingState]:
    region = rules.region_for(lead.country)
    head = f"{tier} lead (score {lead.score}) -> {group.label}, region {region}"
    suffix = "".join(f"; {n}" for n in notes)
    scope = region if group.by_region else None
    members = _members(rules, group.role, scope, active_owners)
    if members:
        key = f"{group_name}:{scope or '*'}"
        chosen, state = pick_round_robin(key, members, state)
        return RoutingDecision(
            owner_email=chosen.email, tier=tier, rule=rule.name,
            reason=_reason(f"{head}, round robin{suffix}"), region=region, group=key,
            position=state.position(key).assigned,
        ), state
    for step in group.fallback:
        if step.kind == "owner":
            assert step.email is not None
            if _is_active(step.email, rules, active_owners):
                return RoutingDecision(
                    owner_email=step.email, tier=tier, rule=rule.name,
                    reason=_reason(f"{head}: nobody active, fallback {step.label}{suffix}"),
                    region=region, fallback=step.label,
                ), state
            continue
        if step.kind == "all_regions":
            role, where, key_name = group.role, None, group_name
        else:
            assert step.role is not None
            role = step.role
            where = region if step.kind == "role_in_region" else None
            key_name = f"role:{step.role}"  # never collides with a group name
        members = _members(rules, role, where, active_owners)
        if members:
            key = f"{key_name}:{where or '*'}"
            chosen, state = pick_round_robin(key, members, state)
            return RoutingDecision(
                owner_email=chosen.email, tier=tier, rule=rule.name,
                reason=_reason(f"{head}: nobody active, fallback {step.label}, round robin{suffix}"),
                region=region, group=key, position=state.position(key).assigned,
                fallback=step.label,
            ), state
    return RoutingDecision(
        owner_email=None, tier=tier, rule=rule.name,
        reason=_reason(f"{head}: nobody active and no fallback available, unassigned{suffix}"),
        region=region, fallback="none",
    ), state


def route(
    lead: RoutingInput,
    rules: RoutingRules,
    sla: SlaPolicy,
    state: RoutingState,
    active_owners: Mapping[str, bool],
) -> tuple[RoutingDecision, RoutingState]:
    """Decide who owns a lead.

    Args:
        lead: Score, territory, domains, matched account and existing assignment.
        rules: Routing rules (roster, regions, named accounts, groups, ordered rules).
        sla: SLA policy, to pick the tier by score for rules that name none.
        state: Round-robin state; never modified.
        active_owners: email -> active from the CRMs; emails not listed count as
            active when the roster says so.

    Returns:
        The decision and the new round-robin state (``state`` itself when unchanged).
    """
    if lead.existing is not None:
        existing = lead.existing
        return RoutingDecision(
            owner_email=existing.owner_email, tier=existing.tier,
            rule=existing.rule or "existing_assignment",
            reason=_reason(f"Already assigned to {existing.owner_email} ({existing.tier}); kept"),
            kept_existing=True,
        ), state

    by_score = sla.tier_for_score(lead.score).name
    notes: list[str] = []
    for rule in rules.rules:
        if lead.score < rule.min_score:
            continue
        tier = rule.tier or by_score
        if rule.action == "named_account_owner":
            domain = next((d for source in (lead.email_domain, lead.website_domain)
                           for d in _domain_and_parents(source)
                           if d in rules.named_accounts), None)
            if domain is None:
                continue
            owner = rules.named_accounts[domain]
            if not _is_active(owner, rules, active_owners):
                notes.append(f"named account owner {owner} inactive")
                continue
            return RoutingDecision(
                owner_email=owner, tier=tier, rule=rule.name,
                reason=_reason(f"Named account {domain} -> {owner} ({tier}, score {lead.score})"),
            ), state
        if rule.action == "matched_account_owner":
            matched = lead.matched_account
            if matched is None or not matched.owner_email:
                continue
            owner = matched.owner_email
            if not matched.owner_active or not _is_active(owner, rules, active_owners):
                notes.append(f"account owner {owner} inactive")
                continue
            return RoutingDecision(
                owner_email=owner, tier=tier, rule=rule.name,
                reason=_reason(f"Matched account {matched.label} -> account owner {owner} "
                               f"({tier}, score {lead.score})" + "".join(f"; {n}" for n in notes)),
            ), state
        if rule.action == "nurture":
            tier = rule.tier or "Nurture"
            return RoutingDecision(
                owner_email=None, tier=tier, rule=rule.name,
                reason=_reason(f"{lead.category} lead (score {lead.score}) -> marketing "
                               "nurture, no sales owner" + "".join(f"; {n}" for n in notes)),
            ), state
        assert rule.group is not None
        return _round_robin(lead, rule, rule.group, rules.groups[rule.group], tier, rules,
                            state, active_owners, notes)
    # Unreachable with validated rules (the last rule is a catch-all).
    return RoutingDecision(
        owner_email=None, tier="Nurture", rule="no_rule",
        reason=_reason(f"No routing rule applies (score {lead.score})"),
    ), state
