"""Associations v4 and v3 shapes, the task->contact link, and merges moving associations."""

from __future__ import annotations

import json
from http import HTTPStatus

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    BatchResponsePublicAssociationMultiWithLabelWithErrors,
)
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput
from hubspot.crm.contacts import ApiException, PublicMergeInput, SimplePublicObjectInputForCreate
from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate as TaskInput
from hubspot_portal import TOKEN

from crm_sandbox.hubspot import HubSpotSandbox


def _contact(hs: HubSpot, email: str, **props: str) -> str:
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email, **props})).id


def _company(hs: HubSpot, name: str) -> str:
    return hs.crm.companies.basic_api.create(CompanyInput(properties={"name": name})).id


def test_batch_create_and_read_contact_to_company(hs: HubSpot) -> None:
    people = [_contact(hs, f"a{i}@assoc.example") for i in range(3)]
    company = _company(hs, "Initech")
    created = hs.crm.associations.v4.batch_api.create("contacts", "companies", BatchInputPublicAssociationMultiPost(inputs=[
        {"from": {"id": p}, "to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}
        for p in people[:2]
    ]))
    assert [r.from_object_id for r in created.results] == people[:2]
    assert created.results[0].to_object_type_id == "0-2"

    read = hs.crm.associations.v4.batch_api.get_page("companies", "contacts", BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[{"id": company}]
    ))
    linked = sorted(str(t.to_object_id) for t in read.results[0].to)
    assert linked == sorted(people[:2])
    assert read.results[0].to[0].association_types[0].type_id == 280

    lonely = hs.crm.associations.v4.batch_api.get_page("contacts", "companies", BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[{"id": people[2]}, {"id": people[0]}]
    ))
    assert isinstance(lonely, BatchResponsePublicAssociationMultiWithLabelWithErrors)
    assert lonely.num_errors == 1 and lonely.errors[0].context == {"fromObjectId": [people[2]]}

    listed = hs.crm.contacts.basic_api.get_by_id(people[0], associations=["companies"])
    assert [(a.id, a.type) for a in listed.associations["companies"].results] == [(company, "contact_to_company_unlabeled")]


def test_default_associations_single_and_batch(hs: HubSpot) -> None:
    person = _contact(hs, "d@assoc.example")
    company = _company(hs, "Globex")
    single = hs.crm.associations.v4.basic_api.create_default("contacts", person, "companies", company)
    assert {r.association_spec.association_type_id for r in single.results} == {279, 280}
    other = _company(hs, "Umbrella")
    batch = hs.crm.associations.v4.batch_api.create_default("contact", "company", BatchInputPublicDefaultAssociationMultiPost(
        inputs=[{"from": {"id": person}, "to": {"id": other}}]
    ))
    assert batch.status == "COMPLETE"
    page = hs.crm.associations.v4.basic_api.get_page("contacts", person, "companies")
    assert sorted(str(r.to_object_id) for r in page.results) == sorted([company, other])
    labels = hs.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies")
    assert {(lab.type_id, lab.label) for lab in labels.results} == {(279, None), (1, "Primary")}


def test_task_is_linked_to_a_contact_from_its_create_body(hs: HubSpot) -> None:
    person = _contact(hs, "t@assoc.example")
    task = hs.crm.objects.tasks.basic_api.create(TaskInput(
        properties={"hs_task_subject": "Call back", "hs_timestamp": "2026-01-02T09:00:00Z", "hs_task_priority": "HIGH",
                    "hs_task_status": "NOT_STARTED"},
        associations=[{"to": {"id": person}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}],
    ))
    page = hs.crm.associations.v4.basic_api.get_page("contacts", person, "tasks")
    assert [str(r.to_object_id) for r in page.results] == [task.id]
    assert page.results[0].association_types[0].type_id == 203
    with pytest.raises(Exception) as error:
        hs.crm.objects.tasks.basic_api.create(TaskInput(
            properties={"hs_task_subject": "x", "hs_timestamp": "2026-01-02T09:00:00Z"},
            associations=[{"to": {"id": "999999"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}],
        ))
    assert "999999" in json.loads(error.value.body)["message"]  # type: ignore[attr-defined]


def test_batch_archive_removes_links(sandbox: HubSpotSandbox, hs: HubSpot) -> None:
    person = _contact(hs, "r@assoc.example")
    company = _company(hs, "Tyrell")
    hs.crm.associations.v4.basic_api.create_default("contacts", person, "companies", company)
    assert sandbox.server is not None
    answer = httpx.post(f"{sandbox.server.url}/crm/v4/associations/contacts/companies/batch/archive",
                        json={"inputs": [{"from": {"id": person}, "to": [{"id": company}]}]},
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == HTTPStatus.NO_CONTENT
    assert hs.crm.associations.v4.basic_api.get_page("companies", company, "contacts").results == []


def test_merge_archives_the_secondary_and_moves_its_associations(hs: HubSpot, sandbox: HubSpotSandbox) -> None:
    primary = _contact(hs, "keep@merge.example", firstname="Kim")
    secondary = _contact(hs, "gone@merge.example", firstname="Kimberly", phone="+1 555 0100")
    company = _company(hs, "Acme")
    hs.crm.associations.v4.basic_api.create_default("contacts", secondary, "companies", company)
    merged = hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=primary, object_id_to_merge=secondary))
    assert merged.id == primary
    assert merged.properties["hs_merged_object_ids"] == secondary
    assert merged.properties["firstname"] == "Kim" and merged.properties["phone"] == "+1 555 0100"
    assert [str(r.to_object_id) for r in hs.crm.associations.v4.basic_api.get_page("contacts", primary, "companies").results] == [company]
    assert [r.id for r in hs.crm.contacts.basic_api.get_page(archived=True).results] == [secondary]
    assert hs.crm.contacts.basic_api.get_by_id(secondary).id == primary
    with pytest.raises(ApiException) as again:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "gone@merge.example"}))
    assert json.loads(again.value.body)["message"].endswith(primary)


def test_v3_association_endpoints_still_work(hs: HubSpot, sandbox: HubSpotSandbox) -> None:
    from hubspot.crm.associations import BatchInputPublicAssociation, BatchInputPublicObjectId

    person = _contact(hs, "v3@assoc.example")
    company = _company(hs, "Hooli")
    made = hs.crm.associations.batch_api.create("contacts", "companies", BatchInputPublicAssociation(
        inputs=[{"from": {"id": person}, "to": {"id": company}, "type": "contact_to_company"}]
    ))
    assert made.results[0].type == "contact_to_company"
    read = hs.crm.associations.batch_api.read("companies", "contacts", BatchInputPublicObjectId(inputs=[{"id": company}]))
    assert {(t.id, t.type) for t in read.results[0].to} == {(person, "company_to_contact"), (person, "company_to_contact_unlabeled")}
    labels = {lab.label for lab in hs.crm.associations.v4.basic_api.get_page("contacts", person, "companies").results[0].association_types}
    assert labels == {"Primary", None}
    assert sandbox.server is not None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    gone = httpx.delete(f"{sandbox.server.url}/crm/v3/objects/contacts/{person}/associations/companies/{company}/1", headers=headers)
    assert gone.status_code == HTTPStatus.NO_CONTENT
    left = httpx.get(f"{sandbox.server.url}/crm/v3/objects/contacts/{person}/associations/companies", headers=headers).json()
    assert left["results"] == [{"id": company, "type": "contact_to_company_unlabeled"}]
