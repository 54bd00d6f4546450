"""The rule sets decisions are stamped with, as the console keeps them (``rules_versions``).

People decisions carry ``Rules.version`` (scoring, routing, SLA, matching, dispositions, consent); deal
decisions carry :func:`~connector.pipeline.deals.governance_version` (stages, approvals, handoffs
and the team). Each run records both with what they say, so the console can show the history and
the difference between two versions long after the YAML changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connector.core.rules import PEOPLE_RULE_PARTS, Rules
from connector.pipeline.deals import DEAL_RULE_PARTS, governance_version
from connector.store.repositories import Repositories

PEOPLE_PARTS = PEOPLE_RULE_PARTS
DEAL_PARTS = DEAL_RULE_PARTS


def rule_sets(rules: Rules) -> dict[str, dict[str, Any]]:
    """Version -> the rules it covers (``kind``: ``people`` or ``deals``, then each part as JSON)."""
    def dump(kind: str, parts: tuple[str, ...]) -> dict[str, Any]:
        return {"kind": kind, **{part: getattr(rules, part).model_dump(mode="json") for part in parts}}

    return {rules.version: dump("people", PEOPLE_PARTS), governance_version(rules): dump("deals", DEAL_PARTS)}


def record_rule_sets(repos: Repositories, rules: Rules, *, now: datetime, source: str | None = None) -> None:
    """Note that the rule sets of ``rules`` are in force at ``now`` (each recorded once, its last use moved on)."""
    for version, content in rule_sets(rules).items():
        repos.rules_versions.record(version, content, now=now, source=source)
