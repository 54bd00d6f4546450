"""Survivorship: which record of a duplicate set survives a merge, and which value each field keeps.

Pure: the records of one set (same CRM object: a merge happens inside one object) and the rules
in, the plan out. A non-empty value is never replaced by an empty one, whatever the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector.core.matching.normalize import is_placeholder
from connector.core.rules import FieldRule, SurvivorshipRules

MERGED_FIELDS: tuple[str, ...] = (
    "first_name", "last_name", "email", "phone", "title", "company", "website", "industry", "employees",
    "annual_revenue", "country", "state", "city", "lead_source",
)
"""The canonical person fields a merge chooses values for (Relay's own fields and the owner are
decided afterwards, for the surviving record, as for any record)."""


@dataclass(frozen=True)
class Member:
    """One record of a duplicate set.

    Attributes:
        key: Where it lives, ``connection/object/crm_id``.
        values: Its canonical fields.
        updated_at: When the CRM last changed it (``None``: unknown, counts as oldest).
        created_at: When it was created (``None``: unknown, counts as newest).
    """

    key: str
    values: Mapping[str, Any]
    updated_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def source(self) -> str:
        """``connection/object``."""
        return self.key.rsplit("/", 1)[0]


@dataclass(frozen=True)
class FieldChoice:
    """The value a field keeps, and where it came from."""

    value: Any
    from_key: str
    rule: str


@dataclass(frozen=True)
class MergePlan:
    """What merging a duplicate set does.

    Attributes:
        survivor: The record that stays (its id is kept where the CRM keeps one).
        losers: The records merged into it, sorted.
        survivor_rule: The survivor test that decided (e.g. ``most_complete``).
        values: Per field, the value the survivor ends with and where it came from.
        updates: The fields whose value on the survivor changes (``values`` not already its own).
    """

    survivor: str
    losers: tuple[str, ...]
    survivor_rule: str
    values: dict[str, FieldChoice] = field(default_factory=dict)

    survivor_values: dict[str, Any] = field(default_factory=dict)
    """The survivor's own values before the merge (what an update replaces)."""

    @property
    def updates(self) -> dict[str, Any]:
        """The fields whose value on the survivor changes, and their new values."""
        return {name: choice.value for name, choice in self.values.items()
                if choice.from_key != self.survivor and choice.value != self.survivor_values.get(name)}


def _filled(value: Any) -> bool:
    """A value that says something: not empty, not a placeholder ("[not provided]", "n/a")."""
    return not is_placeholder(value)


def _completeness(member: Member) -> int:
    return sum(1 for name in MERGED_FIELDS if _filled(member.values.get(name)))


def _priority(rules: SurvivorshipRules, member: Member) -> int:
    try:
        return rules.source_priority.index(member.source)
    except ValueError:
        return len(rules.source_priority)



def _rank(rules: SurvivorshipRules, test: str, member: Member) -> Any:
    """Smaller is better."""
    if test == "source_priority":
        return _priority(rules, member)
    if test == "most_complete":
        return -_completeness(member)
    if test == "most_recent":
        stamp = member.updated_at
        return -(stamp.timestamp()) if stamp is not None else float("inf")
    stamp = member.created_at  # oldest
    return stamp.timestamp() if stamp is not None else float("inf")


def choose_survivor(members: Sequence[Member], rules: SurvivorshipRules) -> tuple[Member, str]:
    """The surviving member and the test that set it apart (``key`` when every test tied)."""
    if not members:
        raise ValueError("a duplicate set needs at least one record")
    remaining = sorted(members, key=lambda m: m.key)
    for test in rules.survivor:
        best = min(_rank(rules, test, m) for m in remaining)
        kept = [m for m in remaining if _rank(rules, test, m) == best]
        if len(kept) == 1:
            return kept[0], test
        remaining = kept
    return remaining[0], "key"


def _field_winner(name: str, rule: FieldRule, survivor: Member, members: Sequence[Member],
                  rules: SurvivorshipRules) -> Member | None:
    filled = [m for m in members if _filled(m.values.get(name))]
    if not filled:
        return None
    if rule == "survivor":
        return survivor if survivor in filled else _field_winner(name, "most_recent", survivor, filled, rules)
    if rule == "source_priority":
        return min(filled, key=lambda m: (_priority(rules, m), m is not survivor, m.key))
    if rule == "most_complete":
        return max(filled, key=lambda m: (len(str(m.values.get(name))), m is survivor, _recent(m), m.key))
    return max(filled, key=lambda m: (_recent(m), m is survivor, m.key))


def _recent(member: Member) -> float:
    return member.updated_at.timestamp() if member.updated_at is not None else float("-inf")


def plan_merge(members: Sequence[Member], rules: SurvivorshipRules) -> MergePlan:
    """The survivor of ``members`` (records of one CRM object) and each field's winning value.

    A field empty on every record is left out; a field keeps the survivor's own value on ties.
    """
    survivor, decided_by = choose_survivor(members, rules)
    values: dict[str, FieldChoice] = {}
    for name in MERGED_FIELDS:
        rule = rules.fields.get(name, rules.default)
        winner = _field_winner(name, rule, survivor, members, rules)
        if winner is None:
            continue
        values[name] = FieldChoice(winner.values[name], winner.key, rule)
    losers = tuple(sorted(m.key for m in members if m.key != survivor.key))
    return MergePlan(survivor=survivor.key, losers=losers, survivor_rule=decided_by, values=values,
                     survivor_values={name: survivor.values.get(name) for name in MERGED_FIELDS})
