"""The Starlette app speaking HubSpot's CRM v3 objects API.

Routes for records (list, get, create, update, archive, batch, search, merge)
live here; associations v4, owners and properties have their own modules.
Every handler answers HubSpot's JSON shapes; anything a client can send that
is wrong gets HubSpot's 4xx error body, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox.common import FaultInjector, call_counter
from connector.sandbox.hubspot import errors
from connector.sandbox.hubspot.associations import TYPES
from connector.sandbox.hubspot.search import SearchIndex
from connector.sandbox.hubspot.state import OBJECT_TYPES, HubSpotState, resolve_type

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


async def read_json(request: Request) -> Any:
    """The request body as JSON; HubSpot's 400 when it is not."""
    raw = await request.body()
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


class ObjectsApi:
    """Handlers of ``/crm/v3/objects/...``."""

    def __init__(self, state: HubSpotState, faults: FaultInjector, search_lag_ms: int = 0) -> None:
        self.state = state
        self.faults = faults
        self.search_index = SearchIndex(state, lag_ms=search_lag_ms)

    # -- helpers --------------------------------------------------------------------------------

    def _type(self, request: Request) -> str:
        return resolve_type(request.path_params["object_type"])

    def _missing(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        singular = OBJECT_TYPES[object_type][1].upper()
        return errors.batch_error(
            "error",
            "OBJECT_NOT_FOUND",
            f"Could not get some {singular} objects, they may be deleted or not exist. Check that ids are valid.",
            {"ids": ids},
        )

    def _associations_input(self, object_type: str, raw: Any, where: str) -> list[tuple[str, int, int]]:
        """Validate ``associations`` of a create body: [(to type, to id, type id)]."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise errors.validation_error(f"{where}.associations must be a list")
        links = []
        for index, item in enumerate(raw):
            spot = f"{where}.associations[{index}]"
            to = item.get("to") if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            if not isinstance(to, dict) or to.get("id") is None or not isinstance(types, list) or not types:
                raise errors.validation_error(f"{spot} needs 'to': {{'id': ...}} and a non-empty 'types' list")
            for spec in types:
                type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
                kind = TYPES.get(type_id) if isinstance(type_id, int) and not isinstance(type_id, bool) else None
                if kind is None or kind.from_type != object_type:
                    raise errors.validation_error(
                        f"{spot}: associationTypeId {type_id!r} is not a HUBSPOT_DEFINED association from {object_type}"
                    )
                to_id = str(to["id"])
                if self.state.find(kind.to_type, to_id) is None:
                    raise errors.validation_error(f"{spot}: {kind.to_type} {to_id} does not exist")
                links.append((kind.to_type, int(to_id), kind.type_id))
        return links

    def _link(self, object_type: str, record_id: str, links: list[tuple[str, int, int]]) -> None:
        for to_type, to_id, type_id in links:
            self.state.associations.add(object_type, int(record_id), to_type, to_id, type_id)

    # -- single records ------------------------------------------------------------------------

    async def list_records(self, request: Request) -> Response:
        object_type = self._type(request)
        limit = int_param(request, "limit", 10, PAGE_LIMIT)
        after_raw = request.query_params.get("after")
        after: int | None = None
        if after_raw:
            try:
                after = int(after_raw)
            except ValueError:
                raise errors.validation_error(f"Query parameter after must be a paging cursor from paging.next.after, got {after_raw!r}") from None
        archived = bool_param(request, "archived")
        names = list_param(request, "properties")
        linked = list_param(request, "associations")
        with self.state.lock:
            ids, next_after = self.state.page_ids(object_type, after, limit, archived)
            records = self.state.records[object_type]
            results = [self.state.render(object_type, records[str(i)], names, linked) for i in ids]
        call_counter(request.scope).read = len(results)
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"] + [("after", str(next_after))]
            link = f"{request.base_url}{request.url.path.lstrip('/')}?{urlencode(query)}"
            body["paging"] = {"next": {"after": str(next_after), "link": link}}
        return json_response(HTTPStatus.OK, body)

    async def get_record(self, request: Request) -> Response:
        object_type = self._type(request)
        key = request.path_params["object_id"]
        id_property = request.query_params.get("idProperty")
        archived = bool_param(request, "archived")
        with self.state.lock:
            record = self.state.find(object_type, key, id_property)
            if record is None and archived and not id_property:
                candidate = self.state.records[object_type].get(key)
                record = candidate if candidate is not None and candidate["archived"] else None
            if record is None:
                raise errors.not_found("Object not found.  objectId are usually numeric.", {"id": [key]})
            body = self.state.render(object_type, record, list_param(request, "properties"), list_param(request, "associations"))
        call_counter(request.scope).read = 1
        return json_response(HTTPStatus.OK, body)

    async def create_record(self, request: Request) -> Response:
        object_type = self._type(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise errors.validation_error("Invalid input JSON: the body must be an object with 'properties'")
        with self.state.lock:
            values = self.state.check_properties(object_type, body.get("properties"), creating=True)
            links = self._associations_input(object_type, body.get("associations"), "input")
            self.state.check_unique(object_type, values, None)
            record = self.state.create(object_type, values)
            self._link(object_type, record["id"], links)
            answer = self.state.render(object_type, record, None, everything=True)
        call_counter(request.scope).written = 1
        return json_response(HTTPStatus.CREATED, answer)

    async def update_record(self, request: Request) -> Response:
        object_type = self._type(request)
        key = request.path_params["object_id"]
        body = await read_json(request)
        if not isinstance(body, dict):
            raise errors.validation_error("Invalid input JSON: the body must be an object with 'properties'")
        with self.state.lock:
            record = self.state.find(object_type, key, request.query_params.get("idProperty"))
            if record is None:
                raise errors.not_found("Object not found.  objectId are usually numeric.", {"id": [key]})
            values = self.state.check_properties(object_type, body.get("properties"), creating=False)
            self.state.check_unique(object_type, values, record["id"])
            self.state.update(object_type, record, values)
            answer = self.state.render(object_type, record, None, everything=True)
        call_counter(request.scope).written = 1
        return json_response(HTTPStatus.OK, answer)

    async def archive_record(self, request: Request) -> Response:
        object_type = self._type(request)
        key = request.path_params["object_id"]
        with self.state.lock:
            record = self.state.find(object_type, key)
            if record is not None:
                self.state.archive(object_type, record)
                call_counter(request.scope).written = 1
        return no_content()

    # -- batch ---------------------------------------------------------------------------------

    async def batch_read(self, request: Request) -> Response:
        object_type = self._type(request)
        body = await read_json(request)
        inputs = batch_inputs(body)
        started = now_iso()
        names = body.get("properties")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise errors.validation_error("properties must be a list of property names")
        id_property = body.get("idProperty")
        if id_property is not None and not isinstance(id_property, str):
            raise errors.validation_error("idProperty must be a property name")
        archived = bool_param(request, "archived")
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        with self.state.lock:
            if id_property:
                self.state.check_id_property(object_type, id_property)
            seen: set[str] = set()
            for index, item in enumerate(inputs):
                key = input_id(item, f"inputs[{index}]")
                record = self.state.find(object_type, key, id_property)
                if record is None and archived:
                    candidate = self.state.records[object_type].get(key)
                    record = candidate if candidate is not None and candidate["archived"] else None
                if record is None:
                    missing.append(key)
                    continue
                if record["id"] in seen:
                    continue
                seen.add(record["id"])
                results.append(self.state.render(object_type, record, names or None))
        call_counter(request.scope).read = len(results)
        return batch_answer(results, [self._missing(object_type, missing)] if missing else [], started, HTTPStatus.OK)

    def _fault(self, request: Request) -> bool:
        return self.faults.record_fails(request.url.path)

    def _fault_error(self, object_type: str, where: str) -> dict[str, Any]:
        return errors.batch_error(
            "error",
            "INTERNAL_ERROR",
            f"Could not write {OBJECT_TYPES[object_type][1]} {where}: a temporary failure occurred, try again",
            {"ids": [where]},
        )

    async def batch_create(self, request: Request) -> Response:
        object_type = self._type(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        prepared = []
        with self.state.lock:
            for index, item in enumerate(inputs):
                if not isinstance(item, dict):
                    raise errors.validation_error(f"inputs[{index}] must be an object with 'properties'")
                values = self.state.check_properties(object_type, item.get("properties"), creating=True)
                links = self._associations_input(object_type, item.get("associations"), f"inputs[{index}]")
                self.state.check_unique(object_type, values, None)
                prepared.append((values, links))
            self._check_batch_duplicates(object_type, [values for values, _ in prepared])
            results, problems = [], []
            for index, (values, links) in enumerate(prepared):
                if self._fault(request):
                    problems.append(self._fault_error(object_type, f"inputs[{index}]"))
                    continue
                record = self.state.create(object_type, values)
                self._link(object_type, record["id"], links)
                results.append(self.state.render(object_type, record, None, everything=True))
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.CREATED)

    def _check_batch_duplicates(self, object_type: str, rows: list[dict[str, str | None]]) -> None:
        for name in self.state._unique_names(object_type):
            seen: set[str] = set()
            for values in rows:
                value = values.get(name)
                if not value:
                    continue
                if value.lower() in seen:
                    raise errors.validation_error(
                        f"Duplicate value {value!r} for unique property {name} in the batch inputs"
                    )
                seen.add(value.lower())

    async def batch_update(self, request: Request) -> Response:
        object_type = self._type(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        with self.state.lock:
            planned = []
            missing = []
            for index, item in enumerate(inputs):
                key = input_id(item, f"inputs[{index}]")
                id_property = item.get("idProperty")
                if id_property is not None and not isinstance(id_property, str):
                    raise errors.validation_error(f"inputs[{index}].idProperty must be a property name")
                values = self.state.check_properties(object_type, item.get("properties"), creating=False)
                record = self.state.find(object_type, key, id_property)
                if record is None:
                    missing.append(key)
                    continue
                self.state.check_unique(object_type, values, record["id"])
                planned.append((record, values))
            results, problems = [], []
            for record, values in planned:
                if self._fault(request):
                    problems.append(self._fault_error(object_type, record["id"]))
                    continue
                self.state.update(object_type, record, values)
                results.append(self.state.render(object_type, record, None, everything=True))
            if missing:
                problems.append(self._missing(object_type, missing))
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.OK)

    async def batch_upsert(self, request: Request) -> Response:
        object_type = self._type(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        with self.state.lock:
            planned: list[tuple[dict[str, Any] | None, dict[str, str | None]]] = []
            keys: set[tuple[str, str]] = set()
            for index, item in enumerate(inputs):
                key = input_id(item, f"inputs[{index}]")
                id_property = item.get("idProperty") or "hs_object_id"
                if (str(id_property), key.lower()) in keys:
                    raise errors.validation_error(f"inputs[{index}]: duplicate id {key!r} in the batch inputs")
                keys.add((str(id_property), key.lower()))
                if not isinstance(id_property, str):
                    raise errors.validation_error(f"inputs[{index}].idProperty must be a property name")
                self.state.check_id_property(object_type, id_property)
                values = self.state.check_properties(object_type, item.get("properties"), creating=False)
                record = self.state.find(object_type, key, id_property)
                if record is None:
                    if id_property == "hs_object_id":
                        raise errors.validation_error(
                            f"inputs[{index}]: no {OBJECT_TYPES[object_type][1]} with id {key}; upsert creates records only by a unique idProperty"
                        )
                    values = dict(values)
                    values.update(self.state.check_properties(object_type, {id_property: key}, creating=False))
                    values = self.state.check_properties(object_type, values, creating=True)
                    self.state.check_unique(object_type, values, None)
                else:
                    self.state.check_unique(object_type, values, record["id"])
                planned.append((record, values))
            results, problems = [], []
            for index, (record, values) in enumerate(planned):
                if self._fault(request):
                    problems.append(self._fault_error(object_type, f"inputs[{index}]"))
                    continue
                created = record is None
                if record is None:
                    record = self.state.create(object_type, values)
                else:
                    self.state.update(object_type, record, values)
                rendered = self.state.render(object_type, record, None, everything=True)
                rendered["new"] = created
                results.append(rendered)
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.OK)

    async def batch_archive(self, request: Request) -> Response:
        object_type = self._type(request)
        inputs = batch_inputs(await read_json(request))
        written = 0
        with self.state.lock:
            keys = [input_id(item, f"inputs[{index}]") for index, item in enumerate(inputs)]
            for key in keys:
                record = self.state.find(object_type, key)
                if record is not None:
                    self.state.archive(object_type, record)
                    written += 1
        call_counter(request.scope).written = written
        return no_content()

    # -- search and merge ----------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        object_type = self._type(request)
        body = await read_json(request)
        answer = self.search_index.search(object_type, body)
        call_counter(request.scope).read = len(answer["results"])
        return json_response(HTTPStatus.OK, answer)

    async def merge(self, request: Request) -> Response:
        object_type = self._type(request)
        if object_type not in ("contacts", "companies", "deals"):
            raise errors.validation_error(f"Merging is not supported for {object_type}")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise errors.validation_error("Invalid input JSON: the body must be {primaryObjectId, objectIdToMerge}")
        primary_id, other_id = body.get("primaryObjectId"), body.get("objectIdToMerge")
        for name, value in (("primaryObjectId", primary_id), ("objectIdToMerge", other_id)):
            if value is None or isinstance(value, (dict, list, bool)) or str(value) == "":
                raise errors.validation_error(f"{name} is required")
        with self.state.lock:
            primary = self.state.find(object_type, str(primary_id))
            other = self.state.find(object_type, str(other_id))
            if primary is None or other is None:
                absent = [str(v) for v, r in ((primary_id, primary), (other_id, other)) if r is None]
                raise errors.not_found(f"Object not found: {', '.join(absent)}", {"ids": absent})
            if primary["id"] == other["id"]:
                raise errors.validation_error("primaryObjectId and objectIdToMerge must be two different records")
            merged = self.state.merge(object_type, primary, other)
            answer = self.state.render(object_type, merged, None, everything=True)
        call_counter(request.scope).written = 2
        return json_response(HTTPStatus.OK, answer)

    def routes(self) -> list[Route]:
        base = "/crm/v3/objects/{object_type}"
        return [
            Route(f"{base}/batch/read", endpoint("batch_read")(self.batch_read), methods=["POST"]),
            Route(f"{base}/batch/create", endpoint("batch_create")(self.batch_create), methods=["POST"]),
            Route(f"{base}/batch/update", endpoint("batch_update")(self.batch_update), methods=["POST"]),
            Route(f"{base}/batch/upsert", endpoint("batch_upsert")(self.batch_upsert), methods=["POST"]),
            Route(f"{base}/batch/archive", endpoint("batch_archive")(self.batch_archive), methods=["POST"]),
            Route(f"{base}/search", endpoint("search")(self.search), methods=["POST"]),
            Route(f"{base}/merge", endpoint("merge")(self.merge), methods=["POST"]),
            Route(base, endpoint("list")(self.list_records), methods=["GET"]),
            Route(base, endpoint("create")(self.create_record), methods=["POST"]),
            Route(f"{base}/{{object_id}}", endpoint("get")(self.get_record), methods=["GET"]),
            Route(f"{base}/{{object_id}}", endpoint("update")(self.update_record), methods=["PATCH"]),
            Route(f"{base}/{{object_id}}", endpoint("archive")(self.archive_record), methods=["DELETE"]),
        ]


async def not_found_route(request: Request, exc: Exception) -> Response:
    """HubSpot-shaped 404 for unknown paths."""
    return json_response(
        HTTPStatus.NOT_FOUND,
        errors.HubSpotError(HTTPStatus.NOT_FOUND, f"No route for {request.method} {request.url.path}", "OBJECT_NOT_FOUND").body(),
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """HubSpot-shaped 405."""
    return json_response(
        HTTPStatus.METHOD_NOT_ALLOWED,
        errors.HubSpotError(
            HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.url.path}", "VALIDATION_ERROR"
        ).body(),
    )


def build_app(state: HubSpotState, faults: FaultInjector, search_lag_ms: int = 0) -> Starlette:
    """The CRM app (without the sandbox middleware).

    Args:
        state: the portal.
        faults: decides partial batch failures.
        search_lag_ms: how long writes stay invisible to search.
    """
    from connector.sandbox.hubspot.associations_api import AssociationsApi
    from connector.sandbox.hubspot.owners_api import OwnersApi
    from connector.sandbox.hubspot.properties_api import PropertiesApi

    objects = ObjectsApi(state, faults, search_lag_ms)
    routes = [
        *AssociationsApi(state).routes(),
        *OwnersApi(state).routes(),
        *PropertiesApi(state).routes(),
        *objects.routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPStatus.NOT_FOUND: not_found_route, HTTPStatus.METHOD_NOT_ALLOWED: method_not_allowed},
    )
    app.state.objects = objects
    return app
