"""The retry policy: Retry-After honoured and capped, backoff with jitter, only retriable errors retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import (
    Action,
    AuthError,
    ConfigurationError,
    CrmError,
    RateLimitedError,
    RecordError,
    RetriableError,
)
from connector.adapters.retry import RetryPolicy, call_with_retry


class Script:
    """A call that fails with the scripted errors, then answers ``result``."""

    def __init__(self, *errors: BaseException, result: str = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def policy(waits: list[float], **kwargs: float) -> RetryPolicy:
    return RetryPolicy(sleep=waits.append, random=lambda: 0.0, **kwargs)  # type: ignore[arg-type]


def no_translation(exc: BaseException, context: str) -> CrmError | None:
    return None


def run(fn: Callable[[], str], pol: RetryPolicy, counter: ApiCallCounter | None = None, **kwargs: object) -> str:
    return call_with_retry(fn, calls=counter or ApiCallCounter(), kind="read", translate=no_translation,
                           policy=pol, context="query Lead", **kwargs)  # type: ignore[arg-type]


def test_retry_after_is_used_as_the_wait() -> None:
    waits: list[float] = []
    fn = Script(RateLimitedError("slow down", retry_after=7), RateLimitedError("again", retry_after=2))
    assert run(fn, policy(waits)) == "ok"
    assert waits == [7.0, 2.0]
    assert fn.calls == 3


def test_retry_after_is_capped() -> None:
    waits: list[float] = []
    run(Script(RateLimitedError("daily-ish", retry_after=3600)), policy(waits, max_wait=30))
    assert waits == [30.0]


def test_exponential_backoff_without_retry_after() -> None:
    waits: list[float] = []
    fn = Script(*(RetriableError("503") for _ in range(4)))
    run(fn, policy(waits, initial_wait=0.5, multiplier=2, max_wait=3))
    assert waits == [0.5, 1.0, 2.0, 3.0]


def test_jitter_shortens_waits_within_its_fraction() -> None:
    waits: list[float] = []
    pol = RetryPolicy(sleep=waits.append, random=lambda: 0.999, jitter=0.5, initial_wait=2)
    run(Script(RetriableError("503")), pol)
    assert 1.0 <= waits[0] < 2.0


def test_every_attempt_is_counted() -> None:
    counter = ApiCallCounter()
    run(Script(RetriableError("503"), RetriableError("503")), policy([]), counter)
    assert counter.by_kind() == {"read": 3}


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    waits: list[float] = []
    counter = ApiCallCounter()
    fn = Script(*(RetriableError(f"503 #{i}", crm="salesforce") for i in range(10)))
    with pytest.raises(RetriableError) as caught:
        run(fn, policy(waits, max_attempts=4), counter)
    assert fn.calls == 4 and counter.total == 4 and len(waits) == 3
    assert caught.value.attempts == 4
    assert "503 #3" in str(caught.value) and "after 4 attempts" in str(caught.value)


@pytest.mark.parametrize("error", [ConfigurationError("bad query"), RecordError("bad email"), AuthError("no")])
def test_errors_that_are_not_retriable_fail_at_once(error: CrmError) -> None:
    waits: list[float] = []
    fn = Script(error)
    with pytest.raises(type(error)):
        run(fn, policy(waits))
    assert fn.calls == 1 and waits == []


def test_sdk_exceptions_are_translated_before_deciding() -> None:
    def translate(exc: BaseException, context: str) -> CrmError | None:
        return RetriableError(f"{context}: {exc}") if isinstance(exc, ConnectionError) else None

    fn = Script(ConnectionError("reset"))
    result = call_with_retry(fn, calls=ApiCallCounter(), kind="read", translate=translate, policy=policy([]),
                             context="query Lead")
    assert result == "ok" and fn.calls == 2


def test_foreign_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError):
        run(Script(KeyError("bug")), policy([]))


def test_expired_session_is_renewed_once_then_retried() -> None:
    refreshed: list[bool] = []
    expired = AuthError("Session expired or invalid", action=Action.REFRESH_AUTH)
    fn = Script(expired)
    assert run(fn, policy([]), refresh_auth=lambda: refreshed.append(True)) == "ok"
    assert refreshed == [True] and fn.calls == 2


def test_a_session_that_stays_expired_is_an_auth_error() -> None:
    refreshed: list[bool] = []
    fn = Script(*(AuthError("Session expired or invalid", action=Action.REFRESH_AUTH) for _ in range(3)))
    with pytest.raises(AuthError, match="Session expired"):
        run(fn, policy([]), refresh_auth=lambda: refreshed.append(True))
    assert refreshed == [True] and fn.calls == 2


def test_without_a_way_to_renew_an_expired_session_is_an_auth_error() -> None:
    with pytest.raises(AuthError):
        run(Script(AuthError("expired", action=Action.REFRESH_AUTH)), policy([]))


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"max_wait": -1}, {"jitter": 2}, {"multiplier": 0.5}])
def test_bad_policies_are_refused_by_name(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    attempt=st.integers(min_value=1, max_value=50),
    max_wait=st.floats(min_value=0, max_value=120),
    jitter=st.floats(min_value=0, max_value=1),
    roll=st.floats(min_value=0, max_value=0.999999),
)
def test_waits_never_exceed_the_cap(retry_after: float | None, attempt: int, max_wait: float, jitter: float,
                                    roll: float) -> None:
    pol = RetryPolicy(max_wait=max_wait, jitter=jitter, random=lambda: roll)
    wait = pol.wait_for(RetriableError("x", retry_after=retry_after), attempt)
    assert 0 <= wait <= max_wait
    if retry_after is not None:
        assert wait == min(max_wait, retry_after)
