"""How Salesforce says what went wrong: its error rules and simple-salesforce's exceptions.

simple-salesforce raises ``SalesforceError`` subclasses carrying ``.status`` and
``.content`` (the parsed body) but not the headers, so the adapter keeps the last
answer's headers per thread (:class:`~connector.adapters.transport.ResponseTap`) to read
``Retry-After``; requests raises ``ConnectionError``/``Timeout``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus

from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from connector.adapters.errors import (
    Action,
    ApiLimitExceeded,
    AuthError,
    ConfigurationError,
    CrmError,
    ErrorDialect,
    ErrorRule,
    PermissionError_,
    RecordError,
    RetriableError,
    classify_response,
    transport_error,
)
from connector.adapters.retry import Translator
from connector.adapters.transport import REQUESTS_TRANSIENT, URLLIB3_TRANSIENT, describe_transport

S = HTTPStatus
_RETRY, _FAIL, _SKIP, _AUTH = Action.RETRY, Action.FAIL, Action.SKIP_RECORD, Action.REFRESH_AUTH

DIALECT = ErrorDialect("salesforce", rules=(
    ErrorRule("salesforce", S.UNAUTHORIZED, "INVALID_SESSION_ID", _AUTH, AuthError, "session expired: log in again once"),
    ErrorRule("salesforce", S.BAD_REQUEST, "invalid_grant", _FAIL, AuthError, "OAuth: wrong credentials or grant"),
    ErrorRule("salesforce", S.BAD_REQUEST, "invalid_client", _FAIL, AuthError, "OAuth: unknown client id/secret"),
    ErrorRule("salesforce", S.BAD_REQUEST, "invalid_client_id", _FAIL, AuthError, "OAuth: unknown client id"),
    ErrorRule("salesforce", S.BAD_REQUEST, "unsupported_grant_type", _FAIL, AuthError, "OAuth flow not enabled"),
    ErrorRule("salesforce", S.UNAUTHORIZED, "invalid_client", _FAIL, AuthError, "OAuth: unknown client"),
    ErrorRule("salesforce", S.FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", _FAIL, ApiLimitExceeded, "daily API allocation used up"),
    ErrorRule("salesforce", S.FORBIDDEN, "API_DISABLED_FOR_ORG", _FAIL, PermissionError_, "API access not enabled"),
    ErrorRule("salesforce", S.FORBIDDEN, "API_CURRENTLY_DISABLED", _FAIL, PermissionError_, "API access disabled"),
    ErrorRule("salesforce", S.FORBIDDEN, "INSUFFICIENT_ACCESS", _FAIL, PermissionError_, "integration user lacks rights"),
    ErrorRule("salesforce", S.BAD_REQUEST, "MALFORMED_QUERY", _FAIL, ConfigurationError, "SOQL Relay built is wrong"),
    ErrorRule("salesforce", S.BAD_REQUEST, "INVALID_FIELD", _FAIL, ConfigurationError, "mapped field missing in the org"),
    ErrorRule("salesforce", S.BAD_REQUEST, "INVALID_TYPE", _FAIL, ConfigurationError, "object not in the org"),
    ErrorRule("salesforce", S.BAD_REQUEST, "INVALID_QUERY_LOCATOR", _RETRY, RetriableError, "query cursor expired: rerun"),
    ErrorRule("salesforce", S.BAD_REQUEST, "INVALID_REPLICATION_DATE", _FAIL, ConfigurationError, "deleted/ window exceeded"),
    ErrorRule("salesforce", S.MULTIPLE_CHOICES, None, _SKIP, RecordError, "upsert key matches several records"),
    ErrorRule("salesforce", S.NOT_FOUND, "NOT_FOUND", _FAIL, ConfigurationError, "resource or API version missing"),
    ErrorRule("salesforce", S.SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", _RETRY, RetriableError, "org busy or in maintenance"),
    # SOAP faults (merge.py) come with HTTP 500 and the fault code: most are not worth retrying.
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "INVALID_SESSION_ID", _AUTH, AuthError, "SOAP: session expired"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "REQUEST_LIMIT_EXCEEDED", _FAIL, ApiLimitExceeded,
              "SOAP: daily API allocation used up"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "API_DISABLED_FOR_ORG", _FAIL, PermissionError_, "SOAP: API off"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "INSUFFICIENT_ACCESS", _FAIL, PermissionError_,
              "SOAP: integration user lacks rights"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "INVALID_TYPE", _FAIL, ConfigurationError, "SOAP: object not in the org"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "INVALID_TYPE_FOR_OPERATION", _FAIL, ConfigurationError,
              "SOAP: the object cannot be merged"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "INVALID_FIELD", _FAIL, ConfigurationError,
              "SOAP: mapped field missing in the org"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "UNSUPPORTED_API_VERSION", _FAIL, ConfigurationError,
              "SOAP: API version retired"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "Client", _FAIL, ConfigurationError,
              "SOAP: the envelope Relay built is malformed"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "INVALID_ID_FIELD", _SKIP, RecordError, "SOAP: a bad record id"),
    ErrorRule("salesforce", S.INTERNAL_SERVER_ERROR, "MALFORMED_ID", _SKIP, RecordError, "SOAP: a malformed record id"),
))
"""Salesforce's own codes, tried before the rules every CRM shares (first match wins)."""


def salesforce_translator(
    last_headers: Callable[[], Mapping[str, str] | None] = lambda: None,
    timeout: tuple[float, float] | None = None,
) -> Translator:
    """A translator for simple-salesforce and requests exceptions.

    Args:
        last_headers: The headers of the last answer (for ``Retry-After``).
        timeout: The adapter's ``(connect, read)`` timeout, named in timeout messages.
    """

    def translate(exc: BaseException, context: str) -> CrmError | None:
        if isinstance(exc, SalesforceAuthenticationFailed):
            return AuthError(exc.auth_message or str(exc), crm="salesforce", status=exc.status,
                             code=str(exc.code or ""), context=context)
        if isinstance(exc, SalesforceError):
            return classify_response("salesforce", exc.status, exc.content, last_headers(), context=context)
        if isinstance(exc, REQUESTS_TRANSIENT + URLLIB3_TRANSIENT):
            code, message = describe_transport(exc, timeout)
            return transport_error("salesforce", exc, context=context, code=code, message=message)
        return None

    return translate
