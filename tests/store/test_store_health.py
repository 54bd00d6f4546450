"""Opening the store: a damaged SQLite file is refused, and every store problem is one line naming the URL.

Issue 7: a corrupted SQLite store went unnoticed (the run rewrote the CRM), and a
missing directory, a read-only location, a file that is not a database or an
unreachable PostgreSQL printed long tracebacks that never named the database.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connector.store import StoreCorrupted, StoreError, StoreUnavailable, migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.health import check_store
from connector.store.migrate import DatabaseNotMigrated, open_store
from connector.store.repositories import Audit
from tests.support.databases import postgres_base_url

PAGE_SIZE = 4096


def _populated(path: Path) -> None:
    """A migrated SQLite store with enough audit rows to span many pages."""
    engine = open_store(f"sqlite:///{path}")
    try:
        with session_factory(engine).begin() as session:
            audit = Audit(session)
            for n in range(2_000):
                audit.append("sf-prod", "assigned", crm_id=f"00Q{n}", detail={"owner": f"rep-{n}@x.example"})
    finally:
        engine.dispose()  # checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    assert path.stat().st_size > 40 * PAGE_SIZE


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    return message


def test_a_sound_store_passes_the_check_and_opens(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    _populated(path)
    engine = open_store(f"sqlite:///{path}")
    try:
        assert check_store(engine) == migrate.head_revision()
    finally:
        engine.dispose()


@pytest.mark.parametrize(("where", "pages"), [(0.5, 3), (0.8, 1)], ids=["three-pages-mid-file", "one-page-late"])
def test_a_store_with_pages_overwritten_mid_file_is_refused_naming_the_file_and_the_recovery(
    tmp_path: Path, where: float, pages: int
) -> None:
    path = tmp_path / "relay.db"
    _populated(path)
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(int(size // PAGE_SIZE * where) * PAGE_SIZE + 100)
        file.write(bytes(range(256)) * (pages * PAGE_SIZE // 256))
    with pytest.raises(StoreCorrupted) as caught:
        open_store(f"sqlite:///{path}")
    message = _one_line(caught.value)
    assert message.startswith(f"sqlite:///{path}: ")
    assert str(path) in message and "backup" in message and "relay sync --full" in message


def test_a_truncated_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    _populated(path)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)
    with pytest.raises(StoreCorrupted) as caught:
        open_store(f"sqlite:///{path}")
    message = _one_line(caught.value)
    assert str(path) in message and "relay sync --full" in message


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StoreCorrupted, match="is not a SQLite database") as caught:
        open_store(f"sqlite:///{path}")
    assert str(path) in _one_line(caught.value)
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_a_missing_directory_is_named_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreUnavailable) as caught:
        open_store("sqlite:///nope/relay.db")
    assert _one_line(caught.value) == (
        f"sqlite:///nope/relay.db: directory {tmp_path / 'nope'} does not exist; "
        "create it or set RELAY_DATABASE_URL to Relay's database"
    )
    assert not (tmp_path / "nope").exists()
    # relay db upgrade goes the same way
    with pytest.raises(StoreUnavailable, match="does not exist"):
        migrate.upgrade("sqlite:///nope/relay.db")


def test_a_read_only_location_is_named(tmp_path: Path) -> None:
    # /proc refuses new files even to root, so this holds whoever runs the tests.
    with pytest.raises(StoreUnavailable) as caught:
        open_store("sqlite:////proc/relay-test.db")
    message = _one_line(caught.value)
    assert message.startswith("sqlite:////proc/relay-test.db: ") and "/proc" in message
    directory = tmp_path / "ro"
    directory.mkdir()
    shutil.copy(Path(__file__), directory / "x")
    if os.geteuid() != 0:  # root may write anywhere: the permission check cannot fail for it
        directory.chmod(0o555)
        try:
            with pytest.raises(StoreUnavailable, match="not writable"):
                open_store(f"sqlite:///{directory / 'relay.db'}")
        finally:
            directory.chmod(0o755)


def test_a_directory_in_place_of_the_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "relay.db").mkdir()
    with pytest.raises(StoreUnavailable, match="is a directory, not a database file"):
        open_store(f"sqlite:///{tmp_path / 'relay.db'}")


def test_a_store_errors_are_store_errors_the_cli_can_print(tmp_path: Path) -> None:
    assert issubclass(StoreCorrupted, StoreUnavailable) and issubclass(StoreUnavailable, StoreError)
    assert issubclass(DatabaseNotMigrated, StoreError)


def test_a_store_at_an_unknown_migration_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    _populated(path)
    engine = create_engine_for(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(DatabaseNotMigrated, match="newer Relay") as caught:
        open_store(f"sqlite:///{path}")
    assert _one_line(caught.value).startswith(f"sqlite:///{path}: ")


# --- PostgreSQL ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_postgresql_connection_refused_is_one_line_without_the_password() -> None:
    postgres_base_url()  # skip locally, fail in CI, like the other PostgreSQL tests
    url = f"postgresql+psycopg://relay:s3cret@127.0.0.1:{_free_port()}/relay"
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url)
    message = _one_line(caught.value)
    assert "s3cret" not in message
    assert message.startswith(f"postgresql+psycopg://relay:***@127.0.0.1:{make_url(url).port}/relay: ")
    assert "connection refused" in message and "RELAY_DATABASE_URL" in message


def test_postgresql_unknown_database_is_named() -> None:
    base = make_url(postgres_base_url())
    name = f"relay_missing_{uuid.uuid4().hex[:8]}"
    url = base.set(database=name).render_as_string(hide_password=False)
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url)
    message = _one_line(caught.value)
    assert f"database '{name}' does not exist" in message and f"createdb {name}" in message


def test_postgresql_refused_user_is_named() -> None:
    base = make_url(postgres_base_url())
    user = f"nobody_{uuid.uuid4().hex[:8]}"
    url = base.set(username=user, password="wrong").render_as_string(hide_password=False)
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url)
    message = _one_line(caught.value)
    assert "wrong" not in message.replace(user, "")
    assert f"refused user '{user}'" in message and "user and password" in message


def test_a_sound_postgresql_store_passes_the_check(postgres_url: str) -> None:
    engine = open_store(postgres_url)
    try:
        assert check_store(engine) == migrate.head_revision()
    finally:
        engine.dispose()
