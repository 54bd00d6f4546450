"""``delete_records`` through both adapters against their sandboxes over real HTTP, read back through the SDKs.

Salesforce: sObject Collections ``DELETE composite/sobjects`` (200 ids a call), a record in the recycle
bin already answering ``ENTITY_IS_DELETED`` (counted as deleted), a bad id refused alone. HubSpot: batch
archive (100 ids a call), every id answered alike. The records not named stay.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import NotFoundException
from simple_salesforce import Salesforce

from connector.adapters.base import CrmAdapter, Deletion, WriteOp
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session


def _calls(box: SalesforceSandbox | HubSpotSandbox, method: str, suffix: str) -> list[Any]:
    return [e for e in box.ledger.entries() if e.method == method and e.path.endswith(suffix)]


def _calls_reach(box: SalesforceSandbox | HubSpotSandbox, method: str, suffix: str, expected: int) -> int:
    """How many such calls the ledger holds once it holds ``expected`` (or after 5 s): a ledger entry is
    written as its answer ends, so it may land just after the client has the answer."""
    deadline = time.monotonic() + 5
    while len(_calls(box, method, suffix)) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and no more than expected come
    return len(_calls(box, method, suffix))


# --- Salesforce ------------------------------------------------------------------------------


@pytest.fixture
def org(sf_sandbox: SalesforceSandbox) -> Salesforce:
    assert sf_sandbox.server is not None
    return Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=sf_sandbox.access_token(),
                      session=sandbox_session(sf_sandbox.server.url), version="59.0")


def _leads(adapter: SalesforceAdapter, count: int, tag: str) -> list[str]:
    made = adapter.write([WriteOp("Lead", "create", {"LastName": f"{tag}{i}", "Company": "Delete Co",
                                                     "Email": f"{tag}{i}@delete.example"}) for i in range(count)])
    assert all(r.success for r in made)
    return [str(r.crm_id) for r in made]


def _deleted(org: Salesforce, ids: list[str]) -> dict[str, bool]:
    rows = org.query_all("SELECT Id, IsDeleted FROM Lead WHERE Id IN ('" + "','".join(ids) + "')",
                         include_deleted=True)["records"]
    return {r["Id"]: r["IsDeleted"] for r in rows}


def test_salesforce_deletes_the_named_leads_and_nothing_else(salesforce: SalesforceAdapter,
                                                            sf_sandbox: SalesforceSandbox, org: Salesforce) -> None:
    assert isinstance(salesforce, CrmAdapter)
    doomed, kept = _leads(salesforce, 3, "doomed"), _leads(salesforce, 2, "kept")
    before = len(_calls(sf_sandbox, "DELETE", "/composite/sobjects"))

    outcome = salesforce.delete_records("Lead", doomed)

    assert outcome == [Deletion("Lead", crm_id, True) for crm_id in doomed]
    assert _deleted(org, doomed + kept) == {**dict.fromkeys(doomed, True), **dict.fromkeys(kept, False)}
    assert _calls_reach(sf_sandbox, "DELETE", "/composite/sobjects", before + 1) == before + 1
    assert salesforce.delete_records("Lead", []) == []


def test_salesforce_counts_a_lead_deleted_before_as_deleted_and_refuses_a_bad_id_alone(
        salesforce: SalesforceAdapter, org: Salesforce) -> None:
    first, second = _leads(salesforce, 2, "again")
    salesforce.delete_records("Lead", [first])

    outcome = salesforce.delete_records("Lead", [first, "00Q000000000000XYZ", second])

    assert outcome[0] == Deletion("Lead", first, True, already_deleted=True)
    assert not outcome[1].deleted and outcome[1].error is not None
    assert outcome[1].error.code in {"INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"}
    assert outcome[2] == Deletion("Lead", second, True)
    assert _deleted(org, [first, second]) == {first: True, second: True}


def test_salesforce_deletes_in_collections_of_two_hundred(salesforce: SalesforceAdapter,
                                                          sf_sandbox: SalesforceSandbox, org: Salesforce) -> None:
    ids = _leads(salesforce, 201, "many")
    before = len(_calls(sf_sandbox, "DELETE", "/composite/sobjects"))

    outcome = salesforce.delete_records("Lead", ids)

    assert [d.crm_id for d in outcome] == ids and all(d.deleted and not d.already_deleted for d in outcome)
    assert _calls_reach(sf_sandbox, "DELETE", "/composite/sobjects", before + 2) == before + 2
    assert set(_deleted(org, ids).values()) == {True}


# --- HubSpot ---------------------------------------------------------------------------------


@pytest.fixture
def portal(hs_url: str) -> HubSpot:
    return HubSpot(access_token="sandbox-token", host=hs_url)


def _contacts(adapter: HubSpotAdapter, count: int, tag: str) -> list[str]:
    made = adapter.write([WriteOp("contacts", "create", {"email": f"{tag}{i}@delete.example", "lastname": f"{tag}{i}"})
                          for i in range(count)])
    assert all(r.success for r in made)
    return [str(r.crm_id) for r in made]


def _archived(portal: HubSpot) -> set[str]:
    return {r.id for r in portal.crm.contacts.get_all(archived=True)}


def test_hubspot_archives_the_named_contacts_and_nothing_else(hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox,
                                                             portal: HubSpot) -> None:
    assert isinstance(hubspot, CrmAdapter)
    doomed, kept = _contacts(hubspot, 3, "doomed"), _contacts(hubspot, 2, "kept")
    before = len(_calls(hs_sandbox, "POST", "/batch/archive"))

    outcome = hubspot.delete_records("contacts", doomed)

    assert outcome == [Deletion("contacts", crm_id, True) for crm_id in doomed]
    assert set(doomed) <= _archived(portal) and not set(kept) & _archived(portal)
    for crm_id in doomed:
        with pytest.raises(NotFoundException):
            portal.crm.contacts.basic_api.get_by_id(crm_id)
    for crm_id in kept:
        assert portal.crm.contacts.basic_api.get_by_id(crm_id).id == crm_id
    assert _calls_reach(hs_sandbox, "POST", "/batch/archive", before + 1) == before + 1


def test_hubspot_archives_in_batches_of_one_hundred_and_a_repeat_is_harmless(
        hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox, portal: HubSpot) -> None:
    ids = _contacts(hubspot, 101, "many")
    before = len(_calls(hs_sandbox, "POST", "/batch/archive"))

    outcome = hubspot.delete_records("contacts", ids)

    assert [d.crm_id for d in outcome] == ids and all(d.deleted for d in outcome)
    assert _calls_reach(hs_sandbox, "POST", "/batch/archive", before + 2) == before + 2
    assert set(ids) <= _archived(portal)
    assert all(d.deleted for d in hubspot.delete_records("contacts", ids[:2]))  # HubSpot answers 204 again
