"""OpportunityHistory, OpportunityContactRole and OpportunityLineItem through simple-salesforce."""

from __future__ import annotations

import pytest
from sf_helpers import FakeClock
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest


def _opportunity(sf: Salesforce) -> str:
    account = sf.Account.create({"Name": "Globex"})["id"]
    return str(sf.Opportunity.create({
        "Name": "Globex - Platform", "AccountId": account, "StageName": "Prospecting",
        "CloseDate": "2026-05-29", "Amount": 12000,
    })["id"])


def test_each_stage_amount_or_close_date_change_writes_a_history_row(sf: Salesforce, clock: FakeClock) -> None:
    opp = _opportunity(sf)
    clock.advance(minutes=30)
    sf.Opportunity.update(opp, {"StageName": "Discovery"})
    clock.advance(minutes=10)
    sf.Opportunity.update(opp, {"NextStep": "Demo on Friday"})  # no history
    clock.advance(minutes=20)
    sf.Opportunity.update(opp, {"Amount": 15000, "CloseDate": "2026-06-30"})
    rows = sf.query(
        f"SELECT Id, OpportunityId, StageName, Amount, CloseDate, Probability, PrevAmount, PrevCloseDate, "
        f"CreatedDate, CreatedById FROM OpportunityHistory WHERE OpportunityId = '{opp}' ORDER BY CreatedDate"
    )["records"]
    assert [(r["StageName"], r["Amount"], r["CloseDate"]) for r in rows] == [
        ("Prospecting", 12000.0, "2026-05-29"), ("Discovery", 12000.0, "2026-05-29"), ("Discovery", 15000.0, "2026-06-30"),
    ]
    assert [r["Probability"] for r in rows] == [10.0, 20.0, 20.0]
    assert (rows[0]["PrevAmount"], rows[2]["PrevAmount"], rows[2]["PrevCloseDate"]) == (None, 12000.0, "2026-05-29")
    assert [r["CreatedDate"][11:16] for r in rows] == ["09:30", "10:00", "10:30"]
    assert all(r["Id"].startswith("008") and r["OpportunityId"] == opp and r["CreatedById"] for r in rows)
    current = sf.Opportunity.get(opp)
    assert current["LastStageChangeDate"] == rows[1]["CreatedDate"]


def test_opportunity_history_is_read_only_and_described(sf: Salesforce) -> None:
    described = sf.OpportunityHistory.describe()
    assert described["createable"] is False and described["updateable"] is False
    names = {f["name"] for f in described["fields"]}
    assert {"OpportunityId", "StageName", "PrevAmount", "CreatedDate"} <= names
    assert "LastModifiedDate" not in names
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.OpportunityHistory.create({})
    assert "entity type cannot be inserted: Opportunity History" in str(refused.value)


def test_contact_roles_and_line_items_are_queryable(sf: Salesforce) -> None:
    opp = _opportunity(sf)
    contact = sf.Contact.create({"LastName": "Ng", "Email": "ng@globex.example"})["id"]
    sf.OpportunityContactRole.create({"OpportunityId": opp, "ContactId": contact, "Role": "Decision Maker", "IsPrimary": True})
    sf.OpportunityLineItem.create({"OpportunityId": opp, "Quantity": 10, "UnitPrice": 1200, "Discount": 15})
    roles = sf.query(f"SELECT ContactId, Role, IsPrimary FROM OpportunityContactRole WHERE OpportunityId = '{opp}'")
    assert [(r["ContactId"], r["Role"], r["IsPrimary"]) for r in roles["records"]] == [(contact, "Decision Maker", True)]
    items = sf.query(f"SELECT Quantity, UnitPrice, Discount, TotalPrice FROM OpportunityLineItem WHERE OpportunityId = '{opp}'")
    assert [(i["Quantity"], i["Discount"], i["TotalPrice"]) for i in items["records"]] == [(10.0, 15.0, 10200.0)]
    described = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert described["Discovery_Call_Scheduled__c"]["type"] == "boolean"
    assert described["Signatures_Scheduled__c"]["type"] == "boolean"
    assert described["LastStageChangeDate"]["updateable"] is False
