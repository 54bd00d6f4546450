"""``/crm/v3/pipelines/deals``: the deal pipelines and their stages (the ``dealstage`` options).

Read-only: list (``GET /crm/v3/pipelines/{objectType}``), one pipeline
(``/{pipelineId}``), its stages (``/{pipelineId}/stages``) and one stage
(``/{pipelineId}/stages/{stageId}``), as HubSpot's CRM v3 pipelines reference shows them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import endpoint, json_response
from crm_sandbox.hubspot.pipelines import (
    DEAL_PIPELINES,
    DEFAULT_PIPELINE,
    Pipeline,
    pipeline,
    pipeline_json,
    stage_json,
)
from crm_sandbox.hubspot.state import resolve_type


def default_pipeline() -> dict[str, Any]:
    """HubSpot's default deal pipeline in the API's shape."""
    return pipeline_json(DEFAULT_PIPELINE)


class PipelinesApi:
    """Handlers of the (read-only) pipelines API."""

    def _deals(self, request: Request) -> None:
        object_type = resolve_type(request.path_params["object_type"])
        if object_type != "deals":
            raise errors.validation_error(f"Pipelines are not supported for object type {object_type}")

    def _pipeline(self, request: Request) -> Pipeline:
        self._deals(request)
        pipeline_id = request.path_params["pipeline_id"]
        found = pipeline(pipeline_id)
        if found is None:
            raise errors.not_found(f"No pipeline with id {pipeline_id} for object type deals")
        return found

    async def list_pipelines(self, request: Request) -> Response:
        self._deals(request)
        return json_response(HTTPStatus.OK, {"results": [pipeline_json(p) for p in DEAL_PIPELINES]})

    async def get_pipeline(self, request: Request) -> Response:
        return json_response(HTTPStatus.OK, pipeline_json(self._pipeline(request)))

    async def list_stages(self, request: Request) -> Response:
        found = self._pipeline(request)
        stages = [stage_json(s, order, found.created_at) for order, s in enumerate(found.stages)]
        return json_response(HTTPStatus.OK, {"results": stages})

    async def get_stage(self, request: Request) -> Response:
        found = self._pipeline(request)
        stage_id = request.path_params["stage_id"]
        for order, stage in enumerate(found.stages):
            if stage.id == stage_id:
                return json_response(HTTPStatus.OK, stage_json(stage, order, found.created_at))
        raise errors.not_found(f"No stage with id {stage_id} in pipeline {found.id}")

    def routes(self) -> list[Route]:
        base = "/crm/v3/pipelines/{object_type}"
        return [
            Route(base, endpoint("pipelines")(self.list_pipelines), methods=["GET"]),
            Route(f"{base}/{{pipeline_id}}", endpoint("pipelines")(self.get_pipeline), methods=["GET"]),
            Route(f"{base}/{{pipeline_id}}/stages", endpoint("pipelines")(self.list_stages), methods=["GET"]),
            Route(f"{base}/{{pipeline_id}}/stages/{{stage_id}}", endpoint("pipelines")(self.get_stage), methods=["GET"]),
        ]
