"""``/crm/v3/pipelines/deals``: the default sales pipeline and its stages (the ``dealstage`` options)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import endpoint, json_response
from crm_sandbox.hubspot.properties import DEAL_STAGE_LABELS, DEAL_STAGES
from crm_sandbox.hubspot.state import resolve_type

CREATED_AT = "2024-01-08T09:00:00.000Z"
PROBABILITIES = ("0.2", "0.4", "0.6", "0.8", "0.9", "1.0", "0.0")


def default_pipeline() -> dict[str, Any]:
    """HubSpot's default deal pipeline in the API's shape."""
    stages = [
        {
            "id": stage,
            "label": label,
            "displayOrder": order,
            "metadata": {"isClosed": str(stage in ("closedwon", "closedlost")).lower(), "probability": probability},
            "createdAt": CREATED_AT,
            "updatedAt": CREATED_AT,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for order, (stage, label, probability) in enumerate(zip(DEAL_STAGES, DEAL_STAGE_LABELS, PROBABILITIES, strict=True))
    ]
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": stages,
        "createdAt": CREATED_AT,
        "updatedAt": CREATED_AT,
        "archived": False,
    }


class PipelinesApi:
    """Handlers of the (read-only) pipelines API."""

    def _deals(self, request: Request) -> None:
        object_type = resolve_type(request.path_params["object_type"])
        if object_type != "deals":
            raise errors.validation_error(f"Pipelines are not supported for object type {object_type}")

    async def list_pipelines(self, request: Request) -> Response:
        self._deals(request)
        return json_response(HTTPStatus.OK, {"results": [default_pipeline()]})

    async def get_pipeline(self, request: Request) -> Response:
        self._deals(request)
        if request.path_params["pipeline_id"] != "default":
            raise errors.not_found(f"No pipeline with id {request.path_params['pipeline_id']}")
        return json_response(HTTPStatus.OK, default_pipeline())

    def routes(self) -> list[Route]:
        return [
            Route("/crm/v3/pipelines/{object_type}", endpoint("pipelines")(self.list_pipelines), methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}/{pipeline_id}", endpoint("pipelines")(self.get_pipeline), methods=["GET"]),
        ]
