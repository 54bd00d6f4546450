"""``/crm/v3/objects/{type}/batch/...``: read, create, update, upsert and archive up to 100 records."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.common import FaultInjector, call_counter
from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import (
    batch_answer,
    batch_inputs,
    bool_param,
    endpoint,
    input_id,
    no_content,
    now_iso,
    read_json,
)
from crm_sandbox.hubspot.objects_api import ObjectsApi
from crm_sandbox.hubspot.state import OBJECT_TYPES, HubSpotState

TRACE = "objectWriteTraceId"
HISTORY_BATCH_LIMIT = 50
"""A batch read with ``propertiesWithHistory`` takes at most 50 inputs (HubSpot answers 400 VALIDATION_ERROR
"The maximum number of inputs supported in a batch request for property histories is 50...")."""


def write_trace(item: Any, index: int) -> str | None:
    """The ``objectWriteTraceId`` an input carries (echoed on its result or error), if any."""
    trace = item.get(TRACE) if isinstance(item, dict) else None
    if trace is None:
        return None
    if isinstance(trace, bool) or not isinstance(trace, (str, int)):
        raise errors.validation_error(f"inputs[{index}].{TRACE} must be a string")
    return str(trace)


def traced(body: dict[str, Any], trace: str | None) -> dict[str, Any]:
    """A rendered result with its input's trace id."""
    if trace is not None:
        body[TRACE] = trace
    return body


class BatchApi:
    """Handlers of the batch endpoints; a record failing inside a batch makes a 207 answer."""

    def __init__(self, state: HubSpotState, faults: FaultInjector, objects: ObjectsApi) -> None:
        self.state = state
        self.faults = faults
        self.objects = objects

    async def batch_read(self, request: Request) -> Response:
        object_type = self.objects.object_type(request)
        body = await read_json(request)
        inputs = batch_inputs(body)
        started = now_iso()
        names = body.get("properties")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise errors.validation_error("properties must be a list of property names")
        history = body.get("propertiesWithHistory")
        if history is not None and (not isinstance(history, list) or not all(isinstance(n, str) for n in history)):
            raise errors.validation_error("propertiesWithHistory must be a list of property names")
        if history and len(inputs) > HISTORY_BATCH_LIMIT:
            # HubSpot's own words for a batch read asking property histories of more than 50 records.
            raise errors.validation_error(
                f"The maximum number of inputs supported in a batch request for property histories is "
                f"{HISTORY_BATCH_LIMIT}. Please reduce the number of items and try again"
            )
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
                rendered = self.state.render(object_type, record, names or None)
                results.append(self.objects.with_history(object_type, rendered, record, history or None))
        call_counter(request.scope).read = len(results)
        return batch_answer(results, [self.objects.missing_error(object_type, missing)] if missing else [], started, HTTPStatus.OK)

    def _fault(self, request: Request) -> bool:
        return self.faults.record_fails(request.url.path)

    def _fault_error(self, object_type: str, where: str, record_id: str | None, trace: str | None) -> dict[str, Any]:
        context: dict[str, list[str]] = {}
        if record_id is not None:
            context["ids"] = [record_id]
        if trace is not None:
            context[TRACE] = [trace]
        return errors.batch_error(
            "error",
            "INTERNAL_ERROR",
            f"Could not write {OBJECT_TYPES[object_type][1]} {where}: a temporary failure occurred, try again",
            context or {"inputs": [where]},
        )

    async def batch_create(self, request: Request) -> Response:
        object_type = self.objects.object_type(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        prepared = []
        with self.state.lock:
            for index, item in enumerate(inputs):
                if not isinstance(item, dict):
                    raise errors.validation_error(f"inputs[{index}] must be an object with 'properties'")
                values = self.state.check_properties(object_type, item.get("properties"), creating=True)
                links = self.objects.associations_input(object_type, item.get("associations"), f"inputs[{index}]")
                self.state.check_unique(object_type, values, None)
                prepared.append((values, links, write_trace(item, index)))
            self._check_batch_duplicates(object_type, [values for values, _, _ in prepared])
            results, problems = [], []
            for index, (values, links, trace) in enumerate(prepared):
                if self._fault(request):
                    problems.append(self._fault_error(object_type, f"inputs[{index}]", None, trace))
                    continue
                record = self.state.create(object_type, values)
                self.objects.link(object_type, record["id"], links)
                results.append(traced(self.state.render(object_type, record, None, everything=True), trace))
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.CREATED)

    def _check_batch_duplicates(self, object_type: str, rows: list[dict[str, str | None]]) -> None:
        for name in self.state.unique_names(object_type):
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
        object_type = self.objects.object_type(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        with self.state.lock:
            planned = []
            missing = []
            keys = [input_id(item, f"inputs[{index}]") for index, item in enumerate(inputs)]
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            if repeated:
                raise errors.validation_error(f"Duplicate IDs found in batch input: [{', '.join(repeated)}]")
            for index, (item, key) in enumerate(zip(inputs, keys, strict=True)):
                id_property = item.get("idProperty")
                if id_property is not None and not isinstance(id_property, str):
                    raise errors.validation_error(f"inputs[{index}].idProperty must be a property name")
                values = self.state.check_properties(object_type, item.get("properties"), creating=False)
                trace = write_trace(item, index)
                record = self.state.find(object_type, key, id_property)
                if record is None:
                    missing.append(key)
                    continue
                self.state.check_unique(object_type, values, record["id"])
                planned.append((record, values, trace))
            results, problems = [], []
            for record, values, trace in planned:
                if self._fault(request):
                    problems.append(self._fault_error(object_type, record["id"], record["id"], trace))
                    continue
                self.state.update(object_type, record, values)
                results.append(traced(self.state.render(object_type, record, None, everything=True), trace))
            if missing:
                problems.append(self.objects.missing_error(object_type, missing))
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.OK)

    async def batch_upsert(self, request: Request) -> Response:
        object_type = self.objects.object_type(request)
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        with self.state.lock:
            planned: list[tuple[dict[str, Any] | None, dict[str, str | None], str | None]] = []
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
                planned.append((record, values, write_trace(item, index)))
            results, problems = [], []
            for index, (record, values, trace) in enumerate(planned):
                if self._fault(request):
                    problems.append(self._fault_error(object_type, f"inputs[{index}]", str(inputs[index]["id"]), trace))
                    continue
                created = record is None
                if record is None:
                    record = self.state.create(object_type, values)
                else:
                    self.state.update(object_type, record, values)
                rendered = traced(self.state.render(object_type, record, None, everything=True), trace)
                rendered["new"] = created
                results.append(rendered)
        call_counter(request.scope).written = len(results)
        return batch_answer(results, problems, started, HTTPStatus.OK)

    async def batch_archive(self, request: Request) -> Response:
        object_type = self.objects.object_type(request)
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

    def routes(self) -> list[Route]:
        """The batch routes (before the single-record ones, whose ``{object_id}`` would match them)."""
        base = "/crm/v3/objects/{object_type}/batch"
        return [
            Route(f"{base}/read", endpoint("batch_read")(self.batch_read), methods=["POST"]),
            Route(f"{base}/create", endpoint("batch_create")(self.batch_create), methods=["POST"]),
            Route(f"{base}/update", endpoint("batch_update")(self.batch_update), methods=["POST"]),
            Route(f"{base}/upsert", endpoint("batch_upsert")(self.batch_upsert), methods=["POST"]),
            Route(f"{base}/archive", endpoint("batch_archive")(self.batch_archive), methods=["POST"]),
        ]
