"""Narrow repositories over Relay's tables, one per aggregate.

Each takes a SQLAlchemy ``Session`` and never commits: the caller owns the
transaction, so everything decided for one page (snapshots, identities,
assignments, round-robin positions, outbox messages, audit entries, cursor) is
written atomically. A page is written with the set-based ``*_many`` methods, a
few statements per 500 records whatever the page size; each single-record method
is the ``*_many`` method of one (for one-off writes), never something to call in
a loop::

    with factory.begin() as session:
        repos = Repositories(session)
        changed = repos.records.upsert_snapshots(connection, "Lead", snapshots, seen_at=now)
        live = repos.records.mark_deleted_many(connection, "Lead", deleted_ids, seen_at=now)
        repos.quarantine.add_many(bad_records)
        repos.outbox.enqueue_many(messages, run_id=run_id, now=now)
        repos.audit.append_many(entries)
        repos.cursors.advance(...)
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from connector.store.repositories.api_calls import ApiCalls
from connector.store.repositories.assignments import Assignment, AssignmentIn, Assignments
from connector.store.repositories.audit import Audit, AuditEntry, AuditEntryIn
from connector.store.repositories.budgets import BudgetRecord, Budgets
from connector.store.repositories.clocks import (
    Clock,
    ClockIn,
    Clocks,
    ClockUpdate,
    OpenClockConflict,
)
from connector.store.repositories.console import (
    ApiUser,
    ApiUsers,
    ConnectionStates,
    Pause,
    RulesVersion,
    RulesVersions,
)
from connector.store.repositories.cursors import Cursor, Cursors, id_order_key
from connector.store.repositories.data_quality import (
    DataQuality,
    DataQualityIn,
    DataQualityRecord,
    FieldFill,
)
from connector.store.repositories.dispositions import Dispositions
from connector.store.repositories.governance import (
    ApprovalRecordRow,
    Approvals,
    FindingIn,
    FindingRecord,
    Findings,
    HandoffIn,
    HandoffRecord,
    Handoffs,
)
from connector.store.repositories.identities import (
    CrmRef,
    Identities,
    adoptable_relay_id,
    new_relay_id,
    relay_id_for_key,
    relay_id_for_record,
)
from connector.store.repositories.inbox import EventRecord, Inbox, InboxEvent
from connector.store.repositories.notifications import Notification, NotificationIn, Notifications
from connector.store.repositories.outbox import (
    MessageStatus,
    Outbox,
    OutboxMessage,
    OutboxMessageIn,
)
from connector.store.repositories.quarantine import Quarantine, QuarantinedRecord, QuarantineIn
from connector.store.repositories.records import Records, RecordSnapshot, SnapshotIn
from connector.store.repositories.round_robin import RoundRobin
from connector.store.repositories.sync_runs import COUNT_KEYS, SyncRun, SyncRuns


class Repositories:
    """Every repository over one session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sync_runs = SyncRuns(session)
        self.cursors = Cursors(session)
        self.records = Records(session)
        self.identities = Identities(session)
        self.assignments = Assignments(session)
        self.round_robin = RoundRobin(session)
        self.outbox = Outbox(session)
        self.audit = Audit(session)
        self.quarantine = Quarantine(session)
        self.inbox = Inbox(session)
        self.api_calls = ApiCalls(session)
        self.budgets = Budgets(session)
        self.clocks = Clocks(session)
        self.notifications = Notifications(session)
        self.data_quality = DataQuality(session)
        self.dispositions = Dispositions(session)
        self.findings = Findings(session)
        self.approvals = Approvals(session)
        self.handoffs = Handoffs(session)
        self.api_users = ApiUsers(session)
        self.rules_versions = RulesVersions(session)
        self.connection_states = ConnectionStates(session)


__all__ = [
    "COUNT_KEYS",
    "ApiCalls",
    "ApiUser",
    "ApiUsers",
    "ApprovalRecordRow",
    "Approvals",
    "Assignment",
    "AssignmentIn",
    "Assignments",
    "Audit",
    "AuditEntry",
    "AuditEntryIn",
    "BudgetRecord",
    "Budgets",
    "Clock",
    "ClockIn",
    "ClockUpdate",
    "Clocks",
    "ConnectionStates",
    "CrmRef",
    "Cursor",
    "Cursors",
    "DataQuality",
    "DataQualityIn",
    "DataQualityRecord",
    "EventRecord",
    "FieldFill",
    "FindingIn",
    "FindingRecord",
    "Findings",
    "HandoffIn",
    "HandoffRecord",
    "Handoffs",
    "Identities",
    "Inbox",
    "InboxEvent",
    "MessageStatus",
    "Notification",
    "NotificationIn",
    "Notifications",
    "OpenClockConflict",
    "Outbox",
    "OutboxMessage",
    "OutboxMessageIn",
    "Pause",
    "Quarantine",
    "QuarantineIn",
    "QuarantinedRecord",
    "RecordSnapshot",
    "Records",
    "Repositories",
    "RoundRobin",
    "RulesVersion",
    "RulesVersions",
    "SnapshotIn",
    "SyncRun",
    "SyncRuns",
    "adoptable_relay_id",
    "id_order_key",
    "new_relay_id",
    "relay_id_for_key",
    "relay_id_for_record",
]
