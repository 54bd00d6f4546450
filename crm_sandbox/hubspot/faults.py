"""HubSpot's side of the malformed-answer faults: its error object, pages that repeat, lose an id or a type.

The sandbox middleware (:mod:`crm_sandbox.common`) decides when a fault happens;
this module knows the shapes: a list or search page is ``{results, paging?: {next: {after, link?}}}``
and an object record is ``{id, properties, createdAt, updatedAt, archived}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crm_sandbox.common import AnswerFaults, Exchange
from crm_sandbox.hubspot.errors import HubSpotError, correlation_id
from crm_sandbox.hubspot.state import HubSpotState, resolve_type

_OBJECT_PATH_RE = re.compile(r"^/crm/v3/objects/(?P<type>[^/]+)")
_DATE_PROPERTIES = ("hs_lastmodifieddate", "lastmodifieddate")
NOT_A_DATE = "not-a-date"
NOT_A_NUMBER = "abc"
LONE_SURROGATE = "\ud800"
FIRST_PAGE_AFTER = "0"
"""The ``after`` that serves a first page again (list cursors are ids, search cursors offsets: both start above 0)."""


def _results(body: Any) -> list[dict[str, Any]] | None:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return None
    return [r for r in body["results"] if isinstance(r, dict)]


def _request_after(exchange: Exchange) -> str:
    """The ``after`` the request asked for (query parameter, or search body), ``"0"`` for a first page."""
    for key, value in parse_qsl(exchange.query):
        if key == "after" and value:
            return value
    if exchange.body:
        try:
            sent = json.loads(exchange.body)
        except ValueError:
            sent = None
        if isinstance(sent, dict) and sent.get("after") not in (None, ""):
            return str(sent["after"])
    return FIRST_PAGE_AFTER


class HubSpotAnswerFaults(AnswerFaults):
    """Malformed answers shaped like HubSpot's CRM v3 API.

    Args:
        state: the portal (its property definitions tell number and text properties apart).
    """

    server_name = "HubSpot"

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    def error_200(self) -> Any:
        """HubSpot's error object."""
        return {
            "status": "error",
            "message": "internal error",
            "correlationId": correlation_id(),
            "category": "INTERNAL_ERROR",
        }

    def repeat_page(self, body: Any, exchange: Exchange) -> str | None:
        """Set ``paging.next.after`` (and its link) to the ``after`` of the request just served."""
        if _results(body) is None:
            return None
        following = body.get("paging", {}).get("next") if isinstance(body.get("paging"), dict) else None
        if not isinstance(following, dict) or "after" not in following:
            return None
        after = _request_after(exchange)
        following["after"] = after
        link = following.get("link")
        if isinstance(link, str):
            parts = urlsplit(link)
            query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "after"] + [("after", after)]
            following["link"] = urlunsplit(parts._replace(query=urlencode(query)))
        return f"paging.next.after {after!r} repeats the page just served"

    def missing_id(self, body: Any, exchange: Exchange, pick: Callable[[int], int]) -> str | None:
        """Remove ``id`` from one record of a page."""
        results = _results(body)
        candidates = [r for r in results or [] if r.get("id") not in (None, "")]
        if not candidates:
            return None
        record = candidates[pick(len(candidates))]
        return f"record {record.pop('id')} has no id"

    def wrong_types(self, body: Any, exchange: Exchange, pick: Callable[[int], int]) -> str | None:
        """Give one record a date that is not a date, a number that is letters and a lone surrogate in a text property."""
        results = _results(body)
        match = _OBJECT_PATH_RE.match(exchange.path)
        if not results or match is None:
            return None
        try:
            object_type = resolve_type(match.group("type"))
        except HubSpotError:
            return None
        with self.state.lock:
            definitions = dict(self.state.definitions.get(object_type, {}))
        if not definitions:
            return None

        def kind(name: str) -> str:
            found = definitions.get(name)
            return found.type if found is not None else ""

        candidates = [r for r in results if isinstance(r.get("properties"), dict) and r["properties"]]
        if not candidates:
            return None
        record = candidates[pick(len(candidates))]
        props: dict[str, Any] = record["properties"]
        spoiled = []
        dated = next((n for n in _DATE_PROPERTIES if n in props), None) or next((n for n in props if kind(n) == "datetime"), None)
        if dated is not None:
            props[dated] = NOT_A_DATE
            spoiled.append(f"{dated}={NOT_A_DATE!r}")
        number = next((n for n in props if kind(n) == "number" and n != "hs_object_id"), None)
        if number is not None:
            props[number] = NOT_A_NUMBER
            spoiled.append(f"{number}={NOT_A_NUMBER!r}")
        text = next((n for n in props if kind(n) == "string"), None)
        if text is not None:
            props[text] = f"{props[text] or ''}{LONE_SURROGATE}"
            spoiled.append(f"{text} ends with a lone surrogate \\ud800")
        if not spoiled:
            return None
        return f"record {record.get('id')}: {', '.join(spoiled)}"
