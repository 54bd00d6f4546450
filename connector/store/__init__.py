"""Relay's store: SQLAlchemy tables, Alembic migrations and the repositories the pipeline uses.

Entry points:
    * :func:`connector.store.db.create_engine_for` / :func:`connector.store.db.session_factory`
    * :func:`connector.store.migrate.upgrade` (``relay db upgrade``), ``current_revision``, ``is_up_to_date``
    * :func:`connector.store.migrate.open_store` (checked, migrated when empty) and
      :func:`connector.store.health.check_store`
    * :class:`connector.store.repositories.Repositories` and the single repositories
"""

from __future__ import annotations

from connector.store.db import create_engine_for, session_factory
from connector.store.errors import (
    ActiveAssignmentConflict,
    CursorMovedBackwards,
    IdempotencyKeyConflict,
    InboxEventNotFound,
    InvalidStoreValue,
    OutboxMessageNotFound,
    RunNotFound,
    RunNotRunning,
    RunSuperseded,
    StoreCorrupted,
    StoreError,
    StoreUnavailable,
    SyncAlreadyRunning,
    UnsupportedDatabase,
)
from connector.store.models import (
    AssignmentStatus,
    AuditAction,
    IdentityKind,
    OutboxOperation,
    OutboxStatus,
    SyncMode,
    SyncStatus,
)

__all__ = [
    "ActiveAssignmentConflict",
    "AssignmentStatus",
    "AuditAction",
    "CursorMovedBackwards",
    "IdempotencyKeyConflict",
    "IdentityKind",
    "InboxEventNotFound",
    "InvalidStoreValue",
    "OutboxMessageNotFound",
    "OutboxOperation",
    "OutboxStatus",
    "RunNotFound",
    "RunNotRunning",
    "RunSuperseded",
    "StoreCorrupted",
    "StoreError",
    "StoreUnavailable",
    "SyncAlreadyRunning",
    "SyncMode",
    "SyncStatus",
    "UnsupportedDatabase",
    "create_engine_for",
    "session_factory",
]
