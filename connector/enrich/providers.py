"""Enrichment providers: the port (``Provider``) and the configurable HTTP JSON provider.

A provider answers one lookup — a company by domain, a person by email — with one of three
outcomes, and never raises into its caller:

* ``found``: canonical person field -> value, read from the answer through the configured
  JSON paths and converted to the field's type;
* ``not_found``: 404 (or 204, or an answer holding none of the mapped fields);
* ``failed``: with the reason, e.g. ``timeout after 3 attempts (5 s each)``, ``HTTP 503 after
  3 attempts``, ``malformed JSON at $.metrics: expected an object, got a list of 2``.

:class:`HttpJsonProvider` speaks to any API that answers JSON over HTTP (Clearbit-, People Data
Labs- or Hunter-shaped) on httpx, with tenacity retries of 429 (honouring ``Retry-After``), 5xx,
timeouts and dropped connections, bounded by ``max_attempts``; a per-provider token bucket; and
an outage guard: after ``failures_before_pause`` failed lookups in a row the provider is not
called for ``pause_seconds`` (each lookup fails at once with the reason), so an outage costs a
sync seconds, never its run.

Example (a Clearbit-like answer, mapped by ``$.category.industry: industry``)::

    {"name": "Initech", "category": {"industry": "Software"}, "metrics": {"employees": 850}}
    -> ProviderAnswer(outcome="found", values={"company": "Initech", "industry": "Software", "employees": 850})
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connector.enrich._jsonpath import MalformedAnswer, extract, parse_path
from connector.enrich.settings import (
    ENRICHABLE_FIELDS,
    PLACEHOLDER,
    EnrichmentFile,
    LookupKind,
    ProviderSettings,
)

log = logging.getLogger(__name__)

Outcome = Literal["found", "not_found", "failed"]

_MAX_BACKOFF_SECONDS = 30.0
_SNIPPET = 160


@dataclass(frozen=True)
class ProviderAnswer:
    """What one provider said about one key.

    Attributes:
        provider: The provider's name.
        kind: ``company`` or ``person``.
        key: The domain or email asked about.
        outcome: ``found``, ``not_found`` or ``failed``.
        values: Canonical person field -> value (``found`` only).
        reason: Why nothing was found, or why the lookup failed.
        attempts: HTTP requests made (0: answered without a call, e.g. the provider is paused).
        cacheable: False for an answer that must not be reused (a failure, a 202 "still looking").
    """

    provider: str
    kind: LookupKind
    key: str
    outcome: Outcome
    values: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    attempts: int = 0
    cacheable: bool = True


class Provider(Protocol):
    """An enrichment source: answers a lookup, never raises."""

    name: str

    def lookup(self, kind: LookupKind, key: str) -> ProviderAnswer:
        """Ask about ``key`` (a domain for ``company``, an email for ``person``)."""
        ...


class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

    Args:
        rate: Tokens added per second.
        burst: The bucket's size (requests that may go at once after a quiet spell).
        clock: Monotonic seconds.
        sleep: Waits (tests pass a fake that advances their clock).
    """

    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting until there is one; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait


class _Retriable(Exception):
    """An attempt that may succeed when repeated (429, 5xx, timeout, dropped connection)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, final: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.final = final or reason


class HttpJsonProvider:
    """A provider over HTTP that answers JSON, configured by a :class:`ProviderSettings`.

    Args:
        settings: The provider's entry of enrichment.yaml.
        client: The httpx client to send with (tests pass one; default: a client of its own,
            closed by :meth:`close`).
        clock: Monotonic seconds (rate limit, outage pause).
        sleep: Waits between attempts and for the rate limit.
        rng: Jitter of the backoff.
    """

    def __init__(self, settings: ProviderSettings, *, client: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self._own_client = client is None
        self._client = client or httpx.Client(follow_redirects=True)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.bucket = TokenBucket(settings.rate_limit_per_second, settings.burst, clock=clock, sleep=sleep)
        self._mapping = settings.mapping()
        self._error_steps = parse_path(settings.error_path) if settings.error_path else None
        self._lock = threading.Lock()
        self._failures_in_a_row = 0
        self._last_failure = ""
        self._paused_until: float | None = None
        self.requests = 0
        """HTTP requests sent so far (every attempt counts)."""

    def close(self) -> None:
        """Close the HTTP client if this provider made it."""
        if self._own_client:
            self._client.close()

    # ------------------------------------------------------------------------------ the lookup
    def lookup(self, kind: LookupKind, key: str) -> ProviderAnswer:
        """Ask the provider about ``key``; every failure becomes a ``failed`` answer with its reason.

        Args:
            kind: Must be the provider's ``lookup``.
            key: A domain (``company``) or an email address (``person``), already normalised.

        Returns:
            The answer; never raises for anything the provider or the network does.
        """
        if kind != self.settings.lookup:
            return self._answer(kind, key, "failed", reason=f"provider {self.name} answers {self.settings.lookup} "
                                                            f"lookups, not {kind}", cacheable=False)
        paused = self._pause_reason()
        if paused is not None:
            return self._answer(kind, key, "failed", reason=paused, cacheable=False)
        attempts = 0

        def attempt() -> ProviderAnswer:
            nonlocal attempts
            attempts += 1
            return self._attempt(kind, key, attempts)

        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retriable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            answer = retrying(attempt)
        except _Retriable as exc:
            answer = self._answer(kind, key, "failed", reason=f"{exc.final} after {attempts} attempt"
                                                              f"{'s' if attempts != 1 else ''}{self._per_attempt(exc)}",
                                  attempts=attempts, cacheable=False)
        except Exception as exc:  # a provider never raises into its caller: an unexpected error is a failure
            log.exception("enrichment provider %s: unexpected error looking up %s", self.name, key)
            answer = self._answer(kind, key, "failed", reason=f"unexpected error: {type(exc).__name__}: {exc}",
                                  attempts=attempts, cacheable=False)
        self._note(answer)
        return answer

    def _per_attempt(self, exc: _Retriable) -> str:
        return f" ({self.settings.timeout_seconds:g} s each)" if exc.final == "timeout" else ""

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Retriable) and error.retry_after is not None:
            return error.retry_after
        backoff = min(self.settings.backoff_seconds * 2 ** (state.attempt_number - 1), _MAX_BACKOFF_SECONDS)
        return backoff * (0.5 + self._rng.random() / 2)

    def _attempt(self, kind: LookupKind, key: str, number: int) -> ProviderAnswer:
        self.bucket.acquire()
        self.requests += 1
        try:
            response = self._send(key)
        except httpx.TimeoutException as exc:
            raise _Retriable(f"timeout ({type(exc).__name__})", final="timeout") from exc
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise _Retriable(f"connection failed ({detail})",
                             final=f"connection failed ({type(exc).__name__}: {detail})") from exc
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.settings.max_retry_after_seconds:
                return self._answer(kind, key, "failed", attempts=number, cacheable=False,
                                    reason=f"rate limited (HTTP 429): the provider asked to wait {wait:g} s, more "
                                           f"than max_retry_after_seconds ({self.settings.max_retry_after_seconds:g})")
            raise _Retriable("rate limited (HTTP 429)", retry_after=wait)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise _Retriable(f"HTTP {status}")
        if status in (HTTPStatus.NOT_FOUND, HTTPStatus.NO_CONTENT, HTTPStatus.GONE):
            return self._answer(kind, key, "not_found", attempts=number,
                                reason=f"{self.name} knows no {kind} {key} (HTTP {status})")
        if status == HTTPStatus.ACCEPTED:
            return self._answer(kind, key, "not_found", attempts=number, cacheable=False,
                                reason=f"{self.name} is still looking {key} up (HTTP 202); asked again next time")
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            return self._answer(kind, key, "failed", attempts=number, cacheable=False,
                                reason=f"authentication refused (HTTP {status}) by {self._host()}: check "
                                       f"{self.settings.auth_header} (auth_value of provider {self.name})")
        if status != HTTPStatus.OK:
            return self._answer(kind, key, "failed", attempts=number, cacheable=False,
                                reason=f"HTTP {status} from {self._host()}: {snippet(response.text)}")
        return self._read(kind, key, response, number)

    def _send(self, key: str) -> httpx.Response:
        placeholder = "{" + PLACEHOLDER[self.settings.lookup] + "}"
        url = self.settings.url.replace(placeholder, quote(key, safe="@"))
        headers = {"Accept": "application/json"}
        secret = self.settings.auth_value.get_secret_value()
        if secret:
            headers[self.settings.auth_header] = secret
        body = ({name: text.replace(placeholder, key) for name, text in self.settings.body.items()}
                if self.settings.body is not None else None)
        return self._client.request(self.settings.method, url, headers=headers, json=body,
                                    timeout=self.settings.timeout_seconds)

    def _read(self, kind: LookupKind, key: str, response: httpx.Response, number: int) -> ProviderAnswer:
        if not response.content.strip():
            return self._answer(kind, key, "not_found", attempts=number,
                                reason=f"{self.name} answered an empty body for {kind} {key}")
        try:
            document = json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._answer(kind, key, "failed", attempts=number, cacheable=False,
                                reason=f"malformed JSON: not JSON ({exc}); the body starts "
                                       f"{snippet(response.text, 60)!r}")
        if document is None or document == {}:
            return self._answer(kind, key, "not_found", attempts=number,
                                reason=f"{self.name} answered an empty body for {kind} {key}")
        try:
            if not isinstance(document, dict):
                raise MalformedAnswer("$", f"expected an object, got {type(document).__name__}")
            if self._error_steps is not None:
                error = extract(document, self._error_steps)
                if error not in (None, "", {}, []):
                    return self._answer(kind, key, "failed", attempts=number, cacheable=False,
                                        reason=f"{self.name} answered HTTP 200 with an error at "
                                               f"{self.settings.error_path}: {_error_text(error)}")
            values = self._values(document)
        except MalformedAnswer as exc:
            return self._answer(kind, key, "failed", attempts=number, cacheable=False, reason=str(exc))
        if not values:
            return self._answer(kind, key, "not_found", attempts=number,
                                reason=f"{self.name} answered for {kind} {key} without any mapped field")
        return self._answer(kind, key, "found", values=values, attempts=number)

    def _values(self, document: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for path, steps, target in self._mapping:
            raw = extract(document, steps)
            value = convert(raw, ENRICHABLE_FIELDS[target], path)
            if value is not None and target not in values:
                values[target] = value
        return values

    # ------------------------------------------------------------------------------ outage guard
    def _pause_reason(self) -> str | None:
        with self._lock:
            if self._paused_until is None:
                return None
            left = self._paused_until - self._clock()
            if left <= 0:
                return None  # one lookup may try; _note pauses again if it fails
            return (f"provider {self.name} is paused for {left:.0f} s more after {self._failures_in_a_row} failed "
                    f"lookups in a row (last: {self._last_failure})")

    def _note(self, answer: ProviderAnswer) -> None:
        with self._lock:
            if answer.outcome != "failed":
                self._failures_in_a_row = 0
                self._paused_until = None
                return
            if answer.attempts == 0:
                return  # answered without asking (paused): not a new failure
            self._failures_in_a_row += 1
            self._last_failure = answer.reason or "failed"
            if self._failures_in_a_row >= self.settings.failures_before_pause and self.settings.pause_seconds > 0:
                self._paused_until = self._clock() + self.settings.pause_seconds
                log.warning("enrichment provider %s paused for %g s after %d failed lookups in a row (last: %s)",
                            self.name, self.settings.pause_seconds, self._failures_in_a_row, self._last_failure)

    # ------------------------------------------------------------------------------ helpers
    def _answer(self, kind: LookupKind, key: str, outcome: Outcome, *, values: Mapping[str, Any] | None = None,
                reason: str | None = None, attempts: int = 0, cacheable: bool = True) -> ProviderAnswer:
        return ProviderAnswer(self.name, kind, key, outcome, dict(values or {}), reason, attempts, cacheable)

    def _host(self) -> str:
        return urlsplit(self.settings.url).netloc or self.settings.url


def open_providers(settings: EnrichmentFile, *, client: httpx.Client | None = None,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> dict[str, HttpJsonProvider]:
    """One :class:`HttpJsonProvider` per configured provider, by name (close them when done).

    Args:
        settings: enrichment.yaml.
        client: One httpx client for all (default: each its own).
        clock: Monotonic seconds.
        sleep: Waits.
    """
    return {p.name: HttpJsonProvider(p, client=client, clock=clock, sleep=sleep) for p in settings.providers}


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (seconds or an HTTP date); None when absent or unreadable."""
    if header is None or not header.strip():
        return None
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def convert(value: Any, kind: str, where: str) -> Any:
    """``value`` from an answer as a canonical field of type ``kind``; None for null or blank.

    Raises:
        MalformedAnswer: the value cannot be that type (``'lots'`` for employees), naming ``where``.
    """
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        shown = "an object" if isinstance(value, dict) else f"a list of {len(value)}"
        raise MalformedAnswer(where, f"expected a single value, got {shown}")
    if kind == "str":
        if isinstance(value, bool):
            raise MalformedAnswer(where, f"expected text, got a boolean ({value!r})")
        text = " ".join(str(value).split())
        return text or None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise MalformedAnswer(where, f"expected true or false, got {value!r}")
    if isinstance(value, bool):
        raise MalformedAnswer(where, f"expected a number, got a boolean ({value!r})")
    number: float
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise MalformedAnswer(where, f"expected a number, got {value!r}") from None
    else:
        raise MalformedAnswer(where, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise MalformedAnswer(where, f"expected a finite number, got {value!r}")
    if kind == "int":
        if number != int(number):
            raise MalformedAnswer(where, f"expected a whole number, got {value!r}")
        return int(number)
    return float(number)


def snippet(text: str, limit: int = _SNIPPET) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        for key in ("message", "error", "type", "code"):
            if isinstance(error.get(key), str) and error[key].strip():
                return snippet(error[key])
        return snippet(json.dumps(error))
    return snippet(str(error))


__all__ = [
    "HttpJsonProvider",
    "Outcome",
    "Provider",
    "ProviderAnswer",
    "TokenBucket",
    "convert",
    "open_providers",
    "retry_after_seconds",
]
