"""The sink's HTTP side: a Slack incoming webhook, an SMS API shaped like Twilio's, and ``/messages``.

* ``POST /slack/services/T…/B…/X…`` with JSON ``{"text": ...}``: answers ``200 ok`` (text), as
  Slack does; an unknown hook answers ``404 no_service``, a body without ``text`` ``400
  invalid_payload``/``no_text``.
* ``POST /sms/2010-04-01/Accounts/{sid}/Messages.json``, form fields ``To``, ``From``, ``Body``,
  basic auth ``sid:token``: answers ``201`` with the message as JSON (``sid`` ``SM…``, ``status``
  ``queued``); wrong credentials ``401`` (code 20003), a missing or malformed field ``400``
  (codes 21604, 21602, 21211), as Twilio does.
* ``GET /messages[?channel=email|slack|sms]``: every message the sink took (emails included);
  ``DELETE /messages`` forgets them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from crm_sandbox.common import call_counter
from crm_sandbox.notify.messages import Channel, MessageLedger, SinkMessage

SMS_PREFIX = "/sms"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
CHANNELS: tuple[Channel, ...] = ("email", "slack", "sms")


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """An error answer in Twilio's shape (``code``, ``message``, ``more_info``, ``status``)."""
    return JSONResponse({"code": code, "message": message,
                         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
                        status_code=status)


def build_app(messages: MessageLedger, *, slack_path: str, sms_account_sid: str, sms_auth_token: str) -> Starlette:
    """The sink's routes (the caller wraps them in the sandbox middleware: ledger and faults)."""

    async def slack(request: Request) -> Response:
        call_counter(request.scope).kind = "slack"
        if request.url.path.rstrip("/") != slack_path:
            return PlainTextResponse("no_service", status_code=HTTPStatus.NOT_FOUND)
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return PlainTextResponse("invalid_payload", status_code=HTTPStatus.BAD_REQUEST)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=HTTPStatus.BAD_REQUEST)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return PlainTextResponse("no_text", status_code=HTTPStatus.BAD_REQUEST)
        messages.add(SinkMessage(id=uuid.uuid4().hex[:16], channel="slack", at=time.time(), sender="",
                                 to=(request.url.path,), subject=None, text=text,
                                 headers={"channel": str(body.get("channel") or "")}))
        call_counter(request.scope).written = 1
        return PlainTextResponse("ok")

    async def sms(request: Request) -> Response:
        call_counter(request.scope).kind = "sms"
        sid = request.path_params["sid"]
        user, password = _basic_auth(request.headers.get("authorization", ""))
        if user != sms_account_sid or password != sms_auth_token or sid != sms_account_sid:
            return twilio_error(HTTPStatus.UNAUTHORIZED, 20003, "Authenticate")
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return twilio_error(HTTPStatus.BAD_REQUEST, 21601, "The request must be form-encoded "
                                "(application/x-www-form-urlencoded).")
        try:
            form = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return twilio_error(HTTPStatus.BAD_REQUEST, 21601, "The request body is not UTF-8.")
        to, sender, text = ((form.get(name) or [""])[0].strip() for name in ("To", "From", "Body"))
        if not to:
            return twilio_error(HTTPStatus.BAD_REQUEST, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            return twilio_error(HTTPStatus.BAD_REQUEST, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not text:
            return twilio_error(HTTPStatus.BAD_REQUEST, 21602, "Message body is required.")
        if not sender:
            return twilio_error(HTTPStatus.BAD_REQUEST, 21603, "A 'From' phone number is required.")
        message_sid = "SM" + uuid.uuid4().hex
        messages.add(SinkMessage(id=message_sid, channel="sms", at=time.time(), sender=sender, to=(to,),
                                 subject=None, text=text))
        call_counter(request.scope).written = 1
        created = format_datetime(datetime.now(UTC), usegmt=True)
        return JSONResponse({
            "sid": message_sid, "account_sid": sid, "to": to, "from": sender, "body": text, "status": "queued",
            "num_segments": str(max(1, -(-len(text) // 153))), "direction": "outbound-api", "api_version": "2010-04-01",
            "date_created": created, "date_updated": created, "date_sent": None, "price": None, "error_code": None,
            "error_message": None, "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
        }, status_code=HTTPStatus.CREATED)

    routes = [
        Route("/slack/services/{rest:path}", slack, methods=["POST"]),
        Route(SMS_PREFIX + "/2010-04-01/Accounts/{sid}/Messages.json", sms, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def build_messages_app(messages: MessageLedger) -> Starlette:
    """``GET``/``DELETE /messages``: the sink's ledger over HTTP (no faults, not in the call ledger)."""

    async def listing(request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"cleared": messages.clear()})
        channel = request.query_params.get("channel")
        if channel is not None and channel not in CHANNELS:
            return JSONResponse({"error": f"no channel {channel!r} (channels: {', '.join(CHANNELS)})"},
                                status_code=HTTPStatus.BAD_REQUEST)
        chosen: Any = channel
        return JSONResponse(messages.as_json(chosen))

    return Starlette(routes=[Route("/messages", listing, methods=["GET", "DELETE"])])


def _basic_auth(header: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password
