"""The sandbox sales team (shared contracts), as Salesforce Users and HubSpot owners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crm_sandbox.ids import KEY_PREFIXES, salesforce_id
from crm_sandbox.seed._clock import hs_iso, sf_datetime, to_ms

COMPANY_DOMAIN = "northwind.example"


@dataclass(frozen=True)
class Member:
    """One person of the sales team."""

    first: str
    last: str
    role: str
    region: str  # NA, EMEA, APAC or global
    active: bool = True

    @property
    def local(self) -> str:
        return f"{self.first}.{self.last}".lower()

    @property
    def email(self) -> str:
        return f"{self.local}@{COMPANY_DOMAIN}"


TEAM: tuple[Member, ...] = (
    Member("Dana", "Whitfield", "director", "global"),
    Member("Marcus", "Chen", "sales_manager", "NA"),
    Member("Priya", "Nair", "sales_manager", "EMEA"),
    Member("Hiro", "Tanaka", "sales_manager", "APAC"),
    Member("Tom", "Becker", "sdr_manager", "global"),
    Member("Olivia", "Grant", "senior_rep", "NA"),
    Member("Rafael", "Ortiz", "senior_rep", "NA"),
    Member("Sophie", "Laurent", "senior_rep", "EMEA"),
    Member("Kenji", "Watanabe", "senior_rep", "APAC"),
    Member("Liam", "Walsh", "sales_rep", "NA"),
    Member("Emma", "Rossi", "sales_rep", "NA"),
    Member("Ava", "Thompson", "sales_rep", "NA"),
    Member("Lucas", "Silva", "sales_rep", "NA", active=False),
    Member("Noah", "Fischer", "sales_rep", "EMEA"),
    Member("Mia", "Johansson", "sales_rep", "EMEA"),
    Member("Ethan", "Park", "sales_rep", "APAC"),
    Member("Chloe", "Martin", "sdr", "NA"),
    Member("Jack", "Wilson", "sdr", "NA"),
    Member("Zoe", "Adams", "sdr", "EMEA"),
    Member("Arjun", "Mehta", "sdr", "APAC"),
    Member("Grace", "Kim", "csm", "global"),
    Member("Daniel", "Okafor", "csm", "global"),
)
MEMBER_BY_LOCAL: dict[str, Member] = {m.local: m for m in TEAM}

_TITLES = {
    "director": ("Director of Sales", "Sales"),
    "sales_manager": ("Regional Sales Manager", "Sales"),
    "sdr_manager": ("SDR Manager", "Sales Development"),
    "senior_rep": ("Senior Account Executive", "Sales"),
    "sales_rep": ("Account Executive", "Sales"),
    "sdr": ("Sales Development Representative", "Sales Development"),
    "csm": ("Customer Success Manager", "Customer Success"),
}
LEAD_QUEUE = Member("Lead", "Queue", "integration", "global")
ADMIN = Member("Admin", "Sandbox", "admin", "global")
LEAD_QUEUE_EMAIL = "lead.queue@northwind.example"
ADMIN_EMAIL = "admin@sandbox.example"
HUBSPOT_TEAM_IDS = {"NA": "4101", "EMEA": "4102", "APAC": "4103", "global": "4100"}
HUBSPOT_TEAM_NAMES = {"NA": "North America", "EMEA": "EMEA", "APAC": "APAC", "global": "Global"}


def salesforce_users(team_since: datetime) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The org's Users (team, Lead Queue, admin) and the map email local part -> User Id."""
    users: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    people = [(m, m.email, *_TITLES[m.role]) for m in TEAM]
    people.append((LEAD_QUEUE, LEAD_QUEUE_EMAIL, "Integration User", "Revenue Operations"))
    people.append((ADMIN, ADMIN_EMAIL, "System Administrator", "IT"))
    for n, (member, email, title, department) in enumerate(people, start=1):
        user_id = salesforce_id(KEY_PREFIXES["User"], n)
        created = team_since + timedelta(days=n)
        stamp = sf_datetime(to_ms(created))
        users.append({
            "Id": user_id, "FirstName": member.first, "LastName": member.last,
            "Name": f"{member.first} {member.last}", "Email": email, "Username": f"{email}.sandbox",
            "IsActive": member.active, "Title": title, "Department": department,
            "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp, "IsDeleted": False,
        })
        ids[email.split("@")[0]] = user_id
    return users, ids


def hubspot_owners(team_since: datetime) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The portal's owners (the team; the inactive rep archived) and the map local part -> owner id."""
    owners: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    for n, member in enumerate(TEAM):
        owner_id = str(75480101 + n)
        created = team_since + timedelta(days=n, hours=1)
        region = member.region
        owners.append({
            "id": owner_id, "email": member.email, "firstName": member.first,
            "lastName": member.last, "userId": 9120301 + n, "createdAt": hs_iso(to_ms(created)),
            "updatedAt": hs_iso(to_ms(created + timedelta(days=30))), "archived": not member.active,
            "teams": [{"id": HUBSPOT_TEAM_IDS[region], "name": HUBSPOT_TEAM_NAMES[region], "primary": True}],
            "type": "PERSON",
        })
        ids[member.local] = owner_id
    return owners, ids


def reps_by_region(active_only: bool = True) -> dict[str, list[str]]:
    """Email local parts of the account-owning reps (senior and sales reps) per region."""
    out: dict[str, list[str]] = {"NA": [], "EMEA": [], "APAC": []}
    for m in TEAM:
        if m.role in ("senior_rep", "sales_rep") and (m.active or not active_only):
            out[m.region].append(m.local)
    return out


def sdrs_by_region() -> dict[str, list[str]]:
    """Email local parts of the SDRs per region."""
    out: dict[str, list[str]] = {"NA": [], "EMEA": [], "APAC": []}
    for m in TEAM:
        if m.role == "sdr":
            out[m.region].append(m.local)
    return out
