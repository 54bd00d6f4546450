"""The state one sync run carries from page to page, and its page transactions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.adapters.base import CrmAdapter
from connector.config.loader import RelayConfig
from connector.core.governance.models import FieldChange, StageChange
from connector.core.identity import AccountIndex
from connector.core.models import Owner, RecordRef
from connector.enrich.waterfall import Enrichment
from connector.pipeline.connections import ResolvedConnection
from connector.pipeline.enrichment import PageEnricher
from connector.pipeline.heartbeat import Heartbeat, SyncTakenOver
from connector.pipeline.quality import QualityTally
from connector.pipeline.summary import DecisionExample, SyncProgress, SyncSummary
from connector.pipeline.writer import OutboxWriter
from connector.store.repositories import (
    AssignmentIn,
    AuditEntryIn,
    NotificationIn,
    OutboxMessageIn,
    QuarantineIn,
    Repositories,
)


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
    full: bool = False
    """A full sync: every record read is decided again, unchanged ones included."""
    conn: ResolvedConnection | None = None
    """The connection, resolved once when the run starts (settings, mapping, objects)."""
    owners: list[Owner] = field(default_factory=list)
    owner_ids_by_email: dict[str, str] = field(default_factory=dict)
    accounts: AccountIndex | None = None
    """The connection's accounts, indexed once the account objects were read (see ``pages._accounts``)."""
    heartbeat: Heartbeat | None = None
    enricher: PageEnricher | None = None
    """The run's enrichment providers (None: enrichment off, or a dry run)."""
    enrichments: dict[RecordRef, Enrichment] = field(default_factory=dict)
    histories: dict[str, list[StageChange | FieldChange]] = field(default_factory=dict)
    """The current deal page's stage history by CRM id, read before its transaction."""
    """What enrichment did for the people of the page being decided."""

    @property
    def resolved(self) -> ResolvedConnection:
        """The resolved connection (set by ``run_sync`` before any step runs)."""
        assert self.conn is not None, "RunContext.conn is set before the run's steps"
        return self.conn

    def check_not_taken_over(self) -> None:
        """Raise :class:`SyncTakenOver` when another sync took this run over (checked at page boundaries)."""
        if self.heartbeat is not None and self.heartbeat.superseded.is_set():
            assert self.summary.run_id is not None
            raise SyncTakenOver(self.connection, self.summary.run_id)

    def new_page(self) -> PagePlan:
        """An empty plan for the next page."""
        return PagePlan(self.connection, self.summary.run_id)

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


EXAMPLES = 8
"""How many decisions a summary keeps as examples."""


@dataclass
class PagePlan:
    """What one page decided: the rows it writes and the counts it adds to the summary.

    Page steps fill a plan and hand it back; the page's transaction writes it
    (:meth:`write`) and, once committed, the run counts it (:meth:`add_to`), so a page
    that rolls back counts nothing.
    """

    connection: str
    run_id: int | None
    audit_entries: list[AuditEntryIn] = field(default_factory=list)
    outbox: list[OutboxMessageIn] = field(default_factory=list)
    assignments: list[AssignmentIn] = field(default_factory=list)
    reassignments: list[AssignmentIn] = field(default_factory=list)
    quarantine: list[QuarantineIn] = field(default_factory=list)
    notifications: list[NotificationIn] = field(default_factory=list)
    changed: int = 0
    deleted: int = 0
    merged: int = 0
    quarantined: int = 0
    propagated: int = 0
    routed: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    governance: Counter[str] = field(default_factory=Counter)
    examples: list[DecisionExample] = field(default_factory=list)
    quality: QualityTally | None = None
    """The data quality of the records this page read and decided (``connector.pipeline.quality``)."""

    def audit(self, action: str, **entry: Any) -> None:
        """Plan an audit entry (written with the page, one statement for all)."""
        self.audit_entries.append(AuditEntryIn(self.connection, action, run_id=self.run_id, **entry))

    def write(self, repos: Repositories, now: datetime) -> None:
        """Write the planned quarantine entries, assignments, outbox messages, alerts and audit entries (set-based)."""
        if self.quarantine:
            repos.quarantine.add_many(self.quarantine)
        if self.reassignments:  # their old owner cannot own records here any more: superseded
            repos.assignments.record_many(self.reassignments, now=now)
        if self.assignments:
            repos.assignments.record_new_many(self.assignments, now=now)
        if self.outbox:
            repos.outbox.enqueue_many(self.outbox, run_id=self.run_id, now=now)
        if self.notifications:
            repos.notifications.enqueue_many(self.notifications, now=now)
        if self.audit_entries:
            repos.audit.append_many(self.audit_entries)

    def add_to(self, summary: SyncSummary) -> None:
        """Add this page's counts to ``summary``."""
        summary.changed += self.changed
        summary.deleted += self.deleted
        summary.merged += self.merged
        summary.quarantined += self.quarantined
        summary.propagated += self.propagated
        summary.routed.update(self.routed)
        summary.findings.update(self.findings)
        summary.governance.update(self.governance)
        summary.examples.extend(self.examples[: max(0, EXAMPLES - len(summary.examples))])
        if self.quality is not None:  # the run's figures: every committed page's, added up
            if summary.quality is None:
                summary.quality = QualityTally(self.quality.rules)
            summary.quality.add(self.quality)
