"""The Salesforce sandbox's SOAP ``convertLead()`` over real HTTP: raw envelopes in, the org read back through simple-salesforce."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "{urn:partner.soap.sforce.com}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
REP, GONE = "0055e0000000101AAA", "0055e0000000102AAA"
ADA, BEN, CY, DEE = "00Q5e0000000001EAA", "00Q5e0000000002EAA", "00Q5e0000000003EAA", "00Q5e0000000004EAA"
GLOBEX = "0015e0000000001AAA"
SEED: dict[str, list[dict[str, Any]]] = {
    "User": [
        {"Id": REP, "Username": "rep@sandbox.example", "LastName": "Rep", "Email": "rep@sandbox.example"},
        {"Id": GONE, "Username": "gone@sandbox.example", "LastName": "Gone", "Email": "gone@sandbox.example",
         "IsActive": False},
    ],
    "Account": [{"Id": GLOBEX, "Name": "Globex", "Industry": "Energy"}],
    "Lead": [
        {"Id": ADA, "FirstName": "Ada", "LastName": "Lovelace", "Company": "Analytical Engines", "Email": "ada@ae.example",
         "Phone": "+44 20 0000 0001", "Title": "CTO", "LeadSource": "Webinar", "Industry": "Technology",
         "City": "London", "Country": "United Kingdom", "NumberOfEmployees": 40},
        {"Id": BEN, "LastName": "Franklin", "Company": "Globex", "Email": "ben@globex.example"},
        {"Id": CY, "LastName": "Young", "Company": "Cy Corp"},
        {"Id": DEE, "LastName": "Dee", "Company": "Dee Ltd"},
    ],
    "Task": [{"Id": "00T5e0000000001EAA", "Subject": "Discovery call", "WhoId": ADA}],
}


def row(sf: Salesforce, obj: str, record_id: str) -> dict[str, Any]:
    """``GET sobjects/{obj}/{id}`` through simple-salesforce."""
    answer = sf.restful(f"sobjects/{obj}/{record_id}")
    assert isinstance(answer, dict), answer
    return answer


def patch(sf: Salesforce, obj: str, record_id: str, values: dict[str, Any]) -> None:
    """``PATCH sobjects/{obj}/{id}`` through simple-salesforce (raises its exception when refused)."""
    sf.restful(f"sobjects/{obj}/{record_id}", method="PATCH", json=values)


@pytest.fixture()
def box() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(SEED, clock=lambda: NOW)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture()
def sf(box: SalesforceSandbox) -> Salesforce:
    assert box.server is not None
    return Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=box.access_token(),
                      session=sandbox_session(box.server.url), version="59.0")


def lead_convert(lead: str, status: str = "Closed - Converted", **elements: str) -> str:
    """One ``leadConverts`` element (``elements`` in the order given)."""
    inner = f"<urn:convertedStatus>{status}</urn:convertedStatus><urn:leadId>{lead}</urn:leadId>"
    inner += "".join(f"<urn:{name}>{value}</urn:{name}>" for name, value in elements.items())
    return f"<urn:leadConverts>{inner}</urn:leadConverts>"


def envelope(session: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ENV}" '
            'xmlns:urn="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader>"
            f"</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>")


def post(box: SalesforceSandbox, body: str) -> httpx.Response:
    assert box.server is not None
    return httpx.post(box.server.url + "/services/Soap/u/59.0", content=body,
                      headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "convertLead"})


def convert(box: SalesforceSandbox, *converts: str) -> list[dict[str, Any]]:
    """Post a convertLead call with a fresh session; its results as dicts (the HTTP status must be 200)."""
    answer = post(box, envelope(box.access_token(), "<urn:convertLead>" + "".join(converts) + "</urn:convertLead>"))
    assert answer.status_code == HTTPStatus.OK, answer.text
    results = []
    for result in ET.fromstring(answer.content).iter(f"{NS}result"):
        assert [child.tag.removeprefix(NS) for child in result if child.tag != f"{NS}errors"] == [
            "accountId", "contactId", "leadId", "opportunityId", "success"]  # the WSDL's order
        ids = {name: (None if (e := result.find(f"{NS}{name}")) is None or e.get(XSI_NIL) == "true" else e.text)
               for name in ("accountId", "contactId", "leadId", "opportunityId")}
        results.append({**ids, "success": result.findtext(f"{NS}success"),
                        "errors": [(e.findtext(f"{NS}statusCode"), e.findtext(f"{NS}message"))
                                   for e in result.findall(f"{NS}errors")]})
    return results


def fault(answer: httpx.Response) -> tuple[str, str]:
    """``(faultcode, faultstring)`` of a SOAP fault answer."""
    assert answer.status_code == HTTPStatus.INTERNAL_SERVER_ERROR, answer.text
    node = ET.fromstring(answer.content).find(f"{{{ENV}}}Body/{{{ENV}}}Fault")
    assert node is not None, answer.text
    return node.findtext("faultcode") or "", node.findtext("faultstring") or ""


def counts(sf: Salesforce) -> dict[str, int]:
    return {obj: int(sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"])
            for obj in ("Account", "Contact", "Opportunity", "OpportunityHistory")}


def lead(sf: Salesforce, lead_id: str) -> dict[str, Any]:
    row = sf.query("SELECT IsConverted, Status, ConvertedDate, ConvertedAccountId, ConvertedContactId FROM Lead "
                   f"WHERE Id = '{lead_id}'")["records"][0]
    return {k: v for k, v in row.items() if k != "attributes"}


def converted_opportunity(sf: Salesforce, lead_id: str) -> str | None:
    row = sf.query(f"SELECT ConvertedOpportunityId FROM Lead WHERE Id = '{lead_id}'")["records"][0]
    value = row["ConvertedOpportunityId"]
    return str(value) if value else None


def test_convert_creates_account_contact_and_opportunity_and_closes_the_lead(
        box: SalesforceSandbox, sf: Salesforce) -> None:
    [result] = convert(box, lead_convert(ADA, opportunityName="Engines - 40 seats", ownerId=REP))

    assert result["success"] == "true" and result["errors"] == [] and result["leadId"] == ADA
    account = row(sf, "Account", result["accountId"])
    assert {k: account[k] for k in ("Name", "Industry", "BillingCity", "BillingCountry", "NumberOfEmployees",
                                    "AccountSource", "OwnerId")} == {
        "Name": "Analytical Engines", "Industry": "Technology", "BillingCity": "London",
        "BillingCountry": "United Kingdom", "NumberOfEmployees": 40, "AccountSource": "Webinar", "OwnerId": REP}
    contact = row(sf, "Contact", result["contactId"])
    assert {k: contact[k] for k in ("Name", "Email", "Phone", "Title", "AccountId", "OwnerId", "LeadSource",
                                    "MailingCity")} == {
        "Name": "Ada Lovelace", "Email": "ada@ae.example", "Phone": "+44 20 0000 0001", "Title": "CTO",
        "AccountId": result["accountId"], "OwnerId": REP, "LeadSource": "Webinar", "MailingCity": "London"}
    opportunity = row(sf, "Opportunity", result["opportunityId"])
    assert {k: opportunity[k] for k in ("Name", "AccountId", "OwnerId", "StageName", "CloseDate", "Probability",
                                        "IsClosed", "LeadSource")} == {
        "Name": "Engines - 40 seats", "AccountId": result["accountId"], "OwnerId": REP, "StageName": "Prospecting",
        "CloseDate": (NOW.date() + timedelta(days=30)).isoformat(), "Probability": 10.0, "IsClosed": False,
        "LeadSource": "Webinar"}
    history = sf.query("SELECT StageName, CloseDate, CreatedDate FROM OpportunityHistory "
                       f"WHERE OpportunityId = '{result['opportunityId']}'")["records"]
    assert [(h["StageName"], h["CreatedDate"]) for h in history] == [("Prospecting", "2026-03-02T15:30:00.000+0000")]
    assert lead(sf, ADA) == {
        "IsConverted": True, "Status": "Closed - Converted", "ConvertedDate": date(2026, 3, 2).isoformat(),
        "ConvertedAccountId": result["accountId"], "ConvertedContactId": result["contactId"]}
    assert converted_opportunity(sf, ADA) == result["opportunityId"]
    assert row(sf, "Task", "00T5e0000000001EAA")["WhoId"] == result["contactId"]


def test_the_call_is_in_the_ledger_with_what_it_wrote(box: SalesforceSandbox) -> None:
    convert(box, lead_convert(ADA, opportunityName="Engines"))

    deadline = time.monotonic() + 2.0
    while not (entries := [e for e in box.ledger.entries() if e.path.startswith("/services/Soap/")]) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(e.kind, e.status, e.records_written) for e in entries] == [("convertLead", HTTPStatus.OK, 5)]


def test_convert_into_an_existing_account_without_an_opportunity(box: SalesforceSandbox, sf: Salesforce) -> None:
    before = counts(sf)

    [result] = convert(box, lead_convert(BEN, accountId=GLOBEX, doNotCreateOpportunity="true"))

    assert (result["success"], result["accountId"], result["opportunityId"]) == ("true", GLOBEX, None)
    assert counts(sf) == {**before, "Contact": before["Contact"] + 1}
    assert row(sf, "Contact", result["contactId"])["AccountId"] == GLOBEX
    assert row(sf, "Account", GLOBEX)["Industry"] == "Energy"
    assert (lead(sf, BEN)["ConvertedAccountId"], lead(sf, BEN)["ConvertedContactId"]) == (GLOBEX, result["contactId"])


def test_a_converted_lead_cannot_be_converted_again_or_updated(box: SalesforceSandbox, sf: Salesforce) -> None:
    [first] = convert(box, lead_convert(ADA, opportunityName="Engines"))
    before = counts(sf)

    [again] = convert(box, lead_convert(ADA, opportunityName="Engines"))

    assert again == {"accountId": None, "contactId": None, "leadId": None, "opportunityId": None, "success": "false",
                     "errors": [("CANNOT_UPDATE_CONVERTED_LEAD", f"cannot reference converted lead: {ADA}")]}
    assert counts(sf) == before
    assert converted_opportunity(sf, ADA) == first["opportunityId"]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        patch(sf, "Lead", ADA, {"Title": "CEO"})
    content: Any = refused.value.content
    assert content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


@pytest.mark.parametrize(("convert_xml", "code", "message"), [
    (lead_convert("00Q5e0000000999EAA"), "INVALID_CROSS_REFERENCE_KEY",
     "invalid cross reference id: 00Q5e0000000999EAA"),
    (lead_convert("00Q-nope"), "INVALID_ID_FIELD", "Invalid id value for this SObject type (Lead): 00Q-nope"),
    (lead_convert(GLOBEX), "INVALID_ID_FIELD", f"Invalid id value for this SObject type (Lead): {GLOBEX}"),
    (lead_convert(CY, "Working - Contacted"), "INVALID_STATUS", "invalid convertedStatus: Working - Contacted"),
    (lead_convert(CY, ownerId=GONE), "INACTIVE_OWNER_OR_USER",
     f"operation performed with inactive user [{GONE}] as owner of account"),
    (lead_convert(CY, accountId="0015e0000000999AAA"), "INVALID_CROSS_REFERENCE_KEY",
     "invalid cross reference id: 0015e0000000999AAA"),
])
def test_refused_conversions_say_why_and_change_nothing(box: SalesforceSandbox, sf: Salesforce, convert_xml: str,
                                                        code: str, message: str) -> None:
    before = counts(sf)

    [result] = convert(box, convert_xml)

    assert (result["success"], result["errors"]) == ("false", [(code, message)])
    assert counts(sf) == before
    assert lead(sf, CY)["IsConverted"] is False


def test_each_lead_convert_is_its_own_transaction(box: SalesforceSandbox, sf: Salesforce) -> None:
    results = convert(box, lead_convert(CY, opportunityName="Cy deal"), lead_convert(DEE, ownerId=GONE),
                      lead_convert(DEE, opportunityName="Dee deal"))

    assert [r["success"] for r in results] == ["true", "false", "true"]
    assert results[1]["errors"][0][0] == "INACTIVE_OWNER_OR_USER"
    assert row(sf, "Opportunity", results[2]["opportunityId"])["Name"] == "Dee deal"
    assert lead(sf, CY)["IsConverted"] is lead(sf, DEE)["IsConverted"] is True


def test_malformed_calls_are_faults(box: SalesforceSandbox) -> None:
    session = box.access_token()
    code, message = fault(post(box, envelope("nope", "<urn:convertLead>" + lead_convert(ADA) + "</urn:convertLead>")))
    assert code == "sf:INVALID_SESSION_ID"
    code, message = fault(post(box, envelope(session, "<urn:convertLead/>")))
    assert (code, message) == ("soapenv:Client", "convertLead needs at least one leadConverts (LeadConvert)")
    code, message = fault(post(box, envelope(session, "<urn:convertLead>" + lead_convert(ADA, contactId="003")
                                             + "</urn:convertLead>")))
    assert (code, message) == ("soapenv:Client", "leadConverts #0: the sandbox does not support LeadConvert.contactId")
    code, message = fault(post(box, envelope(session, "<urn:convertLead>" + lead_convert(ADA, shoeSize="44")
                                             + "</urn:convertLead>")))
    assert code == "soapenv:Client" and "Unexpected element {urn:partner.soap.sforce.com}shoeSize" in message
    code, message = fault(post(box, envelope(session, "<urn:convertLead>" + lead_convert(
        ADA, doNotCreateOpportunity="maybe") + "</urn:convertLead>")))
    assert code == "soapenv:Client" and "'maybe' is not a valid value for the type xsd:boolean" in message
    code, message = fault(post(box, envelope(session, "<urn:convertLead>" + lead_convert(ADA) * 201
                                             + "</urn:convertLead>")))
    assert (code, message) == ("sf:LIMIT_EXCEEDED", "LIMIT_EXCEEDED: convertLead takes at most 200 leadConverts "
                                                    "per call, got 201")
