"""Fidelity gaps clients written elsewhere hit: headers, object type aliases, schemas, more object types.

Sources:
- https://developers.hubspot.com/docs/api/usage-details (``X-HubSpot-RateLimit-Secondly`` and
  ``-Secondly-Remaining`` beside the ten-second and daily headers) and the error body shape
  ``{status, message, correlationId, category}`` whose id is also sent as ``X-HubSpot-Correlation-Id``.
- https://developers.hubspot.com/docs/api/crm/understanding-the-crm (object type ids: contacts 0-1,
  companies 0-2, deals 0-3, tickets 0-5, calls 0-48, emails 0-49, meetings 0-47, notes 0-46, tasks 0-27...;
  the object type may be given by name or id in every CRM path).
- https://developers.hubspot.com/docs/api/crm/crm-custom-objects (``GET /crm/v3/schemas``).
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException
from hubspot.crm.objects.calls import SimplePublicObjectInput as CallUpdate
from hubspot.crm.objects.calls import SimplePublicObjectInputForCreate as CallCreate
from hubspot.crm.objects.emails import SimplePublicObjectInputForCreate as EmailCreate
from hubspot.crm.objects.meetings import SimplePublicObjectInputForCreate as MeetingCreate
from hubspot_portal import TOKEN, client, hs, sandbox  # noqa: F401  (fixtures)

from crm_sandbox.hubspot import HubSpotSandbox, RateLimits

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _url(box: HubSpotSandbox, path: str) -> str:
    assert box.server is not None
    return f"{box.server.url}{path}"


def _post(box: HubSpotSandbox, path: str, body: Any) -> httpx.Response:
    return httpx.post(_url(box, path), json=body, headers=AUTH)


# -- 1. headers --------------------------------------------------------------------------------


def test_every_answer_carries_secondly_limit_headers_and_a_fresh_correlation_id(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    first = httpx.get(_url(sandbox, "/crm/v3/objects/contacts"), headers=AUTH)
    second = httpx.get(_url(sandbox, "/crm/v3/owners/"), headers=AUTH)
    for answer in (first, second):
        assert answer.status_code == HTTPStatus.OK
        assert answer.headers["X-HubSpot-RateLimit-Secondly"] == str(100_000 // 10)
        assert 0 <= int(answer.headers["X-HubSpot-RateLimit-Secondly-Remaining"]) < 100_000 // 10
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "100000"
        uuid.UUID(answer.headers["X-HubSpot-Correlation-Id"])
    assert first.headers["X-HubSpot-Correlation-Id"] != second.headers["X-HubSpot-Correlation-Id"]


def test_secondly_remaining_counts_the_requests_of_the_last_second() -> None:
    now = [100.0]
    limits = RateLimits(ten_second_limit=50, monotonic=lambda: now[0])
    remaining = [int(limits.admit()[0]["X-HubSpot-RateLimit-Secondly-Remaining"]) for _ in range(3)]
    assert remaining == [4, 3, 2]
    now[0] += 1.5
    headers, refused = limits.admit()
    assert refused is None
    assert headers["X-HubSpot-RateLimit-Secondly"] == "5"
    assert headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "4"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "46"


def test_error_bodies_carry_the_correlation_id_of_their_header(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    answers = [
        httpx.get(_url(sandbox, "/crm/v3/objects/contacts/987654"), headers=AUTH),  # 404
        _post(sandbox, "/crm/v3/objects/contacts", {"properties": {"hs_lead_status": "NOPE"}}),  # 400
        httpx.get(_url(sandbox, "/crm/v3/objects/contacts"), headers={"Authorization": "Bearer wrong"}),  # 401
        httpx.get(_url(sandbox, "/crm/v3/objects/widgets"), headers=AUTH),  # unknown type
    ]
    assert [a.status_code for a in answers] == [
        HTTPStatus.NOT_FOUND, HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED, HTTPStatus.BAD_REQUEST,
    ]
    for answer in answers:
        assert answer.json()["correlationId"] == answer.headers["X-HubSpot-Correlation-Id"]


def test_sdk_exception_headers_and_body_agree_on_the_correlation_id(hs: HubSpot) -> None:  # noqa: F811
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.get_by_id("424242")
    assert caught.value.status == HTTPStatus.NOT_FOUND
    assert json.loads(caught.value.body)["correlationId"] == caught.value.headers["X-HubSpot-Correlation-Id"]


def test_rate_limited_answers_also_carry_the_correlation_id() -> None:
    box = HubSpotSandbox(ten_second_limit=1)
    box.start()
    try:
        httpx.get(_url(box, "/crm/v3/objects/contacts"), headers=AUTH)
        refused = httpx.get(_url(box, "/crm/v3/objects/contacts"), headers=AUTH)
        assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert refused.json()["correlationId"] == refused.headers["X-HubSpot-Correlation-Id"]
        assert refused.headers["X-HubSpot-RateLimit-Secondly"] == "1"
    finally:
        box.stop()


# -- 2. singular names and type ids ------------------------------------------------------------


def test_singular_names_and_type_ids_work_in_objects_batch_search_and_properties(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    created = _post(sandbox, "/crm/v3/objects/contact", {"properties": {"email": "alias@example.com"}})
    assert created.status_code == HTTPStatus.CREATED, created.text
    record_id = created.json()["id"]
    read = httpx.get(_url(sandbox, f"/crm/v3/objects/0-1/{record_id}"), params={"properties": "email"}, headers=AUTH)
    assert read.json()["properties"]["email"] == "alias@example.com"
    batch = _post(sandbox, "/crm/v3/objects/0-1/batch/read", {"inputs": [{"id": record_id}], "properties": ["email"]})
    assert [r["properties"]["email"] for r in batch.json()["results"]] == ["alias@example.com"]
    search = _post(sandbox, "/crm/v3/objects/contact/search", {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "alias@example.com"}]}],
    })
    assert [r["id"] for r in search.json()["results"]] == [record_id]
    for name in ("contact", "0-1", "contacts"):
        prop = httpx.get(_url(sandbox, f"/crm/v3/properties/{name}/email"), headers=AUTH)
        assert prop.status_code == HTTPStatus.OK and prop.json()["name"] == "email"
    for singular, type_id in (("company", "0-2"), ("deal", "0-3"), ("task", "0-27"), ("note", "0-46")):
        for name in (singular, type_id):
            page = httpx.get(_url(sandbox, f"/crm/v3/objects/{name}"), headers=AUTH)
            assert page.status_code == HTTPStatus.OK, (name, page.text)


def test_singular_names_and_type_ids_work_in_association_paths(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    contact = _post(sandbox, "/crm/v3/objects/contacts", {"properties": {"email": "a@example.com"}}).json()["id"]
    company = _post(sandbox, "/crm/v3/objects/0-2", {"properties": {"name": "Acme"}}).json()["id"]
    put = httpx.put(_url(sandbox, f"/crm/v4/objects/contact/{contact}/associations/default/0-2/{company}"), headers=AUTH)
    assert put.status_code == HTTPStatus.OK, put.text
    listed = httpx.get(_url(sandbox, f"/crm/v4/objects/0-1/{contact}/associations/company"), headers=AUTH)
    assert [str(r["toObjectId"]) for r in listed.json()["results"]] == [company]
    v3 = _post(sandbox, "/crm/v3/associations/company/0-1/batch/read", {"inputs": [{"id": company}]})
    assert [t["id"] for t in v3.json()["results"][0]["to"]] == [contact]
    with_links = httpx.get(_url(sandbox, f"/crm/v3/objects/contact/{contact}"), params={"associations": "0-2"}, headers=AUTH)
    assert [a["id"] for a in with_links.json()["associations"]["companies"]["results"]] == [company]


def test_unknown_query_parameters_are_ignored(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    created = _post(sandbox, "/crm/v3/objects/contacts?foo=bar&hapikey=x", {"properties": {"email": "q@example.com"}})
    assert created.status_code == HTTPStatus.CREATED, created.text
    params = {"limit": "5", "paginateAssociations": "false", "somethingNew": "1", "properties": "email"}
    page = httpx.get(_url(sandbox, "/crm/v3/objects/contact"), params=params, headers=AUTH)
    assert page.status_code == HTTPStatus.OK, page.text
    assert [r["properties"]["email"] for r in page.json()["results"]] == ["q@example.com"]
    one = httpx.get(_url(sandbox, f"/crm/v3/objects/contacts/{created.json()['id']}"), params={"x": "y"}, headers=AUTH)
    assert one.status_code == HTTPStatus.OK


# -- 3. schemas, properties of other standard types, calls/emails/meetings ---------------------

STANDARD = {
    "calls": ("0-48", "hs_call_title"), "communications": ("0-18", "hs_communication_channel_type"),
    "emails": ("0-49", "hs_email_subject"), "meetings": ("0-47", "hs_meeting_title"), "notes": ("0-46", "hs_note_body"),
    "postal_mail": ("0-116", "hs_postal_mail_body"), "tasks": ("0-27", "hs_task_subject"), "leads": ("0-136", "hs_lead_name"),
    "line_items": ("0-8", "quantity"), "products": ("0-7", "price"), "tickets": ("0-5", "subject"),
    "quotes": ("0-14", "hs_title"), "goal_targets": ("0-74", "hs_goal_name"),
}


def test_schemas_list_no_custom_objects(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    answer = httpx.get(_url(sandbox, "/crm/v3/schemas"), headers=AUTH)
    assert answer.status_code == HTTPStatus.OK
    assert answer.json() == {"results": []}


@pytest.mark.parametrize("object_type", sorted(STANDARD))
def test_properties_of_standard_object_types(sandbox: HubSpotSandbox, object_type: str) -> None:  # noqa: F811
    type_id, key_field = STANDARD[object_type]
    for name in (object_type, type_id):
        answer = httpx.get(_url(sandbox, f"/crm/v3/properties/{name}"), headers=AUTH)
        assert answer.status_code == HTTPStatus.OK, (name, answer.text)
        names = {p["name"] for p in answer.json()["results"]}
        assert {"hs_object_id", "hs_lastmodifieddate", "hubspot_owner_id", key_field} <= names, name
        assert names & {"hs_createdate", "createdate"}
    assert sandbox.server is not None
    listed = client(sandbox.server).crm.properties.core_api.get_all(object_type)
    assert key_field in {p.name for p in listed.results}


def test_calls_emails_and_meetings_are_readable_and_writable_through_the_sdk(hs: HubSpot) -> None:  # noqa: F811
    call = hs.crm.objects.calls.basic_api.create(CallCreate(properties={
        "hs_call_title": "Intro call", "hs_timestamp": "2025-03-01T10:00:00Z", "hs_call_direction": "OUTBOUND",
    }))
    hs.crm.objects.calls.basic_api.update(call.id, CallUpdate(properties={"hs_call_duration": "60000"}))
    read = hs.crm.objects.calls.basic_api.get_by_id(call.id, properties=["hs_call_title", "hs_call_duration", "hs_timestamp"])
    assert read.properties["hs_call_title"] == "Intro call"
    assert read.properties["hs_call_duration"] == "60000"
    assert read.properties["hs_timestamp"] == "2025-03-01T10:00:00.000Z"
    email = hs.crm.objects.emails.basic_api.create(EmailCreate(properties={
        "hs_email_subject": "Hello", "hs_email_direction": "EMAIL", "hs_timestamp": "1740823200000",
    }))
    meeting = hs.crm.objects.meetings.basic_api.create(MeetingCreate(properties={
        "hs_meeting_title": "Demo", "hs_meeting_outcome": "SCHEDULED", "hs_timestamp": "1740823200000",
    }))
    emails = hs.crm.objects.emails.basic_api.get_page(properties=["hs_email_subject"])
    assert [(e.id, e.properties["hs_email_subject"]) for e in emails.results] == [(email.id, "Hello")]
    meetings = hs.crm.objects.meetings.basic_api.get_page(properties=["hs_meeting_title"])
    assert [(m.id, m.properties["hs_meeting_title"]) for m in meetings.results] == [(meeting.id, "Demo")]
    hs.crm.objects.calls.basic_api.archive(call.id)
    assert hs.crm.objects.calls.basic_api.get_page().results == []


def test_engagement_values_are_validated_like_other_objects(sandbox: HubSpotSandbox) -> None:  # noqa: F811
    refused = _post(sandbox, "/crm/v3/objects/calls", {"properties": {"hs_call_direction": "SIDEWAYS"}})
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert "SIDEWAYS" in refused.json()["message"]
    created = _post(sandbox, "/crm/v3/objects/0-47", {"properties": {"hs_meeting_title": "Kickoff"}})
    assert created.status_code == HTTPStatus.CREATED
    found = _post(sandbox, "/crm/v3/objects/meeting/search", {"query": "Kickoff", "properties": ["hs_meeting_title"]})
    assert [r["properties"]["hs_meeting_title"] for r in found.json()["results"]] == ["Kickoff"]
