"""Builders for the decision core tests: the shipped rules and records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from connector.core.models import Account, Owner, Person, RecordRef
from connector.core.rules import RoutingRules, Rules, ScoringRules, SlaPolicy

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEAM = "northwind.example"


def load_yaml(name: str) -> dict[str, Any]:
    data = yaml.safe_load((RULES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def shipped_rules() -> Rules:
    return Rules(
        scoring=ScoringRules.model_validate(load_yaml("scoring")),
        routing=RoutingRules.model_validate(load_yaml("routing")),
        sla=SlaPolicy.model_validate(load_yaml("sla")),
    )


def team(local: str) -> str:
    return f"{local}@{TEAM}"


def ref(crm_id: str | int, connection: str = "salesforce", obj: str = "Lead") -> RecordRef:
    return RecordRef(connection=connection, object=obj, crm_id=str(crm_id))


def lead(crm_id: str | int = 1, **fields: Any) -> Person:
    """A complete, valid lead; override any field."""
    base: dict[str, Any] = {
        "first_name": "Jane", "last_name": "Doe", "email": f"jane{crm_id}@acme.example",
        "company": "Acme", "title": "Analyst", "country": "US",
    }
    base.update(fields)
    connection = base.pop("connection", "salesforce")
    obj = base.pop("object", "Lead")
    kind = base.pop("kind", "lead")
    return Person(kind=kind, ref=ref(crm_id, connection, obj), **base)


def account(crm_id: str, domain: str | None, owner_id: str | None = None,
            connection: str = "salesforce", **fields: Any) -> Account:
    return Account(ref=ref(crm_id, connection, "Account"), domain=domain, owner_id=owner_id,
                   **fields)


def owner(crm_id: str, local: str, active: bool = True, connection: str = "salesforce") -> Owner:
    return Owner(id=crm_id, email=team(local), active=active, connection=connection)
