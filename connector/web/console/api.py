"""The admin API, ``/api/v1``: what Relay decided and did, and the few changes an admin makes.

Every endpoint needs ``Authorization: Bearer <token>`` (``relay users add``); the role's reach
(:mod:`connector.web.console.auth`) is enforced on each, and a Rep sees only the people assigned
to them. Every change is audited with who made it. Errors are ``{"error": {"code", "message"}}``
with 401 (no or bad token), 403 (the role may not), 404 (no such thing), 409 (a state that
refuses: paused, already running), 422 (bad input, naming the parameter).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from connector.pipeline.console import ApiRole, Caller, Console, Refused
from connector.web.console.auth import Operation, bearer_token, may

API_PREFIX = "/api/v1"
CRM_ID = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                             description="The record's id in its CRM.")]
NAME = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$",
                           description="A connection's name in relay.yaml.")]
OBJECT = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
                             description="The CRM object (Lead, contacts...).")]
LIMIT = Annotated[int, Query(ge=1, le=500, description="At most this many items.")]


class ApiError(HTTPException):
    """An error answered as ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail={"code": code, "message": message}, headers=headers)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorAnswer(BaseModel):
    error: ErrorBody


class PauseIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description="Why (shown to whoever tries a sync).")


class SyncIn(BaseModel):
    full: bool = Field(default=False, description="Read everything, not only what changed since the last run.")


class RerouteIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description="Why (written to the routing reason).")


class ReviewIn(BaseModel):
    same: bool = Field(description="True: the two records are the same person or account; false: they are not.")


class UserIn(BaseModel):
    """A new API user. A rep or marketing user needs the email of their CRM user (their own records)."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"role": {"enum": [ApiRole.REP.value, ApiRole.MARKETING.value]}}},
        "then": {"required": ["email"], "properties": {"email": {"type": "string"}}},
    })

    name: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    role: ApiRole
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$",
                              description="The CRM user's email (required for rep and marketing).")

    @model_validator(mode="after")
    def _email_for_own_records(self) -> UserIn:
        if self.role in (ApiRole.REP, ApiRole.MARKETING) and self.email is None:
            raise ValueError(f"a {self.role.value} user needs the email of their CRM user")
        return self


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorAnswer, "description": "No token, or an unknown or revoked one."},
    403: {"model": ErrorAnswer, "description": "The caller's role may not do this (to this record)."},
    404: {"model": ErrorAnswer, "description": "No such record, run, connection, item or version."},
    409: {"model": ErrorAnswer, "description": "The state refuses it (a paused connection, a sync running)."},
}


def _caller(request: Request) -> Caller:
    """The authenticated caller (401 without a valid ``Authorization: Bearer`` token)."""
    console: Console = request.app.state.console
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token> (relay users add makes one)",
                       {"WWW-Authenticate": "Bearer"})
    found = console.authenticate(token)
    if found is None:
        raise ApiError(401, "invalid_token", "the token is unknown or revoked", {"WWW-Authenticate": "Bearer"})
    request.state.caller = found
    return found


Who = Annotated[Caller, Depends(_caller)]
"""An endpoint's caller: every endpoint takes one, so none answers without a valid token."""


def api_router(console: Console) -> APIRouter:
    """The ``/api/v1`` routes over ``console``."""
    router = APIRouter(prefix=API_PREFIX, responses=_ERRORS)

    def need(who: Caller, operation: Operation, what: str, owners: set[str] | None = None) -> None:
        if not may(who, operation, owners=owners):
            scope = "this person" if owners is not None else what
            raise ApiError(403, "forbidden", f"role {who.role.value} may not {operation} {scope}")

    def admin(who: Caller) -> None:
        if who.role is not ApiRole.ADMIN:
            raise ApiError(403, "forbidden", f"role {who.role.value} may not manage API users (admin only)")

    def person_owners(connection: str, object_name: str, crm_id: str) -> set[str]:
        owners = console.owners_of(connection, object_name, crm_id)
        if owners is None:
            raise ApiError(404, "not_found", f"Relay has no record {connection}/{object_name}/{crm_id}")
        return owners

    def connection_named(name: str) -> None:
        if name not in console.config.relay.connections:
            known = ", ".join(console.config.relay.connections)
            raise ApiError(404, "not_found", f"no connection {name!r} in relay.yaml (known: {known})")

    def refused(exc: Exception) -> ApiError:
        return ApiError(409, "conflict", str(exc))

    @router.get("/me", summary="Who the token belongs to")
    def me(who: Who) -> dict[str, Any]:
        return {"name": who.name, "role": who.role.value, "email": who.email}

    @router.get("/runs", summary="Sync runs, newest first")
    def runs(who: Who, connection: Annotated[str | None, Query(max_length=100)] = None,
             limit: LIMIT = 50) -> list[dict[str, Any]]:
        need(who, "read", "runs")
        if connection is not None:
            connection_named(connection)
        return console.runs(connection=connection, limit=limit)

    @router.get("/runs/{run_id}", summary="One sync run with its counts")
    def run(who: Who, run_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
        need(who, "read", "runs")
        found = console.run(run_id)
        if found is None:
            raise ApiError(404, "not_found", f"no sync run {run_id}")
        return found

    @router.get("/connections", summary="Connections, their API budget, pause state and last run")
    def connections(who: Who) -> list[dict[str, Any]]:
        need(who, "read", "connections")
        return console.connections()

    @router.post("/connections/{name}/pause", summary="Pause a connection: no sync runs until it is resumed")
    def pause(who: Who, name: NAME, body: PauseIn | None = None) -> dict[str, Any]:
        need(who, "update", "connections")
        connection_named(name)
        return console.set_paused(name, True, who, body.reason if body else None)

    @router.post("/connections/{name}/resume", summary="Resume a paused connection")
    def resume(who: Who, name: NAME) -> dict[str, Any]:
        need(who, "update", "connections")
        connection_named(name)
        return console.set_paused(name, False, who)

    @router.post("/connections/{name}/sync", status_code=202, summary="Start a sync of a connection")
    def sync(who: Who, name: NAME, body: SyncIn | None = None) -> dict[str, Any]:
        need(who, "update", "connections")
        connection_named(name)
        try:
            return console.request_sync(name, who, full=body.full if body else False)
        except Refused as exc:
            raise refused(exc) from None

    @router.get("/people", summary="Find people by email or CRM id")
    def people(who: Who, q: Annotated[str, Query(min_length=1, max_length=320, description="An email or a CRM id.")],
               limit: LIMIT = 20) -> list[dict[str, Any]]:
        need_any(who, "read")
        found = console.find_people(q, limit=limit)
        if may(who, "read"):
            return found
        mine = []
        for item in found:
            owners = console.owners_of(item["connection"], item["object"], item["crm_id"]) or set()
            if may(who, "read", owners=owners):
                mine.append(item)
        return mine

    @router.get("/people/{connection}/{object_name}/{crm_id}",
                summary="Why: every decision about a person, in order, with the rules version and reasons")
    def person(who: Who, connection: NAME, object_name: OBJECT, crm_id: CRM_ID) -> dict[str, Any]:
        owners = person_owners(connection, object_name, crm_id)
        need(who, "read", "people", owners)
        found = console.person(connection, object_name, crm_id)
        if found is None:
            raise ApiError(404, "not_found", f"Relay has no record {connection}/{object_name}/{crm_id}")
        return found

    @router.post("/people/{connection}/{object_name}/{crm_id}/reroute",
                 summary="Re-route a person now: the next available rep of its group, never a previous owner")
    def reroute(who: Who, connection: NAME, object_name: OBJECT, crm_id: CRM_ID,
                body: RerouteIn | None = None) -> dict[str, Any]:
        connection_named(connection)
        owners = person_owners(connection, object_name, crm_id)
        need(who, "update", "people", owners)
        try:
            return console.reroute(connection, object_name, crm_id, who, body.reason if body else None)
        except Refused as exc:
            raise refused(exc) from None

    @router.get("/assignments", summary="Active assignments, newest first")
    def assignments(who: Who, owner: Annotated[str | None, Query(max_length=320)] = None,
                    connection: Annotated[str | None, Query(max_length=100)] = None,
                    limit: LIMIT = 100) -> list[dict[str, Any]]:
        owner = own_scope(who, owner)
        return console.assignments(owner=owner, connection=connection, limit=limit)

    @router.get("/clocks", summary="SLA clocks, the soonest due first")
    def clocks(who: Who, owner: Annotated[str | None, Query(max_length=320)] = None,
               connection: Annotated[str | None, Query(max_length=100)] = None,
               status: Annotated[str | None, Query(pattern="^(open|closed)$")] = "open",
               limit: LIMIT = 100) -> list[dict[str, Any]]:
        owner = own_scope(who, owner)
        return console.clocks(owner=owner, connection=connection, status=status, limit=limit)

    @router.get("/findings", summary="Governance findings (stage gates, hygiene, handoffs)")
    def findings(who: Who, status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = "open",
                 connection: Annotated[str | None, Query(max_length=100)] = None,
                 limit: LIMIT = 100) -> list[dict[str, Any]]:
        need(who, "read", "findings")
        return console.findings(status=status, connection=connection, limit=limit)

    @router.get("/approvals", summary="Approvals requested and recorded")
    def approvals(who: Who, status: Annotated[str | None, Query(pattern="^(requested|approved)$")] = None,
                  limit: LIMIT = 100) -> list[dict[str, Any]]:
        need(who, "read", "approvals")
        return console.approvals(status=status, limit=limit)

    @router.get("/reviews", summary="The steward's review queue (borderline matches)")
    def reviews(who: Who, status: Annotated[str | None, Query(pattern="^(open|same|different)$")] = "open",
                limit: LIMIT = 100) -> list[dict[str, Any]]:
        need(who, "read", "the review queue")
        return console.reviews(status=status, limit=limit)

    @router.post("/reviews/{review_id}", summary="Decide a review item: the same or not")
    def decide_review(who: Who, review_id: Annotated[int, Path(ge=1, le=2**62)], body: ReviewIn) -> dict[str, Any]:
        need(who, "update", "the review queue")
        try:
            return console.decide_review(review_id, body.same, who)
        except KeyError:
            raise ApiError(404, "not_found", f"no review item {review_id}") from None

    @router.get("/rules", summary="The rule sets in force and every version recorded")
    def rules(who: Who) -> dict[str, Any]:
        need(who, "read", "rules")
        return console.rules()

    @router.get("/rules/diff", summary="What changed between two rules versions, in words")
    def rules_diff(who: Who, old: Annotated[str, Query(pattern="^[0-9a-f]{16}$")],
                   new: Annotated[str, Query(pattern="^[0-9a-f]{16}$")]) -> dict[str, Any]:
        need(who, "read", "rules")
        found = console.rules_diff(old, new)
        if found is None:
            raise ApiError(404, "not_found", f"rules version {old} or {new} is not recorded (GET /api/v1/rules)")
        return found

    @router.get("/rules/{version}", summary="What one rules version said")
    def rules_version(who: Who, version: Annotated[str, Path(pattern="^[0-9a-f]{16}$")]) -> dict[str, Any]:
        need(who, "read", "rules")
        found = console.rules_version(version)
        if found is None:
            raise ApiError(404, "not_found", f"no rules version {version} is recorded")
        return found

    @router.get("/backtests", summary="Saved backtests (relay backtest --save), newest first, without their reports")
    def backtests(who: Who, limit: LIMIT = 50) -> list[dict[str, Any]]:
        need(who, "read", "backtests")
        return console.backtests(limit=limit)

    @router.get("/backtests/{backtest_id}",
                summary="One saved backtest: what was replayed, its headline and the whole report")
    def backtest(who: Who, backtest_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
        need(who, "read", "backtests")
        found = console.backtest(backtest_id)
        if found is None:
            raise ApiError(404, "not_found", f"no saved backtest {backtest_id} (relay backtest --save keeps one)")
        return found

    @router.get("/users", summary="API users (never their tokens)")
    def users(who: Who, include_revoked: bool = False) -> list[dict[str, Any]]:
        admin(who)
        return console.users(include_revoked=include_revoked)

    @router.post("/users", status_code=201, summary="Create an API user; the answer holds its token, shown once")
    def add_user(who: Who, body: UserIn) -> dict[str, Any]:
        admin(who)
        if any(u["name"] == body.name.strip() for u in console.users()):
            raise ApiError(409, "conflict", f"an active user is already called {body.name.strip()!r} (revoke it first)")
        try:
            user, token = console.add_user(body.name, body.role.value, body.email, by=who.name)
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        return {**user, "token": token}

    @router.delete("/users/{user_name}", summary="Revoke an API user's token")
    def revoke_user(who: Who, user_name: Annotated[str, Path(min_length=1, max_length=100)]) -> dict[str, Any]:
        admin(who)
        found = console.revoke_user(user_name, by=who.name)
        if found is None:
            raise ApiError(404, "not_found", f"no active API user {user_name!r}")
        return found

    def need_any(who: Caller, operation: Operation) -> None:
        if not (may(who, operation) or may(who, operation, owners={(who.email or "").lower()})):
            raise ApiError(403, "forbidden", f"role {who.role.value} may not {operation} people")

    def own_scope(who: Caller, owner: str | None) -> str | None:
        """The owner filter a caller may use: a Rep sees only their own."""
        if may(who, "read"):
            return owner
        need_any(who, "read")
        mine = (who.email or "").strip().lower()
        if owner is not None and owner.strip().lower() != mine:
            raise ApiError(403, "forbidden", f"role {who.role.value} may read only their own ({mine})")
        return mine

    return router


__all__ = ["API_PREFIX", "ApiError", "api_router"]
