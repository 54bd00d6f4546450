"""The dashboard (issue 12): server-rendered pages over the console's figures, under ``/dashboard``.

Sessions. A user signs in by pasting their API token (``relay users add``). The server checks it
and sets the cookie ``relay_session`` holding **the token itself**: ``HttpOnly`` (no script of the
page can read it), ``SameSite=Strict`` (no other site's request carries it), ``Secure`` when the
request (or ``RELAY_PUBLIC_URL``) is https, ``Path=/dashboard``, 8 hours. Every request checks the
token again, so ``relay users revoke`` ends a session at once; signing out deletes the cookie.
Nothing is kept server-side (several ``relay serve`` processes share nothing but the store).

CSRF. Every POST form carries a token: the sign-in form the value of a random ``relay_login_csrf``
cookie (double submit), the sign-out form ``sha256("relay-csrf:" + session token)``, which only the
session's holder can compute; both are compared in constant time.

Data stays server-side: each page's figures are rendered into the HTML (tables, and the charts'
data as a JSON block that ``static/dashboard.js`` draws with Chart.js, served from the package).
The admin API's ``Authorization: Bearer`` path is untouched: the cookie opens these pages only.

Roles (``auth.may``): every page needs ``read``. Roles that read all see everything; a Rep sees
the SLA and Aging pages limited to their own clocks, and on "Why" only the people assigned to them;
the Funnel, Fairness, Data quality and API usage pages are team-wide figures, and the Backtests pages
(reports ``relay backtest --save`` kept: every rep's leads), so they answer a Rep 403 with a readable page.

The six figure pages are one table (:data:`FIGURE_PAGES`: page, figures function, charts function;
owner-scoped when a Rep may see them) registered by one loop; a backtest is never run here (it takes
seconds to minutes): the Backtests pages read the saved ones through the console.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from connector.config.loader import RelayConfig
from connector.pipeline import dashboard as figures
from connector.pipeline.backtest_reports import text_view as backtest_text
from connector.pipeline.console import ApiRole, Caller, Console
from connector.web.console.auth import may

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
STATIC_PREFIX = f"{PREFIX}/static"
SESSION_COOKIE = "relay_session"
LOGIN_CSRF_COOKIE = "relay_login_csrf"
SESSION_SECONDS = 8 * 3600
MAX_FORM_BYTES = 8_192
_HERE = Path(str(files("connector.web.console")))
TEMPLATES = _HERE / "templates"
STATIC = _HERE / "static"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_OBJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CRM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_REPORT_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_NUMBER = re.compile(r"^(-|[+-]?[0-9][0-9,]*(\.[0-9]+)?( %)?)$")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Page:
    """One page of the dashboard: its path, title, and whether a Rep sees it (limited to their own)."""

    key: str
    title: str
    own: bool
    """A Rep sees it, limited to their own records; False: only roles that read all."""
    by_period: bool = True
    """Figures of a period (``?period=``), cached per period and owner; False: read on every request."""


def csrf_for(token: str) -> str:
    """The CSRF token of a session (only who holds the session's token can compute it)."""
    return hashlib.sha256(f"relay-csrf:{token}".encode()).hexdigest()


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["when"] = _when
    env.filters["minutes"] = _minutes
    return env


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} %"


def _minutes(value: Any) -> str:
    if value is None:
        return "-"
    minutes = float(value)
    if abs(minutes) >= 120:
        return f"{minutes / 60:.1f} h"
    return f"{minutes:.1f} min"


def _when(value: Any) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value)


class _Refused(Exception):
    """A page that cannot be shown: its status (403, 404), a title and a message for the reader."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


CACHE_SECONDS = 60.0
"""How old a page's figures may be (:class:`connector.pipeline.dashboard.FigureCache`)."""


def dashboard_router(console: Console, *, public_url: str | None = None,
                     cache: figures.FigureCache | None = None) -> APIRouter:
    """The ``/dashboard`` pages over ``console`` (not in the OpenAPI document).

    ``cache``: a page's figures (per period and owner) are computed at most once per its ``ttl``
    (default :data:`CACHE_SECONDS`); ``ttl`` 0 computes them on every request. The "why" and
    backtest pages are never cached.
    """
    router = APIRouter(include_in_schema=False)
    cache = cache if cache is not None else figures.FigureCache(CACHE_SECONDS)
    cache_seconds = cache.ttl
    env = _environment()
    https_everywhere = bool(public_url and public_url.lower().startswith("https://"))

    def secure(request: Request) -> bool:
        return https_everywhere or request.url.scheme == "https"

    def html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = env.get_template(template).render(pages=PAGES, static=STATIC_PREFIX, prefix=PREFIX, **context)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def caller_of(request: Request) -> tuple[Caller, str] | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 200:
            return None
        found = console.authenticate(token)
        return (found, token) if found is not None else None

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303,
                                headers=SECURITY_HEADERS)

    def period_of(request: Request) -> str | None:
        period = request.query_params.get("period", figures.DEFAULT_PERIOD)
        return period if period in figures.PERIODS else None

    def forbidden(who: Caller, token: str, page: Page, message: str) -> HTMLResponse:
        return html("error.html", 403, who=who, csrf=csrf_for(token), page=page, title="Not for your role",
                    code=403, message=message)

    async def render_page(request: Request, page: Page,
                          build: Callable[[Caller, datetime, datetime | None, str | None], dict[str, Any]],
                          template: str) -> Response:
        session = await run_in_threadpool(caller_of, request)
        if session is None:
            return to_login(request)
        who, token = session
        if not may(who, "read") and not (page.own and may(who, "read", owners={(who.email or "").strip().lower()})):
            return forbidden(who, token, page, f"Your role ({who.role.value}) may not see the {page.title} page: "
                             "it shows the whole team's figures. Your own figures are on the SLA and Aging pages.")
        period = period_of(request)
        if period is None:
            return html("error.html", 400, who=who, csrf=csrf_for(token), page=page, title="Unknown period",
                        code=400, message=f"Unknown period {request.query_params.get('period')!r}: choose one of "
                                          f"{', '.join(figures.PERIODS)}.")
        owner = None if may(who, "read") else (who.email or "").strip().lower()

        def compute() -> dict[str, Any]:
            now = console.clock()
            return build(who, now, figures.since_of(period, now), owner)

        try:
            if not page.by_period:
                data = await run_in_threadpool(compute)
            else:
                data = await run_in_threadpool(cache.get, (page.key, period, owner), compute)
        except _Refused as exc:
            return html("error.html", exc.status, who=who, csrf=csrf_for(token), page=page, title=exc.title,
                        code=exc.status, message=exc.message)
        return html(template, who=who, csrf=csrf_for(token), page=page, period=period, periods=figures.PERIODS,
                    owner=owner, data=data, request_path=request.url.path, cache_seconds=cache_seconds)

    # ------------------------------------------------------------------ sign in, sign out

    @router.get(PREFIX, response_model=None)
    @router.get(f"{PREFIX}/", response_model=None)
    async def home(request: Request) -> Response:
        session = await run_in_threadpool(caller_of, request)
        if session is None:
            return to_login(request)
        return RedirectResponse(f"{PREFIX}/sla", status_code=303, headers=SECURITY_HEADERS)

    @router.get(f"{PREFIX}/login", response_model=None)
    def login_form(request: Request) -> Response:
        value = secrets.token_urlsafe(24)
        response = html("login.html", csrf=value, next=_local(request.query_params.get("next")), error=None,
                        who=None, page=None)
        response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, path=PREFIX, httponly=True, samesite="strict",
                            secure=secure(request))
        return response

    @router.post(f"{PREFIX}/login", response_model=None)
    async def login(request: Request) -> Response:
        form = await _form(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        given = form.get("csrf", "")
        target = _local(form.get("next"))
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            return _login_again(html, request, secure(request), target, 403,
                                "The sign-in form expired or came from elsewhere: try again.")
        token = form.get("token", "").strip()
        who = await run_in_threadpool(console.authenticate, token) if token and len(token) <= 200 else None
        if who is None:
            return _login_again(html, request, secure(request), target, 401,
                                "That token is unknown or revoked. Ask an admin for one (relay users add).")
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, path=PREFIX, httponly=True,
                            samesite="strict", secure=secure(request))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=secure(request))
        return response

    @router.post(f"{PREFIX}/logout", response_model=None)
    async def logout(request: Request) -> Response:
        form = await _form(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token or not hmac.compare_digest(csrf_for(token).encode(), form.get("csrf", "").encode()):
            return HTMLResponse("<!doctype html><title>Refused</title><p>Sign-out refused: the form's CSRF token "
                                f"does not match your session. <a href=\"{PREFIX}/\">Back</a></p>",
                                status_code=403, headers=SECURITY_HEADERS)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=secure(request))
        return response

    # ------------------------------------------------------------------ the pages

    def figure_page(spec: FigurePage) -> None:
        """Register one figure page: its figures (a Rep's own when it is owner-scoped), charted, rendered."""
        page = spec.page

        def build(_who: Caller, now: datetime, since: datetime | None, owner: str | None) -> dict[str, Any]:
            return spec.compute(console, now, since, owner)

        async def show(request: Request) -> Response:
            return await render_page(request, page, build, f"{page.key}.html")

        router.add_api_route(f"{PREFIX}/{page.key}", show, methods=["GET"], response_model=None, name=page.key)

    for spec in FIGURE_PAGES:
        figure_page(spec)

    @router.get(f"{PREFIX}/why", response_model=None)
    async def why(request: Request) -> Response:
        query = (request.query_params.get("q") or "").strip()[:320]

        def build(who: Caller, _now: datetime, _since: datetime | None, _owner: str | None) -> dict[str, Any]:
            found = console.find_people(query, limit=50) if query else []
            if not may(who, "read"):
                found = [p for p in found
                         if may(who, "read", owners=console.owners_of(p["connection"], p["object"], p["crm_id"])
                                or set())]
            return {"query": query, "people": found}
        return await render_page(request, PAGE_BY_KEY["why"], build, "why.html")

    @router.get(f"{PREFIX}/why/{{connection}}/{{object_name}}/{{crm_id}}", response_model=None)
    async def why_person(request: Request, connection: str, object_name: str, crm_id: str) -> Response:
        def build(who: Caller, _now: datetime, _since: datetime | None, _owner: str | None) -> dict[str, Any]:
            name = f"{connection}/{object_name}/{crm_id}"
            if not (_NAME.match(connection) and _OBJECT.match(object_name) and _CRM_ID.match(crm_id)):
                raise _Refused(404, "No such record", f"{name!r} is not a record's name (connection/object/CRM id).")
            owners = console.owners_of(connection, object_name, crm_id)
            if owners is None:
                raise _Refused(404, "No such record", f"Relay has no record {name}.")
            if not may(who, "read", owners=owners):
                raise _Refused(403, "Not yours", f"Your role ({who.role.value}) may read only the people assigned "
                                                 f"to you; {name} is not.")
            person = console.person(connection, object_name, crm_id)
            if person is None:
                raise _Refused(404, "No such record", f"Relay has no record {name}.")
            trail = [figures.explain(entry) for entry in person["trail"]]
            return {"record": f"{connection}/{object_name}/{crm_id}", "person": person, "trail": trail}
        return await render_page(request, PAGE_BY_KEY["why"], build, "person.html")

    @router.get(f"{PREFIX}/backtest", response_model=None)
    async def backtests(request: Request) -> Response:
        def build(_who: Caller, _now: datetime, _since: datetime | None, _owner: str | None) -> dict[str, Any]:
            return {"reports": console.backtests(limit=200)}
        return await render_page(request, PAGE_BY_KEY["backtest"], build, "backtests.html")

    @router.get(f"{PREFIX}/backtest/{{report_id}}", response_model=None)
    async def backtest(request: Request, report_id: str) -> Response:
        def build(_who: Caller, _now: datetime, _since: datetime | None, _owner: str | None) -> dict[str, Any]:
            found = console.backtest(int(report_id)) if _REPORT_ID.match(report_id) else None
            if found is None:
                raise _Refused(404, "No such backtest", f"No backtest {report_id!r} is saved: the Backtests page "
                                                        "lists those that are.")
            view = backtest_text(found["report"], every_one=f"GET /api/v1/backtests/{found['id']} lists every one")
            sections = [_section(s) for s in view["sections"]]
            return {"saved": found, "report": found["report"], "headline": view["headline"], "sections": sections,
                    "notes": view["notes"], "charts": backtest_charts(found["report"])}
        return await render_page(request, PAGE_BY_KEY["backtest"], build, "backtest.html")

    return router


def _section(section: dict[str, Any]) -> dict[str, Any]:
    """A backtest's text table for its page: an id, which columns hold numbers, each cell's lines; a record
    (the owner changes' first column: ``connection/object/crm_id``) links to its "why" page."""
    title: str = section["title"]
    columns: list[str] = section["columns"]
    rows: list[list[str]] = section["rows"]
    numeric = [any(row[i] != "-" for row in rows) and all(_NUMBER.match(row[i]) for row in rows)
               for i in range(len(columns))]
    records = title.startswith("owner changes")

    def cell(i: int, text: str) -> dict[str, Any]:
        lines = text.split("\n")
        return {"lines": lines, "link": f"{PREFIX}/why/{quote(lines[0], safe='/')}" if records and i == 0 else None}

    return {"id": "t-bt-" + re.sub(r"[^a-z0-9]+", "-", title.split(" (")[0].lower()).strip("-"), "title": title,
            "columns": columns, "headed": any(columns), "numeric": numeric,
            "rows": [[cell(i, text) for i, text in enumerate(row)] for row in rows]}


# --------------------------------------------------------------------------- charts (Chart.js specs; static/dashboard.js draws them)


def backtest_charts(report: dict[str, Any]) -> dict[str, Any]:
    """Records per owner under the current rules and the candidate (a saved backtest's load per rep)."""
    load = [r for r in report.get("load") or [] if r.get("before") or r.get("after")]
    return {
        "load": {"labels": [r["owner"] for r in load], "unit": "records", "horizontal": True,
                 "height": max(200, 26 * len(load) + 70),
                 "datasets": [{"label": "current rules", "data": [r["before"] for r in load]},
                              {"label": "candidate rules", "data": [r["after"] for r in load]}],
                 "empty": "No record has an owner under either rule set."},
    }


def _target_line(label: str, value: float, n: int) -> dict[str, Any]:
    return {"label": label, "data": [value] * n, "type": "line", "dashed": True, "color": "#b3261e"}


def sla_charts(data: dict[str, Any]) -> dict[str, Any]:
    """Compliance by tier (with the target) and by rep."""
    target = float(data["target"]["value"])
    tiers = [t for t in data["tiers"]]
    reps = [r for r in data["reps"] if r["judged"]]
    return {
        "tiers": {"labels": [t["tier"] for t in tiers], "unit": "%", "max": 100,
                  "datasets": [{"label": "compliance %", "data": [t["compliance_percent"] for t in tiers]},
                               _target_line(f"target {data['target']['text']}", target, len(tiers))],
                  "empty": "No clock judged yet in this period."},
        "reps": {"labels": [r["name"] for r in reps], "unit": "%", "max": 100, "horizontal": True,
                 "height": max(200, 20 * len(reps) + 70),
                 "datasets": [{"label": "compliance %", "data": [r["compliance_percent"] for r in reps]},
                              _target_line(f"target {data['target']['text']}", target, len(reps))],
                 "empty": "No clock judged yet in this period."},
    }


def aging_charts(data: dict[str, Any]) -> dict[str, Any]:
    """Open leads by age bucket (stacked by status) and the aging events per day."""
    days = data.get("days") or [d["day"] for d in data["events_by_day"]]
    by_day = {d["day"]: d for d in data["events_by_day"]}
    events = [("requeues", "re-queued"), ("nurtured", "back to nurture"), ("recycles", "recycled")]
    return {
        "buckets": {"labels": data["buckets"], "stacked": True, "unit": "leads",
                    "datasets": [{"label": s["label"], "data": [s["buckets"][b] for b in data["buckets"]]}
                                 for s in data["statuses"]],
                    "empty": "No open lead."},
        "events": {"labels": days if any(by_day.values()) else [], "stacked": True, "unit": "leads",
                   "datasets": [{"label": label, "data": [by_day.get(d, {}).get(key, 0) for d in days]}
                                for key, label in events],
                   "empty": "No re-queue, return to nurture or recycle in this period."},
    }


def funnel_charts(data: dict[str, Any]) -> dict[str, Any]:
    """The funnel's stage counts, and the median time at each handoff in hours."""
    stages = data["stages"]
    hours = {"minutes": 1 / 60, "hours": 1.0, "days": 24.0}
    times = [t for t in data["times"] if t.get("value") is not None and t["unit"] in hours]
    return {
        "funnel": {"labels": [s["label"] for s in stages], "unit": "count",
                   "datasets": [{"label": "reached", "data": [s["count"] or 0 for s in stages]}],
                   "empty": "No lead or deal in this period."},
        "times": {"labels": [t["label"] for t in times], "unit": "hours", "horizontal": True,
                  "datasets": [{"label": "hours", "data": [round(t["value"] * hours[t["unit"]], 2) for t in times]}],
                  "empty": "No handoff measured in this period."},
    }


def fairness_charts(data: dict[str, Any]) -> dict[str, Any]:
    """Each rotation member's share against their weight's share; leads, Hot leads and open load per rep."""
    members = [(rot["rotation"], m) for rot in data["rotations"] for m in rot["members"]]
    reps = [r for r in data["reps"] if r["leads"] or r["open_load"]]
    return {
        "shares": {"labels": [f"{rot} · {m['name']}" for rot, m in members], "unit": "%", "horizontal": True,
                   "height": max(200, 20 * len(members) + 70),
                   "datasets": [{"label": "share of picks %", "data": [m["share_percent"] for _, m in members]},
                                {"label": "weight's share %", "data": [m["expected_percent"] for _, m in members]}],
                   "empty": "No round-robin pick in this period."},
        "leads": {"labels": [r["name"] for r in reps], "unit": "leads",
                  "datasets": [{"label": "leads", "data": [r["leads"] for r in reps]},
                               {"label": "Hot leads", "data": [r["hot_leads"] for r in reps]},
                               {"label": "open load now", "data": [r["open_load"] for r in reps]}],
                  "empty": "No lead assigned in this period."},
    }


def quality_charts(data: dict[str, Any]) -> dict[str, Any]:
    """Completeness and duplicates per day against the targets, and per source."""
    days = data["days"]
    sources = data["sources"]
    targets = data["targets"]
    return {
        "days": {"labels": [d["day"] for d in days], "type": "line", "unit": "%",
                 "datasets": [{"label": "completeness %", "data": [d["completeness_percent"] for d in days],
                               "type": "line"},
                              {"label": "duplicates %", "data": [d["duplicate_percent"] for d in days], "type": "line"},
                              _target_line(f"completeness target {targets['completeness_text']}",
                                           targets["completeness_min_percent"], len(days)),
                              {**_target_line(f"duplicates target {targets['duplicates_text']}",
                                              targets["duplicates_max_percent"], len(days)), "color": "#e07b00"}],
                 "empty": "No sync run measured data quality in this period."},
        "sources": {"labels": [f"{s['connection']} · {s['source']}" for s in sources], "unit": "%",
                    "datasets": [{"label": "completeness %", "data": [s["completeness_percent"] for s in sources]},
                                 {"label": "duplicates %", "data": [s["duplicate_percent"] for s in sources]},
                                 {"label": "invalid phones %", "data": [s["invalid_phone_percent"] for s in sources]},
                                 {"label": "invalid emails %", "data": [s["invalid_email_percent"] for s in sources]}],
                    "empty": "No sync run measured data quality in this period."},
    }


def api_charts(data: dict[str, Any]) -> dict[str, Any]:
    """Today's use of each CRM's daily limit, and the calls per day per connection."""
    connections = data["connections"]
    days = sorted({d["day"] for c in connections for d in c["calls_by_day"]})
    return {
        "limits": {"labels": [c["name"] for c in connections], "unit": "% of the limit", "horizontal": True, "max": 100,
                   "datasets": [{"label": "day used %", "data": [c["day"]["percent"] if c["day"] else None
                                                                for c in connections]},
                                {"label": "window used %", "data": [c["window"]["percent"] if c["window"] else None
                                                                   for c in connections]}]},
        "days": {"labels": days, "unit": "calls", "stacked": True,
                 "datasets": [{"label": c["name"], "data": [next((d["calls"] for d in c["calls_by_day"]
                                                                  if d["day"] == day), 0) for day in days]}
                              for c in connections],
                 "empty": "No API call counted in this period."},
    }


# --------------------------------------------------------------------------- the figure pages, one table


def _aging_figures(engine: Engine, config: RelayConfig, *, now: datetime, since: datetime | None,
                   owner: str | None) -> dict[str, Any]:
    """The aging figures and every day of the period (the events chart has a bar for each)."""
    data = figures.aging_figures(engine, config, now=now, since=since, owner=owner)
    data["days"] = figures.day_range(since, now)
    return data


@dataclass(frozen=True)
class FigurePage:
    """A page of a period's figures: ``GET /dashboard/<key>``, rendered by ``<key>.html``, cached per period and owner.

    ``figures(engine, config, now=, since=[, owner=])`` computes them and ``charts(figures)`` gives
    the Chart.js specs. Owner-scoped (``page.own``): a Rep sees it, the figures of their own
    (``owner=`` their email); otherwise only the roles that read all do.
    """

    page: Page
    figures: Callable[..., dict[str, Any]]
    charts: Callable[[dict[str, Any]], dict[str, Any]]

    def compute(self, console: Console, now: datetime, since: datetime | None, owner: str | None) -> dict[str, Any]:
        """The page's figures (``owner``'s own on an owner-scoped page) with their charts."""
        scope: dict[str, Any] = {"owner": owner} if self.page.own else {}
        data = self.figures(console.engine, console.config, now=now, since=since, **scope)
        data["charts"] = self.charts(data)
        return data


FIGURE_PAGES: tuple[FigurePage, ...] = (
    FigurePage(Page("sla", "SLA", True), figures.sla_figures, sla_charts),
    FigurePage(Page("aging", "Aging", True), _aging_figures, aging_charts),
    FigurePage(Page("funnel", "Funnel & handoffs", False), figures.funnel_figures, funnel_charts),
    FigurePage(Page("fairness", "Fairness", False), figures.fairness_figures, fairness_charts),
    FigurePage(Page("quality", "Data quality", False), figures.quality_figures, quality_charts),
    FigurePage(Page("api", "API usage", False), figures.api_usage_figures, api_charts),
)
"""The figure pages: :func:`dashboard_router` registers each from this table."""


def warm_figures(console: Console, cache: figures.FigureCache, *, period: str = figures.DEFAULT_PERIOD) -> None:
    """Compute the team's figures of every page for ``period`` into ``cache`` (``relay serve`` starts this in
    a thread), so the first person to open a page after a start does not wait for them: on a store of a
    million decisions the funnel takes seconds. A page that fails is logged and left to its first request.
    """
    for spec in FIGURE_PAGES:
        def compute(spec: FigurePage = spec) -> dict[str, Any]:
            now = console.clock()
            return spec.compute(console, now, figures.since_of(period, now), None)
        try:
            cache.get((spec.page.key, period, None), compute)
        except Exception as exc:  # the page computes it on its first request instead
            log.warning("dashboard: the %s figures could not be computed ahead: %s: %s", spec.page.key,
                        type(exc).__name__, exc)
PAGES: tuple[Page, ...] = (*(f.page for f in FIGURE_PAGES), Page("why", "Why", True, by_period=False),
                           Page("backtest", "Backtests", False, by_period=False))
"""Every page, in the navigation's order."""
PAGE_BY_KEY = {p.key: p for p in PAGES}


def _local(target: str | None) -> str:
    """A redirect target inside the dashboard (anything else: its home), so sign-in cannot send elsewhere."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target \
            and "://" not in target:
        return target
    return f"{PREFIX}/sla"


async def _form(request: Request) -> dict[str, str]:
    """A small ``application/x-www-form-urlencoded`` body as field -> first value (bigger bodies: empty)."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


def _login_again(html: Callable[..., HTMLResponse], request: Request, is_secure: bool, target: str, status: int,
                 error: str) -> Response:
    value = secrets.token_urlsafe(24)
    response = html("login.html", status, csrf=value, next=target, error=error, who=None, page=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, path=PREFIX, httponly=True, samesite="strict",
                        secure=is_secure)
    return response


def why_link(connection: str, object_name: str, crm_id: str) -> str:
    """The "why" page of a record."""
    return f"{PREFIX}/why/{quote(connection)}/{quote(object_name)}/{quote(crm_id)}"


__all__ = ["PAGES", "PREFIX", "SESSION_COOKIE", "STATIC", "STATIC_PREFIX", "ApiRole", "csrf_for", "dashboard_router"]
