"""A write answered with a broken body: retried when sending it again lands once, reported when it may not.

The sandbox applies the write, then answers with a truncated body or an HTML page (as a
proxy or a maintenance window does). An update or an upsert by external id lands once
however often it is sent, so it is sent again; a create is not (it would make a second
record), so its outcome is reported as unknown, record by record.
"""

from __future__ import annotations

import pytest

from connector.adapters.base import WriteOp
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.common import FaultSettings
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox


@pytest.mark.parametrize("fault", ["truncated", "html", "invalid_json"])
def test_a_salesforce_update_answered_with_a_broken_body_is_sent_again_and_lands(
    salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox, fault: str
) -> None:
    lead = salesforce.sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf_sandbox.faults.configure(FaultSettings(script=[{"fault": fault, "path": "composite/sobjects", "method": "PATCH"}]))

    (result,) = salesforce.write([WriteOp("Lead", "update", {"Title": f"after {fault}"}, lead)])

    assert result.success, result.error
    assert salesforce.sf.Lead.get(lead)["Title"] == f"after {fault}"
    assert [e.fault for e in sf_sandbox.ledger.entries() if e.fault] == [fault]


def test_a_salesforce_create_answered_with_a_broken_body_is_reported_unknown_not_sent_twice(
    salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox
) -> None:
    before = salesforce.sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    sf_sandbox.faults.configure(FaultSettings(script=[{"fault": "truncated", "path": "composite/sobjects",
                                                       "method": "POST"}]))

    (result,) = salesforce.write([WriteOp("Lead", "create", {"LastName": "Once", "Company": "Acme"})])

    assert not result.success and result.error is not None and result.error.code == "MALFORMED_ANSWER"
    assert "unknown" in str(result.error)
    assert salesforce.sf.query("SELECT COUNT() FROM Lead")["totalSize"] == before + 1  # landed once


@pytest.mark.parametrize("fault", ["truncated", "html"])
def test_a_hubspot_batch_update_answered_with_a_broken_body_is_sent_again_and_lands(
    hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox, fault: str
) -> None:
    contact = hubspot.client.crm.contacts.basic_api.get_page(limit=1).results[0].id
    hs_sandbox.faults.configure(FaultSettings(script=[{"fault": fault, "path": "batch/update"}]))

    (result,) = hubspot.write([WriteOp("contacts", "update", {"jobtitle": f"after {fault}"}, contact)])

    assert result.success, result.error
    stored = hubspot.client.crm.contacts.basic_api.get_by_id(contact, properties=["jobtitle"])
    assert stored.properties["jobtitle"] == f"after {fault}"
