"""Opportunity history and lead conversion through the Salesforce adapter, against the sandbox over real HTTP.

What the adapter reports is checked against what simple-salesforce reads back from the org.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connector.adapters.base import Conversion, CrmAdapter, HistoryValue, WriteOp
from connector.adapters.errors import ConfigurationError, RecordError
from connector.crms.salesforce.adapter import SalesforceAdapter
from connector.crms.salesforce.history import IDS_PER_QUERY
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

from ._sandbox_helpers import ManualClock, sandbox_admin

CONVERTED = "Closed - Converted"


def sdk(box: SalesforceSandbox, username: str | None = None) -> Salesforce:
    """simple-salesforce on the sandbox org as ``username`` (the admin when None)."""
    assert box.server is not None
    token = box.access_token(username) if username else box.access_token()
    return Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=token,
                      session=sandbox_session(box.server.url), version="59.0")


def row(sf: Salesforce, obj: str, record_id: str) -> dict[str, Any]:
    """``GET sobjects/{obj}/{id}`` through simple-salesforce."""
    answer = sf.restful(f"sobjects/{obj}/{record_id}")
    assert isinstance(answer, dict), answer
    return answer


def patch(sf: Salesforce, obj: str, record_id: str, values: dict[str, Any]) -> None:
    """``PATCH sobjects/{obj}/{id}`` through simple-salesforce (raises its exception when refused)."""
    sf.restful(f"sobjects/{obj}/{record_id}", method="PATCH", json=values)


@pytest.fixture
def org(sf_sandbox: SalesforceSandbox) -> Salesforce:
    return sdk(sf_sandbox)


@pytest.fixture
def reps(org: Salesforce) -> list[dict[str, Any]]:
    """Two active users besides the admin (Id, Username)."""
    users = org.query("SELECT Id, Username FROM User WHERE IsActive = true AND Username != 'admin@sandbox.example' "
                      "ORDER BY Username")["records"]
    assert len(users) >= 2
    return [{"Id": u["Id"], "Username": u["Username"]} for u in users[:2]]


def stamp(clock: ManualClock) -> datetime:
    """The org's time now (milliseconds), as history rows carry it."""
    return clock().astimezone(UTC)


def ledger_count(box: SalesforceSandbox, path: str, at_least: int) -> int:
    """Calls to paths containing ``path`` in the sandbox's ledger, once ``at_least`` are there (or after 2 s).

    The server writes a call's ledger entry just after answering it: the last one may lag the client a little.
    """
    deadline = time.monotonic() + 2.0
    while True:
        seen = sum(1 for e in box.ledger.entries() if path in e.path)
        if seen >= at_least or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)


def soap_posts(box: SalesforceSandbox, expected: int) -> int:
    return ledger_count(box, "/services/Soap/", expected)


def count(org: Salesforce, obj: str) -> int:
    return int(org.query(f"SELECT COUNT() FROM {obj}")["totalSize"])


# --- history ---------------------------------------------------------------------------------


def new_opportunity(salesforce: SalesforceAdapter, name: str, amount: float = 1000.0) -> str:
    [made] = salesforce.write([WriteOp("Opportunity", "create", {
        "Name": name, "StageName": "Prospecting", "CloseDate": "2026-06-30", "Amount": amount})])
    assert made.success, made.error
    return str(made.crm_id)


def test_history_of_an_opportunity_moved_twice(salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox,
                                               clock: ManualClock, reps: list[dict[str, Any]]) -> None:
    assert isinstance(salesforce, CrmAdapter)
    created_at = stamp(clock)
    opportunity = new_opportunity(salesforce, "History Co")
    creator = salesforce.integration_user_id()
    first, second = reps
    clock.advance(minutes=26)
    moved_at = stamp(clock)
    patch(sdk(sf_sandbox, first["Username"]), "Opportunity", opportunity, {"StageName": "Discovery"})
    clock.advance(minutes=49)
    repriced_at = stamp(clock)
    patch(sdk(sf_sandbox, second["Username"]), "Opportunity", opportunity, {"StageName": "Solution Design",
                                                                         "Amount": 2500})
    reads = salesforce.calls.get("read")

    history = salesforce.read_history("Opportunity", [opportunity[:15]], ["StageName", "Amount", "Name"])

    assert salesforce.calls.get("read") - reads == 1
    assert list(history) == [opportunity[:15]]  # keyed as asked; Name keeps no history
    stages = [v for v in history[opportunity[:15]] if v.field == "StageName"]
    assert stages == [HistoryValue("StageName", "Prospecting", created_at, creator),
                      HistoryValue("StageName", "Discovery", moved_at, first["Id"]),
                      HistoryValue("StageName", "Solution Design", repriced_at, second["Id"])]
    amounts = [v for v in history[opportunity[:15]] if v.field == "Amount"]
    assert amounts == [HistoryValue("Amount", 1000.0, created_at, creator),
                       HistoryValue("Amount", 2500.0, repriced_at, second["Id"])]
    assert all(v.at.tzinfo is not None and v.at.utcoffset() == timedelta(0) for v in history[opportunity[:15]])


def test_history_reports_the_first_values_including_null(salesforce: SalesforceAdapter, org: Salesforce) -> None:
    opportunity = new_opportunity(salesforce, "No Amount Co")
    patch(org, "Opportunity", opportunity, {"Amount": None})  # a change of Amount only: the stage does not repeat
    patch(org, "Opportunity", opportunity, {"Amount": 10})

    history = salesforce.read_history("Opportunity", [opportunity], ["amount", "StageName", "CloseDate"])

    assert [(v.field, v.value) for v in history[opportunity]] == [
        ("amount", 1000.0), ("StageName", "Prospecting"), ("CloseDate", "2026-06-30"), ("amount", None),
        ("amount", 10.0)]
    assert salesforce.read_history("Opportunity", [opportunity], ["Name", "Description"]) == {}


def test_history_of_many_opportunities_takes_a_query_per_500(salesforce: SalesforceAdapter,
                                                            sf_sandbox: SalesforceSandbox) -> None:
    real = [new_opportunity(salesforce, f"Many {i}", 100.0 * i) for i in range(3)]
    absent = [f"0065e{n:010d}" for n in range(900_000, 900_000 + 2 * IDS_PER_QUERY - 2)]  # valid ids, no records
    ids = [real[0], *absent[:700], real[1], *absent[700:], real[2], "not-an-id"]
    reads = salesforce.calls.get("read")
    queries = ledger_count(sf_sandbox, "/query", 0)

    history = salesforce.read_history("Opportunity", ids, ["Amount"])

    assert salesforce.calls.get("read") - reads == 3  # 1,001 ids: 500 + 500 + 1
    assert ledger_count(sf_sandbox, "/query", queries + 3) - queries == 3
    assert {key: [v.value for v in values] for key, values in history.items()} == {
        real[0]: [0.0], real[1]: [100.0], real[2]: [200.0]}


def test_history_of_another_object_is_refused_without_a_call(salesforce: SalesforceAdapter) -> None:
    reads = salesforce.calls.get("read")
    with pytest.raises(ConfigurationError) as refused:
        salesforce.read_history("Lead", ["00Q5e0000000001EAA"], ["Status"])
    assert "Salesforce Lead keeps no field history" in str(refused.value)
    assert "Opportunity (OpportunityHistory)" in str(refused.value)
    assert salesforce.calls.get("read") == reads


# --- conversion ------------------------------------------------------------------------------


def new_lead(salesforce: SalesforceAdapter, tag: str) -> str:
    [made] = salesforce.write([WriteOp("Lead", "create", {
        "FirstName": "Ada", "LastName": f"Convert{tag}", "Company": f"{tag} Robotics", "Email": f"ada@{tag}.example",
        "Phone": "+1 555 0100", "Title": "CTO", "LeadSource": "Webinar", "Country": "France"})])
    assert made.success, made.error
    return str(made.crm_id)


def test_convert_makes_account_contact_and_opportunity(salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox,
                                                       org: Salesforce, clock: ManualClock,
                                                       reps: list[dict[str, Any]]) -> None:
    lead = new_lead(salesforce, "conv")
    [task] = salesforce.write([WriteOp("Task", "create", {"Subject": "Discovery call", "WhoId": lead})])
    owner = reps[0]["Id"]
    writes = salesforce.calls.get("write")

    done = salesforce.convert_lead("Lead", lead, opportunity_name="conv Robotics - 50 seats", owner_id=owner,
                                   status=CONVERTED)

    assert salesforce.calls.get("write") - writes == 1 and soap_posts(sf_sandbox, 1) == 1
    assert not done.already_converted and done.object == "Lead" and done.crm_id == lead
    assert done.account_id and done.contact_id and done.opportunity_id
    account = row(org, "Account", done.account_id)
    assert (account["Name"], account["OwnerId"], account["BillingCountry"]) == ("conv Robotics", owner, "France")
    contact = row(org, "Contact", done.contact_id)
    assert {k: contact[k] for k in ("FirstName", "LastName", "Email", "Phone", "Title", "AccountId", "OwnerId",
                                    "LeadSource")} == {
        "FirstName": "Ada", "LastName": "Convertconv", "Email": "ada@conv.example", "Phone": "+1 555 0100",
        "Title": "CTO", "AccountId": done.account_id, "OwnerId": owner, "LeadSource": "Webinar"}
    opportunity = row(org, "Opportunity", done.opportunity_id)
    close = (clock().date() + timedelta(days=30)).isoformat()
    assert {k: opportunity[k] for k in ("Name", "AccountId", "OwnerId", "StageName", "CloseDate", "IsClosed")} == {
        "Name": "conv Robotics - 50 seats", "AccountId": done.account_id, "OwnerId": owner,
        "StageName": "Prospecting", "CloseDate": close, "IsClosed": False}
    converted = org.query("SELECT IsConverted, Status, ConvertedDate, ConvertedAccountId, ConvertedContactId, "
                          f"ConvertedOpportunityId FROM Lead WHERE Id = '{lead}'")["records"][0]
    assert (converted["IsConverted"], converted["Status"], converted["ConvertedDate"]) == (
        True, CONVERTED, clock().date().isoformat())
    assert (converted["ConvertedAccountId"], converted["ConvertedContactId"], converted["ConvertedOpportunityId"]) == (
        done.account_id, done.contact_id, done.opportunity_id)
    assert row(org, "Task", str(task.crm_id))["WhoId"] == done.contact_id  # the lead's activities follow the contact
    assert salesforce.read_history("Opportunity", [done.opportunity_id], ["StageName"]) == {done.opportunity_id: [
        HistoryValue("StageName", "Prospecting", stamp(clock), salesforce.integration_user_id())]}


def test_second_convert_answers_the_first_conversion(salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox,
                                                     org: Salesforce) -> None:
    lead = new_lead(salesforce, "twice")
    first = salesforce.convert_lead("Lead", lead, opportunity_name="Twice deal", owner_id=None, status=CONVERTED)
    before = {obj: count(org, obj) for obj in ("Account", "Contact", "Opportunity")}

    again = salesforce.convert_lead("Lead", lead, opportunity_name="Twice deal", owner_id=None, status=CONVERTED)

    assert again == Conversion("Lead", lead, first.opportunity_id, first.contact_id, first.account_id,
                               already_converted=True)
    assert {obj: count(org, obj) for obj in before} == before
    assert soap_posts(sf_sandbox, 2) == 2


def test_convert_whose_answer_was_lost_is_recognised(salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox,
                                                     sf_url: str, org: Salesforce) -> None:
    lead = new_lead(salesforce, "lost")
    sandbox_admin(sf_url, "PUT", "faults", {"script": [{"fault": "lost_after_apply", "path": "/services/Soap/"}]})
    opportunities = count(org, "Opportunity")

    done = salesforce.convert_lead("Lead", lead, opportunity_name="Lost deal", owner_id=None, status=CONVERTED)

    assert done.already_converted and done.opportunity_id  # the retry found the conversion that landed
    assert row(org, "Opportunity", done.opportunity_id)["Name"] == "Lost deal"
    assert count(org, "Opportunity") == opportunities + 1 and soap_posts(sf_sandbox, 2) == 2


def test_converted_lead_refuses_updates(salesforce: SalesforceAdapter, org: Salesforce) -> None:
    lead = new_lead(salesforce, "ro")
    salesforce.convert_lead("Lead", lead, opportunity_name="RO deal", owner_id=None, status=CONVERTED)

    with pytest.raises(SalesforceMalformedRequest) as refused:
        patch(org, "Lead", lead, {"Title": "CEO"})
    content: Any = refused.value.content
    assert content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    [result] = salesforce.write([WriteOp("Lead", "update", {"Title": "CEO"}, crm_id=lead)])
    assert not result.success and result.error is not None and result.error.code == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert row(org, "Lead", lead)["Title"] == "CTO"


def test_convert_sets_the_stage_asked_for(salesforce: SalesforceAdapter, org: Salesforce) -> None:
    lead = new_lead(salesforce, "stage")

    done = salesforce.convert_lead("Lead", lead, opportunity_name="Stage deal", owner_id=None, status=CONVERTED,
                                   stage="Discovery", pipeline="ignored")

    assert done.opportunity_id and row(org, "Opportunity", done.opportunity_id)["StageName"] == "Discovery"
    history = salesforce.read_history("Opportunity", [done.opportunity_id], ["StageName"])
    assert [v.value for v in history[done.opportunity_id]] == ["Prospecting", "Discovery"]


def test_convert_of_an_unknown_lead_names_it(salesforce: SalesforceAdapter, org: Salesforce) -> None:
    unknown = "00Q5e0000099999"
    accounts = count(org, "Account")

    with pytest.raises(RecordError) as refused:
        salesforce.convert_lead("Lead", unknown, opportunity_name="Ghost deal", owner_id=None, status=CONVERTED)

    assert refused.value.code == "INVALID_CROSS_REFERENCE_KEY"
    assert f"Salesforce refused to convert Lead {unknown}: INVALID_CROSS_REFERENCE_KEY" in str(refused.value)
    assert count(org, "Account") == accounts


def test_convert_refusals_name_the_lead_and_the_cause(salesforce: SalesforceAdapter, org: Salesforce) -> None:
    lead = new_lead(salesforce, "bad")
    writes = salesforce.calls.get("write")
    with pytest.raises(ConfigurationError, match="Salesforce converts only Lead records into opportunities, not "
                                                 "'Contact'"):
        salesforce.convert_lead("Contact", lead, opportunity_name="x", owner_id=None, status=CONVERTED)
    with pytest.raises(RecordError, match="cannot convert Lead 00Q-nope: the lead id '00Q-nope' is not a Salesforce id"):
        salesforce.convert_lead("Lead", "00Q-nope", opportunity_name="x", owner_id=None, status=CONVERTED)
    assert salesforce.calls.get("write") == writes  # refused before any call

    with pytest.raises(RecordError) as status:
        salesforce.convert_lead("Lead", lead, opportunity_name="x", owner_id=None, status="Working - Contacted")
    assert status.value.code == "INVALID_STATUS"
    assert f"Lead {lead} (converted status 'Working - Contacted')" in str(status.value)
    assert row(org, "Lead", lead)["IsConverted"] is False


def test_convert_without_a_status_needs_the_orgs_lead_statuses(salesforce: SalesforceAdapter) -> None:
    # The sandbox org serves no LeadStatus object: the adapter says what to do instead of guessing.
    lead = new_lead(salesforce, "nostatus")
    with pytest.raises(ConfigurationError) as missing:
        salesforce.convert_lead("Lead", lead, opportunity_name="x", owner_id=None)
    assert missing.value.code == "INVALID_TYPE"
    assert "cannot find the org's converted Lead Status" in str(missing.value)
    assert "give the status to convert leads with" in str(missing.value)
