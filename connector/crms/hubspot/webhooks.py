"""HubSpot webhooks: the v3 signature checked, the batch of events read and each named once.

HubSpot POSTs a JSON array of up to 100 events to the app's target URL, signed with
``X-HubSpot-Signature-v3``: base64 of HMAC-SHA256, keyed with the app's client secret, over
the method, the URI as called, the raw body and ``X-HubSpot-Request-Timestamp`` (ms since
the epoch). A request older than 5 minutes is refused (a replay), the signatures are
compared in constant time, and URL-encoded characters HubSpot decodes before signing are
decoded in the URI first. Deliveries repeat (retries, and duplicates), and ``eventId`` alone
is not unique: an event is named by portal, subscription type, object, event id, time and
property (see API-NOTES.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from connector.crms import secret_text
from connector.crms.hubspot.settings import HubSpotConnection
from connector.crms.intake import WebhookEvent, WebhookRefused, WebhookRequest

MAX_AGE_MS = 5 * 60 * 1000
"""Requests signed longer ago than this (or this far in the future) are refused."""
MAX_EVENTS = 100
"""HubSpot sends at most 100 events per request."""
SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"

_DECODED_IN_URI = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                   "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
"""The URL-encoded characters HubSpot decodes in the URI before it signs (either case of hex digit)."""
_OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets",
            "product": "products", "line_item": "line_items", "conversation": "conversations"}
"""``subscriptionType`` prefix -> the object name Relay's mappings use."""


def signature_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot computes for a request (base64 HMAC-SHA256)."""
    message = method.encode() + _signed_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def _signed_uri(uri: str) -> str:
    if "%" not in uri:
        return uri
    out = []
    index = 0
    while index < len(uri):
        chunk = uri[index:index + 3]
        decoded = _DECODED_IN_URI.get(chunk.upper()) if chunk.startswith("%") else None
        if decoded is not None:
            out.append(decoded)
            index += 3
        else:
            out.append(uri[index])
            index += 1
    return "".join(out)


def verify(request: WebhookRequest, client_secret: str, now_ms: int) -> None:
    """Refuse ``request`` unless HubSpot signed it with ``client_secret`` less than 5 minutes ago.

    Raises:
        WebhookRefused: 401 with ``SIGNATURE_MISSING``, ``TIMESTAMP_INVALID``, ``TIMESTAMP_STALE``
            or ``SIGNATURE_INVALID``.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        missing = SIGNATURE_HEADER if not signature else TIMESTAMP_HEADER
        raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "SIGNATURE_MISSING", f"no {missing} header: not signed by HubSpot")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 16:
        raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "TIMESTAMP_INVALID",
                             f"{TIMESTAMP_HEADER} {timestamp[:40]!r} is not milliseconds since the epoch")
    age = now_ms - int(timestamp)
    if abs(age) > MAX_AGE_MS:
        when = "old" if age > 0 else "in the future"
        raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "TIMESTAMP_STALE",
                             f"signed {abs(age) // 1000} s {when}; HubSpot requests older than "
                             f"{MAX_AGE_MS // 60_000} minutes are refused (a replay)")
    expected = signature_v3(client_secret, request.method.upper(), request.url, request.body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRefused(HTTPStatus.UNAUTHORIZED, "SIGNATURE_INVALID",
                             f"{SIGNATURE_HEADER} does not match the body, the URI {request.url} and the app's "
                             "client secret")


def _event(index: int, item: Any) -> WebhookEvent:
    if not isinstance(item, Mapping):
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_EVENT", f"event #{index} is not an object")
    fields: dict[str, Any] = {}
    for name in ("eventId", "portalId", "occurredAt", "objectId", "fromObjectId", "toObjectId"):
        value = item.get(name)
        optional = name not in ("eventId", "portalId", "occurredAt")  # association changes name from/to objects
        if optional and value is None:
            continue
        if type(value) is not int:
            raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_EVENT",
                                 f"event #{index}: {name} is {value!r}, expected an integer")
        fields[name] = value
    kind = item.get("subscriptionType")
    if not isinstance(kind, str) or "." not in kind or len(kind) > 100:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_EVENT",
                             f"event #{index}: subscriptionType is {kind!r}, expected e.g. contact.creation")
    prefix = kind.split(".", 1)[0]
    prop = item.get("propertyName")
    if prop is not None and (not isinstance(prop, str) or len(prop) > 200):
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_EVENT",
                             f"event #{index}: propertyName is not a property name ({str(prop)[:40]!r}...)")
    target = fields.get("objectId", f"{fields.get('fromObjectId', '')}>{fields.get('toObjectId', '')}")
    key = ":".join(str(part) for part in (fields["portalId"], kind, target, fields["eventId"],
                                          fields["occurredAt"], prop if isinstance(prop, str) else ""))
    crm_id = str(fields["objectId"]) if "objectId" in fields else None
    # A property change names the property and its new value: Relay's own write coming back is recognised by it.
    changes = {prop: item.get("propertyValue")} if kind.endswith(".propertyChange") and isinstance(prop, str) else None
    return WebhookEvent(key=key, object=_OBJECTS.get(prefix, prefix), crm_id=crm_id, kind=kind, payload=dict(item),
                        changes=changes)


def read_events(body: bytes) -> list[WebhookEvent]:
    """The events of a HubSpot webhook body (a JSON array of up to 100 event objects).

    Raises:
        WebhookRefused: 400 ``MALFORMED_BODY`` or ``MALFORMED_EVENT`` naming the event and field,
            413 ``TOO_MANY_EVENTS``.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY", f"the body is not JSON: {exc}") from None
    except RecursionError:  # arrays or objects nested thousands deep: no event looks like that
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY", "the body nests too deep to be events") from None
    if not isinstance(data, list):
        raise WebhookRefused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY",
                             f"the body is a JSON {type(data).__name__}, expected an array of events")
    if len(data) > MAX_EVENTS:
        raise WebhookRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "TOO_MANY_EVENTS",
                             f"{len(data)} events in one request; HubSpot sends at most {MAX_EVENTS}")
    return [_event(index, item) for index, item in enumerate(data)]


def read_webhook(request: WebhookRequest, settings: HubSpotConnection, now_ms: int) -> list[WebhookEvent]:
    """Check and read one webhook request for the connection ``settings`` (the unit's ``read_webhook``).

    Raises:
        WebhookRefused: 415 ``UNSUPPORTED_MEDIA_TYPE`` for a body that is not JSON; 503 ``WEBHOOK_SECRET_MISSING`` when the connection has no client secret
            (HubSpot retries a 5xx, so nothing is lost while it is configured); else as
            :func:`verify` and :func:`read_events`.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise WebhookRefused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
                             f"Content-Type {media or '(none)'!r}: HubSpot webhooks are application/json")
    secret = settings.credentials.client_secret
    if secret is None or not secret_text(secret):
        raise WebhookRefused(HTTPStatus.SERVICE_UNAVAILABLE, "WEBHOOK_SECRET_MISSING",
                             "the connection has no credentials.client_secret (HUBSPOT_CLIENT_SECRET) to check "
                             "HubSpot's signature with")
    verify(request, secret_text(secret), now_ms)
    return read_events(request.body)
