"""HubSpot's error answers, in the shapes the real API sends.

Every error the sandbox returns goes through :class:`HubSpotError`, so that a
handler can ``raise`` anywhere and the app turns it into HubSpot's JSON body
``{status: "error", message, correlationId, category, ...}``.
"""

from __future__ import annotations

import json
import uuid
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


#: The correlation id of the request being answered (set by the sandbox for each request).
CURRENT_CORRELATION_ID: ContextVar[str | None] = ContextVar("hubspot_correlation_id", default=None)


def correlation_id() -> str:
    """The correlation id of the current request, as HubSpot puts in every error body.

    It is the one sent in the ``X-HubSpot-Correlation-Id`` header; outside a request, a fresh UUID.
    """
    return CURRENT_CORRELATION_ID.get() or str(uuid.uuid4())


class HubSpotError(Exception):
    """An error answer: HTTP status plus HubSpot's JSON body.

    Args:
        status: the HTTP status.
        message: the human-readable message.
        category: HubSpot's error category (VALIDATION_ERROR, OBJECT_NOT_FOUND, CONFLICT, ...).
        extra: further keys of the body (``errors``, ``context``, ``subCategory``...).
        headers: extra response headers.
    """

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.category = category
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
        }
        body.update(self.extra)
        body["category"] = self.category
        return body


def validation_error(message: str, **extra: Any) -> HubSpotError:
    """A 400 VALIDATION_ERROR."""
    return HubSpotError(HTTPStatus.BAD_REQUEST, message, "VALIDATION_ERROR", extra or None)


def not_found(message: str, context: dict[str, list[str]] | None = None) -> HubSpotError:
    """A 404 OBJECT_NOT_FOUND."""
    return HubSpotError(HTTPStatus.NOT_FOUND, message, "OBJECT_NOT_FOUND", {"context": context} if context else None)


def conflict(message: str) -> HubSpotError:
    """A 409 CONFLICT (e.g. ``Contact already exists. Existing ID: 123``)."""
    return HubSpotError(HTTPStatus.CONFLICT, message, "CONFLICT")


def unauthenticated() -> HubSpotError:
    """The 401 HubSpot answers for a missing or unknown token."""
    return HubSpotError(HTTPStatus.UNAUTHORIZED, AUTH_MESSAGE, "INVALID_AUTHENTICATION")


def property_errors(problems: list[dict[str, Any]], portal_id: int) -> HubSpotError:
    """The 400 ``Property values were not valid: [...]`` answer for invalid property values.

    Args:
        problems: one dict per bad value with ``name``, ``error`` (code) and ``message``,
            optionally ``propertyValue``.
        portal_id: the portal (hub) id, echoed in every item as HubSpot does.
    """
    items = []
    for problem in problems:
        item: dict[str, Any] = {
            "isValid": False,
            "message": problem["message"],
            "error": problem["error"],
            "name": problem["name"],
            "localizedErrorMessage": problem["message"],
        }
        if "propertyValue" in problem:
            item["propertyValue"] = problem["propertyValue"]
        item["portalId"] = portal_id
        items.append(item)
    message = "Property values were not valid: " + json.dumps(items, separators=(",", ":"))
    errors = [
        {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
        for p in problems
    ]
    return validation_error(message, errors=errors)


SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
    "here: https://developers.hubspot.com/scopes."
)


def missing_scopes(scopes: list[str]) -> HubSpotError:
    """The 403 HubSpot answers a token whose app lacks a scope the call needs (``category: MISSING_SCOPES``)."""
    return HubSpotError(HTTPStatus.FORBIDDEN, SCOPES_MESSAGE, "MISSING_SCOPES", {
        "errors": [{"message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": list(scopes)}}],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
    })


def rate_limit_body(policy: str) -> dict[str, Any]:
    """The JSON body of a 429 for a rate-limit policy (TEN_SECONDLY_ROLLING, DAILY, SECONDLY)."""
    names = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "DAILY": "daily", "SECONDLY": "secondly"}
    return {
        "status": "error",
        "message": f"You have reached your {names.get(policy, policy.lower())} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
    }


def batch_error(
    status: str,
    category: str,
    message: str,
    context: dict[str, list[str]],
    sub_category: str | None = None,
) -> dict[str, Any]:
    """One item of the ``errors`` list of a 207 multi-status batch answer.

    It carries every key the SDK's ``StandardError`` model requires
    (status, category, message, context, errors, links).
    """
    item: dict[str, Any] = {
        "status": status,
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }
    if sub_category:
        item["subCategory"] = sub_category
    return item
