"""Property-based: whatever JSON a client sends, the sandbox answers success or a HubSpot 4xx body, never 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hubspot_portal import TOKEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_sandbox.hubspot import HubSpotSandbox

KEYS = [
    "properties", "inputs", "filterGroups", "filters", "sorts", "limit", "after", "associations", "idProperty", "id",
    "propertyName", "operator", "value", "values", "highValue", "to", "from", "types", "associationTypeId",
    "associationCategory", "query", "email", "hs_lead_status", "numemployees", "hs_timestamp", "direction",
    "primaryObjectId", "objectIdToMerge", "name", "label", "type", "fieldType", "groupName", "options",
]
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.sampled_from(["", "1", "EQ", "IN", "BETWEEN", "HAS_PROPERTY", "CONTAINS_TOKEN", "email", "0-1", "204", "279",
                       "a@b.example", "2025-01-01", "1735689600000", "OPEN", "contacts", "DESCENDING", "-createdate"])
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)
ENDPOINTS = [
    ("POST", "/crm/v3/objects/contacts"),
    ("POST", "/crm/v3/objects/tasks"),
    ("PATCH", "/crm/v3/objects/contacts/1"),
    ("POST", "/crm/v3/objects/contacts/search"),
    ("POST", "/crm/v3/objects/deals/search"),
    ("POST", "/crm/v3/objects/contacts/batch/create"),
    ("POST", "/crm/v3/objects/contacts/batch/read"),
    ("POST", "/crm/v3/objects/contacts/batch/update"),
    ("POST", "/crm/v3/objects/contacts/batch/upsert"),
    ("POST", "/crm/v3/objects/contacts/batch/archive"),
    ("POST", "/crm/v3/objects/contacts/merge"),
    ("POST", "/crm/v4/associations/contacts/companies/batch/create"),
    ("POST", "/crm/v4/associations/tasks/contacts/batch/read"),
    ("POST", "/crm/v4/associations/contacts/companies/batch/associate/default"),
    ("POST", "/crm/v4/associations/contacts/companies/batch/archive"),
    ("PUT", "/crm/v4/objects/contacts/1/associations/companies/2"),
    ("POST", "/crm/v3/associations/contacts/companies/batch/create"),
    ("POST", "/crm/v3/associations/companies/contacts/batch/read"),
    ("POST", "/crm/v3/associations/contacts/companies/batch/archive"),
    ("POST", "/crm/v3/properties/contacts"),
    ("POST", "/crm/v3/properties/contacts/batch/create"),
    ("POST", "/crm/v3/properties/contacts/groups"),
]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    box = HubSpotSandbox(ten_second_limit=10**9, daily_limit=10**9, search_per_second=10**9)
    server = box.start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        session.post("/crm/v3/objects/contacts", json={"properties": {"email": "one@fuzz.example"}})
        session.post("/crm/v3/objects/companies", json={"properties": {"name": "Two"}})
        yield session
    box.stop()


def _check(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        body = answer.json()
        assert body["status"] == "error"
        assert body["message"]
        assert body.get("category") or body.get("errorType")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), body=JSON)
def test_random_json_bodies_never_answer_500(http: httpx.Client, endpoint: tuple[str, str], body: Any) -> None:
    method, path = endpoint
    _check(http.request(method, path, content=json.dumps(body).encode()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), raw=st.binary(max_size=40))
def test_random_bytes_never_answer_500(http: httpx.Client, endpoint: tuple[str, str], raw: bytes) -> None:
    method, path = endpoint
    _check(http.request(method, path, content=raw))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/crm/v3/objects/contacts", "/crm/v3/objects/0-1/1", "/crm/v3/owners/", "/crm/v3/owners/x",
                          "/crm/v4/objects/contacts/1/associations/companies", "/crm/v3/properties/deals/amount",
                          "/crm/v3/objects/contacts/1/associations/companies"]),
    params=st.dictionaries(st.sampled_from(["limit", "after", "properties", "associations", "archived", "idProperty", "email"]),
                           st.text(max_size=8), max_size=4),
)
def test_random_query_parameters_never_answer_500(http: httpx.Client, path: str, params: dict[str, str]) -> None:
    _check(http.get(path, params=params))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(properties=st.dictionaries(
    st.sampled_from(["email", "numemployees", "hs_lead_status", "lifecyclestage", "hs_email_optout", "createdate",
                     "hubspot_owner_id", "firstname", "webinar_attended", "nosuch"]),
    SCALARS, max_size=5,
))
def test_created_contacts_hold_only_strings(http: httpx.Client, properties: dict[str, Any]) -> None:
    answer = http.post("/crm/v3/objects/contacts", content=json.dumps({"properties": properties}).encode())
    _check(answer)
    if answer.status_code == 201:
        assert all(isinstance(v, str) for v in answer.json()["properties"].values())


NAMES = ["email", "firstname", "numemployees", "hs_lead_status", "createdate", "hs_lastmodifieddate", "hs_object_id",
         "hs_email_optout", "webinar_attended", "nosuch"]
OPERATORS = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
             "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"]
FILTER = st.fixed_dictionaries(
    {"propertyName": st.sampled_from(NAMES), "operator": st.sampled_from(OPERATORS)},
    optional={"value": SCALARS, "values": st.lists(SCALARS, max_size=3), "highValue": SCALARS},
)
SEARCH = st.fixed_dictionaries({}, optional={
    "filterGroups": st.lists(st.fixed_dictionaries({"filters": st.lists(FILTER, max_size=4)}), max_size=3),
    "sorts": st.lists(st.sampled_from(NAMES) | st.fixed_dictionaries(
        {"propertyName": st.sampled_from(NAMES), "direction": st.sampled_from(["ASCENDING", "DESCENDING"])}), max_size=2),
    "query": st.text(max_size=6),
    "limit": st.integers(-5, 300),
    "after": st.integers(-5, 20_000) | st.text(max_size=4),
    "properties": st.lists(st.sampled_from(NAMES), max_size=3),
})
ROWS = st.lists(st.fixed_dictionaries(
    {"properties": st.dictionaries(st.sampled_from(NAMES), SCALARS, max_size=4)},
    optional={"id": st.integers(0, 12) | st.text(max_size=5), "idProperty": st.sampled_from(["email", "hs_object_id", "firstname"])},
), max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=SEARCH)
def test_well_formed_but_random_searches_never_answer_500(http: httpx.Client, body: dict[str, Any]) -> None:
    answer = http.post("/crm/v3/objects/contacts/search", content=json.dumps(body).encode())
    _check(answer)
    if answer.status_code == 200:
        assert answer.json()["total"] >= len(answer.json()["results"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["create", "update", "upsert", "read", "archive"]), rows=ROWS)
def test_well_formed_but_random_batches_never_answer_500(http: httpx.Client, kind: str, rows: list[dict[str, Any]]) -> None:
    _check(http.post(f"/crm/v3/objects/contacts/batch/{kind}", content=json.dumps({"inputs": rows}).encode()))
