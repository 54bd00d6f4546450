"""``relay retention run``: the SOP's retention periods over what Relay's store knows, a dry run unless applied.

``config/rules/retention.yaml`` (seed 002 "Data Retention Policy"): customers 7 years then archive,
prospects 2 years then delete, unsubscribed 5 years then suppress, employees 7 years after they
left then archive. :func:`run_retention` classifies every person Relay keeps a snapshot of (all
their records together, in every CRM: :mod:`connector.core.governance.retention`), measures their
age at ``now`` (the controllable clock) and reports per class what is due. With ``apply``:

* **delete** (prospects): the person's records are deleted in their CRMs
  (:meth:`~connector.adapters.base.CrmAdapter.delete_records`: Salesforce sObject Collections
  DELETE, HubSpot batch archive); each deletion is audited ``retention_deleted`` under the person's
  pseudonymous key only (``sha256:`` of the email, as ``relay forget-person`` names people) and the
  snapshot flagged deleted; once none of the person's records is left in any CRM, their personal data
  are purged from Relay's store by ``relay forget-person``'s erasure
  (:func:`connector.privacy.subject.forget_subject`: snapshots, identity key, messages, alerts,
  payloads, enrichment answers; the audit keeps the pseudonymous key). A person without an email
  has their snapshots emptied of personal fields instead. A record the CRM refuses to delete is
  audited ``retention_delete_failed`` and kept.
* **archive** (customers, employees): audited ``retention_archived`` once per record; nothing changes
  in the CRM.
* **suppress** (unsubscribed): a suppression in the dispositions ledger (``Retention: unsubscribed``,
  kept for good), so the person is never routed, enriched or sent outreach again; audited
  ``retention_suppressed``.

A dry run writes nothing anywhere (no CRM call but reading the CRM users, no audit entry). Already
done (an archive audited, a suppression recorded, a record deleted) is reported as done, never
done twice.

``relay worker`` runs it on ``retention.yaml``'s ``schedule`` (:func:`run_scheduled_retention`, called by
``jobs/tasks.py``): once per due cron minute however many workers run, a dry run unless ``schedule.apply``;
each scheduled run is audited ``retention_dry_run`` or ``retention_applied`` with counts per class and action
only (:func:`scheduled_summary`), and :func:`last_scheduled_run` reads the latest back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from connector.adapters.base import CrmAdapter, Deletion
from connector.adapters.budget import Priority
from connector.config.loader import RelayConfig
from connector.core.governance.retention import (
    RetentionVerdict,
    account_key,
    age_days,
    customer_accounts,
    employee_retention,
    retention_of,
)
from connector.core.governance.rules import RETENTION_CLASSES
from connector.core.identity import person_key
from connector.core.models import Account, Owner, Person
from connector.pipeline.connections import open_adapter, resolve_connection
from connector.pipeline.records import account_from_snapshot, map_record, person_from_snapshot
from connector.privacy.subject import PERSONAL_FIELDS, forget_subject, subject_key
from connector.store.db import held_alone, read_snapshot, session_factory
from connector.store.models import AuditRow, DispositionStatus
from connector.store.repositories import Audit, AuditEntryIn, Records
from connector.store.repositories.dispositions import DispositionIn, Dispositions
from connector.store.repositories.records import RecordSnapshot
from connector.store.repositories.retention import Ref, RetentionStore

log = logging.getLogger(__name__)

ARCHIVED = "retention_archived"
DELETED = "retention_deleted"
DELETE_FAILED = "retention_delete_failed"
SUPPRESSED = "retention_suppressed"
MARKS = (ARCHIVED, DELETED, SUPPRESSED)
"""The audit actions that mark a record as done by retention."""
SUPPRESSION_VALUE = "Retention: unsubscribed"
"""The dispositions ledger's value of a retention suppression (action ``suppress``: Do Not Contact's)."""
_DONE_BY = {"archive": ARCHIVED, "delete": DELETED, "suppress": SUPPRESSED}


def _label(ref: Ref) -> str:
    return "/".join(ref)


@dataclass(frozen=True)
class PersonRetention:
    """One person (or former employee) and what retention says of them.

    Attributes:
        key: The person's Relay id (or their only record, or ``owner:<connection>/<id>`` for an employee).
        verdict: Class, action, the date the age runs from, when the period is over, due or not.
        records: Their records in the connections of the run (``connection, object, CRM id``), live or not.
        live: Those of ``records`` the CRM still has (as far as Relay knows).
        elsewhere: Their live records in connections the run leaves out (``--connection``).
        email: The person's email (to purge the store by), when a record has one.
        done: The records already done for the action (archived, suppressed or deleted before).
    """

    key: str
    verdict: RetentionVerdict
    records: tuple[Ref, ...]
    live: tuple[Ref, ...] = ()
    elsewhere: tuple[Ref, ...] = ()
    email: str | None = None
    done: tuple[Ref, ...] = ()

    @property
    def pending(self) -> tuple[Ref, ...]:
        """The records the action is still to be done for."""
        return tuple(r for r in self.records if r not in self.done)


@dataclass
class ClassTally:
    """Per retention class: people and records seen, due, done before, done now, failed."""

    people: int = 0
    records: int = 0
    due_people: int = 0
    due_records: int = 0
    done_before: int = 0
    acted: int = 0
    failed: int = 0


@dataclass
class RetentionReport:
    """What a retention run found and (with ``apply``) did.

    Attributes:
        now: The clock it judged by.
        apply: False for a dry run (nothing written anywhere).
        connections: The connections it acted on.
        tallies: Per class (``customer``, ``prospect``, ``unsubscribed``, ``employee``).
        due: The people whose period is over and whose action is not done yet (with ``apply``: before acting).
        deleted, archived, suppressed: The records acted on now (``connection/object/id``).
        failed: Records the CRM refused to delete, with the CRM's error.
        purged: People whose personal data were purged from Relay's store (their pseudonymous keys).
        unreadable: Snapshots that no longer fit their mapping (left alone, counted).
    """

    now: datetime
    apply: bool
    connections: tuple[str, ...]
    tallies: dict[str, ClassTally] = field(default_factory=lambda: {c: ClassTally() for c in RETENTION_CLASSES})
    due: list[PersonRetention] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    unreadable: int = 0
    actions: dict[str, str] = field(default_factory=dict)
    """What each class's due people get (retention.yaml)."""

    def as_json(self) -> dict[str, Any]:
        """The report as JSON (record ids and pseudonymous keys only: no personal data)."""
        return {
            "now": self.now.isoformat(), "apply": self.apply, "connections": list(self.connections),
            "classes": {name: vars(t) for name, t in self.tallies.items()},
            "due": [{"key": p.key, "class": p.verdict.retention_class, "action": p.verdict.action,
                     "basis_at": p.verdict.basis_at.isoformat() if p.verdict.basis_at else None,
                     "due_at": p.verdict.due_at.isoformat() if p.verdict.due_at else None,
                     "age_days": age_days(p.verdict.basis_at, self.now),
                     "records": [_label(r) for r in p.pending]} for p in self.due],
            "deleted": self.deleted, "archived": self.archived, "suppressed": self.suppressed,
            "failed": [{"record": r, "error": e} for r, e in self.failed], "purged": self.purged,
            "unreadable": self.unreadable, "actions": self.actions,
        }


def pseudonym(email: str | None, fallback: str) -> str:
    """How the audit names a person whose data retention removes: ``relay forget-person``'s key of their
    email (``sha256:...``), else ``fallback`` (their Relay id: pseudonymous already)."""
    return subject_key(email) if email else fallback


# --------------------------------------------------------------------------- reading the store


@dataclass
class _Known:
    """What the store knows, read once."""

    people: dict[str, list[tuple[RecordSnapshot, Person]]] = field(default_factory=dict)
    customers: frozenset[str] = frozenset()
    marked: dict[Ref, set[str]] = field(default_factory=dict)
    unreadable: int = 0


def _read(config: RelayConfig, engine: Engine) -> _Known:
    rules = config.rules.retention
    known = _Known()
    names = list(config.relay.connections)
    resolved = {name: resolve_connection(config, name) for name in names}
    with session_factory(engine).begin() as session:
        store = RetentionStore(session)
        accounts: list[Account] = []
        for snap in store.snapshots("account", names):
            account = account_from_snapshot(snap.connection, snap.object, snap.crm_id, snap.canonical)
            if account is not None and not snap.deleted:
                accounts.append(account)
        won: set[str] = set()
        for snap in store.snapshots("deal", names):
            values = snap.canonical
            account_id = values.get("account_id")
            if not snap.deleted and values.get("is_won") is True and isinstance(account_id, str) and account_id:
                won.add(account_key(snap.connection, account_id))
        known.customers = customer_accounts(accounts, won, rules)
        for snap in store.snapshots("person", names):
            mapping = resolved[snap.connection].mapping(snap.object)
            record = person_from_snapshot(snap.connection, mapping, snap.crm_id, snap.canonical, snap.last_seen) \
                if mapping is not None and mapping.entity == "person" else None
            if record is None or not isinstance(record.model, Person):
                known.unreadable += 1
                continue
            key = snap.relay_id or _label((snap.connection, snap.object, snap.crm_id))
            known.people.setdefault(key, []).append((snap, record.model))
        known.marked = store.marked(MARKS, names)
    return known


def _email(people: Sequence[Person]) -> str | None:
    for person in people:
        if person.email and person_key(person.email):
            return person.email
    return None


def plan_people(config: RelayConfig, engine: Engine, now: datetime,
                connections: Sequence[str]) -> tuple[list[PersonRetention], int]:
    """Every person of the store with a record in ``connections``, and what retention says of them at ``now``.

    Returns:
        The people (in the order of their first record) and how many snapshots could not be read.
    """
    known = _read(config, engine)
    scope = set(connections)
    found: list[PersonRetention] = []
    for key, pairs in known.people.items():
        people = [person for _, person in pairs]
        verdict = retention_of(people, now, rules=config.rules.retention, consent=config.rules.consent,
                               customers=known.customers)
        records = tuple((s.connection, s.object, s.crm_id) for s, _ in pairs if s.connection in scope)
        if not records:
            continue
        live = tuple((s.connection, s.object, s.crm_id) for s, _ in pairs
                     if s.connection in scope and not s.deleted and s.merged_into is None)
        elsewhere = tuple((s.connection, s.object, s.crm_id) for s, _ in pairs
                          if s.connection not in scope and not s.deleted and s.merged_into is None)
        mark = _DONE_BY[verdict.action]
        done = tuple(r for r in records if mark in known.marked.get(r, set()))
        found.append(PersonRetention(key, verdict, records, live, elsewhere, _email(people), done))
    return found, known.unreadable


def plan_employees(config: RelayConfig, engine: Engine, now: datetime, connections: Sequence[str],
                   adapters: Mapping[str, CrmAdapter]) -> list[PersonRetention]:
    """The former employees of ``connections`` (CRM users no longer active anywhere Relay looks, nor in
    routing.yaml's active team) and what retention says of them at ``now``, from their last assignment."""
    owners: list[tuple[str, str, Owner]] = []
    for name in connections:
        resolved = resolve_connection(config, name)
        for raw in adapters[name].owners():
            mapped = map_record(name, resolved.owners, raw)
            if isinstance(mapped.model, Owner) and mapped.model.email:
                owners.append((name, resolved.owners.name, mapped.model))
    active = {o.email.strip().lower() for _, _, o in owners if o.active and o.email}
    active |= {m.email.strip().lower() for m in config.rules.routing.team if m.active}
    former = [(c, obj, o) for c, obj, o in owners if not o.active and o.email and o.email.strip().lower() not in active]
    with session_factory(engine).begin() as session:
        store = RetentionStore(session)
        last = store.last_assignments(o.email for _, _, o in former if o.email)
        marked = store.marked((ARCHIVED,), connections)
    found: list[PersonRetention] = []
    for connection, object_name, owner in former:
        email = (owner.email or "").strip().lower()
        verdict = employee_retention(pseudonym(email, owner.id), last.get(email), now, rules=config.rules.retention)
        ref = (connection, object_name, owner.id)
        done = (ref,) if ARCHIVED in marked.get(ref, set()) else ()
        found.append(PersonRetention(f"owner:{connection}/{owner.id}", verdict, (ref,), (ref,), (), email, done))
    return found


# --------------------------------------------------------------------------- acting


def _audit(engine: Engine, entries: Sequence[AuditEntryIn]) -> None:
    if entries:
        with session_factory(engine).begin() as session:
            Audit(session).append_many(entries)


def _detail(person: PersonRetention, now: datetime, **more: Any) -> dict[str, Any]:
    verdict = person.verdict
    return {"class": verdict.retention_class, "action": verdict.action,
            "subject": pseudonym(person.email, person.key),
            "basis_at": verdict.basis_at.isoformat() if verdict.basis_at else None,
            "due_at": verdict.due_at.isoformat() if verdict.due_at else None,
            "age_days": age_days(verdict.basis_at, now), **more}


def _relay_id(person: PersonRetention) -> str | None:
    return None if "/" in person.key or person.key.startswith("owner:") else person.key


def _archive(engine: Engine, people: Sequence[PersonRetention], now: datetime, report: RetentionReport) -> None:
    entries = []
    for person in people:
        for ref in person.pending:
            entries.append(AuditEntryIn(connection=ref[0], action=ARCHIVED, object_name=ref[1], crm_id=ref[2],
                                        relay_id=_relay_id(person), detail=_detail(person, now, crm="not changed"),
                                        at=now))
            report.archived.append(_label(ref))
            report.tallies[person.verdict.retention_class].acted += 1
    _audit(engine, entries)


def _suppress(engine: Engine, people: Sequence[PersonRetention], now: datetime, report: RetentionReport) -> None:
    with session_factory(engine).begin() as session:
        rows = [DispositionIn(ref[0], ref[1], ref[2], SUPPRESSION_VALUE, "", now, now, "suppress",
                              DispositionStatus.DONE.value, relay_id=_relay_id(person), suppressed=True)
                for person in people for ref in person.pending]
        recorded = {(r.connection, r.object, r.crm_id) for r in Dispositions(session).record_many(rows)}
        entries = []
        for person in people:
            for ref in person.pending:
                entries.append(AuditEntryIn(connection=ref[0], action=SUPPRESSED, object_name=ref[1], crm_id=ref[2],
                                            relay_id=_relay_id(person),
                                            detail=_detail(person, now, ledger="recorded" if ref in recorded else
                                                           "already suppressed"), at=now))
                report.suppressed.append(_label(ref))
                report.tallies[person.verdict.retention_class].acted += 1
        Audit(session).append_many(entries)


def _delete(config: RelayConfig, engine: Engine, people: Sequence[PersonRetention], now: datetime,
            adapters: Mapping[str, CrmAdapter], report: RetentionReport) -> None:
    """Delete the people's live records in their CRMs, audit each, then purge the store of those now gone."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for person in people:
        for ref in person.pending:
            if ref in person.live:
                wanted.setdefault((ref[0], ref[1]), []).append(ref[2])
    outcomes: dict[Ref, Deletion] = {}
    for (connection, object_name), ids in wanted.items():
        for deletion in adapters[connection].delete_records(object_name, ids):
            outcomes[(connection, object_name, deletion.crm_id)] = deletion
    for person in people:
        tally = report.tallies[person.verdict.retention_class]
        entries: list[AuditEntryIn] = []
        gone: list[Ref] = []
        for ref in person.pending:
            outcome = outcomes.get(ref)
            if outcome is not None and not outcome.deleted:
                error = str(outcome.error) if outcome.error is not None else "refused"
                report.failed.append((_label(ref), error))
                tally.failed += 1
                entries.append(AuditEntryIn(connection=ref[0], action=DELETE_FAILED, object_name=ref[1],
                                            crm_id=ref[2], relay_id=_relay_id(person),
                                            detail=_detail(person, now, error=error), at=now))
                continue
            crm = "not in the CRM any more" if outcome is None else \
                "deleted before" if outcome.already_deleted else "deleted"
            entries.append(AuditEntryIn(connection=ref[0], action=DELETED, object_name=ref[1], crm_id=ref[2],
                                        relay_id=_relay_id(person), detail=_detail(person, now, crm=crm), at=now))
            gone.append(ref)
            report.deleted.append(_label(ref))
            tally.acted += 1
        with session_factory(engine).begin() as session:
            records = Records(session)
            for (connection, object_name), group in _by_object(gone).items():
                records.mark_deleted_many(connection, object_name, group, seen_at=now)
            Audit(session).append_many(entries)
        left = [r for r in person.live if r not in gone] + list(person.elsewhere)
        if gone and not left:  # none of their records is left in any CRM: purge Relay's store
            _purge(engine, person, now, report)


def _by_object(refs: Sequence[Ref]) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for connection, object_name, crm_id in refs:
        grouped.setdefault((connection, object_name), []).append(crm_id)
    return grouped


def _purge(engine: Engine, person: PersonRetention, now: datetime, report: RetentionReport) -> None:
    """Purge a deleted person's personal data from the store (``relay forget-person``'s erasure by email)."""
    if person.email:
        forget_subject(engine, person.email, now=now)
    else:  # no email to find them by: their snapshots lose their personal fields
        with session_factory(engine).begin() as session:
            RetentionStore(session).blank_snapshots(list(person.records), PERSONAL_FIELDS, now=now)
    report.purged.append(pseudonym(person.email, person.key))


# --------------------------------------------------------------------------- the run


def run_retention(config: RelayConfig, engine: Engine, *, now: datetime, apply: bool = False,
                  connection: str | None = None, adapters: Mapping[str, CrmAdapter] | None = None) -> RetentionReport:
    """Classify, age and (with ``apply``) archive, delete or suppress, as retention.yaml says.

    Args:
        config: Relay's configuration (retention.yaml, consent.yaml's unsubscribed values, the mappings).
        engine: Relay's store.
        now: The clock to judge by (aware).
        apply: Act; without it nothing is written anywhere (the CRM users are read).
        connection: Only this connection's records (and users); a person is still judged on all their
            records, and purged from the store only once no CRM has a record of them.
        adapters: Open adapters by connection (tests); the others are opened and closed here.

    Raises:
        KeyError: an unknown connection.
        ValueError: ``now`` is naive.
        CrmError: a CRM failed as a whole (what was done before stays, audited).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC recommended)")
    names = (connection,) if connection is not None else tuple(config.relay.connections)
    for name in names:
        config.connection(name)  # KeyError naming the known connections
    report = RetentionReport(now=now, apply=apply, connections=names,
                             actions={name: period.action for name, period in config.rules.retention.classes.items()})
    opened: dict[str, CrmAdapter] = {}
    given = dict(adapters or {})

    def adapter_of(name: str) -> CrmAdapter:
        if name not in given and name not in opened:
            opened[name] = open_adapter(config, name, engine=engine, priority=Priority.BACKGROUND)
        return given.get(name) or opened[name]

    try:
        people, report.unreadable = plan_people(config, engine, now, names)
        people += plan_employees(config, engine, now, names, {n: adapter_of(n) for n in names})
        for person in people:
            tally = report.tallies[person.verdict.retention_class]
            tally.people += 1
            tally.records += len(person.records)
            if not person.verdict.due:
                continue
            tally.due_people += 1
            tally.due_records += len(person.records)
            tally.done_before += len(person.done)
            if person.pending:
                report.due.append(person)
        log.info("retention at %s (%s): %s", now.isoformat(), "apply" if apply else "dry run",
                 ", ".join(f"{c} {t.due_people}/{t.people} due" for c, t in report.tallies.items()))
        if not apply:
            return report
        by_action: dict[str, list[PersonRetention]] = {}
        for person in report.due:
            by_action.setdefault(person.verdict.action, []).append(person)
        _archive(engine, by_action.get("archive", []), now, report)
        _suppress(engine, by_action.get("suppress", []), now, report)
        deleting = by_action.get("delete", [])
        if deleting:
            needed = {ref[0] for p in deleting for ref in p.pending if ref in p.live}
            _delete(config, engine, deleting, now, {n: adapter_of(n) for n in needed}, report)
        counts = Counter(p.verdict.action for p in report.due)
        log.info("retention applied: %s; %d deletions refused", dict(counts), len(report.failed))
        return report
    finally:
        for adapter in opened.values():
            adapter.close()


# --------------------------------------------------------------------------- the scheduled run (relay worker)

STARTED = "retention_job_started"
"""Audit action of a scheduled run's claim of its cron minute (``slot``), written before it runs: a minute is
claimed once, however many workers see it due."""
DRY_RUN = "retention_dry_run"
"""Audit action of a scheduled dry run: what it would do, as counts per class and action."""
APPLIED = "retention_applied"
"""Audit action of a scheduled applied run (the records it acted on have their own entries)."""
JOB_FAILED = "retention_job_failed"
"""Audit action of a scheduled run that failed (the error's type only; the worker's log has the rest)."""
FINISHED = (DRY_RUN, APPLIED, JOB_FAILED)
JOB_CONNECTION = "retention"
"""The audit entries of the scheduled runs concern every connection: they name this instead of one."""
JOB_LOCK = "relay.retention"
"""The store-wide lock a scheduled run holds (:func:`connector.store.db.held_alone`)."""


@dataclass(frozen=True)
class ScheduledRun:
    """A scheduled run as the audit log keeps it.

    Attributes:
        slot: The cron minute it ran for.
        at: When it ran (the clock it judged by).
        action: ``retention_dry_run``, ``retention_applied`` or ``retention_job_failed``.
        detail: The audit entry's detail (counts per class and action; the error's type when it failed).
    """

    slot: datetime
    at: datetime
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class ScheduledOutcome:
    """What one call of :func:`run_scheduled_retention` did.

    ``status``: ``ran`` (``run`` is what it audited), ``failed`` (audited, logged), ``done`` (a run of this slot or
    a later one is in the audit log already), ``busy`` (another process holds the lock).
    """

    status: str
    slot: datetime
    run: ScheduledRun | None = None

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "slot": self.slot.isoformat(),
                "action": self.run.action if self.run else None, "detail": self.run.detail if self.run else None}


def scheduled_summary(report: RetentionReport) -> dict[str, Any]:
    """Counts only (no record, key or person): per class its action and figures, per action the records
    acted on (``apply``) or that a run would act on (a dry run)."""
    classes: dict[str, dict[str, Any]] = {}
    by_action: Counter[str] = Counter()
    for name, tally in report.tallies.items():
        action = report.actions.get(name, "-")
        acting = tally.acted if report.apply else tally.due_records - tally.done_before
        classes[name] = {"action": action, "people": tally.people, "records": tally.records,
                         "due_people": tally.due_people, "due_records": tally.due_records,
                         "done_before": tally.done_before, "done_now" if report.apply else "would_do": acting,
                         "refused": tally.failed}
        by_action[action] += acting
    verb = "done" if report.apply else "would_do"
    return {"apply": report.apply, "connections": list(report.connections), "classes": classes,
            verb: {action: by_action[action] for action in ("delete", "archive", "suppress")},
            "refused": len(report.failed), "purged": len(report.purged), "unreadable": report.unreadable}


def _latest(reader: Connection | Session, actions: Sequence[str]) -> ScheduledRun | None:
    row = reader.execute(select(AuditRow.at, AuditRow.action, AuditRow.detail).where(AuditRow.action.in_(actions))
                         .order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(1)).first()
    if row is None:
        return None
    detail = dict(row.detail)
    slot = detail.get("slot")
    return ScheduledRun(datetime.fromisoformat(slot) if isinstance(slot, str) else row.at, row.at, row.action, detail)


def last_scheduled_run(engine: Engine) -> ScheduledRun | None:
    """The latest scheduled run that finished (dry run, applied or failed) as the audit log keeps it, or ``None``."""
    with read_snapshot(engine) as reader:
        return _latest(reader, FINISHED)


def _claim(engine: Engine, slot: datetime, now: datetime, apply: bool) -> ScheduledRun | None:
    """Claim cron minute ``slot`` (audited ``retention_job_started``); the claim of this slot or a later one
    when there is one already. One write transaction: SQLite's write lock (``BEGIN IMMEDIATE``) serialises it;
    on PostgreSQL the caller holds the store-wide lock."""
    with session_factory(engine).begin() as session:
        claimed = _latest(session, (STARTED,))
        if claimed is not None and claimed.slot >= slot:
            return claimed
        Audit(session).append(JOB_CONNECTION, STARTED, detail={"slot": slot.isoformat(), "now": now.isoformat(),
                                                               "apply": apply}, at=now)
        return None


def run_scheduled_retention(config: RelayConfig, engine: Engine, *, slot: datetime, now: datetime,
                            adapters: Mapping[str, CrmAdapter] | None = None) -> ScheduledOutcome:
    """The scheduled run of cron minute ``slot``: once, however many workers call it.

    The minute is claimed first (audited ``retention_job_started`` in one write transaction); a minute claimed
    already, or one older than the last claimed, is not run. On PostgreSQL the whole run holds the store-wide
    lock ``relay.retention`` (:func:`~connector.store.db.held_alone`: workers on other machines find it busy);
    on SQLite the claim's write transaction serialises the workers. Then :func:`run_retention` judges at
    ``now``, applying when ``retention.yaml``'s ``schedule.apply`` says so, and the run is audited
    ``retention_dry_run`` or ``retention_applied`` with :func:`scheduled_summary`'s counts. An error is logged
    and audited ``retention_job_failed`` (its type only), never raised: the minute is not tried again.
    """
    apply = config.rules.retention.schedule.apply
    with read_snapshot(engine) as reader:  # a read first (no write lock): the minutes after a run find it claimed
        claimed = _latest(reader, (STARTED,))
    if claimed is not None and claimed.slot >= slot:
        return ScheduledOutcome("done", slot, claimed)
    with held_alone(engine, JOB_LOCK) as held:
        if not held:
            log.info("retention (scheduled %s): another process is running it", slot.isoformat())
            return ScheduledOutcome("busy", slot)
        claimed = _claim(engine, slot, now, apply)
        if claimed is not None:
            log.info("retention (scheduled %s): claimed already (for %s, at %s)", slot.isoformat(),
                     claimed.slot.isoformat(), claimed.at.isoformat())
            return ScheduledOutcome("done", slot, claimed)
        base = {"slot": slot.isoformat(), "now": now.isoformat(), "scheduled": True}
        try:
            report = run_retention(config, engine, now=now, apply=apply, adapters=adapters)
        except Exception as exc:  # logged and audited; the worker goes on
            log.error("retention (scheduled %s, %s) failed: %s: %s", slot.isoformat(),
                      "apply" if apply else "dry run", type(exc).__name__, exc)
            detail = {**base, "apply": apply, "error": type(exc).__name__}
            _audit(engine, [AuditEntryIn(connection=JOB_CONNECTION, action=JOB_FAILED, detail=detail, at=now)])
            return ScheduledOutcome("failed", slot, ScheduledRun(slot, now, JOB_FAILED, detail))
        action = APPLIED if apply else DRY_RUN
        summary = scheduled_summary(report)
        detail = {**base, **summary}
        _audit(engine, [AuditEntryIn(connection=JOB_CONNECTION, action=action, detail=detail, at=now)])
        counts: dict[str, int] = summary["done" if apply else "would_do"]
        log.info("retention (scheduled %s, %s): %s %s; %s", slot.isoformat(), "applied" if apply else "dry run",
                 "done:" if apply else "would", ", ".join(f"{a} {n}" for a, n in counts.items()),
                 ", ".join(f"{c} {t.due_people}/{t.people} people due" for c, t in report.tallies.items()))
        return ScheduledOutcome("ran", slot, ScheduledRun(slot, now, action, detail))
