"""The sandbox org in memory: records, users, tokens, query cursors, the deleted-record log.

Records are plain dicts keyed by canonical field name, indexed by id per
object; unique fields have a case-insensitive index. Writes go through
:meth:`Org.save` which validates every record like Salesforce's save pipeline,
stamps the audit fields (one timestamp per call, so records written together
share their ``SystemModstamp``) and can roll a whole call back (``allOrNone``).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_sandbox.ids import (
    KEY_PREFIXES,
    is_salesforce_id,
    object_for_id,
    salesforce_id,
    to_id18,
)
from crm_sandbox.salesforce.describe import (
    READ_ONLY_OBJECTS,
    SOBJECTS,
    STAGES,
    SObjectType,
    sobject,
)
from crm_sandbox.salesforce.errors import RecordError, SalesforceError
from crm_sandbox.salesforce.records import (
    check_reference,
    check_values,
    check_writable,
    derive,
    deserialize,
)
from crm_sandbox.salesforce.values import ValueProblem, coerce, format_datetime, truncate_ms

Record = dict[str, Any]
Clock = Callable[[], datetime]

ORG_ID = salesforce_id("00D", 1)
ADMIN_USERNAME = "admin@sandbox.example"
DEFAULT_PASSWORD = "sandbox"
SECURITY_TOKEN = "sandboxtoken"
QUEUE_USERNAME = "lead.intake@sandbox.example"
#: Objects whose new records get an owner (the running user) when none is given.
OWNED = frozenset({"Lead", "Contact", "Account", "Opportunity", "Task"})
#: How long the deleted-record log reaches back (``deleted/``).
DELETED_WINDOW = timedelta(days=15)
SEED_ORDER = (
    "User", "Account", "Contact", "Lead", "Opportunity", "OpportunityHistory", "OpportunityContactRole",
    "OpportunityLineItem", "Task",
)
#: Opportunity fields whose change writes an OpportunityHistory row (object reference, OpportunityHistory usage).
HISTORY_FIELDS = ("StageName", "Amount", "Probability", "CloseDate")
#: Objects ``merge()`` takes (Salesforce also merges Person Accounts, Individuals and Cases, which
#: the sandbox org does not have), and how many records one request merges into its master.
MERGEABLE = frozenset({"Lead", "Contact", "Account"})
MAX_RECORDS_TO_MERGE = 2
#: The Lead Status values marked "Converted" (the LeadStatus rows with IsConverted = true of a new org).
CONVERTED_LEAD_STATUSES = ("Closed - Converted",)
#: Days from the conversion to the new opportunity's CloseDate.
CONVERTED_CLOSE_DAYS = 30
#: What a conversion copies from the Lead: (lead field, account field, contact field, opportunity field).
CONVERT_FIELD_MAP = (
    ("Company", "Name", None, None),
    ("FirstName", None, "FirstName", None),
    ("LastName", None, "LastName", None),
    ("Title", None, "Title", None),
    ("Email", None, "Email", None),
    ("Phone", "Phone", "Phone", None),
    ("MobilePhone", None, "MobilePhone", None),
    ("Website", "Website", None, None),
    ("Industry", "Industry", None, None),
    ("NumberOfEmployees", "NumberOfEmployees", None, None),
    ("AnnualRevenue", "AnnualRevenue", None, None),
    ("LeadSource", "AccountSource", "LeadSource", "LeadSource"),
    ("Street", "BillingStreet", "MailingStreet", None),
    ("City", "BillingCity", "MailingCity", None),
    ("State", "BillingState", "MailingState", None),
    ("PostalCode", "BillingPostalCode", "MailingPostalCode", None),
    ("Country", "BillingCountry", "MailingCountry", None),
    ("HasOptedOutOfEmail", None, "HasOptedOutOfEmail", None),
    ("DoNotCall", None, "DoNotCall", None),
    ("Description", None, "Description", None),
)


def system_clock() -> datetime:
    """The real time (UTC)."""
    return datetime.now(UTC)


@dataclass
class Write:
    """One record write inside a call: create, update, upsert (by external id) or delete.

    Attributes:
        kind: ``create``, ``update``, ``upsert`` or ``delete``.
        obj: the sObject type.
        values: field values already deserialised (canonical names, stored types).
        record_id: the id of the record to update or delete.
        ext_field: the external id field of an upsert.
        ext_value: the external id value of an upsert.
        fail: a per-record error decided before the write (fault injection, bad input).
    """

    kind: str
    obj: SObjectType
    values: Record = field(default_factory=dict)
    record_id: str | None = None
    ext_field: str | None = None
    ext_value: str | None = None
    fail: RecordError | None = None


@dataclass
class SaveResult:
    """The outcome of one :class:`Write`."""

    id: str | None
    success: bool
    errors: list[dict[str, Any]]
    created: bool | None = None

    def as_json(self, with_created: bool = False) -> dict[str, Any]:
        """The save result as sObject Collections answer it.

        A record that never got an id (a failed or rolled back create) has no ``id`` key at all,
        as in the documented answer ``[{"success": false, "errors": [...]}]``
        (https://developer.salesforce.com/docs/atlas.en-us.212.0.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm).
        """
        out: dict[str, Any] = {"id": self.id} if self.id is not None else {}
        out.update(success=self.success, errors=self.errors)
        if with_created:
            out["created"] = bool(self.created)
        return out


@dataclass
class MergeResult:
    """The outcome of one merge request (the SOAP ``MergeResult``)."""

    id: str | None
    success: bool
    errors: list[dict[str, Any]]
    merged_record_ids: list[str] = field(default_factory=list)
    updated_related_ids: list[str] = field(default_factory=list)


@dataclass
class ConvertResult:
    """The outcome of one lead conversion (the SOAP ``LeadConvertResult``).

    Attributes:
        lead_id: the converted lead (None when the conversion failed).
        account_id: the new account, or the one the lead was converted into.
        contact_id: the new contact.
        opportunity_id: the new opportunity (None when none was asked for).
        success: whether the lead was converted.
        errors: ``{statusCode, message, fields}`` of a failed conversion.
        written: records created or changed (for the ledger).
    """

    lead_id: str | None
    account_id: str | None
    contact_id: str | None
    opportunity_id: str | None
    success: bool
    errors: list[dict[str, Any]]
    written: int = 0


@dataclass
class Token:
    """An access token: its user and when it expires."""

    user_id: str
    expires_at: datetime


@dataclass
class Cursor:
    """A query cursor (``nextRecordsUrl``): the result ids, fixed when the query ran."""

    obj: str
    ids: list[str]
    plan: Any
    batch: int
    expires_at: datetime
    include_deleted: bool


class Org:
    """The sandbox org.

    Args:
        clock: returns the current time; inject one for tests.
        token_ttl: lifetime of access tokens.
        cursor_ttl: lifetime of an idle query cursor.
    """

    def __init__(
        self,
        clock: Clock = system_clock,
        token_ttl: timedelta = timedelta(hours=2),
        cursor_ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        self.clock = clock
        self.token_ttl = token_ttl
        self.cursor_ttl = cursor_ttl
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {name: {} for name in SOBJECTS}
        self.unique: dict[tuple[str, str], dict[str, str]] = {
            (t.name, f.name): {} for t in SOBJECTS.values() for f in t.fields.values() if f.unique
        }
        #: Non-unique external id fields: lower-cased value -> ids.
        self.external: dict[tuple[str, str], dict[str, set[str]]] = {
            (t.name, f.name): {} for t in SOBJECTS.values() for f in t.fields.values() if f.external_id and not f.unique
        }
        self.counters: dict[str, int] = {}
        self.deleted_log: dict[str, list[tuple[str, str]]] = {name: [] for name in SOBJECTS}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.cursors: dict[str, Cursor] = {}
        self.passwords: dict[str, str] = {}
        #: External id values that several seeded records share (upsert answers 300).
        self.external_dups: dict[tuple[str, str, str], list[str]] = {}
        #: (record id, Sforce-Auto-Assign header) of every Lead created through the REST API.
        self.auto_assign_log: list[tuple[str, str | None]] = []
        #: Called after each committed call with (object name, changed records).
        self.listeners: list[Callable[[str, list[Record]], None]] = []
        self.admin_id = self._add_system_user("Sandbox", "Admin", ADMIN_USERNAME)
        self.queue_user_id = self._add_system_user("Lead", "Intake Queue", QUEUE_USERNAME)

    # ------------------------------------------------------------------ basics
    def now(self) -> datetime:
        """The org's current time at millisecond precision."""
        return truncate_ms(self.clock().astimezone(UTC))

    def new_id(self, obj: str) -> str:
        """A fresh id for ``obj``."""
        prefix = KEY_PREFIXES.get(obj, obj)
        while True:
            self.counters[prefix] = self.counters.get(prefix, 0) + 1
            candidate = salesforce_id(prefix, self.counters[prefix])
            if obj not in self.records or candidate not in self.records[obj]:
                return candidate

    def _add_system_user(self, first: str, last: str, username: str) -> str:
        stamp = format_datetime(self.now())
        user_id = self.new_id("User")
        self.records["User"][user_id] = {
            "Id": user_id, "Username": username, "FirstName": first, "LastName": last,
            "Name": f"{first} {last}", "Email": username, "Alias": (first[:1] + last[:4]).lower(),
            "IsActive": True, "TimeZoneSidKey": "America/Los_Angeles", "IsDeleted": False,
            "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
            "CreatedById": user_id, "LastModifiedById": user_id,
        }
        self.unique[("User", "Username")][username.lower()] = user_id
        self.passwords[username.lower()] = DEFAULT_PASSWORD
        return user_id

    def lookup(self, record_id: str | None) -> tuple[str, Record] | None:
        """Find any record by id (15 or 18 characters), deleted or not."""
        if not record_id or not isinstance(record_id, str):
            return None
        obj = object_for_id(record_id)
        if obj is None or obj not in self.records:
            return None
        rec = self.records[obj].get(record_id)
        if rec is None and len(record_id) == 15 and is_salesforce_id(record_id):
            rec = self.records[obj].get(to_id18(record_id))
        return None if rec is None else (obj, rec)

    def get(self, obj: str, record_id: str) -> Record | None:
        """The record ``record_id`` of ``obj`` (deleted ones included), or None."""
        found = self.lookup(record_id)
        return found[1] if found and found[0] == obj else None

    def find_by_external_id(self, obj: SObjectType, field_name: str, value: str) -> list[str]:
        """Ids of the live records whose external id ``field_name`` equals ``value`` (case-insensitive)."""
        dups = self.external_dups.get((obj.name, field_name, str(value).lower()))
        if dups:
            return [rid for rid in dups if not self.records[obj.name][rid].get("IsDeleted")]
        several = self.external.get((obj.name, field_name))
        if several is not None:
            return sorted(several.get(str(value).lower(), ()))
        index = self.unique.get((obj.name, field_name))
        if index is not None:
            found = index.get(str(value).lower())
            return [found] if found else []
        wanted = str(value).lower()
        return [
            rid for rid, rec in self.records[obj.name].items()
            if not rec.get("IsDeleted") and str(rec.get(field_name, "")).lower() == wanted
        ]

    # ------------------------------------------------------------------ users and tokens
    def user_by_username(self, username: str) -> Record | None:
        """The user with this username (case-insensitive), or None."""
        user_id = self.unique[("User", "Username")].get(username.lower())
        return self.records["User"].get(user_id) if user_id else None

    def check_password(self, username: str, password: str) -> Record | None:
        """The active user whose password (optionally followed by the security token) matches."""
        user = self.user_by_username(username)
        if user is None or not user.get("IsActive", True):
            return None
        expected = self.passwords.get(username.lower(), DEFAULT_PASSWORD)
        return user if password in (expected, expected + SECURITY_TOKEN) else None

    def issue_token(self, user_id: str, token: str) -> None:
        """Register an access token for ``user_id``."""
        self.tokens[token] = Token(user_id, self.now() + self.token_ttl)

    def user_for_token(self, token: str) -> str | None:
        """The user of a live token (None when unknown or expired)."""
        entry = self.tokens.get(token)
        if entry is None:
            return None
        if entry.expires_at <= self.now():
            del self.tokens[token]
            return None
        return entry.user_id

    # ------------------------------------------------------------------ writes
    def save(
        self,
        writes: list[Write],
        *,
        user_id: str,
        all_or_none: bool = False,
        auto_assign: str | None = "FALSE",
    ) -> list[SaveResult]:
        """Apply ``writes`` in order as one call (one timestamp), rolling back all on failure if asked.

        Args:
            writes: the record writes, in input order.
            user_id: the running user (CreatedById, LastModifiedById, default owner).
            all_or_none: roll every write back when one fails.
            auto_assign: the ``Sforce-Auto-Assign`` header (None when absent); unless it is
                FALSE, new Leads go to the default queue user (the org's assignment rule).
        """
        with self.lock:
            stamp = format_datetime(self.now())
            undo: list[Callable[[], None]] = []
            results: list[SaveResult] = []
            changed: list[tuple[str, str]] = []
            for write in writes:
                try:
                    if write.fail is not None:
                        raise write.fail
                    result = self._apply(write, stamp, user_id, auto_assign, undo)
                    results.append(result)
                    if write.kind != "delete" and result.id:
                        changed.append((write.obj.name, result.id))
                except RecordError as exc:
                    results.append(SaveResult(write.record_id, False, [exc.as_result()]))
            if all_or_none and any(not r.success for r in results):
                for step in reversed(undo):
                    step()
                rolled = []
                for write, result in zip(writes, results, strict=True):
                    if result.success:
                        rolled.append(SaveResult(result.id if write.kind in ("update", "delete") else None, False, [{
                            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                            "fields": [],
                        }]))
                    else:
                        rolled.append(result)
                return rolled
            self._notify(changed)
            return results

    def _notify(self, changed: list[tuple[str, str]]) -> None:
        if not self.listeners or not changed:
            return
        by_obj: dict[str, list[Record]] = {}
        for obj, rid in changed:
            rec = self.records[obj].get(rid)
            if rec is not None:
                by_obj.setdefault(obj, []).append(dict(rec))
        for obj, recs in by_obj.items():
            for listener in self.listeners:
                listener(obj, recs)

    def _index(self, obj: SObjectType, rec: Record, undo: list[Callable[[], None]], add: bool) -> None:
        for (obj_name, field_name), several in self.external.items():
            value = rec.get(field_name)
            if obj_name != obj.name or value is None or value == "":
                continue
            ids = several.setdefault(str(value).lower(), set())
            if add:
                ids.add(rec["Id"])
                undo.append(_discard(ids, rec["Id"]))
            elif rec["Id"] in ids:
                ids.discard(rec["Id"])
                undo.append(_add(ids, rec["Id"]))
        for (obj_name, field_name), index in self.unique.items():
            if obj_name != obj.name:
                continue
            value = rec.get(field_name)
            if value is None or value == "":
                continue
            key = str(value).lower()
            if add:
                index[key] = rec["Id"]
                undo.append(_forget(index, key))
            elif index.get(key) == rec["Id"]:
                del index[key]
                undo.append(_remember(index, key, rec["Id"]))

    def _check_unique(self, obj: SObjectType, values: Record, own_id: str | None) -> None:
        for name, value in values.items():
            index = self.unique.get((obj.name, name))
            if index is None or value is None or value == "":
                continue
            holder = index.get(str(value).lower())
            if holder is not None and holder != own_id:
                raise RecordError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {holder}",
                    [],
                )

    def _check_refs(self, obj: SObjectType, values: Record) -> None:
        for name, value in list(values.items()):
            if value is None or value == "":
                continue
            if obj.fields[name].type == "reference":
                values[name] = check_reference(obj, name, value, self.lookup)

    def _apply(
        self, write: Write, stamp: str, user_id: str, auto_assign: str | None, undo: list[Callable[[], None]]
    ) -> SaveResult:
        obj = write.obj
        if obj.name in READ_ONLY_OBJECTS:
            verb = {"create": "inserted", "upsert": "inserted", "update": "updated", "delete": "deleted"}[write.kind]
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be {verb}: {obj.label}", [])
        if write.kind == "upsert":
            assert write.ext_field is not None
            matches = self.find_by_external_id(obj, write.ext_field, str(write.ext_value))
            if len(matches) > 1:
                raise RecordError("DUPLICATE_EXTERNAL_ID", f"Provided external ID field value is duplicated in records: {', '.join(matches)}", [write.ext_field])
            values = dict(write.values)
            values.pop(write.ext_field, None)
            if matches:
                return self._apply(Write("update", obj, values, matches[0]), stamp, user_id, auto_assign, undo)
            values[write.ext_field] = coerce(obj.fields[write.ext_field], write.ext_value)
            return self._apply(Write("create", obj, values), stamp, user_id, auto_assign, undo)
        if write.kind == "create":
            return self._create(obj, write.values, stamp, user_id, auto_assign, undo)
        rec = self.records[obj.name].get(write.record_id or "")
        if rec is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if rec.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
        if obj.name == "Lead" and rec.get("IsConverted") and write.kind == "update":
            # Converted leads are read-only in Salesforce.
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        if write.kind == "delete":
            before = dict(rec)
            self._index(obj, rec, undo, add=False)
            rec.update(IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp, LastModifiedById=user_id)
            self.deleted_log[obj.name].append((rec["Id"], stamp))
            log = self.deleted_log[obj.name]

            def restore(rec: Record = rec, before: Record = before) -> None:
                rec.clear()
                rec.update(before)
                log.pop()

            undo.append(restore)
            return SaveResult(rec["Id"], True, [])
        values = dict(write.values)
        if values.get("Id") is not None and values.get("Id") in (rec["Id"], rec["Id"][:15]):
            values.pop("Id")
        check_writable(obj, values, creating=False)
        self._check_refs(obj, values)
        merged = {**rec, **values}
        check_values(obj, merged, values)
        self._check_unique(obj, values, rec["Id"])
        before = copy.copy(rec)
        self._index(obj, rec, undo, add=False)
        rec.update(values)
        if obj.name == "Lead" and auto_assign is not None and auto_assign.upper() == "TRUE":
            rec["OwnerId"] = self.queue_user_id
        derive(obj, rec, values)
        rec.update(LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=user_id)
        if obj.name == "Opportunity":
            if rec.get("StageName") != before.get("StageName"):
                rec["LastStageChangeDate"] = stamp
            if any(rec.get(name) != before.get(name) for name in HISTORY_FIELDS):
                self._add_history(rec, before, stamp, user_id, undo)
        self._index(obj, rec, undo, add=True)

        def restore_update(rec: Record = rec, before: Record = before) -> None:
            rec.clear()
            rec.update(before)

        undo.append(restore_update)
        return SaveResult(rec["Id"], True, [], created=False)

    def _create(
        self, obj: SObjectType, values: Record, stamp: str, user_id: str, auto_assign: str | None,
        undo: list[Callable[[], None]],
    ) -> SaveResult:
        values = dict(values)
        check_writable(obj, values, creating=True)
        self._check_refs(obj, values)
        rec: Record = {f.name: f.default for f in obj.fields.values() if f.default is not None and f.createable}
        rec.update({k: v for k, v in values.items() if v is not None or k not in rec})
        if obj.name in OWNED and not rec.get("OwnerId"):
            rec["OwnerId"] = user_id
        check_values(obj, rec, values)
        self._check_unique(obj, values, None)
        if obj.name == "Lead" and (auto_assign is None or auto_assign.upper() != "FALSE"):
            rec["OwnerId"] = self.queue_user_id
        new_id = self.new_id(obj.name)
        rec.update(
            Id=new_id, IsDeleted=False, CreatedDate=stamp, CreatedById=user_id,
            LastModifiedDate=stamp, LastModifiedById=user_id, SystemModstamp=stamp,
        )
        derive(obj, rec, values)
        table = self.records[obj.name]
        table[new_id] = rec
        if obj.name == "Lead":
            self.auto_assign_log.append((new_id, auto_assign))
        if obj.name == "OpportunityLineItem":
            parent = self.records["Opportunity"].get(rec["OpportunityId"], {})
            rec["Name"] = f"{parent.get('Name') or ''} {rec.get('Description') or 'Product'}".strip()
        self._index(obj, rec, undo, add=True)
        undo.append(_drop(table, new_id))
        if obj.name == "Opportunity":
            self._add_history(rec, {}, stamp, user_id, undo)
        return SaveResult(new_id, True, [], created=True)

    def _add_history(self, rec: Record, before: Record, stamp: str, user_id: str, undo: list[Callable[[], None]]) -> None:
        """Write the OpportunityHistory row of an opportunity just created or changed (fields as of now).

        ``PrevAmount``/``PrevCloseDate`` hold the values before the change (API 50.0+, null on create).
        """
        history_id = self.new_id("OpportunityHistory")
        amount, probability = rec.get("Amount"), rec.get("Probability")
        row: Record = {
            "Id": history_id, "OpportunityId": rec["Id"], "StageName": rec.get("StageName"),
            "Amount": amount, "CloseDate": rec.get("CloseDate"), "Probability": probability,
            "ExpectedRevenue": None if amount is None or probability is None else round(amount * probability / 100, 2),
            "ForecastCategory": rec.get("ForecastCategory"),
            "PrevAmount": before.get("Amount"), "PrevCloseDate": before.get("CloseDate"),
            "IsDeleted": False, "CreatedDate": stamp, "CreatedById": user_id, "SystemModstamp": stamp,
        }
        table = self.records["OpportunityHistory"]
        table[history_id] = row
        undo.append(_drop(table, history_id))

    # ------------------------------------------------------------------ merges
    def merge(self, obj: SObjectType, master_id: str, values: Record, loser_ids: list[str], *, user_id: str) -> MergeResult:
        """Merge up to two records into ``master_id`` as the SOAP ``merge()`` call does, in one transaction.

        The master takes ``values`` (as an update would); every record that points to a loser
        (``Task.WhoId``/``WhatId``, ``Contact.AccountId``, ``Opportunity.AccountId``,
        ``Account.ParentId``...) is re-parented to the master; the losers are deleted with
        ``MasterRecordId`` set to the master, so ``queryAll`` shows them and a REST read answers
        ``ENTITY_IS_DELETED``. Any failure rolls the whole request back.

        Args:
            obj: the masterRecord's type (one of :data:`MERGEABLE`).
            master_id: the master record's id.
            values: field values to set on the master (deserialised).
            loser_ids: the ``recordToMergeIds``.
            user_id: the running user.

        Returns:
            The result: success with ``merged_record_ids`` and ``updated_related_ids``, or the error
            (``INVALID_ID_FIELD``, ``INVALID_CROSS_REFERENCE_KEY``, ``ENTITY_IS_DELETED``,
            ``LIMIT_EXCEEDED``, ``CIRCULAR_DEPENDENCY``...).
        """
        with self.lock:
            stamp = format_datetime(self.now())
            undo: list[Callable[[], None]] = []
            changed: list[tuple[str, str]] = []
            try:
                result = self._merge(obj, master_id, values, loser_ids, stamp, user_id, undo, changed)
            except RecordError as exc:
                for step in reversed(undo):
                    step()
                return MergeResult(None, False, [exc.as_result()])
            self._notify(changed)
            return result

    def _merge_target(self, obj: SObjectType, record_id: str) -> Record:
        """The live record ``record_id`` of ``obj`` a merge may take (RecordError naming why not)."""
        if not is_salesforce_id(record_id) or object_for_id(record_id) != obj.name:
            raise RecordError("INVALID_ID_FIELD", f"Invalid id value for this SObject type ({obj.name}): {record_id}", [])
        rec = self.records[obj.name].get(to_id18(record_id))
        if rec is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}", [])
        if rec.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", f"entity is deleted: {record_id}", [])
        if obj.name == "Lead" and rec.get("IsConverted"):
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", f"cannot reference converted lead: {record_id}", [])
        return rec

    def _merge(
        self, obj: SObjectType, master_id: str, values: Record, loser_ids: list[str], stamp: str, user_id: str,
        undo: list[Callable[[], None]], changed: list[tuple[str, str]],
    ) -> MergeResult:
        if not loser_ids:
            raise RecordError("MISSING_ARGUMENT", "recordToMergeIds: a merge request needs at least one record to merge", [])
        if len(loser_ids) > MAX_RECORDS_TO_MERGE:
            raise RecordError(
                "LIMIT_EXCEEDED",
                f"a merge request merges at most {MAX_RECORDS_TO_MERGE} records into its master record, "
                f"got {len(loser_ids)}: {', '.join(loser_ids)}",
                [],
            )
        master = self._merge_target(obj, master_id)
        losers = [self._merge_target(obj, rid) for rid in loser_ids]
        ids = [master["Id"]] + [rec["Id"] for rec in losers]
        if len(set(ids)) != len(ids):
            raise RecordError("INVALID_ID_FIELD", f"a record appears twice in the merge request: {', '.join(loser_ids)} "
                              f"into {master_id}", [])
        self._apply(Write("update", obj, values, master["Id"]), stamp, user_id, "FALSE", undo)
        changed.append((obj.name, master["Id"]))
        related: list[str] = []
        for loser in losers:
            for other in SOBJECTS.values():
                names = [f.name for f in other.fields.values()
                         if f.type == "reference" and obj.name in f.reference_to and f.name != "MasterRecordId"]
                if not names:
                    continue
                for rec in self.records[other.name].values():
                    pointing = [name for name in names if rec.get(name) == loser["Id"]]
                    if not pointing or rec.get("IsDeleted") or rec["Id"] in ids[1:]:
                        continue
                    if rec["Id"] == master["Id"]:
                        raise RecordError("CIRCULAR_DEPENDENCY", f"merging {loser['Id']} into {master['Id']} would make "
                                          f"{master['Id']}.{pointing[0]} point to itself", pointing)
                    before = dict(rec)
                    undo.append(_restore(rec, before))
                    rec.update(dict.fromkeys(pointing, master["Id"]))
                    rec.update(LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=user_id)
                    related.append(rec["Id"])
                    changed.append((other.name, rec["Id"]))
            self._apply(Write("delete", obj, {}, loser["Id"]), stamp, user_id, "FALSE", undo)
            loser["MasterRecordId"] = master["Id"]  # the delete's undo restores the record as it was
        return MergeResult(master["Id"], True, [], [rec["Id"] for rec in losers], list(dict.fromkeys(related)))

    # ------------------------------------------------------------------ lead conversion
    def convert_lead(
        self, lead_id: str, converted_status: str, *, user_id: str, account_id: str | None = None,
        owner_id: str | None = None, opportunity_name: str | None = None, create_opportunity: bool = True,
        overwrite_lead_source: bool = False,
    ) -> ConvertResult:
        """Convert a lead as the SOAP ``convertLead()`` call does, in one transaction.

        Creates an Account named after the lead's Company (unless ``account_id`` names one), a
        Contact of it and, unless told not to, an Opportunity (``opportunity_name``, else the
        Company; the first open stage; CloseDate 30 days on; its OpportunityHistory row), all
        owned by ``owner_id`` (else the lead's owner), with the lead's values copied as the
        standard lead field mapping does. The lead becomes read-only: ``IsConverted``, ``Status``,
        ``ConvertedDate`` and ``Converted*Id`` set; its tasks move to the contact. Any failure
        rolls everything back.

        Args:
            lead_id: the lead (15 or 18 characters).
            converted_status: a Lead Status marked "Converted" (:data:`CONVERTED_LEAD_STATUSES`).
            user_id: the running user.
            account_id: an existing account to convert into (it is not changed).
            owner_id: the owner of the new records.
            opportunity_name: the new opportunity's name.
            create_opportunity: False for ``doNotCreateOpportunity``.
            overwrite_lead_source: accepted; it only matters when converting into an existing contact,
                which the sandbox does not do.

        Returns:
            The result: the ids, or the error (``INVALID_ID_FIELD``, ``INVALID_CROSS_REFERENCE_KEY``,
            ``ENTITY_IS_DELETED``, ``CANNOT_UPDATE_CONVERTED_LEAD``, ``INVALID_STATUS``, an owner's or
            a field's error...).
        """
        del overwrite_lead_source
        with self.lock:
            stamp = format_datetime(self.now())
            undo: list[Callable[[], None]] = []
            changed: list[tuple[str, str]] = []
            try:
                result = self._convert(lead_id, converted_status, account_id, owner_id, opportunity_name,
                                       create_opportunity, stamp, user_id, undo, changed)
            except RecordError as exc:
                for step in reversed(undo):
                    step()
                return ConvertResult(None, None, None, None, False, [exc.as_result()])
            self._notify(changed)
            return result

    def _convert(
        self, lead_id: str, converted_status: str, account_id: str | None, owner_id: str | None,
        opportunity_name: str | None, create_opportunity: bool, stamp: str, user_id: str,
        undo: list[Callable[[], None]], changed: list[tuple[str, str]],
    ) -> ConvertResult:
        lead = self._merge_target(SOBJECTS["Lead"], lead_id)  # unknown, deleted or converted: its error
        wanted = converted_status.strip().lower()
        status = next((s for s in CONVERTED_LEAD_STATUSES if s.lower() == wanted), None)
        if status is None:
            raise RecordError("INVALID_STATUS", f"invalid convertedStatus: {converted_status}", [])
        owner = owner_id or lead.get("OwnerId")
        copied: tuple[Record, Record, Record] = ({"OwnerId": owner}, {"OwnerId": owner}, {"OwnerId": owner})
        for source, *targets in CONVERT_FIELD_MAP:
            for values, target in zip(copied, targets, strict=True):
                if target is not None and lead.get(source) is not None:
                    values[target] = lead[source]
        account_values, contact_values, opportunity_values = copied
        if account_id:
            account = self._merge_target(SOBJECTS["Account"], account_id)["Id"]
        else:
            account = self._create(SOBJECTS["Account"], account_values, stamp, user_id, "FALSE", undo).id
            changed.append(("Account", str(account)))
        contact_values["AccountId"] = account
        contact = str(self._create(SOBJECTS["Contact"], contact_values, stamp, user_id, "FALSE", undo).id)
        changed.append(("Contact", contact))
        opportunity: str | None = None
        today = self.now().date()
        if create_opportunity:
            first_open = next(name for name, (_, _, closed, _) in STAGES.items() if not closed)
            opportunity_values.update(
                Name=(opportunity_name or "").strip() or lead.get("Company"), AccountId=account, StageName=first_open,
                CloseDate=(today + timedelta(days=CONVERTED_CLOSE_DAYS)).isoformat())
            opportunity = str(self._create(SOBJECTS["Opportunity"], opportunity_values, stamp, user_id, "FALSE",
                                           undo).id)
            changed.append(("Opportunity", opportunity))
        undo.append(_restore(lead, dict(lead)))
        lead.update(
            IsConverted=True, Status=status, ConvertedDate=today.isoformat(), ConvertedAccountId=account,
            ConvertedContactId=contact, ConvertedOpportunityId=opportunity,
            LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=user_id)
        changed.append(("Lead", lead["Id"]))
        for task in self.records["Task"].values():
            if task.get("WhoId") == lead["Id"] and not task.get("IsDeleted"):
                undo.append(_restore(task, dict(task)))
                task.update(WhoId=contact, LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=user_id)
                changed.append(("Task", task["Id"]))
        return ConvertResult(lead["Id"], account, contact, opportunity, True, [], written=len(changed))

    # ------------------------------------------------------------------ reads
    def live(self, obj: str, include_deleted: bool = False) -> Iterator[Record]:
        """Records of ``obj`` in creation order (deleted ones only when asked)."""
        for rec in self.records[obj].values():
            if include_deleted or not rec.get("IsDeleted"):
                yield rec

    def add_cursor(self, cursor: Cursor) -> str:
        """Keep a query cursor; returns its locator id (``01g...``)."""
        locator = self.new_id("01g")
        self.cursors[locator] = cursor
        if len(self.cursors) > 2000:  # the oldest cursors die first
            for old in list(self.cursors)[: len(self.cursors) - 2000]:
                del self.cursors[old]
        return locator

    def cursor(self, locator: str) -> Cursor | None:
        """A live cursor (None when unknown or expired)."""
        cursor = self.cursors.get(locator)
        if cursor is None:
            return None
        now = self.now()
        if cursor.expires_at <= now:
            del self.cursors[locator]
            return None
        cursor.expires_at = now + self.cursor_ttl
        return cursor

    # ------------------------------------------------------------------ seed and persistence
    def load_records(self, obj_name: str, records: list[Record]) -> None:
        """Insert records as they are (ids and audit fields kept); ValueError names a bad field."""
        obj = sobject(obj_name)
        if obj is None:
            raise ValueError(f"seed: unknown sObject type {obj_name!r} (known: {', '.join(SOBJECTS)})")
        stamp = format_datetime(self.now())
        with self.lock:
            for index, raw in enumerate(records):
                rec: Record = {}
                for key, value in raw.items():
                    if key == "attributes":
                        continue
                    field_def = obj.field(key)
                    if field_def is None:
                        raise ValueError(f"seed: {obj.name}[{index}] has unknown field {key!r}")
                    try:
                        rec[field_def.name] = coerce(field_def, value)
                    except ValueProblem as exc:
                        raise ValueError(f"seed: {obj.name}[{index}].{key}: {exc}") from None
                record_id = rec.get("Id")
                if not record_id or not is_salesforce_id(record_id):
                    record_id = self.new_id(obj.name)
                record_id = to_id18(record_id)
                for name, default in ((f.name, f.default) for f in obj.fields.values()):
                    if default is not None and name not in rec:
                        rec[name] = default
                rec["Id"] = record_id
                rec.setdefault("IsDeleted", False)
                rec.setdefault("CreatedDate", stamp)
                if "LastModifiedDate" in obj.fields:
                    rec.setdefault("LastModifiedDate", rec["CreatedDate"])
                rec.setdefault("SystemModstamp", rec.get("LastModifiedDate", rec["CreatedDate"]))
                rec.setdefault("CreatedById", self.admin_id)
                if "LastModifiedById" in obj.fields:
                    rec.setdefault("LastModifiedById", rec["CreatedById"])
                if obj.name in OWNED:
                    rec.setdefault("OwnerId", self.admin_id)
                derive(obj, rec, {})
                if obj.name in ("Lead", "Contact", "User") and raw.get("Name") and not rec.get("Name"):
                    rec["Name"] = raw["Name"]
                self.records[obj.name][record_id] = rec
                for (obj_name, field_name), unique_index in self.unique.items():
                    value = rec.get(field_name)
                    if obj_name == obj.name and value and str(value).lower() in unique_index:
                        dup_key = (obj.name, field_name, str(value).lower())
                        self.external_dups.setdefault(dup_key, [unique_index[str(value).lower()]]).append(record_id)
                if not rec.get("IsDeleted"):
                    self._index(obj, rec, [], add=True)
                if rec.get("IsDeleted"):
                    self.deleted_log[obj.name].append((record_id, rec["SystemModstamp"]))
                if obj.name == "User" and rec.get("Username"):
                    self.passwords.setdefault(str(rec["Username"]).lower(), DEFAULT_PASSWORD)

    def load_seed(self, seed_data: Any) -> None:
        """Load a ``SeedData`` (its ``salesforce`` mapping of object name to records)."""
        data: dict[str, list[Record]] = getattr(seed_data, "salesforce", seed_data)
        names = sorted(data, key=lambda n: SEED_ORDER.index(n) if n in SEED_ORDER else len(SEED_ORDER))
        for name in names:
            self.load_records(name, data[name])

    def dump(self) -> dict[str, Any]:
        """Everything needed to restore the org (JSON-able)."""
        with self.lock:
            return {
                "records": self.records,
                "counters": self.counters,
                "deleted_log": self.deleted_log,
                "passwords": self.passwords,
            }

    def restore(self, data: dict[str, Any]) -> None:
        """Restore a :meth:`dump`."""
        with self.lock:
            self.records = {name: dict(data["records"].get(name, {})) for name in SOBJECTS}
            self.counters = dict(data.get("counters", {}))
            self.deleted_log = {name: [tuple(x) for x in data.get("deleted_log", {}).get(name, [])] for name in SOBJECTS}
            self.passwords.update(data.get("passwords", {}))
            for index in self.unique.values():
                index.clear()
            for several in self.external.values():
                several.clear()
            for obj in SOBJECTS.values():
                for rec in self.records[obj.name].values():
                    if not rec.get("IsDeleted"):
                        self._index(obj, rec, [], add=True)
            admin = self.user_by_username(ADMIN_USERNAME)
            queue = self.user_by_username(QUEUE_USERNAME)
            if admin:
                self.admin_id = admin["Id"]
            if queue:
                self.queue_user_id = queue["Id"]

    def save_file(self, path: Path) -> None:
        """Write the org to ``path`` as JSON."""
        path.write_text(json.dumps(self.dump()))

    def load_file(self, path: Path) -> None:
        """Read the org from ``path`` (written by :meth:`save_file`)."""
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read sandbox state file {path}: {exc}") from exc
        self.restore(data)


def _forget(index: dict[str, str], key: str) -> Callable[[], None]:
    def undo() -> None:
        index.pop(key, None)

    return undo


def _remember(index: dict[str, str], key: str, record_id: str) -> Callable[[], None]:
    def undo() -> None:
        index[key] = record_id

    return undo


def _discard(ids: set[str], record_id: str) -> Callable[[], None]:
    def undo() -> None:
        ids.discard(record_id)

    return undo


def _add(ids: set[str], record_id: str) -> Callable[[], None]:
    def undo() -> None:
        ids.add(record_id)

    return undo


def _restore(rec: Record, before: Record) -> Callable[[], None]:
    def undo() -> None:
        rec.clear()
        rec.update(before)

    return undo


def _drop(table: dict[str, Record], record_id: str) -> Callable[[], None]:
    def undo() -> None:
        table.pop(record_id, None)

    return undo


def deserialize_write(obj: SObjectType, body: Any) -> Record:
    """Deserialise a record body (request-level errors as :class:`SalesforceError`)."""
    return deserialize(obj, body)


__all__ = ["MERGEABLE", "ConvertResult", "Cursor", "MergeResult", "Org", "SalesforceError", "SaveResult", "Write"]
