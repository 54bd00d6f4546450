"""Owners and properties through the SDK."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.crm.owners import ApiException as OwnerError
from hubspot.crm.properties import ApiException as PropertyError
from hubspot.crm.properties import BatchInputPropertyCreate, PropertyCreate, PropertyGroupCreate


def test_owners_list_email_filter_and_inactive_users(hs: HubSpot) -> None:
    owners = hs.crm.owners.owners_api.get_page(limit=100)
    emails = {o.email for o in owners.results}
    assert len(owners.results) == 21
    assert "lucas.silva@northwind.example" not in emails
    assert all(o.type == "PERSON" for o in owners.results)
    inactive = hs.crm.owners.owners_api.get_page(archived=True)
    assert [o.email for o in inactive.results] == ["lucas.silva@northwind.example"]
    one = hs.crm.owners.owners_api.get_page(email="olivia.grant@northwind.example")
    assert [o.last_name for o in one.results] == ["Grant"]
    again = hs.crm.owners.owners_api.get_by_id(int(one.results[0].id))
    assert again.user_id == one.results[0].user_id
    with pytest.raises(OwnerError) as missing:
        hs.crm.owners.owners_api.get_by_id(1)
    assert missing.value.status == HTTPStatus.NOT_FOUND


def test_paging_owners(hs: HubSpot) -> None:
    first = hs.crm.owners.owners_api.get_page(limit=10)
    second = hs.crm.owners.owners_api.get_page(limit=10, after=first.paging.next.after)
    assert not {o.id for o in first.results} & {o.id for o in second.results}


def test_owner_ids_are_valid_values_for_hubspot_owner_id(hs: HubSpot) -> None:
    owner = hs.crm.owners.owners_api.get_page(email="liam.walsh@northwind.example").results[0]
    made = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"hubspot_owner_id": owner.id}))
    assert made.properties["hubspot_owner_id"] == owner.id


def test_builtin_property_definitions(hs: HubSpot) -> None:
    lead_status = hs.crm.properties.core_api.get_by_name("contacts", "hs_lead_status")
    assert [o.value for o in lead_status.options] == [
        "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING"]
    stages = hs.crm.properties.core_api.get_by_name("deals", "dealstage")
    assert "closedwon" in [o.value for o in stages.options]
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert {"webinar_attended", "content_downloads", "email", "hs_object_id"} <= names
    assert "relay_score" not in names


def test_relay_creates_its_group_and_properties_then_uses_them(hs: HubSpot) -> None:
    api = hs.crm.properties
    with pytest.raises(PropertyError) as no_group:
        api.core_api.create("contacts", PropertyCreate(name="relay_score", label="Relay Score", type="number",
                                                       field_type="number", group_name="relay"))
    assert "relay" in json.loads(no_group.value.body)["message"]
    group = api.groups_api.create("contacts", PropertyGroupCreate(name="relay", label="Relay"))
    assert group.name == "relay"
    made = api.core_api.create("contacts", PropertyCreate(name="relay_score", label="Relay Score", type="number",
                                                          field_type="number", group_name="relay"))
    assert made.hubspot_defined is False
    batch = api.batch_api.create("contacts", BatchInputPropertyCreate(inputs=[
        PropertyCreate(name="relay_id", label="Relay Id", type="string", field_type="text", group_name="relay",
                       has_unique_value=True),
        PropertyCreate(name="relay_score_category", label="Category", type="string", field_type="text", group_name="relay"),
    ]))
    assert sorted(p.name for p in batch.results) == ["relay_id", "relay_score_category"]
    with pytest.raises(PropertyError) as exists:
        api.core_api.create("contacts", PropertyCreate(name="relay_score", label="Relay Score", type="number",
                                                       field_type="number", group_name="relay"))
    assert exists.value.status == HTTPStatus.CONFLICT
    assert json.loads(exists.value.body)["message"] == "Property named 'relay_score' already exists."

    contacts = hs.crm.contacts.basic_api
    first = contacts.create(SimplePublicObjectInputForCreate(properties={"relay_score": "87", "relay_id": "r-1"}))
    assert first.properties["relay_score"] == "87"
    fetched = contacts.get_by_id("r-1", id_property="relay_id", properties=["relay_score"])
    assert fetched.id == first.id
    from hubspot.crm.contacts import ApiException

    with pytest.raises(ApiException) as clash:
        contacts.create(SimplePublicObjectInputForCreate(properties={"relay_id": "R-1"}))
    assert clash.value.status == HTTPStatus.CONFLICT


def test_deal_pipeline_stages_match_the_dealstage_options(hs: HubSpot) -> None:
    pipelines = hs.crm.pipelines.pipelines_api.get_all("deals")
    stages = [s.id for p in pipelines.results for s in p.stages]  # every pipeline's stages are dealstage options
    options = [o.value for o in hs.crm.properties.core_api.get_by_name("deals", "dealstage").options]
    assert stages == options
    won = next(s for s in pipelines.results[0].stages if s.id == "closedwon")
    assert won.metadata == {"isClosed": "true", "probability": "1.0"}
    assert hs.crm.pipelines.pipelines_api.get_by_id("deals", "default").label == "Sales Pipeline"
