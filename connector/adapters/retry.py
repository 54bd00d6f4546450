"""One retry policy for every CRM call: tenacity, exponential backoff with jitter, Retry-After.

Only :class:`~connector.adapters.errors.RetriableError` is retried. A wait the
CRM announced with ``Retry-After`` is used as given (capped); otherwise the wait
grows exponentially with jitter up to a cap. Every attempt is counted in the
adapter's :class:`~connector.adapters.calls.ApiCallCounter`. An expired session
(:attr:`Action.REFRESH_AUTH`) is renewed once through a callback and the call
tried again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import Action, AuthError, CrmError, RetriableError

T = TypeVar("T")
log = logging.getLogger(__name__)

Translator = Callable[[BaseException, str], CrmError | None]
"""Turns an SDK or transport exception into Relay's error (None: not a CRM error, re-raise)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: Attempts in all, the first included.
        initial_wait: Seconds before the second attempt (without Retry-After).
        multiplier: Growth of the wait per attempt.
        max_wait: Cap on any single wait, Retry-After included.
        jitter: Fraction of the wait that is random (0.25: wait between 75% and 100%).
        sleep: How to wait (inject a fake in tests).
        random: Source of jitter in [0, 1) (inject a fixed one in tests).
    """

    max_attempts: int = 6
    initial_wait: float = 0.5
    multiplier: float = 2.0
    max_wait: float = 30.0
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_wait < 0 or self.max_wait < 0:
            problems.append(f"waits must be >= 0, got initial_wait={self.initial_wait}, max_wait={self.max_wait}")
        if self.multiplier < 1:
            problems.append(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            problems.append(f"jitter must be within 0..1, got {self.jitter}")
        if problems:
            raise ValueError("RetryPolicy: " + "; ".join(problems))

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


NO_RETRY = RetryPolicy(max_attempts=1)


def call_with_retry(
    fn: Callable[[], T],
    *,
    calls: ApiCallCounter,
    kind: str,
    translate: Translator,
    policy: RetryPolicy,
    context: str = "",
    refresh_auth: Callable[[], object] | None = None,
) -> T:
    """Call ``fn`` (one HTTP call) under the retry policy.

    Args:
        fn: Makes exactly one HTTP call through the SDK.
        calls: Where each attempt is counted.
        kind: The kind of call (read, write, search, describe...).
        translate: Turns the SDK's exceptions into Relay's errors.
        policy: Attempts, waits and caps.
        context: What the call does, for messages (``query Lead``).
        refresh_auth: Renews the session; called at most once, on an expired session.

    Returns:
        What ``fn`` returned.

    Raises:
        RetriableError: still failing after ``policy.max_attempts`` attempts.
        FatalError: auth, permission, configuration or daily-limit errors.
        RecordError: the CRM refused the record(s) of this call.
    """
    refreshed = False
    while True:
        try:
            return _run(fn, calls=calls, kind=kind, translate=translate, policy=policy, context=context)
        except CrmError as error:
            if error.action is not Action.REFRESH_AUTH:
                raise
            if refresh_auth is None or refreshed:
                if isinstance(error, AuthError):
                    raise
                raise AuthError(error.message, crm=error.crm, status=error.status, code=error.code,
                                context=error.context) from error
            log.info("%s: session expired, authenticating again", context or kind)
            refresh_auth()
            refreshed = True


def _run(
    fn: Callable[[], T],
    *,
    calls: ApiCallCounter,
    kind: str,
    translate: Translator,
    policy: RetryPolicy,
    context: str,
) -> T:
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        calls.add(kind)
        try:
            return fn()
        except CrmError as error:
            if not error.context:
                error.context = context
            raise
        except Exception as exc:
            translated = translate(exc, context)
            if translated is None:
                raise
            raise translated from exc

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        seconds = policy.wait_for(error, state.attempt_number)
        log.warning("%s: %s; retrying in %.2f s (attempt %d of %d)",
                    context or kind, error, seconds, state.attempt_number + 1, policy.max_attempts)
        return seconds

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception_type(RetriableError),
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except CrmError as error:
        error.attempts = attempts
        raise
