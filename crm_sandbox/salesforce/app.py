"""The Starlette app: login, the SOAP API, the versioned REST and Bulk resources, API usage and limits."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.common import ASGIApp, ErrorAnswer, Message, Receive, Scope, Send
from crm_sandbox.salesforce.auth import Credentials, token_endpoint
from crm_sandbox.salesforce.compression import compressed
from crm_sandbox.salesforce.errors import SalesforceError, invalid_session, not_found
from crm_sandbox.salesforce.http import Ctx, Router, error_answer, json_answer
from crm_sandbox.salesforce.soap import SoapApi
from crm_sandbox.salesforce.state import Org

_VERSION_RE = re.compile(r"^v(\d{2,3}\.\d)(?:/(.*))?$")
_COUNTED = ("/services/data/", "/services/async/")
OLDEST_VERSION = 31
"""Versions 21.0-30.0 are retired since Summer '25 (7.0-20.0 since Summer '22); 31.0 and later are served.
https://developer.salesforce.com/docs/platform/connect-rest-api/guide/intro_api_eol.html"""
LATEST_VERSION = 64


def release_label(version: int) -> str:
    """The release name of an API version: 31 is Summer '14, 59 Winter '24, 64 Summer '25."""
    season = ("Summer", "Winter", "Spring")[(version - OLDEST_VERSION) % 3]
    year = 14 + (version - OLDEST_VERSION + 2) // 3
    return f"{season} '{year:02d}"


KNOWN_VERSIONS = tuple(f"{v}.0" for v in range(OLDEST_VERSION, LATEST_VERSION + 1))
_LABELS = {f"{v}.0": release_label(v) for v in range(OLDEST_VERSION, LATEST_VERSION + 1)}


class ApiUsage:
    """Counts the API calls of the day against the daily allocation."""

    def __init__(self, daily_limit: int) -> None:
        self.daily_limit = daily_limit
        self.used = 0
        self._lock = threading.Lock()

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` value."""
        return f"api-usage={self.used}/{self.daily_limit}"

    def on_request(self, scope: Scope) -> ErrorAnswer | None:
        """Count a call; past the allocation answer 403 REQUEST_LIMIT_EXCEEDED."""
        path: str = scope.get("path", "")
        if not path.startswith(_COUNTED) or path.rstrip("/") == "/services/data":
            return None
        with self._lock:
            if self.used >= self.daily_limit:
                return (
                    HTTPStatus.FORBIDDEN,
                    {"Sforce-Limit-Info": self.header()},
                    [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                )
            self.used += 1
        return None

    def take(self) -> bool:
        """Count one call the path does not tell (a SOAP call other than ``login``); False past the allocation."""
        with self._lock:
            if self.used >= self.daily_limit:
                return False
            self.used += 1
            return True

    def rate_limited(self, retry_after: float) -> ErrorAnswer:
        """The answer to an injected rate limit (429 with ``Retry-After``)."""
        return (
            HTTPStatus.TOO_MANY_REQUESTS,
            {"Retry-After": str(max(round(retry_after), 0)), "Sforce-Limit-Info": self.header()},
            [{"message": "Too many requests: the concurrent request limit for this org was exceeded. Retry later.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        )

    def server_error(self) -> ErrorAnswer:
        """The answer to an injected server error (503 SERVER_UNAVAILABLE)."""
        return (
            HTTPStatus.SERVICE_UNAVAILABLE,
            {"Sforce-Limit-Info": self.header()},
            [{"message": "Server temporarily unavailable. Please try again later.", "errorCode": "SERVER_UNAVAILABLE"}],
        )


class LimitInfoHeader:
    """ASGI wrapper adding ``Sforce-Limit-Info`` to every answer."""

    def __init__(self, app: ASGIApp, usage: ApiUsage) -> None:
        self.app = app
        self.usage = usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"sforce-limit-info"]
                headers.append((b"sforce-limit-info", self.usage.header().encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_header)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def build_app(
    org: Org,
    router: Router,
    usage: ApiUsage,
    creds: Credentials,
    api_version_min: str = "31.0",
) -> ASGIApp:
    """The Salesforce app (without the sandbox middleware)."""
    min_version = float(api_version_min)

    async def versions(request: Request) -> Response:
        return json_answer([
            {"label": _LABELS.get(v, v), "url": f"/services/data/v{v}", "version": v}
            for v in KNOWN_VERSIONS
            if float(v) >= min_version
        ])

    async def token(request: Request) -> Response:
        return await token_endpoint(request, org, creds)

    soap_api = SoapApi(org, usage, OLDEST_VERSION)

    async def soap(request: Request) -> Response:  # login, merge... (soap.py)
        return await soap_api.dispatch(request, request.path_params["version"])

    async def data(request: Request) -> Response:
        rest: str = request.path_params["rest"]
        try:
            match = _VERSION_RE.match(rest)
            if match is not None and float(match.group(1)) < OLDEST_VERSION:
                raise SalesforceError(  # "REST API returns the 410:GONE error code" for retired versions
                    HTTPStatus.GONE,
                    "UNSUPPORTED_API_VERSION",
                    f"API version {match.group(1)} is retired and no longer available; use version {OLDEST_VERSION}.0 or later",
                )
            if match is None or float(match.group(1)) < min_version:
                raise not_found()
            version, subpath = match.group(1), (match.group(2) or "").rstrip("/")
            handler, params = router.find(request.method, subpath)
            token_value = _bearer(request)
            with org.lock:
                user_id = org.user_for_token(token_value) if token_value else None
            if user_id is None:
                raise invalid_session()
            answer = await handler(Ctx(request, version, user_id), **params)
            if request.method == "HEAD":  # the GET answer's status and headers, no body
                return Response(b"", answer.status_code, headers=dict(answer.headers))
            return answer
        except SalesforceError as exc:
            return error_answer(exc)
        except Exception as exc:  # a bug: answer like Salesforce's UNKNOWN_EXCEPTION, never a bare 500 page
            return json_answer(
                [{"message": f"An unexpected error occurred: {type(exc).__name__}: {exc}", "errorCode": "UNKNOWN_EXCEPTION"}],
                HTTPStatus.INTERNAL_SERVER_ERROR,
            )

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]
    app = Starlette(
        routes=[
            Route("/services/oauth2/token", token, methods=["POST"]),
            Route("/services/Soap/u/{version}", soap, methods=["POST"]),
            Route("/services/Soap/u/{version}/{org_id}", soap, methods=["POST"]),  # login's serverUrl
            Route("/services/data", versions, methods=["GET"]),
            Route("/services/data/", versions, methods=["GET"]),
            Route("/services/data/{rest:path}", data, methods=methods),
        ]
    )
    return compressed(LimitInfoHeader(app, usage))


HandlerFactory = Callable[..., Any]
