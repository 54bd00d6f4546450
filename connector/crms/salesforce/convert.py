"""Salesforce lead conversion: the SOAP API's ``convertLead()`` call (partner WSDL), on the adapter's session.

The REST API cannot convert a lead, so this posts a ``convertLead`` envelope through the same
SOAP machinery as merges (:func:`.merge.soap_envelope`, :func:`.merge.soap_post`,
:func:`.merge.parse_soap_answer`: session header, retry policy, call counter, API budget,
faults classified by the Salesforce dialect). One ``LeadConvert`` converts one lead into an
account (new, or ``accountId``), a new contact and a new opportunity, owned by ``ownerId``;
the org answers a ``LeadConvertResult`` with their ids, or ``success=false`` with a ``statusCode``.

The converted status is a Lead Status marked "Converted": given, or the first such
``LeadStatus`` row of the org (one query per adapter). A lead converted before answers
``CANNOT_UPDATE_CONVERTED_LEAD`` ("cannot reference converted lead"): its ``Converted*Id`` fields,
read with one query, are the earlier conversion's ids (Relay retries after a crash).

Example:
    >>> body = convert_envelope("SESSION", [LeadConvertRequest("00Q5e0000000001EAA", "Closed - Converted",
    ...                                                         "Acme - 50 seats", "0055e0000000002AAA")])
    >>> "<urn:leadId>00Q5e0000000001EAA</urn:leadId><urn:opportunityName>Acme - 50 seats</urn:opportunityName>" in body
    True
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from simple_salesforce import Salesforce

from connector.adapters._paging import UNEXPECTED_ANSWER
from connector.adapters.base import Conversion, WriteOp
from connector.adapters.errors import ConfigurationError, FatalError, RecordError, record_error
from connector.crms.salesforce.merge import (
    _local,
    _texts,
    id18,
    parse_soap_answer,
    soap_envelope,
    soap_post,
)
from connector.crms.salesforce.soql import is_salesforce_id, soql_quote

if TYPE_CHECKING:
    from connector.crms.salesforce.adapter import SalesforceAdapter

CONVERTIBLE = "Lead"
"""The object ``convertLead()`` converts."""
ALREADY_CONVERTED = "CANNOT_UPDATE_CONVERTED_LEAD"
"""The code of a conversion refused because the lead is converted already."""
ALREADY_CONVERTED_WORDS = ("already converted", "converted lead")
"""Words of a refusal's message that say the same ("cannot reference converted lead"): checked with one query."""
LEAD_STATUS_SINCE = 36.0
"""``LeadStatus.ApiName`` (the value ``convertedStatus`` takes) exists from API version 36.0; before, ``MasterLabel``."""


@dataclass(frozen=True)
class LeadConvertRequest:
    """One ``LeadConvert``: the lead, the status it takes, the opportunity to create and the new records' owner."""

    lead_id: str
    converted_status: str
    opportunity_name: str
    owner_id: str | None = None
    account_id: str | None = None


@dataclass(frozen=True)
class LeadConvertAnswer:
    """One ``LeadConvertResult``: ``errors`` as ``(statusCode, message, fields)``."""

    success: bool
    lead_id: str | None = None
    account_id: str | None = None
    contact_id: str | None = None
    opportunity_id: str | None = None
    errors: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def convert_envelope(session_id: str, requests: Sequence[LeadConvertRequest]) -> str:
    """The SOAP envelope of a ``convertLead()`` call (``LeadConvert`` elements in the WSDL's order).

    An opportunity is always created (``doNotCreateOpportunity`` false), the lead source of an
    existing contact is never overwritten and no notification e-mail is sent.
    """
    parts = []
    for request in requests:
        account = f"<urn:accountId>{escape(request.account_id)}</urn:accountId>" if request.account_id else ""
        owner = f"<urn:ownerId>{escape(request.owner_id)}</urn:ownerId>" if request.owner_id else ""
        parts.append(
            f"<urn:leadConverts>{account}<urn:convertedStatus>{escape(request.converted_status)}</urn:convertedStatus>"
            f"<urn:doNotCreateOpportunity>false</urn:doNotCreateOpportunity><urn:leadId>{escape(request.lead_id)}"
            f"</urn:leadId><urn:opportunityName>{escape(request.opportunity_name)}</urn:opportunityName>"
            f"<urn:overwriteLeadSource>false</urn:overwriteLeadSource>{owner}"
            "<urn:sendNotificationEmail>false</urn:sendNotificationEmail></urn:leadConverts>")
    return soap_envelope(session_id, f"<urn:convertLead>{''.join(parts)}</urn:convertLead>")


def parse_convert_answer(status: int, body: bytes, headers: Mapping[str, str],
                         context: str) -> list[LeadConvertAnswer]:
    """The ``LeadConvertResult`` list of a ``convertLead()`` answer (a fault raised as :func:`parse_soap_answer` does)."""
    response = parse_soap_answer(status, body, headers, context, "convertLead")
    answers = []
    for result in (e for e in response if _local(e.tag) == "result"):
        errors = tuple(
            (next(iter(_texts(e, "statusCode")), "") or "UNKNOWN", next(iter(_texts(e, "message")), ""),
             _texts(e, "fields"))
            for e in result if _local(e.tag) == "errors")
        answers.append(LeadConvertAnswer(
            success=next(iter(_texts(result, "success")), "").lower() == "true",
            lead_id=_one(result, "leadId"), account_id=_one(result, "accountId"),
            contact_id=_one(result, "contactId"), opportunity_id=_one(result, "opportunityId"), errors=errors))
    return answers


def _one(element: ET.Element, name: str) -> str | None:
    return next(iter(_texts(element, name)), "") or None


def convert_lead(adapter: SalesforceAdapter, object: str, crm_id: str, *, opportunity_name: str,
                 owner_id: str | None, status: str | None = None, stage: str | None = None,
                 account_id: str | None = None) -> Conversion:
    """Convert the lead ``crm_id`` into an account, a contact and an opportunity (see ``SalesforceAdapter.convert_lead``).

    Args:
        adapter: The adapter whose session, retry policy, counter and budget the calls use.
        object: Must be ``Lead``.
        crm_id: The lead.
        opportunity_name: The new opportunity's name.
        owner_id: The owner of the new records (None: the lead's owner).
        status: The converted Lead Status (None: the org's first status marked Converted).
        stage: A StageName to set on the new opportunity after the conversion (one more write
            call); None leaves the org's default (its first open stage).
        account_id: An existing account to convert into (None: a new one, named after the Company).

    Returns:
        The ids of what the conversion made; ``already_converted`` with the earlier conversion's
        ids when the lead was converted before.

    Raises:
        ConfigurationError: ``object`` is not ``Lead``; no converted status can be found.
        RecordError: Salesforce refused the conversion, or refused the stage (the message names the lead).
        FatalError: auth, permission or daily-limit errors.
    """
    if object != CONVERTIBLE:
        raise ConfigurationError(f"Salesforce converts only {CONVERTIBLE} records into opportunities, not "
                                 f"{object!r} (record {crm_id})", crm="salesforce", code="INVALID_TYPE_FOR_OPERATION",
                                 context=f"convert {object} {crm_id}")
    lead = str(crm_id).strip()
    context = f"convert Lead {lead}"
    for role, value in (("lead", lead), ("owner", owner_id), ("account", account_id)):
        if value is not None and not is_salesforce_id(value):
            raise record_error("salesforce", "INVALID_ID_FIELD", f"cannot convert Lead {lead}: the {role} id "
                               f"{value!r} is not a Salesforce id", context=context)
    name = str(opportunity_name or "").strip()
    if not name:
        raise ValueError(f"{context}: opportunity_name is empty")
    request = LeadConvertRequest(lead, status or converted_status(adapter), name, owner_id, account_id)

    def call(sf: Salesforce) -> list[LeadConvertAnswer]:
        response = soap_post(adapter, sf, "convertLead", convert_envelope(str(sf.session_id), [request]))
        return parse_convert_answer(response.status_code, response.content, response.headers, context)

    answers = adapter._call("write", context, call)
    if len(answers) != 1:
        raise FatalError(f"Salesforce answered {len(answers)} LeadConvertResults for one LeadConvert",
                         crm="salesforce", code=UNEXPECTED_ANSWER, context=context)
    answer = answers[0]
    if not answer.success:
        codes = [code for code, _, _ in answer.errors]
        if ALREADY_CONVERTED in codes or any(phrase in text.lower() for _, text, _ in answer.errors
                                              for phrase in ALREADY_CONVERTED_WORDS):
            earlier = _earlier_conversion(adapter, lead, context)
            if earlier is not None:
                return earlier
        raise _refused(lead, request.converted_status, answer)
    conversion = Conversion(object=object, crm_id=lead, opportunity_id=answer.opportunity_id,
                            contact_id=answer.contact_id, account_id=answer.account_id)
    if stage and conversion.opportunity_id:
        _set_stage(adapter, conversion, stage)
    return conversion


def converted_status(adapter: SalesforceAdapter) -> str:
    """The org's first Lead Status marked Converted (``LeadStatus``, by ``SortOrder``), asked once per adapter.

    Raises:
        ConfigurationError: the org has no such status, or answers no ``LeadStatus`` query.
    """
    if adapter.converted_lead_status is not None:
        return adapter.converted_lead_status
    column = "ApiName" if float(adapter.api_version) >= LEAD_STATUS_SINCE else "MasterLabel"
    soql = f"SELECT {column} FROM LeadStatus WHERE IsConverted = true ORDER BY SortOrder LIMIT 1"
    context = "query the converted LeadStatus"
    try:
        answer = adapter._query("read", context, partial(str, soql))
    except ConfigurationError as error:
        raise ConfigurationError(
            f"cannot find the org's converted Lead Status ({error.code}: {error.message}); give the status to "
            "convert leads with (a Lead Status value marked Converted)", crm="salesforce", code=error.code,
            context=context) from error
    rows = answer["records"]
    value = str(rows[0].get(column) or "") if rows else ""
    if not value:
        raise ConfigurationError("the org has no Lead Status marked Converted: add one in Setup > Object Manager > "
                                 "Lead > Fields & Relationships > Lead Status", crm="salesforce",
                                 code="NO_CONVERTED_STATUS", context=context)
    adapter.converted_lead_status = value
    return value


def _earlier_conversion(adapter: SalesforceAdapter, lead: str, context: str) -> Conversion | None:
    """The ids of the lead's earlier conversion (one query); None when the lead is not converted after all."""
    soql = ("SELECT Id, IsConverted, ConvertedAccountId, ConvertedContactId, ConvertedOpportunityId FROM Lead "
            f"WHERE Id = {soql_quote(lead)}")
    answer = adapter._query("read", f"{context}: converted before?", partial(str, soql))
    row = next((r for r in answer["records"] if id18(str(r.get("Id") or "")) == id18(lead)), None)
    if row is None or not row.get("IsConverted"):
        return None

    def text(name: str) -> str | None:
        return str(row[name]) if row.get(name) else None

    return Conversion(object=CONVERTIBLE, crm_id=lead, opportunity_id=text("ConvertedOpportunityId"),
                      contact_id=text("ConvertedContactId"), account_id=text("ConvertedAccountId"),
                      already_converted=True)


def _set_stage(adapter: SalesforceAdapter, conversion: Conversion, stage: str) -> None:
    """Move the new opportunity to ``stage`` (the conversion stays done when Salesforce refuses)."""
    [result] = adapter.write([WriteOp("Opportunity", "update", {"StageName": stage},
                                      crm_id=conversion.opportunity_id)])
    if not result.success:
        error = result.error
        raise record_error(
            "salesforce", error.code if error is not None and error.code else "UNKNOWN",
            f"Lead {conversion.crm_id} was converted (opportunity {conversion.opportunity_id}, contact "
            f"{conversion.contact_id}, account {conversion.account_id}) but Salesforce refused its stage "
            f"{stage!r}: {error.message if error is not None else 'no error given'}",
            error.fields if error is not None else (), context=f"convert Lead {conversion.crm_id}")


def _refused(lead: str, status: str, answer: LeadConvertAnswer) -> RecordError:
    """The error of a conversion Salesforce refused, naming the lead (and the status when it was the cause)."""
    errors = answer.errors or (("UNKNOWN", "refused without an error", ()),)
    code = errors[0][0]
    cause = f" (converted status {status!r})" if code == "INVALID_STATUS" else ""
    message = f"Salesforce refused to convert Lead {lead}{cause}: " + "; ".join(f"{c}: {t}" for c, t, _ in errors)
    return record_error("salesforce", code, message, [f for e in errors for f in e[2]], context=f"convert Lead {lead}")
