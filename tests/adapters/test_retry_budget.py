"""One retry budget per operation, timeouts that fit, a run deadline, and log lines that tell the truth.

The servers here are real sockets on ephemeral ports: a port nobody listens on (refused), and a
listening socket that never answers (read timeout). Waits are recorded, never slept.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3.exceptions

from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import (
    Action,
    AuthError,
    CrmError,
    FatalError,
    RateLimitedError,
    RetriableError,
    RunDeadlineExceeded,
)
from connector.adapters.retry import (
    Deadline,
    RetryPolicy,
    call_with_retry,
    deadline_applied,
    http_timeout,
)
from connector.crms.factory import build_adapter, run_deadline
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.hubspot.errors import translate_hubspot
from connector.crms.hubspot.settings import HubSpotConnection
from connector.crms.salesforce.adapter import SalesforceAdapter
from connector.crms.salesforce.errors import salesforce_translator

from ._sandbox_helpers import ledger_calls, sandbox_admin

RETRY_LOG = "connector.adapters.retry"


class FakeClock:
    """Monotonic seconds that move only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def fake_policy(clock: FakeClock, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0, **kwargs)


@pytest.fixture
def closed_port() -> int:
    """A port that was free a moment ago and that nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == RETRY_LOG]


def announced_attempts(lines: list[str]) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2])) for line in lines for m in re.finditer(r"attempt (\d+) of (\d+)", line)]


# --- one budget per operation --------------------------------------------------------------


def test_a_closed_port_fails_the_operation_after_a_few_token_attempts(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    adapter = SalesforceAdapter("sf-prod", f"http://127.0.0.1:{closed_port}", "id", "secret",
                                retry=fake_policy(clock))
    caplog.set_level(logging.INFO, logger=RETRY_LOG)
    with pytest.raises(RetriableError) as caught:
        adapter.describe("Lead")
    error = caught.value
    assert adapter.calls.by_kind() == {"auth": 3}  # not 6 x 6: the describe itself is never sent
    assert error.code == "CONNECTION_REFUSED" and error.attempts == 3
    assert sum(clock.waits) <= 2.0  # backoff 0.5 s + 1 s, not 96 s
    assert str(error).startswith("salesforce (connection sf-prod): describe Lead: OAuth token: CONNECTION_REFUSED: ")
    assert f"127.0.0.1:{closed_port} refused the connection" in str(error)
    lines = retry_lines(caplog)
    assert announced_attempts(lines) == [(2, 3), (3, 3)]
    assert lines[-1].endswith("gave up after 3 attempts (1.5 s)")


def test_a_port_that_never_answers_fails_within_the_budget(silent_port: int) -> None:
    clock = FakeClock()
    adapter = SalesforceAdapter("sf-prod", f"http://127.0.0.1:{silent_port}", "id", "secret",
                                timeout=(1, 0.5), retry=fake_policy(clock, max_attempts=3))
    with pytest.raises(RetriableError) as caught:
        adapter.describe("Lead")
    assert adapter.calls.by_kind() == {"auth": 3}
    assert caught.value.code == "READ_TIMEOUT"
    assert f"READ_TIMEOUT: no answer within 0.5 s from http://127.0.0.1:{silent_port}" in str(caught.value)
    assert len(clock.waits) == 2


def test_hubspot_read_timeouts_are_a_read_timeout_of_whole_seconds(silent_port: int) -> None:
    clock = FakeClock()
    adapter = HubSpotAdapter("hs-prod", f"http://127.0.0.1:{silent_port}", "token", timeout=(1, 0.5),
                             retry=fake_policy(clock, max_attempts=2))
    with pytest.raises(RetriableError) as caught:
        list(adapter.read("contacts", ["email"], None))
    assert adapter.calls.by_kind() == {"read": 2}
    assert str(caught.value) == (
        f"hubspot (connection hs-prod): list contacts: READ_TIMEOUT: no answer within 0.5 s from "
        f"http://127.0.0.1:{silent_port} (after 2 attempts in 0.5 s)"
    )


def test_a_failing_token_endpoint_uses_the_operations_budget(sf_url: str) -> None:
    clock = FakeClock()
    adapter = SalesforceAdapter("sf", sf_url, "sandbox", "sandbox", retry=fake_policy(clock, max_attempts=4))
    sandbox_admin(sf_url, "DELETE", "ledger")
    sandbox_admin(sf_url, "PUT", "faults", {"server_error": 1.0, "path_pattern": "oauth2/token"})
    with pytest.raises(RetriableError, match="after 4 attempts"):
        adapter.describe("Lead")
    assert adapter.calls.by_kind() == {"auth": 4}
    assert ledger_calls(sf_url) == 4
    assert len(clock.waits) == 3


def test_a_token_that_comes_back_lets_the_same_attempt_go_on(sf_url: str) -> None:
    clock = FakeClock()
    adapter = SalesforceAdapter("sf", sf_url, "sandbox", "sandbox", retry=fake_policy(clock))
    sandbox_admin(sf_url, "PUT", "faults", {"script": ["server_error", "server_error"]})
    assert adapter.describe("Lead")["name"] == "Lead"
    assert adapter.calls.by_kind() == {"auth": 3, "describe": 1}


# --- the retry loop and its log lines --------------------------------------------------------


class AlwaysFailing:
    def __init__(self, error: type[CrmError] = RetriableError, **kwargs: Any) -> None:
        self.calls = 0
        self.error = error
        self.kwargs = kwargs

    def __call__(self) -> str:
        self.calls += 1
        raise self.error(f"503 #{self.calls}", crm="salesforce", **self.kwargs)


def no_translation(exc: BaseException, context: str) -> CrmError | None:
    return None


def run(fn: Any, policy: RetryPolicy, **kwargs: Any) -> Any:
    return call_with_retry(fn, calls=ApiCallCounter(), kind="read", translate=no_translation, policy=policy,
                           context="query Lead", **kwargs)


@pytest.mark.parametrize("max_attempts", [1, 2, 4, 6])
def test_attempt_numbers_in_the_log_never_exceed_the_attempts_made(
    max_attempts: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    fn = AlwaysFailing()
    caplog.set_level(logging.INFO, logger=RETRY_LOG)
    with pytest.raises(RetriableError):
        run(fn, fake_policy(clock, max_attempts=max_attempts), connection="sf-prod")
    lines = retry_lines(caplog)
    retrying = [line for line in lines if "retrying in" in line]
    assert fn.calls == max_attempts
    assert len(retrying) == len(clock.waits) == max_attempts - 1
    assert announced_attempts(lines) == [(n, max_attempts) for n in range(2, max_attempts + 1)]
    gave_up = [line for line in lines if "gave up" in line]
    assert gave_up == ([] if max_attempts == 1 else [gave_up[0]])
    if max_attempts > 1:
        assert f"gave up after {max_attempts} attempts" in gave_up[0]


def test_retry_lines_name_connection_and_operation_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger=RETRY_LOG)
    with pytest.raises(RetriableError):
        run(AlwaysFailing(code="SERVER_UNAVAILABLE", status=503), fake_policy(clock, max_attempts=2),
            connection="sf-prod")
    first = retry_lines(caplog)[0]
    assert first == ("salesforce (connection sf-prod): query Lead: 503 SERVER_UNAVAILABLE: 503 #1; "
                     "retrying in 0.50 s (attempt 2 of 2)")


def test_unreachable_servers_get_fewer_attempts_than_busy_ones() -> None:
    clock = FakeClock()
    refused = AlwaysFailing(code="CONNECTION_REFUSED")
    busy = AlwaysFailing(code="SERVER_UNAVAILABLE")
    for fn in (refused, busy):
        with pytest.raises(RetriableError):
            run(fn, fake_policy(clock, max_attempts=6, unreachable_attempts=2))
    assert (refused.calls, busy.calls) == (2, 6)


def test_an_expired_session_costs_one_attempt_beyond_the_budget_at_most() -> None:
    clock = FakeClock()
    calls = ApiCallCounter()
    renewed: list[bool] = []

    def fn() -> str:
        if not renewed:
            raise AuthError("Session expired or invalid", crm="salesforce", action=Action.REFRESH_AUTH)
        raise RetriableError("503", crm="salesforce")

    with pytest.raises(RetriableError) as caught:
        call_with_retry(fn, calls=calls, kind="read", translate=no_translation, policy=fake_policy(clock, max_attempts=3),
                        refresh_auth=lambda: renewed.append(True))
    assert renewed == [True]
    assert calls.total == caught.value.attempts == 4


# --- the run deadline ------------------------------------------------------------------------


def test_no_retry_wait_ends_past_the_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock=clock)
    fn = AlwaysFailing()
    with pytest.raises(RunDeadlineExceeded) as caught:
        run(fn, fake_policy(clock, max_attempts=10).with_deadline(deadline), connection="sf-prod")
    error = caught.value
    assert clock.waits == [0.5, 1.0, 2.0, 4.0]  # the next wait, 8 s, would end at 15.5 s
    assert fn.calls == 5
    assert isinstance(error, FatalError) and error.code == "RUN_DEADLINE_EXCEEDED"
    assert error.run_seconds == 7.5 and error.limit_seconds == 10
    assert isinstance(error.__cause__, RetriableError)
    assert str(error).startswith("salesforce (connection sf-prod): query Lead: RUN_DEADLINE_EXCEEDED: the run has "
                                 "taken 7.5 s and a retry in 8 s would end past its limit of 10 s "
                                 "(run_deadline_minutes); last error: 503 #5")


def test_no_call_starts_after_the_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline.minutes(30, clock=clock)
    clock.now += 31 * 60
    fn = AlwaysFailing()
    with pytest.raises(RunDeadlineExceeded, match=r"the run has taken 31 min, past its limit of 30 min"):
        run(fn, fake_policy(clock).with_deadline(deadline))
    assert fn.calls == 0


def test_a_retry_after_past_the_deadline_stops_the_run() -> None:
    clock = FakeClock()
    fn = AlwaysFailing(RateLimitedError, retry_after=20)
    with pytest.raises(RunDeadlineExceeded):
        run(fn, fake_policy(clock).with_deadline(Deadline(15, clock=clock)))
    assert fn.calls == 1 and clock.waits == []


def test_pauses_respect_the_deadline_too() -> None:
    clock = FakeClock()
    policy = fake_policy(clock).with_deadline(Deadline(5, clock=clock))
    policy.pause(2, context="bulk job poll")
    with pytest.raises(RunDeadlineExceeded, match="bulk job poll"):
        policy.pause(4, context="bulk job poll")
    assert clock.waits == [2]


def test_a_deadline_reaches_an_adapter_and_is_lifted_after_the_run(closed_port: int) -> None:
    clock = FakeClock()
    adapter = SalesforceAdapter("sf", f"http://127.0.0.1:{closed_port}", "id", "secret", retry=fake_policy(clock))
    own = adapter.retry
    deadline = Deadline(1, clock=clock)
    with deadline_applied(adapter, deadline):
        assert adapter.retry.deadline is deadline
        with pytest.raises(RunDeadlineExceeded):
            adapter.describe("Lead")  # refused: waits 0.5 s, then the 1 s wait would end past 1 s
    assert adapter.retry is own
    assert adapter.calls.by_kind() == {"auth": 2}


def _Connection() -> HubSpotConnection:
    return HubSpotConnection.model_validate({
        "kind": "hubspot", "base_url": "http://127.0.0.1:9", "connect_timeout": 2, "read_timeout": 20,
        "max_attempts": 4, "run_deadline_minutes": 45, "credentials": {"access_token": "token"}})


def test_the_factory_reads_timeouts_attempts_and_deadline_from_the_connection() -> None:
    clock = FakeClock()
    deadline = run_deadline(_Connection(), clock=clock)
    assert deadline is not None and deadline.seconds == 45 * 60
    adapter = build_adapter("hs", _Connection(), deadline=deadline)
    assert isinstance(adapter, HubSpotAdapter)
    assert adapter.timeout == (2.0, 20.0)
    assert adapter.retry.max_attempts == 4 and adapter.retry.deadline is deadline


# --- timeouts and error text -----------------------------------------------------------------


@pytest.mark.parametrize(("given", "pair"), [(None, (5.0, 60.0)), (30, (5.0, 30.0)), (2, (2.0, 2.0)),
                                             ((1, 0.5), (1.0, 0.5))])
def test_timeouts_are_connect_and_read_pairs(given: Any, pair: tuple[float, float]) -> None:
    assert http_timeout(given) == pair


@pytest.mark.parametrize("bad", [0, -1, (1, 0), (1, 2, 3)])
def test_bad_timeouts_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        http_timeout(bad)


def _read_timeout(seconds: str) -> requests.exceptions.ReadTimeout:
    pool = urllib3.HTTPSConnectionPool("x.my.salesforce.com", 443)
    inner = urllib3.exceptions.ReadTimeoutError(pool, "/services/data", f"Read timed out. (read timeout={seconds})")
    request = requests.Request("GET", "https://x.my.salesforce.com/services/data/v59.0/query").prepare()
    return requests.exceptions.ReadTimeout(inner, request=request)


def test_a_read_timeout_is_one_clean_line_with_whole_seconds() -> None:
    exc = _read_timeout("60.000000000000004")

    def fn() -> None:
        raise exc

    with pytest.raises(RetriableError) as caught:
        call_with_retry(fn, calls=ApiCallCounter(), kind="read", translate=salesforce_translator(),
                        policy=RetryPolicy(max_attempts=1), context="query Lead", connection="sf-prod")
    assert str(caught.value) == ("salesforce (connection sf-prod): query Lead: READ_TIMEOUT: no answer within 60 s "
                                 "from https://x.my.salesforce.com")
    assert caught.value.__cause__ is exc


def test_a_connect_timeout_is_not_a_read_timeout() -> None:
    pool = urllib3.HTTPConnectionPool("api.example", 80)
    inner = urllib3.exceptions.ConnectTimeoutError(None, "Connection to api.example timed out. (connect timeout=5)")
    error = translate_hubspot(urllib3.exceptions.MaxRetryError(pool, "/crm/v3", inner), "search contacts")
    assert isinstance(error, RetriableError) and error.code == "CONNECT_TIMEOUT"
    assert error.message == "could not connect to http://api.example:80 within 5 s"


def test_a_dropped_connection_says_what_dropped() -> None:
    pool = urllib3.HTTPConnectionPool("api.example", 80)
    inner = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    error = translate_hubspot(urllib3.exceptions.MaxRetryError(pool, "/crm/v3", inner), "list contacts")
    assert isinstance(error, RetriableError) and error.code == "CONNECTION_ERROR"
    assert error.message == ("connection to http://api.example:80 failed: ConnectionResetError: "
                             "[Errno 104] Connection reset by peer")


def test_an_error_named_by_its_step_is_not_named_twice() -> None:
    def fn() -> None:
        raise RetriableError("busy", crm="hubspot", code="SERVER_ERROR", context="query Lead")

    with pytest.raises(RetriableError) as caught:
        call_with_retry(fn, calls=ApiCallCounter(), kind="read", translate=no_translation,
                        policy=RetryPolicy(max_attempts=1), context="query Lead", connection="hubspot")
    assert str(caught.value) == "hubspot (connection hubspot): query Lead: SERVER_ERROR: busy"
    setup = CrmError("Lead lacks field(s)", crm="salesforce", code="MISSING_FIELDS", context="connection sf",
                     connection="sf")
    assert str(setup) == "salesforce (connection sf): MISSING_FIELDS: Lead lacks field(s)"
