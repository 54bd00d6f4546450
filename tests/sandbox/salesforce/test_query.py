"""SOQL through simple-salesforce: filters, ordering, relationships, errors, paging and cursors."""

from __future__ import annotations

from typing import Any

import pytest
from sf_helpers import FakeClock
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox

U1, U2 = salesforce_id("005", 101), salesforce_id("005", 102)
L = [salesforce_id("00Q", 100 + i) for i in range(6)]
A1 = salesforce_id("001", 100)
C1 = salesforce_id("003", 100)


@pytest.fixture()
def org(sandbox: SalesforceSandbox) -> SalesforceSandbox:
    sandbox.load_seed({
        "User": [
            {"Id": U1, "Username": "olivia.grant@northwind.example", "FirstName": "Olivia", "LastName": "Grant", "Email": "olivia.grant@northwind.example", "IsActive": True},
            {"Id": U2, "Username": "lucas.silva@northwind.example", "FirstName": "Lucas", "LastName": "Silva", "Email": "lucas.silva@northwind.example", "IsActive": False},
        ],
        "Account": [{"Id": A1, "Name": "Globex", "Domain__c": "globex.example", "OwnerId": U1}],
        "Contact": [{"Id": C1, "LastName": "Ng", "Email": "ng@globex.example", "AccountId": A1}],
        "Lead": [
            {"Id": L[0], "FirstName": "Ann", "LastName": "O'Brien", "Company": "Globex", "Email": "ann@globex.example", "Country": "US", "NumberOfEmployees": 500, "OwnerId": U1, "CreatedDate": "2026-02-20T10:00:00.000+0000", "Page_Views__c": 12, "Webinar_Attended__c": True},
            {"Id": L[1], "FirstName": "Bob", "LastName": "Stone", "Company": "Initech", "Email": "bob@initech.example", "Country": "GB", "NumberOfEmployees": 50, "OwnerId": U2, "CreatedDate": "2026-02-25T10:00:00.000+0000", "Page_Views__c": 3},
            {"Id": L[2], "FirstName": "cara", "LastName": "Diaz", "Company": "Umbrella", "Email": None, "Country": "DE", "NumberOfEmployees": None, "OwnerId": U1, "CreatedDate": "2026-03-01T23:59:59.999+0000"},
            {"Id": L[3], "LastName": "Evans_x", "Company": "Tyrell 100%", "Email": "d@tyrell.example", "Country": "JP", "NumberOfEmployees": 5000, "OwnerId": U1, "CreatedDate": "2026-03-02T08:00:00.000+0000", "Status": "Working - Contacted"},
            {"Id": L[4], "LastName": "Back\\slash", "Company": "Acme", "Country": "US", "NumberOfEmployees": 10, "OwnerId": U2, "CreatedDate": "2026-01-01T00:00:00.000+0000"},
            {"Id": L[5], "LastName": "Gone", "Company": "Acme", "Country": "US", "OwnerId": U1, "IsDeleted": True, "CreatedDate": "2026-01-02T00:00:00.000+0000"},
        ],
    })
    return sandbox


def ids(result: dict[str, Any]) -> list[str]:
    return [rec["Id"] for rec in result["records"]]


QUERIES: list[tuple[str, list[str]]] = [
    ("SELECT Id FROM Lead ORDER BY Id", L[:5]),
    ("select id from lead where country = 'us' order by id", [L[0], L[4]]),
    ("SELECT Id FROM Lead WHERE Country != 'US' ORDER BY Id", L[1:4]),
    ("SELECT Id FROM Lead WHERE Country <> 'US' AND NumberOfEmployees > 100 ORDER BY Id", [L[3]]),
    ("SELECT Id FROM Lead WHERE NumberOfEmployees >= 50 AND NumberOfEmployees <= 500 ORDER BY Id", [L[0], L[1]]),
    ("SELECT Id FROM Lead WHERE NumberOfEmployees < 50 ORDER BY Id", [L[4]]),
    ("SELECT Id FROM Lead WHERE NumberOfEmployees = null", [L[2]]),
    ("SELECT Id FROM Lead WHERE Email != null ORDER BY Id", [L[0], L[1], L[3]]),
    ("SELECT Id FROM Lead WHERE Country IN ('GB', 'de') ORDER BY Id", [L[1], L[2]]),
    ("SELECT Id FROM Lead WHERE Country NOT IN ('US', 'GB') ORDER BY Id", [L[2], L[3]]),
    ("SELECT Id FROM Lead WHERE Email LIKE '%@GLOBEX.%'", [L[0]]),
    ("SELECT Id FROM Lead WHERE LastName LIKE 'Evans\\_%'", [L[3]]),
    ("SELECT Id FROM Lead WHERE LastName LIKE 'Stone_'", []),
    ("SELECT Id FROM Lead WHERE LastName LIKE 'Ston_'", [L[1]]),
    ("SELECT Id FROM Lead WHERE Company LIKE '%100\\%'", [L[3]]),
    ("SELECT Id FROM Lead WHERE LastName = 'O\\'Brien'", [L[0]]),
    ("SELECT Id FROM Lead WHERE LastName = 'Back\\\\slash'", [L[4]]),
    ("SELECT Id FROM Lead WHERE NOT (Country = 'US' OR Country = 'GB') ORDER BY Id", [L[2], L[3]]),
    ("SELECT Id FROM Lead WHERE (Country = 'US' OR Country = 'JP') AND NOT NumberOfEmployees < 100 ORDER BY Id", [L[0], L[3]]),
    ("SELECT Id FROM Lead WHERE Webinar_Attended__c = TRUE", [L[0]]),
    ("SELECT Id FROM Lead WHERE webinar_attended__c = false ORDER BY Id", L[1:5]),
    ("SELECT Id FROM Lead WHERE Page_Views__c > 2.5 ORDER BY Page_Views__c DESC", [L[0], L[1]]),
    ("SELECT Id FROM Lead WHERE CreatedDate > 2026-02-25T10:00:00Z ORDER BY CreatedDate", [L[2], L[3]]),
    ("SELECT Id FROM Lead WHERE CreatedDate >= 2026-02-25T10:00:00.000Z ORDER BY CreatedDate", [L[1], L[2], L[3]]),
    ("SELECT Id FROM Lead WHERE CreatedDate < 2026-02-25T11:00:00+01:00 ORDER BY CreatedDate", [L[4], L[0]]),
    ("SELECT Id FROM Lead WHERE CreatedDate = TODAY", [L[3]]),
    ("SELECT Id FROM Lead WHERE CreatedDate = YESTERDAY", [L[2]]),
    ("SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:7 ORDER BY Id", [L[1], L[2], L[3]]),
    ("SELECT Id FROM Lead WHERE Owner.Name = 'Olivia Grant' ORDER BY Id", [L[0], L[2], L[3]]),
    ("SELECT Id FROM Lead WHERE Owner.IsActive = false ORDER BY Id", [L[1], L[4]]),
    (f"SELECT Id FROM Lead WHERE OwnerId = '{U2[:15]}' ORDER BY Id", [L[1], L[4]]),
    (f"SELECT Id FROM Lead WHERE Id > '{L[2]}' ORDER BY Id", [L[3], L[4]]),
    ("SELECT Id FROM Lead ORDER BY NumberOfEmployees DESC NULLS LAST, Id", [L[3], L[0], L[1], L[4], L[2]]),
    ("SELECT Id FROM Lead ORDER BY NumberOfEmployees ASC", [L[2], L[4], L[1], L[0], L[3]]),
    ("SELECT Id FROM Lead ORDER BY NumberOfEmployees NULLS LAST", [L[4], L[1], L[0], L[3], L[2]]),
    ("SELECT Id FROM Lead ORDER BY FirstName DESC NULLS FIRST, Id", [L[3], L[4], L[2], L[1], L[0]]),
    ("SELECT Id FROM Lead ORDER BY Country, NumberOfEmployees DESC", [L[2], L[1], L[3], L[0], L[4]]),
    ("SELECT Id FROM Lead ORDER BY Id LIMIT 2 OFFSET 1", [L[1], L[2]]),
]


@pytest.mark.parametrize(("soql", "expected"), QUERIES)
def test_query_table(org: SalesforceSandbox, sf: Salesforce, soql: str, expected: list[str]) -> None:
    assert ids(sf.query(soql)) == expected


def test_query_all_includes_deleted_rows(org: SalesforceSandbox, sf: Salesforce) -> None:
    assert L[5] not in ids(sf.query("SELECT Id FROM Lead"))
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", include_deleted=True)
    assert ids(deleted) == [L[5]]
    assert deleted["records"][0]["IsDeleted"] is True


def test_relationship_fields_answer_nested_records(org: SalesforceSandbox, sf: Salesforce) -> None:
    rec = sf.query(f"SELECT id, owner.name, Owner.Email, company FROM Lead WHERE Id = '{L[0]}'")["records"][0]
    assert list(rec) == ["attributes", "Id", "Owner", "Company"]
    assert rec["Owner"] == {
        "attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{U1}"},
        "Name": "Olivia Grant",
        "Email": "olivia.grant@northwind.example",
    }
    contact = sf.query("SELECT Name, Account.Name, Account.Owner.Name FROM Contact")["records"][0]
    assert contact["Account"]["Name"] == "Globex"
    assert contact["Account"]["Owner"]["Name"] == "Olivia Grant"


def test_task_who_resolves_leads_and_contacts(org: SalesforceSandbox, sf: Salesforce) -> None:
    sf.Task.create({"Subject": "Call", "WhoId": L[0]})
    sf.Task.create({"Subject": "Email", "WhoId": C1, "WhatId": A1})
    sf.Task.create({"Subject": "Nobody"})
    rows = sf.query("SELECT Subject, Who.Email, What.Name FROM Task ORDER BY Subject")["records"]
    assert [(r["Subject"], r["Who"] and r["Who"]["Email"], r["What"] and r["What"]["Name"]) for r in rows] == [
        ("Call", "ann@globex.example", None),
        ("Email", "ng@globex.example", "Globex"),
        ("Nobody", None, None),
    ]
    assert rows[0]["Who"]["attributes"]["type"] == "Lead"


def test_counts(org: SalesforceSandbox, sf: Salesforce) -> None:
    assert sf.query("SELECT COUNT() FROM Lead WHERE Country = 'US'") == {"totalSize": 2, "done": True, "records": []}
    aggregate = sf.query("SELECT COUNT(Email) total FROM Lead")["records"][0]
    assert aggregate["total"] == 3


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT Id, FROM Lead", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
        ("SELECT Id FROM Lead WHERE Name = 'open", "MALFORMED_QUERY", "unterminated"),
        ("SELECT Id FROM Lead LIMIT x", "MALFORMED_QUERY", "unexpected token: 'x'"),
        ("SELECT Foo FROM Lead", "INVALID_FIELD", "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, be sure to append the '__c'"),
        ("SELECT Id FROM Foo", "INVALID_TYPE", "sObject type 'Foo' is not supported."),
        ("SELECT Id FROM Lead WHERE Boss.Name = 'x'", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
        ("SELECT Id FROM Lead WHERE NumberOfEmployees = '5'", "INVALID_FIELD", "must be of type int"),
        ("SELECT Id FROM Lead WHERE CreatedDate > 2024-01-01", "INVALID_FIELD", "must be of type dateTime"),
        ("SELECT Id FROM Lead WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: nope"),
    ],
)
def test_query_errors(org: SalesforceSandbox, sf: Salesforce, soql: str, code: str, fragment: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    error = info.value.content[0]
    assert error["errorCode"] == code
    assert fragment in error["message"]
    assert "ERROR at Row:1:Column:" in error["message"] or code != "MALFORMED_QUERY"


def _bulk_leads(box: SalesforceSandbox, count: int, stamp: str) -> list[str]:
    records = [
        {"Id": salesforce_id("00Q", 10_000 + i), "LastName": f"L{i}", "Company": "C", "SystemModstamp": stamp, "LastModifiedDate": stamp, "CreatedDate": stamp}
        for i in range(count)
    ]
    box.load_seed({"Lead": records})
    return [r["Id"] for r in records]


def test_paging_thousands_with_query_all_and_batch_size(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    expected = _bulk_leads(sandbox, 4500, "2026-03-01T00:00:00.000+0000")
    first = sf.query("SELECT Id FROM Lead ORDER BY Id")
    assert (first["totalSize"], first["done"], len(first["records"])) == (4500, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    assert ids(sf.query_all("SELECT Id FROM Lead ORDER BY Id")) == expected
    small = Salesforce(instance_url="https://x", session_id=sandbox.access_token(), session=sf.session, version="59.0")
    small.headers["Sforce-Query-Options"] = "batchSize=300"
    page = small.query("SELECT Id FROM Lead")
    sizes = [len(page["records"])]
    while not page["done"]:
        page = small.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        sizes.append(len(page["records"]))
    assert sizes == [300] * 15


def test_dead_query_cursor(sandbox: SalesforceSandbox, sf: Salesforce, clock: FakeClock) -> None:
    _bulk_leads(sandbox, 2100, "2026-03-01T00:00:00.000+0000")
    first = sf.query("SELECT Id FROM Lead")
    clock.advance(minutes=16)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_modstamp_id_cursor_returns_every_record_once(sandbox: SalesforceSandbox, sf: Salesforce, clock: FakeClock) -> None:
    """Writes in one composite call share their SystemModstamp; (SystemModstamp, Id) paging still sees each once."""
    for _ in range(3):
        batch = [{"attributes": {"type": "Lead"}, "LastName": f"N{i}", "Company": "C"} for i in range(200)]
        results = sf.restful("composite/sobjects", method="POST", json={"records": batch})
        assert all(r["success"] for r in results)
        clock.advance(seconds=1)
    stamps = {r["SystemModstamp"] for r in sf.query_all("SELECT SystemModstamp FROM Lead")["records"]}
    assert len(stamps) == 3  # 600 records, 3 distinct timestamps
    seen: list[str] = []
    stamp, last_id = "2000-01-01T00:00:00.000Z", "000000000000000AAA"
    while True:
        soql = (
            f"SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > '{last_id}') "
            "ORDER BY SystemModstamp, Id LIMIT 250"
        )
        page = sf.query(soql)["records"]
        if not page:
            break
        seen.extend(r["Id"] for r in page)
        stamp = page[-1]["SystemModstamp"].replace("+0000", "Z")
        last_id = page[-1]["Id"]
    assert len(seen) == 600 == len(set(seen))
