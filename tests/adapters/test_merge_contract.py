"""Merges through both adapters against their sandboxes over real HTTP, read back through the official SDKs."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from connector.adapters.base import CrmAdapter, MergeOutcome, WriteOp
from connector.adapters.errors import ConfigurationError, RecordError
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.hubspot.state import HubSpotState
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

from ._sandbox_helpers import sandbox_admin


def soap_posts(box: SalesforceSandbox) -> int:
    return sum(1 for e in box.ledger.entries() if e.path.startswith("/services/Soap/"))


def merge_posts(box: HubSpotSandbox) -> int:
    return sum(1 for e in box.ledger.entries() if e.path.endswith("/merge"))


# --- Salesforce ------------------------------------------------------------------------------


@pytest.fixture
def org(sf_sandbox: SalesforceSandbox) -> Salesforce:
    """simple-salesforce on the sandbox org: how the tests read back what the adapter did."""
    assert sf_sandbox.server is not None
    return Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=sf_sandbox.access_token(),
                      session=sandbox_session(sf_sandbox.server.url), version="59.0")


def row(sf: Salesforce, obj: str, record_id: str) -> dict[str, Any]:
    """``GET sobjects/{obj}/{id}`` through simple-salesforce (raises its 404 exception for a deleted record)."""
    answer = sf.restful(f"sobjects/{obj}/{record_id}")
    assert isinstance(answer, dict), answer
    return answer


def leads(adapter: SalesforceAdapter, count: int, tag: str) -> list[str]:
    made = adapter.write([WriteOp("Lead", "create", {"LastName": f"{tag}{i}", "Company": "Merge Co",
                                                     "Email": f"{tag}{i}@merge.example"}) for i in range(count)])
    assert all(r.success for r in made)
    return [str(r.crm_id) for r in made]


def merged_into(org: Salesforce, ids: list[str]) -> dict[str, str | None]:
    rows = org.query_all("SELECT Id, IsDeleted, MasterRecordId FROM Lead WHERE Id IN ('" + "','".join(ids) + "')",
                         include_deleted=True)["records"]
    return {r["Id"]: r["MasterRecordId"] for r in rows if r["IsDeleted"]}


def test_salesforce_merges_two_leads_sets_values_and_moves_the_task(
        salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox, org: Salesforce) -> None:
    survivor, loser = leads(salesforce, 2, "two")
    task = salesforce.write([WriteOp("Task", "create", {"Subject": "Call", "WhoId": loser})])[0].crm_id
    assert isinstance(salesforce, CrmAdapter)

    outcome = salesforce.merge("Lead", survivor, [loser], {"Title": "VP Sales", "Phone": None})

    assert outcome == MergeOutcome("Lead", survivor, (loser,), (), (str(task),))
    with pytest.raises(SalesforceResourceNotFound) as gone:
        row(org, "Lead", loser)
    content: Any = gone.value.content  # simple-salesforce types it loosely: the parsed error list
    assert content[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert merged_into(org, [survivor, loser]) == {loser: survivor}
    assert row(org, "Task", str(task))["WhoId"] == survivor
    assert row(org, "Lead", survivor)["Title"] == "VP Sales"
    assert soap_posts(sf_sandbox) == 1


def test_salesforce_merges_three_losers_in_one_call(salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox,
                                                    org: Salesforce) -> None:
    survivor, *losers = leads(salesforce, 4, "three")
    before = salesforce.calls.get("write")

    outcome = salesforce.merge("Lead", survivor, losers)

    assert outcome.merged_ids == tuple(losers) and outcome.already_merged_ids == ()
    assert merged_into(org, [survivor, *losers]) == dict.fromkeys(losers, survivor)
    assert salesforce.calls.get("write") - before == 1 and soap_posts(sf_sandbox) == 1  # two requests, one call


def test_salesforce_retry_of_a_merge_is_done_and_still_sets_the_values(
        salesforce: SalesforceAdapter, org: Salesforce) -> None:
    survivor, first, second = leads(salesforce, 3, "retry")
    salesforce.merge("Lead", survivor, [first])

    again = salesforce.merge("Lead", survivor, [first, second], {"Title": "CTO"})
    assert (again.merged_ids, again.already_merged_ids) == ((second,), (first,))
    assert row(org, "Lead", survivor)["Title"] == "CTO"

    replay = salesforce.merge("Lead", survivor, [first, second], {"Title": "CEO"})
    assert (replay.merged_ids, replay.already_merged_ids) == ((), (first, second))
    assert row(org, "Lead", survivor)["Title"] == "CEO"  # nothing left to merge: the values went as an update


def test_salesforce_merge_whose_answer_was_lost_is_recognised(
        salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox, sf_url: str, org: Salesforce) -> None:
    survivor, loser = leads(salesforce, 2, "lost")
    sandbox_admin(sf_url, "PUT", "faults", {"script": [{"fault": "lost_after_apply", "path": "/services/Soap/"}]})

    outcome = salesforce.merge("Lead", survivor, [loser])

    assert (outcome.merged_ids, outcome.already_merged_ids) == ((), (loser,))
    assert merged_into(org, [survivor, loser]) == {loser: survivor}
    assert soap_posts(sf_sandbox) == 2


def test_salesforce_merge_into_a_deleted_survivor_names_both_ids(
        salesforce: SalesforceAdapter, org: Salesforce) -> None:
    survivor, loser, other = leads(salesforce, 3, "dead")
    salesforce.merge("Lead", other, [survivor])

    with pytest.raises(RecordError) as refused:
        salesforce.merge("Lead", survivor, [loser])
    assert refused.value.code == "ENTITY_IS_DELETED"
    assert f"cannot merge Lead {loser} into {survivor}: the survivor {survivor} is deleted (merged into {other})" \
        in str(refused.value)
    assert row(org, "Lead", loser)["IsDeleted"] is False

    salesforce.merge("Lead", other, [loser])
    [fresh] = leads(salesforce, 1, "fresh")
    with pytest.raises(RecordError, match=f"{loser} is deleted \\(merged into {other}\\)"):
        salesforce.merge("Lead", fresh, [loser])
    assert row(org, "Lead", fresh)["IsDeleted"] is False


def test_salesforce_renews_an_expired_session_for_a_merge(salesforce: SalesforceAdapter,
                                                          sf_sandbox: SalesforceSandbox) -> None:
    survivor, loser = leads(salesforce, 2, "expired")
    with sf_sandbox.state.lock:
        sf_sandbox.state.tokens.clear()  # the org forgets the session: the SOAP call answers INVALID_SESSION_ID

    assert salesforce.merge("Lead", survivor, [loser]).merged_ids == (loser,)
    assert salesforce.calls.get("auth") == 2


def test_salesforce_refuses_what_it_cannot_merge(salesforce: SalesforceAdapter) -> None:
    survivor, loser = leads(salesforce, 2, "bad")
    with pytest.raises(ConfigurationError, match="Salesforce merges only Lead, Contact, Account, Case"):
        salesforce.merge("Opportunity", survivor, [loser])
    with pytest.raises(ConfigurationError) as unknown:
        salesforce.merge("Lead", survivor, [loser], {"Shoe_Size__c": 44})
    assert unknown.value.code == "INVALID_FIELD" and "Shoe_Size__c" in str(unknown.value)
    with pytest.raises(RecordError, match="the survivor is among the records to merge"):
        salesforce.merge("Lead", survivor, [survivor])


# --- HubSpot ---------------------------------------------------------------------------------


@pytest.fixture
def portal(hs_url: str) -> HubSpot:
    """hubspot-api-client on the sandbox portal: how the tests read back what the adapter did."""
    return HubSpot(access_token="sandbox-token", host=hs_url)


def contacts(adapter: HubSpotAdapter, count: int, tag: str) -> list[str]:
    made = adapter.write([WriteOp("contacts", "create", {"email": f"{tag}{i}@merge.example", "lastname": f"{tag}{i}"})
                          for i in range(count)])
    assert all(r.success for r in made)
    return [str(r.crm_id) for r in made]


def test_hubspot_merges_two_contacts_and_sets_values(hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox,
                                                     portal: HubSpot) -> None:
    survivor, loser = contacts(hubspot, 2, "two")
    assert isinstance(hubspot, CrmAdapter)

    outcome = hubspot.merge("contact", survivor, [loser], {"jobtitle": "VP Sales"})

    assert outcome == MergeOutcome("contacts", survivor, (loser,), ())
    record = portal.crm.contacts.basic_api.get_by_id(loser, properties=["jobtitle", "hs_merged_object_ids", "email"])
    assert record.id == survivor  # the loser's id answers with the survivor
    assert record.properties["jobtitle"] == "VP Sales" and record.properties["hs_merged_object_ids"] == loser
    assert record.properties["email"] == "two0@merge.example"
    assert loser in [r.id for r in portal.crm.contacts.basic_api.get_page(archived=True).results]
    assert merge_posts(hs_sandbox) == 1


def test_hubspot_merges_losers_one_after_another(hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox,
                                                 portal: HubSpot) -> None:
    survivor, *losers = contacts(hubspot, 3, "three")

    outcome = hubspot.merge("contacts", survivor, losers)

    assert outcome.merged_ids == tuple(losers) and outcome.survivor_id == survivor
    merged = portal.crm.contacts.basic_api.get_by_id(survivor, properties=["hs_merged_object_ids"])
    assert sorted(merged.properties["hs_merged_object_ids"].split(";")) == sorted(losers)
    assert merge_posts(hs_sandbox) == 2  # HubSpot merges one pair per call


def test_hubspot_retry_of_a_merge_is_done(hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox) -> None:
    survivor, first, second = contacts(hubspot, 3, "retry")
    hubspot.merge("contacts", survivor, [first])

    again = hubspot.merge("contacts", survivor, [first, second], {"jobtitle": "CTO"})

    assert (again.merged_ids, again.already_merged_ids) == ((second,), (first,))
    assert merge_posts(hs_sandbox) == 2


def test_hubspot_merge_whose_answer_was_lost_is_recognised(hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox,
                                                           hs_url: str) -> None:
    survivor, loser = contacts(hubspot, 2, "lost")
    sandbox_admin(hs_url, "PUT", "faults", {"script": [{"fault": "lost_after_apply", "path": "/merge"}]})

    outcome = hubspot.merge("contacts", survivor, [loser])

    assert (outcome.survivor_id, outcome.merged_ids, outcome.already_merged_ids) == (survivor, (), (loser,))
    assert merge_posts(hs_sandbox) == 2  # the retry was refused (already merged), then recognised


def test_hubspot_merge_into_an_archived_survivor_names_both_ids(hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    survivor, loser, other, third = contacts(hubspot, 4, "dead")
    portal.crm.contacts.basic_api.archive(survivor)

    with pytest.raises(RecordError) as refused:
        hubspot.merge("contacts", survivor, [loser])
    assert f"cannot merge contacts {loser} into {survivor}: the survivor {survivor} does not exist or was archived" \
        in str(refused.value)

    hubspot.merge("contacts", other, [loser])
    with pytest.raises(RecordError, match=f"{loser} was merged into {other}"):
        hubspot.merge("contacts", third, [loser])
    assert portal.crm.contacts.basic_api.get_by_id(third, properties=["hs_merged_object_ids"]).properties[
        "hs_merged_object_ids"] in (None, "")


@pytest.fixture
def new_id_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The portal merges as HubSpot documents for contacts and companies since its 2024 change: into a new record.

    "A new record with a new ID will be created for the resulting merged record ... both of the
    previous IDs will point to the resulting merged record" (developers.hubspot.com/changelog,
    "Updated merge functionality for contacts and companies"). Emulated with the sandbox's own
    merge: a fresh record takes the primary, then the secondary.
    """
    merge_into = HubSpotState.merge

    def merge(self: HubSpotState, object_type: str, primary: dict[str, Any], secondary: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            fresh = self.create(object_type, {})
            merge_into(self, object_type, fresh, primary)
            return merge_into(self, object_type, fresh, secondary)

    monkeypatch.setattr(HubSpotState, "merge", merge)


@pytest.mark.usefixtures("new_id_merges")
def test_hubspot_follows_a_merge_that_gives_the_record_a_new_id(hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    survivor, first, second = contacts(hubspot, 3, "newid")

    outcome = hubspot.merge("contacts", survivor, [first, second], {"jobtitle": "COO"})

    assert outcome.merged_ids == (first, second) and outcome.survivor_id not in (survivor, first, second)
    for old in (survivor, first, second):
        record = portal.crm.contacts.basic_api.get_by_id(old, properties=["jobtitle"])
        assert (record.id, record.properties["jobtitle"]) == (outcome.survivor_id, "COO")
    retried = hubspot.merge("contacts", survivor, [first, second])
    assert (retried.survivor_id, retried.merged_ids, retried.already_merged_ids) == (
        outcome.survivor_id, (), (first, second))


def test_hubspot_refuses_types_it_does_not_merge(hubspot: HubSpotAdapter) -> None:
    with pytest.raises(ConfigurationError, match="HubSpot merges only contacts, companies, deals, tickets"):
        hubspot.merge("tasks", "1", ["2"])
