"""The dashboard over HTTP (``/dashboard``): sign-in, every page for every role, what each sees and not.

A real seeded run (``tests/support/dashboard_world.py``: both sandboxes synced, reps at work, the
SLA job fired) behind ``relay serve``'s app on a port the OS picks; each role signs in through the
login form as a browser would (CSRF field, cookie).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from connector.pipeline.console import Console
from connector.pipeline.context import utc_now
from connector.web.app import create_app
from connector.web.console.dashboard import SESSION_COOKIE, csrf_for
from tests.support.dashboard_world import ROLES, DashboardWorld, dashboard_world

PAGES = ("sla", "aging", "funnel", "fairness", "quality", "api", "why", "backtest")
TEAM_PAGES = ("funnel", "fairness", "quality", "api", "backtest")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardWorld]:
    with dashboard_world(tmp_path_factory.mktemp("dashboard")) as made:
        yield made


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def _signed_in(world: DashboardWorld, role: str) -> httpx.Client:
    client = httpx.Client(base_url=world.url, follow_redirects=False, timeout=30)
    form = client.get("/dashboard/login")
    answer = client.post("/dashboard/login", data={"csrf": _csrf(form.text), "token": world.tokens[role],
                                                   "next": "/dashboard/sla"})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/sla", answer.text
    return client


@pytest.fixture(scope="module")
def clients(world: DashboardWorld) -> Iterator[dict[str, httpx.Client]]:
    made = {role: _signed_in(world, role) for role in (*ROLES, "other_rep")}
    yield made
    for client in made.values():
        client.close()


def _text(page: httpx.Response) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded)."""
    return unescape(re.sub(r"<[^>]+>", " ", page.text))


def _kpi(page: httpx.Response, testid: str) -> int:
    found = re.search(rf'data-testid="{testid}".*?kpi-value">([^<]+)<', page.text, re.S)
    assert found is not None, testid
    return int(found.group(1).replace(",", ""))


# --------------------------------------------------------------------------- signing in and out


def test_a_page_without_a_session_sends_to_the_sign_in_form_and_back(world: DashboardWorld) -> None:
    answer = httpx.get(world.url + "/dashboard/fairness?period=7d")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Ffairness%3Fperiod%3D7d"
    assert httpx.get(world.url + "/").headers["location"] == "/dashboard/"
    form = httpx.get(world.url + "/dashboard/login?next=/dashboard/fairness%3Fperiod%3D7d")
    assert form.status_code == 200 and 'name="token"' in form.text and 'type="password"' in form.text
    assert 'value="/dashboard/fairness?period=7d"' in form.text


def test_signing_in_sets_an_httponly_strict_cookie_holding_the_session(world: DashboardWorld) -> None:
    client = httpx.Client(base_url=world.url, follow_redirects=False)
    form = client.get("/dashboard/login")
    login_cookie = form.headers["set-cookie"]
    assert "relay_login_csrf=" in login_cookie and "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    answer = client.post("/dashboard/login", data={"csrf": _csrf(form.text), "token": world.tokens["manager"],
                                                   "next": "https://evil.example/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/sla"  # never off-site
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert all(part in cookie for part in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Max-Age=28800"))
    assert "Secure" not in cookie   # plain http here; over https it is Secure (below)
    page = client.get("/dashboard/sla")
    assert page.status_code == 200 and "manager-user · manager" in _text(page)


def test_a_bad_token_or_a_missing_csrf_field_signs_nobody_in(world: DashboardWorld) -> None:
    client = httpx.Client(base_url=world.url, follow_redirects=False)
    form = client.get("/dashboard/login")
    wrong = client.post("/dashboard/login", data={"csrf": _csrf(form.text), "token": "relay_not-a-token"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    forged = client.post("/dashboard/login", data={"csrf": "guessed", "token": world.tokens["admin"]})
    assert forged.status_code == 403 and "expired or came from elsewhere" in forged.text
    assert SESSION_COOKIE not in forged.headers.get("set-cookie", "")
    elsewhere = httpx.post(world.url + "/dashboard/login", data={"token": world.tokens["admin"]})  # no cookie at all
    assert elsewhere.status_code == 403


def test_signing_out_needs_the_sessions_csrf_token_and_clears_the_cookie(world: DashboardWorld) -> None:
    client = _signed_in(world, "read_only")
    page = client.get("/dashboard/sla")
    token = client.cookies[SESSION_COOKIE]
    assert _csrf(page.text) == csrf_for(token)
    refused = client.post("/dashboard/logout", data={"csrf": "x" * 64})
    assert refused.status_code == 403 and client.get("/dashboard/sla").status_code == 200
    out = client.post("/dashboard/logout", data={"csrf": csrf_for(token)})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/dashboard/sla").status_code == 303


def test_a_revoked_token_ends_its_session_at_once(world: DashboardWorld) -> None:
    console = Console(world.config, world.engine, clock=utc_now)
    _, token = console.add_user("short-lived", "manager", None)
    client = httpx.Client(base_url=world.url, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token, path="/dashboard")
    assert client.get("/dashboard/quality").status_code == 200
    console.revoke_user("short-lived")
    assert client.get("/dashboard/quality").status_code == 303


def test_the_cookie_opens_pages_only_never_the_api(world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    token = clients["admin"].cookies[SESSION_COOKIE]
    answer = httpx.get(world.url + "/api/v1/me", cookies={SESSION_COOKIE: token})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthenticated"
    assert httpx.get(world.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_over_https_the_cookie_is_secure(world: DashboardWorld) -> None:
    with TestClient(create_app(world.config, world.engine), base_url="https://relay.example") as client:
        form = client.get("/dashboard/login")
        answer = client.post("/dashboard/login", data={"csrf": _csrf(form.text), "token": world.tokens["admin"]},
                             follow_redirects=False)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert answer.status_code == 303 and "Secure" in cookie and "HttpOnly" in cookie


def test_relay_serve_computes_the_team_figures_at_start_and_a_page_serves_them(world: DashboardWorld) -> None:
    """``relay serve`` warms the figure cache, so the first visitor of a page does not wait for its figures."""
    import time

    from connector.pipeline.dashboard import DEFAULT_PERIOD
    from connector.web.console.dashboard import FIGURE_PAGES

    app = create_app(world.config, world.engine, warm_dashboard=True)
    keys = [(spec.page.key, DEFAULT_PERIOD, None) for spec in FIGURE_PAGES]
    with TestClient(app) as client:  # runs the app's startup, as uvicorn does
        deadline = time.monotonic() + 60
        while not all(key in app.state.figure_cache for key in keys) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [key for key in keys if key not in app.state.figure_cache] == []
        warmed = app.state.figure_cache.get(("funnel", DEFAULT_PERIOD, None), lambda: pytest.fail("computed again"))
        form = client.get("/dashboard/login")
        client.post("/dashboard/login", data={"csrf": _csrf(form.text), "token": world.tokens["admin"]})
        page = client.get("/dashboard/funnel")
    assert page.status_code == 200 and warmed["charts"]
    cold = create_app(world.config, world.engine)  # without: nothing is computed before the first request
    with TestClient(cold):
        time.sleep(0.2)
        assert not any(key in cold.state.figure_cache for key in keys)


# --------------------------------------------------------------------------- every page, every role


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_the_pages_its_role_may(clients: dict[str, httpx.Client], role: str, page: str) -> None:
    answer = clients[role].get(f"/dashboard/{page}")
    headers = answer.headers
    assert "default-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    if role == "rep" and page in TEAM_PAGES:
        assert answer.status_code == 403, answer.text[:300]
        text = _text(answer)
        assert "403" in text and "Your role (rep) may not see" in text and "whole team's figures" in text
        assert "<canvas" not in answer.text
        return
    assert answer.status_code == 200, answer.text[:500]
    assert 'aria-current="page"' in answer.text
    nav = re.search(r'<nav aria-label="Pages">(.*?)</nav>', answer.text, re.S)
    assert nav is not None
    links = set(re.findall(r'href="/dashboard/(\w+)', nav.group(1)))
    assert links == ({"sla", "aging", "why"} if role == "rep" else set(PAGES))


def test_the_sla_page_shows_the_teams_real_figures(world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    page = clients["manager"].get("/dashboard/sla")
    text = _text(page)
    assert "SLA compliance (target > 95 %)" in text and "Time to first touch, median (target < 60 min)" in text
    for tier in ("Hot", "Warm", "Qualified", "Cold"):
        assert f"<td>{tier}</td>" in page.text
    assert world.rep_email in page.text and world.other_email in page.text
    assert 'id="chart-sla-tier-data"' in page.text and '"compliance %"' in page.text
    # the reps worked some leads: first touches were measured and some clocks judged
    median = re.search(r'data-testid="kpi-median".*?kpi-value">([^<]+)<', page.text, re.S)
    assert median is not None and median.group(1).strip() not in ("-", "")


def test_a_rep_sees_only_their_own_clocks_and_people(world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    sla = clients["rep"].get("/dashboard/sla")
    assert f"your leads ({world.rep_email})" in _text(sla)
    assert world.other_email not in sla.text
    reps = re.findall(r'<td title="([^"]+)">', sla.text)
    assert reps and set(reps) == {world.rep_email}
    aging = clients["rep"].get("/dashboard/aging")
    assert f"your leads ({world.rep_email})" in _text(aging)
    manager = clients["manager"].get("/dashboard/aging")
    open_rep, open_all = (_kpi(p, "kpi-open") for p in (aging, manager))
    assert 0 < open_rep < open_all


def test_the_why_search_finds_by_email_and_crm_id_within_the_roles_reach(
        world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    own_path = "/dashboard/why/" + "/".join(world.own)
    for role in ("read_only", "rep"):
        found = clients[role].get("/dashboard/why", params={"q": world.own_email.upper()})
        assert found.status_code == 200 and f'href="{own_path}"' in found.text, role
    by_id = clients["marketing"].get("/dashboard/why", params={"q": world.own[2]})
    assert f'href="{own_path}"' in by_id.text
    hidden = clients["other_rep"].get("/dashboard/why", params={"q": world.own_email})
    assert own_path not in hidden.text and "Nobody of yours has that email or CRM id" in _text(hidden)


def test_the_why_page_shows_every_decision_with_its_rules_version(
        world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    page = clients["rep"].get("/dashboard/why/" + "/".join(world.own))
    assert page.status_code == 200
    actions = re.findall(r'<tr data-action="([a-z_]+)">', page.text)
    assert "assigned" in actions and "scored" in actions and "field_update" in actions
    text = _text(page)
    assert "Routing rule" in text and world.rep_email in text and "Score " in text
    assert re.search(r"Written to (salesforce|hubspot) \w+: \d+ field", text)
    whens = re.findall(r'<tr data-action="[a-z_]+"><td data-value="([^"]+)"', page.text)
    assert whens == sorted(whens)   # in order
    versions = re.findall(r'<tr data-action="assigned">.*?<td class="small">[^<]*</td><td class="small">([0-9a-f]{16})<',
                          page.text, re.S)
    assert versions


def test_a_rep_opening_another_reps_lead_by_id_gets_a_readable_403(
        world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    other = clients["rep"].get("/dashboard/why/" + "/".join(world.other))
    assert other.status_code == 403 and "may read only the people assigned to you" in _text(other)
    assert world.other_email not in other.text
    assert clients["manager"].get("/dashboard/why/" + "/".join(world.other)).status_code == 200
    missing = clients["admin"].get("/dashboard/why/salesforce/Lead/00Q000000000000XXX")
    assert missing.status_code == 404 and "Relay has no record" in _text(missing)
    bad = clients["admin"].get("/dashboard/why/Bad%20Name/Lead/1")
    assert bad.status_code == 404


def test_team_pages_show_the_seeded_runs_figures(world: DashboardWorld, clients: dict[str, httpx.Client]) -> None:
    client = clients["read_only"]
    funnel = _text(client.get("/dashboard/funnel?period=all"))
    assert "Lead -> MQL" in funnel and "MQL -> SQL" in funnel and "SQL -> Opportunity" in funnel
    assert "time to kickoff, median" in funnel and "Closed Won -> Customer Success" in funnel
    fairness = client.get("/dashboard/fairness")
    assert world.rep_email in fairness.text and "Weight's share" in fairness.text and "sales_reps:" in fairness.text
    quality = _text(client.get("/dashboard/quality"))
    assert "Completeness (target > 95 %)" in quality and "Duplicates (target < 2 %)" in quality
    assert "Trade Show" in quality or "Web" in quality
    api = _text(client.get("/dashboard/api"))
    assert "salesforce: today" in api and "/ 100,000" in api and "hubspot: window" in api


def test_an_unknown_period_is_a_readable_400(clients: dict[str, httpx.Client]) -> None:
    answer = clients["admin"].get("/dashboard/sla?period=fortnight")
    assert answer.status_code == 400 and "Unknown period 'fortnight'" in _text(answer)


def test_the_page_assets_are_served_from_the_package(world: DashboardWorld) -> None:
    chart = httpx.get(world.url + "/dashboard/static/chart.umd.min.js")
    assert chart.status_code == 200 and "javascript" in chart.headers["content-type"]
    assert chart.text.startswith("/*!\n * Chart.js v4.")
    assert httpx.get(world.url + "/dashboard/static/chart.js.LICENSE.md").text.startswith("The MIT License")
    for name in ("dashboard.js", "dashboard.css"):
        assert httpx.get(world.url + f"/dashboard/static/{name}").status_code == 200
    root = Path(__file__).resolve().parents[2] / "connector" / "web" / "console"
    assert (root / "static" / "chart.umd.min.js").stat().st_size > 100_000
    assert "dashboard" not in " ".join(httpx.get(world.url + "/api/v1/openapi.json").json()["paths"])
