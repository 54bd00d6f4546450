"""Salesforce's ``Sforce-Limit-Info: api-usage=N/M`` header, read into the API governor's observation.

Salesforce counts REST and Bulk calls against the org's daily allocation (100,000 plus an
amount per licence, over a rolling 24 hours) and says on every answer how much of it is
used. Past it, calls answer 403 ``REQUEST_LIMIT_EXCEEDED``. There is no short window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from connector.adapters.budget import Observation

DAILY_CALLS = 100_000
"""The base daily allocation of an Enterprise org (more per licence; the header tells the org's own)."""

_USAGE = re.compile(r"api-usage\s*=\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)


def observation(headers: Mapping[str, Any] | None, status: int | None = None) -> Observation:
    """What an answer's ``Sforce-Limit-Info`` says (an empty observation when it has none).

    Example:
        >>> said = observation({"Sforce-Limit-Info": "api-usage=25/100000"})
        >>> said.day_used, said.day_limit
        (25, 100000)
    """
    if not headers:
        return Observation(status=status)
    value = next((str(v) for k, v in headers.items() if str(k).lower() == "sforce-limit-info"), None)
    match = _USAGE.search(value) if value else None
    if match is None:
        return Observation(status=status)
    used, allowed = int(match.group(1)), int(match.group(2))
    return Observation(day_limit=allowed if allowed > 0 else None, day_used=used,
                       refused=status in (HTTPStatus.FORBIDDEN, HTTPStatus.TOO_MANY_REQUESTS) and used >= allowed,
                       status=status, header=f"Sforce-Limit-Info: {value}")
