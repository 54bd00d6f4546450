"""What both sandbox CRMs share: the call ledger and fault injection.

The sandboxes stand in for the real Salesforce and HubSpot APIs. They import
nothing from the rest of Relay (see DESIGN.md): they are a second, independent
implementation of the API contract, so a mistake in Relay's adapters cannot
cancel out against the same mistake here.

Both pieces are plain ASGI middleware around a Starlette app:

* :class:`Ledger` keeps one entry per request a server received (method,
  path, status, records read and written), served at ``GET /__sandbox/ledger``
  with totals and cleared by ``DELETE /__sandbox/ledger``.
* :class:`FaultInjector` decides, deterministically under a seed, whether a
  request is answered with a rate-limit error (with ``Retry-After``), a server
  error, added latency or a dropped connection, is slowed down or held past the
  client's timeout, is applied and then loses its answer, or gets a malformed
  200 (not JSON, an HTML page, a truncated body, the CRM's error object, a read
  page that repeats itself, lacks an id or has wrong-typed values), and whether
  a record inside a batch write fails. Settings come from CLI flags and, at run
  time, from ``GET/PUT/DELETE /__sandbox/faults`` (see :class:`FaultSettings`).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX = "/__sandbox/"
COUNTER_KEY = "sandbox.counter"

#: A CRM-specific error answer: (status, extra headers, JSON body).
ErrorAnswer = tuple[int, dict[str, str], Any]


@dataclass
class CallCounter:
    """Per-request tally that handlers fill in (records read and written)."""

    read: int = 0
    written: int = 0
    kind: str = ""


def call_counter(scope: Scope) -> CallCounter:
    """Return the counter of the request being served (a fresh one outside the middleware)."""
    counter = scope.get(COUNTER_KEY)
    if counter is None:
        counter = CallCounter()
        scope[COUNTER_KEY] = counter
    assert isinstance(counter, CallCounter)
    return counter


@dataclass(frozen=True)
class LedgerEntry:
    """One request a sandbox server received."""

    at: float
    method: str
    path: str
    status: int
    records_read: int
    records_written: int
    duration_ms: float
    kind: str
    fault: str | None
    detail: str | None = None


class Ledger:
    """Thread-safe record of every call a server received."""

    def __init__(self, server: str, max_entries: int = 1_000_000) -> None:
        self.server = server
        self._max = max_entries
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def add(self, entry: LedgerEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._max:
                del self._entries[: len(self._entries) - self._max]

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def totals(self) -> dict[str, Any]:
        """Totals over the ledger: calls, records, and calls by method, status and kind."""
        entries = self.entries()
        return {
            "calls": len(entries),
            "records_read": sum(e.records_read for e in entries),
            "records_written": sum(e.records_written for e in entries),
            "by_method": dict(Counter(e.method for e in entries)),
            "by_status": {str(k): v for k, v in Counter(e.status for e in entries).items()},
            "by_kind": dict(Counter(e.kind or "other" for e in entries)),
            "faults": dict(Counter(e.fault for e in entries if e.fault)),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "totals": self.totals(),
            "entries": [asdict(e) for e in self.entries()],
        }


#: Request-level faults, in the order their probabilities are stacked on the one random roll a
#: request gets (the first three come first so older settings keep their sequence under a seed).
REQUEST_FAULTS = (
    "rate_limit",
    "server_error",
    "drop",
    "slow",
    "hold",
    "lost_after_apply",
    "invalid_json",
    "html",
    "truncated",
    "error_200",
    "repeat_page",
    "missing_id",
    "wrong_types",
)
#: Faults answered instead of the CRM, with status 200 (the request is not applied).
REPLACED_BODY_FAULTS = ("invalid_json", "html", "error_200")
#: Faults that rewrite the CRM's own answer once it is computed (the request is applied).
REWRITTEN_BODY_FAULTS = ("truncated", "repeat_page", "missing_id", "wrong_types")
#: Faults that only fit a read page (query/list/search/batch read answer).
PAGE_FAULTS = ("repeat_page", "missing_id", "wrong_types")
#: Names accepted in ``script`` (``latency`` is accepted for compatibility and injects nothing).
FAULT_KINDS = (*REQUEST_FAULTS, "latency")
SCRIPT_KEYS = ("fault", "path", "method")
SCRIPT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
MAX_HOLD_SECONDS = 3600.0
MAX_SLOW_MS = 600_000


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ScriptedFault:
    """One entry of a fault script: the fault and the requests it waits for.

    Attributes:
        fault: one of :data:`FAULT_KINDS`.
        path: regular expression searched in the request path (None: any path).
        method: HTTP method the request must have (None: any).
    """

    fault: str
    path: re.Pattern[str] | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether a request ``method path`` takes this entry."""
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None


def parse_script_entry(item: Any, where: str) -> tuple[ScriptedFault | None, list[str]]:
    """A script entry from its JSON form (a fault name, or ``{"fault", "path"?, "method"?}``).

    Args:
        item: the JSON value.
        where: its position for messages, e.g. ``script[2]``.

    Returns:
        The entry (None when invalid) and the problems, each naming the key and the value.
    """
    if isinstance(item, str):
        item = {"fault": item}
        spot = where
    elif isinstance(item, dict):
        spot = f"{where}.fault"
    else:
        return None, [f"{where}: must be a fault name or an object {{fault, path?, method?}}, got {item!r}"]
    problems = [f"{where}.{key}: unknown key (known: {', '.join(SCRIPT_KEYS)}), got {item[key]!r}" for key in item if key not in SCRIPT_KEYS]
    fault = item.get("fault")
    if fault not in FAULT_KINDS:
        problems.append(f"{spot}: must be one of {', '.join(FAULT_KINDS)}, got {fault!r}")
    pattern: re.Pattern[str] | None = None
    raw_path = item.get("path")
    if raw_path is not None:
        if not isinstance(raw_path, str):
            problems.append(f"{where}.path: must be a regular expression string, got {raw_path!r}")
        else:
            try:
                pattern = re.compile(raw_path)
            except re.error as exc:
                problems.append(f"{where}.path: not a regular expression ({exc}), got {raw_path!r}")
    method = item.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in SCRIPT_METHODS):
        problems.append(f"{where}.method: must be one of {', '.join(SCRIPT_METHODS)}, got {method!r}")
    if problems:
        return None, problems
    return ScriptedFault(str(fault), pattern, method.upper() if isinstance(method, str) else None), []


@dataclass
class FaultSettings:
    """How often each fault happens. Probabilities are per request (per record for partial failures).

    One random roll per request picks at most one of the request faults, so their probabilities
    must add up to at most 1.

    Attributes:
        rate_limit: probability of a rate-limit answer (429 with ``Retry-After``).
        retry_after: seconds announced in ``Retry-After``.
        server_error: probability of a 503 answer.
        drop: probability that the connection is closed without an answer (nothing applied).
        latency_ms: latency added to every request.
        partial_failure: probability that one record of a batch write fails.
        slow: probability that a request waits a random delay drawn from ``slow_ms``, then completes.
        slow_ms: ``[min, max]`` of that delay in milliseconds.
        hold: probability that the answer is held ``hold_seconds`` (the request is applied first);
            the hold ends early when the client goes away or the server stops (connection closed).
        hold_seconds: how long a held answer is held.
        lost_after_apply: probability that the request is applied (writes land, the ledger counts
            them) and the connection is then closed without an answer.
        invalid_json: probability of a 200 whose JSON-typed body is not JSON (nothing applied).
        html: probability of a 200 ``text/html`` maintenance page (nothing applied).
        truncated: probability that a JSON answer is cut in half (Content-Length of the cut body;
            the request is applied).
        error_200: probability of a 200 whose body is the CRM's error object (nothing applied).
        repeat_page: probability that a read page's next link repeats the page just served.
        missing_id: probability that one record of a read page lacks its id.
        wrong_types: probability that one record of a read page has wrong-typed values.
        path_pattern: regular expression; only matching paths get faults (all when empty).
        script: faults to inject, in order, into the next matching requests, before the
            probabilities apply: fault names (``"server_error"``) or objects
            ``{"fault": "repeat_page", "path": "/query", "method": "GET"}`` whose ``path`` (a
            regular expression) and ``method`` choose the requests they wait for. A body fault
            that does not fit the answer (e.g. ``repeat_page`` on a write) waits for the next request.
        seed: seed of the random sequence that decides the faults.
    """

    rate_limit: float = 0.0
    retry_after: float = 1.0
    server_error: float = 0.0
    drop: float = 0.0
    latency_ms: int = 0
    partial_failure: float = 0.0
    slow: float = 0.0
    slow_ms: list[int] = field(default_factory=lambda: [200, 2000])
    hold: float = 0.0
    hold_seconds: float = 120.0
    lost_after_apply: float = 0.0
    invalid_json: float = 0.0
    html: float = 0.0
    truncated: float = 0.0
    error_200: float = 0.0
    repeat_page: float = 0.0
    missing_id: float = 0.0
    wrong_types: float = 0.0
    path_pattern: str = ""
    script: list[str | dict[str, Any]] = field(default_factory=list)
    seed: int = 0

    def validate(self) -> list[str]:
        """Return the problems with these settings (empty when valid), each naming the key and the value."""
        problems = []
        for name in (*REQUEST_FAULTS, "partial_failure"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
                problems.append(f"{name}: must be a probability between 0 and 1, got {value!r}")
        if not problems:
            total = sum(float(getattr(self, name)) for name in REQUEST_FAULTS)
            if total > 1.0 + 1e-9:
                parts = ", ".join(f"{name}={getattr(self, name)}" for name in REQUEST_FAULTS if getattr(self, name))
                problems.append(f"{parts}: the request fault probabilities add up to {total:g}, at most 1 is possible")
        if not _is_number(self.retry_after) or self.retry_after < 0:
            problems.append(f"retry_after: must be >= 0 seconds, got {self.retry_after!r}")
        if not isinstance(self.latency_ms, int) or isinstance(self.latency_ms, bool) or self.latency_ms < 0:
            problems.append(f"latency_ms: must be a non-negative integer, got {self.latency_ms!r}")
        bounds = self.slow_ms
        if (
            not isinstance(bounds, (list, tuple))
            or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or not 0 <= bounds[0] <= bounds[1] <= MAX_SLOW_MS
        ):
            problems.append(f"slow_ms: must be [min, max] integer milliseconds with 0 <= min <= max <= {MAX_SLOW_MS}, got {bounds!r}")
        if not _is_number(self.hold_seconds) or not 0 < self.hold_seconds <= MAX_HOLD_SECONDS:
            problems.append(f"hold_seconds: must be a number of seconds above 0 and at most {MAX_HOLD_SECONDS:g}, got {self.hold_seconds!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            problems.append(f"seed: must be an integer, got {self.seed!r}")
        if not isinstance(self.script, list):
            problems.append(f"script: must be a list of fault names or objects, got {self.script!r}")
        else:
            for index, item in enumerate(self.script):
                problems.extend(parse_script_entry(item, f"script[{index}]")[1])
        if not isinstance(self.path_pattern, str):
            problems.append(f"path_pattern: must be a regular expression string, got {self.path_pattern!r}")
        else:
            try:
                re.compile(self.path_pattern)
            except re.error as exc:
                problems.append(f"path_pattern: not a regular expression ({exc}), got {self.path_pattern!r}")
        return problems

    def scripted(self) -> list[ScriptedFault]:
        """The script as entries (the settings must be valid)."""
        entries = []
        for index, item in enumerate(self.script):
            entry, problems = parse_script_entry(item, f"script[{index}]")
            if entry is None:
                raise ValueError("; ".join(problems))
            entries.append(entry)
        return entries

    @classmethod
    def from_json(cls, data: Any) -> FaultSettings:
        """Build settings from a JSON object; raises ``ValueError`` naming every bad key."""
        if not isinstance(data, dict):
            raise ValueError(f"fault settings must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown fault settings: {', '.join(f'{k}={data[k]!r}' for k in unknown)} (known: {', '.join(sorted(known))})"
            )
        try:
            settings = cls(**data)
        except TypeError as exc:  # pragma: no cover - guarded by the key check above
            raise ValueError(str(exc)) from exc
        problems = settings.validate()
        if problems:
            raise ValueError("; ".join(problems))
        return settings


@dataclass(frozen=True)
class FaultDecision:
    """The fault chosen for one request.

    Attributes:
        kind: one of :data:`REQUEST_FAULTS` (or ``latency`` from an old script: no fault).
        delay: seconds to wait first (``slow``).
        entry: the script entry it came from (None: from the probabilities).
    """

    kind: str
    delay: float = 0.0
    entry: ScriptedFault | None = None


class FaultInjector:
    """Decides the faults, deterministically for a given seed and request order."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(self, settings: FaultSettings) -> None:
        problems = settings.validate()
        if problems:
            raise ValueError("; ".join(problems))
        with self._lock:
            self._settings = settings
            self._script = settings.scripted()
            self._random = random.Random(settings.seed)
            self._pattern = re.compile(settings.path_pattern) if settings.path_pattern else None

    def _applies(self, path: str) -> bool:
        return self._pattern is None or self._pattern.search(path) is not None

    def decide(self, method: str, path: str) -> FaultDecision | None:
        """The fault for a request ``method path``: the first script entry it matches, else the roll."""
        if path.startswith(ADMIN_PREFIX):
            return None
        with self._lock:
            if not self._applies(path):
                return None
            s = self._settings
            for index, entry in enumerate(self._script):
                if entry.matches(method, path):
                    del self._script[index]
                    return FaultDecision(entry.fault, self._slow_delay() if entry.fault == "slow" else 0.0, entry)
            total = 0.0
            for name in REQUEST_FAULTS:
                total += getattr(s, name)
            if not total:
                return None
            roll = self._random.random()
            edge = 0.0
            for name in REQUEST_FAULTS:
                edge += getattr(s, name)
                if roll < edge:
                    return FaultDecision(name, self._slow_delay() if name == "slow" else 0.0)
            return None

    def _slow_delay(self) -> float:
        low, high = self._settings.slow_ms
        return self._random.randint(low, high) / 1000.0

    def give_back(self, decision: FaultDecision) -> None:
        """Put a scripted fault that did not fit its request back at the head of the script."""
        if decision.entry is not None:
            with self._lock:
                self._script.insert(0, decision.entry)

    def pending(self) -> int:
        """How many script entries wait for a request."""
        with self._lock:
            return len(self._script)

    def pick(self, count: int) -> int:
        """A seeded choice in ``range(count)`` (which record of a page a fault spoils)."""
        with self._lock:
            return self._random.randrange(count)

    def request_fault(self, path: str) -> str | None:
        """The fault kind for a request to ``path`` (any method), or None."""
        decision = self.decide("GET", path)
        return decision.kind if decision else None

    def record_fails(self, path: str) -> bool:
        """Whether one record of a batch write to ``path`` fails (partial batch failure)."""
        with self._lock:
            s = self._settings
            if not s.partial_failure or not self._applies(path):
                return False
            return self._random.random() < s.partial_failure

    @property
    def latency_seconds(self) -> float:
        return self._settings.latency_ms / 1000.0

    @property
    def hold_seconds(self) -> float:
        return float(self._settings.hold_seconds)


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    """Send a complete JSON answer on a raw ASGI ``send``."""
    payload = _json_bytes(body)
    raw_headers = [(b"content-type", b"application/json;charset=UTF-8"), (b"content-length", str(len(payload)).encode())]
    for key, value in (headers or {}).items():
        raw_headers.append((key.lower().encode(), value.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _drop_connection(send: Send) -> bool:
    """Close the TCP connection under uvicorn without answering; False if not possible."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.close()
    return True


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


@dataclass(frozen=True)
class Exchange:
    """What a body fault knows about the request it spoils.

    Attributes:
        method: HTTP method.
        path: request path.
        query: raw query string.
        body: the request body as received.
    """

    method: str
    path: str
    query: str
    body: bytes


INVALID_JSON_BODY = b'{"status": OK, "results": [<!-- the upstream answered with a body that is not JSON -->'


class AnswerFaults:
    """The CRM-specific side of the malformed-answer faults.

    The defaults fit no page: the page faults then do not apply. The CRMs override them.
    Page methods change ``body`` (the parsed JSON answer) in place and return a short
    description of what they spoiled, or None when the answer is not a page they fit.
    """

    server_name = "CRM"

    def error_200(self) -> Any:
        """The CRM's error object, sent with status 200."""
        return {"error": "internal error"}

    def maintenance_page(self) -> str:
        """The HTML maintenance page sent with status 200."""
        return (
            "<!DOCTYPE html><html><head><title>Down for maintenance</title></head><body>"
            f"<h1>{self.server_name} is down for maintenance</h1>"
            "<p>We are performing scheduled maintenance. We should be back online shortly.</p></body></html>"
        )

    def repeat_page(self, body: Any, exchange: Exchange) -> str | None:
        """Make the page's next link repeat the page just served."""
        return None

    def missing_id(self, body: Any, exchange: Exchange, pick: Callable[[int], int]) -> str | None:
        """Remove the id of one record of the page (``pick(n)`` chooses among ``n`` candidates)."""
        return None

    def wrong_types(self, body: Any, exchange: Exchange, pick: Callable[[int], int]) -> str | None:
        """Give one record of the page wrong-typed values."""
        return None


@dataclass
class _Captured:
    """An answer the app produced, held back by the middleware."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    started: bool = False

    def header(self, name: bytes) -> str:
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == name), "")


async def _send_raw(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    kept.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


_POLL_SECONDS = 0.05
_AFTER_APP_FAULTS = ("hold", "lost_after_apply", *REWRITTEN_BODY_FAULTS)


class SandboxMiddleware:
    """ASGI middleware: the admin endpoints, the ledger and the request-level faults.

    Args:
        app: the CRM app.
        ledger: where calls are recorded.
        faults: the fault injector.
        rate_limited: builds the CRM's own rate-limit answer for a ``Retry-After`` in seconds.
        server_error: builds the CRM's own 503 answer.
        on_request: optional hook called for every non-admin request before the app
            (the CRMs use it for their own limits); it may return an answer that
            replaces the app's.
        answers: the CRM-specific malformed answers (error object, pages).

    Attributes:
        closing: set while the server stops: held answers and delays end at once.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ledger: Ledger,
        faults: FaultInjector,
        rate_limited: Callable[[float], ErrorAnswer],
        server_error: Callable[[], ErrorAnswer],
        on_request: Callable[[Scope], ErrorAnswer | None] | None = None,
        answers: AnswerFaults | None = None,
    ) -> None:
        self.app = app
        self.ledger = ledger
        self.faults = faults
        self.rate_limited = rate_limited
        self.server_error = server_error
        self.on_request = on_request
        self.answers = answers or AnswerFaults()
        self.closing = threading.Event()

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` without blocking the loop; ends early when the server stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.closing.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, _POLL_SECONDS))

    async def _hold(self, receive: Receive, seconds: float) -> str:
        """Hold for ``seconds``; returns ``elapsed``, ``client gone`` or ``server stopping``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            while not self.closing.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return "elapsed"
                done, _ = await asyncio.wait({gone}, timeout=min(remaining, _POLL_SECONDS))
                if done:
                    return "client gone"
            return "server stopping"
        finally:
            gone.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX):
            await self._admin(scope, receive, send)
            return

        started = time.perf_counter()
        counter = call_counter(scope)
        status_holder = {"status": 0}
        detail: str | None = None

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = int(message["status"])
            await send(message)

        decision = self.faults.decide(scope["method"], path)
        fault = decision.kind if decision else None
        if self.faults.latency_seconds:
            await self._pause(self.faults.latency_seconds)
        if decision is not None and fault == "slow":
            detail = f"delayed {round(decision.delay * 1000)} ms"
            await self._pause(decision.delay)
        if fault == "drop" and _drop_connection(send):
            status_holder["status"] = 0
            await asyncio.sleep(0)  # let the server see the closed connection before returning
        elif fault == "rate_limit":
            status, headers, body = self.rate_limited(self.faults.settings.retry_after)
            await send_json(recording_send, status, body, headers)
        elif fault == "server_error":
            status, headers, body = self.server_error()
            await send_json(recording_send, status, body, headers)
        elif fault in REPLACED_BODY_FAULTS:
            await self._replaced_body(str(fault), recording_send)
        else:
            answer = self.on_request(scope) if self.on_request else None
            if answer is not None:
                if decision is not None and fault in _AFTER_APP_FAULTS:  # refused before the fault could happen
                    self.faults.give_back(decision)
                if fault != "slow":
                    fault = None
                status, headers, body = answer
                await send_json(recording_send, status, body, headers)
            elif decision is not None and fault in _AFTER_APP_FAULTS:
                applied, detail = await self._after_app(scope, receive, send, recording_send, decision)
                if not applied:
                    fault = None
            else:
                if fault != "slow":
                    fault = None
                await self.app(scope, receive, recording_send)
        self.ledger.add(
            LedgerEntry(
                at=time.time(),
                method=scope["method"],
                path=path,
                status=status_holder["status"],
                records_read=counter.read,
                records_written=counter.written,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                kind=counter.kind,
                fault=fault,
                detail=detail,
            )
        )

    async def _replaced_body(self, fault: str, send: Send) -> None:
        """Answer 200 with a body that is not what the API promises (the app is not called)."""
        if fault == "html":
            page = self.answers.maintenance_page().encode()
            await _send_raw(send, HTTPStatus.OK, [(b"content-type", b"text/html;charset=UTF-8")], page)
        elif fault == "invalid_json":
            await _send_raw(send, HTTPStatus.OK, [(b"content-type", b"application/json;charset=UTF-8")], INVALID_JSON_BODY)
        else:
            await send_json(send, HTTPStatus.OK, self.answers.error_200())

    async def _after_app(
        self, scope: Scope, receive: Receive, raw_send: Send, send: Send, decision: FaultDecision
    ) -> tuple[bool, str | None]:
        """Run the app with its answer held back, then apply a fault that needs the answer.

        Returns:
            Whether the fault applied, and what it did (for the ledger).
        """
        fault = decision.kind
        if fault in REWRITTEN_BODY_FAULTS:  # the rewrite needs the plain JSON, not a gzipped one
            scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
        chunks: list[bytes] = []

        async def teed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        captured = _Captured()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.started = True
                captured.status = int(message["status"])
                captured.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")

        await self.app(scope, teed_receive, capture)
        if fault == "lost_after_apply":
            if _drop_connection(raw_send):
                await asyncio.sleep(0)
                return True, f"applied, answer {captured.status} not sent"
            await _send_raw(send, captured.status, captured.headers, bytes(captured.body))
            return False, None
        if fault == "hold":
            outcome = await self._hold(receive, self.faults.hold_seconds)
            if outcome == "client gone":
                return True, f"answer {captured.status} held until the client went away"
            if outcome == "server stopping" and _drop_connection(raw_send):
                await asyncio.sleep(0)
                return True, f"answer {captured.status} held until the server stopped"
            await _send_raw(send, captured.status, captured.headers, bytes(captured.body))
            return True, f"answer {captured.status} held {self.faults.hold_seconds:g} s"
        exchange = Exchange(scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"), b"".join(chunks))
        rewritten = self._rewrite(fault, captured, exchange)
        if rewritten is None:
            self.faults.give_back(decision)
            await _send_raw(send, captured.status, captured.headers, bytes(captured.body))
            return False, None
        body, what = rewritten
        await _send_raw(send, captured.status, captured.headers, body)
        return True, what

    def _rewrite(self, fault: str, captured: _Captured, exchange: Exchange) -> tuple[bytes, str] | None:
        """The spoiled body and what was spoiled, or None when the answer does not fit the fault."""
        if (
            not captured.started
            or not HTTPStatus.OK <= captured.status < HTTPStatus.MULTIPLE_CHOICES
            or "json" not in captured.header(b"content-type")
            or captured.header(b"content-encoding")
            or len(captured.body) < 2
        ):
            return None
        if fault == "truncated":
            cut = len(captured.body) // 2
            return bytes(captured.body[:cut]), f"body cut to {cut} of {len(captured.body)} bytes"
        if captured.status != HTTPStatus.OK:
            return None
        try:
            body = json.loads(captured.body)
        except ValueError:
            return None
        if fault == "repeat_page":
            what = self.answers.repeat_page(body, exchange)
        elif fault == "missing_id":
            what = self.answers.missing_id(body, exchange, self.faults.pick)
        else:
            what = self.answers.wrong_types(body, exchange, self.faults.pick)
        if what is None:
            return None
        return json.dumps(body, separators=(",", ":")).encode(), what

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/")
        method = scope["method"]
        if path == "/__sandbox/ledger":
            if method == "GET":
                await send_json(send, HTTPStatus.OK, self.ledger.as_json())
                return
            if method == "DELETE":
                self.ledger.reset()
                await send_json(send, HTTPStatus.OK, {"reset": True})
                return
        elif path == "/__sandbox/faults":
            if method == "GET":
                await send_json(send, HTTPStatus.OK, asdict(self.faults.settings))
                return
            if method == "DELETE":
                self.faults.configure(FaultSettings())
                await send_json(send, HTTPStatus.OK, asdict(self.faults.settings))
                return
            if method == "PUT":
                raw = await _read_body(receive)
                try:
                    settings = FaultSettings.from_json(json.loads(raw or b"{}"))
                except (ValueError, json.JSONDecodeError) as exc:
                    await send_json(send, HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                self.faults.configure(settings)
                await send_json(send, HTTPStatus.OK, asdict(settings))
                return
        else:
            await send_json(send, HTTPStatus.NOT_FOUND, {"error": f"no sandbox admin endpoint {scope['path']}"})
            return
        await send_json(send, HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed on {scope['path']}"})
