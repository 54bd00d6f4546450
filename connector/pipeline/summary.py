"""What a sync run did, for the closing summary, the run's counts and the tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from connector.pipeline.quality import QualityTally


@dataclass(frozen=True)
class WriteFailure:
    """One record the CRM refused, with the CRM's own error."""

    object: str
    crm_id: str | None
    operation: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.operation} {self.object} {self.crm_id or '(new)'}: {self.code}: {self.message}"


@dataclass(frozen=True)
class PlannedRecord:
    """The CRM record a planned write concerns (the record updated, or the one a task is linked to)."""

    object: str
    crm_id: str
    label: str | None = None
    """The person as an admin recognises them (``First Last <email>``), from the stored snapshot."""

    def __str__(self) -> str:
        where = f"{self.object} {self.crm_id}" if self.object else self.crm_id
        return f"{self.label} ({where})" if self.label else where

    def as_dict(self) -> dict[str, Any]:
        return {"object": self.object or None, "crm_id": self.crm_id, "label": self.label}


@dataclass(frozen=True)
class PlannedChange:
    """One field a planned update changes: its old value (as Relay last read it) and the new one."""

    field: str
    """The CRM's field name."""
    canonical: str | None
    """Relay's canonical name of the field, when known."""
    old: Any
    """Relay's canonical value as last read from the CRM."""
    new: Any
    """The canonical value to write (``PlannedWrite.fields`` has it as the CRM takes it)."""
    old_known: bool = True
    """False when Relay has no stored value to compare with (``old`` is then None, meaning unknown)."""
    old_label: str | None = None
    """A readable form of an id value (an owner id's email)."""
    new_label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field, "canonical": self.canonical, "old": json_ready(self.old),
            "new": json_ready(self.new), "old_known": self.old_known, "old_label": self.old_label,
            "new_label": self.new_label,
        }


@dataclass(frozen=True)
class PlannedTask:
    """A follow-up task a planned write creates, in the CRM's own values."""

    subject: str | None
    owner_id: str | None
    owner_label: str | None
    """The owner's email, when the CRM's users list it."""
    due: str | None
    priority: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "owner_id": self.owner_id, "owner_label": self.owner_label,
                "due": self.due, "priority": self.priority}


@dataclass(frozen=True)
class PlannedWrite:
    """A write a dry run would have sent: the CRM fields as sent, and what they change.

    ``fields`` is the payload as a real run sends it (decision fields go as a group, so
    some are sent at the value the CRM already holds); ``changes`` lists only the fields
    whose value differs from what Relay last read (updates); ``task`` describes a task
    to create, ``record`` the record updated or the one the task is linked to.
    """

    object: str
    operation: str
    crm_id: str | None
    fields: dict[str, Any]
    purpose: str = "update"
    """``update`` (a person record) or ``task`` (a follow-up task)."""
    record: PlannedRecord | None = None
    changes: tuple[PlannedChange, ...] = ()
    task: PlannedTask | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``relay sync --dry-run --json`` lists these)."""
        return {
            "object": self.object,
            "operation": self.operation,
            "purpose": self.purpose,
            "crm_id": self.crm_id,
            "record": self.record.as_dict() if self.record is not None else None,
            "changes": [change.as_dict() for change in self.changes],
            "task": self.task.as_dict() if self.task is not None else None,
            "fields": json_ready(self.fields),
        }


def json_ready(value: Any) -> Any:
    """``value`` with dates and datetimes as ISO-8601 text, containers walked (for ``json.dumps``)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class DecisionExample:
    """One person's decision, as the demo prints it."""

    object: str
    crm_id: str
    name: str
    company: str | None
    score: int | None
    category: str | None
    owner_email: str | None
    reason: str | None
    sla_due: str | None
    tier: str | None = None
    """The SLA tier (how fast the owner must respond), not the score's category."""


@dataclass
class SyncSummary:
    """Counts of one sync run of one connection."""

    connection: str
    mode: str
    dry_run: bool = False
    run_id: int | None = None
    read: Counter[str] = field(default_factory=Counter)
    changed: int = 0
    deleted: int = 0
    merged: int = 0
    routed: Counter[str] = field(default_factory=Counter)
    propagated: int = 0
    echoes: int = 0
    """Records an events run did not read: every pushed change of theirs was Relay's own write (its CRM user)."""
    records_updated: int = 0
    tasks_created: int = 0
    quarantined: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    governance: Counter[str] = field(default_factory=Counter)
    """Deal governance this run: findings by code (gate_flagged...), approvals, resets and handoffs."""
    write_failures: list[WriteFailure] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    planned: list[PlannedWrite] = field(default_factory=list)
    examples: list[DecisionExample] = field(default_factory=list)
    quality: QualityTally | None = None
    """Data quality of the person records decided, per lead source (None: none was decided)."""
    duplicates: dict[str, Any] | None = None
    """What the dedupe pass after the run did, for a connection that merges or flags duplicates
    (``duplicates`` in relay.yaml; None: it only reports them, or the run was dry)."""
    seconds: float = 0.0

    @property
    def records_read(self) -> int:
        return sum(self.read.values())

    @property
    def errors(self) -> int:
        return len(self.write_failures) + self.quarantined

    @property
    def api_call_total(self) -> int:
        return sum(self.api_calls.values())

    def counts(self) -> dict[str, int]:
        """The run's counts as stored with the sync run."""
        return {
            "read": self.records_read,
            "changed": self.changed,
            "routed": sum(self.routed.values()),
            "tasks": self.tasks_created,
            "api_calls": self.api_call_total,
            "errors": self.errors,
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (jobs return it; ``relay sync --json`` prints it)."""
        return {
            "connection": self.connection,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "read": dict(self.read),
            "changed": self.changed,
            "deleted": self.deleted,
            "merged": self.merged,
            "routed": dict(self.routed),
            "propagated": self.propagated,
            "echoes": self.echoes,
            "records_updated": self.records_updated,
            "tasks_created": self.tasks_created,
            "quarantined": self.quarantined,
            "findings": dict(self.findings),
            "governance": dict(self.governance),
            "write_failures": [str(f) for f in self.write_failures],
            "api_calls": dict(self.api_calls),
            "planned_writes": len(self.planned),
            "planned": [write.as_dict() for write in self.planned],
            "quality": self.quality.as_dict() if self.quality is not None else None,
            "duplicates": self.duplicates,
            "seconds": round(self.seconds, 3),
        }


class SyncProgress(Protocol):
    """What a sync reports while it runs (the CLI draws a progress bar from it)."""

    def object_started(self, object_name: str) -> None: ...

    def page_done(self, object_name: str, records: int) -> None: ...

    def writes_sent(self, count: int) -> None: ...


class NoProgress:
    """A progress sink that shows nothing."""

    def object_started(self, object_name: str) -> None:
        return None

    def page_done(self, object_name: str, records: int) -> None:
        return None

    def writes_sent(self, count: int) -> None:
        return None
