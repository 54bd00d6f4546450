"""The newer fault kinds of the HubSpot sandbox, seen through hubspot-api-client and raw HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInputForCreate
from hubspot_portal import TOKEN, client, seed_contacts

from crm_sandbox.hubspot import HubSpotSandbox

CONTACTS = "/crm/v3/objects/contacts"


@pytest.fixture()
def portal() -> Iterator[HubSpotSandbox]:
    """A portal with 25 contacts (ids 1..25), running."""
    box = HubSpotSandbox(seed_contacts(25), ten_second_limit=100_000, search_per_second=10_000)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture()
def api(portal: HubSpotSandbox) -> HubSpot:
    assert portal.server is not None
    return client(portal.server)


def _url(box: HubSpotSandbox) -> str:
    assert box.server is not None
    return box.server.url


def _faults(box: HubSpotSandbox, settings: dict[str, Any]) -> None:
    answer = httpx.put(f"{_url(box)}/__sandbox/faults", json=settings)
    assert answer.status_code == HTTPStatus.OK, answer.text


def _raw(box: HubSpotSandbox) -> httpx.Client:
    return httpx.Client(base_url=_url(box), headers={"Authorization": f"Bearer {TOKEN}"})


def _emails(api: HubSpot) -> list[str]:
    return [c.properties["email"] for c in api.crm.contacts.get_all()]


def _create(email: str) -> SimplePublicObjectInputForCreate:
    return SimplePublicObjectInputForCreate(properties={"email": email, "firstname": "Ann"})


def test_lost_after_apply_create_lands_but_the_sdk_sees_a_dropped_connection(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"script": [{"fault": "lost_after_apply", "path": f"{CONTACTS}$", "method": "POST"}]})
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.crm.contacts.basic_api.create(_create("lost@answer.example"))
    assert _emails(api).count("lost@answer.example") == 1
    lost = [e for e in portal.ledger.as_json()["entries"] if e["fault"] == "lost_after_apply"]
    assert [(e["status"], e["records_written"]) for e in lost] == [(0, 1)]


def test_held_create_times_out_the_sdk_yet_lands(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"hold_seconds": 60, "script": [{"fault": "hold", "method": "POST"}]})
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.crm.contacts.basic_api.create(_create("held@answer.example"), _request_timeout=1)
    assert _emails(api).count("held@answer.example") == 1


def test_hold_keeps_other_requests_served_and_ends_when_the_server_stops(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"hold_seconds": 600, "script": [{"fault": "hold", "path": f"{CONTACTS}/search"}]})
    outcome: dict[str, Any] = {}

    def held() -> None:
        try:
            with _raw(portal) as raw:
                outcome["status"] = raw.post(f"{CONTACTS}/search", json={"limit": 5}, timeout=60).status_code
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=held)
    worker.start()
    while portal.faults.pending() and worker.is_alive():
        worker.join(0.01)
    assert len(api.crm.contacts.basic_api.get_page(limit=5).results) == 5
    assert worker.is_alive()
    portal.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), httpx.TransportError) and not isinstance(outcome["error"], httpx.TimeoutException)
    entry = next(e for e in portal.ledger.as_json()["entries"] if e["fault"] == "hold")
    assert "server stopped" in entry["detail"]


def test_slow_list_completes(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"slow": 1.0, "slow_ms": [10, 30]})
    before = len(portal.ledger.as_json()["entries"])
    assert len(api.crm.contacts.basic_api.get_page(limit=10).results) == 10
    entry = _entry_after(portal, before)
    assert (entry["fault"], entry["status"]) == ("slow", HTTPStatus.OK)


def _entry_after(portal: HubSpotSandbox, count: int, wait: float = 5.0) -> dict[str, Any]:
    """The ledger entry after the first ``count``: the server writes it once the answer has left,
    which may be just after the client read the answer."""
    deadline = time.monotonic() + wait
    while True:
        entries = portal.ledger.as_json()["entries"]
        if len(entries) > count or time.monotonic() > deadline:
            assert len(entries) > count, "the call never reached the ledger"
            return dict(entries[count])
        time.sleep(0.01)


def test_repeat_page_list_next_after_equals_the_request_after(portal: HubSpotSandbox, api: HubSpot) -> None:
    first = api.crm.contacts.basic_api.get_page(limit=10)
    assert first.paging.next.after == "10"
    _faults(portal, {"script": [{"fault": "repeat_page", "path": f"{CONTACTS}$", "method": "GET"}]})
    second = api.crm.contacts.basic_api.get_page(limit=10, after=first.paging.next.after)
    assert second.paging.next.after == "10"
    assert "after=10" in second.paging.next.link
    again = api.crm.contacts.basic_api.get_page(limit=10, after=second.paging.next.after)
    assert [c.id for c in again.results] == [c.id for c in second.results]
    assert again.paging.next.after == "20"


def test_repeat_page_first_page_and_search(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"repeat_page": 1.0, "path_pattern": "/contacts"})
    first = api.crm.contacts.basic_api.get_page(limit=10)
    assert first.paging.next.after == "0"
    assert [c.id for c in api.crm.contacts.basic_api.get_page(limit=10, after="0").results] == [c.id for c in first.results]
    found = api.crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=5, after="5"))
    assert found.paging.next.after == "5"


def test_missing_id_waits_for_a_page_then_the_sdk_rejects_the_page(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"script": ["missing_id"]})
    created = api.crm.contacts.basic_api.create(_create("whole@record.example"))
    assert created.id
    with _raw(portal) as raw:
        results = raw.get(CONTACTS, params={"limit": 5}).json()["results"]
    assert len([r for r in results if "id" not in r]) == 1
    _faults(portal, {"script": ["missing_id"]})
    with pytest.raises(ValueError, match="id"):
        api.crm.contacts.basic_api.get_page(limit=5)
    assert [e["fault"] for e in portal.ledger.as_json()["entries"]][:2] == [None, "missing_id"]


def test_wrong_types_in_one_record(portal: HubSpotSandbox) -> None:
    _faults(portal, {"script": [{"fault": "wrong_types", "path": CONTACTS}]})
    with _raw(portal) as raw:
        answer = raw.get(CONTACTS, params={"limit": 5, "properties": "firstname,numemployees,hs_lastmodifieddate"})
    assert answer.status_code == HTTPStatus.OK
    assert b'\\ud800"' in answer.content
    results = answer.json()["results"]
    spoiled = [r["properties"] for r in results if r["properties"]["hs_lastmodifieddate"] == "not-a-date"]
    assert len(spoiled) == 1
    assert spoiled[0]["numemployees"] == "abc"
    assert spoiled[0]["firstname"].endswith("\ud800")


def test_error_200_applies_nothing(portal: HubSpotSandbox, api: HubSpot) -> None:
    _faults(portal, {"script": [{"fault": "error_200", "method": "POST"}]})
    with _raw(portal) as raw:
        answer = raw.post(CONTACTS, json={"properties": {"email": "error200@answer.example"}})
    assert answer.status_code == HTTPStatus.OK
    body = answer.json()
    assert body["status"] == "error" and body["category"] and body["message"]
    assert "error200@answer.example" not in _emails(api)


def test_malformed_bodies_fail_the_sdk(portal: HubSpotSandbox, api: HubSpot) -> None:
    with _raw(portal) as raw:
        full = raw.get(CONTACTS, params={"limit": 20}).content
        _faults(portal, {"script": ["invalid_json", "html", "truncated"]})
        not_json = raw.get(CONTACTS, params={"limit": 20})
        page = raw.get(CONTACTS, params={"limit": 20})
        cut = raw.get(CONTACTS, params={"limit": 20})
    assert not_json.status_code == HTTPStatus.OK and "json" in not_json.headers["content-type"]
    with pytest.raises(ValueError):
        json.loads(not_json.content)
    assert page.headers["content-type"].startswith("text/html") and "maintenance" in page.text
    assert int(cut.headers["content-length"]) == len(cut.content) == len(full) // 2
    assert full.startswith(cut.content)
    _faults(portal, {"script": ["truncated"]})
    with pytest.raises(ValueError):
        api.crm.contacts.basic_api.get_page(limit=20)
