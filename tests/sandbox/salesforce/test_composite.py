"""The Composite resource through simple-salesforce: subrequests, references, errors, allOrNone, limits, one call."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sf_helpers import client
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

U1 = salesforce_id("005", 101)
A = [salesforce_id("001", 100 + i) for i in range(2)]
LEADS = [salesforce_id("00Q", 1000 + i) for i in range(450)]


@pytest.fixture()
def org(sandbox: SalesforceSandbox) -> SalesforceSandbox:
    sandbox.load_seed({
        "User": [{"Id": U1, "Username": "olivia.grant@northwind.example", "FirstName": "Olivia", "LastName": "Grant",
                  "Email": "olivia.grant@northwind.example", "IsActive": True}],
        "Account": [{"Id": A[0], "Name": "Globex", "OwnerId": U1}, {"Id": A[1], "Name": "Initech", "OwnerId": U1}],
        "Lead": [{"Id": lead, "LastName": f"Lead {i}", "Company": "Acme", "OwnerId": U1}
                 for i, lead in enumerate(LEADS)],
    })
    return sandbox


def composite(sf: Salesforce, subrequests: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    answer = sf.restful("composite", method="POST", json={"compositeRequest": subrequests, **options})
    assert isinstance(answer, dict) and list(answer) == ["compositeResponse"]
    results: list[dict[str, Any]] = answer["compositeResponse"]
    return results


def query(soql: str, reference_id: str, resource: str = "query", **extra: Any) -> dict[str, Any]:
    return {"method": "GET", "url": f"/services/data/v59.0/{resource}?q={soql.replace(' ', '+')}",
            "referenceId": reference_id, **extra}


def ledger(sandbox: SalesforceSandbox) -> list[dict[str, Any]]:
    """The ledger through the admin endpoint (served after the calls before it are recorded)."""
    assert sandbox.server is not None
    entries: list[dict[str, Any]] = requests.get(f"{sandbox.server.url}/__sandbox/ledger", timeout=10).json()["entries"]
    return entries


def refused(sf: Salesforce, body: dict[str, Any]) -> dict[str, Any]:
    """The error of a composite request refused as a whole (400)."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite", method="POST", json=body)
    assert caught.value.status == 400
    errors: Any = caught.value.content  # the parsed error list
    assert len(errors) == 1
    return errors[0]


def test_subrequests_run_in_order_with_references_as_one_call(org: SalesforceSandbox, sf: Salesforce) -> None:
    used = org.usage.used
    results = composite(sf, [
        query("SELECT Id, Name FROM Account ORDER BY Name", "accounts"),
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Contact", "referenceId": "newContact",
         "body": {"LastName": "Ng", "AccountId": "@{accounts.records[0].Id}"}},
        {"method": "GET", "url": "/services/data/v59.0/sobjects/Contact/@{newContact.id}?fields=LastName,AccountId",
         "referenceId": "contact"},
        query("SELECT Id FROM Lead ORDER BY Id", "leads", "queryAll", httpHeaders={"Sforce-Query-Options": "batchSize=200"}),
    ])
    assert org.usage.used == used + 1  # "The entire series of requests counts as a single call"
    assert [(r["referenceId"], r["httpStatusCode"]) for r in results] == [
        ("accounts", 200), ("newContact", 201), ("contact", 200), ("leads", 200)]
    accounts, created, contact, leads = (r["body"] for r in results)
    assert [a["Name"] for a in accounts["records"]] == ["Globex", "Initech"]
    assert created["success"] is True and created["errors"] == []
    assert results[1]["httpHeaders"] == {"Location": f"/services/data/v59.0/sobjects/Contact/{created['id']}"}
    assert all(r["httpHeaders"] == {} for r in (results[0], results[2], results[3]))  # no Content-Length
    assert (contact["LastName"], contact["AccountId"]) == ("Ng", A[0])

    assert (leads["totalSize"], leads["done"], len(leads["records"])) == (450, False, 200)  # its own batchSize
    following = sf.query_more(leads["nextRecordsUrl"], identifier_is_url=True)
    assert [r["Id"] for r in leads["records"] + following["records"]] == LEADS[:400]

    calls = [e for e in ledger(org) if e["path"] == "/services/data/v59.0/composite"]
    assert len(calls) == 1
    assert (calls[0]["kind"], calls[0]["records_read"], calls[0]["records_written"]) == ("composite", 2 + 1 + 200, 1)


def test_a_failed_subrequest_answers_its_own_error_and_only_its_dependents_stop(
    org: SalesforceSandbox, sf: Salesforce
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as direct:
        sf.query("SELECT Id, FROM Lead")
    results = composite(sf, [
        query("SELECT Id, FROM Lead", "bad"),
        query("SELECT Id FROM Account", "good"),
        {"method": "GET", "url": "/services/data/v59.0/sobjects/Lead/@{bad.records[0].Id}", "referenceId": "after"},
    ])
    assert [r["httpStatusCode"] for r in results] == [400, 200, 400]
    assert results[0]["body"] == direct.value.content  # the error list a direct query answers
    assert results[0]["body"][0]["errorCode"] == "MALFORMED_QUERY"
    assert results[1]["body"]["totalSize"] == 2
    assert results[2]["body"] == [{"errorCode": "PROCESSING_HALTED",
                                   "message": "Invalid reference specified. No value for bad.records[0].Id found in bad."}]


@pytest.mark.parametrize("all_or_none", [True, False])
def test_all_or_none_rolls_back_every_write_of_the_call(
    org: SalesforceSandbox, sf: Salesforce, all_or_none: bool
) -> None:
    results = composite(sf, [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Account", "referenceId": "account",
         "body": {"Name": "Umbrella"}},
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Contact", "referenceId": "contact",
         "body": {"FirstName": "No last name"}},
        query("SELECT Id FROM Account", "accounts"),
    ], allOrNone=all_or_none)
    umbrella = sf.query("SELECT Id FROM Account WHERE Name = 'Umbrella'")["totalSize"]
    assert results[1]["httpStatusCode"] == 400
    assert results[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    if all_or_none:
        halted = {"errorCode": "PROCESSING_HALTED",
                  "message": "The transaction was rolled back since another operation in the same transaction failed."}
        assert [(r["httpStatusCode"], r["body"]) for r in (results[0], results[2])] == [(400, [halted])] * 2
        assert umbrella == 0
    else:
        assert [r["httpStatusCode"] for r in results] == [201, 400, 200]
        assert umbrella == 1
    written = [e["records_written"] for e in ledger(org) if e["path"].endswith("/composite")]
    assert written == [0 if all_or_none else 1]


def test_the_limits_are_25_subrequests_and_5_queries(org: SalesforceSandbox, sf: Salesforce) -> None:
    rows = [{"method": "GET", "url": f"/services/data/v59.0/sobjects/Lead/{LEADS[i]}", "referenceId": f"row{i}"}
            for i in range(25)]
    queries = [query("SELECT Id FROM Account", f"q{i}") for i in range(6)]
    assert len(composite(sf, [*queries[:5], *rows[:20]])) == 25

    too_many = refused(sf, {"compositeRequest": [*rows, query("SELECT Id FROM Account", "one_more")]})
    assert too_many["errorCode"] == "LIMIT_EXCEEDED" and "25" in too_many["message"]
    too_many_queries = refused(sf, {"compositeRequest": queries})
    assert too_many_queries["errorCode"] == "LIMIT_EXCEEDED" and "5" in too_many_queries["message"]
    query_more = {"method": "GET", "url": "/services/data/v59.0/query/01gxx0000000001-200", "referenceId": "more"}
    assert refused(sf, {"compositeRequest": [*queries[:5], query_more]})["errorCode"] == "LIMIT_EXCEEDED"


@pytest.mark.parametrize(("change", "code"), [
    ({"referenceId": "has-dash"}, "INVALID_INPUT"),
    ({"referenceId": "first"}, "INVALID_INPUT"),  # twice
    ({"method": "get"}, "JSON_PARSER_ERROR"),
    ({"url": "https://elsewhere.example/services/data/v59.0/limits"}, "JSON_PARSER_ERROR"),
    ({"httpHeaders": {"Authorization": "Bearer other"}}, "INVALID_INPUT"),
], ids=["reference-id-characters", "reference-id-twice", "method-case", "url", "inherited-header"])
def test_a_malformed_subrequest_refuses_the_whole_call(
    org: SalesforceSandbox, sf: Salesforce, change: dict[str, Any], code: str
) -> None:
    used = len(ledger(org))
    error = refused(sf, {"compositeRequest": [query("SELECT Id FROM Account", "first"),
                                              {**query("SELECT Id FROM Lead", "second"), **change}]})
    assert error["errorCode"] == code
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 2
    assert len(ledger(org)) == used + 2  # the refused call and the check: nothing ran


@pytest.mark.parametrize("options", [{"collateSubrequests": False}, {"collateSubrequests": True, "allOrNone": False}])
def test_collate_subrequests_and_all_or_none_flags_are_accepted(
    org: SalesforceSandbox, sf: Salesforce, options: dict[str, Any]
) -> None:
    results = composite(sf, [query("SELECT Id FROM Account", "a"), query("SELECT Id FROM Lead LIMIT 3", "l")], **options)
    assert [r["body"]["totalSize"] for r in results] == [2, 3]
    assert refused(sf, {"compositeRequest": [query("SELECT Id FROM Account", "a")],
                        "allOrNone": "yes"})["errorCode"] == "JSON_PARSER_ERROR"


def test_resources_composite_does_not_take_answer_in_their_subrequest(org: SalesforceSandbox, sf: Salesforce) -> None:
    results = composite(sf, [
        {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "limits"},
        {"method": "GET", "url": "/services/data/v30.0/sobjects/Lead/" + LEADS[0], "referenceId": "retired"},
        {"method": "PATCH", "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Lead", "referenceId": "patch"},
    ])
    assert [(r["httpStatusCode"], r["body"][0]["errorCode"]) for r in results] == [
        (404, "NOT_FOUND"), (410, "UNSUPPORTED_API_VERSION"), (405, "METHOD_NOT_ALLOWED")]


def test_composite_exists_from_api_version_38(org: SalesforceSandbox) -> None:
    assert org.server is not None
    old = Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=org.access_token(),
                     session=sandbox_session(org.server.url), version="37.0")
    with pytest.raises(SalesforceResourceNotFound):
        old.restful("composite", method="POST", json={"compositeRequest": [query("SELECT Id FROM Account", "a")]})
    assert client(org).restful("composite") == {"sobjects": "/services/data/v59.0/composite/sobjects"}


def test_page_faults_spoil_the_first_pages_a_composite_call_answers(org: SalesforceSandbox, sf: Salesforce) -> None:
    assert org.server is not None
    requests.put(f"{org.server.url}/__sandbox/faults", json={"script": [{"fault": "missing_id", "path": "/composite"}]},
                 timeout=10).raise_for_status()
    results = composite(sf, [query("SELECT Id, Name FROM Account", "accounts"), query("SELECT Id FROM Lead", "leads")])
    rows = [row for r in results for row in r["body"]["records"]]
    assert len(rows) == 2 + 450 and sum(1 for row in rows if "Id" not in row) == 1
    calls = [e for e in ledger(org) if e["path"].endswith("/composite")]
    assert calls[0]["fault"] == "missing_id" and calls[0]["detail"].endswith("has no Id")
