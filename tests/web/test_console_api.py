"""The admin API over a store a real sync filled: every endpoint x every role x own/other record.

Both sandboxes are synced once into a SQLite store; ``relay serve``'s app runs on a port the OS
picks; users of each role of seed 002's access table call every endpoint over HTTP. A Rep owns the
people assigned to their email and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.models import AuditRow, SyncRunRow

from ._console import ROLES, Api, console_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with console_api(tmp_path_factory.mktemp("console")) as running:
        yield running


def _record_path(record: tuple[str, str, str]) -> str:
    return "/api/v1/people/" + "/".join(record)


# (method, path, roles allowed, body): data nobody owns, or admin-only
EVERYONE_BUT_REP = {"admin", "manager", "marketing", "read_only"}
MATRIX: list[tuple[str, str, set[str], dict[str, Any] | None]] = [
    ("GET", "/api/v1/me", set(ROLES), None),
    ("GET", "/api/v1/runs", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/runs/1", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/connections", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/findings", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/approvals", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/reviews", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/rules", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/backtests", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/backtests/1", EVERYONE_BUT_REP, None),
    ("GET", "/api/v1/assignments", set(ROLES), None),
    ("GET", "/api/v1/clocks", set(ROLES), None),
    ("GET", "/api/v1/people?q=nobody@nowhere.example", set(ROLES), None),
    ("POST", "/api/v1/reviews/999999", {"admin", "manager"}, {"same": True}),
    ("GET", "/api/v1/users", {"admin"}, None),
    ("DELETE", "/api/v1/users/nobody", {"admin"}, None),
    ("POST", "/api/v1/users", {"admin"}, {"name": "x", "role": "admin"}),
]


@pytest.mark.parametrize(("method", "path", "allowed", "body"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_exactly_what_the_access_table_says(
        api: Api, method: str, path: str, allowed: set[str], body: dict[str, Any] | None, role: str) -> None:
    answer = api.call(method, path, role, json=body)
    if role in allowed:
        assert answer.status_code in (200, 201, 404), (role, answer.text)  # 404: the item named does not exist
        if answer.status_code == 201:  # an admin made a user: revoke it again
            assert api.call("DELETE", "/api/v1/users/x", "admin").status_code == 200
    else:
        assert answer.status_code == 403, (role, answer.text)
        assert answer.json()["error"]["code"] == "forbidden" and role in answer.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "allowed", "body"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_every_endpoint_refuses_a_missing_or_wrong_token(api: Api, method: str, path: str, allowed: set[str],
                                                         body: dict[str, Any] | None) -> None:
    missing = httpx.request(method, api.url + path, json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthenticated"
    for header in ("Bearer relay_not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer " + api.tokens["admin"] + "x"):
        wrong = httpx.request(method, api.url + path, json=body, headers={"Authorization": header})
        assert wrong.status_code == 401, header


@pytest.mark.parametrize("role", ROLES)
def test_a_person_is_readable_by_its_owner_and_the_roles_that_read_all(api: Api, role: str) -> None:
    own, other = api.call("GET", _record_path(api.own), role), api.call("GET", _record_path(api.other), role)
    assert own.status_code == 200, own.text
    assert other.status_code == (403 if role == "rep" else 200), other.text
    trail = own.json()["trail"]
    assert trail and [e["at"] for e in trail] == sorted(e["at"] for e in trail)
    assert any(e["action"] == "assigned" and e["rules_version"] for e in trail)


def test_a_rep_who_tries_another_reps_lead_by_id_is_refused_and_sees_only_their_own(api: Api) -> None:
    refused = api.call("GET", _record_path(api.own), "other_rep")
    assert refused.status_code == 403 and "may not read this person" in refused.json()["error"]["message"]
    found = api.call("GET", "/api/v1/people", "rep", params={"q": api.own_email}).json()
    assert [(p["connection"], p["object"], p["crm_id"]) for p in found if p["crm_id"] == api.own[2]] == [api.own]
    assert api.call("GET", "/api/v1/people", "other_rep", params={"q": api.own_email}).json() == []
    mine = api.call("GET", "/api/v1/assignments", "rep").json()
    assert mine and {a["owner_email"] for a in mine} == {api.rep_email}
    assert api.call("GET", "/api/v1/assignments", "rep", params={"owner": "x@northwind.example"}).status_code == 403
    everyone = api.call("GET", "/api/v1/assignments", "manager", params={"limit": 500}).json()
    assert len({a["owner_email"] for a in everyone}) > 1


def test_the_why_search_finds_a_person_by_email_and_by_crm_id(api: Api) -> None:
    by_email = api.call("GET", "/api/v1/people", "read_only", params={"q": api.own_email.upper()}).json()
    assert api.own in [(p["connection"], p["object"], p["crm_id"]) for p in by_email]
    by_id = api.call("GET", "/api/v1/people", "read_only", params={"q": api.own[2]}).json()
    assert [(p["connection"], p["object"], p["crm_id"]) for p in by_id] == [api.own]
    assert by_id[0]["owner_email"] == api.rep_email


def test_pausing_is_audited_with_who_refuses_syncs_and_resuming_lets_them_run(api: Api) -> None:
    paused = api.call("POST", "/api/v1/connections/hubspot/pause", "manager", json={"reason": "portal migration"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    refused = api.call("POST", "/api/v1/connections/hubspot/sync", "admin")
    assert refused.status_code == 409 and "portal migration" in refused.json()["error"]["message"]
    listed = {c["name"]: c for c in api.call("GET", "/api/v1/connections", "read_only").json()}
    assert listed["hubspot"]["paused"] and listed["hubspot"]["paused_by"] == "manager-user"
    assert not listed["salesforce"]["paused"]
    from connector.store.errors import ConnectionPaused
    with pytest.raises(ConnectionPaused, match="portal migration"):
        run_sync(api.config, "hubspot", api.engine)
    resumed = api.call("POST", "/api/v1/connections/hubspot/resume", "admin")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    with session_factory(api.engine).begin() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.action.in_(("console_paused", "console_resumed")))
                               .order_by(AuditRow.id)).all()
        assert [(r.action, r.detail["by"], r.detail["role"]) for r in rows] == [
            ("console_paused", "manager-user", "manager"), ("console_resumed", "admin-user", "admin")]
        before = session.scalar(select(func.count()).select_from(SyncRunRow).where(SyncRunRow.connection == "hubspot"))
    started = api.call("POST", "/api/v1/connections/hubspot/sync", "manager", json={"full": False})
    assert started.status_code == 202 and started.json()["started"] == "started in this process"
    deadline = datetime.now(UTC).timestamp() + 60
    while datetime.now(UTC).timestamp() < deadline:
        with session_factory(api.engine).begin() as session:
            runs = session.scalars(select(SyncRunRow).where(SyncRunRow.connection == "hubspot")
                                   .order_by(SyncRunRow.id)).all()
        if len(runs) > before and runs[-1].status != "running":
            break
    assert len(runs) == before + 1 and runs[-1].status == "succeeded"


def test_bad_input_gets_a_clear_4xx_never_a_500(api: Api) -> None:
    for path, params in [("/api/v1/runs", {"limit": "0"}), ("/api/v1/runs", {"limit": "many"}),
                         ("/api/v1/clocks", {"status": "sideways"}), ("/api/v1/people", {}),
                         ("/api/v1/runs/0", {}), ("/api/v1/rules/not-a-version", {}),
                         ("/api/v1/people/Bad Name/Lead/1", {}), ("/api/v1/people/salesforce/Lead/%00", {})]:
        answer = api.call("GET", path, "admin", params=params)
        assert 400 <= answer.status_code < 500, (path, params, answer.status_code, answer.text)
    unknown = api.call("POST", "/api/v1/connections/pipedrive/pause", "admin")
    assert unknown.status_code == 404 and "known: salesforce, hubspot" in unknown.json()["error"]["message"]
    bad_user = api.call("POST", "/api/v1/users", "admin", json={"name": "x", "role": "rep"})
    assert bad_user.status_code == 422 and "needs the email" in bad_user.text
    clash = api.call("POST", "/api/v1/users", "admin", json={"name": "admin-user", "role": "admin"})
    assert clash.status_code == 409 and "already called 'admin-user'" in clash.json()["error"]["message"]


def test_users_are_managed_by_an_admin_and_a_new_token_works_at_once(api: Api) -> None:
    made = api.call("POST", "/api/v1/users", "admin", json={"name": "ops-bot", "role": "read_only"})
    assert made.status_code == 201
    token = made.json()["token"]
    me = httpx.get(api.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "ops-bot", "role": "read_only", "email": None}
    listed = api.call("GET", "/api/v1/users", "admin").json()
    assert "ops-bot" in {u["name"] for u in listed} and all("token" not in u for u in listed)
    assert api.call("DELETE", "/api/v1/users/ops-bot", "admin").status_code == 200
    assert httpx.get(api.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_openapi_document_is_versioned_and_lists_every_endpoint(api: Api) -> None:
    document = httpx.get(api.url + "/api/v1/openapi.json").json()
    paths = set(document["paths"])
    assert {"/api/v1/people/{connection}/{object_name}/{crm_id}", "/api/v1/runs", "/api/v1/connections/{name}/pause",
            "/api/v1/users", "/api/v1/rules/{version}", "/api/v1/backtests", "/api/v1/backtests/{backtest_id}"} <= paths
    assert all(p.startswith(("/api/v1/", "/webhooks/", "/capture/", "/healthz", "/metrics")) for p in paths)


def test_rules_show_the_versions_in_force_and_a_diff_in_words(api: Api) -> None:
    rules = api.call("GET", "/api/v1/rules", "read_only").json()
    people = next(r["version"] for r in rules["current"] if r["kind"] == "people")
    assert people in {h["version"] for h in rules["history"] if h["in_force"]}  # the sync recorded it
    said = api.call("GET", f"/api/v1/rules/{people}", "manager").json()
    assert said["rules"]["kind"] == "people" and "routing" in said["rules"]
    same = api.call("GET", "/api/v1/rules/diff", "manager", params={"old": people, "new": people}).json()
    assert same["changes"] == [] and same["text"] == []
    assert api.call("GET", "/api/v1/rules/diff", "rep", params={"old": people, "new": people}).status_code == 403
    missing = api.call("GET", "/api/v1/rules/diff", "admin", params={"old": people, "new": "0" * 16})
    assert missing.status_code == 404 and "0000000000000000" in missing.json()["error"]["message"]


def test_a_person_is_rerouted_by_hand_to_someone_new_and_the_crm_shows_it(api: Api) -> None:
    from connector.store.models import SlaClockRow
    from tests.e2e._crm import hubspot_client, salesforce_client

    with session_factory(api.engine).begin() as session:
        candidates = session.execute(
            select(SlaClockRow.connection, SlaClockRow.object, SlaClockRow.crm_id)
            .where(SlaClockRow.owner_email == api.rep_email, SlaClockRow.status == "open")
            .order_by(SlaClockRow.id)).all()
    record = next(tuple(c) for c in candidates if tuple(c) != api.own)
    path = _record_path(record) + "/reroute"
    for role in ("other_rep", "read_only", "marketing"):  # not theirs to update
        refused = api.call("POST", path, role, json={"reason": "try"})
        assert refused.status_code == 403, (role, refused.text)
    moved = api.call("POST", path, "rep", json={"reason": "on leave next week"})
    assert moved.status_code == 200, moved.text
    new_owner = moved.json()["new_owner"]
    assert moved.json()["previous_owner"] == api.rep_email and new_owner not in (None, api.rep_email)
    connection, obj, crm_id = record
    if connection == "salesforce":
        sf = salesforce_client(api.sf)
        shown = sf.query(f"SELECT Owner.Email, Relay_Routing_Reason__c FROM {obj} WHERE Id = '{crm_id}'")["records"][0]
        assert shown["Owner"]["Email"].lower() == new_owner
        assert "re-routed by rep-user (rep) through the console: on leave next week" in shown["Relay_Routing_Reason__c"]
    else:
        hs = hubspot_client(api.hs)
        owners = {str(o.id): o.email.lower() for o in hs.crm.owners.get_all()}
        shown = hs.crm.contacts.basic_api.get_by_id(crm_id, properties=["hubspot_owner_id"]).properties
        assert owners[shown["hubspot_owner_id"]] == new_owner
    with session_factory(api.engine).begin() as session:
        audit = session.scalars(select(AuditRow).where(AuditRow.action == "console_rerouted")).all()
        assert [(a.crm_id, a.detail["by"], a.detail["new_owner"]) for a in audit] == [(crm_id, "rep-user", new_owner)]
    # the rep no longer owns it: a second try is refused as not theirs
    assert api.call("POST", path, "rep").status_code == 403
