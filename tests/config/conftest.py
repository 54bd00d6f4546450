"""Fixtures: a private copy of the shipped configuration that a test may break."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ConfigCopy:
    """The shipped config/ and mappings/ copied under a temporary directory."""

    config_dir: Path
    mappings_dir: Path

    def edit(self, relative: str, old: str, new: str, count: int = 1) -> None:
        """Replace text in one file, failing loudly when the text is not there."""
        path = self.path(relative)
        text = path.read_text(encoding="utf-8")
        assert text.count(old) >= count, f"{old!r} not found in {relative}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    def path(self, relative: str) -> Path:
        """``config/...`` or ``mappings/...`` inside the copy."""
        top, _, rest = relative.partition("/")
        return (self.config_dir if top == "config" else self.mappings_dir) / rest


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigCopy:
    """A copy of the shipped files; the working directory is its parent, so problems
    name files as ``config/relay.yaml`` just as an admin sees them."""
    shutil.copytree(REPO / "config", tmp_path / "config", ignore=shutil.ignore_patterns("schema"))
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    return ConfigCopy(Path("config"), Path("mappings"))


@pytest.fixture
def problems_of(shipped: ConfigCopy) -> Callable[[], list[str]]:
    """Validate the copy (empty environment) and return the problems as printed."""
    from connector.config.loader import validate_config

    def run() -> list[str]:
        return [str(p) for p in validate_config(shipped.config_dir, shipped.mappings_dir, env={})]

    return run
