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
