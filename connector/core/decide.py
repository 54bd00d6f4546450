"""The decision core's entry point: hygiene -> identity -> scoring -> routing -> SLA.

``decide_people`` is pure: records, rules, round-robin state and the current time in;
decisions and the new round-robin state out. The pipeline stores the decisions (ledger,
audit, outbox) and persists the returned state in the same transaction. What Relay's
disposition ledger knows of a person (suppressed, held, recycled: :class:`Disposed`) comes in
with the records, read by the pipeline; the core never reads the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from connector.core.accounts import AccountFound, is_generic_mail, manual_research_finding
from connector.core.governance.consent import ConsentStatus, consent_of
from connector.core.governance.dispositions import nurture_track
from connector.core.governance.rules import DispositionRules
from connector.core.hygiene import clean_person
from connector.core.identity import (
    AccountIndex,
    IdentityCluster,
    OwnerIndex,
    account_owner,
    active_owner_emails,
    cluster_linked,
    owners_by_id,
    person_key,
    record_identity_id,
    site_host,
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
    trusted,
)
from connector.core.routing import (
    REASON_MAX,
    MatchedAccountOwner,
    RoutingInput,
    route,
    routing_decision,
    score_text,
)
from connector.core.rules import Rules
from connector.core.scoring import score_person
from connector.core.sla import sla_for

DisposedState = Literal["suppressed", "recycled", "held"]


@dataclass(frozen=True, slots=True)
class Disposed:
    """What Relay's disposition ledger says of one person record, for its decision (the pipeline reads it).

    A person's records are decided together: one suppressed record suppresses the person, one
    recycled record recycles it (unless suppressed), one held record holds it (unless either).

    Attributes:
        state: ``suppressed`` (Do Not Contact, on this record or another of the person's: never
            routed, no SLA, no task, no nurture track), ``recycled`` (its recycle date has come:
            routed again now, whatever owner it has, never to ``excluded``; the record's disposition
            and its date are cleared: the person comes back as a fresh lead) or ``held`` (returned
            to nurture, disqualified, converted or waiting to be recycled: it keeps the owner it has
            and gets no new one).
        note: How the routing reason cites the disposition (``No Response set 2026-01-02 by ...``).
        excluded: Owner emails a recycled person is never routed to (who returned it).
        status: A lead status to write with this decision (the disposition is acted on now).
        nurture: Returned to marketing nurture: the nurture track is written whatever the score.
        dated: The date to write on a disposition the record gives none for (when Relay first saw
            it), so that every store reads the same disposition from the CRM.
    """

    state: DisposedState
    note: str
    excluded: frozenset[str] = frozenset()
    status: str | None = None
    nurture: bool = False
    dated: datetime | None = None


def nurture_track_name(score: int, rules: DispositionRules, *, returned: bool = False) -> str | None:
    """The nurture track written for a score (None: no track covers it, sales works it).

    ``returned``: the person was returned to nurture by a disposition; a score above every track
    gets the highest track (marketing nurtures them whatever the score).
    """
    found = nurture_track(score, rules)
    if found is None and returned and rules.tracks:
        found = max(rules.tracks, key=lambda t: t.max)
    return found.name if found is not None else None


def _cut(text: str) -> str:
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


@dataclass(slots=True)
class _Prepared:
    """One record after hygiene, identity key, account match and scoring (never changed once made)."""

    person: Person
    cleaned: HygieneResult
    key: str | None
    score: ScoreResult
    account: Account | None
    found: AccountFound | None
    account_findings: tuple[Finding, ...]
    keeps_crm_owner: bool


class _Quarantine(Exception):
    """A record that cannot be decided; the message is the quarantine reason."""

    def __init__(self, reason: str, findings: Sequence[Finding]) -> None:
        super().__init__(reason)
        self.findings = tuple(findings)


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _prepare(person: Person, accounts: AccountIndex, owner_list: Sequence[Owner], owners: OwnerIndex,
             rules: Rules) -> _Prepared:
    """Clean, key, match and score one record (``owners`` is ``owners_by_id(owner_list)``)."""
    cleaned = clean_person(person)
    p = cleaned.person
    key = person_key(p.email)
    if key is None and _blank(p.first_name) and _blank(p.last_name) and _blank(p.company):
        raise _Quarantine("no valid email, name or company: nothing identifies this person",
                          cleaned.findings)
    domain = cleaned.email_domain
    found = accounts.match_person(domain, p.website, p.company, person.ref.connection, owner_list,
                                  rules.matching.accounts)
    account_findings: tuple[Finding, ...] = ()
    if domain is not None and is_generic_mail(domain):
        account_findings = (manual_research_finding(person.ref, domain, found),)
    score = score_person(cleaned, rules.scoring)
    return _Prepared(person=person, cleaned=cleaned, key=key, score=score,
                     account=found.account if found is not None else None, found=found,
                     account_findings=account_findings, keeps_crm_owner=_keeps_crm_owner(person, rules, owners))


_METHOD_LABELS = {"email_domain": "", "website": " (by website)", "company_name": " (by company name)",
                  "company_fuzzy": " (by similar company name)"}


def _matched_owner(found: AccountFound | None, owners: OwnerIndex) -> MatchedAccountOwner | None:
    if found is None:
        return None
    account = found.account
    owner = account_owner(account, owners)
    label = (account.name or account.domain or account.website or account.ref.crm_id) \
        + _METHOD_LABELS[found.match.method]
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
    reason = f"{kind} already owned in the CRM by {who}; kept"
    if len(reason) > REASON_MAX:  # validation refuses it, as it always did (the cluster is quarantined)
        return RoutingDecision(owner_email=email, tier=tier, rule=f"crm_{person.kind}_owner",
                               reason=reason, kept_existing=True, source="crm_owner")
    return routing_decision(email, tier, f"crm_{person.kind}_owner", reason, kept_existing=True, source="crm_owner")


_TASK_FIELDS = frozenset({"subject", "description", "due_at", "owner_email", "priority"})
_DECISION_FIELDS = frozenset({"ref", "identity_id", "person_key", "duplicates", "hygiene", "matched_account",
                              "account_match", "score", "routing", "sla", "task", "field_updates", "findings",
                              "rules_version", "decided_at", "consent"})


def _task(item: _Prepared, routing: RoutingDecision, sla: SlaDecision, consent: ConsentStatus | None = None) -> TaskDecision:
    """The follow-up task, on the record that speaks for the person: its score is cited (and the
    channels consent leaves, when it closes one)."""
    p = item.cleaned.person
    name = " ".join(x for x in (p.first_name, p.last_name) if x) or p.email or p.ref.crm_id
    company = f" ({p.company})" if p.company else ""
    assert routing.owner_email is not None
    score = item.score
    lines = [
        routing.reason,
        f"This record: {score_text(score.total, score.category)}; demographic "
        f"{score.demographic}, firmographic {score.firmographic}, "
        f"behavioural {score.behavioural}.",
        f"SLA tier {sla.tier}: respond by {sla.due_at.isoformat()} ({sla.response_minutes} min); "
        f"escalates to {', '.join(sla.escalation_chain) or 'nobody'} at "
        f"{sla.escalate_at.isoformat()}.",
    ]
    note = consent.note() if consent is not None else None
    if note is not None:
        lines.append(f"{note}.")
    # Strings made here, and values of validated decisions: nothing to validate again.
    return trusted(TaskDecision, {
        "subject": f"Follow up: {name}{company}, SLA tier {sla.tier}, "
                   f"{score_text(score.total, score.category)}"[:255],
        "description": "\n".join(lines),
        "due_at": sla.due_at,
        "owner_email": routing.owner_email,
        "priority": sla.task_priority,
    }, _TASK_FIELDS)


def _has_user(email: str, connection: str, owners: OwnerIndex) -> bool:
    """Whether ``email`` is an active user of ``connection`` (a recycled person lands only with one there)."""
    return any(o.active and o.email and o.email.strip().lower() == email and c in (connection, None)
               for (c, _), o in owners.items())


def _recycle_lands(routing: RoutingDecision | None, connection: str, owners: OwnerIndex) -> bool:
    """Whether a recycled record's routing gives it a new home in its own CRM.

    Routed to nobody by the rules (marketing nurture) lands; nobody available, or an owner with no
    active user in the record's CRM, does not: the record stays recycled and is tried again (its
    disposition is kept), as the acting layer sees it (``PageDispositions.after``).
    """
    if routing is None:
        return False
    if routing.owner_email is None:
        return routing.fallback != "none"
    return _has_user(routing.owner_email, connection, owners)


def _recycled_routing(routing: RoutingDecision, recycled: Disposed, rules: Rules,
                      active: Mapping[str, bool], connections: frozenset[str],
                      owners: OwnerIndex) -> RoutingDecision:
    """A recycled person's routing, its reason citing the disposition.

    Routed to nobody by the rules (a score for marketing nurture), it goes to the aging nurture
    owner (``sla.yaml`` ``aging.nurture_owner``, a queue) when there is one: never back to
    whoever returned it, and only when the queue has an active user in every CRM of the person's
    records (``connections``). Its reason is then the rules' own (the one any later decision gives a
    lead in that queue, so a new store writes nothing); the ``recycled`` audit entry tells the rest.
    """
    nurture = rules.sla.aging.nurture_owner
    if routing.owner_email is None and routing.fallback != "none" and nurture is not None \
            and nurture not in recycled.excluded and _owner_active(nurture, rules, active) \
            and all(_has_user(nurture, c, owners) for c in connections):
        return routing_decision(nurture, routing.tier, "recycled_to_nurture", routing.reason, region=routing.region)
    return routing.model_copy(update={"reason": _cut(f"Recycled ({recycled.note}): {routing.reason}")})


def _field_updates(
    item: _Prepared, identity_id: str, routing: RoutingDecision | None, sla: SlaDecision | None,
    rules: Rules, own: Disposed | None = None, suppressed: bool = False, recycle_landed: bool = False,
) -> dict[str, Any]:
    person = item.person
    # Hygiene's changes differ from the record by construction; Relay's own fields are
    # written only where they differ from what the record holds.
    updates: dict[str, Any] = dict(item.cleaned.changes)
    score = item.score
    if person.relay_score != score.total:
        updates["relay_score"] = score.total
    if person.relay_score_category != score.category:
        updates["relay_score_category"] = score.category
    if person.relay_id != identity_id:
        updates["relay_id"] = identity_id
    # A kept owner (same person routed in the other CRM, or owned in the CRM already) is
    # explained once; a fresh routing decision always replaces the old reason.
    if routing is not None and (not routing.kept_existing or _blank(person.relay_routing_reason)) \
            and person.relay_routing_reason != routing.reason:
        updates["relay_routing_reason"] = routing.reason
    if sla is not None and person.relay_sla_due != sla.due_at:
        updates["relay_sla_due"] = sla.due_at
    account = item.account
    if account is not None and account.ref.connection == person.ref.connection \
            and person.relay_matched_account != account.ref.crm_id:
        updates["relay_matched_account"] = account.ref.crm_id
    # What marketing receives: the track of the score below the sales bands (none when suppressed).
    track = None if suppressed else nurture_track_name(score.total, rules.dispositions,
                                                        returned=own is not None and own.nurture)
    nurture_field = rules.dispositions.nurture_field  # relay_nurture_track as shipped
    if getattr(person, nurture_field, None) != track:
        updates[nurture_field] = track
    if own is not None and own.status is not None and person.status != own.status:
        updates["status"] = own.status  # the disposition's lead status, written once when it is acted on
    if recycle_landed:  # back as a fresh lead: its next disposition is a new one (else: tried again, kept)
        for name in (rules.dispositions.field, "disposition_at"):
            if getattr(person, name, None) is not None:
                updates[name] = None
        if routing is not None and routing.owner_email is None and not _blank(person.owner_id):
            updates["owner_id"] = None  # to marketing nurture with no queue here: never left with who returned it
    elif own is not None and own.state != "recycled" and own.dated is not None and person.disposition_at is None:
        updates["disposition_at"] = own.dated
    return updates


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
    dispositions: Mapping[RecordRef, Disposed],
) -> tuple[dict[RecordRef, LeadDecision], RoutingState]:
    members = [items[r] for r in cluster.members]
    existing = next((existing_assignments[r] for r in cluster.members
                     if r in existing_assignments), None) if existing_assignments else None
    disposed = [dispositions[r] for r in cluster.members if r in dispositions] if dispositions else []
    suppressed = next((d for d in disposed if d.state == "suppressed"), None)
    recycled = next((d for d in disposed if d.state == "recycled"), None) if suppressed is None else None
    held = next((d for d in disposed if d.state == "held"), None) if suppressed is None and recycled is None \
        else None
    if suppressed is not None or recycled is not None:
        existing = None  # a suppressed person keeps no Relay owner; a recycled one is routed afresh
    # The consent gate (consent.yaml): judged on every record of the person.
    consent = consent_of([m.cleaned.person for m in members], rules.consent, rules.dispositions,
                         extra_states=("do_not_contact",) if suppressed is not None else ())
    unroutable = suppressed is None and not consent.allows("routing")
    if unroutable:
        existing = None  # no routing: no owner from Relay, kept or new

    def keeps(member: _Prepared) -> bool:  # a recycled person is routed again whoever owns it in the CRM
        return member.keeps_crm_owner and recycled is None

    routable = [m for m in members if not m.person.is_converted and not keeps(m)]
    shared: RoutingDecision | None = None
    sla: SlaDecision | None = None
    primary: _Prepared | None = None
    if suppressed is not None:
        shared = routing_decision(
            None, "Suppressed", "disposition_suppressed",
            _cut(f"Suppressed: {suppressed.note}; never routed, enriched or sent outreach again"))
    elif unroutable:
        best = max((m.score.total for m in members), default=0)
        shared = routing_decision(
            None, rules.sla.tier_for_score(best).name, "consent_no_routing",
            _cut(f"Not routed: consent ({consent.because('routing')}); keeps the owner it has, no new one"))
    elif held is not None and existing is None:
        best = max((m.score.total for m in members), default=0)
        shared = routing_decision(
            None, rules.sla.tier_for_score(best).name, "disposition_held",
            _cut(f"Held: {held.note}; keeps the owner it has, no new one"))
    elif routable or existing is not None:
        # One routing decision per person: the best-scoring record speaks for the cluster.
        candidates = routable or members
        primary = candidates[0] if len(candidates) == 1 else \
            max(candidates, key=lambda m: m.score.total)  # first wins ties
        p = primary.cleaned.person
        lead = RoutingInput(
            ref=p.ref, score=primary.score.total, category=primary.score.category,
            country=p.country, email_domain=primary.cleaned.email_domain,
            website_domain=site_host(p.website),
            matched_account=_matched_owner(primary.found, owners), existing=existing,
            shared_by=len(candidates),
        )
        if recycled is not None:  # never back to whoever returned it
            excluded = set().union(*(d.excluded for d in disposed if d.state == "recycled"))
            active = {**active, **{email: False for email in excluded}}
        shared, state = route(lead, rules.routing, rules.sla, state, active)
        if recycled is not None:
            shared = _recycled_routing(shared, recycled, rules, active,
                                       frozenset(m.person.ref.connection for m in candidates), owners)
        if shared.owner_email is not None and not shared.kept_existing:
            if consent.allows("outreach_tasks"):
                chain = rules.routing.escalation_chain(shared.owner_email)
                sla = sla_for(shared.tier, now, rules.sla, chain)
            else:  # routed, but no follow-up task (nor the SLA that chases it): the reason says why
                shared = shared.model_copy(update={"reason": _cut(
                    f"{shared.reason}; no follow-up task or SLA: consent ({consent.because('outreach_tasks')})")})

    decisions: dict[RecordRef, LeadDecision] = {}
    for item in members:
        routing: RoutingDecision | None
        if suppressed is not None:
            routing = shared
        elif keeps(item):
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
            task = _task(item, routing, member_sla, consent)
        ref = item.person.ref
        own = dispositions.get(ref) if dispositions else None
        findings = item.cleaned.findings + item.account_findings if item.account_findings \
            else item.cleaned.findings
        if routing is not None and routing.owner_email is None and routing.fallback == "none":
            findings += (Finding(ref=ref, field="owner_id", code="no_active_owner", message=routing.reason),)
        if routing is not None and routing.kept_existing and routing.owner_email \
                and not _owner_active(routing.owner_email, rules, active):
            findings += (Finding(
                ref=ref, field="owner_id", code="owner_inactive",
                message=f"kept owner {routing.owner_email} is inactive: reassign by hand or "
                        "release the assignment", value=routing.owner_email),)
        # Every value is the core's own, of its field's type (``now`` was checked aware,
        # ``field_updates`` is a fresh dict): validation would only copy the containers.
        decisions[ref] = trusted(LeadDecision, {
            "ref": ref,
            "identity_id": cluster.identity_id,
            "person_key": cluster.key,
            "duplicates": tuple(r for r in cluster.members if r != ref) if len(cluster.members) > 1 else (),
            "hygiene": item.cleaned,
            "matched_account": item.account.ref if item.account else None,
            "account_match": item.found.match if item.found is not None else None,
            "score": item.score,
            "routing": routing,
            "sla": member_sla,
            "task": task,
            "field_updates": _field_updates(item, cluster.identity_id, routing, member_sla, rules, own,
                                            suppressed is not None,
                                            own is not None and own.state == "recycled"
                                            and _recycle_lands(routing, ref.connection, owners)),
            "findings": findings,
            "quarantine_reason": None,
            "rules_version": version,
            "decided_at": now,
            "consent": consent if consent.restricted else None,
        }, _DECISION_FIELDS)
    return decisions, state


def decide_people(
    people: Sequence[Person],
    accounts: AccountIndex | Sequence[Account],
    owners: Sequence[Owner],
    rules: Rules,
    state: RoutingState,
    now: datetime,
    existing_assignments: Mapping[RecordRef, ExistingAssignment] | None = None,
    identities: Mapping[RecordRef, str] | None = None,
    dispositions: Mapping[RecordRef, Disposed] | None = None,
) -> tuple[list[LeadDecision], RoutingState]:
    """Decide score, owner and SLA for a batch of people.

    Stages: hygiene -> identity (clusters across CRMs, account match: ``connector.core.accounts``) ->
    scoring -> routing -> SLA. Records with the same identity key (e.g. the same
    person as a Salesforce lead and a HubSpot contact) are routed ONCE and share the
    owner and SLA; the follow-up task goes to the best-scoring record only. A record
    that has an entry in ``existing_assignments`` (or shares an identity with one)
    keeps its owner and gets no new SLA or task: nobody is assigned twice. A bad
    record never stops the others: it comes back with ``quarantine_reason`` set.

    Args:
        people: Canonical people from every connection. Round robin follows this order.
            A ref listed twice is decided once, with its last version.
        accounts: Known accounts (for the account match, by domain, website and name): an
            ``AccountIndex`` built once per run and kept up to date (the fast way, for a
            caller that decides page after page), or a sequence of accounts, indexed for
            this call only. Both give the same decisions.
        owners: CRM owners of every connection (for account owners and activity).
        rules: Validated rules; ``rules.version`` is stamped on every decision.
        state: Round-robin state loaded from the store; not modified.
        now: Decision/assignment time, timezone-aware.
        existing_assignments: Active Relay assignments by record ref.
        identities: The identity graph's id of each record (the store's relay ids): records
            sharing one are one person even with different emails (a link the matcher made
            across CRMs or objects). Without it, records are one person by email alone.
        dispositions: What Relay's disposition ledger says of records (see :class:`Disposed`):
            a suppressed person is never routed and gets no SLA, task or nurture track; a
            recycled one is routed afresh (its assignment ignored, its CRM owner too), never to
            the owners it excludes; a held one keeps the owner it has and gets no new one. A
            disposition's ``status`` is written with the decision.

    Returns:
        One ``LeadDecision`` per distinct record ref, in input order, and the new
        round-robin state to persist with them. ``LeadDecision.person_key`` is the
        identity key the person was clustered by (no need to compute it again).

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
    account_index = accounts if isinstance(accounts, AccountIndex) else AccountIndex(accounts)
    version = rules.version

    prepared: dict[RecordRef, _Prepared] = {}
    decisions: dict[RecordRef, LeadDecision] = {}
    for ref, person in latest.items():
        try:
            prepared[ref] = _prepare(person, account_index, owners, owner_index, rules)
        except _Quarantine as exc:
            decisions[ref] = _quarantined(ref, str(exc), exc.findings, version, now)
        except Exception as exc:  # one bad record must not stop the batch
            decisions[ref] = _quarantined(
                ref, f"could not decide: {type(exc).__name__}: {exc}", (), version, now)

    # Clusters in the order of their first record: round robin follows the input order.
    links = identities or {}
    for cluster in cluster_linked((ref, item.key, links.get(ref)) for ref, item in prepared.items()):
        try:
            decided, state = _decide_cluster(cluster, prepared, owner_index, active, rules,
                                             state, now, existing, version, dispositions or {})
        except Exception as exc:  # keep going: quarantine this person's records only
            decided = {
                r: _quarantined(r, f"could not route: {type(exc).__name__}: {exc}",
                                prepared[r].cleaned.findings, version, now)
                for r in cluster.members
            }
        decisions.update(decided)
    return [decisions[ref] for ref in latest], state
