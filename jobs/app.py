"""The Huey instance Relay's background jobs run on, chosen by ``RELAY_HUEY_URL``.

* empty (the embedded default): Huey's SQLite storage in ``RELAY_HUEY_SQLITE_FILE``;
* ``sqlite:///path/to/huey.db``: SQLite storage at that path;
* ``redis://host:port/db`` (or ``rediss://``): Redis, for many workers on many machines;
* ``memory://``: in-process storage (tests, one-off runs).
"""

from __future__ import annotations

from pathlib import Path

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

from connector.config.settings import get_settings


class JobsConfigError(ValueError):
    """``RELAY_HUEY_URL`` names a storage Relay cannot use."""


def make_huey(url: str | None, *, name: str = "relay", sqlite_file: Path | None = None, immediate: bool = False) -> Huey:
    """Build the Huey instance for ``url`` (see the module docstring for the forms)."""
    url = (url or "").strip()
    if not url:
        path = sqlite_file or Path("relay-huey.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), immediate=immediate)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, immediate=immediate)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), immediate=immediate)
    if url == "memory://":
        return MemoryHuey(name, immediate=immediate)
    raise JobsConfigError(
        f"RELAY_HUEY_URL={url!r}: expected empty (SQLite in RELAY_HUEY_SQLITE_FILE), "
        "sqlite:///PATH, redis://HOST:PORT/DB or memory://"
    )


def _from_settings() -> Huey:
    settings = get_settings()
    return make_huey(settings.huey_url.get_secret_value(), name=settings.huey_name,
                     sqlite_file=settings.huey_sqlite_file)


huey: Huey = _from_settings()
