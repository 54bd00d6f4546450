"""Salesforce field history: an opportunity's past stages, amounts and close dates from ``OpportunityHistory``.

``OpportunityHistory`` is read-only and queryable. The org writes one row when an opportunity is
created and one whenever its StageName, Amount, Probability or CloseDate changes; each row is a
snapshot of all its columns as of then (``CreatedDate``, by ``CreatedById``). So a field took a
new value at a row only where it differs from the row before of the same opportunity; the first
row gives every field its first value (null included).

One SOQL query reads the rows of up to 500 opportunities (the query's ``nextRecordsUrl`` pages
followed), through the adapter's retry policy, call counter and API budget, like every read.

Example (rows of one opportunity, oldest first)::

    {StageName: Prospecting, Amount: 1000, CreatedDate: 2026-01-02T10:00:00.000+0000, CreatedById: 005A}
    {StageName: Discovery,   Amount: 1000, CreatedDate: 2026-01-09T09:30:00.000+0000, CreatedById: 005B}
    → StageName: Prospecting (01-02, 005A), Discovery (01-09, 005B); Amount: 1000 (01-02, 005A)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from connector.adapters._paging import UNEXPECTED_ANSWER
from connector.adapters.base import HistoryValue
from connector.adapters.errors import ConfigurationError, FatalError
from connector.crms.salesforce.merge import id18
from connector.crms.salesforce.soql import (
    is_salesforce_id,
    parse_salesforce_datetime,
    soql_name,
    soql_quote,
)

if TYPE_CHECKING:
    from connector.crms.salesforce.adapter import SalesforceAdapter

log = logging.getLogger(__name__)

IDS_PER_QUERY = 500
"""Opportunities per history query (``OpportunityId IN (...)``; about 14,000 characters of URL)."""


@dataclass(frozen=True)
class HistoryObject:
    """Where Salesforce keeps an object's field history.

    Attributes:
        history: The history object (``OpportunityHistory``).
        parent_field: Its reference to the record (``OpportunityId``).
        columns: The fields it keeps a snapshot of.
    """

    history: str
    parent_field: str
    columns: tuple[str, ...]


HISTORY_OBJECTS: Mapping[str, HistoryObject] = {
    "Opportunity": HistoryObject("OpportunityHistory", "OpportunityId",
                                 ("StageName", "Amount", "CloseDate", "Probability", "ForecastCategory")),
}
"""The objects whose history Relay reads, by object."""


def history_soql(kind: HistoryObject, ids: Sequence[str]) -> str:
    """The query of the history rows of ``ids``, each record's rows oldest first.

    Example:
        >>> history_soql(HISTORY_OBJECTS["Opportunity"], ["0065e0000000001AAA"])  # doctest: +NORMALIZE_WHITESPACE
        "SELECT Id, OpportunityId, StageName, Amount, CloseDate, Probability, ForecastCategory, CreatedDate,
        CreatedById FROM OpportunityHistory WHERE OpportunityId IN ('0065e0000000001AAA')
        ORDER BY OpportunityId, CreatedDate, Id"
    """
    select = ", ".join(["Id", kind.parent_field, *kind.columns, "CreatedDate", "CreatedById"])
    return (f"SELECT {select} FROM {kind.history} WHERE {kind.parent_field} IN ({', '.join(map(soql_quote, ids))}) "
            f"ORDER BY {kind.parent_field}, CreatedDate, Id")


def read_history(adapter: SalesforceAdapter, object: str, ids: Sequence[str],
                 fields: Sequence[str]) -> dict[str, list[HistoryValue]]:
    """Each record's past values of ``fields``, oldest first (see ``SalesforceAdapter.read_history``).

    Returns:
        By record id (as the caller spelled it), the values each field took, oldest first. Fields
        that are not history columns are left out, and so are records without history rows.
        Strings that are not record ids are skipped (one would make the org refuse the whole query).

    Raises:
        ConfigurationError: ``object`` keeps no field history Relay reads (names the ones that do).
        FatalError: a history row without a readable ``CreatedDate``; auth, permission or daily-limit errors.
    """
    soql_name(object, what="object")
    kind = HISTORY_OBJECTS.get(object)
    if kind is None:
        known = ", ".join(f"{name} ({h.history})" for name, h in HISTORY_OBJECTS.items())
        raise ConfigurationError(f"Salesforce {object} keeps no field history Relay can read; objects that keep "
                                 f"history: {known}", crm="salesforce", code="NO_FIELD_HISTORY",
                                 context=f"read history of {object}")
    columns = {column.lower(): column for column in kind.columns}
    wanted = {columns[name.lower()]: name for name in fields if name.lower() in columns}  # column -> caller's name
    if not wanted:
        return {}
    asked: dict[str, str] = {}
    bad: list[str] = []
    for record_id in (str(i).strip() for i in ids):
        if is_salesforce_id(record_id):
            asked.setdefault(id18(record_id), record_id)
        else:
            bad.append(record_id)
    if bad:
        log.warning("%s history: skipping %d string(s) that are not record ids: %s", object, len(bad),
                    ", ".join(map(repr, bad[:10])))
    chunks = list(asked)
    history: dict[str, list[HistoryValue]] = {}
    for start in range(0, len(chunks), IDS_PER_QUERY):
        chunk = chunks[start:start + IDS_PER_QUERY]
        context = f"query {kind.history} of {len(chunk)} {object}"
        answer = adapter._query("read", context, partial(history_soql, kind, chunk))
        previous: dict[str, dict[str, Any]] = {}
        for page in adapter._query_pages("read", context, answer, {}):
            for row in page["records"]:
                _add(history, previous, row, kind, wanted, asked, context)
    return history


def _add(history: dict[str, list[HistoryValue]], previous: dict[str, dict[str, Any]], row: dict[str, Any],
         kind: HistoryObject, wanted: Mapping[str, str], asked: Mapping[str, str], context: str) -> None:
    """Add the values ``row`` changed (against the record's row before) to ``history``."""
    parent = str(row.get(kind.parent_field) or "")
    record_id = asked.get(id18(parent)) if is_salesforce_id(parent) else None
    if record_id is None:
        raise FatalError(f"Salesforce answered a {kind.history} row {row.get('Id')!r} of {kind.parent_field} "
                         f"{parent!r}, which was not asked for", crm="salesforce", code=UNEXPECTED_ANSWER,
                         context=context)
    stamp = row.get("CreatedDate")
    try:
        at = parse_salesforce_datetime(str(stamp))
    except ValueError:
        raise FatalError(f"{kind.history} row {row.get('Id')!r} of {record_id} has no readable CreatedDate: "
                         f"{stamp!r}", crm="salesforce", code=UNEXPECTED_ANSWER, context=context) from None
    by = str(row["CreatedById"]) if row.get("CreatedById") else None
    before = previous.get(record_id)
    values = history.setdefault(record_id, [])
    for column, name in wanted.items():
        value = row.get(column)
        if before is None or before.get(column) != value:
            values.append(HistoryValue(field=name, value=value, at=at, by=by))
    previous[record_id] = row
