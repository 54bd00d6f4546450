"""The Starlette app speaking HubSpot's CRM API (objects, batch, search, associations, owners, properties)
and its communication preferences API (email subscription types and statuses).

Each family of endpoints has its own module; this one assembles them. Every
handler answers HubSpot's JSON shapes; anything a client can send that is wrong
gets HubSpot's 4xx error body, never a 500.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from crm_sandbox.common import FaultInjector
from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import json_response
from crm_sandbox.hubspot.associations_api import AssociationsApi
from crm_sandbox.hubspot.associations_v3_api import AssociationsV3Api
from crm_sandbox.hubspot.batch_api import BatchApi
from crm_sandbox.hubspot.communication_preferences_api import CommunicationPreferencesApi
from crm_sandbox.hubspot.objects_api import ObjectsApi
from crm_sandbox.hubspot.owners_api import OwnersApi
from crm_sandbox.hubspot.pipelines_api import PipelinesApi
from crm_sandbox.hubspot.properties_api import PropertiesApi
from crm_sandbox.hubspot.state import HubSpotState


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
    objects = ObjectsApi(state, search_lag_ms)
    routes = [
        *AssociationsApi(state).routes(),
        *AssociationsV3Api(state).routes(),
        *OwnersApi(state).routes(),
        *CommunicationPreferencesApi(state).routes(),
        *PipelinesApi().routes(),
        *PropertiesApi(state).routes(),
        *BatchApi(state, faults, objects).routes(),
        *objects.routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPStatus.NOT_FOUND: not_found_route, HTTPStatus.METHOD_NOT_ALLOWED: method_not_allowed},
    )
    app.state.objects = objects
    return app
