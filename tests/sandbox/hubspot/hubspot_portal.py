"""Helpers for the HubSpot sandbox tests: seeds, SDK clients, a running portal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hubspot import HubSpot

from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.runner import SandboxServer

TOKEN = "sandbox-token"


@dataclass
class Seed:
    """The parts of ``SeedData`` the HubSpot sandbox reads."""

    hubspot: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hubspot_owners: list[dict[str, Any]] = field(default_factory=list)
    hubspot_associations: list[tuple[str, str, str, str, int]] = field(default_factory=list)


def contact(number: int, **props: str) -> dict[str, Any]:
    """A seeded contact with id ``number``."""
    stamp = f"2025-01-01T00:{(number // 60) % 60:02d}:{number % 60:02d}.000Z"
    properties = {"email": f"person{number}@acme{number % 7}.example", "firstname": f"First{number}", "lastname": f"Last{number}"}
    properties.update(props)
    return {"id": str(number), "properties": properties, "createdAt": stamp, "updatedAt": stamp, "archived": False}


def seed_contacts(count: int, start: int = 1) -> Seed:
    """A seed of ``count`` contacts with ascending ids."""
    return Seed(hubspot={"contacts": [contact(n) for n in range(start, start + count)]})


def client(server: SandboxServer, token: str = TOKEN) -> HubSpot:
    """The official SDK pointed at the sandbox, validating every response model."""
    return HubSpot(access_token=token, host=server.url, client_side_validation=True)


@pytest.fixture()
def sandbox() -> Iterator[HubSpotSandbox]:
    """An empty portal (owners only) with generous limits, running."""
    box = HubSpotSandbox(ten_second_limit=100_000, search_per_second=10_000)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture()
def hs(sandbox: HubSpotSandbox) -> HubSpot:
    """An SDK client for :func:`sandbox`."""
    assert sandbox.server is not None
    return client(sandbox.server)
