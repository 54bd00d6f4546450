"""``/crm/v3/owners/``: the portal's users as owners (inactive users are archived owners)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.common import call_counter
from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot._http import bool_param, endpoint, int_param, json_response
from crm_sandbox.hubspot.owners import owner_json
from crm_sandbox.hubspot.state import HubSpotState


class OwnersApi:
    """Handlers of the owners API."""

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    async def list_owners(self, request: Request) -> Response:
        archived = bool_param(request, "archived")
        email = request.query_params.get("email")
        limit = int_param(request, "limit", 100, 500)
        after_raw = request.query_params.get("after")
        try:
            start = int(after_raw) if after_raw else 0
        except ValueError:
            raise errors.validation_error(f"after must be a paging cursor from paging.next.after, got {after_raw!r}") from None
        with self.state.lock:
            owners = [
                o for o in self.state.owners.values()
                if bool(o.get("archived", False)) == archived
                and (email is None or str(o.get("email", "")).lower() == email.lower())
            ]
        owners.sort(key=lambda o: int(o["id"]) if str(o["id"]).isdigit() else 0)
        page = owners[start : start + limit]
        body: dict[str, Any] = {"results": [owner_json(o) for o in page]}
        if start + limit < len(owners):
            body["paging"] = {"next": {"after": str(start + limit), "link": f"{request.base_url}crm/v3/owners/?after={start + limit}"}}
        call_counter(request.scope).read = len(page)
        return json_response(HTTPStatus.OK, body)

    async def get_owner(self, request: Request) -> Response:
        key = request.path_params["owner_id"]
        by = (request.query_params.get("idProperty") or "id").lower()
        archived = bool_param(request, "archived")
        with self.state.lock:
            if by == "userid":
                found = [o for o in self.state.owners.values() if str(o.get("userId")) == key]
            elif by == "id":
                found = [o for o in (self.state.owners.get(key),) if o is not None]
            else:
                raise errors.validation_error(f"idProperty must be id or userId, got {by!r}")
        owner = next((o for o in found if bool(o.get("archived", False)) == archived), None)
        if owner is None:
            raise errors.not_found(f"No owner found with {by} {key}", {"ownerId": [key]})
        call_counter(request.scope).read = 1
        return json_response(HTTPStatus.OK, owner_json(owner))

    def routes(self) -> list[Route]:
        return [
            Route("/crm/v3/owners/", endpoint("owners")(self.list_owners), methods=["GET"]),
            Route("/crm/v3/owners", endpoint("owners")(self.list_owners), methods=["GET"]),
            Route("/crm/v3/owners/{owner_id}", endpoint("owners")(self.get_owner), methods=["GET"]),
        ]
