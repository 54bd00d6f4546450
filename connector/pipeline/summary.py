"""What a sync run did, for the closing summary, the run's counts and the tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol


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
class PlannedWrite:
    """A write a dry run would have sent."""

    object: str
    operation: str
    crm_id: str | None
    fields: dict[str, Any]


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
    records_updated: int = 0
    tasks_created: int = 0
    quarantined: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    write_failures: list[WriteFailure] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    planned: list[PlannedWrite] = field(default_factory=list)
    examples: list[DecisionExample] = field(default_factory=list)
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
            "records_updated": self.records_updated,
            "tasks_created": self.tasks_created,
            "quarantined": self.quarantined,
            "findings": dict(self.findings),
            "write_failures": [str(f) for f in self.write_failures],
            "api_calls": dict(self.api_calls),
            "planned_writes": len(self.planned),
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
