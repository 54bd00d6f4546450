"""HubSpot webhooks into Relay: signatures checked, events stored before the 200, each once.

The signatures come from the sandbox's own signer (``crm_sandbox.hubspot.webhooks.sign_v3``),
an implementation written apart from Relay's, and the end-to-end test has the sandbox
portal deliver its webhooks to a running Relay over HTTP.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate

from connector.config.loader import load_config
from connector.crms.hubspot.webhooks import read_events, verify
from connector.crms.intake import WebhookRefused, WebhookRequest
from connector.store.migrate import open_store
from connector.web.app import create_app
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.hubspot.webhooks import WebhookSettings, sign_v3
from crm_sandbox.runner import SandboxServer
from crm_sandbox.seed import generate
from tests.web.conftest import SECRET, WEBHOOK_ENV, Relay

NOW_MS = 1_780_000_000_000


def _event(event_id: int, object_id: int = 501, kind: str = "contact.creation", **extra: Any) -> dict[str, Any]:
    return {"eventId": event_id, "subscriptionId": 100_000, "portalId": 62_515, "appId": 1_234_567,
            "occurredAt": NOW_MS - 1_000, "subscriptionType": kind, "attemptNumber": 0, "objectId": object_id,
            "changeSource": "CRM", **extra}


def _signed(url: str, body: bytes, timestamp: int = NOW_MS, secret: str = SECRET) -> WebhookRequest:
    signature = sign_v3(secret, "POST", url, body.decode(), str(timestamp))
    return WebhookRequest("POST", url, {"x-hubspot-signature-v3": signature,
                                        "x-hubspot-request-timestamp": str(timestamp)}, body)


URL = "https://relay.example.com/webhooks/hubspot"
BODY = json.dumps([_event(1)]).encode()


# --- the signature, checked against the sandbox's signer -------------------------------------------------

def test_a_request_hubspot_signed_passes() -> None:
    verify(_signed(URL, BODY), SECRET, NOW_MS)


@pytest.mark.parametrize(("request_", "code"), [
    (_signed(URL, BODY, secret="another-app"), "SIGNATURE_INVALID"),
    (WebhookRequest("POST", URL, _signed(URL, BODY).headers, BODY.replace(b"501", b"502")), "SIGNATURE_INVALID"),
    (WebhookRequest("POST", URL + "?x=1", _signed(URL, BODY).headers, BODY), "SIGNATURE_INVALID"),
    (_signed(URL, BODY, timestamp=NOW_MS - 5 * 60 * 1000 - 1), "TIMESTAMP_STALE"),
    (_signed(URL, BODY, timestamp=NOW_MS + 6 * 60 * 1000), "TIMESTAMP_STALE"),
    (WebhookRequest("POST", URL, {"x-hubspot-request-timestamp": str(NOW_MS)}, BODY), "SIGNATURE_MISSING"),
    (WebhookRequest("POST", URL, {"x-hubspot-signature-v3": "abc"}, BODY), "SIGNATURE_MISSING"),
    (WebhookRequest("POST", URL, {"x-hubspot-signature-v3": "abc", "x-hubspot-request-timestamp": "1e12"}, BODY),
     "TIMESTAMP_INVALID"),
])
def test_a_request_not_signed_by_hubspot_just_now_is_refused(request_: WebhookRequest, code: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        verify(request_, SECRET, NOW_MS)
    assert (refused.value.status, refused.value.code) == (401, code)


def test_characters_hubspot_decodes_before_signing_are_decoded_in_the_uri() -> None:
    signed_as = "https://relay.example.com/webhooks/hubspot?source=a:b"
    request = _signed(signed_as, BODY)
    verify(WebhookRequest("POST", "https://relay.example.com/webhooks/hubspot?source=a%3Ab", request.headers, BODY),
           SECRET, NOW_MS)


@pytest.mark.parametrize(("body", "status", "code", "says"), [
    (b"{not json", 400, "MALFORMED_BODY", "not JSON"),
    (b"\xff\xfe", 400, "MALFORMED_BODY", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "MALFORMED_BODY", "nests too deep"),
    (b"[NaN]", 400, "MALFORMED_EVENT", "event #0 is not an object"),
    (json.dumps([{**_event(1), "eventId": True}]).encode(), 400, "MALFORMED_EVENT", "eventId is True"),
    (json.dumps([_event(1, propertyName="p" * 5_000)]).encode(), 400, "MALFORMED_EVENT", "propertyName"),
    (b'{"eventId": 1}', 400, "MALFORMED_BODY", "expected an array"),
    (json.dumps([_event(1), {"eventId": "7"}]).encode(), 400, "MALFORMED_EVENT", "event #1: eventId"),
    (json.dumps([{**_event(1), "subscriptionType": 5}]).encode(), 400, "MALFORMED_EVENT", "subscriptionType"),
    (json.dumps([_event(i) for i in range(101)]).encode(), 413, "TOO_MANY_EVENTS", "at most 100"),
])
def test_a_malformed_batch_is_refused_naming_the_event_and_field(body: bytes, status: int, code: str,
                                                                 says: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        read_events(body)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert says in refused.value.message


def test_an_event_repeated_by_hubspot_has_one_key_and_distinct_changes_have_their_own() -> None:
    events = read_events(json.dumps([
        _event(1), {**_event(1), "attemptNumber": 1},  # a retry
        _event(1, object_id=777),  # eventId alone is not unique
        _event(2, kind="contact.propertyChange", propertyName="email", propertyValue="a@b.example"),
        _event(2, kind="contact.propertyChange", propertyName="lifecyclestage", propertyValue="lead"),
        _event(3, kind="company.creation"),
    ]).encode())
    assert len({e.key for e in events}) == 5 and events[0].key == events[1].key
    assert [(e.object, e.crm_id) for e in events][-1] == ("companies", "501")


# --- over HTTP: stored before the 200, each event once -------------------------------------------------

def test_events_are_stored_before_the_200_and_a_redelivery_adds_nothing(relay: Relay) -> None:
    body = json.dumps([_event(1), _event(2, object_id=502)]).encode()

    first = relay.post(body)
    again = relay.post(body)

    assert first.status_code == 200 and first.json() == {"received": 2, "new": 2, "repeated": 0}
    assert again.status_code == 200 and again.json() == {"received": 2, "new": 0, "repeated": 2}
    stored = relay.stored()
    assert [(e["provider"], e["connection"], e["object"], e["crm_id"], e["kind"]) for e in stored] == [
        ("hubspot", "hubspot", "contacts", "501", "contact.creation"),
        ("hubspot", "hubspot", "contacts", "502", "contact.creation")]
    assert stored[0]["event"]["eventId"] == 1


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"timestamp": int(time.time() * 1000) - 10 * 60 * 1000}, 401, "TIMESTAMP_STALE"),
    ({"headers": {"X-HubSpot-Signature-v3": "AAAA"}}, 401, "SIGNATURE_INVALID"),
    ({"headers": {"Content-Type": "text/plain"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ({"path": "/webhooks/pipedrive"}, 404, "UNKNOWN_WEBHOOK"),
    ({"path": "/webhooks/hubspot/nope"}, 404, "UNKNOWN_CONNECTION"),
])
def test_a_refused_request_gets_its_status_a_reason_and_stores_nothing(
    relay: Relay, change: dict[str, Any], status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    answer = relay.post(BODY, **change)

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert relay.stored() == []
    assert any(code in record.getMessage() for record in caplog.records)  # and a log line


def test_an_event_the_store_cannot_hold_is_refused_as_bad_not_as_a_passing_failure(relay: Relay) -> None:
    answer = relay.post(json.dumps([_event(1), {**_event(2), "portalId": 10**600}]).encode())

    assert answer.status_code == 400 and answer.json()["error"]["code"] == "UNSTORABLE_EVENT"
    assert "event_key" in answer.json()["error"]["message"]
    assert relay.stored() == []  # the batch is stored whole or not at all


def test_a_body_over_the_limit_is_refused_before_it_is_read(relay: Relay) -> None:
    big = json.dumps([_event(1, note="x" * 60_000)]).encode()
    answer = relay.post(big)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert relay.stored() == []


def test_a_named_connection_takes_its_events(relay: Relay) -> None:
    assert relay.post(BODY, path="/webhooks/hubspot/hubspot").json()["new"] == 1


def test_health_and_metrics(relay: Relay) -> None:
    relay.post(BODY)
    relay.post(BODY)
    relay.post(BODY, headers={"X-HubSpot-Signature-v3": "AAAA"})

    assert httpx.get(relay.url + "/healthz").json() == {"status": "ok"}
    metrics = httpx.get(relay.url + "/metrics").text
    assert 'relay_webhook_requests_total{connection="hubspot",kind="hubspot",outcome="accepted"} 2.0' in metrics
    assert 'relay_webhook_requests_total{connection="hubspot",kind="hubspot",outcome="SIGNATURE_INVALID"} 1.0' in metrics
    assert 'relay_webhook_events_total{connection="hubspot",kind="hubspot",result="repeated"} 1.0' in metrics


def test_health_names_a_store_that_cannot_be_reached(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=dict(os.environ, **WEBHOOK_ENV))
    server = SandboxServer(create_app(config, engine), port=0, name="relay").start()
    try:
        (tmp_path / "relay.db").unlink()
        (tmp_path / "relay.db").mkdir()  # the file is gone and a directory stands in its place
        engine.dispose()
        answer = httpx.get(server.url + "/healthz")
        assert answer.status_code == 503 and "relay.db" in answer.json()["store"]
    finally:
        server.stop()
        engine.dispose()


def test_the_sandbox_portal_delivers_to_relay_and_each_event_is_stored_once(relay: Relay) -> None:
    """HubSpot (the sandbox) sends every event twice; Relay keeps one of each."""
    portal = HubSpotSandbox(webhook_url=relay.url + "/webhooks/hubspot", client_secret=SECRET,
                            webhook_settings=WebhookSettings(duplicate_rate=1.0, flush_seconds=0.05))
    sdk = HubSpot(access_token="sandbox-token", host=portal.start().url)
    try:
        created = [sdk.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"email": f"rt{i}@example.com", "firstname": "Real", "lastname": f"Time{i}"})).id
            for i in range(3)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (portal.webhooks and portal.webhooks.idle()
                                                   and len(relay.stored()) >= 3):
            time.sleep(0.05)
    finally:
        portal.stop()

    stored = relay.stored()
    creations = [e for e in stored if e["kind"] == "contact.creation"]
    assert sorted(e["crm_id"] for e in creations) == sorted(created)
    metrics = httpx.get(relay.url + "/metrics").text
    new = _counter(metrics, 'relay_webhook_events_total{connection="hubspot",kind="hubspot",result="new"}')
    repeated = _counter(metrics, 'relay_webhook_events_total{connection="hubspot",kind="hubspot",result="repeated"}')
    assert new == len(stored) and repeated >= len(stored)  # every event came twice and was stored once


def _counter(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


def test_without_the_apps_secret_no_webhook_is_taken(tmp_path: Path) -> None:
    """The shipped relay.yaml has no client secret: nobody can sign with a default one."""
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    server = SandboxServer(create_app(load_config(env=env), engine), port=0, name="relay").start()
    try:
        for secret in ("sandbox-secret", ""):
            stamp = str(int(time.time() * 1000))
            url = server.url + "/webhooks/hubspot"
            answer = httpx.post(url, content=BODY, headers={
                "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
                "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, BODY.decode(), stamp)})
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "WEBHOOK_SECRET_MISSING"
    finally:
        server.stop()
        engine.dispose()


def test_an_association_change_is_taken_with_the_rest_of_its_batch(relay: Relay) -> None:
    association = {**_event(7, kind="contact.associationChange"), "fromObjectId": 501, "toObjectId": 9001,
                   "associationType": "CONTACT_TO_COMPANY"}
    del association["objectId"]

    answer = relay.post(json.dumps([_event(6), association]).encode())

    assert answer.status_code == 200 and answer.json()["new"] == 2
    assert [(e["kind"], e["crm_id"]) for e in relay.stored()] == [
        ("contact.creation", "501"), ("contact.associationChange", None)]


def test_paths_anyone_can_invent_do_not_grow_the_metrics(relay: Relay) -> None:
    for i in range(30):
        relay.post(BODY, path=f"/webhooks/kind{i}")
        relay.post(BODY, path=f"/webhooks/hubspot/conn{i}")
    series = [line for line in httpx.get(relay.url + "/metrics").text.splitlines()
              if line.startswith("relay_webhook_requests_total")]
    assert len(series) == 2, series  # one per (configured kind or "-", configured connection or "-", outcome)


def test_the_signature_covers_the_path_as_hubspot_sent_it_behind_a_proxy(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    app = create_app(load_config(env=dict(os.environ, **WEBHOOK_ENV)), engine, public_url="https://relay.example.com")
    server = SandboxServer(app, port=0, name="relay").start()
    try:
        path = "/webhooks/hubspot/hub%73pot?source=ads%20eu"  # neither %73 nor %20 is among what HubSpot decodes
        stamp = str(int(time.time() * 1000))
        signature = sign_v3(SECRET, "POST", "https://relay.example.com" + path, BODY.decode(), stamp)
        answer = httpx.post(server.url + path, content=BODY, headers={
            "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-v3": signature})
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
        engine.dispose()


def test_a_contact_created_in_hubspot_is_decided_and_written_back_soon_after_its_webhook(tmp_path: Path) -> None:
    """The whole way: the portal's webhook, Relay's intake, the pump's events run, the write-back."""
    portal = HubSpotSandbox(generate(seed=3, leads=20), client_secret=SECRET, webhook_url="http://127.0.0.1:9/unset",
                            webhook_settings=WebhookSettings(flush_seconds=0.05))
    portal_url = portal.start().url
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=dict(os.environ, HUBSPOT_BASE_URL=portal_url, **WEBHOOK_ENV))
    app = create_app(config, engine, decide=True)
    relay = SandboxServer(app, port=0, name="relay").start()
    assert portal.webhooks is not None
    portal.webhooks.url = relay.url + "/webhooks/hubspot"  # the portal's app now points at this Relay
    try:
        sdk = HubSpot(access_token="sandbox-token", host=portal_url)
        contact = sdk.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
            "email": "realtime@globex.example", "firstname": "Real", "lastname": "Time", "jobtitle": "VP Sales",
            "company": "Globex"})).id
        created = time.monotonic()
        owner = None
        while time.monotonic() - created < 15 and not owner:
            owner = sdk.crm.contacts.basic_api.get_by_id(contact, properties=["hubspot_owner_id"]).properties.get(
                "hubspot_owner_id")
            time.sleep(0.05)
        assert owner, "the pushed contact was not given an owner"
        written = sdk.crm.contacts.basic_api.get_by_id(contact, properties=["relay_score", "relay_routing_reason"])
        assert written.properties["relay_score"] and written.properties["relay_routing_reason"]
        assert app.state.event_pump.passes >= 1
    finally:
        relay.stop()
        app.state.event_pump.stop()
        portal.stop()
        engine.dispose()
