"""Which configuration Relay uses: RELAY_CONFIG_DIR, then ./config, then the defaults inside the package.

An ordinary install (no checkout) must run with nothing but the package; ``relay init``
writes an editable copy for an admin to keep in git.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.config.loader import validate_config
from connector.config.settings import PACKAGED_DEFAULTS, Settings, config_location

RELAY = [sys.executable, "-m", "connector.cli"]


def _relay(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run([*RELAY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_packaged_defaults_are_used_where_there_is_no_config(tmp_path: Path) -> None:
    where = config_location(Settings(), cwd=tmp_path)
    assert where.origin == "packaged defaults" and where.packaged
    assert where.config_dir == PACKAGED_DEFAULTS / "config" and where.mappings_dir == PACKAGED_DEFAULTS / "mappings"
    assert validate_config(where.config_dir, where.mappings_dir, env={}) == []


def test_a_config_directory_here_wins_over_the_packaged_defaults(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "relay.yaml").write_text("connections: {}\n")
    (tmp_path / "mappings").mkdir()
    where = config_location(Settings(), cwd=tmp_path)
    assert (where.origin, where.config_dir, where.mappings_dir) == (
        "./config", tmp_path / "config", tmp_path / "mappings")


def test_relay_config_dir_wins_and_its_mappings_sit_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "admin" / "config").mkdir(parents=True)
    (tmp_path / "admin" / "mappings").mkdir()
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(tmp_path / "admin" / "config"))
    monkeypatch.delenv("RELAY_MAPPINGS_DIR", raising=False)
    where = config_location(cwd=tmp_path)
    assert (where.origin, where.mappings_dir) == ("RELAY_CONFIG_DIR", tmp_path / "admin" / "mappings")


def test_relay_init_writes_a_copy_that_validates_and_is_not_overwritten(tmp_path: Path) -> None:
    validated = _relay("config", "validate", cwd=tmp_path)
    assert validated.returncode == 0 and "packaged defaults" in " ".join(validated.stdout.split())

    made = _relay("init", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    for name in ("config/relay.yaml", "config/rules/routing.yaml", "config/schema/relay.schema.json",
                 "mappings/salesforce.yaml", "mappings/hubspot.yaml", ".env.example"):
        assert (tmp_path / name).is_file(), name
    (tmp_path / "config" / "relay.yaml").write_text((tmp_path / "config" / "relay.yaml").read_text()
                                                     .replace("every_minutes: 15}", "every_minutes: 30}"))
    again = _relay("config", "validate", cwd=tmp_path)
    assert again.returncode == 0 and "(./config)" in " ".join(again.stdout.split())

    refused = _relay("init", cwd=tmp_path)
    assert refused.returncode == 1 and "already exist" in refused.stderr
    assert "every_minutes: 30}" in (tmp_path / "config" / "relay.yaml").read_text()  # the admin's edit stays
