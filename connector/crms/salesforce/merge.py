"""Salesforce merges: the SOAP API's ``merge()`` call (partner WSDL), on the adapter's session.

The REST API has no merge, so this posts a SOAP envelope to ``/services/Soap/u/{version}`` with
the adapter's access token in the ``SessionHeader``, through the adapter's own requests session,
retry policy, call counter and API budget. One merge request takes a master and up to two
records to merge; one call takes up to 200 requests, each its own transaction, so the losers of
one survivor go in as many requests as needed in one call.

Failures come back two ways, both translated into Relay's errors with the Salesforce dialect
(:mod:`.errors`): a SOAP fault (HTTP 500, ``faultcode`` ``sf:INVALID_SESSION_ID``,
``sf:INVALID_FIELD``...) for the whole call, and ``success=false`` with a ``statusCode`` per
request. A request refused because a record is deleted or unknown is explained by one
``queryAll`` (``IsDeleted``, ``MasterRecordId``): a loser already merged into the survivor is
done (Relay retries merges after a crash); anything else is a :class:`RecordError` naming both ids.

The envelope (:func:`soap_envelope`), the POST (:func:`soap_post`) and the reading of faults
(:func:`parse_soap_answer`) serve the other SOAP calls too (``convertLead``, :mod:`.convert`).

Example:
    >>> body = merge_envelope("SESSION", [MergeRequest("Lead", "00Q000000000001", ("00Q000000000002",),
    ...                                                {"Title": "VP", "Phone": None})])
    >>> "<urn1:fieldsToNull>Phone</urn1:fieldsToNull>" in body, "<urn1:Title>VP</urn1:Title>" in body
    (True, True)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from simple_salesforce import Salesforce

from connector.adapters._paging import MALFORMED_ANSWER, UNEXPECTED_ANSWER
from connector.adapters.base import MergeOutcome, WriteOp
from connector.adapters.errors import (
    ConfigurationError,
    CrmError,
    FatalError,
    RecordError,
    RetriableError,
    classify_response,
    record_error,
)
from connector.crms.salesforce.soql import is_salesforce_id, soql_name, soql_quote

if TYPE_CHECKING:
    from requests import Response

    from connector.crms.salesforce.adapter import SalesforceAdapter

MERGEABLE = ("Lead", "Contact", "Account", "Case")
"""The objects ``merge()`` takes (Person Accounts are Accounts; Individuals are not Relay's)."""
MAX_RECORDS_PER_REQUEST = 2
"""Records one merge request merges into its master (three records in all, as in the UI)."""
MAX_REQUESTS_PER_CALL = 200
"""Merge requests one SOAP call takes."""
EXPLAINABLE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "INVALID_ID_FIELD"})
"""Per-request codes meaning "a record is gone or unknown": a ``queryAll`` tells which, and whether merged already."""

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(frozen=True)
class MergeRequest:
    """One ``MergeRequest``: a master record (with values to set on it) and up to two records to merge."""

    object: str
    master_id: str
    loser_ids: tuple[str, ...]
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeAnswer:
    """One ``MergeResult``: ``errors`` as ``(statusCode, message, fields)``."""

    id: str | None
    success: bool
    merged_ids: tuple[str, ...] = ()
    updated_related_ids: tuple[str, ...] = ()
    errors: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def id18(record_id: str) -> str:
    """The 18-character form of a Salesforce id (15-character ids are case-sensitive, 18 are not).

    Example:
        >>> id18("00Q5e0000000001")
        '00Q5e0000000001EAA'
    """
    if len(record_id) != 15:
        return record_id
    return record_id + "".join(
        _ID_SUFFIX[sum(1 << bit for bit, ch in enumerate(record_id[block:block + 5]) if "A" <= ch <= "Z")]
        for block in (0, 5, 10))


def soap_value(value: Any) -> str:
    """A field value as the SOAP API takes it (``true``, ``2026-01-15T12:00:00.000Z``, ``12.5``...)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        text = value.isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return escape(str(value))


def soap_envelope(session_id: str, call: str) -> str:
    """A partner SOAP envelope: ``call`` (``<urn:merge>...</urn:merge>``) in the body, the session in the header.

    The prefixes ``urn`` (partner), ``urn1`` (sObject) and ``xsi`` are declared for ``call``.
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns:urn="urn:partner.soap.sforce.com" '
        f'xmlns:urn1="urn:sobject.partner.soap.sforce.com" xmlns:xsi="{_XSI}">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{escape(session_id)}</urn:sessionId></urn:SessionHeader>"
        f"</soapenv:Header><soapenv:Body>{call}</soapenv:Body></soapenv:Envelope>"
    )


def soap_post(adapter: SalesforceAdapter, sf: Salesforce, action: str, envelope: str) -> Response:
    """POST one SOAP call to the org's partner endpoint on the adapter's session (one attempt, no retry)."""
    return adapter.session.post(
        f"https://{sf.sf_instance}/services/Soap/u/{sf.sf_version}", data=envelope.encode("utf-8"),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": action}, timeout=adapter.timeout)


def merge_envelope(session_id: str, requests: Sequence[MergeRequest]) -> str:
    """The SOAP envelope of a ``merge()`` call (field names are checked as SOQL names first).

    A value of None is sent as ``fieldsToNull`` (clears the field on the master record).
    """
    parts = []
    for request in requests:
        nulls = "".join(f"<urn1:fieldsToNull>{soql_name(name)}</urn1:fieldsToNull>"
                        for name, value in request.values.items() if value is None)
        values = "".join(f"<urn1:{name}>{soap_value(value)}</urn1:{name}>"
                         for name, value in request.values.items() if value is not None and soql_name(name))
        losers = "".join(f"<urn:recordToMergeIds>{escape(i)}</urn:recordToMergeIds>" for i in request.loser_ids)
        parts.append(
            f'<urn:request><urn:masterRecord xsi:type="urn1:sObject"><urn1:type>{soql_name(request.object)}</urn1:type>'
            f"{nulls}<urn1:Id>{escape(request.master_id)}</urn1:Id>{values}</urn:masterRecord>{losers}</urn:request>")
    return soap_envelope(session_id, f"<urn:merge>{''.join(parts)}</urn:merge>")


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _texts(element: ET.Element, name: str) -> tuple[str, ...]:
    return tuple((child.text or "").strip() for child in element if _local(child.tag) == name)


def parse_soap_answer(status: int, body: bytes, headers: Mapping[str, str], context: str,
                      call: str) -> ET.Element:
    """The ``{call}Response`` element of a SOAP answer; a fault or another failure as Relay's error.

    Raises:
        CrmError: a SOAP fault classified by its code (``INVALID_SESSION_ID`` renews the session,
            ``REQUEST_LIMIT_EXCEEDED`` stops the run, ``INVALID_FIELD`` is a configuration error...),
            another failed answer by its status, or an answer that is not the expected XML
            (retried: a call that landed is recognised on the retry).
    """
    try:
        root = fromstring(body)
    except (ET.ParseError, DefusedXmlException):
        root = None
    if status >= HTTPStatus.MULTIPLE_CHOICES:
        fault = next((e for e in root.iter() if _local(e.tag) == "Fault"), None) if root is not None else None
        if fault is None:  # not SOAP: a proxy's or the platform's answer (429, 503...)
            raise classify_response("salesforce", status, body, headers, context=context)
        code = next(iter(_texts(fault, "faultcode")), "").rsplit(":", 1)[-1] or "Server"
        message = next(iter(_texts(fault, "faultstring")), "") or f"SOAP fault {code} without a faultstring"
        message = message.removeprefix(f"{code}: ")
        raise classify_response("salesforce", status, [{"errorCode": code, "message": message}], headers,
                                context=context)
    if root is None:
        shown = body[:200].decode("utf-8", errors="replace")
        raise RetriableError(f"Salesforce answered the SOAP {call} with something that is not XML: {shown!r}",
                             crm="salesforce", status=status, code=MALFORMED_ANSWER, context=context)
    response = next((e for e in root.iter() if _local(e.tag) == f"{call}Response"), None)
    if response is None:
        raise RetriableError(f"Salesforce answered the SOAP {call} without a {call}Response", crm="salesforce",
                             status=status, code=UNEXPECTED_ANSWER, context=context)
    return response


def parse_merge_answer(status: int, body: bytes, headers: Mapping[str, str], context: str) -> list[MergeAnswer]:
    """The ``MergeResult`` list of a ``merge()`` answer; a fault or another failure as Relay's error (see
    :func:`parse_soap_answer`)."""
    response = parse_soap_answer(status, body, headers, context, "merge")
    answers = []
    for result in (e for e in response if _local(e.tag) == "result"):
        errors = tuple(
            (next(iter(_texts(e, "statusCode")), "") or "UNKNOWN", next(iter(_texts(e, "message")), ""),
             _texts(e, "fields"))
            for e in result if _local(e.tag) == "errors")
        answers.append(MergeAnswer(
            id=next(iter(_texts(result, "id")), "") or None,
            success=next(iter(_texts(result, "success")), "").lower() == "true",
            merged_ids=tuple(i for i in _texts(result, "mergedRecordIds") if i),
            updated_related_ids=tuple(i for i in _texts(result, "updatedRelatedIds") if i),
            errors=errors,
        ))
    return answers


def merge_records(
    adapter: SalesforceAdapter, object: str, survivor_id: str, loser_ids: Sequence[str],
    values: Mapping[str, Any] | None = None,
) -> MergeOutcome:
    """Merge ``loser_ids`` into ``survivor_id`` (see ``SalesforceAdapter.merge``).

    Returns:
        What was merged now, what had been merged before, and the records re-parented.

    Raises:
        RecordError: Salesforce refused the merge (the message names the survivor and the losers).
        ConfigurationError: ``object`` cannot be merged, or a field of ``values`` is unknown.
        FatalError: auth, permission or daily-limit errors.
    """
    soql_name(object, what="object")
    if object not in MERGEABLE:
        raise ConfigurationError(f"Salesforce merges only {', '.join(MERGEABLE)}, not {object!r}", crm="salesforce",
                                 code="INVALID_TYPE_FOR_OPERATION", context=f"merge {object}")
    survivor = str(survivor_id).strip()
    named: dict[str, str] = {}
    for loser in (str(i).strip() for i in loser_ids):
        named.setdefault(id18(loser), loser)  # a record named twice (15 and 18 characters) is merged once
    losers = list(named.values())
    context = f"merge {object} {', '.join(losers)} into {survivor}"
    if not losers:
        raise ValueError(f"{context}: no records to merge")
    bad = [i for i in [survivor, *losers] if not is_salesforce_id(i)]
    if bad or id18(survivor) in {id18(i) for i in losers}:
        problem = f"malformed id(s) {', '.join(bad)}" if bad else "the survivor is among the records to merge"
        raise record_error("salesforce", "INVALID_ID_FIELD", f"cannot merge: {problem}", context=context)
    fields = dict(values or {})
    merged: list[str] = []
    related: list[str] = []
    already: list[str] = []
    pending = losers
    for attempt in range(2):
        chunks = [tuple(pending[i:i + MAX_RECORDS_PER_REQUEST]) for i in range(0, len(pending), MAX_RECORDS_PER_REQUEST)]
        answers = _send(adapter, [MergeRequest(object, survivor, chunk, fields) for chunk in chunks], context)
        failed: list[tuple[tuple[str, ...], MergeAnswer]] = []
        for chunk, answer in zip(chunks, answers, strict=True):
            if answer.success:
                merged.extend(chunk)  # as the caller named them (Salesforce answers 18-character ids)
                related.extend(answer.updated_related_ids)
            else:
                failed.append((chunk, answer))
        if not failed:
            break
        codes = {error[0] for _, answer in failed for error in answer.errors}
        if attempt or not codes or not codes <= EXPLAINABLE:
            raise _refused(object, survivor, failed, merged, context)
        pending, done = _explain(adapter, object, survivor, [i for chunk, _ in failed for i in chunk], context)
        already.extend(done)
        if not pending:
            break
    if fields and not merged:  # every loser was merged before: the values still go on the survivor
        result = adapter.write([WriteOp(object, "update", fields, crm_id=survivor)])[0]
        if not result.success:
            raise result.error or record_error("salesforce", "UNKNOWN", "update refused", context=context)
    return MergeOutcome(object=object, survivor_id=survivor, merged_ids=tuple(merged),
                        already_merged_ids=tuple(already), updated_related_ids=tuple(dict.fromkeys(related)))


def _send(adapter: SalesforceAdapter, requests: list[MergeRequest], context: str) -> list[MergeAnswer]:
    """One ``merge()`` call under the adapter's retry policy (a call per 200 requests)."""
    answers: list[MergeAnswer] = []
    for start in range(0, len(requests), MAX_REQUESTS_PER_CALL):
        chunk = requests[start:start + MAX_REQUESTS_PER_CALL]

        def call(sf: Salesforce, chunk: list[MergeRequest] = chunk) -> list[MergeAnswer]:
            response = soap_post(adapter, sf, "merge", merge_envelope(str(sf.session_id), chunk))
            return parse_merge_answer(response.status_code, response.content, response.headers, context)

        got = adapter._call("write", context, call)
        if len(got) != len(chunk):
            raise FatalError(f"Salesforce answered {len(got)} merge results for {len(chunk)} merge requests",
                             crm="salesforce", code=UNEXPECTED_ANSWER, context=context)
        answers.extend(got)
    return answers


def _explain(adapter: SalesforceAdapter, object: str, survivor: str, losers: list[str],
             context: str) -> tuple[list[str], list[str]]:
    """Why a merge was refused, from ``IsDeleted`` and ``MasterRecordId`` (one ``queryAll``).

    Returns:
        ``(losers still live, to merge again; losers already merged into the survivor)``.

    Raises:
        RecordError: the survivor is missing or deleted, or a loser is missing, deleted or merged elsewhere.
    """
    ids = [survivor, *losers]
    soql = (f"SELECT Id, IsDeleted, MasterRecordId FROM {object} "
            f"WHERE Id IN ({', '.join(soql_quote(i) for i in ids)})")
    answer = adapter._query("read", f"{context}: why refused", lambda: soql, include_deleted=True)
    rows = {id18(str(r.get("Id") or "")): r for r in answer["records"]}
    head = f"cannot merge {object} {', '.join(losers)} into {survivor}"
    state = rows.get(id18(survivor))
    if state is None:
        raise record_error("salesforce", "INVALID_CROSS_REFERENCE_KEY", f"{head}: the survivor {survivor} does not "
                           f"exist in the org", context=f"merge {object}")
    if state.get("IsDeleted"):
        into = f" (merged into {state['MasterRecordId']})" if state.get("MasterRecordId") else ""
        raise record_error("salesforce", "ENTITY_IS_DELETED", f"{head}: the survivor {survivor} is deleted{into}",
                           context=f"merge {object}")
    live: list[str] = []
    done: list[str] = []
    problems: list[str] = []
    for loser in losers:
        row = rows.get(id18(loser))
        master = str(row.get("MasterRecordId") or "") if row else ""
        if row is None:
            problems.append(f"{loser} does not exist in the org")
        elif row.get("IsDeleted") and master and id18(master) == id18(survivor):
            done.append(loser)
        elif row.get("IsDeleted"):
            problems.append(f"{loser} is deleted" + (f" (merged into {master})" if master else ""))
        else:
            live.append(loser)
    if problems:
        raise record_error("salesforce", "ENTITY_IS_DELETED" if any("deleted" in p for p in problems)
                           else "INVALID_CROSS_REFERENCE_KEY", f"{head}: {'; '.join(problems)}", context=f"merge {object}")
    return live, done


def _refused(object: str, survivor: str, failed: list[tuple[tuple[str, ...], MergeAnswer]], merged: list[str],
             context: str) -> CrmError:
    """The error of merge requests Salesforce refused (naming what did merge, if anything)."""
    errors = [error for _, answer in failed for error in answer.errors] or [("UNKNOWN", "refused without an error", ())]
    losers = [i for chunk, _ in failed for i in chunk]
    message = (f"Salesforce refused to merge {object} {', '.join(losers)} into {survivor}: "
               + "; ".join(f"{code}: {text}" for code, text, _ in errors))
    if merged:
        message += f" ({', '.join(merged)} merged)"
    error: RecordError = record_error("salesforce", errors[0][0], message, [f for e in errors for f in e[2]],
                                      context=f"merge {object}")
    return error
