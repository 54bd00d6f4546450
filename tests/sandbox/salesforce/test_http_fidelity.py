"""HTTP-level behaviour of the real REST API: compressed request bodies, HEAD, If-Modified-Since on describes."""

from __future__ import annotations

import gzip
import json
import zlib
from email.utils import format_datetime as http_date
from http import HTTPStatus

import httpx
import pytest
from sf_helpers import FakeClock
from simple_salesforce import Salesforce

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox

U1 = salesforce_id("005", 101)
L1 = salesforce_id("00Q", 100)
BASE = "/services/data/v59.0"


@pytest.fixture()
def http(sandbox: SalesforceSandbox) -> httpx.Client:
    sandbox.load_seed({
        "User": [{"Id": U1, "Username": "olivia.grant@northwind.example", "LastName": "Grant", "Email": "olivia.grant@northwind.example", "IsActive": True}],
        "Lead": [{"Id": L1, "LastName": "Ng", "Company": "Globex", "OwnerId": U1}],
    })
    assert sandbox.server is not None
    return httpx.Client(base_url=sandbox.server.url, headers={"Authorization": f"Bearer {sandbox.access_token()}"})


# "Include a Content-Encoding: gzip or Content-Encoding: deflate header to compress a request.
# REST API decompresses any requests before processing."
# https://developer.salesforce.com/docs/platform/api-rest/guide/intro-rest-compression.html
@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", lambda b: zlib.compress(b)[2:-4])],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_compressed_request_bodies_are_inflated(http: httpx.Client, encoding: str, compress: object) -> None:
    assert callable(compress)
    body = compress(json.dumps({"LastName": "Okafor", "Company": "Initech", "Title": "CFO"}).encode())
    created = http.post(f"{BASE}/sobjects/Lead/", content=body, headers={"Content-Type": "application/json", "Content-Encoding": encoding})
    assert created.status_code == HTTPStatus.CREATED, created.text
    new_id = created.json()["id"]

    patch = compress(json.dumps({"Title": "CEO"}).encode())
    updated = http.patch(f"{BASE}/sobjects/Lead/{new_id}", content=patch, headers={"Content-Type": "application/json", "Content-Encoding": encoding})
    assert updated.status_code == HTTPStatus.NO_CONTENT
    assert http.get(f"{BASE}/sobjects/Lead/{new_id}", params={"fields": "Title,Company"}).json()["Title"] == "CEO"


def test_a_body_that_is_not_gzip_is_refused_with_an_error_list(http: httpx.Client) -> None:
    answer = http.patch(f"{BASE}/sobjects/Lead/{L1}", content=b'{"Title": "CFO"}', headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert answer.status_code == HTTPStatus.BAD_REQUEST
    [error] = answer.json()
    assert error["errorCode"] == "JSON_PARSER_ERROR"
    assert "gzip" in error["message"]


def test_compressed_collection_through_a_requests_session(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    """A client that gzips every body (as go-force does) works against sObject Collections."""
    body = gzip.compress(json.dumps({"records": [{"attributes": {"type": "Lead"}, "LastName": "Ibe", "Company": "Umbrella"}]}).encode())
    answer = sf.session.post(
        f"{sf.base_url}composite/sobjects",
        data=body,
        headers={**sf.headers, "Content-Encoding": "gzip"},
    )
    assert answer.status_code == HTTPStatus.OK
    [result] = answer.json()
    assert result["success"] is True and result["errors"] == []


# Every REST resource that answers GET also answers HEAD (status and headers, no body); the 405
# message lists "HEAD,GET,PATCH,DELETE" for sObject Rows, e.g. as quoted in
# https://salesforce.stackexchange.com/questions/tagged/rest-api ("HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE").
@pytest.mark.parametrize("path", [f"/sobjects/Lead/{L1}", "/limits/", "/sobjects/Lead/describe", "/query?q=SELECT+Id+FROM+Lead"])
def test_head_answers_like_get_without_a_body(http: httpx.Client, path: str) -> None:
    got = http.get(BASE + path)
    head = http.head(BASE + path)
    assert head.status_code == got.status_code == HTTPStatus.OK
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_method_not_allowed_lists_head_with_get(http: httpx.Client) -> None:
    answer = http.put(f"{BASE}/sobjects/Lead/{L1}", json={})
    assert answer.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert answer.json() == [{"message": "HTTP Method 'PUT' not allowed. Allowed are HEAD,GET,POST,PATCH,DELETE", "errorCode": "METHOD_NOT_ALLOWED"}]


# sObject Describe and Describe Global: "When using the If-Modified-Since header, if no available object's
# metadata has changed since the provided date, a 304 Not Modified status code is returned with no response body."
# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/sobject_describe_with_ifmodified_header.htm
@pytest.mark.parametrize("path", ["/sobjects/Lead/describe/", "/sobjects/"])
def test_describe_if_modified_since(http: httpx.Client, clock: FakeClock, path: str) -> None:
    later = http_date(clock.advance(minutes=5), usegmt=True)
    unchanged = http.get(BASE + path, headers={"If-Modified-Since": later})
    assert unchanged.status_code == HTTPStatus.NOT_MODIFIED
    assert unchanged.content == b""

    earlier = "Wed, 3 Jul 2013 19:43:31 GMT"
    changed = http.get(BASE + path, headers={"If-Modified-Since": earlier})
    assert changed.status_code == HTTPStatus.OK
    assert changed.json()

    unreadable = http.get(BASE + path, headers={"If-Modified-Since": "yesterday"})
    assert unreadable.status_code == HTTPStatus.OK


def test_describe_of_an_unknown_object_is_404_even_with_if_modified_since(http: httpx.Client) -> None:
    answer = http.get(f"{BASE}/sobjects/Nope__c/describe", headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert answer.status_code == HTTPStatus.NOT_FOUND
    assert answer.json()[0]["errorCode"] == "NOT_FOUND"


# A create answers 201 with a Location header naming the new row; the Composite docs show the same
# header in a create subrequest's httpHeaders:
# {"body": {"id": "001R00000033I6AIAU", "success": true, "errors": []},
#  "httpHeaders": {"Location": "/services/data/v38.0/sobjects/Account/001R00000033I6AIAU"}, "httpStatusCode": 201}
# https://developer.salesforce.com/docs/atlas.en-us.212.0.api_rest.meta/api_rest/responses_composite.htm
def test_create_answers_location_of_the_new_row(http: httpx.Client) -> None:
    created = http.post(f"{BASE}/sobjects/Lead/", json={"LastName": "Okafor", "Company": "Initech"})
    assert created.status_code == HTTPStatus.CREATED
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    assert created.headers["location"] == f"{BASE}/sobjects/Lead/{body['id']}"
    assert http.get(created.headers["location"]).json()["LastName"] == "Okafor"


def test_upsert_answers_location_only_when_it_creates(http: httpx.Client) -> None:
    first = http.patch(f"{BASE}/sobjects/Lead/Relay_Id__c/rl-1", json={"LastName": "Ibe", "Company": "Umbrella"})
    assert first.status_code == HTTPStatus.CREATED
    assert first.headers["location"] == f"{BASE}/sobjects/Lead/{first.json()['id']}"
    again = http.patch(f"{BASE}/sobjects/Lead/Relay_Id__c/rl-1", json={"Title": "CTO"})
    assert again.status_code == HTTPStatus.OK
    assert again.json() == {"id": first.json()["id"], "success": True, "errors": [], "created": False}
    assert "location" not in again.headers


# "Salesforce compresses a response only if the request contains an Accept-Encoding: gzip ... header.
# If compressed, the response contains a Content-Encoding header" (same compression page as above).
def test_answers_are_gzipped_only_when_the_client_accepts_it(http: httpx.Client) -> None:
    path = f"{BASE}/sobjects/Lead/describe"
    zipped = http.get(path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json()["name"] == "Lead"  # httpx inflates it
    plain = http.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == zipped.json()
    assert "sforce-limit-info" in zipped.headers


def test_simple_salesforce_reads_gzipped_answers(sf: Salesforce) -> None:
    """requests sends ``Accept-Encoding: gzip, deflate`` by default: every big answer comes back gzipped."""
    answer = sf.session.get(f"{sf.base_url}sobjects/Lead/describe", headers=sf.headers)
    assert answer.headers["Content-Encoding"] == "gzip"
    described = sf.restful("sobjects/Lead/describe")
    assert described is not None and described["name"] == "Lead"
