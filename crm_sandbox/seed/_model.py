"""The generated data set and its ground truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: ("salesforce", "Lead", "00Q...") or ("hubspot", "contacts", "1201").
RecordKey = tuple[str, str, str]


def key_text(key: RecordKey) -> str:
    """A record key as one string, ``crm/object/id`` (JSON object keys must be strings)."""
    return "/".join(key)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@dataclass
class DealTruth:
    """What is true of one seeded opportunity or deal, at the seed's anchor.

    Attributes:
        pipeline: the HubSpot pipeline id ("default", "75312468" Enterprise Sales, "75312469"
            Renewals); None for a Salesforce opportunity.
        stage: the current stage: an SOP stage name (config/rules/stages.yaml), or a Renewals
            stage label ("Renewal Due", "Renewal Quoted", "Renewed", "Churned").
        stage_value: the stage as the CRM stores it (StageName, or the HubSpot stage id).
        path: the stages it entered and when, oldest first (the first is its creation; the
            Salesforce OpportunityHistory rows and HubSpot ``dealstage`` history say the same).
        gate_misses: passed SOP stage -> the exit criteria (stages.yaml field names) the deal
            lacks, for each open stage before the current one that lacks any. A Closed Lost or
            Renewals deal owes none.
        skipped: open stages the deal jumped over (e.g. Discovery -> Proposal skips Solution Design).
        reopened: moved from Closed Lost back to an open stage.
        stale: longer in its current open SOP stage than the stage's maximum (seed 002 durations)
            at the anchor; ``days_in_stage`` whole days since it entered it.
        discount: the discount percent, or None.
        approval: the approver title the SOP matrix needs ("Sales Manager", "VP Sales", "CEO"),
            None when the discount is at most 10 % or there is none (or the deal is lost).
        approved: whether an approver is recorded (Discount_Approved_By__c / discount_approved_by).
        form_missing: Closed Won (Sales pipelines) handoff form fields left empty: handoff_csm,
            contract_value, contract_term, go_live_date, key_stakeholders, success_criteria,
            risk_factors ("None identified" counts as filled).
        carry_over_missing: Closed Won carry-over fields left empty: payment_state, contract_state,
            kickoff_date, onboarding_owner, launch_blockers.
        loss_reason_missing: a Closed Lost (or Churned) deal without a reason.
        next_step_missing: an open deal without a next step.
        late_quarter: amount / close-date changes (after creation) made in the last 14 days of a
            calendar quarter: (canonical field "amount" or "close_date", when).
    """

    pipeline: str | None
    stage: str
    stage_value: str
    path: list[tuple[str, datetime]]
    gate_misses: dict[str, list[str]]
    skipped: list[str]
    reopened: bool
    stale: bool
    days_in_stage: int
    discount: float | None
    approval: str | None
    approved: bool
    form_missing: list[str]
    carry_over_missing: list[str]
    loss_reason_missing: bool
    next_step_missing: bool
    late_quarter: list[tuple[str, datetime]]

    @property
    def stage_entered_at(self) -> datetime:
        """When the deal entered its current stage."""
        return self.path[-1][1]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (times as ISO 8601 strings)."""
        return {
            "pipeline": self.pipeline, "stage": self.stage, "stage_value": self.stage_value,
            "path": [{"stage": stage, "at": _iso(at)} for stage, at in self.path],
            "gate_misses": {k: list(v) for k, v in self.gate_misses.items()}, "skipped": list(self.skipped),
            "reopened": self.reopened, "stale": self.stale, "days_in_stage": self.days_in_stage,
            "discount": self.discount, "approval": self.approval, "approved": self.approved,
            "form_missing": list(self.form_missing), "carry_over_missing": list(self.carry_over_missing),
            "loss_reason_missing": self.loss_reason_missing, "next_step_missing": self.next_step_missing,
            "late_quarter": [{"field": name, "at": _iso(at)} for name, at in self.late_quarter],
        }


@dataclass
class DispositionTruth:
    """The disposition a rep set on one lead or contact (seed 002 "Lead Disposition").

    Attributes:
        disposition: "Qualified", "Not Ready", "Bad Fit", "No Response" or "Do Not Contact".
        set_at: when it was set (Disposition_Date__c / disposition_date; the record's last edit).
        recycle_due: "No Response" set more than 90 days before the anchor (the person is due
            to be recycled); False otherwise.
        checklist_missing: for "Qualified": the SDR -> AE handoff checklist fields left empty
            (meeting_outcome, handoff_notes, next_step, budget, authority, need, timeline).
    """

    disposition: str
    set_at: datetime
    recycle_due: bool
    checklist_missing: list[str]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"disposition": self.disposition, "set_at": _iso(self.set_at), "recycle_due": self.recycle_due,
                "checklist_missing": list(self.checklist_missing)}


@dataclass
class GroundTruth:
    """What is really true about the seed data, for measuring Relay's decisions.

    Attributes:
        persons: clusters of records that are the same real person (Salesforce leads and
            contacts, HubSpot contacts; within and across CRMs). Every person record is in
            exactly one cluster. Cluster ``i`` has the id ``person_id(i)`` (``"P<i>"``).
        companies: clusters of records that are the same real company (Salesforce accounts,
            HubSpot companies). Cluster ``j`` has the id ``company_id(j)`` (``"C<j>"``).
        person_company: person cluster id -> company cluster id of the existing account the
            person works for (only people of companies that exist as accounts/companies).
        stage_violations: opportunities/deals breaking the requirements of their stage ->
            the names of the criteria they break (see ``seed.opportunities.STAGE_REQUIREMENTS``):
            the criteria of ``deals[key].gate_misses``, and for Closed Won a missing discount
            approval ("discount_approval") and the empty handoff form fields.
        deals: every opportunity/deal -> what is true of it (``DealTruth``).
        dispositions: every lead/contact with a disposition -> ``DispositionTruth``.
        hard: person cluster id -> why its records cannot be matched by normalised email
            ("email_typo", "personal_email", "missing_email").
    """

    persons: list[list[RecordKey]] = field(default_factory=list)
    companies: list[list[RecordKey]] = field(default_factory=list)
    person_company: dict[str, str] = field(default_factory=dict)
    stage_violations: dict[RecordKey, list[str]] = field(default_factory=dict)
    hard: dict[str, list[str]] = field(default_factory=dict)
    deals: dict[RecordKey, DealTruth] = field(default_factory=dict)
    dispositions: dict[RecordKey, DispositionTruth] = field(default_factory=dict)

    @staticmethod
    def person_id(index: int) -> str:
        """The id of person cluster number ``index``."""
        return f"P{index}"

    @staticmethod
    def company_id(index: int) -> str:
        """The id of company cluster number ``index``."""
        return f"C{index}"

    def person_of(self) -> dict[RecordKey, str]:
        """Map every person record to its cluster id."""
        return {key: self.person_id(i) for i, cluster in enumerate(self.persons) for key in cluster}

    def company_of(self) -> dict[RecordKey, str]:
        """Map every account/company record to its cluster id."""
        return {key: self.company_id(i) for i, cluster in enumerate(self.companies) for key in cluster}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (record keys as lists, or as ``crm/object/id`` where they are dict keys)."""
        return {
            "persons": [[list(k) for k in c] for c in self.persons],
            "companies": [[list(k) for k in c] for c in self.companies],
            "person_company": dict(self.person_company),
            "stage_violations": {key_text(k): list(v) for k, v in self.stage_violations.items()},
            "hard": {k: list(v) for k, v in self.hard.items()},
            "deals": {key_text(k): v.as_dict() for k, v in self.deals.items()},
            "dispositions": {key_text(k): v.as_dict() for k, v in self.dispositions.items()},
        }

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys)."""
        return json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass
class SeedData:
    """Everything the sandbox CRMs are seeded with, plus the ground truth.

    Attributes:
        seed: the random seed the data was generated from.
        anchor: "now" for the data (aware UTC); nothing was created after it.
        salesforce: sObject name ("User", "Account", "Lead", "Contact", "Opportunity",
            "OpportunityHistory", "Task") -> records with "Id" and Salesforce API field names.
        hubspot_owners: the owners API shape.
        hubspot: object type ("contacts", "companies", "deals", "tasks", "notes") -> records
            ``{"id", "properties", "createdAt", "updatedAt", "archived"}``; deals also carry
            ``propertiesWithHistory`` (``dealstage``, ``amount``, ``closedate``: the entries the
            API answers, newest first).
        hubspot_associations: (from_type, from_id, to_type, to_id, association_type_id).
        truth: the ground truth.
    """

    seed: int
    anchor: datetime
    salesforce: dict[str, list[dict[str, Any]]]
    hubspot_owners: list[dict[str, Any]]
    hubspot: dict[str, list[dict[str, Any]]]
    hubspot_associations: list[tuple[str, str, str, str, int]]
    truth: GroundTruth

    def to_json(self) -> str:
        """Deterministic JSON of the whole data set (sorted keys)."""
        return json.dumps(
            {
                "seed": self.seed,
                "anchor": self.anchor.isoformat(),
                "salesforce": self.salesforce,
                "hubspot_owners": self.hubspot_owners,
                "hubspot": self.hubspot,
                "hubspot_associations": [list(a) for a in self.hubspot_associations],
                "truth": self.truth.as_dict(),
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
