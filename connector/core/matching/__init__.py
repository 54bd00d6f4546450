"""Identity resolution: who is the same person, by fuzzy evidence that does not chain.

``match_people(records, rules)`` clusters person records (from one CRM, both, or a file);
``normalize`` has the keys it compares. Pure: no database, network or clock.

The engine (numpy, rapidfuzz) is imported on first use of its names, so code that needs only the
normalisers (the account matcher of every sync) does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.core.matching.engine import (
        COMPONENTS,
        PERSON_COLUMNS,
        MatchResult,
        ScoredPair,
        match_people,
        score_records,
    )

__all__ = ["COMPONENTS", "PERSON_COLUMNS", "MatchResult", "ScoredPair", "match_people", "score_records"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from connector.core.matching import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
