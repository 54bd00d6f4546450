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
            the names of the criteria they break (see ``seed.opportunities.STAGE_REQUIREMENTS``).
        hard: person cluster id -> why its records cannot be matched by normalised email
            ("email_typo", "personal_email", "missing_email").
    """

    persons: list[list[RecordKey]] = field(default_factory=list)
    companies: list[list[RecordKey]] = field(default_factory=list)
    person_company: dict[str, str] = field(default_factory=dict)
    stage_violations: dict[RecordKey, list[str]] = field(default_factory=dict)
    hard: dict[str, list[str]] = field(default_factory=dict)

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
        salesforce: sObject name ("User", "Account", "Lead", "Contact", "Opportunity", "Task")
            -> records with "Id" and Salesforce API field names.
        hubspot_owners: the owners API shape.
        hubspot: object type ("contacts", "companies", "deals", "tasks", "notes") -> records
            ``{"id", "properties", "createdAt", "updatedAt", "archived"}``.
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
