"""The Salesforce sandbox: a local server speaking the Salesforce REST and Bulk 2.0 APIs (and SOAP merge).

Example:
    >>> sandbox = SalesforceSandbox()                      # doctest: +SKIP
    >>> server = sandbox.start()                           # doctest: +SKIP
    >>> sf = Salesforce(instance_url=server.url.replace("http", "https"),
    ...                 session_id=sandbox.access_token(),
    ...                 session=sandbox_session(server.url))  # doctest: +SKIP

Over HTTPS (``sandbox.start(tls=True)``) no loopback session is needed: trust ``sandbox.ca_bundle``
(``session.verify``, ``REQUESTS_CA_BUNDLE``) and give simple-salesforce the ``https://`` URL.
"""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any

from crm_sandbox.common import FaultInjector, FaultSettings, Ledger, SandboxMiddleware
from crm_sandbox.kinds import ClientSettings, SandboxKind, SandboxOption, ServedSandbox
from crm_sandbox.runner import SandboxServer
from crm_sandbox.salesforce.app import OLDEST_VERSION, ApiUsage, build_app
from crm_sandbox.salesforce.auth import Credentials, new_access_token
from crm_sandbox.salesforce.bulk import BulkApi
from crm_sandbox.salesforce.composite import CompositeApi
from crm_sandbox.salesforce.faults import SalesforceAnswerFaults
from crm_sandbox.salesforce.http import Router
from crm_sandbox.salesforce.outbound import OutboundMessenger
from crm_sandbox.salesforce.rest import RestApi
from crm_sandbox.salesforce.state import (
    ADMIN_USERNAME,
    DEFAULT_PASSWORD,
    ORG_ID,
    Clock,
    Org,
    system_clock,
)

__all__ = ["ADMIN_USERNAME", "DEFAULT_PASSWORD", "SANDBOX", "SalesforceSandbox"]


class SalesforceSandbox(ServedSandbox):
    """A sandbox Salesforce org with its HTTP app.

    Args:
        seed_data: a ``SeedData`` (or a mapping of sObject name to records) to load; ignored when
            ``state_file`` exists (the saved org, with every change made to it, wins over the seed).
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

    name = "salesforce"

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
        super().__init__()
        self.state = Org(clock=clock, token_ttl=token_ttl)
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.exists():
            self.state.load_file(self.state_file)
        elif seed_data is not None:
            # Loading the seed over a restored org would put every seeded record back as generated.
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
        self.composite = CompositeApi(self.state, router, api_version_min, OLDEST_VERSION)
        self.composite.register(router)
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

    def _start_delivery(self) -> None:
        if self.outbound is not None:
            self.outbound.start()

    def _serving(self, server: SandboxServer) -> None:
        if self.outbound is not None:
            self.outbound.instance_url = server.url  # the scheme and address clients really reach it by

    def _stop_delivery(self) -> None:
        if self.outbound is not None:
            self.outbound.stop()

    def _save_state(self, path: Path) -> None:
        self.state.save_file(path)

    def client_settings(self) -> ClientSettings:
        """What a client needs: the instance URL, the connected app's credentials, a user's login."""
        url = self.url
        cacert = self.curl_cacert()
        client_id, secret = self.credentials.client_id, self.credentials.client_secret
        return ClientSettings(
            name="salesforce",
            label="Salesforce",
            base_url=url,
            credentials={
                "client_id": client_id,
                "client_secret": secret,
                "username": ADMIN_USERNAME,
                "password": DEFAULT_PASSWORD,
            },
            env={
                "SALESFORCE_INSTANCE_URL": url,
                "SALESFORCE_CLIENT_ID": client_id,
                "SALESFORCE_CLIENT_SECRET": secret,
                "SALESFORCE_ORGANIZATION_ID": ORG_ID,
            },
            try_command=(
                f"curl {cacert}-d grant_type=client_credentials -d client_id={shlex.quote(client_id)} "
                f"-d client_secret={shlex.quote(secret)} {url}/services/oauth2/token"
            ),
            ca_bundle=self.ca_bundle,
        )


SANDBOX = SandboxKind(
    name="salesforce",
    label="Salesforce",
    factory=SalesforceSandbox,
    default_port=8701,
    description="REST (31.0-64.0), SOQL, Composite, Bulk API 2.0, OAuth, SOAP login and merge, outbound messages",
    options=(
        SandboxOption("daily_limit", "daily API allocation (Sforce-Limit-Info; 403 REQUEST_LIMIT_EXCEEDED past it)",
                      int, 100_000),
        SandboxOption("outbound_url", "post outbound messages (SOAP) for Lead and Opportunity changes to this URL",
                      metavar="URL"),
        SandboxOption("client_id", "consumer key of the connected app", str, "sandbox"),
        SandboxOption("client_secret", "consumer secret of the connected app", str, "sandbox"),
    ),
)
"""The Salesforce sandbox in :mod:`crm_sandbox.registry`."""
