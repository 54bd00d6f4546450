"""Fixtures: a sandbox org on an ephemeral port with a controllable clock, and simple-salesforce clients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sf_helpers import FakeClock, client
from simple_salesforce import Salesforce

from crm_sandbox.salesforce import SalesforceSandbox


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC))


@pytest.fixture()
def sandbox(clock: FakeClock) -> Iterator[SalesforceSandbox]:
    box = SalesforceSandbox(clock=clock)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture()
def sf(sandbox: SalesforceSandbox) -> Salesforce:
    return client(sandbox)
