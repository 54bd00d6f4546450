"""The Salesforce sandbox: a local server speaking the Salesforce REST and Bulk 2.0 APIs.

Example:
    >>> sandbox = SalesforceSandbox()                      # doctest: +SKIP
    >>> server = sandbox.start()                           # doctest: +SKIP
    >>> sf = Salesforce(instance_url=server.url.replace("http", "https"),
    ...                 session_id=sandbox.access_token(),
    ...                 session=sandbox_session(server.url))  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from connector.sandbox.common import FaultInjector, FaultSettings, Ledger, SandboxMiddleware
from connector.sandbox.runner import SandboxServer
from connector.sandbox.salesforce.app import ApiUsage, build_app
from connector.sandbox.salesforce.auth import Credentials, new_access_token
from connector.sandbox.salesforce.bulk import BulkApi
from connector.sandbox.salesforce.faults import SalesforceAnswerFaults
from connector.sandbox.salesforce.http import Router
from connector.sandbox.salesforce.outbound import OutboundMessenger
from connector.sandbox.salesforce.rest import RestApi
from connector.sandbox.salesforce.state import (
    ADMIN_USERNAME,
    DEFAULT_PASSWORD,
    Clock,
    Org,
    system_clock,
)

__all__ = ["ADMIN_USERNAME", "DEFAULT_PASSWORD", "SalesforceSandbox"]


class SalesforceSandbox:
    """A sandbox Salesforce org with its HTTP app.

    Args:
        seed_data: a ``SeedData`` (or a mapping of sObject name to records) to load.
        api_version_min: the oldest API version served; like a real org, 31.0 (older paths answer 404,
            and the retired versions below 31.0 answer 410 GONE).
        daily_limit: the daily API allocation (``Sforce-Limit-Info``, 403 past it).
        faults: fault injection settings.
        outbound_url: where outbound messages (SOAP) for Lead and Opportunity changes go.
        state_file: JSON file the org is loaded from at start and saved to at stop.
        client_id: the connected app's consumer key.
        client_secret: the connected app's consumer secret.
        clock: the org's clock (inject one in tests).
        token_ttl: lifetime of access tokens.
        outbound_retry_base: first retry delay of outbound messages, in seconds.
    """

    def __init__(
        self,
        seed_data: Any = None,
        *,
        api_version_min: str = "31.0",
        daily_limit: int = 100_000,
        faults: FaultSettings | None = None,
        outbound_url: str | None = None,
        state_file: Path | None = None,
        client_id: str = "sandbox",
        client_secret: str = "sandbox",
        clock: Clock = system_clock,
        token_ttl: timedelta = timedelta(hours=2),
        outbound_retry_base: float = 1.0,
    ) -> None:
        self.state = Org(clock=clock, token_ttl=token_ttl)
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.exists():
            self.state.load_file(self.state_file)
        if seed_data is not None:
            self.state.load_seed(seed_data)
        self.ledger = Ledger("salesforce")
        self.faults = FaultInjector(faults)
        self.usage = ApiUsage(daily_limit)
        self.credentials = Credentials(client_id, client_secret)
        router = Router()
        self.rest = RestApi(self.state, self.faults, daily_limit, lambda: self.usage.used)
        self.bulk = BulkApi(self.state, self.faults, self.rest)
        self.bulk.register(router)
        self.rest.register(router)
        self.outbound: OutboundMessenger | None = None
        if outbound_url:
            self.outbound = OutboundMessenger(outbound_url, retry_base=outbound_retry_base)
            self.state.listeners.append(self.outbound.enqueue)
        inner = build_app(self.state, router, self.usage, self.credentials, api_version_min)
        self.app = SandboxMiddleware(
            inner,
            ledger=self.ledger,
            faults=self.faults,
            rate_limited=self.usage.rate_limited,
            server_error=self.usage.server_error,
            on_request=self.usage.on_request,
            answers=SalesforceAnswerFaults(),
        )
        self.server: SandboxServer | None = None

    def load_seed(self, seed_data: Any) -> None:
        """Load a ``SeedData`` into the org."""
        self.state.load_seed(seed_data)

    def access_token(self, username: str = ADMIN_USERNAME) -> str:
        """Issue an access token for ``username`` (for ``Salesforce(session_id=...)``)."""
        with self.state.lock:
            user = self.state.user_by_username(username)
            if user is None:
                raise ValueError(f"no user {username!r} in the sandbox org")
            token = new_access_token()
            self.state.issue_token(user["Id"], token)
        return token

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
        """Serve on ``host:port`` (0: a free port) in a background thread."""
        if self.outbound is not None:
            self.outbound.start()
        self.server = SandboxServer(self.app, host=host, port=port, name="salesforce").start()
        if self.outbound is not None:
            self.outbound.instance_url = self.server.url  # the scheme clients really reach it by (plain HTTP)
        return self.server

    def stop(self) -> None:
        """Stop serving, stop outbound delivery and save the state file (when configured)."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.outbound is not None:
            self.outbound.stop()
        if self.state_file is not None:
            self.state.save_file(self.state_file)
