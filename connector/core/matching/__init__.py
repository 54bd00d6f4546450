"""Identity resolution: who is the same person, by fuzzy evidence that does not chain.

``match_people(records, rules)`` clusters person records (from one CRM, both, or a file);
``normalize`` has the keys it compares. Pure: no database, network or clock.
"""

from __future__ import annotations

from connector.core.matching.engine import (
    COMPONENTS,
    PERSON_COLUMNS,
    MatchResult,
    ScoredPair,
    match_people,
    score_records,
)

__all__ = ["COMPONENTS", "PERSON_COLUMNS", "MatchResult", "ScoredPair", "match_people", "score_records"]
