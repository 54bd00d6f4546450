"""Login: the OAuth 2.0 token endpoint and the SOAP ``login`` call simple-salesforce uses.

* ``POST /services/oauth2/token`` (form-encoded): ``client_credentials`` (client id and
  secret in a Basic header or the form), ``password`` and ``refresh_token`` grants.
* ``POST /services/Soap/u/{version}``: the partner API ``login`` (username and password,
  optionally followed by the security token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import xml.etree.ElementTree as ET
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from crm_sandbox.salesforce.state import ORG_ID, Org

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


class Credentials:
    """The connected app the sandbox trusts (client id and secret)."""

    def __init__(self, client_id: str = "sandbox", client_secret: str = "sandbox") -> None:
        self.client_id = client_id
        self.client_secret = client_secret

    def check(self, client_id: str | None, client_secret: str | None) -> bool:
        """True when both match (compared in constant time)."""
        return hmac.compare_digest(str(client_id or ""), self.client_id) and hmac.compare_digest(
            str(client_secret or ""), self.client_secret
        )


def new_access_token() -> str:
    """A token shaped like Salesforce's (``00D...!AQ...``)."""
    return f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"


def _oauth_error(error: str, description: str, status: int = HTTPStatus.BAD_REQUEST) -> Response:
    import json

    return Response(json.dumps({"error": error, "error_description": description}), status, media_type="application/json")


def instance_url(request: Request) -> str:
    """The instance URL as the client reached the server: its scheme and ``host:port``.

    A client on plain HTTP is told ``http://127.0.0.1:PORT``; behind a TLS proxy, ``X-Forwarded-Proto``
    names the scheme. simple-salesforce keeps only host and port of it (and builds ``https://`` URLs,
    which the loopback transport sends back to plain HTTP), so both kinds of client work.
    """
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    scheme = forwarded if forwarded in ("http", "https") else request.url.scheme
    host = request.headers.get("host") or request.url.netloc or "127.0.0.1"
    return f"{scheme}://{host}"


def _token_answer(org: Org, request: Request, user_id: str, secret: str, refresh: str | None) -> Response:
    import json

    token = new_access_token()
    with org.lock:
        org.issue_token(user_id, token)
    issued_at = str(int(org.now().timestamp() * 1000))
    identity = f"https://login.salesforce.com/id/{ORG_ID}/{user_id}"
    signature = base64.b64encode(hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()).decode()
    body: dict[str, Any] = {
        "access_token": token,
        "instance_url": instance_url(request),
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
        "scope": "api refresh_token",
    }
    if refresh:
        body["refresh_token"] = refresh
    return Response(json.dumps(body), HTTPStatus.OK, media_type="application/json")


def _basic(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


async def token_endpoint(request: Request, org: Org, creds: Credentials) -> Response:
    """``POST /services/oauth2/token``."""
    raw = await request.body()
    try:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        form = {}
    form.update({k: v for k, v in request.query_params.items() if k not in form})
    grant = form.get("grant_type")
    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    basic_id, basic_secret = _basic(request)
    if basic_id is not None:
        client_id, client_secret = basic_id, basic_secret
    if not grant:
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if grant == "client_credentials":
        if not creds.check(client_id, client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        return _token_answer(org, request, org.admin_id, creds.client_secret, None)
    if grant == "password":
        if client_id != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not creds.check(client_id, client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        with org.lock:
            user = org.check_password(form.get("username", ""), form.get("password", ""))
        if user is None:
            return _oauth_error("invalid_grant", "authentication failure")
        refresh = f"5Aep{secrets.token_urlsafe(40)}"
        with org.lock:
            org.refresh_tokens[refresh] = user["Id"]
        return _token_answer(org, request, user["Id"], creds.client_secret, refresh)
    if grant == "refresh_token":
        if client_id != creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if client_secret is not None and not creds.check(client_id, client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        with org.lock:
            user_id = org.refresh_tokens.get(form.get("refresh_token", ""))
        if user_id is None:
            return _oauth_error("invalid_grant", "expired access/refresh token")
        return _token_answer(org, request, user_id, creds.client_secret, None)
    return _oauth_error("unsupported_grant_type", "grant type not supported")


def _soap(body: str, status: int = HTTPStatus.OK) -> Response:
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sf="urn:fault.partner.soap.sforce.com">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
    return Response(envelope, status, media_type="text/xml; charset=utf-8")


def _fault(code: str, message: str) -> Response:
    return _soap(
        f"<soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>",
        HTTPStatus.INTERNAL_SERVER_ERROR,
    )


async def soap_login(request: Request, org: Org, version: str) -> Response:
    """``POST /services/Soap/u/{version}``: the partner API login."""
    raw = await request.body()
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        return _fault("INVALID_XML", f"could not parse the request: {exc}")
    username = password = None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "username":
            username = (element.text or "").strip()
        elif tag == "password":
            password = element.text or ""
    if username is None or password is None:
        return _fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    with org.lock:
        user = org.check_password(username, password)
    if user is None:
        return _fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    token = new_access_token()
    with org.lock:
        org.issue_token(user["Id"], token)
    base = instance_url(request)
    return _soap(
        "<loginResponse><result>"
        f"<metadataServerUrl>{base}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/{ORG_ID[:15]}</serverUrl>"
        f"<sessionId>{escape(token)}</sessionId><userId>{user['Id']}</userId>"
        f"<userInfo><organizationId>{ORG_ID}</organizationId><userEmail>{escape(str(user.get('Email') or ''))}</userEmail>"
        f"<userFullName>{escape(str(user.get('Name') or ''))}</userFullName><userName>{escape(str(user.get('Username')))}</userName>"
        "</userInfo></result></loginResponse>"
    )
