"""The governance rules files as pydantic models, with the SOP defaults.

``StageRules`` (``config/rules/stages.yaml``), ``ApprovalRules`` (``approvals.yaml``),
``DispositionRules`` (``dispositions.yaml``) and ``HandoffRules`` (``handoffs.yaml``).
Each file is optional: without it, the model's defaults (seed 002's numbers) stand in.
Unknown keys are rejected; problems inside one file raise a ``ValidationError`` whose
``loc`` points at the key. ``cross_problems`` checks the files against each other and
against ``routing.yaml``'s team (``connector.core.rules.Rules`` calls it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.core.cron import check_cron, crontab_fields

if TYPE_CHECKING:
    from connector.core.rules import RoutingRules

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str, str, Any]
"""(key path, code, message, value): one configuration problem."""

GatePolicy = Literal["flag", "enforce"]
MovePolicy = Literal["allow", "flag", "enforce"]
StageOutcome = Literal["open", "won", "lost"]
ApproverKind = Literal["owner", "manager", "role", "member"]
HandoffAssignee = Literal["owner", "owner_manager", "cs_owner", "ae_owner", "approver"]

DISPOSITION_ACTIONS: tuple[str, ...] = (
    "create_opportunity", "return_to_nurture", "disqualify", "recycle", "suppress",
)
"""What a disposition can do (seed 002 "Lead Disposition": the arrows of Disposition Options)."""


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Problems:
    """Collects problems and raises them as one ValidationError."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.errors: list[InitErrorDetails] = []

    def add(self, loc: Loc, code: str, message: str, value: Any) -> None:
        self.errors.append(InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=value))

    def extend(self, problems: Iterable[Problem]) -> None:
        for loc, code, message, value in problems:
            self.add(loc, code, message, value)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError.from_exception_data(self.title, self.errors)


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _duplicates(values: Iterable[str], loc: Loc, what: str) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            yield (*loc, i), "duplicate", f"{what} '{value}' is already listed at {loc[-1]}[{seen[value]}]", value
        seen.setdefault(value, i)


# --------------------------------------------------------------------------- stages.yaml


class Criterion(_Schema):
    """One exit criterion: a deal field that must be filled in (a ticked box, a value), or a framework.

    ``field``: a canonical deal field (the deal mappings map it to a CRM field). ``framework``:
    the name of a qualification framework of ``frameworks``; met when all its fields are filled.
    """

    label: str = Field(min_length=1)
    field: str | None = Field(default=None, min_length=1)
    framework: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Criterion:
        problems = _Problems("Criterion")
        if (self.field is None) == (self.framework is None):
            problems.add(("field",), "criterion_kind",
                         f"criterion '{self.label}' needs exactly one of field or framework", self.field)
        problems.raise_if_any()
        return self

    @property
    def name(self) -> str:
        """The field, or ``framework:<name>``: how findings name the criterion."""
        return self.field if self.field is not None else f"framework:{self.framework}"


class DayRange(_Schema):
    """How long a deal is expected to stay in a stage (days, inclusive)."""

    min: int = Field(default=0, ge=0)
    max: int = Field(ge=0)


class StageDef(_Schema):
    """One stage of a pipeline, in pipeline order.

    ``ids``: the values the CRMs store for the stage besides ``name`` (Salesforce ``StageName``,
    HubSpot stage ids such as ``appointmentscheduled``). ``gate``: the policy when a deal is past
    this stage without its exit criteria (``policies.gate`` when unset).
    """

    name: str = Field(min_length=1)
    ids: list[str] = Field(default_factory=list)
    outcome: StageOutcome = "open"
    expected_days: DayRange | None = None
    exit_criteria: list[Criterion] = Field(default_factory=list)
    gate: GatePolicy | None = None


class Pipeline(_Schema):
    """A deal pipeline: its CRM ids and its stages in order (open stages first, then closed)."""

    ids: list[str] = Field(default_factory=list)
    stages: list[StageDef] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> Pipeline:
        problems = _Problems("Pipeline")
        seen: dict[str, str] = {}
        closed_from: int | None = None
        for i, stage in enumerate(self.stages):
            for j, value in enumerate([stage.name, *stage.ids]):
                loc: Loc = ("stages", i, "name") if j == 0 else ("stages", i, "ids", j - 1)
                if value in seen and seen[value] != stage.name:
                    problems.add(loc, "duplicate", f"stage value '{value}' already names stage '{seen[value]}'", value)
                elif value in seen and j > 0:
                    problems.add(loc, "duplicate", f"stage value '{value}' is listed twice for stage '{stage.name}'", value)
                seen.setdefault(value, stage.name)
            if stage.outcome != "open":
                closed_from = i if closed_from is None else closed_from
            elif closed_from is not None:
                problems.add(("stages", i, "outcome"), "stage_order",
                             f"open stage '{stage.name}' comes after closed stage "
                             f"'{self.stages[closed_from].name}': list the closed stages last", stage.outcome)
            if stage.outcome != "open" and stage.exit_criteria:
                problems.add(("stages", i, "exit_criteria"), "closed_criteria",
                             f"closed stage '{stage.name}' has no exit: exit criteria apply to open stages",
                             [c.label for c in stage.exit_criteria])
        if not any(s.outcome == "won" for s in self.stages):
            problems.add(("stages",), "no_won_stage", "a pipeline needs a stage with outcome: won", None)
        problems.raise_if_any()
        return self

    def index_of(self, value: str | None) -> int | None:
        """Position of the stage named ``value`` (its name or one of its ids), or None."""
        if value is None:
            return None
        for i, stage in enumerate(self.stages):
            if value == stage.name or value in stage.ids:
                return i
        return None


class StagePolicies(_Schema):
    """What happens when a deal breaks a gate or moves in a way the process does not expect.

    ``gate``: ``flag`` (a task to the owner listing what is missing, the gate-status field set,
    the owner's manager told after ``grace_days``) or ``enforce`` (the stage set back, the owner told
    why). ``skipping`` a stage, moving ``backwards`` and ``reopen``-ing a closed deal: ``allow``,
    ``flag`` or (not for backwards) ``enforce`` (the move undone).
    """

    gate: GatePolicy = "flag"
    skipping: MovePolicy = "flag"
    backwards: Literal["allow", "flag"] = "allow"
    reopen: MovePolicy = "flag"
    grace_days: int = Field(default=2, ge=0)
    task_due_days: int = Field(default=1, ge=0)


class HygieneRules(_Schema):
    """Pipeline hygiene checks on open deals; each finding gets an owner task and is counted.

    ``late_quarter_days``: an amount or close date changed within this many days of the end of a
    quarter is a finding (0 turns it off). ``fiscal_year_start_month``: the quarters' start.
    """

    past_close_date: bool = True
    stale_stage: bool = True
    missing_next_step: bool = True
    late_quarter_days: int = Field(default=14, ge=0, le=90)
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)


def _c(label: str, field: str) -> Criterion:
    return Criterion(label=label, field=field)


SOP_FRAMEWORKS: dict[str, list[str]] = {
    "BANT": ["budget", "authority", "need", "timeline"],
    "MEDDICC": ["metrics", "economic_buyer", "decision_criteria", "decision_process",
                "identify_pain", "champion", "competition"],
}
"""Qualification frameworks as named field sets (seed 001 6.3.1 BANT; MEDDICC by its letters)."""


def sop_pipeline() -> Pipeline:
    """Seed 002 "Sales Stages & Exit Criteria": the stages, their durations and exit criteria."""
    return Pipeline(ids=["default"], stages=[
        StageDef(name="Prospecting", ids=["appointmentscheduled"], expected_days=DayRange(min=0, max=7),
                 exit_criteria=[_c("Discovery call scheduled", "discovery_call_scheduled"),
                                _c("Decision maker identified", "decision_maker_identified"),
                                _c("Initial pain point uncovered", "pain_points")]),
        StageDef(name="Discovery", ids=["qualifiedtobuy"], expected_days=DayRange(min=7, max=14),
                 exit_criteria=[_c("BANT qualified", "bant_qualified"),
                                _c("Champion identified", "champion_identified"),
                                _c("Demo scheduled", "demo_scheduled"),
                                _c("Mutual evaluation plan", "mutual_evaluation_plan")]),
        StageDef(name="Solution Design", ids=["presentationscheduled"], expected_days=DayRange(min=7, max=14),
                 exit_criteria=[_c("Solution fit confirmed", "solution_fit_confirmed"),
                                _c("ROI validated", "roi_validated"),
                                _c("Proposal requested", "proposal_requested"),
                                _c("Decision makers engaged", "decision_makers_engaged")]),
        StageDef(name="Proposal", ids=["decisionmakerboughtin"], expected_days=DayRange(min=0, max=7),
                 exit_criteria=[_c("Proposal delivered", "proposal_delivered"),
                                _c("Feedback received", "feedback_received"),
                                _c("Negotiation points identified", "negotiation_points_identified"),
                                _c("Decision date confirmed", "decision_date")]),
        StageDef(name="Negotiation", ids=["contractsent"], expected_days=DayRange(min=7, max=14),
                 exit_criteria=[_c("Terms agreed", "terms_agreed"), _c("Contract sent", "contract_sent"),
                                _c("Signatures scheduled", "signatures_scheduled"),
                                _c("Implementation planned", "implementation_planned")]),
        StageDef(name="Closed Won", ids=["closedwon"], outcome="won"),
        StageDef(name="Closed Lost", ids=["closedlost"], outcome="lost"),
    ])


class StageRules(_Schema):
    """Pipelines, their stages and exit criteria, movement policies and hygiene (``stages.yaml``).

    A deal's pipeline is the one whose key or ``ids`` hold the deal's pipeline value; a deal
    without one (Salesforce opportunities) is in ``default_pipeline``.
    """

    frameworks: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in SOP_FRAMEWORKS.items()})
    pipelines: dict[str, Pipeline] = Field(default_factory=lambda: {"sales": sop_pipeline()}, min_length=1)
    default_pipeline: str = "sales"
    policies: StagePolicies = Field(default_factory=StagePolicies)
    hygiene: HygieneRules = Field(default_factory=HygieneRules)

    @model_validator(mode="after")
    def _check(self) -> StageRules:
        problems = _Problems("StageRules")
        if self.default_pipeline not in self.pipelines:
            problems.add(("default_pipeline",), "unknown_pipeline",
                         f"'{self.default_pipeline}' is not a pipeline under pipelines "
                         f"(known: {_known(self.pipelines)})", self.default_pipeline)
        for name, fields in self.frameworks.items():
            if not fields:
                problems.add(("frameworks", name), "empty_framework", f"framework '{name}' lists no field", fields)
            problems.extend(_duplicates(fields, ("frameworks", name), "field"))
        owner: dict[str, str] = {}
        for key, pipeline in self.pipelines.items():
            for j, value in enumerate([key, *pipeline.ids]):
                if value in owner and owner[value] != key:
                    loc: Loc = ("pipelines", key) if j == 0 else ("pipelines", key, "ids", j - 1)
                    problems.add(loc, "duplicate", f"pipeline id '{value}' already names pipeline '{owner[value]}'",
                                 value)
                owner.setdefault(value, key)
            for i, stage in enumerate(pipeline.stages):
                for k, criterion in enumerate(stage.exit_criteria):
                    if criterion.framework is not None and criterion.framework not in self.frameworks:
                        problems.add(("pipelines", key, "stages", i, "exit_criteria", k, "framework"),
                                     "unknown_framework",
                                     f"'{criterion.framework}' is not a framework under frameworks "
                                     f"(known: {_known(self.frameworks)})", criterion.framework)
        problems.raise_if_any()
        return self

    def pipeline_for(self, value: str | None) -> tuple[str, Pipeline] | None:
        """The pipeline (key, rules) a deal's pipeline value names; the default one for None."""
        if value is None or value == "":
            return self.default_pipeline, self.pipelines[self.default_pipeline]
        for key, pipeline in self.pipelines.items():
            if value == key or value in pipeline.ids:
                return key, pipeline
        return None

    def stage_names(self) -> set[str]:
        """Every stage name of every pipeline."""
        return {s.name for p in self.pipelines.values() for s in p.stages}


# --------------------------------------------------------------------------- approvals.yaml


class Approver(_Schema):
    """Who an approver title is in ``routing.yaml``'s team.

    kinds: ``owner`` (the deal owner approves it themselves: no approval step), ``manager``
    (``levels`` up the owner's manager chain), ``role`` (an active member with ``role``, in the
    owner's region first), ``member`` (the member ``email``).
    """

    kind: ApproverKind
    role: str | None = None
    email: str | None = None
    levels: int = Field(default=1, ge=1, le=5)

    @model_validator(mode="after")
    def _check(self) -> Approver:
        problems = _Problems("Approver")
        if self.kind == "role" and not self.role:
            problems.add(("role",), "missing", "approver kind 'role' needs a role", None)
        if self.kind == "member" and not self.email:
            problems.add(("email",), "missing", "approver kind 'member' needs an email", None)
        problems.raise_if_any()
        return self


class MatrixRow(_Schema):
    """One row of an approval matrix: a range of the measured value and its approver title.

    Lower bound: ``min`` (inclusive) or ``above`` (exclusive), or none (from the lowest value).
    Upper bound: ``max`` (inclusive) or ``below`` (exclusive), or none (no limit).
    """

    min: float | None = None
    above: float | None = None
    max: float | None = None
    below: float | None = None
    approver: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MatrixRow:
        problems = _Problems("MatrixRow")
        if self.min is not None and self.above is not None:
            problems.add(("above",), "bounds", "give min or above, not both", self.above)
        if self.max is not None and self.below is not None:
            problems.add(("below",), "bounds", "give max or below, not both", self.below)
        low, high = self.lower, self.upper
        if low is not None and high is not None and (low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))):
            problems.add(("max" if self.max is not None else "below",), "band_inverted",
                         f"row for '{self.approver}' covers no value ({self.describe()})", high[0])
        problems.raise_if_any()
        return self

    @property
    def lower(self) -> tuple[float, bool] | None:
        """(bound, inclusive) or None."""
        if self.min is not None:
            return self.min, True
        return (self.above, False) if self.above is not None else None

    @property
    def upper(self) -> tuple[float, bool] | None:
        """(bound, inclusive) or None."""
        if self.max is not None:
            return self.max, True
        return (self.below, False) if self.below is not None else None

    def admits_upper(self, value: float) -> bool:
        """Whether ``value`` is at or under this row's upper bound."""
        high = self.upper
        return high is None or value < high[0] or (high[1] and value == high[0])

    def contains(self, value: float) -> bool:
        """Whether ``value`` is inside this row."""
        low = self.lower
        above_low = low is None or value > low[0] or (low[1] and value == low[0])
        return above_low and self.admits_upper(value)

    def describe(self) -> str:
        """The range as the SOP writes it (``11-20``, ``>30``)."""
        low, high = self.lower, self.upper
        left = "" if low is None else f"{'>=' if low[1] else '>'}{low[0]:g}"
        right = "" if high is None else f"{'<=' if high[1] else '<'}{high[0]:g}"
        return " and ".join(p for p in (left, right) if p) or "any value"


class ApprovalMatrix(_Schema):
    """A measured value -> the approver title, rows from the lowest values up.

    A value between two rows goes to the stricter (higher) row; a value under the first row to
    the first. ``required_before``: a deal cannot be in this stage (or a later one) until the
    approval is recorded (``policy`` flag or enforce, as for stage gates). ``measure``: the deal
    field measured (``discount_percent``, ``amount``) or, for matrices outside deals (campaign
    budgets), the name of the value the caller passes.
    """

    measure: str = Field(min_length=1)
    unit: str | None = None
    rows: list[MatrixRow] = Field(min_length=1)
    required_before: str | None = None
    policy: GatePolicy = "flag"
    approved_by: str | None = None
    """The deal field where the approver records the approval (their name or email): filled, the
    approval counts for the value measured when Relay first saw it filled."""

    @model_validator(mode="after")
    def _check(self) -> ApprovalMatrix:
        problems = _Problems("ApprovalMatrix")
        for i in range(1, len(self.rows)):
            previous, row = self.rows[i - 1], self.rows[i]
            high, low = previous.upper, row.lower
            if high is None or low is None or low[0] < high[0] or (low[0] == high[0] and low[1] and high[1]):
                problems.add(("rows", i), "band_overlap",
                             f"row {i} ({row.describe()}, {row.approver}) overlaps row {i - 1} "
                             f"({previous.describe()}, {previous.approver}): list rows from the lowest values up, "
                             "each starting above the one before", row.approver)
        if self.rows[-1].upper is not None:
            problems.add(("rows", len(self.rows) - 1), "band_gap",
                         f"the last row ends at {self.rows[-1].describe()}: it must have no upper bound so "
                         "every value has an approver", self.rows[-1].approver)
        problems.raise_if_any()
        return self


SOP_APPROVERS: dict[str, Approver] = {
    "Sales Rep": Approver(kind="owner"),
    "Sales Manager": Approver(kind="manager", levels=1),
    "Marketing Manager": Approver(kind="role", role="director"),
    "Director of Marketing": Approver(kind="role", role="director"),
    "VP Sales": Approver(kind="role", role="director"),
    "CMO": Approver(kind="role", role="director"),
    "CEO": Approver(kind="member", email="dana.whitfield@northwind.example"),
}
"""Seed 002's approver titles and who they are in the sandbox roster (which has no VP Sales, CEO or
marketing team: its director stands in; a real roster names them)."""


def sop_matrices() -> dict[str, ApprovalMatrix]:
    """Seed 002 "Negotiation" discount matrix and "Campaign Planning" budget matrix."""
    return {
        "discount": ApprovalMatrix(measure="discount_percent", unit="percent", required_before="Closed Won",
                                   approved_by="discount_approved_by", rows=[
            MatrixRow(max=10, approver="Sales Rep"), MatrixRow(min=11, max=20, approver="Sales Manager"),
            MatrixRow(min=21, max=30, approver="VP Sales"), MatrixRow(above=30, approver="CEO")]),
        "campaign_budget": ApprovalMatrix(measure="campaign_budget", unit="USD", rows=[
            MatrixRow(below=5000, approver="Marketing Manager"),
            MatrixRow(min=5000, max=25000, approver="Director of Marketing"),
            MatrixRow(min=25001, max=100000, approver="CMO"), MatrixRow(above=100000, approver="CEO")]),
    }


class ApprovalRules(_Schema):
    """Approver titles (lowest authority first) and the approval matrices (``approvals.yaml``)."""

    approvers: dict[str, Approver] = Field(default_factory=lambda: dict(SOP_APPROVERS), min_length=1)
    matrices: dict[str, ApprovalMatrix] = Field(default_factory=sop_matrices)
    task_due_days: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ApprovalRules:
        problems = _Problems("ApprovalRules")
        order = list(self.approvers)
        for key, matrix in self.matrices.items():
            rank = -1
            for i, row in enumerate(matrix.rows):
                if row.approver not in self.approvers:
                    problems.add(("matrices", key, "rows", i, "approver"), "unknown_approver",
                                 f"'{row.approver}' is not an approver under approvers (known: {', '.join(order)})",
                                 row.approver)
                    continue
                here = order.index(row.approver)
                if here < rank:
                    problems.add(("matrices", key, "rows", i, "approver"), "not_monotone",
                                 f"'{row.approver}' ranks below '{order[rank]}' of an earlier row: a larger value "
                                 "must never need a lower approver (approvers are listed lowest authority first)",
                                 row.approver)
                rank = max(rank, here)
        problems.raise_if_any()
        return self

    def rank(self, title: str) -> int:
        """Authority of an approver title (its position under approvers; higher approves more)."""
        return list(self.approvers).index(title)


# --------------------------------------------------------------------------- dispositions.yaml


class Disposition(_Schema):
    """What a disposition value does (``action`` one of DISPOSITION_ACTIONS).

    ``recycle_days``: for ``recycle``, when the person comes back to be routed again.
    ``status``: the lead status to set (None: leave it). ``converted_status``: for
    ``create_opportunity``, the converted lead status a Salesforce conversion sets (None: the org's
    first LeadStatus marked converted, which the adapter asks for).
    """

    action: str = Field(min_length=1)
    recycle_days: int | None = Field(default=None, ge=1)
    status: str | None = None
    converted_status: str | None = None


class NurtureTrack(_Schema):
    """A marketing nurture track for scores ``min``..``max`` inclusive."""

    name: str = Field(min_length=1)
    min: int = Field(ge=0, le=100)
    max: int = Field(ge=0, le=100)
    frequency: str = Field(min_length=1)
    content: str | None = None


SOP_DISPOSITIONS: dict[str, Disposition] = {
    "Qualified": Disposition(action="create_opportunity", status="Qualified", converted_status="Closed - Converted"),
    "Not Ready": Disposition(action="return_to_nurture", status="Unqualified"),
    "Bad Fit": Disposition(action="disqualify", status="Unqualified"),
    "No Response": Disposition(action="recycle", recycle_days=90, status="Unqualified"),
    "Do Not Contact": Disposition(action="suppress", status="Unqualified"),
}
SOP_TRACKS: tuple[NurtureTrack, ...] = (
    NurtureTrack(name="Sales Ready", min=60, max=79, frequency="daily", content="Personalized"),
    NurtureTrack(name="Engaged", min=40, max=59, frequency="twice a week", content="Targeted"),
    NurtureTrack(name="Interested", min=20, max=39, frequency="weekly", content="Educational"),
    NurtureTrack(name="Awareness", min=0, max=19, frequency="monthly", content="Newsletter"),
)


class DispositionRules(_Schema):
    """Disposition picklist -> action, the response expectation and nurture tracks (``dispositions.yaml``).

    ``field``: the canonical person field the rep sets. ``due_hours``: a disposition is expected
    within this many hours of first contact. ``nurture_field``: where the track is written for
    the marketing platform. A score no track covers (80 and up: sales works those) gets none.
    """

    field: str = "disposition"
    dispositions: dict[str, Disposition] = Field(default_factory=lambda: dict(SOP_DISPOSITIONS), min_length=1)
    due_hours: int = Field(default=24, ge=1)
    nurture_field: str = "relay_nurture_track"
    tracks: list[NurtureTrack] = Field(default_factory=lambda: list(SOP_TRACKS))

    @model_validator(mode="after")
    def _check(self) -> DispositionRules:
        problems = _Problems("DispositionRules")
        for name, disposition in self.dispositions.items():
            if disposition.action not in DISPOSITION_ACTIONS:
                problems.add(("dispositions", name, "action"), "unknown_action",
                             f"disposition '{name}' has action '{disposition.action}', which is not an action "
                             f"(known: {', '.join(DISPOSITION_ACTIONS)})", disposition.action)
            if disposition.action == "recycle" and disposition.recycle_days is None:
                problems.add(("dispositions", name, "recycle_days"), "missing",
                             f"disposition '{name}' recycles: give recycle_days", None)
            if disposition.action != "recycle" and disposition.recycle_days is not None:
                problems.add(("dispositions", name, "recycle_days"), "unexpected",
                             f"disposition '{name}' has action '{disposition.action}', which does not recycle",
                             disposition.recycle_days)
        covered: dict[int, str] = {}
        for i, track in enumerate(self.tracks):
            if track.min > track.max:
                problems.add(("tracks", i, "min"), "band_inverted",
                             f"track '{track.name}' has min {track.min} above max {track.max}", track.min)
            clash = next((covered[s] for s in range(track.min, track.max + 1) if s in covered), None)
            if clash is not None:
                problems.add(("tracks", i), "band_overlap", f"track '{track.name}' ({track.min}..{track.max}) "
                             f"overlaps track '{clash}'", track.name)
            for score in range(track.min, track.max + 1):
                covered.setdefault(score, track.name)
        problems.extend(_duplicates([t.name for t in self.tracks], ("tracks",), "track"))
        problems.raise_if_any()
        return self


# --------------------------------------------------------------------------- handoffs.yaml


class HandoffTask(_Schema):
    """A task a handoff creates: ``due_days`` after the handoff, for ``assignee``."""

    subject: str = Field(min_length=1)
    assignee: HandoffAssignee = "owner"
    due_days: int = Field(default=1, ge=0)


class SdrToAe(_Schema):
    """SDR -> AE: the checklist that must be complete before the AE owner is set.

    ``checklist``: canonical person fields that must be filled; ``framework``: a qualification
    framework of stages.yaml whose fields must be filled too (None: none). ``ae_roles``: roster roles
    whose members are AEs already (a lead they own keeps its owner); ``ae_group``: the routing.yaml
    group the AE is routed in otherwise (the person's region, then the group's fallback).
    """

    checklist: list[str] = Field(default_factory=lambda: ["meeting_outcome", "handoff_notes", "next_step"])
    framework: str | None = "BANT"
    ae_roles: list[str] = Field(default_factory=lambda: ["senior_rep", "sales_rep"])
    ae_group: str = "sales_reps"
    ae_task: HandoffTask = Field(default_factory=lambda: HandoffTask(
        subject="New opportunity from SDR: review the handoff", assignee="ae_owner", due_days=1))


class ClosedWon(_Schema):
    """Closed Won -> Customer Success.

    ``form_fields``: the handoff form; it counts only when 100 % filled. ``cs_role``: the roster role
    the CS owner is routed among. ``kickoff_days``: the kickoff task is due this many days after
    Closed Won. ``carry_over``: fields copied to the customer record for CS.
    """

    form_fields: list[str] = Field(default_factory=lambda: [
        "handoff_csm", "amount", "contract_term", "go_live_date", "key_stakeholders", "success_criteria",
        "risk_factors"])
    pipelines: list[str] | None = None
    """The stages.yaml pipelines whose wins are handed to Customer Success (None: every pipeline)."""
    cs_owner_field: str | None = "handoff_csm"
    """The form field naming the CS owner: Relay routes one among ``cs_role`` when it is empty, and writes it."""
    onboarding_owner_field: str | None = "onboarding_owner"
    """Where Relay writes the CS owner's email for onboarding (None: nowhere)."""
    kickoff_date_field: str | None = "kickoff_date"
    """The field CS sets to the kickoff call's date: time to kickoff is measured from it."""
    cs_role: str = "csm"
    kickoff_days: int = Field(default=3, ge=0)
    kickoff_task: HandoffTask = Field(default_factory=lambda: HandoffTask(
        subject="Schedule the customer kickoff call", assignee="cs_owner", due_days=3))
    tasks: list[HandoffTask] = Field(default_factory=lambda: [
        HandoffTask(subject="Send the internal win notification", assignee="owner", due_days=0),
        HandoffTask(subject="Introduce Customer Success to the customer", assignee="owner", due_days=2),
        HandoffTask(subject="Request referrals", assignee="owner", due_days=30)])
    carry_over: list[str] = Field(default_factory=lambda: [
        "payment_state", "contract_state", "kickoff_date", "onboarding_owner", "launch_blockers"])


class ClosedLost(_Schema):
    """Closed Lost: the reason is required; a loss interview, a follow-up reminder, contacts to nurture."""

    reason_field: str = "loss_reason"
    interview_task: HandoffTask = Field(default_factory=lambda: HandoffTask(
        subject="Conduct the loss interview", assignee="owner", due_days=7))
    follow_up_days: int = Field(default=90, ge=1)
    contacts_to_nurture: bool = True


class HandoffRules(_Schema):
    """The handoffs where an owner changes (``handoffs.yaml``).

    ``recent_days``: a win or loss older than this when Relay first reads the deal was handed over
    before Relay: it is recorded as such, without tasks, and left out of the handoff metrics (so a
    first sync of an org does not send a kickoff task for every deal ever won). None: every one.
    """

    recent_days: int | None = Field(default=30, ge=1)

    sdr_to_ae: SdrToAe = Field(default_factory=SdrToAe)
    closed_won: ClosedWon = Field(default_factory=ClosedWon)
    closed_lost: ClosedLost = Field(default_factory=ClosedLost)


# --------------------------------------------------------------------------- across files


def criteria_fields(stages: StageRules, handoffs: HandoffRules | None = None) -> set[str]:
    """Every canonical deal field the rules read (exit criteria, frameworks used, handoff forms).

    The deal mappings must map each of them (checked in a later step).
    """
    names: set[str] = set()
    for pipeline in stages.pipelines.values():
        for stage in pipeline.stages:
            for criterion in stage.exit_criteria:
                if criterion.field is not None:
                    names.add(criterion.field)
                elif criterion.framework is not None:
                    names.update(stages.frameworks.get(criterion.framework, ()))
    if handoffs is not None:
        names.update(handoffs.closed_won.form_fields)
        names.update(handoffs.closed_won.carry_over)
        names.add(handoffs.closed_lost.reason_field)
    return names


def cross_problems(
    routing: RoutingRules, stages: StageRules, approvals: ApprovalRules | None,
    handoffs: HandoffRules | None,
) -> list[Problem]:
    """Problems between the governance files and routing.yaml; each loc starts with the file stem.

    Checked: approver roles and members, the CS routing role and the AE roles, against routing.yaml's
    team; the AE routing group against its groups;
    stages named by approval gates against the pipelines; frameworks named by handoffs against
    stages.yaml. Pass None for a file that was not given (its defaults are not checked against a
    roster they were not written for).
    """
    found: list[Problem] = []
    roles = {m.role for m in routing.team}
    emails = {m.email for m in routing.team}
    if approvals is not None:
        for title, approver in approvals.approvers.items():
            if approver.role is not None and approver.role not in roles:
                found.append((("approvals", "approvers", title, "role"), "unknown_role",
                              f"approver '{title}': no team member of routing.yaml has role '{approver.role}' "
                              f"(known: {_known(roles)})", approver.role))
            if approver.email is not None and approver.email not in emails:
                found.append((("approvals", "approvers", title, "email"), "unknown_member",
                              f"approver '{title}': '{approver.email}' is not in routing.yaml's team", approver.email))
        names = stages.stage_names()
        for key, matrix in approvals.matrices.items():
            if matrix.required_before is not None and matrix.required_before not in names:
                found.append((("approvals", "matrices", key, "required_before"), "unknown_stage",
                              f"'{matrix.required_before}' is no stage of any pipeline in stages.yaml "
                              f"(known: {_known(names)})", matrix.required_before))
    if handoffs is not None:
        if handoffs.closed_won.cs_role not in roles:
            found.append((("handoffs", "closed_won", "cs_role"), "unknown_role",
                          f"no team member of routing.yaml has role '{handoffs.closed_won.cs_role}' "
                          f"(known: {_known(roles)})", handoffs.closed_won.cs_role))
        for i, role in enumerate(handoffs.sdr_to_ae.ae_roles):
            if role not in roles:
                found.append((("handoffs", "sdr_to_ae", "ae_roles", i), "unknown_role",
                              f"no team member of routing.yaml has role '{role}' (known: {_known(roles)})", role))
        if handoffs.sdr_to_ae.ae_group not in routing.groups:
            found.append((("handoffs", "sdr_to_ae", "ae_group"), "unknown_group",
                          f"'{handoffs.sdr_to_ae.ae_group}' is not a group of routing.yaml "
                          f"(known: {_known(routing.groups)})", handoffs.sdr_to_ae.ae_group))
        framework = handoffs.sdr_to_ae.framework
        if framework is not None and framework not in stages.frameworks:
            found.append((("handoffs", "sdr_to_ae", "framework"), "unknown_framework",
                          f"'{framework}' is not a framework of stages.yaml (known: {_known(stages.frameworks)})",
                          framework))
    return found


# --------------------------------------------------------------------------- consent.yaml

ConsentStateName = Literal["email_opt_out", "do_not_call", "no_lawful_basis", "unsubscribed", "do_not_contact"]
ConsentAction = Literal["outreach_tasks", "enrichment", "alerts_with_personal_data", "routing"]
OutreachChannel = Literal["email", "phone"]
CONSENT_STATES: tuple[str, ...] = get_args(ConsentStateName)
"""A person's consent states, in the order messages name them."""
CONSENT_ACTIONS: tuple[str, ...] = get_args(ConsentAction)
"""What the consent gate allows or refuses: follow-up tasks to reps, enrichment, alerts naming the person,
routing to an owner."""
OUTREACH_CHANNELS: tuple[str, ...] = get_args(OutreachChannel)
_CHANNELS: tuple[OutreachChannel, ...] = ("email", "phone")

HUBSPOT_LEGAL_BASES: tuple[str, ...] = (
    "Legitimate interest \u2013 prospect/lead", "Legitimate interest \u2013 existing customer", "Legitimate interest - other",
    "Performance of a contract", "Freely given consent from contact", "Not applicable",
)
"""The options of HubSpot's ``hs_legal_basis`` ("Legal basis for processing contact's data"), as the portal keeps
them (the values are the labels; several are joined by ``;``). "Not applicable": the contact is not subject to GDPR."""


SALES_SUBSCRIPTION_TYPES: tuple[str, ...] = ("One to One",)
"""HubSpot's email subscription type of a rep's one-to-one sales email (every portal has it): the shipped
``subscription_types.hubspot``, so a contact who opted out of it gets no follow-up task by email (seed 001
item 47.2 "Enforce consent flags before SDR outreach")."""


class ConsentState(_Schema):
    """What one consent state allows: ``allows`` lists the actions still done for a person in this state,
    ``closes`` the outreach channels it shuts (an outreach task needs a channel left open)."""

    allows: list[ConsentAction] = Field(default_factory=list)
    closes: list[OutreachChannel] = Field(default_factory=list)
    description: str | None = None


class LawfulBasis(_Schema):
    """When a person without a recorded lawful basis is in state ``no_lawful_basis``.

    ``required_in``: ISO 3166 alpha-2 countries whose people need one (``"*"``: everyone); empty: nobody (the
    state never applies). ``accepted``: the ``legal_basis`` values that are a lawful basis (compared without case,
    dash style or spacing; a ``;``-joined value is accepted when one of its parts is).
    """

    required_in: list[str] = Field(default_factory=list)
    accepted: list[str] = Field(default_factory=lambda: list(HUBSPOT_LEGAL_BASES))


def _sop_consent_states() -> dict[ConsentStateName, ConsentState]:
    return {
        "email_opt_out": ConsentState(allows=["outreach_tasks", "alerts_with_personal_data", "routing"],
                                      closes=["email"]),
        "do_not_call": ConsentState(allows=["outreach_tasks", "enrichment", "alerts_with_personal_data", "routing"],
                                    closes=["phone"]),
        "no_lawful_basis": ConsentState(allows=["routing"]),
        "unsubscribed": ConsentState(allows=["outreach_tasks", "alerts_with_personal_data", "routing"],
                                     closes=["email"]),
        "do_not_contact": ConsentState(allows=[]),
    }


class ConsentRules(_Schema):
    """The consent gate (``consent.yaml``): per consent state, the actions it allows.

    A person in several states gets only what every one of them allows, and an outreach task only while an
    outreach channel is left open that the person can be reached on (``outreach_channels`` the states do not
    close; email needs an address, phone a number). ``unsubscribed_values``: the ``subscription_status``
    values that mean unsubscribed (without case; ``unsubscribed: One to One`` is ``unsubscribed``, from
    One to One). ``subscription_types``: per CRM (its unit's kind), the email subscription types, by the
    names the CRM shows, whose opt-out makes a person unsubscribed (the CRM's unit reads them; a CRM left
    out or given an empty list: none; no ``subscription_types`` at all: HubSpot's One to One). Every state must be listed; ``do_not_contact`` (a suppressing disposition of
    dispositions.yaml) allows nothing: Do Not Contact suppresses everywhere.
    """

    states: dict[ConsentStateName, ConsentState] = Field(default_factory=_sop_consent_states)
    outreach_channels: list[OutreachChannel] = Field(default_factory=lambda: list(_CHANNELS), min_length=1)
    lawful_basis: LawfulBasis = Field(default_factory=LawfulBasis)
    unsubscribed_values: list[str] = Field(default_factory=lambda: ["unsubscribed", "not_subscribed"])
    subscription_types: dict[str, list[str]] = Field(default_factory=lambda: {"hubspot": list(SALES_SUBSCRIPTION_TYPES)})

    @model_validator(mode="after")
    def _check(self) -> ConsentRules:
        problems = _Problems("ConsentRules")
        for name in CONSENT_STATES:
            if name not in self.states:
                problems.add(("states", name), "missing_state",
                             f"consent state '{name}' is not listed: say which actions it allows "
                             f"(allows: [] for none; actions: {', '.join(CONSENT_ACTIONS)})", name)
        for name, state in self.states.items():
            problems.extend(_duplicates(state.allows, ("states", name, "allows"), "action"))
            problems.extend(_duplicates(state.closes, ("states", name, "closes"), "channel"))
            for i, channel in enumerate(state.closes):
                if channel not in self.outreach_channels:
                    problems.add(("states", name, "closes", i), "unknown_channel",
                                 f"'{channel}' is not an outreach channel (outreach_channels: "
                                 f"{_known(self.outreach_channels)})", channel)
        contact = self.states.get("do_not_contact")
        if contact is not None and contact.allows:
            problems.add(("states", "do_not_contact", "allows"), "do_not_contact_allows",
                         "a Do Not Contact disposition suppresses everywhere (seed 002 'Do Not Contact -> "
                         "Suppress'): it allows no action", list(contact.allows))
        problems.extend(_duplicates(self.outreach_channels, ("outreach_channels",), "channel"))
        for i, country in enumerate(self.lawful_basis.required_in):
            if country != "*" and not (len(country) == 2 and country.isascii() and country.isalpha()
                                       and country.isupper()):
                problems.add(("lawful_basis", "required_in", i), "invalid_country",
                             f"'{country}' is not an ISO 3166 alpha-2 country code (e.g. DE) or '*'", country)
        if self.lawful_basis.required_in and not self.lawful_basis.accepted:
            problems.add(("lawful_basis", "accepted"), "empty",
                         "a lawful basis is required: list the legal_basis values that are one", [])
        for crm, names in self.subscription_types.items():
            seen: dict[str, int] = {}
            for i, name in enumerate(names):
                key = " ".join(name.split()).casefold()
                if not key:
                    problems.add(("subscription_types", crm, i), "empty_name",
                                 "name a subscription type as the CRM shows it (e.g. One to One), not blank", name)
                elif key in seen:
                    problems.add(("subscription_types", crm, i), "duplicate",
                                 f"subscription type '{name}' is already listed at {crm}[{seen[key]}] "
                                 "(names compare without case)", name)
                seen.setdefault(key, i)
        problems.raise_if_any()
        return self

    def state(self, name: str) -> ConsentState:
        """The rule of consent state ``name`` (every state is listed: the model checks it).

        Raises:
            KeyError: ``name`` is no consent state.
        """
        for key, value in self.states.items():
            if key == name:
                return value
        raise KeyError(f"no consent state {name!r} (known: {', '.join(CONSENT_STATES)})")


# --------------------------------------------------------------------------- retention.yaml

RetentionClass = Literal["customer", "prospect", "unsubscribed", "employee"]
RetentionAction = Literal["archive", "delete", "suppress"]
RETENTION_CLASSES: tuple[str, ...] = get_args(RetentionClass)


class RetentionPeriod(_Schema):
    """How long a class of data is kept, and what is done then: ``archive`` (marked in Relay's store, nothing
    changes in the CRM), ``delete`` (deleted in the CRM and purged from Relay's store), ``suppress`` (never
    contacted again: kept as a suppression only)."""

    years: int = Field(ge=1, le=100)
    action: RetentionAction


def _sop_retention() -> dict[RetentionClass, RetentionPeriod]:
    return {
        "customer": RetentionPeriod(years=7, action="archive"),
        "prospect": RetentionPeriod(years=2, action="delete"),
        "unsubscribed": RetentionPeriod(years=5, action="suppress"),
        "employee": RetentionPeriod(years=7, action="archive"),
    }


class RetentionSchedule(_Schema):
    """When ``relay worker`` runs retention by itself: a five-field cron expression in UTC (daily, off-peak as
    shipped). ``apply: false`` (shipped: dry run first) only audits what a run would do (``retention_dry_run``,
    counts per class and action); ``apply: true`` does what ``relay retention run --apply`` does. ``enabled:
    false``: no scheduled run (the command still works)."""

    enabled: bool = Field(default=True, description="false: the worker never runs retention by itself.")
    cron: str = Field(default="30 3 * * *", description="Five-field cron expression in UTC, e.g. '30 3 * * *'.")
    apply: bool = Field(default=False, description="false: a dry run audited as retention_dry_run (counts only); "
                                                   "true: archive, delete and suppress as relay retention run --apply.")

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str) -> str:
        return check_cron(value)

    def crontab_fields(self) -> dict[str, str]:
        """The cron expression as ``huey.crontab`` keyword arguments."""
        return crontab_fields(self.cron)


class RetentionRules(_Schema):
    """Retention periods per class of data (``retention.yaml``; seed 002 "Data Retention Policy").

    ``customer_values``: the lifecycle stages (HubSpot ``lifecyclestage``) and account types (Salesforce
    ``Account.Type``) that make a person or an account a customer (compared without case); a person is also
    a customer when their account has a won deal. Every class must be listed; employees (CRM users) are only
    ever archived. ``schedule``: when the job worker runs it (:class:`RetentionSchedule`).
    """

    classes: dict[RetentionClass, RetentionPeriod] = Field(default_factory=_sop_retention)
    customer_values: list[str] = Field(default_factory=lambda: ["customer", "Customer - Direct", "Customer - Channel"])
    schedule: RetentionSchedule = Field(default_factory=RetentionSchedule)

    @model_validator(mode="after")
    def _check(self) -> RetentionRules:
        problems = _Problems("RetentionRules")
        for name in RETENTION_CLASSES:
            if name not in self.classes:
                problems.add(("classes", name), "missing_class",
                             f"retention class '{name}' is not listed: give its years and action", name)
        employee = self.classes.get("employee")
        if employee is not None and employee.action != "archive":
            problems.add(("classes", "employee", "action"), "employee_action",
                         "employee data are CRM users: Relay only archives them (action: archive)", employee.action)
        problems.extend(_duplicates(self.customer_values, ("customer_values",), "value"))
        problems.raise_if_any()
        return self
