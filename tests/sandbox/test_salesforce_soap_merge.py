"""The Salesforce sandbox's SOAP ``merge()`` over real HTTP: raw envelopes in, the REST view read back through simple-salesforce."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "{urn:partner.soap.sforce.com}"
SEED: dict[str, list[dict[str, Any]]] = {
    "Account": [
        {"Id": "0015e0000000001AAA", "Name": "Acme"},
        {"Id": "0015e0000000002AAA", "Name": "Acme Inc", "Website": "acme.example"},
    ],
    "Contact": [{"Id": "0035e0000000001AAA", "LastName": "Ng", "AccountId": "0015e0000000002AAA"}],
    "Lead": [
        {"Id": "00Q5e0000000001EAA", "LastName": "Diaz", "Company": "Acme", "Email": "ana@acme.example"},
        {"Id": "00Q5e0000000002EAA", "LastName": "Diaz", "Company": "Acme", "Phone": "+1 555 0100"},
        {"Id": "00Q5e0000000003EAA", "LastName": "Díaz", "Company": "ACME"},
        {"Id": "00Q5e0000000004EAA", "LastName": "Diaz", "Company": "Acme Corp"},
    ],
    "Opportunity": [{"Id": "0065e0000000001AAA", "Name": "Acme renewal", "StageName": "Prospecting",
                     "CloseDate": "2026-06-30", "AccountId": "0015e0000000002AAA"}],
    "Task": [
        {"Id": "00T5e0000000001EAA", "Subject": "Call back", "WhoId": "00Q5e0000000002EAA"},
        {"Id": "00T5e0000000002EAA", "Subject": "Send deck", "WhoId": "00Q5e0000000003EAA"},
        {"Id": "00T5e0000000003EAA", "Subject": "QBR", "WhatId": "0015e0000000002AAA"},
    ],
}
ANA, DUP, ACCENT, FOURTH = (r["Id"] for r in SEED["Lead"])
ACME, ACME_INC = (r["Id"] for r in SEED["Account"])


@pytest.fixture()
def box() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(SEED)
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


def row(sf: Salesforce, obj: str, record_id: str) -> dict[str, Any]:
    """``GET sobjects/{obj}/{id}`` through simple-salesforce (raises its 404 exception for a deleted record)."""
    answer = sf.restful(f"sobjects/{obj}/{record_id}")
    assert isinstance(answer, dict), answer
    return answer


def request(obj: str, master: str, losers: list[str], fields: str = "") -> str:
    ids = "".join(f"<urn:recordToMergeIds>{i}</urn:recordToMergeIds>" for i in losers)
    return (f'<urn:request><urn:masterRecord xsi:type="urn1:sObject"><urn1:type>{obj}</urn1:type>'
            f"<urn1:Id>{master}</urn1:Id>{fields}</urn:masterRecord>{ids}</urn:request>")


def envelope(session: str | None, body: str) -> str:
    header = (f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader>"
              "</soapenv:Header>") if session is not None else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ENV}" '
            'xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{header}<soapenv:Body>{body}</soapenv:Body>'
            "</soapenv:Envelope>")


def post(box: SalesforceSandbox, body: str | bytes, path: str = "/services/Soap/u/59.0") -> httpx.Response:
    assert box.server is not None
    return httpx.post(box.server.url + path, content=body, headers={"Content-Type": "text/xml; charset=UTF-8",
                                                                     "SOAPAction": "merge"})


def merge(box: SalesforceSandbox, *requests: str) -> list[dict[str, Any]]:
    """Post a merge call with a fresh session; its results as dicts (the HTTP status must be 200)."""
    answer = post(box, envelope(box.access_token(), "<urn:merge>" + "".join(requests) + "</urn:merge>"))
    assert answer.status_code == HTTPStatus.OK, answer.text
    results = []
    for result in ET.fromstring(answer.content).iter(f"{NS}result"):
        results.append({
            "id": result.findtext(f"{NS}id") or None,
            "success": result.findtext(f"{NS}success"),
            "mergedRecordIds": [e.text for e in result.findall(f"{NS}mergedRecordIds")],
            "updatedRelatedIds": sorted(e.text or "" for e in result.findall(f"{NS}updatedRelatedIds")),
            "errors": [(e.findtext(f"{NS}statusCode"), e.findtext(f"{NS}message")) for e in result.findall(f"{NS}errors")],
        })
    return results


def fault(answer: httpx.Response) -> tuple[str, str]:
    """``(faultcode, faultstring)`` of a SOAP fault answer."""
    assert answer.status_code == HTTPStatus.INTERNAL_SERVER_ERROR, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    node = ET.fromstring(answer.content).find(f"{{{ENV}}}Body/{{{ENV}}}Fault")
    assert node is not None, answer.text
    return node.findtext("faultcode") or "", node.findtext("faultstring") or ""


def deleted_error(sf: Salesforce, obj: str, record_id: str) -> str:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        row(sf, obj, record_id)
    content: Any = caught.value.content  # simple-salesforce types it loosely: the parsed error list
    return str(content[0]["errorCode"])


def test_merge_deletes_the_losers_reparents_their_tasks_and_sets_the_masters_fields(
        box: SalesforceSandbox, sf: Salesforce) -> None:
    [result] = merge(box, request("Lead", ANA, [DUP, ACCENT], "<urn1:Title>VP Sales</urn1:Title>"))

    assert result == {"id": ANA, "success": "true", "mergedRecordIds": [DUP, ACCENT],
                      "updatedRelatedIds": ["00T5e0000000001EAA", "00T5e0000000002EAA"], "errors": []}
    assert deleted_error(sf, "Lead", DUP) == deleted_error(sf, "Lead", ACCENT) == "ENTITY_IS_DELETED"
    gone = sf.query_all(f"SELECT Id, IsDeleted, MasterRecordId FROM Lead WHERE Id IN ('{DUP}', '{ACCENT}') "
                        "ORDER BY Id", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"], r["MasterRecordId"]) for r in gone] == [(DUP, True, ANA), (ACCENT, True, ANA)]
    assert [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id")["records"]] == [ANA, FOURTH]
    tasks = sf.query("SELECT Id, WhoId FROM Task WHERE WhoId != null ORDER BY Id")["records"]
    assert [r["WhoId"] for r in tasks] == [ANA, ANA]
    master = row(sf, "Lead", ANA)
    assert (master["Title"], master["Email"], master["MasterRecordId"]) == ("VP Sales", "ana@acme.example", None)
    since = master["SystemModstamp"]
    assert sf.query(f"SELECT Id FROM Task WHERE SystemModstamp >= {since.replace('+0000', 'Z')}")["totalSize"] == 2


def test_merging_accounts_moves_their_contacts_opportunities_and_tasks(box: SalesforceSandbox, sf: Salesforce) -> None:
    [result] = merge(box, request("Account", ACME, [ACME_INC]))

    assert result["success"] == "true"
    assert result["updatedRelatedIds"] == ["0035e0000000001AAA", "0065e0000000001AAA", "00T5e0000000003EAA"]
    assert row(sf, "Contact", "0035e0000000001AAA")["AccountId"] == ACME
    assert row(sf, "Opportunity", "0065e0000000001AAA")["AccountId"] == ACME
    assert row(sf, "Task", "00T5e0000000003EAA")["WhatId"] == ACME
    assert deleted_error(sf, "Account", ACME_INC) == "ENTITY_IS_DELETED"


def test_three_records_to_merge_are_refused_and_nothing_changes(box: SalesforceSandbox, sf: Salesforce) -> None:
    [result] = merge(box, request("Lead", ANA, [DUP, ACCENT, FOURTH]))

    assert result["success"] == "false" and result["id"] is None
    [(code, message)] = result["errors"]
    assert code == "LIMIT_EXCEEDED" and "at most 2 records" in message and "got 3" in message
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 4
    assert row(sf, "Task", "00T5e0000000001EAA")["WhoId"] == DUP


def test_each_request_is_its_own_transaction(box: SalesforceSandbox, sf: Salesforce) -> None:
    merge(box, request("Lead", ANA, [DUP]))

    first, second = merge(box, request("Lead", ACCENT, [FOURTH]),
                          request("Lead", ANA, [DUP], "<urn1:Title>Should not stick</urn1:Title>"))

    assert first["success"] == "true" and first["mergedRecordIds"] == [FOURTH]
    assert second["success"] == "false"
    assert second["errors"] == [("ENTITY_IS_DELETED", f"entity is deleted: {DUP}")]
    assert row(sf, "Lead", ANA)["Title"] is None  # the refused request's master update was rolled back


@pytest.mark.parametrize(("master", "losers", "code"), [
    ("0035e0000000001AAA", [DUP], "INVALID_ID_FIELD"),           # a Contact id as the Lead master
    (ANA, ["00Q5e0000000099EAA"], "INVALID_CROSS_REFERENCE_KEY"),  # no such lead
    (ANA, [ANA], "INVALID_ID_FIELD"),                             # merged into itself
    (ANA, [], "MISSING_ARGUMENT"),
])
def test_refused_requests_say_why(box: SalesforceSandbox, master: str, losers: list[str], code: str) -> None:
    [result] = merge(box, request("Lead", master, losers))
    assert result["success"] == "false" and result["errors"][0][0] == code


def test_a_cycle_in_the_account_hierarchy_is_refused(box: SalesforceSandbox, sf: Salesforce) -> None:
    sf.restful(f"sobjects/Account/{ACME}", method="PATCH", json={"ParentId": ACME_INC})
    [result] = merge(box, request("Account", ACME, [ACME_INC]))
    assert result["success"] == "false" and result["errors"][0][0] == "CIRCULAR_DEPENDENCY"
    assert row(sf, "Contact", "0035e0000000001AAA")["AccountId"] == ACME_INC  # rolled back
    assert row(sf, "Account", ACME_INC)["IsDeleted"] is False


def test_malformed_xml_is_a_client_fault(box: SalesforceSandbox) -> None:
    code, message = fault(post(box, b"<soapenv:Envelope><soapenv:Body><merge>"))
    assert code == "soapenv:Client" and "could not parse the request as XML" in message
    code, message = fault(post(box, b"<notsoap/>"))
    assert code == "soapenv:Client" and "not a SOAP envelope" in message


@pytest.mark.parametrize("session", ["00D000000000001!AQnot-a-session", "", None])
def test_a_bad_or_missing_session_is_invalid_session_id(box: SalesforceSandbox, sf: Salesforce,
                                                        session: str | None) -> None:
    code, message = fault(post(box, envelope(session, "<urn:merge>" + request("Lead", ANA, [DUP]) + "</urn:merge>")))
    assert code == "sf:INVALID_SESSION_ID" and message.startswith("INVALID_SESSION_ID: Invalid Session ID")
    assert row(sf, "Lead", DUP)["IsDeleted"] is False


def test_unknown_calls_types_and_fields_are_faults(box: SalesforceSandbox) -> None:
    session = box.access_token()
    code, message = fault(post(box, envelope(session, "<urn:describeEverything/>")))
    assert (code, message) == ("soapenv:Client", "No operation available for request "
                                                 "{urn:partner.soap.sforce.com}describeEverything")
    code, _ = fault(post(box, envelope(session, "<urn:merge>" + request("Opportunity", "0065e0000000001AAA",
                                                                          ["0065e0000000001AAA"]) + "</urn:merge>")))
    assert code == "sf:INVALID_TYPE_FOR_OPERATION"
    code, _ = fault(post(box, envelope(session, "<urn:merge>" + request("Widget", ANA, [DUP]) + "</urn:merge>")))
    assert code == "sf:INVALID_TYPE"
    code, message = fault(post(box, envelope(session, "<urn:merge>" + request(
        "Lead", ANA, [DUP], "<urn1:Shoe_Size__c>44</urn1:Shoe_Size__c>") + "</urn:merge>")))
    assert code == "sf:INVALID_FIELD" and "No such column 'Shoe_Size__c' on entity 'Lead'" in message


def test_a_login_session_merges_at_the_server_url_and_the_call_is_counted(box: SalesforceSandbox) -> None:
    login = post(box, envelope(None, "<urn:login><urn:username>admin@sandbox.example</urn:username>"
                                     "<urn:password>sandbox</urn:password></urn:login>"))
    assert login.status_code == HTTPStatus.OK
    session = re.search(r"<sessionId>([^<]+)</sessionId>", login.text)
    server_url = re.search(r"<serverUrl>[^<]*(/services/Soap/u/[^<]+)</serverUrl>", login.text)
    assert session is not None and server_url is not None
    used = box.usage.used

    answer = post(box, envelope(session.group(1), "<urn:merge>" + request(
        "Lead", ANA, [DUP], "<urn1:fieldsToNull>Email</urn1:fieldsToNull>") + "</urn:merge>"), server_url.group(1))

    assert answer.status_code == HTTPStatus.OK and "<success>true</success>" in answer.text
    assert box.usage.used == used + 1 and answer.headers["sforce-limit-info"] == f"api-usage={used + 1}/100000"
    # a ledger entry is written as its answer ends, so it may land just after the client has the answer
    deadline = time.monotonic() + 5
    while not (found := [e for e in box.ledger.entries() if e.path == server_url.group(1)]):
        assert time.monotonic() < deadline, "the merge call never reached the ledger"
        time.sleep(0.01)
    entry = found[-1]
    assert (entry.path, entry.kind, entry.status, entry.records_written) == (server_url.group(1), "merge", 200, 3)
    assert box.state.records["Lead"][ANA]["Email"] is None


def test_past_the_daily_allocation_a_merge_is_refused() -> None:
    sandbox = SalesforceSandbox(SEED, daily_limit=1)
    sandbox.start()
    try:
        assert merge(sandbox, request("Lead", ANA, [DUP]))[0]["success"] == "true"
        code, _ = fault(post(sandbox, envelope(sandbox.access_token(),
                                               "<urn:merge>" + request("Lead", ANA, [ACCENT]) + "</urn:merge>")))
        assert code == "sf:REQUEST_LIMIT_EXCEEDED"
        assert sandbox.state.records["Lead"][ACCENT]["IsDeleted"] is False
    finally:
        sandbox.stop()


def test_a_merged_org_survives_a_restart(tmp_path: Any) -> None:
    path = tmp_path / "org.json"
    first = SalesforceSandbox(SEED, state_file=path)
    first.start()
    merge(first, request("Lead", ANA, [DUP]))
    first.stop()
    second = SalesforceSandbox(state_file=path)
    second.start()
    try:
        assert second.server is not None
        sf = Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=second.access_token(),
                        session=sandbox_session(second.server.url), version="59.0")
        row = sf.query_all(f"SELECT MasterRecordId FROM Lead WHERE Id = '{DUP}'", include_deleted=True)["records"][0]
        assert row["MasterRecordId"] == ANA
    finally:
        second.stop()
