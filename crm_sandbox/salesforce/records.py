"""Record writes as Salesforce's save pipeline does them: deserialise, validate, stamp, store.

Two kinds of problems, as in the real API:

* deserialisation problems (an unknown field, a value of the wrong JSON type)
  refuse the whole request: :class:`~crm_sandbox.salesforce.errors.SalesforceError`;
* DML problems (a required field missing, a bad email, a duplicate external id,
  an inactive owner...) fail one record: :class:`~crm_sandbox.salesforce.errors.RecordError`,
  reported per record by sObject Collections and Bulk API 2.0.
"""

from __future__ import annotations

import re
from typing import Any

from crm_sandbox.ids import is_salesforce_id, object_for_id, to_id18
from crm_sandbox.salesforce.describe import STAGES, TEXT_TYPES, SObjectType
from crm_sandbox.salesforce.errors import RecordError, SalesforceError, bad_request
from crm_sandbox.salesforce.values import ValueProblem, coerce

Record = dict[str, Any]

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_NAMED = ("Lead", "Contact", "User")


def deserialize(obj: SObjectType, body: Any, *, ignore: tuple[str, ...] = ("attributes",)) -> Record:
    """Turn a JSON record a client sent into field values (canonical names, stored types).

    Raises:
        SalesforceError: 400 JSON_PARSER_ERROR or INVALID_FIELD for the whole request.
    """
    if not isinstance(body, dict):
        kind = "START_ARRAY" if isinstance(body, list) else "VALUE_STRING" if isinstance(body, str) else "VALUE_NUMBER_INT"
        raise bad_request("JSON_PARSER_ERROR", f"Cannot deserialize instance of {obj.name} from {kind} value")
    values: Record = {}
    for key, value in body.items():
        if key in ignore:
            continue
        field = obj.field(key) if isinstance(key, str) else None
        if field is None:
            raise bad_request("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
        try:
            values[field.name] = coerce(field, value)
        except ValueProblem as exc:
            raise bad_request("JSON_PARSER_ERROR", str(exc)) from None
    return values


def check_writable(obj: SObjectType, values: Record, *, creating: bool) -> None:
    """Refuse read-only fields (INVALID_FIELD_FOR_INSERT_UPDATE)."""
    bad = [
        name
        for name in values
        if not (obj.fields[name].createable if creating else obj.fields[name].updateable)
    ]
    if bad:
        raise RecordError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(bad)}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            bad,
        )


def check_values(obj: SObjectType, merged: Record, changed: Record) -> None:
    """Required fields, lengths and email formats of a record about to be saved."""
    missing = [
        f.name
        for f in obj.fields.values()
        if f.required and (merged.get(f.name) is None or merged.get(f.name) == "")
    ]
    if missing:
        raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    for name, value in changed.items():
        field = obj.fields[name]
        if value is None:
            if not field.nillable and field.createable and field.type != "boolean":
                raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name])
            continue
        if field.type in TEXT_TYPES and field.length and len(value) > field.length:
            shown = value if len(value) <= 64 else value[:64] + "(truncated)"
            raise RecordError(
                "STRING_TOO_LONG",
                f"{field.label}: data value too large: {shown} (max length={field.length})",
                [name],
            )
        if field.type == "email" and not _EMAIL_RE.match(value):
            raise RecordError("INVALID_EMAIL_ADDRESS", f"{field.label}: invalid email address: {value}", [name])


def check_reference(obj: SObjectType, name: str, value: str, lookup: Any) -> str:
    """Normalise a reference field's id and check what it points to; returns the 18-character id."""
    field = obj.fields[name]
    if not is_salesforce_id(value):
        raise RecordError("MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [name])
    ref = to_id18(value)
    target_type = object_for_id(ref)
    if target_type not in field.reference_to:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", f"{field.label}: id value of incorrect type: {value}", [name])
    found = lookup(ref)
    if found is None or found[1].get("IsDeleted"):
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
    if name == "OwnerId" and target_type == "User" and not found[1].get("IsActive", True):
        raise RecordError(
            "INACTIVE_OWNER_OR_USER",
            f"operation performed with inactive user [{ref}] as owner of {obj.label.lower()}",
            [],
        )
    return ref


def derive(obj: SObjectType, rec: Record, changed: Record) -> None:
    """Compute the fields Salesforce derives: Name, IsClosed, IsWon, Probability..."""
    if obj.name in _NAMED and ("FirstName" in changed or "LastName" in changed or "Name" not in rec):
        rec["Name"] = " ".join(part for part in (rec.get("FirstName"), rec.get("LastName")) if part) or None
    if obj.name == "OpportunityLineItem":
        quantity, price = rec.get("Quantity"), rec.get("UnitPrice")
        if quantity is not None and price is not None:
            rec["TotalPrice"] = round(quantity * price * (1 - (rec.get("Discount") or 0) / 100), 2)
        rec.setdefault("ListPrice", price)
    if obj.name == "Task":
        rec["IsClosed"] = rec.get("Status") in ("Completed",)
        rec["IsHighPriority"] = rec.get("Priority") == "High"
    if obj.name == "Opportunity" and ("StageName" in changed or "IsClosed" not in rec):
        stage = rec.get("StageName") or ""
        probability, forecast, closed, won = STAGES.get(
            stage, (None, "Pipeline", stage.lower().startswith("closed"), stage.lower() == "closed won")
        )
        rec["IsClosed"] = closed
        rec["IsWon"] = won
        rec["ForecastCategory"] = {"Commit": "Forecast", "Best Case": "BestCase"}.get(forecast, forecast)
        if "ForecastCategoryName" not in changed:
            rec["ForecastCategoryName"] = forecast
        if "Probability" not in changed and probability is not None:
            rec["Probability"] = float(probability)


def save_error(exc: SalesforceError) -> RecordError:
    """A request-level error reported as a per-record error (for collections and Bulk rows)."""
    return RecordError(exc.error_code, exc.message, exc.fields or [])
