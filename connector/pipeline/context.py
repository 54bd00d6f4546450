"""The state one sync run carries from page to page, and its page transactions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.base import CrmAdapter
from connector.config.loader import RelayConfig
from connector.core.models import Account, Owner
from connector.pipeline.heartbeat import Heartbeat, SyncTakenOver
from connector.pipeline.summary import SyncProgress, SyncSummary
from connector.pipeline.writer import OutboxWriter
from connector.store.repositories import AssignmentIn, AuditEntryIn, OutboxMessageIn, Repositories


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunContext:
    config: RelayConfig
    connection: str
    adapter: CrmAdapter
    sessions: sessionmaker[Session]
    summary: SyncSummary
    progress: SyncProgress
    now: Callable[[], datetime]
    dry_run: bool
    writer: OutboxWriter | None
    dry_session: Session | None = None
    owners: list[Owner] = field(default_factory=list)
    owner_ids_by_email: dict[str, str] = field(default_factory=dict)
    accounts: list[Account] | None = None
    page_audit: list[AuditEntryIn] = field(default_factory=list)
    page_outbox: list[OutboxMessageIn] = field(default_factory=list)
    page_assignments: list[AssignmentIn] = field(default_factory=list)
    heartbeat: Heartbeat | None = None

    def check_not_taken_over(self) -> None:
        """Raise :class:`SyncTakenOver` when another sync took this run over (checked at page boundaries)."""
        if self.heartbeat is not None and self.heartbeat.superseded.is_set():
            assert self.summary.run_id is not None
            raise SyncTakenOver(self.connection, self.summary.run_id)

    def audit(self, action: str, **entry: Any) -> None:
        """Buffer an audit entry; it is written with the page (one statement for all)."""
        self.page_audit.append(AuditEntryIn(self.connection, action, run_id=self.summary.run_id, **entry))

    def flush_page(self, repos: Repositories) -> None:
        """Write the page's buffered assignments, outbox messages and audit entries, in its transaction."""
        if self.page_assignments:
            repos.assignments.record_new_many(self.page_assignments, now=self.now())
        if self.page_outbox:
            repos.outbox.enqueue_many(self.page_outbox, run_id=self.summary.run_id, now=self.now())
        if self.page_audit:
            repos.audit.append_many(self.page_audit)
        self.page_audit = []
        self.page_outbox = []
        self.page_assignments = []

    def transaction(self) -> Any:
        """A transaction for one page (one long uncommitted one in a dry run)."""
        if self.dry_session is not None:
            return _NoCommit(self.dry_session)
        return self.sessions.begin()


class _NoCommit:
    """Context manager yielding the dry run's session without committing."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, *exc: object) -> None:
        self.session.flush()
