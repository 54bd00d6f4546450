"""Salesforce outbound messages into Relay: read safely, checked against the org, stored, acknowledged.

The messages come from the sandbox's own writer (``crm_sandbox.salesforce.outbound``),
written apart from Relay's reader, and the end-to-end test has the sandbox org deliver
its outbound messages to a running Relay over HTTP.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from simple_salesforce import Salesforce

from connector.crms.intake import WebhookRefused
from connector.crms.salesforce.outbound import read_events
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.outbound import is_ack, notification_xml
from crm_sandbox.salesforce.state import ORG_ID
from crm_sandbox.salesforce.transport import sandbox_session
from tests.web.conftest import TOKEN, Relay

LEAD = {"Id": "00Q5e0000000001EAA", "LastName": "Out", "Company": "Bound", "Email": "o@b.example",
        "IsConverted": False}
URL = "http://127.0.0.1:8701"


def _message(*items: tuple[str, dict[str, object]], obj: str = "Lead") -> bytes:
    return notification_xml(obj, list(items), "04k5e0000000001AAA", URL).encode()


def _post(relay: Relay, body: bytes, media: str = "text/xml; charset=utf-8", token: str | None = TOKEN) -> httpx.Response:
    query = f"?token={token}" if token is not None else ""
    return httpx.post(relay.url + "/webhooks/salesforce" + query, content=body,
                      headers={"Content-Type": media, "SOAPAction": '""'})


def test_the_notifications_of_a_message_are_read_with_their_fields() -> None:
    other = {**LEAD, "Id": "00Q5e0000000002EAA", "Email": "second@b.example"}
    events = read_events(_message(("04l5e0000000001AAA", LEAD), ("04l5e0000000002AAA", other)), ORG_ID)

    assert [(e.object, e.crm_id, e.kind) for e in events] == [
        ("Lead", "00Q5e0000000001EAA", "Lead.outbound"), ("Lead", "00Q5e0000000002EAA", "Lead.outbound")]
    assert events[0].payload["fields"]["Email"] == "o@b.example"
    assert events[0].key == f"{ORG_ID[:15]}:04l5e0000000001AAA"
    assert read_events(_message(("04l5e0000000001AAA", LEAD)), ORG_ID[:15])[0].key == events[0].key


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>"""


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"<soapenv:Envelope", 400, "MALFORMED_XML"),
    (BILLION_LAUGHS, 400, "MALFORMED_XML"),
    (EXTERNAL, 400, "MALFORMED_XML"),
    (b'<?xml version="1.0" encoding="bogus-enc"?><a/>', 400, "MALFORMED_XML"),
    (b"<a><b/></a>", 400, "NOT_NOTIFICATIONS"),
    (_message(("04l5e0000000001AAA", LEAD)).replace(ORG_ID.encode(), b"00D000000000001AAA"), 403,
     "ORGANIZATION_MISMATCH"),
    (_message(*[(f"04l5e00000000{i:02d}AAA", LEAD) for i in range(101)]), 413, "TOO_MANY_NOTIFICATIONS"),
    (_message(("04l5e0000000001AAA", LEAD)).replace(b'xsi:type="sf:Lead"', b'xsi:type="sf:Lead Drop"'), 400,
     "MALFORMED_NOTIFICATION"),
])
def test_a_message_relay_cannot_trust_is_refused(body: bytes, status: int, code: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        read_events(body, ORG_ID)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_a_message_is_acknowledged_once_stored_and_a_redelivery_adds_nothing(relay: Relay) -> None:
    body = _message(("04l5e0000000001AAA", LEAD))

    first, again = _post(relay, body), _post(relay, body)

    assert first.status_code == again.status_code == 200
    assert is_ack(first.content) and is_ack(again.content)  # Salesforce stops delivering
    stored = relay.stored()
    assert [(e["provider"], e["connection"], e["object"], e["crm_id"]) for e in stored] == [
        ("salesforce", "salesforce", "Lead", "00Q5e0000000001EAA")]


@pytest.mark.parametrize(("body", "media", "status", "code"), [
    (b"<not xml", "text/xml", 400, "MALFORMED_XML"),
    (b'<?xml version="1.0" encoding="bogus-enc"?><a/>', "text/xml", 400, "MALFORMED_XML"),
    (BILLION_LAUGHS, "text/xml", 400, "MALFORMED_XML"),
    (_message(("04l5e0000000001AAA", LEAD)), "application/json", 415, "UNSUPPORTED_MEDIA_TYPE"),
])
def test_a_refused_message_gets_a_soap_fault_never_a_500(relay: Relay, body: bytes, media: str, status: int,
                                                         code: str) -> None:
    answer = _post(relay, body, media)

    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/xml")
    assert b"<faultcode>soapenv:Client</faultcode>" in answer.content and code.encode() in answer.content
    assert not is_ack(answer.content) and relay.stored() == []


def test_the_sandbox_org_delivers_outbound_messages_to_relay(relay: Relay) -> None:
    org = SalesforceSandbox(outbound_url=f"{relay.url}/webhooks/salesforce?token={TOKEN}", outbound_retry_base=0.05)
    server = org.start()
    try:
        sf = Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=org.access_token(),
                        session=sandbox_session(server.url), version="59.0")
        lead_id = sf.Lead.create({"LastName": "Real", "Company": "Time", "Email": "rt@time.example"},
                                 headers={"Sforce-Auto-Assign": "FALSE"})["id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not relay.stored():
            time.sleep(0.05)
        assert org.outbound is not None
        while time.monotonic() < deadline and org.outbound.pending:
            time.sleep(0.05)
        assert org.outbound.pending == 0  # acknowledged: nothing left to redeliver
    finally:
        org.stop()

    stored = relay.stored()
    assert [(e["object"], e["crm_id"]) for e in stored] == [("Lead", lead_id)]
    assert stored[0]["event"]["fields"]["Email"] == "rt@time.example"


def test_an_org_id_that_is_not_one_refuses_the_config() -> None:
    import os

    from connector.config.loader import load_config
    from connector.config.problems import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_config(env=dict(os.environ, SALESFORCE_ORGANIZATION_ID="00Dbad"))
    assert any("organization_id" in str(problem) and "00Dbad" in str(problem) for problem in refused.value.problems)


@pytest.mark.parametrize(("token", "code"), [(None, "TOKEN_INVALID"), ("guess", "TOKEN_INVALID"),
                                             (TOKEN + "x", "TOKEN_INVALID")])
def test_a_message_without_the_endpoint_token_is_refused(relay: Relay, token: str | None, code: str) -> None:
    answer = _post(relay, _message(("04l5e0000000001AAA", LEAD)), token=token)
    assert answer.status_code == 401 and code.encode() in answer.content
    assert relay.stored() == []


def test_without_a_token_or_org_configured_no_message_is_taken(tmp_path: Path) -> None:
    import os

    from connector.config.loader import load_config
    from connector.store.migrate import open_store
    from connector.web.app import create_app
    from crm_sandbox.runner import SandboxServer

    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESFORCE_", "HUBSPOT_"))}
    server = SandboxServer(create_app(load_config(env=env), engine), port=0, name="relay").start()
    try:
        answer = httpx.post(server.url + "/webhooks/salesforce?token=", content=_message(("04l5e0000000001AAA", LEAD)),
                            headers={"Content-Type": "text/xml"})
        assert answer.status_code == 503 and b"OUTBOUND_NOT_CONFIGURED" in answer.content
        assert b"soapenv:Server" in answer.content  # Salesforce delivers again once it is configured
    finally:
        server.stop()
        engine.dispose()


def test_a_related_record_in_a_notification_keeps_its_fields() -> None:
    body = _message(("04l5e0000000001AAA", LEAD)).replace(
        b"<sf:LastName>", b"<sf:Owner><sf:Name>Ana Rep</sf:Name><sf:Email>ana@x.example</sf:Email></sf:Owner>"
                          b"<sf:LastName>")
    fields = read_events(body, ORG_ID)[0].payload["fields"]
    assert fields["Owner"] == {"Name": "Ana Rep", "Email": "ana@x.example"} and fields["LastName"] == "Out"
