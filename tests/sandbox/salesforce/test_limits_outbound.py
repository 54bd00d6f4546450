"""API usage, the daily limit, injected 429/503, state persistence and outbound messages."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sf_helpers import FakeClock, client
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

from crm_sandbox.common import FaultSettings
from crm_sandbox.salesforce import SalesforceSandbox

NS = {"soap": "http://schemas.xmlsoap.org/soap/envelope/", "om": "http://soap.sforce.com/2005/09/outbound", "sf": "urn:sobject.enterprise.soap.sforce.com"}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
ACK = b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>'


def test_api_usage_header_is_parsed(sf: Salesforce) -> None:
    sf.query("SELECT COUNT() FROM Lead")
    used = sf.api_usage["api-usage"]
    assert used.total == 100_000 and used.used >= 1
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000


def test_daily_limit_answers_403(clock: FakeClock) -> None:
    box = SalesforceSandbox(clock=clock, daily_limit=3)
    box.start()
    try:
        sf = client(box)
        for _ in range(3):
            sf.query("SELECT COUNT() FROM Lead")
        with pytest.raises(SalesforceRefusedRequest) as info:
            sf.query("SELECT COUNT() FROM Lead")
        assert info.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    finally:
        box.stop()


def test_injected_rate_limit_and_server_error(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    sandbox.faults.configure(FaultSettings(script=["rate_limit", "server_error"], retry_after=7))
    answer = sf.session.get(sf.base_url + "limits", headers=sf.headers)
    assert answer.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert answer.headers["Retry-After"] == "7"
    assert answer.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")
    with pytest.raises(SalesforceGeneralError) as info:
        sf.limits()
    assert info.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert info.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    for _ in range(200):  # the ledger records a call just after its answer is sent
        if len(sandbox.ledger.entries()) >= 2:
            break
        threading.Event().wait(0.01)
    assert sandbox.ledger.totals()["faults"] == {"rate_limit": 1, "server_error": 1}


def test_state_file_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    state = tmp_path / "org.json"
    box = SalesforceSandbox(clock=clock, state_file=state)
    box.start()
    lead_id = client(box).Lead.create({"LastName": "Kept", "Company": "C", "Relay_Id__c": "k1"})["id"]
    box.stop()
    again = SalesforceSandbox(clock=clock, state_file=state)
    again.start()
    try:
        sf = client(again)
        assert sf.Lead.get_by_custom_id("Relay_Id__c", "k1")["Id"] == lead_id
        assert sf.Lead.create({"LastName": "New", "Company": "C"})["id"] != lead_id
    finally:
        again.stop()


class Receiver:
    """A tiny SOAP receiver that refuses the first ``refuse`` deliveries, then acknowledges."""

    def __init__(self, refuse: int) -> None:
        self.bodies: list[bytes] = []
        self.refuse = refuse
        self.acked = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(body)
                if len(receiver.bodies) <= receiver.refuse:
                    self.send_response(HTTPStatus.INTERNAL_SERVER_ERROR)
                    self.end_headers()
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(ACK)))
                self.end_headers()
                self.wfile.write(ACK)
                receiver.acked.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/salesforce/outbound"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    rec = Receiver(refuse=2)
    yield rec
    rec.close()


def test_outbound_messages_are_retried_until_acknowledged(receiver: Receiver, clock: FakeClock) -> None:
    box = SalesforceSandbox(clock=clock, outbound_url=receiver.url, outbound_retry_base=0.05)
    box.start()
    try:
        sf = client(box)
        lead_id = sf.Lead.create({"LastName": "Out", "Company": "Bound", "Email": "o@b.example"}, headers={"Sforce-Auto-Assign": "FALSE"})["id"]
        sf.Account.create({"Name": "No message for accounts"})
        assert receiver.acked.wait(10)
    finally:
        box.stop()
    assert len(receiver.bodies) == 3  # two refusals, then the acknowledged delivery
    assert receiver.bodies[0] == receiver.bodies[2]  # the same message, redelivered
    root = ET.fromstring(receiver.bodies[-1])
    notifications = root.find("soap:Body/om:notifications", NS)
    assert notifications is not None
    assert notifications.findtext("om:OrganizationId", namespaces=NS, default="").startswith("00D")
    assert notifications.findtext("om:ActionId", namespaces=NS, default="").startswith("04k")
    session = notifications.find("om:SessionId", NS)
    assert session is not None and session.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
    assert "/services/Soap/c/59.0/" in notifications.findtext("om:EnterpriseUrl", namespaces=NS, default="")
    items = notifications.findall("om:Notification", NS)
    assert len(items) == 1
    sobject = items[0].find("om:sObject", NS)
    assert sobject is not None and sobject.get(XSI_TYPE) == "sf:Lead"
    assert sobject.findtext("sf:Id", namespaces=NS) == lead_id
    assert sobject.findtext("sf:Email", namespaces=NS) == "o@b.example"
    assert sobject.findtext("sf:CreatedDate", namespaces=NS) == "2026-03-02T09:30:00.123Z"
