"""HTTP plumbing shared by the REST and Bulk handlers: the request context, JSON answers, routing."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from crm_sandbox.salesforce.errors import SalesforceError, bad_request


@dataclass
class Ctx:
    """What a handler knows about the call: the request, API version, running user."""

    request: Request
    version: str
    user_id: str

    @property
    def path(self) -> str:
        return str(self.request.url.path)


Handler = Callable[..., Awaitable[Response]]


def json_answer(body: Any, status: int = HTTPStatus.OK, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, serialised once."""
    return Response(
        json.dumps(body, separators=(",", ":")),
        status,
        headers=headers,
        media_type="application/json;charset=UTF-8",
    )


def error_answer(exc: SalesforceError) -> Response:
    """Salesforce's list-shaped error answer."""
    return json_answer(exc.body(), exc.status)


async def read_json(request: Request) -> Any:
    """The JSON body; 400 JSON_PARSER_ERROR when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        raise bad_request("JSON_PARSER_ERROR", "No content to map due to end-of-input at [line:1, column:0]")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        col = getattr(exc, "colno", 1)
        raise bad_request("JSON_PARSER_ERROR", f"Unexpected character in JSON body ({getattr(exc, 'msg', exc)}) at [line:{line}, column:{col}]") from None


_METHOD_ORDER = ("HEAD", "GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(handlers: dict[str, Handler]) -> list[str]:
    """The methods of a resource in Salesforce's order (``HEAD,GET,PATCH,DELETE``); HEAD comes with GET."""
    methods = set(handlers) | ({"HEAD"} if "GET" in handlers else set())
    return [m for m in _METHOD_ORDER if m in methods]


@dataclass(frozen=True)
class Route:
    """One API resource below ``/services/data/vXX.X/``: methods and a path pattern."""

    pattern: re.Pattern[str]
    handlers: dict[str, Handler]


class Router:
    """Routes a sub-path to its handler, answering Salesforce's 404 and 405 shapes."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, pattern: str, **handlers: Handler) -> None:
        """Add a resource: ``pattern`` is a regex with named groups; handlers by HTTP method."""
        self.routes.append(Route(re.compile(f"^{pattern}/?$"), {m.upper(): h for m, h in handlers.items()}))

    def find(self, method: str, subpath: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters (SalesforceError 404/405 when none)."""
        for route in self.routes:
            match = route.pattern.match(subpath)
            if match is None:
                continue
            # HEAD is answered wherever GET is, as Salesforce does (headers only).
            handler = route.handlers.get("GET" if method == "HEAD" else method)
            if handler is None:
                allowed = ",".join(allowed_methods(route.handlers))
                raise SalesforceError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
                )
            return handler, match.groupdict()
        raise SalesforceError(HTTPStatus.NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
