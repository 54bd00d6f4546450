"""Fixtures for the adapters' contract tests: the sandbox CRMs on ephemeral ports, over real HTTP.

The sandboxes are imported at module level on purpose: if the sandbox package is
missing, these tests fail at collection instead of being skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from connector.adapters.retry import RetryPolicy
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData, generate

from ._sandbox_helpers import ANCHOR, ManualClock, Waits


@pytest.fixture(scope="session")
def seed() -> SeedData:
    return generate(seed=11, leads=30, anchor=ANCHOR)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def policy(waits: Waits) -> RetryPolicy:
    return RetryPolicy(sleep=waits.append, random=lambda: 0.0)


@pytest.fixture
def sf_sandbox(seed: SeedData, clock: ManualClock) -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(seed, clock=clock)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def sf_url(sf_sandbox: SalesforceSandbox) -> str:
    assert sf_sandbox.server is not None
    return sf_sandbox.server.url


@pytest.fixture
def salesforce(sf_url: str, policy: RetryPolicy, clock: ManualClock) -> SalesforceAdapter:
    # The sandbox stamps records by the test's clock (its Date headers tell real time): read by that clock.
    return SalesforceAdapter("salesforce", sf_url, "sandbox", "sandbox", retry=policy, clock=clock,
                             read_lag=timedelta(0))


@pytest.fixture
def hs_sandbox(seed: SeedData, clock: ManualClock) -> Iterator[HubSpotSandbox]:
    sandbox = HubSpotSandbox(seed, clock=clock.ms, search_per_second=10_000, ten_second_limit=100_000)
    server = sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
        del server


@pytest.fixture
def hs_url(hs_sandbox: HubSpotSandbox) -> str:
    server = hs_sandbox.server
    assert server is not None
    return str(server.url)


@pytest.fixture
def hubspot(hs_url: str, policy: RetryPolicy, clock: ManualClock) -> HubSpotAdapter:
    return HubSpotAdapter("hubspot", hs_url, "sandbox-token", retry=policy, search_overlap=timedelta(0),
                          searches_per_second=10_000, clock=clock, read_lag=timedelta(0))
