"""``/crm/v3/objects/{type}``: list, get, create, update, archive, search and merge of records."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.common import call_counter
from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import (
    PAGE_LIMIT,
    bool_param,
    endpoint,
    int_param,
    json_response,
    list_param,
    no_content,
    read_json,
)
from crm_sandbox.hubspot.associations import TYPES
from crm_sandbox.hubspot.search import SearchIndex
from crm_sandbox.hubspot.state import OBJECT_TYPES, HubSpotState, resolve_type

HISTORY_PAGE_LIMIT = 50


class ObjectsApi:
    """Handlers of ``/crm/v3/objects/...``."""

    def __init__(self, state: HubSpotState, search_lag_ms: int = 0) -> None:
        self.state = state
        self.search_index = SearchIndex(state, lag_ms=search_lag_ms)

    # -- helpers --------------------------------------------------------------------------------

    def object_type(self, request: Request) -> str:
        return resolve_type(request.path_params["object_type"])

    def missing_error(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        singular = OBJECT_TYPES[object_type][1].upper()
        return errors.batch_error(
            "error",
            "OBJECT_NOT_FOUND",
            f"Could not get some {singular} objects, they may be deleted or not exist. Check that ids are valid.",
            {"ids": ids},
        )

    def associations_input(self, object_type: str, raw: Any, where: str) -> list[tuple[str, int, int]]:
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

    def link(self, object_type: str, record_id: str, links: list[tuple[str, int, int]]) -> None:
        for to_type, to_id, type_id in links:
            self.state.associations.add(object_type, int(record_id), to_type, to_id, type_id)

    def with_history(
        self, object_type: str, body: dict[str, Any], record: dict[str, Any], names: list[str] | None
    ) -> dict[str, Any]:
        """``body`` with ``propertiesWithHistory`` for ``names``, placed after ``properties`` as HubSpot does.

        Each property's entries are newest first (:meth:`HubSpotState.property_history`); an unset
        property never written has an empty list and an unknown property is left out ("If any of
        the specified properties are not present on the requested object(s), they will be ignored",
        CRM v3 deals reference, GET /crm/v3/objects/deals/{dealId}).
        """
        if not names:
            return body
        defined = self.state.definitions[object_type]
        history: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            if name not in defined:
                continue
            history[name] = self.state.property_history(object_type, record, name)
        ordered: dict[str, Any] = {}
        for key, item in body.items():
            ordered[key] = item
            if key == "properties":
                ordered["propertiesWithHistory"] = history
        return ordered

    # -- single records ------------------------------------------------------------------------

    async def list_records(self, request: Request) -> Response:
        object_type = self.object_type(request)
        # With propertiesWithHistory a page holds at most 50 records (HubSpot's CRM objects reference).
        cap = HISTORY_PAGE_LIMIT if list_param(request, "propertiesWithHistory") else PAGE_LIMIT
        limit = int_param(request, "limit", 10, cap)
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
            history = list_param(request, "propertiesWithHistory")
            results = [
                self.with_history(object_type, self.state.render(object_type, records[str(i)], names, linked), records[str(i)], history)
                for i in ids
            ]
        call_counter(request.scope).read = len(results)
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"] + [("after", str(next_after))]
            link = f"{request.base_url}{request.url.path.lstrip('/')}?{urlencode(query)}"
            body["paging"] = {"next": {"after": str(next_after), "link": link}}
        return json_response(HTTPStatus.OK, body)

    async def get_record(self, request: Request) -> Response:
        object_type = self.object_type(request)
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
            body = self.with_history(object_type, body, record, list_param(request, "propertiesWithHistory"))
        call_counter(request.scope).read = 1
        return json_response(HTTPStatus.OK, body)

    async def create_record(self, request: Request) -> Response:
        object_type = self.object_type(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise errors.validation_error("Invalid input JSON: the body must be an object with 'properties'")
        with self.state.lock:
            values = self.state.check_properties(object_type, body.get("properties"), creating=True)
            links = self.associations_input(object_type, body.get("associations"), "input")
            self.state.check_unique(object_type, values, None)
            record = self.state.create(object_type, values)
            self.link(object_type, record["id"], links)
            answer = self.state.render(object_type, record, None, everything=True)
        call_counter(request.scope).written = 1
        return json_response(HTTPStatus.CREATED, answer)

    async def update_record(self, request: Request) -> Response:
        object_type = self.object_type(request)
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
        object_type = self.object_type(request)
        key = request.path_params["object_id"]
        with self.state.lock:
            record = self.state.find(object_type, key)
            if record is not None:
                self.state.archive(object_type, record)
                call_counter(request.scope).written = 1
        return no_content()

    # -- batch ---------------------------------------------------------------------------------

    # -- search and merge ----------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        object_type = self.object_type(request)
        body = await read_json(request)
        answer = self.search_index.search(object_type, body)
        call_counter(request.scope).read = len(answer["results"])
        return json_response(HTTPStatus.OK, answer)

    async def merge(self, request: Request) -> Response:
        object_type = self.object_type(request)
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
        """The routes of single records, search and merge (after the batch routes)."""
        base = "/crm/v3/objects/{object_type}"
        return [
            Route(f"{base}/search", endpoint("search")(self.search), methods=["POST"]),
            Route(f"{base}/merge", endpoint("merge")(self.merge), methods=["POST"]),
            Route(base, endpoint("list")(self.list_records), methods=["GET"]),
            Route(base, endpoint("create")(self.create_record), methods=["POST"]),
            Route(f"{base}/{{object_id}}", endpoint("get")(self.get_record), methods=["GET"]),
            Route(f"{base}/{{object_id}}", endpoint("update")(self.update_record), methods=["PATCH"]),
            Route(f"{base}/{{object_id}}", endpoint("archive")(self.archive_record), methods=["DELETE"]),
        ]
