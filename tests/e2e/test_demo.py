"""``relay demo`` from an empty directory: both CRMs synced, and what the README promises it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._cli import relay


def test_the_demo_shows_a_gate_flag_an_approval_and_a_closed_won_handoff(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("RELAY_CONFIG_DIR", "RELAY_MAPPINGS_DIR", "RELAY_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    from connector import cli
    monkeypatch.setattr(cli.console, "width", 200)

    result = relay("demo", "--leads", "150")

    assert result.exit_code == 0, result.output
    text = result.output
    for heading in ("Stage gate flagged", "Stage gate enforced", "Approval requested",
                    "Closed Won handed to Customer Success"):
        found = re.search(rf"{heading} \((\d+) in all\): (salesforce|hubspot) \S+ \S+", text)
        assert found is not None and int(found.group(1)) > 0, (heading, text[-3000:])
    assert "task for " in text and "kickoff due " in text and "approval task for " in text
    assert "Done." in text


def test_demo_serve_gives_every_role_a_token_that_works_on_the_seeded_store(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    env = {k: v for k, v in os.environ.items() if k not in ("RELAY_CONFIG_DIR", "RELAY_MAPPINGS_DIR",
                                                             "RELAY_DATABASE_URL")}
    env["COLUMNS"] = "250"
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "connector.cli", "demo", "--leads", "40",
                                "--serve", "--port", "0"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    # Started with SIGINT ignored, as inside the whole suite a worker had it (a test before left it so): the
    # stacks showed the demo asleep in its loop, Ctrl-C never seen. The demo now installs its own handler.
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        text = "".join(lines)
        import threading  # keep reading what it prints, so a full pipe can never hold it up

        threading.Thread(target=lambda: [lines.append(line) for line in process.stdout or []], daemon=True).start()
        url = re.search(r"Relay serve on (http://127\.0\.0\.1:\d+)", text)
        assert url is not None, text[-3000:]
        tokens = dict(re.findall(r"│ (admin|manager|rep|marketing|read_only)\s+│.*?(relay_[A-Za-z0-9_-]{40,})", text))
        assert set(tokens) == {"admin", "manager", "rep", "marketing", "read_only"}, text[-3000:]
        for role, token in tokens.items():
            me = httpx.get(url.group(1) + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["role"] == role
        mine = httpx.get(url.group(1) + "/api/v1/assignments", headers={"Authorization": f"Bearer {tokens['rep']}"})
        assert mine.status_code == 200 and mine.json(), "the rep owns people in the seeded run"
        runs = httpx.get(url.group(1) + "/api/v1/runs", headers={"Authorization": f"Bearer {tokens['read_only']}"})
        assert runs.status_code == 200 and len(runs.json()) >= 6  # three passes of two connections
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # faulthandler prints every thread's stack on SIGABRT
            process.send_signal(signal.SIGABRT)
            time.sleep(3)
            process.kill()
            pytest.fail("relay demo --serve did not stop within 60 s of Ctrl-C; its last output:\n"
                        + "".join(lines[-200:]))
