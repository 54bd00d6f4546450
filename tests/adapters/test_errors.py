"""The error table: every row, and the answers each CRM really sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connector.adapters.errors import (
    ERROR_RULES,
    Action,
    ApiLimitExceeded,
    AuthError,
    ConfigurationError,
    ErrorRule,
    PermissionError_,
    RateLimitedError,
    RecordError,
    RetriableError,
    classify_response,
    parse_error_body,
    parse_retry_after,
    record_error,
    rule_for,
)
from connector.crms.hubspot.errors import DIALECT as HUBSPOT
from connector.crms.hubspot.errors import translate_hubspot
from connector.crms.salesforce.errors import DIALECT as SALESFORCE
from connector.crms.salesforce.errors import salesforce_translator


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def body_for(crm: str, code: str | None, message: str) -> Any:
    """An error body in the CRM's own shape carrying ``code``."""
    if crm == "salesforce":
        if code and code.islower():  # OAuth errors
            return {"error": code, "error_description": message}
        return [{"message": message, "errorCode": code or "SOMETHING_UNLISTED"}]
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": "c-1"}
    if code in ("DAILY", "TEN_SECONDLY_ROLLING", "SECONDLY"):
        body.update(errorType="RATE_LIMIT", policyName=code)
    elif code:
        body["category"] = code
    return body


def _reachable_crm(rule: ErrorRule) -> str:
    candidates = ["salesforce", "hubspot"] if rule.crm == "any" else [rule.crm]
    for crm in candidates:
        codes = [rule.code] if rule.code else ["SOMETHING_UNLISTED"]
        if rule_for(crm, rule.status, codes) is rule:
            return crm
    raise AssertionError(f"rule {rule} is shadowed by an earlier row for every CRM")


@pytest.mark.parametrize("rule", (*SALESFORCE.rules, *HUBSPOT.rules, *ERROR_RULES), ids=lambda r: f"{r.crm}-{r.status}-{r.code}")
def test_every_row_of_the_table_is_reachable_and_builds_its_error(rule: ErrorRule) -> None:
    crm = _reachable_crm(rule)
    assert rule.status is not None
    error = classify_response(crm, rule.status, json.dumps(body_for(crm, rule.code, "the CRM said so")),
                              {"Retry-After": "3"}, context="query Lead")
    assert type(error) is rule.error
    assert error.action is rule.action
    assert error.status == rule.status
    assert "the CRM said so" in str(error)
    assert "query Lead" in str(error)
    if rule.code:
        assert error.code == rule.code
    if isinstance(error, RetriableError):
        assert error.retry_after == 3.0


def test_salesforce_rate_limit_429_is_retried_but_the_daily_403_is_fatal() -> None:
    body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    short = classify_response("salesforce", HTTPStatus.TOO_MANY_REQUESTS, body, {"retry-after": "2"})
    daily = classify_response("salesforce", HTTPStatus.FORBIDDEN, body, {})
    assert isinstance(short, RateLimitedError) and short.retry_after == 2.0
    assert isinstance(daily, ApiLimitExceeded) and not isinstance(daily, RetriableError)
    assert "TotalRequests Limit exceeded." in str(daily)


def test_hubspot_daily_limit_is_fatal_and_ten_secondly_is_rate_limited() -> None:
    daily = classify_response("hubspot", 429, body_for("hubspot", "DAILY", "You have reached your daily limit."))
    window = classify_response("hubspot", 429, body_for("hubspot", "TEN_SECONDLY_ROLLING", "ten_secondly_rolling"))
    assert isinstance(daily, ApiLimitExceeded)
    assert isinstance(window, RateLimitedError) and window.action is Action.RATE_LIMITED


def test_hubspot_invalid_property_names_the_property_and_code() -> None:
    nested = [{"isValid": False, "message": 'Property "foo" does not exist', "error": "PROPERTY_DOESNT_EXIST",
               "name": "foo"}]
    body = {"status": "error", "message": f"Property values were not valid: {json.dumps(nested)}",
            "correlationId": "x", "category": "VALIDATION_ERROR"}
    error = classify_response("hubspot", 400, json.dumps(body).encode())
    assert isinstance(error, RecordError)
    assert error.code == "PROPERTY_DOESNT_EXIST"
    assert error.fields == ("foo",)
    assert 'Property "foo" does not exist' in str(error)


def test_expired_salesforce_session_asks_for_a_new_login() -> None:
    body = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    error = classify_response("salesforce", 401, body)
    assert isinstance(error, AuthError) and error.action is Action.REFRESH_AUTH


def test_unlisted_client_errors_are_configuration_errors_and_unlisted_5xx_are_retried() -> None:
    teapot = classify_response("hubspot", 418, {"message": "short and stout"})
    weird = classify_response("salesforce", 599, "gateway ate it")
    assert isinstance(teapot, ConfigurationError) and "short and stout" in str(teapot)
    assert isinstance(weird, RetriableError) and "gateway ate it" in str(weird)


def test_a_body_without_message_still_says_what_happened() -> None:
    error = classify_response("hubspot", 403, b"")
    assert isinstance(error, PermissionError_)
    assert "403" in str(error) and "Forbidden" in str(error)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0.5", 0.5), (" 12 ", 12.0), ("-3", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0


def test_record_errors_know_which_codes_may_succeed_later() -> None:
    assert record_error("salesforce", "UNABLE_TO_LOCK_ROW", "locked").retriable
    assert not record_error("salesforce", "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]",
                            ["LastName"]).retriable


def test_parse_error_body_reads_both_shapes() -> None:
    sf = parse_error_body("salesforce", [{"message": "bad", "errorCode": "INVALID_FIELD", "fields": ["Foo__c"]}])
    hs = parse_error_body("hubspot", {"message": "nope", "category": "CONFLICT", "errors": [{"message": "x", "code": "Y"}]})
    assert sf.codes == ("INVALID_FIELD",) and sf.fields == ("Foo__c",) and sf.message == "bad"
    assert hs.codes[:2] == ("Y", "CONFLICT") or set(hs.codes) == {"Y", "CONFLICT"}
    assert hs.message == "nope"


# --- SDK exceptions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (SalesforceMalformedRequest("u", 400, "query", _json([{"message": "unexpected token: FORM",
                                                          "errorCode": "MALFORMED_QUERY"}])), ConfigurationError),
        (SalesforceExpiredSession("u", 401, "query", _json([{"message": "Session expired or invalid",
                                                       "errorCode": "INVALID_SESSION_ID"}])), AuthError),
        (SalesforceRefusedRequest("u", 403, "query", _json([{"message": "TotalRequests Limit exceeded.",
                                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}])), ApiLimitExceeded),
        (SalesforceGeneralError("u", 503, "query", _json([{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}])),
         RetriableError),
        (SalesforceAuthenticationFailed("invalid_grant", "authentication failure"), AuthError),
        (requests.exceptions.ConnectionError("reset by peer"), RetriableError),
        (requests.exceptions.ReadTimeout("slow"), RetriableError),
    ],
)
def test_simple_salesforce_exceptions_become_relay_errors(exc: Exception, expected: type) -> None:
    error = salesforce_translator()(exc, "query Lead")
    assert type(error) is expected
    assert error is not None and error.crm == "salesforce"


def test_salesforce_translator_reads_retry_after_from_the_last_answer() -> None:
    translate = salesforce_translator(lambda: {"Retry-After": "4"})
    exc = SalesforceGeneralError("u", 429, "query", _json([{"message": "slow down", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
    error = translate(exc, "query Lead")
    assert isinstance(error, RateLimitedError) and error.retry_after == 4.0


def test_unrelated_exceptions_are_not_translated() -> None:
    assert salesforce_translator()(KeyError("x"), "") is None
    assert translate_hubspot(KeyError("x"), "") is None


class _FakeHttpResponse:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.reason = HTTPStatus(status).phrase
        self.data = body
        self._headers = headers

    def getheaders(self) -> dict[str, str]:
        return self._headers


def test_hubspot_api_exceptions_of_any_generated_package_become_relay_errors() -> None:
    from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
    from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

    body = json.dumps({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                       "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}).encode()
    limited = ObjectsApiException(http_resp=_FakeHttpResponse(429, body, {"Retry-After": "1"}))
    conflict = PropertiesApiException(http_resp=_FakeHttpResponse(409, b'{"message": "Property exists"}', {}))
    transport = ObjectsApiException(status=0, reason="SSLError")
    rate = translate_hubspot(limited, "search contacts")
    assert isinstance(rate, RateLimitedError) and rate.retry_after == 1.0 and "ten_secondly" in str(rate)
    assert isinstance(translate_hubspot(conflict, "create property"), RecordError)
    assert isinstance(translate_hubspot(transport, "x"), RetriableError)


def test_urllib3_failures_are_retriable() -> None:
    import urllib3.exceptions

    refused = urllib3.exceptions.MaxRetryError(None, "/crm/v3", ConnectionRefusedError("refused"))  # type: ignore[arg-type]
    error = translate_hubspot(refused, "list contacts")
    assert isinstance(error, RetriableError) and error.code == "CONNECTION_REFUSED"
    reset = translate_hubspot(urllib3.exceptions.ProtocolError("reset"), "")
    assert isinstance(reset, RetriableError) and reset.code == "CONNECTION_ERROR"
