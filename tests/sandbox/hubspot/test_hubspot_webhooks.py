"""Signed webhook batches delivered to a local receiver, checked with the SDK's own utility."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicMergeInput,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.utils.signature import Signature
from hubspot_portal import client

from crm_sandbox.hubspot import HubSpotSandbox, WebhookSettings

SECRET = "test-secret"


@dataclass
class Receiver:
    """A local webhook endpoint answering from a script of statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for d in self.deliveries if d["status"] == HTTPStatus.OK for e in json.loads(d["body"])]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            with box.lock:
                status = box.statuses.pop(0) if box.statuses else HTTPStatus.OK
                box.deliveries.append({"path": self.path, "headers": dict(self.headers), "body": body, "status": status})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hubspot/webhooks?source=sandbox"
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def _sandbox(receiver: Receiver, **settings: Any) -> HubSpotSandbox:
    options = {"flush_seconds": 0.02, "retry_delays": (0.05,), **settings}
    return HubSpotSandbox(webhook_url=receiver.url, client_secret=SECRET, ten_second_limit=10_000,
                          webhook_settings=WebhookSettings(**options))


def _settle(box: HubSpotSandbox, receiver: Receiver, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = receiver.events()
        if len(events) >= count and box.webhooks is not None and box.webhooks.idle():
            return events
        time.sleep(0.02)
    raise AssertionError(f"expected {count} webhook events, got {receiver.events()}")


def test_changes_arrive_as_signed_v3_batches(receiver: Receiver) -> None:
    box = _sandbox(receiver)
    server = box.start()
    try:
        api = client(server).crm.contacts.basic_api
        made = api.create(SimplePublicObjectInputForCreate(properties={"email": "hook@example.com", "firstname": "H"}))
        api.update(made.id, SimplePublicObjectInput(properties={"hs_lead_status": "OPEN", "firstname": "Not subscribed"}))
        other = api.create(SimplePublicObjectInputForCreate(properties={"email": "dupe@example.com"}))
        api.merge(PublicMergeInput(primary_object_id=made.id, object_id_to_merge=other.id))
        api.archive(made.id)
        events = _settle(box, receiver, 7)
    finally:
        box.stop()
    kinds = [(e["subscriptionType"], e.get("propertyName")) for e in events]
    assert kinds == [
        ("contact.creation", None), ("contact.propertyChange", "email"),
        ("contact.propertyChange", "hs_lead_status"),
        ("contact.creation", None), ("contact.propertyChange", "email"),
        ("contact.merge", None), ("contact.deletion", None),
    ]
    status_change = events[2]
    assert status_change["propertyValue"] == "OPEN" and status_change["objectId"] == int(made.id)
    assert events[5]["mergedObjectIds"] == [int(other.id)]
    for event in events:
        assert {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "attemptNumber", "changeSource"} <= set(event)
    for delivery in receiver.deliveries:
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        assert headers["x-hubspot-signature-version"] == "v3"
        assert headers["content-type"] == "application/json"
        assert Signature.is_valid(
            signature=headers["x-hubspot-signature-v3"],
            client_secret=SECRET,
            request_body=delivery["body"],
            http_uri=receiver.url,
            http_method="POST",
            signature_version="v3",
            timestamp=headers["x-hubspot-request-timestamp"],
        )
        assert not Signature.is_valid(
            signature=headers["x-hubspot-signature-v3"], client_secret="other", request_body=delivery["body"],
            http_uri=receiver.url, signature_version="v3", timestamp=headers["x-hubspot-request-timestamp"],
        )


def test_failed_deliveries_are_retried_with_a_growing_attempt_number(receiver: Receiver) -> None:
    receiver.statuses = [HTTPStatus.INTERNAL_SERVER_ERROR, HTTPStatus.SERVICE_UNAVAILABLE]
    box = _sandbox(receiver)
    server = box.start()
    try:
        client(server).crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "r@example.com"}))
        events = _settle(box, receiver, 2)
    finally:
        box.stop()
    assert [d["status"] for d in receiver.deliveries] == [500, 503, 200]
    attempts = [[e["attemptNumber"] for e in json.loads(d["body"])] for d in receiver.deliveries]
    assert attempts == [[0, 0], [1, 1], [2, 2]]
    first_ids = [e["eventId"] for e in json.loads(receiver.deliveries[0]["body"])]
    assert [e["eventId"] for e in events] == first_ids


def test_events_can_repeat_and_batches_hold_at_most_100(receiver: Receiver) -> None:
    box = _sandbox(receiver, duplicate_rate=1.0, properties=())
    server = box.start()
    try:
        client(server).crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"firstname": str(i)}} for i in range(80)]
        ))
        events = _settle(box, receiver, 160)
    finally:
        box.stop()
    assert len(events) == 160
    assert all(len(json.loads(d["body"])) <= 100 for d in receiver.deliveries)
    ids = [e["eventId"] for e in events]
    assert len(set(ids)) == 80 and all(ids.count(i) == 2 for i in set(ids))
