"""Compression as the REST API does it: gzip/deflate request bodies, gzip answers on ``Accept-Encoding``.

Salesforce documents that "REST API decompresses any requests before processing"
(https://developer.salesforce.com/docs/platform/api-rest/guide/intro-rest-compression.html);
Bulk API 2.0 uploads accept the same header. Clients such as go-force send every
body gzipped. :class:`RequestDecompression` inflates the body before any handler reads it;
:func:`compressed` also gzips answers when the client accepts it ("Salesforce compresses a
response only if the request contains an Accept-Encoding ... header").
"""

from __future__ import annotations

import json
import zlib
from http import HTTPStatus

from starlette.middleware.gzip import GZipMiddleware

from crm_sandbox.common import ASGIApp, Message, Receive, Scope, Send

_WBITS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}
MAX_INFLATED = 200 * 1024 * 1024
"""The largest body the sandbox inflates (Bulk API 2.0 accepts 150 MB of CSV per upload)."""


def inflate(body: bytes, encoding: bytes) -> bytes:
    """The decompressed ``body``.

    Args:
        body: the body as received.
        encoding: the ``Content-Encoding`` value (``gzip``, ``x-gzip`` or ``deflate``).

    Raises:
        ValueError: when the body is not valid data of that encoding, or inflates past ``MAX_INFLATED``.
    """
    wbits = _WBITS[encoding]
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise ValueError(f"the {encoding.decode()} body inflates past {MAX_INFLATED} bytes")
        out += inflater.flush()
    except zlib.error as exc:
        if encoding == b"deflate":  # some clients send raw deflate without the zlib header
            try:
                return zlib.decompress(body, -zlib.MAX_WBITS)
            except zlib.error:
                pass
        raise ValueError(f"the body is not valid {encoding.decode()} data: {exc}") from None
    return out


class RequestDecompression:
    """ASGI wrapper that inflates gzip/deflate request bodies and drops their ``Content-Encoding``.

    A body that does not inflate is answered 400 with Salesforce's error list shape.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        encoding = next((v.strip().lower() for k, v in headers if k.lower() == b"content-encoding"), b"")
        if encoding not in _WBITS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            body = inflate(b"".join(chunks), encoding)
        except ValueError as exc:
            payload = json.dumps([{"message": str(exc), "errorCode": "JSON_PARSER_ERROR"}]).encode()
            await send({
                "type": "http.response.start",
                "status": HTTPStatus.BAD_REQUEST,
                "headers": [(b"content-type", b"application/json;charset=UTF-8"), (b"content-length", str(len(payload)).encode())],
            })
            await send({"type": "http.response.body", "body": payload})
            return
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
        kept.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def inflated() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope["headers"] = kept  # in place: the sandbox middleware's per-request counter lives in scope
        await self.app(scope, inflated, send)


def compressed(app: ASGIApp, minimum_size: int = 1000) -> ASGIApp:
    """``app`` with gzip request bodies inflated and answers of ``minimum_size`` bytes or more gzipped on request."""
    return RequestDecompression(GZipMiddleware(app, minimum_size=minimum_size))
