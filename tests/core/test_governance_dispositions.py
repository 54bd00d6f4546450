"""Dispositions in the decision core: the SOP's boundaries, and what the ledger's word does to a decision.

``disposition_decision``/``recycle_due``/``disposition_overdue``/``nurture_track`` at their edges (the
90-day recycle, the 24-hour disposition, every nurture track edge), and ``decide_people`` told that a
person is suppressed, recycled or held (:class:`~connector.core.decide.Disposed`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.core.decide import Disposed, decide_people, nurture_track_name
from connector.core.governance.dispositions import (
    disposition_decision,
    disposition_overdue,
    nurture_track,
    recycle_due,
)
from connector.core.governance.rules import DispositionRules
from connector.core.models import ExistingAssignment, Owner, RoutingState
from connector.core.rules import Rules

from .helpers import NOW, lead, ref, team

RULES = DispositionRules()
REF = ref("00Q1")
WARM = {"title": "Marketing Manager", "employees": 300, "industry": "Technology",
        "page_views": 3, "webinar_attended": True, "email_clicks": 3, "content_downloads": 2}
HOT = {"title": "VP of Sales", "employees": 5000, "annual_revenue": 5e8, "industry": "Software",
       "demo_requested": True, "pricing_page_visits": 2, "page_views": 12, "form_submissions": 1}


# --------------------------------------------------------------------------- the SOP's boundaries


def test_no_response_is_recycled_exactly_90_days_after_its_date() -> None:
    decision = disposition_decision(REF, "No Response", RULES, NOW, team("liam.walsh"))
    assert decision.recycle_at == NOW + timedelta(days=90)
    assert not recycle_due(decision, NOW + timedelta(days=90) - timedelta(microseconds=1))
    assert recycle_due(decision, NOW + timedelta(days=90))
    assert recycle_due(decision, NOW + timedelta(days=91))
    assert decision.excluded_owner == team("liam.walsh") and decision.status == "Unqualified"


def test_only_no_response_recycles() -> None:
    for value in ("Qualified", "Not Ready", "Bad Fit", "Do Not Contact"):
        decision = disposition_decision(REF, value, RULES, NOW, team("liam.walsh"))
        assert decision.recycle_at is None and decision.excluded_owner is None
        assert not recycle_due(decision, NOW + timedelta(days=10_000))


def test_a_disposition_is_due_24_hours_after_first_touch() -> None:
    touched = NOW - timedelta(hours=24)
    assert disposition_overdue(REF, touched + timedelta(microseconds=1), None, RULES, NOW, team("a")) is None
    at_due = disposition_overdue(REF, touched, None, RULES, NOW, team("a"))
    assert at_due is not None and at_due.code == "disposition_missing"
    assert at_due.task is not None and at_due.task.assignee_email == team("a")
    assert at_due.key == f"{REF}:disposition_missing:{touched.isoformat()}"  # once per first touch
    assert disposition_overdue(REF, touched, "No Response", RULES, NOW, team("a")) is None
    assert disposition_overdue(REF, None, None, RULES, NOW, team("a")) is None  # never touched: nothing due


@pytest.mark.parametrize(("score", "track"), [
    (0, "Awareness"), (19, "Awareness"), (20, "Interested"), (39, "Interested"), (40, "Engaged"),
    (59, "Engaged"), (60, "Sales Ready"), (79, "Sales Ready"), (80, None),
])
def test_every_nurture_track_edge(score: int, track: str | None) -> None:
    found = nurture_track(score, RULES)
    assert (found.name if found else None) == track
    assert nurture_track_name(score, RULES) == track


def test_returned_to_nurture_above_every_track_gets_the_highest() -> None:
    assert nurture_track_name(80, RULES, returned=True) == "Sales Ready"
    assert nurture_track_name(100, RULES, returned=True) == "Sales Ready"
    assert nurture_track_name(25, RULES, returned=True) == "Interested"  # within a track: that track


# --------------------------------------------------------------------------- decide_people with the ledger's word


def test_every_scored_person_below_the_sales_bands_gets_its_track(rules: Rules) -> None:
    people = [lead(1, **WARM), lead(2, **HOT), lead(3, email="x@gmail.com", title=None, company=None)]
    decisions, _ = decide_people(people, [], [], rules, RoutingState(), NOW)
    for d in decisions:
        assert d.score is not None
        expected = nurture_track_name(d.score.total, rules.dispositions)
        assert d.field_updates.get("relay_nurture_track") == expected
    warm, hot, cold = decisions
    assert warm.score is not None and warm.score.total < 80 and warm.field_updates["relay_nurture_track"]
    assert hot.score is not None and hot.score.total >= 80 and hot.field_updates.get("relay_nurture_track") is None
    assert cold.field_updates["relay_nurture_track"] == "Awareness"
    person = lead(1, **WARM).model_copy(update={"relay_nurture_track": decisions[0].field_updates[
        "relay_nurture_track"]})
    (again,), _ = decide_people([person], [], [], rules, RoutingState(), NOW)
    assert "relay_nurture_track" not in again.field_updates  # written once, not again


def test_a_suppressed_person_is_never_routed_and_gets_no_task_sla_or_track(rules: Rules) -> None:
    dnc = lead(1, **HOT)
    same_person = lead(2, email=dnc.email, connection="salesforce", object="Contact", kind="contact", **HOT)
    existing = {dnc.ref: ExistingAssignment(owner_email=team("olivia.grant"), tier="Hot", assigned_at=NOW)}
    disposed = {dnc.ref: Disposed("suppressed", "Do Not Contact set 2026-03-01 by x", status="Unqualified")}
    decisions, state = decide_people([dnc, same_person], [], [], rules, RoutingState(), NOW, existing,
                                     dispositions=disposed)
    assert state == RoutingState()  # nobody's turn was taken
    for d in decisions:  # every record of the person
        assert d.routing is not None and d.routing.owner_email is None and d.routing.rule == "disposition_suppressed"
        assert d.routing.reason.startswith("Suppressed: Do Not Contact set 2026-03-01")
        assert d.sla is None and d.task is None
        assert d.field_updates.get("relay_nurture_track") is None
    assert decisions[0].field_updates["status"] == "Unqualified"  # the disposition's status, on its own record
    assert "status" not in decisions[1].field_updates


def test_a_recycled_person_is_routed_again_never_to_who_returned_it(rules: Rules) -> None:
    person = lead(1, **WARM)
    (fresh,), _ = decide_people([person], [], [], rules, RoutingState(), NOW)
    assert fresh.routing is not None and fresh.routing.owner_email is not None
    returned_by = fresh.routing.owner_email
    owners = [Owner(id="005A", email=returned_by, connection="salesforce")]
    owned = person.model_copy(update={"owner_id": "005A"})  # the CRM owner is the one who returned it
    existing = {person.ref: ExistingAssignment(owner_email=returned_by, tier="Warm", assigned_at=NOW)}
    disposed = {person.ref: Disposed("recycled", "No Response set 2025-12-01 by " + returned_by,
                                     excluded=frozenset({returned_by}))}
    (d,), _ = decide_people([owned], [], owners, rules, RoutingState(), NOW, existing, dispositions=disposed)
    assert d.routing is not None and d.routing.owner_email not in (None, returned_by)
    assert not d.routing.kept_existing and d.routing.source == "relay"
    assert d.routing.reason.startswith(f"Recycled (No Response set 2025-12-01 by {returned_by}): ")
    assert len(d.routing.reason) <= 255
    assert d.sla is not None and d.task is not None and d.task.owner_email == d.routing.owner_email
    assert "status" not in d.field_updates  # the lead comes back: no disqualifying status
    assert "disposition" not in d.field_updates  # nothing to clear on this record


def test_a_recycled_record_comes_back_without_its_disposition(rules: Rules) -> None:
    person = lead(1, disposition="No Response", disposition_at=NOW - timedelta(days=91), **WARM)
    disposed = {person.ref: Disposed("recycled", "No Response", excluded=frozenset({team("liam.walsh")}))}
    users = [Owner(id=f"005{i}", email=m.email, connection=person.ref.connection)
             for i, m in enumerate(rules.routing.team)]
    (d,), _ = decide_people([person], [], users, rules, RoutingState(), NOW, dispositions=disposed)
    assert d.routing is not None and d.routing.owner_email != team("liam.walsh")
    assert d.field_updates["disposition"] is None and d.field_updates["disposition_at"] is None


def test_a_recycled_record_whose_new_owner_has_no_user_in_its_crm_keeps_its_disposition(rules: Rules) -> None:
    # The acting layer cannot give it to someone with no user there: it is tried again, nothing is lost.
    person = lead(1, disposition="No Response", disposition_at=NOW - timedelta(days=91), **WARM)
    disposed = {person.ref: Disposed("recycled", "No Response", excluded=frozenset({team("liam.walsh")}))}
    elsewhere = [Owner(id=f"005{i}", email=m.email, connection="hubspot") for i, m in enumerate(rules.routing.team)]
    (d,), _ = decide_people([person], [], elsewhere, rules, RoutingState(), NOW, dispositions=disposed)
    assert d.routing is not None and d.routing.owner_email is not None
    assert "disposition" not in d.field_updates and "disposition_at" not in d.field_updates


def test_a_recycled_nurture_score_with_no_queue_in_its_crm_loses_the_owner_who_returned_it(rules: Rules) -> None:
    person = lead(1, disposition="No Response", disposition_at=NOW - timedelta(days=91), owner_id="005R")
    returned = team("zoe.adams")
    disposed = {person.ref: Disposed("recycled", "No Response", excluded=frozenset({returned}))}
    # the nurture queue is a user of another CRM only; the returning rep is this CRM's owner of the record
    users = [Owner(id="005R", email=returned, connection=person.ref.connection),
             Owner(id="005Q", email=rules.sla.aging.nurture_owner or "", connection="other")]
    (d,), _ = decide_people([person], [], users, rules, RoutingState(), NOW, dispositions=disposed)
    assert d.routing is not None and d.routing.owner_email is None and d.routing.fallback != "none"
    assert d.field_updates["owner_id"] is None and d.field_updates["disposition"] is None


def test_a_disposition_without_a_date_gets_the_one_relay_keyed_it_by(rules: Rules) -> None:
    person = lead(1, disposition="Bad Fit", **WARM)
    disposed = {person.ref: Disposed("held", "Bad Fit", status="Unqualified", dated=NOW)}
    (d,), _ = decide_people([person], [], [], rules, RoutingState(), NOW, dispositions=disposed)
    assert d.field_updates["disposition_at"] == NOW
    dated = person.model_copy(update={"disposition_at": NOW - timedelta(days=1)})
    (kept,), _ = decide_people([dated], [], [], rules, RoutingState(), NOW, dispositions=disposed)
    assert "disposition_at" not in kept.field_updates  # the rep's own date stands


def test_a_recycled_person_with_nobody_else_left_is_unassigned_not_returned(rules: Rules) -> None:
    person = lead(1, **WARM)
    everyone = frozenset(m.email for m in rules.routing.team)
    disposed = {person.ref: Disposed("recycled", "No Response", excluded=everyone)}
    (d,), _ = decide_people([person.model_copy(update={"disposition": "No Response"})], [], [], rules,
                            RoutingState(), NOW, dispositions=disposed)
    assert d.routing is not None and d.routing.owner_email is None and d.task is None
    assert "disposition" not in d.field_updates  # kept: recycled again at the next sync


def test_a_held_person_keeps_its_owner_and_gets_no_new_one(rules: Rules) -> None:
    kept, new = lead(1, **HOT), lead(2, **HOT)
    existing = {kept.ref: ExistingAssignment(owner_email=team("rafael.ortiz"), tier="Hot", assigned_at=NOW)}
    disposed = {kept.ref: Disposed("held", "Bad Fit set 2026-03-01", status="Unqualified"),
                new.ref: Disposed("held", "Not Ready set 2026-03-01", nurture=True)}
    decisions, state = decide_people([kept, new], [], [], rules, RoutingState(), NOW, existing, dispositions=disposed)
    by_ref = {d.ref: d for d in decisions}
    kept_routing = by_ref[kept.ref].routing
    assert kept_routing is not None and kept_routing.owner_email == team("rafael.ortiz")
    assert kept_routing.kept_existing and by_ref[kept.ref].task is None
    assert by_ref[kept.ref].field_updates["status"] == "Unqualified"
    held = by_ref[new.ref]
    assert held.routing is not None and held.routing.owner_email is None and held.routing.rule == "disposition_held"
    assert held.routing.reason.startswith("Held: Not Ready set 2026-03-01") and held.task is None and held.sla is None
    assert held.score is not None and held.score.total >= 80
    assert held.field_updates["relay_nurture_track"] == "Sales Ready"  # returned to nurture whatever the score
    assert state == RoutingState()


def test_a_status_already_there_is_not_written_again(rules: Rules) -> None:
    person = lead(1, status="Unqualified", **WARM)
    disposed = {person.ref: Disposed("held", "Bad Fit", status="Unqualified")}
    (d,), _ = decide_people([person], [], [], rules, RoutingState(), NOW, dispositions=disposed)
    assert "status" not in d.field_updates


def test_a_recycled_person_below_the_sales_bands_goes_to_the_nurture_queue_not_back(rules: Rules) -> None:
    cold = lead(1, email="x@gmail.com", title=None, company=None, owner_id="005R")
    queue = rules.sla.aging.nurture_owner or ""
    owners = [Owner(id="005R", email=team("liam.walsh"), connection="salesforce"),
              Owner(id="005Q", email=queue, connection="salesforce")]  # the queue has a user in the record's CRM
    disposed = {cold.ref: Disposed("recycled", "No Response", excluded=frozenset({team("liam.walsh")}))}
    (d,), _ = decide_people([cold], [], owners, rules, RoutingState(), NOW, dispositions=disposed)
    assert rules.sla.aging.nurture_owner is not None
    assert d.routing is not None and d.routing.owner_email == rules.sla.aging.nurture_owner
    assert d.routing.rule == "recycled_to_nurture" and d.routing.reason.endswith("-> marketing nurture, no sales "
                                                                                 "owner, no SLA")
    assert d.sla is None and d.task is None  # nurture: no sales SLA, no follow-up task
