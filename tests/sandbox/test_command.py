"""``python -m crm_sandbox`` as a user runs it: a subprocess, its printed settings, Ctrl-C (SIGINT).

The tests start it on port 0, read the URLs it prints, call the sandboxes there with the official
SDKs, and stop it with SIGINT, as Ctrl-C would.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from simple_salesforce import Salesforce

from crm_sandbox.cli import FAULT_HELP, build_parser, fault_settings
from crm_sandbox.common import REQUEST_FAULTS
from crm_sandbox.salesforce.transport import sandbox_session

WAIT = 60.0
"""Seconds to wait for a line before declaring the command stuck (a backstop, not a timing assertion)."""


class Command:
    """A running ``python -m crm_sandbox`` whose output is read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLUMNS")}
        env["COLUMNS"] = "60"  # a narrow terminal: export lines must still come out whole
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crm_sandbox", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, pattern: str) -> list[str]:
        """Lines printed up to and including the first that matches ``pattern``."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {WAIT} s; printed so far: {self.seen}")
            if line is None:
                pytest.fail(f"the command ended (exit {self.process.wait()}) before printing {pattern!r}: "
                            f"{self.seen}; stderr: {self.stderr()}")
            self.seen.append(line)
            if re.search(pattern, line):
                return self.seen

    def rest(self) -> list[str]:
        """Every further line until the output ends."""
        out = []
        while (line := self.lines.get(timeout=WAIT)) is not None:
            out.append(line)
        return out

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""

    def interrupt(self) -> int:
        """Ctrl-C, then the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT)


@pytest.fixture()
def commands() -> Iterator[list[Command]]:
    """Commands a test started; any still running at its end is killed."""
    started: list[Command] = []
    yield started
    for command in started:
        command.kill()


def _exports(lines: list[str]) -> dict[str, str]:
    """The variables of every ``export A=1 B=2`` line printed."""
    env: dict[str, str] = {}
    for line in lines:
        if line.strip().startswith("export "):
            for pair in shlex.split(line.strip().removeprefix("export ")):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def test_plain_http_on_free_ports_then_ctrl_c_saves_the_state(tmp_path: Path, commands: list[Command]) -> None:
    state = tmp_path / "state"
    command = Command("--salesforce-port", "0", "--hubspot-port", "0", "--notify-port", "0", "--leads", "20",
                      "--seed", "5", "--state-dir", str(state), cwd=tmp_path)
    commands.append(command)
    lines = command.read_until(r"^Faults at run time: ")
    assert lines[0] == "sandbox CRMs running: Salesforce, HubSpot, Notification sink, Enrichment API (Ctrl-C to stop)"
    assert json.loads(lines[1].removeprefix("seed 5: "))["salesforce"]["Lead"] == 20
    env = _exports(lines)
    sf_url, hs_url = env["SALESFORCE_INSTANCE_URL"], env["HUBSPOT_BASE_URL"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sf_url) and not sf_url.endswith(":8701")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", hs_url) and not hs_url.endswith(":8702")
    assert (env["SALESFORCE_CLIENT_ID"], env["SALESFORCE_CLIENT_SECRET"]) == ("sandbox", "sandbox")
    assert env["HUBSPOT_ACCESS_TOKEN"] == "sandbox-token"
    assert "REQUESTS_CA_BUNDLE" not in env
    assert any(line.startswith(f"Call ledgers: {sf_url}/__sandbox/ledger  {hs_url}/__sandbox/ledger") for line in lines)

    session = sandbox_session(sf_url)
    token = session.post(f"{sf_url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": env["SALESFORCE_CLIENT_ID"],
        "client_secret": env["SALESFORCE_CLIENT_SECRET"]}).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 20
    hs = HubSpot(access_token=env["HUBSPOT_ACCESS_TOKEN"], host=hs_url)
    created = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "kept@example.org", "lastname": "Kept"}))

    assert command.interrupt() == 0
    assert command.rest() == [f"sandboxes stopped; state saved in {state}"]
    saved = json.loads((state / "hubspot.json").read_text())
    assert "kept@example.org" in json.dumps(saved)
    assert created.id in json.dumps(saved)
    assert (state / "salesforce.json").exists()


def test_tls_and_json_output_for_scripts(tmp_path: Path, commands: list[Command]) -> None:
    command = Command("--salesforce-port", "0", "--hubspot-port", "0", "--notify-port", "0", "--leads", "10", "--tls",
                      "--json",
                      "--tls-dir", str(tmp_path / "tls"), "--hubspot-access-token", "tok-2", cwd=tmp_path)
    commands.append(command)
    settings = json.loads(command.read_until(r"^\{")[-1])
    ca = settings["ca_bundle"]
    assert ca == str(tmp_path / "tls" / "ca.pem")
    assert settings["env"]["REQUESTS_CA_BUNDLE"] == settings["env"]["SSL_CERT_FILE"] == ca
    hubspot = settings["sandboxes"]["hubspot"]
    assert hubspot["credentials"] == {"access_token": "tok-2", "client_secret": "sandbox-secret"}
    assert hubspot["base_url"].startswith("https://127.0.0.1:")
    client = HubSpot(access_token="tok-2", host=hubspot["base_url"], ssl_ca_cert=ca)
    assert len(client.crm.contacts.basic_api.get_page(limit=4).results) == 4
    salesforce = settings["sandboxes"]["salesforce"]
    token = httpx.post(f"{salesforce['base_url']}/services/oauth2/token", verify=_context(ca), data={
        "grant_type": "client_credentials", **salesforce["credentials"]})
    assert token.json()["instance_url"] == salesforce["base_url"]
    ledger = httpx.get(salesforce["ledger_url"], verify=_context(ca)).json()
    assert ledger["totals"]["by_kind"] != {}
    assert command.interrupt() == 0
    assert (tmp_path / "tls" / "ca.pem").exists()  # a --tls-dir is kept (and its CA reused next time)


def _context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def test_only_one_sandbox_with_a_fault_set_on_the_command_line(tmp_path: Path, commands: list[Command]) -> None:
    command = Command("--only", "hubspot", "--hubspot-port", "0", "--empty", "--server-error", "1", cwd=tmp_path)
    commands.append(command)
    lines = command.read_until(r"^Faults at run time: ")
    assert lines[0] == "sandbox CRMs running: HubSpot (Ctrl-C to stop)"
    assert not any("SALESFORCE" in line for line in lines)
    url = _exports(lines)["HUBSPOT_BASE_URL"]
    answer = httpx.get(f"{url}/crm/v3/owners", headers={"Authorization": "Bearer sandbox-token"})
    assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert httpx.get(f"{url}/__sandbox/faults").json()["server_error"] == 1
    assert command.interrupt() == 0


def test_bad_fault_flags_are_named_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crm_sandbox", "--rate-limit", "0.7", "--server-error", "0.6", "--hold-seconds", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=WAIT,
    )
    assert done.returncode == 2
    assert "--rate-limit=0.7, --server-error=0.6: the request fault probabilities add up to 1.3" in done.stderr
    assert "--hold-seconds: must be a number of seconds above 0" in done.stderr
    assert done.stdout == ""


def test_a_port_in_use_is_named_and_exits_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "crm_sandbox", "--salesforce-port", "0", "--hubspot-port", str(port), "--notify-port",
             "0", "--empty"],
            capture_output=True, text=True, cwd=tmp_path, timeout=WAIT,
        )
    assert done.returncode == 1
    assert f"error: hubspot sandbox failed to start on 127.0.0.1:{port} (is the port already in use?)" in done.stderr


def test_every_fault_the_sandbox_knows_has_a_flag() -> None:
    assert set(REQUEST_FAULTS) | {"partial_failure", "retry_after", "latency_ms", "hold_seconds"} == set(FAULT_HELP)
    args = build_parser().parse_args(["--truncated", "0.25", "--slow-ms", "5", "10", "--fault-path", "/query"])
    settings, problems = fault_settings(args)
    assert problems == []
    assert (settings.truncated, settings.slow_ms, settings.path_pattern, settings.seed) == (0.25, [5, 10], "/query", 42)
