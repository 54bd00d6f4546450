"""Dispositions end to end: the seed's rep dispositions, synced by ``relay sync``, read back through the SDKs.

The seed (``dispositions=True``) sets the dispositions reps set (seed 002 "Lead Disposition") on
leads and contacts of both CRMs, and records each in ``truth.dispositions``: the value, when it
was set, whether a No Response is due to be recycled, and for Qualified the SDR -> AE checklist
fields left empty. From that truth and the shipped rules (dispositions.yaml, handoffs.yaml
``sdr_to_ae``, routing.yaml's roster and regions, stages.yaml's BANT), read here as YAML, this test
says what each CRM must show after one sync of each connection:

* Qualified, checklist incomplete: not converted, one task for the SDR (the owner) naming exactly
  the missing fields, a ``handoff_checklist_incomplete`` finding whose fields are the truth's;
* Qualified, checklist complete: converted once, the opportunity / deal owned by the AE (the owner
  when it is an AE already, else a sales rep of the person's region), the AE's task on it;
* Qualified on a Salesforce Contact (none seeded: a rep sets one here through the API): nothing to
  convert, the ledger says so;
* No Response past its 90 days (``relay sync`` runs on the wall clock, long past the seed's anchor,
  so every seeded one is due): a new owner, never the one who returned it;
* Do Not Contact (on any record of the person, per the truth's clusters): never routed, no Relay
  task on its records synced once Relay knew (a record synced before is not suppressed retroactively);
* Not Ready, Bad Fit: held, the owner it has, no task;

and that a second sync changes no owner and creates no task, opportunity, conversion, handoff or
finding. Every record's problem is collected and reported together.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.store.db import create_engine_for
from connector.store.models import AuditRow, DispositionRow, HandoffRow
from crm_sandbox.seed import SeedData
from crm_sandbox.seed._model import DispositionTruth, RecordKey

from ._cli import sync_summary
from ._crm import hubspot_client, salesforce_client, sobject
from ._world import LEADS, SEED, SHIPPED_CONFIG, Crms, RelayEnv, running_crms, seed_for

CONNECTIONS = ("salesforce", "hubspot")
CHECKLIST_SUBJECT = "Complete the handoff checklist before the AE takes over"
FINDING_CODE = "handoff_checklist_incomplete"
KIND = "sdr_to_ae"
SETTLED_ACTIONS = ("converted", "conversion_failed", "handoff", "handoff_done", "governance_finding",
                   "finding_resolved", "recycled", "disposition")
"""Audit actions a second sync over unchanged data must not add to."""
CONVERSION_KEY = "relay_conversion_key"  # the deal property Relay sets on the deal it makes for a contact


# --------------------------------------------------------------------------- the shipped rules, as YAML


def _yaml(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((SHIPPED_CONFIG / "rules" / f"{name}.yaml").read_text())
    return loaded


@dataclass(frozen=True)
class Member:
    role: str
    region: str
    active: bool


@dataclass(frozen=True)
class Rules:
    """What the shipped rule files say, read without Relay."""

    roster: dict[str, Member]
    regions: dict[str, str]
    """ISO country code -> region."""
    ae_roles: frozenset[str]
    ae_group_role: str
    ae_group_by_region: bool
    ae_subject: str
    checklist: list[str]
    recycle_days: int

    @classmethod
    def shipped(cls) -> Rules:
        routing, handoffs, stages, dispositions = (_yaml(n) for n in ("routing", "handoffs", "stages", "dispositions"))
        sdr = handoffs["sdr_to_ae"]
        group = routing["groups"][sdr["ae_group"]]
        checklist = list(sdr["checklist"])
        checklist += [f for f in stages["frameworks"][sdr["framework"]] if f not in checklist]
        return cls(
            roster={m["email"].lower(): Member(m["role"], m["region"], m.get("active", True)) for m in routing["team"]},
            regions={str(c).upper(): region for region, codes in routing["regions"].items() for c in codes},
            ae_roles=frozenset(sdr["ae_roles"]), ae_group_role=group["role"],
            ae_group_by_region=group.get("by_region", True), ae_subject=sdr["ae_task"]["subject"],
            checklist=checklist, recycle_days=dispositions["dispositions"]["No Response"]["recycle_days"],
        )

    def ae_for(self, owner: str | None, country: str | None) -> set[str]:
        """Who may own a complete handoff: the owner when it is an active AE, else the AE group's active
        members of the person's region (any region when its country is not a plain ISO code of routing.yaml)."""
        member = self.roster.get(owner or "")
        if owner is not None and member is not None and member.role in self.ae_roles and member.active:
            return {owner}
        region = self.regions.get((country or "").strip().upper())
        pool = {email for email, m in self.roster.items() if m.role == self.ae_group_role and m.active
                and (region is None or not self.ae_group_by_region or m.region in (region, "global"))}
        assert pool, f"no active {self.ae_group_role} for region {region}: the test expects no fallback here"
        return pool


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def disposition_seed() -> SeedData:
    """The e2e seed (7, 150 leads, the fixed anchor) with the dispositions reps set."""
    return seed_for(SEED, LEADS, dispositions=True)


@pytest.fixture
def crms(disposition_seed: SeedData) -> Iterator[Crms]:
    """Both sandbox CRMs seeded with dispositions (overrides conftest's ``crms``, which ``relay_env`` uses)."""
    with running_crms(disposition_seed) as world:
        yield world


# --------------------------------------------------------------------------- what the CRMs show


@dataclass(frozen=True)
class Task:
    id: str
    people: frozenset[str]
    deals: frozenset[str]
    owner: str | None
    subject: str
    description: str


@dataclass(frozen=True)
class Person:
    owner: str | None
    """The owner's email (None: no owner, or one the CRM does not list)."""
    disposition: str | None
    status: str | None
    reason: str | None
    converted: bool = False
    opportunity: str | None = None
    lifecycle: str | None = None


@dataclass(frozen=True)
class Deal:
    id: str
    owner: str | None
    contacts: frozenset[str]
    key: str


@dataclass(frozen=True)
class View:
    """One CRM after a sync: people, Relay's tasks, opportunities or Relay's deals, users by id."""

    people: dict[str, Person]
    tasks: list[Task]
    deals: dict[str, Deal]
    users: dict[str, str]
    """User / owner id -> email."""

    def tasks_of(self, person: str) -> list[Task]:
        return [t for t in self.tasks if person in t.people]

    def tasks_on(self, deal: str) -> list[Task]:
        return [t for t in self.tasks if deal in t.deals]

    def email(self, user_id: str | None) -> str | None:
        return self.users.get(user_id or "")


def _read_salesforce(crms: Crms) -> View:
    sf = salesforce_client(crms.salesforce)
    users = {u["Id"]: u["Email"].lower() for u in sf.query_all("SELECT Id, Email FROM User")["records"]}
    people: dict[str, Person] = {}
    for row in sf.query_all("SELECT Id, OwnerId, Disposition__c, Status, Relay_Routing_Reason__c, IsConverted, "
                            "ConvertedOpportunityId FROM Lead")["records"]:
        people[row["Id"]] = Person(users.get(row["OwnerId"]), row["Disposition__c"], row["Status"],
                                   row["Relay_Routing_Reason__c"], bool(row["IsConverted"]),
                                   row["ConvertedOpportunityId"])
    for row in sf.query_all("SELECT Id, OwnerId, Disposition__c, Relay_Routing_Reason__c FROM Contact")["records"]:
        people[row["Id"]] = Person(users.get(row["OwnerId"]), row["Disposition__c"], None,
                                   row["Relay_Routing_Reason__c"])
    tasks = [Task(r["Id"], frozenset({r["WhoId"]} - {None}), frozenset({r["WhatId"]} - {None}), users.get(r["OwnerId"]),
                  r["Subject"] or "", r["Description"] or "")
             for r in sf.query_all("SELECT Id, WhoId, WhatId, OwnerId, Subject, Description FROM Task "
                                   "WHERE Relay_Idempotency_Key__c != null")["records"]]
    deals = {r["Id"]: Deal(r["Id"], users.get(r["OwnerId"]), frozenset(), "")
             for r in sf.query_all("SELECT Id, OwnerId FROM Opportunity")["records"]}
    return View(people, tasks, deals, users)


def _ids(associations: Any, name: str) -> frozenset[str]:
    linked = associations.get(name) if associations else None
    return frozenset(str(a.id) for a in linked.results) if linked else frozenset()


def _read_hubspot(crms: Crms) -> View:
    hs = hubspot_client(crms.hubspot)
    users = {str(o.id): o.email.lower() for o in hs.crm.owners.get_all() if o.email}
    people = {
        c.id: Person(users.get(c.properties.get("hubspot_owner_id") or ""), c.properties.get("disposition") or None,
                     c.properties.get("hs_lead_status"), c.properties.get("relay_routing_reason") or None,
                     lifecycle=c.properties.get("lifecyclestage"))
        for c in hs.crm.contacts.get_all(properties=["hubspot_owner_id", "disposition", "hs_lead_status",
                                                     "relay_routing_reason", "lifecyclestage"])
    }
    tasks = []
    for task in hs.crm.objects.get_all("tasks", properties=["hs_task_subject", "hs_task_body", "hubspot_owner_id",
                                                            "relay_idempotency_key"],
                                       associations=["contacts", "deals"]):
        p = task.properties
        if p.get("relay_idempotency_key"):
            tasks.append(Task(task.id, _ids(task.associations, "contacts"), _ids(task.associations, "deals"),
                              users.get(p.get("hubspot_owner_id") or ""), p.get("hs_task_subject") or "",
                              p.get("hs_task_body") or ""))
    deals = {}
    for deal in hs.crm.deals.get_all(properties=["hubspot_owner_id", CONVERSION_KEY], associations=["contacts"]):
        deals[deal.id] = Deal(deal.id, users.get(deal.properties.get("hubspot_owner_id") or ""),
                              _ids(deal.associations, "contacts"), deal.properties.get(CONVERSION_KEY) or "")
    return View(people, tasks, deals, users)


def _read(crms: Crms) -> dict[str, View]:
    return {"salesforce": _read_salesforce(crms), "hubspot": _read_hubspot(crms)}


# --------------------------------------------------------------------------- the seed, before Relay


def _seeded(seed: SeedData, key: RecordKey) -> dict[str, Any]:
    """The record's fields as seeded (Salesforce fields, or HubSpot properties)."""
    crm, obj, crm_id = key
    if crm == "salesforce":
        return next(r for r in seed.salesforce[obj] if r["Id"] == crm_id)
    record = next(r for r in seed.hubspot[obj] if r["id"] == crm_id)
    properties: dict[str, Any] = record["properties"]
    return properties


def _seeded_owner(seed: SeedData, key: RecordKey) -> str | None:
    """Who owned the record when the rep set its disposition (the seed's owner)."""
    fields = _seeded(seed, key)
    if key[0] == "salesforce":
        return next((u["Email"].lower() for u in seed.salesforce["User"] if u["Id"] == fields["OwnerId"]), None)
    return next((o["email"].lower() for o in seed.hubspot_owners if str(o["id"]) == fields["hubspot_owner_id"]), None)


def _country(seed: SeedData, key: RecordKey) -> str | None:
    fields = _seeded(seed, key)
    value = fields.get("Country") or fields.get("MailingCountry") if key[0] == "salesforce" else fields.get("country")
    return str(value) if value else None


def _checklist_values(seed: SeedData, key: RecordKey, rules: Rules) -> dict[str, str]:
    """The checklist as the seed filled it (canonical name -> value): the AE task carries them."""
    fields = _seeded(seed, key)
    crm_name = {name: "_".join(w.capitalize() for w in name.split("_")) + "__c" if key[0] == "salesforce" else name
                for name in rules.checklist}  # Meeting_Outcome__c / meeting_outcome
    return {name: str(fields[crm_name[name]]).strip() for name in rules.checklist if fields.get(crm_name[name])}


def _suppressed_clusters(seed: SeedData) -> dict[int, RecordKey]:
    """Person clusters (truth) with a Do Not Contact on any record -> that record."""
    found: dict[int, RecordKey] = {}
    for i, cluster in enumerate(seed.truth.persons):
        for key in cluster:
            truth = seed.truth.dispositions.get(key)
            if truth is not None and truth.disposition == "Do Not Contact":
                found[i] = key
    return found


def _cluster_of(seed: SeedData) -> dict[RecordKey, int]:
    return {key: i for i, cluster in enumerate(seed.truth.persons) for key in cluster}


# --------------------------------------------------------------------------- the store


StoreRow = TypeVar("StoreRow", AuditRow, DispositionRow, HandoffRow)
Item = TypeVar("Item")


def _rows(engine: Engine, model: type[StoreRow], *where: Any) -> list[StoreRow]:
    with Session(engine, expire_on_commit=False) as session:
        found = list(session.scalars(select(model).where(*where).order_by(model.id)).all())
        session.expunge_all()
    return found


def _audit(engine: Engine, *actions: str) -> list[AuditRow]:
    return _rows(engine, AuditRow, AuditRow.action.in_(actions))


def _audit_counts(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as db:
        rows = db.execute(select(AuditRow.connection, AuditRow.action, func.count())
                          .where(AuditRow.action.in_(SETTLED_ACTIONS))
                          .group_by(AuditRow.connection, AuditRow.action)).all()
    return {(c, a): n for c, a, n in rows}


def _sf_when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _qualify_a_salesforce_contact(crms: Crms) -> RecordKey:
    """A rep sets Qualified on a Salesforce Contact (the seed sets none: a contact is converted already).

    The first seeded contact whose person has no disposition anywhere, owned by an active rep.
    """
    seed = crms.seed
    disposed = {i for key, i in _cluster_of(seed).items() if key in seed.truth.dispositions}
    clusters = _cluster_of(seed)
    users = {u["Id"]: u for u in seed.salesforce["User"]}
    contact = next(c for c in sorted(seed.salesforce["Contact"], key=lambda c: c["Id"])
                   if clusters[("salesforce", "Contact", c["Id"])] not in disposed
                   and users[c["OwnerId"]]["IsActive"] and "northwind" in users[c["OwnerId"]]["Email"])
    sobject(crms.salesforce, "Contact").update(
        contact["Id"], {"Disposition__c": "Qualified", "Disposition_Date__c": _sf_when(datetime.now(UTC))})
    return ("salesforce", "Contact", contact["Id"])


# --------------------------------------------------------------------------- the checks, one per case


@dataclass(frozen=True)
class After:
    """What the first sync left: both CRMs, the audit log, the SDR -> AE handoffs, the dispositions ledger."""

    seed: SeedData
    rules: Rules
    started: datetime
    views: dict[str, View]
    audit: list[AuditRow]
    handoffs: dict[RecordKey, HandoffRow]
    ledger: dict[RecordKey, DispositionRow]

    def audited(self, key: RecordKey, action: str) -> list[AuditRow]:
        return [r for r in self.audit if (r.connection, r.object, r.crm_id) == key and r.action == action]

    def relay_deals_of(self, key: RecordKey) -> list[Deal]:
        """The HubSpot deals Relay made for a contact (they carry its conversion key)."""
        return [d for d in self.views["hubspot"].deals.values() if key[2] in d.contacts and d.key]


def _only(items: list[Item], what: str) -> Item:
    """The one item of ``items`` (what they are, for the failure)."""
    assert len(items) == 1, f"expected exactly one {what}, found {items}"
    return items[0]


def _check_blocked(after: After, key: RecordKey, t: DispositionTruth) -> None:
    """Qualified, checklist incomplete: not converted, one task for the SDR naming what is missing."""
    crm, _, crm_id = key
    shown, owner = after.views[crm].people[crm_id], _seeded_owner(after.seed, key)
    if crm == "salesforce":
        assert not shown.converted and shown.status == "Qualified", shown
    else:
        assert after.relay_deals_of(key) == [], after.relay_deals_of(key)
        assert shown.lifecycle == _seeded(after.seed, key).get("lifecyclestage"), shown  # not moved by Relay
        assert shown.status == "OPEN_DEAL", shown  # Qualified, as HubSpot spells it
    assert shown.owner == owner, (shown, owner)  # the SDR keeps it
    mine = after.views[crm].tasks_of(crm_id)
    task = _only([x for x in mine if x.subject == CHECKLIST_SUBJECT], "checklist task")
    assert task.owner == owner, (task, owner)
    assert task.description.rsplit("missing ", 1)[-1].split(", ") == t.checklist_missing, task.description
    assert [x for x in mine if x is not task] == [], mine  # held: no other task
    finding = _only(after.audited(key, "governance_finding"), "governance_finding audit row")
    assert finding.detail["code"] == FINDING_CODE, finding.detail
    assert finding.detail["fields"] == t.checklist_missing and finding.detail["assignee"] == owner, finding.detail
    row = after.ledger[key]
    assert (row.status, row.attempts) == ("pending", 0), (row.status, row.attempts)
    assert key not in after.handoffs and after.audited(key, "converted") == after.audited(key, "handoff") == []


def _check_converted(after: After, key: RecordKey) -> str:
    """Qualified, checklist complete: converted once, the opportunity the AE's, the AE's task on it. Returns its id."""
    crm, _, crm_id = key
    rules, view = after.rules, after.views[crm]
    shown, owner = view.people[crm_id], _seeded_owner(after.seed, key)
    aes = rules.ae_for(owner, _country(after.seed, key))
    values = _checklist_values(after.seed, key, rules)
    assert list(values) == rules.checklist, values  # the seed filled every field
    if crm == "salesforce":
        assert shown.converted and shown.opportunity, shown
        opportunity = view.deals[shown.opportunity]
    else:
        opportunity = _only(after.relay_deals_of(key), "deal made by Relay")
        assert opportunity.key.startswith(f"contact-{crm_id}-"), opportunity
        assert shown.lifecycle == "opportunity", shown
        assert shown.owner == owner, (shown, owner)  # the contact stays the SDR's; the deal is the AE's
    ae = opportunity.owner
    assert ae in aes and rules.roster[ae].role in rules.ae_roles, (opportunity, owner, aes)
    # The AE's task (deal governance may add its own to the new deal, e.g. "Add the next step").
    ae_task = _only([x for x in view.tasks_on(opportunity.id) if x.subject == rules.ae_subject], "AE task")
    assert ae_task.owner == ae, (ae_task, ae)
    missing = [f"{name}: {value}" for name, value in values.items() if f"{name}: {value}" not in ae_task.description]
    assert missing == [], (missing, ae_task.description)
    assert [x for x in view.tasks_of(crm_id) if x.subject == CHECKLIST_SUBJECT] == []
    handoff = after.handoffs[key]
    assert (handoff.owner_email, handoff.receiver_email) == (owner, ae) and handoff.done_at is not None, handoff
    converted = _only(after.audited(key, "converted"), "converted audit row")
    assert converted.detail["opportunity_id"] == opportunity.id and converted.detail["ae_email"] == ae
    handed = _only(after.audited(key, "handoff"), "handoff audit row")
    assert (handed.detail["kind"], handed.detail["from"], handed.detail["to"]) == (KIND, owner, ae), handed.detail
    done = _only(after.audited(key, "handoff_done"), "handoff_done audit row")
    assert done.detail["opportunity_id"] == opportunity.id and done.detail["problem"] is None, done.detail
    assert after.audited(key, "governance_finding") == []
    row = after.ledger[key]
    assert (row.status, row.opportunity_id, row.attempts) == ("converted", opportunity.id, 1), row
    return opportunity.id


def _check_suppressed(after: After, key: RecordKey) -> None:
    """Do Not Contact here, or on another record of the same person: never routed, no task."""
    crm, _, crm_id = key
    shown, owner = after.views[crm].people[crm_id], _seeded_owner(after.seed, key)
    assert shown.owner == owner, (shown, owner)
    assert shown.reason is not None and shown.reason.startswith("Suppressed: Do Not Contact"), shown
    assert after.views[crm].tasks_of(crm_id) == [], after.views[crm].tasks_of(crm_id)
    assert after.audited(key, "recycled") == []


def _check_no_response(after: After, key: RecordKey, t: DispositionTruth) -> str:
    """No Response: past its recycle days a new owner, never the one who returned it; else held. Returns which."""
    crm, _, crm_id = key
    shown, owner = after.views[crm].people[crm_id], _seeded_owner(after.seed, key)
    mine = after.views[crm].tasks_of(crm_id)
    due = t.set_at + timedelta(days=after.rules.recycle_days) <= after.started
    assert due or not t.recycle_due, t
    if not due:  # none in the seed while the wall clock is 90 days past its anchor
        assert shown.owner == owner and mine == [], (shown, mine)
        return "held"
    assert shown.owner != owner, f"still owned by {owner}, who returned it: {shown}"
    assert shown.disposition is None, shown  # back as a fresh lead
    recycled = _only(after.audited(key, "recycled"), "recycled audit row")
    assert recycled.detail["returned_by"] == owner, recycled.detail
    assert recycled.detail["new_owner_email"] == shown.owner, recycled.detail
    row = after.ledger[key]
    assert (row.status, row.excluded_owner_email, row.new_owner_email) == ("recycled", owner, shown.owner), row
    if shown.owner in after.rules.roster:  # routed to a rep: its follow-up task
        assert [x.owner for x in mine] == [shown.owner], mine
    return "recycled"


def _check_held(after: After, key: RecordKey) -> None:
    """Not Ready, Bad Fit: the owner it has, no task."""
    crm, _, crm_id = key
    shown, owner = after.views[crm].people[crm_id], _seeded_owner(after.seed, key)
    assert shown.owner == owner, (shown, owner)
    assert after.views[crm].tasks_of(crm_id) == [], after.views[crm].tasks_of(crm_id)
    # README: "its routing reason says Held: ..."; a record its CRM owner keeps says that instead.
    assert shown.reason is not None and (shown.reason.startswith("Held: ")
                                         or shown.reason.endswith(f"already owned in the CRM by {owner}; kept")), shown


def _check_contact_qualified(after: After, key: RecordKey) -> None:
    """A Qualified Salesforce Contact: no lead to convert, the ledger says so; no handoff, no finding, no task."""
    row = after.ledger[key]
    assert (row.value, row.status, row.attempts, row.opportunity_id) == ("Qualified", "done", 0, None), row
    assert row.error is not None and "there is no lead to convert" in row.error, row.error
    assert key not in after.handoffs
    assert [a.action for a in after.audit if (a.connection, a.object, a.crm_id) == key] == ["disposition"]
    assert after.views["salesforce"].tasks_of(key[2]) == []


# --------------------------------------------------------------------------- the test


def test_every_seeded_disposition_shows_in_the_crm_as_the_sop_says_and_a_second_sync_adds_nothing(
        relay_env: RelayEnv, crms: Crms) -> None:
    seed, rules = crms.seed, Rules.shipped()
    truth: Mapping[RecordKey, DispositionTruth] = seed.truth.dispositions
    assert rules.checklist == ["meeting_outcome", "handoff_notes", "next_step", "budget", "authority", "need",
                               "timeline"]
    contact_qualified = _qualify_a_salesforce_contact(crms)
    started = datetime.now(UTC)
    first = {name: sync_summary(name) for name in CONNECTIONS}
    assert all(s["write_failures"] == [] for s in first.values()), first

    engine = create_engine_for(relay_env.store_url)
    after = After(seed, rules, started, _read(crms), _audit(engine, *SETTLED_ACTIONS),
                  {(r.connection, r.object, r.crm_id): r for r in _rows(engine, HandoffRow, HandoffRow.kind == KIND)},
                  {(r.connection, r.object, r.crm_id): r for r in _rows(engine, DispositionRow)})
    suppressed, cluster_of = _suppressed_clusters(seed), _cluster_of(seed)
    checked = dict.fromkeys(("blocked", "converted", "contact_qualified", "recycled", "suppressed", "held"), 0)
    problems: list[str] = []
    opportunities: set[str] = set()

    def check(case: str, what: Any, *args: Any) -> None:
        checked[case] += 1
        try:
            found = what(after, *args)
        except (AssertionError, KeyError, ValueError) as exc:  # every record's problem, in one report
            problems.append(f"{args[0]} {case}: {type(exc).__name__} {exc}")
            return
        if isinstance(found, str) and case == "converted":
            opportunities.add(found)

    for key, t in sorted(truth.items()):
        person_suppressed = cluster_of[key] in suppressed
        if t.disposition == "Qualified":
            assert not person_suppressed, f"{key}: Qualified and Do Not Contact on one person: decide what to expect"
            assert key[1] != "Contact", f"{key}: the seed qualified a Salesforce Contact: check it as such"
            if t.checklist_missing:
                check("blocked", _check_blocked, key, t)
            else:
                check("converted", _check_converted, key)
        elif person_suppressed:
            check("suppressed", _check_suppressed, key)
        elif t.disposition == "No Response":
            due = t.set_at + timedelta(days=rules.recycle_days) <= started
            check("recycled" if due else "held", _check_no_response, key, t)
        else:
            assert t.disposition in ("Not Ready", "Bad Fit"), (key, t)
            check("held", _check_held, key)
    check("contact_qualified", _check_contact_qualified, contact_qualified)

    # Do Not Contact: no Relay task on any record of the person synced once Relay knew (its own CRM, and
    # HubSpot for one set in Salesforce: a record synced before is not suppressed retroactively, only "again").
    for i, dnc in suppressed.items():
        for key in seed.truth.persons[i]:
            if CONNECTIONS.index(key[0]) >= CONNECTIONS.index(dnc[0]) and after.views[key[0]].tasks_of(key[2]):
                problems.append(f"{key}: a task though {dnc} is Do Not Contact: {after.views[key[0]].tasks_of(key[2])}")

    # Relay made exactly the opportunities and deals of the complete conversions.
    seeded = {r["Id"] for r in seed.salesforce["Opportunity"]} | {r["id"] for r in seed.hubspot["deals"]}
    made = {d for view in after.views.values() for d in view.deals if d not in seeded}
    expected = sum(1 for t in truth.values() if t.disposition == "Qualified" and not t.checklist_missing)
    if made != opportunities or len(made) != expected:
        problems.append(f"Relay made opportunities / deals {sorted(made)}, expected {expected}: {sorted(opportunities)}")

    # A second sync: no task, no conversion, handoff or finding.
    audit_before = _audit_counts(engine)
    second = {name: sync_summary(name) for name in CONNECTIONS}
    again = _read(crms)
    audit_after = _audit_counts(engine)
    engine.dispose()
    if [s["tasks_created"] for s in second.values()] != [0, 0]:
        problems.append(f"second sync created tasks: { {n: s['tasks_created'] for n, s in second.items()} }")
    for crm in CONNECTIONS:
        new_tasks = [t for t in again[crm].tasks if t.id not in {x.id for x in after.views[crm].tasks}]
        new_deals = set(again[crm].deals) - set(after.views[crm].deals)
        if new_tasks or new_deals:
            problems.append(f"second sync of {crm}: new tasks {new_tasks}, new opportunities / deals {new_deals}")
    for key in sorted(truth):
        before_, now_ = after.views[key[0]].people[key[2]], again[key[0]].people[key[2]]
        if (now_.owner, now_.converted, now_.disposition) != (before_.owner, before_.converted, before_.disposition):
            problems.append(f"{key}: the second sync changed it: {before_} -> {now_}")
    added = {k: audit_after.get(k, 0) - n for k, n in audit_before.items() if audit_after.get(k, 0) != n}
    added |= {k: n for k, n in audit_after.items() if k not in audit_before}
    if added:
        problems.append(f"second sync added audit rows: {added}")

    assert problems == [], "\n".join(problems)
    assert all(checked.values()), checked  # the seed exercises every case
