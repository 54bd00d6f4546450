"""The HubSpot sandbox CRM: a local server speaking the HubSpot CRM v3 API.

The official SDK (hubspot-api-client) works against it unchanged::

    sandbox = HubSpotSandbox(seed_data)
    server = sandbox.start()
    client = HubSpot(access_token="sandbox-token", host=server.url)
    ...
    sandbox.stop()

Over HTTPS (``sandbox.start(tls=True)``), also pass ``ssl_ca_cert=str(sandbox.ca_bundle)``.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from crm_sandbox.common import (
    ErrorAnswer,
    FaultInjector,
    FaultSettings,
    Ledger,
    Message,
    Receive,
    SandboxMiddleware,
    Scope,
    Send,
)
from crm_sandbox.hubspot.app import build_app
from crm_sandbox.hubspot.communication_preferences_api import required_scope
from crm_sandbox.hubspot.errors import (
    CURRENT_CORRELATION_ID,
    correlation_id,
    missing_scopes,
    rate_limit_body,
    unauthenticated,
)
from crm_sandbox.hubspot.faults import HubSpotAnswerFaults
from crm_sandbox.hubspot.limits import RateLimits
from crm_sandbox.hubspot.state import HubSpotState
from crm_sandbox.hubspot.webhooks import WebhookDispatcher, WebhookSettings
from crm_sandbox.kinds import ClientSettings, SandboxKind, SandboxOption, ServedSandbox

__all__ = ["SANDBOX", "HubSpotSandbox", "HubSpotState", "RateLimits", "WebhookDispatcher", "WebhookSettings"]

HEADERS_KEY = "hubspot.ratelimit_headers"
_SEARCH_SUFFIX = "/search"


class _LimitHeaders:
    """ASGI wrapper adding the ``X-HubSpot-RateLimit-*`` headers computed by the hook to every answer.

    It also serves ``/path/`` as ``/path`` (HubSpot accepts both), instead of redirecting.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = dict(scope)
            scope["path"] = scope["path"].rstrip("/") or "/"
            scope["raw_path"] = scope["path"].encode()
        headers: dict[str, str] | None = scope.get(HEADERS_KEY)
        if scope["type"] != "http" or not headers:
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                raw.extend((k.lower().encode(), v.encode()) for k, v in headers.items())
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, with_headers)


class _CorrelationIds:
    """ASGI wrapper giving each request a correlation id (a UUID), as HubSpot does.

    The id is sent in the ``X-HubSpot-Correlation-Id`` header of every answer (errors, 429s and
    injected faults included) and is the ``correlationId`` of any error body of that answer.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        # The runner and tests reach the middleware's attributes (``closing``, ``ledger``) through this wrapper.
        return getattr(self.__dict__["app"], name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sender = _IdSender(send, str(uuid.uuid4()))
        token = CURRENT_CORRELATION_ID.set(sender.correlation_id)
        try:
            await self.app(scope, receive, sender.send)
        finally:
            CURRENT_CORRELATION_ID.reset(token)


class _IdSender:
    """The ``send`` of one request, adding its correlation id header.

    It is handed on as a bound method whose ``__self__`` still exposes the server's ``transport``,
    so the sandbox middleware can drop the connection (the ``drop`` and ``lost`` faults).
    """

    def __init__(self, send: Send, correlation_id: str) -> None:
        self._send = send
        self.correlation_id = correlation_id
        self.transport = getattr(getattr(send, "__self__", None), "transport", None)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-hubspot-correlation-id"]
            raw.append((b"x-hubspot-correlation-id", self.correlation_id.encode()))
            message["headers"] = raw
        await self._send(message)


class HubSpotSandbox(ServedSandbox):
    """A HubSpot portal in a box: state, app, limits, faults, ledger and webhooks.

    Args:
        seed_data: a ``SeedData`` to load (ignored when ``state_file`` exists).
        access_token: the private-app token clients must send as ``Authorization: Bearer``.
        ten_second_limit: requests allowed per rolling 10 seconds.
        daily_limit: requests allowed per day.
        search_per_second: search requests allowed per second.
        faults: fault injection settings (429 with Retry-After, 503, drops, latency, slow and held answers,
            answers lost after the write applied, malformed 200 answers, partial batch failures).
        webhook_url: where to deliver signed webhook batches (None: no webhooks).
        client_secret: the app secret that signs webhooks.
        app_id: the app id in webhook events.
        portal_id: the portal (hub) id.
        state_file: JSON file loaded on construction (if present) and saved on :meth:`stop`.
        clock: ms since the epoch for record timestamps (injectable for tests).
        webhook_settings: subscriptions, duplicates, retries of webhook deliveries.
        search_lag_ms: how long a write stays invisible to search (HubSpot's index trails writes).
        denied_scopes: scopes the private app lacks (a list, or one comma-separated text): a call that needs
            one answers 403 ``MISSING_SCOPES``, as HubSpot does. The sandbox checks the communication
            preferences API's (``communication_preferences.read``, ``.write``); ``denied_scopes`` may be
            changed while it runs.
    """

    name = "hubspot"

    def __init__(
        self,
        seed_data: Any = None,
        *,
        access_token: str = "sandbox-token",
        ten_second_limit: int = 190,
        daily_limit: int = 1_000_000,
        search_per_second: int = 5,
        faults: FaultSettings | None = None,
        webhook_url: str | None = None,
        client_secret: str = "sandbox-secret",
        app_id: int = 1_234_567,
        portal_id: int = 62_515,
        state_file: Path | None = None,
        clock: Callable[[], int] | None = None,
        webhook_settings: WebhookSettings | None = None,
        search_lag_ms: int = 0,
        denied_scopes: Iterable[str] | str = (),
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.client_secret = client_secret
        names = denied_scopes.split(",") if isinstance(denied_scopes, str) else denied_scopes
        self.denied_scopes: set[str] = {name.strip() for name in names if name.strip()}
        self.state_file = Path(state_file) if state_file else None
        self.state = HubSpotState(portal_id=portal_id, clock=clock, app_id=app_id)
        if self.state_file is not None and self.state_file.exists():
            self.state.load_json(json.loads(self.state_file.read_text()))
        elif seed_data is not None:
            self.state.load_seed(seed_data)
        self.ledger = Ledger("hubspot")
        self.faults = FaultInjector(faults)
        self.limits = RateLimits(ten_second_limit, daily_limit, search_per_second)
        self.webhooks: WebhookDispatcher | None = None
        if webhook_url:
            self.webhooks = WebhookDispatcher(
                webhook_url, client_secret, portal_id, app_id, webhook_settings, clock=clock
            )
            self.state.listeners.append(self.webhooks.on_change)
        self.app = _CorrelationIds(SandboxMiddleware(
            _LimitHeaders(build_app(self.state, self.faults, search_lag_ms)),
            ledger=self.ledger,
            faults=self.faults,
            rate_limited=self._injected_rate_limit,
            server_error=self._server_error,
            on_request=self._on_request,
            answers=HubSpotAnswerFaults(self.state),
        ))

    def load_seed(self, seed_data: Any) -> None:
        """Load a ``SeedData`` into the portal."""
        self.state.load_seed(seed_data)

    # -- middleware hooks ------------------------------------------------------------------------

    def _on_request(self, scope: Scope) -> ErrorAnswer | None:
        headers = dict(scope.get("headers") or [])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
        # The auth scheme is case-insensitive (RFC 7235 section 2.1): "bearer TOKEN" is as good as "Bearer TOKEN".
        if scheme.lower() != "bearer" or token.strip() != self.access_token:
            error = unauthenticated()
            return error.status, {}, error.body()
        is_search = scope["method"] == "POST" and scope["path"].rstrip("/").endswith(_SEARCH_SUFFIX)
        limit_headers, refused = self.limits.admit(is_search)
        if refused is not None:
            return refused
        scope[HEADERS_KEY] = limit_headers
        needed = required_scope(scope["method"], scope["path"])
        if needed is not None and needed in self.denied_scopes:
            error = missing_scopes([needed])
            return error.status, dict(limit_headers), error.body()
        return None

    def _injected_rate_limit(self, retry_after: float) -> ErrorAnswer:
        headers = self.limits.current_headers()
        headers["X-HubSpot-RateLimit-Remaining"] = "0"
        headers["Retry-After"] = str(max(0, round(retry_after)))
        return HTTPStatus.TOO_MANY_REQUESTS, headers, rate_limit_body("TEN_SECONDLY_ROLLING")

    def _server_error(self) -> ErrorAnswer:
        body = {
            "status": "error",
            "message": "The service is temporarily unavailable. Please try again later.",
            "correlationId": correlation_id(),
            "category": "SERVICE_UNAVAILABLE",
        }
        return HTTPStatus.SERVICE_UNAVAILABLE, {}, body

    # -- lifecycle -------------------------------------------------------------------------------

    def _start_delivery(self) -> None:
        if self.webhooks is not None:
            self.webhooks.start()

    def _stop_delivery(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()

    def _save_state(self, path: Path) -> None:
        self.state.save(path)

    def client_settings(self) -> ClientSettings:
        """What a client needs: the base URL (the SDK's ``host``), the private-app token, the app secret."""
        url = self.url
        cacert = self.curl_cacert()
        return ClientSettings(
            name="hubspot",
            label="HubSpot",
            base_url=url,
            credentials={"access_token": self.access_token, "client_secret": self.client_secret},
            env={
                "HUBSPOT_BASE_URL": url,
                "HUBSPOT_ACCESS_TOKEN": self.access_token,
                "HUBSPOT_CLIENT_SECRET": self.client_secret,
            },
            try_command=(
                f"curl {cacert}-H {shlex.quote('Authorization: Bearer ' + self.access_token)} "
                f"'{url}/crm/v3/objects/contacts?limit=3'"
            ),
            ca_bundle=self.ca_bundle,
        )


SANDBOX = SandboxKind(
    name="hubspot",
    label="HubSpot",
    factory=HubSpotSandbox,
    default_port=8702,
    description="CRM v3 objects, batch, search, associations v4, owners, properties, schemas, communication "
                "preferences, signed webhooks",
    options=(
        SandboxOption("webhook_url", "deliver signed v3 webhooks to this URL", metavar="URL"),
        SandboxOption("client_secret", "the app secret that signs webhooks", str, "sandbox-secret"),
        SandboxOption("access_token", "the private-app token clients send as Bearer", str, "sandbox-token"),
        SandboxOption("ten_second_limit", "requests allowed per rolling 10 seconds", int, 190),
        SandboxOption("daily_limit", "requests allowed per day", int, 1_000_000),
        SandboxOption("search_per_second", "search requests allowed per second", int, 5),
        SandboxOption("denied_scopes", "scopes the private app lacks, comma-separated (their calls answer 403 "
                      "MISSING_SCOPES), e.g. communication_preferences.read", metavar="SCOPES"),
    ),
)
"""The HubSpot sandbox in :mod:`crm_sandbox.registry`."""
