"""Helpers for the adapters' contract tests: a hand-moved clock, sandbox admin calls."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from connector.adapters.base import Cursor, WriteOp
from connector.crms.hubspot.adapter import HubSpotAdapter

ANCHOR = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves by hand (for frozen or advancing server time)."""

    def __init__(self, start: datetime | None = None) -> None:
        # Real time (ms precision) by default, as the adapters' 15-day deletion window uses the local clock;
        # two minutes back, as Salesforce's deleted/ covers whole minutes up to the end date.
        now = datetime.now(UTC) - timedelta(minutes=2)
        self.now = start or now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def ms(self) -> int:
        """The time in epoch milliseconds (the HubSpot sandbox's clock shape)."""
        return int(self().timestamp() * 1000)

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


class Waits(list[float]):
    """The waits the retry policy asked for (recorded instead of slept)."""


def sandbox_admin(url: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """Call a sandbox admin endpoint (ledger, faults)."""
    response = requests.request(method, f"{url}/__sandbox/{path}", json=body, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def ledger_calls(url: str) -> int:
    return int(sandbox_admin(url, "GET", "ledger")["totals"]["calls"])


CONTACT_FIELDS = ["email", "firstname", "lastname", "hubspot_owner_id"]
"""The contact properties the HubSpot adapter tests read."""


def new_contacts(count: int, tag: str = "n") -> list[WriteOp]:
    """Creates of ``count`` contacts, e-mail ``{tag}{i}@acme.example``."""
    return [WriteOp("contacts", "create", {"email": f"{tag}{i}@acme.example", "lastname": f"{tag}{i}"})
            for i in range(count)]


def record_ids(pages: Any) -> list[str]:
    """The ids of the records of ``pages``, in order."""
    return [r["id"] for page in pages for r in page.records]


def contacts_checkpoint(adapter: HubSpotAdapter) -> Cursor:
    """The checkpoint a full read of the contacts ends with."""
    pages = list(adapter.read("contacts", CONTACT_FIELDS, None))
    assert pages[-1].cursor is not None
    return pages[-1].cursor
