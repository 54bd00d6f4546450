"""How HubSpot reads page: list links (``paging.next.after``) and the keyset search window.

* Lists (objects, archived objects, owners) page by ``paging.next.after``: :func:`next_after`
  is where a list answer keeps it, for :class:`~connector.adapters._paging.LinkPaginator`.
* Incremental reads search by ``hs_lastmodifieddate``. A search result is live (a record
  changed mid-read leaves it and shifts every later ``after`` offset) and stops at 10,000
  results, so :class:`SearchWindow` never follows ``after``: every page is a fresh search from
  the last timestamp the read has wholly delivered, and a timestamp shared by more than a page
  of records is read on its own by ``hs_object_id``. Each search starts at its first result,
  so however many records match, no search reaches deeper than one page into the cap.
* A record's position in that stream (:func:`record_position`), the timestamps HubSpot
  sends and filters on (:func:`parse_hubspot_datetime`, :func:`to_epoch_ms`) and the merges
  a record reports (:func:`merged_pairs`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.adapters._paging import (
    PAGING_STUCK,
    UNEXPECTED_ANSWER,
    LinkGuard,
    PagingStuckError,
    clamp,
    floor_ms,
)
from connector.adapters.base import Cursor, Page
from connector.adapters.errors import FatalError
from connector.crms.hubspot.records import flatten

log = logging.getLogger(__name__)

MODIFIED = "hs_lastmodifieddate"
"""The property incremental reads search and sort by."""
OBJECT_ID = "hs_object_id"
"""The property a tie group (one timestamp, more than a page of records) is read by."""
MERGED = "hs_merged_object_ids"
"""The ids merged into a record, ``"12;34"``."""
ONE_MS = timedelta(milliseconds=1)
"""HubSpot's timestamp resolution."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_hubspot_datetime(value: Any) -> datetime | None:
    """Read a HubSpot timestamp (ISO-8601 or milliseconds since the epoch) as aware UTC; None if empty."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"not a HubSpot timestamp: {value!r}") from exc


def to_epoch_ms(value: datetime) -> str:
    """A HubSpot filter value for ``value``: milliseconds since the epoch, as a string."""
    if value.tzinfo is None:
        raise ValueError(f"HubSpot filter datetimes must be timezone-aware, got naive {value!r}")
    return str((value - _EPOCH) // ONE_MS)


def merged_pairs(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(merged-away id, surviving id) pairs from a record's ``hs_merged_object_ids`` (``"12;34"``)."""
    properties = record.get("properties")
    raw = (properties.get(MERGED) if isinstance(properties, dict) else None) or ""
    if record.get("id") in (None, ""):
        return []
    return [(old.strip(), str(record["id"])) for old in str(raw).split(";") if old.strip()]


def record_position(row: Mapping[str, Any]) -> Cursor | None:
    """``(hs_lastmodifieddate or updatedAt, id)`` of a v3 record; None when either is missing or unreadable."""
    record_id = row.get("id")
    if record_id is None or isinstance(record_id, bool) or str(record_id).strip() == "":
        return None
    properties = row.get("properties")
    stamp = (properties.get(MODIFIED) if isinstance(properties, dict) else None) or row.get("updatedAt")
    try:
        when = parse_hubspot_datetime(stamp)
    except ValueError:
        log.warning("record %s: unreadable %s %r; it does not move the cursor", record_id, MODIFIED, stamp)
        return None
    return None if when is None else Cursor(when, str(record_id))


def next_after(answer: Mapping[str, Any], context: str) -> str | None:
    """``paging.next.after`` of a list answer (None on the last page).

    Raises:
        FatalError: the answer announces a next page without an ``after`` (code ``UNEXPECTED_ANSWER``):
            taking it as the last page would end the read silently short.
    """
    paging = answer.get("paging")
    if paging is None:
        return None
    following = paging.get("next") if isinstance(paging, dict) else None
    if following is None:
        return None
    after = following.get("after") if isinstance(following, dict) else None
    if after is None or str(after).strip() == "":
        raise FatalError(f"HubSpot answered a next page without an 'after': {paging!r}", crm="hubspot",
                         code=UNEXPECTED_ANSWER, context=context)
    return str(after)


SETTLED = "settled"
"""The id of a checkpoint a finished search read settled: every record changed at or before its
time was indexed when that read began and delivered by it. The next read starts just past it,
not ``overlap`` before it. (It sorts after every numeric id of its millisecond.)"""


@dataclass(frozen=True)
class Step:
    """What one search answer gives the read: a page to hand on (None: nothing new), and whether the read is over."""

    page: Page | None
    done: bool


@dataclass
class TieGroup:
    """The records of one timestamp, read by ``hs_object_id`` because more than a page share it.

    Attributes:
        stamp: The timestamp.
        after_id: The last id read (the next search asks for greater ones); None: from the first.
        guard: Refuses a last id that does not grow (a search that would read the same records again).
    """

    stamp: datetime
    after_id: str | None
    guard: LinkGuard


class SearchWindow:
    """The state of an incremental read by keyset search, and the next search it needs.

    The read asks :meth:`request` for a search body, sends it, and gives the answer to
    :meth:`advance`, which says what to hand on and whether the read is over::

        window = SearchWindow("contacts", properties, cursor, hwm=hwm, overlap=overlap, size=100)
        while True:
            step = window.advance(search(window.request()))
            if step.page is not None:
                yield step.page
            if step.done:
                break

    A range search (``lower <= hs_lastmodifieddate <= hwm``, by timestamp) that fills its page
    hands on the records before its last timestamp and starts the next search at that
    timestamp (a page may end inside it). One whose page is filled by a single timestamp hands
    on nothing and reads that timestamp as a :class:`TieGroup` (``hs_lastmodifieddate = t``,
    ``hs_object_id > last id``, by id), then goes on from the next millisecond. A page's
    cursor covers only what has been wholly delivered and never passes ``hwm``; a page that
    neither delivers a record nor moves the cursor is not handed on. A row without a usable id
    or timestamp is handed on once (for the pipeline to quarantine) and moves nothing.

    A search that would not move the read on (a range search from where the previous one
    started, a tie group's last id that does not grow, a whole page without a readable id) is
    refused with :class:`PagingStuckError` by the next :meth:`request`, after the page in hand
    was handed on; a whole range page without a readable timestamp is refused at once.

    Args:
        kind: The object type (``contacts``), for messages.
        properties: The properties each search asks for.
        cursor: Where the read starts: records at or before it were delivered by earlier reads.
        hwm: The read's upper bound (no search asks past it, no cursor passes it).
        overlap: How far before ``cursor`` the first search starts, because search lags writes;
            records in the overlap are delivered again.
        size: Results per search (1..100).
    """

    def __init__(self, kind: str, properties: Sequence[str], cursor: Cursor, *, hwm: datetime, overlap: timedelta,
                 size: int) -> None:
        self.kind = kind
        self.properties = list(properties)
        self.size = size
        self.start = cursor
        self.hwm = hwm
        self.overlap = overlap
        self.lower = (cursor.last_modified + ONE_MS if cursor.last_id == SETTLED
                      else floor_ms(cursor.last_modified - overlap))
        """Where the next range search starts (every record before it was delivered): the overlap
        before the cursor, or just past it when an earlier read settled everything up to it."""
        self.delivered = cursor
        """Every record at or before this position has been delivered."""
        self.checkpointed = cursor
        """The cursor of the last page handed on."""
        self.tie: TieGroup | None = None
        """The tie group being read, if any (its searches replace range searches until it is read)."""
        self.done = False
        self._odd: set[str] = set()  # rows without a usable position, handed on once
        self._refused: PagingStuckError | None = None

    @property
    def context(self) -> str:
        """What the window reads, for errors (``search contacts``)."""
        return f"search {self.kind}"

    def filters(self) -> list[dict[str, Any]]:
        """The filters of the next search: the range from ``lower`` to ``hwm``, or the tie group after its last id."""
        if self.tie is None:
            return [{"propertyName": MODIFIED, "operator": "GTE", "value": to_epoch_ms(self.lower)},
                    {"propertyName": MODIFIED, "operator": "LTE", "value": to_epoch_ms(self.hwm)}]
        filters = [{"propertyName": MODIFIED, "operator": "EQ", "value": to_epoch_ms(self.tie.stamp)}]
        if self.tie.after_id is not None:
            filters.append({"propertyName": OBJECT_ID, "operator": "GT", "value": self.tie.after_id})
        return filters

    def request(self) -> dict[str, Any]:
        """The next search's body (``public_object_search_request``); never with an ``after``.

        Raises:
            PagingStuckError: the next search would not move the read on (code ``PAGING_STUCK``).
            RuntimeError: the read is over.
        """
        if self._refused is not None:
            raise self._refused
        if self.done:
            raise RuntimeError(f"{self.context}: the read is over; there is no next search")
        sort = MODIFIED if self.tie is None else OBJECT_ID
        return {"filterGroups": [{"filters": self.filters()}],
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": self.properties, "limit": self.size}

    def advance(self, answer: Mapping[str, Any]) -> Step:
        """Take the answer to :meth:`request`'s search: the page to hand on, and whether the read is over.

        ``answer`` is a search answer whose ``results`` are objects (the adapter checks that).
        """
        rows = list(answer["results"])
        total = answer.get("total")
        told = total if isinstance(total, int) and not isinstance(total, bool) else None
        if self.tie is None:
            return self._range_page(rows, told)
        return self._tie_page(self.tie, rows, told)

    def _range_page(self, rows: list[dict[str, Any]], total: int | None) -> Step:
        placed = [(row, record_position(row)) for row in rows]
        stamps = sorted({p.last_modified for _, p in placed if p is not None})
        # A full page is the last one when the search says nothing more matches (saves a search).
        full = len(rows) >= self.size and (total is None or total > len(rows))
        if full and not stamps:
            raise PagingStuckError(f"{self.context}: a whole page of records without a readable id and {MODIFIED} "
                                   f"at {self.lower.isoformat()}; the read cannot move on", crm="hubspot",
                                   code=PAGING_STUCK, context=self.context)
        if full and len(stamps) == 1:  # one timestamp fills the page: read it on its own, by id
            stamp = stamps[0]
            resume = self.start.last_id if stamp == self.start.last_modified and self.start.last_id.isdigit() else None
            self.tie = TieGroup(stamp, resume, LinkGuard(f"{self.context} at {MODIFIED} {stamp.isoformat()}",
                                                         crm="hubspot", numeric=True))
            return Step(None, False)
        complete_before = stamps[-1] if full else None  # a full page may end inside a timestamp
        page = Page(object=self.kind)
        for row, position in placed:
            if position is None:
                self._hand_on_odd(page, row)
                continue
            if complete_before is not None and position.last_modified >= complete_before:
                continue  # left for the next search, which starts at this timestamp
            if self._before_start(position):
                continue
            page.records.append(flatten(row))
            page.merged.extend(merged_pairs(row))
            self.delivered = max(self.delivered, clamp(position, self.hwm))
        if complete_before is None:
            self.done = True
            # Search had every record changed before hwm - overlap indexed when this read began, and
            # the read delivered them: the checkpoint may say so. Otherwise, in a quiet portal, each
            # run would re-read the overlap before the last change (the echo of Relay's last writes)
            # again and again.
            settled = Cursor(floor_ms(self.hwm - self.overlap), SETTLED)
            if settled.last_modified > self.delivered.last_modified:
                self.delivered = settled
        else:
            self._move_lower(complete_before)
        return Step(self._checkpoint(page), self.done)

    def _tie_page(self, tie: TieGroup, rows: list[dict[str, Any]], total: int | None) -> Step:
        page = Page(object=self.kind)
        highest: Cursor | None = None
        for row in rows:
            position = record_position(row)
            if position is None or not position.last_id.isdigit():
                self._hand_on_odd(page, row)
                continue
            highest = position if highest is None else max(highest, position)
            if self._before_start(position):
                continue
            page.records.append(flatten(row))
            page.merged.extend(merged_pairs(row))
        if highest is not None:  # ids come in order: every one up to the highest is read
            self.delivered = max(self.delivered, clamp(Cursor(tie.stamp, highest.last_id), self.hwm))
        handed = self._checkpoint(page)
        if len(rows) < self.size or (total is not None and len(rows) >= total):
            self.tie = None  # the group is read (its total says so: no search for an empty page)
            self._move_lower(tie.stamp + ONE_MS)
        elif highest is None:
            self._refused = PagingStuckError(
                f"{self.context}: a whole page at {MODIFIED} {tie.stamp.isoformat()} without readable ids; the read "
                "cannot move on", crm="hubspot", code=PAGING_STUCK, context=self.context)
        else:
            try:
                tie.after_id = tie.guard.check(highest.last_id)
            except PagingStuckError as stuck:
                self._refused = stuck
        return Step(handed, False)

    def _before_start(self, position: Cursor) -> bool:
        """Delivered by an earlier read: at the start cursor's timestamp and not past it."""
        return position.last_modified == self.start.last_modified and position <= self.start

    def _move_lower(self, lower: datetime) -> None:
        """Start the next range search at ``lower``, which must be past where the previous one started."""
        if lower <= self.lower:
            self._refused = PagingStuckError(
                f"{self.context}: the next search would start at {MODIFIED} {lower.isoformat()}, not past "
                f"{self.lower.isoformat()} where the previous one started; stopping instead of reading the same "
                "records forever", crm="hubspot", code=PAGING_STUCK, context=self.context)
        self.lower = lower

    def _checkpoint(self, page: Page) -> Page | None:
        """``page`` with the cursor of what is wholly delivered; None when it brings nothing and moves nothing."""
        page.cursor = self.delivered
        if not page.records and not self.delivered > self.checkpointed:
            return None
        self.checkpointed = self.delivered
        return page

    def _hand_on_odd(self, page: Page, row: dict[str, Any]) -> None:
        """A row without a usable id or timestamp: to the pipeline once (it quarantines it), no cursor."""
        key = json.dumps(row, sort_keys=True, default=str)
        if key not in self._odd:
            self._odd.add(key)
            page.records.append(flatten(row))
