"""How HubSpot says what went wrong: its error rules, its packed messages, the SDK's exceptions.

The HubSpot SDK raises an ``ApiException`` (one class per generated package) carrying
``.status``, ``.headers`` and ``.body``; urllib3 raises ``MaxRetryError``,
``ProtocolError`` and timeouts.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from connector.adapters.errors import (
    Action,
    ApiLimitExceeded,
    AuthError,
    ConfigurationError,
    CrmError,
    ErrorDialect,
    ErrorRule,
    PermissionError_,
    RateLimitedError,
    RecordError,
    RetriableError,
    classify_response,
    transport_error,
)
from connector.adapters.retry import Translator
from connector.adapters.transport import REQUESTS_TRANSIENT, URLLIB3_TRANSIENT, describe_transport

S = HTTPStatus
_RETRY, _RATE, _FAIL, _SKIP = Action.RETRY, Action.RATE_LIMITED, Action.FAIL, Action.SKIP_RECORD
_INVALID_PROPS = re.compile(r"Property values were not valid:\s*(\[.*\])", re.DOTALL)


def _hubspot_nested(message: str) -> tuple[list[str], list[str], list[str]]:
    """Codes, property names and messages HubSpot packs into 'Property values were not valid'."""
    match = _INVALID_PROPS.search(message)
    if not match:
        return [], [], []
    try:
        items = json.loads(match.group(1))
    except ValueError:
        return [], [], []
    codes, names, texts = [], [], []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            if item.get("error"):
                codes.append(str(item["error"]))
            if item.get("name"):
                names.append(str(item["name"]))
            if item.get("message"):
                texts.append(str(item["message"]))
    return codes, names, texts


DIALECT = ErrorDialect("hubspot", unpack_message=_hubspot_nested, rules=(
    ErrorRule("hubspot", S.TOO_MANY_REQUESTS, "DAILY", _FAIL, ApiLimitExceeded, "daily request limit used up"),
    ErrorRule("hubspot", S.TOO_MANY_REQUESTS, "TEN_SECONDLY_ROLLING", _RATE, RateLimitedError, "10-second window"),
    ErrorRule("hubspot", S.TOO_MANY_REQUESTS, "SECONDLY", _RATE, RateLimitedError, "search per-second limit"),
    ErrorRule("hubspot", S.UNAUTHORIZED, "INVALID_AUTHENTICATION", _FAIL, AuthError, "private-app token wrong"),
    ErrorRule("hubspot", S.UNAUTHORIZED, "EXPIRED_AUTHENTICATION", _FAIL, AuthError, "token expired"),
    ErrorRule("hubspot", S.FORBIDDEN, "MISSING_SCOPES", _FAIL, PermissionError_, "private app lacks scopes"),
    ErrorRule("hubspot", S.BAD_REQUEST, "PROPERTY_DOESNT_EXIST", _SKIP, RecordError, "property not in the portal"),
    ErrorRule("hubspot", S.BAD_REQUEST, "INVALID_EMAIL", _SKIP, RecordError, "bad email value"),
    ErrorRule("hubspot", S.BAD_REQUEST, "INVALID_INTEGER", _SKIP, RecordError, "bad number value"),
    ErrorRule("hubspot", S.BAD_REQUEST, "INVALID_OPTION", _SKIP, RecordError, "bad enumeration value"),
    ErrorRule("hubspot", S.BAD_REQUEST, "INVALID_DATE", _SKIP, RecordError, "bad date value"),
    ErrorRule("hubspot", S.BAD_REQUEST, "VALIDATION_ERROR", _SKIP, RecordError, "a property value was refused"),
    ErrorRule("hubspot", S.CONFLICT, None, _SKIP, RecordError, "duplicate (contact email, unique property)"),
    ErrorRule("hubspot", S.NOT_FOUND, "OBJECT_NOT_FOUND", _SKIP, RecordError, "record does not exist"),
    ErrorRule("hubspot", S.NOT_FOUND, None, _FAIL, ConfigurationError, "object type or endpoint missing"),
    ErrorRule("hubspot", S.LOCKED, None, _RETRY, RetriableError, "record locked by another write"),
))
"""HubSpot's own codes, tried before the rules every CRM shares (first match wins)."""


def _is_hubspot_api_exception(exc: BaseException) -> bool:
    return any(cls.__name__ == "ApiException" for cls in type(exc).__mro__) and hasattr(exc, "status")


def translate_hubspot(exc: BaseException, context: str, timeout: tuple[float, float] | None = None) -> CrmError | None:
    """Translate hubspot-api-client and urllib3 exceptions.

    Args:
        exc: What the SDK raised.
        context: What Relay was doing.
        timeout: The adapter's ``(connect, read)`` timeout, named in timeout messages.
    """
    if _is_hubspot_api_exception(exc):
        status = getattr(exc, "status", None)
        headers = getattr(exc, "headers", None)
        body = getattr(exc, "body", None)
        if not status:  # the SDK raises ApiException(status=0) for transport failures
            code, message = describe_transport(exc, timeout)
            reason = str(getattr(exc, "reason", "") or "").strip()
            if code == "CONNECTION_ERROR" and reason:
                message = f"connection failed: {reason}"
            return transport_error("hubspot", exc, context=context, code=code, message=message)
        return classify_response("hubspot", int(status), body, headers, context=context)
    if isinstance(exc, (*URLLIB3_TRANSIENT, *REQUESTS_TRANSIENT, ConnectionError, TimeoutError)):
        code, message = describe_transport(exc, timeout)
        return transport_error("hubspot", exc, context=context, code=code, message=message)
    return None


def hubspot_translator(timeout: tuple[float, float] | None = None) -> Translator:
    """:func:`translate_hubspot` for an adapter whose calls have ``timeout``."""

    def translate(exc: BaseException, context: str) -> CrmError | None:
        return translate_hubspot(exc, context, timeout)

    return translate
