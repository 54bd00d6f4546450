"""Process settings read from the environment (``RELAY_*``), with embedded defaults."""

from __future__ import annotations

from dataclasses import dataclass
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
    config_dir: Path | None = Field(
        default=None,
        description="Directory holding relay.yaml and rules/ (default: ./config if it exists, else the packaged defaults).",
    )
    mappings_dir: Path | None = Field(
        default=None,
        description="Directory holding the mapping files (default: ./mappings if it exists, else the packaged defaults).",
    )
    huey_url: SecretStr = Field(
        default=SecretStr(""),
        description="Huey storage URL (redis://... ). Empty means Huey's SQLite storage in huey_sqlite_file.",
    )
    huey_sqlite_file: Path = Field(
        default=Path("relay-huey.db"), description="Huey SQLite storage file, used when huey_url is empty."
    )
    huey_name: str = Field(
        default="relay", min_length=1, max_length=100,
        description="Name of Relay's job queue in its storage: deployments sharing one Redis database keep apart by it.",
    )
    public_url: str | None = Field(
        default=None,
        description="The URL CRMs call Relay at (e.g. https://relay.example.com) when a proxy stands in front of "
        "`relay serve`: webhook signatures cover the URL as the CRM called it. Default: the URL the request names.",
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


PACKAGED_DEFAULTS = Path(__file__).resolve().parents[1] / "defaults"
"""The configuration Relay ships (the RevOps SOP defaults, pointed at the sandbox CRMs)."""


@dataclass(frozen=True)
class ConfigLocation:
    """Where the configuration in use comes from.

    Attributes:
        config_dir: Directory with ``relay.yaml`` and ``rules/``.
        mappings_dir: Directory with the mapping files.
        origin: How it was chosen, for messages: ``RELAY_CONFIG_DIR``, ``./config`` or ``packaged defaults``.
    """

    config_dir: Path
    mappings_dir: Path
    origin: str

    @property
    def packaged(self) -> bool:
        """Whether these are the defaults inside the installed package (not an admin's copy)."""
        return self.config_dir.resolve() == (PACKAGED_DEFAULTS / "config").resolve()


def config_location(settings: Settings | None = None, cwd: Path | None = None) -> ConfigLocation:
    """The configuration to use: ``RELAY_CONFIG_DIR`` (and ``RELAY_MAPPINGS_DIR``) when set, then
    ``./config`` (and ``./mappings``) when they exist, then the packaged defaults.

    Args:
        settings: The process settings (read from the environment when omitted).
        cwd: The directory to look in for ``config/`` and ``mappings/`` (the current one by default).
    """
    settings = settings or get_settings()
    here = cwd or Path.cwd()
    if settings.config_dir is not None:
        config_dir, origin = settings.config_dir, "RELAY_CONFIG_DIR"
    elif (here / "config" / "relay.yaml").is_file():
        config_dir, origin = here / "config", "./config"
    else:
        config_dir, origin = PACKAGED_DEFAULTS / "config", "packaged defaults"
    if settings.mappings_dir is not None:
        mappings_dir = settings.mappings_dir
    elif origin != "packaged defaults" and (config_dir.parent / "mappings").is_dir():
        mappings_dir = config_dir.parent / "mappings"  # an admin's copy keeps its mappings beside its config
    elif (here / "mappings").is_dir() and origin != "packaged defaults":
        mappings_dir = here / "mappings"
    else:
        mappings_dir = PACKAGED_DEFAULTS / "mappings"
    return ConfigLocation(config_dir, mappings_dir, origin)


def get_settings() -> Settings:
    """Read the settings from the current environment.

    Returns:
        A fresh ``Settings``; callers that need one shared instance keep it themselves.
    """
    return Settings()
