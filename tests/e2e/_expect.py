"""What a rep must see in the CRM after Relay routed people, checked record by record.

Each check returns the problems it found as sentences (empty when all is well), so a
failing test names every record that is wrong and how.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.store.models import AssignmentRow, AuditRow

from ._crm import CrmView, PersonInCrm, TaskInCrm
from ._store import active_assignments, audit

NURTURE_BELOW = 40
"""Score under which a lead with no account match goes to nurture (config/rules/routing.yaml)."""
_SAME_INSTANT = timedelta(milliseconds=1)


def _same_time(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a.astimezone(UTC) - b.astimezone(UTC)) < _SAME_INSTANT


def _due_matches(task: TaskInCrm, sla_due: datetime) -> bool:
    if isinstance(task.due, datetime):
        return _same_time(task.due, sla_due)
    if isinstance(task.due, date):  # Salesforce ActivityDate: the deadline's day (UTC)
        return task.due == sla_due.astimezone(UTC).date()
    return False


def new_assignments(engine: Engine, connection: str) -> dict[str, AuditRow]:
    """The latest ``assigned`` audit line of each record, when it routed the person afresh (not kept)."""
    latest = {row.crm_id or "": row for row in audit(engine, connection, "assigned")}
    return {crm_id: row for crm_id, row in latest.items() if not row.detail["kept_existing"]}


def routing_problems(view: CrmView, engine: Engine, connection: str) -> list[str]:
    """Owner and Relay fields of every routed record, checked against the CRM's own users."""
    problems: list[str] = []
    assignments = active_assignments(engine, connection)
    fresh = new_assignments(engine, connection)
    if not assignments:
        problems.append(f"{connection}: Relay assigned nobody")
    for crm_id, assignment in assignments.items():
        person = view.people.get(crm_id)
        if person is None:
            problems.append(f"{connection}: assigned record {crm_id} is not in the CRM")
            continue
        problems += _owner_problems(view, person, assignment)
        if crm_id in fresh:
            problems += _field_problems(person, assignment, fresh[crm_id])
    return problems


def _owner_problems(view: CrmView, person: PersonInCrm, assignment: AssignmentRow) -> list[str]:
    expected = view.owner_ids_by_email.get(assignment.owner_email.lower())
    where = f"{view.crm} {person.object} {person.id}"
    if expected is None:
        return [f"{where}: routed to {assignment.owner_email}, who is no active user of the CRM"]
    if person.owner_id != expected:
        return [f"{where}: owner is {person.owner_id}, but Relay routed it to {assignment.owner_email} ({expected})"]
    return []


def _field_problems(person: PersonInCrm, assignment: AssignmentRow, assigned: AuditRow) -> list[str]:
    where = f"{person.object} {person.id}"
    score = assigned.detail["score"]
    problems = []
    if person.score != assignment.score or person.score != score["total"]:
        problems.append(f"{where}: score field {person.score}, Relay scored {score['total']}")
    if person.category != score["category"]:
        problems.append(f"{where}: category field {person.category!r}, Relay said {score['category']!r}")
    if not person.reason or person.reason != assignment.reason:
        problems.append(f"{where}: routing reason field {person.reason!r}, Relay's reason {assignment.reason!r}")
    if assignment.sla_due is None or not _same_time(person.sla_due, assignment.sla_due):
        problems.append(f"{where}: SLA due field {person.sla_due}, Relay's deadline {assignment.sla_due}")
    if not person.relay_id:
        problems.append(f"{where}: no Relay id on the record")
    return problems


def task_problems(view: CrmView, engine: Engine, connection: str) -> list[str]:
    """Exactly one open Relay task per person routed afresh in this CRM, due at the SLA, owned by the owner."""
    problems: list[str] = []
    assignments = active_assignments(engine, connection)
    fresh = new_assignments(engine, connection)
    tasks_by_person = _open_tasks_by_person(view)
    routed_people: dict[str, str] = {}
    for crm_id in fresh:
        person = view.people.get(crm_id)
        if person is None or not person.relay_id:
            problems.append(f"{connection}: routed record {crm_id} has no Relay id in the CRM")
            continue
        routed_people.setdefault(person.relay_id, crm_id)
    for relay_id, crm_id in routed_people.items():
        tasks = tasks_by_person.get(relay_id, [])
        assignment = assignments[crm_id]
        if len(tasks) != 1:
            problems.append(f"{connection}: person {relay_id} (record {crm_id}) has {len(tasks)} open Relay tasks: "
                            f"{[t.id for t in tasks]}")
            continue
        task = tasks[0]
        owner = view.owner_ids_by_email.get(assignment.owner_email.lower())
        if task.owner_id != owner:
            problems.append(f"{connection}: task {task.id} of {crm_id} is owned by {task.owner_id}, not {owner}")
        if assignment.sla_due is None or not _due_matches(task, assignment.sla_due):
            problems.append(f"{connection}: task {task.id} of {crm_id} is due {task.due}, SLA due {assignment.sla_due}")
    for relay_id, tasks in tasks_by_person.items():
        if relay_id not in routed_people:
            problems.append(f"{connection}: person {relay_id} was not routed here but has Relay tasks "
                            f"{[t.id for t in tasks]}")
    created = {row.crm_id for row in audit(engine, connection, "task_created")}
    for task in view.relay_tasks():
        if task.id not in created:
            problems.append(f"{connection}: task {task.id} has no task_created line in the audit log")
    return problems


def _open_tasks_by_person(view: CrmView) -> dict[str, list[TaskInCrm]]:
    found: dict[str, list[TaskInCrm]] = defaultdict(list)
    for task in view.relay_tasks():
        if not task.is_open:
            continue
        people = {view.people[pid].relay_id for pid in task.person_ids if pid in view.people}
        if len(people) != 1 or None in people:
            found[f"(task {task.id} of {task.person_ids})"].append(task)
            continue
        found[str(next(iter(people)))].append(task)
    return found


@dataclass(frozen=True)
class RoutingRulesInForce:
    """The few facts of config/rules/routing.yaml the checks below depend on."""

    team: frozenset[str]
    """Emails of the active members of the sales team."""
    reroute_owned_contacts: bool
    reroute_rep_owned_leads: bool

    @classmethod
    def of(cls, config: RelayConfig) -> RoutingRulesInForce:
        routing = config.rules.routing
        return cls(
            team=frozenset(m.email.lower() for m in routing.team if m.active),
            reroute_owned_contacts=routing.reroute_owned_contacts,
            reroute_rep_owned_leads=routing.reroute_rep_owned_leads,
        )


@dataclass(frozen=True)
class Expectation:
    """What routing must do to one CRM's people, judged from the CRM before and after a sync.

    A record keeps the owner the CRM gave it when it is a contact with an owner, or a lead
    owned by an active member of the team; the other unconverted records of a person are
    routed together, and a person scoring 40 or more must be routed.
    """

    connection: str
    before: CrmView
    after: CrmView
    rules: RoutingRulesInForce

    def keeps_crm_owner(self, person: PersonInCrm) -> bool:
        if not person.owner_id:
            return False
        if person.object == "Contact":
            return not self.rules.reroute_owned_contacts
        if self.rules.reroute_rep_owned_leads:
            return False
        emails = {user_id: email for email, user_id in self.before.owner_ids_by_email.items()}
        return emails.get(person.owner_id, "") in self.rules.team

    def people(self) -> dict[str, list[PersonInCrm]]:
        """The records of each person (by the Relay id the CRM now shows).

        People a rep gave a disposition are left out, with every record of theirs: dispositions.yaml
        decides them (recycled to another owner, suppressed, converted; tests/pipeline/test_dispositions
        checks that), not the routing rules these expectations follow. So are records a conversion created.
        """
        found: dict[str, list[PersonInCrm]] = defaultdict(list)
        for record in self.after.people.values():
            found[record.relay_id or f"(no relay id: {record.id})"].append(record)
        disposed = {key for key, records in found.items()
                    if any(r.id not in self.before.people or self.before.people[r.id].disposition for r in records)}
        return {key: records for key, records in found.items() if key not in disposed}

    def routable(self, records: list[PersonInCrm]) -> list[PersonInCrm]:
        """Records Relay routes: not converted, not keeping their CRM owner, and there before the sync (a
        contact a Qualified lead's conversion created keeps the lead's owner)."""
        return [r for r in records if not r.converted and r.id in self.before.people
                and not self.keeps_crm_owner(self.before.people[r.id])]

    def problems(self, engine: Engine) -> list[str]:
        """Everything wrong with how this CRM's people were routed."""
        assignments = active_assignments(engine, self.connection)
        kept = {row.crm_id or "" for row in audit(engine, self.connection, "assigned") if row.detail["kept_existing"]}
        problems: list[str] = []
        for relay_id, records in self.people().items():
            routable = self.routable(records)
            best = max((r.score or 0 for r in routable), default=None)
            for record in records:
                if record.converted:
                    problems += self._converted_problems(record)
                elif record not in routable:
                    problems += self._kept_owner_problems(record)
            if best is None:
                continue
            if best >= NURTURE_BELOW:
                problems += [f"{self.connection} {r.object} {r.id}: person {relay_id} scores {best}, not routed"
                             for r in routable if r.id not in assignments]
            elif not any(r.matched_account for r in routable):
                problems += self._nurture_problems(routable, assignments, kept)
        return problems

    def _converted_problems(self, record: PersonInCrm) -> list[str]:
        """A converted lead is read-only in Salesforce: Relay must not write to it at all."""
        before = self.before.people[record.id]
        if record.modified != before.modified or record.owner_id != before.owner_id:
            return [f"{self.connection} {record.object} {record.id}: converted lead was written to "
                    f"(modified {before.modified} -> {record.modified})"]
        return []

    def _kept_owner_problems(self, record: PersonInCrm) -> list[str]:
        before = self.before.people[record.id]
        problems = []
        if self.keeps_crm_owner(before) and record.owner_id != before.owner_id:
            problems.append(f"{self.connection} {record.object} {record.id}: owned by {before.owner_id} in the CRM, "
                            f"Relay moved it to {record.owner_id}")
        if self.after.open_relay_tasks_of(record.id):
            problems.append(f"{self.connection} {record.object} {record.id}: not routed by Relay but has a Relay task")
        return problems

    def _nurture_problems(
        self, routable: list[PersonInCrm], assignments: dict[str, AssignmentRow], kept: set[str]
    ) -> list[str]:
        problems = []
        for record in routable:
            where = f"{self.connection} {record.object} {record.id}"
            assignment = assignments.get(record.id)
            if assignment is not None:
                if assignment.rule != "named_account" and record.id not in kept:
                    problems.append(f"{where}: nurture lead (score {record.score}) routed by {assignment.rule}")
                continue
            if self.after.open_relay_tasks_of(record.id):
                problems.append(f"{where}: nurture lead has a Relay task")
            if record.owner_id != self.before.people[record.id].owner_id:
                problems.append(f"{where}: nurture lead's owner changed "
                                f"{self.before.people[record.id].owner_id} -> {record.owner_id}")
        return problems


def one_task_per_person_across(views: list[CrmView]) -> list[str]:
    """Every person with a Relay task has exactly one open Relay task across all CRMs."""
    counts: dict[str, list[str]] = defaultdict(list)
    for view in views:
        for relay_id, tasks in _open_tasks_by_person(view).items():
            counts[relay_id] += [f"{view.crm} task {t.id}" for t in tasks]
    return [f"person {relay_id} has {len(tasks)} open Relay tasks: {tasks}"
            for relay_id, tasks in counts.items() if len(tasks) != 1]


def after_crash_problems(
    connection: str, before: CrmView, after: CrmView, engine: Engine, config: RelayConfig
) -> list[str]:
    """Everything a crash and the run that took over may have got wrong: lost or doubled work."""
    problems = routing_problems(after, engine, connection) + task_problems(after, engine, connection)
    problems += Expectation(connection, before, after, RoutingRulesInForce.of(config)).problems(engine)
    assigned = Counter(row.crm_id for row in audit(engine, connection, "assigned"))
    problems += [f"{connection} {crm_id} was assigned {n} times" for crm_id, n in assigned.items() if n > 1]
    keys = Counter(t.idempotency_key for t in after.relay_tasks())
    problems += [f"{connection}: {n} tasks with idempotency key {key}" for key, n in keys.items() if n > 1]
    return problems
