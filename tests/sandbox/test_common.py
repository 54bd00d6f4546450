"""The shared sandbox machinery: ledger, admin endpoints, faults, the threaded server."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_sandbox.common import (
    FaultInjector,
    FaultSettings,
    Ledger,
    SandboxMiddleware,
    call_counter,
)
from crm_sandbox.runner import SandboxServer


async def items(request: Request) -> JSONResponse:
    counter = call_counter(request.scope)
    counter.read = 3
    counter.kind = "list"
    return JSONResponse({"items": [1, 2, 3]})


@pytest.fixture()
def server() -> Iterator[tuple[SandboxServer, Ledger, FaultInjector]]:
    ledger = Ledger("test")
    faults = FaultInjector()
    app = SandboxMiddleware(
        Starlette(routes=[Route("/items", items)]),
        ledger=ledger,
        faults=faults,
        rate_limited=lambda s: (429, {"Retry-After": str(int(s))}, {"status": "error", "errorType": "RATE_LIMIT"}),
        server_error=lambda: (503, {}, {"status": "error", "message": "unavailable"}),
    )
    srv = SandboxServer(app, name="test").start()
    try:
        yield srv, ledger, faults
    finally:
        srv.stop()


def test_ledger_counts_calls_and_records(server: tuple[SandboxServer, Ledger, FaultInjector]) -> None:
    srv, _, _ = server
    with httpx.Client(base_url=srv.url) as client:
        for _ in range(3):
            assert client.get("/items").status_code == HTTPStatus.OK
        assert client.get("/missing").status_code == HTTPStatus.NOT_FOUND
        ledger = client.get("/__sandbox/ledger").json()
        assert ledger["totals"]["calls"] == 4
        assert ledger["totals"]["records_read"] == 9
        assert ledger["totals"]["by_status"] == {"200": 3, "404": 1}
        assert ledger["entries"][0]["path"] == "/items"
        assert client.delete("/__sandbox/ledger").status_code == HTTPStatus.OK
        assert client.get("/__sandbox/ledger").json()["totals"]["calls"] == 0


def test_scripted_faults_then_normal(server: tuple[SandboxServer, Ledger, FaultInjector]) -> None:
    srv, _, _ = server
    with httpx.Client(base_url=srv.url) as client:
        put = client.put("/__sandbox/faults", json={"script": ["rate_limit", "server_error"], "retry_after": 2})
        assert put.status_code == HTTPStatus.OK
        first = client.get("/items")
        assert first.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert first.headers["retry-after"] == "2"
        assert client.get("/items").status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert client.get("/items").status_code == HTTPStatus.OK
        faults = client.get("/__sandbox/ledger").json()["totals"]["faults"]
        assert faults == {"rate_limit": 1, "server_error": 1}


def test_dropped_connection(server: tuple[SandboxServer, Ledger, FaultInjector]) -> None:
    srv, _, _ = server
    with httpx.Client(base_url=srv.url) as client:
        client.put("/__sandbox/faults", json={"script": ["drop"]})
        with pytest.raises(httpx.TransportError):
            client.get("/items")
    with httpx.Client(base_url=srv.url) as client:
        assert client.get("/items").status_code == HTTPStatus.OK


def test_bad_fault_settings_rejected_with_names(server: tuple[SandboxServer, Ledger, FaultInjector]) -> None:
    srv, _, _ = server
    with httpx.Client(base_url=srv.url) as client:
        bad = client.put("/__sandbox/faults", json={"rate_limit": 3, "bogus": 1})
        assert bad.status_code == HTTPStatus.BAD_REQUEST
        assert "bogus" in bad.json()["error"]
        bad = client.put("/__sandbox/faults", json={"rate_limit": 3})
        assert "rate_limit" in bad.json()["error"]
        assert client.put("/__sandbox/faults", content=b"{not json").status_code == HTTPStatus.BAD_REQUEST


def test_faults_are_deterministic_under_seed() -> None:
    def sequence() -> list[str | None]:
        injector = FaultInjector(FaultSettings(rate_limit=0.2, server_error=0.1, seed=7))
        return [injector.request_fault("/x") for _ in range(200)]

    first = sequence()
    assert first == sequence()
    assert 20 <= first.count("rate_limit") <= 70
    assert None in first
