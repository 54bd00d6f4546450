"""How one person looks in one CRM record: the per-record messiness and the record shapes."""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm_sandbox.hubspot.subscriptions import ONE_TO_ONE
from crm_sandbox.seed import messiness as mess
from crm_sandbox.seed._names import NICKNAMES
from crm_sandbox.seed._people import Person, PersonFactory


@dataclass(slots=True)
class Shown:
    """The field values one record shows for a person (None: left empty)."""

    first: str | None
    last: str | None
    email: str | None
    phone: str | None
    company: str | None
    title: str | None
    country: str | None
    state: str | None
    city: str | None
    website: str | None
    industry: str | None
    employees: int | None
    revenue: float | None


def present(
    rng: random.Random,
    person: Person,
    people: PersonFactory,
    *,
    duplicate: bool,
    hard: set[str],
    email: str | None = None,
) -> Shown:
    """The person as one more record shows them.

    Args:
        rng: the seed's random stream.
        person: the real person.
        people: the factory, to reserve typo'd addresses so no one else gets them.
        duplicate: True for a second or later record of the person: names, email and company
            may then differ from the first record the way real duplicates do.
        hard: reasons this person's records are hard to match are added here.
        email: the address this record starts from (default: the person's own).
    """
    rnd = rng.random
    first: str | None = person.first
    last: str | None = person.last
    shown_email: str | None = email or person.email
    if duplicate and shown_email is not None:
        nicks = NICKNAMES.get(person.first)
        if nicks and rnd() < mess.NICKNAME_RATE:
            first = rng.choice(nicks)
        elif rnd() < mess.NAME_TYPO_RATE:
            if rnd() < 0.5:
                first = mess.name_typo(rng, person.first)
            else:
                last = mess.name_typo(rng, person.last)
        if rnd() < mess.DUPLICATE_WITHOUT_EMAIL_RATE:
            shown_email = None
        elif rnd() < mess.EMAIL_TYPO_RATE:
            typo = mess.email_typo(rng, shown_email)
            if people.claim(typo):
                shown_email = typo
                hard.add("email_typo")
        elif rnd() < mess.EMAIL_VARIANT_RATE:
            shown_email = mess.email_variant(rng, shown_email)
    elif rnd() < mess.MISSING_EMAIL_RATE:
        shown_email = None
    if rnd() < mess.MISSING_LAST_NAME_RATE:
        last = None

    phone: str | None = None
    if rnd() >= mess.MISSING_PHONE_RATE:
        if rnd() < mess.JUNK_PHONE_RATE:
            phone = rng.choice(mess.JUNK_PHONES)
        else:
            phone = mess.messy_phone(rng, person.calling, person.national)

    company_obj = person.company
    company: str | None = None
    if rnd() >= mess.MISSING_COMPANY_RATE:
        if rnd() < mess.COMPANY_VARIANT_RATE:
            company = mess.company_variant(rng, company_obj.name, company_obj.suffix)
        else:
            company = mess.company_display(company_obj.name, company_obj.suffix)

    title: str | None = None
    if rnd() >= mess.MISSING_TITLE_RATE:
        title = person.title
        if rnd() < mess.TITLE_VARIANT_RATE:
            title = mess.messy_title(rng, title)

    country: str | None = None
    if rnd() >= mess.MISSING_COUNTRY_RATE:
        country = mess.messy_country(rng, person.country)
    state = mess.messy_state(rng, person.country, person.state) if person.state else None

    if rnd() < mess.WHITESPACE_JUNK_RATE:
        which = rng.randrange(3)
        if which == 0 and first:
            first = mess.junk_whitespace(rng, first)
        elif which == 1 and last:
            last = mess.junk_whitespace(rng, last)
        elif company:
            company = mess.junk_whitespace(rng, company)

    roll = rnd()
    website = None
    if roll < 0.45:
        website = rng.choice(("https://www.", "http://", "www.", "", "https://")) + company_obj.domain
    # optional firmographic fields: low-fit people skip them, demo requests ask for them
    if person.low_fit:
        shares = (0.07, 0.06, 0.04)
    elif person.behaviour.demo_requested:
        shares = (0.9, 0.9, 0.8)
    else:
        shares = (0.7, 0.6, 0.45)
    return Shown(
        first=first, last=last, email=shown_email, phone=phone, company=company, title=title,
        country=country, state=state, city=person.city if rnd() < 0.85 else None,
        website=website,
        industry=company_obj.industry if rnd() < shares[0] else None,
        employees=company_obj.employees if rnd() < shares[1] else None,
        revenue=company_obj.revenue if rnd() < shares[2] else None,
    )


_DISPOSITION_FIELDS = ("Disposition__c", "Disposition_Date__c", "Meeting_Outcome__c", "Handoff_Notes__c",
                       "Next_Step__c", "Budget__c", "Authority__c", "Need__c", "Timeline__c")
_DISPOSITION_PROPERTIES = ("disposition", "disposition_date", "meeting_outcome", "handoff_notes", "next_step",
                           "budget", "authority", "need", "timeline")


def _person_custom_fields(record: dict[str, Any], person: Person) -> dict[str, Any]:
    """Add the behavioural custom fields (doubles, checkboxes) and the empty Relay fields."""
    b = person.behaviour
    record["Page_Views__c"] = float(b.page_views)
    record["Email_Clicks__c"] = float(b.email_clicks)
    record["Form_Submissions__c"] = float(b.form_submissions)
    record["Content_Downloads__c"] = float(b.content_downloads)
    record["Pricing_Page_Visits__c"] = float(b.pricing_page_visits)
    record["Webinar_Attended__c"] = b.webinar_attended
    record["Demo_Requested__c"] = b.demo_requested
    record["Relay_Score__c"] = record["Relay_Score_Category__c"] = record["Relay_Routing_Reason__c"] = None
    record["Relay_SLA_Due__c"] = record["Relay_Matched_Account__c"] = record["Relay_Id__c"] = None
    record["Relay_Nurture_Track__c"] = None
    for name in _DISPOSITION_FIELDS:  # the rep's disposition and SDR handoff checklist (set later, if ever)
        record[name] = None
    return record


def salesforce_lead(
    lead_id: str, shown: Shown, person: Person, *, owner_id: str, status: str, converted: bool,
    stamps: tuple[str, str, str],
) -> dict[str, Any]:
    """A Salesforce Lead (web-to-lead writes "[not provided]" into empty required fields)."""
    created, modified, modstamp = stamps
    record: dict[str, Any] = {
        "Id": lead_id, "FirstName": shown.first, "LastName": shown.last or mess.NOT_PROVIDED,
        "Email": shown.email, "Phone": shown.phone, "Title": shown.title,
        "Company": shown.company or mess.NOT_PROVIDED, "Website": shown.website,
        "Industry": shown.industry, "NumberOfEmployees": shown.employees,
        "AnnualRevenue": shown.revenue, "Country": shown.country, "State": shown.state,
        "City": shown.city, "LeadSource": person.lead_source, "Status": status, "OwnerId": owner_id,
        "IsConverted": converted, "HasOptedOutOfEmail": person.opt_out,
        "CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modstamp,
        "IsDeleted": False,
    }
    return _person_custom_fields(record, person)


def salesforce_contact(
    contact_id: str, shown: Shown, person: Person, *, account_id: str, owner_id: str,
    stamps: tuple[str, str, str],
) -> dict[str, Any]:
    """A Salesforce Contact of an account."""
    created, modified, modstamp = stamps
    record: dict[str, Any] = {
        "Id": contact_id, "FirstName": shown.first, "LastName": shown.last or mess.NOT_PROVIDED,
        "Email": shown.email, "Phone": shown.phone, "Title": shown.title, "AccountId": account_id,
        "MailingCountry": shown.country, "MailingState": shown.state, "MailingCity": shown.city,
        "LeadSource": person.lead_source, "OwnerId": owner_id, "HasOptedOutOfEmail": person.opt_out,
        "CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modstamp,
        "IsDeleted": False,
    }
    return _person_custom_fields(record, person)


def _s(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def hubspot_contact(
    contact_id: str, shown: Shown, person: Person, *, owner_id: str | None, lead_status: str | None,
    lifecycle: str, created: str, modified: str,
) -> dict[str, Any]:
    """A HubSpot contact (every property value a string)."""
    b = person.behaviour
    props: dict[str, str | None] = {
        "firstname": shown.first, "lastname": shown.last, "email": shown.email,
        "phone": shown.phone, "jobtitle": shown.title, "company": shown.company,
        "website": shown.website, "industry": shown.industry, "numemployees": _s(shown.employees),
        "annualrevenue": _s(shown.revenue), "country": shown.country, "state": shown.state,
        "city": shown.city, "hs_lead_status": lead_status, "lifecyclestage": lifecycle,
        "hubspot_owner_id": owner_id, "hs_email_optout": "true" if person.opt_out else "false",
        "hs_analytics_num_page_views": str(b.page_views), "hs_email_click": str(b.email_clicks),
        "num_conversion_events": str(b.form_submissions),
        "content_downloads": str(b.content_downloads),
        "pricing_page_visits": str(b.pricing_page_visits),
        "webinar_attended": "true" if b.webinar_attended else "false",
        "demo_requested": "true" if b.demo_requested else "false",
        "createdate": created, "lastmodifieddate": modified, "hs_lastmodifieddate": modified,
        "hs_object_id": contact_id,
    }
    props.update(dict.fromkeys(_DISPOSITION_PROPERTIES))
    if opted_out_of_sales_email(shown, person):
        props[ONE_TO_ONE.property_name] = "true"
    return {"id": contact_id, "properties": props, "createdAt": created, "updatedAt": modified,
            "archived": False}


def opted_out_of_sales_email(shown: Shown, person: Person) -> bool:
    """Whether a HubSpot contact opted out of the "One to One" (sales) email subscription type.

    About one contact in twenty (mess.SALES_EMAIL_OPT_OUT_RATE) of those still subscribed to email at
    all and with a phone on file, so a rep is left the phone ("reach by phone only"). Chosen by a hash
    of the address, not a draw from the seed's random stream, which would change every record after it.
    """
    if person.opt_out or not shown.email or not (shown.phone or "").strip():
        return False
    roll = zlib.crc32(f"one-to-one:{shown.email.lower()}".encode()) % 10_000
    return roll < mess.SALES_EMAIL_OPT_OUT_RATE * 10_000


def hubspot_record(
    record_id: str, props: Mapping[str, str | None], created: str, modified: str, *, engagement: bool = False,
) -> dict[str, Any]:
    """Any other HubSpot object (companies, deals; tasks and notes are engagements, whose
    creation date property is ``hs_createdate``) with the standard date properties."""
    props = dict(props)
    props["hs_createdate" if engagement else "createdate"] = created
    props["hs_lastmodifieddate"] = modified
    props["hs_object_id"] = record_id
    return {"id": record_id, "properties": props, "createdAt": created, "updatedAt": modified,
            "archived": False}


def as_hubspot_string(value: object) -> str | None:
    """A value in HubSpot's property shape (strings; booleans "true"/"false")."""
    return _s(value)
