"""The registry of sandbox CRMs: what it lists, what each kind starts, and a group started together.

Clients are the official SDKs and plain HTTP, as a caller written elsewhere would use them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput
from simple_salesforce import Salesforce

import crm_sandbox
from crm_sandbox.common import FaultSettings
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.kinds import Sandbox, SandboxKind, SandboxOption
from crm_sandbox.registry import SANDBOXES, SandboxGroup, available, get
from crm_sandbox.runner import SandboxServerError
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import SeedData, generate


@pytest.fixture(scope="module")
def seed() -> SeedData:
    return generate(seed=7, leads=30)


def _salesforce(settings_url: str, client_id: str, client_secret: str) -> Salesforce:
    """simple-salesforce logged in by the client-credentials flow through the loopback session."""
    session = sandbox_session(settings_url)
    token = session.post("https://login.salesforce.com/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)


def test_the_registry_lists_salesforce_then_hubspot_then_the_notification_sink_and_enrichment() -> None:
    kinds = available()
    assert list(kinds) == ["salesforce", "hubspot", "notify", "enrich"]
    assert [(k.label, k.default_port) for k in kinds.values()] == [
        ("Salesforce", 8701), ("HubSpot", 8702), (kinds["notify"].label, 8725), (kinds["enrich"].label, 8726),
    ]
    assert [k.state_file_name for k in kinds.values()][:2] == ["salesforce.json", "hubspot.json"]
    assert kinds["salesforce"].factory is SalesforceSandbox
    assert kinds["hubspot"].factory is HubSpotSandbox
    # The package-level names are the registry's.
    assert crm_sandbox.SANDBOXES is SANDBOXES
    assert crm_sandbox.available() == kinds
    assert list(SANDBOXES) == list(kinds) and len(SANDBOXES) == 4


def test_an_unknown_name_says_which_sandboxes_there_are() -> None:
    with pytest.raises(KeyError, match=r"no sandbox CRM named 'pipedrive' \(there are: salesforce, hubspot, notify, enrich\)"):
        get("pipedrive")
    with pytest.raises(KeyError, match="'pipedrive'"):
        SandboxGroup(["salesforce", "pipedrive"])


def test_each_kind_starts_on_a_free_port_with_the_credentials_it_names(seed: SeedData) -> None:
    for kind in available().values():
        sandbox: Sandbox = kind.start(seed)
        try:
            settings = sandbox.client_settings()
            assert settings.base_url == sandbox.url
            assert settings.base_url.startswith("http://127.0.0.1:")
            assert not settings.base_url.endswith((":8701", ":8702"))
            assert settings.ca_bundle is None
            ledger = httpx.get(f"{settings.base_url}/__sandbox/ledger")
            assert ledger.json()["server"] == kind.name
        finally:
            sandbox.stop()
        with pytest.raises(SandboxServerError, match=f"{kind.name} sandbox is not running"):
            _ = sandbox.url


def test_salesforce_credentials_log_a_client_in_and_read_a_seeded_lead(seed: SeedData) -> None:
    sandbox = get("salesforce").start(seed)
    try:
        settings = sandbox.client_settings()
        assert settings.env == {
            "SALESFORCE_INSTANCE_URL": sandbox.url, "SALESFORCE_CLIENT_ID": "sandbox", "SALESFORCE_CLIENT_SECRET": "sandbox",
            "SALESFORCE_ORGANIZATION_ID": "00D5e0000000001EAA",  # outbound messages name it; relay serve checks it
        }
        creds = settings.credentials
        sf = _salesforce(settings.base_url, creds["client_id"], creds["client_secret"])
        first = seed.salesforce["Lead"][0]
        assert sf.query(f"SELECT LastName FROM Lead WHERE Id = '{first['Id']}'")["records"][0]["LastName"] == first["LastName"]
        # The user login it names works too (SOAP login through the same session).
        by_password = Salesforce(username=creds["username"], password=creds["password"], security_token="",
                                 session=sandbox_session(settings.base_url))
        assert by_password.query("SELECT COUNT() FROM Lead")["totalSize"] == len(seed.salesforce["Lead"])
    finally:
        sandbox.stop()


def test_hubspot_token_reads_a_seeded_contact_and_options_reach_the_sandbox(seed: SeedData) -> None:
    sandbox = get("hubspot").start(seed, access_token="another-token", client_secret="whsec")
    try:
        settings = sandbox.client_settings()
        assert settings.credentials == {"access_token": "another-token", "client_secret": "whsec"}
        assert settings.env["HUBSPOT_BASE_URL"] == sandbox.url
        client = HubSpot(access_token=settings.credentials["access_token"], host=settings.base_url)
        first = seed.hubspot["contacts"][0]
        got = client.crm.contacts.basic_api.get_by_id(first["id"], properties=["email"])
        assert got.properties["email"] == first["properties"]["email"]
        assert httpx.get(f"{settings.base_url}/crm/v3/objects/contacts",
                         headers={"Authorization": "Bearer sandbox-token"}).status_code == HTTPStatus.UNAUTHORIZED
    finally:
        sandbox.stop()


def test_a_kind_refuses_an_option_it_does_not_have_or_of_the_wrong_type() -> None:
    kind = get("salesforce")
    with pytest.raises(ValueError, match=r"salesforce sandbox: unknown option 'webhook_url' \(its options: client_id, client_secret, daily_limit, outbound_url\)"):
        kind.create(webhook_url="http://127.0.0.1:1/hook")
    with pytest.raises(ValueError, match="option 'daily_limit' must be int, got '10'"):
        kind.create(daily_limit="10")
    with pytest.raises(ValueError, match=r"ports given for pipedrive, not in this group \(salesforce\)"):
        SandboxGroup(["salesforce"], ports={"pipedrive": 8703})
    with pytest.raises(ValueError, match="options given for hubspot, not in this group"):
        SandboxGroup(["salesforce"], options={"hubspot": {"webhook_url": "x"}})


def test_a_group_shares_seed_and_faults_and_prints_what_a_client_needs(seed: SeedData) -> None:
    faults = FaultSettings(script=["server_error"])
    with SandboxGroup(seed_data=seed, faults=faults, options={"salesforce": {"daily_limit": 1234}}) as group:
        assert [s.name for s in group.client_settings()] == ["salesforce", "hubspot", "notify", "enrich"]
        env = group.env()
        assert env["SALESFORCE_INSTANCE_URL"] == group["salesforce"].url
        assert env["HUBSPOT_BASE_URL"] == group["hubspot"].url
        assert "REQUESTS_CA_BUNDLE" not in env
        text = group.describe()
        for settings in group.client_settings():
            assert f"  {settings.export_line()}\n" in text
            assert f"{settings.base_url}/__sandbox/ledger" in text
        # Each sandbox injects the shared script's fault into its own first call, then answers.
        token_url = f"{group['salesforce'].url}/services/oauth2/token"
        login = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
        assert httpx.post(token_url, data=login).status_code == HTTPStatus.SERVICE_UNAVAILABLE
        hs = HubSpot(access_token="sandbox-token", host=group["hubspot"].url)
        with pytest.raises(Exception, match="503"):
            hs.crm.contacts.basic_api.get_page(limit=1)
        assert len(hs.crm.contacts.basic_api.get_page(limit=5).results) == 5
        sf = _salesforce(group["salesforce"].url, "sandbox", "sandbox")
        assert sf.limits()["DailyApiRequests"]["Max"] == 1234
        crms = [sandbox for sandbox in group if sandbox.name not in ("notify", "enrich")]  # not called
        assert [sandbox.ledger.totals()["faults"] for sandbox in crms] == [{"server_error": 1}] * 2
    with pytest.raises(KeyError, match="no running sandbox 'hubspot'"):
        group["hubspot"]


def test_a_group_that_cannot_start_stops_what_it_started(seed: SeedData) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        group = SandboxGroup(seed_data=seed, ports={"hubspot": port})
        with pytest.raises(SandboxServerError, match=f"hubspot sandbox failed to start on 127.0.0.1:{port}"):
            group.start()
    assert group.sandboxes == {}
    assert get("salesforce").factory is SalesforceSandbox  # the registry is untouched by a failed start


def test_state_dir_keeps_changes_across_restarts_even_with_the_seed_given_again(seed: SeedData, tmp_path: Path) -> None:
    lead = seed.salesforce["Lead"][0]
    contact = seed.hubspot["contacts"][0]
    with SandboxGroup(seed_data=seed, state_dir=tmp_path / "state") as group:
        _salesforce(group["salesforce"].url, "sandbox", "sandbox").Lead.update(lead["Id"], {"LastName": "Renamed"})
        HubSpot(access_token="sandbox-token", host=group["hubspot"].url).crm.contacts.basic_api.update(
            contact["id"], SimplePublicObjectInput(properties={"lastname": "Renamed"}))
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["enrich.json", "hubspot.json", "notify.json",
                                                                 "salesforce.json"]

    with SandboxGroup(seed_data=seed, state_dir=tmp_path / "state") as again:
        sf = _salesforce(again["salesforce"].url, "sandbox", "sandbox")
        assert sf.Lead.get(lead["Id"])["LastName"] == "Renamed"
        hs = HubSpot(access_token="sandbox-token", host=again["hubspot"].url)
        assert hs.crm.contacts.basic_api.get_by_id(contact["id"]).properties["lastname"] == "Renamed"


@pytest.fixture()
def third_kind() -> Iterator[SandboxKind]:
    """A third CRM's sandbox registered from outside the package (here the HubSpot app under another name)."""
    kind = SandboxKind(
        name="pipedrive", label="Pipedrive", factory=HubSpotSandbox, default_port=8703,
        description="a stand-in served by the HubSpot app",
        options=(SandboxOption("access_token", "the API token", str, "sandbox-token"),),
    )
    SANDBOXES.register(kind)
    try:
        yield kind
    finally:
        SANDBOXES.unregister("pipedrive")


def test_a_registered_third_kind_joins_groups_and_the_command_line(third_kind: SandboxKind, seed: SeedData) -> None:
    from crm_sandbox.cli import build_parser

    assert list(available()) == ["salesforce", "hubspot", "pipedrive", "notify", "enrich"]
    args = build_parser().parse_args(["--pipedrive-port", "0", "--pipedrive-access-token", "pd-token"])
    assert (args.pipedrive__port, args.pipedrive__access_token) == (0, "pd-token")
    with SandboxGroup(["pipedrive"], seed_data=seed, options={"pipedrive": {"access_token": "pd-token"}}) as group:
        assert list(group.sandboxes) == ["pipedrive"]
        answer = httpx.get(f"{group['pipedrive'].url}/crm/v3/objects/contacts?limit=2",
                           headers={"Authorization": "Bearer pd-token"})
        assert answer.status_code == HTTPStatus.OK and len(answer.json()["results"]) == 2


def test_a_kind_with_a_taken_name_or_port_is_refused() -> None:
    with pytest.raises(ValueError, match="two sandbox CRMs are named 'hubspot'"):
        SANDBOXES.register(SandboxKind("hubspot", "HubSpot again", HubSpotSandbox, 8799))
    with pytest.raises(ValueError, match="'salesforce' and 'other' both have default port 8701"):
        SANDBOXES.register(SandboxKind("other", "Other", HubSpotSandbox, 8701))
    assert list(available()) == ["salesforce", "hubspot", "notify", "enrich"]
