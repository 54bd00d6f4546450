"""``/crm/v3/properties/{objectType}``: property definitions and property groups."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
from crm_sandbox.hubspot.properties import (
    FIELD_TYPES,
    PROPERTY_TYPES,
    PropertyDefinition,
    format_ms,
)
from crm_sandbox.hubspot.state import HubSpotState, resolve_type

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PropertiesApi:
    """Handlers of the properties API."""

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    def _definition(self, object_type: str, body: Any, where: str = "body") -> PropertyDefinition:
        """Validate a ``PropertyCreate`` body into a definition (not stored)."""
        if not isinstance(body, dict):
            raise errors.validation_error(f"{where} must be a property object")
        problems = []
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not isinstance(body.get(key), str) or not body.get(key):
                problems.append(f"{key} is required")
        if problems:
            raise errors.validation_error(f"{where}: " + "; ".join(problems))
        name, kind, field_type, group = body["name"], body["type"], body["fieldType"], body["groupName"]
        if not _NAME.match(name):
            raise errors.validation_error(f"{where}: name {name!r} must start with a lowercase letter and use only a-z, 0-9 and _")
        if kind not in PROPERTY_TYPES:
            raise errors.validation_error(f"{where}: type {kind!r} is not one of {', '.join(PROPERTY_TYPES)}")
        if field_type not in FIELD_TYPES:
            raise errors.validation_error(f"{where}: fieldType {field_type!r} is not one of {', '.join(FIELD_TYPES)}")
        if group not in self.state.groups.get(object_type, {}):
            raise errors.validation_error(f"{where}: property group {group!r} does not exist for {object_type}")
        options = []
        raw_options = body.get("options") or []
        if not isinstance(raw_options, list):
            raise errors.validation_error(f"{where}: options must be a list of {{label, value}}")
        for index, option in enumerate(raw_options):
            if not isinstance(option, dict) or not isinstance(option.get("value"), str) or not isinstance(option.get("label"), str):
                raise errors.validation_error(f"{where}.options[{index}] needs a string label and value")
            options.append((option["label"], option["value"]))
        if kind == "enumeration" and not options:
            raise errors.validation_error(f"{where}: an enumeration property needs options")
        if kind == "bool" and not options:
            options = [("True", "true"), ("False", "false")]
        description = body.get("description") or ""
        now = format_ms(self.state.clock())
        return PropertyDefinition(
            name=name,
            label=body["label"],
            type=kind,
            field_type=field_type,
            group_name=group,
            options=options,
            description=str(description),
            has_unique_value=bool(body.get("hasUniqueValue", False)),
            hubspot_defined=False,
            hidden=bool(body.get("hidden", False)),
            form_field=bool(body.get("formField", False)),
            display_order=int(body["displayOrder"]) if isinstance(body.get("displayOrder"), int) else -1,
            created_at=now,
            updated_at=now,
        )

    def _exists_error(self, name: str) -> errors.HubSpotError:
        return errors.HubSpotError(HTTPStatus.CONFLICT, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")

    def _store(self, object_type: str, definition: PropertyDefinition) -> None:
        self.state.definitions[object_type][definition.name] = definition
        self.state.version += 1

    async def list_properties(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        with self.state.lock:
            results = [d.as_json() for d in self.state.definitions[object_type].values()]
        return json_response(HTTPStatus.OK, {"results": results})

    async def get_property(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        name = request.path_params["name"]
        definition = self.state.definitions[object_type].get(name)
        if definition is None:
            raise errors.not_found(f"Unable to find property {name} for object type {object_type}", {"propertyName": [name]})
        return json_response(HTTPStatus.OK, definition.as_json())

    async def create_property(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        definition = self._definition(object_type, await read_json(request))
        with self.state.lock:
            if definition.name in self.state.definitions[object_type]:
                raise self._exists_error(definition.name)
            self._store(object_type, definition)
        return json_response(HTTPStatus.CREATED, definition.as_json())

    async def update_property(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        name = request.path_params["name"]
        body = await read_json(request)
        with self.state.lock:
            current = self.state.definitions[object_type].get(name)
            if current is None:
                raise errors.not_found(f"Unable to find property {name} for object type {object_type}", {"propertyName": [name]})
            if current.hubspot_defined:
                raise errors.validation_error(f"Property {name} is HubSpot-defined: its definition is read-only")
            if not isinstance(body, dict):
                raise errors.validation_error("body must be a property object")
            merged = current.as_json()
            merged.update({k: v for k, v in body.items() if k in ("label", "description", "groupName", "options", "fieldType", "type", "hidden", "formField", "displayOrder")})
            merged["hasUniqueValue"] = current.has_unique_value
            updated = self._definition(object_type, merged)
            updated.created_at = current.created_at
            self._store(object_type, updated)
        return json_response(HTTPStatus.OK, updated.as_json())

    async def archive_property(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        name = request.path_params["name"]
        with self.state.lock:
            current = self.state.definitions[object_type].get(name)
            if current is not None and current.hubspot_defined:
                raise errors.validation_error(f"Property {name} is HubSpot-defined and cannot be archived")
            if current is not None:
                del self.state.definitions[object_type][name]
                self.state.version += 1
        return no_content()

    async def batch_create(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        definitions = [self._definition(object_type, item, f"inputs[{i}]") for i, item in enumerate(inputs)]
        results, problems = [], []
        with self.state.lock:
            for definition in definitions:
                if definition.name in self.state.definitions[object_type]:
                    problems.append(errors.batch_error(
                        "error", "OBJECT_ALREADY_EXISTS", f"Property named '{definition.name}' already exists.",
                        {"name": [definition.name]},
                    ))
                    continue
                self._store(object_type, definition)
                results.append(definition.as_json())
        return batch_answer(results, problems, started, HTTPStatus.CREATED)

    async def batch_read(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        inputs = batch_inputs(await read_json(request))
        started = now_iso()
        results, missing = [], []
        for index, item in enumerate(inputs):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                raise errors.validation_error(f"inputs[{index}] needs a property 'name'")
            definition = self.state.definitions[object_type].get(name)
            if definition is None:
                missing.append(name)
            else:
                results.append(definition.as_json())
        problems = [errors.batch_error("error", "OBJECT_NOT_FOUND", f"Unable to find properties {', '.join(missing)}",
                                       {"name": missing})] if missing else []
        return batch_answer(results, problems, started, HTTPStatus.OK)

    # -- groups --------------------------------------------------------------------------------

    async def list_groups(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        return json_response(HTTPStatus.OK, {"results": list(self.state.groups[object_type].values())})

    async def get_group(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        group = self.state.groups[object_type].get(request.path_params["group"])
        if group is None:
            raise errors.not_found(f"Unable to find property group {request.path_params['group']}")
        return json_response(HTTPStatus.OK, group)

    async def create_group(self, request: Request) -> Response:
        object_type = resolve_type(request.path_params["object_type"])
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("label"), str):
            raise errors.validation_error("a property group needs a string 'name' and 'label'")
        name = body["name"]
        if not _NAME.match(name):
            raise errors.validation_error(f"group name {name!r} must start with a lowercase letter and use only a-z, 0-9 and _")
        with self.state.lock:
            if name in self.state.groups[object_type]:
                raise errors.HubSpotError(HTTPStatus.CONFLICT, f"Property group named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
            order = body.get("displayOrder")
            group = {"name": name, "label": body["label"], "displayOrder": order if isinstance(order, int) else -1, "archived": False}
            self.state.groups[object_type][name] = group
        return json_response(HTTPStatus.CREATED, group)

    async def list_schemas(self, request: Request) -> Response:
        """``GET /crm/v3/schemas``: the portal's custom object schemas (none: the sandbox has no custom objects)."""
        return json_response(HTTPStatus.OK, {"results": []})

    async def get_schema(self, request: Request) -> Response:
        """``GET /crm/v3/schemas/{objectType}``: 404, as no custom object schema exists."""
        name = request.path_params["object_type"]
        raise errors.not_found(f"Unable to find object schema for {name}: this portal has no custom objects", {"objectType": [name]})

    def routes(self) -> list[Route]:
        base = "/crm/v3/properties/{object_type}"
        return [
            Route("/crm/v3/schemas", endpoint("schemas")(self.list_schemas), methods=["GET"]),
            Route("/crm/v3/schemas/{object_type}", endpoint("schemas")(self.get_schema), methods=["GET"]),
            Route(f"{base}/batch/create", endpoint("properties")(self.batch_create), methods=["POST"]),
            Route(f"{base}/batch/read", endpoint("properties")(self.batch_read), methods=["POST"]),
            Route(f"{base}/groups", endpoint("properties")(self.list_groups), methods=["GET"]),
            Route(f"{base}/groups", endpoint("properties")(self.create_group), methods=["POST"]),
            Route(f"{base}/groups/{{group}}", endpoint("properties")(self.get_group), methods=["GET"]),
            Route(base, endpoint("properties")(self.list_properties), methods=["GET"]),
            Route(base, endpoint("properties")(self.create_property), methods=["POST"]),
            Route(f"{base}/{{name}}", endpoint("properties")(self.get_property), methods=["GET"]),
            Route(f"{base}/{{name}}", endpoint("properties")(self.update_property), methods=["PATCH"]),
            Route(f"{base}/{{name}}", endpoint("properties")(self.archive_property), methods=["DELETE"]),
        ]
