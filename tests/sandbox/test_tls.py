"""The sandboxes over HTTPS: official SDKs connect unchanged once they trust the sandbox's CA.

simple-salesforce gets the CA through ``session.verify`` (or ``REQUESTS_CA_BUNDLE``),
hubspot-api-client through its ``ssl_ca_cert`` setting; plain HTTP keeps working beside it.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
import requests
from hubspot import HubSpot
from simple_salesforce import Salesforce

from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.registry import SandboxGroup
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import SeedData, generate
from crm_sandbox.tls import SandboxTLS, SandboxTLSError

LOGIN = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}


@pytest.fixture(scope="module")
def seed() -> SeedData:
    return generate(seed=11, leads=25)


@pytest.fixture(scope="module")
def group(seed: SeedData) -> Iterator[SandboxGroup]:
    with SandboxGroup(seed_data=seed, tls=True) as running:
        yield running


def test_both_sandboxes_serve_https_with_one_ca(group: SandboxGroup) -> None:
    assert group.ca_bundle is not None and group.ca_bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for settings in group.client_settings():
        assert settings.base_url.startswith("https://127.0.0.1:")
        assert settings.ca_bundle == group.ca_bundle
        assert f"--cacert {group.ca_bundle} " in settings.try_command
    assert group.env()["REQUESTS_CA_BUNDLE"] == group.env()["SSL_CERT_FILE"] == str(group.ca_bundle)
    assert f"export REQUESTS_CA_BUNDLE={group.ca_bundle} SSL_CERT_FILE={group.ca_bundle}" in group.describe()


def test_a_client_that_does_not_trust_the_ca_is_refused(group: SandboxGroup) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"{group['hubspot'].url}/crm/v3/objects/contacts")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{group['hubspot'].url}/crm/v3/objects/contacts", verify=ssl.create_default_context())


def test_simple_salesforce_over_https_with_session_verify(
    group: SandboxGroup, seed: SeedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override session.verify (see the README): a clean shell.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    base = group["salesforce"].url
    session = requests.Session()
    session.verify = str(group.ca_bundle)
    token = session.post(f"{base}/services/oauth2/token", data=LOGIN).json()
    assert token["instance_url"] == base  # https:// as the client used it
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session, version="59.0")
    lead = seed.salesforce["Lead"][3]
    assert sf.Lead.get(lead["Id"])["Email"] == lead.get("Email")
    created = sf.Lead.create({"LastName": "Over TLS", "Company": "Initech"})
    assert sf.query(f"SELECT Company FROM Lead WHERE Id = '{created['id']}'")["records"][0]["Company"] == "Initech"


def test_simple_salesforce_over_https_with_requests_ca_bundle(
    group: SandboxGroup, seed: SeedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed ``export REQUESTS_CA_BUNDLE=...`` is all a requests-based client needs."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(group.ca_bundle))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    base = group["salesforce"].url
    token = requests.post(f"{base}/services/oauth2/token", data=LOGIN).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"])
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] >= len(seed.salesforce["Lead"])


def test_simple_salesforce_password_login_through_the_loopback_session_over_https(
    group: SandboxGroup, seed: SeedData
) -> None:
    """simple-salesforce logs in at ``https://login.salesforce.com``; the session sends it to the sandbox."""
    session = sandbox_session(group["salesforce"].url, ca_bundle=group.ca_bundle)
    sf = Salesforce(username="admin@sandbox.example", password="sandbox", security_token="", session=session)
    account = seed.salesforce["Account"][0]
    assert sf.Account.get(account["Id"])["Name"] == account["Name"]
    with pytest.raises(requests.exceptions.SSLError):
        Salesforce(username="admin@sandbox.example", password="sandbox", security_token="",
                   session=sandbox_session(group["salesforce"].url))


def test_hubspot_sdk_over_https_with_ssl_ca_cert(group: SandboxGroup, seed: SeedData) -> None:
    settings = group["hubspot"].client_settings()
    client = HubSpot(access_token=settings.credentials["access_token"], host=settings.base_url,
                     ssl_ca_cert=str(settings.ca_bundle))
    contact = seed.hubspot["contacts"][2]
    got = client.crm.contacts.basic_api.get_by_id(contact["id"], properties=["email"])
    assert got.properties["email"] == contact["properties"]["email"]


def test_plain_http_beside_https(seed: SeedData) -> None:
    with SandboxGroup(seed_data=seed) as plain:
        assert plain.ca_bundle is None and "REQUESTS_CA_BUNDLE" not in plain.env()
        token = httpx.post(f"{plain['salesforce'].url}/services/oauth2/token", data=LOGIN).json()
        assert token["instance_url"].startswith("http://127.0.0.1:")
        client = HubSpot(access_token="sandbox-token", host=plain["hubspot"].url)
        assert len(client.crm.contacts.basic_api.get_page(limit=3).results) == 3


def test_a_single_sandbox_with_its_own_throwaway_ca_removes_it_at_stop() -> None:
    for box in (SalesforceSandbox(), HubSpotSandbox()):
        server = box.start(tls=True)
        ca = box.ca_bundle
        assert ca is not None and ca.exists()
        assert server.url.startswith("https://")
        answer = httpx.get(f"{server.url}/__sandbox/ledger", verify=ssl.create_default_context(cafile=str(ca)))
        assert answer.status_code == HTTPStatus.OK
        box.stop()
        assert not ca.parent.exists()
        assert box.ca_bundle is None


def test_a_kept_tls_dir_reuses_its_ca_across_restarts(tmp_path: Path) -> None:
    first = SandboxTLS(tmp_path / "tls", names=["sandbox.internal"])
    trusted = first.ca_bundle.read_bytes()
    first_cert = first.cert_file.read_bytes()
    first.cleanup()  # a directory given by the caller is kept
    second = SandboxTLS(tmp_path / "tls", names=["sandbox.internal"])
    assert second.ca_bundle.read_bytes() == trusted
    assert second.cert_file.read_bytes() != first_cert
    assert second.key_file.stat().st_mode & 0o077 == 0
    assert second.names == ("127.0.0.1", "::1", "localhost", "sandbox.internal")
    box = HubSpotSandbox()
    box.start(tls=second)
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        answer = httpx.get(f"{box.url}/crm/v3/owners", headers={"Authorization": "Bearer sandbox-token"}, verify=context)
        assert answer.status_code == HTTPStatus.OK
    finally:
        box.stop()
    assert second.ca_bundle.exists()  # shared material is the caller's to remove


def test_bad_tls_material_is_named(tmp_path: Path) -> None:
    with pytest.raises(SandboxTLSError, match="TLS name 'not a host' is neither an IP address nor a DNS host name"):
        SandboxTLS(tmp_path / "a", names=["not a host"])
    broken = tmp_path / "b"
    broken.mkdir()
    (broken / "ca.pem").write_text("not a certificate\n")
    (broken / "ca-key.pem").write_text("not a key\n")
    with pytest.raises(SandboxTLSError, match=r"ca\.pem and .*ca-key\.pem are not a PEM certificate and key of one CA"):
        SandboxTLS(broken)
