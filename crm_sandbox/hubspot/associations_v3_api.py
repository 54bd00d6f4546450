"""The older v3 associations endpoints, still used by many clients.

Association types are named (``contact_to_company`` is the primary link,
``contact_to_company_unlabeled`` the plain one) or given as a type id string.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.common import call_counter
from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import (
    batch_answer,
    batch_inputs,
    endpoint,
    json_response,
    no_content,
    now_iso,
    read_json,
)
from crm_sandbox.hubspot.associations import DEFAULT_TYPE, TYPES
from crm_sandbox.hubspot.state import OBJECT_TYPES, HubSpotState, resolve_type

_BY_NAME = {kind.v3_name: kind.type_id for kind in TYPES.values()}


def _id_of(item: Any, key: str, where: str) -> str:
    inner = item.get(key) if isinstance(item, dict) else None
    value = inner.get("id") if isinstance(inner, dict) else None
    if value is None or isinstance(value, (dict, list, bool)) or str(value) == "":
        raise errors.validation_error(f"{where}.{key} must be an object like {{'id': '123'}}")
    return str(value)


class AssociationsV3Api:
    """Handlers of ``/crm/v3/associations/...`` and ``/crm/v3/objects/{type}/{id}/associations/...``."""

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    def _pair(self, request: Request) -> tuple[str, str]:
        from_type = resolve_type(request.path_params["from_type"])
        to_type = resolve_type(request.path_params["to_type"])
        if (from_type, to_type) not in DEFAULT_TYPE:
            raise errors.validation_error(f"Associations from {from_type} to {to_type} are not supported")
        return from_type, to_type

    def _type_id(self, name: Any, from_type: str, to_type: str, where: str) -> int:
        text = str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) else ""
        type_id = int(text) if text.isdigit() else _BY_NAME.get(text)
        kind = TYPES.get(type_id) if type_id is not None else None
        if kind is None or (kind.from_type, kind.to_type) != (from_type, to_type):
            raise errors.validation_error(f"{where}: association type {name!r} is not valid from {from_type} to {to_type}")
        return kind.type_id

    def _live(self, object_type: str, object_id: str) -> bool:
        return self.state.find(object_type, object_id) is not None

    def _missing(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        singular = OBJECT_TYPES[object_type][1].upper()
        return errors.batch_error(
            "error", "OBJECT_NOT_FOUND",
            f"Could not get some {singular} objects, they may be deleted or not exist. Check that ids are valid.",
            {"ids": ids},
        )

    def _to_list(self, from_type: str, from_id: str, to_type: str) -> list[dict[str, str]]:
        return self.state.associations.v3_results(from_type, int(from_id), to_type) if from_id.isdigit() else []

    async def batch_create(self, request: Request) -> Response:
        from_type, to_type = self._pair(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        results: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        with self.state.lock:
            planned = []
            for index, item in enumerate(inputs):
                where = f"inputs[{index}]"
                from_id, to_id = _id_of(item, "from", where), _id_of(item, "to", where)
                planned.append((from_id, to_id, self._type_id(item.get("type"), from_type, to_type, f"{where}.type")))
            for from_id, to_id, type_id in planned:
                absent = [(t, i) for t, i in ((from_type, from_id), (to_type, to_id)) if not self._live(t, i)]
                if absent:
                    problems.append(self._missing(absent[0][0], [absent[0][1]]))
                    continue
                self.state.associations.add(from_type, int(from_id), to_type, int(to_id), type_id)
                results.append({"from": {"id": from_id}, "to": {"id": to_id}, "type": TYPES[type_id].v3_name})
            self.state.version += 1
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.CREATED)

    async def batch_read(self, request: Request) -> Response:
        from_type, to_type = self._pair(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        with self.state.lock:
            for index, item in enumerate(inputs):
                value = item.get("id") if isinstance(item, dict) else None
                if value is None or isinstance(value, (dict, list, bool)):
                    raise errors.validation_error(f"inputs[{index}] must be an object like {{'id': '123'}}")
                from_id = str(value)
                if not self._live(from_type, from_id):
                    missing.append(from_id)
                    continue
                results.append({"from": {"id": from_id}, "to": self._to_list(from_type, from_id, to_type)})
        call_counter(request.scope).read = len(results)
        return batch_answer(results, [self._missing(from_type, missing)] if missing else [], started, HTTPStatus.OK)

    async def batch_archive(self, request: Request) -> Response:
        from_type, to_type = self._pair(request)
        inputs = batch_inputs(await read_json(request))
        with self.state.lock:
            pairs = [(_id_of(i, "from", f"inputs[{n}]"), _id_of(i, "to", f"inputs[{n}]")) for n, i in enumerate(inputs)]
            for from_id, to_id in pairs:
                if from_id.isdigit() and to_id.isdigit():
                    self.state.associations.remove(from_type, int(from_id), to_type, int(to_id))
            self.state.version += 1
        return no_content()

    async def list_for_record(self, request: Request) -> Response:
        from_type, to_type = self._pair(request)
        from_id = request.path_params["object_id"]
        with self.state.lock:
            if not self._live(from_type, from_id):
                raise errors.not_found("Object not found.  objectId are usually numeric.", {"id": [from_id]})
            results = self._to_list(from_type, from_id, to_type)
        call_counter(request.scope).read = len(results)
        return json_response(HTTPStatus.OK, {"results": results})

    async def put_for_record(self, request: Request) -> Response:
        from_type, to_type = self._pair(request)
        from_id, to_id = request.path_params["object_id"], request.path_params["to_id"]
        type_id = self._type_id(request.path_params["association_type"], from_type, to_type, "associationType")
        with self.state.lock:
            for object_type, object_id in ((from_type, from_id), (to_type, to_id)):
                if not self._live(object_type, object_id):
                    raise errors.not_found(f"No {OBJECT_TYPES[object_type][1]} with id {object_id} exists", {"id": [object_id]})
            self.state.associations.add(from_type, int(from_id), to_type, int(to_id), type_id)
            self.state.version += 1
            record = self.state.find(from_type, from_id)
            assert record is not None
            body = self.state.render(from_type, record, None, [to_type])
        call_counter(request.scope).written = 1
        return json_response(HTTPStatus.OK, body)

    async def delete_for_record(self, request: Request) -> Response:
        from_type, to_type = self._pair(request)
        from_id, to_id = request.path_params["object_id"], request.path_params["to_id"]
        type_id = self._type_id(request.path_params["association_type"], from_type, to_type, "associationType")
        if from_id.isdigit() and to_id.isdigit():
            with self.state.lock:
                self.state.associations.discard(from_type, int(from_id), to_type, int(to_id), type_id)
                self.state.version += 1
        return no_content()

    def routes(self) -> list[Route]:
        pairs = "/crm/v3/associations/{from_type}/{to_type}/batch"
        single = "/crm/v3/objects/{from_type}/{object_id}/associations/{to_type}"
        return [
            Route(f"{pairs}/create", endpoint("associations_batch")(self.batch_create), methods=["POST"]),
            Route(f"{pairs}/read", endpoint("associations_batch")(self.batch_read), methods=["POST"]),
            Route(f"{pairs}/archive", endpoint("associations_batch")(self.batch_archive), methods=["POST"]),
            Route(single, endpoint("associations")(self.list_for_record), methods=["GET"]),
            Route(f"{single}/{{to_id}}/{{association_type}}", endpoint("associations")(self.put_for_record), methods=["PUT"]),
            Route(f"{single}/{{to_id}}/{{association_type}}", endpoint("associations")(self.delete_for_record), methods=["DELETE"]),
        ]
