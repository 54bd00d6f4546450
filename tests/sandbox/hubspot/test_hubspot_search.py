"""Search through the SDK: filters, sorts, free text, paging, the 10,000 cap and the search limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest
from hubspot_portal import TOKEN, Seed, client, contact

from crm_sandbox.hubspot import HubSpotSandbox


def _people() -> Seed:
    rows = []
    for n in range(1, 61):
        rows.append(contact(
            n,
            hs_lead_status=("NEW", "OPEN", "CONNECTED")[n % 3],
            numemployees=str(n * 10),
            country=("US", "DE", "JP", "")[n % 4],
            hs_lastmodifieddate=f"2025-03-{(n % 28) + 1:02d}T12:00:00.000Z",
        ))
    return Seed(hubspot={"contacts": rows})


@pytest.fixture(scope="module")
def people() -> Iterator[HubSpot]:
    box = HubSpotSandbox(_people(), ten_second_limit=100_000, search_per_second=100_000)
    server = box.start()
    yield client(server)
    box.stop()


def _search(hs: HubSpot, **body: Any) -> Any:
    return hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(**body))


def _ids(answer: Any) -> list[int]:
    return [int(r.id) for r in answer.results]


def test_eq_and_in_filters_are_anded_within_a_group_and_ored_across(people: HubSpot) -> None:
    answer = _search(people, filter_groups=[
        {"filters": [{"propertyName": "hs_lead_status", "operator": "EQ", "value": "OPEN"},
                     {"propertyName": "country", "operator": "IN", "values": ["us", "DE"]}]},
        {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "3"}]},
    ], limit=100)
    expected = sorted({n for n in range(1, 61) if n % 3 == 1 and n % 4 in (0, 1)} | {3})
    assert _ids(answer) == expected
    assert answer.total == len(expected)


def test_number_ranges_between_and_property_presence(people: HubSpot) -> None:
    between = _search(people, filter_groups=[{"filters": [
        {"propertyName": "numemployees", "operator": "BETWEEN", "value": "100", "highValue": "150"}]}])
    assert _ids(between) == [10, 11, 12, 13, 14, 15]
    greater = _search(people, filter_groups=[{"filters": [{"propertyName": "numemployees", "operator": "GT", "value": 580}]}])
    assert _ids(greater) == [59, 60]
    missing = _search(people, filter_groups=[{"filters": [{"propertyName": "country", "operator": "NOT_HAS_PROPERTY"}]}], limit=100)
    assert _ids(missing) == [n for n in range(1, 61) if n % 4 == 3]


def test_datetime_filter_accepts_ms_and_iso(people: HubSpot) -> None:
    ms = _search(people, filter_groups=[{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1743076800000"}]}], limit=100)
    iso = _search(people, filter_groups=[{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "2025-03-27T12:00:00Z"}]}], limit=100)
    assert _ids(ms) == _ids(iso) == [n for n in range(1, 61) if (n % 28) + 1 >= 27]


def test_sorts_in_both_forms_and_token_search(people: HubSpot) -> None:
    desc = _search(people, sorts=["-numemployees"], limit=3)
    assert _ids(desc) == [60, 59, 58]
    asc = _search(people, sorts=[{"propertyName": "numemployees", "direction": "ASCENDING"}], limit=2)
    assert _ids(asc) == [1, 2]
    domain = _search(people, filter_groups=[{"filters": [
        {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@acme3.example"}]}], limit=100)
    assert _ids(domain) == [n for n in range(1, 61) if n % 7 == 3]
    text = _search(people, query="First42")
    assert _ids(text) == [42]


def test_paging_through_search_results(people: HubSpot) -> None:
    seen: list[int] = []
    after = None
    while True:
        page = _search(people, limit=7, after=after, properties=["email"])
        seen.extend(_ids(page))
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == list(range(1, 61))
    assert set(page.results[0].properties) >= {"email", "hs_object_id"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"limit": 201}, "limit"),
        ({"filterGroups": [{"filters": []}] * 6}, "filter groups"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 11}]}, "at most 10"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 9}] * 3}, "at most 25"),
        ({"filterGroups": [{"filters": [{"propertyName": "nosuch", "operator": "EQ", "value": "x"}]}]}, "nosuch"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]}, "LIKE"),
        ({"sorts": [{"propertyName": "email", "direction": "UP"}]}, "direction"),
    ],
)
def test_bad_search_bodies_are_400s_naming_the_problem(people: HubSpot, body: dict[str, Any], fragment: str) -> None:
    config = people.crm.contacts.search_api.api_client.configuration
    answer = httpx.post(f"{config.host}/crm/v3/objects/contacts/search", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert fragment in answer.json()["message"]
    assert answer.json()["category"] == "VALIDATION_ERROR"


def test_results_stop_at_10000_and_deeper_pages_are_400() -> None:
    seed = Seed(hubspot={"contacts": [contact(n) for n in range(1, 10_051)]})
    box = HubSpotSandbox(seed, ten_second_limit=100_000, search_per_second=100_000)
    server = box.start()
    try:
        hs = client(server)
        near = _search(hs, limit=200, after="9900")
        assert near.total == 10_050
        assert len(near.results) == 100 and near.paging.next.after == "10000"
        with pytest.raises(ApiException) as error:
            _search(hs, limit=200, after=near.paging.next.after)
        assert error.value.status == HTTPStatus.BAD_REQUEST
        assert "10,000" in json.loads(error.value.body)["message"]
    finally:
        box.stop()


def test_search_has_its_own_per_second_limit() -> None:
    box = HubSpotSandbox(search_per_second=2, ten_second_limit=1_000)
    server = box.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.url, headers=headers) as http:
            answers = [http.post("/crm/v3/objects/contacts/search", json={}) for _ in range(3)]
            assert [a.status_code for a in answers[:2]] == [HTTPStatus.OK, HTTPStatus.OK]
            refused = answers[2]
            assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
            assert refused.json()["policyName"] == "SECONDLY"
            assert refused.json()["errorType"] == "RATE_LIMIT"
            assert http.get("/crm/v3/objects/contacts").status_code == HTTPStatus.OK
    finally:
        box.stop()
