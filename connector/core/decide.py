"""The decision core's entry point: hygiene -> identity -> scoring -> routing -> SLA.

``decide_people`` is pure: records, rules, round-robin state and the current time in;
decisions and the new round-robin state out. The pipeline stores the decisions (ledger,
audit, outbox) and persists the returned state in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.core.hygiene import clean_person
from connector.core.identity import (
    AccountIndex,
    IdentityCluster,
    OwnerIndex,
    account_owner,
    active_owner_emails,
    cluster_people,
    match_account,
    owners_by_id,
    person_key,
    record_identity_id,
    registered_domain,
)
from connector.core.models import (
    Account,
    ExistingAssignment,
    Finding,
    HygieneResult,
    LeadDecision,
    Owner,
    Person,
    RecordRef,
    RoutingDecision,
    RoutingState,
    ScoreResult,
    SlaDecision,
    TaskDecision,
)
from connector.core.routing import MatchedAccountOwner, RoutingInput, route
from connector.core.rules import Rules
from connector.core.scoring import score_person
from connector.core.sla import sla_for


@dataclass(frozen=True)
class _Prepared:
    person: Person
    cleaned: HygieneResult
    score: ScoreResult
    account: Account | None


class _Quarantine(Exception):
    """A record that cannot be decided; the message is the quarantine reason."""


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _prepare(
    person: Person, accounts: AccountIndex, owners: OwnerIndex, rules: Rules
) -> _Prepared:
    cleaned = clean_person(person)
    p = cleaned.person
    if person_key(p.email) is None and _blank(p.first_name) and _blank(p.last_name) \
            and _blank(p.company):
        raise _Quarantine("no valid email, name or company: nothing identifies this person")
    account = match_account(cleaned.email_domain, accounts, owners, person.ref.connection)
    score = score_person(cleaned, rules.scoring)
    return _Prepared(person=person, cleaned=cleaned, score=score, account=account)


def _matched_owner(account: Account | None, owners: OwnerIndex) -> MatchedAccountOwner | None:
    if account is None:
        return None
    owner = account_owner(account, owners)
    label = account.name or account.domain or account.website or account.ref.crm_id
    return MatchedAccountOwner(
        account=account.ref,
        label=label,
        owner_email=owner.email.strip().lower() if owner is not None and owner.email else None,
        owner_active=owner is not None and owner.active,
    )


def _owner_active(email: str, rules: Rules, active: Mapping[str, bool]) -> bool:
    member = rules.routing.member(email)
    return (member is None or member.active) and active.get(email, True)


def _crm_owner(person: Person, owners: OwnerIndex) -> Owner | None:
    if _blank(person.owner_id):
        return None
    assert person.owner_id is not None
    return owners.get((person.ref.connection, person.owner_id)) or owners.get((None, person.owner_id))


def _keeps_crm_owner(person: Person, rules: Rules, owners: OwnerIndex) -> bool:
    """Whether the owner the CRM already gives this person stays (no routing).

    Contacts keep any owner (unless ``reroute_owned_contacts``); leads keep an owner who is
    an active member of the team (unless ``reroute_rep_owned_leads``): a lead sitting with
    a queue or integration user is exactly what Relay must route.
    """
    if _blank(person.owner_id):
        return False
    if person.kind == "contact":
        return not rules.routing.reroute_owned_contacts
    if rules.routing.reroute_rep_owned_leads:
        return False
    owner = _crm_owner(person, owners)
    if owner is None or not owner.active or not owner.email:
        return False
    member = rules.routing.member(owner.email)
    return member is not None and member.active


def keeps_crm_owner(person: Person, rules: Rules, owners: Sequence[Owner]) -> bool:
    """Whether the owner the CRM gives ``person`` stays whatever Relay knows of the person elsewhere.

    Such a person never takes an owner decided on another record of theirs (see
    :func:`decide_people`), so there is nothing to propagate to them.
    """
    return _keeps_crm_owner(person, rules, owners_by_id(owners))


def _crm_owner_decision(item: _Prepared, owners: OwnerIndex, tier: str) -> RoutingDecision:
    person = item.person
    owner = _crm_owner(person, owners)
    email = owner.email.strip().lower() if owner is not None and owner.email else None
    who = email or f"CRM user {person.owner_id}"
    kind = "Contact" if person.kind == "contact" else "Lead"
    return RoutingDecision(
        owner_email=email, tier=tier, rule=f"crm_{person.kind}_owner",
        reason=f"{kind} already owned in the CRM by {who}; kept", kept_existing=True,
    )


def _task(item: _Prepared, routing: RoutingDecision, sla: SlaDecision) -> TaskDecision:
    p = item.cleaned.person
    name = " ".join(x for x in (p.first_name, p.last_name) if x) or p.email or p.ref.crm_id
    company = f" ({p.company})" if p.company else ""
    assert routing.owner_email is not None
    lines = [
        routing.reason,
        f"Score {item.score.total} ({item.score.category}): demographic "
        f"{item.score.demographic}, firmographic {item.score.firmographic}, "
        f"behavioural {item.score.behavioural}.",
        f"Respond by {sla.due_at.isoformat()} ({sla.response_minutes} min SLA); "
        f"escalates to {', '.join(sla.escalation_chain) or 'nobody'} at "
        f"{sla.escalate_at.isoformat()}.",
    ]
    return TaskDecision(
        subject=f"Follow up: {sla.tier} lead {name}{company}"[:255],
        description="\n".join(lines),
        due_at=sla.due_at,
        owner_email=routing.owner_email,
        priority=sla.task_priority,
    )


def _field_updates(
    item: _Prepared, identity_id: str, routing: RoutingDecision | None, sla: SlaDecision | None
) -> dict[str, Any]:
    person = item.person
    wanted: dict[str, Any] = dict(item.cleaned.changes)
    wanted["relay_score"] = item.score.total
    wanted["relay_score_category"] = item.score.category
    wanted["relay_id"] = identity_id
    if routing is not None and (not routing.kept_existing or _blank(person.relay_routing_reason)):
        # A kept owner (same person routed in the other CRM, or owned in the CRM already)
        # is explained once; a fresh routing decision always replaces the old reason.
        wanted["relay_routing_reason"] = routing.reason
    if sla is not None:
        wanted["relay_sla_due"] = sla.due_at
    if item.account is not None and item.account.ref.connection == person.ref.connection:
        wanted["relay_matched_account"] = item.account.ref.crm_id
    return {k: v for k, v in wanted.items() if getattr(person, k) != v}


def _quarantined(
    ref: RecordRef, reason: str, findings: Sequence[Finding], version: str, now: datetime
) -> LeadDecision:
    return LeadDecision(
        ref=ref, identity_id=record_identity_id(ref), findings=tuple(findings),
        quarantine_reason=reason, rules_version=version, decided_at=now,
    )


def _decide_cluster(
    cluster: IdentityCluster,
    items: Mapping[RecordRef, _Prepared],
    owners: OwnerIndex,
    active: Mapping[str, bool],
    rules: Rules,
    state: RoutingState,
    now: datetime,
    existing_assignments: Mapping[RecordRef, ExistingAssignment],
    version: str,
) -> tuple[dict[RecordRef, LeadDecision], RoutingState]:
    members = [items[r] for r in cluster.members]
    existing = next((existing_assignments[r] for r in cluster.members
                     if r in existing_assignments), None)
    routable = [m for m in members
                if not m.person.is_converted and not _keeps_crm_owner(m.person, rules, owners)]
    shared: RoutingDecision | None = None
    sla: SlaDecision | None = None
    primary: _Prepared | None = None
    if routable or existing is not None:
        # One routing decision per person: the best-scoring record speaks for the cluster.
        candidates = routable or members
        primary = max(candidates, key=lambda m: m.score.total)  # first wins ties
        p = primary.cleaned.person
        lead = RoutingInput(
            ref=p.ref, score=primary.score.total, category=primary.score.category,
            country=p.country, email_domain=primary.cleaned.email_domain,
            website_domain=registered_domain(p.website),
            matched_account=_matched_owner(primary.account, owners), existing=existing,
        )
        shared, state = route(lead, rules.routing, rules.sla, state, active)
        if shared.owner_email is not None and not shared.kept_existing:
            chain = rules.routing.escalation_chain(shared.owner_email)
            sla = sla_for(shared.tier, now, rules.sla, chain)

    decisions: dict[RecordRef, LeadDecision] = {}
    for item in members:
        routing: RoutingDecision | None
        if _keeps_crm_owner(item.person, rules, owners):
            # The CRM owner of a contact wins, even over the owner of the same person elsewhere.
            routing = _crm_owner_decision(item, owners, rules.sla.tier_for_score(item.score.total).name)
        elif existing is not None:
            routing = shared
        elif item.person.is_converted:
            routing = None
        else:
            routing = shared
        member_sla = sla if routing is shared else None
        task = None
        if item is primary and routing is not None and member_sla is not None:
            task = _task(item, routing, member_sla)
        findings = list(item.cleaned.findings)
        if routing is not None and routing.owner_email is None and routing.fallback == "none":
            findings.append(Finding(ref=item.person.ref, field="owner_id", code="no_active_owner",
                                    message=routing.reason))
        if routing is not None and routing.kept_existing and routing.owner_email \
                and not _owner_active(routing.owner_email, rules, active):
            findings.append(Finding(
                ref=item.person.ref, field="owner_id", code="owner_inactive",
                message=f"kept owner {routing.owner_email} is inactive: reassign by hand or "
                        "release the assignment", value=routing.owner_email))
        decisions[item.person.ref] = LeadDecision(
            ref=item.person.ref,
            identity_id=cluster.identity_id,
            person_key=cluster.key,
            duplicates=tuple(r for r in cluster.members if r != item.person.ref),
            hygiene=item.cleaned,
            matched_account=item.account.ref if item.account else None,
            score=item.score,
            routing=routing,
            sla=member_sla,
            task=task,
            field_updates=_field_updates(item, cluster.identity_id, routing, member_sla),
            findings=tuple(findings),
            rules_version=version,
            decided_at=now,
        )
    return decisions, state


def decide_people(
    people: Sequence[Person],
    accounts: Sequence[Account],
    owners: Sequence[Owner],
    rules: Rules,
    state: RoutingState,
    now: datetime,
    existing_assignments: Mapping[RecordRef, ExistingAssignment] | None = None,
) -> tuple[list[LeadDecision], RoutingState]:
    """Decide score, owner and SLA for a batch of people.

    Stages: hygiene -> identity (clusters across CRMs, account match by domain) ->
    scoring -> routing -> SLA. Records with the same identity key (e.g. the same
    person as a Salesforce lead and a HubSpot contact) are routed ONCE and share the
    owner and SLA; the follow-up task goes to the best-scoring record only. A record
    that has an entry in ``existing_assignments`` (or shares an identity with one)
    keeps its owner and gets no new SLA or task: nobody is assigned twice. A bad
    record never stops the others: it comes back with ``quarantine_reason`` set.

    Args:
        people: Canonical people from every connection. Round robin follows this order.
            A ref listed twice is decided once, with its last version.
        accounts: Known accounts (for the account match by email domain).
        owners: CRM owners of every connection (for account owners and activity).
        rules: Validated rules; ``rules.version`` is stamped on every decision.
        state: Round-robin state loaded from the store; not modified.
        now: Decision/assignment time, timezone-aware.
        existing_assignments: Active Relay assignments by record ref.

    Returns:
        One ``LeadDecision`` per distinct record ref, in input order, and the new
        round-robin state to persist with them.

    Raises:
        ValueError: if ``now`` is naive (a caller bug, not a data problem).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC recommended)")
    existing = existing_assignments or {}
    latest: dict[RecordRef, Person] = {}
    for person in people:
        latest[person.ref] = person  # dict keeps the first position, the last value
    owner_index = owners_by_id(owners)
    active = active_owner_emails(owners)
    account_index = AccountIndex(accounts)
    version = rules.version

    prepared: dict[RecordRef, _Prepared] = {}
    decisions: dict[RecordRef, LeadDecision] = {}
    for ref, person in latest.items():
        try:
            prepared[ref] = _prepare(person, account_index, owner_index, rules)
        except _Quarantine as exc:
            findings = clean_person(person).findings
            decisions[ref] = _quarantined(ref, str(exc), findings, version, now)
        except Exception as exc:  # one bad record must not stop the batch
            decisions[ref] = _quarantined(
                ref, f"could not decide: {type(exc).__name__}: {exc}", (), version, now)

    order = {ref: i for i, ref in enumerate(latest)}
    clusters = cluster_people(item.cleaned.person for item in prepared.values())
    clusters.sort(key=lambda c: min(order[r] for r in c.members))
    for cluster in clusters:
        try:
            decided, state = _decide_cluster(cluster, prepared, owner_index, active, rules,
                                             state, now, existing, version)
        except Exception as exc:  # keep going: quarantine this person's records only
            decided = {
                r: _quarantined(r, f"could not route: {type(exc).__name__}: {exc}",
                                prepared[r].cleaned.findings, version, now)
                for r in cluster.members
            }
        decisions.update(decided)
    return [decisions[ref] for ref in latest], state
