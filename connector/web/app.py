"""``relay serve``: the HTTP side of Relay (webhook intake, health, metrics).

``POST /webhooks/{kind}`` (and ``/webhooks/{kind}/{connection}`` when several connections
of a kind are configured) takes what a CRM pushes. Its CRM unit checks the request (for
HubSpot the v3 signature and its age) and reads the events; the events are stored in the
webhook inbox, each logical event once, **before** the CRM gets its 200. A request Relay
refuses gets the status its unit names (401 for a bad or stale signature, 400 for a
malformed body, 413 for one too large, 415 for the wrong content type) and an error naming
what is wrong (JSON, or the answer the CRM expects, e.g. a SOAP fault for Salesforce), a log line and a count in ``/metrics``; it never reaches the store
or the decision core. A store that cannot be reached answers 503, so the CRM delivers
again later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from connector.config.loader import RelayConfig
from connector.crms import CrmUnit, UnknownCrm, crm_unit
from connector.crms.intake import WebhookRefused, WebhookRequest
from connector.pipeline.console import Console
from connector.pipeline.context import utc_now
from connector.pipeline.dashboard import FigureCache
from connector.pipeline.events import EventPump
from connector.pipeline.intake import EventInbox, InboxUnavailable, Stored
from connector.web.capture import capture_router
from connector.web.console.api import API_PREFIX, ApiError, api_router
from connector.web.console.dashboard import (
    CACHE_SECONDS,
    STATIC,
    STATIC_PREFIX,
    dashboard_router,
    warm_figures,
)
from connector.web.console.dashboard import PREFIX as DASHBOARD

log = logging.getLogger(__name__)

HANDOFF_WINDOW = 0.2
"""Seconds during which deliveries share one job for the workers (``relay serve --no-decide``); the
job settles as long before its first claim (``jobs.tasks.EVENTS_SETTLE``)."""
MAX_BODY_BYTES = 1_000_000
"""The largest webhook body read (a HubSpot batch of 100 events is a few tens of kB)."""


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("relay_webhook_requests", "Webhook requests by CRM kind, connection and outcome",
                                ["kind", "connection", "outcome"], registry=self.registry)
        self.events = Counter("relay_webhook_events", "Webhook events stored (new) or recognised as repeats",
                              ["kind", "connection", "result"], registry=self.registry)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(
    config: RelayConfig,
    engine: Engine,
    *,
    clock: Callable[[], datetime] = utc_now,
    public_url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    decide: bool = False,
    on_stored: Callable[[], object] | None = None,
    start_sync: Callable[[str, bool], str] | None = None,
    warm_dashboard: bool = False,
) -> FastAPI:
    """The ASGI app of ``relay serve`` for ``config``, storing into ``engine``.

    Args:
        config: Relay's configuration (its connections and their credentials).
        engine: Relay's store.
        clock: Now (signature ages are measured against it).
        public_url: The scheme and host CRMs call Relay at, when a proxy stands in front
            (``RELAY_PUBLIC_URL``); signatures cover the URL as called.
        max_body_bytes: Larger bodies are refused with 413 before they are read whole.
        decide: Decide stored events as they arrive (an :class:`EventPump` in this process),
            instead of leaving them to ``relay events`` or the worker's minute.
        on_stored: Called (in a worker thread) once new events are stored, when this process
            does not decide them: ``relay serve --no-decide`` enqueues a job for ``relay worker``.
        start_sync: How the admin API starts a sync (``connection, full`` in, how out): ``relay serve
            --no-decide`` enqueues a job; by default a thread of this process runs it.
        warm_dashboard: At start, compute the dashboard's team figures in a thread (``relay serve``),
            so the first visitor does not wait for them.
    """
    pump = EventPump(config, engine) if decide else None
    figure_cache = FigureCache(CACHE_SECONDS)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if pump is not None:
            pump.start()
        if warm_dashboard:
            threading.Thread(target=warm_figures, args=(console, figure_cache), name="relay-dashboard-warm",
                             daemon=True).start()
        try:
            yield
        finally:
            if pump is not None:
                pump.stop()

    app = FastAPI(title="Relay", summary="Webhook intake, health, metrics and the admin API of Relay",
                  version="1", docs_url=f"{API_PREFIX}/docs", redoc_url=None,
                  openapi_url=f"{API_PREFIX}/openapi.json", lifespan=lifespan)
    app.state.event_pump = pump
    next_handoff = [0.0]

    async def events_stored() -> None:
        """New events are in the inbox: wake whoever decides them (this process's pump, or the workers).

        The workers are told at most once per ``HANDOFF_WINDOW``: the job waits that long
        before it claims, so it takes every event stored in the window as one batch (one
        read, one write per CRM batch: the API budget is per portal, not per event).
        """
        if pump is not None:
            pump.poke()
        elif on_stored is not None:
            now = time.monotonic()
            if now < next_handoff[0]:
                return  # the job told at the window's start claims these too
            next_handoff[0] = now + HANDOFF_WINDOW
            try:
                await run_in_threadpool(on_stored)
            except Exception as exc:  # stored already: the worker's minute (the reconciler) decides them
                log.warning("events stored, but the workers could not be told (%s: %s); the reconciler will decide "
                            "them within a minute", type(exc).__name__, exc)

    app.state.events_stored = events_stored
    inbox = EventInbox(engine)
    metrics = _Metrics()
    base = public_url.rstrip("/") if public_url else None

    def answer(unit: CrmUnit | None, status: int, code: str | None, message: str | None,
               stored: Stored | None = None) -> Response:
        if unit is not None and unit.webhook_reply is not None:
            media_type, body = unit.webhook_reply(status, code, message)
            return Response(body, status_code=status, media_type=media_type)
        if code is None:
            assert stored is not None
            return JSONResponse({"received": stored.received, "new": stored.new, "repeated": stored.repeated})
        return _error(status, code, message or code)

    def refuse(unit: CrmUnit | None, kind: str, connection: str, request: Request, status: int, code: str,
               message: str) -> Response:
        # Labels only name what relay.yaml configures: a path anyone can invent must not grow the metrics.
        known = unit is not None and connection in config.relay.connections
        metrics.requests.labels(kind if unit is not None else "-", connection if known else "-", code).inc()
        client = request.client.host if request.client else "?"
        log.warning("webhook %r %r from %s refused with %s %s: %s", kind, connection or "-", client, status, code,
                    message)
        return answer(unit, status, code, message)

    def connection_of(unit: CrmUnit, name: str | None) -> tuple[str, Any] | str:
        ours = {n: c for n, c in config.relay.connections.items() if c.kind == unit.kind}
        if name is not None:
            return (name, ours[name]) if name in ours else (
                f"no {unit.label} connection {name!r} in relay.yaml (configured: {', '.join(sorted(ours)) or 'none'})")
        if len(ours) == 1:
            return next(iter(ours.items()))
        if not ours:
            return f"no {unit.label} connection in relay.yaml"
        return (f"{len(ours)} {unit.label} connections ({', '.join(sorted(ours))}): "
                f"post to /webhooks/{unit.kind}/<connection>")

    async def read_body(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return None
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_body_bytes:
                return None
        return bytes(body)

    async def intake(request: Request, kind: str, name: str | None) -> Response:
        try:
            unit = crm_unit(kind)
        except UnknownCrm:
            unit = None
        if unit is None or unit.read_webhook is None:
            return refuse(None, kind, name or "", request, HTTPStatus.NOT_FOUND, "UNKNOWN_WEBHOOK",
                          f"Relay takes no webhooks from {kind!r}")
        found = connection_of(unit, name)
        if isinstance(found, str):
            return refuse(unit, kind, name or "", request, HTTPStatus.NOT_FOUND, "UNKNOWN_CONNECTION", found)
        connection, settings = found
        body = await read_body(request)
        if body is None:
            return refuse(unit, kind, connection, request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "BODY_TOO_LARGE",
                          f"the body is over {max_body_bytes:,} bytes")
        # The path as sent (still percent-encoded): HubSpot signs the URI it called, decoding only a few characters.
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        url = (base if base is not None else f"{request.url.scheme}://{request.url.netloc}") + target
        now = clock()
        webhook = WebhookRequest(method=request.method, url=url, headers={k.lower(): v for k, v in
                                                                          request.headers.items()}, body=body)
        try:
            events = unit.read_webhook(webhook, settings, int(now.timestamp() * 1000))
        except WebhookRefused as refused:
            return refuse(unit, kind, connection, request, refused.status, refused.code, refused.message)
        try:
            # The store's calls block: in a worker thread, so one slow commit does not stall other deliveries.
            stored = await run_in_threadpool(inbox.store, kind, connection, events, now=now)
        except WebhookRefused as refused:
            return refuse(unit, kind, connection, request, refused.status, refused.code, refused.message)
        except InboxUnavailable as exc:  # the store cannot take them now: the CRM must deliver again
            log.error("webhook %s %s: %d events not stored: %s", kind, connection, len(events), exc)
            metrics.requests.labels(kind, connection, "STORE_UNAVAILABLE").inc()
            return answer(unit, HTTPStatus.SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE",
                          "Relay could not store the events; deliver them again later")
        if stored.new:
            await events_stored()
        metrics.requests.labels(kind, connection, "accepted").inc()
        metrics.events.labels(kind, connection, "new").inc(stored.new)
        metrics.events.labels(kind, connection, "repeated").inc(stored.repeated)
        log.info("webhook %s %s: %d events, %d new, %d repeated", kind, connection, stored.received, stored.new,
                 stored.repeated)
        return answer(unit, HTTPStatus.OK, None, None, stored)

    @app.post("/webhooks/{kind}", summary="Take events a CRM pushes (its only connection of that kind)")
    async def webhook(request: Request, kind: str) -> Response:
        return await intake(request, kind, None)

    @app.post("/webhooks/{kind}/{connection}", summary="Take events a CRM pushes, for one named connection")
    async def webhook_for(request: Request, kind: str, connection: str) -> Response:
        return await intake(request, kind, connection)

    app.include_router(capture_router(config, engine, metrics.registry, clock=clock))  # POST /capture/form/{source}
    console = Console(config, engine, clock=clock, start_sync=start_sync)
    app.state.console = console
    app.state.figure_cache = figure_cache
    app.include_router(api_router(console))  # /api/v1: the admin API
    app.include_router(dashboard_router(console, public_url=public_url, cache=figure_cache))  # /dashboard: pages for people
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC), name="dashboard-static")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{DASHBOARD}/", status_code=307)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz", summary="Whether Relay can take events (its store answers)")
    def healthz() -> Response:  # a plain def: FastAPI runs it in a worker thread
        problem = inbox.problem()
        if problem is not None:
            return JSONResponse({"status": "unavailable", "store": problem},
                                status_code=HTTPStatus.SERVICE_UNAVAILABLE)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", summary="Counters in the Prometheus text format")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
