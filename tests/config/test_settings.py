"""Process settings from RELAY_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from connector.config.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RELAY_DATABASE_URL", "RELAY_CONFIG_DIR", "RELAY_MAPPINGS_DIR", "RELAY_HUEY_URL", "RELAY_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_embedded_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.get_secret_value() == "sqlite:///./relay.db"
    assert settings.config_dir is None and settings.mappings_dir is None  # ./config, else the packaged defaults
    assert settings.uses_embedded_queue
    assert settings.huey_sqlite_file == Path("relay-huey.db")
    assert settings.log_level == "WARNING"


def test_environment_overrides_and_secrets_stay_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DATABASE_URL", "postgresql+psycopg://relay:hunter2@db/relay")
    monkeypatch.setenv("RELAY_HUEY_URL", "redis://:s3cret@cache:6379/0")
    monkeypatch.setenv("RELAY_CONFIG_DIR", "/etc/relay")
    monkeypatch.setenv("RELAY_LOG_LEVEL", "debug")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.get_secret_value() == "postgresql+psycopg://relay:hunter2@db/relay"
    assert not settings.uses_embedded_queue
    assert settings.config_dir == Path("/etc/relay")
    assert settings.log_level == "DEBUG"
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)


def test_unknown_log_level_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="log_level"):
        Settings(_env_file=None)  # type: ignore[call-arg]
