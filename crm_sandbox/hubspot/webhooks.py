"""Signed v3 webhook deliveries of the changes made through the API.

Changes are turned into HubSpot webhook events, gathered into batches of up to
100, signed (``X-HubSpot-Signature-v3``) and POSTed from a background thread.
Failed deliveries (non-2xx or connection errors) are retried with backoff and a
growing ``attemptNumber``; with a configurable probability an event is sent
twice, as HubSpot sometimes does.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from crm_sandbox.hubspot.state import Change

log = logging.getLogger(__name__)

DEFAULT_PROPERTY_SUBSCRIPTIONS = ("email", "hubspot_owner_id", "hs_lead_status", "lifecyclestage", "dealstage", "amount")
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
_KINDS = ("creation", "deletion", "propertyChange", "merge")


def sign_v3(client_secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    """HubSpot's v3 signature: base64 HMAC-SHA256 of method + URI + body + timestamp."""
    digest = hmac.new(client_secret.encode(), f"{method}{uri}{body}{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class WebhookSettings:
    """How webhooks are delivered.

    Attributes:
        properties: property names whose changes are subscribed (``*.propertyChange``).
        duplicate_rate: probability that an event is delivered twice.
        seed: seed of the duplicate decisions.
        batch_size: events per delivery (HubSpot sends at most 100).
        flush_seconds: how long to gather events before a delivery.
        retry_delays: seconds to wait before each retry (the last repeats).
        max_attempts: deliveries tried per batch before it is dropped.
        timeout: seconds per delivery request.
    """

    properties: tuple[str, ...] = DEFAULT_PROPERTY_SUBSCRIPTIONS
    duplicate_rate: float = 0.0
    seed: int = 0
    batch_size: int = 100
    flush_seconds: float = 0.05
    retry_delays: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
    max_attempts: int = 10
    timeout: float = 5.0
    subscription_kinds: tuple[str, ...] = field(default=_KINDS)


class WebhookDispatcher:
    """Turns state changes into signed webhook deliveries on a background thread.

    Args:
        url: the target URL (also the URI that is signed).
        client_secret: the app's client secret.
        portal_id: the portal id put in every event.
        app_id: the app id put in every event.
        settings: delivery settings.
        clock: ms since the epoch, for the request timestamp.
    """

    def __init__(
        self,
        url: str,
        client_secret: str,
        portal_id: int,
        app_id: int,
        settings: WebhookSettings | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.url = url
        self.client_secret = client_secret
        self.portal_id = portal_id
        self.app_id = app_id
        self.settings = settings or WebhookSettings()
        self.clock = clock or (lambda: int(time.time() * 1000))
        self._random = random.Random(self.settings.seed)
        self._event_ids = itertools.count(1)
        self._pending: list[dict[str, Any]] = []
        self._retries: list[tuple[float, int, list[dict[str, Any]]]] = []
        self._retry_seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self.delivered_batches = 0
        self.failed_attempts = 0
        self.dropped_batches = 0
        subscriptions = [f"{s}.{k}" for s in _SINGULAR.values() for k in _KINDS]
        self._subscription_ids = {name: 100_000 + i for i, name in enumerate(subscriptions)}

    # -- events -------------------------------------------------------------------------------

    def events_for(self, change: Change) -> list[dict[str, Any]]:
        """The webhook events a change produces (none when not subscribed)."""
        singular = _SINGULAR.get(change.object_type)
        if singular is None or change.kind not in self.settings.subscription_kinds:
            return []
        if change.kind == "propertyChange" and change.property_name not in self.settings.properties:
            return []
        if change.kind == "merge" and change.object_type == "deals":
            return []
        subscription = f"{singular}.{change.kind}"
        event: dict[str, Any] = {
            "eventId": next(self._event_ids),
            "subscriptionId": self._subscription_ids[subscription],
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": change.occurred_at,
            "subscriptionType": subscription,
            "attemptNumber": 0,
            "objectId": change.object_id,
            "changeSource": "INTEGRATION",
        }
        if change.kind == "propertyChange":
            event["propertyName"] = change.property_name
            event["propertyValue"] = change.property_value if change.property_value is not None else ""
        elif change.kind == "creation":
            event["changeFlag"] = "CREATED"
        elif change.kind == "deletion":
            event["changeFlag"] = "DELETED"
        elif change.kind == "merge":
            event["primaryObjectId"] = change.object_id
            event["mergedObjectIds"] = list(change.merged_ids)
            event["newObjectId"] = change.object_id
            event["numberOfPropertiesMoved"] = 0
        return [event]

    def on_change(self, change: Change) -> None:
        """State listener: queue the events of a change."""
        events = self.events_for(change)
        if not events:
            return
        with self._cond:
            for event in events:
                self._pending.append(event)
                if self.settings.duplicate_rate and self._random.random() < self.settings.duplicate_rate:
                    self._pending.append(dict(event))
            self._cond.notify()

    # -- delivery ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread."""
        if self._thread is not None:
            return
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="hubspot-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the delivery thread (pending events are tried once more first)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def idle(self) -> bool:
        """Whether nothing is waiting to be delivered or retried."""
        with self._cond:
            return not self._pending and not self._retries and not self._in_flight

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._retries and self._retries[0][0] <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._retries)[2]
                if self._pending:
                    if not self._stop:
                        self._cond.wait(self.settings.flush_seconds)
                    batch = self._pending[: self.settings.batch_size]
                    del self._pending[: self.settings.batch_size]
                    self._in_flight += 1
                    return batch
                if self._stop:
                    return None
                wait = self._retries[0][0] - now if self._retries else None
                self._cond.wait(wait if wait is None else max(wait, 0.001))

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.timeout, trust_env=False) as client:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                try:
                    self._settle(batch, self._deliver(client, batch))
                finally:
                    with self._cond:
                        self._in_flight -= 1

    def _settle(self, batch: list[dict[str, Any]], delivered: bool) -> None:
        """Count a delivered batch, or schedule its retry with backoff (or drop it after the last try)."""
        if delivered:
            self.delivered_batches += 1
            return
        self.failed_attempts += 1
        attempt = batch[0]["attemptNumber"] + 1
        if attempt >= self.settings.max_attempts or self._stop:
            self.dropped_batches += 1
            log.warning("webhook batch of %d events dropped after %d attempts", len(batch), attempt)
            return
        delays = self.settings.retry_delays or (1.0,)
        delay = delays[min(attempt - 1, len(delays) - 1)]
        retry = [dict(event, attemptNumber=attempt) for event in batch]
        with self._cond:
            heapq.heappush(self._retries, (time.monotonic() + delay, next(self._retry_seq), retry))

    def signed_request(self, batch: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
        """The body and headers of one delivery."""
        body = json.dumps(batch, separators=(",", ":"))
        timestamp = str(self.clock())
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(self.client_secret, "POST", self.url, body, timestamp),
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Request-Timestamp": timestamp,
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nonprod)",
        }
        return body, headers

    def _deliver(self, client: httpx.Client, batch: list[dict[str, Any]]) -> bool:
        body, headers = self.signed_request(batch)
        try:
            answer = client.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            log.info("webhook delivery to %s failed: %s", self.url, exc)
            return False
        return 200 <= answer.status_code < 300
