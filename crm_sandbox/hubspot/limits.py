"""HubSpot's API limits: a rolling ten-second window, a daily budget and the search limit.

Every answer carries the ``X-HubSpot-RateLimit-*`` headers; a request over a
limit is answered with HubSpot's 429 body for that policy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from crm_sandbox.hubspot.errors import rate_limit_body

WINDOW_SECONDS = 10.0
INTERVAL_MS = "10000"

#: (status, headers, body), as the sandbox middleware expects.
Answer = tuple[int, dict[str, str], Any]


class RateLimits:
    """Counts requests and decides when HubSpot would answer 429.

    Args:
        ten_second_limit: requests allowed in any rolling 10 s window.
        daily_limit: requests allowed per UTC day.
        search_per_second: search requests allowed in any rolling second.
        monotonic: clock for the rolling windows (seconds).
        wall: clock for the daily budget (seconds since the epoch).
    """

    def __init__(
        self,
        ten_second_limit: int = 190,
        daily_limit: int = 1_000_000,
        search_per_second: int = 5,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ten_second_limit = ten_second_limit
        self.daily_limit = daily_limit
        self.search_per_second = search_per_second
        self._monotonic = monotonic
        self._wall = wall
        self._window: deque[float] = deque()
        self._search: deque[float] = deque()
        self._second: deque[float] = deque()
        self._day = -1
        self._daily_used = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._window.clear()
            self._search.clear()
            self._second.clear()
            self._daily_used = 0

    @property
    def secondly_limit(self) -> int:
        """The per-second budget HubSpot reports (a tenth of the ten-second one; reported, not enforced)."""
        return max(1, self.ten_second_limit // 10)

    def _headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": INTERVAL_MS,
            "X-HubSpot-RateLimit-Max": str(self.ten_second_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.ten_second_limit - len(self._window))),
            "X-HubSpot-RateLimit-Secondly": str(self.secondly_limit),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, self.secondly_limit - len(self._second))),
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self._daily_used)),
        }

    def admit(self, is_search: bool = False) -> tuple[dict[str, str], Answer | None]:
        """Count one request; returns the headers for its answer and a 429 answer if refused."""
        with self._lock:
            now = self._monotonic()
            day = int(self._wall() // 86_400)
            if day != self._day:
                self._day = day
                self._daily_used = 0
            while self._window and self._window[0] <= now - WINDOW_SECONDS:
                self._window.popleft()
            while self._search and self._search[0] <= now - 1.0:
                self._search.popleft()
            while self._second and self._second[0] <= now - 1.0:
                self._second.popleft()
            refused: str | None = None
            if self._daily_used >= self.daily_limit:
                refused = "DAILY"
            elif len(self._window) >= self.ten_second_limit:
                refused = "TEN_SECONDLY_ROLLING"
            elif is_search and len(self._search) >= self.search_per_second:
                refused = "SECONDLY"
            if refused is None:
                self._window.append(now)
                self._second.append(now)
                self._daily_used += 1
                if is_search:
                    self._search.append(now)
            headers = self._headers()
            if refused is None:
                return headers, None
            return headers, (HTTPStatus.TOO_MANY_REQUESTS, headers, rate_limit_body(refused))

    def current_headers(self) -> dict[str, str]:
        """The headers describing the budget right now (without counting a request)."""
        with self._lock:
            return self._headers()
