"""Property definitions of the sandbox portal and the validation of property values.

The built-in definitions cover the standard properties Relay and the seed use
(with HubSpot's real enumeration options), plus the portal's custom properties
from :mod:`crm_sandbox.schema`. Relay adds its own through the
properties API, as it must in a real portal.

Deliberate deviation: contact ``numemployees`` and ``annualrevenue`` and company
``industry`` are typed as number/number/string here (HubSpot ships them as an
enumeration/string/enumeration), because the shared contract treats them as
plain values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from crm_sandbox.hubspot.pipelines import pipeline_options, stage_options
from crm_sandbox.hubspot.subscriptions import opt_out_properties
from crm_sandbox.schema import HUBSPOT_CUSTOM_PROPERTIES

PROPERTY_TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
FIELD_TYPES = (
    "textarea", "text", "date", "file", "number", "select", "radio", "checkbox",
    "booleancheckbox", "calculation_equation", "phonenumber", "html",
)

#: Properties HubSpot maintains itself: writes to them are ignored.
MAINTAINED = frozenset(
    {"hs_object_id", "createdate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_merged_object_ids"}
)

_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPOCH = re.compile(r"^-?\d{1,16}$")


@dataclass
class PropertyDefinition:
    """One property of one object type, as ``/crm/v3/properties`` describes it."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    options: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    has_unique_value: bool = False
    hubspot_defined: bool = True
    read_only_value: bool = False
    external_options: bool = False
    display_order: int = -1
    hidden: bool = False
    form_field: bool = True
    created_at: str = "2019-08-06T02:41:52.000Z"
    updated_at: str = "2019-08-06T02:41:52.000Z"

    def as_json(self) -> dict[str, Any]:
        """The property in the API's shape (``Property`` model of the SDK)."""
        body: dict[str, Any] = {
            "updatedAt": self.updated_at,
            "createdAt": self.created_at,
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (label, value) in enumerate(self.options)
            ],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": self.external_options,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
            "formField": self.form_field,
            "archived": False,
        }
        return body


def _opts(*values: str, labels: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    if labels:
        return list(zip(labels, values, strict=True))
    return [(v.replace("_", " ").title(), v) for v in values]


_BOOL = [("True", "true"), ("False", "false")]
LEAD_STATUSES = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING",
)
LIFECYCLE_STAGES = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
    "evangelist", "other",
)
_LIFECYCLE_LABELS = (
    "Subscriber", "Lead", "Marketing Qualified Lead", "Sales Qualified Lead", "Opportunity", "Customer",
    "Evangelist", "Other",
)
LEGAL_BASES = (
    "Legitimate interest \u2013 prospect/lead", "Legitimate interest \u2013 existing customer", "Legitimate interest - other",
    "Performance of a contract", "Freely given consent from contact", "Not applicable",
)
"""The options of ``hs_legal_basis`` ("Legal basis for processing contact's data"): HubSpot stores the labels."""
DEAL_STAGES = (
    "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
    "contractsent", "closedwon", "closedlost",
)
DEAL_STAGE_LABELS = (
    "Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In",
    "Contract Sent", "Closed Won", "Closed Lost",
)


def _p(name: str, label: str, type_: str = "string", field_type: str = "text", group: str = "", **kw: Any) -> PropertyDefinition:
    return PropertyDefinition(name=name, label=label, type=type_, field_type=field_type, group_name=group, **kw)


def _common(group: str, created: str) -> list[PropertyDefinition]:
    return [
        _p(created, "Create Date", "datetime", "date", group, read_only_value=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only_value=True),
        _p("hs_object_id", "Record ID", "number", "number", group, read_only_value=True),
        _p("hubspot_owner_id", "Owner", "enumeration", "select", group, external_options=True),
    ]


def _builtin() -> dict[str, list[PropertyDefinition]]:
    ci = "contactinformation"
    contacts = [
        _p("firstname", "First Name", group=ci),
        _p("lastname", "Last Name", group=ci),
        _p("email", "Email", group=ci),
        _p("hs_additional_emails", "Additional email addresses", "enumeration", "checkbox", ci, read_only_value=True),
        _p("phone", "Phone Number", "string", "phonenumber", ci),
        _p("mobilephone", "Mobile Phone Number", "string", "phonenumber", ci),
        _p("jobtitle", "Job Title", group=ci),
        _p("company", "Company Name", group=ci),
        _p("website", "Website URL", group=ci),
        _p("industry", "Industry", group=ci),
        _p("numemployees", "Number of Employees", "number", "number", ci),
        _p("annualrevenue", "Annual Revenue", "number", "number", ci),
        _p("address", "Street Address", group=ci),
        _p("city", "City", group=ci),
        _p("state", "State/Region", group=ci),
        _p("zip", "Postal Code", group=ci),
        _p("country", "Country/Region", group=ci),
        _p("hs_lead_status", "Lead Status", "enumeration", "radio", "sales_properties", options=_opts(*LEAD_STATUSES)),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", ci,
           options=_opts(*LIFECYCLE_STAGES, labels=_LIFECYCLE_LABELS)),
        _p("hs_email_optout", "Unsubscribed from all email", "bool", "booleancheckbox", "emailinformation", options=_BOOL),
        # One per email subscription type (subscriptions.py): "true" once the contact opted out of it; set
        # through the communication preferences API only.
        *[_p(name, label, "bool", "booleancheckbox", "emailinformation", options=_BOOL, read_only_value=True)
          for name, label in opt_out_properties()],
        # GDPR: the lawful basis of processing the contact's data; a checkbox (values joined by ";").
        _p("hs_legal_basis", "Legal basis for processing contact's data", "enumeration", "checkbox", ci,
           options=[(basis, basis) for basis in LEGAL_BASES]),
        _p("notes_last_updated", "Last Activity Date", "datetime", "date", ci, read_only_value=True),
        _p("hs_analytics_num_page_views", "Number of Pageviews", "number", "number", "analyticsinformation"),
        _p("hs_email_click", "Marketing emails clicked", "number", "number", "emailinformation"),
        _p("num_conversion_events", "Number of Form Submissions", "number", "number", "conversioninformation"),
        _p("hs_analytics_source", "Original Traffic Source", "enumeration", "select", "analyticsinformation",
           options=_opts("ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
                         "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL")),
        _p("lastmodifieddate", "Last Modified Date", "datetime", "date", ci, read_only_value=True),
        _p("hs_merged_object_ids", "Merged Contact IDs", "enumeration", "checkbox", ci, read_only_value=True),
        *_common(ci, "createdate"),
    ]
    co = "companyinformation"
    companies = [
        _p("name", "Company name", group=co),
        _p("domain", "Company Domain Name", group=co),
        _p("website", "Website URL", group=co),
        _p("industry", "Industry", group=co),
        _p("numberofemployees", "Number of Employees", "number", "number", co),
        _p("annualrevenue", "Annual Revenue", "number", "number", co),
        _p("phone", "Phone Number", "string", "phonenumber", co),
        _p("city", "City", group=co),
        _p("state", "State/Region", group=co),
        _p("country", "Country/Region", group=co),
        _p("description", "Description", "string", "textarea", co),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", co,
           options=_opts(*LIFECYCLE_STAGES, labels=_LIFECYCLE_LABELS)),
        _p("hs_merged_object_ids", "Merged Company IDs", "enumeration", "checkbox", co, read_only_value=True),
        _p("hs_num_open_deals", "Number of Open Deals", "number", "number", co, read_only_value=True),
        _p("notes_last_updated", "Last Activity Date", "datetime", "date", co, read_only_value=True),
        *_common(co, "createdate"),
    ]
    di = "dealinformation"
    deals = [
        _p("dealname", "Deal Name", group=di),
        _p("amount", "Amount", "number", "number", di),
        _p("closedate", "Close Date", "datetime", "date", di),
        # The options of every deal pipeline (crm_sandbox.hubspot.pipelines), as HubSpot lists them.
        _p("pipeline", "Pipeline", "enumeration", "select", di, options=pipeline_options()),
        _p("dealstage", "Deal Stage", "enumeration", "radio", di, options=stage_options()),
        _p("dealtype", "Deal Type", "enumeration", "radio", di,
           options=_opts("newbusiness", "existingbusiness", labels=("New Business", "Existing Business"))),
        _p("description", "Deal Description", "string", "textarea", di),
        _p("hs_deal_stage_probability", "Deal probability", "number", "number", di),
        _p("closed_lost_reason", "Closed Lost Reason", "string", "textarea", di),
        _p("hs_next_step", "Next step", "string", "textarea", di),
        _p("closed_won_reason", "Closed Won Reason", "string", "textarea", di),
        *_common(di, "createdate"),
    ]
    ti = "task"
    tasks = [
        _p("hs_task_subject", "Task Title", group=ti),
        _p("hs_task_body", "Notes", "string", "html", ti),
        _p("hs_timestamp", "Due date", "datetime", "date", ti),
        _p("hs_task_status", "Task Status", "enumeration", "select", ti,
           options=_opts("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        _p("hs_task_priority", "Priority", "enumeration", "select", ti, options=_opts("NONE", "LOW", "MEDIUM", "HIGH")),
        _p("hs_task_type", "Task Type", "enumeration", "select", ti,
           options=_opts("TODO", "CALL", "EMAIL", "LINKED_IN", "MEETING")),
        _p("hs_task_completion_date", "Completed at", "datetime", "date", ti),
        *_common(ti, "hs_createdate"),
    ]
    ni = "engagement"
    notes = [
        _p("hs_note_body", "Note body", "string", "html", ni),
        _p("hs_timestamp", "Activity date", "datetime", "date", ni),
        _p("hs_attachment_ids", "Attachment IDs", "enumeration", "checkbox", ni),
        *_common(ni, "hs_createdate"),
    ]
    result = {"contacts": contacts, "companies": companies, "deals": deals, "tasks": tasks, "notes": notes}
    for plural, spec in STANDARD_TYPES.items():
        group = spec.group[0]
        result[plural] = [
            _p(name, label, kind, field, group, options=_opts(*options) if options else [])
            for name, label, kind, field, options in spec.fields
        ] + _common(group, spec.created)
    for object_type, custom in HUBSPOT_CUSTOM_PROPERTIES.items():
        for prop in custom:
            result.setdefault(object_type, []).append(
                PropertyDefinition(
                    name=prop.name,
                    label=prop.label,
                    type=prop.type,
                    field_type=prop.field_type,
                    group_name=prop.group_name,
                    options=list(prop.options),
                    has_unique_value=prop.has_unique_value,
                    hubspot_defined=False,
                )
            )
    return result


@dataclass(frozen=True)
class StandardType:
    """A HubSpot-defined object type beyond contacts, companies, deals, tasks and notes.

    Attributes:
        type_id: HubSpot's object type id (``0-48``).
        singular: the singular name (``call``).
        created: the creation-date property (``hs_createdate`` or ``createdate``).
        group: the property group (name, label) its properties belong to.
        fields: its key properties as (name, label, type, fieldType, enumeration options).
        defaults: the properties a read returns when it names none (besides the common ones).
    """

    type_id: str
    singular: str
    created: str
    group: tuple[str, str]
    fields: tuple[tuple[str, str, str, str, tuple[str, ...]], ...]
    defaults: tuple[str, ...] = ()


_TS = ("hs_timestamp", "Activity date", "datetime", "date", ())


def _text(name: str, label: str, field: str = "text") -> tuple[str, str, str, str, tuple[str, ...]]:
    return (name, label, "string", field, ())


def _num(name: str, label: str) -> tuple[str, str, str, str, tuple[str, ...]]:
    return (name, label, "number", "number", ())


def _enum(name: str, label: str, *options: str) -> tuple[str, str, str, str, tuple[str, ...]]:
    return (name, label, "enumeration", "select", options)


#: Further standard object types (readable, writable, searchable; their property lists are the key
#: fields of HubSpot's object reference pages, not the full lists a real portal has).
STANDARD_TYPES: dict[str, StandardType] = {
    "calls": StandardType("0-48", "call", "hs_createdate", ("call", "Call information"), (
        _text("hs_call_title", "Call Title"), _text("hs_call_body", "Call notes", "html"), _TS,
        _num("hs_call_duration", "Call duration"),
        _enum("hs_call_direction", "Call direction", "INBOUND", "OUTBOUND"),
        _enum("hs_call_status", "Call status", "BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING",
              "FAILED", "IN_PROGRESS", "MISSED", "NO_ANSWER", "QUEUED", "RINGING"),
        _text("hs_call_disposition", "Call outcome"), _text("hs_call_from_number", "From number"),
        _text("hs_call_to_number", "To number"), _text("hs_call_recording_url", "Recording URL"),
    )),
    "emails": StandardType("0-49", "email", "hs_createdate", ("email", "Email information"), (
        _text("hs_email_subject", "Email subject"), _text("hs_email_text", "Email body", "textarea"),
        _text("hs_email_html", "Email HTML body", "html"), _text("hs_email_headers", "Email headers", "textarea"), _TS,
        _enum("hs_email_direction", "Email direction", "EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
        _enum("hs_email_status", "Email send status", "BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
    )),
    "meetings": StandardType("0-47", "meeting", "hs_createdate", ("meeting", "Meeting information"), (
        _text("hs_meeting_title", "Meeting name"), _text("hs_meeting_body", "Meeting description", "html"),
        _text("hs_internal_meeting_notes", "Internal notes", "html"), _text("hs_meeting_external_url", "External URL"),
        _text("hs_meeting_location", "Location"), _TS,
        ("hs_meeting_start_time", "Start time", "datetime", "date", ()),
        ("hs_meeting_end_time", "End time", "datetime", "date", ()),
        _enum("hs_meeting_outcome", "Meeting outcome", "SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
    )),
    "communications": StandardType("0-18", "communication", "hs_createdate", ("communication", "Communication information"), (
        _enum("hs_communication_channel_type", "Channel type", "WHATS_APP", "LINKEDIN_MESSAGE", "SMS"),
        _enum("hs_communication_logged_from", "Logged from", "CRM"),
        _text("hs_communication_body", "Communication body", "html"), _TS,
    )),
    "postal_mail": StandardType("0-116", "postal_mail", "hs_createdate", ("postal_mail", "Postal mail information"), (
        _text("hs_postal_mail_body", "Postal mail body", "html"), _TS,
    )),
    "leads": StandardType("0-136", "lead", "hs_createdate", ("lead_information", "Lead information"), (
        _text("hs_lead_name", "Lead name"), _text("hs_pipeline", "Lead pipeline"), _text("hs_pipeline_stage", "Lead stage"),
        _text("hs_lead_type", "Lead type"), _text("hs_lead_label", "Lead label"),
    ), ("hs_lead_name", "hs_pipeline", "hs_pipeline_stage")),
    "line_items": StandardType("0-8", "line_item", "createdate", ("lineiteminformation", "Line item information"), (
        _text("name", "Name"), _num("price", "Unit price"), _num("quantity", "Quantity"), _num("amount", "Net price"),
        _text("hs_product_id", "Product ID"), _text("hs_sku", "SKU"), _text("description", "Description", "textarea"),
    ), ("name", "price", "quantity", "amount", "hs_product_id")),
    "products": StandardType("0-7", "product", "createdate", ("productinformation", "Product information"), (
        _text("name", "Name"), _num("price", "Unit price"), _text("description", "Description", "textarea"),
        _text("hs_sku", "SKU"), _num("hs_cost_of_goods_sold", "Unit cost"),
        _text("hs_recurring_billing_period", "Term"),
    ), ("name", "price", "description")),
    "tickets": StandardType("0-5", "ticket", "createdate", ("ticketinformation", "Ticket information"), (
        _text("subject", "Ticket name"), _text("content", "Ticket description", "textarea"),
        _text("hs_pipeline", "Pipeline"), _text("hs_pipeline_stage", "Ticket status"),
        _enum("hs_ticket_priority", "Priority", "LOW", "MEDIUM", "HIGH", "URGENT"),
        _enum("hs_ticket_category", "Category", "PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"),
        _text("source_type", "Source"),
    ), ("subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority")),
    "quotes": StandardType("0-14", "quote", "hs_createdate", ("quoteinformation", "Quote information"), (
        _text("hs_title", "Quote name"), ("hs_expiration_date", "Expiration date", "datetime", "date", ()),
        _text("hs_status", "Quote approval status"), _num("hs_quote_amount", "Quote amount"),
        _text("hs_currency", "Currency"),
    ), ("hs_title", "hs_expiration_date")),
    "goal_targets": StandardType("0-74", "goal_target", "hs_createdate", ("goal_target_information", "Goal information"), (
        _text("hs_goal_name", "Goal name"), _num("hs_target_amount", "Target"),
        ("hs_start_datetime", "Start date", "datetime", "date", ()),
        ("hs_end_datetime", "End date", "datetime", "date", ()),
        _text("hs_created_by_user_id", "Created by user ID"),
    ), ("hs_goal_name", "hs_target_amount")),
}


BUILTIN_GROUPS: dict[str, list[tuple[str, str]]] = {
    "contacts": [("contactinformation", "Contact information"), ("emailinformation", "Email information"),
                 ("analyticsinformation", "Web analytics history"), ("conversioninformation", "Conversion information"),
                 ("sales_properties", "Sales properties")],
    "companies": [("companyinformation", "Company information")],
    "deals": [("dealinformation", "Deal information")],
    "tasks": [("task", "Task information")],
    "notes": [("engagement", "Engagement information")],
}


def builtin_definitions() -> dict[str, dict[str, PropertyDefinition]]:
    """Fresh built-in and custom property definitions, by object type then name."""
    return {t: {d.name: d for d in defs} for t, defs in _builtin().items()}


#: Properties returned when a read names none, per object type.
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tasks": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}

#: Properties always returned alongside the requested ones.
ALWAYS: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "lastmodifieddate", "hs_object_id"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tasks": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}

#: Properties the free-text ``query`` of a search looks at.
SEARCHABLE: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "hs_additional_emails", "phone", "mobilephone", "company", "hs_object_id"),
    "companies": ("name", "domain", "website", "phone", "hs_object_id"),
    "deals": ("dealname", "hs_object_id"),
    "tasks": ("hs_task_subject", "hs_task_body", "hs_object_id"),
    "notes": ("hs_note_body", "hs_object_id"),
}

for _plural, _spec in STANDARD_TYPES.items():
    _always = (_spec.created, "hs_lastmodifieddate", "hs_object_id")
    BUILTIN_GROUPS[_plural] = [_spec.group]
    DEFAULT_PROPERTIES[_plural] = (*_spec.defaults, *_always)
    ALWAYS[_plural] = _always
    SEARCHABLE[_plural] = (*[f[0] for f in _spec.fields if f[2] == "string"][:3], "hs_object_id")


_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


def format_ms(ms: int) -> str:
    """Milliseconds since the epoch as HubSpot's ISO form ``2024-01-01T00:00:00.000Z``.

    Raises:
        OverflowError: outside the years 1-9999.
    """
    moment = _EPOCH_START + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def in_range(ms: int) -> bool:
    """Whether ``ms`` can be shown as a date (years 1970-9999)."""
    return 0 <= ms < 253_402_300_800_000


@lru_cache(maxsize=1 << 18)
def parse_datetime_ms(value: str) -> int | None:
    """A datetime property value (ms epoch or ISO 8601) as ms since the epoch, None if invalid."""
    text = value.strip()
    if _EPOCH.match(text):
        try:
            return int(text)
        except ValueError:  # pragma: no cover - regex guards
            return None
    if _DATE.match(text):
        text += "T00:00:00Z"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        return None


def to_text(value: Any) -> str | None:
    """A JSON property value as HubSpot stores it: a string, or None for empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    if isinstance(value, (int, float, str)):
        text = str(value)
        return text if text != "" else None
    raise TypeError(type(value).__name__)


def normalise_value(definition: PropertyDefinition, text: str, owner_ids: set[str]) -> tuple[str | None, dict[str, Any] | None]:
    """Check one value against its definition.

    Returns:
        ``(stored_value, None)`` when valid, or ``(None, problem)`` where ``problem`` names the
        property, HubSpot's error code and message.
    """
    name = definition.name
    kind = definition.type
    if kind == "number":
        if not _NUMBER.match(text):
            return None, _problem(name, "INVALID_INTEGER", f"{text} was not a valid number.", text)
        return text.strip(), None
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            return None, _problem(name, "INVALID_OPTION", f"{text} was not one of the allowed options: [true, false]", text)
        return lowered, None
    if kind == "enumeration":
        if name == "hubspot_owner_id":
            if text.strip() not in owner_ids:
                return None, _problem(name, "INVALID_OWNER_ID", f"{text} is not a valid owner id", text)
            return text.strip(), None
        if not definition.options:
            return text, None
        allowed = [value for _, value in definition.options]
        values = text.split(";") if definition.field_type == "checkbox" else [text]
        for item in values:
            if item not in allowed:
                return None, _problem(
                    name, "INVALID_OPTION", f"{item} was not one of the allowed options: [{', '.join(allowed)}]", text
                )
        return text, None
    if kind == "date":
        ms = parse_datetime_ms(text)
        if ms is None or not in_range(ms):
            return None, _problem(name, "INVALID_DATE", f"{text} is not a valid date: use YYYY-MM-DD or midnight UTC in ms", text)
        if ms % 86_400_000:
            moment = format_ms(ms)
            return None, _problem(name, "INVALID_DATE", f"{text} is at {moment[11:23]} UTC, not midnight!", text)
        return format_ms(ms)[:10], None
    if kind == "datetime":
        ms = parse_datetime_ms(text)
        if ms is None or not in_range(ms):
            return None, _problem(name, "INVALID_DATE", f"{text} is not a valid datetime: use ms since epoch or ISO 8601", text)
        return format_ms(ms), None
    return text, None


def _problem(name: str, code: str, message: str, value: str) -> dict[str, Any]:
    return {"name": name, "error": code, "message": message, "propertyValue": value}
