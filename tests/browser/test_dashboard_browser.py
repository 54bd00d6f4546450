"""The dashboard in a real browser (Chromium through Playwright) over a seeded, worked run.

Covers signing in, each role's view, the "why" search, sorting and filtering tables, and charts
drawn from the run's real figures; saves the README's screenshots into ``docs/screenshots/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.pipeline import dashboard
from tests.browser.conftest import SCREENSHOTS
from tests.support.dashboard_world import ROLES, DashboardWorld
from tests.support.saved_backtest import save_warm_at_70


def _sign_in(page: Any, world: DashboardWorld, role: str, start: str = "/") -> None:
    page.goto(world.url + start)
    page.wait_for_url("**/dashboard/login?*")
    page.fill("#token", world.tokens[role])
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_load_state("load")


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _charted(page: Any, chart_id: str) -> dict[str, Any]:
    """What Chart.js drew on a canvas: its labels and datasets, and whether pixels were painted."""
    page.wait_for_selector(f"canvas#{chart_id}[data-rendered]")
    return page.evaluate("""(id) => {
        const chart = window.relayCharts[id];
        const canvas = document.getElementById(id);
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { painted++; } }
        return {labels: chart.data.labels, datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data})),
                painted: painted, width: canvas.width, height: canvas.height};
    }""", chart_id)


def test_signing_in_with_a_token_opens_the_sla_page_and_signing_out_closes_it(
        page: Any, world: DashboardWorld) -> None:
    page.goto(world.url + "/")
    page.wait_for_url("**/dashboard/login?*")
    assert page.locator("h1").inner_text() == "Sign in to the Relay dashboard"
    _shot(page, "login")
    page.fill("#token", "relay_wrong")
    page.click("button[type=submit]")
    assert "unknown or revoked" in page.locator("[role=alert]").inner_text()
    page.fill("#token", world.tokens["manager"])
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/sla")
    assert page.locator("[data-testid=user]").inner_text() == "manager-user · manager"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["relay_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/dashboard"
    assert page.evaluate("document.cookie") == ""   # HttpOnly: no script of the page can read it
    page.click("text=Sign out")
    page.wait_for_url("**/dashboard/login")
    assert "relay_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(world.url + "/dashboard/sla")
    page.wait_for_url("**/dashboard/login?*")


@pytest.mark.parametrize("role", ROLES)
def test_each_roles_view(page: Any, world: DashboardWorld, role: str) -> None:
    _sign_in(page, world, role)
    page.wait_for_url("**/dashboard/sla")
    nav = page.locator("header nav a").all_inner_texts()
    if role == "rep":
        assert nav == ["SLA", "Aging", "Why"]
        assert f"your leads ({world.rep_email})" in page.locator("h1").inner_text()
        reps = page.locator("#t-reps tbody td[title]").evaluate_all("cells => cells.map(c => c.title)")
        assert reps and set(reps) == {world.rep_email}
        _shot(page, "rep-sla")
        page.goto(world.url + "/dashboard/fairness")
        assert page.locator("h1").inner_text() == "403 · Not for your role"
        assert "may not see the Fairness page" in page.locator(".refusal").inner_text()
        _shot(page, "rep-forbidden")
        return
    assert nav == ["SLA", "Aging", "Funnel & handoffs", "Fairness", "Data quality", "API usage", "Why", "Backtests"]
    reps = set(page.locator("#t-reps tbody td[title]").evaluate_all("cells => cells.map(c => c.title)"))
    assert {world.rep_email, world.other_email} <= reps
    for key, title in (("funnel", "Funnel & handoffs"), ("quality", "Data quality"), ("api", "API usage")):
        page.goto(world.url + f"/dashboard/{key}")
        assert page.locator("h1").inner_text() == title


def test_charts_draw_the_seeded_runs_real_figures(page: Any, world: DashboardWorld) -> None:
    _sign_in(page, world, "admin")
    page.wait_for_url("**/dashboard/sla")
    tiers = _charted(page, "chart-sla-tier")
    expected = dashboard.sla_figures(world.engine, world.config, now=datetime.now(UTC),
                                     since=dashboard.since_of("30d", datetime.now(UTC)))
    assert tiers["labels"] == [t["tier"] for t in expected["tiers"]]
    assert tiers["datasets"][0]["data"] == [t["compliance_percent"] for t in expected["tiers"]]
    assert any(v is not None for v in tiers["datasets"][0]["data"])   # the reps' first touches were judged
    assert tiers["datasets"][1]["data"] == [95] * len(expected["tiers"])   # the SOP target line
    assert tiers["painted"] > 2000
    shown = page.locator("[data-testid=kpi-compliance] .kpi-value").inner_text()
    assert shown.startswith(f"{expected['total']['compliance_percent']:.1f} %")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366   # no sideways scrolling on a laptop
    _shot(page, "sla")
    for key, chart_id in (("aging", "chart-aging"), ("funnel", "chart-funnel"), ("fairness", "chart-fair-share"),
                          ("quality", "chart-quality-sources"), ("api", "chart-api-days")):
        page.goto(world.url + f"/dashboard/{key}?period=30d")
        drawn = _charted(page, chart_id)
        assert drawn["labels"] and drawn["painted"] > 500, (key, drawn["labels"])
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, key
        _shot(page, key)
    funnel = dashboard.funnel_figures(world.engine, world.config, now=datetime.now(UTC),
                                      since=dashboard.since_of("30d", datetime.now(UTC)))
    page.goto(world.url + "/dashboard/funnel?period=30d")
    assert _charted(page, "chart-funnel")["datasets"][0]["data"] == [s["count"] or 0 for s in funnel["stages"]]


def test_a_saved_backtest_draws_the_load_per_rep_before_and_after(
        page: Any, world: DashboardWorld, tmp_path: Path) -> None:
    saved = save_warm_at_70(world.engine, world.config, tmp_path)
    _sign_in(page, world, "manager", f"/dashboard/backtest/{saved.id}")
    page.wait_for_url(f"**/dashboard/backtest/{saved.id}")
    drawn = _charted(page, "chart-backtest-load")
    shown = [r for r in saved.report.load if r.before or r.after]
    assert drawn["labels"] == [r.owner for r in shown]
    assert drawn["datasets"] == [{"label": "current rules", "data": [r.before for r in shown]},
                                 {"label": "candidate rules", "data": [r.after for r in shown]}]
    assert drawn["painted"] > 500
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    _shot(page, "backtest")
    page.click("#t-bt-load-per-rep thead th:nth-child(4)")   # delta, as a number
    deltas = [int(v.replace(",", "")) for v in page.locator("#t-bt-load-per-rep tbody td:nth-child(4)").all_inner_texts()]
    assert deltas == sorted(r.delta for r in saved.report.load) and deltas[0] < 0 < deltas[-1]
    moved = saved.report.owner_changes[0].ref
    page.fill("input[data-filter='t-bt-owner-changes']", moved)
    assert page.locator("#t-bt-owner-changes tbody tr:not([hidden]) a").all_inner_texts() == [moved]


def test_tables_sort_and_filter_in_the_browser(page: Any, world: DashboardWorld) -> None:
    _sign_in(page, world, "read_only", "/dashboard/fairness")
    page.wait_for_url("**/dashboard/fairness")
    leads = "#t-reps tbody tr:not([hidden]) td:nth-child(6)"
    page.click("#t-reps thead th:nth-child(6)")
    ascending = [int(v) for v in page.locator(leads).all_inner_texts()]
    assert ascending == sorted(ascending) and len(ascending) > 3
    page.click("#t-reps thead th:nth-child(6)")
    descending = [int(v) for v in page.locator(leads).all_inner_texts()]
    assert descending == sorted(ascending, reverse=True)
    assert page.get_attribute("#t-reps thead th:nth-child(6)", "aria-sort") == "descending"
    page.fill("input[data-filter='t-reps']", "sdr")
    roles = page.locator("#t-reps tbody tr:not([hidden]) td:nth-child(2)").all_inner_texts()
    assert roles and set(roles) == {"sdr"}
    page.fill("input[data-filter='t-reps']", "")
    assert page.locator("#t-reps tbody tr:not([hidden])").count() == len(ascending)


def test_the_why_search_shows_every_decision_about_a_person(page: Any, world: DashboardWorld) -> None:
    _sign_in(page, world, "rep", "/dashboard/why")
    page.wait_for_url("**/dashboard/why")
    page.fill("#q", world.own_email)
    page.click("form.search button[type=submit]")
    link = page.locator(f"a[href='/dashboard/why/{'/'.join(world.own)}']")
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"**/dashboard/why/{'/'.join(world.own)}")
    actions = page.locator("#t-trail tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert {"scored", "assigned", "field_update"} <= set(actions)
    assigned = page.locator("#t-trail tbody tr[data-action=assigned]").first
    assert "Routing rule" in assigned.inner_text() and world.rep_email in assigned.inner_text()
    assigned.locator("details.score summary").click()
    assert assigned.locator("details.score table.inner tbody tr").count() > 2   # the score's breakdown
    written = page.locator("#t-trail tbody tr[data-action=field_update] details.written").first
    written.locator("summary").click()
    assert written.locator("dd").count() > 1
    _shot(page, "why")
    page.goto(world.url + "/dashboard/why/" + "/".join(world.other))
    assert page.locator("h1").inner_text() == "403 · Not yours"
