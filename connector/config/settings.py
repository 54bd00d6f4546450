"""Process settings read from the environment (``RELAY_*``), with embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Where Relay keeps its state and finds its configuration.

    Every field is read from an environment variable named ``RELAY_<FIELD>`` (or a
    ``.env`` file). The defaults give the embedded, single-machine setup: SQLite for the
    store and Huey's SQLite storage for jobs. URLs may carry passwords, so they are
    ``SecretStr``: call ``get_secret_value()`` where the URL is really needed.
    """

    model_config = SettingsConfigDict(env_prefix="RELAY_", env_file=".env", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///./relay.db"),
        description="SQLAlchemy URL of Relay's store (SQLite or PostgreSQL).",
    )
    config_dir: Path = Field(default=Path("config"), description="Directory holding relay.yaml and rules/.")
    mappings_dir: Path = Field(default=Path("mappings"), description="Directory holding the mapping files.")
    huey_url: SecretStr = Field(
        default=SecretStr(""),
        description="Huey storage URL (redis://... ). Empty means Huey's SQLite storage in huey_sqlite_file.",
    )
    huey_sqlite_file: Path = Field(
        default=Path("relay-huey.db"), description="Huey SQLite storage file, used when huey_url is empty."
    )
    log_level: LogLevel = Field(
        default="WARNING",
        description="Logging level of the relay command on stderr (each -v is one level more; the worker logs INFO).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def uses_embedded_queue(self) -> bool:
        """True when jobs use Huey's SQLite storage (``RELAY_HUEY_URL`` empty)."""
        return not self.huey_url.get_secret_value().strip()


def get_settings() -> Settings:
    """Read the settings from the current environment.

    Returns:
        A fresh ``Settings``; callers that need one shared instance keep it themselves.
    """
    return Settings()
