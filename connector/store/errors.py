"""Errors raised by the store. Each names what is wrong and where."""

from __future__ import annotations

from datetime import datetime


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class SyncAlreadyRunning(StoreError):
    """A connection already has a running sync (the database refused a second one).

    Attributes:
        connection: The connection.
        running_run_id: The running sync's id (``None`` if it finished before it could be read).
        started_at: When it started.
        heartbeat_at: Its last heartbeat: how recently it showed it is alive.
    """

    def __init__(
        self,
        connection: str,
        running_run_id: int | None,
        started_at: datetime | None,
        heartbeat_at: datetime | None = None,
    ) -> None:
        self.connection = connection
        self.running_run_id = running_run_id
        self.started_at = started_at
        self.heartbeat_at = heartbeat_at
        since = f" since {started_at.isoformat()}" if started_at else ""
        beat = f", last heartbeat {heartbeat_at.isoformat()}" if heartbeat_at else ""
        super().__init__(
            f"connection {connection!r} already has a running sync (run {running_run_id}{since}{beat}); "
            "wait for it, or take it over if its process died"
        )


class ConnectionPaused(StoreError):
    """An admin paused the connection (``relay serve``'s console, ``POST /api/v1/connections/{name}/pause``).

    Attributes:
        connection: The connection.
        paused_at: Since when.
        paused_by: Who paused it.
        reason: Why, as they said.
    """

    def __init__(self, connection: str, paused_at: datetime, paused_by: str | None, reason: str | None) -> None:
        self.connection = connection
        self.paused_at = paused_at
        self.paused_by = paused_by
        self.reason = reason
        why = f": {reason}" if reason else ""
        super().__init__(f"connection {connection!r} is paused since {paused_at.isoformat()} by "
                         f"{paused_by or 'an admin'}{why}; resume it before syncing (its webhook events wait in the inbox)")


class RunNotFound(StoreError):
    """No sync run has the given id."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"sync run {run_id} does not exist")


class RunNotRunning(StoreError):
    """A sync run was asked to change although it is no longer running."""

    def __init__(self, run_id: int, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"sync run {run_id} is {status!r}, not 'running'")


class RunSuperseded(RunNotRunning):
    """A running sync was taken over by another one (marked ``crashed``): it must stop writing.

    Attributes:
        run_id: The superseded run.
        error: Why it was marked crashed, as stored on the run.
    """

    def __init__(self, run_id: int, error: str | None) -> None:
        super().__init__(run_id, "crashed")
        self.error = error
        why = f" ({error})" if error else ""
        self.args = (
            f"sync run {run_id} is 'crashed', not 'running': another sync took it over{why}; "
            "it must stop without writing more",
        )


class CursorMovedBackwards(StoreError):
    """A sync cursor was asked to move back in time without an explicit reset."""

    def __init__(
        self,
        connection: str,
        object_name: str,
        current: tuple[datetime, str | None],
        proposed: tuple[datetime, str | None],
    ) -> None:
        self.connection = connection
        self.object_name = object_name
        self.current = current
        self.proposed = proposed
        super().__init__(
            f"cursor {connection}/{object_name} refused to move backwards from "
            f"({current[0].isoformat()}, {current[1]!r}) to ({proposed[0].isoformat()}, {proposed[1]!r}); "
            "reset it explicitly for a full resync"
        )


class IdempotencyKeyConflict(StoreError):
    """An idempotency key was reused for a different CRM write."""

    def __init__(self, key: str, existing: str, proposed: str) -> None:
        self.key = key
        super().__init__(
            f"outbox idempotency key {key!r} already belongs to {existing}, not {proposed}"
        )


class OutboxMessageNotFound(StoreError):
    """No outbox message has the given id."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        super().__init__(f"outbox message {message_id} does not exist")


class InboxEventNotFound(StoreError):
    """No inbox event has the given id."""

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        super().__init__(f"webhook inbox event {event_id} does not exist")


class ActiveAssignmentConflict(StoreError):
    """Another transaction recorded an active assignment for the same record first."""

    def __init__(self, connection: str, object_name: str, crm_id: str) -> None:
        self.connection = connection
        self.object_name = object_name
        self.crm_id = crm_id
        super().__init__(
            f"record {connection}/{object_name}/{crm_id} already has an active assignment "
            "written by a concurrent transaction; retry the page"
        )


class InvalidStoreValue(StoreError, ValueError):
    """A value handed to a repository is not acceptable; the message names the field."""


class UnsupportedDatabase(StoreError):
    """The database URL names a backend the store does not support."""


class StoreUnavailable(StoreError):
    """Relay's database cannot be opened or reached.

    The message is one line: the database URL (password masked), the problem and the fix,
    e.g. ``sqlite:///nope/relay.db: directory /srv/nope does not exist; create it or set
    RELAY_DATABASE_URL``.

    Attributes:
        url: The database URL, password masked.
        problem: What is wrong.
        fix: What to do about it.
    """

    def __init__(self, url: str, problem: str, fix: str) -> None:
        self.url = url
        self.problem = problem
        self.fix = fix
        super().__init__(f"{url}: {problem}; {fix}")


class StoreCorrupted(StoreUnavailable):
    """Relay's database file is damaged (fails SQLite's integrity check) or is not a database.

    Relay refuses to work on it: a damaged store could make a sync rewrite the CRM.
    """
