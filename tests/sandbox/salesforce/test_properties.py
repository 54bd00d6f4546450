"""Properties: the SOQL parser only ever raises SoqlError; random bodies never answer 500."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.soql import SoqlError, parse

WORDS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
    "FIRST", "LAST", "LIMIT", "OFFSET", "COUNT", "null", "TRUE", "false", "TODAY", "LAST_N_DAYS", ":",
    "Id", "Lead", "Email", "Owner.Name", "Who.Email", "CreatedDate", "NumberOfEmployees", "Foo", "(", ")",
    ",", "=", "!=", "<>", "<", "<=", ">", ">=", "'x'", "'a\\'b'", "'%@x.com'", "12", "-3.5", "2024-01-01",
    "2024-01-01T00:00:00Z", "2024-13-45", "'\\z'", "'", "\\", "Task", "Account.Name", "Company",
]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_random_strings_only_raise_soql_errors(text: str) -> None:
    try:
        parse(text)
    except SoqlError as exc:
        assert exc.error_code in {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR", "NUMBER_OUTSIDE_VALID_RANGE"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=14))
def test_token_soups_only_raise_soql_errors(words: list[str]) -> None:
    try:
        parse("SELECT " + " ".join(words))
    except SoqlError as exc:
        assert exc.message


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TestClient, dict[str, str]]]:
    box = SalesforceSandbox()
    headers = {"Authorization": f"Bearer {box.access_token()}"}
    with TestClient(box.app, base_url="https://sandbox.my.salesforce.com") as test_client:
        yield test_client, headers


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["LastName", "Company", "Email", "NumberOfEmployees", "OwnerId", "Relay_Id__c", "CreatedDate", "Page_Views__c", "Webinar_Attended__c", "Relay_SLA_Due__c", "attributes", "Id", "bogus"])
RECORD = st.dictionaries(FIELDS, JSON, max_size=6) | JSON


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=RECORD, records=st.lists(RECORD, max_size=4), all_or_none=JSON)
def test_random_bodies_never_answer_500(api: tuple[TestClient, dict[str, str]], body: Any, records: list[Any], all_or_none: Any) -> None:
    test_client, headers = api
    base = "/services/data/v59.0/"
    answers = [
        test_client.post(base + "sobjects/Lead/", json=body, headers=headers),
        test_client.patch(base + "sobjects/Lead/00Q5e0000000001EAA", json=body, headers=headers),
        test_client.patch(base + "sobjects/Task/Relay_Idempotency_Key__c/k1", json=body, headers=headers),
        test_client.post(base + "composite/sobjects", json={"allOrNone": all_or_none, "records": records}, headers=headers),
        test_client.patch(base + "composite/sobjects", json={"records": records}, headers=headers),
        test_client.patch(base + "composite/sobjects/Lead/Relay_Id__c", json={"records": records}, headers=headers),
        test_client.post(base + "composite/sobjects", json=body, headers=headers),
        test_client.post(base + "jobs/ingest", json=body, headers=headers),
    ]
    for answer in answers:
        assert answer.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, answer.text
        if answer.status_code >= HTTPStatus.BAD_REQUEST:
            assert isinstance(answer.json(), list) and "errorCode" in answer.json()[0]
