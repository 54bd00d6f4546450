"""Salesforce's side of the malformed-answer faults: its error list, query pages that repeat, lose an Id or a type.

The sandbox middleware (:mod:`crm_sandbox.common`) decides when a fault happens;
this module knows the shapes: a query page is ``{totalSize, done, nextRecordsUrl?, records}``
and each record carries ``attributes: {type, url}``. The first pages a Composite call answers
(``compositeResponse[].body``) are query pages too, and are spoiled the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from crm_sandbox.common import AnswerFaults, Exchange
from crm_sandbox.salesforce.describe import NUMBER_TYPES, SOBJECTS, TEXT_TYPES

_LOCATOR_RE = re.compile(r"^(?P<base>.*/(?:query|queryAll)/)(?P<locator>[A-Za-z0-9]+)-(?P<offset>\d+)$")
_DATE_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
NOT_A_DATE = "not-a-date"
NOT_A_NUMBER = "abc"
LONE_SURROGATE = "\ud800"


def _records(body: Any) -> list[dict[str, Any]] | None:
    """The records of a query page, or None when ``body`` is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list) or "done" not in body:
        return None
    return [r for r in body["records"] if isinstance(r, dict)]


def _pages(body: Any) -> list[dict[str, Any]]:
    """The query pages of an answer: the answer itself, or the successful query subrequests of a Composite answer."""
    if _records(body) is not None:
        return [body]
    results = body.get("compositeResponse") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return []
    return [r["body"] for r in results
            if isinstance(r, dict) and r.get("httpStatusCode") == 200 and _records(r.get("body")) is not None]


def _pick_record(records: list[dict[str, Any]], fits: Callable[[dict[str, Any]], bool], pick: Callable[[int], int]) -> dict[str, Any] | None:
    candidates = [r for r in records if fits(r)]
    return candidates[pick(len(candidates))] if candidates else None


class SalesforceAnswerFaults(AnswerFaults):
    """Malformed answers shaped like Salesforce's REST API."""

    server_name = "Salesforce"

    def error_200(self) -> Any:
        """Salesforce's error list, as an internal error answers it."""
        return [
            {
                "message": "An unexpected error occurred. Please include this ErrorId if you contact support: 1730418522-61577 (-1404918466)",
                "errorCode": "UNKNOWN_EXCEPTION",
            }
        ]

    def repeat_page(self, body: Any, exchange: Exchange) -> str | None:
        """Point ``nextRecordsUrl`` at the locator position of the page just served."""
        page = next((p for p in _pages(body) if isinstance(p.get("nextRecordsUrl"), str)), None)
        if page is None:
            return None
        following = _LOCATOR_RE.match(page["nextRecordsUrl"])
        if following is None:
            return None
        served = _LOCATOR_RE.match(exchange.path)
        offset = served.group("offset") if served is not None and served.group("locator") == following.group("locator") else "0"
        url = f"{following.group('base')}{following.group('locator')}-{offset}"
        page["nextRecordsUrl"] = url
        return f"nextRecordsUrl {url} repeats the page just served"

    def missing_id(self, body: Any, exchange: Exchange, pick: Callable[[int], int]) -> str | None:
        """Remove ``Id`` (and the id-bearing ``attributes.url``) from one record of a query page."""
        records = [r for page in _pages(body) for r in _records(page) or []]
        if not records:
            return None
        record = _pick_record(records, lambda r: bool(r.get("Id")), pick)
        if record is None:
            return None
        record_id = record.pop("Id")
        attributes = record.get("attributes")
        if isinstance(attributes, dict):
            attributes.pop("url", None)
        return f"record {record_id} has no Id"

    def wrong_types(self, body: Any, exchange: Exchange, pick: Callable[[int], int]) -> str | None:
        """Give one record a date that is not a date, a number that is a string and a lone surrogate in a text field."""
        records = [r for page in _pages(body) for r in _records(page) or []]
        if not records:
            return None

        def sobject(record: dict[str, Any]) -> str:
            attributes = record.get("attributes")
            return str(attributes.get("type")) if isinstance(attributes, dict) else ""

        def spoilable(record: dict[str, Any]) -> bool:
            obj = SOBJECTS.get(sobject(record))
            if obj is None:
                return False
            return any(
                (field := obj.field(name)) is not None and field.type in (*NUMBER_TYPES, *TEXT_TYPES, "datetime")
                for name in record
            )

        record = _pick_record(records, spoilable, pick)
        if record is None:
            return None
        obj = SOBJECTS[sobject(record)]
        spoiled = []
        dated = next((name for name in _DATE_FIELDS if name in record), None)
        if dated is None:
            dated = next((name for name in record if (f := obj.field(name)) is not None and f.type == "datetime"), None)
        if dated is not None:
            record[dated] = NOT_A_DATE
            spoiled.append(f"{dated}={NOT_A_DATE!r}")
        number = next((name for name in record if (f := obj.field(name)) is not None and f.type in NUMBER_TYPES), None)
        if number is not None:
            record[number] = NOT_A_NUMBER
            spoiled.append(f"{number}={NOT_A_NUMBER!r}")
        text = next((name for name in record if (f := obj.field(name)) is not None and f.type in TEXT_TYPES), None)
        if text is not None:
            record[text] = f"{record[text] or ''}{LONE_SURROGATE}"
            spoiled.append(f"{text} ends with a lone surrogate \\ud800")
        return f"record {record.get('Id')}: {', '.join(spoiled)}"
