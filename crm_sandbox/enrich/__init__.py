"""The sandbox enrichment server: company data by domain and person data by email, over HTTP.

It stands in for the enrichment APIs (a Clearbit-shaped company API and a person-enrichment API
of another shape) the way the sandbox CRMs stand in for Salesforce and HubSpot. Its directory is
built from the same seed data as the CRMs, so their companies and people are found
(:mod:`crm_sandbox.enrich.directory`); a client configured with :meth:`EnrichSandbox.client_settings`
(Relay's ``config/rules/enrichment.yaml`` reads ``RELAY_ENRICH_ENABLED``, ``RELAY_ENRICH_URL`` and
``RELAY_ENRICH_API_KEY``) sends real HTTP::

    server = EnrichSandbox(generate(leads=200))
    server.start()                     # on a port the OS picks
    env = server.client_settings().env
    ...
    server.ledger.totals()             # calls by kind: company, person
    server.stop()

Faults (``FaultSettings``, ``PUT /__sandbox/faults``): ``rate_limit`` answers 429 with
``Retry-After``, ``server_error`` 503, ``slow`` delays, ``invalid_json``/``html``/``truncated``
spoil the body and ``error_200`` answers the API's error object with status 200; the
``not_found_rate`` option answers a share of known keys 404 (always the same keys for a seed).
"""

from __future__ import annotations

import json
import shlex
from http import HTTPStatus
from pathlib import Path
from typing import Any

from crm_sandbox.common import ErrorAnswer, FaultInjector, FaultSettings, Ledger, SandboxMiddleware
from crm_sandbox.enrich.app import (
    COMPANY_PATH,
    PERSON_PATH,
    EnrichAnswers,
    ServerSettings,
    build_app,
)
from crm_sandbox.enrich.directory import CompanyProfile, Directory, PersonProfile, build_directory
from crm_sandbox.kinds import ClientSettings, SandboxKind, SandboxOption, ServedSandbox

__all__ = ["SANDBOX", "CompanyProfile", "Directory", "EnrichSandbox", "PersonProfile"]

DEFAULT_API_KEY = "sandbox-enrich-key"


class EnrichSandbox(ServedSandbox):
    """A company- and person-data API in a box, answering from the seed data.

    Args:
        seed_data: the ``SeedData`` the sandbox CRMs load (None: an empty directory).
        faults: fault injection for both endpoints.
        state_file: JSON file of the directory, loaded at creation (instead of the seed) and saved at stop.
        api_key: the key both endpoints accept (``Authorization: Bearer <key>``, ``X-Api-Key: <key>``).
        not_found_rate: share of known keys answered 404 (0 to 1), the same keys for the same seed.
    """

    name = "enrich"

    def __init__(
        self,
        seed_data: Any = None,
        *,
        faults: FaultSettings | None = None,
        state_file: Path | None = None,
        api_key: str = DEFAULT_API_KEY,
        not_found_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(not_found_rate) <= 1.0:
            raise ValueError(f"enrich sandbox: not_found_rate must be between 0 and 1, got {not_found_rate!r}")
        if not api_key:
            raise ValueError("enrich sandbox: api_key must not be empty")
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.exists():
            self.directory = Directory.from_json(json.loads(self.state_file.read_text(encoding="utf-8")))
        else:
            self.directory = build_directory(seed_data)
        seed = getattr(seed_data, "seed", 0) or 0
        self.settings = ServerSettings(api_key=api_key, not_found_rate=float(not_found_rate), seed=seed)
        self.ledger = Ledger("enrich")
        self.faults = FaultInjector(faults)
        self.app = SandboxMiddleware(
            build_app(self.directory, self.settings), ledger=self.ledger, faults=self.faults,
            rate_limited=self._rate_limited, server_error=self._server_error, answers=EnrichAnswers(),
        )

    @property
    def not_found_rate(self) -> float:
        """Share of known keys answered 404; set it to change it while the server runs."""
        return self.settings.not_found_rate

    @not_found_rate.setter
    def not_found_rate(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"enrich sandbox: not_found_rate must be between 0 and 1, got {value!r}")
        self.settings.not_found_rate = float(value)

    def _rate_limited(self, retry_after: float) -> ErrorAnswer:
        body = {"error": {"type": "rate_limit", "message": "Too many requests: slow down"}}
        return HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": str(max(0, round(retry_after)))}, body

    def _server_error(self) -> ErrorAnswer:
        body = {"error": {"type": "service_unavailable", "message": "The service is unavailable (injected fault)"}}
        return HTTPStatus.SERVICE_UNAVAILABLE, {}, body

    def _save_state(self, path: Path) -> None:
        path.write_text(json.dumps(self.directory.as_json(), indent=1), encoding="utf-8")

    def client_settings(self) -> ClientSettings:
        """What a client needs: the URL and the key; ``env`` switches Relay's enrichment on and points it here."""
        url = self.url
        key = self.settings.api_key
        example = next(iter(sorted(self.directory.companies)), "initech.example")
        return ClientSettings(
            name="enrich",
            label="Enrichment API",
            base_url=url,
            credentials={"api_key": key},
            env={"RELAY_ENRICH_ENABLED": "true", "RELAY_ENRICH_URL": url, "RELAY_ENRICH_API_KEY": key},
            try_command=f"curl {self.curl_cacert()}-H {shlex.quote('Authorization: Bearer ' + key)} "
                        f"{shlex.quote(f'{url}{COMPANY_PATH}?domain={example}')}",
            ca_bundle=self.ca_bundle,
        )


SANDBOX = SandboxKind(
    name="enrich",
    label="Enrichment API",
    factory=EnrichSandbox,
    default_port=8726,
    description=f"company data by domain (GET {COMPANY_PATH}?domain=) and person data by email "
                f"(GET {PERSON_PATH}?email=), from the seed data",
    options=(
        SandboxOption("api_key", "the key both endpoints accept", str, DEFAULT_API_KEY),
        SandboxOption("not_found_rate", "share of known domains and emails answered 404 (0 to 1)", float, 0.0),
    ),
)
"""The enrichment server in :mod:`crm_sandbox.registry`."""
