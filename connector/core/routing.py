"""Routing: who owns a lead, decided by owner EMAIL, with persistent round robin.

Seed 002 "Lead Routing": named accounts first, then the matched account's owner, then
score tiers (Hot -> senior rep, Warm -> sales rep round robin, Qualified -> SDR team,
else nurture), round robin within the lead's territory. Inactive members are never
chosen; a region without an active member falls back as the rules say.

Round robin is smooth weighted round robin (as in nginx): deterministic, fair by
weight within every cycle, and resumable from ``RoutingState`` (state in, state out).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.core.models import (
    ExistingAssignment,
    GroupPosition,
    RecordRef,
    RoutingDecision,
    RoutingState,
    trusted,
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


@dataclass(frozen=True, slots=True)
class MatchedAccountOwner:
    """The account a lead matched and its owner, resolved by the caller."""

    account: RecordRef
    label: str
    owner_email: str | None
    owner_active: bool


@dataclass(frozen=True, slots=True)
class RoutingInput:
    """What routing needs to know about one lead.

    A plain frozen dataclass: the caller builds it from values the core validated already.

    Attributes:
        ref: The record being routed (for traceability only).
        score: Total score 0..100.
        category: Score category (``Hot``...), from scoring; not the SLA tier.
        country: ISO alpha-2 country, used for the territory.
        email_domain: The lead's email domain (for named accounts).
        website_domain: The lead's website domain (second chance for named accounts).
        matched_account: The account matched by domain, with its owner.
        existing: An active assignment from Relay's ledger: the lead keeps it.
        shared_by: How many records of the person share this decision. Each record has
            its own score, so above 1 the reason says that the score it cites is the best
            of them (the record that speaks for the person), not the reader's record's.
    """

    ref: RecordRef
    score: int
    category: str
    country: str | None = None
    email_domain: str | None = None
    website_domain: str | None = None
    matched_account: MatchedAccountOwner | None = None
    existing: ExistingAssignment | None = None
    shared_by: int = 1


def _reason(text: str) -> str:
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


def routing_decision(owner_email: str | None, tier: str, rule: str, reason: str, **given: Any) -> RoutingDecision:
    """``RoutingDecision(owner_email=..., tier=..., rule=..., reason=..., **given)``, unvalidated.

    Only for values routing makes itself from validated rules and records: owners from
    the roster, the rules or an ``ExistingAssignment`` (or checked to be a ``str``),
    reasons cut to ``REASON_MAX`` by ``_reason``, regions and group keys from the rules.
    """
    fields = {"owner_email": owner_email, "tier": tier, "rule": rule, "reason": reason, **_OPTIONAL}
    fields.update(given)
    names = tuple(given)
    explicit = _EXPLICIT.get(names)
    if explicit is None:
        explicit = _EXPLICIT[names] = _ALWAYS.union(names)
    return trusted(RoutingDecision, fields, explicit)


_ALWAYS = frozenset({"owner_email", "tier", "rule", "reason"})
_OPTIONAL: dict[str, Any] = {
    name: field.default for name, field in RoutingDecision.model_fields.items() if name not in _ALWAYS
}
"""The model's own defaults (immutable values), in field order."""
_EXPLICIT: dict[tuple[str, ...], frozenset[str]] = {}


def score_text(score: int, category: str, shared_by: int = 1) -> str:
    """How reasons and tasks cite a score: with its category, named as such.

    The category (``Hot``/``Warm``/``Qualified``/``Early``/``Cold``, from scoring) and the
    SLA tier (from routing and ``sla.yaml``) can differ for the same score (33 is category
    ``Early`` and SLA tier ``Cold``), so each is always labelled. ``shared_by`` above 1
    says that the score is the best of the person's records, which share this decision.
    """
    best = f"; best of this person's {shared_by} records" if shared_by > 1 else ""
    return f"score {score} (category {category}{best})"


def _lead_score(lead: RoutingInput) -> str:
    return score_text(lead.score, lead.category, lead.shared_by)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


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
    # The roster's emails and int weights on the validated state: nothing to validate.
    new_position = trusted(GroupPosition, {"current": current, "assigned": position.assigned + 1}, _POSITION_FIELDS)
    groups = dict(state.groups)
    groups[group_key] = new_position
    return best, trusted(RoutingState, {"groups": groups}, _STATE_FIELDS)


_POSITION_FIELDS = frozenset({"current", "assigned"})
_STATE_FIELDS = frozenset({"groups"})


def _members(
    rules: RoutingRules,
    role: str,
    region: str | None,
    active_owners: Mapping[str, bool],
) -> list[TeamMember]:
    # The test of ``_is_active``, shortened: validated rosters hold each email once and in
    # lower case, so a member's roster entry is the member itself.
    return [
        m for m in rules.members_with_role(role)
        if (region is None or m.region in (region, GLOBAL_REGION))
        and m.active and active_owners.get(m.email, True)
    ]


@dataclass(frozen=True, slots=True)
class GroupPick:
    """Who a round-robin group gives a record to (see :func:`pick_in_group`).

    Attributes:
        email: The member (or fallback owner) chosen; None when nobody is available.
        key: The rotation's state key (``sales_reps:NA``, ``role:director:*``); None for a
            fixed fallback owner or nobody.
        position: How many the rotation has assigned, this pick included.
        fallback: The label of the fallback step that chose (None: the group itself did).
    """

    email: str | None
    key: str | None = None
    position: int | None = None
    fallback: str | None = None


def pick_in_group(
    group_name: str,
    group: RoundRobinGroup,
    region: str,
    rules: RoutingRules,
    state: RoutingState,
    active_owners: Mapping[str, bool],
) -> tuple[GroupPick, RoutingState]:
    """The next active member of a routing group for a record of ``region``, walking its fallback.

    The group's members of the region (all regions unless ``by_region``) in rotation; when none is
    active, each ``fallback`` step in order (a fixed owner, every region, a role in the region or
    anywhere). ``GroupPick(None)`` and ``state`` itself when every step fails.
    """
    scope = region if group.by_region else None
    members = _members(rules, group.role, scope, active_owners)
    if members:
        key = f"{group_name}:{scope or '*'}"
        chosen, state = pick_round_robin(key, members, state)
        return GroupPick(chosen.email, key, state.position(key).assigned), state
    for step in group.fallback:
        if step.kind == "owner":
            assert step.email is not None
            if _is_active(step.email, rules, active_owners):
                return GroupPick(step.email, fallback=step.label), state
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
            return GroupPick(chosen.email, key, state.position(key).assigned, step.label), state
    return GroupPick(None, fallback="none"), state


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
    head = f"{_capital(_lead_score(lead))}, SLA tier {tier} -> {group.label}, region {region}"
    suffix = "".join(f"; {n}" for n in notes)
    pick, state = pick_in_group(group_name, group, region, rules, state, active_owners)
    if pick.email is None:
        return routing_decision(
            None, tier, rule.name, _reason(f"{head}: nobody active and no fallback available, unassigned{suffix}"),
            region=region, fallback="none",
        ), state
    if pick.fallback is None:
        return routing_decision(
            pick.email, tier, rule.name, _reason(f"{head}, round robin{suffix}"), region=region, group=pick.key,
            position=pick.position,
        ), state
    if pick.key is None:
        return routing_decision(
            pick.email, tier, rule.name, _reason(f"{head}: nobody active, fallback {pick.fallback}{suffix}"),
            region=region, fallback=pick.fallback,
        ), state
    return routing_decision(
        pick.email, tier, rule.name,
        _reason(f"{head}: nobody active, fallback {pick.fallback}, round robin{suffix}"),
        region=region, group=pick.key, position=pick.position, fallback=pick.fallback,
    ), state


def reassign(
    group_key: str,
    rules: RoutingRules,
    state: RoutingState,
    active_owners: Mapping[str, bool],
    exclude: Collection[str] = (),
) -> tuple[TeamMember | None, RoutingState]:
    """The next member of a round-robin group who is not in ``exclude`` (aging re-queue).

    The group is named by its state key, as routing keys it (``sales_reps:NA``,
    ``sdr_team:*``, ``role:sales_manager:APAC``); the pick continues that group's own
    rotation (:func:`pick_round_robin` over the eligible members less the excluded ones).

    Returns:
        The member (``None`` when nobody active is left, or the key names no group) and the
        new state (``state`` itself when nobody was picked).
    """
    name, _, scope = group_key.rpartition(":")
    if name.startswith("role:"):
        role = name[len("role:"):]
    elif name in rules.groups:
        role = rules.groups[name].role
    else:
        return None, state
    excluded = {email.strip().lower() for email in exclude}
    members = [m for m in _members(rules, role, None if scope in ("*", "") else scope, active_owners)
               if m.email not in excluded]
    if not members:
        return None, state
    return pick_round_robin(group_key, members, state)


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
        tier_text = f" (SLA tier {existing.tier})" if existing.tier else ""
        return routing_decision(
            existing.owner_email, existing.tier, existing.rule or "existing_assignment",
            _reason(f"Already assigned to {existing.owner_email}{tier_text}; kept"),
            kept_existing=True, source="existing",
        ), state

    by_score = sla.tier_for_score(lead.score).name
    notes: list[str] = []
    for rule in rules.rules:
        if lead.score < rule.min_score:
            continue
        tier = rule.tier or by_score
        if rule.action == "named_account_owner":
            domain = rules.named_account_domain(lead.email_domain) \
                or rules.named_account_domain(lead.website_domain)
            if domain is None:
                continue
            owner = rules.named_accounts[domain]
            if not _is_active(owner, rules, active_owners):
                notes.append(f"named account owner {owner} inactive")
                continue
            return routing_decision(
                owner, tier, rule.name,
                _reason(f"Named account {domain} -> {owner}; {_lead_score(lead)}, SLA tier {tier}"),
            ), state
        if rule.action == "matched_account_owner":
            matched = lead.matched_account
            if matched is None or not matched.owner_email:
                continue
            owner = matched.owner_email
            if not matched.owner_active or not _is_active(owner, rules, active_owners):
                notes.append(f"account owner {owner} inactive")
                continue
            reason = _reason(f"Matched account {matched.label} -> account owner {owner}; "
                             f"{_lead_score(lead)}, SLA tier {tier}" + "".join(f"; {n}" for n in notes))
            if type(owner) is not str:  # the caller's value, unchecked: validate it as always
                return RoutingDecision(owner_email=owner, tier=tier, rule=rule.name, reason=reason), state
            return routing_decision(owner, tier, rule.name, reason), state
        if rule.action == "nurture":
            tier = rule.tier or "Nurture"
            return routing_decision(
                None, tier, rule.name,
                _reason(f"{_capital(_lead_score(lead))} -> marketing nurture, no sales "
                        "owner, no SLA" + "".join(f"; {n}" for n in notes)),
            ), state
        assert rule.group is not None
        return _round_robin(lead, rule, rule.group, rules.groups[rule.group], tier, rules,
                            state, active_owners, notes)
    # Unreachable with validated rules (the last rule is a catch-all).
    return RoutingDecision(
        owner_email=None, tier="Nurture", rule="no_rule",
        reason=_reason(f"No routing rule applies ({_lead_score(lead)})"),
    ), state
