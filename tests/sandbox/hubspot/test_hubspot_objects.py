"""Records through the official SDK: paging, get, create, update, archive, validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot_portal import TOKEN, client, contact, seed_contacts

from crm_sandbox.hubspot import HubSpotSandbox


@pytest.fixture(scope="module")
def big() -> Iterator[HubSpotSandbox]:
    box = HubSpotSandbox(seed_contacts(2_500), ten_second_limit=100_000)
    box.start()
    yield box
    box.stop()


def test_get_page_walks_thousands_of_contacts_in_id_order(big: HubSpotSandbox) -> None:
    assert big.server is not None
    api = client(big.server).crm.contacts.basic_api
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = api.get_page(limit=100, after=after, properties=["email", "firstname"])
        seen.extend(r.id for r in page.results)
        pages += 1
        if page.paging is None:
            break
        after = page.paging.next.after
    assert pages == 25
    assert seen == [str(n) for n in range(1, 2_501)]
    assert page.results[-1].properties["email"] == "person2500@acme1.example"


def test_get_all_and_limit_above_100_is_capped(big: HubSpotSandbox) -> None:
    assert big.server is not None
    hs = client(big.server)
    everyone = hs.crm.contacts.get_all(properties=["lastname"])
    assert len(everyone) == 2_500
    assert {"lastname", "createdate", "lastmodifieddate", "hs_object_id"} <= set(everyone[0].properties)
    raw = httpx.get(f"{big.server.url}/crm/v3/objects/contacts", params={"limit": 500},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert len(raw.json()["results"]) == 100
    assert raw.json()["paging"]["next"]["after"] == "100"


def test_default_properties_and_comma_separated_lists(big: HubSpotSandbox) -> None:
    assert big.server is not None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    plain = httpx.get(f"{big.server.url}/crm/v3/objects/contacts/7", headers=headers).json()
    assert set(plain["properties"]) == {"firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"}
    picked = httpx.get(f"{big.server.url}/crm/v3/objects/contacts/7?properties=email,phone,nosuch", headers=headers).json()
    assert picked["properties"]["email"] == "person7@acme0.example"
    assert picked["properties"]["phone"] is None
    assert "nosuch" not in picked["properties"]


def test_create_get_update_archive_round_trip(hs: HubSpot, sandbox: HubSpotSandbox) -> None:
    api = hs.crm.contacts.basic_api
    created = api.create(SimplePublicObjectInputForCreate(properties={
        "email": "Ada@Example.com", "firstname": "Ada", "numemployees": 42, "hs_email_optout": True,
        "hs_object_id": "999", "createdate": "2001-01-01T00:00:00Z",
    }))
    assert created.properties["email"] == "ada@example.com"
    assert created.properties["numemployees"] == "42"
    assert created.properties["hs_email_optout"] == "true"
    assert created.properties["hs_object_id"] == created.id
    assert created.properties["createdate"] == created.properties["lastmodifieddate"]
    assert created.created_at == created.updated_at

    by_email = api.get_by_id("ADA@example.com", id_property="email", properties=["firstname"])
    assert by_email.id == created.id and by_email.properties["firstname"] == "Ada"

    updated = api.update(created.id, SimplePublicObjectInput(properties={"lastname": "Lovelace", "firstname": ""}))
    assert updated.properties["lastname"] == "Lovelace"
    assert "firstname" not in updated.properties
    assert updated.updated_at >= created.updated_at

    before = sandbox.state.records["contacts"][created.id]["properties"]["hs_lastmodifieddate"]
    api.archive(created.id)
    with pytest.raises(ApiException) as missing:
        api.get_by_id(created.id)
    assert missing.value.status == HTTPStatus.NOT_FOUND
    archived = api.get_page(archived=True).results
    assert [r.id for r in archived] == [created.id]
    assert archived[0].archived is True and archived[0].archived_at is not None
    assert archived[0].properties["lastmodifieddate"] is not None
    assert sandbox.state.records["contacts"][created.id]["properties"]["hs_lastmodifieddate"] == before


def test_unknown_property_is_hubspots_validation_error(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"foo": "1", "email": "x@y.example"}))
    assert error.value.status == HTTPStatus.BAD_REQUEST
    body = json.loads(error.value.body)
    assert body["category"] == "VALIDATION_ERROR"
    assert body["status"] == "error" and body["correlationId"]
    assert body["message"].startswith("Property values were not valid: [")
    items = json.loads(body["message"][len("Property values were not valid: "):])
    assert items[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert items[0]["name"] == "foo"
    assert items[0]["message"] == 'Property "foo" does not exist'


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"numemployees": "lots"}, "INVALID_INTEGER"),
        ({"hs_lead_status": "MAYBE"}, "INVALID_OPTION"),
        ({"hs_email_optout": "yes"}, "INVALID_OPTION"),
        ({"email": "not-an-email"}, "INVALID_EMAIL"),
        ({"hubspot_owner_id": "1"}, "INVALID_OWNER_ID"),
    ],
)
def test_invalid_values_name_the_property_and_code(hs: HubSpot, props: dict[str, str], code: str) -> None:
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props))
    body = json.loads(error.value.body)
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["context"]["propertyName"] == list(props)


def test_invalid_dates_on_deals_and_tasks_need_a_due_date(hs: HubSpot) -> None:
    from hubspot.crm.deals import ApiException as DealError
    from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealInput
    from hubspot.crm.objects.tasks import ApiException as TaskError
    from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate as TaskInput

    with pytest.raises(DealError) as deal:
        hs.crm.deals.basic_api.create(DealInput(properties={"dealname": "X", "closedate": "soon"}))
    assert json.loads(deal.value.body)["errors"][0]["code"] == "INVALID_DATE"
    with pytest.raises(TaskError) as task:
        hs.crm.objects.tasks.basic_api.create(TaskInput(properties={"hs_task_subject": "Call"}))
    assert "hs_timestamp is required" in json.loads(task.value.body)["message"]
    made = hs.crm.objects.tasks.basic_api.create(TaskInput(properties={"hs_task_subject": "Call", "hs_timestamp": "1767225600000"}))
    assert made.properties["hs_timestamp"] == "2026-01-01T00:00:00.000Z"


def test_duplicate_email_is_a_409_naming_the_existing_contact(hs: HubSpot) -> None:
    api = hs.crm.contacts.basic_api
    first = api.create(SimplePublicObjectInputForCreate(properties={"email": "dup@example.com"}))
    with pytest.raises(ApiException) as error:
        api.create(SimplePublicObjectInputForCreate(properties={"email": "DUP@example.com"}))
    assert error.value.status == HTTPStatus.CONFLICT
    body = json.loads(error.value.body)
    assert body["message"] == f"Contact already exists. Existing ID: {first.id}"
    assert body["category"] == "CONFLICT"
    other = api.create(SimplePublicObjectInputForCreate(properties={"email": "other@example.com"}))
    with pytest.raises(ApiException) as clash:
        api.update(other.id, SimplePublicObjectInput(properties={"email": "dup@example.com"}))
    assert clash.value.status == HTTPStatus.CONFLICT


def test_object_type_ids_and_unknown_types(sandbox: HubSpotSandbox) -> None:
    assert sandbox.server is not None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sandbox.server.url, headers=headers) as http:
        made = http.post("/crm/v3/objects/0-2", json={"properties": {"name": "Globex", "domain": "globex.example"}})
        assert made.status_code == HTTPStatus.CREATED
        assert http.get(f"/crm/v3/objects/companies/{made.json()['id']}").json()["properties"]["domain"] == "globex.example"
        unknown = http.get("/crm/v3/objects/widgets")
        assert unknown.status_code == HTTPStatus.BAD_REQUEST
        assert unknown.json()["message"] == "Unable to infer object type from: widgets"
        broken = http.post("/crm/v3/objects/contacts", content=b"{nope")
        assert broken.status_code == HTTPStatus.BAD_REQUEST
        assert "Invalid input JSON" in broken.json()["message"]


def test_seeded_ids_continue_after_the_highest(sandbox: HubSpotSandbox) -> None:
    sandbox.load_seed(seed_contacts(3, start=500))
    assert sandbox.server is not None
    made = client(sandbox.server).crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": contact(9)["properties"]["email"]})
    )
    assert int(made.id) == 503


def test_trailing_slashes_are_served_not_redirected(sandbox: HubSpotSandbox) -> None:
    assert sandbox.server is not None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    made = httpx.post(f"{sandbox.server.url}/crm/v3/objects/contacts/", json={"properties": {"firstname": "Slash"}}, headers=headers)
    assert made.status_code == HTTPStatus.CREATED
    again = httpx.get(f"{sandbox.server.url}/crm/v3/objects/contacts/{made.json()['id']}/", headers=headers)
    assert again.json()["properties"]["firstname"] == "Slash"
    assert "X-HubSpot-RateLimit-Remaining" in again.headers
