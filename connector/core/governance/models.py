"""Canonical deals, their history, and the governance decisions the core returns.

``Deal`` is what the deal mappings will produce from a Salesforce Opportunity or a HubSpot
deal (a frozen pydantic model, validated at the edge); history entries and decisions are
frozen dataclasses the core makes itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from connector.core.models import RecordRef

TaskAssignee = Literal["owner", "owner_manager", "approver", "cs_owner", "ae_owner", "marketing"]
GateStatus = Literal["passed", "flagged", "reset", "awaiting_approval"]
"""The value written to the deal's gate-status field: ``passed`` (every gate it is past is met),
``flagged`` (a flag-policy gate or approval is missing), ``reset`` (an enforce-policy gate set the
stage back), ``awaiting_approval`` (an approval is pending and no gate is broken)."""


class ApprovalRecord(BaseModel):
    """An approval recorded on a deal: which matrix, who approved, when, for which value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matrix: str = Field(min_length=1)
    approver: str = Field(min_length=1)
    at: AwareDatetime | None = None
    value: float | None = None


class Deal(BaseModel):
    """A Salesforce Opportunity or HubSpot deal in canonical form.

    ``stage``: the CRM's value (a Salesforce ``StageName`` or a HubSpot stage id); ``pipeline``:
    the HubSpot pipeline id (None for Salesforce). ``owner_email``: the owner as a member of
    routing.yaml's team (the pipeline resolves the CRM owner id). ``criteria``: every other mapped
    field by canonical name: exit criteria and checklists (bools or filled-in values), the handoff
    form, approvals recorded on the deal; ``qualification``: the qualification framework fields
    (budget, authority...). ``relay_gate_status``: the value Relay last wrote to the gate-status field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: RecordRef
    name: str | None = None
    pipeline: str | None = None
    stage: str = Field(min_length=1)
    amount: float | None = None
    discount_percent: float | None = None
    close_date: date | None = None
    created_at: AwareDatetime | None = None
    stage_entered_at: AwareDatetime | None = None
    owner_id: str | None = None
    owner_email: str | None = None
    next_step: str | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    loss_reason: str | None = None
    updated_at: AwareDatetime | None = None
    relay_gate_status: str | None = None
    criteria: dict[str, Any] = Field(default_factory=dict)
    qualification: dict[str, Any] = Field(default_factory=dict)
    approvals: tuple[ApprovalRecord, ...] = ()

    @property
    def label(self) -> str:
        """How messages name the deal: ``'Acme - Platform' (salesforce/Opportunity/006...)``."""
        return f"'{self.name}' ({self.ref})" if self.name else str(self.ref)

    def value(self, name: str) -> Any:
        """A canonical field's value: the criteria, then the qualification fields, then the attribute."""
        if name in self.criteria:
            return self.criteria[name]
        if name in self.qualification:
            return self.qualification[name]
        return getattr(self, name, None) if name in type(self).model_fields else None


def filled(value: Any) -> bool:
    """Whether a criterion value counts as met: a ticked box or a non-empty value (0 counts)."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0")
    if isinstance(value, (list, tuple, set, dict)):
        return bool(value)
    return True


@dataclass(frozen=True)
class StageChange:
    """A deal moved from one stage to another (Salesforce OpportunityHistory, HubSpot dealstage history).

    ``from_stage`` is None for the first stage a deal was created in.
    """

    from_stage: str | None
    to_stage: str
    at: datetime
    by: str | None = None


@dataclass(frozen=True)
class FieldChange:
    """Another field of a deal changed (``amount``, ``close_date``): the hygiene checks read these."""

    field: str
    old: Any
    new: Any
    at: datetime
    by: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """A task to create: for whom (a role relative to the deal, and the person when known) and when due."""

    subject: str
    description: str
    due_at: datetime
    assignee: TaskAssignee
    assignee_email: str | None = None
    priority: Literal["High", "Normal", "Low"] = "Normal"


@dataclass(frozen=True)
class GovernanceFinding:
    """One thing wrong with a deal or person, and the task that asks someone to fix it.

    ``key`` is stable across runs (record, code and what it is about), so the acting layer
    creates each task once. ``fields``: the canonical fields involved (the missing criteria).
    """

    code: str
    ref: RecordRef
    message: str
    key: str
    fields: tuple[str, ...] = ()
    task: TaskSpec | None = None


@dataclass(frozen=True)
class GateViolation:
    """A deal is past ``stage`` without all of its exit criteria."""

    stage: str
    missing: tuple[str, ...]
    labels: tuple[str, ...]
    policy: Literal["flag", "enforce"]


@dataclass(frozen=True)
class StageReset:
    """An enforced gate: set the deal's stage back to ``to_stage`` (``to_value``: the CRM's value)."""

    from_stage: str
    to_stage: str
    to_value: str
    reason: str


@dataclass(frozen=True)
class ApprovalRequest:
    """An approval the deal needs and does not have: who approves, and the task for them."""

    matrix: str
    value: float
    approver_title: str
    approver_email: str | None
    reason: str
    task: TaskSpec


@dataclass(frozen=True)
class DealGovernance:
    """Everything ``evaluate_deal`` decided about one deal.

    ``findings`` include the gate, movement and hygiene findings (each with its task);
    ``reset``: the stage to set back to, when a gate is enforced; ``approvals``: approvals
    requested; ``gate_status``: the value for the deal's gate-status field.
    """

    ref: RecordRef
    pipeline: str | None
    stage: str | None
    gate_status: GateStatus
    violations: tuple[GateViolation, ...] = ()
    findings: tuple[GovernanceFinding, ...] = ()
    reset: StageReset | None = None
    approvals: tuple[ApprovalRequest, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
