"""Canonical records and the decisions the core returns.

Records (``Person``, ``Account``, ``Owner``) are what the mapping layer produces from
CRM data; decisions (``HygieneResult``, ``ScoreResult``, ``RoutingDecision``,
``SlaDecision``, ``LeadDecision``) are what the pipeline stores and writes back.
Records and the decisions the pipeline serialises on their own (``ScoreResult``,
``RoutingDecision``, ``SlaDecision``, ``TaskDecision``, ``LeadDecision``) are frozen
pydantic models; the parts the core makes for every record and that are only ever
serialised inside a ``LeadDecision`` (``HygieneResult``, ``Finding``, ``ScoreItem``)
are frozen dataclasses with the same attributes, as pydantic validation of values
the core produced itself is pure cost. Stages never mutate their inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from connector.core.governance.consent import ConsentStatus

Seniority = Literal["c_level", "vp", "director", "manager", "individual", "unknown"]
JobFunction = Literal[
    "sales", "marketing", "engineering", "it", "finance", "operations", "hr", "executive", "other"
]
ScoreComponent = Literal["demographic", "firmographic", "behavioural"]
TaskPriority = Literal["High", "Normal", "Low"]
RoutingSource = Literal["relay", "crm_owner", "existing"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Model = TypeVar("Model", bound=BaseModel)
_set_slot = object.__setattr__


def trusted(cls: type[Model], fields: dict[str, Any], explicit: frozenset[str]) -> Model:
    """The instance ``cls(**{k: fields[k] for k in explicit})`` builds, without validating.

    Pydantic at the edges, plain values inside: the decisions the core returns are pydantic
    models (the pipeline serialises them), but validating values the core computed itself
    from validated rules and records is pure cost (about 1.5-2.5 us a model, four models a
    person), and ``model_construct`` costs more than validation. ``fields`` holds EVERY
    field of ``cls`` in field order, defaults included, and becomes the ``__dict__``;
    ``explicit`` names the fields the caller passed (``model_fields_set``). The caller
    guarantees each value has its field's type and meets its constraints, and passes a
    fresh container where validation would have copied one; where it cannot, it calls
    ``cls(...)``. ``tests/core/test_trusted.py`` checks every call site's shape against
    validation.
    """
    instance = cls.__new__(cls)
    _set_slot(instance, "__dict__", fields)
    _set_slot(instance, "__pydantic_fields_set__", set(explicit))
    _set_slot(instance, "__pydantic_extra__", None)
    _set_slot(instance, "__pydantic_private__", None)
    return instance


class RecordRef(_Frozen):
    """Where a record lives: connection name, CRM object and the CRM's id."""

    connection: str = Field(min_length=1)
    object: str = Field(min_length=1)
    crm_id: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.connection}/{self.object}/{self.crm_id}"


class Person(_Frozen):
    """A Salesforce Lead or Contact, or a HubSpot contact, in canonical form."""

    kind: Literal["lead", "contact"]
    ref: RecordRef
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    company: str | None = None
    website: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    state: str | None = None
    city: str | None = None
    lead_source: str | None = None
    status: str | None = None
    owner_id: str | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    is_converted: bool | None = None
    # consent (config/rules/consent.yaml): read from the CRM, captured by the forms
    email_opt_out: bool | None = None
    do_not_call: bool | None = None
    legal_basis: str | None = None
    """The lawful basis of processing the CRM records (HubSpot ``hs_legal_basis``: one or more values joined by ``;``)."""
    subscription_status: str | None = None
    """The email subscription status, where the CRM keeps one as a field (``unsubscribed`` per consent.yaml)."""
    # retention (config/rules/retention.yaml): the person's class and age
    lifecycle_stage: str | None = None
    account_id: str | None = None
    """The CRM account the person belongs to (Salesforce ``Contact.AccountId``)."""
    last_activity_at: AwareDatetime | None = None
    # behavioural signals
    page_views: int | None = None
    email_clicks: int | None = None
    form_submissions: int | None = None
    content_downloads: int | None = None
    pricing_page_visits: int | None = None
    webinar_attended: bool | None = None
    demo_requested: bool | None = None
    # the rep's disposition (config/rules/dispositions.yaml) and when it was set
    disposition: str | None = None
    disposition_at: AwareDatetime | None = None
    # the SDR -> AE handoff checklist (handoffs.yaml sdr_to_ae): meeting outcome, notes, next step, BANT
    meeting_outcome: str | None = None
    handoff_notes: str | None = None
    next_step: str | None = None
    budget: str | None = None
    authority: str | None = None
    need: str | None = None
    timeline: str | None = None
    # Relay write-back fields
    relay_score: int | None = None
    relay_score_category: str | None = None
    relay_routing_reason: str | None = None
    relay_sla_due: AwareDatetime | None = None
    relay_matched_account: str | None = None
    relay_id: str | None = None
    relay_nurture_track: str | None = None
    """The marketing nurture track of the person's score (dispositions.yaml ``tracks``): what marketing sends."""


class Account(_Frozen):
    """A Salesforce Account or HubSpot company in canonical form."""

    ref: RecordRef
    name: str | None = None
    domain: str | None = None
    website: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    state: str | None = None
    owner_id: str | None = None
    relay_id: str | None = None
    lifecycle_stage: str | None = None
    """HubSpot ``lifecyclestage``, Salesforce ``Type`` (``customer``, ``Customer - Direct``: retention.yaml)."""
    # Tie-breakers of the account match (several accounts match a lead equally well).
    open_opportunities: int | None = None
    last_activity_at: AwareDatetime | None = None


class Owner(_Frozen):
    """A CRM user who can own records (Salesforce User, HubSpot owner).

    ``connection`` says which CRM the ``id`` belongs to; ``None`` means "any".
    """

    id: str = Field(min_length=1)
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    active: bool = True
    connection: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One data-quality problem found on one field of one record.

    A plain frozen dataclass: hygiene makes them for every record, from values it
    checked itself; ``LeadDecision`` serialises them with ``model_dump`` as before.
    """

    ref: RecordRef
    field: str
    code: str
    message: str
    value: str | None = None


AccountMatchMethod = Literal["email_domain", "website", "company_name", "company_fuzzy"]


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """Why a person was matched to an account: what agreed, how strongly, what chose.

    A plain frozen dataclass (the core makes one per matched person); ``LeadDecision``
    serialises it with ``model_dump``, so the audit shows "why this account".

    Attributes:
        account: The matched account.
        method: What agreed, strongest first: ``email_domain``, ``website``,
            ``company_name`` (the cleaned name, exactly) or ``company_fuzzy``.
        score: How strongly, 0-1 (1.0: the email's host is the account's domain).
        detail: The values that agreed, e.g. ``email domain eu.acme.example ~ acme.example``.
        candidates: Accounts the method found equally (before the tie-breakers).
        tie_break: What chose among several candidates (``open opportunities``,
            ``recent activity``...), ``None`` when there was one.
    """

    account: RecordRef
    method: AccountMatchMethod
    score: float
    detail: str
    candidates: int = 1
    tie_break: str | None = None


@dataclass(frozen=True, slots=True)
class HygieneResult:
    """The cleaned person plus what changed and what is wrong.

    A plain frozen dataclass (one per record, built from values hygiene produced itself);
    ``LeadDecision`` serialises it with ``model_dump`` as before.

    Attributes:
        person: The person with every normalised value applied.
        changes: Only the fields whose normalised value differs from the input.
        findings: Data-quality findings (missing required fields, invalid phone...).
        email_domain: Lower-case domain of a syntactically valid email, else ``None``.
        free_mail: True when ``email_domain`` is a free-mail provider (gmail, yahoo...).
        company_key: Company name without legal suffix/punctuation, for matching.
        seniority: Seniority derived from the job title.
        function: Job function derived from the job title.
    """

    person: Person
    changes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    email_domain: str | None = None
    free_mail: bool = False
    company_key: str | None = None
    seniority: Seniority = "unknown"
    function: JobFunction = "other"


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One scoring rule that contributed points (before the component cap).

    A plain frozen dataclass (scoring makes several per person); ``ScoreResult``
    serialises its items with ``model_dump`` as before.
    """

    component: ScoreComponent
    rule: str
    points: int
    detail: str = ""


class ScoreResult(_Frozen):
    """Lead score: three capped components, their total and the category."""

    demographic: int = Field(ge=0, le=30)
    firmographic: int = Field(ge=0, le=30)
    behavioural: int = Field(ge=0, le=40)
    total: int = Field(ge=0, le=100)
    category: str
    items: tuple[ScoreItem, ...] = ()


class RoutingDecision(_Frozen):
    """Who owns the lead and why.

    The owner is decided by EMAIL; the pipeline resolves the per-connection owner id.

    Attributes:
        owner_email: The chosen owner, or ``None`` (nurture, or nobody available).
        tier: Routing/SLA tier, e.g. ``Hot``, ``Warm``, ``Qualified``, ``Cold``, ``Nurture``.
        rule: Name of the routing rule that decided.
        reason: Human-readable reason, written to the CRM (max 255 characters).
        region: Territory used (``None`` when the rule does not use territories).
        group: Round-robin group key used (e.g. ``senior_reps:NA``), if any.
        position: 1-based count of assignments made in that group, after this one.
        kept_existing: True when the owner was kept rather than chosen now (``source`` says whose).
        fallback: Name of the fallback step used when the region had nobody active.
        source: Where the owner comes from: ``relay`` (Relay's routing chose it now),
            ``existing`` (an active Relay assignment, kept) or ``crm_owner`` (the owner the
            CRM already gives the record, kept; Relay writes no owner and records no
            assignment for it).
    """

    owner_email: str | None
    tier: str
    rule: str
    reason: str = Field(max_length=255)
    region: str | None = None
    group: str | None = None
    position: int | None = None
    kept_existing: bool = False
    fallback: str | None = None
    source: RoutingSource = "relay"


class SlaDecision(_Frozen):
    """Response-time SLA for an assignment made at ``assigned_at``."""

    tier: str
    response_minutes: int
    assigned_at: AwareDatetime
    due_at: AwareDatetime
    reminder_at: AwareDatetime
    escalate_at: AwareDatetime
    escalation_chain: tuple[str, ...] = ()
    task_priority: TaskPriority = "Normal"


class TaskDecision(_Frozen):
    """The follow-up task Relay asks the pipeline to create for a new assignment."""

    subject: str
    description: str
    due_at: AwareDatetime
    owner_email: str
    priority: TaskPriority


class ExistingAssignment(_Frozen):
    """An active assignment from Relay's ledger: the lead keeps this owner."""

    owner_email: str
    tier: str
    assigned_at: AwareDatetime
    rule: str | None = None


class LeadDecision(_Frozen):
    """Everything the core decided about one person record.

    Attributes:
        ref: The person record this decision is about.
        identity_id: Deterministic id of the person's identity cluster (``relay_id``).
        person_key: Normalised email used to cluster, or ``None``.
        duplicates: Other records in the same cluster (same person in either CRM).
        hygiene: Cleaning result (``None`` only when the record was quarantined early).
        matched_account: The account the person matched, if any.
        account_match: How it matched (method, score, tie-breaker), for the audit.
        score: Score result.
        routing: Routing decision (``None`` when quarantined or converted).
        sla: SLA timers for a NEW assignment (``None`` when kept/nurture/unassigned).
        task: Task to create for a NEW assignment.
        field_updates: Canonical person fields whose value should change in the CRM
            (normalised values and Relay's write-back fields), only those that differ.
        findings: Data-quality findings.
        quarantine_reason: Set when the record could not be decided; nothing else is.
        rules_version: Version hash of the rules that decided.
        decided_at: The ``now`` the decision was made at.
        consent: What the person's consent state allows (consent.yaml), when a state restricts
            anything; ``None``: nothing is restricted.
    """

    ref: RecordRef
    identity_id: str
    person_key: str | None = None
    duplicates: tuple[RecordRef, ...] = ()
    hygiene: HygieneResult | None = None
    matched_account: RecordRef | None = None
    account_match: AccountMatch | None = None
    score: ScoreResult | None = None
    routing: RoutingDecision | None = None
    sla: SlaDecision | None = None
    task: TaskDecision | None = None
    field_updates: Mapping[str, Any] = Field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    quarantine_reason: str | None = None
    rules_version: str
    decided_at: datetime
    consent: ConsentStatus | None = None

    @property
    def quarantined(self) -> bool:
        """True when the record could not be decided and was set aside."""
        return self.quarantine_reason is not None


class GroupPosition(_Frozen):
    """Smooth weighted round-robin state for one group (e.g. ``sales_reps:NA``).

    Attributes:
        current: Current weight per member email (nginx smooth weighted round robin).
        assigned: Number of assignments made in this group so far.
    """

    current: Mapping[str, int] = Field(default_factory=dict)
    assigned: int = Field(default=0, ge=0)


class RoutingState(_Frozen):
    """Round-robin positions per group. Immutable: routing returns a new state."""

    groups: Mapping[str, GroupPosition] = Field(default_factory=dict)

    def position(self, group_key: str) -> GroupPosition:
        """Return the state of ``group_key`` (a fresh one when never used)."""
        found = self.groups.get(group_key)
        return found if found is not None else GroupPosition()

    def with_position(self, group_key: str, position: GroupPosition) -> RoutingState:
        """Return a copy of this state with ``group_key`` set to ``position``."""
        groups = dict(self.groups)
        groups[group_key] = position
        return RoutingState(groups=groups)
