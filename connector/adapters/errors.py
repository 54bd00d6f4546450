"""CRM errors, classified once, as data.

Every failed call to Salesforce or HubSpot ends up here: :func:`classify_response`
looks the answer up in the CRM's :class:`ErrorDialect` and then :data:`ERROR_RULES`
(status and the CRM's own error code → what to do) and returns one of Relay's exceptions. Nothing else in Relay
interprets status codes or error bodies.

The exception tree::

    CrmError
    ├── RetriableError          429, 5xx, timeouts, connection resets (carries retry_after)
    ├── FatalError              stop the run
    │   ├── AuthError           401, INVALID_SESSION_ID, invalid_grant, INVALID_AUTHENTICATION
    │   ├── PermissionError_    403 that is not a limit
    │   ├── ConfigurationError  the request Relay built is wrong (unknown field, object, query)
    │   ├── ApiLimitExceeded    the daily API allocation is used up (REQUEST_LIMIT_EXCEEDED, DAILY)
    │   └── RunDeadlineExceeded the run used up its total time (RUN_DEADLINE_EXCEEDED)
    └── RecordError             one bad record (validation, duplicate...); the batch goes on

Every message carries the CRM's own message, so an admin reads what Salesforce
or HubSpot said. ``str(error)`` is one line, each part once::

    salesforce (connection sf-prod): query Lead: READ_TIMEOUT: no answer within 60 s from https://x.my.salesforce.com
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Literal

Crm = str
"""A CRM kind as registered by its unit (``salesforce``, ``hubspot``)."""


class Action(StrEnum):
    """What Relay does about an error."""

    RETRY = "retry"
    """Transient: try again with backoff."""
    RATE_LIMITED = "rate_limited"
    """Too many requests: wait (``Retry-After`` when given) and try again."""
    FAIL = "fail"
    """Stop the run: retrying cannot help."""
    SKIP_RECORD = "skip_record"
    """One record is bad: report it and carry on with the others."""
    REFRESH_AUTH = "refresh_auth"
    """The session expired: authenticate again once, then retry."""


class CrmError(Exception):
    """An error answered by (or on the way to) a CRM.

    Attributes:
        crm: ``salesforce`` or ``hubspot``.
        message: The CRM's own message (or the transport's).
        status: HTTP status, when there was an answer.
        code: The CRM's error code (``errorCode``, ``category``, ``error``...).
        fields: Fields the CRM named as the cause.
        action: What Relay does about it.
        context: What Relay was doing (``query Lead``, ``batch create contacts``).
        connection: The connection's name in ``config/relay.yaml`` (set by the adapter).
        attempts: How many attempts were made before giving up (set by the retry policy).
        elapsed: Seconds spent on those attempts and the waits between them (set by the retry policy).
    """

    default_action: Action = Action.FAIL

    def __init__(
        self,
        message: str,
        *,
        crm: Crm | str = "",
        status: int | None = None,
        code: str = "",
        fields: Sequence[str] = (),
        action: Action | None = None,
        context: str = "",
        connection: str = "",
    ) -> None:
        super().__init__(message)
        self.crm = crm
        self.message = message
        self.status = status
        self.code = code
        self.fields = tuple(fields)
        self.action = action or self.default_action
        self.context = context
        self.connection = connection
        self.attempts = 1
        self.elapsed: float | None = None

    def __str__(self) -> str:
        """``crm (connection NAME): context: STATUS CODE: message [fields] (after N attempts in X s)``."""
        head = str(self.crm) if self.crm else "CRM"
        if self.connection:
            head += f" (connection {self.connection})"
        parts = [head]
        if self.context and self.context != f"connection {self.connection}":
            parts.append(self.context)
        label = " ".join(str(p) for p in (self.status, self.code) if p)
        if label:
            parts.append(label)
        text = f"{': '.join(parts)}: {self.message}"
        if self.fields:
            text += f" [fields: {', '.join(self.fields)}]"
        if self.attempts > 1:
            spent = f" in {format_duration(self.elapsed)}" if self.elapsed is not None else ""
            text += f" (after {self.attempts} attempts{spent})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class RetriableError(CrmError):
    """A transient failure: 429, 5xx, a timeout or a dropped connection.

    Attributes:
        retry_after: Seconds the CRM asked Relay to wait (``Retry-After``), if it said.
    """

    default_action = Action.RETRY

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """The CRM's short-window rate limit (HTTP 429)."""

    default_action = Action.RATE_LIMITED


class FatalError(CrmError):
    """Stop the run: retrying cannot help."""


class AuthError(FatalError):
    """Credentials are wrong or the session could not be renewed."""


class PermissionError_(FatalError):  # trailing underscore: not the builtin PermissionError
    """The integration user may not do this (HTTP 403 that is not a limit)."""


class ConfigurationError(FatalError):
    """The request Relay built is wrong: unknown object, field or property; bad query."""


class ApiLimitExceeded(FatalError):
    """The daily API allocation is used up; the run stops instead of retrying for hours."""


class RunDeadlineExceeded(FatalError):
    """The run has used up its total time (``run_deadline_minutes``); it stops instead of retrying on.

    Attributes:
        run_seconds: How long the run had taken when it stopped.
        limit_seconds: The run's limit.
    """

    def __init__(self, message: str, *, run_seconds: float, limit_seconds: float, **kwargs: Any) -> None:
        kwargs.setdefault("code", "RUN_DEADLINE_EXCEEDED")
        super().__init__(message, **kwargs)
        self.run_seconds = run_seconds
        self.limit_seconds = limit_seconds


class RecordError(CrmError):
    """One record was refused; the rest of the batch is unaffected.

    Attributes:
        retriable: True when the same record may succeed later unchanged
            (a row lock, a rolled-back batch), so the writer can re-queue it.
    """

    default_action = Action.SKIP_RECORD

    def __init__(self, message: str, *, retriable: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retriable = retriable


@dataclass(frozen=True)
class ErrorRule:
    """One row of the classification table.

    Attributes:
        crm: The CRM the row is for, or ``any``.
        status: HTTP status the row matches; None matches any status.
        code: The CRM's error code the row matches; None matches any code.
        action: What Relay does.
        error: The exception raised.
        note: Why.
    """

    crm: Crm | Literal["any"]
    status: int | None
    code: str | None
    action: Action
    error: type[CrmError]
    note: str

    def matches(self, crm: str, status: int | None, code: str | None) -> bool:
        """Whether this row applies to an answer."""
        if self.crm not in ("any", crm):
            return False
        if self.status is not None and self.status != status:
            return False
        return self.code is None or (code is not None and self.code.upper() == code.upper())


S = HTTPStatus
_RETRY, _RATE, _FAIL, _SKIP, _AUTH = (
    Action.RETRY,
    Action.RATE_LIMITED,
    Action.FAIL,
    Action.SKIP_RECORD,
    Action.REFRESH_AUTH,
)

ERROR_RULES: tuple[ErrorRule, ...] = (
    # --- Both: by status ---------------------------------------------------------------------
    ErrorRule("any", S.TOO_MANY_REQUESTS, None, _RATE, RateLimitedError, "rate limited"),
    ErrorRule("any", S.REQUEST_TIMEOUT, None, _RETRY, RetriableError, "request timed out"),
    ErrorRule("any", S.UNAUTHORIZED, None, _AUTH, AuthError, "not authenticated"),
    ErrorRule("any", S.FORBIDDEN, None, _FAIL, PermissionError_, "forbidden"),
    ErrorRule("any", S.BAD_REQUEST, None, _FAIL, ConfigurationError, "request refused as malformed"),
    ErrorRule("any", S.NOT_FOUND, None, _FAIL, ConfigurationError, "not found"),
    ErrorRule("any", S.CONFLICT, None, _SKIP, RecordError, "conflict"),
    ErrorRule("any", S.INTERNAL_SERVER_ERROR, None, _RETRY, RetriableError, "server error"),
    ErrorRule("any", S.BAD_GATEWAY, None, _RETRY, RetriableError, "bad gateway"),
    ErrorRule("any", S.SERVICE_UNAVAILABLE, None, _RETRY, RetriableError, "unavailable"),
    ErrorRule("any", S.GATEWAY_TIMEOUT, None, _RETRY, RetriableError, "gateway timeout"),
)
"""The rules every CRM shares, by status. Each CRM unit adds its own, more specific rows
(:class:`ErrorDialect`); a CRM's rows are tried before these, first match wins, and an
answer's codes are tried most specific first."""


MessageUnpacker = Callable[[str], tuple[list[str], list[str], list[str]]]
"""Reads codes, field names and plain messages a CRM packs into an error message (or nothing)."""


@dataclass(frozen=True)
class ErrorDialect:
    """How one CRM says what went wrong: its own error rules and message quirks.

    Each CRM unit (``connector/crms/<crm>/errors.py``) registers one with
    :func:`register_dialect`; :func:`classify_response` and :func:`parse_error_body` use it.

    Attributes:
        crm: The CRM's kind (``salesforce``).
        rules: Rows tried before the shared :data:`ERROR_RULES` (``crm`` set to this kind).
        unpack_message: Codes, field names and messages packed into an error message
            (HubSpot's 'Property values were not valid: [...]'), when the CRM does that.
    """

    crm: str
    rules: tuple[ErrorRule, ...] = ()
    unpack_message: MessageUnpacker | None = None

    def __post_init__(self) -> None:
        wrong = [rule for rule in self.rules if rule.crm != self.crm]
        if wrong:
            raise ValueError(f"error dialect {self.crm!r} has rules for another CRM: {wrong[0]!r}")


_DIALECTS: dict[str, ErrorDialect] = {}


def register_dialect(dialect: ErrorDialect) -> None:
    """Make ``dialect`` the one used for its CRM (a CRM unit calls this when it is imported)."""
    _DIALECTS[dialect.crm] = dialect


def dialect(crm: str) -> ErrorDialect:
    """The dialect ``crm``'s unit registered (units register when imported), else an empty one."""
    return _DIALECTS.get(crm) or ErrorDialect(crm)

RETRIABLE_RECORD_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "SERVER_UNAVAILABLE",
        "REQUEST_RUNNING_TOO_LONG",
        "RATE_LIMIT",
        "RATE_LIMITS",
        "INTERNAL_ERROR",
    }
)
"""Per-record codes meaning "this record may succeed unchanged later"."""


def rule_for(crm: str, status: int | None, codes: Iterable[str] = ()) -> ErrorRule | None:
    """The first rule matching ``status`` and one of ``codes`` (tried in order), else by status.

    Args:
        crm: ``salesforce`` or ``hubspot``.
        status: HTTP status.
        codes: The answer's error codes, most specific first.

    Returns:
        The matching rule; ``None`` for statuses no rule covers (e.g. other 4xx).
    """
    rules = (*dialect(crm).rules, *ERROR_RULES)
    for code in codes:
        for rule in rules:
            if rule.code is not None and rule.matches(crm, status, code):
                return rule
    for rule in rules:
        if rule.code is None and rule.matches(crm, status, None):
            return rule
    if status is not None and status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ErrorRule("any", status, None, Action.RETRY, RetriableError, "server error")
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns:
        The wait in seconds (never negative), or None when the header is absent or unreadable.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class ErrorBody:
    """What an error answer said, whatever the CRM's shape.

    Attributes:
        message: The CRM's message.
        codes: Error codes, most specific first.
        fields: Fields or properties named as the cause.
    """

    message: str
    codes: tuple[str, ...]
    fields: tuple[str, ...]


def _decode(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        text = body.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return body
    return body


def parse_error_body(crm: str, body: Any) -> ErrorBody:
    """Read an error answer of either CRM into message, codes and fields.

    Salesforce answers a JSON list ``[{message, errorCode, fields}]`` (OAuth:
    ``{error, error_description}``); HubSpot answers ``{status, message,
    category, errors, errorType, policyName, ...}``.
    """
    data = _decode(body)
    messages: list[str] = []
    codes: list[str] = []
    fields: list[str] = []
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                if item.get("message"):
                    messages.append(str(item["message"]))
                for key in ("errorCode", "statusCode"):
                    if item.get(key):
                        codes.append(str(item[key]))
                fields.extend(str(f) for f in item.get("fields") or [] if f)
    elif isinstance(data, dict):
        message = str(data.get("message") or data.get("error_description") or "")
        unpack = dialect(crm).unpack_message
        if unpack is not None and message:
            nested_codes, names, texts = unpack(message)
            codes.extend(nested_codes)
            fields.extend(names)
            if texts:  # the CRM packed JSON into the message: keep its words, drop the escaping
                message = f"{message[: message.index('[')].rstrip()} {'; '.join(texts)}"
        if message:
            messages.append(message)
        for key in ("policyName", "errorCode", "error", "subCategory", "errorType", "category"):
            value = data.get(key)
            if isinstance(value, str) and value:
                codes.append(value)
        for item in data.get("errors") or []:
            if isinstance(item, dict):
                if item.get("code"):
                    codes.append(str(item["code"]))
                if item.get("message") and not messages:
                    messages.append(str(item["message"]))
                ctx = item.get("context")
                if isinstance(ctx, dict):
                    fields.extend(str(v) for v in ctx.get("propertyName") or [])
    elif data is not None and str(data).strip():
        messages.append(str(data).strip()[:500])
    # de-duplicate, keep order
    return ErrorBody(
        message="; ".join(dict.fromkeys(messages)),
        codes=tuple(dict.fromkeys(codes)),
        fields=tuple(dict.fromkeys(fields)),
    )


def classify_response(
    crm: Crm | str,
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    context: str = "",
) -> CrmError:
    """Turn a failed answer into Relay's exception, by the table.

    Args:
        crm: ``salesforce`` or ``hubspot``.
        status: The HTTP status.
        body: The answer's body (bytes, text or already-parsed JSON).
        headers: The answer's headers (``Retry-After`` is read from them).
        context: What Relay was doing, for the message.

    Returns:
        The exception to raise (not raised here).
    """
    parsed = parse_error_body(crm, body)
    rule = rule_for(crm, status, parsed.codes)
    message = parsed.message or f"HTTP {status} {_reason(status)} with no error message"
    code = parsed.codes[0] if parsed.codes else ""
    if rule is not None and rule.code is not None:
        code = rule.code
    kwargs: dict[str, Any] = {
        "crm": crm,
        "status": status,
        "code": code,
        "fields": parsed.fields,
        "context": context,
    }
    if rule is None:
        # Any other 4xx: the request itself is wrong; retrying the same request cannot help.
        return ConfigurationError(message, action=Action.FAIL, **kwargs)
    if issubclass(rule.error, RetriableError):
        retry_after = parse_retry_after(header(headers, "Retry-After"))
        return rule.error(message, retry_after=retry_after, action=rule.action, **kwargs)
    if issubclass(rule.error, RecordError):
        return RecordError(message, retriable=code.upper() in RETRIABLE_RECORD_CODES, action=rule.action, **kwargs)
    return rule.error(message, action=rule.action, **kwargs)


def record_error(
    crm: Crm,
    code: str,
    message: str,
    fields: Sequence[str] = (),
    *,
    status: int | None = None,
    context: str = "",
) -> RecordError:
    """The error of one record inside a batch answer (Salesforce ``errors[]``, HubSpot 207 ``errors``)."""
    return RecordError(
        message or f"record refused with {code or 'no error code'}",
        crm=crm,
        status=status,
        code=code,
        fields=fields,
        context=context,
        retriable=code.upper() in RETRIABLE_RECORD_CODES,
    )


TRANSPORT_CODES = ("CONNECTION_REFUSED", "CONNECT_TIMEOUT", "READ_TIMEOUT", "CONNECTION_ERROR")
"""Codes of failures without an answer: nothing listens; no connection in time; no answer in time; other."""
UNREACHABLE_CODES = frozenset({"CONNECTION_REFUSED", "CONNECT_TIMEOUT"})
"""Transport codes meaning the server was not reached at all (the retry policy gives these fewer attempts)."""


def transport_error(
    crm: Crm,
    exc: BaseException,
    *,
    context: str = "",
    code: str | None = None,
    message: str | None = None,
) -> RetriableError:
    """A timeout or connection failure: no answer came back, so it is worth retrying.

    Args:
        crm: ``salesforce`` or ``hubspot``.
        exc: The transport's exception.
        context: What Relay was doing.
        code: One of :data:`TRANSPORT_CODES` (guessed from ``exc`` when None).
        message: What happened, in words (``no answer within 60 s from https://...``).
    """
    if code is None:
        code = "READ_TIMEOUT" if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower() else (
            "CONNECTION_REFUSED" if isinstance(exc, ConnectionRefusedError) else "CONNECTION_ERROR")
    return RetriableError(message or f"{type(exc).__name__}: {exc}", crm=crm, code=code, context=context)


def format_duration(seconds: float | None) -> str:
    """A duration for people: ``0.5 s``, ``60 s``, ``2 min 5 s``, ``3 h 10 min`` (never 30.000000000000004 s)."""
    if seconds is None or seconds != seconds:  # None, NaN
        return "an unknown time"
    value = max(0.0, float(seconds))
    if value < 1:
        return f"{value:.2f}".rstrip("0").rstrip(".") + " s"
    if value < 10:
        return f"{value:.1f}".rstrip("0").rstrip(".") + " s"
    whole = round(value)
    if whole < 120:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 120:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header's value, whatever the case of its name (None when absent)."""
    if not headers:
        return None
    getter = getattr(headers, "get", None)
    if getter is not None:
        value = getter(name)
        if value is not None:
            return str(value)
    lowered = name.lower()
    for key, value in dict(headers).items():
        if str(key).lower() == lowered:
            return str(value)
    return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
