"""Saved backtests in the console: ``/dashboard/backtest`` and ``/api/v1/backtests`` over a seeded run.

A real backtest (the candidate rules: Warm from 70 instead of 60) over the people the syncs of both
sandboxes read (``tests/support/dashboard_world.py``), saved as ``relay backtest --save`` saves it;
each role signs in through the login form as a browser would, or calls the API with its token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connector.config.loader import load_config
from connector.pipeline.backtest import backtest, headline
from connector.pipeline.backtest_reports import save_report, saved_document
from connector.pipeline.console import Console
from connector.pipeline.context import utc_now
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import BacktestReportRow
from connector.web.app import create_app
from tests.support.dashboard_world import ROLES, DashboardWorld, dashboard_world
from tests.support.saved_backtest import SavedBacktest, save_warm_at_70

EMPTY_HINT = "relay backtest --since DATE --rules DIR --save"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardWorld]:
    with dashboard_world(tmp_path_factory.mktemp("dashboard-backtest")) as made:
        yield made


@pytest.fixture(scope="module")
def saved(world: DashboardWorld, tmp_path_factory: pytest.TempPathFactory) -> SavedBacktest:
    return save_warm_at_70(world.engine, world.config, tmp_path_factory.mktemp("candidate"))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def _sign_in(client: httpx.Client | TestClient, token: str) -> None:
    form = client.get("/dashboard/login")
    answer = client.post("/dashboard/login", data={"csrf": _csrf(form.text), "token": token})
    assert answer.status_code == 303, answer.text


@pytest.fixture(scope="module")
def clients(world: DashboardWorld) -> Iterator[dict[str, httpx.Client]]:
    made = {}
    for role in ROLES:
        made[role] = httpx.Client(base_url=world.url, follow_redirects=False, timeout=30)
        _sign_in(made[role], world.tokens[role])
    yield made
    for client in made.values():
        client.close()


def _text(page: httpx.Response) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, runs of white space one space."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def _table(page: httpx.Response, table_id: str) -> list[list[str]]:
    """The rows of a table of the page, each cell's text (its lines joined by one space)."""
    found = re.search(rf'<table class="sortable" id="{table_id}">(.*?)</table>', page.text, re.S)
    assert found is not None, f"no table {table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    return [[" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _chart(page: httpx.Response, chart_id: str) -> dict[str, object]:
    found = re.search(rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', page.text, re.S)
    assert found is not None, f"no chart {chart_id}"
    spec: dict[str, object] = json.loads(found.group(1))
    return spec


# --------------------------------------------------------------------------- the pages


def test_a_saved_backtest_shows_its_headline_tables_and_chart(
        world: DashboardWorld, saved: SavedBacktest, clients: dict[str, httpx.Client]) -> None:
    report = saved.report
    listing = clients["manager"].get("/dashboard/backtest")
    assert listing.status_code == 200, listing.text[:500]
    row = re.search(rf'<tr data-id="{saved.id}">(.*?)</tr>', listing.text, re.S)
    assert row is not None and f'href="/dashboard/backtest/{saved.id}"' in row.group(1)
    cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]
    assert cells[2] == "tester" and cells[4] == "every one" and cells[7] == str(saved.candidate)
    assert cells[5] == report.current_version and cells[6] == report.candidate_version
    assert cells[8:] == [f"{report.records:,}", f"{len(report.owner_changes):,}"]
    assert EMPTY_HINT in _text(listing)   # how to save another

    page = clients["read_only"].get(f"/dashboard/backtest/{saved.id}")
    assert page.status_code == 200, page.text[:500]
    assert 'aria-current="page">Backtests<' in page.text
    text = _text(page)
    for line in headline(report):   # the very lines relay backtest prints
        assert line in text, line
    moved = [c for c in report.owner_changes if (c.before.rule, c.after.rule) == ("warm_sales_rep", "qualified_sdr")]
    assert moved, "the candidate moved nobody from Warm to Qualified"
    owners = _table(page, "t-bt-owner-changes")
    assert owners[0][0] == moved[0].ref   # the rule's own changes first, each record linked to its "why" page
    assert f'<a href="/dashboard/why/{moved[0].ref}">{moved[0].ref}</a>' in page.text
    assert owners[0][1] == f"{moved[0].before.owner} -> {moved[0].after.owner}"
    assert _table(page, "t-bt-tiers") == [["Warm", "Qualified", f"{len(moved):,}"]]
    load = _table(page, "t-bt-load-per-rep")
    assert load == [[r.owner, f"{r.before:,}", f"{r.after:,}", f"{r.delta:+,}" if r.delta else "0"] for r in report.load]
    assert '<th data-type="number">after</th>' in page.text   # numbers sort as numbers
    for title in ("SLA due times", "outcomes", "fairness per round-robin rotation"):
        assert title in text, title

    chart = _chart(page, "chart-backtest-load")
    shown = [r for r in report.load if r.before or r.after]
    assert chart["labels"] == [r.owner for r in shown]
    assert chart["datasets"] == [{"label": "current rules", "data": [r.before for r in shown]},
                                 {"label": "candidate rules", "data": [r.after for r in shown]}]


def test_a_saved_report_names_records_by_crm_id_never_by_the_persons_email(
        world: DashboardWorld, saved: SavedBacktest, clients: dict[str, httpx.Client]) -> None:
    labels = {c.label for c in saved.report.owner_changes if "@" in c.label}
    assert labels, "the owner changes name nobody by email: the test would prove nothing"
    with session_factory(world.engine).begin() as session:
        stored = session.scalar(select(BacktestReportRow.report).where(BacktestReportRow.id == saved.id))
    assert stored is not None
    text = json.dumps(stored).lower()
    assert [label for label in labels if label.lower() in text] == []
    assert all(c["label"] is None for c in stored["owner_changes"])
    assert {c["ref"] for c in stored["owner_changes"]} == {c.ref for c in saved.report.owner_changes}
    page = clients["admin"].get(f"/dashboard/backtest/{saved.id}").text.lower()
    assert [label for label in labels if label.lower() in page] == []


def test_a_rep_may_not_see_backtests_and_nobody_signed_out_does(
        world: DashboardWorld, saved: SavedBacktest, clients: dict[str, httpx.Client]) -> None:
    for path in ("/dashboard/backtest", f"/dashboard/backtest/{saved.id}"):
        refused = clients["rep"].get(path)
        assert refused.status_code == 403, path
        assert "Your role (rep) may not see the Backtests page" in _text(refused)
        assert "<canvas" not in refused.text and saved.report.current_version not in refused.text
        away = httpx.get(world.url + path, follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"].startswith("/dashboard/login?next=")
    rep_nav = re.search(r'<nav aria-label="Pages">(.*?)</nav>', clients["rep"].get("/dashboard/sla").text, re.S)
    manager_nav = re.search(r'<nav aria-label="Pages">(.*?)</nav>', clients["manager"].get("/dashboard/sla").text, re.S)
    assert rep_nav is not None and manager_nav is not None
    assert "/dashboard/backtest" not in rep_nav.group(1)
    assert '<a href="/dashboard/backtest">Backtests</a>' in manager_nav.group(1)   # no ?period=: it has none


def test_an_unknown_or_malformed_backtest_is_a_readable_404(saved: SavedBacktest,
                                                            clients: dict[str, httpx.Client]) -> None:
    for wrong in (str(saved.id + 1000), "abc", "0", "-1", "9" * 30):
        answer = clients["admin"].get(f"/dashboard/backtest/{wrong}")
        assert answer.status_code == 404, wrong
        assert f"No backtest '{wrong}' is saved" in _text(answer)


# --------------------------------------------------------------------------- the admin API


def _api(world: DashboardWorld, path: str, role: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {world.tokens[role]}"} if role else {}
    return httpx.get(world.url + path, headers=headers, timeout=30)


def test_the_api_lists_saved_backtests_newest_first_and_gives_each_whole(
        world: DashboardWorld, saved: SavedBacktest) -> None:
    itself = backtest(world.engine, world.config, since=datetime.now(UTC) - timedelta(days=1))
    later = save_report(world.engine, itself, created_by="tester", now=datetime.now(UTC) + timedelta(seconds=1))

    listed = _api(world, "/api/v1/backtests", "read_only")
    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()][:2] == [later, saved.id]
    first = next(b for b in listed.json() if b["id"] == saved.id)
    assert first["records"] == saved.report.records and first["owners_changed"] == len(saved.report.owner_changes)
    assert first["candidate_source"] == str(saved.candidate) and first["created_by"] == "tester"
    assert "report" not in first
    assert len(_api(world, "/api/v1/backtests?limit=1", "manager").json()) == 1

    one = _api(world, f"/api/v1/backtests/{saved.id}", "marketing")
    assert one.status_code == 200
    body = one.json()
    assert body["report"] == json.loads(json.dumps(saved_document(saved.report)))   # every owner change
    assert len(body["report"]["owner_changes"]) == len(saved.report.owner_changes)
    assert body["headline"] == headline(saved.report)
    same = _api(world, f"/api/v1/backtests/{later}", "admin").json()
    assert same["candidate_source"] is None and "no change: every record gets the same owner" in same["headline"][-1]

    missing = _api(world, f"/api/v1/backtests/{later + 1000}", "admin")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert f"no saved backtest {later + 1000}" in missing.json()["error"]["message"]
    for bad in ("abc", "0", "-3", str(2**63)):
        assert _api(world, f"/api/v1/backtests/{bad}", "admin").status_code == 422, bad
    for path in ("/api/v1/backtests", f"/api/v1/backtests/{saved.id}"):
        refused = _api(world, path, "rep")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert _api(world, path, None).status_code == 401


# --------------------------------------------------------------------------- nothing saved yet


def test_with_nothing_saved_the_page_explains_how_to_save_a_backtest(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    try:
        config = load_config()
        _, token = Console(config, engine, clock=utc_now).add_user("lead", "manager", None)
        with TestClient(create_app(config, engine), follow_redirects=False) as client:
            _sign_in(client, token)
            page = client.get("/dashboard/backtest")
            assert page.status_code == 200
            text = " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())
            assert "No backtest is saved yet" in text and EMPTY_HINT in text
            assert 'id="t-backtests"' not in page.text
            assert client.get("/api/v1/backtests", headers={"Authorization": f"Bearer {token}"}).json() == []
    finally:
        engine.dispose()
