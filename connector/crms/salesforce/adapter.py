"""The Salesforce adapter, on simple-salesforce.

* Auth: OAuth 2.0 client credentials (or the username-password grant) against
  ``{instance_url}/services/oauth2/token``; an expired session is renewed once. A token
  may be shared by the adapters of one process (``token_cache_seconds``), so a run
  starts without a token call; the owners list likewise (``owners_cache_seconds``).
* Reads: ``queryAll`` ordered by (SystemModstamp, Id) after a compound cursor, so
  records sharing a timestamp are never skipped; deleted rows come back as
  ``deleted_ids``; one :class:`Page` per REST page (``batchSize`` up to 2,000).
  ``prepare_reads`` fetches the first page of every object of a run (and the owners)
  in one Composite call, which counts as ONE API call for up to five queries.
* Writes: sObject Collections, 200 records per call, ``allOrNone: false``,
  ``Sforce-Auto-Assign: FALSE`` so the org's assignment rules keep Relay's owner.
* Merges: the SOAP API's ``merge()`` on the same session (:mod:`.merge`); lead conversion: its
  ``convertLead()`` (:mod:`.convert`).
* Field history: ``OpportunityHistory``, 500 opportunities per query (:mod:`.history`).
* A ``http://`` instance URL is the sandbox: its ``https://`` calls are looped back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation

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
    Action,
    AuthError,
    ConfigurationError,
    FatalError,
    RetriableError,
    classify_response,
    parse_error_body,
    record_error,
)
from connector.adapters.retry import RetryPolicy, call_with_retry, http_timeout
from connector.adapters.transport import ResponseTap
from connector.crms.salesforce.bulk import converters, csv_records
from connector.crms.salesforce.convert import convert_lead
from connector.crms.salesforce.errors import salesforce_translator
from connector.crms.salesforce.history import read_history
from connector.crms.salesforce.limits import observation as api_usage_observation
from connector.crms.salesforce.loopback import apply_default_timeout, loopback_session
from connector.crms.salesforce.merge import merge_records
from connector.crms.salesforce.soql import (
    MODSTAMP,
    incremental_query,
    is_salesforce_id,
    salesforce_position,
    select_fields,
    soql_name,
    soql_quote,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

COLLECTION_LIMIT = 200
"""sObject Collections take up to 200 records per call."""
QUERY_BATCH_MIN, QUERY_BATCH_MAX = 200, 2000
"""``Sforce-Query-Options: batchSize`` accepts 200..2000."""
DELETED_WINDOW = timedelta(days=15)
"""``sobjects/{Obj}/deleted/`` only reaches back 15 days."""
OBJECTS_WITHOUT_ISDELETED = frozenset({"User", "Group", "Profile", "UserRole", "RecordType"})
BULK_THRESHOLD = 50_000
"""Full reads above this many rows use Bulk API 2.0."""
BULK_PAGE = 10_000
"""Rows per Bulk 2.0 result page (one :class:`Page`)."""
BULK_POLL_MAX = 10.0
"""Longest wait between two polls of a Bulk 2.0 job, in seconds."""
OWNER_FIELDS = ("Id", "FirstName", "LastName", "Name", "Email", "Username", "IsActive", "Title")
OWNERS_SOQL = f"SELECT {', '.join(OWNER_FIELDS)} FROM User ORDER BY Id"
AUTO_ASSIGN_OFF = {"Sforce-Auto-Assign": "FALSE"}
COMPOSITE_SINCE = 38.0
"""The Composite resource (``/composite``) exists from API version 38.0."""
COMPOSITE_MAX_QUERIES = 5
"""A Composite call takes 25 subrequests, of which at most 5 queries (query, queryAll, query more)."""
PREPARED_LOCATOR_AGE = 600.0
"""Seconds a prepared first page that has more pages is used: its ``nextRecordsUrl`` (a query
locator) expires after 15 minutes unused, so an older one is asked again rather than followed."""
TOKEN_REUSE_SECONDS = 3600.0
"""How long ``open_adapter``'s adapters share a token: well inside Salesforce's default 2-hour
session timeout. An org with a shorter one refuses the token (INVALID_SESSION_ID): it is dropped
and renewed once, costing one call more."""


class SalesforceAdapter:
    """Relay's connection to one Salesforce org.

    Args:
        connection: The connection's name in ``config/relay.yaml``.
        instance_url: ``https://yourorg.my.salesforce.com`` (``http://127.0.0.1:PORT``: the sandbox).
        client_id: The connected app's consumer key.
        client_secret: The connected app's consumer secret.
        api_version: REST API version without ``v`` (``59.0``).
        username: With ``password``: use the username-password grant instead of client credentials.
        password: The user's password (with the security token appended, if the org needs one).
        session: A ``requests.Session`` to use (built for you when None).
        timeout: ``(connect, read)`` seconds per HTTP call (default 5 s, 60 s); a single number is
            the read timeout (connect: the shorter of it and 5 s).
        retry: The retry policy (6 attempts per operation, 3 when the server cannot be reached,
            waits capped at 30 s by default; ``retry.with_deadline(...)`` bounds a run).
        calls: Where API calls are counted (a new counter when None).
        write_batch_size: Records per sObject Collections call (1..200, default 200).
        bulk_threshold: A full read of more rows than this goes through Bulk API 2.0
            (None: always REST). The first REST page's ``totalSize`` decides, so a full read
            costs no extra call below the threshold and one wasted page above it.
        read_lag: How far before the server's time at the start of a read its upper bound
            lies (``SystemModstamp <= start - read_lag``). It absorbs clock error and commit
            lag (a transaction stamps its rows when it starts, they show when it commits);
            records changed within it are read by the next read.
        clock: The org's clock. Default: the local clock corrected by the ``Date`` header of
            the org's latest answer. Give one only when the org stamps records by another
            clock than its headers' (a sandbox on a test clock).
        owners_cache_seconds: How long ``owners()`` answers from ``caches`` (0: it asks the org
            every time). A user added or deactivated in the org is seen after at most this long.
        token_cache_seconds: How long a token this adapter gets may be used by the later
            adapters of the process for the same org, connected app and user (0: every adapter
            asks for its own). A token the org refuses is dropped and renewed once.
        caches: Where owners and tokens are shared (default: the process's ``PROCESS_CACHES``),
            keyed by org URL and a digest of the credentials.
        governor: The connection's API budget: every call takes a token first, and every answer's
            ``Sforce-Limit-Info`` corrects it (None: calls are not held).
    """

    crm = "salesforce"
    reads_deletions = True  # queryAll returns deleted rows in the incremental read itself

    def __init__(
        self,
        connection: str,
        instance_url: str,
        client_id: str,
        client_secret: str,
        api_version: str = "59.0",
        *,
        username: str | None = None,
        password: str | None = None,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | None = None,
        calls: ApiCallCounter | None = None,
        write_batch_size: int = COLLECTION_LIMIT,
        bulk_threshold: int | None = BULK_THRESHOLD,
        read_lag: timedelta = READ_LAG,
        clock: Callable[[], datetime] | None = None,
        owners_cache_seconds: float = 0.0,
        token_cache_seconds: float = 0.0,
        caches: SharedCaches | None = None,
        governor: Governor | None = None,
    ) -> None:
        parts = urlsplit(instance_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"connection {connection!r}: instance_url must be https://yourorg.my.salesforce.com "
                f"(or http://127.0.0.1:PORT for the sandbox), got {instance_url!r}",
                crm="salesforce", code="INVALID_INSTANCE_URL",
            )
        version = api_version.lstrip("vV")
        try:
            float(version)
        except ValueError:
            raise ConfigurationError(
                f"connection {connection!r}: api_version must look like '59.0', got {api_version!r}",
                crm="salesforce", code="INVALID_API_VERSION",
            ) from None
        if (username is None) != (password is None):
            raise ConfigurationError(
                f"connection {connection!r}: give both username and password, or neither (client credentials)",
                crm="salesforce", code="INVALID_CREDENTIALS",
            )
        if not 1 <= write_batch_size <= COLLECTION_LIMIT:
            raise ConfigurationError(
                f"connection {connection!r}: write_batch_size must be 1..{COLLECTION_LIMIT}, got {write_batch_size}",
                crm="salesforce", code="INVALID_BATCH_SIZE",
            )
        if read_lag < timedelta(0):
            raise ConfigurationError(f"connection {connection!r}: read_lag must be >= 0, got {read_lag}",
                                     crm="salesforce", code="INVALID_READ_LAG")
        for name, seconds in (("owners_cache_seconds", owners_cache_seconds),
                              ("token_cache_seconds", token_cache_seconds)):
            if seconds < 0:
                raise ConfigurationError(f"connection {connection!r}: {name} must be >= 0, got {seconds}",
                                         crm="salesforce", code="INVALID_CACHE_SECONDS")
        self.owners_cache_seconds = owners_cache_seconds
        self.token_cache_seconds = token_cache_seconds
        self.caches = caches if caches is not None else PROCESS_CACHES
        self._cache_key = CacheKey.of("salesforce", instance_url, client_id, username, client_secret, password)
        self._token: dict[str, Any] | None = None
        self._renew = False  # a token was refused: the next session is a new token, not a shared one
        self._prepared: dict[_ReadKey | str, _Prepared] = {}
        self.write_batch_size = write_batch_size
        self.bulk_threshold = bulk_threshold
        self.read_lag = read_lag
        self.server_clock = ServerClock(fixed=clock)
        self.connection = connection
        self.instance_url = instance_url.rstrip("/")
        self.api_version = version
        self.timeout = http_timeout(timeout)
        self.retry = retry or RetryPolicy()
        self.calls = calls or ApiCallCounter()
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        if session is None:
            session = loopback_session(self.instance_url) if parts.scheme == "http" else requests.Session()
        apply_default_timeout(session, self.timeout)  # Bulk 2.0 calls pass none
        self.session = session
        self._tap = ResponseTap()
        self._tap.install(session)
        session.hooks.setdefault("response", []).append(self._observe_date)
        self.governor = governor
        session.hooks["response"].append(self._observe_budget)
        self._translate = salesforce_translator(self._tap.last_headers, self.timeout)
        self._sf: Salesforce | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self.converted_lead_status: str | None = None
        """The org's converted Lead Status, once asked (:func:`.convert.converted_status`)."""

    # --- auth --------------------------------------------------------------------------------

    def _token_request(self) -> dict[str, Any]:
        data = {"client_id": self._client_id, "client_secret": self._client_secret}
        if self._username is not None:
            data.update(grant_type="password", username=self._username, password=self._password or "")
        else:
            data["grant_type"] = "client_credentials"
        response = self.session.post(f"{self.instance_url}/services/oauth2/token", data=data, timeout=self.timeout)
        if response.status_code >= HTTPStatus.MULTIPLE_CHOICES:
            error = classify_response("salesforce", response.status_code, response.content, response.headers,
                                      context="OAuth token")
            if error.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED) and not isinstance(error, AuthError):
                raise AuthError(error.message, crm="salesforce", status=error.status, code=error.code,
                                context="OAuth token")
            raise error
        try:
            token: dict[str, Any] = response.json()
        except ValueError:  # a maintenance page or a body cut short: asking again may pass
            raise RetriableError(f"token endpoint answered non-JSON: {response.text[:200]!r}", crm="salesforce",
                                 status=response.status_code, code=MALFORMED_ANSWER, context="OAuth token") from None
        if not token.get("access_token"):
            raise AuthError(f"token answer has no access_token: {sorted(token)}", crm="salesforce",
                            context="OAuth token")
        return token

    def authenticate(self, *, retry: bool = True) -> Salesforce:
        """Get a new access token and build the simple-salesforce client (each token request is an ``auth`` call).

        The token is shared with the later adapters of the process for ``token_cache_seconds``.

        Args:
            retry: Retry the token request under the policy (authenticating as an operation of its own);
                False makes one request, for a step of an operation that is retried as a whole.
        """
        policy = self.retry if retry else self.retry.single_attempt()
        token = call_with_retry(self._token_request, calls=self.calls, kind="auth", translate=self._translate,
                                policy=policy, context="OAuth token", connection=self.connection, crm=self.crm)
        self.caches.tokens.put(self._cache_key, token, self.token_cache_seconds)
        self._renew = False
        return self._use(token)

    def _use(self, token: dict[str, Any]) -> Salesforce:
        """Build the simple-salesforce client on ``token`` (no call is made)."""
        instance = str(token.get("instance_url") or self.instance_url)
        self._sf = Salesforce(instance_url=instance, session_id=str(token["access_token"]), session=self.session,
                              version=self.api_version)
        self._token = token
        return self._sf

    def integration_user_id(self) -> str | None:
        """The user of the OAuth token: the last part of its identity URL (``.../id/<org id>/<user id>``).

        Everything Relay writes carries it as ``LastModifiedById``. Asks for a token when this
        adapter has none yet (one ``auth`` call, shared in the process).
        """
        self._session(retry=True)
        identity = str((self._token or {}).get("id") or "")
        user = identity.rstrip("/").rsplit("/", 1)[-1] if "/id/" in identity else ""
        return user or None

    def _session(self, *, retry: bool) -> Salesforce:
        """This adapter's client, else one on the token the process shares for this org and user, else a new token."""
        if self._sf is not None:
            return self._sf
        if self.token_cache_seconds > 0 and not self._renew:
            shared = self.caches.tokens.get(self._cache_key)
            if shared is not None and shared.get("access_token"):
                log.debug("connection %s: using the access token shared in this process", self.connection)
                return self._use(shared)
        return self.authenticate(retry=retry)

    def _drop_session(self) -> None:
        """The org refused the token: forget it here and in the shared cache; the next session asks for a new one."""
        if self._token is not None:
            self.caches.tokens.discard(self._cache_key, self._token)  # not a newer one another adapter put
        self._sf, self._token, self._renew = None, None, True

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client (on a shared token, or authenticating, on first use)."""
        return self._session(retry=True)

    def _call(self, kind: str, context: str, fn: Callable[[Salesforce], T]) -> T:
        """One operation, one attempt budget: a missing session is fetched inside each attempt, never retried apart."""

        def session() -> None:
            self._session(retry=False)

        return call_with_retry(lambda: fn(self.sf), calls=self.calls, kind=kind, translate=self._translate,
                               policy=self.retry, context=context, refresh_auth=self._drop_session, prepare=session,
                               connection=self.connection, crm=self.crm, governor=self.governor)

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """``(used, allowed)`` daily API calls from the last ``Sforce-Limit-Info`` header, if any."""
        usage = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        return (usage.used, usage.total) if usage is not None else None

    # --- reads -------------------------------------------------------------------------------

    def _observe_date(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Session hook: learn the org's clock from every answer's ``Date`` header."""
        self.server_clock.observe(response.headers)
        return response

    def _observe_budget(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Session hook: tell the governor the org's API usage from every answer's ``Sforce-Limit-Info``."""
        if self.governor is not None:
            self.governor.observe(api_usage_observation(response.headers, response.status_code))
        return response

    def _hwm(self) -> datetime:
        """The upper bound of a read starting now (see ``read_lag``)."""
        return high_water_mark(self.server_clock, self.read_lag)

    def _query(self, kind: str, context: str, soql: Callable[[], str], *, include_deleted: bool = False,
               headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Run a query (its SOQL built inside the attempt, after any login) and check the answer's shape."""
        return self._call(kind, context, lambda sf: _query_answer(context, _json_answer(context, lambda: sf.query(
            soql(), include_deleted=include_deleted, headers=headers or {}, timeout=self.timeout))))

    def read(
        self, object: str, fields: Sequence[str], cursor: Cursor | None, *, page_size: int | None = None
    ) -> Iterator[Page]:
        """Records of ``object`` modified after ``cursor`` (every record when None), one page per REST page.

        The read is bounded by a high-water mark taken when it starts (the org's time less
        ``read_lag``): a record changed while the read pages is left for the next read, and no
        page's cursor passes the mark, so a checkpoint never jumps over a change it has not read.

        Args:
            object: The sObject (``Lead``).
            fields: Fields to read; Id, SystemModstamp and IsDeleted are always added.
            cursor: Where the last committed page ended; None for a full resync.
            page_size: Records per page, 200..2000 (default 2000).

        Yields:
            Pages in (SystemModstamp, Id) order; deleted rows in ``deleted_ids``; merged-away
            rows in ``merged`` when ``MasterRecordId`` is among ``fields``. A row without an
            ``Id`` or with an unreadable ``SystemModstamp`` comes in ``records`` as it was sent
            (for the pipeline to quarantine) and does not move the cursor.

        The first page comes from ``prepare_reads`` when it fetched this read (same object,
        fields, cursor and page size), with the mark taken then.

        Raises:
            PagingStuckError: ``nextRecordsUrl`` repeats (code ``PAGING_STUCK``).
            RetriableError: the org answered non-JSON (code ``MALFORMED_ANSWER``), after retries.
            FatalError: the org answered an error list with 200 (code ``ERROR_WITH_200``) or
                something that is not a query result (code ``UNEXPECTED_ANSWER``).
        """
        size = self._page_size(page_size)
        has_deleted_flag = object not in OBJECTS_WITHOUT_ISDELETED
        select_fields(fields)  # names are checked before any call
        soql_name(object, what="object")
        headers = _batch_size(size)
        context = f"query {object}"
        prepared = self._take_prepared(_ReadKey(object, tuple(fields), cursor, size), context)
        if prepared is not None:
            answer, hwm = prepared
        else:
            marks: list[datetime] = []

            def soql() -> str:
                if not marks:  # taken once, inside the first attempt: after the login, whose Date sets the clock
                    marks.append(self._hwm())
                return self._read_soql(object, fields, cursor, marks[0])

            answer = self._query("read", context, soql, include_deleted=has_deleted_flag, headers=headers)
            hwm = marks[0]
        rows = _int(answer.get("totalSize"))
        if cursor is None and self.bulk_threshold is not None and rows > self.bulk_threshold:
            # The first REST page tells the size (no COUNT() call); past the threshold a
            # Bulk API 2.0 job reads everything, and that one page is all REST costs.
            log.info("%s: full read of %d rows through Bulk API 2.0", object, rows)
            yield from self._bulk_read(object, fields, hwm)
            return
        position = cursor
        for current in self._query_pages("read", context, answer, headers):
            page = self._page(object, current["records"], position, hwm)
            position = page.cursor
            if page.records or page.deleted_ids:
                yield page

    def read_ids(self, object: str, fields: Sequence[str], ids: Sequence[str]) -> Page:
        """Records of ``object`` by id: ``SELECT ... WHERE Id IN (...)``, 200 ids per query, its pages followed.

        Deleted records are not queried (plain ``query``, not ``queryAll``), so they are left
        out like ids the org never had; so are strings that are not record ids (one of them
        would make Salesforce refuse the whole query).
        """
        soql_name(object, what="object")
        select = select_fields(fields)
        wanted = list(dict.fromkeys(str(i) for i in ids if is_salesforce_id(str(i))))
        page = Page(object=object)
        for start in range(0, len(wanted), COLLECTION_LIMIT):
            chunk = wanted[start:start + COLLECTION_LIMIT]
            context = f"query {len(chunk)} {object} by id"
            soql = f"SELECT {', '.join(select)} FROM {object} WHERE Id IN ({', '.join(map(soql_quote, chunk))})"
            answer = self._query("read", context, partial(str, soql))
            for current in self._query_pages("read", context, answer, {}):
                got = self._page(object, current["records"], None)
                page.records.extend(got.records)
                page.merged.extend(got.merged)
        return page

    def read_by_email(self, object: str, fields: Sequence[str], emails: Sequence[str]) -> Page:
        """Records of ``object`` by email: ``SELECT ... WHERE Email IN (...)``, 200 emails per query.

        SOQL compares text without case. Converted Leads are left out (``IsConverted = false``):
        Salesforce refuses to update them, their person lives on as a Contact.
        """
        soql_name(object, what="object")
        select = select_fields([*fields, "Email"])
        wanted = list(dict.fromkeys(str(e).strip().lower() for e in emails if str(e or "").strip()))
        page = Page(object=object)
        live = " AND IsConverted = false" if object == "Lead" else ""
        for start in range(0, len(wanted), COLLECTION_LIMIT):
            chunk = wanted[start:start + COLLECTION_LIMIT]
            context = f"query {len(chunk)} {object} by email"
            soql = (f"SELECT {', '.join(select)} FROM {object} WHERE Email IN ({', '.join(map(soql_quote, chunk))})"
                    f"{live} ORDER BY Id")
            answer = self._query("read", context, partial(str, soql))
            for current in self._query_pages("read", context, answer, {}):
                page.records.extend(self._page(object, current["records"], None).records)
        return page

    def _page_size(self, page_size: int | None) -> int:
        """``page_size`` (default 2,000), checked against what ``batchSize`` accepts."""
        size = QUERY_BATCH_MAX if page_size is None else page_size
        if not QUERY_BATCH_MIN <= size <= QUERY_BATCH_MAX:
            raise ConfigurationError(
                f"connection {self.connection!r}: Salesforce page size must be {QUERY_BATCH_MIN}..{QUERY_BATCH_MAX}, "
                f"got {size}", crm="salesforce", code="INVALID_PAGE_SIZE",
            )
        return size

    @staticmethod
    def _read_soql(object: str, fields: Sequence[str], cursor: Cursor | None, hwm: datetime) -> str:
        """The SOQL of a read after ``cursor`` whose high-water mark is ``hwm``.

        A full read reads everything; its checkpoints still stop at the mark (a record changed
        past it is read again by the next sync). An incremental one reads up to the mark.
        """
        return incremental_query(object, fields, cursor, include_deleted_flag=object not in OBJECTS_WITHOUT_ISDELETED,
                                 until=hwm if cursor is not None else None)

    # --- combined first pages ----------------------------------------------------------------

    def prepare_reads(
        self, reads: Sequence[tuple[str, Sequence[str], Cursor | None]], *, page_size: int | None = None
    ) -> None:
        """Fetch the first page of each read, and the owners unless cached, in one Composite call.

        The whole Composite call is ONE API call (counted as a ``read``) for up to five queries
        (more reads make more calls, five queries each), where reading each object apart costs
        one call per object. ``read`` then takes its first page from here when it is called with
        the same object, fields, cursor and page size, and follows ``nextRecordsUrl`` as usual;
        ``owners()`` takes the owners' first page. Anything else queries as before. A prepared
        page is used once; one with more pages only within ``PREPARED_LOCATOR_AGE`` seconds.

        Each subrequest's error is its read's error, classified as a direct query's: a refused
        query (``MALFORMED_QUERY``, ``INVALID_FIELD``) is raised by that object's ``read``; one a
        direct query would retry (``SERVER_UNAVAILABLE``) makes that ``read`` query on its own.

        Args:
            reads: ``(object, fields, cursor)`` of each read the run will make, in its order.
            page_size: The ``page_size`` those reads will pass (default 2,000).

        Raises:
            CrmError: what the Composite call itself met, after retries (auth, daily limit,
                deadline, an unreachable org), as the first read would have. A Composite call
                the org refuses as a request (a 4xx, an unexpected answer) only logs a warning:
                each read then queries on its own.
        """
        self._prepared.clear()
        if float(self.api_version) < COMPOSITE_SINCE:
            return
        size = self._page_size(page_size)
        queries: list[_Subquery] = []
        if self.owners_cache_seconds <= 0 or self._cache_key not in self.caches.owners:
            queries.append(_Subquery(OWNERS_KEY, "query User", lambda hwm: OWNERS_SOQL, include_deleted=False,
                                     headers={}))
        seen: set[_ReadKey] = set()
        for object, fields, cursor in reads:
            try:
                soql_name(object, what="object")
                select_fields(fields)
            except ConfigurationError:
                continue  # its read raises the error, as it always did
            key = _ReadKey(object, tuple(fields), cursor, size)
            if key in seen:
                continue
            seen.add(key)
            queries.append(_Subquery(key, f"query {object}", partial(self._read_soql, object, fields, cursor),
                                     include_deleted=object not in OBJECTS_WITHOUT_ISDELETED,
                                     headers=_batch_size(size)))
        for start in range(0, len(queries), COMPOSITE_MAX_QUERIES):
            chunk = queries[start:start + COMPOSITE_MAX_QUERIES]
            if len(chunk) < 2:
                continue  # one query in a Composite call costs what it costs alone
            try:
                self._composite(chunk)
            except FatalError as error:
                if type(error) not in (FatalError, ConfigurationError):
                    raise  # auth, permission, daily limit, deadline: every read would meet it
                log.warning("%s; reading each object on its own", error)

    def _composite(self, chunk: list[_Subquery]) -> None:
        """One Composite call of ``chunk``'s queries; each answer is kept for its read."""
        context = "composite " + ", ".join(q.context for q in chunk)
        marks: list[datetime] = []

        def body() -> dict[str, Any]:
            if not marks:  # as in read: inside the first attempt, after the login
                marks.append(self._hwm())
            return {"allOrNone": False, "compositeRequest": [
                q.subrequest(f"q{position}", self.api_version, marks[0]) for position, q in enumerate(chunk)]}

        results = self._call("read", context, lambda sf: _composite_answer(context, _json_answer(
            context, lambda: sf.restful("composite", method="POST", json=body(), timeout=self.timeout))))
        received = time.monotonic()
        for position, query in enumerate(chunk):
            result = results.get(f"q{position}")
            if result is None:
                log.warning("%s: the Composite answer has no result for %s; it is queried on its own", context,
                            query.context)
                continue
            status, answer, headers = result
            self._prepared[query.key] = _Prepared(status, answer, headers, marks[0], received)

    def _take_prepared(self, key: _ReadKey | str, context: str) -> tuple[dict[str, Any], datetime] | None:
        """The prepared first page of ``key`` and its mark, once; None when there is none to use.

        Raises:
            CrmError: the subrequest's error, when a direct query would not be retried.
        """
        prepared = self._prepared.pop(key, None)
        if prepared is None:
            return None
        if prepared.status >= HTTPStatus.MULTIPLE_CHOICES:
            error = classify_response("salesforce", prepared.status, prepared.body, prepared.headers, context=context)
            error.connection = self.connection
            if isinstance(error, RetriableError) or error.action is Action.REFRESH_AUTH:
                log.info("%s; asking again on its own", error)
                return None
            raise error
        answer = _query_answer(context, prepared.body)
        if answer.get("done", True) is False and time.monotonic() - prepared.received > PREPARED_LOCATOR_AGE:
            log.info("%s: the first page prepared %.0f s ago has more pages, whose locator may have expired; "
                     "querying again", context, time.monotonic() - prepared.received)
            return None
        return answer, prepared.hwm

    def _bulk_read(self, object: str, fields: Sequence[str], hwm: datetime) -> Iterator[Page]:
        """A full read through a Bulk API 2.0 query job: typed like REST, checkpointed at the end.

        Bulk results come in no promised order, so (like HubSpot's full read) only the last,
        empty page carries the cursor: the newest (SystemModstamp, Id) seen, no later than
        ``hwm`` (it reads everything; a record changed past the mark is read again next time).
        Deleted rows are not part of a bulk read;
        ``read_deleted`` and later incremental reads report them.
        """
        convert = converters(self.describe(object))
        soql = f"SELECT {', '.join(select_fields(fields))} FROM {object}"
        context = f"bulk query {object}"

        def client(sf: Salesforce) -> Any:
            return _bulk_client(sf, object)

        job = self._call("bulk", context, lambda sf: client(sf).create_job(Operation.query, soql))
        job_id = str(job["id"])
        delay = 0.5
        while True:
            info = self._call("bulk", context, lambda sf: client(sf).get_job(job_id, True))
            state = str(info.get("state"))
            if state == "JobComplete":
                break
            if state in ("Failed", "Aborted"):
                raise ConfigurationError(f"Bulk API 2.0 query job {job_id} {state}: {info.get('errorMessage', '')}",
                                         crm="salesforce", code=f"BULK_JOB_{state.upper()}", context=context)
            self.retry.sleep(delay)
            delay = min(delay * 2, BULK_POLL_MAX)
        newest: Cursor | None = None
        results = LinkPaginator(self._bulk_results(object, job_id, ""), partial(self._bulk_results, object, job_id),
                                _bulk_locator, what=f"bulk results {object}", crm="salesforce")
        for result in results:
            records = csv_records(str(result.get("records") or ""), convert)
            for record in records:
                position = salesforce_position(record)
                if position is not None:
                    position = clamp(position, hwm)
                    newest = position if newest is None else max(newest, position)
            if records:
                yield Page(object=object, records=records)
        yield Page(object=object, cursor=newest)

    def _bulk_results(self, object: str, job_id: str, locator: str) -> Any:
        return self._call("read", f"bulk results {object}", lambda sf: _bulk_client(sf, object).get_query_results(
            job_id, locator, max_records=BULK_PAGE))

    def _query_more(self, kind: str, context: str, next_url: str, headers: dict[str, str]) -> dict[str, Any]:
        return self._call(kind, context, lambda sf: _query_answer(context, _json_answer(context, lambda: sf.query_more(
            next_url, identifier_is_url=True, headers=headers, timeout=self.timeout))))

    def _query_pages(self, kind: str, context: str, first: dict[str, Any],
                     headers: dict[str, str]) -> LinkPaginator[dict[str, Any]]:
        """A query's answers from ``first`` on, each ``nextRecordsUrl`` followed (with ``headers``) unless it repeats."""
        return LinkPaginator(first, partial(self._query_more, kind, context, headers=headers),
                             partial(_next_url, context=context), what=context, crm="salesforce")

    @staticmethod
    def _page(object: str, rows: list[dict[str, Any]], previous: Cursor | None, hwm: datetime | None = None) -> Page:
        """One page: live rows in ``records``, deleted ones in ``deleted_ids``, the cursor after it.

        The cursor is the greatest (SystemModstamp, Id) of the rows that have both (never past
        ``hwm``); a row lacking either still reaches the pipeline, in ``records``, to be quarantined.
        """
        page = Page(object=object, cursor=previous)
        stamped = False
        for row in rows:
            record = {key: value for key, value in row.items() if key != "attributes"}
            record_id = record.get("Id")
            if record.get("IsDeleted") and isinstance(record_id, str) and record_id:
                page.deleted_ids.append(record_id)
                if record.get("MasterRecordId"):
                    page.merged.append((record_id, str(record["MasterRecordId"])))
            else:
                page.records.append(record)
            stamped = stamped or MODSTAMP in record
            position = salesforce_position(record)
            if position is None:
                if record_id:
                    log.warning("%s %s: unreadable %s %r; the row does not move the cursor", object, record_id,
                                MODSTAMP, record.get(MODSTAMP))
                continue
            if hwm is not None:
                position = clamp(position, hwm)
            page.cursor = position if page.cursor is None else max(page.cursor, position)
        if rows and not stamped:
            raise ConfigurationError(f"{object} rows came back without {MODSTAMP}", crm="salesforce",
                                     code="MISSING_CURSOR_FIELD")
        return page

    def read_deleted(self, object: str, since: datetime) -> list[str]:
        """Ids of ``object`` records deleted since ``since`` (``sobjects/{Obj}/deleted/``, 15-day window)."""
        soql_name(object, what="object")
        if since.tzinfo is None:
            raise ValueError(f"read_deleted needs an aware datetime, got naive {since!r}")
        end = datetime.now(UTC)
        earliest = end - DELETED_WINDOW + timedelta(minutes=1)
        start = since.astimezone(UTC)
        if start < earliest:
            log.warning("%s: deletions before %s are outside Salesforce's 15-day window; reading from then",
                        object, earliest.isoformat())
            start = earliest
        if start >= end:
            return []
        params = {"start": start.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "end": end.strftime("%Y-%m-%dT%H:%M:%S+00:00")}
        context = f"deleted {object}"
        answer = self._call("deleted", context, lambda sf: _json_answer(context, lambda: sf.restful(
            f"sobjects/{object}/deleted/", params=params, timeout=self.timeout)))
        body = _object_answer(context, answer, "deletedRecords")
        rows = body.get("deletedRecords") or []
        if not isinstance(rows, list):
            raise _unexpected(context, body, "deletedRecords is not a list")
        return [str(row["id"]) for row in rows if isinstance(row, dict) and row.get("id")]

    def owners(self) -> list[dict[str, Any]]:
        """Every User (active and inactive), native fields: Id, FirstName, LastName, Email, IsActive...

        Answered from the process's cache for ``owners_cache_seconds``; otherwise read (its first
        page from ``prepare_reads`` when it fetched one).
        """
        return self.caches.owners.fetch(self._cache_key, self.owners_cache_seconds, self._read_owners)

    def _read_owners(self) -> list[dict[str, Any]]:
        context = "query User"
        prepared = self._take_prepared(OWNERS_KEY, context)
        first = prepared[0] if prepared is not None else self._query("owners", context, lambda: OWNERS_SOQL)
        return [{k: v for k, v in row.items() if k != "attributes"}
                for answer in self._query_pages("owners", context, first, {}) for row in answer["records"]]

    # --- writes ------------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write through sObject Collections, 200 per call, ``allOrNone: false``; one result per op, in order."""
        return write_in_batches(ops, size=self.write_batch_size, crm="salesforce", send=self._send)

    def _send(self, batch: list[WriteOp]) -> list[WriteResult]:
        first = batch[0]
        object, operation = first.object, first.operation
        soql_name(object, what="object")
        context = f"{operation} {len(batch)} {object}"
        answer: Any
        if operation == "delete":
            params = {"ids": ",".join(str(op.crm_id) for op in batch), "allOrNone": "false"}
            answer = self._call("write", context, lambda sf: _json_answer(context, lambda: sf.restful(
                "composite/sobjects", method="DELETE", params=params, headers=AUTO_ASSIGN_OFF, timeout=self.timeout)))
        else:
            records = []
            for op in batch:
                record: dict[str, Any] = {"attributes": {"type": object}, **op.fields}
                if operation == "update":
                    record["id"] = op.crm_id
                records.append(record)
            body = {"allOrNone": False, "records": records}
            path, method = "composite/sobjects", "POST"
            if operation == "update":
                method = "PATCH"
            elif operation == "upsert":
                path, method = f"composite/sobjects/{object}/{soql_name(str(first.external_id_field))}", "PATCH"
            # An update or an upsert by external id lands once however often it is sent: an answer
            # that is not JSON is retried. A create sent twice makes two records: its outcome is unknown.
            read = _write_answer if operation == "create" else partial(_json_answer, context)
            answer = self._call("write", context, lambda sf: read(lambda: sf.restful(
                path, method=method, json=body, headers=AUTO_ASSIGN_OFF, timeout=self.timeout)))
        if isinstance(answer, _Unreadable):
            error = record_error("salesforce", MALFORMED_ANSWER, f"Salesforce answered non-JSON, so whether this "
                                 f"record was written is unknown: {answer.body[:200]!r}", context=context)
            return [WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=error) for op in batch]
        refused = _error_list(context, answer)
        if refused is not None:
            raise refused
        if answer is not None and not isinstance(answer, list):
            error = record_error("salesforce", UNEXPECTED_ANSWER, f"Salesforce answered {_describe(answer)}, not a "
                                 "list of results, so whether this record was written is unknown", context=context)
            return [WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=error) for op in batch]
        return self._results(batch, answer or [], context)

    @staticmethod
    def _results(batch: list[WriteOp], rows: list[Any], context: str) -> list[WriteResult]:
        results = []
        for position, op in enumerate(batch):
            row = rows[position] if position < len(rows) and isinstance(rows[position], Mapping) else None
            if row is None:
                error = record_error("salesforce", "MISSING_RESULT",
                                     f"Salesforce answered {len(rows)} results for {len(batch)} records", context=context)
                results.append(WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=error))
                continue
            crm_id = str(row["id"]) if row.get("id") else op.crm_id
            if row.get("success"):
                created = op.operation == "create" or bool(row.get("created"))
                results.append(WriteResult(op=op, success=True, crm_id=crm_id, created=created))
                continue
            errors = [e for e in row.get("errors") or [] if isinstance(e, Mapping)]
            code = str(errors[0].get("statusCode") or errors[0].get("errorCode") or "") if errors else "UNKNOWN"
            message = "; ".join(str(e.get("message") or "") for e in errors) or "record refused without a message"
            fields = [str(f) for e in errors for f in e.get("fields") or []]
            error = record_error("salesforce", code, message, fields, context=f"{context} #{position}")
            results.append(WriteResult(op=op, success=False, crm_id=crm_id, created=False, error=error))
        return results

    def merge(self, object: str, survivor_id: str, loser_ids: Sequence[str],
              values: dict[str, Any] | None = None) -> MergeOutcome:
        """Merge ``loser_ids`` into ``survivor_id`` through the SOAP API's ``merge()`` (see :mod:`.merge`).

        Lead, Contact, Account or Case; two losers per merge request, as many requests as needed in
        one call; ``values`` are set on the survivor by the merge itself. The losers are deleted
        (``IsDeleted``, ``MasterRecordId`` through ``queryAll``), their tasks, contacts and
        opportunities re-parented. A loser already merged into the survivor counts as done.

        Raises:
            RecordError: Salesforce refused the merge (names the survivor and the losers).
            ConfigurationError: ``object`` cannot be merged, or a field of ``values`` is unknown.
            FatalError: auth, permission or daily-limit errors.
        """
        return merge_records(self, object, survivor_id, loser_ids, values)

    def convert_lead(self, object: str, crm_id: str, *, opportunity_name: str, owner_id: str | None,
                     status: str | None = None, stage: str | None = None, pipeline: str | None = None,
                     account_id: str | None = None) -> Conversion:
        """Convert a Lead through the SOAP API's ``convertLead()`` (see :mod:`.convert`).

        The lead becomes a contact of a new account named after its Company (or of ``account_id``),
        and an opportunity called ``opportunity_name`` is created in the org's first open stage;
        all are owned by ``owner_id`` (None: the lead's owner). One SOAP call, counted as a write.

        Args:
            object: ``Lead`` (anything else is a ConfigurationError).
            crm_id: The lead.
            opportunity_name: The new opportunity's name.
            owner_id: The owner of the new account, contact and opportunity.
            status: The converted Lead Status; None asks the org for its first status marked
                Converted (``LeadStatus``, one query per adapter).
            stage: A StageName for the new opportunity, set by one update after the conversion.
            pipeline: Ignored: Salesforce has no deal pipelines (sales processes follow record types).
            account_id: An existing account to convert into.

        Returns:
            The ids made; a lead converted before (``CANNOT_UPDATE_CONVERTED_LEAD``) answers
            ``already_converted`` with its ``Converted*Id`` values (one query).

        Raises:
            RecordError: Salesforce refused the conversion (code and message, naming the lead).
            ConfigurationError: ``object`` is not Lead, or the org has no converted Lead Status.
            FatalError: auth, permission or daily-limit errors.
        """
        del pipeline
        return convert_lead(self, object, crm_id, opportunity_name=opportunity_name, owner_id=owner_id,
                            status=status, stage=stage, account_id=account_id)

    def read_history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, list[HistoryValue]]:
        """Past values of ``fields`` of each record, oldest first, from ``OpportunityHistory`` (see :mod:`.history`).

        One query per 500 ids (pages followed), each counted as a read. A field appears where its
        value differed from the history row before (the first row: every field asked for, null
        included); fields that are not history columns (StageName, Amount, CloseDate,
        Probability, ForecastCategory) are left out, and records without history rows.

        Raises:
            ConfigurationError: ``object`` is not Opportunity (the message names the objects that keep history).
            FatalError: auth, permission or daily-limit errors.
        """
        return read_history(self, object, ids, fields)

    # --- schema ------------------------------------------------------------------------------

    def describe(self, object: str) -> dict[str, Any]:
        """The object's describe (``sobjects/{Obj}/describe``), fetched once per adapter (one run)."""
        cached = self._describes.get(object)
        if cached is not None:
            return cached
        soql_name(object, what="object")
        context = f"describe {object}"
        answer = self._call("describe", context, lambda sf: _json_answer(context, lambda: sf.restful(
            f"sobjects/{object}/describe", timeout=self.timeout)))
        body = _object_answer(context, answer, "fields")
        if not isinstance(body.get("fields", []), list):
            raise _unexpected(context, body.get("fields"), "fields is not a list")
        self._describes[object] = body
        return body

    def check_fields(self, object: str, names: Sequence[str]) -> list[str]:
        """The names in ``names`` that ``object`` lacks (from its describe, case-insensitive), in order.

        Relationship paths (``Owner.Name``) are checked by their first step's relationship name.
        """
        fields = self.describe(object).get("fields") or []
        present = {str(f.get("name", "")).lower() for f in fields if isinstance(f, dict)}
        relations = {str(f.get("relationshipName") or "").lower() for f in fields if isinstance(f, dict)}
        missing = []
        for name in dict.fromkeys(names):
            head, dot, _ = name.partition(".")
            known = head.lower() in relations if dot else name.lower() in present
            if not known:
                missing.append(name)
        return missing

    def delete_records(self, object: str, crm_ids: Sequence[str]) -> list[Deletion]:
        """Delete records of ``object`` through sObject Collections (``DELETE composite/sobjects``, 200 ids a call,
        ``allOrNone=false``); a record in the recycle bin already (``ENTITY_IS_DELETED``) counts as deleted."""
        ids = [str(crm_id) for crm_id in crm_ids]
        return deletions(object, ids, self.write(delete_ops(object, ids))) if ids else []

    def ensure_fields(self, object: str, fields: Sequence[FieldSpec | str]) -> list[str]:
        """Check that ``fields`` exist on ``object``; Relay cannot create Salesforce fields through REST.

        Returns:
            An empty list (nothing is created) when every field exists.

        Raises:
            ConfigurationError: naming every missing field and where to create it.
        """
        specs = [FieldSpec.of(f) for f in fields]
        missing = self.check_fields(object, [spec.name for spec in specs])
        if missing:
            raise ConfigurationError(
                f"Salesforce {object} lacks field(s) Relay needs: {', '.join(missing)}. Create them in Setup > "
                f"Object Manager > {object} > Fields & Relationships (Relay cannot create fields through the REST API).",
                crm="salesforce", code="MISSING_FIELDS", fields=missing, context=f"connection {self.connection}",
            )
        return []

    def forget_owners(self) -> None:
        """Drop the cached owners list: the next ``owners()`` reads the org's users."""
        self.caches.owners.discard(self._cache_key)

    def close(self) -> None:
        """Close the HTTP session (and forget prepared pages; a shared token stays for the next adapter).

        The API budget's unspent tokens go back.
        """
        self._prepared.clear()
        if self.governor is not None:
            self.governor.release()
        self.session.close()


OWNERS_KEY = "owners"
"""The key of the owners' prepared first page."""


@dataclass(frozen=True)
class _ReadKey:
    """What a read must ask for to be served a prepared first page."""

    object: str
    fields: tuple[str, ...]
    cursor: Cursor | None
    page_size: int


@dataclass(frozen=True)
class _Subquery:
    """One query of a Composite call: whose it is, and how to write it once the mark is known."""

    key: _ReadKey | str
    context: str
    soql: Callable[[datetime], str]
    include_deleted: bool
    headers: dict[str, str]

    def subrequest(self, reference_id: str, api_version: str, hwm: datetime) -> dict[str, Any]:
        resource = "queryAll" if self.include_deleted else "query"
        request: dict[str, Any] = {"method": "GET", "referenceId": reference_id,
                                   "url": f"/services/data/v{api_version}/{resource}?{urlencode({'q': self.soql(hwm)})}"}
        if self.headers:
            request["httpHeaders"] = self.headers
        return request


@dataclass(frozen=True)
class _Prepared:
    """One subrequest's result, kept for its read."""

    status: int
    body: Any
    headers: dict[str, str]
    hwm: datetime
    received: float
    """``time.monotonic()`` when the Composite answer came."""


def _batch_size(size: int) -> dict[str, str]:
    return {"Sforce-Query-Options": f"batchSize={size}"}


def _bulk_client(sf: Salesforce, object: str) -> Any:
    """simple-salesforce's Bulk 2.0 client for ``object`` (its step-by-step calls, so each is retried alone)."""
    return getattr(sf.bulk2, object)._client


# --- answers ---------------------------------------------------------------------------------


def _json_answer(context: str, call: Callable[[], T]) -> T:
    """Make one simple-salesforce call; a 2xx answer that is not JSON is retriable.

    simple-salesforce parses every answer as JSON and lets the decoder's error out. A
    maintenance page, a proxy's HTML or a body cut short may pass, so the call is tried again.
    """
    try:
        return call()
    except requests.exceptions.JSONDecodeError as exc:
        body = str(getattr(exc, "doc", "") or "")
        raise RetriableError(
            f"Salesforce answered non-JSON ({exc.msg} at position {exc.pos} of {len(body)} characters): "
            f"{body[:200]!r}", crm="salesforce", code=MALFORMED_ANSWER, context=context) from None


class _Unreadable:
    """A write answer that was not JSON (the records may or may not have been written)."""

    def __init__(self, body: str) -> None:
        self.body = body


def _write_answer(call: Callable[[], Any]) -> Any:
    """A write's answer; one that is not JSON is not retried (a create sent twice makes two records)."""
    try:
        return call()
    except requests.exceptions.JSONDecodeError as exc:
        return _Unreadable(str(getattr(exc, "doc", "") or ""))


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _unexpected(context: str, answer: Any, what: str) -> FatalError:
    return FatalError(f"Salesforce answered something unexpected ({what}): {_describe(answer)}", crm="salesforce",
                      code=UNEXPECTED_ANSWER, context=context)


def _error_list(context: str, answer: Any) -> FatalError | None:
    """The error a 200 answer carries as Salesforce's error list ``[{message, errorCode}]``, if it is one."""
    if not isinstance(answer, list) or not answer:
        return None
    if not all(isinstance(item, dict) and ("errorCode" in item or "message" in item) and "success" not in item
               for item in answer):
        return None
    parsed = parse_error_body("salesforce", answer)
    code = parsed.codes[0] if parsed.codes else ""
    return FatalError(f"Salesforce answered an error with 200: {code} {parsed.message}".rstrip(), crm="salesforce",
                      code=code or ERROR_WITH_200, fields=parsed.fields, context=context)


def _object_answer(context: str, answer: Any, expected: str) -> dict[str, Any]:
    """``answer`` when it is a JSON object; an error list or anything else is a FatalError."""
    error = _error_list(context, answer)
    if error is not None:
        raise error
    if not isinstance(answer, dict):
        raise _unexpected(context, answer, f"expected a JSON object with {expected}")
    return answer


def _query_answer(context: str, answer: Any) -> dict[str, Any]:
    """A query answer ``{totalSize, done, nextRecordsUrl?, records: [{...}]}``, checked."""
    body = _object_answer(context, answer, "totalSize, done and records")
    records = body.get("records")
    if not isinstance(records, list):
        raise _unexpected(context, body, f"records is {type(records).__name__}, not a list")
    if not all(isinstance(row, dict) for row in records):
        bad = next(row for row in records if not isinstance(row, dict))
        raise _unexpected(context, bad, "a row of records is not a JSON object")
    return body


def _composite_answer(context: str, answer: Any) -> dict[str, tuple[int, Any, dict[str, str]]]:
    """A Composite answer ``{compositeResponse: [{referenceId, httpStatusCode, body, httpHeaders}]}``, checked.

    Returns:
        ``(status, body, headers)`` by reference id.
    """
    body = _object_answer(context, answer, "compositeResponse")
    results = body.get("compositeResponse")
    if not isinstance(results, list):
        raise _unexpected(context, body, "compositeResponse is not a list")
    out: dict[str, tuple[int, Any, dict[str, str]]] = {}
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("referenceId"), str) \
                or not isinstance(result.get("httpStatusCode"), int):
            raise _unexpected(context, result, "a subrequest result without referenceId and httpStatusCode")
        headers = result.get("httpHeaders")
        out[result["referenceId"]] = (result["httpStatusCode"], result.get("body"),
                                      {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {})
    return out


def _next_url(answer: dict[str, Any], context: str) -> str | None:
    """The next page's path, None on the last page; ``done: false`` without a link is an error."""
    if answer.get("done", True) is not False:
        return None
    link = answer.get("nextRecordsUrl")
    if not isinstance(link, str) or not link:
        raise _unexpected(context, {k: v for k, v in answer.items() if k != "records"},
                          "done is false but there is no nextRecordsUrl")
    return link


def _bulk_locator(result: Any) -> str | None:
    """The locator of a Bulk 2.0 result page's successor; None on the last page (no locator, or ``"null"``)."""
    locator = str(result.get("locator") or "")
    return None if not locator or locator == "null" else locator


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
