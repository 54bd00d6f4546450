"""What a CRM pushes to Relay (webhooks, outbound messages), as a CRM unit reads it.

A unit that can push changes provides ``read_webhook(request, settings, now_ms)``: it checks
that the request comes from the CRM (its signature, its age), reads the events in it and
names each logical event by a key its repeats share, or refuses the request with the HTTP
status and code the sender should get. The web layer stores the events before it answers;
nothing here touches the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WebhookRequest:
    """One request a CRM sent, as received.

    Attributes:
        method: The HTTP method (``POST``).
        url: The full URI the CRM called (scheme, host, path and query), which signatures cover.
        headers: The request headers, names in lower case.
        body: The raw body, exactly as received (signatures cover the bytes).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class WebhookEvent:
    """One change a CRM reported.

    Attributes:
        key: The logical event: a repeated delivery of the same change has the same key.
        object: The CRM object it is about (``contacts``), as Relay's mappings name it.
        crm_id: The record's id, when the event names one.
        kind: What happened, in the CRM's words (``contact.creation``, ``contact.propertyChange``).
        payload: The event as the CRM sent it.
        about: What the event is about when it names no record yet (a captured email,
            ``email:ada@example.com``): events about one thing are never decided by two
            workers at once. Defaults to the record id.
        changes: The new values the event reports, by CRM field (a HubSpot property change:
            its property and value), when it reports them. An event whose values the stored
            record already holds (typically Relay's own write coming back) is not read again.
        changed_by: The CRM user who made the change, when the event says (a Salesforce
            outbound message's ``LastModifiedById``): Relay's own user means its own write.
    """

    key: str
    object: str
    crm_id: str | None
    kind: str
    payload: Mapping[str, Any] = field(hash=False)
    about: str | None = None
    changes: Mapping[str, Any] | None = field(default=None, hash=False)
    changed_by: str | None = None


class WebhookRefused(Exception):
    """A pushed request Relay refuses: the HTTP status to answer, a code and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
