"""Running ``relay`` as a user does: in-process with typer's runner, or as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from typer.testing import CliRunner, Result

from connector.cli import app

RELAY = [sys.executable, "-m", "connector.cli"]
"""The ``relay`` command as a subprocess (the console script runs the same ``main``)."""


def relay(*args: str) -> Result:
    """Run ``relay ARGS`` in-process with the current environment."""
    return CliRunner().invoke(app, list(args))


def sync_summary(connection: str, *flags: str) -> dict[str, Any]:
    """Run ``relay sync CONNECTION --json FLAGS`` and return its summary; fail on a non-zero exit."""
    result = relay("sync", connection, "--json", *flags)
    assert result.exit_code == 0, (
        f"relay sync {connection} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
    )
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def relay_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``relay ARGS`` as a process of its own (its output piped)."""
    return subprocess.Popen([*RELAY, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
