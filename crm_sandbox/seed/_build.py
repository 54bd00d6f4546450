"""Assembles the seed data set: companies, people, their records, deals, activity, truth."""

from __future__ import annotations

from datetime import datetime, timedelta
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
from crm_sandbox.seed._model import GroundTruth, RecordKey, SeedData
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
        self.sf: dict[str, list[dict[str, Any]]] = {
            name: [] for name in ("User", "Account", "Lead", "Contact", "Opportunity", "Task")
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

    def _stamps(self, created: int) -> Stamps:
        modified = modified_after(self.rng, created, self.now)
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
        """Salesforce opportunities and HubSpot deals at every stage, some breaking their gate."""
        rng = self.rng
        csms = [self.sf_user[m.local] for m in TEAM if m.role == "csm"]
        managers = {m.region: f"{m.first} {m.last}" for m in TEAM if m.role == "sales_manager"}
        for index in range(max(14, self.target_leads // 5)):
            company = self._pick_account_company(with_account=True)
            stage = opp.pick_stage(rng, index)
            owner = self._owner_local[company.key]
            close = opp.close_date(rng, stage, self.anchor)
            values = opp.criteria_values(rng, stage, self.anchor, close,
                                         managers[MEMBER_BY_LOCAL[owner].region], rng.choice(csms))
            if opp.STAGE_REQUIREMENTS[stage] and rng.random() < opp.STAGE_VIOLATION_RATE:
                opp.break_some(rng, stage, values)
            opp_id = self._sf_id("Opportunity")
            created = days_before(rng, self.now, 20.0, 400.0)
            if stage.startswith("Closed"):
                created = min(created, ms_of_date(close) - 10 * DAY)
            created_s, modified_s, modstamp_s = self._stamps(created)
            record: dict[str, Any] = {
                "Id": opp_id, "Name": opp.opportunity_name(rng, mess.company_display(company.name, company.suffix)),
                "AccountId": self._account_id[company.key], "OwnerId": self.sf_user[owner],
                "StageName": stage, "Amount": opp.amount_for(rng, company.employees),
                "CloseDate": close.isoformat(), "Probability": float(opp.PROBABILITY[stage]),
                "ForecastCategoryName": opp.FORECAST_CATEGORY[stage],
                "IsClosed": stage.startswith("Closed"), "IsWon": stage == "Closed Won",
                **values,
                "CreatedDate": created_s, "LastModifiedDate": modified_s, "SystemModstamp": modstamp_s,
                "IsDeleted": False,
            }
            self.sf["Opportunity"].append(record)
            broken = opp.violations(stage, record)
            if broken:
                self.truth.stage_violations[("salesforce", "Opportunity", opp_id)] = broken
            if not stage.startswith("Closed") and rng.random() < 0.3:
                self._add_sf_task(None, opp_id, owner, created)
        for index in range(max(14, self.target_leads // 10)):
            self._add_deal(index, managers, csms)

    def _add_deal(self, index: int, managers: dict[str, str], csms: list[str]) -> None:
        rng = self.rng
        company = self._pick_account_company(with_hs=True)
        stage = opp.pick_stage(rng, index)
        owner = self._owner_local[company.key]
        close = opp.close_date(rng, stage, self.anchor)
        values = opp.criteria_values(rng, stage, self.anchor, close,
                                     managers[MEMBER_BY_LOCAL[owner].region], rng.choice(csms))
        if opp.STAGE_REQUIREMENTS[stage] and rng.random() < opp.STAGE_VIOLATION_RATE:
            opp.break_some(rng, stage, values, crm="hubspot")
        deal_id = self._hs_id("deals")
        created = days_before(rng, self.now, 20.0, 400.0)
        created_s, modified_s = self._hs_times(created)
        props: dict[str, str | None] = {
            "dealname": opp.opportunity_name(rng, mess.company_display(company.name, company.suffix)),
            "amount": as_hubspot_string(opp.amount_for(rng, company.employees)),
            "dealstage": opp.HUBSPOT_STAGE[stage], "pipeline": "default",
            "closedate": hs_iso(ms_of_date(close) + 12 * HOUR),
            "hubspot_owner_id": self.hs_owner[owner],
        }
        props.update(opp.to_hubspot_props(values, as_hubspot_string))
        self.hs["deals"].append(hubspot_record(deal_id, props, created_s, modified_s))
        broken = opp.violations(stage, props, crm="hubspot")
        if broken:
            self.truth.stage_violations[("hubspot", "deals", deal_id)] = broken
        self.assocs.append(("deals", deal_id, "companies", self._hs_company_id[company.key], ASSOC_DEAL_COMPANY))
        for contact_id in self._hs_contacts_of.get(company.key, [])[:2]:
            self.assocs.append(("deals", deal_id, "contacts", contact_id, ASSOC_DEAL_CONTACT))

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
    def build(self) -> SeedData:
        """Generate everything, in a fixed order (the order is part of determinism)."""
        self.build_companies()
        self.build_contacts()
        self.build_leads()
        self.build_hubspot_only()
        self.build_opportunities()
        self.fill_account_rollups()
        return SeedData(
            seed=self.seed, anchor=self.anchor, salesforce=self.sf, hubspot_owners=self.owners,
            hubspot=self.hs, hubspot_associations=self.assocs, truth=self.truth,
        )
