"""Assembles the seed data set: companies, people, their records, deals, activity, truth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm_sandbox.ids import KEY_PREFIXES, salesforce_id
from crm_sandbox.seed import messiness as mess
from crm_sandbox.seed import opportunities as opp
from crm_sandbox.seed._clock import (
    DAY,
    HOUR,
    date_of,
    days_before,
    hs_iso,
    later,
    modified_after,
    ms_of_date,
    sf_datetime,
    to_ms,
)
from crm_sandbox.seed._companies import Company, CompanyFactory
from crm_sandbox.seed._geo import region_of
from crm_sandbox.seed._model import DealTruth, DispositionTruth, GroundTruth, RecordKey, SeedData
from crm_sandbox.seed._people import Person, PersonFactory
from crm_sandbox.seed._rand import SeedRandom, cumulative, weighted
from crm_sandbox.seed._records import (
    Shown,
    as_hubspot_string,
    hubspot_contact,
    hubspot_record,
    present,
    salesforce_contact,
    salesforce_lead,
)
from crm_sandbox.seed._team import (
    MEMBER_BY_LOCAL,
    TEAM,
    Member,
    hubspot_owners,
    reps_by_region,
    salesforce_users,
    sdrs_by_region,
)

#: Leads already owned by a rep (the rest wait in the Lead Queue for assignment).
LEAD_OWNED_BY_REP_RATE = 0.18
#: HubSpot contacts that already have an owner (most new inbound contacts have none).
HUBSPOT_OWNED_RATE = 0.20
#: Of the records owned by a rep: owned by the inactive rep (left the company, never reassigned).
INACTIVE_OWNER_RATE = 0.05
#: Records whose SystemModstamp is the instant of one nightly mass update (shared to the ms).
MASS_UPDATE_RATE = 0.12
#: A lead's company is a newly seen prospect company (else one that already sent leads).
NEW_PROSPECT_COMPANY_RATE = 0.45
#: Of the account people: working for one of the four named accounts.
NAMED_ACCOUNT_SHARE = 0.12

ASSOC_CONTACT_COMPANY = 279
ASSOC_COMPANY_CONTACT = 280
ASSOC_DEAL_CONTACT = 3
ASSOC_DEAL_COMPANY = 341
ASSOC_TASK_CONTACT = 204
ASSOC_NOTE_CONTACT = 202

Stamps = tuple[str, str, str]

#: Seed 002 "Lead Disposition": No Response recycles after 90 days. Seeded "No Response" dates
#: stay this far from the 90-day line, so that a run a day or two after the anchor sees the same.
RECYCLE_DAYS = 90
RECYCLE_MARGIN = timedelta(days=3)
#: Of the candidates (owned, contacted people) beyond the ones every value needs: given a disposition.
DISPOSITION_RATE = 0.6
#: Of the "Qualified" people: the SDR -> AE handoff checklist is not complete.
CHECKLIST_INCOMPLETE_RATE = 0.3
_DISPOSITION_WEIGHTS = {"Qualified": 20, "Not Ready": 25, "Bad Fit": 15, "No Response": 30, "Do Not Contact": 10}
#: What each CRM gets first: (value, checklist incomplete, recycle due or None for either).
_DISPOSITION_SLOTS: tuple[tuple[str, bool, bool | None], ...] = (
    ("Qualified", False, None), ("Qualified", True, None), ("Not Ready", False, None), ("Bad Fit", False, None),
    ("No Response", False, True), ("No Response", False, False), ("Do Not Contact", False, None),
)
#: Lead statuses under which a rep would not have qualified the person.
_NOT_QUALIFIED_STATUSES = frozenset({"Closed - Not Converted", "UNQUALIFIED", "BAD_TIMING"})
DISPOSITION_FIELD = ("Disposition__c", "disposition")
DISPOSITION_DATE_FIELD = ("Disposition_Date__c", "disposition_date")
#: The SDR -> AE handoff checklist (config/rules/handoffs.yaml sdr_to_ae: meeting outcome, notes,
#: next step and the BANT fields), canonical name -> (Salesforce field, HubSpot property).
CHECKLIST: dict[str, tuple[str, str]] = {
    "meeting_outcome": ("Meeting_Outcome__c", "meeting_outcome"),
    "handoff_notes": ("Handoff_Notes__c", "handoff_notes"),
    "next_step": ("Next_Step__c", "next_step"),
    "budget": ("Budget__c", "budget"),
    "authority": ("Authority__c", "authority"),
    "need": ("Need__c", "need"),
    "timeline": ("Timeline__c", "timeline"),
}
_CHECKLIST_TEXT: dict[str, tuple[str, ...]] = {
    "meeting_outcome": ("Discovery call held: wants a demo", "Qualified on the call: pilot interest"),
    "handoff_notes": ("Runs lead routing in spreadsheets; 3 regions, 40 reps.",
                      "Evaluating two vendors; current CRM contract ends in Q3."),
    "next_step": ("AE demo next week", "Send the pricing overview, then book the demo"),
    "budget": ("$20k-50k approved this fiscal year", "Budget from the RevOps line, about $30k"),
    "authority": ("VP Sales signs; CFO above $50k", "Head of RevOps decides"),
    "need": ("Faster lead routing and SLA tracking", "Clean duplicates between HubSpot and Salesforce"),
    "timeline": ("Decision this quarter", "Go live before the next fiscal year"),
}

# HubSpot lifecycle stages and lead statuses, by who the contact is (value, weight)
_LIFECYCLE_ACCOUNT = cumulative((("customer", 45), ("opportunity", 25), ("salesqualifiedlead", 15), ("lead", 15)))
_LIFECYCLE_OWNED = cumulative((("salesqualifiedlead", 40), ("opportunity", 20), ("lead", 25),
                               ("marketingqualifiedlead", 15)))
_LIFECYCLE_NEW = cumulative((("subscriber", 25), ("lead", 55), ("marketingqualifiedlead", 20)))
_LEAD_STATUS_OWNED = cumulative((("OPEN", 25), ("IN_PROGRESS", 20), ("ATTEMPTED_TO_CONTACT", 18),
                                 ("CONNECTED", 15), ("OPEN_DEAL", 8), ("UNQUALIFIED", 8), ("BAD_TIMING", 6)))


class SeedBuilder:
    """Builds one data set from one random stream; ``build()`` returns it."""

    def __init__(self, seed: int, leads: int, anchor: datetime) -> None:
        self.seed = seed
        self.target_leads = leads
        self.anchor = anchor
        self.now = to_ms(anchor)
        self.rng = SeedRandom(seed)
        self.people = PersonFactory(self.rng, self.now)
        self.companies = CompanyFactory(self.rng)
        team_since = anchor - timedelta(days=1000)  # the team predates every record
        self.users, self.sf_user = salesforce_users(team_since)
        self.owners, self.hs_owner = hubspot_owners(team_since)
        self._hs_user = {o["id"]: int(o["userId"]) for o in self.owners}  # owner id -> HubSpot user id
        self.sf: dict[str, list[dict[str, Any]]] = {
            name: [] for name in ("User", "Account", "Lead", "Contact", "Opportunity", "OpportunityHistory", "Task")
        }
        self.sf["User"] = self.users
        self.hs: dict[str, list[dict[str, Any]]] = {
            name: [] for name in ("contacts", "companies", "deals", "tasks", "notes")
        }
        self.assocs: list[tuple[str, str, str, str, int]] = []
        self.truth = GroundTruth()
        self._hs_next = {"contacts": 1001, "companies": 5001, "deals": 9001, "tasks": 30001, "notes": 40001}
        self._hs_emails: set[str] = set()
        self.mass_update = to_ms((anchor - timedelta(days=2)).replace(hour=3, minute=14, second=7, microsecond=512000))
        self._mass_update_s = sf_datetime(self.mass_update)
        self._reps = reps_by_region(active_only=True)
        self._sdrs = sdrs_by_region()
        self._inactive = [m.local for m in TEAM if not m.active]
        # per account company
        self._company_cluster: dict[int, int] = {}
        self._account_id: dict[int, str] = {}
        self._hs_company_id: dict[int, str] = {}
        self._owner_local: dict[int, str] = {}
        self._hs_contacts_of: dict[int, list[str]] = {}
        self._account_companies: list[Company] = []
        self._prospects: list[Company] = []

    # ----------------------------------------------------------------------------- helpers
    def _sf_id(self, obj: str) -> str:
        return salesforce_id(KEY_PREFIXES[obj], len(self.sf[obj]) + 1)

    def _hs_id(self, obj: str) -> str:
        value = self._hs_next[obj]
        self._hs_next[obj] = value + 1
        return str(value)

    def _stamps(self, created: int, not_before: int | None = None) -> Stamps:
        modified = modified_after(self.rng, created, self.now)
        if not_before is not None and modified < not_before:
            modified = not_before
        created_s = sf_datetime(created)
        modified_s = created_s if modified == created else sf_datetime(modified)
        if self.rng.random() < MASS_UPDATE_RATE and modified <= self.mass_update:
            return created_s, modified_s, self._mass_update_s
        return created_s, modified_s, modified_s

    def _hs_times(self, created: int) -> tuple[str, str]:
        modified = modified_after(self.rng, created, self.now)
        created_s = hs_iso(created)
        return created_s, created_s if modified == created else hs_iso(modified)

    def _later(self, moment: int, max_days: float) -> int:
        return later(self.rng, moment, max_days, self.now)

    def _rep_for(self, region: str) -> str:
        if region == "NA" and self.rng.random() < INACTIVE_OWNER_RATE:
            return self.rng.choice(self._inactive)
        return self.rng.choice(self._reps.get(region) or self._reps["NA"])

    def _lead_owner(self, region: str) -> str:
        if self.rng.random() < 0.5:
            return self.rng.choice(self._sdrs.get(region) or self._sdrs["NA"])
        return self._rep_for(region)

    # --------------------------------------------------------------------------- companies
    def build_companies(self) -> None:
        """Account companies: the named accounts plus generated ones, as accounts and/or companies."""
        count = max(20, self.target_leads // 8)
        companies = self.companies.named_accounts()
        companies += [self.companies.make() for _ in range(count - len(companies))]
        self._account_companies = companies
        for company in companies:
            named = company.named_owner is not None
            owner = company.named_owner or self._rep_for(region_of(company.country.code))
            self._owner_local[company.key] = owner
            in_sf = named or self.rng.random() < 0.88
            in_hs = named or self.rng.random() < 0.55 or not in_sf
            cluster: list[RecordKey] = []
            created = days_before(self.rng, self.now, 60.0, 900.0)
            duplicate = self.rng.random() < mess.ACCOUNT_DUPLICATE_RATE
            if in_sf:
                self._account_id[company.key] = self._add_account(company, owner, created, variant=False)
                cluster.append(("salesforce", "Account", self._account_id[company.key]))
                if duplicate:
                    cluster.append(("salesforce", "Account", self._add_account(
                        company, owner, self._later(created, 300), variant=True)))
            if in_hs:
                self._hs_company_id[company.key] = self._add_hs_company(company, owner, created, variant=False)
                cluster.append(("hubspot", "companies", self._hs_company_id[company.key]))
                if duplicate and not in_sf:
                    cluster.append(("hubspot", "companies", self._add_hs_company(
                        company, owner, self._later(created, 300), variant=True)))
            self._company_cluster[company.key] = len(self.truth.companies)
            self.truth.companies.append(cluster)

    def _company_name(self, company: Company, variant: bool) -> str:
        if variant:
            return mess.company_variant(self.rng, company.name, company.suffix)
        return mess.company_display(company.name, company.suffix)

    def _add_account(self, company: Company, owner: str, created: int, variant: bool) -> str:
        rng = self.rng
        account_id = self._sf_id("Account")
        created_s, modified_s, modstamp_s = self._stamps(created)
        self.sf["Account"].append({
            "Id": account_id, "Name": self._company_name(company, variant),
            "Website": rng.choice(("https://www.", "http://", "www.", "")) + company.domain,
            "Domain__c": None if variant or (not company.named_owner and rng.random() < 0.12) else company.domain,
            "Industry": company.industry, "NumberOfEmployees": company.employees,
            "AnnualRevenue": company.revenue if rng.random() < 0.85 else None,
            "BillingCountry": mess.messy_country(rng, company.country),
            "BillingState": mess.messy_state(rng, company.country, company.state) if company.state else None,
            "OwnerId": self.sf_user[owner], "Relay_Id__c": None,
            "CreatedDate": created_s, "LastModifiedDate": modified_s, "SystemModstamp": modstamp_s,
            "IsDeleted": False,
        })
        return account_id

    def _add_hs_company(self, company: Company, owner: str, created: int, variant: bool) -> str:
        rng = self.rng
        company_id = self._hs_id("companies")
        created_s, modified_s = self._hs_times(created)
        props = {
            "name": self._company_name(company, variant),
            "domain": None if variant or (not company.named_owner and rng.random() < 0.08) else company.domain,
            "website": rng.choice(("https://www.", "http://", "www.", "")) + company.domain,
            "industry": company.industry, "numberofemployees": str(company.employees),
            "annualrevenue": as_hubspot_string(company.revenue) if rng.random() < 0.8 else None,
            "country": mess.messy_country(rng, company.country),
            "state": mess.messy_state(rng, company.country, company.state) if company.state else None,
            "hubspot_owner_id": self.hs_owner[owner],
        }
        self.hs["companies"].append(hubspot_record(company_id, props, created_s, modified_s))
        return company_id

    def _pick_account_company(self, with_account: bool = False, with_hs: bool = False) -> Company:
        rng = self.rng
        for _ in range(100):
            if rng.random() < NAMED_ACCOUNT_SHARE:
                company = self._account_companies[rng.randrange(4)]
            else:
                company = rng.choice(self._account_companies)
            if (not with_account or company.key in self._account_id) and (
                not with_hs or company.key in self._hs_company_id
            ):
                return company
        return self._account_companies[0]  # named accounts are in both CRMs

    def _pick_company(self) -> tuple[Company, bool]:
        rng = self.rng
        if rng.random() < mess.ACCOUNT_EMPLOYEE_RATE:
            return self._pick_account_company(), True
        if not self._prospects or rng.random() < NEW_PROSPECT_COMPANY_RATE:
            self._prospects.append(self.companies.make())
            return self._prospects[-1], False
        return rng.choice(self._prospects), False

    # ------------------------------------------------------------------------------ people
    def _finish_person(self, person: Person, cluster: list[RecordKey], emails: list[str | None],
                       hard: set[str]) -> None:
        index = len(self.truth.persons)
        self.truth.persons.append(cluster)
        if len(cluster) > 1 and None in emails:
            hard.add("missing_email")
        if hard:
            self.truth.hard[GroundTruth.person_id(index)] = sorted(hard)
        if person.at_account:
            self.truth.person_company[GroundTruth.person_id(index)] = GroundTruth.company_id(
                self._company_cluster[person.company.key])

    def _add_lead(self, person: Person, shown: Shown, created: int, *, owner: str | None = None,
                  status: str | None = None, converted: bool = False) -> str:
        rng = self.rng
        lead_id = self._sf_id("Lead")
        region = region_of(person.country.code)
        if owner is None:
            if rng.random() < LEAD_OWNED_BY_REP_RATE:
                owner = self._lead_owner(region)
                roll = rng.random()
                status = status or ("Working - Contacted" if roll < 0.55 else "Open - Not Contacted"
                                    if roll < 0.8 else "Closed - Not Converted")
            else:
                owner = "lead.queue"
        status = status or "Open - Not Contacted"
        self.sf["Lead"].append(salesforce_lead(
            lead_id, shown, person, owner_id=self.sf_user[owner], status=status, converted=converted,
            stamps=self._stamps(created)))
        if owner != "lead.queue" and rng.random() < 0.3:
            self._add_sf_task(lead_id, None, owner, created)
        return lead_id

    def _add_hs_contact(self, person: Person, shown: Shown, created: int, *,
                        at_account_contact: bool = False) -> str:
        rng = self.rng
        contact_id = self._hs_id("contacts")
        if shown.email is not None:
            lowered = shown.email.lower()
            while lowered in self._hs_emails:  # HubSpot keeps emails unique (case-insensitive)
                local, domain = shown.email.split("@", 1)
                shown.email = f"{local.split('+')[0]}+{rng.randint(2, 999)}@{domain}"
                lowered = shown.email.lower()
            self._hs_emails.add(lowered)
        owner: str | None = None
        region = region_of(person.country.code)
        if at_account_contact:
            owner = self._owner_local[person.company.key] if rng.random() < 0.7 else None
            lifecycle = weighted(rng, *_LIFECYCLE_ACCOUNT)
        elif rng.random() < HUBSPOT_OWNED_RATE:
            owner = self._lead_owner(region)
            lifecycle = weighted(rng, *_LIFECYCLE_OWNED)
        else:
            lifecycle = weighted(rng, *_LIFECYCLE_NEW)
        if owner is None:
            lead_status = "NEW" if rng.random() < 0.7 else None
        else:
            lead_status = weighted(rng, *_LEAD_STATUS_OWNED)
        created_s, modified_s = self._hs_times(created)
        self.hs["contacts"].append(hubspot_contact(
            contact_id, shown, person, owner_id=self.hs_owner[owner] if owner else None,
            lead_status=lead_status, lifecycle=lifecycle, created=created_s, modified=modified_s))
        company_id = self._hs_company_id.get(person.company.key) if person.at_account else None
        # HubSpot associates a contact with a company by email domain; contacts of customers
        # were associated by hand. A gmail user of an account company stays unassociated.
        if company_id is not None and not at_account_contact and not (
            shown.email and shown.email.lower().endswith("@" + person.company.domain)
        ):
            company_id = None
        if company_id is not None:
            self.assocs.append(("contacts", contact_id, "companies", company_id, ASSOC_CONTACT_COMPANY))
            self.assocs.append(("companies", company_id, "contacts", contact_id, ASSOC_COMPANY_CONTACT))
            self._hs_contacts_of.setdefault(person.company.key, []).append(contact_id)
        if owner is not None:
            if rng.random() < 0.25:
                self._add_hs_task(contact_id, owner, created)
            if rng.random() < 0.2:
                self._add_hs_note(contact_id, owner, person, created)
        return contact_id

    def _room(self) -> bool:
        return len(self.sf["Lead"]) < self.target_leads

    def build_contacts(self) -> None:
        """Salesforce contacts of account companies; some also in HubSpot or again as a lead."""
        rng = self.rng
        for _ in range(self.target_leads // 3):
            company = self._pick_account_company(with_account=True)
            person = self.people.make(company, at_account=True)
            created = days_before(rng, person.created, 30.0, 400.0)
            hard: set[str] = set()
            shown = present(rng, person, self.people, duplicate=False, hard=hard)
            contact_id = self._sf_id("Contact")
            owner = self._owner_local[company.key]
            self.sf["Contact"].append(salesforce_contact(
                contact_id, shown, person, account_id=self._account_id[company.key],
                owner_id=self.sf_user[owner], stamps=self._stamps(created)))
            cluster: list[RecordKey] = [("salesforce", "Contact", contact_id)]
            emails = [shown.email]
            if rng.random() < mess.CONTACT_IN_HUBSPOT_RATE:
                dup = self._duplicate_shown(person, hard, cross_crm=True)
                cluster.append(("hubspot", "contacts", self._add_hs_contact(
                    person, dup, self._later(created, 60), at_account_contact=True)))
                emails.append(dup.email)
            if rng.random() < mess.CONTACT_AS_LEAD_RATE and self._room():
                dup = self._duplicate_shown(person, hard, cross_crm=False)
                if rng.random() < 0.5:  # the lead this contact was converted from
                    lead_id = self._add_lead(person, dup, days_before(rng, created, 1.0, 30.0),
                                             owner=owner, status="Closed - Converted", converted=True)
                else:  # came in again through a form: a new lead for an existing contact
                    lead_id = self._add_lead(person, dup, self._later(person.created, 30))
                cluster.append(("salesforce", "Lead", lead_id))
                emails.append(dup.email)
            self._finish_person(person, cluster, emails, hard)

    def _duplicate_shown(self, person: Person, hard: set[str], *, cross_crm: bool) -> Shown:
        email = None
        if cross_crm and self.rng.random() < mess.PERSONAL_EMAIL_RATE:
            email = self.people.personal_email(person)
            hard.add("personal_email")
        return present(self.rng, person, self.people, duplicate=True, hard=hard, email=email)

    def build_leads(self) -> None:
        """Inbound people as Salesforce leads (some twice), a quarter of them also in HubSpot."""
        rng = self.rng
        while self._room():
            company, at_account = self._pick_company()
            person = self.people.make(company, at_account)
            hard: set[str] = set()
            shown = present(rng, person, self.people, duplicate=False, hard=hard)
            cluster: list[RecordKey] = [("salesforce", "Lead", self._add_lead(person, shown, person.created))]
            emails = [shown.email]
            if rng.random() < mess.SF_DUPLICATE_LEAD_RATE and self._room():
                dup = self._duplicate_shown(person, hard, cross_crm=False)
                cluster.append(("salesforce", "Lead", self._add_lead(person, dup, self._later(person.created, 90))))
                emails.append(dup.email)
            if rng.random() < mess.CROSS_CRM_RATE:
                dup = self._duplicate_shown(person, hard, cross_crm=True)
                created = self._later(person.created, 20) if rng.random() < 0.5 else person.created
                cluster.append(("hubspot", "contacts", self._add_hs_contact(person, dup, created)))
                emails.append(dup.email)
            self._finish_person(person, cluster, emails, hard)

    def build_hubspot_only(self) -> None:
        """People only HubSpot knows, until HubSpot has about as many contacts as Salesforce has leads."""
        rng = self.rng
        while len(self.hs["contacts"]) < self.target_leads:
            company, at_account = self._pick_company()
            person = self.people.make(company, at_account)
            hard: set[str] = set()
            shown = present(rng, person, self.people, duplicate=False, hard=hard)
            cluster: list[RecordKey] = [("hubspot", "contacts", self._add_hs_contact(person, shown, person.created))]
            emails = [shown.email]
            if rng.random() < mess.HUBSPOT_DUPLICATE_RATE and shown.email is not None:
                dup = present(rng, person, self.people, duplicate=True, hard=hard)
                if dup.email is not None and "email_typo" not in hard:
                    local, domain = person.email.split("@", 1)
                    dup.email = (f"{mess.gmail_dots(rng, local)}@{domain}" if domain == "gmail.com"
                                 and rng.random() < 0.5 else f"{local}+{rng.choice(('news', 'crm', 'events'))}@{domain}")
                cluster.append(("hubspot", "contacts", self._add_hs_contact(person, dup, self._later(person.created, 120))))
                emails.append(dup.email)
            self._finish_person(person, cluster, emails, hard)

    # ----------------------------------------------------------------------- opportunities
    def build_opportunities(self) -> None:
        """Salesforce opportunities and HubSpot deals in every stage and pipeline, with their
        stage history, gates, discounts and handoff fields (``seed.opportunities``), and their truth."""
        rng = self.rng
        csms = [m for m in TEAM if m.role == "csm"]
        managers = {m.region: f"{m.first} {m.last}" for m in TEAM if m.role == "sales_manager"}
        planner = opp.DealPlanner(rng, self.anchor, "salesforce")
        for index in range(max(14, self.target_leads // 5)):
            company = self._pick_account_company(with_account=True)
            owner = self._owner_local[company.key]
            plan = planner.plan(index, company.employees)
            csm = rng.choice(csms)
            values = planner.values(plan, managers[MEMBER_BY_LOCAL[owner].region], self.sf_user[csm.local],
                                    f"{csm.first} {csm.last}")
            opp_id = self._sf_id("Opportunity")
            first, last = plan.steps[0].at, plan.steps[-1].at
            created_s, modified_s, modstamp_s = self._stamps(first, not_before=last)
            stage = plan.stage
            record: dict[str, Any] = {
                "Id": opp_id, "Name": opp.opportunity_name(rng, mess.company_display(company.name, company.suffix)),
                "AccountId": self._account_id[company.key], "OwnerId": self.sf_user[owner],
                "StageName": stage, "Amount": plan.amount, "CloseDate": plan.close.isoformat(),
                "Probability": float(opp.PROBABILITY[stage]), "ForecastCategoryName": opp.FORECAST_CATEGORY[stage],
                "IsClosed": stage.startswith("Closed"), "IsWon": stage == "Closed Won",
                **values,
                "Relay_Stage_Gate_Status__c": None, "Relay_Id__c": None,
                # set by the org on a stage change: none yet for a deal still in its first stage
                "LastStageChangeDate": sf_datetime(last) if len(plan.steps) > 1 else None,
                "CreatedDate": created_s, "LastModifiedDate": modified_s, "SystemModstamp": modstamp_s,
                "IsDeleted": False,
            }
            self.sf["Opportunity"].append(record)
            self._add_sf_history(opp_id, plan, self.sf_user[owner])
            self._deal_truth(("salesforce", "Opportunity", opp_id), plan, record, stage)
            if not stage.startswith("Closed") and rng.random() < 0.3:
                self._add_sf_task(None, opp_id, owner, first)
        planner = opp.DealPlanner(rng, self.anchor, "hubspot")
        for index in range(max(14, self.target_leads // 10)):
            self._add_deal(index, planner, managers, csms)

    def _add_sf_history(self, opp_id: str, plan: opp.DealPlan, user_id: str) -> None:
        """One OpportunityHistory row per stage the opportunity entered, with the fields as of then."""
        previous: opp.Step | None = None
        for step in plan.steps:
            probability = float(opp.PROBABILITY[step.stage])
            stamp = sf_datetime(step.at)
            self.sf["OpportunityHistory"].append({
                "Id": self._sf_id("OpportunityHistory"), "OpportunityId": opp_id, "StageName": step.stage,
                "Amount": step.amount, "CloseDate": step.close.isoformat(), "Probability": probability,
                "ExpectedRevenue": None if step.amount is None else round(step.amount * probability / 100, 2),
                "ForecastCategory": opp.FORECAST_API[opp.FORECAST_CATEGORY[step.stage]],
                "PrevAmount": None if previous is None else previous.amount,
                "PrevCloseDate": None if previous is None else previous.close.isoformat(),
                "CreatedDate": stamp, "CreatedById": user_id, "SystemModstamp": stamp, "IsDeleted": False,
            })
            previous = step

    def _add_deal(self, index: int, planner: opp.DealPlanner, managers: dict[str, str], csms: list[Member]) -> None:
        rng = self.rng
        company = self._pick_account_company(with_hs=True)
        owner = self._owner_local[company.key]
        plan = planner.plan(index, company.employees)
        csm = rng.choice(csms)
        values = planner.values(plan, managers[MEMBER_BY_LOCAL[owner].region], self.hs_owner[csm.local],
                                f"{csm.first} {csm.last}")
        deal_id = self._hs_id("deals")
        first, last = plan.steps[0].at, plan.steps[-1].at
        modified = max(last, modified_after(rng, first, self.now))
        pipeline = plan.pipeline or opp.SOP_PIPELINES[0]
        stage_ids = opp.HUBSPOT_STAGE_IDS[pipeline]
        props: dict[str, str | None] = {
            "dealname": opp.opportunity_name(rng, mess.company_display(company.name, company.suffix),
                                             renewal=pipeline == opp.RENEWALS),
            "amount": as_hubspot_string(plan.amount),
            "dealstage": stage_ids[plan.stage], "pipeline": pipeline,
            "closedate": _hs_close(plan.close),
            "hubspot_owner_id": self.hs_owner[owner],
        }
        props.update(opp.to_hubspot_props(values, as_hubspot_string))
        record = hubspot_record(deal_id, props, hs_iso(first), hs_iso(modified))
        user_id = self._hs_user[self.hs_owner[owner]]
        record["propertiesWithHistory"] = {
            "dealstage": _hs_history(plan.steps, lambda step: stage_ids[step.stage], user_id),
            "amount": _hs_history(plan.steps, lambda step: as_hubspot_string(step.amount), user_id),
            "closedate": _hs_history(plan.steps, lambda step: _hs_close(step.close), user_id),
        }
        self.hs["deals"].append(record)
        self._deal_truth(("hubspot", "deals", deal_id), plan, props, stage_ids[plan.stage])
        self.assocs.append(("deals", deal_id, "companies", self._hs_company_id[company.key], ASSOC_DEAL_COMPANY))
        for contact_id in self._hs_contacts_of.get(company.key, [])[:2]:
            self.assocs.append(("deals", deal_id, "contacts", contact_id, ASSOC_DEAL_CONTACT))

    def _deal_truth(self, key: RecordKey, plan: opp.DealPlan, fields: dict[str, Any], stage_value: str) -> None:
        """Record what is true of a written deal, read back from its fields and its path."""
        renewal = plan.pipeline == opp.RENEWALS
        found = opp.assess(key[0], plan.stage, renewal, fields)
        days = (self.now - plan.steps[-1].at) // DAY
        expected = opp.EXPECTED_DAYS.get(plan.stage) if not renewal else None
        self.truth.deals[key] = DealTruth(
            pipeline=plan.pipeline, stage=plan.stage, stage_value=stage_value,
            path=[(step.stage, datetime.fromtimestamp(step.at / 1000, UTC)) for step in plan.steps],
            gate_misses=found.gate_misses, skipped=list(plan.skipped), reopened=plan.features.reopen,
            stale=expected is not None and days > expected[1], days_in_stage=days,
            discount=found.discount, approval=found.approval, approved=found.approved,
            form_missing=found.form_missing, carry_over_missing=found.carry_over_missing,
            loss_reason_missing=found.loss_reason_missing, next_step_missing=found.next_step_missing,
            late_quarter=opp.late_quarter_changes(plan.steps),
        )
        broken = opp.violations(found, plan.stage)
        if broken:
            self.truth.stage_violations[key] = broken

    # -------------------------------------------------------------------------- dispositions
    def build_dispositions(self) -> None:
        """Dispositions (seed 002 "Lead Disposition") on a share of the owned, contacted people.

        Candidates: Salesforce leads owned by a rep, contacted and not converted, Salesforce
        contacts, and owned HubSpot contacts past the first touch, each edited after it was
        created. The disposition is that last edit: its date is the record's LastModifiedDate /
        updatedAt, so no other field (and no person-matching truth) changes. Each CRM gets every
        value at least once when it has the candidates, "No Response" both more and less than
        90 days before the anchor, and "Qualified" with a complete and an incomplete SDR -> AE
        checklist; the rest of the candidates get one with ``DISPOSITION_RATE``.
        """
        queue = self.sf_user["lead.queue"]
        people: list[tuple[RecordKey, dict[str, Any], str]] = []
        for lead in self.sf["Lead"]:
            if (lead["OwnerId"] != queue and not lead["IsConverted"] and lead["Status"] != "Open - Not Contacted"
                    and lead["LastModifiedDate"] != lead["CreatedDate"]):
                people.append((("salesforce", "Lead", lead["Id"]), lead, lead["Status"]))
        for contact in self.sf["Contact"]:
            if contact["LastModifiedDate"] != contact["CreatedDate"]:
                people.append((("salesforce", "Contact", contact["Id"]), contact, ""))
        self._dispose(people)
        people = []
        for record in self.hs["contacts"]:
            props = record["properties"]
            if (props["hubspot_owner_id"] and props["hs_lead_status"] not in (None, "NEW", "OPEN")
                    and record["updatedAt"] != record["createdAt"]):
                people.append((("hubspot", "contacts", record["id"]), record, props["hs_lead_status"]))
        self._dispose(people)

    def _dispose(self, people: list[tuple[RecordKey, dict[str, Any], str]]) -> None:
        rng = self.rng
        order = list(range(len(people)))
        rng.shuffle(order)
        chosen: dict[int, tuple[str, bool]] = {}
        recycle = timedelta(days=RECYCLE_DAYS)
        for value, incomplete, due in _DISPOSITION_SLOTS:
            for n in order:
                key, record, _ = people[n]
                if n in chosen or value not in self._fitting(*people[n]):
                    continue
                if due is None or (self.anchor - self._set_at(key, record) > recycle) == due:
                    chosen[n] = (value, incomplete)
                    break
        for n in order:
            if n in chosen or rng.random() >= DISPOSITION_RATE:
                continue
            fitting = self._fitting(*people[n])
            if fitting:
                value = rng.choices(fitting, [_DISPOSITION_WEIGHTS[v] for v in fitting])[0]
                chosen[n] = (value, rng.random() < CHECKLIST_INCOMPLETE_RATE)
        for n in sorted(chosen):
            key, record, _ = people[n]
            self._set_disposition(key, record, *chosen[n])

    def _set_at(self, key: RecordKey, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["LastModifiedDate"] if key[0] == "salesforce" else record["updatedAt"])

    def _fitting(self, key: RecordKey, record: dict[str, Any], status: str) -> list[str]:
        """The dispositions a rep could have set on this record (by object, status and age)."""
        age = self.anchor - self._set_at(key, record)
        values = ["Not Ready", "Bad Fit", "Do Not Contact"]
        if key[1] != "Contact" and status not in _NOT_QUALIFIED_STATUSES:  # a contact is converted already
            values.insert(0, "Qualified")
        recycle = timedelta(days=RECYCLE_DAYS)
        if age > recycle + RECYCLE_MARGIN or age < recycle - RECYCLE_MARGIN:
            values.append("No Response")
        return values

    def _set_disposition(self, key: RecordKey, record: dict[str, Any], value: str, incomplete: bool) -> None:
        rng = self.rng
        column = 0 if key[0] == "salesforce" else 1
        fields = record if key[0] == "salesforce" else record["properties"]
        set_at = self._set_at(key, record)
        fields[DISPOSITION_FIELD[column]] = value
        fields[DISPOSITION_DATE_FIELD[column]] = record["LastModifiedDate"] if column == 0 else record["updatedAt"]
        missing: list[str] = []
        if value == "Qualified":
            for name, (sf_field, hs_prop) in CHECKLIST.items():
                fields[sf_field if column == 0 else hs_prop] = rng.choice(_CHECKLIST_TEXT[name])
            if incomplete:
                missing = sorted(rng.sample(list(CHECKLIST), rng.choice((1, 1, 2))), key=list(CHECKLIST).index)
                for name in missing:
                    fields[CHECKLIST[name][column]] = None
        due = value == "No Response" and self.anchor - set_at > timedelta(days=RECYCLE_DAYS)
        self.truth.dispositions[key] = DispositionTruth(value, set_at, due, missing)

    # ------------------------------------------------------------------ account roll-ups
    def fill_account_rollups(self) -> None:
        """What the CRMs calculate on accounts: open opportunities and the last activity.

        Salesforce: ``Open_Opportunities__c`` (a roll-up summary, COUNT of open opportunities)
        and ``LastActivityDate`` (the latest task on the account, its opportunities or its
        contacts). HubSpot: ``hs_num_open_deals`` and ``notes_last_updated`` (the latest task
        or note on the company's contacts). Derived from the records, no random draw.
        """
        sf = self.sf
        open_opps: dict[str, int] = {}
        account_of: dict[str | None, str] = {}
        for record in sf["Opportunity"]:
            account_of[record["Id"]] = record["AccountId"]
            if not record["IsClosed"]:
                open_opps[record["AccountId"]] = open_opps.get(record["AccountId"], 0) + 1
        for record in sf["Contact"]:
            if record.get("AccountId"):
                account_of[record["Id"]] = record["AccountId"]
        last: dict[str, str] = {}
        for task in sf["Task"]:
            for ref in (task.get("WhatId"), task.get("WhoId")):
                account_id = ref if ref is not None and ref.startswith("001") else account_of.get(ref)
                if account_id is not None and task.get("ActivityDate") and task["ActivityDate"] > last.get(account_id, ""):
                    last[account_id] = task["ActivityDate"]
        for record in sf["Account"]:
            record["Open_Opportunities__c"] = float(open_opps.get(record["Id"], 0))
            record["LastActivityDate"] = last.get(record["Id"])
        open_deals: dict[str, int] = {}
        closed = {"closedwon", "closedlost"}
        stage = {d["id"]: d["properties"].get("dealstage") for d in self.hs["deals"]}
        companies_of: dict[str, list[str]] = {}
        for from_type, from_id, to_type, to_id, _ in self.assocs:
            if from_type == "deals" and to_type == "companies" and stage.get(from_id) not in closed:
                open_deals[to_id] = open_deals.get(to_id, 0) + 1
            elif from_type == "contacts" and to_type == "companies":
                companies_of.setdefault(from_id, []).append(to_id)
        activity: dict[str, str] = {}
        stamps = {e["id"]: e["properties"].get("hs_timestamp") for kind in ("tasks", "notes") for e in self.hs[kind]}
        for from_type, from_id, to_type, to_id, _ in self.assocs:
            stamp = stamps.get(from_id) if from_type in ("tasks", "notes") and to_type == "contacts" else None
            if stamp:
                for company_id in companies_of.get(to_id, ()):
                    if stamp > activity.get(company_id, ""):
                        activity[company_id] = stamp
        for company in self.hs["companies"]:
            company["properties"]["hs_num_open_deals"] = str(open_deals.get(company["id"], 0))
            company["properties"]["notes_last_updated"] = activity.get(company["id"])

    # ---------------------------------------------------------------------------- activity
    def _add_sf_task(self, who_id: str | None, what_id: str | None, owner: str, after: int) -> None:
        rng = self.rng
        created = self._later(after, 10)
        done = rng.random() < 0.6
        subject = rng.choice(("Call", "Intro email", "Follow up", "Send case study", "Discovery prep"))
        due = date_of(created + rng.randint(-2, 7) * DAY)
        task_id = self._sf_id("Task")
        created_s, modified_s, modstamp_s = self._stamps(created)
        self.sf["Task"].append({
            "Id": task_id, "Subject": subject,
            "Description": f"{subject} logged by {MEMBER_BY_LOCAL[owner].first if owner in MEMBER_BY_LOCAL else 'rep'}",
            "ActivityDate": due.isoformat(), "OwnerId": self.sf_user[owner], "WhoId": who_id,
            "WhatId": what_id, "Status": "Completed" if done else "Not Started",
            "Priority": rng.choice(("Normal", "Normal", "High", "Low")), "IsClosed": done,
            "Relay_Idempotency_Key__c": None,
            "CreatedDate": created_s, "LastModifiedDate": modified_s, "SystemModstamp": modstamp_s,
            "IsDeleted": False,
        })

    def _add_hs_task(self, contact_id: str, owner: str, after: int) -> None:
        rng = self.rng
        created = self._later(after, 10)
        done = rng.random() < 0.6
        task_id = self._hs_id("tasks")
        created_s, modified_s = self._hs_times(created)
        subject = rng.choice(("Call back", "Send pricing", "Follow up on webinar", "Book discovery call"))
        props = {
            "hs_task_subject": subject, "hs_task_body": f"{subject} (logged by rep)",
            "hs_timestamp": hs_iso(created + rng.randint(0, 5) * DAY),
            "hs_task_status": "COMPLETED" if done else "NOT_STARTED",
            "hs_task_priority": rng.choice(("HIGH", "MEDIUM", "LOW", "MEDIUM")),
            "hs_task_type": rng.choice(("CALL", "EMAIL", "TODO")),
            "hubspot_owner_id": self.hs_owner[owner],
        }
        if done:
            props["hs_task_completion_date"] = modified_s
        self.hs["tasks"].append(hubspot_record(task_id, props, created_s, modified_s, engagement=True))
        self.assocs.append(("tasks", task_id, "contacts", contact_id, ASSOC_TASK_CONTACT))

    def _add_hs_note(self, contact_id: str, owner: str, person: Person, after: int) -> None:
        rng = self.rng
        created = self._later(after, 20)
        note_id = self._hs_id("notes")
        created_s, modified_s = self._hs_times(created)
        topic = rng.choice(("current CRM setup", "lead routing pain", "budget timing", "team size"))
        props = {
            "hs_note_body": f"Spoke with {person.first} about {topic}.",
            "hs_timestamp": created_s, "hubspot_owner_id": self.hs_owner[owner],
        }
        self.hs["notes"].append(hubspot_record(note_id, props, created_s, modified_s, engagement=True))
        self.assocs.append(("notes", note_id, "contacts", contact_id, ASSOC_NOTE_CONTACT))

    # -------------------------------------------------------------------------------- all
    def build(self, dispositions: bool = True) -> SeedData:
        """Generate everything, in a fixed order (the order is part of determinism)."""
        self.build_companies()
        self.build_contacts()
        self.build_leads()
        self.build_hubspot_only()
        self.build_opportunities()
        if dispositions:
            self.build_dispositions()
        self.fill_account_rollups()
        return SeedData(
            seed=self.seed, anchor=self.anchor, salesforce=self.sf, hubspot_owners=self.owners,
            hubspot=self.hs, hubspot_associations=self.assocs, truth=self.truth,
        )


def _hs_close(day: date) -> str:
    """A HubSpot ``closedate`` (a datetime property; the UI stores noon UTC of the chosen day)."""
    return hs_iso(ms_of_date(day) + 12 * HOUR)


def _hs_history(steps: Sequence[opp.Step], value_of: Callable[[opp.Step], str | None], user_id: int) -> list[dict[str, Any]]:
    """``propertiesWithHistory`` entries of one property, newest first: one per change a user made
    in the HubSpot UI (the first is the value the deal was created with)."""
    entries: list[dict[str, Any]] = []
    previous: str | None = None
    for n, step in enumerate(steps):
        value = value_of(step)
        if n and value == previous:
            continue
        entries.append({"value": "" if value is None else value, "timestamp": hs_iso(step.at), "sourceType": "CRM_UI",
                        "sourceId": f"userId:{user_id}", "updatedByUserId": user_id})
        previous = value
    entries.reverse()
    return entries
