"""CRM records to the decision core's canonical models, through the field mappings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from connector.config.canonical import VOLATILE_FIELDS
from connector.config.mappings import ObjectMapping
from connector.core.governance.models import Deal
from connector.core.models import Account, Owner, Person, RecordRef
from connector.mapping.engine import MappingProblem, RecordMeta, record_meta, to_canonical


@dataclass
class MappedRecord:
    """One CRM record read through its mapping.

    Attributes:
        meta: Id, last-modified time and deleted flag.
        canonical: Canonical values (what the store keeps as the snapshot).
        problems: Fields that could not be read (their value is left out).
        model: The core model, or None when the record cannot be one (see ``error``).
        error: Why the record cannot be decided (it is quarantined with this reason).
    """

    meta: RecordMeta
    canonical: dict[str, Any]
    problems: list[MappingProblem] = field(default_factory=list)
    model: Person | Account | Owner | Deal | None = None
    error: str | None = None


def _json_ready(canonical: dict[str, Any]) -> dict[str, Any]:
    """The snapshot of a record: JSON-ready values, without the fields every write changes."""
    out: dict[str, Any] = {}
    for key, value in canonical.items():
        if key not in VOLATILE_FIELDS:
            out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def holds_values(mapping: ObjectMapping, snapshot: Mapping[str, Any], crm_values: Mapping[str, Any]) -> bool:
    """Whether a stored snapshot already holds these CRM values (a change a CRM pushed that tells nothing new).

    Fields the mapping does not read tell Relay nothing and count as held; a value that cannot
    be read does not (the record is read and the problem reported the usual way).
    """
    canonical, problems = to_canonical(mapping, crm_values)
    if problems:
        return False
    return all(snapshot.get(name) == value for name, value in _json_ready(canonical).items())


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg')} (got {error.get('input')!r})")
    return "; ".join(parts)


def map_record(connection: str, mapping: ObjectMapping, crm_record: dict[str, Any]) -> MappedRecord:
    """Read one CRM record into a canonical model; never raises for bad data."""
    meta = record_meta(mapping, crm_record)
    canonical, problems = to_canonical(mapping, crm_record)
    mapped = MappedRecord(meta=meta, canonical=_json_ready(canonical), problems=problems)
    if not meta.record_id:
        mapped.error = f"{mapping.name} record has no {mapping.id_field}"
        return mapped
    ref = RecordRef(connection=connection, object=mapping.name, crm_id=meta.record_id)
    try:
        if mapping.entity == "person":
            mapped.model = Person(kind=_person_kind(mapping), ref=ref, **canonical)
        elif mapping.entity == "account":
            mapped.model = Account(ref=ref, **canonical)
        elif mapping.entity == "deal":
            mapped.model = deal_model(ref, canonical)
        elif mapping.entity == "owner":
            values = {k: v for k, v in canonical.items() if k != "id"}
            mapped.model = Owner(id=meta.record_id, connection=connection, **values)
        else:
            mapped.error = f"{mapping.name} maps to {mapping.entity!r}, which Relay does not read"
    except ValidationError as exc:
        mapped.error = f"{mapping.name} {meta.record_id}: {_validation_reason(exc)}"
    return mapped


_DEAL_FIELDS = frozenset(Deal.model_fields) - {"ref", "criteria", "qualification", "approvals", "owner_email"}


def deal_model(ref: RecordRef, canonical: Mapping[str, Any], owner_email: str | None = None) -> Deal:
    """A deal from its canonical values: the deal's own fields, every other one a criterion.

    Raises:
        ValidationError: a value does not fit (the record is quarantined with the reason).
    """
    own = {k: v for k, v in canonical.items() if k in _DEAL_FIELDS}
    criteria = {k: v for k, v in canonical.items() if k not in _DEAL_FIELDS}
    return Deal(ref=ref, owner_email=owner_email, criteria=criteria, **own)


def _person_kind(mapping: ObjectMapping) -> Literal["lead", "contact"]:
    return mapping.people_are  # the mapping file's person_kind, else the CRM unit's default


def person_from_snapshot(
    connection: str, mapping: ObjectMapping, crm_id: str, canonical: dict[str, Any], seen_at: datetime
) -> MappedRecord:
    """A person record rebuilt from its stored snapshot, as if read again (``model`` None when it no longer fits)."""
    mapped = MappedRecord(meta=RecordMeta(record_id=crm_id, modified_at=seen_at, deleted=False),
                          canonical=dict(canonical))
    ref = RecordRef(connection=connection, object=mapping.name, crm_id=crm_id)
    try:
        mapped.model = Person(kind=_person_kind(mapping), ref=ref, **canonical)
    except ValidationError as exc:
        mapped.error = f"{mapping.name} {crm_id}: stored snapshot: {_validation_reason(exc)}"
    return mapped


def account_from_snapshot(connection: str, object_name: str, crm_id: str, canonical: dict[str, Any]) -> Account | None:
    """Rebuild an account from its stored snapshot (None when the snapshot no longer fits)."""
    try:
        return Account(ref=RecordRef(connection=connection, object=object_name, crm_id=crm_id), **canonical)
    except ValidationError:
        return None
