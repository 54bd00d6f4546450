"""HubSpot's rate-limit headers, read into the API governor's :class:`~connector.adapters.budget.Observation`.

Every answer of a private app carries ``X-HubSpot-RateLimit-Max`` and ``-Remaining`` (the
rolling window of ``-Interval-Milliseconds``, 10 s) and ``-Daily`` and ``-Daily-Remaining``.
A 429 (``TEN_SECONDLY_ROLLING`` or ``DAILY``) is a refusal: its window figures do not
correct the count (the window frees as its oldest calls age out), its daily ones do.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from connector.adapters.budget import Observation

WINDOW_CALLS = 190
"""Calls per 10 s of a private app on Professional and Enterprise (HubSpot's API usage guidelines)."""
WINDOW_SECONDS = 10.0
"""HubSpot's rolling window (``X-HubSpot-RateLimit-Interval-Milliseconds: 10000``)."""
DAILY_CALLS = 650_000
"""Calls per day of a private app on Professional (Enterprise: 1,000,000; the headers tell which)."""

_MAX = "x-hubspot-ratelimit-max"
_REMAINING = "x-hubspot-ratelimit-remaining"
_DAILY = "x-hubspot-ratelimit-daily"
_DAILY_REMAINING = "x-hubspot-ratelimit-daily-remaining"


def observation(headers: Mapping[str, Any] | None, status: int | None = None) -> Observation:
    """What an answer's headers say about the portal's budget (an empty observation when nothing).

    Example:
        >>> said = observation({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "150",
        ...                     "X-HubSpot-RateLimit-Daily": "650000", "X-HubSpot-RateLimit-Daily-Remaining": "649000"})
        >>> said.window_limit, said.window_remaining, said.day_limit, said.day_used
        (190, 150, 650000, 1000)
    """
    if not headers:
        return Observation(status=status)
    lowered = {str(key).lower(): value for key, value in headers.items()}
    window_limit = _count(lowered.get(_MAX))
    window_remaining = _count(lowered.get(_REMAINING))
    day_limit = _count(lowered.get(_DAILY))
    day_remaining = _count(lowered.get(_DAILY_REMAINING))
    day_used = max(0, day_limit - day_remaining) if day_limit is not None and day_remaining is not None else None
    shown = ", ".join(f"{name}={lowered[name]}" for name in (_MAX, _REMAINING, _DAILY, _DAILY_REMAINING)
                      if name in lowered)
    return Observation(window_limit=window_limit, window_remaining=window_remaining, day_limit=day_limit,
                       day_used=day_used, refused=status == HTTPStatus.TOO_MANY_REQUESTS, status=status,
                       header=shown)


def _count(value: Any) -> int | None:
    """A header's whole number (None when absent or not a number: a header is never worth failing a call)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
