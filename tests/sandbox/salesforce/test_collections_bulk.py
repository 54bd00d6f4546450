"""sObject Collections (partial failures, allOrNone, upserts) and Bulk API 2.0 through sf.bulk2."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_sandbox.common import FaultSettings
from crm_sandbox.salesforce import SalesforceSandbox


def lead(name: str, **extra: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "LastName": name, "Company": "Acme", **extra}


def count(sf: Salesforce, obj: str = "Lead") -> int:
    return int(sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"])


def test_create_with_partial_failure(sf: Salesforce) -> None:
    results = sf.restful("composite/sobjects", method="POST", json={"records": [lead("A"), {"attributes": {"type": "Lead"}, "LastName": "B"}, lead("C")]})
    assert [r["success"] for r in results] == [True, False, True]
    # A failed create has no "id" key (documented example, see SaveResult.as_json).
    assert results[1] == {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Company]", "fields": ["Company"]}]}
    assert count(sf) == 2


def test_all_or_none_rolls_everything_back(sf: Salesforce) -> None:
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [lead("A"), lead("B", Email="bad")]})
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert count(sf) == 0
    first = sf.restful("composite/sobjects", method="POST", json={"records": [lead("A", Relay_Id__c="x")]})[0]
    updates = [
        {"attributes": {"type": "Lead"}, "id": first["id"], "Title": "CEO"},
        {"attributes": {"type": "Lead"}, "id": first["id"][:15], "Relay_Id__c": "y", "Email": "nope"},
    ]
    rolled = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": updates})
    assert [r["success"] for r in rolled] == [False, False]
    assert sf.Lead.get(first["id"])["Title"] is None
    assert sf.Lead.get_by_custom_id("Relay_Id__c", "x")["Id"] == first["id"]


def test_update_and_delete_collections(sf: Salesforce) -> None:
    made = sf.restful("composite/sobjects", method="POST", json={"records": [lead("A"), lead("B")]})
    ids = [r["id"] for r in made]
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [{"attributes": {"type": "Lead"}, "id": ids[0], "Title": "X"}, {"attributes": {"type": "Lead"}, "Title": "Y"}]})
    assert updated[0] == {"id": ids[0], "success": True, "errors": []}
    assert updated[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{ids[0]},{ids[1]},bogus", "allOrNone": "false"})
    assert [r["success"] for r in deleted] == [True, True, False]
    assert deleted[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    again = sf.restful("composite/sobjects", method="DELETE", params={"ids": ids[0]})
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    rows = sf.restful("composite/sobjects/Lead", params={"ids": ",".join(ids), "fields": "Id,LastName"})
    assert rows == [None, None]


def test_more_than_200_records_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite/sobjects", method="POST", json={"records": [lead(str(i)) for i in range(201)]})
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_task_upsert_by_idempotency_key_never_duplicates(sf: Salesforce) -> None:
    batch = {"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Subject": f"Follow up {i}", "Relay_Idempotency_Key__c": f"key-{i}"} for i in range(3)
    ]}
    first = sf.restful("composite/sobjects/Task/Relay_Idempotency_Key__c", method="PATCH", json=batch)
    retried = sf.restful("composite/sobjects/Task/Relay_Idempotency_Key__c", method="PATCH", json=batch)
    assert [r["created"] for r in first] == [True] * 3
    assert [r["created"] for r in retried] == [False] * 3
    assert [r["id"] for r in first] == [r["id"] for r in retried]
    assert count(sf, "Task") == 3


def test_injected_partial_failures_are_per_record(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    sandbox.faults.configure(FaultSettings(partial_failure=0.5, seed=7))
    results = sf.restful("composite/sobjects", method="POST", json={"records": [lead(str(i)) for i in range(40)]})
    failed = [r for r in results if not r["success"]]
    assert 0 < len(failed) < 40
    assert {r["errors"][0]["statusCode"] for r in failed} == {"UNABLE_TO_LOCK_ROW"}
    assert count(sf) == 40 - len(failed)


def test_bulk_insert_upsert_and_query(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    records = [{"LastName": f"B{i}", "Company": "Bulk", "Relay_Id__c": f"b-{i}", "NumberOfEmployees": str(i)} for i in range(250)]
    records[3]["Company"] = ""  # empty cell: not set, so Company is missing
    inserted = sf.bulk2.Lead.insert(records=records, wait=0.05)
    assert inserted[0]["numberRecordsProcessed"] == 250 and inserted[0]["numberRecordsFailed"] == 1
    failed = sf.bulk2.Lead.get_failed_records(inserted[0]["job_id"])
    rows = list(csv.DictReader(io.StringIO(failed)))
    assert rows[0]["sf__Error"].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: [Company]")
    upserted = sf.bulk2.Lead.upsert(records=[{"Relay_Id__c": "b-1", "Title": "Chief"}, {"Relay_Id__c": "new", "LastName": "N", "Company": "C"}], external_id_field="Relay_Id__c", wait=0.05)
    assert upserted[0]["numberRecordsFailed"] == 0
    ok = list(csv.DictReader(io.StringIO(sf.bulk2.Lead.get_successful_records(upserted[0]["job_id"]))))
    assert [row["sf__Created"] for row in ok] == ["false", "true"]
    pages = list(sf.bulk2.Lead.query("SELECT Id, LastName, Title, Owner.Name FROM Lead WHERE Company = 'Bulk' ORDER BY LastName", max_records=100, wait=0.05))
    assert len(pages) == 3
    result = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(result) == 249
    assert list(result[0]) == ["Id", "LastName", "Title", "Owner.Name"]
    assert next(r for r in result if r["LastName"] == "B1")["Title"] == "Chief"
    assert result[0]["Owner.Name"] == "Sandbox Admin"


def test_bulk_query_with_bad_soql_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        list(sf.bulk2.Lead.query("SELECT Nope FROM Lead", wait=0.05))
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
