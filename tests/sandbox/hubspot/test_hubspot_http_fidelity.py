"""HTTP-level fidelity: compressed request bodies and the auth scheme's case.

Sources:
- RFC 7231 section 3.1.2.2 (Content-Encoding) and RFC 7235 section 2.1 (the auth scheme is
  case-insensitive): clients such as urllib3/httpx users gzip large batch bodies and some
  send ``bearer`` in lower case; the brief asks the sandbox to accept both.
- The error body shape ``{status, message, correlationId, category}`` is the one quoted from a
  real portal in HubSpot/hubspot-api-nodejs issue #669.
"""

from __future__ import annotations

import gzip
import json
import zlib
from http import HTTPStatus

import httpx
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot_portal import TOKEN, client, sandbox, seed_contacts  # noqa: F401  (fixture)

from crm_sandbox.hubspot import HubSpotSandbox


def _url(box: HubSpotSandbox, path: str) -> str:
    assert box.server is not None
    return f"{box.server.url}{path}"


def test_gzip_create_body_is_inflated_and_saved(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    body = gzip.compress(json.dumps({"properties": {"email": "zip@example.com"}}).encode())
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    created = httpx.post(_url(sandbox, "/crm/v3/objects/contacts"), content=body, headers=headers)
    assert created.status_code == HTTPStatus.CREATED
    record_id = created.json()["id"]
    read = httpx.get(_url(sandbox, f"/crm/v3/objects/contacts/{record_id}"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert read.json()["properties"]["email"] == "zip@example.com"


def test_deflate_batch_body_with_or_without_zlib_header(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    def payload(email: str) -> bytes:
        return json.dumps({"inputs": [{"properties": {"email": email}}]}).encode()

    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bodies = {"a@example.com": zlib.compress(payload("a@example.com"))}
    bodies["b@example.com"] = raw.compress(payload("b@example.com")) + raw.flush()
    for email, body in bodies.items():
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Content-Encoding": "Deflate"}
        answer = httpx.post(_url(sandbox, "/crm/v3/objects/contacts/batch/create"), content=body, headers=headers)
        assert answer.status_code == HTTPStatus.CREATED, answer.text
        assert answer.json()["results"][0]["properties"]["email"] == email


def test_corrupt_or_unknown_encoding_is_a_named_validation_error(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    for encoding, body in (("gzip", b"not gzip at all"), ("br", b"{}")):
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Content-Encoding": encoding}
        answer = httpx.post(_url(sandbox, "/crm/v3/objects/contacts"), content=body, headers=headers)
        assert answer.status_code == HTTPStatus.BAD_REQUEST
        error = answer.json()
        assert error["category"] == "VALIDATION_ERROR"
        assert encoding in error["message"]
        assert {"status", "message", "correlationId", "category"} <= set(error)


def test_auth_scheme_is_case_insensitive_but_token_is_not(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    url = _url(sandbox, "/crm/v3/objects/contacts")
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert httpx.get(url, headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == HTTPStatus.OK
    for header in (f"Bearer {TOKEN.upper()}", f"Basic {TOKEN}", "Bearer", ""):
        refused = httpx.get(url, headers={"Authorization": header})
        assert refused.status_code == HTTPStatus.UNAUTHORIZED
        assert refused.json()["category"] == "INVALID_AUTHENTICATION"


def test_properties_with_history_comes_back_in_the_sdk_model(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    # Shape: hubspot-api-client 12.0.0 hubspot/crm/contacts/models/simple_public_object_with_associations.py
    # (propertiesWithHistory: dict[str, list[ValueWithTimestamp{value, timestamp, sourceType, ...}]]), and
    # https://developers.hubspot.com/docs/api/crm/contacts ("propertiesWithHistory" query parameter).
    assert sandbox.server is not None
    hs = client(sandbox.server)
    created = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "h@example.com"}))
    one = hs.crm.contacts.basic_api.get_by_id(created.id, properties_with_history=["email", "phone", "nosuchprop"])
    assert one.properties_with_history is not None
    assert [entry.value for entry in one.properties_with_history["email"]] == ["h@example.com"]
    assert one.properties_with_history["email"][0].timestamp == one.updated_at
    assert one.properties_with_history["phone"] == []
    assert "nosuchprop" not in one.properties_with_history
    page = hs.crm.contacts.basic_api.get_page(properties_with_history=["email"])
    assert page.results[0].properties_with_history["email"][0].source_type == "API"
    raw = httpx.get(_url(sandbox, f"/crm/v3/objects/contacts/{created.id}"), params={"propertiesWithHistory": "email"},
                    headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert list(raw)[:3] == ["id", "properties", "propertiesWithHistory"]
    plain = httpx.get(_url(sandbox, f"/crm/v3/objects/contacts/{created.id}"), headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert "propertiesWithHistory" not in plain


def test_a_page_with_history_holds_at_most_50_records() -> None:
    # https://developers.hubspot.com/docs/api/crm/understanding-the-crm: with propertiesWithHistory
    # the list endpoints return at most 50 records a page.
    box = HubSpotSandbox(seed_contacts(120), ten_second_limit=100_000)
    box.start()
    try:
        url = _url(box, "/crm/v3/objects/contacts")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        history = httpx.get(url, params={"limit": 100, "propertiesWithHistory": "email"}, headers=auth).json()
        assert len(history["results"]) == 50
        assert history["paging"]["next"]["after"] == "50"
        plain = httpx.get(url, params={"limit": 100}, headers=auth).json()
        assert len(plain["results"]) == 100
    finally:
        box.stop()
