"""SOQL datetime and date literals in the forms clients written elsewhere send, through simple-salesforce."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox

BEFORE, AT, AFTER = (salesforce_id("00Q", 300 + i) for i in range(3))
O_MAY1, O_MAY2 = salesforce_id("006", 300), salesforce_id("006", 301)


@pytest.fixture()
def org(sandbox: SalesforceSandbox) -> SalesforceSandbox:
    stamps = {BEFORE: "2024-05-01T11:59:59.999+0000", AT: "2024-05-01T12:00:00.000+0000", AFTER: "2024-05-01T12:00:00.001+0000"}
    sandbox.load_seed({
        "Lead": [
            {"Id": lead_id, "LastName": "Stamp", "Company": "Globex", "SystemModstamp": stamp, "LastModifiedDate": stamp, "CreatedDate": stamp}
            for lead_id, stamp in stamps.items()
        ],
        "Opportunity": [
            {"Id": O_MAY1, "Name": "May day", "StageName": "Prospecting", "CloseDate": "2024-05-01"},
            {"Id": O_MAY2, "Name": "Day after", "StageName": "Prospecting", "CloseDate": "2024-05-02"},
        ],
    })
    return sandbox


def _ids(sf: Salesforce, soql: str) -> set[str]:
    return {r["Id"] for r in sf.query_all(soql)["records"]}


@pytest.mark.parametrize(
    "literal",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.000Z",
        "2024-05-01T12:00:00.000000Z",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T12:00:00.000+00:00",
        "2024-05-01T12:00:00.000000+00:00",
        "2024-05-01T07:00:00.000000-05:00",
        "2024-05-01T07:00:00-05:00",
        "2024-05-01T17:30:00.000+05:30",
        "2024-05-01T12:00:00.000+0000",
    ],
)
def test_datetime_literal_forms_compare_as_the_same_instant(org: SalesforceSandbox, sf: Salesforce, literal: str) -> None:
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp >= {literal}") == {AT, AFTER}
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp = {literal}") == {AT}
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp < {literal}") == {BEFORE}


def test_microsecond_literal_keeps_its_millisecond(org: SalesforceSandbox, sf: Salesforce) -> None:
    assert _ids(sf, "SELECT Id FROM Lead WHERE SystemModstamp > 2024-05-01T12:00:00.000000Z") == {AFTER}
    assert _ids(sf, "SELECT Id FROM Lead WHERE SystemModstamp >= 2024-05-01T12:00:00.001000Z") == {AFTER}
    # Finer than the stored millisecond: compared exactly, not truncated.
    half = "2024-05-01T12:00:00.000500Z"
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp >= {half}") == {AFTER}
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp < {half}") == {BEFORE, AT}
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp <= {half}") == {BEFORE, AT}
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp > {half}") == {AFTER}
    assert _ids(sf, f"SELECT Id FROM Lead WHERE SystemModstamp = {half}") == set()


def test_date_literal_filters_a_date_field(org: SalesforceSandbox, sf: Salesforce) -> None:
    assert _ids(sf, "SELECT Id FROM Opportunity WHERE CloseDate = 2024-05-01") == {O_MAY1}
    assert _ids(sf, "SELECT Id FROM Opportunity WHERE CloseDate > 2024-05-01") == {O_MAY2}


def test_date_literal_on_a_datetime_field_is_refused_as_salesforce_does(org: SalesforceSandbox, sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Lead WHERE SystemModstamp >= 2024-05-01")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "dateTime" in caught.value.content[0]["message"]


@pytest.mark.parametrize("literal", ["2024-05-01T12:00:00.0000000Z", "2024-05-01T12:00:00.000", "2024-13-01T12:00:00Z"])
def test_malformed_datetime_literals_are_still_refused(org: SalesforceSandbox, sf: Salesforce, literal: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(f"SELECT Id FROM Lead WHERE SystemModstamp >= {literal}")
    assert caught.value.content[0]["errorCode"] in {"MALFORMED_QUERY", "INVALID_FIELD"}
