"""Turning the two SDKs' exceptions (and their transports') into Relay's errors.

simple-salesforce raises ``SalesforceError`` subclasses carrying ``.status`` and
``.content`` (the parsed body) but not the headers, so the Salesforce adapter
keeps the last answer's headers per thread (:class:`ResponseTap`) to read
``Retry-After``. requests raises ``ConnectionError``/``Timeout``. The HubSpot SDK
raises an ``ApiException`` (one class per generated package) carrying
``.status``, ``.headers`` and ``.body``; urllib3 raises ``MaxRetryError``,
``ProtocolError`` and timeouts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3.exceptions
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from connector.adapters.errors import (
    AuthError,
    CrmError,
    classify_response,
    transport_error,
)
from connector.adapters.retry import Translator

_REQUESTS_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_URLLIB3_TRANSIENT = (
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
)


class ResponseTap:
    """Remembers, per thread, the headers of the last answer a requests session received.

    Mounted as a response hook on the Salesforce session so that an error raised
    by simple-salesforce (which drops the headers) can still honour ``Retry-After``.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """The requests response hook."""
        self._local.headers = dict(response.headers)
        return response

    def last_headers(self) -> Mapping[str, str] | None:
        """Headers of the last answer on this thread (None before any)."""
        return getattr(self._local, "headers", None)

    def install(self, session: requests.Session) -> None:
        """Add the hook to ``session``."""
        session.hooks.setdefault("response", []).append(self.hook)


def salesforce_translator(last_headers: Callable[[], Mapping[str, str] | None] = lambda: None) -> Translator:
    """A translator for simple-salesforce and requests exceptions."""

    def translate(exc: BaseException, context: str) -> CrmError | None:
        if isinstance(exc, SalesforceAuthenticationFailed):
            return AuthError(exc.auth_message or str(exc), crm="salesforce", status=exc.status,
                             code=str(exc.code or ""), context=context)
        if isinstance(exc, SalesforceError):
            return classify_response("salesforce", exc.status, exc.content, last_headers(), context=context)
        if isinstance(exc, _REQUESTS_TRANSIENT + _URLLIB3_TRANSIENT):
            return transport_error("salesforce", exc, context=context)
        return None

    return translate


def _is_hubspot_api_exception(exc: BaseException) -> bool:
    return any(cls.__name__ == "ApiException" for cls in type(exc).__mro__) and hasattr(exc, "status")


def translate_hubspot(exc: BaseException, context: str) -> CrmError | None:
    """Translate hubspot-api-client and urllib3 exceptions."""
    if _is_hubspot_api_exception(exc):
        status = getattr(exc, "status", None)
        headers = getattr(exc, "headers", None)
        body = getattr(exc, "body", None)
        if not status:  # the SDK raises ApiException(status=0) for transport failures
            return transport_error("hubspot", exc, context=context)
        return classify_response("hubspot", int(status), body, headers, context=context)
    if isinstance(exc, (*_URLLIB3_TRANSIENT, *_REQUESTS_TRANSIENT, ConnectionError, TimeoutError)):
        return transport_error("hubspot", exc, context=context)
    return None
