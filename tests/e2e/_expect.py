"""What a rep must see in the CRM after Relay routed people, checked record by record.

Each check returns the problems it found as sentences (empty when all is well), so a
failing test names every record that is wrong and how.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine

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
    """The ``assigned`` audit lines of people routed afresh in ``connection`` (not kept from elsewhere)."""
    return {row.crm_id or "": row for row in audit(engine, connection, "assigned") if not row.detail["kept_existing"]}


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


def nurture_problems(view: CrmView, before: CrmView, engine: Engine, connection: str) -> list[str]:
    """Nurture leads (score under 40, no account match, no named account) keep their owner and get no task."""
    problems: list[str] = []
    assignments = active_assignments(engine, connection)
    nurture = [p for p in view.people.values()
               if p.score is not None and p.score < NURTURE_BELOW and not p.matched_account]
    if not nurture:
        problems.append(f"{connection}: no nurture lead in the data, the check would prove nothing")
    for person in nurture:
        assignment = assignments.get(person.id)
        if assignment is not None and assignment.rule != "named_account" and not _kept(engine, connection, person.id):
            problems.append(f"{connection} {person.id}: nurture lead (score {person.score}) routed by "
                            f"{assignment.rule} to {assignment.owner_email}")
        if assignment is None:
            if view.open_relay_tasks_of(person.id):
                problems.append(f"{connection} {person.id}: nurture lead has a Relay task")
            if person.owner_id != before.people[person.id].owner_id:
                problems.append(f"{connection} {person.id}: nurture lead's owner changed "
                                f"{before.people[person.id].owner_id} -> {person.owner_id}")
    return problems


def _kept(engine: Engine, connection: str, crm_id: str) -> bool:
    return any(row.crm_id == crm_id and row.detail["kept_existing"] for row in audit(engine, connection, "assigned"))


def unrouted_leads(view: CrmView, engine: Engine, connection: str, lead_object: str) -> list[str]:
    """Unconverted leads Relay should have routed with no active assignment.

    Those are the leads scoring 40 or more, and the leads matched to an account whose
    owner is an active user (they go to the account owner whatever their score).
    """
    assignments = active_assignments(engine, connection)
    return [
        f"{connection} {p.object} {p.id}: score {p.score}, account {p.matched_account}, but not routed"
        for p in view.people.values()
        if p.object == lead_object and not p.converted and p.id not in assignments
        and ((p.score or 0) >= NURTURE_BELOW
             or (p.matched_account and view.account_owner_active(p.matched_account)))
    ]


def one_task_per_person_across(views: list[CrmView]) -> list[str]:
    """Every person with a Relay task has exactly one open Relay task across all CRMs."""
    counts: dict[str, list[str]] = defaultdict(list)
    for view in views:
        for relay_id, tasks in _open_tasks_by_person(view).items():
            counts[relay_id] += [f"{view.crm} task {t.id}" for t in tasks]
    return [f"person {relay_id} has {len(tasks)} open Relay tasks: {tasks}"
            for relay_id, tasks in counts.items() if len(tasks) != 1]
