"""Captured people (web forms, imported lists) found or created in the CRM, then decided like pushed changes.

The intake stores each submission in the webhook inbox (provider ``capture``; the payload's
``event`` is the :class:`~connector.pipeline.submissions.Submission`). When the events of a
connection are processed, :func:`capture_into` runs :func:`capture_changes` over its
submissions first:

1. Every email of the batch is looked up in each person object the connection syncs, in as few
   calls as the API allows (``CrmAdapter.read_by_email``: HubSpot's batch read by
   ``idProperty: email``, Salesforce ``Email IN (...)``). A person kept as a contact (a
   Salesforce Contact) is preferred to a lead; among several records, the last modified.
2. A known person is updated with what the form gave that differs from the CRM; an empty value
   never overwrites a value, and the lead source is written only where the record has none.
   An unknown person is created as the source's object, once per email however many
   submissions of the batch name it. The lead source, the UTM parameters and the consent go
   to the CRM fields the source names (``capture.sources.<name>.fields``); HubSpot properties
   that are missing are created first.
3. The ids found or created join the events run (``changed``), so the people are decided
   (owner, score, SLA, task) through the same page path as webhooks.

A submission the CRM refuses (an invalid value) is quarantined with the CRM's reason and its
event marked processed; the rest of the batch goes on. A failure of the CRM as a whole
(unreachable, limits) raises: the submissions stay stored for the next pass, which finds by
email what the failed pass created, so nothing is created twice.

Consent and UTM stay in Relay's store: the inbox keeps every submission as it was taken;
:func:`stored_submissions` reads them back (by source or email).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, select

from connector.adapters.base import CrmAdapter, FieldSpec, WriteOp
from connector.adapters.budget import Priority
from connector.adapters.errors import ConfigurationError
from connector.config.capture import CaptureSource
from connector.config.loader import RelayConfig
from connector.config.mappings import ObjectMapping
from connector.core._email import clean_email
from connector.crms import crm_unit
from connector.crms.intake import WebhookEvent
from connector.mapping.engine import (
    MappingError,
    changed_fields,
    record_meta,
    to_canonical,
    to_crm,
    written_fields,
)
from connector.pipeline.connections import open_adapter
from connector.pipeline.intake import EventInbox, Stored
from connector.pipeline.submissions import (
    CAPTURE_PROVIDER,
    PERSON_FIELDS,
    PREFERENCE_FLAGS,
    UTM_FIELDS,
    Submission,
    submission_of,
)
from connector.store.db import session_factory
from connector.store.models import InboxRow
from connector.store.repositories import ApiCalls, Inbox, InboxEvent, Quarantine, QuarantineIn

log = logging.getLogger(__name__)

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class CaptureFailure:
    """A submission that could not be taken into the CRM, with why.

    Attributes:
        event_id: Its inbox event.
        key: Its inbox key (source and submission id or hash).
        email: The person's email, when the submission could be read.
        object: The CRM object it was found in or was to be created as.
        reason: What is wrong (the CRM's code and message for a refused write).
        crm_id: The record it was to update, if any.
        payload: The submission as stored.
    """

    event_id: int
    key: str
    email: str | None
    object: str
    reason: str
    crm_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class CapturePlan:
    """What is done (or, in a dry run, would be done) for one person of the batch.

    Attributes:
        email: The person's email.
        object: The CRM object of the record.
        action: ``create``, ``update`` or ``unchanged``.
        crm_id: The record's id (a create's once it succeeded).
        fields: What is written: CRM field -> value.
        keys: The inbox keys of the submissions that name this person.
    """

    email: str
    object: str
    action: Action
    crm_id: str | None
    fields: Mapping[str, Any] = field(hash=False)
    keys: tuple[str, ...] = ()


@dataclass
class CaptureResult:
    """What :func:`capture_changes` did for one connection's submissions.

    Attributes:
        ids: Object -> ids of the people found or created (to decide in the events run).
        plans: One per person, in the order of their first submission.
        failures: The submissions that could not be taken, with why.
        calls: API calls made, by kind.
    """

    ids: dict[str, list[str]] = field(default_factory=dict)
    plans: list[CapturePlan] = field(default_factory=list)
    failures: list[CaptureFailure] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def count(self, action: Action) -> int:
        """How many people were (or would be) created, updated or left unchanged."""
        return sum(1 for plan in self.plans if plan.action == action)


@dataclass
class _Person:
    """The submissions of one email in the batch, merged in the order received (later values win)."""

    email: str
    source: str
    lead_source: str
    events: list[tuple[InboxEvent, Submission]]
    person: dict[str, str] = field(default_factory=dict)
    utm: dict[str, str] = field(default_factory=dict)
    consent: Any = None
    preferences: dict[str, bool | str] = field(default_factory=dict)

    def prefer(self, given: Mapping[str, bool | str]) -> None:
        """Take a submission's preferences: an opt-out given once stands (a later "no" does not lift it)."""
        for name, value in given.items():
            if name in PREFERENCE_FLAGS and self.preferences.get(name) is True:
                continue
            self.preferences[name] = value


def capture_changes(
    config: RelayConfig,
    connection: str,
    adapter: CrmAdapter,
    events: Sequence[InboxEvent],
    *,
    now: datetime,
    dry_run: bool = False,
) -> CaptureResult:
    """Find or create in the CRM the people of ``connection``'s capture submissions ``events``.

    Args:
        config: The configuration (``capture:`` sources, the connection's mapping).
        connection: The connection the submissions are for.
        adapter: Its adapter.
        events: Inbox events of provider ``capture`` (their payload's ``event`` is a submission).
        now: The time (recorded with failures).
        dry_run: Find, plan and report; write nothing (no CRM write, no field created).

    Returns:
        The ids found or created per object, a plan per person and the failures.

    Raises:
        ConfigurationError: a source names an object the connection does not sync as people, or
            CRM fields it lacks (Salesforce). The submissions stay for the next pass.
        CrmError: the CRM failed as a whole (auth, limits, unreachable after retries).
    """
    result = CaptureResult()
    people_objects = _person_objects(config, connection)
    people: dict[str, _Person] = {}
    for event in events:
        taken = _read(config, connection, event, people_objects, result)
        if taken is None:
            continue
        source, sub = taken
        person = people.get(sub.email)
        if person is None:
            person = people[sub.email] = _Person(sub.email, sub.source, source.lead_source, [])
        person.events.append((event, sub))
        person.person.update(sub.person)
        person.utm.update(sub.utm)
        if sub.consent is not None:
            person.consent = sub.consent
        person.prefer(sub.preferences)
    if not people:
        return result
    sources = config.relay.capture.sources
    targets = {name: _targets(sources, people.values(), name) for name in people_objects}
    found = _find(adapter, people_objects, targets, list(people))
    if not dry_run:
        _prepare_fields(adapter, connection, people_objects, targets, sources, people.values(), found)
    ops: list[WriteOp] = []
    planned: list[tuple[_Person, CapturePlan]] = []
    for person in people.values():
        source = sources[person.source]
        match = found.get(person.email)
        try:
            if match is not None:
                mapping, record = match
                plan = _update_plan(mapping, record, person, targets[mapping.name])
            else:
                mapping = people_objects[source.object]
                plan = _create_plan(mapping, person, source, targets[mapping.name])
        except MappingError as exc:
            if match is not None:
                _fail(result, person, match[0].name, str(exc), str(match[1].get(match[0].id_field)))
            else:
                _fail(result, person, source.object, str(exc), None)
            continue
        planned.append((person, plan))
        if plan.action != "unchanged" and not dry_run:
            ops.append(WriteOp(plan.object, "create" if plan.action == "create" else "update", dict(plan.fields),
                               crm_id=plan.crm_id, idempotency_key=f"capture:{plan.keys[0]}"))
    written = iter(adapter.write(ops)) if ops else iter(())
    for person, plan in planned:
        if plan.action != "unchanged" and not dry_run:
            outcome = next(written)
            if not outcome.success:
                _fail(result, person, plan.object, f"{plan.object} {plan.action} refused: {outcome.error}", plan.crm_id)
                continue
            plan = CapturePlan(plan.email, plan.object, plan.action, outcome.crm_id or plan.crm_id, plan.fields,
                               plan.keys)
        result.plans.append(plan)
        if plan.crm_id is not None:
            ids = result.ids.setdefault(plan.object, [])
            if plan.crm_id not in ids:
                ids.append(plan.crm_id)
    result.calls = adapter.calls.by_kind()
    log.info("%s: %d capture submissions: %d created, %d updated, %d unchanged, %d refused", connection, len(events),
             result.count("create"), result.count("update"), result.count("unchanged"), len(result.failures))
    return result


def _person_objects(config: RelayConfig, connection: str) -> dict[str, ObjectMapping]:
    """The person objects the connection syncs, people kept as contacts first (they are preferred when found)."""
    objects = [m for m in config.objects_to_sync(connection) if m.entity == "person"]
    return {m.name: m for m in sorted(objects, key=lambda m: 0 if m.people_are == "contact" else 1)}


def _read(config: RelayConfig, connection: str, event: InboxEvent, people_objects: Mapping[str, ObjectMapping],
          result: CaptureResult) -> tuple[CaptureSource, Submission] | None:
    """The source and submission of ``event``, or None after recording why it cannot be taken."""
    payload = event.payload if isinstance(event.payload, Mapping) else {}
    stored = payload.get("event")
    try:
        sub = submission_of(stored)
    except ValueError as exc:
        result.failures.append(CaptureFailure(event.id, event.event_key, None, str(payload.get("object") or "?"),
                                              f"unreadable submission: {exc}", payload=_as_dict(stored)))
        return None
    source = config.relay.capture.sources.get(sub.source)
    if source is None or source.connection != connection:
        reason = (f"capture source {sub.source!r} is no longer in relay.yaml" if source is None else
                  f"capture source {sub.source!r} now sends to connection {source.connection!r}, not {connection!r}")
        result.failures.append(CaptureFailure(event.id, event.event_key, sub.email, str(payload.get("object") or "?"),
                                              reason, payload=_as_dict(stored)))
        return None
    if source.object not in people_objects:
        raise ConfigurationError(
            f"capture.sources.{sub.source}.object: {source.object!r} is not a person object connection "
            f"{connection!r} syncs (it syncs {', '.join(people_objects) or 'none'})", code="CAPTURE_OBJECT",
            connection=connection)
    return source, sub


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {"value": repr(value)[:1000]}


def _targets(sources: Mapping[str, CaptureSource], people: Any, object_name: str) -> dict[str, dict[str, str]]:
    """Source -> what it records in which field of ``object_name`` (``fields:``), for the sources of the batch."""
    names = {person.source for person in people}
    return {name: {str(what): crm for what, crm in sources[name].fields.get(object_name, {}).items()}
            for name in names if name in sources}


def _find(adapter: CrmAdapter, people_objects: Mapping[str, ObjectMapping],
          targets: Mapping[str, Mapping[str, Mapping[str, str]]],
          emails: list[str]) -> dict[str, tuple[ObjectMapping, dict[str, Any]]]:
    """Email -> (object, record) of the known people: contacts before leads, then the last modified."""
    found: dict[str, tuple[ObjectMapping, dict[str, Any], Any]] = {}
    for rank, mapping in enumerate(people_objects.values()):
        extra = [name for by_source in targets[mapping.name].values() for name in by_source.values()]
        fields = list(dict.fromkeys([*mapping.crm_fields_to_read(), *extra]))
        page = adapter.read_by_email(mapping.name, fields, emails)
        for record in page.records:
            values, _ = to_canonical(mapping, record)
            email = clean_email(str(values.get("email") or ""))
            meta = record_meta(mapping, record)
            if not email or email not in emails or meta.record_id is None or meta.deleted:
                continue
            order = (-rank, meta.modified_at.timestamp() if meta.modified_at else 0.0, meta.record_id)
            have = found.get(email)
            if have is None or order > have[2]:
                found[email] = (mapping, record, order)
    return {email: (mapping, record) for email, (mapping, record, _) in found.items()}


def _prepare_fields(adapter: CrmAdapter, connection: str, people_objects: Mapping[str, ObjectMapping],
                    targets: Mapping[str, Mapping[str, Mapping[str, str]]], sources: Mapping[str, CaptureSource],
                    people: Any, found: Mapping[str, tuple[ObjectMapping, dict[str, Any]]]) -> None:
    """Make sure the fields the batch's sources record into exist on the objects it writes.

    Created where the CRM unit creates fields (HubSpot: text properties in group ``relay``);
    else checked, and a missing one stops the pass naming it and the key that names it.
    """
    written: set[str] = set()
    for person in people:
        match = found.get(person.email)
        written.add(match[0].name if match else sources[person.source].object)
    unit = crm_unit(adapter.crm)
    for object_name in sorted(written):
        names = list(dict.fromkeys(name for by_source in targets[object_name].values() for name in by_source.values()))
        if not names:
            continue
        if unit.creates_fields:
            adapter.ensure_fields(object_name, [
                FieldSpec(name=name, label=name.replace("_", " ").capitalize(), type="string", field_type="text",
                          description="Recorded by Relay from web forms and imported lists.") for name in names])
            continue
        missing = adapter.check_fields(object_name, names)
        if missing:
            keys = [f"capture.sources.{source}.fields.{object_name}" for source, by in targets[object_name].items()
                    if set(by.values()) & set(missing)]
            raise unit.missing_fields(object_name, missing, connection=connection, source=", ".join(keys))


def _extras(person: _Person, target: Mapping[str, str], lead_source: str,
            current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The CRM fields of the lead source, UTM parameters and consent the source records (only what changes)."""
    values: dict[str, Any] = {}
    if "lead_source" in target and (current is None or current.get(target["lead_source"]) in (None, "")):
        values[target["lead_source"]] = lead_source
    for name in UTM_FIELDS:
        if name in target and person.utm.get(name):
            values[target[name]] = person.utm[name]
    consent = person.consent
    if consent is not None:
        if "consent" in target:
            values[target["consent"]] = ", ".join(consent.purposes) if consent.purposes else (
                "yes" if consent.given else "no")
        if "consent_version" in target and consent.version:
            values[target["consent_version"]] = consent.version
    if current is not None:
        values = {name: value for name, value in values.items() if str(current.get(name) or "") != str(value)}
    return values


def _preference_values(mapping: ObjectMapping, person: _Person, current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The CRM fields of the person's opt-outs and lawful basis the form gave (consent.yaml), where the CRM keeps them.

    Written to the field the mapping reads each from (``HasOptedOutOfEmail``, ``hs_email_optout``,
    ``DoNotCall``, ``hs_legal_basis``); one the object's mapping does not read stays in the inbox only.
    An opt-out is only ever set, never lifted by a form (re-subscribing is the person's own act where
    the CRM keeps their preferences); the lawful basis fills an empty field. ``current``: the record's
    canonical values (None: a record to create).
    """
    if not person.preferences:
        return {}
    text_only = crm_unit(mapping.crm).values.text_only
    values: dict[str, Any] = {}
    for name, value in person.preferences.items():
        crm = next((fm.crm for fm in mapping.read_fields() if fm.canonical == name), None)
        if crm is None:
            continue
        have = current.get(name) if current is not None else None
        if name in PREFERENCE_FLAGS:
            if value is not True or have is True:
                continue
            values[crm] = "true" if text_only else True
        elif have in (None, "") and isinstance(value, str) and value.strip():
            values[crm] = value.strip()
    return values


def _keys(person: _Person) -> tuple[str, ...]:
    return tuple(event.event_key for event, _ in person.events)


def _update_plan(mapping: ObjectMapping, record: dict[str, Any], person: _Person,
                 targets: Mapping[str, Mapping[str, str]]) -> CapturePlan:
    """What to write on a known person's record: what the submissions give that differs, never an empty value."""
    current, _ = to_canonical(mapping, record)
    writable = written_fields(mapping)
    desired = {name: value for name, value in person.person.items() if value and name in writable}
    changes = to_crm(mapping, changed_fields(mapping, current, desired)) if desired else {}
    changes.update(_extras(person, targets.get(person.source, {}), person.lead_source, record))
    changes.update(_preference_values(mapping, person, current))
    crm_id = str(record.get(mapping.id_field))
    return CapturePlan(person.email, mapping.name, "update" if changes else "unchanged", crm_id, changes, _keys(person))


def _create_plan(mapping: ObjectMapping, person: _Person, source: CaptureSource,
                 targets: Mapping[str, Mapping[str, str]]) -> CapturePlan:
    """The record to create for an unknown person: their email and fields, the source's defaults where none."""
    writable = written_fields(mapping)
    if "email" not in writable:
        raise MappingError(f"{mapping.crm} {mapping.name}: the mapping writes no email, so Relay cannot create a "
                           "person there (map canonical email with direction both)")
    desired: dict[str, Any] = {"email": person.email}
    for name in PERSON_FIELDS:
        value = person.person.get(name) or source.create_defaults.get(name)  # type: ignore[call-overload]
        if value and name in writable:
            desired[name] = value
    fields = to_crm(mapping, desired)
    fields.update(_extras(person, targets.get(person.source, {}), person.lead_source, None))
    fields.update(_preference_values(mapping, person, None))
    return CapturePlan(person.email, mapping.name, "create", None, fields, _keys(person))


def _fail(result: CaptureResult, person: _Person, object_name: str, reason: str, crm_id: str | None) -> None:
    for event, sub in person.events:
        result.failures.append(CaptureFailure(event.id, event.event_key, sub.email, object_name, reason, crm_id,
                                              sub.as_json()))


def capture_into(
    changed: MutableMapping[str, list[str]],
    config: RelayConfig,
    engine: Engine,
    connection: str,
    events: Sequence[InboxEvent],
    *,
    now: datetime,
    adapter: CrmAdapter | None = None,
) -> CaptureResult | None:
    """Take ``connection``'s capture submissions among ``events`` into the CRM and add their people to ``changed``.

    What ``process_events`` calls before a connection's events run: events of other providers
    are left alone. Submissions the CRM refused are quarantined (reason, submission) and their
    events marked processed, in one transaction; the others are marked processed with the run.
    The API calls made are counted in the store. Returns None when ``events`` holds no submission.

    Raises:
        ConfigurationError, CrmError: as :func:`capture_changes`; nothing is marked processed.
    """
    captured = [event for event in events if event.provider == CAPTURE_PROVIDER]
    if not captured:
        return None
    own = adapter is None
    adapter = adapter or open_adapter(config, connection, engine=engine, priority=Priority.REALTIME)
    before = adapter.calls.by_kind()
    try:
        result = capture_changes(config, connection, adapter, captured, now=now)
    finally:
        made = {kind: n - before.get(kind, 0) for kind, n in adapter.calls.by_kind().items()}
        if own:
            adapter.close()
        with session_factory(engine).begin() as session:
            calls = ApiCalls(session)
            for kind, count in made.items():
                if count > 0:
                    calls.add(connection, kind, count, at=now)
    if result.failures:
        with session_factory(engine).begin() as session:
            Quarantine(session).add_many([
                QuarantineIn(connection, failure.object, f"capture {failure.key}: {failure.reason}",
                             {"submission": dict(failure.payload), "key": failure.key}, crm_id=failure.crm_id, at=now)
                for failure in result.failures])
            Inbox(session).mark_processed_many([failure.event_id for failure in result.failures], now=now)
    for object_name, ids in result.ids.items():
        into = changed.setdefault(object_name, [])
        into.extend(i for i in ids if i not in into)
    return result


def capture_event(source: CaptureSource, taken: Submission) -> WebhookEvent:
    """The inbox event of a submission to ``source``: keyed by :attr:`Submission.key`, naming no record yet."""
    return WebhookEvent(taken.key, source.object, None, f"capture.{taken.channel}", taken.as_json(),
                        about=f"email:{taken.email}"[:64])  # one worker at a time per email: no twin created


def store_submissions(config: RelayConfig, engine: Engine, submissions: Sequence[Submission], *,
                      now: datetime) -> Stored:
    """Store submissions in the inbox (one transaction per connection); a repeated one stores nothing new.

    Raises:
        KeyError: a submission names a source ``relay.yaml`` does not have.
        WebhookRefused, InboxUnavailable: as :meth:`EventInbox.store`.
    """
    by_connection: dict[str, list[WebhookEvent]] = {}
    for taken in submissions:
        source = config.relay.capture.sources.get(taken.source)
        if source is None:
            raise KeyError(f"no capture source {taken.source!r} in relay.yaml "
                           f"(configured: {', '.join(sorted(config.relay.capture.sources)) or 'none'})")
        by_connection.setdefault(source.connection, []).append(capture_event(source, taken))
    inbox = EventInbox(engine)
    received = new = 0
    for connection, events in by_connection.items():
        stored = inbox.store(CAPTURE_PROVIDER, connection, events, now=now)
        received, new = received + stored.received, new + stored.new
    return Stored(received=received, new=new)


@dataclass(frozen=True)
class StoredSubmission:
    """A submission as the inbox keeps it: what the person gave (UTM, consent included), and when it was taken."""

    key: str
    connection: str | None
    submission: Submission
    received_at: datetime
    processed_at: datetime | None


def stored_submissions(engine: Engine, *, source: str | None = None, email: str | None = None,
                       limit: int = 1_000) -> list[StoredSubmission]:
    """The capture submissions in the inbox, newest first, of one source or one email (any case) if given."""
    wanted = clean_email(email) if email else None
    query = select(InboxRow).where(InboxRow.provider == CAPTURE_PROVIDER).order_by(InboxRow.id.desc())
    if source is not None:
        query = query.where(InboxRow.event_key.like(f"{source}:%"))
    out: list[StoredSubmission] = []
    with session_factory(engine).begin() as session:
        for row in session.scalars(query.execution_options(yield_per=500)):
            payload = row.payload if isinstance(row.payload, dict) else {}
            try:
                sub = submission_of(payload.get("event"))
            except ValueError:
                continue
            if wanted is not None and sub.email != wanted:
                continue
            out.append(StoredSubmission(row.event_key, payload.get("connection"), sub, row.received_at,
                                        row.processed_at))
            if len(out) >= limit:
                break
    return out
