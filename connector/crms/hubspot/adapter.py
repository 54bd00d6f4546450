"""The HubSpot adapter, on hubspot-api-client (CRM v3 objects, search, properties, owners; v4 associations).

* Full reads page ``GET /crm/v3/objects/{type}`` (100 per page) and a second pass
  with ``archived=true`` for deletions; the checkpoint moves only at the end,
  because that listing goes in id order, not modification order.
* Incremental reads use the search API sorted by ``hs_lastmodifieddate``
  ascending, each page a fresh keyset search (:class:`~connector.crms.hubspot.paging.SearchWindow`),
  so the 10,000-result cap is never reached, re-reading a small overlap because search lags
  writes. Searches are throttled to HubSpot's few-per-second limit.
* Lists follow ``paging.next.after`` through a
  :class:`~connector.adapters._paging.LinkPaginator`, which refuses an ``after`` that does not grow.
* Writes use the batch endpoints, 100 inputs per call; 207 multi-status answers
  are matched back to the ops. Tasks are linked to contacts in the create input.
* Merges: ``POST /crm/v3/objects/{type}/merge`` through the SDK, one pair per call.
* Governance: property history by batch read with ``propertiesWithHistory`` (50 ids per
  call); a qualified contact becomes a deal (see :meth:`HubSpotAdapter.convert_lead`).
* Records travel flat: ``id``, ``archived``, ``createdAt``, ``updatedAt`` and the
  properties (all strings), as ``mappings/hubspot.yaml`` expects.
* Email subscription types: where a contacts mapping reads ``hs_email_optout_*``, the opt-out
  properties of consent.yaml's subscription types are asked too and summed up under that name
  (``unsubscribed: One to One``; see :mod:`~connector.crms.hubspot.subscriptions`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import urllib3
from hubspot import HubSpot

from connector.adapters._paging import (
    ERROR_WITH_200,
    MALFORMED_ANSWER,
    READ_LAG,
    UNEXPECTED_ANSWER,
    LinkPaginator,
    ServerClock,
    clamp,
    high_water_mark,
)
from connector.adapters._writing import write_in_batches
from connector.adapters.base import (
    Conversion,
    Cursor,
    Deletion,
    FieldSpec,
    HistoryValue,
    MergeOutcome,
    Page,
    WriteOp,
    WriteResult,
    delete_ops,
    deletions,
)
from connector.adapters.budget import Governor
from connector.adapters.cache import PROCESS_CACHES, CacheKey, SharedCaches
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import (
    ConfigurationError,
    FatalError,
    PermissionError_,
    RecordError,
    RetriableError,
    parse_error_body,
    record_error,
)
from connector.adapters.retry import RetryPolicy, call_with_retry, http_timeout
from connector.crms.hubspot.errors import hubspot_translator
from connector.crms.hubspot.governance import (
    CONVERSION_KEY,
    HISTORY_BATCH_LIMIT,
    LIFECYCLE_STAGE,
    OPPORTUNITY,
    conversion_key,
    deal_stage,
    history_values,
    moves_forward,
    primary_company,
)
from connector.crms.hubspot.limits import observation as rate_limit_observation
from connector.crms.hubspot.paging import (
    MERGED,
    MODIFIED,
    SearchWindow,
    merged_pairs,
    next_after,
    parse_hubspot_datetime,
    record_position,
)
from connector.crms.hubspot.paging import (
    to_epoch_ms as to_epoch_ms,  # re-exported: where callers found it
)
from connector.crms.hubspot.records import RECORD_FIELDS, flatten
from connector.crms.hubspot.results import match_results, trace_id
from connector.crms.hubspot.subscriptions import (
    OPT_OUTS,
    SCOPE,
    definitions_of,
    opt_out_status,
    resolve,
)

log = logging.getLogger(__name__)

BATCH_LIMIT = 100
"""Batch endpoints take up to 100 inputs."""
PAGE_LIMIT = 100
"""List and search pages: 100 records."""
SEARCH_CAP = 10_000
"""Search stops at 10,000 results per query; deeper ``after`` answers 400."""
GROUP = "relay"

DEFAULT_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("tasks", "contacts"): 204,
    ("tasks", "companies"): 192,
    ("tasks", "deals"): 216,
    ("notes", "contacts"): 202,
    ("notes", "companies"): 190,
    ("notes", "deals"): 214,
}
"""HubSpot-defined default association type ids, (from, to) → id."""

_OBJECT_ALIASES = {
    "contact": "contacts", "0-1": "contacts", "company": "companies", "0-2": "companies",
    "deal": "deals", "0-3": "deals", "task": "tasks", "0-27": "tasks", "note": "notes", "0-46": "notes",
}


def object_type(name: str) -> str:
    """HubSpot's plural object type for ``name`` (``contact``, ``0-1`` → ``contacts``)."""
    return _OBJECT_ALIASES.get(name.lower(), name.lower())


def _hs_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


class SearchThrottle:
    """Spaces search calls so that at most ``per_second`` start in any second (HubSpot allows ~5)."""

    def __init__(self, per_second: float = 4.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_second <= 0:
            raise ValueError(f"searches per second must be > 0, got {per_second}")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next search may start."""
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            self._sleep(delay)


class HubSpotAdapter:
    """Relay's connection to one HubSpot portal (private-app token).

    Args:
        connection: The connection's name in ``config/relay.yaml``.
        base_url: ``https://api.hubapi.com`` (``http://127.0.0.1:PORT``: the sandbox); no trailing slash needed.
        access_token: The private app's access token.
        timeout: ``(connect, read)`` seconds per HTTP call (default 5 s, 60 s); a single number is
            the read timeout (connect: the shorter of it and 5 s).
        retry: The retry policy (6 attempts per operation, 3 when the server cannot be reached,
            waits capped at 30 s by default; ``retry.with_deadline(...)`` bounds a run).
        calls: Where API calls are counted (a new counter when None).
        search_overlap: How far before the cursor an incremental read starts again, because
            search lags writes; records in the overlap are delivered again.
        searches_per_second: Client-side cap on search calls.
        search_cap: Results one search query may page through (HubSpot: 10,000). Incremental
            reads page by keyset (each page a new search), so they never come near it.
        write_batch_size: Inputs per batch call (1..100, default 100).
        read_lag: How far before the portal's time at the start of a read its upper bound lies
            (``hs_lastmodifieddate <= start - read_lag``); records changed within it are read
            by the next read.
        clock: The portal's clock. Default: the local clock corrected by the ``Date`` header of
            the portal's latest answer. Give one only when the portal stamps records by another
            clock than its headers' (a sandbox on a test clock).
        owners_cache_seconds: How long ``owners()`` answers from ``caches`` (0: it asks the portal
            every time). An owner added or archived in the portal is seen after at most this long.
        caches: Where owners are shared (default: the process's ``PROCESS_CACHES``), keyed by
            base URL and a digest of the access token.
        governor: The connection's API budget: every call takes a token first, and every answer's
            ``X-HubSpot-RateLimit-*`` headers correct it (None: calls are not held).
        subscription_types: The email subscription types, by name, whose opt-out a contact's
            ``hs_email_optout_*`` reads (consent.yaml ``subscription_types.hubspot``): looked up once
            per adapter (one run) in the portal's list, kept in ``caches`` for ``owners_cache_seconds``.
            A name the portal lacks, or a token without scope ``communication_preferences.read``, is
            logged as a warning once per adapter; the read goes on without it.
    """

    crm = "hubspot"
    reads_deletions = False  # search never returns archived records: call read_deleted

    def __init__(
        self,
        connection: str,
        base_url: str,
        access_token: str,
        *,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | None = None,
        calls: ApiCallCounter | None = None,
        search_overlap: timedelta = timedelta(minutes=2),
        searches_per_second: float = 4.0,
        search_cap: int = SEARCH_CAP,
        write_batch_size: int = BATCH_LIMIT,
        read_lag: timedelta = READ_LAG,
        clock: Callable[[], datetime] | None = None,
        owners_cache_seconds: float = 0.0,
        caches: SharedCaches | None = None,
        governor: Governor | None = None,
        subscription_types: Sequence[str] = (),
    ) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"connection {connection!r}: base_url must be https://api.hubapi.com (or http://127.0.0.1:PORT "
                f"for the sandbox), got {base_url!r}", crm="hubspot", code="INVALID_BASE_URL")
        if not access_token:
            raise ConfigurationError(f"connection {connection!r}: access_token is empty", crm="hubspot",
                                     code="INVALID_CREDENTIALS")
        if not 1 <= write_batch_size <= BATCH_LIMIT:
            raise ConfigurationError(f"connection {connection!r}: write_batch_size must be 1..{BATCH_LIMIT}, "
                                     f"got {write_batch_size}", crm="hubspot", code="INVALID_BATCH_SIZE")
        self.write_batch_size = write_batch_size
        if not 1 <= search_cap <= SEARCH_CAP:
            raise ValueError(f"search_cap must be 1..{SEARCH_CAP}, got {search_cap}")
        if search_overlap < timedelta(0):
            raise ValueError(f"search_overlap must be >= 0, got {search_overlap}")
        self.connection = connection
        self.base_url = base_url.rstrip("/")
        self.timeout = http_timeout(timeout)  # a (connect, read) pair: a bare number is a *total* to urllib3
        self.retry = retry or RetryPolicy()
        self.calls = calls or ApiCallCounter()
        self.search_overlap = search_overlap
        self.search_cap = search_cap
        if read_lag < timedelta(0):
            raise ConfigurationError(f"connection {connection!r}: read_lag must be >= 0, got {read_lag}",
                                     crm="hubspot", code="INVALID_READ_LAG")
        self.read_lag = read_lag
        if owners_cache_seconds < 0:
            raise ConfigurationError(f"connection {connection!r}: owners_cache_seconds must be >= 0, got "
                                     f"{owners_cache_seconds}", crm="hubspot", code="INVALID_CACHE_SECONDS")
        self.owners_cache_seconds = owners_cache_seconds
        self.caches = caches if caches is not None else PROCESS_CACHES
        self._owners_key = CacheKey.of("hubspot", self.base_url, access_token)
        self.server_clock = ServerClock(fixed=clock)
        self.governor = governor
        self.throttle = SearchThrottle(searches_per_second, sleep=self.retry.sleep)
        # Retries are Relay's (counted, Retry-After honoured): the SDK's urllib3 must not retry on its own.
        self.client = HubSpot(access_token=access_token, host=self.base_url, retry=urllib3.Retry(0, redirect=0))
        self._basic = self.client.crm.objects.basic_api
        self._batch = self.client.crm.objects.batch_api
        self._search = self.client.crm.objects.search_api
        self._owners = self.client.crm.owners.owners_api
        self._properties = self.client.crm.properties.core_api
        self._groups = self.client.crm.properties.groups_api
        self._associations = self.client.crm.associations.v4.batch_api
        crm = self.client.crm
        self._merge_apis: dict[str, Any] = {"contacts": crm.contacts.basic_api, "companies": crm.companies.basic_api,
                                            "deals": crm.deals.basic_api, "tickets": crm.tickets.basic_api}
        self._properties_of: dict[str, dict[str, dict[str, Any]]] = {}
        self._pipelines = self.client.crm.pipelines.pipelines_api
        self._deal_pipelines: list[dict[str, Any]] | None = None
        self.subscription_types = tuple(subscription_types)
        self._definitions = self.client.communication_preferences.definition_api
        self._opt_outs: dict[str, str] | None = None
        self._unmapped_warned = False

    # --- plumbing ----------------------------------------------------------------------------

    def _call(self, kind: str, context: str, fn: Callable[[], Any], *, repeatable: bool = True) -> Any:
        """Make one SDK call (raw answer) under the retry policy; the parsed JSON (None when empty).

        An answer that is not JSON (a maintenance page, a body cut short) is retried when the
        call may be repeated safely: reads, and writes that land once however often they are
        sent (update, upsert by a unique property, archive). A create (``repeatable=False``)
        is not: sent twice it makes two records, so its outcome is reported as unknown.
        """

        def once() -> Any:
            if kind == "search":
                self.throttle.wait()
            try:
                response = fn()
            except Exception as exc:  # the SDK's error carries the answer's headers
                self._observe_budget(getattr(exc, "headers", None), getattr(exc, "status", None))
                raise
            self._observe_budget(getattr(response, "headers", None), getattr(response, "status", None))
            try:
                data = response.data
            finally:
                release = getattr(response, "release_conn", None)
                if release is not None:
                    release()
            if not data:
                return None
            try:
                return json.loads(data)
            except ValueError:
                status = getattr(response, "status", None)
                if repeatable:
                    raise RetriableError(f"HubSpot answered non-JSON: {data[:200]!r}", crm="hubspot", status=status,
                                         code=MALFORMED_ANSWER, context=context) from None
                raise RecordError(f"HubSpot answered non-JSON, so whether this was written is unknown: "
                                  f"{data[:200]!r}", crm="hubspot", status=status, code=MALFORMED_ANSWER,
                                  context=context) from None

        try:
            return call_with_retry(once, calls=self.calls, kind=kind, translate=hubspot_translator(self.timeout),
                                   policy=self.retry, context=context, connection=self.connection, crm=self.crm,
                                   governor=self.governor)
        except RecordError as error:
            if kind == "write":
                raise
            # Outside a write, a refused request is Relay's mistake (object type, property, filter), not a record's.
            raise ConfigurationError(error.message, crm="hubspot", status=error.status, code=error.code,
                                     fields=error.fields, context=error.context,
                                     connection=error.connection) from error

    def _observe_budget(self, headers: Any, status: Any) -> None:
        """Tell the governor what an answer's rate-limit headers said."""
        if self.governor is not None and headers:
            self.governor.observe(rate_limit_observation(headers, status if isinstance(status, int) else None))

    def _raw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout}

    # --- reads -------------------------------------------------------------------------------

    def _checked(self, context: str, fn: Callable[[], Any], *, results: bool = True) -> Callable[[], Any]:
        """``fn`` (one raw SDK call) with its answer checked inside the attempt, so a bad answer is retried.

        Also learns the portal's clock from the answer's ``Date`` header. An empty or non-JSON
        body is a :class:`RetriableError` (a maintenance page or a cut body may pass); a 200
        carrying ``{"status": "error"}`` or, when ``results``, an answer without a ``results``
        list is a :class:`FatalError` (it must never read as "0 records").
        """

        def call() -> Any:
            response = fn()
            self.server_clock.observe(getattr(response, "headers", None))
            problem = _answer_problem(context, getattr(response, "data", b""), results=results)
            if problem is not None:
                release = getattr(response, "release_conn", None)
                if release is not None:
                    release()
                raise problem
            return response

        return call

    def _hwm(self) -> datetime:
        """The upper bound of a read starting now (see ``read_lag``)."""
        return high_water_mark(self.server_clock, self.read_lag)

    def read(
        self, object: str, fields: Sequence[str], cursor: Cursor | None, *, page_size: int | None = None
    ) -> Iterator[Page]:
        """Records of ``object`` modified after ``cursor`` (every record when None).

        Every read is bounded by a high-water mark taken when it starts (the portal's time less
        ``read_lag``), and no checkpoint passes it: a record changed during the read is read by
        the next one.

        Args:
            object: ``contacts``, ``companies``, ``deals``, ``tasks``...
            fields: Properties to read (hs_lastmodifieddate and hs_merged_object_ids are added).
            cursor: Where the last committed page ended; None for a full resync.
            page_size: Records per page, 1..100 (default 100).

        Yields:
            Pages. A full read yields live pages, then archived ones (``deleted_ids``), then an
            empty page carrying the checkpoint. An incremental read's pages each carry one.
            ``owners`` (not a CRM object) comes whole, archived owners included, without a cursor.
            A record without an ``id`` or with an unreadable modification time comes in
            ``records`` as it was sent (for the pipeline to quarantine) and moves no cursor.

        Raises:
            PagingStuckError: a next-page link repeats or goes backwards (code ``PAGING_STUCK``).
            RetriableError: HubSpot answered non-JSON (code ``MALFORMED_ANSWER``), after retries.
            FatalError: HubSpot answered an error with 200 (code: its category) or no ``results``.
        """
        size = PAGE_LIMIT if page_size is None else page_size
        if not 1 <= size <= PAGE_LIMIT:
            raise ConfigurationError(f"connection {self.connection!r}: HubSpot page size must be 1..{PAGE_LIMIT}, "
                                     f"got {size}", crm="hubspot", code="INVALID_PAGE_SIZE")
        kind = object_type(object)
        if kind == "owners":  # not a CRM object: a small list, read whole every time
            yield Page(object=kind, records=self.owners())
            return
        if kind == "contacts" and self.subscription_types and OPT_OUTS not in fields and not self._unmapped_warned:
            self._unmapped_warned = True
            log.warning("connection %r: consent.yaml subscription_types.hubspot names %s, but the contacts mapping "
                        "reads no subscription_status from %r: opt-outs of those types are not read (map it, or set "
                        "subscription_types.hubspot: [])", self.connection, ", ".join(self.subscription_types),
                        OPT_OUTS)
        names, opt_outs = self._with_opt_outs(fields)
        properties = list(dict.fromkeys([*names, MODIFIED, MERGED]))
        if cursor is None:
            pages = self._full_read(kind, properties, size)
        else:
            pages = self._incremental_read(kind, properties, cursor, size)
        for page in pages:
            _sum_up_opt_outs(page.records, opt_outs)
            yield page

    def _listing(self, kind: str, context: str, get_page: Callable[..., Any],
                 **params: Any) -> LinkPaginator[dict[str, Any]]:
        """The answers of a list endpoint (its first page asked now), ``paging.next.after`` followed while it grows."""

        def page(after: str | None) -> dict[str, Any]:
            following = {"after": after} if after else {}
            answer: dict[str, Any] = self._call(kind, context, self._checked(
                context, partial(get_page, **params, **following, **self._raw())))
            return answer

        return LinkPaginator(page(None), page, partial(next_after, context=context), what=context, crm="hubspot",
                             numeric=True)

    def _list_pages(self, kind: str, properties: list[str], size: int, archived: bool) -> Iterator[list[dict[str, Any]]]:
        context = f"list {kind}" + (" (archived)" if archived else "")
        for answer in self._listing("read", context, partial(self._basic.get_page, kind), limit=size,
                                    properties=properties, archived=archived):
            yield list(answer["results"])

    def _full_read(self, kind: str, properties: list[str], size: int) -> Iterator[Page]:
        """List every record in id order, then the archived ones, then the checkpoint.

        The listing is live, not a snapshot: a record listed early and changed later in the
        read may carry an older timestamp than the newest one seen. So the checkpoint is the
        newest timestamp seen, but no later than the read's high-water mark (its start less
        ``read_lag``): what changed during the read is read again by the next one.
        """
        hwm = self._hwm()
        newest: Cursor | None = None
        for rows in self._list_pages(kind, properties, size, archived=False):
            page = Page(object=kind)
            for row in rows:
                page.records.append(flatten(row))
                page.merged.extend(merged_pairs(row))
                position = record_position(row)
                if position is not None:
                    position = clamp(position, hwm)
                    newest = position if newest is None or position > newest else newest
            if page.records:
                yield page
        for rows in self._list_pages(kind, [MODIFIED], size, archived=True):
            deleted = _ids(rows, f"list {kind} (archived)")
            if deleted:
                yield Page(object=kind, deleted_ids=deleted)
        yield Page(object=kind, cursor=newest)

    def _search_answer(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """One search call's answer, checked to carry a list of ``results`` objects."""
        context = f"search {kind}"
        answer: dict[str, Any] = self._call("search", context, self._checked(context, partial(
            self._search.do_search, kind, public_object_search_request=body, **self._raw())))
        return answer

    def _incremental_read(self, kind: str, properties: list[str], cursor: Cursor, size: int) -> Iterator[Page]:
        """Search ``start <= hs_lastmodifieddate <= hwm`` in keyset windows, never trusting ``after``.

        The search result is live: a record changed mid-read leaves it (its new time is past
        the high-water mark), which shifts every later ``after`` offset. So every page is a
        fresh search from the last timestamp the read has wholly delivered: a full page
        delivers the records before its last timestamp and leaves that timestamp for the next
        search. A timestamp shared by more than a page of records is read on its own, in
        ``hs_object_id`` order after the last id delivered (a keyset too). The 10,000-result
        cap of one search is never reached. Each page's checkpoint covers only what has been
        wholly delivered and never passes the high-water mark; a resume may deliver a few
        records again, never skip one. :class:`SearchWindow` keeps this state and says each
        next search; it refuses one that would not move the read on (``PAGING_STUCK``).
        """
        window = SearchWindow(kind, properties, cursor, hwm=self._hwm(), overlap=self.search_overlap, size=size)
        while True:
            step = window.advance(self._search_answer(kind, window.request()))
            if step.page is not None:
                yield step.page
            if step.done:
                return

    def read_deleted(self, object: str, since: datetime) -> list[str]:
        """Ids of ``object`` records archived since ``since`` (the ``archived=true`` listing)."""
        if since.tzinfo is None:
            raise ValueError(f"read_deleted needs an aware datetime, got naive {since!r}")
        kind = object_type(object)
        ids: list[str] = []
        for rows in self._list_pages(kind, [MODIFIED], PAGE_LIMIT, archived=True):
            for row in rows:
                try:
                    when = parse_hubspot_datetime(row.get("archivedAt") or row.get("updatedAt"))
                except ValueError:
                    when = None  # unreadable: report it rather than miss a deletion
                if when is None or when >= since:
                    ids.extend(_ids([row], f"list {kind} (archived)"))
        return ids

    def read_ids(self, object: str, fields: Sequence[str], ids: Sequence[str]) -> Page:
        """Records of ``object`` by id through the batch read endpoint, 100 ids per call.

        HubSpot answers ids it does not have (archived, merged away) with an error entry beside
        the results (207); they are left out. Owners come from ``owners()``.
        """
        kind = object_type(object)
        wanted = list(dict.fromkeys(str(i) for i in ids if str(i)))
        page = Page(object=kind)
        if kind == "owners":
            page.records.extend(o for o in self.owners() if str(o.get("id")) in set(wanted))
            return page
        names, opt_outs = self._with_opt_outs(fields)
        properties = list(dict.fromkeys([*names, MODIFIED, MERGED]))
        for start in range(0, len(wanted), PAGE_LIMIT):
            chunk = wanted[start:start + PAGE_LIMIT]
            context = f"batch read {len(chunk)} {kind}"
            body = {"inputs": [{"id": i} for i in chunk], "properties": properties}
            answer = self._call("read", context, self._checked(context, partial(
                self._batch.read, kind, body, archived=False, **self._raw())))
            for row in answer["results"]:
                page.records.append(flatten(row))
                page.merged.extend(merged_pairs(row))
        _sum_up_opt_outs(page.records, opt_outs)
        return page

    def read_by_email(self, object: str, fields: Sequence[str], emails: Sequence[str]) -> Page:
        """Contacts by email: the batch read endpoint with ``idProperty: email``, 100 emails per call.

        HubSpot keeps one contact per email (compared without case) and answers the emails it
        does not have with an error entry beside the results (207); they are left out. Only
        contacts can be looked up by email.
        """
        kind = object_type(object)
        if kind != "contacts":
            raise ConfigurationError(f"connection {self.connection!r}: HubSpot finds people by email among contacts "
                                     f"only, not {object!r}", crm="hubspot", code="INVALID_OBJECT")
        wanted = list(dict.fromkeys(str(e).strip().lower() for e in emails if str(e or "").strip()))
        names, opt_outs = self._with_opt_outs(fields)
        properties = list(dict.fromkeys([*names, "email", MODIFIED, MERGED]))
        page = Page(object=kind)
        seen: set[str] = set()
        for start in range(0, len(wanted), PAGE_LIMIT):
            chunk = wanted[start:start + PAGE_LIMIT]
            context = f"batch read {len(chunk)} {kind} by email"
            body = {"inputs": [{"id": email} for email in chunk], "idProperty": "email", "properties": properties}
            answer = self._call("read", context, self._checked(context, partial(
                self._batch.read, kind, body, archived=False, **self._raw())))
            for row in answer["results"]:
                if str(row.get("id")) in seen:
                    continue
                seen.add(str(row.get("id")))
                page.records.append(flatten(row))
        _sum_up_opt_outs(page.records, opt_outs)
        return page

    # --- email subscription types ------------------------------------------------------------

    def _with_opt_outs(self, fields: Sequence[str]) -> tuple[list[str], dict[str, str] | None]:
        """``fields`` with :data:`OPT_OUTS` replaced by the opt-out properties it stands for, and those
        properties (property -> type name; empty when none resolves; None when ``fields`` does not ask it)."""
        if OPT_OUTS not in fields:
            return list(fields), None
        opt_outs = self.opt_out_properties()
        return [*(f for f in fields if f != OPT_OUTS), *opt_outs], opt_outs

    def opt_out_properties(self) -> dict[str, str]:
        """``hs_email_optout_<id>`` -> type name for consent.yaml's subscription types, looked up once per adapter.

        A name the portal has no type of, and a token HubSpot refuses the list to (403: the private
        app lacks scope ``communication_preferences.read``), are logged as warnings; what resolves is read.
        """
        if self._opt_outs is None:
            self._opt_outs = self._resolve_opt_outs() if self.subscription_types else {}
        return dict(self._opt_outs)

    def _resolve_opt_outs(self) -> dict[str, str]:
        listed = self.caches.subscription_types.fetch(self._owners_key, self.owners_cache_seconds,
                                                      self._read_subscription_types)
        names = ", ".join(self.subscription_types)
        if listed.get("refused"):
            log.warning("connection %r: HubSpot refused the list of email subscription types (%s): give the private "
                        "app scope %s. Until then opt-outs of %s (consent.yaml subscription_types.hubspot) are not "
                        "read; hs_email_optout (opted out of all email) still is", self.connection, listed["refused"],
                        SCOPE, names)
            return {}
        found = resolve(self.subscription_types, listed["definitions"])
        for name in found.unknown:
            log.warning("connection %r: consent.yaml subscription_types.hubspot names %r, but the HubSpot portal has "
                        "no email subscription type of that name (its types: %s): opt-outs of it are not read",
                        self.connection, name, ", ".join(found.known) or "none")
        if found.properties:
            log.info("connection %r: subscription_status reads %s", self.connection,
                     ", ".join(f"{prop} ({name})" for prop, name in found.properties.items()))
        return dict(found.properties)

    def _read_subscription_types(self) -> dict[str, Any]:
        """The portal's subscription definitions (``{"definitions": [...], "refused": None}``), or why HubSpot
        refused them (``refused``: its message) when the token lacks the scope."""
        context = "subscription definitions"
        try:
            answer = self._call("schema", context, self._checked(
                context, partial(self._definitions.get_page, **self._raw()), results=False))
        except PermissionError_ as error:
            return {"definitions": [], "refused": f"{error.code or error.status}: {error.message}"}
        try:
            return {"definitions": definitions_of(answer), "refused": None}
        except ValueError as exc:
            raise FatalError(f"HubSpot answered the subscription definitions without their list: {exc}",
                             crm="hubspot", code=UNEXPECTED_ANSWER, context=context) from None

    def prepare_reads(
        self, reads: Sequence[tuple[str, Sequence[str], Cursor | None]], *, page_size: int | None = None
    ) -> None:
        """Nothing: HubSpot has no way to ask several searches or listings in one call; each read asks its own."""

    def integration_user_id(self) -> None:
        """HubSpot events do not name who changed a record; its echoes are told by their values (see events)."""
        return None

    def owners(self) -> list[dict[str, Any]]:
        """Every owner as the owners API sends it (id, email, firstName, lastName, archived...), archived included.

        Answered from the process's cache for ``owners_cache_seconds``.
        """
        return self.caches.owners.fetch(self._owners_key, self.owners_cache_seconds, self._read_owners)

    def _read_owners(self) -> list[dict[str, Any]]:
        owners: dict[str, dict[str, Any]] = {}
        for archived in (False, True):
            context = "list owners" + (" (archived)" if archived else "")
            for answer in self._listing("owners", context, self._owners.get_page, limit=PAGE_LIMIT, archived=archived):
                for owner in answer["results"]:
                    owner = dict(owner)
                    owner.setdefault("archived", archived)
                    key = str(owner["id"]) if owner.get("id") not in (None, "") else f"(no id #{len(owners)})"
                    owners.setdefault(key, owner)
        return list(owners.values())

    # --- writes ------------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write through the batch endpoints, 100 inputs per call; one result per op, in order."""
        normalized = [_normalize(op) for op in ops]
        results = write_in_batches(normalized, size=self.write_batch_size, crm="hubspot", send=self._send)
        return [WriteResult(op=op, success=r.success, crm_id=r.crm_id, created=r.created, error=r.error)
                for op, r in zip(ops, results, strict=True)]

    def _send(self, batch: list[WriteOp]) -> list[WriteResult]:
        first = batch[0]
        kind, operation = first.object, first.operation
        context = f"batch {operation} {len(batch)} {kind}"
        association_errors: dict[int, RecordError] = {}
        if operation == "create":
            inputs: list[dict[str, Any]] = []
            for i, op in enumerate(batch):
                try:
                    associations = self._associations_for(op)
                except RecordError as error:
                    association_errors[i] = error
                    continue
                item: dict[str, Any] = {"properties": op.fields, "objectWriteTraceId": trace_id(len(inputs))}
                if associations:
                    item["associations"] = associations
                inputs.append(item)
            sendable = [op for i, op in enumerate(batch) if i not in association_errors]
            if not sendable:
                return [WriteResult(op=op, success=False, crm_id=None, created=False, error=association_errors[i])
                        for i, op in enumerate(batch)]
            try:
                answer = self._call("write", context, repeatable=False, fn=lambda: self._batch.create(
                    kind, {"inputs": inputs}, **self._raw()))
            except RecordError as unknown:
                if unknown.code != MALFORMED_ANSWER:
                    raise
                return [WriteResult(op=op, success=False, crm_id=None, created=False,
                                    error=association_errors.get(i, unknown)) for i, op in enumerate(batch)]
            matched = iter(match_results(sendable, answer, context=context))
            return [WriteResult(op=op, success=False, crm_id=None, created=False, error=association_errors[i])
                    if i in association_errors else next(matched) for i, op in enumerate(batch)]
        if operation == "update":
            body = {"inputs": [{"id": op.crm_id, "properties": op.fields, "objectWriteTraceId": trace_id(i)}
                               for i, op in enumerate(batch)]}
            answer = self._call("write", context, lambda: self._batch.update(kind, body, **self._raw()))
        elif operation == "upsert":
            id_property = str(first.external_id_field)
            body = {"inputs": [{"id": str(op.fields[id_property]), "idProperty": id_property, "properties": op.fields,
                                "objectWriteTraceId": trace_id(i)} for i, op in enumerate(batch)]}
            answer = self._call("write", context, lambda: self._batch.upsert(kind, body, **self._raw()))
        else:
            body = {"inputs": [{"id": op.crm_id} for op in batch]}
            answer = self._call("write", context, lambda: self._batch.archive(kind, body, **self._raw()))
        results = match_results(batch, answer, context=context)
        if operation in ("update", "upsert"):
            results = self._associate(results, context)
        return results

    def _associations_for(self, op: WriteOp) -> list[dict[str, Any]]:
        out = []
        for target, target_id in op.associations:
            type_id = DEFAULT_ASSOCIATION_TYPES.get((object_type(op.object), object_type(target)))
            if type_id is None:
                raise record_error("hubspot", "INVALID_ASSOCIATION",
                                   f"no default association type from {op.object} to {target} "
                                   f"(known: {', '.join(f'{a}->{b}' for a, b in DEFAULT_ASSOCIATION_TYPES)})")
            out.append({"to": {"id": str(target_id)},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]})
        return out

    def _associate(self, results: list[WriteResult], context: str) -> list[WriteResult]:
        """Link updated/upserted records to their ``associations`` (v4 default associations, one call per pair)."""
        pairs: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for index, result in enumerate(results):
            if result.success and result.crm_id:
                for target, target_id in result.op.associations:
                    pairs.setdefault((object_type(result.op.object), object_type(target)), []).append(
                        (index, str(target_id)))
        out = list(results)
        for (source, target), links in pairs.items():
            body = {"inputs": [{"from": {"id": out[i].crm_id}, "to": {"id": to}} for i, to in links]}
            try:
                self._call("write", f"associate {source}->{target}", partial(
                    self._associations.create_default, source, target, body, **self._raw()))
            except (RecordError, ConfigurationError) as error:
                for i, _ in links:
                    r = out[i]
                    out[i] = WriteResult(op=r.op, success=False, crm_id=r.crm_id, created=r.created, error=error)
        return out

    # --- merges ------------------------------------------------------------------------------

    def merge(self, object: str, survivor_id: str, loser_ids: Sequence[str],
              values: dict[str, Any] | None = None) -> MergeOutcome:
        """Merge ``loser_ids`` into ``survivor_id``: ``POST /crm/v3/objects/{type}/merge``, one pair per call.

        Contacts, companies, deals or tickets, through the SDK's ``basic_api.merge``. The losers
        go in one after another, each into the merged record the previous merge answered (a
        portal that gives the merged record a new id is followed); then ``values`` as a batch
        update of the survivor. Before each merge one read of the loser tells whether it is
        already merged into the survivor (done: Relay retries merges after a crash), gone, or
        merged into another record (refused). Costs one read of the survivor, then a read and a
        merge per loser, and one update when ``values`` are given.

        Raises:
            RecordError: the survivor or a loser does not exist or was archived, or a loser was
                merged into another record (the message names both ids).
            ConfigurationError: ``object`` is not a type HubSpot merges.
            FatalError: auth, permission or daily-limit errors.
        """
        kind = object_type(object)
        api = self._merge_apis.get(kind)
        if api is None:
            raise ConfigurationError(f"HubSpot merges only {', '.join(self._merge_apis)}, not {object!r}",
                                     crm="hubspot", code="INVALID_OBJECT", context=f"merge {object}")
        survivor = str(survivor_id).strip()
        losers = list(dict.fromkeys(str(i).strip() for i in loser_ids))
        context = f"merge {kind} {', '.join(losers)} into {survivor}"
        if not losers:
            raise ValueError(f"{context}: no records to merge")
        head = f"cannot merge {kind} {', '.join(losers)} into {survivor}"
        if survivor in losers:
            raise record_error("hubspot", "INVALID_MERGE", f"{head}: the survivor is among the records to merge",
                               context=f"merge {kind}")
        current = self._answering_id(kind, survivor, context)
        if current is None:
            raise record_error("hubspot", "OBJECT_NOT_FOUND", f"{head}: the survivor {survivor} does not exist or "
                               "was archived", context=f"merge {kind}")
        merged: list[str] = []
        already: list[str] = []
        for loser in losers:
            found = self._answering_id(kind, loser, context)
            done = f" ({', '.join(merged)} merged)" if merged else ""
            if found == current:
                already.append(loser)
                continue
            if found is None or found != loser:
                what = "does not exist or was archived" if found is None else f"was merged into {found}"
                raise record_error("hubspot", "OBJECT_NOT_FOUND", f"{head}: {loser} {what}{done}", context=f"merge {kind}")
            body = {"primaryObjectId": current, "objectIdToMerge": loser}
            try:
                answer = self._call("write", context, partial(api.merge, body, **self._raw()), repeatable=False)
            except (RecordError, ConfigurationError) as error:
                # The merge may have landed with its answer lost, and a retry been refused: look again.
                now, after = self._answering_id(kind, current, context), self._answering_id(kind, loser, context)
                if now is None or after != now:
                    raise
                log.info("%s: %s is merged into %s after all (%s)", context, loser, now, error)
                current = now
                already.append(loser)
                continue
            answered = str((answer or {}).get("id") or "") if isinstance(answer, dict) else ""
            current = answered or current
            merged.append(loser)
        if values:
            result = self.write([WriteOp(kind, "update", dict(values), crm_id=current)])[0]
            if not result.success:
                raise result.error or record_error("hubspot", "UNKNOWN", "update refused", context=context)
        return MergeOutcome(object=kind, survivor_id=current, merged_ids=tuple(merged), already_merged_ids=tuple(already))

    def _answering_id(self, kind: str, record_id: str, context: str) -> str | None:
        """The id of the live record ``record_id`` answers with (another one when merged away); None when gone."""
        try:
            answer = self._call("read", context, self._checked(context, partial(
                self._basic.get_by_id, kind, record_id, properties=["hs_object_id"], archived=False, **self._raw()),
                results=False))
        except (RecordError, ConfigurationError) as error:
            if error.status == HTTPStatus.NOT_FOUND:
                return None
            raise
        if not isinstance(answer, dict) or answer.get("id") in (None, ""):
            raise FatalError(f"HubSpot answered {kind} {record_id} without an id: {str(answer)[:200]}",
                             crm="hubspot", code=UNEXPECTED_ANSWER, context=context)
        return str(answer["id"])

    # --- governance --------------------------------------------------------------------------

    def read_history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, list[HistoryValue]]:
        """Past values of ``fields`` per record, oldest first: batch read with ``propertiesWithHistory``.

        50 ids per call (HubSpot refuses more in a batch read that asks history), counted as
        reads. Ids the portal does not have (archived, never there) are left out (HubSpot lists
        them in the 207 answer's ``errors``); a merged-away id answers as the record it was
        merged into, under that record's id. Property names the object lacks are ignored, as
        HubSpot ignores them; a record with no value in any of ``fields`` is absent. ``by`` is
        ``updatedByUserId`` when HubSpot names a user, else ``sourceId`` (an app id for API
        writes, ``userId:...`` for some CRM edits).

        Raises:
            ConfigurationError: ``object`` is not a CRM object (``owners``), or HubSpot refused
                the request (unknown object type).
            FatalError: an answer without HubSpot's history shape; auth, permission or daily limit.
        """
        kind = object_type(object)
        if kind == "owners":
            raise ConfigurationError(f"connection {self.connection!r}: HubSpot keeps no property history of owners "
                                     "(not a CRM object)", crm="hubspot", code="INVALID_OBJECT",
                                     context=f"history {kind}")
        wanted = list(dict.fromkeys(str(i).strip() for i in ids if str(i or "").strip()))
        names = list(dict.fromkeys(str(f) for f in fields if str(f or "").strip()))
        history: dict[str, list[HistoryValue]] = {}
        if not wanted or not names:
            return history
        for start in range(0, len(wanted), HISTORY_BATCH_LIMIT):
            chunk = wanted[start:start + HISTORY_BATCH_LIMIT]
            context = f"batch read history of {', '.join(names)} for {len(chunk)} {kind}"
            body = {"inputs": [{"id": i} for i in chunk], "properties": ["hs_object_id"],
                    "propertiesWithHistory": names}
            answer = self._call("read", context, self._checked(context, partial(
                self._batch.read, kind, body, archived=False, **self._raw())))
            for row in answer["results"]:
                values = history_values(row, names, context)
                if values and row.get("id") not in (None, ""):
                    history.setdefault(str(row["id"]), []).extend(values)
        return history

    def convert_lead(self, object: str, crm_id: str, *, opportunity_name: str, owner_id: str | None,
                     status: str | None = None, stage: str | None = None,
                     pipeline: str | None = None) -> Conversion:
        """Turn a qualified contact into a deal: the deal, its associations, the contact's lifecycle stage.

        1. The contact, its ``lifecyclestage`` and its primary company (one read; 404: refused).
        2. The deal pipeline and stage (``pipeline`` default ``default``, ``stage`` default its
           first stage; ids or labels), from the pipelines read once per adapter.
        3. The deal already made for this contact and name, found by its unique
           ``relay_conversion_key`` (a batch read by that property; the property is created
           on first use through :meth:`ensure_fields`). Found: ``already_converted``, nothing
           created. Else one batch create: ``dealname``, ``pipeline``, ``dealstage``,
           ``hubspot_owner_id`` (when given), the key, associated to the contact (type 3) and
           its primary company (341). A create refused as a duplicate of the key (a concurrent
           conversion) or whose answer was lost is settled by reading the key again.
        4. ``lifecyclestage`` set to ``opportunity`` when that moves it forward (HubSpot keeps a
           later stage: customer, evangelist stay), also on a retry, so a crash between the
           calls is repaired.

        ``status`` is Salesforce's and ignored. Costs 3-4 calls (a first conversion also reads
        the deal properties, the pipelines and the contact properties, once per adapter).

        Raises:
            ConfigurationError: ``object`` is not ``contacts``; an unknown pipeline or stage.
            RecordError: the contact does not exist or was archived, or HubSpot refused the deal
                or the contact's update (the message names the contact).
            FatalError: auth, permission or daily-limit errors.
        """
        kind = object_type(object)
        if kind != "contacts":
            raise ConfigurationError(f"connection {self.connection!r}: HubSpot converts contacts into deals, not "
                                     f"{object!r}", crm="hubspot", code="INVALID_OBJECT", context=f"convert {object}")
        contact_id = str(crm_id or "").strip()
        name = str(opportunity_name or "").strip()
        context = f"convert contact {contact_id}"
        if not contact_id:
            raise ValueError("convert_lead needs the contact's id, got an empty one")
        if not name:
            raise ValueError(f"{context}: the deal needs a name (opportunity_name is empty)")
        contact = self._contact_to_convert(contact_id, context)
        live_id = str(contact["id"])
        company = primary_company(contact)
        pipeline_id, stage_id = deal_stage(self._read_deal_pipelines(), pipeline, stage, context)
        self.ensure_fields("deals", [CONVERSION_KEY])
        key = conversion_key(contact_id, name)
        deal_id = self._deal_by_conversion_key(key, context)
        already = deal_id is not None
        if deal_id is None:
            fields = {"dealname": name, "pipeline": pipeline_id, "dealstage": stage_id, CONVERSION_KEY.name: key}
            if owner_id not in (None, ""):
                fields["hubspot_owner_id"] = str(owner_id)
            links = (("contacts", live_id),) + ((("companies", company),) if company else ())
            made = self.write([WriteOp("deals", "create", fields, idempotency_key=key, associations=links)])[0]
            if made.success and made.crm_id:
                deal_id = made.crm_id
            else:
                deal_id = self._deal_by_conversion_key(key, context)  # a concurrent conversion, or a lost answer
                error = made.error
                if deal_id is None:
                    raise RecordError(f"cannot convert contact {contact_id}: HubSpot refused the deal {name!r}: "
                                      f"{error.message if error else 'no result'}", crm="hubspot",
                                      status=error.status if error else None,
                                      code=(error.code if error else None) or "UNKNOWN",
                                      fields=error.fields if error else (), context=context)
                already = error is not None and error.status == HTTPStatus.CONFLICT
        properties = contact.get("properties")
        current = properties.get(LIFECYCLE_STAGE) if isinstance(properties, dict) else None
        if moves_forward(self._property_names("contacts").get(LIFECYCLE_STAGE), current):
            updated = self.write([WriteOp("contacts", "update", {LIFECYCLE_STAGE: OPPORTUNITY}, crm_id=live_id,
                                          idempotency_key=f"{key}-lifecycle")])[0]
            if not updated.success:
                error = updated.error
                raise RecordError(f"cannot convert contact {contact_id}: deal {deal_id} is made but HubSpot refused "
                                  f"lifecyclestage {OPPORTUNITY}: {error.message if error else 'no result'}",
                                  crm="hubspot", status=error.status if error else None,
                                  code=(error.code if error else None) or "UNKNOWN",
                                  fields=error.fields if error else (), context=context)
        elif current != OPPORTUNITY:
            log.info("%s: lifecyclestage stays %s (HubSpot does not move it back to %s)", context, current, OPPORTUNITY)
        return Conversion(object=kind, crm_id=contact_id, opportunity_id=deal_id, contact_id=live_id,
                          account_id=company, already_converted=already)

    def _contact_to_convert(self, contact_id: str, context: str) -> dict[str, Any]:
        """The live contact (its lifecycle stage and companies); a RecordError naming it when HubSpot has none."""
        try:
            answer = self._call("read", context, self._checked(context, partial(
                self._basic.get_by_id, "contacts", contact_id, properties=[LIFECYCLE_STAGE],
                associations=["companies"], archived=False, **self._raw()), results=False))
        except (RecordError, ConfigurationError) as error:
            if error.status == HTTPStatus.NOT_FOUND:
                raise RecordError(f"cannot convert contact {contact_id}: HubSpot has no such contact (it does not "
                                  "exist or was archived)", crm="hubspot", status=error.status,
                                  code=error.code or "OBJECT_NOT_FOUND", context=context) from error
            raise
        if not isinstance(answer, dict) or answer.get("id") in (None, ""):
            raise FatalError(f"HubSpot answered contact {contact_id} without an id: {str(answer)[:200]}",
                             crm="hubspot", code=UNEXPECTED_ANSWER, context=context)
        return answer

    def _read_deal_pipelines(self) -> list[dict[str, Any]]:
        """The portal's deal pipelines with their stages (``GET /crm/v3/pipelines/deals``), read once per adapter."""
        if self._deal_pipelines is None:
            context = "deal pipelines"
            answer = self._call("schema", context, self._checked(
                context, partial(self._pipelines.get_all, "deals", **self._raw())))
            self._deal_pipelines = list(answer["results"])
        return self._deal_pipelines

    def _deal_by_conversion_key(self, key: str, context: str) -> str | None:
        """The id of the live deal whose ``relay_conversion_key`` is ``key``; None when there is none."""
        body = {"inputs": [{"id": key}], "idProperty": CONVERSION_KEY.name, "properties": [CONVERSION_KEY.name]}
        answer = self._call("read", context, self._checked(context, partial(
            self._batch.read, "deals", body, archived=False, **self._raw())))
        for row in answer["results"]:
            if row.get("id") not in (None, ""):
                return str(row["id"])
        return None

    # --- schema ------------------------------------------------------------------------------

    def _property_names(self, kind: str) -> dict[str, dict[str, Any]]:
        """The object's properties by name, read once per adapter (one run) and after Relay creates any."""
        cached = self._properties_of.get(kind)
        if cached is not None:
            return cached
        context = f"properties {kind}"
        answer = self._call("schema", context, self._checked(
            context, lambda: self._properties.get_all(kind, **self._raw())))
        self._properties_of[kind] = {str(p.get("name")): p for p in answer["results"]}
        return self._properties_of[kind]

    def check_fields(self, object: str, names: Sequence[str]) -> list[str]:
        """The names in ``names`` that ``object`` has no property for (``GET /crm/v3/properties/{object}``), in order.

        HubSpot answers an unknown property with no value rather than an error, so a typo in
        ``mappings/hubspot.yaml`` only shows here. The record fields every answer carries
        (``id``, ``createdAt``, ``updatedAt``, ``archived``, ``archivedAt``) are not properties and always exist;
        nor is ``hs_email_optout_*``, which stands for the opt-out properties of consent.yaml's subscription
        types (the adapter finds those by name in the portal's list, warning of a name it lacks).
        """
        existing = self._property_names(object_type(object))
        return [name for name in dict.fromkeys(names)
                if name not in existing and name not in RECORD_FIELDS and name != OPT_OUTS]

    def delete_records(self, object: str, crm_ids: Sequence[str]) -> list[Deletion]:
        """Archive records of ``object`` (``POST /crm/v3/objects/{type}/batch/archive``, 100 ids a call; HubSpot
        answers 204 for every id, so an id archived before, or never there, counts as archived)."""
        ids = [str(crm_id) for crm_id in crm_ids]
        return deletions(object, ids, self.write(delete_ops(object, ids))) if ids else []

    def ensure_fields(self, object: str, fields: Sequence[FieldSpec | str]) -> list[str]:
        """Create the properties of ``fields`` that ``object`` lacks (in group ``relay``); returns their names."""
        kind = object_type(object)
        specs = [FieldSpec.of(f) for f in fields]
        existing = self._property_names(kind)
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return []
        groups = {spec.group_name for spec in missing}
        existing_groups = {str(p.get("groupName")) for p in existing.values()}
        for group in sorted(groups - existing_groups):
            self._create_ignoring_conflict("schema", f"property group {kind}.{group}", partial(
                self._groups.create, kind, {"name": group, "label": group.title(), "displayOrder": -1}, **self._raw()))
        created = []
        for spec in missing:
            body = {"name": spec.name, "label": spec.label or spec.name, "type": spec.type,
                    "fieldType": spec.field_type, "groupName": spec.group_name, "description": spec.description,
                    "hasUniqueValue": spec.has_unique_value}
            if self._create_ignoring_conflict("schema", f"create property {kind}.{spec.name}",
                                              partial(self._properties.create, kind, body, **self._raw())):
                created.append(spec.name)
        self._properties_of.pop(kind, None)  # read again when next asked: it has (at least) these now
        return created

    def _create_ignoring_conflict(self, kind: str, context: str, fn: Callable[[], Any]) -> bool:
        """Create something; False when it already exists (409)."""
        try:
            self._call(kind, context, fn)
        except ConfigurationError as error:
            if error.status == HTTPStatus.CONFLICT:
                return False
            raise
        return True

    def forget_owners(self) -> None:
        """Drop the cached owners list: the next ``owners()`` reads the portal's owners."""
        self.caches.owners.discard(self._owners_key)

    def close(self) -> None:
        """Give the API budget's unspent tokens back; the SDK's pools close with the process."""
        if self.governor is not None:
            self.governor.release()


def _normalize(op: WriteOp) -> WriteOp:
    """HubSpot takes every property value as a string; the object type in its plural form."""
    return WriteOp(
        object=object_type(op.object), operation=op.operation, fields={k: _hs_value(v) for k, v in op.fields.items()},
        crm_id=op.crm_id, idempotency_key=op.idempotency_key, external_id_field=op.external_id_field,
        associations=op.associations,
    )


def _sum_up_opt_outs(records: list[dict[str, Any]], opt_outs: dict[str, str] | None) -> None:
    """Give each flat record its :data:`OPT_OUTS` value when it was asked for (None: no type named, none
    resolved, or the token may not list them; the contact's own value otherwise)."""
    if opt_outs is None:
        return
    for record in records:
        record[OPT_OUTS] = opt_out_status(record, opt_outs) if opt_outs else None


def _answer_problem(context: str, data: Any, *, results: bool) -> FatalError | RetriableError | None:
    """What is wrong with a 2xx answer's body, if anything (see :meth:`HubSpotAdapter._checked`)."""
    if isinstance(data, bytes | bytearray):
        text = bytes(data).decode("utf-8", errors="replace")
    else:
        text = str(data or "")
    if not text.strip():
        if not results:
            return None
        return RetriableError("HubSpot answered an empty body", crm="hubspot", code=MALFORMED_ANSWER, context=context)
    try:
        answer = json.loads(text)
    except ValueError as exc:
        return RetriableError(f"HubSpot answered non-JSON ({exc}): {text[:200]!r}", crm="hubspot",
                              code=MALFORMED_ANSWER, context=context)
    if isinstance(answer, dict) and str(answer.get("status", "")).lower() == "error":
        parsed = parse_error_body("hubspot", answer)
        code = parsed.codes[0] if parsed.codes else ERROR_WITH_200
        return FatalError(f"HubSpot answered an error with 200: {code} {parsed.message}".rstrip(), crm="hubspot",
                          code=code, fields=parsed.fields, context=context)
    if not results:
        return None
    shown = text if len(text) <= 200 else text[:200] + "..."
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        return FatalError(f"HubSpot answered without a results list: {shown}", crm="hubspot", code=UNEXPECTED_ANSWER,
                          context=context)
    if not all(isinstance(row, dict) for row in answer["results"]):
        return FatalError(f"HubSpot answered results that are not all objects: {shown}", crm="hubspot",
                          code=UNEXPECTED_ANSWER, context=context)
    return None


def _ids(rows: list[dict[str, Any]], context: str) -> list[str]:
    """The ids of ``rows``; a row without one cannot be marked deleted, so it is logged and left out."""
    out = []
    for row in rows:
        record_id = row.get("id")
        if record_id is None or str(record_id).strip() == "":
            log.warning("%s: an archived record without an id: %r", context, row)
            continue
        out.append(str(record_id))
    return out
