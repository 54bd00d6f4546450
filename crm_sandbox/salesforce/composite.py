"""The Composite resource: ``POST /services/data/vXX.X/composite``, a series of subrequests as ONE API call.

As the REST API Developer Guide describes it
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm,
``requests_composite.htm``, ``resources_composite_subrequest_result.htm``):

* the body is ``{"allOrNone"?, "collateSubrequests"?, "compositeRequest": [{method, url, referenceId,
  body?, httpHeaders?}]}``; the answer is ``{"compositeResponse": [{body, httpHeaders, httpStatusCode,
  referenceId}]}`` in request order, with HTTP 200 whatever the subrequests answered;
* "The entire series of requests counts as a single call toward your API limits": one ledger
  entry, one call against the daily allocation, the records read and written of every subrequest;
* up to 25 subrequests, of which up to 5 query operations (query, queryAll, query more) or
  sObject Collections; subrequests run as the same user, in order (``collateSubrequests`` is
  accepted: collation is an optimisation that keeps the outcome);
* a subrequest inherits ``Accept``, ``Authorization`` and ``Content-Type`` from the composite
  request; naming one of them in ``httpHeaders`` fails the whole request with 400;
* ``@{referenceId.field}`` and ``@{referenceId.records[0].Id}`` in a later subrequest's url or
  body take a value from an earlier answer; a reference that finds nothing (the subrequest
  failed, or its answer lacks the value) fails that subrequest with 400 ``PROCESSING_HALTED``
  "Invalid reference specified. No value for ... found in ...", and the others still run;
* with ``allOrNone: true`` the first failure stops the series: its writes are rolled back and
  every other subrequest answers 400 ``PROCESSING_HALTED`` "The transaction was rolled back
  since another operation in the same transaction failed.";
* a failed subrequest answers its own status and Salesforce's usual error list as ``body``.

The resources Composite takes are sObject resources, Query and QueryAll (with query more) and,
from 43.0, sObject Collections; the sandbox answers any other resource in a subrequest 404
``NOT_FOUND``. The wording of the limit errors (``LIMIT_EXCEEDED``) and of malformed requests is
the sandbox's own: the guide does not show Salesforce's.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from crm_sandbox.common import COUNTER_KEY, CallCounter, Message, call_counter
from crm_sandbox.salesforce.errors import SalesforceError, bad_request, not_found
from crm_sandbox.salesforce.http import Ctx, Router, json_answer, read_json
from crm_sandbox.salesforce.state import Org, Record

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
"""Query operations (query, queryAll, query more) and sObject Collections subrequests, together."""
COMPOSITE_SINCE = 38.0
"""The Composite resource exists from API version 38.0 (Winter '17)."""
COLLECTIONS_SINCE = 43.0
"""sObject Collections may be a subrequest from API version 43.0."""
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
"""Subrequest methods, case-sensitive as the guide lists them."""
INHERITED_HEADERS = ("accept", "authorization", "content-type")
"""Headers a subrequest takes from the composite request and may not set itself."""
ROLLED_BACK = "The transaction was rolled back since another operation in the same transaction failed."

_DATA_URL = re.compile(r"^/services/data/v(?P<version>\d{2,3}\.\d)/(?P<rest>.*)$")
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
_REFERENCE = re.compile(r"@\{(?P<ref>[A-Za-z0-9_]+)(?P<path>(?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_STEP = re.compile(r"\.(?P<key>[A-Za-z0-9_]+)|\[(?P<index>\d+)\]")
_QUERY = re.compile(r"^(?:query|queryAll)(?:/.*)?$")
_COLLECTIONS = re.compile(r"^composite/sobjects(?:/.*)?$")
_SOBJECTS = re.compile(r"^sobjects(?:/.*)?$")
_ANSWER_HEADERS_LEFT_OUT = frozenset({"content-length", "content-type", "content-encoding"})
"""Composite "doesn't support the Content-Length header": subrequest answers leave it out (and the body's type)."""


@dataclass
class Subrequest:
    """One checked entry of ``compositeRequest``."""

    method: str
    url: str
    reference_id: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        """The path below ``/services/data/vXX.X/`` (empty when the url is not a data URL)."""
        match = _DATA_URL.match(urlsplit(self.url).path)
        return match.group("rest").rstrip("/") if match else ""


@dataclass
class Outcome:
    """One subrequest's result, as ``compositeResponse`` carries it."""

    reference_id: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status >= HTTPStatus.BAD_REQUEST

    def as_json(self) -> dict[str, Any]:
        return {"body": self.body, "httpHeaders": self.headers, "httpStatusCode": self.status,
                "referenceId": self.reference_id}


class Unresolved(Exception):
    """A ``@{...}`` reference that finds no value."""

    def __init__(self, expression: str, reference_id: str) -> None:
        super().__init__(f"Invalid reference specified. No value for {expression} found in {reference_id}.")


def halted(reference_id: str, message: str) -> Outcome:
    """The 400 ``PROCESSING_HALTED`` answer of a subrequest that was not (or no longer) applied."""
    return Outcome(reference_id, HTTPStatus.BAD_REQUEST, [{"errorCode": "PROCESSING_HALTED", "message": message}])


def resolve(value: Any, answers: dict[str, Any]) -> Any:
    """``value`` with every ``@{ref.path}`` replaced from ``answers`` (the bodies of earlier subrequests).

    A string that is one reference and nothing else takes the referenced value as it is (a number
    stays a number); inside a longer string the value is written as text. Lists and objects are
    resolved throughout.

    Raises:
        Unresolved: a reference to a subrequest without an answer, or to a value its answer lacks.
    """
    if isinstance(value, dict):
        return {key: resolve(item, answers) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, answers) for item in value]
    if not isinstance(value, str) or "@{" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole is not None:
        return _lookup(whole, answers)

    def text(match: re.Match[str]) -> str:
        found = _lookup(match, answers)
        return json.dumps(found) if isinstance(found, dict | list) else str(found)

    return _REFERENCE.sub(text, value)


def _lookup(match: re.Match[str], answers: dict[str, Any]) -> Any:
    reference_id, path = match.group("ref"), match.group("path")
    expression = f"{reference_id}{path}"
    if reference_id not in answers:
        raise Unresolved(expression, reference_id)
    current = answers[reference_id]
    for step in _STEP.finditer(path):
        key, index = step.group("key"), step.group("index")
        if key is not None and isinstance(current, dict) and key in current:
            current = current[key]
        elif index is not None and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        else:
            raise Unresolved(expression, reference_id)
    if current is None:
        raise Unresolved(expression, reference_id)
    return current


def _boolean(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request("JSON_PARSER_ERROR", f"Cannot deserialize instance of boolean from value {value!r} ({name})")
    return value


def parse_request(body: Any) -> tuple[list[Subrequest], bool]:
    """The subrequests and ``allOrNone`` of a composite body, checked against the resource's rules.

    Raises:
        SalesforceError: 400 for a body that is not a composite request, a subrequest without a
            method, url or referenceId (or with a wrong one), a repeated referenceId, an inherited
            header in ``httpHeaders``, or more subrequests or queries than the limits allow.
    """
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise bad_request("JSON_PARSER_ERROR", "The request body must be an object with a 'compositeRequest' list")
    all_or_none = _boolean(body, "allOrNone", False)
    _boolean(body, "collateSubrequests", True)  # accepted; running in order gives the same outcome
    raw = body["compositeRequest"]
    if not raw:
        raise bad_request("JSON_PARSER_ERROR", "compositeRequest is empty: send 1 to 25 subrequests")
    if len(raw) > MAX_SUBREQUESTS:
        raise bad_request("LIMIT_EXCEEDED", f"A composite request can have up to {MAX_SUBREQUESTS} subrequests; "
                          f"this one has {len(raw)}")
    subrequests: list[Subrequest] = []
    seen: set[str] = set()
    for position, item in enumerate(raw):
        where = f"compositeRequest[{position}]"
        if not isinstance(item, dict):
            raise bad_request("JSON_PARSER_ERROR", f"{where} is not a JSON object")
        method, url, reference_id = item.get("method"), item.get("url"), item.get("referenceId")
        if method not in METHODS:
            raise bad_request("JSON_PARSER_ERROR", f"{where}.method must be one of {', '.join(METHODS)}, got {method!r}")
        if not isinstance(url, str) or not url.startswith("/services/data/"):
            raise bad_request("JSON_PARSER_ERROR", f"{where}.url must be a /services/data/vXX.X/... path, got {url!r}")
        if not isinstance(reference_id, str) or not _REFERENCE_ID.match(reference_id):
            raise bad_request("INVALID_INPUT", f"{where}.referenceId must be letters, numbers and underscores, "
                              f"got {reference_id!r}")
        if reference_id in seen:
            raise bad_request("INVALID_INPUT", f"Duplicate referenceId {reference_id!r} in {where}")
        seen.add(reference_id)
        headers = item.get("httpHeaders") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise bad_request("JSON_PARSER_ERROR", f"{where}.httpHeaders must map header names to strings")
        inherited = sorted(name for name in headers if str(name).lower() in INHERITED_HEADERS)
        if inherited:
            raise bad_request("INVALID_INPUT", f"{where}.httpHeaders may not set {', '.join(inherited)}: "
                              "subrequests inherit Accept, Authorization and Content-Type from the composite request")
        subrequests.append(Subrequest(method, url, reference_id, item.get("body"), {str(k): v for k, v in headers.items()}))
    queries = sum(1 for sub in subrequests if _QUERY.match(sub.resource) or _COLLECTIONS.match(sub.resource))
    if queries > MAX_QUERIES:
        raise bad_request("LIMIT_EXCEEDED", f"A composite request can have up to {MAX_QUERIES} query or sObject "
                          f"Collections subrequests; this one has {queries}")
    return subrequests, all_or_none


def _answer_of(response: Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers worth showing and parsed body of a handler's answer."""
    raw = bytes(getattr(response, "body", b"") or b"")
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = raw.decode("utf-8", errors="replace")
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _ANSWER_HEADERS_LEFT_OUT}
    return response.status_code, {_title(k): v for k, v in headers.items()}, body


def _title(name: str) -> str:
    """``location`` -> ``Location`` (starlette keeps header names lower-case)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


class CompositeApi:
    """``/composite``: runs subrequests through the same router as the REST resources.

    Args:
        org: the org (rolled back for ``allOrNone``).
        router: the REST router the subrequests go through.
        api_version_min: the oldest API version the sandbox serves.
        oldest_version: the oldest version Salesforce still serves (older ones answer 410 GONE).
    """

    def __init__(self, org: Org, router: Router, api_version_min: str, oldest_version: int) -> None:
        self.org = org
        self.router = router
        self.min_version = float(api_version_min)
        self.oldest_version = oldest_version

    def register(self, router: Router) -> None:
        """Add ``composite`` to ``router`` (``composite/sobjects`` stays the REST API's)."""
        router.add("composite", GET=self.resources, POST=self.composite)

    def _check_version(self, ctx: Ctx) -> None:
        if float(ctx.version) < COMPOSITE_SINCE:
            raise not_found()

    async def resources(self, ctx: Ctx) -> Response:
        """``GET composite``: the composite resources the sandbox serves."""
        self._check_version(ctx)
        return json_answer({"sobjects": f"/services/data/v{ctx.version}/composite/sobjects"})

    async def composite(self, ctx: Ctx) -> Response:
        """``POST composite``: run the subrequests in order, answer each one's result."""
        self._check_version(ctx)
        subrequests, all_or_none = parse_request(await read_json(ctx.request))
        counter = call_counter(ctx.request.scope)
        counter.kind = "composite"
        if not all_or_none:
            outcomes = [o async for o in self._run_all(ctx, subrequests, counter, stop_at_failure=False)]
        elif all(sub.method == "GET" for sub in subrequests):
            outcomes = self._all_or_none([o async for o in self._run_all(ctx, subrequests, counter,
                                                                         stop_at_failure=True)], subrequests)
        else:
            outcomes = await self._transaction(ctx, subrequests, counter)
        return json_answer({"compositeResponse": [o.as_json() for o in outcomes]})

    async def _transaction(self, ctx: Ctx, subrequests: list[Subrequest], counter: CallCounter) -> list[Outcome]:
        """``allOrNone`` with writes: one transaction, rolled back (outbound messages unsent) on the first failure."""
        with self.org.lock:  # nobody sees, or changes, the org halfway
            saved = copy.deepcopy(self.org.dump())
            held: list[tuple[str, list[Record]]] = []
            listeners = self.org.listeners
            self.org.listeners = [lambda obj, records: held.append((obj, records))]
            try:
                outcomes = [o async for o in self._run_all(ctx, subrequests, counter, stop_at_failure=True)]
            finally:
                self.org.listeners = listeners
            if any(o.failed for o in outcomes):
                self.org.restore(saved)
                counter.written = 0
                return self._all_or_none(outcomes, subrequests)
            for obj, records in held:
                for listener in listeners:
                    listener(obj, records)
            return outcomes

    @staticmethod
    def _all_or_none(outcomes: list[Outcome], subrequests: list[Subrequest]) -> list[Outcome]:
        """After a failure under ``allOrNone``: the failure as it was, every other subrequest halted."""
        failed = next((o for o in outcomes if o.failed), None)
        if failed is None:
            return outcomes
        done = [o if o is failed else halted(o.reference_id, ROLLED_BACK) for o in outcomes]
        return done + [halted(sub.reference_id, ROLLED_BACK) for sub in subrequests[len(outcomes):]]

    async def _run_all(self, ctx: Ctx, subrequests: list[Subrequest], counter: CallCounter, *,
                       stop_at_failure: bool) -> AsyncIterator[Outcome]:
        """Each subrequest's outcome in order (up to the first failure when ``stop_at_failure``)."""
        answers: dict[str, Any] = {}
        for sub in subrequests:
            try:
                url = resolve(sub.url, answers)
                body = resolve(sub.body, answers)
            except Unresolved as exc:
                outcome = halted(sub.reference_id, str(exc))
            else:
                outcome = await self._run(ctx, sub, str(url), body, counter)
            if not outcome.failed:
                answers[sub.reference_id] = outcome.body
            yield outcome
            if outcome.failed and stop_at_failure:
                return

    async def _run(self, ctx: Ctx, sub: Subrequest, url: str, body: Any, counter: CallCounter) -> Outcome:
        """Run one subrequest through the router, as its own request of the same user."""
        parts = urlsplit(url)
        sub_counter = CallCounter()
        try:
            match = _DATA_URL.match(parts.path)
            if match is None:
                raise not_found()
            version, rest = match.group("version"), match.group("rest").rstrip("/")
            if float(version) < self.oldest_version:
                raise SalesforceError(HTTPStatus.GONE, "UNSUPPORTED_API_VERSION",
                                      f"API version {version} is retired and no longer available; use version "
                                      f"{self.oldest_version}.0 or later")
            if float(version) < self.min_version or not self._supported(rest, float(version)):
                raise not_found()
            handler, params = self.router.find(sub.method, rest)
            request = _subrequest(ctx.request, sub.method, parts.path, parts.query, sub.headers, body, sub_counter)
            response = await handler(Ctx(request, version, ctx.user_id), **params)
            status, headers, answer = _answer_of(response)
        except SalesforceError as exc:
            status, headers, answer = exc.status, {}, exc.body()
        except Exception as exc:  # a bug: answer like Salesforce's UNKNOWN_EXCEPTION, as the app does
            status, headers, answer = HTTPStatus.INTERNAL_SERVER_ERROR, {}, [
                {"message": f"An unexpected error occurred: {type(exc).__name__}: {exc}", "errorCode": "UNKNOWN_EXCEPTION"}]
        counter.read += sub_counter.read
        counter.written += sub_counter.written
        return Outcome(sub.reference_id, status, answer, headers)

    @staticmethod
    def _supported(resource: str, version: float) -> bool:
        """Whether Composite takes ``resource`` as a subrequest (sObjects, Query, QueryAll, Collections)."""
        if _COLLECTIONS.match(resource):
            return version >= COLLECTIONS_SINCE
        return bool(_SOBJECTS.match(resource) or _QUERY.match(resource))


def _subrequest(parent: Request, method: str, path: str, query: str, headers: dict[str, str], body: Any,
                counter: CallCounter) -> Request:
    """A request for the router: the composite request's inherited headers, the subrequest's own, its body."""
    raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    inherited = [(k, v) for k, v in parent.scope.get("headers", []) if k.decode("latin-1").lower() in INHERITED_HEADERS]
    own = [(name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace")) for name, value in headers.items()]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": parent.scope.get("asgi", {"version": "3.0"}),
        "http_version": parent.scope.get("http_version", "1.1"),
        "method": method,
        "scheme": parent.scope.get("scheme", "http"),
        "server": parent.scope.get("server"),
        "client": parent.scope.get("client"),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode("latin-1", "replace"),
        "headers": inherited + own,
        COUNTER_KEY: counter,
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(scope, receive)

