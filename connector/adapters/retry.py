"""One retry policy for every CRM call: one attempt budget per operation, backoff with jitter, a run deadline.

Built on tenacity. Only :class:`~connector.adapters.errors.RetriableError` is retried. A wait the
CRM announced with ``Retry-After`` is used as given (capped); otherwise the wait
grows exponentially with jitter up to a cap. Every HTTP attempt is counted in
the adapter's :class:`~connector.adapters.calls.ApiCallCounter`.

One operation has one budget of ``max_attempts``: what an attempt needs first
(a token request when there is no session, see ``prepare``) is part of the
attempt, never a retry loop of its own, so attempts never multiply. A server
that cannot be reached at all (connection refused, connect timeout) gets
``unreachable_attempts`` only. An expired session (:attr:`Action.REFRESH_AUTH`)
is renewed once per operation and the call made once more.

A :class:`Deadline` bounds a whole run: no attempt starts after it and no wait
ends past it; :class:`~connector.adapters.errors.RunDeadlineExceeded` stops the run.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type

from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import (
    UNREACHABLE_CODES,
    Action,
    AuthError,
    CrmError,
    RetriableError,
    RunDeadlineExceeded,
    format_duration,
)

if TYPE_CHECKING:
    from connector.adapters.budget import Governor

T = TypeVar("T")
log = logging.getLogger(__name__)

Translator = Callable[[BaseException, str], CrmError | None]
"""Turns an SDK or transport exception into Relay's error (None: not a CRM error, re-raise)."""

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to establish a connection: a server that does not accept in 5 s is not reachable."""
DEFAULT_READ_TIMEOUT = 60.0
"""Seconds to wait for an answer once connected (a big query page or describe can take a while)."""

HttpTimeout = tuple[float, float]
"""``(connect, read)`` seconds, as requests and urllib3 (the HubSpot SDK's ``_request_timeout``) take it."""


def http_timeout(value: float | tuple[float, float] | None = None) -> HttpTimeout:
    """A ``(connect, read)`` timeout pair from what an adapter was given.

    Args:
        value: None for the defaults (5 s, 60 s); a pair as is; a single number is the read
            timeout, with the connect timeout the shorter of it and 5 s.

    Raises:
        ValueError: a timeout that is not a positive number.
    """
    if value is None:
        connect, read = DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
    elif isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"timeout must be seconds or a (connect, read) pair, got {value!r}")
        connect, read = float(value[0]), float(value[1])
    else:
        read = float(value)
        connect = min(DEFAULT_CONNECT_TIMEOUT, read)
    if not (connect > 0 and read > 0):
        raise ValueError(f"timeouts must be > 0 seconds, got connect={connect}, read={read}")
    return connect, read


class Deadline:
    """The total time one run may take, on a monotonic clock.

    Args:
        seconds: The limit.
        clock: Seconds on a monotonic clock (inject a fake in tests).
        setting: The setting that sets the limit, named in the error.

    Example:
        >>> ticks = iter([0.0, 90.0])
        >>> deadline = Deadline(60, clock=lambda: next(ticks))
        >>> deadline.expired()
        True
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 setting: str = "run_deadline_minutes") -> None:
        if not seconds > 0:
            raise ValueError(f"a run deadline must be > 0 seconds, got {seconds}")
        self.seconds = float(seconds)
        self.clock = clock
        self.setting = setting
        self.started = clock()

    @classmethod
    def minutes(cls, minutes: float, **kwargs: Any) -> Deadline:
        """A deadline ``minutes`` from now."""
        return cls(minutes * 60, **kwargs)

    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock() - self.started

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.seconds - self.elapsed()

    def expired(self) -> bool:
        """Whether the time is up."""
        return self.remaining() <= 0

    def exceeded(self, *, context: str = "", connection: str = "", crm: str = "", wait: float | None = None,
                 last_error: CrmError | None = None) -> RunDeadlineExceeded:
        """The error that stops the run (not raised here).

        Args:
            context: The call that was about to start or be retried.
            connection: The connection's name.
            crm: ``salesforce`` or ``hubspot``.
            wait: The retry wait that would have ended past the deadline, if that is why.
            last_error: The failure that was being retried, if any.
        """
        elapsed = self.elapsed()
        message = f"the run has taken {format_duration(elapsed)}"
        if wait is not None and elapsed < self.seconds:
            message += f" and a retry in {format_duration(wait)} would end past its limit"
        else:
            message += ", past its limit"
        message += f" of {format_duration(self.seconds)} ({self.setting})"
        if last_error is not None:
            label = " ".join(str(p) for p in (last_error.status, last_error.code) if p)
            message += f"; last error: {label + ': ' if label else ''}{last_error.message}"
        return RunDeadlineExceeded(message, run_seconds=elapsed, limit_seconds=self.seconds, crm=crm,
                                   context=context, connection=connection)

    def __repr__(self) -> str:
        return f"Deadline({format_duration(self.elapsed())} of {format_duration(self.seconds)})"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: Attempts in all per operation, the first included (authentication included).
        unreachable_attempts: Attempts in all when the server is not reached at all
            (connection refused, connect timeout): a closed port fails in seconds.
        initial_wait: Seconds before the second attempt (without Retry-After).
        multiplier: Growth of the wait per attempt.
        max_wait: Cap on any single wait, Retry-After included.
        jitter: Fraction of the wait that is random (0.25: wait between 75% and 100%).
        sleep: How to wait (inject a fake in tests).
        random: Source of jitter in [0, 1) (inject a fixed one in tests).
        clock: Monotonic seconds, for the time an operation took (inject a fake in tests).
        deadline: The run's deadline, if any (see :meth:`with_deadline`).
    """

    max_attempts: int = 6
    unreachable_attempts: int = 3
    initial_wait: float = 0.5
    multiplier: float = 2.0
    max_wait: float = 30.0
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    deadline: Deadline | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.unreachable_attempts < 1:
            problems.append(f"unreachable_attempts must be >= 1, got {self.unreachable_attempts}")
        if self.initial_wait < 0 or self.max_wait < 0:
            problems.append(f"waits must be >= 0, got initial_wait={self.initial_wait}, max_wait={self.max_wait}")
        if self.multiplier < 1:
            problems.append(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            problems.append(f"jitter must be within 0..1, got {self.jitter}")
        if problems:
            raise ValueError("RetryPolicy: " + "; ".join(problems))

    def with_deadline(self, deadline: Deadline | None) -> RetryPolicy:
        """The same policy bounded by ``deadline`` (None: no deadline)."""
        return replace(self, deadline=deadline)

    def single_attempt(self) -> RetryPolicy:
        """The same policy (sleep, clock, deadline) with one attempt: for a step inside a retried operation."""
        return replace(self, max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based) when the CRM named none."""
        base = min(self.max_wait, self.initial_wait * self.multiplier ** max(0, attempt - 1))
        return base * (1.0 - self.jitter * self.random())

    def wait_for(self, error: BaseException | None, attempt: int) -> float:
        """The wait before the next attempt: Retry-After when given (capped), else backoff."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(self.max_wait, max(0.0, float(retry_after)))
        return self.backoff(attempt)

    def attempts_for(self, error: CrmError) -> int:
        """Attempts in all for an operation failing with ``error``."""
        if error.code in UNREACHABLE_CODES:
            return min(self.max_attempts, self.unreachable_attempts)
        return self.max_attempts

    def pause(self, seconds: float, *, context: str = "") -> None:
        """Sleep ``seconds`` (a poll interval, a pass between writer drains) unless that ends past the deadline.

        Raises:
            RunDeadlineExceeded: the wait would end past the run's deadline.
        """
        if self.deadline is not None and seconds >= self.deadline.remaining():
            raise self.deadline.exceeded(context=context, wait=seconds)
        self.sleep(seconds)


NO_RETRY = RetryPolicy(max_attempts=1)


@contextmanager
def deadline_applied(adapter: Any, deadline: Deadline | None) -> Iterator[None]:
    """Bound every call ``adapter`` makes inside the block by ``deadline``; the adapter's policy is restored after.

    Args:
        adapter: A ``CrmAdapter`` (its ``retry`` is the :class:`RetryPolicy` its calls use).
        deadline: The run's deadline (None: leave the adapter alone).
    """
    if deadline is None:
        yield
        return
    policy: RetryPolicy = adapter.retry
    adapter.retry = policy.with_deadline(deadline)
    try:
        yield
    finally:
        adapter.retry = policy


def call_with_retry(
    fn: Callable[[], T],
    *,
    calls: ApiCallCounter,
    kind: str,
    translate: Translator,
    policy: RetryPolicy,
    context: str = "",
    refresh_auth: Callable[[], object] | None = None,
    prepare: Callable[[], object] | None = None,
    connection: str = "",
    crm: str = "",
    governor: Governor | None = None,
) -> T:
    """Call ``fn`` (one HTTP call) under the retry policy: one attempt budget for the whole operation.

    Args:
        fn: Makes exactly one HTTP call through the SDK.
        calls: Where each attempt is counted.
        kind: The kind of call (read, write, search, describe...).
        translate: Turns the SDK's exceptions into Relay's errors.
        policy: Attempts, waits, caps and the run's deadline.
        context: What the call does, for messages (``query Lead``).
        refresh_auth: Forgets (or renews) an expired session; called at most once, after which
            the call is made once more (that one extra attempt is the only one beyond the budget).
        prepare: Runs at the start of every attempt, before ``fn`` (e.g. one token request when there
            is no session); it counts its own HTTP calls and its failures use up the same budget.
        connection: The connection's name, for messages.
        crm: ``salesforce`` or ``hubspot``, for messages of errors Relay raises itself.
        governor: The connection's API budget: each attempt takes a token first (waiting while none
            is free, never past the deadline; see ``connector/adapters/budget.py``).

    Returns:
        What ``fn`` returned.

    Raises:
        RetriableError: still failing after the attempts the policy allows.
        RunDeadlineExceeded: the run's deadline passed, or a retry would end past it.
        FatalError: auth, permission, configuration or daily-limit errors.
        RecordError: the CRM refused the record(s) of this call.
    """
    started = policy.clock()
    deadline = policy.deadline
    where = context or kind
    attempts = 0  # HTTP calls of fn made so far (the one after a renewed session included)
    refreshed = False
    past_deadline: float | None = None  # the retry wait that would have ended past the deadline

    def once() -> T:
        nonlocal attempts
        attempts += 1
        try:
            if prepare is not None:
                prepare()
            if governor is not None:
                governor.acquire(kind, deadline=policy.deadline, context=context)
            calls.add(kind)
            return fn()
        except CrmError as error:
            failure = error
        except Exception as exc:
            translated = translate(exc, context)
            if translated is None:
                raise
            translated.__cause__ = exc
            translated.__suppress_context__ = True
            failure = translated
        _name(failure, context=context, connection=connection)
        raise failure

    def attempt() -> T:
        nonlocal refreshed
        if deadline is not None and deadline.expired():
            raise deadline.exceeded(context=where, connection=connection, crm=crm)
        try:
            return once()
        except CrmError as failure:
            if failure.action is not Action.REFRESH_AUTH:
                raise
            if refresh_auth is None or refreshed:
                raise _as_auth_error(failure) from failure
            log.info("%s: session expired, authenticating again", _where(connection, where))
            refresh_auth()
            refreshed = True
        try:
            return once()  # the one call after a renewed session
        except CrmError as failure:
            if failure.action is Action.REFRESH_AUTH:
                raise _as_auth_error(failure) from failure
            raise

    def allowed(error: BaseException | None) -> int:
        budget = policy.attempts_for(error) if isinstance(error, CrmError) else policy.max_attempts
        return budget + (1 if refreshed else 0)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return policy.wait_for(error, attempts - (1 if refreshed else 0))

    def stop(state: RetryCallState) -> bool:  # tenacity computes the wait first: upcoming_sleep is known
        nonlocal past_deadline
        error = state.outcome.exception() if state.outcome is not None else None
        if attempts >= allowed(error):
            return True
        if deadline is not None and state.upcoming_sleep >= deadline.remaining():
            past_deadline = state.upcoming_sleep
            return True
        return False

    def before_sleep(state: RetryCallState) -> None:  # only when another attempt will really be made
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s; retrying in %.2f s (attempt %d of %d)", error, state.upcoming_sleep, attempts + 1,
                    allowed(error))

    retrying = Retrying(stop=stop, wait=wait, retry=retry_if_exception_type(RetriableError),
                        before_sleep=before_sleep, sleep=policy.sleep, reraise=True)
    try:
        return retrying(attempt)
    except CrmError as failure:
        spent = policy.clock() - started
        if past_deadline is not None and deadline is not None:
            exceeded = deadline.exceeded(context=where, connection=connection, crm=str(failure.crm),
                                         wait=past_deadline, last_error=failure)
            raise _finished(exceeded, attempts, spent) from failure
        if isinstance(failure, RetriableError) and attempts > 1:
            log.warning("%s; gave up after %d attempts (%s)", failure, attempts, format_duration(spent))
        raise _finished(failure, attempts, spent) from failure.__cause__


def _name(error: CrmError, *, context: str, connection: str) -> None:
    """Say, once, which connection and which operation the error belongs to."""
    if connection and not error.connection:
        error.connection = connection
    if not context or error.context == context:
        return
    if not error.context:
        error.context = context
    elif not error.context.startswith(f"{context}: "):
        error.context = f"{context}: {error.context}"  # a step of the operation, e.g. "describe Lead: OAuth token"


def _finished(error: CrmError, attempts: int, elapsed: float) -> CrmError:
    error.attempts = attempts
    error.elapsed = elapsed
    return error


def _as_auth_error(error: CrmError) -> AuthError:
    if isinstance(error, AuthError) and error.action is not Action.REFRESH_AUTH:
        return error
    auth = AuthError(error.message, crm=error.crm, status=error.status, code=error.code, context=error.context,
                     connection=error.connection, action=Action.FAIL)
    auth.__cause__ = error
    return auth


def _where(connection: str, context: str) -> str:
    return f"connection {connection}: {context}" if connection else context
