"""The notification sink: where alerts land in the sandbox (SMTP, a Slack webhook, an SMS API).

It stands in for the mail server, Slack and an SMS provider the way the sandbox CRMs stand in for
Salesforce and HubSpot: a client configured with its :meth:`NotifySandbox.client_settings` sends
real SMTP and HTTP, and every message lands in a ledger readable in Python
(``sink.messages.all()``) and over HTTP (``GET /messages``)::

    sink = NotifySandbox()
    sink.start()                      # HTTP and SMTP on ports the OS picks
    env = sink.client_settings().env  # RELAY_SMTP_HOST, RELAY_SLACK_WEBHOOK_URL, RELAY_SMS_BASE_URL, ...
    ...
    sink.messages.all("sms")
    sink.stop()

Faults (``FaultSettings``, ``PUT /__sandbox/faults``) apply to its HTTP endpoints (``server_error``
answers 500) and to SMTP (path ``/smtp/DATA``: ``server_error`` answers 451); recipients under
``.invalid`` are refused for good (550).
"""

from __future__ import annotations

import json
import shlex
from http import HTTPStatus
from pathlib import Path
from typing import Any

from crm_sandbox.common import (
    ErrorAnswer,
    FaultInjector,
    FaultSettings,
    Ledger,
    Receive,
    SandboxMiddleware,
    Scope,
    Send,
)
from crm_sandbox.kinds import ClientSettings, SandboxKind, SandboxOption, ServedSandbox
from crm_sandbox.notify.app import SMS_PREFIX, build_app, build_messages_app
from crm_sandbox.notify.messages import MessageLedger, SinkMessage
from crm_sandbox.notify.smtp import SmtpListener
from crm_sandbox.runner import SandboxServer

__all__ = ["SANDBOX", "MessageLedger", "NotifySandbox", "SinkMessage"]

SLACK_PATH = "/slack/services/TSANDBOX0/BSANDBOX0/sandboxwebhooksecret"


class _Routes:
    """``/messages`` goes to the ledger's app as is (no faults, no call ledger); the rest through the middleware."""

    def __init__(self, served: SandboxMiddleware, messages: Any) -> None:
        self.served = served
        self.messages = messages

    def __getattr__(self, name: str) -> Any:
        # The runner reaches the middleware's ``closing`` event through this wrapper.
        return getattr(self.__dict__["served"], name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == "/messages":
            await self.messages(scope, receive, send)
            return
        await self.served(scope, receive, send)


class NotifySandbox(ServedSandbox):
    """A mail server, a Slack incoming webhook and an SMS API in a box, recording what they take.

    Args:
        seed_data: ignored (the sink starts empty); accepted so a group can start it with the CRMs.
        faults: fault injection for its HTTP endpoints and its SMTP ``DATA`` (path ``/smtp/DATA``).
        state_file: JSON file of the messages, loaded at creation and saved at stop.
        smtp_port: the SMTP listener's port (0: the OS picks).
        sms_account_sid: the SMS API's account id (the basic-auth user and the path's ``{sid}``).
        sms_auth_token: the SMS API's auth token (the basic-auth password).
        sms_from: the sending number clients are told to use.
    """

    name = "notify"

    def __init__(
        self,
        seed_data: Any = None,
        *,
        faults: FaultSettings | None = None,
        state_file: Path | None = None,
        smtp_port: int = 0,
        sms_account_sid: str = "ACsandbox0000000000000000000000000",
        sms_auth_token: str = "sandbox-sms-token",
        sms_from: str = "+15555550199",
    ) -> None:
        super().__init__()
        del seed_data  # a sink starts empty: there is nothing to seed
        self.state_file = Path(state_file) if state_file else None
        self.messages = MessageLedger()
        if self.state_file is not None and self.state_file.exists():
            self.messages.load_json(json.loads(self.state_file.read_text(encoding="utf-8")))
        self.ledger = Ledger("notify")
        self.faults = FaultInjector(faults)
        self.smtp_port = smtp_port
        self.sms_account_sid = sms_account_sid
        self.sms_auth_token = sms_auth_token
        self.sms_from = sms_from
        self.smtp = SmtpListener(self.messages, self.ledger, self.faults)
        served = SandboxMiddleware(
            build_app(self.messages, slack_path=SLACK_PATH, sms_account_sid=sms_account_sid,
                      sms_auth_token=sms_auth_token),
            ledger=self.ledger, faults=self.faults, rate_limited=self._rate_limited, server_error=self._server_error,
        )
        self.app = _Routes(served, build_messages_app(self.messages))

    def _rate_limited(self, retry_after: float) -> ErrorAnswer:
        body = {"code": 20429, "message": "Too Many Requests", "status": 429}
        return HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": str(max(0, round(retry_after)))}, body

    def _server_error(self) -> ErrorAnswer:
        body = {"code": 20500, "message": "Internal Server Error (injected fault)", "status": 500}
        return HTTPStatus.INTERNAL_SERVER_ERROR, {}, body

    def _serving(self, server: SandboxServer) -> None:
        self.smtp.start(server.host, self.smtp_port)

    def _stop_delivery(self) -> None:
        self.smtp.stop()

    def _save_state(self, path: Path) -> None:
        path.write_text(json.dumps(self.messages.as_json(), indent=1), encoding="utf-8")

    @property
    def slack_webhook_url(self) -> str:
        """The incoming webhook URL the sink answers (``{url}/slack/services/T…/B…/…``)."""
        return self.url + SLACK_PATH

    @property
    def sms_base_url(self) -> str:
        """The SMS API's root (``{url}/sms``): messages are created at ``/2010-04-01/Accounts/{sid}/Messages.json`` under it."""
        return self.url + SMS_PREFIX

    def client_settings(self) -> ClientSettings:
        """What a client needs: the SMTP host and port, the webhook URL, the SMS API and its credentials.

        ``env`` holds the variables Relay's ``config/rules/alerts.yaml`` reads, so Relay's alerts
        land here with no other setup.
        """
        url = self.url
        if self.smtp.port is None or self.smtp.host is None:
            raise RuntimeError("notify sandbox: the SMTP listener is not running")
        cacert = self.curl_cacert()
        return ClientSettings(
            name="notify",
            label="Notification sink",
            base_url=url,
            credentials={"sms_account_sid": self.sms_account_sid, "sms_auth_token": self.sms_auth_token,
                         "slack_webhook_url": self.slack_webhook_url},
            env={
                "RELAY_SMTP_HOST": self.smtp.host,
                "RELAY_SMTP_PORT": str(self.smtp.port),
                "RELAY_SMTP_SECURITY": "none",
                "RELAY_SLACK_WEBHOOK_URL": self.slack_webhook_url,
                "RELAY_SMS_BASE_URL": self.sms_base_url,
                "RELAY_SMS_ACCOUNT_SID": self.sms_account_sid,
                "RELAY_SMS_AUTH_TOKEN": self.sms_auth_token,
                "RELAY_SMS_FROM": self.sms_from,
            },
            try_command=f"curl {cacert}-d '{{\"text\": \"hello\"}}' {shlex.quote(self.slack_webhook_url)} && "
                        f"curl {cacert}{url}/messages",
            ca_bundle=self.ca_bundle,
        )


SANDBOX = SandboxKind(
    name="notify",
    label="Notification sink",
    factory=NotifySandbox,
    default_port=8725,
    description="SMTP, a Slack incoming webhook and a Twilio-shaped SMS API; every message in GET /messages",
    options=(
        SandboxOption("smtp_port", "the SMTP listener's port (0: the OS picks)", int, 0),
        SandboxOption("sms_account_sid", "the SMS API's account id (basic-auth user)", str,
                      "ACsandbox0000000000000000000000000"),
        SandboxOption("sms_auth_token", "the SMS API's auth token (basic-auth password)", str, "sandbox-sms-token"),
        SandboxOption("sms_from", "the sending number clients are told to use", str, "+15555550199"),
    ),
)
"""The notification sink in :mod:`crm_sandbox.registry`."""
