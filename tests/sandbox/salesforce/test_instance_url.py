"""The login answers name the scheme and host:port the client used (plain HTTP stays HTTP)."""

from __future__ import annotations

import re
from http import HTTPStatus

import httpx
from simple_salesforce import Salesforce

from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

_LOGIN = (
    '<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">'
    "<env:Body><n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>admin@sandbox.example</n1:username>"
    "<n1:password>sandbox</n1:password></n1:login></env:Body></env:Envelope>"
)


def _url(box: SalesforceSandbox) -> str:
    assert box.server is not None
    return box.server.url


def test_oauth_token_over_plain_http_names_an_http_instance(sandbox: SalesforceSandbox) -> None:
    base = _url(sandbox)
    answer = httpx.post(f"{base}/services/oauth2/token",
                        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"})
    assert answer.status_code == HTTPStatus.OK
    instance = answer.json()["instance_url"]
    assert instance.startswith("http://127.0.0.1:")
    assert instance == base
    # A raw client follows the instance_url it was given.
    limits = httpx.get(f"{instance}/services/data/v59.0/limits",
                       headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert limits.status_code == HTTPStatus.OK
    assert "DailyApiRequests" in limits.json()


def test_forwarded_https_is_named_in_the_instance_url(sandbox: SalesforceSandbox) -> None:
    answer = httpx.post(f"{_url(sandbox)}/services/oauth2/token", headers={"X-Forwarded-Proto": "https"},
                        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"})
    assert answer.json()["instance_url"] == _url(sandbox).replace("http://", "https://", 1)


def test_soap_login_over_plain_http_names_an_http_server_url(sandbox: SalesforceSandbox) -> None:
    base = _url(sandbox)
    answer = httpx.post(f"{base}/services/Soap/u/59.0", content=_LOGIN,
                        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"})
    assert answer.status_code == HTTPStatus.OK
    server_url = re.search(r"<serverUrl>([^<]+)</serverUrl>", answer.text)
    assert server_url is not None
    assert server_url.group(1).startswith(f"{base}/services/Soap/u/59.0/")


def test_sdk_with_the_loopback_transport_uses_an_http_instance_url(sandbox: SalesforceSandbox) -> None:
    session = sandbox_session(_url(sandbox))
    token = session.post("https://login.salesforce.com/services/oauth2/token",
                         data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}).json()
    assert token["instance_url"].startswith("http://127.0.0.1:")
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session, version="59.0")
    created = sf.Lead.create({"LastName": "Http", "Company": "Globex"})
    assert sf.Lead.get(created["id"])["Company"] == "Globex"
    # The SOAP login path too: simple-salesforce keeps host:port of serverUrl and the transport does the rest.
    by_password = Salesforce(username="admin@sandbox.example", password="sandbox", security_token="", session=session)
    assert by_password.query(f"SELECT Id FROM Lead WHERE Id = '{created['id']}'")["totalSize"] == 1
