"""One API budget per CRM connection, shared by every process and worker that talks to it.

A CRM allows so many calls in a short rolling window (HubSpot: about 190 per 10 s per portal)
and so many a day (HubSpot 650,000 and more, Salesforce's daily allocation). A :class:`Governor`
sits in front of every HTTP call an adapter makes: before the call goes out it takes a token;
when none is free it waits (never past the run's deadline) rather than send into a 429.

* **Priorities.** Real time (events runs, form capture) may spend the whole budget; backfill
  and scheduled syncs only down to a reserve (``reserve_percent`` of the window and of the
  day), so under load a backfill waits before a real-time event does.
* **Shared state.** The count lives in a :class:`BudgetLedger`: Relay's database for many
  processes (``connector.pipeline.budget.StoreLedger``: one row per connection and window,
  updated under a row lock), or :class:`MemoryLedger` for one process.
* **Blocks.** A governor takes tokens in blocks (``block``, 10 by default) in one ledger round
  trip; tokens not spent within ``lease_seconds`` go back at the next round trip.
* **Learned limits.** The configured limits hold until the CRM's answers say otherwise: each
  answer's headers (an :class:`Observation`, read by the CRM's unit) give the CRM's own
  limits and how much remains, and raise the count when the CRM saw more calls than the
  ledger did (other apps sharing the portal, a process that died holding tokens).

The window is rolling: every grant is kept with its time, and a new grant is allowed only if
the grants of the last ``window_seconds + lease_seconds + margin_seconds`` stay within the
limit, so no stretch of ``window_seconds`` at the CRM ever sees more calls than the limit
(a token is spent within its lease, and reaches the CRM within the margin).

The accounting here is pure (state in, state and grant out); nothing here names a CRM or a
database.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from connector.adapters.errors import RunDeadlineExceeded, format_duration
from connector.adapters.retry import Deadline

log = logging.getLogger(__name__)

WINDOW = "window"
"""The CRM's short rolling window (HubSpot: 10 seconds)."""
DAY = "day"
"""The CRM's daily allocation (counted per UTC day)."""
KINDS = (WINDOW, DAY)

LEASE_SECONDS = 1.0
"""A block's tokens are spent within this long after the grant; the rest go back."""
MARGIN_SECONDS = 0.5
"""How long a call may take to reach the CRM after its token was taken (counted in the window)."""
DEFAULT_BLOCK = 10
"""Tokens a governor takes per ledger round trip."""
DEFAULT_RESERVE_PERCENT = 20.0
"""Share of the window and of the day kept for real time."""
MAX_POLL_SECONDS = 1.0
"""A waiting governor asks the ledger again at least this often (others may give tokens back)."""
UNCOUNTED_KINDS = frozenset({"auth"})
"""Kinds of call outside the CRM's API allocation (the OAuth token endpoint)."""
CRM_GRANT = "crm"
"""The id of window entries for calls the CRM saw and the ledger did not (from its headers)."""


class Priority(StrEnum):
    """Who is calling: real time may spend the reserve, background may not."""

    REALTIME = "realtime"
    """Events runs (what a CRM pushed) and form capture: a person waits for the answer."""
    BACKGROUND = "background"
    """Backfill and scheduled syncs (full, incremental): they can wait."""


@dataclass(frozen=True)
class LimitSetting:
    """One limit: the documented default, the admin's cap, and what the CRM says wins within the cap.

    Attributes:
        default: The limit the CRM documents; used until an answer says the CRM's own.
        cap: The most Relay allows itself whatever the CRM says (None: what the CRM says).

    Example:
        >>> LimitSetting(190).effective(None), LimitSetting(190).effective(250), LimitSetting(190, 100).effective(250)
        (190, 250, 100)
    """

    default: int
    cap: int | None = None

    def __post_init__(self) -> None:
        if self.default < 1:
            raise ValueError(f"a call limit must be >= 1, got {self.default}")
        if self.cap is not None and self.cap < 1:
            raise ValueError(f"a call limit cap must be >= 1, got {self.cap}")

    def effective(self, seen: int | None) -> int:
        """The limit in force when the CRM last said ``seen`` (None: it has not said)."""
        base = seen if seen is not None and seen > 0 else self.default
        return min(base, self.cap) if self.cap is not None else base


@dataclass(frozen=True)
class BudgetLimits:
    """The limits a connection spends within, and how tokens are handed out.

    Attributes:
        window: Calls per rolling window (None: the CRM has no short window, e.g. Salesforce).
        window_seconds: The window's length.
        day: Calls per day (None: no daily limit).
        reserve_percent: Share of each limit background work may not spend (0-90).
        block: Tokens taken per ledger round trip.
        lease_seconds: How long a block's tokens may be spent after the grant.
        margin_seconds: How long a call may take to reach the CRM.
    """

    window: LimitSetting | None = None
    window_seconds: float = 10.0
    day: LimitSetting | None = None
    reserve_percent: float = DEFAULT_RESERVE_PERCENT
    block: int = DEFAULT_BLOCK
    lease_seconds: float = LEASE_SECONDS
    margin_seconds: float = MARGIN_SECONDS

    def __post_init__(self) -> None:
        problems = []
        if not self.window_seconds > 0:
            problems.append(f"window_seconds must be > 0, got {self.window_seconds}")
        if not 0 <= self.reserve_percent <= 90:
            problems.append(f"reserve_percent must be within 0..90, got {self.reserve_percent}")
        if self.block < 1:
            problems.append(f"block must be >= 1, got {self.block}")
        if self.lease_seconds <= 0 or self.margin_seconds < 0:
            problems.append(f"lease_seconds must be > 0 and margin_seconds >= 0, got {self.lease_seconds} and "
                            f"{self.margin_seconds}")
        if problems:
            raise ValueError("API budget: " + "; ".join(problems))

    @property
    def span(self) -> float:
        """Seconds a grant counts in the window: the window, the lease and the margin."""
        return self.window_seconds + self.lease_seconds + self.margin_seconds

    def reserve(self, limit: int) -> int:
        """Calls of ``limit`` kept for real time."""
        return min(limit - 1, math.ceil(limit * self.reserve_percent / 100)) if limit > 1 else 0

    def usable(self, limit: int, priority: Priority) -> int:
        """Calls of ``limit`` that ``priority`` may spend."""
        return limit if priority is Priority.REALTIME else limit - self.reserve(limit)


@dataclass(frozen=True)
class Observation:
    """What one answer's headers said about the budget (read by the CRM's unit).

    Attributes:
        window_limit: Calls allowed per window (``X-HubSpot-RateLimit-Max``).
        window_remaining: Calls left in the window now (``-Remaining``).
        day_limit: Calls allowed per day (``-Daily``; Salesforce ``api-usage=N/M``: M).
        day_used: Calls made today (``-Daily`` less ``-Daily-Remaining``; Salesforce: N).
        refused: The answer refused the call for a limit (429, ``REQUEST_LIMIT_EXCEEDED``);
            its short-window figures are not used to correct the count (a refusal can say 0 left
            however soon the window frees).
        status: The answer's HTTP status.
        header: The header text as received, for ``relay status``.
    """

    window_limit: int | None = None
    window_remaining: int | None = None
    day_limit: int | None = None
    day_used: int | None = None
    refused: bool = False
    status: int | None = None
    header: str = ""

    @property
    def empty(self) -> bool:
        """Whether the answer said nothing about the budget."""
        return (self.window_limit, self.window_remaining, self.day_limit, self.day_used) == (None,) * 4

    def as_dict(self) -> dict[str, Any]:
        """The figures that were given, for the ledger's record of the last answer."""
        values = {"window_limit": self.window_limit, "window_remaining": self.window_remaining,
                  "day_limit": self.day_limit, "day_used": self.day_used, "status": self.status,
                  "refused": self.refused or None, "header": self.header or None}
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Seen:
    """An observation waiting to be applied at the next ledger round trip.

    Attributes:
        observation: What the answer said.
        calls_after: Calls this governor made after the observed one (the CRM will count
            them; the ledger already does).
    """

    observation: Observation
    calls_after: int = 0


@dataclass(frozen=True)
class Unused:
    """Tokens of a block that were not spent, given back at the next round trip.

    Attributes:
        grant: The grant's id.
        calls: How many tokens were left.
        period: The day the grant was counted in (``YYYY-MM-DD``, UTC).
    """

    grant: str
    calls: int
    period: str | None


@dataclass
class WindowState:
    """The rolling window of one connection.

    Attributes:
        limit_seen: The limit the CRM last said (None: not yet).
        grants: ``[grant id, epoch seconds, calls]`` of the grants still counted.
    """

    limit_seen: int | None = None
    grants: list[list[Any]] = field(default_factory=list)

    def prune(self, now: float, span: float) -> None:
        """Forget grants older than ``span`` seconds and empty ones."""
        self.grants = [g for g in self.grants if float(g[1]) > now - span and int(g[2]) > 0]

    def spent(self, now: float, span: float) -> int:
        """Calls counted in the window at ``now``."""
        return sum(int(g[2]) for g in self.grants if float(g[1]) > now - span)

    def frees_in(self, now: float, span: float, excess: int) -> float:
        """Seconds until at least ``excess`` counted calls leave the window."""
        freed = 0
        for _, at, calls in sorted(self.grants, key=lambda g: float(g[1])):
            freed += int(calls)
            if freed >= excess:
                return max(0.0, float(at) + span - now)
        return 0.0


@dataclass
class DayState:
    """The daily allocation of one connection.

    Attributes:
        limit_seen: The limit the CRM last said (None: not yet).
        period: The UTC day counted (``YYYY-MM-DD``).
        spent: Calls counted that day.
    """

    limit_seen: int | None = None
    period: str | None = None
    spent: int = 0

    def roll(self, today: str) -> None:
        """Start counting ``today`` if the day changed."""
        if self.period != today:
            self.period, self.spent = today, 0


@dataclass
class BudgetState:
    """Everything the ledger keeps for one connection.

    Attributes:
        window: The rolling window.
        day: The daily allocation.
        seen: What the last answer's headers said (``Observation.as_dict``), with ``at``.
    """

    window: WindowState = field(default_factory=WindowState)
    day: DayState = field(default_factory=DayState)
    seen: dict[str, Any] | None = None


@dataclass(frozen=True)
class Grant:
    """What a ledger round trip gave.

    Attributes:
        id: The grant's id (for giving tokens back).
        calls: Tokens granted (0: none free for this priority).
        period: The day the grant was counted in.
        wait: When ``calls`` is 0: seconds until one may be free.
        blocked_by: When ``calls`` is 0: the limit that is spent (``window`` or ``day``).
        limit: That limit's calls.
        usable: Of those, what the priority may spend.
        window_seconds: The window's length (for messages).
    """

    id: str
    calls: int
    period: str | None = None
    wait: float = 0.0
    blocked_by: str | None = None
    limit: int = 0
    usable: int = 0
    window_seconds: float = 0.0

    def describe(self, priority: Priority) -> str:
        """The spent limit in words: ``the 10 s window limit of 190 calls (152 for background work, ...)``."""
        if self.blocked_by == WINDOW:
            what = f"the {format_duration(self.window_seconds)} window limit of {self.limit} calls"
        else:
            what = f"the daily limit of {self.limit} calls"
        if self.usable < self.limit and priority is Priority.BACKGROUND:
            what += f" ({self.usable} for background work, {self.limit - self.usable} kept for real time)"
        return what


def utc_day(epoch: float) -> str:
    """The UTC day of ``epoch`` seconds, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(epoch: float) -> float:
    """Seconds from ``epoch`` to the next UTC midnight."""
    moment = datetime.fromtimestamp(epoch, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


def settle(
    state: BudgetState,
    limits: BudgetLimits,
    *,
    now: float,
    priority: Priority,
    want: int,
    returns: Sequence[Unused] = (),
    seen: Seen | None = None,
) -> Grant:
    """One ledger round trip on ``state`` (changed in place): give back, learn, then grant.

    Args:
        state: The connection's state, read under the ledger's lock.
        limits: The connection's configured limits.
        now: The ledger's clock, epoch seconds (one clock for every process: the database's).
        priority: Who asks.
        want: Tokens wanted (0: only give back and learn).
        returns: Unspent tokens of earlier grants.
        seen: The latest answer's headers, if any came since the last round trip.

    Returns:
        The grant: up to ``want`` tokens, as many as the tighter limit leaves for ``priority``
        (at least one, or none and how long until one frees).
    """
    today = utc_day(now)
    state.day.roll(today)
    for unused in returns:
        left = unused.calls
        for grant in state.window.grants:
            if grant[0] == unused.grant and left > 0:
                back = min(left, int(grant[2]))
                grant[2] = int(grant[2]) - back
                left -= back
        if unused.period == state.day.period:
            state.day.spent = max(0, state.day.spent - unused.calls)
    state.window.prune(now, limits.span)
    if seen is not None:
        _learn(state, limits, seen, now)
    grant_id = uuid.uuid4().hex[:12]
    free = want
    blocked: tuple[str, float, int, int] | None = None  # (limit name, wait, limit, usable)
    if limits.window is not None:
        limit = limits.window.effective(state.window.limit_seen)
        usable = limits.usable(limit, priority)
        spent = state.window.spent(now, limits.span)
        if spent >= usable:
            blocked = (WINDOW, state.window.frees_in(now, limits.span, spent - usable + 1), limit, usable)
        free = min(free, usable - spent)
    if limits.day is not None:
        limit = limits.day.effective(state.day.limit_seen)
        usable = limits.usable(limit, priority)
        if state.day.spent >= usable:
            wait = seconds_to_midnight(now)
            if blocked is None or wait > blocked[1]:
                blocked = (DAY, wait, limit, usable)
        free = min(free, usable - state.day.spent)
    if want <= 0:
        return Grant(grant_id, 0, state.day.period, window_seconds=limits.window_seconds)
    if blocked is not None or free < 1:
        name, wait, limit, usable = blocked or (WINDOW, 0.0, 0, 0)
        return Grant(grant_id, 0, state.day.period, wait=wait, blocked_by=name, limit=limit, usable=usable,
                     window_seconds=limits.window_seconds)
    if limits.window is not None:
        state.window.grants.append([grant_id, now, free])
    state.day.spent += free
    return Grant(grant_id, free, state.day.period, window_seconds=limits.window_seconds)


def _learn(state: BudgetState, limits: BudgetLimits, seen: Seen, now: float) -> None:
    """Apply what an answer's headers said: the CRM's limits, and a count the ledger never lowers."""
    said = seen.observation
    if said.window_limit is not None and said.window_limit > 0:
        state.window.limit_seen = said.window_limit
    if said.day_limit is not None and said.day_limit > 0:
        state.day.limit_seen = said.day_limit
    if limits.window is not None and said.window_remaining is not None and not said.refused:
        limit = said.window_limit or limits.window.effective(state.window.limit_seen)
        crm_count = max(0, limit - said.window_remaining) + seen.calls_after
        unseen = crm_count - state.window.spent(now, limits.span)
        if unseen > 0:  # calls the CRM counted that no grant of the ledger covers
            state.window.grants.append([CRM_GRANT, now, unseen])
    if limits.day is not None and said.day_used is not None:
        state.day.spent = max(state.day.spent, said.day_used + seen.calls_after)
    state.seen = {**said.as_dict(), "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")}


class BudgetLedger(Protocol):
    """Where a connection's budget is kept, one round trip at a time (atomically)."""

    def take(
        self,
        connection: str,
        limits: BudgetLimits,
        *,
        priority: Priority,
        want: int,
        returns: Sequence[Unused] = (),
        seen: Seen | None = None,
    ) -> Grant:
        """Give ``returns`` back, learn from ``seen``, and grant up to ``want`` tokens (see :func:`settle`)."""
        ...


class MemoryLedger:
    """A ledger in this process's memory (one process; tests and benchmarks).

    Args:
        clock: Epoch seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._states: dict[str, BudgetState] = {}
        self._lock = threading.Lock()

    def take(
        self,
        connection: str,
        limits: BudgetLimits,
        *,
        priority: Priority,
        want: int,
        returns: Sequence[Unused] = (),
        seen: Seen | None = None,
    ) -> Grant:
        """See :meth:`BudgetLedger.take`."""
        with self._lock:
            state = self._states.setdefault(connection, BudgetState())
            return settle(state, limits, now=self._clock(), priority=priority, want=want, returns=returns, seen=seen)

    def state(self, connection: str) -> BudgetState:
        """The connection's state (a live reference; read it, do not change it)."""
        with self._lock:
            return self._states.setdefault(connection, BudgetState())


class BudgetDeadlineExceeded(RunDeadlineExceeded):
    """No token frees before the run's deadline: the run stops, naming the connection and the limit."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("code", "API_BUDGET_EXHAUSTED")
        super().__init__(message, **kwargs)


@dataclass
class _Block:
    grant: str
    left: int
    period: str | None
    expires: float
    revoked: bool = False


class Governor:
    """Takes a token before each API call of one connection; waits when none is free.

    Args:
        connection: The connection's name (in messages and the ledger's key).
        ledger: Where the budget is kept (shared by every process of the connection).
        limits: The connection's limits.
        priority: Who calls through this governor (real time or background).
        crm: The CRM's kind, for messages.
        clock: Monotonic seconds (leases, waits).
        sleep: How to wait (inject a fake in tests).
        uncounted: Kinds of call outside the API allocation (never wait).

    Thread-safe: threads of one adapter share its blocks.
    """

    def __init__(
        self,
        connection: str,
        ledger: BudgetLedger,
        limits: BudgetLimits,
        *,
        priority: Priority = Priority.BACKGROUND,
        crm: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        uncounted: frozenset[str] = UNCOUNTED_KINDS,
    ) -> None:
        self.connection = connection
        self.ledger = ledger
        self.limits = limits
        self.priority = Priority(priority)
        self.crm = crm
        self._clock = clock
        self._sleep = sleep
        self._uncounted = uncounted
        self._block: _Block | None = None
        self._returns: list[Unused] = []
        self._seen: Observation | None = None
        self._seen_at_call = 0
        self._calls = 0
        self._lock = threading.Lock()
        self._seen_lock = threading.Lock()
        self.waited = 0.0
        """Seconds spent waiting for tokens (all calls so far)."""
        self.round_trips = 0
        """Ledger round trips so far."""

    def with_priority(self, priority: Priority) -> Governor:
        """A governor of the same connection, ledger and limits for ``priority`` (blocks of its own)."""
        return Governor(self.connection, self.ledger, self.limits, priority=priority, crm=self.crm,
                        clock=self._clock, sleep=self._sleep, uncounted=self._uncounted)

    def acquire(self, kind: str = "read", *, deadline: Deadline | None = None, context: str = "") -> None:
        """Take one token for a call of ``kind``; wait while none is free.

        Raises:
            BudgetDeadlineExceeded: the next token frees only after ``deadline`` (the message names
                the connection, the limit that is spent and when it frees).
        """
        if kind in self._uncounted:
            return
        with self._lock:
            announced = False
            while True:
                block = self._block
                if block is not None and block.left > 0 and not block.revoked and self._clock() < block.expires:
                    block.left -= 1
                    self._calls += 1
                    return
                started = self._clock()
                grant = self._round_trip(self.limits.block)
                if grant.calls > 0:
                    self._block = _Block(grant.id, grant.calls, grant.period, started + self.limits.lease_seconds)
                    continue
                wait = max(grant.wait, 0.01)
                if deadline is not None and wait >= deadline.remaining():
                    raise self._exceeded(grant, wait, deadline, context)
                if not announced:
                    log.info("connection %s: %s is spent; %s work waits %s for a token", self.connection,
                             grant.describe(self.priority), self.priority.value, format_duration(wait))
                    announced = True
                pause = min(wait, MAX_POLL_SECONDS)
                self._sleep(pause)
                self.waited += pause

    def observe(self, observation: Observation) -> None:
        """Note what an answer's headers said; applied at the next ledger round trip.

        When the CRM says fewer calls remain than this governor holds, its block is dropped, so
        the next call asks the ledger (which learns the CRM's count) instead of sending into a 429.
        """
        if observation.empty:
            return
        with self._seen_lock:
            self._seen = observation
            self._seen_at_call = self._calls
        block = self._block
        if block is None:
            return
        remaining = [r for r in (observation.window_remaining if not observation.refused else None,
                                 (observation.day_limit - observation.day_used)
                                 if observation.day_limit is not None and observation.day_used is not None else None)
                     if r is not None]
        if any(r < block.left for r in remaining):
            block.revoked = True

    def release(self) -> None:
        """Give back the tokens this governor holds (at the end of a run) and apply the last headers."""
        with self._lock:
            if self._block is None and self._seen is None and not self._returns:
                return
            self._round_trip(0)

    def _round_trip(self, want: int) -> Grant:
        """One ledger round trip: the current block's rest back, the latest headers, ``want`` tokens."""
        block = self._block
        if block is not None:
            if block.left > 0:
                self._returns.append(Unused(block.grant, block.left, block.period))
            self._block = None
        with self._seen_lock:
            seen = Seen(self._seen, self._calls - self._seen_at_call) if self._seen is not None else None
            self._seen = None
        grant = self.ledger.take(self.connection, self.limits, priority=self.priority, want=want,
                                 returns=list(self._returns), seen=seen)
        self._returns.clear()
        self.round_trips += 1
        return grant

    def _exceeded(self, grant: Grant, wait: float, deadline: Deadline, context: str) -> BudgetDeadlineExceeded:
        left = max(0.0, deadline.remaining())
        message = (f"{grant.describe(self.priority)} is spent; the next call frees in {format_duration(wait)}, "
                   f"past the run's limit of {format_duration(deadline.seconds)} ({deadline.setting}) with "
                   f"{format_duration(left)} left")
        return BudgetDeadlineExceeded(message, run_seconds=deadline.elapsed(), limit_seconds=deadline.seconds,
                                      crm=self.crm, context=context, connection=self.connection)

    def __repr__(self) -> str:
        return f"Governor({self.connection!r}, {self.priority.value}, {self.limits})"


def budget_limits(settings: Any) -> BudgetLimits:
    """The limits of a connection's settings (its CRM unit's model says the documented defaults).

    Reads ``api_window_calls`` (class default) / ``api_window_limit`` (the admin's cap),
    ``api_window_seconds``, ``api_daily_calls`` / ``api_daily_limit``, ``api_reserve_percent``
    and ``api_budget_block``; a model without them gets no limits (calls are never held).
    """
    window_default = getattr(settings, "api_window_calls", None)
    day_default = getattr(settings, "api_daily_calls", None)
    window = (LimitSetting(int(window_default), _optional_int(getattr(settings, "api_window_limit", None)))
              if window_default else None)
    day = LimitSetting(int(day_default), _optional_int(getattr(settings, "api_daily_limit", None))) if day_default \
        else None
    return BudgetLimits(
        window=window, window_seconds=float(getattr(settings, "api_window_seconds", 10.0) or 10.0), day=day,
        reserve_percent=float(getattr(settings, "api_reserve_percent", DEFAULT_RESERVE_PERCENT)),
        block=int(getattr(settings, "api_budget_block", DEFAULT_BLOCK)),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
