"""Transport failures of the HTTP stacks the CRM SDKs use (requests, urllib3), in words.

Each CRM unit translates its own SDK's exceptions (``connector/crms/<crm>/errors.py``);
what they share is here: requests raises ``ConnectionError``/``Timeout``, urllib3
raises ``MaxRetryError``, ``ProtocolError`` and timeouts, and :func:`describe_transport`
reads either chain of wrappers down to what happened: refused, connect timeout, read
timeout, or another connection failure, with the server's address and the timeout in
whole words. :class:`ResponseTap` keeps the last answer's headers for SDKs that drop
them from their exceptions (so ``Retry-After`` is still honoured).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from connector.adapters.errors import (
    format_duration,
)

REQUESTS_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
URLLIB3_TRANSIENT = (
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


_TIMEOUT_IN_TEXT = re.compile(r"(connect|read) timeout=([0-9.eE+-]+)")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``reason``, exception arguments, cause, context), outermost first."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), *current.args, current.__cause__, current.__context__]
        pending.extend(e for e in inner if isinstance(e, BaseException))


def _origin(chain: list[BaseException]) -> str:
    """``scheme://host:port`` of the server the failed request went to, when the exceptions tell."""
    for error in chain:
        request = getattr(error, "request", None)
        url = getattr(request, "url", None)
        if url:
            parts = urlsplit(str(url))
            if parts.scheme and parts.netloc:
                return f"{parts.scheme}://{parts.netloc}"
    for error in chain:
        pool = getattr(error, "pool", None)
        host = getattr(pool, "host", None)
        if host:
            port = getattr(pool, "port", None)
            return f"{getattr(pool, 'scheme', 'http')}://{host}" + (f":{port}" if port else "")
    return ""


def _timeout_said(chain: list[BaseException], which: str) -> float | None:
    for error in chain:
        match = _TIMEOUT_IN_TEXT.search(str(error))
        if match and match.group(1) == which:
            try:
                return float(match.group(2))
            except ValueError:
                return None
    return None


def describe_transport(exc: BaseException, timeout: tuple[float, float] | None = None) -> tuple[str, str]:
    """What a transport failure was, as ``(code, message)``.

    Args:
        exc: A requests, urllib3 or socket exception (wrapped any number of times).
        timeout: The ``(connect, read)`` timeout the call had, when the exception does not say.

    Returns:
        ``CONNECTION_REFUSED``, ``CONNECT_TIMEOUT``, ``READ_TIMEOUT`` or ``CONNECTION_ERROR``, and a
        message such as ``no answer within 60 s from https://x.my.salesforce.com``.
    """
    chain = list(_chain(exc))
    origin = _origin(chain) or "the server"
    connect_timeout, read_timeout = timeout if timeout is not None else (None, None)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "CONNECTION_REFUSED", f"{origin} refused the connection (nothing listens there)"
    if any(isinstance(e, requests.exceptions.ConnectTimeout)
           or (isinstance(e, urllib3.exceptions.ConnectTimeoutError)
               and not isinstance(e, urllib3.exceptions.NewConnectionError)) for e in chain):
        seconds = _timeout_said(chain, "connect") or connect_timeout
        within = f" within {format_duration(seconds)}" if seconds else ""
        return "CONNECT_TIMEOUT", f"could not connect to {origin}{within}"
    if any(isinstance(e, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError)
           for e in chain):
        seconds = _timeout_said(chain, "read") or read_timeout
        within = f" within {format_duration(seconds)}" if seconds else " in time"
        return "READ_TIMEOUT", f"no answer{within} from {origin}"
    leaf = chain[-1]
    reason = str(leaf).strip() or type(leaf).__name__
    if len(reason) > 200:
        reason = reason[:200] + "..."
    return "CONNECTION_ERROR", f"connection to {origin} failed: {type(leaf).__name__}: {reason}"
