"""``relay config validate`` on the shipped configuration and on a copy with a typo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ._cli import relay
from ._world import SHIPPED_CONFIG, SHIPPED_MAPPINGS


@pytest.fixture(autouse=True)
def _shipped_mappings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(SHIPPED_MAPPINGS))


def test_shipped_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(SHIPPED_CONFIG))

    result = relay("config", "validate")

    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("file", "line", "typo", "key"),
    [
        ("relay.yaml", "    page_size: 2000", "    page_sise: 2000", "connections.salesforce.page_sise"),
        ("rules/sla.yaml", "    response_minutes: 5\n", "    response_minuts: 5\n", "tiers[0].response_minuts"),
        ("rules/scoring.yaml", "demographic:", "demografic:", "demografic"),
    ],
)
def test_a_typo_fails_naming_file_and_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, file: str, line: str, typo: str, key: str
) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    path = config / file
    text = path.read_text()
    assert text.count(line) >= 1, f"the shipped {file} no longer has {line!r}"
    path.write_text(text.replace(line, typo, 1))
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config))

    result = relay("config", "validate")

    assert result.exit_code == 1, result.output
    # The console wraps long lines for the terminal; the words are what matter.
    said = "".join(result.stderr.split())
    assert f"{path}:" in said, result.stderr
    assert f"{key}:unknownkey" in said, result.stderr
    assert "didyoumean" in said


def test_a_problem_on_line_100_is_shown_with_its_line_number(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config)
    path = config / "relay.yaml"
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    page_size:"))
    padding = ["# padding so the typo below sits on line 100\n"] * (99 - at)
    lines[at] = lines[at].replace("page_size", "page_sise")
    path.write_text("".join(lines[:at] + padding + lines[at:]))
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config))

    result = relay("config", "validate")

    assert result.exit_code == 1, result.output
    said = "".join(result.stderr.split())
    assert f"{path}:100:connections.salesforce.page_sise:unknownkey" in said, result.stderr
