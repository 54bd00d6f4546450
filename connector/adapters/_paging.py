"""Reading safely while the CRM keeps changing: the server's clock, high-water marks, page-link guards.

* :class:`ServerClock` tells the CRM's time from the ``Date`` header of its latest
  answer (the local clock corrected by the offset seen then), so that a read's
  upper bound does not depend on the local clock being right.
* :func:`high_water_mark` is the upper bound of one read: the CRM's time when the
  read starts, less a lag that absorbs clock error and commit lag. A read asks only
  for records modified at or before it, and :func:`clamp` keeps every checkpoint at
  or below it, so a change made during the read is always left for the next one.
* :class:`LinkGuard` fails a read whose next-page link repeats or goes backwards
  (:class:`PagingStuckError`) instead of following it forever.
* :class:`LinkPaginator` walks a paged listing by its next-page links (Salesforce
  ``nextRecordsUrl``, a Bulk 2.0 locator, HubSpot ``paging.next.after``), each checked by a
  :class:`LinkGuard` before it is followed. Each CRM unit gives it the answer-specific part:
  how to fetch a page by its link and where an answer keeps the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

from connector.adapters.base import Cursor
from connector.adapters.errors import FatalError, header

READ_LAG = timedelta(seconds=5)
"""Default margin between the CRM's time when a read starts and the read's upper bound (commit lag)."""
PAGING_STUCK = "PAGING_STUCK"
MALFORMED_ANSWER = "MALFORMED_ANSWER"
UNEXPECTED_ANSWER = "UNEXPECTED_ANSWER"
ERROR_WITH_200 = "ERROR_WITH_200"
DATE_RESOLUTION = timedelta(seconds=2)
"""What a ``Date`` header can tell about a clock: whole seconds, plus the answer's time in transit."""

AnswerT = TypeVar("AnswerT")


def utc_now() -> datetime:
    """The local clock, aware UTC."""
    return datetime.now(UTC)


class PagingStuckError(FatalError):
    """A next-page link repeats or does not advance: following it would never end (code ``PAGING_STUCK``)."""


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header as aware UTC (None when absent or unreadable)."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


class ServerClock:
    """The CRM's clock, as told by the ``Date`` header of its latest answer.

    ``Date`` has whole seconds and is written before the answer leaves the server, so
    ``Date - local time at receipt`` understates the server's offset by up to about a
    second (more with the answer's time in transit). An offset smaller than that says
    nothing but "the clocks agree" and is taken as zero (otherwise every read would stop
    a second or two short); a larger one is used as measured. The read lag covers what
    remains.

    Args:
        local: The local clock (aware UTC).
        fixed: Use this clock and ignore ``Date`` headers (e.g. a sandbox whose records
            are stamped by a clock that is not the one in its headers).
    """

    def __init__(self, local: Callable[[], datetime] = utc_now, *, fixed: Callable[[], datetime] | None = None) -> None:
        self._local = local
        self._fixed = fixed
        self._offset: timedelta | None = None
        self._lock = threading.Lock()

    @property
    def offset(self) -> timedelta | None:
        """Server time minus local time, from the latest ``Date`` seen (None before any)."""
        return self._offset

    def observe(self, headers: Mapping[str, Any] | None, received: datetime | None = None) -> None:
        """Learn the server's offset from an answer's headers (ignored without a readable ``Date``)."""
        server = parse_http_date(header(headers, "Date"))
        if server is None:
            return
        local = received or self._local()
        offset = server - local
        if abs(offset) < DATE_RESOLUTION:
            offset = timedelta(0)  # within what whole seconds can tell: the clocks agree
        with self._lock:
            self._offset = offset

    def now(self) -> datetime:
        """The server's time now (the local clock when no ``Date`` was seen yet)."""
        if self._fixed is not None:
            return self._fixed().astimezone(UTC)
        local = self._local()
        offset = self._offset
        return local if offset is None else local + offset


def floor_ms(value: datetime) -> datetime:
    """``value`` truncated to whole milliseconds (what both CRMs store and filter on)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def high_water_mark(clock: ServerClock, lag: timedelta) -> datetime:
    """The upper bound of a read starting now: the server's time less ``lag``, in whole milliseconds."""
    return floor_ms(clock.now() - lag)


def clamp(position: Cursor, hwm: datetime) -> Cursor:
    """``position``, or the high-water mark when it lies past it.

    ``Cursor(hwm, "")`` says "every record modified before ``hwm`` was delivered", which a
    read bounded by ``hwm`` has done once it saw a record past it (rows come in stamp order).
    """
    return position if position.last_modified <= hwm else Cursor(hwm, "")


class LinkGuard:
    """Fails a paged read whose next-page link repeats or goes backwards.

    Args:
        what: What is being read, for the message (``query Lead``, ``list contacts``).
        crm: ``salesforce`` or ``hubspot``.
        numeric: The links are numbers that must grow (HubSpot ``after``); otherwise
            they only must never repeat (Salesforce ``nextRecordsUrl``).
    """

    def __init__(self, what: str, *, crm: str, numeric: bool = False) -> None:
        self.what = what
        self.crm = crm
        self.numeric = numeric
        self._seen: set[str] = set()
        self._last: str | None = None

    def check(self, link: str) -> str:
        """Accept ``link`` as the next page's, or raise :class:`PagingStuckError` naming it."""
        reason = ""
        current, previous = _number(link), _number(self._last or "")
        if link in self._seen:
            reason = "repeats a page already read"
        elif self.numeric and current is not None and previous is not None and current <= previous:
            reason = f"does not advance past the previous one ({self._last!r})"
        if reason:
            raise PagingStuckError(
                f"{self.what}: the next-page link {link!r} {reason}; stopping instead of reading the same pages "
                "forever", crm=self.crm, code=PAGING_STUCK, context=self.what)
        self._seen.add(link)
        self._last = link
        return link


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


class LinkPaginator(Generic[AnswerT]):
    """The answers of a paged listing, in order, following each answer's link to the next one.

    A CRM that answers a link it gave before (or, for numeric links, one that is not past the
    previous one) would keep a naive loop reading the same pages forever; the paginator checks
    every link with a :class:`LinkGuard` before it follows it and raises
    :class:`PagingStuckError` instead. It fetches a page only when the previous one has been
    taken, so a consumer that stops early, or fails on a page, costs no further call, and a
    refused link is raised after the pages before it were handed out.

    It is an iterator: it walks the listing once.

    Args:
        first: The first answer, already in hand (a query, a page prepared earlier, a first
            listing call).
        fetch: Asks the CRM for the answer a link points to.
        next_link: Where an answer keeps the next page's link: None on the last page. It
            raises on an answer that says more pages follow but gives no usable link.
        what: What is being read, for the error (``query Lead``, ``list contacts``).
        crm: ``salesforce`` or ``hubspot``.
        numeric: The links are numbers that must grow (HubSpot ``after``); otherwise they
            only must never repeat.

    Example:
        >>> first = {"rows": ["a"], "next": "/p2"}
        >>> later = {"/p2": {"rows": ["b"], "next": "/p3"}, "/p3": {"rows": ["c"], "next": None}}
        >>> pages = LinkPaginator(first, later.__getitem__, lambda answer: answer["next"], what="list", crm="demo")
        >>> [answer["rows"] for answer in pages]
        [['a'], ['b'], ['c']]
    """

    def __init__(self, first: AnswerT, fetch: Callable[[str], AnswerT], next_link: Callable[[AnswerT], str | None],
                 *, what: str, crm: str, numeric: bool = False) -> None:
        self.guard = LinkGuard(what, crm=crm, numeric=numeric)
        self._fetch = fetch
        self._next_link = next_link
        self._answers = self._walk(first)

    def __iter__(self) -> Iterator[AnswerT]:
        return self._answers

    def __next__(self) -> AnswerT:
        return next(self._answers)

    def _walk(self, answer: AnswerT) -> Iterator[AnswerT]:
        while True:
            yield answer
            link = self._next_link(answer)
            if link is None:
                return
            answer = self._fetch(self.guard.check(link))
