"""sObject rows: CRUD, upsert, validation errors, assignment rule, describe, deleted/ and updated/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sf_helpers import FakeClock
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox

LEAD = {"LastName": "Doe", "Company": "Acme", "Email": "jane@acme.example"}


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as info:
        call()
    return info.value.content[0]


def test_create_read_update_delete(sandbox: SalesforceSandbox, sf: Salesforce, clock: FakeClock) -> None:
    created = sf.Lead.create({**LEAD, "FirstName": "Jane", "Page_Views__c": 4})
    assert created == {"id": created["id"], "success": True, "errors": []}
    rec = sf.Lead.get(created["id"])
    assert rec["Name"] == "Jane Doe"
    assert rec["Status"] == "Open - Not Contacted"
    assert rec["IsDeleted"] is False and rec["Page_Views__c"] == 4.0
    assert rec["CreatedDate"] == "2026-03-02T09:30:00.123+0000" == rec["SystemModstamp"]
    assert rec["CreatedById"] == sandbox.state.admin_id
    clock.advance(seconds=5)
    assert sf.Lead.update(created["id"], {"Title": "CTO"}) == 204
    after = sf.Lead.get(created["id"], )
    assert after["Title"] == "CTO" and after["LastModifiedDate"] == "2026-03-02T09:30:05.123+0000"
    assert after["CreatedDate"] == rec["CreatedDate"]
    only = sf.Lead.get(created["id"] + "?fields=title,Email")
    assert list(only) == ["attributes", "Title", "Email"]
    assert sf.Lead.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(created["id"])
    assert sf.query_all(f"SELECT IsDeleted FROM Lead WHERE Id = '{created['id']}'", include_deleted=True)["records"][0]["IsDeleted"]


def test_malformed_row_id_answers_404(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Lead.get("nope")
    assert "Provided external ID field does not exist or is not accessible: nope" in info.value.content[0]["message"]


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"LastName": "X"}, "REQUIRED_FIELD_MISSING", ["Company"]),
        ({**LEAD, "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
        ({**LEAD, "FirstName": "x" * 41}, "STRING_TOO_LONG", ["FirstName"]),
        ({**LEAD, "Name": "Full Name"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Name"]),
        ({**LEAD, "CreatedDate": "2024-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["CreatedDate"]),
        ({**LEAD, "OwnerId": "bogus"}, "MALFORMED_ID", ["OwnerId"]),
        ({**LEAD, "OwnerId": salesforce_id("005", 999)}, "INVALID_CROSS_REFERENCE_KEY", []),
        ({**LEAD, "OwnerId": salesforce_id("00Q", 1)}, "FIELD_INTEGRITY_EXCEPTION", ["OwnerId"]),
    ],
)
def test_create_validation(sf: Salesforce, body: dict[str, Any], code: str, fields: list[str]) -> None:
    error = _error(lambda: sf.Lead.create(body))
    assert error["errorCode"] == code
    assert error["fields"] == fields


def test_deserialisation_errors(sf: Salesforce) -> None:
    unknown = _error(lambda: sf.Lead.create({**LEAD, "Foo__c": 1}))
    assert unknown == {"message": "No such column 'Foo__c' on sobject of type Lead", "errorCode": "INVALID_FIELD"}
    wrong_type = _error(lambda: sf.Lead.create({**LEAD, "NumberOfEmployees": "many"}))
    assert wrong_type["errorCode"] == "JSON_PARSER_ERROR"
    assert "NumberOfEmployees" in wrong_type["message"]


def test_inactive_owner_is_refused(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    inactive = salesforce_id("005", 500)
    sandbox.load_seed({"User": [{"Id": inactive, "Username": "lucas.silva@northwind.example", "LastName": "Silva", "Email": "lucas.silva@northwind.example", "IsActive": False}]})
    error = _error(lambda: sf.Contact.create({"LastName": "X", "OwnerId": inactive}))
    assert error["errorCode"] == "INACTIVE_OWNER_OR_USER"


def test_assignment_rule_and_auto_assign_header(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    owner = salesforce_id("005", 501)
    sandbox.load_seed({"User": [{"Id": owner, "Username": "olivia.grant@northwind.example", "LastName": "Grant", "Email": "olivia.grant@northwind.example"}]})
    ruled = sf.Lead.create({**LEAD, "OwnerId": owner})
    assert sf.Lead.get(ruled["id"])["OwnerId"] == sandbox.state.queue_user_id
    kept = sf.Lead.create({**LEAD, "OwnerId": owner}, headers={"Sforce-Auto-Assign": "FALSE"})
    assert sf.Lead.get(kept["id"])["OwnerId"] == owner
    assert sandbox.state.auto_assign_log == [(ruled["id"], None), (kept["id"], "FALSE")]


def test_upsert_by_external_id(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    created = sf.Lead.upsert("Relay_Id__c/r-1", LEAD, raw_response=True)
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": True}
    updated = sf.Lead.upsert("Relay_Id__c/R-1", {"Title": "VP"}, raw_response=True)
    assert updated.status_code == 200
    assert updated.json()["created"] is False and updated.json()["id"] == created.json()["id"]
    assert sf.Lead.get_by_custom_id("Relay_Id__c", "r-1")["Title"] == "VP"
    sf.Task.create({"Subject": "a", "Relay_Idempotency_Key__c": "k-1"})
    duplicate = _error(lambda: sf.Task.create({"Subject": "b", "Relay_Idempotency_Key__c": "K-1"}))
    assert duplicate["errorCode"] == "DUPLICATE_VALUE"
    sf.Lead.create({**LEAD, "Relay_Id__c": "R-1"})  # Relay_Id__c is an external id, not unique
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Lead.upsert("Relay_Id__c/r-1", {"Title": "CFO"})
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.upsert("Email/x", LEAD)


def test_upsert_with_several_matches_answers_300(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    sandbox.load_seed({"Task": [
        {"Id": salesforce_id("00T", 1), "Subject": "a", "Relay_Idempotency_Key__c": "k"},
        {"Id": salesforce_id("00T", 2), "Subject": "b", "Relay_Idempotency_Key__c": "K"},
    ]})
    with pytest.raises(SalesforceMoreThanOneRecord) as info:
        sf.Task.upsert("Relay_Idempotency_Key__c/k", {"Subject": "c"})
    assert len(info.value.content) == 2


def test_describe(sf: Salesforce) -> None:
    lead = sf.Lead.describe()
    fields = {f["name"]: f for f in lead["fields"]}
    assert fields["Relay_Id__c"]["externalId"] and fields["Relay_Id__c"]["idLookup"]
    task_key = next(f for f in sf.Task.describe()["fields"] if f["name"] == "Relay_Idempotency_Key__c")
    assert task_key["externalId"] and task_key["unique"]
    assert fields["OwnerId"]["referenceTo"] == ["User"] and fields["OwnerId"]["relationshipName"] == "Owner"
    assert fields["Name"]["createable"] is False
    assert "Open - Not Contacted" in [p["value"] for p in fields["Status"]["picklistValues"]]
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert {"Lead", "Contact", "Account", "Opportunity", "Task", "User"} <= set(names)
    assert sf.Task.metadata()["objectDescribe"]["keyPrefix"] == "00T"


def test_opportunity_derives_stage_fields(sf: Salesforce) -> None:
    opp = sf.Opportunity.create({"Name": "Deal", "StageName": "Closed Won", "CloseDate": "2026-04-01"})
    rec = sf.Opportunity.get(opp["id"])
    assert (rec["IsClosed"], rec["IsWon"], rec["Probability"]) == (True, True, 100.0)
    assert _error(lambda: sf.Opportunity.create({"Name": "x"}))["fields"] == ["StageName", "CloseDate"]


def test_deleted_and_updated(sandbox: SalesforceSandbox, sf: Salesforce, clock: FakeClock) -> None:
    start = clock.now - timedelta(minutes=1)
    keep = sf.Lead.create(LEAD)["id"]
    gone = sf.Lead.create(LEAD)["id"]
    clock.advance(minutes=2)
    sf.Lead.delete(gone)
    clock.advance(minutes=2)
    end = clock.now
    deleted = sf.Lead.deleted(start, end)
    assert deleted["deletedRecords"] == [{"id": gone, "deletedDate": "2026-03-02T09:32:00.123+0000"}]
    assert deleted["latestDateCovered"] == "2026-03-02T09:34:00.000+0000"
    assert deleted["earliestDateAvailable"] == "2026-02-15T09:34:00.000+0000"
    assert sf.Lead.updated(start, end)["ids"] == [keep]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Lead.deleted(end - timedelta(days=20), end)
    assert info.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
