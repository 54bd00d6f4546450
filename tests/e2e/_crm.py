"""What a RevOps admin sees in each CRM, read back through the official SDKs.

Nothing here uses Relay's adapters or mappings: Salesforce is read with
simple-salesforce (through ``sandbox_session``), HubSpot with hubspot-api-client
(``host=``), and the field names are the CRMs' own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hubspot import HubSpot
from simple_salesforce import Salesforce, SFType
from urllib3.util.retry import Retry

from crm_sandbox.common import Ledger, LedgerEntry
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session

from ._world import HUBSPOT_TOKEN

SF_PERSON_FIELDS = (
    "Id, OwnerId, Email, Relay_Score__c, Relay_Score_Category__c, Relay_Routing_Reason__c, Relay_SLA_Due__c, "
    "Relay_Matched_Account__c, Relay_Id__c, LastModifiedDate, SystemModstamp, Disposition__c"
)
HS_CONTACT_PROPERTIES = [
    "email", "hubspot_owner_id", "relay_score", "relay_score_category", "relay_routing_reason",
    "relay_sla_due", "relay_matched_company", "relay_id", "hs_lastmodifieddate", "disposition",
]
HS_TASK_PROPERTIES = [
    "hs_task_subject", "hs_task_status", "hs_timestamp", "hubspot_owner_id", "relay_idempotency_key",
]
_READ_ONLY_POSTS = ("/services/oauth2/token", "/search", "/batch/read")


@dataclass(frozen=True)
class PersonInCrm:
    """A lead or contact as the CRM shows it: owner and Relay's fields."""

    object: str
    id: str
    email: str | None
    owner_id: str | None
    score: int | None
    category: str | None
    reason: str | None
    sla_due: datetime | None
    matched_account: str | None
    relay_id: str | None
    converted: bool
    modified: tuple[str, ...]
    """The CRM's last-modified stamps (they move on any write)."""
    disposition: str | None = None
    """The disposition a rep set (dispositions.yaml acts on it: recycle, suppress, convert...)."""


@dataclass(frozen=True)
class TaskInCrm:
    """A follow-up task as the CRM shows it."""

    id: str
    person_ids: tuple[str, ...]
    owner_id: str | None
    due: datetime | date | None
    is_open: bool
    idempotency_key: str | None
    subject: str | None


@dataclass(frozen=True)
class CrmView:
    """One CRM's people, tasks and users (owners) at one moment."""

    crm: str
    people: dict[str, PersonInCrm]
    tasks: list[TaskInCrm]
    owner_ids_by_email: dict[str, str]
    account_owners: dict[str, str | None]
    """Owner of each account (company) by its id."""

    def account_owner_active(self, account_id: str) -> bool:
        """Whether the account's owner is an active user of the CRM."""
        return self.account_owners.get(account_id) in set(self.owner_ids_by_email.values())

    def relay_tasks(self) -> list[TaskInCrm]:
        """Tasks Relay created (they carry its idempotency key)."""
        return [t for t in self.tasks if t.idempotency_key]

    def open_relay_tasks_of(self, person_id: str) -> list[TaskInCrm]:
        return [t for t in self.relay_tasks() if t.is_open and person_id in t.person_ids]


def _sf_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def _hs_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(float(value))


def salesforce_client(sandbox: SalesforceSandbox) -> Salesforce:
    """simple-salesforce logged in to the sandbox org as its admin."""
    assert sandbox.server is not None, "the Salesforce sandbox is not running"
    url = sandbox.server.url
    return Salesforce(instance_url=url.replace("http://", "https://", 1), session_id=sandbox.access_token(),
                      session=sandbox_session(url), version="59.0")


def hubspot_client(sandbox: HubSpotSandbox) -> HubSpot:
    """hubspot-api-client pointed at the sandbox portal.

    Reading back shares the portal's ten-second limit with the workers under test: a 429 is waited
    out (urllib3 honours its Retry-After) rather than failing the read-back.
    """
    assert sandbox.server is not None, "the HubSpot sandbox is not running"
    retry = Retry(total=8, status_forcelist=(429,), backoff_factor=0.5, allowed_methods=None,
                  respect_retry_after_header=True)
    return HubSpot(access_token=HUBSPOT_TOKEN, host=str(sandbox.server.url), retry=retry)


def read_salesforce(sandbox: SalesforceSandbox) -> CrmView:
    """Leads, contacts, tasks and users of the Salesforce sandbox, through simple-salesforce."""
    sf = salesforce_client(sandbox)
    people: dict[str, PersonInCrm] = {}
    for obj in ("Lead", "Contact"):
        extra = ", IsConverted" if obj == "Lead" else ""
        for row in sf.query_all(f"SELECT {SF_PERSON_FIELDS}{extra} FROM {obj}")["records"]:
            people[row["Id"]] = PersonInCrm(
                object=obj, id=row["Id"], email=row["Email"], owner_id=row["OwnerId"],
                score=_int(row["Relay_Score__c"]), category=row["Relay_Score_Category__c"],
                reason=row["Relay_Routing_Reason__c"], sla_due=_sf_datetime(row["Relay_SLA_Due__c"]),
                matched_account=row["Relay_Matched_Account__c"], relay_id=row["Relay_Id__c"],
                converted=bool(row.get("IsConverted")),
                modified=(row["LastModifiedDate"], row["SystemModstamp"]), disposition=row.get("Disposition__c"),
            )
    tasks = [
        TaskInCrm(
            id=row["Id"], person_ids=(row["WhoId"],) if row["WhoId"] else (), owner_id=row["OwnerId"],
            due=date.fromisoformat(row["ActivityDate"]) if row["ActivityDate"] else None,
            is_open=not row["IsClosed"], idempotency_key=row["Relay_Idempotency_Key__c"], subject=row["Subject"],
        )
        for row in sf.query_all(
            # people's tasks: Relay's deal governance tasks name an opportunity (WhatId), not a person
            "SELECT Id, WhoId, OwnerId, ActivityDate, IsClosed, Subject, Relay_Idempotency_Key__c FROM Task "
            "WHERE WhatId = null"
        )["records"]
    ]
    users = sf.query_all("SELECT Id, Email FROM User WHERE IsActive = true")["records"]
    accounts = {a["Id"]: a["OwnerId"] for a in sf.query_all("SELECT Id, OwnerId FROM Account")["records"]}
    return CrmView("salesforce", people, tasks, {u["Email"].lower(): u["Id"] for u in users if u["Email"]}, accounts)


def read_hubspot(sandbox: HubSpotSandbox) -> CrmView:
    """Contacts, tasks (with their contact associations) and owners, through hubspot-api-client."""
    client = hubspot_client(sandbox)
    people: dict[str, PersonInCrm] = {}
    for contact in client.crm.contacts.get_all(properties=HS_CONTACT_PROPERTIES):
        p = contact.properties
        people[contact.id] = PersonInCrm(
            object="contacts", id=contact.id, email=p.get("email"), owner_id=p.get("hubspot_owner_id") or None,
            score=_int(p.get("relay_score")), category=p.get("relay_score_category") or None,
            reason=p.get("relay_routing_reason") or None, sla_due=_hs_datetime(p.get("relay_sla_due")),
            matched_account=p.get("relay_matched_company") or None, relay_id=p.get("relay_id") or None,
            converted=False, modified=(p.get("hs_lastmodifieddate") or "", contact.updated_at.isoformat()),
            disposition=p.get("disposition") or None,
        )
    tasks = []
    for task in client.crm.objects.get_all("tasks", properties=HS_TASK_PROPERTIES, associations=["contacts", "deals"]):
        if task.associations and task.associations.get("deals"):
            continue  # a deal governance task, not a person's
        p = task.properties
        linked = task.associations.get("contacts") if task.associations else None
        contact_ids = tuple(sorted({str(a.id) for a in linked.results})) if linked else ()
        tasks.append(TaskInCrm(
            id=task.id, person_ids=contact_ids, owner_id=p.get("hubspot_owner_id") or None,
            due=_hs_datetime(p.get("hs_timestamp")), is_open=p.get("hs_task_status") != "COMPLETED",
            idempotency_key=p.get("relay_idempotency_key") or None, subject=p.get("hs_task_subject"),
        ))
    owners = client.crm.owners.get_all()
    companies = {c.id: c.properties.get("hubspot_owner_id") or None
                 for c in client.crm.companies.get_all(properties=["hubspot_owner_id"])}
    return CrmView("hubspot", people, tasks, {o.email.lower(): str(o.id) for o in owners if o.email}, companies)


def write_calls(ledger: Ledger) -> list[LedgerEntry]:
    """The calls in a sandbox's ledger that could have changed something."""
    return [e for e in ledger.entries() if e.records_written or not is_read(e)]


def is_read(entry: LedgerEntry) -> bool:
    """Whether a ledger entry is a read (GET, search, batch read, OAuth token, a Composite call that wrote nothing)."""
    if entry.method == "POST" and entry.path.rstrip("/").endswith("/composite"):
        return not entry.records_written  # Salesforce Composite: the first pages of every object, in one call
    return entry.method == "GET" or (entry.method == "POST" and entry.path.rstrip("/").endswith(_READ_ONLY_POSTS))


def changed_between(before: CrmView, after: CrmView) -> list[str]:
    """People whose last-modified stamps moved, and tasks that appeared or went."""
    moved = [f"{p.object} {p.id}" for p in after.people.values()
             if p.id in before.people and before.people[p.id].modified != p.modified]
    new = {t.id for t in after.tasks} ^ {t.id for t in before.tasks}
    return moved + [f"task {t}" for t in sorted(new)]


def ids(records: Iterable[PersonInCrm]) -> set[str]:
    return {r.id for r in records}


def read_crm(salesforce: SalesforceSandbox, hubspot: HubSpotSandbox, connection: str) -> CrmView:
    """The view of the CRM behind ``connection`` (``salesforce`` or ``hubspot``)."""
    if connection == "salesforce":
        return read_salesforce(salesforce)
    if connection == "hubspot":
        return read_hubspot(hubspot)
    raise ValueError(f"no sandbox CRM for connection {connection!r}")


def sobject(sandbox: SalesforceSandbox, name: str) -> SFType:
    """simple-salesforce's handle on one sObject of the sandbox org (``sf.Lead``, typed)."""
    sf = salesforce_client(sandbox)
    return SFType(name, sf.session_id, sf.sf_instance, sf_version=sf.sf_version, session=sf.session, salesforce=sf)
