"""Salesforce outbound messages: the SOAP ``notifications`` a workflow or flow sends, read safely and acknowledged.

Salesforce POSTs a SOAP 1.1 envelope (``text/xml``) holding up to 100 ``Notification``
elements of one object, each with its own ``Id`` and the record's fields, and delivers it
again until the answer carries ``<Ack>true</Ack>``. Outbound messages are not signed, and
an org id is no secret: the endpoint URL carries a secret of the admin's choice
(``?token=``, the connection's ``credentials.outbound_token``, compared in constant time),
the ``OrganizationId`` must be the connection's (``organization_id``), and the XML is
parsed with ``defusedxml`` (no DTDs, no entities, so no billion laughs and no external
entities). A repeated delivery carries the same notification ids, which name the events.

A request Relay refuses gets a SOAP fault (``soapenv:Client``, or ``soapenv:Server`` when
Relay cannot store it now) with the status the web layer names, never a 500.
"""

from __future__ import annotations

import hmac
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from connector.crms import secret_text
from connector.crms.intake import WebhookEvent, WebhookRefused, WebhookRequest
from connector.crms.salesforce.settings import SalesforceConnection

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100
"""Salesforce sends at most 100 notifications per message."""
_MEDIA_TYPES = ("text/xml", "application/soap+xml")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: Element, name: str) -> Element | None:
    return next((child for child in parent if _local(child.tag) == name), None)


def _text(parent: Element, name: str) -> str | None:
    child = _child(parent, name)
    return None if child is None or child.text is None else child.text.strip()


def _notification(index: int, item: Element, org: str) -> WebhookEvent:
    notification_id = _text(item, "Id")
    record = _child(item, "sObject")
    if not notification_id or record is None:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_NOTIFICATION",
                             f"notification #{index} has no Id or no sObject")
    if len(notification_id) > 40:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_NOTIFICATION",
                             f"notification #{index}: Id {notification_id[:40]!r}... is not a notification id")
    declared = record.get(f"{{{XSI_NS}}}type") or ""
    object_name = declared.rsplit(":", 1)[-1]
    if not object_name.isidentifier() or len(object_name) > 100:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_NOTIFICATION",
                             f"notification #{index} ({notification_id}): sObject type {declared!r} is not an object")
    fields = _cells(record)
    crm_id = fields.get("Id")
    modified_by = fields.get("LastModifiedById")  # who saved the record: Relay's user means Relay's own write
    return WebhookEvent(key=f"{org}:{notification_id}", object=object_name,
                        crm_id=str(crm_id) if crm_id else None, kind=f"{object_name}.outbound",
                        payload={"notification_id": notification_id, "object": object_name, "fields": fields},
                        changed_by=modified_by if isinstance(modified_by, str) and modified_by else None)


def _cells(element: Element) -> dict[str, Any]:
    """An sObject's fields: text, None when ``xsi:nil``, and a related record (``sf:Owner``) as its own fields."""
    fields: dict[str, Any] = {}
    for cell in element:
        if cell.get(f"{{{XSI_NS}}}nil") == "true":
            fields[_local(cell.tag)] = None
        elif len(cell):
            fields[_local(cell.tag)] = _cells(cell)
        else:
            fields[_local(cell.tag)] = cell.text or ""
    return fields


def read_events(body: bytes, organization_id: str) -> list[WebhookEvent]:
    """The notifications of an outbound message from org ``organization_id`` (15 or 18 characters).

    Raises:
        WebhookRefused: 400 ``MALFORMED_XML`` / ``NOT_NOTIFICATIONS`` / ``MALFORMED_NOTIFICATION``,
            403 ``ORGANIZATION_MISMATCH``, 413 ``TOO_MANY_NOTIFICATIONS``.
    """
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError, RecursionError) as exc:
        # LookupError: an XML declaration naming an encoding Python does not know
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_XML",
                             f"the body is not a well-formed XML document Relay reads: {exc}") from None
    body_element = _child(root, "Body") if _local(root.tag) == "Envelope" else None
    notifications = _child(body_element, "notifications") if body_element is not None else None
    if notifications is None or notifications.tag != f"{{{OUTBOUND_NS}}}notifications":
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "NOT_NOTIFICATIONS",
                             "expected a SOAP envelope whose body is an outbound-message notifications element")
    org = _text(notifications, "OrganizationId") or ""
    if org[:15] != organization_id[:15]:
        raise WebhookRefused(HTTPStatus.FORBIDDEN, "ORGANIZATION_MISMATCH",
                             f"OrganizationId {org[:18]!r} is not this connection's org ({organization_id})")
    items = [child for child in notifications if _local(child.tag) == "Notification"]
    if len(items) > MAX_NOTIFICATIONS:
        raise WebhookRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "TOO_MANY_NOTIFICATIONS",
                             f"{len(items)} notifications in one message; Salesforce sends at most "
                             f"{MAX_NOTIFICATIONS}")
    return [_notification(index, item, org[:15]) for index, item in enumerate(items)]


def read_webhook(request: WebhookRequest, settings: SalesforceConnection, now_ms: int) -> list[WebhookEvent]:
    """Check and read one outbound message for the connection ``settings`` (the unit's ``read_webhook``).

    Raises:
        WebhookRefused: 415 ``UNSUPPORTED_MEDIA_TYPE`` for a body that is not XML; 503
            ``OUTBOUND_NOT_CONFIGURED`` when the connection has no outbound token or org id
            (Salesforce delivers again once they are set); 401 ``TOKEN_INVALID`` when the URL's
            ``?token=`` is not the connection's; else as :func:`read_events`.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _MEDIA_TYPES:
        raise WebhookRefused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
                             f"Content-Type {media or '(none)'!r}: outbound messages are text/xml (SOAP)")
    token = settings.credentials.outbound_token
    if token is None or not secret_text(token) or not settings.organization_id:
        missing = "credentials.outbound_token (SALESFORCE_OUTBOUND_TOKEN)" if token is None or not secret_text(
            token) else "organization_id (SALESFORCE_ORGANIZATION_ID)"
        raise WebhookRefused(HTTPStatus.SERVICE_UNAVAILABLE, "OUTBOUND_NOT_CONFIGURED",
                             f"the connection has no {missing}: outbound messages cannot be checked")
    given = parse_qs(urlsplit(request.url).query).get("token", [""])[0]
    if not hmac.compare_digest(given.encode(), secret_text(token).encode()):
        raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "TOKEN_INVALID",
                             "the endpoint URL's ?token= is missing or is not the connection's outbound_token")
    return read_events(request.body, settings.organization_id)


def reply(status: int, code: str | None, message: str | None) -> tuple[str, bytes]:
    """The SOAP answer Salesforce expects: an ``Ack`` for a stored message, else a fault naming the problem."""
    if code is None:
        inner = f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    else:
        side = "Server" if status >= 500 else "Client"
        inner = (f"<soapenv:Fault><faultcode>soapenv:{side}</faultcode>"
                 f"<faultstring>{escape(f'{code}: {message or code}')}</faultstring></soapenv:Fault>")
    envelope = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_NS}">'
                f"<soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>")
    return "text/xml; charset=utf-8", envelope.encode()
