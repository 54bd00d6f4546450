"""CRM records <-> canonical records with the shipped mappings."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config.loader import RelayConfig, load_config
from connector.config.mappings import ObjectMapping
from connector.crms.hubspot.records import (
    flatten,  # HubSpot answers {id, properties}; its adapter flattens
)
from connector.mapping import MappingError, changed_fields, record_meta, to_canonical, to_crm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    return load_config(REPO / "config", REPO / "mappings", env={})


@pytest.fixture(scope="module")
def lead(config: RelayConfig) -> ObjectMapping:
    return config.object_mapping("salesforce", "Lead")


@pytest.fixture(scope="module")
def contact(config: RelayConfig) -> ObjectMapping:
    return config.object_mapping("hubspot", "contacts")


SALESFORCE_LEAD: dict[str, Any] = {
    "attributes": {"type": "Lead", "url": "/services/data/v59.0/sobjects/Lead/00Q000000000001AAA"},
    "Id": "00Q000000000001AAA",
    "FirstName": "Ada",
    "LastName": "Lovelace",
    "Email": " Ada@Globex.Example ",
    "NumberOfEmployees": 1200,
    "AnnualRevenue": 25000000.0,
    "Country": "US",
    "OwnerId": "005000000000001AAA",
    "IsConverted": False,
    "HasOptedOutOfEmail": True,
    "CreatedDate": "2024-01-01T09:30:00.000+0000",
    "SystemModstamp": "2024-01-02T10:00:00.000+0000",
    "IsDeleted": False,
    "Page_Views__c": 14.0,
    "Demo_Requested__c": True,
    "Relay_Score__c": None,
    "Relay_SLA_Due__c": "2024-01-01T09:35:00.000+0000",
}

HUBSPOT_CONTACT: dict[str, Any] = flatten({
    "id": "101",
    "archived": False,
    "createdAt": "2024-01-01T09:30:00.000Z",
    "updatedAt": "2024-01-02T10:00:00.000Z",
    "properties": {
        "firstname": "Ada",
        "email": "ada@globex.example",
        "numemployees": "1200",
        "annualrevenue": "25000000",
        "hs_email_optout": "false",
        "hs_analytics_num_page_views": "14",
        "webinar_attended": "true",
        "demo_requested": "",
        "createdate": "1704101400000",
        "hs_lastmodifieddate": "2024-01-02T10:00:00.000Z",
        "relay_score": "86",
        "relay_sla_due": "2024-01-01T09:35:00.000Z",
        "hubspot_owner_id": None,
    },
})


def test_salesforce_lead_to_canonical(lead: ObjectMapping) -> None:
    canonical, problems = to_canonical(lead, SALESFORCE_LEAD)
    assert problems == []
    assert canonical == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@globex.example",
        "employees": 1200,
        "annual_revenue": 25_000_000.0,
        "country": "US",
        "owner_id": "005000000000001AAA",
        "is_converted": False,
        "email_opt_out": True,
        "created_at": datetime(2024, 1, 1, 9, 30, tzinfo=UTC),
        "page_views": 14,
        "demo_requested": True,
        "relay_score": None,
        "relay_sla_due": datetime(2024, 1, 1, 9, 35, tzinfo=UTC),
    }


def test_hubspot_contact_strings_are_parsed(contact: ObjectMapping) -> None:
    canonical, problems = to_canonical(contact, HUBSPOT_CONTACT)
    assert problems == []
    assert canonical == {
        "first_name": "Ada",
        "email": "ada@globex.example",
        "employees": 1200,
        "annual_revenue": 25_000_000.0,
        "email_opt_out": False,
        "page_views": 14,
        "webinar_attended": True,
        "demo_requested": None,
        "created_at": datetime(2024, 1, 1, 9, 30, tzinfo=UTC),
        "relay_score": 86,
        "relay_sla_due": datetime(2024, 1, 1, 9, 35, tzinfo=UTC),
        "owner_id": None,
    }


def test_a_bad_value_is_one_problem_and_the_rest_of_the_record_still_maps(contact: ObjectMapping) -> None:
    record = flatten({"id": "202", "properties": {"email": "x@y.example", "numemployees": "about fifty", "webinar_attended": "maybe"}})
    canonical, problems = to_canonical(contact, record)
    assert canonical == {"email": "x@y.example"}
    assert [str(p) for p in problems] == [
        "contacts 202: numemployees -> employees: 'about fifty' is not a whole number",
        "contacts 202: webinar_attended -> webinar_attended: 'maybe' is not true or false",
    ]
    assert problems[0].value == "about fifty" and problems[0].record_id == "202"


def test_a_batch_with_bad_records_maps_every_record(contact: ObjectMapping) -> None:
    records = [flatten({"id": str(n), "properties": {"relay_score": "x" if n % 3 == 0 else str(n)}}) for n in range(1, 10)]
    results = [to_canonical(contact, r) for r in records]
    assert [c.get("relay_score") for c, _ in results] == [1, 2, None, 4, 5, None, 7, 8, None]
    assert [p.record_id for _, problems in results for p in problems] == ["3", "6", "9"]


def test_record_meta(lead: ObjectMapping, contact: ObjectMapping) -> None:
    meta = record_meta(lead, SALESFORCE_LEAD)
    assert (meta.record_id, meta.modified_at, meta.deleted) == (
        "00Q000000000001AAA", datetime(2024, 1, 2, 10, tzinfo=UTC), False)
    archived = record_meta(contact, {**HUBSPOT_CONTACT, "archived": True})
    assert archived.deleted and archived.modified_at == datetime(2024, 1, 2, 10, tzinfo=UTC)


def test_write_back_formats_per_crm(lead: ObjectMapping, contact: ObjectMapping) -> None:
    due = datetime(2024, 1, 1, 9, 35, 0, 250000, tzinfo=UTC)
    changes = {"relay_score": 86, "relay_score_category": "Hot", "relay_sla_due": due, "owner_id": "42",
               "relay_matched_account": None}
    assert to_crm(lead, changes) == {
        "Relay_Score__c": 86, "Relay_Score_Category__c": "Hot", "Relay_SLA_Due__c": "2024-01-01T09:35:00.250Z",
        "OwnerId": "42", "Relay_Matched_Account__c": None,
    }
    assert to_crm(contact, changes) == {
        "relay_score": "86", "relay_score_category": "Hot", "relay_sla_due": "2024-01-01T09:35:00.250Z",
        "hubspot_owner_id": "42", "relay_matched_company": "",
    }


def test_tasks_are_written_in_each_crms_vocabulary(config: RelayConfig) -> None:
    task = {"subject": "Call Ada (Hot lead)", "due_at": datetime(2024, 1, 1, 23, 30, tzinfo=UTC), "priority": "High",
            "status": "Not Started", "owner_id": "7", "idempotency_key": "task:abc"}
    assert to_crm(config.object_mapping("salesforce", "Task"), task) == {
        "Subject": "Call Ada (Hot lead)", "ActivityDate": "2024-01-01", "Priority": "High", "Status": "Not Started",
        "OwnerId": "7", "Relay_Idempotency_Key__c": "task:abc"}
    assert to_crm(config.object_mapping("hubspot", "tasks"), task) == {
        "hs_task_subject": "Call Ada (Hot lead)", "hs_timestamp": "2024-01-01T23:30:00.000Z",
        "hs_task_priority": "HIGH", "hs_task_status": "NOT_STARTED", "hubspot_owner_id": "7",
        "relay_idempotency_key": "task:abc"}


def test_hubspot_owner_archived_means_inactive(config: RelayConfig) -> None:
    owners = config.object_mapping("hubspot", "owners")
    canonical, problems = to_canonical(owners, {"id": "7", "email": "Olivia.Grant@northwind.example",
                                                "firstName": "Olivia", "lastName": "Grant", "archived": True})
    assert problems == []
    assert canonical == {"id": "7", "email": "olivia.grant@northwind.example", "first_name": "Olivia",
                         "last_name": "Grant", "active": False}


def test_writing_an_unmapped_or_bad_field_names_it(lead: ObjectMapping) -> None:
    with pytest.raises(MappingError) as caught:
        to_crm(lead, {"industry": "Software", "relay_score": "high"})
    message = str(caught.value)
    assert "'industry' is not written to Lead" in message
    assert "relay_score -> Relay_Score__c: 'high' is not a whole number" in message


def test_unchanged_values_are_not_rewritten(lead: ObjectMapping, contact: ObjectMapping) -> None:
    current, _ = to_canonical(contact, HUBSPOT_CONTACT)
    desired = {"relay_score": 86, "relay_sla_due": datetime(2024, 1, 1, 9, 35, 0, 400, tzinfo=UTC),
               "relay_score_category": "Hot"}
    assert changed_fields(contact, current, desired) == {"relay_score_category": "Hot"}
    current_lead, _ = to_canonical(lead, {**SALESFORCE_LEAD, "Relay_Score__c": 86.0})
    assert changed_fields(lead, current_lead, {"relay_score": 86}) == {}
    assert changed_fields(lead, current_lead, {"relay_score": 87}) == {"relay_score": 87}


person_values = st.fixed_dictionaries(
    {},
    optional={
        "relay_score": st.integers(min_value=0, max_value=100),
        "relay_score_category": st.sampled_from(["Hot", "Warm", "Qualified", "Early", "Cold"]),
        "relay_routing_reason": st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=60)
        .filter(lambda text: text.strip() == text and text != ""),
        "relay_sla_due": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
        .map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
        "relay_id": st.uuids().map(str),
        "owner_id": st.from_regex(r"[0-9A-Za-z]{15,18}", fullmatch=True),
        "email": st.from_regex(r"[a-z0-9.]{1,10}@[a-z0-9]{1,10}\.example", fullmatch=True),
    },
)


@cache
def shipped_config() -> RelayConfig:
    return load_config(REPO / "config", REPO / "mappings", env={})


@settings(max_examples=100, deadline=None)
@given(values=person_values, crm=st.sampled_from(["salesforce", "hubspot"]))
def test_canonical_to_crm_to_canonical_is_identity(values: dict[str, Any], crm: str) -> None:
    object_mapping = shipped_config().object_mapping(crm, "Lead" if crm == "salesforce" else "contacts")
    crm_record = {object_mapping.id_field: "1", **to_crm(object_mapping, values)}
    canonical, problems = to_canonical(object_mapping, crm_record)
    assert problems == []
    assert canonical == values
