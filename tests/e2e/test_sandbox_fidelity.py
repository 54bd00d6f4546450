"""Where the sandbox CRMs let through what the real CRMs refuse (found by the end-to-end tests).

Each test states the real API's behaviour; an xfail names the gap in the sandbox, so the
end-to-end suite cannot pass on behaviour production would refuse without saying so.
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
