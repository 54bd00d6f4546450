"""Authentication, the rate-limit headers and HubSpot's 429 bodies, injected faults."""

from __future__ import annotations

import json
from http import HTTPStatus

import httpx
import pytest
from hubspot.crm.contacts import ApiException
from hubspot_portal import TOKEN, client

from crm_sandbox.common import FaultSettings
from crm_sandbox.hubspot import HubSpotSandbox


def test_missing_or_wrong_token_is_401_invalid_authentication(hs: object, sandbox: HubSpotSandbox) -> None:
    assert sandbox.server is not None
    for token in ("wrong", ""):
        with pytest.raises(ApiException) as error:
            client(sandbox.server, token=token).crm.contacts.basic_api.get_page()
        assert error.value.status == HTTPStatus.UNAUTHORIZED
        body = json.loads(error.value.body)
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found.")
        assert body["status"] == "error" and body["correlationId"]
    bare = httpx.get(f"{sandbox.server.url}/crm/v3/owners/")
    assert bare.status_code == HTTPStatus.UNAUTHORIZED


def test_every_answer_carries_the_rate_limit_headers_and_the_window_runs_out() -> None:
    box = HubSpotSandbox(ten_second_limit=5, daily_limit=1_000)
    server = box.start()
    try:
        hs = client(server)
        remaining = []
        for _ in range(5):
            _, status, headers = hs.crm.contacts.basic_api.get_page_with_http_info()
            assert status == HTTPStatus.OK
            assert headers["X-HubSpot-RateLimit-Max"] == "5"
            assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            assert headers["X-HubSpot-RateLimit-Daily"] == "1000"
            remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        with pytest.raises(ApiException) as error:
            hs.crm.contacts.basic_api.get_page()
        assert error.value.status == HTTPStatus.TOO_MANY_REQUESTS
        body = json.loads(error.value.body)
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["status"] == "error" and body["correlationId"]
        assert error.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert error.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "995"
    finally:
        box.stop()


def test_daily_budget_runs_out() -> None:
    box = HubSpotSandbox(daily_limit=2)
    server = box.start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert [http.get("/crm/v3/owners/").status_code for _ in range(2)] == [HTTPStatus.OK] * 2
            refused = http.get("/crm/v3/owners/")
            assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
            assert refused.json()["policyName"] == "DAILY"
            assert refused.json()["message"] == "You have reached your daily limit."
    finally:
        box.stop()


def test_injected_429_carries_retry_after_and_503_is_a_server_error() -> None:
    box = HubSpotSandbox(faults=FaultSettings(script=["rate_limit", "server_error"], retry_after=2))
    server = box.start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            limited = http.post("/crm/v3/objects/contacts/search", json={})
            assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
            assert limited.headers["Retry-After"] == "2"
            assert limited.json()["errorType"] == "RATE_LIMIT"
            assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        with pytest.raises(ApiException) as broken:
            client(server).crm.contacts.basic_api.get_page()
        assert broken.value.status == HTTPStatus.SERVICE_UNAVAILABLE
        ledger = httpx.get(f"{server.url}/__sandbox/ledger").json()
        assert ledger["totals"]["faults"] == {"rate_limit": 1, "server_error": 1}
    finally:
        box.stop()


def test_the_sdk_itself_retries_a_get_answered_429_with_retry_after() -> None:
    """urllib3's default Retry (used by the SDK) honours Retry-After on a 429 for GETs."""
    box = HubSpotSandbox(faults=FaultSettings(script=["rate_limit", "rate_limit"], retry_after=0))
    server = box.start()
    try:
        assert client(server).crm.contacts.basic_api.get_page().results == []
        statuses = [e["status"] for e in httpx.get(f"{server.url}/__sandbox/ledger").json()["entries"]]
    finally:
        box.stop()
    assert statuses == [HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.OK]
