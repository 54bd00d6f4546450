"""A data subject's access and erasure requests across Relay's store (``relay export-person``, ``relay forget-person``).

Who the person is: their email, normalised as the identity graph normalises it
(:func:`connector.core.identity.person_key`); the identities with that key, every record linked to
them (their ``relay_id`` cluster, across CRMs and objects) and every person snapshot whose email
has that key. Then every row of the store that names them: by record (connection, object, CRM id),
by ``relay_id``, by the follow-up tasks and other writes keyed on their records, or by their email
appearing in a row's text or JSON (quarantined records, webhook and form payloads, CRM error texts).

:func:`export_subject` returns those rows. :func:`forget_subject` erases the personal data in them,
in one transaction:

* person snapshots: the personal fields (:data:`PERSONAL_FIELDS`) blanked, the snapshot detached
  from its identity (no decision is made from it again), its content hash that of what is left;
* the identity's key (the email) replaced by the pseudonymous key; its links (CRM ids) kept;
* outbox messages, notifications, quarantined records, webhook and form payloads, merges, review
  items, findings, handoffs, run errors: every personal value in them replaced by ``[erased]``;
  the writes and alerts not sent yet are cancelled (``dead``, ``skipped``) and the events not
  processed yet marked processed, so nothing carries the erased values to a CRM or a person;
* open SLA clocks on their records closed (``erased``), recycles and conversions waiting cancelled;
* enrichment answers about their email deleted, and about their email's domain when no one else
  in the store has an address there (a personal domain);
* saved backtests (``relay backtest --save``) that name their records: their CRM ids stay (pseudonymous),
  any email, phone or full name of theirs goes;
* audit entries: the personal values in ``detail`` replaced through the one UPDATE the audit log
  takes (``erased_at``, ``erasure``: migration 0017_privacy); the entry, its record and relay id
  (pseudonymous) stay.

The request itself is audited (``subject_exported`` / ``subject_forgotten``, connection
``privacy``) with the pseudonymous key only: ``sha256:`` and the SHA-256 of the normalised email.
Nothing here calls a CRM: erasure in a CRM is the CRM's own process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Text, and_, cast, false, func, or_, select, update
from sqlalchemy.orm import DeclarativeBase, Session

from connector.core._email import clean_email, email_domain, is_free_mail
from connector.core.identity import person_key
from connector.store._types import content_hash
from connector.store.db import session_factory
from connector.store.models import (
    ApprovalRow,
    AssignmentRow,
    AuditRow,
    BacktestReportRow,
    ClockStatus,
    DispositionFindingRow,
    DispositionRow,
    DispositionStatus,
    EnrichmentCacheRow,
    GovernanceFindingRow,
    HandoffRow,
    IdentityKind,
    IdentityLinkRow,
    IdentityRow,
    InboxRow,
    MatchReviewRow,
    MergeRow,
    NotificationRow,
    NotificationStatus,
    OutboxRow,
    OutboxStatus,
    QuarantineRow,
    RecordRow,
    SlaClockRow,
    SyncRunRow,
)
from connector.store.repositories import Audit

PRIVACY_CONNECTION = "privacy"
"""The audit log's connection for data-subject requests (they concern no one connection)."""
EXPORTED = "subject_exported"
FORGOTTEN = "subject_forgotten"
ERASED = "[erased]"
ERASED_KEY_PREFIX = "erased:"
"""An erased identity's key: ``erased:`` and the SHA-256 hex of the normalised email."""

PERSONAL_FIELDS: tuple[str, ...] = (
    "first_name", "last_name", "email", "phone", "title", "website", "city", "state",
    "meeting_outcome", "handoff_notes", "next_step", "budget", "authority", "need", "timeline",
)
"""The canonical person fields blanked in a snapshot. Kept: company and firmographics, country,
lead source, status, owner, dates, behaviour counts, disposition, Relay's score and routing."""

_PERSONAL_KEYS = frozenset({
    "firstname", "lastname", "fullname", "name_first", "name_last", "email", "emailaddress", "workemail",
    "phone", "mobilephone", "mobile", "phonenumber", "telephone", "fax", "title", "jobtitle", "website",
    "city", "state", "street", "address", "postalcode", "zip", "mailingcity", "mailingstate", "mailingstreet",
    "mailingpostalcode", "meetingoutcome", "handoffnotes", "nextstep", "budget", "authority", "need", "timeline",
    "lead", "ip", "consenttext",
})
"""Keys (lower case, without ``_``, ``-`` and spaces) whose string value is erased wherever it sits in a JSON
document of a row about the person: canonical names and the CRMs' (``FirstName``, ``jobtitle``...), an
alert's ``lead``, a form submission's ``ip`` and consent text."""

_PHONE_RUN = re.compile(r"\+?\(?\d[\d ().\u00a0/-]{5,24}\d")
_MIN_PHONE_DIGITS = 7
_DATED = (datetime, date)


# ----------------------------------------------------------------------------------------------- the subject


def subject_key(email: str) -> str:
    """The pseudonymous key of a person: ``sha256:`` and the SHA-256 hex of their normalised email."""
    return "sha256:" + _digest(email)


def _normalised(email: str) -> str:
    return person_key(email) or clean_email(email)


def _digest(email: str) -> str:
    return hashlib.sha256(_normalised(email).encode("utf-8")).hexdigest()


def erased_identity_key(email: str) -> str:
    """The key an erased person's identity keeps (unique per person, not their email)."""
    return ERASED_KEY_PREFIX + _digest(email)


@dataclass
class PersonalValues:
    """What identifies the person in free text: emails, phone digits, names."""

    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    """Digits only (7 or more)."""
    full_names: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    """Single first and last names (2 characters or more): erased as words in rows linked to the person."""

    def add_email(self, value: object) -> None:
        if isinstance(value, str) and "@" in value and value.strip():
            self.emails.add(clean_email(value))

    def add_phone(self, value: object) -> None:
        if isinstance(value, str | int):
            digits = re.sub(r"\D", "", str(value))
            if len(digits) >= _MIN_PHONE_DIGITS:
                self.phones.add(digits)

    def add_names(self, first: object, last: object) -> None:
        parts = [p.strip() for p in (first, last) if isinstance(p, str) and p.strip()]
        for part in parts:
            if len(part) >= 2:
                self.names.add(part)
            self.names.update(word for word in re.split(r"[\s\-]+", part) if len(word) >= 3)
        if len(parts) == 2:
            self.full_names.add(f"{parts[0]} {parts[1]}")
            self.full_names.add(f"{parts[1]}, {parts[0]}")
            self.full_names.add(f"{parts[1]} {parts[0]}")


Ref = tuple[str, str, str]
"""A CRM record: (connection, object, CRM id)."""


@dataclass
class Subject:
    """A data subject as the store knows them."""

    email: str
    key: str
    """The normalised email (the identity key)."""
    pseudonym: str
    relay_ids: set[str] = field(default_factory=set)
    refs: set[Ref] = field(default_factory=set)
    values: PersonalValues = field(default_factory=PersonalValues)

    @property
    def erasure_name(self) -> str:
        """The name an erasure of this subject leaves on the audit entries it rewrites."""
        return f"forget-person {self.pseudonym[:len('sha256:') + 16]}"


@dataclass
class TableFinding:
    """The rows of one table that name the subject, and what an erasure did (or would do) to them."""

    table: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    erased: int = 0
    """Rows whose personal values were (or would be) blanked or replaced."""
    deleted: int = 0
    cancelled: int = 0
    """Writes, alerts, events, clocks or recycles stopped so that nothing acts on the erased values."""
    note: str = ""

    def counts(self) -> dict[str, int]:
        return {"found": len(self.rows), "erased": self.erased, "deleted": self.deleted, "cancelled": self.cancelled}


@dataclass
class SubjectReport:
    """What the store holds about a subject (export) or what was erased (forget)."""

    email: str
    subject: str
    relay_ids: list[str]
    records: list[str]
    tables: dict[str, TableFinding]
    action: str
    dry_run: bool = False
    audit_id: int | None = None

    @property
    def found(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())

    def as_json(self, *, rows: bool = True) -> dict[str, Any]:
        """The report as JSON (``rows``: with every row found)."""
        return {
            "subject": {"email": self.email, "key": self.subject, "relay_ids": self.relay_ids,
                        "records": self.records},
            "action": self.action,
            "dry_run": self.dry_run,
            "audit_id": self.audit_id,
            "crm": "not touched: Relay's store only (erasure in a CRM is the CRM's own process)",
            "tables": {name: {**finding.counts(), **({"rows": finding.rows} if rows else {}),
                              **({"note": finding.note} if finding.note else {})}
                       for name, finding in self.tables.items()},
        }


# ------------------------------------------------------------------------------------------------ helpers


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row_dict(row: DeclarativeBase) -> dict[str, Any]:
    table = row.__table__
    return {column.name: _jsonable(getattr(row, column.key)) for column in table.columns}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _mentions(columns: Sequence[Any], needles: Iterable[str]) -> ColumnElement[bool]:
    """Any of ``columns`` (text or JSON) contains any of ``needles`` (lower case), ignoring case."""
    conditions = [
        func.lower(cast(column, Text)).like(f"%{_like_escape(needle.lower())}%", escape="\\")
        for column in columns for needle in needles
    ]
    return or_(*conditions) if conditions else false()


def _of_refs(model: Any, refs: Iterable[Ref]) -> ColumnElement[bool]:
    """The rows of ``model`` about one of ``refs`` (its ``connection``, ``object`` and ``crm_id`` columns)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for connection, obj, crm_id in refs:
        grouped.setdefault((connection, obj), []).append(crm_id)
    conditions = [and_(model.connection == connection, model.object == obj, model.crm_id.in_(sorted(ids)))
                  for (connection, obj), ids in sorted(grouped.items())]
    return or_(*conditions) if conditions else false()


def _keyed_refs(column: Any, refs: Iterable[Ref]) -> ColumnElement[bool]:
    """``column`` (an idempotency key, a JSON detail) names a write keyed on one of ``refs`` (``:Lead:00Q...:``)."""
    conditions = [column.like(f"%{_like_escape(f'{connection}:{obj}:{crm_id}:')}%", escape="\\")
                  for connection, obj, crm_id in refs]
    return or_(*conditions) if conditions else false()


def _normal_key(key: str) -> str:
    return re.sub(r"[\s_\-]", "", key).lower()


class _Scrubber:
    """Replaces a subject's personal values in text and JSON documents.

    ``words``: a row that is the subject's own: their single first and last names are replaced as words
    too, and every value of a personal key (:data:`_PERSONAL_KEYS`). Otherwise only their emails, phones
    and full names are.
    """

    def __init__(self, values: PersonalValues, *, words: bool) -> None:
        self._keys = _PERSONAL_KEYS if words else frozenset()
        patterns = sorted(values.emails | values.full_names, key=len, reverse=True)
        single = sorted(values.names, key=len, reverse=True) if words else []
        parts = [re.escape(p) for p in patterns]
        parts += [rf"(?<!\w){re.escape(name)}(?!\w)" for name in single]
        self._text = re.compile("|".join(parts), re.IGNORECASE) if parts else None
        self._phones = {digits[-10:] for digits in values.phones}

    def text(self, value: str) -> str:
        if self._text is not None:
            value = self._text.sub(ERASED, value)
        if self._phones:
            value = _PHONE_RUN.sub(self._phone, value)
        return value

    def _phone(self, match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if len(digits) >= _MIN_PHONE_DIGITS and any(digits.endswith(p) or p.endswith(digits) for p in self._phones
                                                    if len(digits) >= min(len(p), _MIN_PHONE_DIGITS)):
            return ERASED
        return match.group()

    def document(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if isinstance(item, str) and item.strip() and _normal_key(str(key)) in self._keys:
                    out[key] = ERASED
                else:
                    out[key] = self.document(item)
            return out
        if isinstance(value, list):
            return [self.document(item) for item in value]
        return value


# --------------------------------------------------------------------------------------------- the finder


@dataclass
class _Found:
    """One table's rows about the subject: the mapped rows, and which are linked (by record or relay id)."""

    rows: list[Any] = field(default_factory=list)
    linked: set[int] = field(default_factory=set)
    """Indexes into ``rows`` of those linked to the subject, not only mentioning their email."""
    _index: dict[int, int] = field(default_factory=dict)

    def add(self, row: Any, *, linked: bool) -> None:
        index = self._index.get(id(row))  # the session's identity map: one object per row
        if index is None:
            index = self._index[id(row)] = len(self.rows)
            self.rows.append(row)
        if linked:
            self.linked.add(index)


def find_subject(session: Session, email: str) -> Subject:
    """Who ``email`` is in the store: their identities, records and personal values."""
    key = _normalised(email)
    subject = Subject(email=email, key=key, pseudonym=subject_key(email))
    subject.values.add_email(email)
    subject.values.add_email(key)
    erased = erased_identity_key(email)
    subject.relay_ids.update(session.scalars(
        select(IdentityRow.relay_id).where(IdentityRow.kind == IdentityKind.PERSON.value,
                                           IdentityRow.key.in_([key, erased]))))
    domain = key.rsplit("@", 1)[-1] if "@" in key else None
    if domain:
        domains = {domain} | ({"googlemail.com"} if domain == "gmail.com" else set())
        candidates = session.scalars(select(RecordRow).where(
            RecordRow.kind == "person", _mentions([RecordRow.canonical], [f"@{d}" for d in domains])))
        for row in candidates:
            if _normalised(str(row.canonical.get("email") or "")) == key:
                subject.refs.add((row.connection, row.object, row.crm_id))
                if row.relay_id:
                    subject.relay_ids.add(row.relay_id)
    if subject.relay_ids:
        ids = sorted(subject.relay_ids)
        for model in (IdentityLinkRow, RecordRow):
            rows = session.execute(select(model.connection, model.object, model.crm_id)
                                   .where(model.relay_id.in_(ids)))
            subject.refs.update((connection, obj, crm_id) for connection, obj, crm_id in rows)
    for row in _snapshots(session, subject):
        canonical = row.canonical
        subject.values.add_email(canonical.get("email"))
        subject.values.add_phone(canonical.get("phone"))
        subject.values.add_names(canonical.get("first_name"), canonical.get("last_name"))
    return subject


def _snapshots(session: Session, subject: Subject) -> list[RecordRow]:
    if not subject.refs:
        return []
    return list(session.scalars(select(RecordRow).where(_of_refs(RecordRow, subject.refs), RecordRow.kind == "person")
                                .order_by(RecordRow.connection, RecordRow.object, RecordRow.crm_id)))


def _crm_ids(subject: Subject) -> set[str]:
    return {crm_id for _, _, crm_id in subject.refs}


def _collect(session: Session, subject: Subject) -> dict[str, _Found]:
    """Every row of every table that names the subject, by table."""
    refs, relay_ids = subject.refs, sorted(subject.relay_ids)
    emails = sorted(e for e in subject.values.emails if len(e) >= 5)
    found: dict[str, _Found] = {}

    def gather(name: str, model: Any, linked: ColumnElement[bool] | None, mentioned: ColumnElement[bool] | None,
               order: Any, confirm: Callable[[Any], bool] | None = None) -> None:
        target = found.setdefault(name, _Found())
        if linked is not None:
            for row in session.scalars(select(model).where(linked).order_by(order)):
                if confirm is None or confirm(row):
                    target.add(row, linked=True)
        if mentioned is not None:
            for row in session.scalars(select(model).where(mentioned).order_by(order)):
                target.add(row, linked=False)

    by_relay = (lambda column: column.in_(relay_ids)) if relay_ids else (lambda column: false())
    gather("identities", IdentityRow, and_(IdentityRow.kind == IdentityKind.PERSON.value, by_relay(IdentityRow.relay_id)),
           None, IdentityRow.relay_id)
    gather("identity_links", IdentityLinkRow, by_relay(IdentityLinkRow.relay_id), None, IdentityLinkRow.crm_id)
    gather("records", RecordRow, and_(_of_refs(RecordRow, refs), RecordRow.kind == "person"),
           _mentions([RecordRow.canonical], emails), RecordRow.crm_id)  # a deal's handoff form may name them
    gather("assignments", AssignmentRow, or_(_of_refs(AssignmentRow, refs), by_relay(AssignmentRow.relay_id)), None,
           AssignmentRow.id)
    gather("sla_clocks", SlaClockRow, or_(_of_refs(SlaClockRow, refs), by_relay(SlaClockRow.relay_id)), None,
           SlaClockRow.id)
    gather("dispositions", DispositionRow, or_(_of_refs(DispositionRow, refs), by_relay(DispositionRow.relay_id)),
           _mentions([DispositionRow.error], emails), DispositionRow.id)
    gather("disposition_findings", DispositionFindingRow,
           or_(_of_refs(DispositionFindingRow, refs), by_relay(DispositionFindingRow.relay_id)),
           _mentions([DispositionFindingRow.message], emails), DispositionFindingRow.id)

    crm_ids = _crm_ids(subject)

    def names_a_record(payload: Any, connection: str) -> bool:
        """A write about another record (a task) that names one of the subject's: in its associations, or by a
        Salesforce id (unique in the org) anywhere in it. A short id (HubSpot's) may be another object's too."""
        mine = {(obj, crm_id) for conn, obj, crm_id in refs if conn == connection}
        if not mine or not isinstance(payload, Mapping):
            return False
        pairs = {tuple(map(str, pair)) for pair in payload.get("associations") or []
                 if isinstance(pair, list | tuple) and len(pair) == 2}
        unique = {crm_id for _, crm_id in mine if len(crm_id) >= 15}
        return bool(pairs & mine) or bool(unique and _leaves(payload) & unique)

    outbox_linked = or_(_of_refs(OutboxRow, refs), _keyed_refs(OutboxRow.idempotency_key, refs),
                        _mentions([OutboxRow.payload], [f'"{crm_id}"' for crm_id in sorted(crm_ids)]))
    gather("outbox", OutboxRow, outbox_linked, _mentions([OutboxRow.payload, OutboxRow.last_error], emails),
           OutboxRow.id,
           confirm=lambda row: ((row.connection, row.object, row.crm_id) in refs
                                or any(f"{c}:{o}:{i}:" in row.idempotency_key for c, o, i in refs)
                                or names_a_record(row.payload, row.connection)))
    gather("notifications", NotificationRow, or_(_of_refs(NotificationRow, refs), by_relay(NotificationRow.relay_id)),
           _mentions([NotificationRow.payload, NotificationRow.last_error], emails), NotificationRow.id)
    gather("audit_log", AuditRow,
           or_(_of_refs(AuditRow, refs), by_relay(AuditRow.relay_id), _keyed_refs(cast(AuditRow.detail, Text), refs)),
           or_(_mentions([AuditRow.detail], emails),
               and_(AuditRow.connection == PRIVACY_CONNECTION,
                    _mentions([AuditRow.detail], [subject.pseudonym]))),
           AuditRow.id)
    gather("quarantine", QuarantineRow, _of_refs(QuarantineRow, refs),
           _mentions([QuarantineRow.payload, QuarantineRow.reason], emails), QuarantineRow.id)
    gather("webhook_inbox", InboxRow, _of_refs(InboxRow, refs), _mentions([InboxRow.payload, InboxRow.crm_id], emails),
           InboxRow.id)  # a captured person's events are about "email:<address>" (crm_id) until a record exists
    gather("enrichment_cache", EnrichmentCacheRow,
           and_(EnrichmentCacheRow.kind == "person", EnrichmentCacheRow.lookup_key.in_(emails or [""])),
           None, EnrichmentCacheRow.lookup_key)
    personal_domains = _personal_domains(session, subject)
    if personal_domains:
        gather("enrichment_cache", EnrichmentCacheRow,
               and_(EnrichmentCacheRow.kind == "company", EnrichmentCacheRow.lookup_key.in_(sorted(personal_domains))),
               None, EnrichmentCacheRow.lookup_key)
    merge_linked = [and_(MergeRow.connection == conn, MergeRow.object == obj,
                         or_(MergeRow.survivor_id == crm_id, _mentions([MergeRow.loser_ids], [f'"{crm_id.lower()}"'])))
                    for conn, obj, crm_id in sorted(refs)]
    gather("merges", MergeRow, or_(*merge_linked) if merge_linked else None,
           _mentions([MergeRow.plan, MergeRow.outcome, MergeRow.error], emails), MergeRow.id)
    review_keys = sorted(f"{conn}/{obj}/{crm_id}" for conn, obj, crm_id in refs)
    gather("match_reviews", MatchReviewRow,
           or_(MatchReviewRow.left_key.in_(review_keys), MatchReviewRow.right_key.in_(review_keys)) if review_keys
           else None, _mentions([MatchReviewRow.reasons], emails), MatchReviewRow.id)
    gather("governance_findings", GovernanceFindingRow, None, _mentions([GovernanceFindingRow.message], emails),
           GovernanceFindingRow.id)
    gather("approvals", ApprovalRow, None, _mentions([ApprovalRow.approver_email, ApprovalRow.approved_by], emails),
           ApprovalRow.id)
    gather("handoffs", HandoffRow, None, _mentions([HandoffRow.detail], emails), HandoffRow.id)
    gather("sync_runs", SyncRunRow, None, _mentions([SyncRunRow.error], emails), SyncRunRow.id)
    # A saved backtest names records by CRM id and owners by email: found by the subject's records (never as
    # "linked": the report is about everyone replayed, so only the subject's own values in it may go).
    gather("backtest_reports", BacktestReportRow, None,
           _mentions([BacktestReportRow.report], [f'"{c}/{o}/{i}"' for c, o, i in sorted(refs)] + emails),
           BacktestReportRow.id)
    return {name: rows for name, rows in found.items()}


def _leaves(value: Any) -> set[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        return set().union(*(_leaves(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_leaves(item) for item in value)) if value else set()
    return set()


def _personal_domains(session: Session, subject: Subject) -> set[str]:
    """The subject's email domains no other person in the store has an address at and no account has (not
    free mail): a domain of their own, whose company answers are about them."""
    personal: set[str] = set()
    for email in subject.values.emails:
        domain = email_domain(email)
        if domain is None or is_free_mail(domain):
            continue
        accounts = session.scalars(select(RecordRow.crm_id).where(
            RecordRow.kind == "account", _mentions([RecordRow.canonical], [f'"{domain}"', f"/{domain}", f".{domain}"])))
        if accounts.first() is not None:
            continue
        others = session.scalars(select(RecordRow).where(
            RecordRow.kind == "person", _mentions([RecordRow.canonical], [f"@{domain}"])))
        if all((row.connection, row.object, row.crm_id) in subject.refs
               or email_domain(str(row.canonical.get("email") or "")) != domain for row in others):
            personal.add(domain)
    return personal


# ------------------------------------------------------------------------------------------ export, forget


def export_subject(engine: Engine, email: str, *, now: datetime | None = None, audit: bool = True) -> SubjectReport:
    """Every row of the store that names ``email``'s person; the request is audited (``subject_exported``)."""
    with session_factory(engine).begin() as session:
        subject = find_subject(session, email)
        found = _collect(session, subject)
        report = _report(subject, found, EXPORTED)
        if audit:
            report.audit_id = _audit(session, subject, report, now)
    return report


def forget_subject(engine: Engine, email: str, *, dry_run: bool = False, now: datetime | None = None) -> SubjectReport:
    """Erase ``email``'s person's personal data from the store, in one transaction (see the module).

    ``dry_run``: find and count everything, change nothing (and audit nothing).
    """
    at = now or datetime.now(UTC)
    with session_factory(engine).begin() as session:
        subject = find_subject(session, email)
        found = _collect(session, subject)
        report = _report(subject, found, FORGOTTEN, dry_run=dry_run)
        linked_scrub = _Scrubber(subject.values, words=True)
        text_scrub = _Scrubber(subject.values, words=False)
        for name, rows in found.items():
            finding = report.tables[name]
            for index, row in enumerate(rows.rows):
                own = index in rows.linked or name in _ABOUT_THEM_WHEN_NAMED
                scrub = linked_scrub if own else text_scrub
                _ERASERS[name](session, subject, row, scrub, finding, at, dry_run)
        if not dry_run:  # a dry run wrote nothing: every change above is made only without it
            report.audit_id = _audit(session, subject, report, at)
    return report


def _report(subject: Subject, found: Mapping[str, _Found], action: str, *, dry_run: bool = False) -> SubjectReport:
    tables = {name: TableFinding(name, [_row_dict(row) for row in rows.rows]) for name, rows in found.items()}
    return SubjectReport(email=subject.email, subject=subject.pseudonym, relay_ids=sorted(subject.relay_ids),
                         records=[f"{c}/{o}/{i}" for c, o, i in sorted(subject.refs)], tables=tables, action=action,
                         dry_run=dry_run)


def _audit(session: Session, subject: Subject, report: SubjectReport, now: datetime | None) -> int:
    detail = {"subject": subject.pseudonym, "relay_ids": sorted(subject.relay_ids),
              "tables": {name: finding.counts() for name, finding in report.tables.items() if finding.rows},
              "crm": "not touched"}
    return Audit(session).append(PRIVACY_CONNECTION, report.action, detail=detail, at=now or datetime.now(UTC))


Eraser = Callable[[Session, Subject, Any, _Scrubber, TableFinding, datetime, bool], None]


def _changed(old: Any, new: Any) -> bool:
    return bool(old != new)


def _erase_columns(session: Session, row: Any, scrub: _Scrubber, columns: Sequence[str], finding: TableFinding,
                   dry_run: bool, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Scrub ``columns`` of ``row`` (text or JSON); write them with ``extra`` when anything changed."""
    values = {column: scrub.document(getattr(row, column)) for column in columns if getattr(row, column) is not None}
    values = {column: value for column, value in values.items() if _changed(getattr(row, column), value)}
    if values:
        finding.erased += 1
    values.update(extra or {})
    if values and not dry_run:
        mapper = type(row)
        keys = {column.key: getattr(row, column.key) for column in mapper.__table__.primary_key.columns}
        session.execute(update(mapper).where(*(getattr(mapper, k) == v for k, v in keys.items())).values(**values))
    return values


def _erase_identity(session: Session, subject: Subject, row: IdentityRow, scrub: _Scrubber, finding: TableFinding,
                    at: datetime, dry_run: bool) -> None:
    if row.key is None or row.key.startswith(ERASED_KEY_PREFIX):
        return
    finding.erased += 1
    if not dry_run:
        session.execute(update(IdentityRow).where(IdentityRow.relay_id == row.relay_id)
                        .values(key=ERASED_KEY_PREFIX + hashlib.sha256(row.key.encode("utf-8")).hexdigest()))


def _keep(session: Session, subject: Subject, row: Any, scrub: _Scrubber, finding: TableFinding, at: datetime,
          dry_run: bool) -> None:
    finding.note = "kept: CRM ids and relay ids only (pseudonymous)"


def _erase_record(session: Session, subject: Subject, row: RecordRow, scrub: _Scrubber, finding: TableFinding,
                  at: datetime, dry_run: bool) -> None:
    """The subject's own snapshots lose their personal fields and their identity; another record's snapshot
    (a deal, an account) that names them loses those values only."""
    own = row.kind == "person" and (row.connection, row.object, row.crm_id) in subject.refs
    canonical = dict(row.canonical)
    if own:
        for name in PERSONAL_FIELDS:
            if canonical.get(name) is not None:
                canonical[name] = None
    canonical = scrub.document(canonical)
    if canonical == row.canonical and (row.relay_id is None or not own):
        return
    finding.erased += 1
    if not dry_run:
        values: dict[str, Any] = {"canonical": canonical, "content_hash": content_hash(canonical)}
        if own:
            values["relay_id"] = None
        session.execute(update(RecordRow).where(RecordRow.connection == row.connection, RecordRow.object == row.object,
                                                RecordRow.crm_id == row.crm_id).values(**values))


def _erase_assignment(session: Session, subject: Subject, row: AssignmentRow, scrub: _Scrubber,
                      finding: TableFinding, at: datetime, dry_run: bool) -> None:
    _erase_columns(session, row, scrub, ["reason"], finding, dry_run)


def _erase_clock(session: Session, subject: Subject, row: SlaClockRow, scrub: _Scrubber, finding: TableFinding,
                 at: datetime, dry_run: bool) -> None:
    if row.status != ClockStatus.OPEN.value:
        return
    finding.cancelled += 1
    if not dry_run:
        session.execute(update(SlaClockRow).where(SlaClockRow.id == row.id).values(
            status=ClockStatus.CLOSED.value, closed_reason="erased", closed_at=at, next_due_at=None, updated_at=at))


_WAITING_DISPOSITIONS = (DispositionStatus.WAITING.value, DispositionStatus.PENDING.value)
_CANCELLED = "cancelled: its data subject was erased (relay forget-person)"


def _erase_disposition(session: Session, subject: Subject, row: DispositionRow, scrub: _Scrubber,
                       finding: TableFinding, at: datetime, dry_run: bool) -> None:
    extra: dict[str, Any] = {}
    if row.status in _WAITING_DISPOSITIONS:
        finding.cancelled += 1
        extra = {"status": DispositionStatus.SUPERSEDED.value, "error": _CANCELLED, "acted_at": at}
    _erase_columns(session, row, scrub, ["error"] if not extra else [], finding, dry_run, extra)


def _erase_disposition_finding(session: Session, subject: Subject, row: DispositionFindingRow, scrub: _Scrubber,
                               finding: TableFinding, at: datetime, dry_run: bool) -> None:
    _erase_columns(session, row, scrub, ["message"], finding, dry_run)


def _erase_outbox(session: Session, subject: Subject, row: OutboxRow, scrub: _Scrubber, finding: TableFinding,
                  at: datetime, dry_run: bool) -> None:
    extra: dict[str, Any] = {}
    if row.status != OutboxStatus.SENT.value and row.status != OutboxStatus.DEAD.value:
        finding.cancelled += 1
        extra = {"status": OutboxStatus.DEAD.value, "last_error": _CANCELLED, "claimed_by": None,
                 "claimed_until": None}
    _erase_columns(session, row, scrub, ["payload", "crm_result"] + ([] if extra else ["last_error"]), finding,
                   dry_run, extra)


_UNSENT = (NotificationStatus.PENDING.value, NotificationStatus.SENDING.value, NotificationStatus.FAILED.value)


def _erase_notification(session: Session, subject: Subject, row: NotificationRow, scrub: _Scrubber,
                        finding: TableFinding, at: datetime, dry_run: bool) -> None:
    extra: dict[str, Any] = {}
    if row.status in _UNSENT:
        finding.cancelled += 1
        extra = {"status": NotificationStatus.SKIPPED.value, "last_error": _CANCELLED, "claimed_until": None}
    _erase_columns(session, row, scrub, ["payload"] + ([] if extra else ["last_error"]), finding, dry_run, extra)


def _erase_audit(session: Session, subject: Subject, row: AuditRow, scrub: _Scrubber, finding: TableFinding,
                 at: datetime, dry_run: bool) -> None:
    if row.connection == PRIVACY_CONNECTION:
        return  # a request's own entry: the pseudonymous key only
    detail = scrub.document(row.detail)
    if detail == row.detail:
        return
    marks = [*(row.detail.get("erased") or []), subject.pseudonym] if isinstance(row.detail, Mapping) else []
    detail = {**detail, "erased": sorted(set(map(str, marks)))}
    finding.erased += 1
    if dry_run:
        return
    # A second erasure of one entry (it named two people) must move the time on: the trigger takes no other UPDATE.
    stamp = at if row.erased_at is None or row.erased_at < at else row.erased_at + _TICK
    session.execute(update(AuditRow).where(AuditRow.id == row.id)
                    .values(detail=detail, erased_at=stamp, erasure=subject.erasure_name))


def _erase_quarantine(session: Session, subject: Subject, row: QuarantineRow, scrub: _Scrubber, finding: TableFinding,
                      at: datetime, dry_run: bool) -> None:
    _erase_columns(session, row, scrub, ["payload", "reason"], finding, dry_run)


def _erase_inbox(session: Session, subject: Subject, row: InboxRow, scrub: _Scrubber, finding: TableFinding,
                 at: datetime, dry_run: bool) -> None:
    extra: dict[str, Any] = {}
    if row.processed_at is None:
        finding.cancelled += 1
        extra = {"processed_at": at, "claimed_by": None, "claimed_until": None}
    _erase_columns(session, row, scrub, ["payload", "crm_id"], finding, dry_run, extra)


def _delete_enrichment(session: Session, subject: Subject, row: EnrichmentCacheRow, scrub: _Scrubber,
                       finding: TableFinding, at: datetime, dry_run: bool) -> None:
    finding.deleted += 1
    if not dry_run:
        session.delete(row)


def _erase_backtest_report(session: Session, subject: Subject, row: BacktestReportRow, scrub: _Scrubber,
                           finding: TableFinding, at: datetime, dry_run: bool) -> None:
    """A saved backtest keeps the subject's CRM ids (pseudonymous); their emails, phones and full names go, and
    the label of their owner changes (none is saved: ``relay backtest --save`` leaves labels out)."""
    finding.note = "kept: the records' CRM ids (pseudonymous) in saved backtests"
    mine = {f"{c}/{o}/{i}" for c, o, i in subject.refs}
    report = scrub.document(row.report)
    changes = report.get("owner_changes") if isinstance(report, dict) else None
    for change in changes if isinstance(changes, list) else []:
        if isinstance(change, dict) and change.get("ref") in mine and change.get("label") is not None:
            change["label"] = None
    if report == row.report:
        return
    finding.erased += 1
    if not dry_run:
        session.execute(update(BacktestReportRow).where(BacktestReportRow.id == row.id).values(report=report))


def _scrub_only(*columns: str) -> Eraser:
    def erase(session: Session, subject: Subject, row: Any, scrub: _Scrubber, finding: TableFinding, at: datetime,
              dry_run: bool) -> None:
        _erase_columns(session, row, scrub, columns, finding, dry_run)

    return erase


_TICK = timedelta(microseconds=1)

_ABOUT_THEM_WHEN_NAMED = frozenset({"quarantine", "webhook_inbox"})
"""Tables whose row holding the subject's email is theirs (a record or form payload of the person): all its
personal fields go. In the others such a row is about something else (a deal whose form names them, another
person's merge): only the subject's own values in it are replaced."""

_ERASERS: dict[str, Eraser] = {
    "identities": _erase_identity,
    "identity_links": _keep,
    "records": _erase_record,
    "assignments": _erase_assignment,
    "sla_clocks": _erase_clock,
    "dispositions": _erase_disposition,
    "disposition_findings": _erase_disposition_finding,
    "outbox": _erase_outbox,
    "notifications": _erase_notification,
    "audit_log": _erase_audit,
    "quarantine": _erase_quarantine,
    "webhook_inbox": _erase_inbox,
    "enrichment_cache": _delete_enrichment,
    "merges": _scrub_only("plan", "outcome", "error"),
    "match_reviews": _scrub_only("reasons"),
    "governance_findings": _scrub_only("message"),
    "approvals": _scrub_only("approver_email", "approved_by"),
    "handoffs": _scrub_only("detail"),
    "sync_runs": _scrub_only("error"),
    "backtest_reports": _erase_backtest_report,
}


__all__ = ["ERASED", "EXPORTED", "FORGOTTEN", "PERSONAL_FIELDS", "PRIVACY_CONNECTION", "PersonalValues", "Subject",
           "SubjectReport", "TableFinding", "erased_identity_key", "export_subject", "find_subject", "forget_subject",
           "subject_key"]
