"""Personal data never reaches Relay's log output: every logging call site, and real flows.

1. Every call like ``log.info(...)`` in ``connector/`` and ``jobs/`` (found by walking the source's
   syntax trees) logs through its module's logger, which reaches Relay's handler, and that handler
   masks: each site's own template is logged through its own logger, with personal values and
   secrets as its arguments, and none of them comes out.
2. Nothing in ``connector/`` or ``jobs/`` gives a logger a handler of its own or stops it
   propagating, and no logger in the process that does so lacks the filter.
3. Real flows at DEBUG, through Relay's logging as ``relay -vv`` configures it: a sync of both CRMs
   with a person whose email, phone and name are known (and whose long last name Salesforce refuses:
   a failed write that echoes it), malformed webhooks and a form with bad values naming them. An
   unfiltered handler ahead of Relay's shows the flows did log those values; Relay's output never does.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.pipeline.sync import run_sync
from connector.privacy.logfilter import WITHHELD, has_privacy_filter
from crm_sandbox.hubspot.webhooks import sign_v3
from crm_sandbox.runner import SandboxServer

from .conftest import HUBSPOT_TOKEN, PERSON, SALESFORCE_SECRET, Logs, World, leaks

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("connector", "jobs")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
          "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL}
_CONVERSION = re.compile(r"%(?:\((?P<key>\w+)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?"
                         r"(?P<kind>[diouxXeEfFgGcrsa%])")

SECRETS = [HUBSPOT_TOKEN, "00D5e0000000001!AQx7Yq2abcdefghijklmnopqrstu", "relay_" + "Qw3rTy_-" * 6,
           SALESFORCE_SECRET]
PERSONAL = f"{PERSON.email} {PERSON.phone} {{'lastname': '{PERSON.last}'}} Bearer {SECRETS[2]} {HUBSPOT_TOKEN} " \
           f"{SECRETS[1]} client_secret={SALESFORCE_SECRET}"
"""What each site's string arguments carry."""
NEVER = [PERSON.email, PERSON.phone, "7946 0958", PERSON.last, *SECRETS]


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    module: str
    logger: str | None
    """The module-level variable the call goes through (``log``), or None when it is not a module logger."""
    logger_name: str
    """The name of that logger (``__name__``: the module's)."""
    method: str
    template: str | None
    """The format string when it is a literal (None: an f-string or an expression)."""
    exc_info: bool

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _module_loggers(tree: ast.Module) -> dict[str, str | None]:
    """Module-level ``name = logging.getLogger(...)``: name -> the logger name (``__name__`` -> None)."""
    found: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "getLogger":
                argument = call.args[0] if call.args else None
                named = argument.value if isinstance(argument, ast.Constant) and isinstance(argument.value, str) else None
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = named
    return found


def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # "a" "b" spread over lines is one Constant
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    return None


def logging_sites() -> list[Site]:
    """Every call of a logging method on a name in ``connector/`` and ``jobs/``."""
    sites: list[Site] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            loggers = _module_loggers(tree)
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in LEVELS and isinstance(node.func.value, ast.Name)):
                    continue
                receiver = node.func.value.id
                if receiver not in loggers and receiver not in ("log", "logger", "logging", "_log", "LOG"):
                    continue  # e.g. a warnings-like API of another object
                exc_info = node.func.attr == "exception" or any(
                    kw.arg == "exc_info" and not (isinstance(kw.value, ast.Constant) and not kw.value.value)
                    for kw in node.keywords)
                sites.append(Site(str(path.relative_to(ROOT)), node.lineno, module,
                                  receiver if receiver in loggers else None, loggers.get(receiver) or module,
                                  node.func.attr,
                                  _literal(node.args[0]) if node.args else None, exc_info))
    return sites


SITES = logging_sites()


def test_the_walk_finds_relays_logging_call_sites() -> None:
    """A walker that finds nothing would make every test below pass: it must find the sites known to exist."""
    where = {site.where.split(":")[0] for site in SITES}
    assert len(SITES) >= 50
    for path in ("connector/pipeline/writer.py", "connector/web/app.py", "connector/web/capture.py",
                 "connector/adapters/retry.py", "connector/crms/hubspot/adapter.py", "jobs/tasks.py"):
        assert path in where


def test_every_site_logs_through_its_modules_own_logger() -> None:
    problems = [f"{site.where}: {site.method} on something that is not logging.getLogger(__name__) of the module"
                for site in SITES if site.logger is None]
    assert problems == []


def test_no_module_gives_a_logger_a_handler_or_stops_it_propagating() -> None:
    """Only connector/cli.py configures handlers (_configure_logging, with the filter); nothing sets propagate."""
    problems: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            relative = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Attribute) and target.attr == "propagate":
                            problems.append(f"{relative}:{node.lineno}: sets propagate")
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    name = node.func.attr
                    if name in ("basicConfig", "dictConfig", "fileConfig"):
                        problems.append(f"{relative}:{node.lineno}: {name}")
                    if name == "addHandler" and relative != "connector/cli.py":
                        problems.append(f"{relative}:{node.lineno}: addHandler")
                    if name == "run" and isinstance(node.func.value, ast.Name) and node.func.value.id == "uvicorn" \
                            and not any(kw.arg == "log_config" for kw in node.keywords):
                        problems.append(f"{relative}:{node.lineno}: uvicorn.run without log_config (its default "
                                        f"gives uvicorn's loggers handlers of their own)")
    assert problems == []


def _chain_problems(name: str, level: int) -> list[str]:
    """Why a record of ``name`` at ``level`` would not reach a masking handler (empty: it does)."""
    problems: list[str] = []
    logger: logging.Logger | None = logging.getLogger(name)
    if not logging.getLogger(name).isEnabledFor(level):
        problems.append(f"{name} drops level {logging.getLevelName(level)}")
    masked_handler = False
    while logger is not None:
        for handler in logger.handlers:
            if logger is logging.root and not getattr(handler, "_relay", False):
                continue  # the test harness's own (pytest's capture, the unfiltered probe): not Relay's
            if has_privacy_filter(handler) or has_privacy_filter(logger):
                masked_handler = True
            else:
                problems.append(f"{logger.name}: handler {handler!r} without the privacy filter")
        if not logger.propagate:
            break
        logger = logger.parent
    if not masked_handler:
        problems.append(f"{name}: no handler with the privacy filter on the way to the root")
    return problems


def test_every_site_reaches_a_masking_handler(relay_logs: Logs) -> None:
    problems = [f"{site.where}: {problem}" for site in SITES
                for problem in _chain_problems(site.logger_name, LEVELS[site.method])]
    assert problems == []


def test_no_logger_in_the_process_bypasses_the_filter(relay_logs: Logs) -> None:
    """Every logger that stops propagating or has handlers of its own masks (uvicorn's after a sandbox starts)."""
    import connector.web.app  # noqa: F401 - the modules relay serve and relay worker load
    import jobs.tasks  # noqa: F401

    server = SandboxServer(_app_that_logs(), port=0, name="probe").start()  # uvicorn configures its loggers
    server.stop()
    problems: list[str] = []
    for name, logger in sorted(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name.split(".")[0] not in RELAYS_LIBRARIES:
            continue
        if (logger.handlers or not logger.propagate) and not has_privacy_filter(logger):
            problems.extend(f"{name}: handler {h!r} without the filter" for h in logger.handlers
                            if not has_privacy_filter(h) and not isinstance(h, logging.NullHandler))
    assert problems == []


RELAYS_LIBRARIES = frozenset({*PACKAGES, "uvicorn", "starlette", "fastapi", "huey", "httpx", "httpcore", "urllib3",
                              "requests", "sqlalchemy", "alembic", "simple_salesforce", "hubspot", "tenacity",
                              "asyncio", "py"})
"""The loggers of what Relay's processes run (another test may leave a logger of its own configured)."""


def _app_that_logs() -> Any:
    from starlette.applications import Starlette

    return Starlette()


def _arguments(template: str) -> tuple[Any, ...] | dict[str, Any]:
    """Arguments that fit ``template``: numbers for numeric conversions, :data:`PERSONAL` for the others."""
    values: list[Any] = []
    named: dict[str, Any] = {}
    for match in _CONVERSION.finditer(template):
        kind = match["kind"]
        if kind == "%":
            continue
        for star in ("width", "precision"):
            if match[star] == "*":
                values.append(3)
        value: Any = 7 if kind in "diouxXc" else 1.5 if kind in "eEfFgG" else PERSONAL
        if match["key"]:
            named[match["key"]] = value
        else:
            values.append(value)
    return named if named else tuple(values)


def test_every_sites_template_and_personal_arguments_come_out_masked(relay_logs: Logs) -> None:
    """Each site's template, logged through its own logger with personal data and secrets as its arguments."""
    templates = [site for site in SITES if site.template is not None]
    assert len(templates) >= 0.9 * len(SITES), "most sites log a literal template"
    for index, site in enumerate(templates):
        assert site.template is not None
        marker = f"[site {index}]"
        arguments = _arguments(site.template)
        logger = logging.getLogger(site.logger_name)
        template = site.template + " " + marker
        if site.exc_info:
            try:
                raise RuntimeError(f"failed for {PERSONAL}")
            except RuntimeError:
                logger.log(LEVELS[site.method], template, *([arguments] if isinstance(arguments, dict)
                                                            else arguments), exc_info=True)
        else:
            logger.log(LEVELS[site.method], template, *([arguments] if isinstance(arguments, dict) else arguments))
    relay, raw = relay_logs.relay_text(), relay_logs.raw_text()
    missing = [f"{site.where} [site {index}]" for index, site in enumerate(templates)
               if f"[site {index}]" not in relay]
    assert missing == [], "sites whose line never reached Relay's handler"
    assert leaks(raw, NEVER), "the unfiltered handler saw nothing personal: the test proves nothing"
    assert leaks(relay, NEVER) == []
    assert "Z***@P***.example" in relay and "[phone ..58]" in relay and "pat-***" in relay


# ------------------------------------------------------------------------------------------------- flows


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the logs, not the store
def test_a_sync_of_both_crms_logs_nothing_of_the_person(start_world: Callable[[], World], relay_logs: Logs) -> None:
    world = start_world()
    summaries = [run_sync(world.config, name, world.engine) for name in ("salesforce", "hubspot")]
    refused = [f for f in summaries[0].write_failures if f.crm_id == world.lead_id]
    assert [f.code for f in refused] == ["STRING_TOO_LONG"], "Salesforce was to refuse the person's last name"
    relay, raw = relay_logs.relay_text(), relay_logs.raw_text()
    assert len(relay.splitlines()) > 30 and "connector.pipeline.writer" in relay, "the capture is working"
    assert leaks(raw, [PERSON.last.title()]), "the failed write's error text named the person: the test proves it"
    assert leaks(relay, [*PERSON.values(), HUBSPOT_TOKEN, SALESFORCE_SECRET]) == []
    assert f"data value too large: {WITHHELD}" in relay


def _signed(url: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    return {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-v3": sign_v3("hubspot-app-secret", "POST", url, body.decode(), stamp)}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the logs, not the store
def test_malformed_webhooks_and_forms_naming_the_person_log_nothing_of_them(
    start_world: Callable[[], World], relay_logs: Logs, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connector.config.loader import load_config
    from connector.web.app import create_app

    world = start_world()
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "hubspot-app-secret")
    monkeypatch.setenv("RELAY_CAPTURE_WEBSITE_SECRET", "website-form-secret-7c1d")
    config = load_config(env=dict(os.environ))
    server = SandboxServer(create_app(config, world.engine, decide=False), port=0, name="relay").start()
    try:
        url = server.url + "/webhooks/hubspot"
        bodies = [
            [{"eventId": 1, "portalId": 62515, "occurredAt": 1, "objectId": PERSON.email,
              "subscriptionType": "contact.creation"}],
            [{"eventId": 2, "portalId": 62515, "occurredAt": 1, "objectId": 5, "subscriptionType": PERSON.phone}],
            [{"eventId": 3, "portalId": 62515, "occurredAt": 1, "objectId": 5, "subscriptionType": "contact.propertyChange",
              "propertyName": {"lastname": PERSON.last, "email": PERSON.email}}],
        ]
        for body in bodies:
            data = json.dumps(body).encode()
            answer = httpx.post(url, content=data, headers=_signed(url, data))
            assert answer.status_code == 400, answer.text
        form = {"email": PERSON.email.replace("@", "@@"), "first_name": PERSON.first, "last_name": PERSON.last,
                "phone": PERSON.phone + " ext abc"}
        answer = httpx.post(server.url + "/capture/form/website", content=json.dumps(form).encode(),
                            headers={"Content-Type": "application/json", "X-Relay-Secret": "website-form-secret-7c1d"})
        assert answer.status_code == 400, answer.text
    finally:
        server.stop()
    relay, raw = relay_logs.relay_text(), relay_logs.raw_text()
    assert relay.count("refused with 400") == 4
    assert leaks(raw, [PERSON.email, PERSON.phone, PERSON.last]), "the refusals named the person: the test proves it"
    assert leaks(relay, [*PERSON.values(), PERSON.email.replace("@", "@@"), "website-form-secret-7c1d"]) == []


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the logs, not the store
def test_a_failed_write_is_logged_without_the_value_refused(
    start_world: Callable[[], World], relay_logs: Logs,
) -> None:
    world = start_world()
    run_sync(world.config, "salesforce", world.engine)
    lines = [line for line in relay_logs.relay_text().splitlines() if world.lead_id in line and "refused" in line]
    assert lines, "Relay logs the refused write (the record, the field, the CRM's code)"
    assert all("STRING_TOO_LONG" in line and "LastName" in line for line in lines)
    assert leaks("\n".join(lines), PERSON.values()) == []
