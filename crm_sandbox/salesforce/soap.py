"""The partner SOAP API (``POST /services/Soap/u/{version}``): every call but ``login``, ``merge()`` and ``convertLead()``.

``login`` stays in :mod:`crm_sandbox.salesforce.auth`; this module parses the envelope (with
defusedxml), hands ``login`` over, and answers the other calls after checking the
``SessionHeader`` as the REST side checks its bearer token. What it answers, as Salesforce does:

* malformed XML, a body that is not a SOAP envelope, an unknown call: HTTP 500, faultcode
  ``soapenv:Client``;
* a missing, unknown or expired session: HTTP 500, faultcode ``sf:INVALID_SESSION_ID``;
* an unknown sObject type or field: ``sf:INVALID_TYPE`` / ``sf:INVALID_FIELD``; an object that
  cannot be merged: ``sf:INVALID_TYPE_FOR_OPERATION``; past the daily allocation
  ``sf:REQUEST_LIMIT_EXCEEDED`` (each call other than ``login`` counts one API call);
* ``merge()``: one ``MergeResult`` per request, each request its own transaction (up to 200 per
  call, a master and up to 2 records each), refused records as ``success=false`` with a
  ``statusCode`` (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_merge.htm);
* ``convertLead()``: one ``LeadConvertResult`` per ``leadConverts`` (up to 200 per call), each its own
  transaction (:meth:`Org.convert_lead`): a lead converted before answers ``CANNOT_UPDATE_CONVERTED_LEAD``
  ("cannot reference converted lead"), an unknown one ``INVALID_CROSS_REFERENCE_KEY``, a status not
  marked Converted ``INVALID_STATUS``. The sandbox converts into a new or a given account and always a
  new contact: ``contactId``, ``opportunityId`` and the ``*Record`` elements answer a client fault
  (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_convertlead.htm).

Example request::

    <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <soapenv:Header><urn:SessionHeader><urn:sessionId>00D...!AQ...</urn:sessionId></urn:SessionHeader></soapenv:Header>
      <soapenv:Body><urn:merge><urn:request>
        <urn:masterRecord xsi:type="urn1:sObject" xmlns:urn1="urn:sobject.partner.soap.sforce.com">
          <urn1:type>Lead</urn1:type><urn1:Id>00Q...</urn1:Id><urn1:Title>VP Sales</urn1:Title>
        </urn:masterRecord>
        <urn:recordToMergeIds>00Q...</urn:recordToMergeIds>
      </urn:request></urn:merge></soapenv:Body>
    </soapenv:Envelope>
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from starlette.requests import Request
from starlette.responses import Response

from crm_sandbox.common import CallCounter, call_counter
from crm_sandbox.salesforce.auth import soap_login
from crm_sandbox.salesforce.describe import sobject
from crm_sandbox.salesforce.state import MERGEABLE, ConvertResult, MergeResult, Org, Record
from crm_sandbox.salesforce.values import ValueProblem, coerce

if TYPE_CHECKING:
    from crm_sandbox.salesforce.app import ApiUsage

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_MERGE_REQUESTS = 200
"""``merge()`` takes up to 200 merge requests per call."""
MAX_LEAD_CONVERTS = 200
"""``convertLead()`` takes up to 200 ``LeadConvert`` per call (the SOAP API's array limit)."""
_CONVERT_FIELDS = frozenset({"leadId", "convertedStatus", "accountId", "ownerId", "opportunityName",
                             "doNotCreateOpportunity", "overwriteLeadSource", "sendNotificationEmail"})
"""The ``LeadConvert`` elements the sandbox honours."""
_CONVERT_UNSUPPORTED = frozenset({"contactId", "opportunityId", "accountRecord", "contactRecord", "opportunityRecord",
                                  "bypassAccountDedupeCheck", "bypassContactDedupeCheck", "relatedPersonAccountId",
                                  "relatedPersonAccountRecord"})
"""``LeadConvert`` elements of the real API the sandbox does not implement (a client fault when set)."""
_FAULT_TYPES = {
    "INVALID_FIELD": "InvalidFieldFault",
    "INVALID_TYPE": "InvalidSObjectFault",
    "INVALID_ID_FIELD": "InvalidIdFault",
    "INVALID_SESSION_ID": "UnexpectedErrorFault",
}
_SPECIAL = ("type", "Id", "fieldsToNull")


class SoapFault(Exception):
    """A SOAP fault: HTTP 500 with ``faultcode`` ``sf:CODE`` (or ``soapenv:Client`` without a code).

    Args:
        code: Salesforce's ExceptionCode (``INVALID_SESSION_ID``...); empty for a client fault.
        message: the message, worded as Salesforce words it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code or 'Client'}: {message}")
        self.code = code
        self.message = message

    def answer(self) -> Response:
        """The fault envelope."""
        if not self.code:
            fault = f"<faultcode>soapenv:Client</faultcode><faultstring>{escape(self.message)}</faultstring>"
        else:
            kind = _FAULT_TYPES.get(self.code, "UnexpectedErrorFault")
            fault = (
                f"<faultcode>sf:{self.code}</faultcode><faultstring>{self.code}: {escape(self.message)}</faultstring>"
                f'<detail><sf:{kind} xsi:type="sf:{kind}"><sf:exceptionCode>{self.code}</sf:exceptionCode>'
                f"<sf:exceptionMessage>{escape(self.message)}</sf:exceptionMessage></sf:{kind}></detail>"
            )
        return envelope(f"<soapenv:Fault>{fault}</soapenv:Fault>", HTTPStatus.INTERNAL_SERVER_ERROR, partner=False)


def envelope(body: str, status: int = HTTPStatus.OK, *, partner: bool = True) -> Response:
    """A SOAP answer with ``body`` inside ``soapenv:Body``.

    Args:
        body: the XML inside the body.
        status: the HTTP status.
        partner: make the partner namespace the default one (results); a fault's ``faultcode``
            and ``faultstring`` are unqualified, so a fault's envelope has no default namespace.
    """
    default = f' xmlns="{PARTNER_NS}"' if partner else ""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"{default} xmlns:xsi="{XSI}" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
    return Response(text, status, media_type="text/xml; charset=utf-8")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _is_nil(element: ET.Element) -> bool:
    return element.get(f"{{{XSI}}}nil", "").lower() in ("true", "1")


@dataclass
class SoapCall:
    """One call being answered: its element, running user and ledger counter."""

    element: ET.Element
    user_id: str
    counter: CallCounter


class SoapApi:
    """The partner SOAP endpoint of the sandbox org.

    Args:
        org: the org.
        usage: the daily API allocation (each call but ``login`` counts one).
        oldest_version: the oldest API version served (older ones answer ``UNSUPPORTED_API_VERSION``).
    """

    def __init__(self, org: Org, usage: ApiUsage, oldest_version: int) -> None:
        self.org = org
        self.usage = usage
        self.oldest_version = oldest_version
        self.calls: dict[str, Callable[[SoapCall], Response]] = {"merge": self.merge, "convertLead": self.convert_lead}

    async def dispatch(self, request: Request, version: str) -> Response:
        """Answer ``POST /services/Soap/u/{version}[/{org id}]``."""
        raw = await request.body()
        try:
            root = fromstring(raw)
        except (ET.ParseError, DefusedXmlException) as exc:
            return SoapFault("", f"could not parse the request as XML: {exc}").answer()
        body = _children(root, "Body") if _local(root.tag) == "Envelope" else []
        call = next(iter(body[0]), None) if body else None
        if call is None:
            return SoapFault("", "the request is not a SOAP envelope with a call in its soapenv:Body").answer()
        name = _local(call.tag)
        if name == "login":
            return await soap_login(request, self.org, version)
        counter = call_counter(request.scope)
        counter.kind = name
        try:
            if not _served(version, self.oldest_version):
                raise SoapFault("UNSUPPORTED_API_VERSION", f"API version {version} is not served; use "
                                f"{self.oldest_version}.0 or later")
            handler = self.calls.get(name)
            if handler is None:
                raise SoapFault("", f"No operation available for request {{{PARTNER_NS}}}{name}")
            user_id = self._session_user(root)
            if not self.usage.take():
                raise SoapFault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return handler(SoapCall(call, user_id, counter))
        except SoapFault as fault:
            return fault.answer()
        except Exception as exc:  # a bug: answer like Salesforce's UNKNOWN_EXCEPTION, never a bare 500 page
            return SoapFault("UNKNOWN_EXCEPTION", f"An unexpected error occurred: {type(exc).__name__}: {exc}").answer()

    def _session_user(self, root: ET.Element) -> str:
        """The user of the ``SessionHeader``'s session id (INVALID_SESSION_ID when missing or not live)."""
        session_id = ""
        for header in _children(root, "Header"):
            for session in _children(header, "SessionHeader"):
                for element in _children(session, "sessionId"):
                    session_id = (element.text or "").strip()
        with self.org.lock:
            user_id = self.org.user_for_token(session_id) if session_id else None
        if user_id is None:
            what = "no session id" if not session_id else "Session not found or expired"  # never echo a token
            raise SoapFault("INVALID_SESSION_ID", f"Invalid Session ID found in SessionHeader: Illegal Session ({what})")
        return user_id

    # ------------------------------------------------------------------ merge
    def merge(self, call: SoapCall) -> Response:
        """``merge()``: each request merges up to two records into its master, in its own transaction."""
        requests = [child for child in call.element if isinstance(child.tag, str)]
        if not requests:
            raise SoapFault("", "merge needs at least one request (MergeRequest)")
        if len(requests) > MAX_MERGE_REQUESTS:
            raise SoapFault("LIMIT_EXCEEDED", f"merge takes at most {MAX_MERGE_REQUESTS} merge requests per call, "
                            f"got {len(requests)}")
        parsed = [self._merge_request(index, request) for index, request in enumerate(requests)]
        results = [self.org.merge(obj, master_id, values, losers, user_id=call.user_id)
                   for obj, master_id, values, losers in parsed]
        call.counter.written = sum(1 + len(r.merged_record_ids) + len(r.updated_related_ids) for r in results if r.success)
        return envelope("<mergeResponse>" + "".join(_merge_result(r) for r in results) + "</mergeResponse>")

    def _merge_request(self, index: int, request: ET.Element) -> tuple[Any, str, Record, list[str]]:
        """``(object type, master id, values, ids to merge)`` of one MergeRequest (SoapFault when malformed)."""
        where = f"merge request #{index}"
        masters = _children(request, "masterRecord")
        if len(masters) != 1:
            raise SoapFault("", f"{where}: expected one masterRecord, got {len(masters)}")
        master = masters[0]
        types = _children(master, "type")
        type_name = (types[0].text or "").strip() if types else ""
        if not type_name:
            raise SoapFault("INVALID_TYPE", f"{where}: Must send a concrete entity type (masterRecord has no type).")
        obj = sobject(type_name)
        if obj is None:
            raise SoapFault("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        if obj.name not in MERGEABLE:
            raise SoapFault("INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support merge")
        ids = _children(master, "Id")
        master_id = (ids[0].text or "").strip() if ids else ""
        if not master_id:
            raise SoapFault("INVALID_ID_FIELD", f"{where}: the masterRecord has no Id")
        values: Record = {}
        for element in master:
            if not isinstance(element.tag, str):
                continue
            name = _local(element.tag)
            if name in _SPECIAL:
                continue
            field = obj.field(name)
            if field is None:
                raise SoapFault("INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'. If you are "
                                "attempting to use a custom field, be sure to append the '__c' after the custom field "
                                "name. Please reference your WSDL or the describe call for the appropriate names.")
            try:
                values[field.name] = None if _is_nil(element) else coerce(field, element.text or "")
            except ValueProblem as exc:
                raise SoapFault("", f"{where}: '{element.text}' is not a valid value for {obj.name}.{field.name} "
                                f"({field.type}): {exc}") from None
        for element in _children(master, "fieldsToNull"):
            field = obj.field((element.text or "").strip())
            if field is None:
                raise SoapFault("INVALID_FIELD", f"No such column '{(element.text or '').strip()}' on entity "
                                f"'{obj.name}' (fieldsToNull)")
            values[field.name] = None
        losers = [(element.text or "").strip() for element in _children(request, "recordToMergeIds")]
        return obj, master_id, values, losers

    # ------------------------------------------------------------------ convertLead
    def convert_lead(self, call: SoapCall) -> Response:
        """``convertLead()``: each ``LeadConvert`` converts one lead, in its own transaction."""
        converts = [child for child in call.element if isinstance(child.tag, str)]
        if not converts:
            raise SoapFault("", "convertLead needs at least one leadConverts (LeadConvert)")
        if len(converts) > MAX_LEAD_CONVERTS:
            raise SoapFault("LIMIT_EXCEEDED", f"convertLead takes at most {MAX_LEAD_CONVERTS} leadConverts per call, "
                            f"got {len(converts)}")
        parsed = [self._lead_convert(index, element) for index, element in enumerate(converts)]
        results = [self.org.convert_lead(**args, user_id=call.user_id) for args in parsed]
        call.counter.written = sum(result.written for result in results)
        return envelope("<convertLeadResponse>" + "".join(_convert_result(r) for r in results)
                        + "</convertLeadResponse>")

    @staticmethod
    def _lead_convert(index: int, element: ET.Element) -> dict[str, Any]:
        """The :meth:`Org.convert_lead` arguments of one ``LeadConvert`` (SoapFault when malformed)."""
        where = f"leadConverts #{index}"
        if _local(element.tag) != "leadConverts":
            raise SoapFault("", f"Unexpected element {{{PARTNER_NS}}}{_local(element.tag)}: convertLead takes "
                            "leadConverts elements")
        values: dict[str, str] = {}
        for child in element:
            if not isinstance(child.tag, str) or _is_nil(child):
                continue
            name = _local(child.tag)
            if name in _CONVERT_UNSUPPORTED:
                raise SoapFault("", f"{where}: the sandbox does not support LeadConvert.{name}")
            if name not in _CONVERT_FIELDS:
                raise SoapFault("", f"{where}: Unexpected element {{{PARTNER_NS}}}{name} during simple type "
                                "deserialization")
            values[name] = (child.text or "").strip()

        def flag(name: str) -> bool:
            text = values.get(name, "false").lower()
            if text not in ("true", "false", "1", "0"):
                raise SoapFault("", f"{where}: '{values[name]}' is not a valid value for the type xsd:boolean "
                                f"({name})")
            return text in ("true", "1")

        flag("sendNotificationEmail")  # checked; the sandbox sends no e-mail
        return {
            "lead_id": values.get("leadId", ""),
            "converted_status": values.get("convertedStatus", ""),
            "account_id": values.get("accountId") or None,
            "owner_id": values.get("ownerId") or None,
            "opportunity_name": values.get("opportunityName") or None,
            "create_opportunity": not flag("doNotCreateOpportunity"),
            "overwrite_lead_source": flag("overwriteLeadSource"),
        }


def _served(version: str, oldest: int) -> bool:
    try:
        return float(version) >= oldest
    except ValueError:
        return False


def _errors(errors: list[dict[str, Any]]) -> str:
    """The ``<errors>`` of a result (``Error``: fields, message, statusCode)."""
    return "".join(
        "<errors>" + "".join(f"<fields>{escape(str(f))}</fields>" for f in error.get("fields") or [])
        + f"<message>{escape(str(error.get('message', '')))}</message>"
        f"<statusCode>{escape(str(error.get('statusCode', '')))}</statusCode></errors>"
        for error in errors
    )


def _id(name: str, value: str | None) -> str:
    return f"<{name}>{value}</{name}>" if value else f'<{name} xsi:nil="true"/>'


def _convert_result(result: ConvertResult) -> str:
    """One ``<result>`` of a ``convertLeadResponse`` (``LeadConvertResult``, fields in the WSDL's order)."""
    return (f"<result>{_id('accountId', result.account_id)}{_id('contactId', result.contact_id)}"
            f"{_errors(result.errors)}{_id('leadId', result.lead_id)}{_id('opportunityId', result.opportunity_id)}"
            f"<success>{'true' if result.success else 'false'}</success></result>")


def _merge_result(result: MergeResult) -> str:
    """One ``<result>`` of a ``mergeResponse`` (fields in the WSDL's order)."""
    errors = _errors(result.errors)
    record_id = f"<id>{result.id}</id>" if result.id else '<id xsi:nil="true"/>'
    merged = "".join(f"<mergedRecordIds>{rid}</mergedRecordIds>" for rid in result.merged_record_ids)
    related = "".join(f"<updatedRelatedIds>{rid}</updatedRelatedIds>" for rid in result.updated_related_ids)
    success = "true" if result.success else "false"
    return f"<result>{errors}{record_id}{merged}<success>{success}</success>{related}</result>"
