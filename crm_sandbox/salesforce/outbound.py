"""Outbound messages: SOAP ``notifications`` for Lead and Opportunity changes, delivered at least once.

A background thread posts batches of up to 100 notifications of one object to
the receiver and retries with exponential backoff until the answer carries
``<Ack>true</Ack>``, as Salesforce's outbound messaging does.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import deque
from typing import Any
from xml.sax.saxutils import escape

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce.describe import SOBJECTS
from crm_sandbox.salesforce.state import ORG_ID, Record
from crm_sandbox.salesforce.values import bulk_datetime

log = logging.getLogger(__name__)

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OBJECTS = ("Lead", "Opportunity")
MAX_PER_MESSAGE = 100


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) == 28 and value.endswith("+0000") and value[10] == "T":
        return bulk_datetime(value)
    return escape(str(value))


def notification_xml(obj: str, items: list[tuple[str, Record]], action_id: str, instance_url: str, version: str = "59.0") -> str:
    """The SOAP 1.1 envelope of one ``notifications`` message (items: notification id, record)."""
    fields = list(SOBJECTS[obj].fields)
    parts = []
    for notification_id, rec in items:
        cells = "".join(
            f"<sf:{name}>{_xml_value(rec[name])}</sf:{name}>" for name in fields if rec.get(name) is not None
        )
        parts.append(
            f"<Notification><Id>{notification_id}</Id>"
            f'<sObject xsi:type="sf:{obj}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{cells}</sObject>'
            "</Notification>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body>"
        f'<notifications xmlns="{OUTBOUND_NS}">'
        f"<OrganizationId>{ORG_ID}</OrganizationId>"
        f"<ActionId>{action_id}</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"<EnterpriseUrl>{escape(instance_url)}/services/Soap/c/{version}/{ORG_ID}</EnterpriseUrl>"
        f"<PartnerUrl>{escape(instance_url)}/services/Soap/u/{version}/{ORG_ID}</PartnerUrl>"
        + "".join(parts)
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    )


def is_ack(body: bytes) -> bool:
    """True when a receiver's answer acknowledges the message (``<Ack>true</Ack>``)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return False
    return any(el.tag.rsplit("}", 1)[-1] == "Ack" and (el.text or "").strip().lower() == "true" for el in root.iter())


class OutboundMessenger:
    """Delivers outbound messages to ``url`` from a background thread.

    Args:
        url: the receiver's endpoint.
        retry_base: first retry delay in seconds (doubles per attempt).
        retry_max: longest delay between attempts.
        timeout: HTTP timeout per attempt.
    """

    def __init__(self, url: str, retry_base: float = 1.0, retry_max: float = 60.0, timeout: float = 10.0) -> None:
        self.url = url
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.timeout = timeout
        self.instance_url = "https://sandbox.my.salesforce.com"
        self.action_ids = {obj: salesforce_id("04k", index + 1) for index, obj in enumerate(OBJECTS)}
        self._queue: deque[tuple[str, str, Record]] = deque()
        self._counter = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.attempts = 0
        self.delivered = 0

    def enqueue(self, obj: str, records: list[Record]) -> None:
        """Queue notifications for changed records (only Lead and Opportunity send messages)."""
        if obj not in OBJECTS:
            return
        with self._cond:
            for rec in records:
                self._counter += 1
                self._queue.append((obj, salesforce_id("04l", self._counter), dict(rec)))
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Notifications not yet acknowledged."""
        with self._cond:
            return len(self._queue)

    def start(self) -> None:
        """Start the delivery thread."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="salesforce-outbound", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the delivery thread (undelivered messages stay queued)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _next_batch(self) -> tuple[str, list[tuple[str, Record]]] | None:
        with self._cond:
            while not self._queue and not self._stop.is_set():
                self._cond.wait(0.5)
            if not self._queue:
                return None
            obj = self._queue[0][0]
            batch = [(nid, rec) for o, nid, rec in list(self._queue) if o == obj][:MAX_PER_MESSAGE]
            return obj, batch

    def _post(self, body: str) -> bool:
        self.attempts += 1
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""', "User-Agent": "Salesforce - OutboundMessaging"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return bool(answer.status == 200 and is_ack(answer.read()))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.info("outbound message to %s failed: %s", self.url, exc)
            return False

    def _run(self) -> None:
        delay = self.retry_base
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch is None:
                continue
            obj, items = batch
            if self._post(notification_xml(obj, items, self.action_ids[obj], self.instance_url)):
                done = {nid for nid, _ in items}
                with self._cond:
                    self._queue = deque(entry for entry in self._queue if entry[1] not in done)
                self.delivered += len(items)
                delay = self.retry_base
                continue
            self._stop.wait(delay)
            delay = min(delay * 2, self.retry_max)
