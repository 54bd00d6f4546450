"""Relay's decision core: pure functions, records and rules in, decisions out.

No network, no database, no clock, no file I/O: time comes in as an argument.
Entry point: ``connector.core.decide.decide_people``; rules schema:
``connector.core.rules``; records and decisions: ``connector.core.models``.
"""

from __future__ import annotations

from connector.core.decide import decide_people
from connector.core.models import (
    Account,
    ExistingAssignment,
    LeadDecision,
    Owner,
    Person,
    RecordRef,
    RoutingState,
)
from connector.core.rules import RoutingRules, Rules, ScoringRules, SlaPolicy

__all__ = [
    "Account",
    "ExistingAssignment",
    "LeadDecision",
    "Owner",
    "Person",
    "RecordRef",
    "RoutingRules",
    "RoutingState",
    "Rules",
    "ScoringRules",
    "SlaPolicy",
    "decide_people",
]
