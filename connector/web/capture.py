"""``POST /capture/form/{source}``: people from web forms and partners' systems, stored before the answer.

A post names its source in the path (``capture.sources`` in ``relay.yaml``) and carries the
source's secret in ``X-Relay-Secret`` (compared in constant time with the value of the
environment variable the source names). The body is JSON (an object) or form-encoded; its
fields are checked (:func:`connector.pipeline.submissions.read_fields`) and the submission is
stored in the webhook inbox (provider ``capture``, keyed by the source and the client's
``submission_id`` or a hash of the fields: a repeat stores nothing new) **before** the 202
that names it. ``relay serve`` decides it at once (its event pump), else ``relay events`` or the
worker's minute does.

A refused post gets its status, ``{"error": {"code", "message", "fields"?}}``, a log line and a
count in ``/metrics``: 404 ``UNKNOWN_SOURCE``; 503 ``CAPTURE_SECRET_MISSING`` (the source's
environment variable is unset) or ``STORE_UNAVAILABLE``; 401 ``SECRET_MISSING`` /
``SECRET_INVALID``; 403 ``ORIGIN_NOT_ALLOWED``; 415 ``UNSUPPORTED_MEDIA_TYPE``; 413
``BODY_TOO_LARGE``; 400 ``MALFORMED_BODY``, ``INVALID_FIELDS`` (each field named) or
``UNSTORABLE_SUBMISSION``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from connector.config.capture import CaptureSource
from connector.config.loader import RelayConfig
from connector.crms.intake import WebhookRefused
from connector.pipeline.capture import capture_event
from connector.pipeline.intake import EventInbox, InboxUnavailable
from connector.pipeline.submissions import CAPTURE_PROVIDER, read_fields, submission

log = logging.getLogger(__name__)

SECRET_HEADER = "x-relay-secret"
"""The header carrying a source's secret."""
FORM_TYPES = ("application/json", "application/x-www-form-urlencoded")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def client_address(peer: str | None, forwarded_for: str | None,
                   proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest untrusted hop of ``X-Forwarded-For``.

    Hops are read from the right (each proxy appends the address it was called from); a hop
    that is not an IP address stops the walk at the last address trusted so far.
    """
    if peer is None:
        return None

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in proxies)

    if not forwarded_for or not trusted(peer):
        return peer
    current = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current
        current = hop
        if not trusted(hop):
            return hop
    return current


def _body_fields(content_type: str, body: bytes) -> list[tuple[str, Any]]:
    """The ``(name, value)`` pairs of a JSON object or a form-encoded body."""
    if content_type == "application/json":
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Refused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY", f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Refused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY",
                           f"the body must be a JSON object of fields, got {type(data).__name__}")
        return list(data.items())
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY", f"the form body is not UTF-8 (byte {exc.start})") from None
    try:
        return list(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refused(HTTPStatus.BAD_REQUEST, "MALFORMED_BODY", f"the body is not form-encoded: {exc}") from None


def capture_router(
    config: RelayConfig,
    engine: Engine,
    registry: CollectorRegistry,
    *,
    clock: Callable[[], datetime],
    env: Mapping[str, str] | None = None,
) -> APIRouter:
    """The routes of ``POST /capture/form/{source}`` (and its CORS preflight) for ``config``'s sources.

    Args:
        config: Relay's configuration (``capture:``).
        engine: Relay's store (the inbox).
        registry: Where the request and submission counters are registered (``/metrics``).
        clock: Now (the submission's ``received_at``).
        env: Where the sources' secrets are read, at each request (default ``os.environ``).
    """
    settings = config.relay.capture
    proxies = settings.proxies()
    inbox = EventInbox(engine)
    environment = os.environ if env is None else env
    router = APIRouter()
    requests = Counter("relay_capture_requests", "Form posts by capture source and outcome",
                       ["source", "outcome"], registry=registry)
    stored = Counter("relay_capture_submissions", "Submissions stored (new) or recognised as repeats",
                     ["source", "result"], registry=registry)

    def cors(source: CaptureSource, origin: str | None) -> dict[str, str]:
        if origin is None or not source.allowed_origins or origin.lower() not in source.allowed_origins:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def refuse(request: Request, name: str, refused: _Refused, headers: dict[str, str] | None = None) -> Response:
        known = name in settings.sources  # a path anyone can invent must not grow the metrics
        requests.labels(name if known else "-", refused.code).inc()
        client = request.client.host if request.client else "?"
        log.warning("capture form %r from %s refused with %s %s: %s", name, client, refused.status, refused.code,
                    refused.message)
        error: dict[str, Any] = {"code": refused.code, "message": refused.message}
        if refused.fields is not None:
            error["fields"] = refused.fields
        return JSONResponse({"error": error}, status_code=refused.status, headers=headers)

    def checked_source(name: str) -> CaptureSource:
        source = settings.sources.get(name)
        if source is None:
            raise _Refused(HTTPStatus.NOT_FOUND, "UNKNOWN_SOURCE",
                           f"no capture source {name!r} in relay.yaml (configured: "
                           f"{', '.join(sorted(settings.sources)) or 'none'})")
        return source

    def check_secret(name: str, source: CaptureSource, request: Request) -> None:
        expected = environment.get(source.secret_env, "")
        if not expected:
            raise _Refused(HTTPStatus.SERVICE_UNAVAILABLE, "CAPTURE_SECRET_MISSING",
                           f"capture source {name!r} has no secret: set the environment variable "
                           f"{source.secret_env} (capture.sources.{name}.secret_env)")
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise _Refused(HTTPStatus.UNAUTHORIZED, "SECRET_MISSING", f"send the source's secret in {SECRET_HEADER}")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise _Refused(HTTPStatus.UNAUTHORIZED, "SECRET_INVALID", f"{SECRET_HEADER} is not the secret of "
                                                                      f"source {name!r}")

    def check_origin(name: str, source: CaptureSource, origin: str | None) -> None:
        if origin is not None and source.allowed_origins and origin.lower() not in source.allowed_origins:
            raise _Refused(HTTPStatus.FORBIDDEN, "ORIGIN_NOT_ALLOWED",
                           f"origin {origin!r} may not post to source {name!r} "
                           f"(capture.sources.{name}.allowed_origins)")

    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "BODY_TOO_LARGE", f"the body is over {limit:,} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "BODY_TOO_LARGE", f"the body is over {limit:,} bytes")
        return bytes(body)

    @router.post("/capture/form/{name}", status_code=HTTPStatus.ACCEPTED,
                 summary="Take a person from a web form or a partner (JSON or form-encoded)")
    async def capture_form(request: Request, name: str) -> Response:
        origin = request.headers.get("origin")
        headers: dict[str, str] = {}
        try:
            source = checked_source(name)
            headers = cors(source, origin)
            check_secret(name, source, request)
            check_origin(name, source, origin)
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in FORM_TYPES:
                raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
                               f"send {' or '.join(FORM_TYPES)}, not {content_type or 'no content type'!r}")
            body = await read_body(request)
            fields, problems = read_fields(_body_fields(content_type, body))
            if problems:
                raise _Refused(HTTPStatus.BAD_REQUEST, "INVALID_FIELDS", "; ".join(map(str, problems)),
                               [{"field": p.field, "message": p.message} for p in problems])
            peer = request.client.host if request.client else None
            ip = client_address(peer, request.headers.get("x-forwarded-for"), proxies)
            taken = submission(name, fields, received_at=clock(), channel="form", ip=ip, origin=origin)
            event = capture_event(source, taken)
            try:
                # The store's calls block: in a worker thread, so one slow commit does not stall other posts.
                result = await run_in_threadpool(inbox.store, CAPTURE_PROVIDER, source.connection, [event],
                                                 now=taken.received_at or clock())
            except WebhookRefused as refused:
                raise _Refused(HTTPStatus.BAD_REQUEST, "UNSTORABLE_SUBMISSION", refused.message) from None
            except InboxUnavailable as exc:
                log.error("capture form %s: submission not stored: %s", name, exc)
                raise _Refused(HTTPStatus.SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE",
                               "Relay could not store the submission; send it again later") from None
        except _Refused as refused:
            return refuse(request, name, refused, headers)
        pump = getattr(request.app.state, "event_pump", None)
        if pump is not None and result.new:
            pump.poke()
        requests.labels(name, "accepted").inc()
        stored.labels(name, "new" if result.new else "repeated").inc()
        log.info("capture form %s: submission %s %s", name, taken.key, "stored" if result.new else "repeated")
        return JSONResponse({"submission": taken.key, "new": bool(result.new), "email": taken.email},
                            status_code=HTTPStatus.ACCEPTED, headers=headers)

    @router.options("/capture/form/{name}", include_in_schema=False)
    async def preflight(request: Request, name: str) -> Response:
        source = settings.sources.get(name)
        origin = request.headers.get("origin")
        if source is None or not cors(source, origin):
            return Response(status_code=HTTPStatus.FORBIDDEN)
        return Response(status_code=HTTPStatus.NO_CONTENT, headers={
            **cors(source, origin), "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": f"Content-Type, {SECRET_HEADER}", "Access-Control-Max-Age": "600"})

    return router
