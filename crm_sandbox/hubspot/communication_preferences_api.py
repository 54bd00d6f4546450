"""``/communication-preferences/v3``: the portal's email subscription types and each address's status.

* ``GET /definitions`` -> ``{subscriptionDefinitions: [...]}`` (:data:`~crm_sandbox.hubspot.subscriptions.SUBSCRIPTION_TYPES`);
* ``GET /status/email/{emailAddress}`` -> ``{recipient, subscriptionStatuses: [...]}``: the types the
  address has a status for (every type ``NOT_SUBSCRIBED`` with ``sourceOfStatus: PORTAL_WIDE_STATUS``
  when its contact opted out of all email);
* ``POST /unsubscribe`` and ``POST /subscribe`` ``{emailAddress, subscriptionId, legalBasis?,
  legalBasisExplanation?}`` -> the new ``PublicSubscriptionStatus``; the address's contact shows the
  opt-out as ``hs_email_optout_<subscriptionId>`` (a change like any other: modification date, history,
  webhook). A status already in force is refused (400), as HubSpot does.

The scopes these need (``communication_preferences.read`` / ``.write``) are checked before the handler
(:class:`~crm_sandbox.hubspot.HubSpotSandbox` ``denied_scopes``).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.common import call_counter
from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import endpoint, json_response, read_json
from crm_sandbox.hubspot.state import HubSpotState
from crm_sandbox.hubspot.subscriptions import (
    LEGAL_BASES,
    NOT_SUBSCRIBED,
    READ_SCOPE,
    SUBSCRIBED,
    SUBSCRIPTION_TYPES,
    WRITE_SCOPE,
    SubscriptionType,
    subscription_type,
)

BASE = "/communication-preferences/v3"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise errors.validation_error(f"Invalid email address: {value!r}", context={"emailAddress": [str(value)]})
    return value.strip().lower()


class CommunicationPreferencesApi:
    """Handlers of the communication preferences API (v3)."""

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    async def definitions(self, request: Request) -> Response:
        call_counter(request.scope).read = len(SUBSCRIPTION_TYPES)
        return json_response(HTTPStatus.OK, {"subscriptionDefinitions": [t.as_json() for t in SUBSCRIPTION_TYPES]})

    async def status(self, request: Request) -> Response:
        email = _email(request.path_params["email_address"])
        statuses = self.state.subscription_statuses(email)
        call_counter(request.scope).read = len(statuses)
        return json_response(HTTPStatus.OK, {"recipient": email, "subscriptionStatuses": statuses})

    async def subscribe(self, request: Request) -> Response:
        return await self._update(request, SUBSCRIBED)

    async def unsubscribe(self, request: Request) -> Response:
        return await self._update(request, NOT_SUBSCRIBED)

    async def _update(self, request: Request, status: str) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise errors.validation_error("Invalid input JSON: expected an object with emailAddress and subscriptionId")
        email = _email(body.get("emailAddress"))
        kind = self._kind(body.get("subscriptionId"))
        basis = body.get("legalBasis")
        if basis is not None and basis not in LEGAL_BASES:
            raise errors.validation_error(f"legalBasis must be one of {', '.join(LEGAL_BASES)}, got {basis!r}",
                                          context={"legalBasis": [str(basis)]})
        explanation = body.get("legalBasisExplanation")
        if explanation is not None and not isinstance(explanation, str):
            raise errors.validation_error("legalBasisExplanation must be a string")
        answer = self.state.set_subscription(email, kind, status, basis, explanation)
        call_counter(request.scope).written = 1
        return json_response(HTTPStatus.OK, answer)

    @staticmethod
    def _kind(value: Any) -> SubscriptionType:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
            raise errors.validation_error("subscriptionId is required: the id of a subscription definition")
        found = subscription_type(str(value).strip())
        if found is None:
            raise errors.validation_error(
                f"No subscription definition with id {value} (known: {', '.join(t.id for t in SUBSCRIPTION_TYPES)})",
                context={"subscriptionId": [str(value)]})
        return found

    def routes(self) -> list[Route]:
        kind = "preferences"
        return [
            Route(f"{BASE}/definitions", endpoint(kind)(self.definitions), methods=["GET"]),
            Route(f"{BASE}/status/email/{{email_address}}", endpoint(kind)(self.status), methods=["GET"]),
            Route(f"{BASE}/subscribe", endpoint(kind)(self.subscribe), methods=["POST"]),
            Route(f"{BASE}/unsubscribe", endpoint(kind)(self.unsubscribe), methods=["POST"]),
        ]


def required_scope(method: str, path: str) -> str | None:
    """The private-app scope a call needs, where the sandbox checks one (the communication preferences API)."""
    if not path.startswith(f"{BASE}/"):
        return None
    return READ_SCOPE if method.upper() in ("GET", "HEAD") else WRITE_SCOPE
