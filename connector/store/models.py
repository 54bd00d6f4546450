"""Relay's tables, as SQLAlchemy 2.0 typed declarative models.

Portable between SQLite and PostgreSQL. Invariants live in the database:

* one running full or incremental sync per connection: partial unique index on
  ``sync_runs(connection)`` where ``status = 'running' AND mode <> 'events'`` (events runs
  run side by side);
* one active assignment per CRM record: partial unique index on
  ``assignments(connection, object, crm_id)`` where ``status = 'active'``;
* one outbox row per idempotency key, one inbox row per (provider, event key);
* the audit log is append-only and sync cursors only move forward (triggers, created
  by the migration; see ``migrations/versions/0001_initial.py``).

The migration is the source of the schema in a deployed database; these models must
match it (a test compares them with Alembic's ``compare_metadata``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connector.store._types import QueriedJson, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Surrogate keys: BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY autoincrements).
Id = BigInteger().with_variant(Integer(), "sqlite")

CONNECTION_LEN = 100
OBJECT_LEN = 100
CRM_ID_LEN = 64
HOLDER_LEN = 200
RELAY_ID_LEN = 36


class SyncMode(StrEnum):
    """How a sync run reads: everything, what changed since the cursor, or the records CRMs pushed."""

    FULL = "full"
    INCREMENTAL = "incremental"
    EVENTS = "events"


class SyncStatus(StrEnum):
    """Life cycle of a sync run; ``crashed`` marks a run whose process died."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CRASHED = "crashed"


class IdentityKind(StrEnum):
    """What an identity stands for."""

    PERSON = "person"
    ACCOUNT = "account"


class AssignmentStatus(StrEnum):
    """An assignment is active until a later one supersedes it."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"


class OutboxOperation(StrEnum):
    """The CRM write an outbox message asks for."""

    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"


class OutboxStatus(StrEnum):
    """Delivery state of an outbox message; ``failed`` is retried, ``dead`` is not."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


class AuditAction(StrEnum):
    """The audit actions Relay writes today (the column accepts any non-empty action)."""

    ASSIGNED = "assigned"
    SCORED = "scored"
    FIELD_UPDATE = "field_update"
    TASK_CREATED = "task_created"
    QUARANTINED = "quarantined"
    MERGED = "merged"
    DELETED = "deleted"


def _in(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention used by the migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


ONE_RUNNING_WHERE = "status = 'running' AND mode <> 'events'"
"""The runs of which a connection has at most one at a time: those that read changes (full,
incremental). ``events`` runs read only the records pushed to Relay and run side by side."""


class SyncRunRow(Base):
    """One sync of a connection (optionally limited to one CRM object)."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        CheckConstraint(_in("mode", SyncMode), name="mode"),
        CheckConstraint(_in("status", SyncStatus), name="status"),
        Index(
            "uq_sync_runs_one_running",
            "connection",
            unique=True,
            sqlite_where=text(ONE_RUNNING_WHERE),
            postgresql_where=text(ONE_RUNNING_WHERE),
        ),
        Index("ix_sync_runs_connection_started_at", "connection", "started_at"),
        Index("ix_sync_runs_connection_id", "connection", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str | None] = mapped_column(String(OBJECT_LEN))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str | None] = mapped_column(String(HOLDER_LEN))
    """The process running it, ``host:pid:start`` (see ``connector.pipeline.heartbeat``)."""


class SyncCursorRow(Base):
    """Where the incremental read of one object of one connection stands."""

    __tablename__ = "sync_cursors"

    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN), primary_key=True)
    object: Mapped[str] = mapped_column(String(OBJECT_LEN), primary_key=True)
    last_modified: Mapped[datetime]
    last_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    updated_at: Mapped[datetime]
    deletions_checked_at: Mapped[datetime | None]
    """When deletions were last listed (Relay's clock), for CRMs that list them apart from the changes."""
    deletions_since: Mapped[datetime | None]
    """Where the next listing of deletions starts (the CRM's clock: the read position when it was last listed)."""


class IdentityRow(Base):
    """A person or account as Relay knows it, across CRMs."""

    __tablename__ = "identities"
    __table_args__ = (
        CheckConstraint(_in("kind", IdentityKind), name="kind"),
        UniqueConstraint("kind", "key"),
    )

    relay_id: Mapped[str] = mapped_column(String(RELAY_ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]


class IdentityLinkRow(Base):
    """A CRM record that belongs to an identity."""

    __tablename__ = "identity_links"

    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN), primary_key=True)
    object: Mapped[str] = mapped_column(String(OBJECT_LEN), primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN), primary_key=True)
    relay_id: Mapped[str] = mapped_column(ForeignKey("identities.relay_id"), index=True)
    linked_at: Mapped[datetime]


class RecordRow(Base):
    """The last canonical form Relay saw of a CRM record."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_relay_id", "relay_id"),
        Index("ix_records_connection_kind_relay_id", "connection", "kind", "relay_id"),
        Index("ix_records_kind", "kind"),  # the dashboard: the deal snapshots (pipeline per owner)
    )

    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN), primary_key=True)
    object: Mapped[str] = mapped_column(String(OBJECT_LEN), primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    canonical: Mapped[dict[str, Any]] = mapped_column(QueriedJson)
    content_hash: Mapped[str] = mapped_column(String(64))
    relay_id: Mapped[str | None] = mapped_column(ForeignKey("identities.relay_id"))
    deleted: Mapped[bool] = mapped_column(Boolean)
    merged_into: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class AssignmentRow(Base):
    """One owner assignment in the ledger; at most one is active per CRM record."""

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint(_in("status", AssignmentStatus), name="status"),
        Index(
            "uq_assignments_one_active",
            "connection",
            "object",
            "crm_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_assignments_record", "connection", "object", "crm_id"),
        Index("ix_assignments_owner_email", "owner_email"),
        Index(
            "ix_assignments_active_relay_id",
            "relay_id",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        # the dashboard: leads of a period per rep and tier (covering), a deal owner's email by CRM user id
        Index("ix_assignments_assigned_at", "assigned_at", "owner_email", "tier"),
        Index("ix_assignments_active_owner_assigned", "owner_email", "assigned_at", "id",
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
        Index("ix_assignments_active_assigned", "assigned_at", "id",
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
        Index("ix_assignments_owner_crm_id", "connection", "owner_crm_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    relay_id: Mapped[str | None] = mapped_column(ForeignKey("identities.relay_id"))
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    owner_email: Mapped[str] = mapped_column(String(320))
    owner_crm_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    tier: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    score: Mapped[int | None] = mapped_column(Integer)
    rules_version: Mapped[str | None] = mapped_column(String(128))
    assigned_at: Mapped[datetime]
    sla_due: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))


class RoundRobinRow(Base):
    """Where a round-robin group's rotation stands."""

    __tablename__ = "round_robin_positions"

    group_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class ClockStatus(StrEnum):
    """An SLA clock runs (``open``) until its lead is worked, re-queued, nurtured or changes owner."""

    OPEN = "open"
    CLOSED = "closed"


class SlaClockRow(Base):
    """One owner's SLA clock on one person record: its steps, first touch and stage.

    At most one is open per CRM record (partial unique index); the periodic job claims the
    open ones whose ``next_due_at`` has come (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        CheckConstraint(_in("status", ClockStatus), name="status"),
        CheckConstraint("stage IN ('new', 'contacted', 'other')", name="stage"),
        Index(
            "uq_sla_clocks_one_open",
            "connection",
            "object",
            "crm_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_sla_clocks_record", "connection", "object", "crm_id", "id"),
        Index(
            "ix_sla_clocks_due",
            "next_due_at",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_sla_clocks_relay_id", "relay_id"),
        # the dashboard (connector/pipeline/dashboard.py): clocks of a period, an owner's, the open ones about to
        # breach (by tier and start) and by owner and age (covering)
        Index("ix_sla_clocks_started_at", "started_at"),
        Index("ix_sla_clocks_owner_started_at", "owner_email", "started_at"),
        Index(
            "ix_sla_clocks_open_tier_started_at",
            "tier",
            "started_at",
            "first_touch_at",
            "owner_email",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index(
            "ix_sla_clocks_open_owner_stage",
            "owner_email",
            "stage",
            "stage_since",
            "started_at",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_sla_clocks_owner_crm_id", "connection", "owner_crm_id"),
        Index(  # the admin API: an owner's open clocks, soonest due first
            "ix_sla_clocks_open_owner_due",
            "owner_email",
            "next_due_at",
            "id",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    relay_id: Mapped[str | None] = mapped_column(String(RELAY_ID_LEN))
    owner_email: Mapped[str] = mapped_column(String(320))
    owner_crm_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    tier: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    stage: Mapped[str] = mapped_column(String(16))
    stage_since: Mapped[datetime]
    first_touch_at: Mapped[datetime | None]
    fired: Mapped[dict[str, Any]]
    """Step -> when it fired (ISO-8601)."""
    next_due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class OutboxRow(Base):
    """A CRM write waiting to be sent, or its outcome."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("operation", OutboxOperation), name="operation"),
        CheckConstraint(_in("status", OutboxStatus), name="status"),
        Index("ix_outbox_connection_status", "connection", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    operation: Mapped[str] = mapped_column(String(16))
    crm_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    payload: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    crm_result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    claimed_by: Mapped[str | None] = mapped_column(String(HOLDER_LEN))
    """The writer sending it (``host:pid:start/...``) until ``claimed_until``."""
    claimed_until: Mapped[datetime | None]


class NotificationStatus(StrEnum):
    """Delivery state of an alert: ``failed`` is retried after its backoff, ``dead`` and ``skipped`` are final."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"


class NotificationChannel(StrEnum):
    """The channels a notification travels through."""

    EMAIL = "email"
    SMS = "sms"
    SLACK = "slack"


class NotificationRow(Base):
    """One alert to one recipient through one channel, queued with the decision that caused it.

    One row per idempotency key (the decision, the event kind and the channel), so a decision
    replayed queues nothing new; the sender claims due rows (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL) under a lease (``claimed_until``).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_in("status", NotificationStatus), name="status"),
        CheckConstraint(_in("channel", NotificationChannel), name="channel"),
        CheckConstraint("kind <> ''", name="kind_not_empty"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_record", "connection", "object", "crm_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    relay_id: Mapped[str | None] = mapped_column(String(RELAY_ID_LEN))
    tier: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class AuditRow(Base):
    """One line of the append-only audit log."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("action <> ''", name="action_not_empty"),
        Index("ix_audit_log_record", "connection", "object", "crm_id"),
        Index("ix_audit_log_run_id", "run_id"),
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),  # the dashboard: SLA steps, re-queues, recycles
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str | None] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    relay_id: Mapped[str | None] = mapped_column(String(RELAY_ID_LEN))
    action: Mapped[str] = mapped_column(String(64))
    rules_version: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(QueriedJson)
    erased_at: Mapped[datetime | None]
    """When a data subject's personal data was erased from ``detail`` (``relay forget-person``); the
    only UPDATE the table takes moves it forward (migration 0017_privacy)."""
    erasure: Mapped[str | None] = mapped_column(String(100))
    """The erasure that rewrote ``detail`` last: ``forget-person sha256:<first 16 hex of the subject's key>``."""


class QuarantineRow(Base):
    """A CRM record Relay could not process, kept with the reason."""

    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_connection_at", "connection", "at"),
        Index("ix_quarantine_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))


class ApiCallRow(Base):
    """How many CRM API calls of one kind a connection made (within a run, if any).

    Counts are added as rows and summed on read, so concurrent writers never lose one.
    """

    __tablename__ = "api_calls"
    __table_args__ = (
        CheckConstraint("count >= 0", name="count_not_negative"),
        Index("ix_api_calls_connection_run_id", "connection", "run_id"),
        Index("ix_api_calls_run_id", "run_id"),
        Index("ix_api_calls_at", "at"),  # the dashboard: calls of a period per day
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    kind: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]


class ApiBudgetRow(Base):
    """One connection's API budget in one window (``window``: the CRM's short rolling window; ``day``).

    Shared by every process that calls the connection's CRM; read and written under a row lock
    (``connector/store/repositories/budgets.py``).
    """

    __tablename__ = "api_budgets"
    __table_args__ = (
        CheckConstraint("kind IN ('window', 'day')", name="kind"),
        CheckConstraint("spent >= 0", name="spent_not_negative"),
    )

    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    limit_seen: Mapped[int | None] = mapped_column(Integer)
    """The limit the CRM's headers last said (None: not yet)."""
    spent: Mapped[int] = mapped_column(Integer)
    """``day``: calls counted in ``period``; ``window``: the grants' sum when last written."""
    period: Mapped[str | None] = mapped_column(String(10))
    """``day``: the UTC day counted (``YYYY-MM-DD``)."""
    grants: Mapped[Any] = mapped_column(JSON)
    """``window``: ``[grant id, epoch seconds, calls]`` of the grants still counted."""
    seen: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """What the last answer's headers said."""
    updated_at: Mapped[datetime]


class InboxRow(Base):
    """A webhook event stored before it is acknowledged (at-least-once intake)."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("provider", "event_key"),
        Index(
            "ix_webhook_inbox_unprocessed",
            "provider",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index(
            "ix_webhook_inbox_record",
            "connection",
            "object",
            "crm_id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(50))
    event_key: Mapped[str] = mapped_column(String(500))
    payload: Mapped[Any] = mapped_column(JSON)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    connection: Mapped[str | None] = mapped_column(String(CONNECTION_LEN))
    """The connection, object and record the event is about (None: it names no record)."""
    object: Mapped[str | None] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    claimed_by: Mapped[str | None] = mapped_column(String(HOLDER_LEN))
    """The worker processing it (``host:pid:start/thread``) until ``claimed_until``."""
    claimed_until: Mapped[datetime | None]


ENRICHMENT_PROVIDER_LEN = 50
ENRICHMENT_KEY_LEN = 320


class EnrichmentCacheRow(Base):
    """What one enrichment provider answered about one company domain or person email.

    One row per (provider, kind, key), replaced when asked again; ``version`` is the hash of the
    provider's URL and mapping when it answered (``connector/enrich/settings.py``), so an answer
    mapped another way is not reused. Whether it is still fresh is the reader's decision (the
    provider's TTL, from ``fetched_at``). Failures are never stored.
    """

    __tablename__ = "enrichment_cache"
    __table_args__ = (
        CheckConstraint("kind IN ('company', 'person')", name="kind"),
        CheckConstraint("outcome IN ('found', 'not_found')", name="outcome"),
        Index("ix_enrichment_cache_fetched_at", "fetched_at"),
    )

    provider: Mapped[str] = mapped_column(String(ENRICHMENT_PROVIDER_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    lookup_key: Mapped[str] = mapped_column(String(ENRICHMENT_KEY_LEN), primary_key=True)
    """The domain (company) or email (person) asked about, lower case."""
    version: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Canonical person field -> value (empty for ``not_found``)."""
    fetched_at: Mapped[datetime]


SOURCE_LEN = 255
"""A lead source as the CRM holds it (Salesforce's ``LeadSource`` picklist values are up to 255 characters)."""


class DataQualityRow(Base):
    """The data-quality figures of one sync run for one lead source (``connector/pipeline/quality.py``).

    Counts, not only rates, so reports can add runs and sources up; the targets in force when
    the run measured are kept with them. Written in the run's final transaction.
    """

    __tablename__ = "data_quality"
    __table_args__ = (
        CheckConstraint("records > 0", name="records_positive"),
        Index("ix_data_quality_connection_measured_at", "connection", "measured_at"),
        Index("ix_data_quality_measured_at", "measured_at"),  # the dashboard: every connection's runs of a period
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(SOURCE_LEN), primary_key=True)
    """The records' lead source (``(none)``: no source given)."""
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    records: Mapped[int] = mapped_column(Integer)
    """Person records decided in the run with this source."""
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Required field -> ``{"filled": n, "measured": n}`` (measured: records whose mapping reads it)."""
    completeness_percent: Mapped[float | None] = mapped_column(Float)
    """Required values filled in, per cent of those measured (None: the mapping reads none of them)."""
    duplicates: Mapped[int] = mapped_column(Integer)
    duplicate_percent: Mapped[float] = mapped_column(Float)
    emails: Mapped[int] = mapped_column(Integer)
    invalid_emails: Mapped[int] = mapped_column(Integer)
    phones: Mapped[int] = mapped_column(Integer)
    invalid_phones: Mapped[int] = mapped_column(Integer)
    enriched: Mapped[int | None] = mapped_column(Integer)
    """Records enrichment gave a value (None: enrichment was not measured in this run)."""
    completeness_target: Mapped[float] = mapped_column(Float)
    duplicates_target: Mapped[float] = mapped_column(Float)
    measured_at: Mapped[datetime]


class MergeStatus(StrEnum):
    """Where a merge of duplicates stands: ``pending`` is retried by the next run, ``done`` and ``failed`` are final."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class MergeRow(Base):
    """One merge (or flag) of one CRM object's duplicates, recorded before the CRM is asked.

    ``set_key`` names the set (its sorted CRM ids): a set is acted on once, and a run that
    crashed between the CRM's answer and the store's commit finds its row ``pending`` and asks
    again (a merge already made counts as done).
    """

    __tablename__ = "merges"
    __table_args__ = (
        CheckConstraint(_in("status", MergeStatus), name="status"),
        CheckConstraint("mode IN ('merge', 'flag')", name="mode"),
        UniqueConstraint("connection", "object", "set_key", name="uq_merges_set"),
        Index("ix_merges_status", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    set_key: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(8))
    survivor_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    loser_ids: Mapped[list[str]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class ReviewStatus(StrEnum):
    """A review item: ``open`` until a data steward says ``same`` or ``different``."""

    OPEN = "open"
    SAME = "same"
    DIFFERENT = "different"


class MatchReviewRow(Base):
    """A borderline pair of person records for a data steward; decided once, never asked again.

    ``left_key``/``right_key`` are ``connection/object/crm_id``, the smaller first.
    """

    __tablename__ = "match_reviews"
    __table_args__ = (
        CheckConstraint(_in("status", ReviewStatus), name="status"),
        UniqueConstraint("left_key", "right_key", name="uq_match_reviews_pair"),
        Index("ix_match_reviews_status", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    left_key: Mapped[str] = mapped_column(String(300))
    right_key: Mapped[str] = mapped_column(String(300))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    task_connection: Mapped[str | None] = mapped_column(String(CONNECTION_LEN))
    task_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    """The steward's task in that connection's CRM (its decision is read back from it)."""



class FindingStatus(StrEnum):
    """A governance finding: ``open`` while the deal still shows it, ``resolved`` once it does not."""

    OPEN = "open"
    RESOLVED = "resolved"


class GovernanceFindingRow(Base):
    """One governance finding about a deal (a gate not met, a hygiene problem, a handoff blocked).

    ``key`` is the core's stable finding key: the finding's task is created once, when the row is
    made (or reopened: ``occurrence`` counts the times, so a reopened finding gets a new task).
    """

    __tablename__ = "governance_findings"
    __table_args__ = (
        CheckConstraint(_in("status", FindingStatus), name="status"),
        UniqueConstraint("connection", "key", name="uq_governance_findings_key"),
        Index("ix_governance_findings_record", "connection", "object", "crm_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    key: Mapped[str] = mapped_column(String(400))
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    occurrence: Mapped[int] = mapped_column(Integer)
    task_key: Mapped[str | None] = mapped_column(String(200))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class ApprovalStatus(StrEnum):
    """An approval: ``requested`` (a task for the approver) until it is ``approved``."""

    REQUESTED = "requested"
    APPROVED = "approved"


class ApprovalRow(Base):
    """An approval a deal needs for one measured value (a discount of 25 %): requested, then recorded."""

    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(_in("status", ApprovalStatus), name="status"),
        UniqueConstraint("connection", "object", "crm_id", "matrix", "value", name="uq_approvals_value"),
        Index("ix_approvals_record", "connection", "object", "crm_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    matrix: Mapped[str] = mapped_column(String(60))
    value: Mapped[float] = mapped_column(Float)
    approver_title: Mapped[str | None] = mapped_column(String(60))
    approver_email: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    task_key: Mapped[str | None] = mapped_column(String(200))
    requested_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]


class HandoffRow(Base):
    """One handoff of a record to the next team (Closed Won -> Customer Success, Closed Lost), once.

    ``occurred_at``: when the transition happened in the CRM (the move to Closed Won);
    ``recorded_at``: when Relay handed it over (the form complete); ``due_at``: the kickoff's due
    time; ``done_at``: when the kickoff happened (the kickoff date CS records), for the metrics.
    """

    __tablename__ = "handoffs"
    __table_args__ = (
        UniqueConstraint("connection", "object", "crm_id", "kind", name="uq_handoffs_record"),
        Index("ix_handoffs_kind", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    owner_email: Mapped[str | None] = mapped_column(String(200))
    receiver_email: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]]


class DispositionStatus(StrEnum):
    """Where Relay stands with one disposition a rep set on one person record.

    ``done``: acted on (status written, held, suppressed); ``waiting``: recycled at its
    ``recycle_at``; ``recycled``: routed again; ``pending``: a conversion to ask the CRM for
    (retried until the CRM answers); ``converted``; ``failed``: the CRM refused the conversion, or
    the value is not in dispositions.yaml; ``superseded``: a later disposition on the record
    replaced it before it was recycled or converted.
    """

    DONE = "done"
    WAITING = "waiting"
    RECYCLED = "recycled"
    PENDING = "pending"
    CONVERTED = "converted"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class DispositionRow(Base):
    """One disposition value seen on one person record: acted on once, whatever reads it again.

    ``stamp`` is the disposition's date as the record gives it (ISO-8601, empty when it gives none):
    the same value set again with a new date is a new disposition. ``decided_at`` is that date, else
    when Relay first saw the value. ``owner_email``: who owned the record then (who returned it).
    ``suppressed``: the person (every record of its ``relay_id``) is never routed, enriched or sent
    outreach again.
    """

    __tablename__ = "dispositions"
    __table_args__ = (
        CheckConstraint(_in("status", DispositionStatus), name="status"),
        UniqueConstraint("connection", "object", "crm_id", "value", "stamp", name="uq_dispositions_value"),
        Index("ix_dispositions_due", "connection", "status", "recycle_at"),
        Index("ix_dispositions_relay_id", "relay_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    relay_id: Mapped[str | None] = mapped_column(String(RELAY_ID_LEN))
    value: Mapped[str] = mapped_column(String(255))
    stamp: Mapped[str] = mapped_column(String(40))
    seen_at: Mapped[datetime]
    decided_at: Mapped[datetime]
    owner_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    recycle_at: Mapped[datetime | None]
    excluded_owner_email: Mapped[str | None] = mapped_column(String(320))
    suppressed: Mapped[bool] = mapped_column(Boolean)
    new_owner_email: Mapped[str | None] = mapped_column(String(320))
    """The owner a recycled person was routed to."""
    acted_at: Mapped[datetime | None]
    """When it was recycled, converted or failed."""
    opportunity_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    contact_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    account_id: Mapped[str | None] = mapped_column(String(CRM_ID_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    """Conversions asked of the CRM (each recorded before the CRM is asked)."""
    error: Mapped[str | None] = mapped_column(Text)


class DispositionFindingRow(Base):
    """A disposition missing ``due_hours`` after a lead's first touch: found, and its owner's task made, once.

    ``key`` is the core's finding key (record and first touch).
    """

    __tablename__ = "disposition_findings"
    __table_args__ = (
        UniqueConstraint("connection", "key", name="uq_disposition_findings_key"),
        Index("ix_disposition_findings_record", "connection", "object", "crm_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN))
    object: Mapped[str] = mapped_column(String(OBJECT_LEN))
    crm_id: Mapped[str] = mapped_column(String(CRM_ID_LEN))
    relay_id: Mapped[str | None] = mapped_column(String(RELAY_ID_LEN))
    key: Mapped[str] = mapped_column(String(400))
    first_touch_at: Mapped[datetime]
    due_at: Mapped[datetime]
    owner_email: Mapped[str | None] = mapped_column(String(320))
    task_key: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApiRole(StrEnum):
    """The console's roles (seed 002 "Data Governance" access table: Admin, Manager, Rep, Marketing, Read-only)."""

    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    MARKETING = "marketing"
    READ_ONLY = "read_only"


class ApiUserRow(Base):
    """Someone who may call the admin API: a role, and a token Relay keeps only as its SHA-256.

    ``email``: the CRM user they are (a Rep or Marketing user's "own" records are those they
    own in the CRM). ``token_prefix``: the token's first characters, to tell tokens apart in
    listings. A revoked user keeps its row (the audit names it).
    """

    __tablename__ = "api_users"
    __table_args__ = (
        CheckConstraint(_in("role", ApiRole), name="role"),
        UniqueConstraint("token_hash", name="uq_api_users_token_hash"),
        Index("ix_api_users_name", "name"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64))
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RulesVersionRow(Base):
    """A rule set decisions were made under, by its version (``Rules.version``): what the rules said.

    Recorded when a run starts under it; the console shows the history and the difference between
    two versions.
    """

    __tablename__ = "rules_versions"
    __table_args__ = (Index("ix_rules_versions_first_seen", "first_seen"),)

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    source: Mapped[str | None] = mapped_column(String(1000))


class ConnectionStateRow(Base):
    """A connection an admin paused (``paused_at`` set): no sync, scheduled or asked for, runs until resumed."""

    __tablename__ = "connection_states"

    connection: Mapped[str] = mapped_column(String(CONNECTION_LEN), primary_key=True)
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class BacktestReportRow(Base):
    """A backtest saved by ``relay backtest --save`` for the console (``/dashboard/backtest``, ``/api/v1/backtests``).

    ``report``: the report as ``BacktestReport.as_dict()`` gives it, without the people's labels (their
    email or name): records are named by CRM id only, owners by their email. ``records`` and
    ``owners_changed`` repeat two of its figures for listings that do not read the report.
    """

    __tablename__ = "backtest_reports"
    __table_args__ = (Index("ix_backtest_reports_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime | None]
    connection: Mapped[str | None] = mapped_column(String(CONNECTION_LEN))
    current_version: Mapped[str] = mapped_column(String(128))
    candidate_version: Mapped[str] = mapped_column(String(128))
    candidate_source: Mapped[str | None] = mapped_column(String(1000))
    records: Mapped[int] = mapped_column(Integer)
    owners_changed: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
