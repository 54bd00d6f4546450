"""The sandbox portal's data: records, associations, owners and property definitions.

Plain dicts indexed by id, one sorted id list per object type for paging, and
unique-value indexes (contact email, ``hasUniqueValue`` properties). Every
change made through the API is announced to the listeners (the webhook
dispatcher) as a :class:`Change`.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot.associations import AssociationStore
from crm_sandbox.hubspot.owners import default_owners
from crm_sandbox.hubspot.properties import (
    ALWAYS,
    BUILTIN_GROUPS,
    DEFAULT_PROPERTIES,
    MAINTAINED,
    STANDARD_TYPES,
    PropertyDefinition,
    builtin_definitions,
    format_ms,
    normalise_value,
    to_text,
)
from crm_sandbox.hubspot.subscriptions import (
    NOT_SUBSCRIBED,
    SUBSCRIBED,
    SUBSCRIPTION_TYPES,
    SubscriptionType,
    status_json,
)

#: object type -> (object type id, singular name)
OBJECT_TYPES: dict[str, tuple[str, str]] = {
    "contacts": ("0-1", "contact"),
    "companies": ("0-2", "company"),
    "deals": ("0-3", "deal"),
    "tasks": ("0-27", "task"),
    "notes": ("0-46", "note"),
    **{plural: (spec.type_id, spec.singular) for plural, spec in STANDARD_TYPES.items()},
}
_ALIASES: dict[str, str] = {}
for _plural, (_type_id, _singular) in OBJECT_TYPES.items():
    _ALIASES[_plural] = _ALIASES[_type_id] = _ALIASES[_singular] = _plural

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CREATED = {
    "tasks": "hs_createdate",
    "notes": "hs_createdate",
    **{plural: spec.created for plural, spec in STANDARD_TYPES.items() if spec.created == "hs_createdate"},
}


def resolve_type(name: str) -> str:
    """The plural object type for a name, singular name or type id (``0-1``); 400 if unknown."""
    found = _ALIASES.get(name.lower())
    if found is None:
        raise errors.validation_error(f"Unable to infer object type from: {name}")
    return found


def created_property(object_type: str) -> str:
    """The name of the creation-date property of an object type."""
    return _CREATED.get(object_type, "createdate")


@dataclass(frozen=True)
class Change:
    """One change made through the API, for webhooks.

    Attributes:
        kind: creation, propertyChange, deletion or merge.
        object_type: plural object type.
        object_id: the record id.
        occurred_at: ms since the epoch.
        property_name: changed property (propertyChange).
        property_value: its new value (propertyChange).
        merged_ids: ids merged into ``object_id`` (merge).
    """

    kind: str
    object_type: str
    object_id: int
    occurred_at: int
    property_name: str | None = None
    property_value: str | None = None
    merged_ids: tuple[int, ...] = ()


class HubSpotState:
    """The portal's data, safe to use from several threads.

    Args:
        portal_id: the portal (hub) id, echoed in errors and webhooks.
        clock: returns ms since the epoch (injectable for tests).
        app_id: the id of the app whose token writes through the API: the ``sourceId`` of the
            history entries those writes leave (see :meth:`property_history`).
    """

    def __init__(self, portal_id: int = 62515, clock: Callable[[], int] | None = None, app_id: int = 1_234_567) -> None:
        self.portal_id = portal_id
        self.app_id = app_id
        self.clock: Callable[[], int] = clock or (lambda: int(time.time() * 1000))
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in OBJECT_TYPES}
        self.active_ids: dict[str, list[int]] = {t: [] for t in OBJECT_TYPES}
        self.archived_ids: dict[str, list[int]] = {t: [] for t in OBJECT_TYPES}
        self.definitions: dict[str, dict[str, PropertyDefinition]] = builtin_definitions()
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            t: {name: {"name": name, "label": label, "displayOrder": -1, "archived": False} for name, label in groups}
            for t, groups in BUILTIN_GROUPS.items()
        }
        self.associations = AssociationStore()
        self.owners: dict[str, dict[str, Any]] = {}
        self.unique: dict[str, dict[str, dict[str, str]]] = {t: {} for t in OBJECT_TYPES}
        self.merged_into: dict[str, dict[str, str]] = {t: {} for t in OBJECT_TYPES}
        #: object type -> record id -> property -> history entries, newest first (see :meth:`property_history`).
        self.history: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {t: {} for t in OBJECT_TYPES}
        #: email address -> subscription type id -> {status, legalBasis?, legalBasisExplanation?} (see
        #: :meth:`set_subscription`); a contact shows each NOT_SUBSCRIBED as ``hs_email_optout_<id>``.
        self.subscriptions: dict[str, dict[str, dict[str, Any]]] = {}
        self.next_id = 1
        self.version = 0
        self.listeners: list[Callable[[Change], None]] = []
        self.set_owners(default_owners())

    # -- owners -----------------------------------------------------------------------------

    def set_owners(self, owners: Iterable[dict[str, Any]]) -> None:
        """Replace the owners (API shape: id, email, firstName, lastName, userId, archived...)."""
        with self.lock:
            self.owners = {}
            for owner in owners:
                self.owners[str(owner["id"])] = dict(owner)

    def owner_ids(self) -> set[str]:
        """Ids of the owners records may be assigned to (active ones)."""
        return {oid for oid, owner in self.owners.items() if not owner.get("archived")}

    # -- ids ------------------------------------------------------------------------------

    def _new_id(self) -> str:
        value = self.next_id
        self.next_id += 1
        return str(value)

    def _emit(self, change: Change) -> None:
        for listener in list(self.listeners):
            listener(change)

    # -- seed and persistence ---------------------------------------------------------------

    def load_seed(self, seed_data: Any) -> None:
        """Load a ``SeedData`` (its ``hubspot``, ``hubspot_owners`` and ``hubspot_associations``).

        Records keep their ids; later creations get ids above the highest one.
        """
        with self.lock:
            owners = getattr(seed_data, "hubspot_owners", None)
            if owners:
                self.set_owners(owners)
            for object_type, records in (getattr(seed_data, "hubspot", None) or {}).items():
                plural = resolve_type(object_type)
                for record in records:
                    self._store_loaded(plural, record)
            for item in getattr(seed_data, "hubspot_associations", None) or []:
                from_type, from_id, to_type, to_id, type_id = item
                self.associations.add(resolve_type(from_type), int(from_id), resolve_type(to_type), int(to_id), int(type_id))
            self._reindex()
            self._statuses_of_contacts()

    def _statuses_of_contacts(self) -> None:
        """The NOT_SUBSCRIBED statuses the live contacts' ``hs_email_optout_<id>`` properties show."""
        for record in self.records["contacts"].values():
            email = record["properties"].get("email")
            if record["archived"] or not email:
                continue
            for kind in SUBSCRIPTION_TYPES:
                if record["properties"].get(kind.property_name) == "true":
                    self.subscriptions.setdefault(email.lower(), {}).setdefault(kind.id, {"status": NOT_SUBSCRIBED})

    def _store_loaded(self, object_type: str, record: dict[str, Any]) -> None:
        rid = str(record["id"])
        defined = self.definitions[object_type]
        raw = dict(record.get("properties") or {})
        if object_type in _CREATED and "createdate" in raw and "hs_createdate" not in raw:
            raw["hs_createdate"] = raw["createdate"]
        properties = {k: to_text(v) for k, v in raw.items() if k in defined}
        created = record.get("createdAt") or properties.get(created_property(object_type)) or format_ms(self.clock())
        updated = record.get("updatedAt") or properties.get("hs_lastmodifieddate") or created
        properties["hs_object_id"] = rid
        properties.setdefault(created_property(object_type), created)
        properties.setdefault("hs_lastmodifieddate", updated)
        if object_type == "contacts":
            properties.setdefault("lastmodifieddate", updated)
            if properties.get("email"):
                properties["email"] = str(properties["email"]).lower()
        stored: dict[str, Any] = {
            "id": rid,
            "properties": properties,
            "createdAt": created,
            "updatedAt": updated,
            "archived": bool(record.get("archived", False)),
        }
        if stored["archived"]:
            stored["archivedAt"] = record.get("archivedAt") or updated
        self.records[object_type][rid] = stored
        seeded_history = record.get("propertiesWithHistory") or {}
        if seeded_history:
            self.history[object_type][rid] = {
                name: sorted((dict(e) for e in entries), key=lambda e: str(e["timestamp"]), reverse=True)
                for name, entries in seeded_history.items()
                if name in defined
            }

    def _reindex(self) -> None:
        highest = self.next_id - 1
        for object_type, records in self.records.items():
            active = []
            archived = []
            self.unique[object_type] = {}
            for rid, record in records.items():
                number = int(rid)
                highest = max(highest, number)
                if record["archived"]:
                    archived.append(number)
                else:
                    active.append(number)
                    self._index_unique(object_type, record)
            active.sort()
            archived.sort()
            self.active_ids[object_type] = active
            self.archived_ids[object_type] = archived
        self.next_id = highest + 1
        self.version += 1

    def unique_names(self, object_type: str) -> list[str]:
        """Properties whose values identify one record (contact email and ``hasUniqueValue`` ones)."""
        names = [d.name for d in self.definitions[object_type].values() if d.has_unique_value]
        if object_type == "contacts":
            names.append("email")
        return names

    def _index_unique(self, object_type: str, record: dict[str, Any]) -> None:
        for name in self.unique_names(object_type):
            value = record["properties"].get(name)
            if value:
                self.unique[object_type].setdefault(name, {})[value.lower()] = record["id"]

    def _unindex_unique(self, object_type: str, record: dict[str, Any]) -> None:
        for name in self.unique_names(object_type):
            value = record["properties"].get(name)
            index = self.unique[object_type].get(name, {})
            if value and index.get(value.lower()) == record["id"]:
                del index[value.lower()]

    def to_json(self) -> dict[str, Any]:
        """Everything needed to restore the portal (for ``state_file``)."""
        with self.lock:
            custom = {
                t: [self._definition_json(d) for d in defs.values() if not d.hubspot_defined]
                for t, defs in self.definitions.items()
            }
            return {
                "portal_id": self.portal_id,
                "next_id": self.next_id,
                "records": {t: list(records.values()) for t, records in self.records.items()},
                "owners": list(self.owners.values()),
                "associations": self.associations.to_json(),
                "custom_properties": custom,
                "groups": {t: list(groups.values()) for t, groups in self.groups.items()},
                "merged_into": self.merged_into,
                "history": self.history,
                "subscriptions": self.subscriptions,
            }

    @staticmethod
    def _definition_json(definition: PropertyDefinition) -> dict[str, Any]:
        return {
            "name": definition.name,
            "label": definition.label,
            "type": definition.type,
            "field_type": definition.field_type,
            "group_name": definition.group_name,
            "options": [list(o) for o in definition.options],
            "description": definition.description,
            "has_unique_value": definition.has_unique_value,
            "created_at": definition.created_at,
            "updated_at": definition.updated_at,
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """Restore what :meth:`to_json` saved."""
        with self.lock:
            self.next_id = int(data.get("next_id", 1))
            for object_type, defs in data.get("custom_properties", {}).items():
                for item in defs:
                    item = dict(item)
                    item["options"] = [tuple(o) for o in item.get("options", [])]
                    self.definitions[object_type][item["name"]] = PropertyDefinition(hubspot_defined=False, **item)
            for object_type, groups in data.get("groups", {}).items():
                self.groups[object_type] = {g["name"]: g for g in groups}
            self.set_owners(data.get("owners", []))
            for object_type, records in data.get("records", {}).items():
                self.records[object_type] = {str(r["id"]): r for r in records}
            self.associations.load_json(data.get("associations", []))
            self.merged_into = {t: dict(v) for t, v in data.get("merged_into", {}).items()}
            for object_type in OBJECT_TYPES:
                self.merged_into.setdefault(object_type, {})
            saved_history = data.get("history", {})
            self.history = {t: {rid: dict(props) for rid, props in saved_history.get(t, {}).items()} for t in OBJECT_TYPES}
            self._reindex()
            self.subscriptions = {email: {k: dict(v) for k, v in kinds.items()}
                                  for email, kinds in data.get("subscriptions", {}).items()}
            self._statuses_of_contacts()  # a state file saved before statuses were kept

    def save(self, path: Path) -> None:
        """Write the portal to a JSON file."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(path)

    # -- reads ------------------------------------------------------------------------------

    def find(self, object_type: str, key: str, id_property: str | None = None) -> dict[str, Any] | None:
        """The live record with this id (or unique ``id_property`` value), following merges."""
        if id_property and id_property != "hs_object_id":
            self.check_id_property(object_type, id_property)
            rid = self.unique[object_type].get(id_property, {}).get(key.lower())
            if rid is None:
                return None
            key = rid
        record = self.records[object_type].get(key)
        if record is not None and record["archived"] and key in self.merged_into[object_type]:
            record = self.records[object_type].get(self.merged_into[object_type][key])
        if record is None or record["archived"]:
            return None
        return record

    def check_id_property(self, object_type: str, id_property: str) -> None:
        """400 unless ``id_property`` identifies records uniquely."""
        if id_property == "hs_object_id":
            return
        if id_property not in self.unique_names(object_type):
            raise errors.validation_error(
                f"Property {id_property} is not a unique identifier property for {object_type}: "
                f"use hs_object_id or one of {', '.join(sorted(self.unique_names(object_type))) or 'none'}"
            )

    def page_ids(self, object_type: str, after: int | None, limit: int, archived: bool) -> tuple[list[int], int | None]:
        """One page of ids in ascending order after ``after``, and the cursor of the next page."""
        ids = self.archived_ids[object_type] if archived else self.active_ids[object_type]
        start = bisect.bisect_right(ids, after) if after is not None else 0
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return page, (page[-1] if more and page else None)

    def render(
        self,
        object_type: str,
        record: dict[str, Any],
        names: list[str] | None,
        with_associations: list[str] | None = None,
        everything: bool = False,
    ) -> dict[str, Any]:
        """A record in the API's shape with the requested properties.

        Args:
            names: requested properties (None: the defaults of the type).
            with_associations: object types whose associated ids to include (v3 shape).
            everything: return every property that has a value (create/update answers).
        """
        props = record["properties"]
        if everything:
            shown = {k: v for k, v in props.items() if v is not None}
        else:
            wanted = names if names else DEFAULT_PROPERTIES[object_type]
            defined = self.definitions[object_type]
            shown = {}
            for name in wanted:
                if name in defined:
                    shown[name] = props.get(name)
            for name in ALWAYS[object_type]:
                shown[name] = props.get(name)
        body: dict[str, Any] = {
            "id": record["id"],
            "properties": shown,
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": record["archived"],
        }
        if record["archived"]:
            body["archivedAt"] = record.get("archivedAt", record["updatedAt"])
        if with_associations:
            linked: dict[str, Any] = {}
            for to_name in with_associations:
                try:
                    to_type = resolve_type(to_name)
                except errors.HubSpotError:
                    continue
                results = self.associations.v3_results(object_type, int(record["id"]), to_type)
                if results:
                    linked[to_type] = {"results": results}
            if linked:
                body["associations"] = linked
        return body

    # -- property history --------------------------------------------------------------------

    def property_history(self, object_type: str, record: dict[str, Any], name: str) -> list[dict[str, Any]]:
        """The history of one property of a record, newest first (the ``propertiesWithHistory`` entries).

        Entries carry ``value``, ``timestamp`` and ``sourceType`` and, where known, ``sourceId``
        and ``updatedByUserId`` (HubSpot CRM v3 objects reference, ``ValueWithTimestamp``). A
        write through the API leaves an entry whose ``sourceId`` is the writing app's id (HubSpot
        names the app, not a user, for a private app's writes: no ``updatedByUserId``). A
        property no API write or seed history ever touched shows one entry: its current value
        stamped with the record's ``updatedAt``; an unset one shows none.
        """
        stored = self.history[object_type].get(record["id"], {}).get(name)
        if stored is not None:
            return [dict(entry) for entry in stored]
        value = record["properties"].get(name)
        if value is None:
            return []
        return [{"value": value, "timestamp": record["updatedAt"], "sourceType": "API"}]

    def _record_history(
        self, object_type: str, record: dict[str, Any], before: dict[str, str | None], after: dict[str, str | None], stamp: str
    ) -> None:
        """Prepend an API entry for each changed property (keeping what the property showed before)."""
        kept = self.history[object_type].setdefault(record["id"], {})
        for name, value in after.items():
            entries = kept.get(name)
            if entries is None:
                previous = before.get(name)
                entries = [] if previous is None else [
                    {"value": previous, "timestamp": record["createdAt"], "sourceType": "API"}
                ]
                kept[name] = entries
            # HubSpot records a cleared value as an empty string.
            entries.insert(0, {"value": "" if value is None else value, "timestamp": stamp, "sourceType": "API",
                               "sourceId": str(self.app_id)})

    # -- validation -------------------------------------------------------------------------

    def check_properties(self, object_type: str, raw: Any, *, creating: bool) -> dict[str, str | None]:
        """Validate property values from a request; raise HubSpot's 400 naming every bad one."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise errors.validation_error("Invalid input JSON: 'properties' must be an object of property names to values")
        defined = self.definitions[object_type]
        owners = self.owner_ids()
        problems: list[dict[str, Any]] = []
        clean: dict[str, str | None] = {}
        for name, value in raw.items():
            name = str(name)
            if name in MAINTAINED:
                continue
            definition = defined.get(name)
            if definition is None:
                problems.append({"name": name, "error": "PROPERTY_DOESNT_EXIST", "message": f'Property "{name}" does not exist'})
                continue
            if definition.read_only_value:
                problems.append({"name": name, "error": "READ_ONLY_VALUE",
                                 "message": f'"{name}" is a read only property; its value cannot be set.'})
                continue
            try:
                text = to_text(value)
            except TypeError:
                problems.append({
                    "name": name,
                    "error": "INVALID_PROPERTY_VALUE",
                    "message": f'Property "{name}" must be a string, number, boolean or null, got {type(value).__name__}',
                })
                continue
            if text is None:
                clean[name] = None
                continue
            if object_type == "contacts" and name == "email":
                text = text.strip().lower()
                if not _EMAIL.match(text):
                    problems.append({"name": name, "error": "INVALID_EMAIL", "message": f"Email address {text} is invalid", "propertyValue": text})
                    continue
            stored, problem = normalise_value(definition, text, owners)
            if problem is not None:
                problems.append(problem)
            else:
                clean[name] = stored
        if creating and object_type in ("tasks", "notes") and not clean.get("hs_timestamp") and not problems:
            problems.append({"name": "hs_timestamp", "error": "REQUIRED_PROPERTY", "message": "hs_timestamp is required"})
        if problems:
            raise errors.property_errors(problems, self.portal_id)
        return clean

    def check_unique(self, object_type: str, values: dict[str, str | None], own_id: str | None) -> None:
        """409 when a unique value (contact email, ``hasUniqueValue``) belongs to another record."""
        for name in self.unique_names(object_type):
            value = values.get(name)
            if not value:
                continue
            holder = self.unique[object_type].get(name, {}).get(value.lower())
            if holder is not None and holder != own_id:
                if object_type == "contacts" and name == "email":
                    raise errors.conflict(f"Contact already exists. Existing ID: {holder}")
                singular = OBJECT_TYPES[object_type][1]
                raise errors.conflict(
                    f"A {singular} with the unique value {value!r} for property {name!r} already exists. Existing ID: {holder}"
                )

    # -- email subscriptions ----------------------------------------------------------------

    def _contact_of(self, email: str) -> dict[str, Any] | None:
        rid = self.unique["contacts"].get("email", {}).get(email.lower())
        return self.find("contacts", rid) if rid is not None else None

    def subscription_statuses(self, email: str) -> list[dict[str, Any]]:
        """The address's status per subscription type it has one for (``PublicSubscriptionStatus`` shapes).

        A contact opted out of all email (``hs_email_optout``) is ``NOT_SUBSCRIBED`` to every type, from
        ``PORTAL_WIDE_STATUS``.
        """
        with self.lock:
            known = {k: dict(v) for k, v in self.subscriptions.get(email.lower(), {}).items()}
            contact = self._contact_of(email)
            everywhere = contact is not None and contact["properties"].get("hs_email_optout") == "true"
        found = []
        for kind in SUBSCRIPTION_TYPES:
            if everywhere:
                found.append(status_json(kind, NOT_SUBSCRIBED, "PORTAL_WIDE_STATUS"))
            elif kind.id in known:
                entry = known[kind.id]
                found.append(status_json(kind, entry["status"], legal_basis=entry.get("legalBasis"),
                                         explanation=entry.get("legalBasisExplanation")))
        return found

    def set_subscription(self, email: str, kind: SubscriptionType, status: str, legal_basis: str | None = None,
                         explanation: str | None = None) -> dict[str, Any]:
        """Subscribe or unsubscribe an address from one type; its contact's ``hs_email_optout_<id>`` follows.

        Raises:
            HubSpotError: 400 when the address already has that status.
        """
        if status not in (SUBSCRIBED, NOT_SUBSCRIBED):
            raise ValueError(f"status must be {SUBSCRIBED} or {NOT_SUBSCRIBED}, got {status!r}")
        email = email.lower()
        with self.lock:
            current = self.subscriptions.get(email, {}).get(kind.id)
            if current is not None and current["status"] == status:
                word = "unsubscribed from" if status == NOT_SUBSCRIBED else "subscribed to"
                raise errors.validation_error(f"{email} is already {word} subscription {kind.id}")
            entry: dict[str, Any] = {"status": status}
            if legal_basis:
                entry["legalBasis"] = legal_basis
            if explanation:
                entry["legalBasisExplanation"] = explanation
            self.subscriptions.setdefault(email, {})[kind.id] = entry
            contact = self._contact_of(email)
            if contact is not None:
                self.update("contacts", contact, {kind.property_name: "true" if status == NOT_SUBSCRIBED else None})
        return status_json(kind, status, legal_basis=legal_basis, explanation=explanation)

    # -- writes -----------------------------------------------------------------------------

    def create(self, object_type: str, values: dict[str, str | None]) -> dict[str, Any]:
        """Store a new record with validated values; returns it."""
        with self.lock:
            now = format_ms(self.clock())
            rid = self._new_id()
            properties: dict[str, str | None] = {k: v for k, v in values.items() if v is not None}
            properties[created_property(object_type)] = now
            properties["hs_lastmodifieddate"] = now
            properties["hs_object_id"] = rid
            if object_type == "contacts":
                properties["lastmodifieddate"] = now
            record = {"id": rid, "properties": properties, "createdAt": now, "updatedAt": now, "archived": False}
            self.records[object_type][rid] = record
            self._record_history(object_type, record, {}, dict(properties), now)
            self.active_ids[object_type].append(int(rid))
            self._index_unique(object_type, record)
            self.version += 1
            occurred = self.clock()
            self._emit(Change("creation", object_type, int(rid), occurred))
            for name, value in properties.items():
                if name not in MAINTAINED:
                    self._emit(Change("propertyChange", object_type, int(rid), occurred, name, value))
            return record

    def update(self, object_type: str, record: dict[str, Any], values: dict[str, str | None]) -> dict[str, Any]:
        """Apply validated values to a live record; returns it."""
        with self.lock:
            props = record["properties"]
            changed = {k: v for k, v in values.items() if props.get(k) != v}
            if not changed:
                return record
            self._unindex_unique(object_type, record)
            before = {name: props.get(name) for name in changed}
            # The modification dates move too, and HubSpot keeps their history like any property's.
            dates = ("hs_lastmodifieddate", "lastmodifieddate") if object_type == "contacts" else ("hs_lastmodifieddate",)
            before.update({name: props.get(name) for name in dates})
            for name, value in changed.items():
                if value is None:
                    props.pop(name, None)
                else:
                    props[name] = value
            now = format_ms(self.clock())
            props["hs_lastmodifieddate"] = now
            if object_type == "contacts":
                props["lastmodifieddate"] = now
            record["updatedAt"] = now
            self._record_history(object_type, record, before, {**changed, **dict.fromkeys(dates, now)}, now)
            self._index_unique(object_type, record)
            self.version += 1
            occurred = self.clock()
            for name, value in changed.items():
                self._emit(Change("propertyChange", object_type, int(record["id"]), occurred, name, value))
            return record

    def archive(self, object_type: str, record: dict[str, Any], emit: bool = True) -> None:
        """Archive a live record (``hs_lastmodifieddate`` does not move, as in HubSpot)."""
        with self.lock:
            if record["archived"]:
                return
            self._unindex_unique(object_type, record)
            record["archived"] = True
            record["archivedAt"] = format_ms(self.clock())
            number = int(record["id"])
            ids = self.active_ids[object_type]
            position = bisect.bisect_left(ids, number)
            if position < len(ids) and ids[position] == number:
                del ids[position]
            bisect.insort(self.archived_ids[object_type], number)
            self.version += 1
            if emit:
                self._emit(Change("deletion", object_type, number, self.clock()))

    def merge(self, object_type: str, primary: dict[str, Any], secondary: dict[str, Any]) -> dict[str, Any]:
        """Merge ``secondary`` into ``primary``: blanks filled, associations moved, secondary archived."""
        with self.lock:
            p_props = primary["properties"]
            s_props = secondary["properties"]
            fill = {
                k: v
                for k, v in s_props.items()
                if v is not None and k not in MAINTAINED and k != "email" and not p_props.get(k)
            }
            merged = [x for x in (p_props.get("hs_merged_object_ids") or "").split(";") if x]
            merged += [x for x in (s_props.get("hs_merged_object_ids") or "").split(";") if x]
            merged.append(secondary["id"])
            secondary_email = s_props.get("email") if object_type == "contacts" else None
            self.archive(object_type, secondary, emit=False)
            self.merged_into[object_type][secondary["id"]] = primary["id"]
            for old, target in list(self.merged_into[object_type].items()):
                if target == secondary["id"]:
                    self.merged_into[object_type][old] = primary["id"]
            self.associations.move(object_type, int(secondary["id"]), int(primary["id"]))
            self._unindex_unique(object_type, primary)
            p_props.update(fill)
            p_props["hs_merged_object_ids"] = ";".join(sorted(set(merged), key=int))
            if secondary_email:
                extra = [x for x in (p_props.get("hs_additional_emails") or "").split(";") if x]
                extra.append(secondary_email)
                p_props["hs_additional_emails"] = ";".join(extra)
            now = format_ms(self.clock())
            p_props["hs_lastmodifieddate"] = now
            if object_type == "contacts":
                p_props["lastmodifieddate"] = now
            primary["updatedAt"] = now
            self._index_unique(object_type, primary)
            if secondary_email:
                self.unique["contacts"].setdefault("email", {})[secondary_email.lower()] = primary["id"]
            self.version += 1
            self._emit(
                Change("merge", object_type, int(primary["id"]), self.clock(), merged_ids=(int(secondary["id"]),))
            )
            return primary
