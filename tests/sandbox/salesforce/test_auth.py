"""Login flows and session errors, through simple-salesforce over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
from sf_helpers import FakeClock, client
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceResourceNotFound,
)

from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session


def _url(box: SalesforceSandbox) -> str:
    assert box.server is not None
    return box.server.url


def test_password_grant_with_consumer_key(sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(
        username="admin@sandbox.example", password="sandbox", consumer_key="sandbox",
        consumer_secret="sandbox", session=sandbox_session(_url(sandbox)),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 2


def test_client_credentials_grant(sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(consumer_key="sandbox", consumer_secret="sandbox", domain="northwind.my", session=sandbox_session(_url(sandbox)))
    assert sf.query("SELECT Id FROM User WHERE Username = 'admin@sandbox.example'")["totalSize"] == 1


def test_soap_login_with_security_token(sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(username="admin@sandbox.example", password="sandbox", security_token="sandboxtoken", session=sandbox_session(_url(sandbox)))
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


def test_soap_login_refuses_a_wrong_password(sandbox: SalesforceSandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username="admin@sandbox.example", password="nope", security_token="", session=sandbox_session(_url(sandbox)))
    assert info.value.code == "INVALID_LOGIN"


def test_bad_credentials_answer_oauth_errors(sandbox: SalesforceSandbox) -> None:
    session = sandbox_session(_url(sandbox))
    token_url = "https://login.salesforce.com/services/oauth2/token"
    wrong_password = session.post(token_url, data={"grant_type": "password", "client_id": "sandbox", "client_secret": "sandbox", "username": "admin@sandbox.example", "password": "x"})
    assert wrong_password.status_code == HTTPStatus.BAD_REQUEST
    assert wrong_password.json() == {"error": "invalid_grant", "error_description": "authentication failure"}
    wrong_secret = session.post(token_url, data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "x"})
    assert wrong_secret.json()["error"] == "invalid_client"


def test_refresh_token_grant_issues_a_working_token(sandbox: SalesforceSandbox) -> None:
    session = sandbox_session(_url(sandbox))
    token_url = "https://login.salesforce.com/services/oauth2/token"
    first = session.post(token_url, data={"grant_type": "password", "client_id": "sandbox", "client_secret": "sandbox", "username": "admin@sandbox.example", "password": "sandbox"}).json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "refresh_token"} <= set(first)
    assert first["token_type"] == "Bearer"
    refreshed = session.post(token_url, data={"grant_type": "refresh_token", "client_id": "sandbox", "client_secret": "sandbox", "refresh_token": first["refresh_token"]}).json()
    sf = Salesforce(instance_url=refreshed["instance_url"], session_id=refreshed["access_token"], session=session)
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 2
    bad = session.post(token_url, data={"grant_type": "refresh_token", "client_id": "sandbox", "refresh_token": "nope"})
    assert bad.json()["error"] == "invalid_grant"


def test_unknown_token_answers_401_invalid_session(sandbox: SalesforceSandbox) -> None:
    sf = Salesforce(instance_url="https://x.my.salesforce.com", session_id="00Dbogus", session=sandbox_session(_url(sandbox)))
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT Id FROM Lead")
    assert info.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_tokens_expire_after_their_ttl(clock: FakeClock) -> None:
    box = SalesforceSandbox(clock=clock, token_ttl=timedelta(minutes=30))
    box.start()
    try:
        sf = client(box)
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0
        clock.advance(minutes=31)
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT COUNT() FROM Lead")
    finally:
        box.stop()


def test_versions_and_old_paths(sandbox: SalesforceSandbox) -> None:
    session = sandbox_session(_url(sandbox))
    versions = session.get("https://x/services/data/").json()
    # A real org lists every served version, oldest first (31.0 = Summer '14 since 21.0-30.0 retired in
    # Summer '25); labels as Salesforce names its releases.
    # https://developer.salesforce.com/docs/platform/connect-rest-api/guide/intro_api_eol.html
    assert versions[0] == {"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"}
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert versions[-1] == {"label": "Summer '25", "url": "/services/data/v64.0", "version": "64.0"}
    auth = {"Authorization": f"Bearer {sandbox.access_token()}"}
    # Third-party clients pin older versions (jsforce, singer taps): those still answer.
    assert session.get("https://x/services/data/v42.0/limits", headers=auth).status_code == HTTPStatus.OK
    # "If you request any resource ... from a retired API version, REST API returns the 410:GONE error code."
    retired = session.get("https://x/services/data/v30.0/limits", headers=auth)
    assert retired.status_code == HTTPStatus.GONE
    assert retired.json()[0]["errorCode"] == "UNSUPPORTED_API_VERSION"
    nonsense = session.get("https://x/services/data/vX/limits", headers=auth)
    assert nonsense.status_code == HTTPStatus.NOT_FOUND
    assert nonsense.json()[0]["errorCode"] == "NOT_FOUND"
    sf = Salesforce(instance_url="https://x", session_id=sandbox.access_token(), session=session, version="61.0")
    assert "DailyApiRequests" in sf.limits()
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("nothing/here")


def test_transport_rejects_a_bad_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        sandbox_session("127.0.0.1:80")
    assert isinstance(sandbox_session("http://127.0.0.1:9"), requests.Session)


def test_a_configured_minimum_version_still_answers_404_below_it() -> None:
    box = SalesforceSandbox(api_version_min="59.0")
    box.start()
    try:
        session = sandbox_session(_url(box))
        auth = {"Authorization": f"Bearer {box.access_token()}"}
        assert session.get("https://x/services/data/v58.0/limits", headers=auth).status_code == HTTPStatus.NOT_FOUND
        assert session.get("https://x/services/data/v59.0/limits", headers=auth).status_code == HTTPStatus.OK
        assert session.get("https://x/services/data/").json()[0]["version"] == "59.0"
    finally:
        box.stop()
