"""The channels an alert travels through: email (SMTP), Slack (incoming webhook), SMS (a Twilio-shaped API).

Each :func:`send` either returns what the provider answered (:class:`Delivery`) or raises
:class:`ChannelError` saying what went wrong, where, and whether another attempt may pass
(a 4xx SMTP reply, an HTTP 429 or 5xx, a connection that failed) or cannot (a 5xx SMTP
reply, an HTTP 4xx: the address or the credentials are wrong).

Written on the standard library's ``smtplib`` and ``httpx`` (already a dependency) rather
than ``apprise``: apprise's Slack and Twilio plugins post to ``hooks.slack.com`` and
``api.twilio.com`` only, so they could not be pointed at the sandbox sink (or at another
provider with the same API) and tested offline.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from http import HTTPStatus

import httpx

from connector.notify.alert import Alert, ChannelName, OperationsAlert
from connector.notify.settings import Channels, EmailChannel, SlackChannel, SmsChannel
from connector.notify.templates import Message

RETRIABLE_HTTP = frozenset({HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS})


class ChannelError(Exception):
    """Sending failed.

    Attributes:
        retriable: Another attempt may pass (the provider was busy, down or unreachable).
    """

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True)
class Delivery:
    """What the provider answered for a message it took: its id for the message (SMS sid, Message-ID)."""

    provider_id: str | None
    detail: str = ""


def message_id(idempotency_key: str, sender: str) -> str:
    """A stable ``Message-ID`` for an alert email: the same notification sent twice carries the same id."""
    domain = sender.rpartition("@")[2] or "relay.local"
    return f"<relay.{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def send(channels: Channels, channel: ChannelName, alert: Alert | OperationsAlert, address: str, message: Message,
         idempotency_key: str) -> Delivery:
    """Send ``message`` about ``alert`` (a lead's, or one of Relay's own events) to ``address`` through ``channel``.

    Raises:
        ChannelError: naming the channel, the server or URL and what it answered.
    """
    if channel is ChannelName.EMAIL:
        return send_email(channels.email, address, message, idempotency_key)
    if channel is ChannelName.SLACK:
        return send_slack(channels.slack, address, message)
    return send_sms(channels.sms, address, message)


def send_email(settings: EmailChannel, to: str, message: Message, idempotency_key: str) -> Delivery:
    """Hand one email to the SMTP server.

    Raises:
        ChannelError: the server refused (4xx: retriable; 5xx: not) or could not be reached (retriable).
    """
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(idempotency_key, settings.sender)
    mail["X-Relay-Notification"] = idempotency_key
    mail.set_content(message.text)
    where = f"SMTP {settings.host}:{settings.port}"
    try:
        client: smtplib.SMTP
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        with client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            password = settings.password.get_secret_value()
            if settings.username:
                client.login(settings.username, password)
            refused = client.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in exc.recipients.items())
        raise ChannelError(f"{where} refused the recipient ({detail})",
                           retriable=all(400 <= code < 500 for code in codes)) from None
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                           retriable=400 <= exc.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"{where}: {type(exc).__name__}: {exc}", retriable=True) from None
    if refused:
        detail = "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in refused.items())
        raise ChannelError(f"{where} refused {detail}", retriable=False)
    return Delivery(provider_id=str(mail["Message-ID"]))


def send_slack(settings: SlackChannel, mention: str, message: Message) -> Delivery:
    """Post one message to the Slack incoming webhook (``{"text": ...}``; Slack answers ``ok``).

    Raises:
        ChannelError: 429 or 5xx and unreachable servers are retriable; any other refusal is not.
    """
    url = settings.webhook_url.get_secret_value().strip()
    lead_in = f"{mention} " if mention else ""
    text = f"{lead_in}*{message.subject}*\n{message.text}"
    answer = _post(f"Slack webhook {_shown(url)}", settings.timeout_seconds,
                   lambda client: client.post(url, json={"text": text}))
    return Delivery(provider_id=None, detail=answer.text[:200])


def send_sms(settings: SmsChannel, to: str, message: Message) -> Delivery:
    """Create one message through the SMS API: ``POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json``
    with form fields ``To``, ``From``, ``Body`` and basic auth (sid, token); 201 answers the message's ``sid``.

    Raises:
        ChannelError: 429 or 5xx and unreachable servers are retriable; any other refusal is not.
    """
    sid = settings.account_sid.strip()
    url = f"{settings.base_url}/2010-04-01/Accounts/{sid}/Messages.json"
    auth = (sid, settings.auth_token.get_secret_value())
    answer = _post(f"SMS API {url}", settings.timeout_seconds,
                   lambda client: client.post(url, data={"To": to, "From": settings.sender, "Body": message.sms},
                                              auth=auth))
    try:
        body = answer.json()
    except ValueError:
        body = {}
    provider_id = body.get("sid") if isinstance(body, dict) else None
    return Delivery(provider_id=str(provider_id) if provider_id else None, detail=str(body.get("status", ""))
                    if isinstance(body, dict) else "")


def _post(where: str, timeout: float, request: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
    try:
        with httpx.Client(timeout=timeout) as client:
            answer = request(client)
    except httpx.HTTPError as exc:
        raise ChannelError(f"{where}: {type(exc).__name__}: {exc}", retriable=True) from None
    if answer.is_success:
        return answer
    retriable = answer.status_code in RETRIABLE_HTTP or answer.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR
    raise ChannelError(f"{where} answered {answer.status_code} {answer.text[:300].strip()}", retriable=retriable)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _shown(url: str) -> str:
    """A webhook URL without its secret path (``https://hooks.slack.com/services/T.../…``)."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    first = path.split("/")[:2]
    return f"{scheme}://{host}/{'/'.join(first)}/…"
