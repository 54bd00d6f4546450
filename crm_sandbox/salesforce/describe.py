"""The sandbox org's schema: the objects it serves, their fields, and ``describe`` answers.

Standard fields follow the Salesforce object reference (names, types, lengths,
which fields are read-only); custom fields come from
:data:`crm_sandbox.schema.SALESFORCE_CUSTOM_FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_sandbox.ids import KEY_PREFIXES
from crm_sandbox.schema import SALESFORCE_CUSTOM_FIELDS

#: Field types whose values are text.
TEXT_TYPES = frozenset({"string", "textarea", "picklist", "email", "phone", "url", "combobox"})
#: Field types whose values are numbers.
NUMBER_TYPES = frozenset({"double", "int", "currency", "percent"})
#: Field types whose values are record ids.
ID_TYPES = frozenset({"id", "reference"})


@dataclass(frozen=True)
class Field:
    """One field of an sObject as ``describe`` reports it.

    Attributes:
        name: API name (canonical case).
        type: Salesforce field type (string, double, boolean, date, datetime, reference, ...).
        label: UI label.
        length: maximum length of text fields (0 for other types).
        createable: may be set on create.
        updateable: may be set on update.
        nillable: may be null.
        required: must be set on create (createable, not nillable, no default).
        external_id: usable as an upsert key.
        unique: values unique within the object (case-insensitive).
        picklist_values: the values a picklist offers.
        reference_to: objects a reference field points to.
        relationship_name: name of the relationship (``Owner`` for ``OwnerId``).
        default: value set on create when the field is absent.
    """

    name: str
    type: str
    label: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False
    external_id: bool = False
    unique: bool = False
    picklist_values: tuple[str, ...] = ()
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    default: Any = None


def _text(name: str, label: str, length: int, **kw: Any) -> Field:
    return Field(name, kw.pop("type", "string"), label, length, **kw)


def _ro(name: str, type_: str, label: str, **kw: Any) -> Field:
    return Field(name, type_, label, createable=False, updateable=False, **kw)


def _pick(name: str, label: str, values: tuple[str, ...], **kw: Any) -> Field:
    return Field(name, "picklist", label, 255, picklist_values=values, **kw)


def _ref(name: str, label: str, to: tuple[str, ...], rel: str, **kw: Any) -> Field:
    return Field(name, "reference", label, 18, reference_to=to, relationship_name=rel, **kw)


INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
    "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities", "Other",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show", "Webinar", "Other")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
#: Opportunity stages with (probability, forecast category, closed, won).
STAGES: dict[str, tuple[int, str, bool, bool]] = {
    "Prospecting": (10, "Pipeline", False, False),
    "Qualification": (10, "Pipeline", False, False),
    "Needs Analysis": (20, "Pipeline", False, False),
    "Value Proposition": (50, "Pipeline", False, False),
    "Id. Decision Makers": (60, "Pipeline", False, False),
    "Perception Analysis": (70, "Pipeline", False, False),
    "Proposal/Price Quote": (75, "Pipeline", False, False),
    "Negotiation/Review": (90, "Commit", False, False),
    # The stages of the RevOps team's sales process (seed 002 "Sales Stages & Exit Criteria"),
    # added to the org's StageName picklist as an admin would.
    "Discovery": (20, "Pipeline", False, False),
    "Solution Design": (40, "Pipeline", False, False),
    "Proposal": (60, "Best Case", False, False),
    "Negotiation": (80, "Commit", False, False),
    "Closed Won": (100, "Closed", True, True),
    "Closed Lost": (0, "Omitted", True, False),
}
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")

_SYSTEM = (
    _ro("Id", "id", "Record ID", length=18, nillable=False),
    _ro("IsDeleted", "boolean", "Deleted", nillable=False),
    _ro("CreatedDate", "datetime", "Created Date", nillable=False),
    _ro("CreatedById", "reference", "Created By ID", length=18, reference_to=("User",), relationship_name="CreatedBy", nillable=False),
    _ro("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
    _ro("LastModifiedById", "reference", "Last Modified By ID", length=18, reference_to=("User",), relationship_name="LastModifiedBy", nillable=False),
    _ro("SystemModstamp", "datetime", "System Modstamp", nillable=False),
)
_OWNER = _ref("OwnerId", "Owner ID", ("User",), "Owner", nillable=False)
#: Objects the org writes itself; clients may only describe, query and retrieve them.
READ_ONLY_OBJECTS = frozenset({"OpportunityHistory"})


def _master(obj: str) -> Field:
    """``MasterRecordId``: on a record deleted by a merge, the record it was merged into."""
    return _ro("MasterRecordId", "reference", "Master Record ID", length=18, reference_to=(obj,),
               relationship_name="MasterRecord")


_STANDARD: dict[str, tuple[Field, ...]] = {
    "Lead": (
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False, required=True),
        _ro("Name", "string", "Full Name", length=121),
        _text("Title", "Title", 128),
        _text("Company", "Company", 255, nillable=False, required=True),
        _text("Email", "Email", 80, type="email"),
        _text("Phone", "Phone", 40, type="phone"),
        _text("MobilePhone", "Mobile Phone", 40, type="phone"),
        _text("Website", "Website", 255, type="url"),
        _pick("Industry", "Industry", INDUSTRIES),
        Field("NumberOfEmployees", "int", "Employees"),
        Field("AnnualRevenue", "currency", "Annual Revenue"),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _pick("Status", "Status", LEAD_STATUSES, nillable=False, default="Open - Not Contacted"),
        _pick("Rating", "Rating", ("Hot", "Warm", "Cold")),
        _text("Street", "Street", 255, type="textarea"),
        _text("City", "City", 40),
        _text("State", "State/Province", 80),
        _text("PostalCode", "Zip/Postal Code", 20),
        _text("Country", "Country", 80),
        _text("Description", "Description", 32000, type="textarea"),
        _OWNER,
        Field("IsConverted", "boolean", "Converted", nillable=False, updateable=False, default=False),
        _ro("ConvertedDate", "date", "Converted Date"),
        _ro("ConvertedAccountId", "reference", "Converted Account ID", length=18, reference_to=("Account",), relationship_name="ConvertedAccount"),
        _ro("ConvertedContactId", "reference", "Converted Contact ID", length=18, reference_to=("Contact",), relationship_name="ConvertedContact"),
        _ro("ConvertedOpportunityId", "reference", "Converted Opportunity ID", length=18, reference_to=("Opportunity",), relationship_name="ConvertedOpportunity"),
        Field("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False, default=False),
        Field("DoNotCall", "boolean", "Do Not Call", nillable=False, default=False),
        _ro("LastActivityDate", "date", "Last Activity"),
        _master("Lead"),
    ),
    "Contact": (
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False, required=True),
        _ro("Name", "string", "Full Name", length=121),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        _text("Title", "Title", 128),
        _text("Department", "Department", 80),
        _text("Email", "Email", 80, type="email"),
        _text("Phone", "Business Phone", 40, type="phone"),
        _text("MobilePhone", "Mobile Phone", 40, type="phone"),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _text("MailingStreet", "Mailing Street", 255, type="textarea"),
        _text("MailingCity", "Mailing City", 40),
        _text("MailingState", "Mailing State/Province", 80),
        _text("MailingPostalCode", "Mailing Zip/Postal Code", 20),
        _text("MailingCountry", "Mailing Country", 80),
        Field("Birthdate", "date", "Birthdate"),
        _text("Description", "Contact Description", 32000, type="textarea"),
        _OWNER,
        Field("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False, default=False),
        Field("DoNotCall", "boolean", "Do Not Call", nillable=False, default=False),
        _ro("LastActivityDate", "date", "Last Activity"),
        _master("Contact"),
    ),
    "Account": (
        _text("Name", "Account Name", 255, nillable=False, required=True),
        _pick("Type", "Account Type", ("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
        _ref("ParentId", "Parent Account ID", ("Account",), "Parent"),
        _pick("Industry", "Industry", INDUSTRIES),
        _text("Website", "Website", 255, type="url"),
        _text("Phone", "Account Phone", 40, type="phone"),
        Field("NumberOfEmployees", "int", "Employees"),
        Field("AnnualRevenue", "currency", "Annual Revenue"),
        _pick("AccountSource", "Account Source", LEAD_SOURCES),
        _text("BillingStreet", "Billing Street", 255, type="textarea"),
        _text("BillingCity", "Billing City", 40),
        _text("BillingState", "Billing State/Province", 80),
        _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
        _text("BillingCountry", "Billing Country", 80),
        _text("ShippingCountry", "Shipping Country", 80),
        _text("Description", "Account Description", 32000, type="textarea"),
        _OWNER,
        _ro("LastActivityDate", "date", "Last Activity"),
        _master("Account"),
    ),
    "Opportunity": (
        _text("Name", "Name", 120, nillable=False, required=True),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        _pick("StageName", "Stage", tuple(STAGES), nillable=False, required=True),
        Field("CloseDate", "date", "Close Date", nillable=False, required=True),
        Field("Amount", "currency", "Amount"),
        Field("Probability", "percent", "Probability (%)"),
        _pick("ForecastCategoryName", "Forecast Category", ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")),
        _ro("ForecastCategory", "picklist", "Forecast Category", length=40, picklist_values=("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")),
        _ro("IsClosed", "boolean", "Closed", nillable=False),
        _ro("IsWon", "boolean", "Won", nillable=False),
        _pick("Type", "Opportunity Type", ("Existing Business", "New Business")),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _text("NextStep", "Next Step", 255),
        _text("Description", "Description", 32000, type="textarea"),
        _OWNER,
        _ro("LastActivityDate", "date", "Last Activity"),
        # Standard since API 52.0: when StageName last changed (set by the org, read-only).
        _ro("LastStageChangeDate", "datetime", "Last Stage Change Date"),
    ),
    # Object reference, OpportunityHistory: "Represents the stage history of an opportunity";
    # describe/query/retrieve only. A row is written when an opportunity is created and whenever its
    # Amount, Probability, StageName or CloseDate changes. It has no LastModified* fields.
    "OpportunityHistory": (
        _ro("OpportunityId", "reference", "Opportunity ID", length=18, reference_to=("Opportunity",),
            relationship_name="Opportunity", nillable=False),
        _ro("StageName", "picklist", "Stage Name", length=255, picklist_values=tuple(STAGES), nillable=False),
        _ro("Amount", "currency", "Amount"),
        _ro("CloseDate", "date", "Close Date"),
        _ro("Probability", "percent", "Probability"),
        _ro("ExpectedRevenue", "currency", "Expected Revenue"),
        _ro("ForecastCategory", "picklist", "To Forecast Category", length=40,
            picklist_values=("Omitted", "Pipeline", "BestCase", "MostLikely", "Forecast", "Closed")),
        _ro("PrevAmount", "currency", "Previous Amount"),
        _ro("PrevCloseDate", "date", "Previous Close Date"),
    ),
    # Object reference, OpportunityContactRole: the role a contact plays on an opportunity.
    "OpportunityContactRole": (
        _ref("OpportunityId", "Opportunity ID", ("Opportunity",), "Opportunity", nillable=False, required=True,
             updateable=False),
        _ref("ContactId", "Contact ID", ("Contact",), "Contact", nillable=False, required=True),
        _pick("Role", "Role", ("Business User", "Decision Maker", "Economic Buyer", "Economic Decision Maker",
                               "Evaluator", "Executive Sponsor", "Influencer", "Technical Buyer", "Other")),
        Field("IsPrimary", "boolean", "Primary", nillable=False, default=False),
    ),
    # Object reference, OpportunityLineItem (deviation: no PricebookEntryId/Product2Id, the sandbox
    # has no price books). TotalPrice is Quantity x UnitPrice less Discount (percent).
    "OpportunityLineItem": (
        _ref("OpportunityId", "Opportunity ID", ("Opportunity",), "Opportunity", nillable=False, required=True,
             updateable=False),
        _text("Name", "Opportunity Product Name", 376, createable=False, updateable=False),
        _text("Description", "Line Description", 255),
        Field("Quantity", "double", "Quantity", nillable=False, required=True),
        Field("UnitPrice", "currency", "Sales Price"),
        Field("ListPrice", "currency", "List Price", createable=False, updateable=False),
        Field("Discount", "percent", "Discount"),
        _ro("TotalPrice", "currency", "Total Price"),
        Field("ServiceDate", "date", "Date"),
    ),
    "Task": (
        _text("Subject", "Subject", 255, type="combobox"),
        _text("Description", "Description", 32000, type="textarea"),
        Field("ActivityDate", "date", "Due Date Only"),
        _OWNER,
        _ref("WhoId", "Name ID", ("Contact", "Lead"), "Who"),
        _ref("WhatId", "Related To ID", ("Account", "Opportunity"), "What"),
        _pick("Status", "Status", TASK_STATUSES, nillable=False, default="Not Started"),
        _pick("Priority", "Priority", TASK_PRIORITIES, nillable=False, default="Normal"),
        _ro("IsClosed", "boolean", "Closed", nillable=False),
        _ro("IsHighPriority", "boolean", "High Priority", nillable=False),
        _pick("TaskSubtype", "Task Subtype", ("Task", "Email", "Call")),
        _pick("Type", "Type", ("Call", "Email", "Meeting", "Other")),
        _ro("CompletedDateTime", "datetime", "Completed Date/Time"),
    ),
    "User": (
        _text("Username", "Username", 80, nillable=False, required=True, unique=True),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False, required=True),
        _ro("Name", "string", "Full Name", length=121),
        _text("Alias", "Alias", 8),
        _text("Email", "Email", 128, type="email", nillable=False, required=True),
        Field("IsActive", "boolean", "Active", nillable=False, default=True),
        _text("Title", "Title", 80),
        _text("Department", "Department", 80),
        _ref("ManagerId", "Manager ID", ("User",), "Manager"),
        _text("TimeZoneSidKey", "Time Zone", 40, default="America/Los_Angeles"),
    ),
}

_LABELS = {
    "Lead": ("Lead", "Leads"),
    "Contact": ("Contact", "Contacts"),
    "Account": ("Account", "Accounts"),
    "Opportunity": ("Opportunity", "Opportunities"),
    "Task": ("Task", "Tasks"),
    "OpportunityHistory": ("Opportunity History", "Opportunity History"),
    "OpportunityContactRole": ("Opportunity Contact Role", "Opportunity Contact Role"),
    "OpportunityLineItem": ("Opportunity Product", "Opportunity Product"),
    "User": ("User", "Users"),
}


def _custom(obj: str) -> tuple[Field, ...]:
    fields = []
    for cf in SALESFORCE_CUSTOM_FIELDS.get(obj, ()):
        length = cf.length or (255 if cf.type in TEXT_TYPES else 0)
        fields.append(
            Field(
                cf.name,
                cf.type,
                cf.label,
                length,
                external_id=cf.external_id,
                unique=cf.unique,
                picklist_values=cf.picklist_values,
                default=False if cf.type == "boolean" else None,
                nillable=cf.type != "boolean",
                createable=not cf.calculated,
                updateable=not cf.calculated,
            )
        )
    return tuple(fields)


class SObjectType:
    """One sObject type: its fields by canonical name and by lower-cased name."""

    def __init__(self, name: str, fields: tuple[Field, ...]) -> None:
        self.name = name
        self.key_prefix = KEY_PREFIXES[name]
        self.label, self.label_plural = _LABELS[name]
        self.fields: dict[str, Field] = {f.name: f for f in fields}
        self.by_lower: dict[str, Field] = {f.name.lower(): f for f in fields}
        self.relationships: dict[str, Field] = {
            f.relationship_name.lower(): f for f in fields if f.relationship_name
        }
        self.external_ids = [f.name for f in fields if f.external_id]

    def field(self, name: str) -> Field | None:
        """The field called ``name`` (case-insensitive), or None."""
        return self.by_lower.get(name.lower())


def _build() -> dict[str, SObjectType]:
    types = {}
    for name, standard in _STANDARD.items():
        system: tuple[Field, ...] = _SYSTEM[1:]
        if name in READ_ONLY_OBJECTS:  # history rows are never modified: no LastModified* fields
            system = tuple(f for f in system if not f.name.startswith("LastModified"))
        types[name] = SObjectType(name, _SYSTEM[:1] + standard + system + _custom(name))
    return types


#: The objects the sandbox org serves, by canonical name.
SOBJECTS: dict[str, SObjectType] = _build()
_BY_LOWER = {name.lower(): t for name, t in SOBJECTS.items()}


def sobject(name: str) -> SObjectType | None:
    """The sObject type called ``name`` (case-insensitive), or None."""
    return _BY_LOWER.get(name.lower())


def _urls(obj: SObjectType, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "sobject": base,
        "describe": f"{base}/describe",
        "rowTemplate": f"{base}/{{ID}}",
    }


def basic_info(obj: SObjectType, version: str) -> dict[str, Any]:
    """The ``sobjects/`` entry of one object (also the ``objectDescribe`` of ``sobjects/{Obj}/``)."""
    writable = obj.name not in READ_ONLY_OBJECTS
    return {
        "activateable": False,
        "createable": writable,
        "custom": False,
        "customSetting": False,
        "deletable": obj.name != "User" and writable,
        "deprecatedAndHidden": False,
        "feedEnabled": True,
        "hasSubtypes": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": True,
        "mergeable": obj.name in ("Lead", "Contact", "Account"),
        "mruEnabled": True,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": obj.name != "User" and writable,
        "updateable": writable,
        "urls": _urls(obj, version),
    }


def describe_field(f: Field) -> dict[str, Any]:
    """A field as ``describe`` lists it."""
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "length": f.length if f.type in TEXT_TYPES or f.type in ID_TYPES else 0,
        "precision": 18 if f.type in ("double", "currency", "percent") else 0,
        "scale": 2 if f.type in ("currency", "percent") else (0 if f.type != "double" else 2),
        "digits": 9 if f.type == "int" else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.default is not None or f.name in ("OwnerId", "Id") or not f.createable,
        "custom": f.name.endswith("__c"),
        "externalId": f.external_id,
        "unique": f.unique,
        "idLookup": f.name == "Id" or f.external_id,
        "caseSensitive": False,
        "filterable": f.type != "textarea",
        "sortable": f.type != "textarea",
        "groupable": f.type not in ("textarea", "double", "currency", "percent", "datetime"),
        "calculated": False,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "validFor": None, "value": v}
            for v in f.picklist_values
        ],
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "restrictedPicklist": False,
        "defaultValue": f.default if f.type != "boolean" else None,
        "defaultValueFormula": None,
    }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def describe(obj: SObjectType, version: str) -> dict[str, Any]:
    """The full ``sobjects/{Obj}/describe`` answer."""
    info = basic_info(obj, version)
    info["fields"] = [describe_field(f) for f in obj.fields.values()]
    info["childRelationships"] = []
    info["recordTypeInfos"] = []
    info["urls"] = {**info["urls"], "uiEditTemplate": "", "uiDetailTemplate": "", "uiNewRecord": ""}
    return info
