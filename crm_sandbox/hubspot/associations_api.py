"""``/crm/v4/...`` association endpoints."""

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
    int_param,
    json_response,
    no_content,
    now_iso,
    read_json,
)
from crm_sandbox.hubspot.associations import DEFAULT_TYPE, TYPES, labels
from crm_sandbox.hubspot.state import OBJECT_TYPES, HubSpotState, resolve_type


def _object_id(value: Any, where: str) -> str:
    if value is None or isinstance(value, (dict, list, bool)) or str(value) == "":
        raise errors.validation_error(f"{where}: an object id is required")
    return str(value)


def _nested_id(item: Any, key: str, where: str) -> str:
    inner = item.get(key) if isinstance(item, dict) else None
    if not isinstance(inner, dict):
        raise errors.validation_error(f"{where}.{key} must be an object like {{'id': '123'}}")
    return _object_id(inner.get("id"), f"{where}.{key}.id")


class AssociationsApi:
    """Handlers of the v4 associations API."""

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    def _pair(self, request: Request, from_key: str, to_key: str) -> tuple[str, str]:
        from_type = resolve_type(request.path_params[from_key])
        to_type = resolve_type(request.path_params[to_key])
        if (from_type, to_type) not in DEFAULT_TYPE:
            raise errors.validation_error(f"Associations from {from_type} to {to_type} are not supported")
        return from_type, to_type

    def _exists(self, object_type: str, object_id: str) -> bool:
        return self.state.find(object_type, object_id) is not None

    def _check_types(self, specs: Any, from_type: str, to_type: str, where: str) -> list[int]:
        if not isinstance(specs, list) or not specs:
            raise errors.validation_error(f"{where} must be a non-empty list of {{associationCategory, associationTypeId}}")
        type_ids = []
        for index, spec in enumerate(specs):
            type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
            category = spec.get("associationCategory", "HUBSPOT_DEFINED") if isinstance(spec, dict) else None
            kind = TYPES.get(type_id) if isinstance(type_id, int) and not isinstance(type_id, bool) else None
            if category not in ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"):
                raise errors.validation_error(f"{where}[{index}].associationCategory {category!r} is not valid")
            if kind is None or (kind.from_type, kind.to_type) != (from_type, to_type):
                raise errors.validation_error(
                    f"{where}[{index}]: associationTypeId {type_id!r} is not valid from {from_type} to {to_type}"
                )
            type_ids.append(kind.type_id)
        return type_ids

    def _pair_json(self, from_type: str, from_id: str, to_type: str, to_id: str) -> dict[str, Any]:
        type_ids = self.state.associations.linked(from_type, int(from_id), to_type).get(int(to_id), set())
        return {
            "fromObjectTypeId": OBJECT_TYPES[from_type][0],
            "fromObjectId": int(from_id),
            "toObjectTypeId": OBJECT_TYPES[to_type][0],
            "toObjectId": int(to_id),
            "labels": sorted({TYPES[t].label for t in type_ids if TYPES[t].label}),
        }

    def _default_json(self, from_type: str, from_id: str, to_type: str, to_id: str) -> list[dict[str, Any]]:
        forward = DEFAULT_TYPE[(from_type, to_type)]
        return [
            {"from": {"id": from_id}, "to": {"id": to_id},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": forward}},
            {"from": {"id": to_id}, "to": {"id": from_id},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TYPES[forward].inverse}},
        ]

    def _not_found(self, object_type: str, object_id: str) -> errors.HubSpotError:
        singular = OBJECT_TYPES[object_type][1]
        return errors.not_found(f"No {singular} with id {object_id} exists", {"id": [object_id]})

    # -- single ------------------------------------------------------------------------------

    async def list_associations(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        from_id = _object_id(request.path_params["object_id"], "objectId")
        limit = int_param(request, "limit", 500, 500)
        after_raw = request.query_params.get("after")
        try:
            start = int(after_raw) if after_raw else 0
        except ValueError:
            raise errors.validation_error(f"after must be a paging cursor, got {after_raw!r}") from None
        with self.state.lock:
            if not from_id.isdigit():
                raise self._not_found(from_type, from_id)
            linked = self.state.associations.linked(from_type, int(from_id), to_type)
            ordered = sorted(linked)
            page = ordered[start : start + limit]
            results = [{"toObjectId": to_id, "associationTypes": self.state.associations.v4_types(linked[to_id])} for to_id in page]
        call_counter(request.scope).read = len(results)
        body: dict[str, Any] = {"results": results}
        if start + limit < len(ordered):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return json_response(HTTPStatus.OK, body)

    async def put_default(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        from_id = _object_id(request.path_params["object_id"], "fromObjectId")
        to_id = _object_id(request.path_params["to_id"], "toObjectId")
        started = now_iso()
        with self.state.lock:
            for object_type, object_id in ((from_type, from_id), (to_type, to_id)):
                if not self._exists(object_type, object_id):
                    raise self._not_found(object_type, object_id)
            self.state.associations.add(from_type, int(from_id), to_type, int(to_id), DEFAULT_TYPE[(from_type, to_type)])
            self.state.version += 1
        call_counter(request.scope).written = 1
        body = {"status": "COMPLETE", "results": self._default_json(from_type, from_id, to_type, to_id),
                "startedAt": started, "completedAt": now_iso()}
        return json_response(HTTPStatus.OK, body)

    async def put_labelled(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        from_id = _object_id(request.path_params["object_id"], "objectId")
        to_id = _object_id(request.path_params["to_id"], "toObjectId")
        type_ids = self._check_types(await read_json(request), from_type, to_type, "body")
        with self.state.lock:
            for object_type, object_id in ((from_type, from_id), (to_type, to_id)):
                if not self._exists(object_type, object_id):
                    raise self._not_found(object_type, object_id)
            for type_id in type_ids:
                self.state.associations.add(from_type, int(from_id), to_type, int(to_id), type_id)
            self.state.version += 1
            body = self._pair_json(from_type, from_id, to_type, to_id)
        call_counter(request.scope).written = 1
        return json_response(HTTPStatus.CREATED, body)

    async def delete_single(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        from_id = request.path_params["object_id"]
        to_id = request.path_params["to_id"]
        if from_id.isdigit() and to_id.isdigit():
            with self.state.lock:
                self.state.associations.remove(from_type, int(from_id), to_type, int(to_id))
                self.state.version += 1
        return no_content()

    # -- batch -------------------------------------------------------------------------------

    def _missing_error(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        singular = OBJECT_TYPES[object_type][1]
        return errors.batch_error(
            "error", "OBJECT_NOT_FOUND", f"Could not find {singular} objects with ids {', '.join(ids)}", {"ids": ids}
        )

    def _missing_end(self, from_type: str, from_id: str, to_type: str, to_id: str) -> dict[str, Any] | None:
        """The OBJECT_NOT_FOUND error for the first end of a pair that does not exist, or None."""
        for object_type, object_id in ((from_type, from_id), (to_type, to_id)):
            if not self._exists(object_type, object_id):
                return self._missing_error(object_type, [object_id])
        return None

    async def batch_create(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        results: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        with self.state.lock:
            planned = []
            for index, item in enumerate(inputs):
                where = f"inputs[{index}]"
                from_id = _nested_id(item, "from", where)
                to_id = _nested_id(item, "to", where)
                planned.append((from_id, to_id, self._check_types(item.get("types"), from_type, to_type, f"{where}.types")))
            for from_id, to_id, type_ids in planned:
                missing = self._missing_end(from_type, from_id, to_type, to_id)
                if missing is not None:
                    problems.append(missing)
                    continue
                for type_id in type_ids:
                    self.state.associations.add(from_type, int(from_id), to_type, int(to_id), type_id)
                results.append(self._pair_json(from_type, from_id, to_type, to_id))
            self.state.version += 1
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.CREATED)

    async def batch_default(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        results: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        with self.state.lock:
            pairs = [(_nested_id(i, "from", f"inputs[{n}]"), _nested_id(i, "to", f"inputs[{n}]")) for n, i in enumerate(inputs)]
            for from_id, to_id in pairs:
                missing = self._missing_end(from_type, from_id, to_type, to_id)
                if missing is not None:
                    problems.append(missing)
                    continue
                self.state.associations.add(from_type, int(from_id), to_type, int(to_id), DEFAULT_TYPE[(from_type, to_type)])
                results.extend(self._default_json(from_type, from_id, to_type, to_id))
            self.state.version += 1
        call_counter(request.scope).written = len(pairs) - len(problems)
        return batch_answer(results, problems, started, HTTPStatus.OK)

    async def batch_read(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        results: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        with self.state.lock:
            for index, item in enumerate(inputs):
                if not isinstance(item, dict):
                    raise errors.validation_error(f"inputs[{index}] must be an object like {{'id': '123'}}")
                from_id = _object_id(item.get("id"), f"inputs[{index}].id")
                linked = self.state.associations.linked(from_type, int(from_id), to_type) if from_id.isdigit() else {}
                if not linked:
                    singular_to = OBJECT_TYPES[to_type][1]
                    singular_from = OBJECT_TYPES[from_type][1]
                    problems.append(errors.batch_error(
                        "error", "OBJECT_NOT_FOUND",
                        f"No {singular_to} is associated with {singular_from} {from_id}.",
                        {"fromObjectId": [from_id]},
                        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                    ))
                    continue
                results.append({
                    "from": {"id": from_id},
                    "to": [{"toObjectId": to_id, "associationTypes": self.state.associations.v4_types(types)}
                           for to_id, types in sorted(linked.items())],
                })
        call_counter(request.scope).read = len(results)
        return batch_answer(results, problems, started, HTTPStatus.OK)

    async def batch_archive(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        inputs = batch_inputs(await read_json(request))
        with self.state.lock:
            for index, item in enumerate(inputs):
                from_id = _nested_id(item, "from", f"inputs[{index}]")
                targets = item.get("to")
                if not isinstance(targets, list):
                    raise errors.validation_error(f"inputs[{index}].to must be a list of {{'id': ...}}")
                for n, target in enumerate(targets):
                    to_id = _object_id(target.get("id") if isinstance(target, dict) else None, f"inputs[{index}].to[{n}].id")
                    if from_id.isdigit() and to_id.isdigit():
                        self.state.associations.remove(from_type, int(from_id), to_type, int(to_id))
            self.state.version += 1
        return no_content()

    async def list_labels(self, request: Request) -> Response:
        from_type, to_type = self._pair(request, "from_type", "to_type")
        return json_response(HTTPStatus.OK, {"results": labels(from_type, to_type)})

    def routes(self) -> list[Route]:
        objects = "/crm/v4/objects/{from_type}/{object_id}/associations"
        pairs = "/crm/v4/associations/{from_type}/{to_type}"
        return [
            Route(f"{objects}/default/{{to_type}}/{{to_id}}", endpoint("associations")(self.put_default), methods=["PUT"]),
            Route(f"{objects}/{{to_type}}/{{to_id}}", endpoint("associations")(self.put_labelled), methods=["PUT"]),
            Route(f"{objects}/{{to_type}}/{{to_id}}", endpoint("associations")(self.delete_single), methods=["DELETE"]),
            Route(f"{objects}/{{to_type}}", endpoint("associations")(self.list_associations), methods=["GET"]),
            Route(f"{pairs}/batch/create", endpoint("associations_batch")(self.batch_create), methods=["POST"]),
            Route(f"{pairs}/batch/associate/default", endpoint("associations_batch")(self.batch_default), methods=["POST"]),
            Route(f"{pairs}/batch/read", endpoint("associations_batch")(self.batch_read), methods=["POST"]),
            Route(f"{pairs}/batch/archive", endpoint("associations_batch")(self.batch_archive), methods=["POST"]),
            Route(f"{pairs}/labels", endpoint("associations")(self.list_labels), methods=["GET"]),
        ]
