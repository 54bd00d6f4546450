"""Fault settings: every kind shown and validated at ``/__sandbox/faults``, scripts, determinism under the seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_sandbox.common import (
    REQUEST_FAULTS,
    FaultInjector,
    FaultSettings,
    Ledger,
    SandboxMiddleware,
)
from crm_sandbox.runner import SandboxServer


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"items": [1, 2, 3]})


@pytest.fixture()
def url() -> Iterator[str]:
    app = SandboxMiddleware(
        Starlette(routes=[Route("/items", items), Route("/other", items)]),
        ledger=Ledger("test"),
        faults=FaultInjector(),
        rate_limited=lambda s: (HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": str(int(s))}, {"error": "rate"}),
        server_error=lambda: (HTTPStatus.SERVICE_UNAVAILABLE, {}, {"error": "unavailable"}),
    )
    server = SandboxServer(app, name="test").start()
    try:
        yield server.url
    finally:
        server.stop()


def test_get_shows_every_setting(url: str) -> None:
    shown = httpx.get(f"{url}/__sandbox/faults").json()
    for name in (*REQUEST_FAULTS, "slow_ms", "hold_seconds", "latency_ms", "retry_after", "partial_failure", "script", "seed"):
        assert name in shown
    assert (shown["slow_ms"], shown["hold_seconds"]) == ([200, 2000], 120.0)
    settings = {
        "slow": 0.1,
        "slow_ms": [5, 50],
        "hold": 0.05,
        "hold_seconds": 30,
        "lost_after_apply": 0.05,
        "truncated": 0.05,
        "script": ["server_error", {"fault": "repeat_page", "path": "/query", "method": "get"}],
    }
    put = httpx.put(f"{url}/__sandbox/faults", json=settings)
    assert put.status_code == HTTPStatus.OK
    shown = httpx.get(f"{url}/__sandbox/faults").json()
    assert {k: shown[k] for k in settings} == settings


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"slow": 1.5}, "slow: must be a probability between 0 and 1, got 1.5"),
        ({"hold": True}, "hold: must be a probability between 0 and 1, got True"),
        ({"slow_ms": [500, 100]}, "slow_ms: must be [min, max]"),
        ({"slow_ms": "fast"}, "got 'fast'"),
        ({"hold_seconds": 0}, "hold_seconds: must be a number of seconds above 0"),
        ({"hold": 0.6, "server_error": 0.6}, "server_error=0.6, hold=0.6: the request fault probabilities add up to 1.2"),
        ({"script": ["bogus"]}, "script[0]: must be one of"),
        ({"script": ["drop", {"fault": "nope"}]}, "script[1].fault: must be one of"),
        ({"script": [{"fault": "hold", "when": 3}]}, "script[0].when: unknown key"),
        ({"script": [{"fault": "hold", "path": "("}]}, "script[0].path: not a regular expression"),
        ({"script": [{"fault": "hold", "method": "FETCH"}]}, "script[0].method: must be one of"),
        ({"script": "drop"}, "script: must be a list"),
        ({"seed": "x"}, "seed: must be an integer, got 'x'"),
        ({"surprise": 1}, "unknown fault settings: surprise=1"),
    ],
)
def test_put_rejects_bad_values_naming_key_and_value(url: str, settings: dict[str, Any], named: str) -> None:
    before = httpx.get(f"{url}/__sandbox/faults").json()
    answer = httpx.put(f"{url}/__sandbox/faults", json=settings)
    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert named in answer.json()["error"]
    assert httpx.get(f"{url}/__sandbox/faults").json() == before


def test_script_entry_waits_for_its_path_and_method(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        script = [{"fault": "server_error", "path": "^/items$", "method": "POST"}, "rate_limit"]
        assert client.put("/__sandbox/faults", json={"script": script}).status_code == HTTPStatus.OK
        assert client.get("/other").status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert client.get("/items").status_code == HTTPStatus.OK
        assert client.post("/items").status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert client.get("/items").status_code == HTTPStatus.OK


def test_html_and_invalid_json_on_any_server(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        client.put("/__sandbox/faults", json={"script": ["html", "invalid_json"]})
        page = client.get("/items")
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (HTTPStatus.OK, "text/html")
        broken = client.get("/items")
        assert broken.status_code == HTTPStatus.OK
        with pytest.raises(ValueError):
            broken.json()


def test_new_kinds_are_deterministic_under_the_seed() -> None:
    settings = FaultSettings(slow=0.2, hold=0.05, lost_after_apply=0.05, truncated=0.1, repeat_page=0.1, slow_ms=[10, 900], seed=9)

    def sequence() -> list[tuple[str, float] | None]:
        injector = FaultInjector(settings)
        out = []
        for _ in range(300):
            decision = injector.decide("GET", "/x")
            out.append((decision.kind, decision.delay) if decision else None)
        return out

    first = sequence()
    assert first == sequence()
    kinds = {d[0] for d in first if d}
    assert kinds == {"slow", "hold", "lost_after_apply", "truncated", "repeat_page"}
    delays = {d[1] for d in first if d and d[0] == "slow"}
    assert len(delays) > 10 and all(0.01 <= d <= 0.9 for d in delays)


def test_older_settings_keep_their_sequence() -> None:
    """The new kinds come after the old ones on the roll: an old seed still gives the old faults."""
    injector = FaultInjector(FaultSettings(rate_limit=0.2, server_error=0.1, drop=0.05, seed=7))
    expected_random = random.Random(7)
    expected = []
    for _ in range(200):
        roll = expected_random.random()
        expected.append("rate_limit" if roll < 0.2 else "server_error" if roll < 0.3 else "drop" if roll < 0.2 + 0.1 + 0.05 else None)
    assert [injector.request_fault("/x") for _ in range(200)] == expected
