"""A running sync's heartbeat, kept fresh by a thread of its own.

Pages beat the heartbeat when they commit, but one slow request (a Bulk job, a CRM
holding its answer, retries with Retry-After) can take minutes between two pages.
Without a beat in between, a live run would look dead and ``--take-over`` would take
it over. The thread beats every ``every`` seconds on its own session; when it finds
the run no longer ``running`` (another sync took it over), it raises the flag that
the run checks at each page boundary, so the superseded run stops cleanly.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from connector.store.errors import RunNotFound, RunNotRunning
from connector.store.repositories import Repositories

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 15.0
"""Seconds between two beats of the heartbeat thread."""


def _start_ticks(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (name) "
    return fields[19] if len(fields) > 19 else ""


def this_process() -> str:
    """This process as a sync run's holder: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def holder_is_gone(holder: str | None) -> bool:
    """Whether the process named by ``holder`` surely no longer runs.

    ``holder`` may go on after a ``/`` (``host:pid:start/thread``, a claim's holder).
    Only a process on this host can be checked: its pid is gone, or now belongs to a
    process that started at another time (a reused pid). Anything else (another host,
    no holder recorded, a process that may be alive) is not known to be gone.
    """
    if not holder:
        return False
    holder = holder.partition("/")[0]  # a claim's holder: the process, then which of its workers
    host, _, rest = holder.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return bool(started) and _start_ticks(pid) not in ("", started)


class SyncTakenOver(RuntimeError):
    """Another sync of the connection took this run over (``relay sync --take-over``).

    The run stops at the next page boundary: what it committed stays, its current page
    is rolled back and read again by the run that took over.
    """

    def __init__(self, connection: str, run_id: int) -> None:
        self.connection = connection
        self.run_id = run_id
        super().__init__(
            f"sync run {run_id} of {connection!r} was taken over by another sync (relay sync --take-over); "
            "it stopped at a page boundary and nothing it committed is lost"
        )


class Heartbeat:
    """Beats a running sync's heartbeat from a daemon thread until stopped.

    Args:
        sessions: Session factory of Relay's store (the thread opens its own sessions).
        run_id: The running sync.
        now: Clock.
        every: Seconds between beats.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        run_id: int,
        now: Callable[[], datetime],
        *,
        every: float = HEARTBEAT_EVERY,
    ) -> None:
        if every <= 0:
            raise ValueError(f"heartbeat interval must be > 0 seconds, got {every}")
        self.sessions = sessions
        self.run_id = run_id
        self.now = now
        self.every = every
        self.superseded = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"relay-heartbeat-{run_id}", daemon=True)

    def start(self) -> Heartbeat:
        """Start beating; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for the thread (at most one beat's time)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every + 5)

    def beat(self) -> bool:
        """One beat; False (and the ``superseded`` flag set) when the run is no longer running."""
        try:
            with self.sessions.begin() as session:
                Repositories(session).sync_runs.heartbeat(self.run_id, now=self.now())
        except (RunNotRunning, RunNotFound):
            self.superseded.set()
            return False
        except Exception as exc:  # a passing store problem: the next beat or page commit tells more
            log.warning("heartbeat of sync run %s failed: %s", self.run_id, exc)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not self.beat():
                log.warning("sync run %s was taken over by another sync; it stops at the next page", self.run_id)
                return
