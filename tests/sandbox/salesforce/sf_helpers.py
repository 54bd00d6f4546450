"""Helpers shared by the Salesforce sandbox tests (a controllable clock, a client factory)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from simple_salesforce import Salesforce

from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def client(box: SalesforceSandbox, **kwargs: Any) -> Salesforce:
    """A simple-salesforce client on the sandbox with a fresh token."""
    assert box.server is not None
    return Salesforce(
        instance_url="https://sandbox.my.salesforce.com",
        session_id=box.access_token(),
        session=sandbox_session(box.server.url),
        version="59.0",
        **kwargs,
    )
