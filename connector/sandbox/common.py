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
  error, added latency or a dropped connection, and whether a record inside a
  batch write fails. Settings come from CLI flags and, at run time, from
  ``GET/PUT/DELETE /__sandbox/faults``.
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


FAULT_KINDS = ("rate_limit", "server_error", "drop", "latency")


@dataclass
class FaultSettings:
    """How often each fault happens. Probabilities are per request (per record for partial failures).

    Attributes:
        rate_limit: probability of a rate-limit answer (429 with ``Retry-After``).
        retry_after: seconds announced in ``Retry-After``.
        server_error: probability of a 503 answer.
        drop: probability that the connection is closed without an answer.
        latency_ms: latency added to every request.
        partial_failure: probability that one record of a batch write fails.
        path_pattern: regular expression; only matching paths get faults (all when empty).
        script: faults to inject, in order, into the next matching requests
            (``"rate_limit"``, ``"server_error"``, ``"drop"``), before the probabilities apply.
        seed: seed of the random sequence that decides the faults.
    """

    rate_limit: float = 0.0
    retry_after: float = 1.0
    server_error: float = 0.0
    drop: float = 0.0
    latency_ms: int = 0
    partial_failure: float = 0.0
    path_pattern: str = ""
    script: list[str] = field(default_factory=list)
    seed: int = 0

    def validate(self) -> list[str]:
        """Return the problems with these settings (empty when valid)."""
        problems = []
        for name in ("rate_limit", "server_error", "drop", "partial_failure"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                problems.append(f"{name}: must be a probability between 0 and 1, got {value!r}")
        if not isinstance(self.retry_after, (int, float)) or self.retry_after < 0:
            problems.append(f"retry_after: must be >= 0 seconds, got {self.retry_after!r}")
        if not isinstance(self.latency_ms, int) or self.latency_ms < 0:
            problems.append(f"latency_ms: must be a non-negative integer, got {self.latency_ms!r}")
        if not isinstance(self.script, list) or any(s not in FAULT_KINDS for s in self.script):
            problems.append(f"script: items must be among {FAULT_KINDS}, got {self.script!r}")
        try:
            re.compile(self.path_pattern or "")
        except (re.error, TypeError) as exc:
            problems.append(f"path_pattern: not a regular expression ({exc})")
        return problems

    @classmethod
    def from_json(cls, data: Any) -> FaultSettings:
        """Build settings from a JSON object; raises ``ValueError`` naming every bad key."""
        if not isinstance(data, dict):
            raise ValueError("fault settings must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        try:
            settings = cls(**data)
        except TypeError as exc:  # pragma: no cover - guarded by the key check above
            raise ValueError(str(exc)) from exc
        problems = settings.validate()
        if problems:
            raise ValueError("; ".join(problems))
        return settings


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
            self._script = list(settings.script)
            self._random = random.Random(settings.seed)
            self._pattern = re.compile(settings.path_pattern) if settings.path_pattern else None

    def _applies(self, path: str) -> bool:
        return self._pattern is None or self._pattern.search(path) is not None

    def request_fault(self, path: str) -> str | None:
        """The fault for a request to ``path``: one of :data:`FAULT_KINDS` minus latency, or None."""
        if path.startswith(ADMIN_PREFIX):
            return None
        with self._lock:
            if not self._applies(path):
                return None
            if self._script:
                return self._script.pop(0)
            s = self._settings
            if not (s.rate_limit or s.server_error or s.drop):
                return None
            roll = self._random.random()
            if roll < s.rate_limit:
                return "rate_limit"
            if roll < s.rate_limit + s.server_error:
                return "server_error"
            if roll < s.rate_limit + s.server_error + s.drop:
                return "drop"
            return None

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
    ) -> None:
        self.app = app
        self.ledger = ledger
        self.faults = faults
        self.rate_limited = rate_limited
        self.server_error = server_error
        self.on_request = on_request

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

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = int(message["status"])
            await send(message)

        fault = self.faults.request_fault(path)
        if self.faults.latency_seconds:
            await asyncio.sleep(self.faults.latency_seconds)
        if fault == "drop" and _drop_connection(send):
            status_holder["status"] = 0
        elif fault == "rate_limit":
            status, headers, body = self.rate_limited(self.faults.settings.retry_after)
            await send_json(recording_send, status, body, headers)
        elif fault == "server_error":
            status, headers, body = self.server_error()
            await send_json(recording_send, status, body, headers)
        else:
            fault = None
            answer = self.on_request(scope) if self.on_request else None
            if answer is not None:
                status, headers, body = answer
                await send_json(recording_send, status, body, headers)
            else:
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
            )
        )

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
