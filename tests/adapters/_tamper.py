"""A sandbox behind a tampering proxy: answers the real sandbox gave, rewritten on their way out.

Some faults are not in the sandboxes' repertoire (a 200 with an HTML page, an error list
or a page link that repeats): :class:`Tamper` wraps a sandbox's ASGI app and rewrites
the answers of matching requests, so the adapters meet them over real HTTP.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm_sandbox.runner import SandboxServer

Rewrite = Callable[[Any, str], Any]
"""(the answer's JSON, the request's path and query) → the new answer (JSON, or ``bytes`` sent as they are)."""


@dataclass
class Rule:
    """Rewrite the next ``times`` answers to requests whose method and path (with query) match."""

    pattern: str
    rewrite: Rewrite
    times: int = 1_000_000
    method: str = ""
    used: int = field(default=0)


class Tamper:
    """ASGI middleware rewriting 2xx answers of matching requests (rules are tried in order)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self.closing = getattr(app, "closing", None)

    def add(self, pattern: str, rewrite: Rewrite, *, times: int = 1_000_000, method: str = "") -> Rule:
        rule = Rule(pattern, rewrite, times, method.upper())
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _rule(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.used < rule.times and (not rule.method or rule.method == method) and re.search(
                        rule.pattern, target):
                    rule.used += 1
                    return rule
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or "__sandbox" in scope.get("path", ""):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode()
        target = scope["path"] + (f"?{query}" if query else "")
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._answer(scope["method"], target, start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, capture)

    async def _answer(self, method: str, target: str, start: dict[str, Any], body: bytes, send: Any) -> None:
        headers = [(k, v) for k, v in start.get("headers", [])]
        status = int(start.get("status", 200))
        rule = self._rule(method, target) if 200 <= status < 300 else None
        if rule is not None:
            encoding = next((v for k, v in headers if k.lower() == b"content-encoding"), b"")
            raw = gzip.decompress(body) if encoding == b"gzip" else body
            current = json.loads(raw) if raw.strip() else None
            new = rule.rewrite(current, target)
            body = new if isinstance(new, bytes) else json.dumps(new).encode()
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-encoding")]
            headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def serve(app: Any) -> tuple[Tamper, SandboxServer]:
    """Start ``app`` behind a :class:`Tamper` on a free port."""
    tamper = Tamper(app)
    return tamper, SandboxServer(tamper, name="tampered").start()
