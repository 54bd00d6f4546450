"""Refusals of the real CRMs the end-to-end tests rely on the sandboxes to share.

Each test states the real API's behaviour, found missing in a sandbox by the end-to-end
suite: without it a sync that production would refuse passes here.
"""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceError

from ._crm import read_salesforce, sobject
from ._world import Crms


def test_salesforce_refuses_updates_to_a_converted_lead(crms: Crms) -> None:
    converted = next(p for p in read_salesforce(crms.salesforce).people.values() if p.converted)

    with pytest.raises(SalesforceError) as refused:
        sobject(crms.salesforce, "Lead").update(converted.id, {"Relay_Score__c": 50})

    assert "CANNOT_UPDATE_CONVERTED_LEAD" in str(refused.value)
