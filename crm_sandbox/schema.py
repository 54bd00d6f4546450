"""The sandbox org's customisation: custom fields (Salesforce) and custom properties (HubSpot).

A real org gets these from its admin; the sandbox declares them here so that
both servers describe, validate and store them, and the seed generator fills
them. Relay's own HubSpot properties (``relay_*``) are deliberately absent:
Relay creates them through the properties API, as it must in a real portal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CustomField:
    """A Salesforce custom field.

    Attributes:
        name: API name, ending in ``__c``.
        type: Salesforce field type as ``describe`` reports it: string, textarea,
            double, int, percent, currency, boolean, date, datetime, picklist,
            reference, email, phone, url.
        label: the label shown in the UI.
        length: maximum length of text fields.
        external_id: usable for upsert by external id.
        unique: values must be unique (case-insensitive, as Salesforce does).
        picklist_values: allowed values of a picklist.
        calculated: a roll-up summary or formula: read-only for clients (the seed fills it).
    """

    name: str
    type: str
    label: str
    length: int | None = None
    external_id: bool = False
    unique: bool = False
    picklist_values: tuple[str, ...] = ()
    calculated: bool = False


@dataclass(frozen=True)
class HubSpotProperty:
    """A HubSpot property definition (``/crm/v3/properties/{objectType}``).

    Attributes:
        name: internal name.
        label: label shown in the UI.
        type: string, number, date, datetime, enumeration or bool.
        field_type: text, textarea, number, date, booleancheckbox, select, checkbox, ...
        group_name: property group.
        options: (label, value) pairs of an enumeration.
        has_unique_value: usable as ``idProperty`` for upserts.
    """

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    options: tuple[tuple[str, str], ...] = ()
    has_unique_value: bool = False


_BEHAVIOUR = (
    CustomField("Page_Views__c", "double", "Page Views"),
    CustomField("Email_Clicks__c", "double", "Email Clicks"),
    CustomField("Form_Submissions__c", "double", "Form Submissions"),
    CustomField("Content_Downloads__c", "double", "Content Downloads"),
    CustomField("Pricing_Page_Visits__c", "double", "Pricing Page Visits"),
    CustomField("Webinar_Attended__c", "boolean", "Webinar Attended"),
    CustomField("Demo_Requested__c", "boolean", "Demo Requested"),
)
_RELAY_PERSON = (
    CustomField("Relay_Score__c", "double", "Relay Score"),
    CustomField("Relay_Score_Category__c", "string", "Relay Score Category", length=40),
    CustomField("Relay_Routing_Reason__c", "string", "Relay Routing Reason", length=255),
    CustomField("Relay_SLA_Due__c", "datetime", "Relay SLA Due"),
    CustomField("Relay_Matched_Account__c", "string", "Relay Matched Account", length=18),
    CustomField("Relay_Id__c", "string", "Relay Id", length=64, external_id=True),
    CustomField("Relay_Nurture_Track__c", "string", "Relay Nurture Track", length=40),
)
#: Seed 002 "Lead Disposition" options, as the rep's picklist shows them.
DISPOSITIONS = ("Qualified", "Not Ready", "Bad Fit", "No Response", "Do Not Contact")
# The rep's disposition and the SDR -> AE handoff checklist (meeting outcome, notes, next step, BANT).
_DISPOSITION_PERSON = (
    CustomField("Disposition__c", "picklist", "Disposition", length=255, picklist_values=DISPOSITIONS),
    CustomField("Disposition_Date__c", "datetime", "Disposition Date"),
    CustomField("Meeting_Outcome__c", "string", "Meeting Outcome", length=255),
    CustomField("Handoff_Notes__c", "textarea", "Handoff Notes", length=32768),
    CustomField("Next_Step__c", "string", "Next Step", length=255),
    CustomField("Budget__c", "string", "Budget", length=255),
    CustomField("Authority__c", "string", "Authority", length=255),
    CustomField("Need__c", "string", "Need", length=255),
    CustomField("Timeline__c", "string", "Timeline", length=255),
)
#: Closed Won carry-over picklists (seed 002 "Customer Handoff SOP": payment and contract state).
PAYMENT_STATES = ("Not Invoiced", "Invoiced", "Paid", "Overdue")
CONTRACT_STATES = ("Draft", "Sent for Signature", "Signed", "Activated")

SALESFORCE_CUSTOM_FIELDS: dict[str, tuple[CustomField, ...]] = {
    "Lead": _BEHAVIOUR + _RELAY_PERSON + _DISPOSITION_PERSON,
    "Contact": _BEHAVIOUR + _RELAY_PERSON + _DISPOSITION_PERSON,
    "Account": (
        CustomField("Domain__c", "string", "Domain", length=255),
        CustomField("Relay_Id__c", "string", "Relay Id", length=64, external_id=True),
        # Roll-up summary: COUNT(Opportunity) where IsClosed = false (Relay's account match reads it).
        CustomField("Open_Opportunities__c", "double", "Open Opportunities", calculated=True),
    ),
    "Opportunity": (
        CustomField("Discovery_Call_Scheduled__c", "boolean", "Discovery Call Scheduled"),
        CustomField("Decision_Maker_Identified__c", "boolean", "Decision Maker Identified"),
        CustomField("Pain_Points__c", "textarea", "Pain Points", length=32768),
        CustomField("BANT_Qualified__c", "boolean", "BANT Qualified"),
        CustomField("Champion_Identified__c", "boolean", "Champion Identified"),
        CustomField("Demo_Scheduled__c", "boolean", "Demo Scheduled"),
        CustomField("Mutual_Evaluation_Plan__c", "boolean", "Mutual Evaluation Plan"),
        CustomField("Solution_Fit_Confirmed__c", "boolean", "Solution Fit Confirmed"),
        CustomField("ROI_Validated__c", "boolean", "ROI Validated"),
        CustomField("Proposal_Requested__c", "boolean", "Proposal Requested"),
        CustomField("Decision_Makers_Engaged__c", "boolean", "Decision Makers Engaged"),
        CustomField("Proposal_Delivered__c", "boolean", "Proposal Delivered"),
        CustomField("Feedback_Received__c", "boolean", "Feedback Received"),
        CustomField("Negotiation_Points_Identified__c", "boolean", "Negotiation Points Identified"),
        CustomField("Decision_Date__c", "date", "Decision Date"),
        CustomField("Discount_Percent__c", "percent", "Discount Percent"),
        CustomField("Discount_Approved_By__c", "string", "Discount Approved By", length=80),
        CustomField("Terms_Agreed__c", "boolean", "Terms Agreed"),
        CustomField("Contract_Sent__c", "boolean", "Contract Sent"),
        CustomField("Signatures_Scheduled__c", "boolean", "Signatures Scheduled"),
        CustomField("Implementation_Planned__c", "boolean", "Implementation Planned"),
        CustomField("Loss_Reason__c", "string", "Loss Reason", length=255),
        CustomField("Key_Stakeholders__c", "textarea", "Key Stakeholders", length=32768),
        CustomField("Risk_Factors__c", "textarea", "Risk Factors", length=32768),
        CustomField("Handoff_CSM__c", "string", "Handoff CSM", length=18),
        CustomField("Go_Live_Date__c", "date", "Go-Live Date"),
        CustomField("Success_Criteria__c", "textarea", "Success Criteria", length=32768),
        CustomField("Contract_Term_Months__c", "double", "Contract Term (Months)"),
        # Carried over to Customer Success at Closed Won (seed 002 "Customer Handoff SOP").
        CustomField("Payment_State__c", "picklist", "Payment State", length=255, picklist_values=PAYMENT_STATES),
        CustomField("Contract_State__c", "picklist", "Contract State", length=255, picklist_values=CONTRACT_STATES),
        CustomField("Kickoff_Date__c", "date", "Kickoff Date"),
        CustomField("Onboarding_Owner__c", "string", "Onboarding Owner", length=80),
        CustomField("Launch_Blockers__c", "textarea", "Launch Blockers", length=32768),
        CustomField("Relay_Stage_Gate_Status__c", "string", "Relay Stage Gate Status", length=255),
        CustomField("Relay_Id__c", "string", "Relay Id", length=64, external_id=True),
    ),
    "Task": (
        CustomField(
            "Relay_Idempotency_Key__c", "string", "Relay Idempotency Key", length=128, external_id=True, unique=True
        ),
    ),
}

_HS_BOOL = (("True", "true"), ("False", "false"))

HUBSPOT_CUSTOM_PROPERTIES: dict[str, tuple[HubSpotProperty, ...]] = {
    "contacts": (
        HubSpotProperty("content_downloads", "Content Downloads", "number", "number", "contactinformation"),
        HubSpotProperty("pricing_page_visits", "Pricing Page Visits", "number", "number", "contactinformation"),
        HubSpotProperty("webinar_attended", "Webinar Attended", "bool", "booleancheckbox", "contactinformation", _HS_BOOL),
        HubSpotProperty("demo_requested", "Demo Requested", "bool", "booleancheckbox", "contactinformation", _HS_BOOL),
        # The rep's disposition (seed 002 "Lead Disposition") and the SDR -> AE handoff checklist.
        HubSpotProperty("disposition", "Disposition", "enumeration", "select", "sales_properties",
                        tuple((d, d) for d in DISPOSITIONS)),
        HubSpotProperty("disposition_date", "Disposition Date", "datetime", "date", "sales_properties"),
        HubSpotProperty("meeting_outcome", "Meeting Outcome", "string", "text", "sales_properties"),
        HubSpotProperty("handoff_notes", "Handoff Notes", "string", "textarea", "sales_properties"),
        HubSpotProperty("next_step", "Next Step", "string", "text", "sales_properties"),
        HubSpotProperty("budget", "Budget", "string", "text", "sales_properties"),
        HubSpotProperty("authority", "Authority", "string", "text", "sales_properties"),
        HubSpotProperty("need", "Need", "string", "text", "sales_properties"),
        HubSpotProperty("timeline", "Timeline", "string", "text", "sales_properties"),
    ),
    "companies": (),
    "deals": (
        HubSpotProperty("discovery_call_scheduled", "Discovery Call Scheduled", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("decision_maker_identified", "Decision Maker Identified", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("pain_points", "Pain Points", "string", "textarea", "dealinformation"),
        HubSpotProperty("bant_qualified", "BANT Qualified", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("champion_identified", "Champion Identified", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("demo_scheduled", "Demo Scheduled", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("mutual_evaluation_plan", "Mutual Evaluation Plan", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("solution_fit_confirmed", "Solution Fit Confirmed", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("roi_validated", "ROI Validated", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("proposal_requested", "Proposal Requested", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("decision_makers_engaged", "Decision Makers Engaged", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("proposal_delivered", "Proposal Delivered", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("feedback_received", "Feedback Received", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("negotiation_points_identified", "Negotiation Points Identified", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("decision_date", "Decision Date", "date", "date", "dealinformation"),
        HubSpotProperty("discount_percent", "Discount Percent", "number", "number", "dealinformation"),
        HubSpotProperty("terms_agreed", "Terms Agreed", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("contract_sent", "Contract Sent", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("signatures_scheduled", "Signatures Scheduled", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("implementation_planned", "Implementation Planned", "bool", "booleancheckbox", "dealinformation", _HS_BOOL),
        HubSpotProperty("success_criteria", "Success Criteria", "string", "textarea", "dealinformation"),
        HubSpotProperty("discount_approved_by", "Discount Approved By", "string", "text", "dealinformation"),
        # The Closed Won handoff form and what is carried over to Customer Success (seed 002).
        HubSpotProperty("handoff_csm", "Handoff CSM (owner id)", "string", "text", "dealinformation"),
        HubSpotProperty("go_live_date", "Go-Live Date", "date", "date", "dealinformation"),
        HubSpotProperty("contract_term_months", "Contract Term (Months)", "number", "number", "dealinformation"),
        HubSpotProperty("key_stakeholders", "Key Stakeholders", "string", "textarea", "dealinformation"),
        HubSpotProperty("risk_factors", "Risk Factors", "string", "textarea", "dealinformation"),
        HubSpotProperty("payment_state", "Payment State", "enumeration", "select", "dealinformation",
                        tuple((s, s) for s in PAYMENT_STATES)),
        HubSpotProperty("contract_state", "Contract State", "enumeration", "select", "dealinformation",
                        tuple((s, s) for s in CONTRACT_STATES)),
        HubSpotProperty("kickoff_date", "Kickoff Date", "date", "date", "dealinformation"),
        HubSpotProperty("onboarding_owner", "Onboarding Owner", "string", "text", "dealinformation"),
        HubSpotProperty("launch_blockers", "Launch Blockers", "string", "textarea", "dealinformation"),
    ),
    "tasks": (),
    "notes": (),
}
