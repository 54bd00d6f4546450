"""HTTP helpers shared by the HubSpot sandbox's handlers: JSON answers, errors, parameters, batches."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from crm_sandbox.common import call_counter
from crm_sandbox.hubspot import errors

BATCH_LIMIT = 100
PAGE_LIMIT = 100

Handler = Callable[[Request], Awaitable[Response]]


def json_response(status: int, body: Any) -> Response:
    """A JSON answer serialised once."""
    return Response(
        json.dumps(body, separators=(",", ":")).encode(), status_code=int(status), media_type="application/json;charset=utf-8"
    )


def no_content() -> Response:
    """An empty 204 answer."""
    return Response(status_code=HTTPStatus.NO_CONTENT)


def now_iso() -> str:
    """The current time in HubSpot's batch timestamp form."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def endpoint(kind: str) -> Callable[[Handler], Handler]:
    """Wrap a handler: name its kind for the ledger and turn errors into HubSpot's bodies."""

    def wrap(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            call_counter(request.scope).kind = kind
            try:
                return await handler(request)
            except errors.HubSpotError as exc:
                answer = json_response(exc.status, exc.body())
                answer.headers.update(exc.headers)
                return answer

        run.__name__ = handler.__name__
        return run

    return wrap


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def inflate(raw: bytes, encoding: str) -> bytes:
    """The request body decoded from its ``Content-Encoding`` (gzip, x-gzip, deflate or identity).

    Args:
        raw: the body as sent.
        encoding: the ``Content-Encoding`` header value (case-insensitive, may be empty).

    Raises:
        HubSpotError: a 400 naming the encoding when it is unknown or the body does not inflate.
    """
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return raw
    if name not in _WBITS:
        raise errors.validation_error(f"Unsupported Content-Encoding {encoding!r}: send gzip, deflate or identity")
    try:
        return zlib.decompress(raw, _WBITS[name])
    except zlib.error:
        if name == "deflate":  # some clients send raw deflate without the zlib header
            try:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
            except zlib.error:
                pass
        raise errors.validation_error(f"Invalid input: the body is not valid {name} data (Content-Encoding: {encoding})") from None


async def read_json(request: Request) -> Any:
    """The request body as JSON (inflated when gzip/deflate encoded); HubSpot's 400 when it is not."""
    raw = inflate(await request.body(), request.headers.get("content-encoding", ""))
    if not raw.strip():
        raise errors.validation_error("Invalid input JSON: the request body is empty")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise errors.validation_error(f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise errors.validation_error("Invalid input JSON: the body is not UTF-8") from None


def list_param(request: Request, name: str) -> list[str] | None:
    """A list query parameter, sent as repeated keys or comma-separated (both accepted)."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    return names


def bool_param(request: Request, name: str) -> bool:
    """A boolean query parameter (``true``/``True``/``1``)."""
    value = request.query_params.get(name)
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    """A positive integer query parameter, capped at ``maximum``."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise errors.validation_error(f"Query parameter {name} must be an integer, got {value!r}") from None
    if number < 1:
        raise errors.validation_error(f"Query parameter {name} must be at least 1, got {number}")
    return min(number, maximum) if maximum else number


def batch_inputs(body: Any) -> list[Any]:
    """The ``inputs`` of a batch body; 400 when missing or above 100."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise errors.validation_error("Invalid input JSON: a batch body needs an 'inputs' list")
    inputs = body["inputs"]
    if len(inputs) > BATCH_LIMIT:
        raise errors.validation_error(
            f"Too many inputs: {len(inputs)} given, a batch takes at most {BATCH_LIMIT}", context={"inputs": [str(len(inputs))]}
        )
    return inputs


def batch_answer(results: list[Any], problems: list[dict[str, Any]], started: str, ok: int) -> Response:
    """A batch answer: ``ok`` status when all succeeded, 207 with ``errors``/``numErrors`` otherwise."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso()}
    if problems:
        body["numErrors"] = len(problems)
        body["errors"] = problems
        return json_response(HTTPStatus.MULTI_STATUS, body)
    return json_response(ok, body)


def input_id(item: Any, where: str) -> str:
    """The ``id`` of a batch input item as a string."""
    if not isinstance(item, dict) or item.get("id") is None or isinstance(item.get("id"), (dict, list, bool)):
        raise errors.validation_error(f"{where}: each input needs an 'id'")
    return str(item["id"])
