"""``POST /capture/form/{source}`` over HTTP: checked, stored before the 202, decided at once by ``relay serve``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from sqlalchemy import Engine, select

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.capture import stored_submissions
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import InboxRow
from connector.web.app import create_app
from connector.web.capture import client_address
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.runner import SandboxServer
from crm_sandbox.seed import generate

SECRET = "website-form-secret-7c1d"
FORM = "/capture/form/website"


@dataclass
class Relay:
    url: str
    engine: Engine
    config: RelayConfig

    def post(self, body: Any, *, secret: str | None = SECRET, path: str = FORM,
             headers: dict[str, str] | None = None) -> httpx.Response:
        sent = {"Content-Type": "application/json", **({"X-Relay-Secret": secret} if secret else {}), **(headers or {})}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(self.url + path, content=content, headers=sent)

    def rows(self) -> list[InboxRow]:
        with session_factory(self.engine).begin() as session:
            return list(session.scalars(select(InboxRow).order_by(InboxRow.id)))


@pytest.fixture()
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    monkeypatch.setenv("RELAY_CAPTURE_WEBSITE_SECRET", SECRET)
    monkeypatch.delenv("RELAY_CAPTURE_PARTNER_SECRET", raising=False)
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config()
    config.relay.capture.sources["website"].allowed_origins = ["https://www.example.com"]
    config.relay.capture.trusted_proxies = ["127.0.0.1"]
    server = SandboxServer(create_app(config, engine), port=0, name="relay").start()
    try:
        yield Relay(server.url, engine, config)
    finally:
        server.stop()
        engine.dispose()


def test_a_post_is_stored_before_its_202_and_a_repeat_stores_nothing(relay: Relay) -> None:
    body = {"email": "Ada@Globex.example", "First Name": "Ada", "company": "Globex", "utm_source": "google",
            "consent": {"purposes": ["marketing_email"], "text": "Email me", "version": "v3"}}

    first = relay.post(body, headers={"X-Forwarded-For": "198.51.100.7"})
    again = relay.post(body)

    assert first.status_code == 202 and first.json()["new"] is True
    assert first.json()["submission"].startswith("website:sha256:") and first.json()["email"] == "ada@globex.example"
    assert again.status_code == 202 and again.json() == {**first.json(), "new": False}
    [row] = relay.rows()
    assert row.provider == "capture" and row.payload["connection"] == "hubspot" and row.payload["object"] == "contacts"
    [kept] = stored_submissions(relay.engine, source="website")
    assert kept.submission.ip == "198.51.100.7"  # from X-Forwarded-For: the peer is a trusted proxy
    assert kept.submission.person == {"first_name": "Ada", "company": "Globex"}
    assert kept.submission.consent is not None and kept.submission.consent.text == "Email me"
    metrics = httpx.get(relay.url + "/metrics").text
    assert 'relay_capture_requests_total{outcome="accepted",source="website"} 2.0' in metrics
    assert 'relay_capture_submissions_total{result="repeated",source="website"} 1.0' in metrics


def test_a_form_encoded_post_with_its_own_submission_id(relay: Relay) -> None:
    body = b"E-mail=grace%40initech.example&Job+Title=CTO&consent=newsletter&consent=sales_contact&submission_id=f-42"
    answer = relay.post(body, headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert answer.status_code == 202 and answer.json()["submission"] == "website:f-42"
    [kept] = stored_submissions(relay.engine, email="grace@initech.example")
    assert kept.submission.person == {"title": "CTO"}
    assert kept.submission.consent is not None and kept.submission.consent.purposes == ("newsletter", "sales_contact")


@pytest.mark.parametrize(("secret", "status", "code"), [
    (None, 401, "SECRET_MISSING"), ("not-the-secret", 401, "SECRET_INVALID"),
])
def test_a_post_without_the_sources_secret_is_refused(relay: Relay, secret: str | None, status: int,
                                                      code: str) -> None:
    answer = relay.post({"email": "a@b.example"}, secret=secret)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert relay.rows() == []


def test_a_source_whose_secret_is_unset_refuses_every_post_naming_the_variable(relay: Relay) -> None:
    answer = relay.post({"email": "a@b.example"}, path="/capture/form/partner")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "CAPTURE_SECRET_MISSING"
    assert "RELAY_CAPTURE_PARTNER_SECRET" in answer.json()["error"]["message"]


def test_an_unknown_source_is_404(relay: Relay) -> None:
    answer = relay.post({"email": "a@b.example"}, path="/capture/form/newsletter")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "UNKNOWN_SOURCE"
    assert "website" in answer.json()["error"]["message"]
    assert 'source="-"' in httpx.get(relay.url + "/metrics").text  # an invented path grows no label


def test_bad_fields_are_named_and_nothing_is_stored(relay: Relay) -> None:
    answer = relay.post({"E-mail": "not-an-address", "phone": "call me", "favourite_colour": "blue",
                         "utm_source": ["a"]})

    assert answer.status_code == 400 and answer.json()["error"]["code"] == "INVALID_FIELDS"
    named = {item["field"]: item["message"] for item in answer.json()["error"]["fields"]}
    assert set(named) == {"E-mail", "phone", "favourite_colour", "utm_source"}
    assert "not an email address" in named["E-mail"] and "not a phone number" in named["phone"]
    assert relay.rows() == []


def test_a_missing_email_is_named(relay: Relay) -> None:
    answer = relay.post({"first_name": "Ada"})
    assert answer.status_code == 400 and answer.json()["error"]["fields"] == [
        {"field": "email", "message": "is required"}]


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    (b"email=a@b.example", {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    (b"[1, 2]", {}, 400, "MALFORMED_BODY"),
    (b"{not json", {}, 400, "MALFORMED_BODY"),
    (json.dumps({"email": "a@b.example", "consent_text": "x" * 70_000}).encode(), {}, 413, "BODY_TOO_LARGE"),
    (b'{"email": "a@b.example"}', {"Origin": "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"),
])
def test_wrong_bodies_are_refused_with_their_status(relay: Relay, body: bytes, headers: dict[str, str], status: int,
                                                    code: str) -> None:
    answer = relay.post(body, headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert relay.rows() == []


def test_an_allowed_origin_gets_its_cors_answer(relay: Relay) -> None:
    origin = {"Origin": "https://www.example.com"}
    preflight = httpx.options(relay.url + FORM, headers={**origin, "Access-Control-Request-Method": "POST"})
    answer = relay.post({"email": "cors@example.com"}, headers=origin)

    assert preflight.status_code == 204 and "x-relay-secret" in preflight.headers["access-control-allow-headers"]
    assert answer.status_code == 202 and answer.headers["access-control-allow-origin"] == "https://www.example.com"


def test_x_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    proxies = [__import__("ipaddress").ip_network("10.0.0.0/8")]
    assert client_address("10.0.0.5", "203.0.113.1, 10.0.0.9", proxies) == "203.0.113.1"
    assert client_address("198.51.100.2", "203.0.113.1", proxies) == "198.51.100.2"  # not a proxy: its header lies
    assert client_address("10.0.0.5", "garbage, 10.0.0.9", proxies) == "10.0.0.9"


def test_a_posted_form_becomes_a_hubspot_contact_with_its_owner_and_score(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole way: the post, the inbox, the event pump's capture and events run, the write-back."""
    monkeypatch.setenv("RELAY_CAPTURE_WEBSITE_SECRET", SECRET)
    portal = HubSpotSandbox(generate(seed=3, leads=20))
    portal_url = portal.start().url
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=dict(os.environ, HUBSPOT_BASE_URL=portal_url))
    app = create_app(config, engine, decide=True)
    server = SandboxServer(app, port=0, name="relay").start()
    try:
        answer = httpx.post(server.url + FORM, json={"email": "Realtime.Form@Globex.example", "first_name": "Real",
                                                     "last_name": "Form", "company": "Globex", "title": "VP Sales"},
                            headers={"X-Relay-Secret": SECRET})
        assert answer.status_code == 202
        sdk = HubSpot(access_token="sandbox-token", host=portal_url)
        search = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                                 "value": "realtime.form@globex.example"}]}],
                  "properties": ["hubspot_owner_id", "relay_score", "relay_lead_source", "firstname"]}
        started, found = time.monotonic(), []
        while time.monotonic() - started < 15 and not (found and found[0].properties.get("hubspot_owner_id")):
            found = sdk.crm.contacts.search_api.do_search(public_object_search_request=search).results
            time.sleep(0.3)  # search allows a few calls a second
        assert len(found) == 1, "the posted person was not created once"
        shown = found[0].properties
        assert shown["hubspot_owner_id"] and shown["relay_score"], "Relay did not own and score the posted person"
        assert (shown["firstname"], shown["relay_lead_source"]) == ("Real", "Website form")
    finally:
        server.stop()
        app.state.event_pump.stop()
        portal.stop()
        engine.dispose()
