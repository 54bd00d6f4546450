"""A synced world with one known person, and Relay's own log output, for the privacy tests.

The person (:data:`PERSON`) is a Salesforce lead and a HubSpot contact of the sandboxes, with an email,
a phone and a name the tests look for; the lead's last name is shouting and too long for
``Lead.LastName`` once Relay title-cases it, so Salesforce refuses that write (a failed write whose
error text echoes the name). HubSpot runs with a private-app token and Salesforce with a client
secret of the shapes real ones have, so the tests can look for them everywhere.
"""

from __future__ import annotations

import copy
import io
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce
from sqlalchemy import Engine, MetaData, select

from connector.config.loader import RelayConfig, load_config
from connector.store.migrate import open_store
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import SeedData, generate
from tests.support.databases import fresh_postgres_schema

ANCHOR = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
HUBSPOT_TOKEN = "pat-na1-7c0ffee0-1234-4abc-9def-0123456789ab"
"""A private-app token of HubSpot's shape (HUBSPOT_ACCESS_TOKEN)."""
SALESFORCE_SECRET = "sf-client-secret-7f3a9c21d4"
"""The connected app's client secret (SALESFORCE_CLIENT_SECRET)."""


@dataclass(frozen=True)
class KnownPerson:
    first: str
    last: str
    email: str
    phone: str

    @property
    def phone_digits(self) -> str:
        return "".join(ch for ch in self.phone if ch.isdigit())

    def values(self) -> list[str]:
        """What must never show: the email (any case), the phone (as written, E.164, national), the name."""
        return [self.email, self.email.lower(), self.phone, "+" + self.phone_digits, "7946 0958", "79460958",
                self.first, self.last, self.last.title()]


PERSON = KnownPerson(first="Zebulon", last="QUIXOTE", email="Zebulon.Quixote@Privacy-Test.example",
                     phone="+44 20 7946 0958")
SHOUTING_LAST_NAME = PERSON.last + " LONGNAME" * 12
"""Title-cased by Relay's hygiene, longer than Lead.LastName's 80 characters: Salesforce refuses it."""


@dataclass
class World:
    config: RelayConfig
    engine: Engine
    url: str
    sf_box: SalesforceSandbox
    hs_box: HubSpotSandbox
    sf: Salesforce
    hs: HubSpot
    seed: SeedData
    lead_id: str
    contact_id: str
    env: dict[str, str]
    """The environment the config was loaded from (the sandboxes' URLs and credentials)."""


def _place_person(seed: SeedData) -> tuple[str, str]:
    lead = seed.salesforce["Lead"][0]
    lead.update(FirstName=PERSON.first, LastName=SHOUTING_LAST_NAME, Email=PERSON.email, Phone=PERSON.phone,
                Demo_Requested__c=True, Pricing_Page_Visits__c=6.0, Title="VP Sales")
    contact = seed.hubspot["contacts"][0]
    contact["properties"].update(firstname=PERSON.first, lastname=PERSON.last.title(), email=PERSON.email.lower(),
                                 phone=PERSON.phone, demo_requested="true", jobtitle="VP Sales")
    return str(lead["Id"]), str(contact["id"])


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store, once per backend (PostgreSQL fails in CI instead of skipping when unset)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relay.db'}"
        return
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture()
def start_world(store_url: str) -> Iterator[Callable[[], World]]:
    """Starts both sandboxes with :data:`PERSON` in them and a fresh store (not synced yet)."""
    with ExitStack() as stack:

        def start() -> World:
            seed = copy.deepcopy(generate(seed=5, leads=40, anchor=ANCHOR))
            lead_id, contact_id = _place_person(seed)
            sf_box = SalesforceSandbox(seed, client_secret=SALESFORCE_SECRET)
            hs_box = HubSpotSandbox(seed, access_token=HUBSPOT_TOKEN)
            sf_url = sf_box.start().url
            stack.callback(sf_box.stop)
            hs_url = str(hs_box.start().url)
            stack.callback(hs_box.stop)
            engine = open_store(store_url)
            stack.callback(engine.dispose)
            env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, SALESFORCE_CLIENT_SECRET=SALESFORCE_SECRET,
                       HUBSPOT_BASE_URL=hs_url, HUBSPOT_ACCESS_TOKEN=HUBSPOT_TOKEN)
            return World(
                config=load_config(env=env), engine=engine, url=store_url, sf_box=sf_box, hs_box=hs_box,
                sf=Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                              session=sandbox_session(sf_url), version="59.0"),
                hs=HubSpot(access_token=HUBSPOT_TOKEN, host=hs_url), seed=seed, lead_id=lead_id,
                contact_id=contact_id, env=env,
            )

        yield start


def salesforce_sessions(world: World) -> list[str]:
    """Every access token the Salesforce sandbox issued (Relay's among them)."""
    with world.sf_box.state.lock:
        return list(world.sf_box.state.tokens)


def store_texts(engine: Engine) -> Iterator[tuple[str, str, str]]:
    """Every value of every row of every table of the store, as text: (table, column, text)."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if value is not None:
                        yield table.name, column.name, value if isinstance(value, str) else repr(value)


@dataclass
class Logs:
    """What Relay's own handler wrote to stderr (masked), and what an unfiltered handler ahead of it saw (raw)."""

    capsys: pytest.CaptureFixture[str]
    raw: io.StringIO
    written: str = ""

    def relay_text(self) -> str:
        self.written += self.capsys.readouterr().err
        return self.written

    def raw_text(self) -> str:
        return self.raw.getvalue()


@pytest.fixture()
def relay_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    """Relay's logging as ``relay -vv`` configures it (connector/cli.py): its handler writes to stderr (captured).

    A second, unfiltered handler is put ahead of Relay's on the root logger: it sees each record
    before Relay's filter rewrites it, so a test can show the flow did log the values it checks.
    """
    from connector import cli

    raw = io.StringIO()
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    cli._configure_logging(2)
    unfiltered = logging.StreamHandler(raw)
    unfiltered.setFormatter(logging.Formatter(cli.LOG_FORMAT))
    root.handlers.insert(0, unfiltered)
    try:
        yield Logs(capsys, raw)
    finally:
        root.handlers[:] = before
        root.setLevel(level)


def leaks(text: str, values: list[str]) -> list[str]:
    """The values found in ``text`` (ignoring case), with the line they are on."""
    found: list[str] = []
    lowered = text.lower()
    for value in values:
        if value.lower() in lowered:
            line = next(line for line in text.splitlines() if value.lower() in line.lower())
            found.append(f"{value!r} in: {line[:300]}")
    return found


def rows_of(engine: Engine, model: Any, *where: Any) -> list[Any]:
    from connector.store.db import session_factory

    with session_factory(engine)() as session:
        return list(session.scalars(select(model).where(*where)))
