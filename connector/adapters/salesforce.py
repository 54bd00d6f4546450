"""The Salesforce adapter, on simple-salesforce.

* Auth: OAuth 2.0 client credentials (or the username-password grant) against
  ``{instance_url}/services/oauth2/token``; an expired session is renewed once.
* Reads: ``queryAll`` ordered by (SystemModstamp, Id) after a compound cursor, so
  records sharing a timestamp are never skipped; deleted rows come back as
  ``deleted_ids``; one :class:`Page` per REST page (``batchSize`` up to 2,000).
* Writes: sObject Collections, 200 records per call, ``allOrNone: false``,
  ``Sforce-Auto-Assign: FALSE`` so the org's assignment rules keep Relay's owner.
* A ``http://`` instance URL is the sandbox: its ``https://`` calls are looped back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation

from connector.adapters._bulk import converters, csv_records
from connector.adapters._loopback import loopback_session
from connector.adapters._sdk_errors import ResponseTap, salesforce_translator
from connector.adapters._writing import write_in_batches
from connector.adapters.base import Cursor, FieldSpec, Page, WriteOp, WriteResult
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import AuthError, ConfigurationError, classify_response, record_error
from connector.adapters.retry import RetryPolicy, call_with_retry
from connector.adapters.soql import (
    MODSTAMP,
    incremental_query,
    parse_salesforce_datetime,
    select_fields,
    soql_name,
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
AUTO_ASSIGN_OFF = {"Sforce-Auto-Assign": "FALSE"}


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
        timeout: Seconds per HTTP call.
        retry: The retry policy (6 attempts, waits capped at 30 s by default).
        calls: Where API calls are counted (a new counter when None).
        write_batch_size: Records per sObject Collections call (1..200, default 200).
        bulk_threshold: A full read of more rows than this goes through Bulk API 2.0
            (None: always REST). The first REST page's ``totalSize`` decides, so a full read
            costs no extra call below the threshold and one wasted page above it.
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
        timeout: float = 30,
        retry: RetryPolicy | None = None,
        calls: ApiCallCounter | None = None,
        write_batch_size: int = COLLECTION_LIMIT,
        bulk_threshold: int | None = BULK_THRESHOLD,
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
        self.write_batch_size = write_batch_size
        self.bulk_threshold = bulk_threshold
        self.connection = connection
        self.instance_url = instance_url.rstrip("/")
        self.api_version = version
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.calls = calls or ApiCallCounter()
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        if session is None:
            session = loopback_session(self.instance_url) if parts.scheme == "http" else requests.Session()
        self.session = session
        self._tap = ResponseTap()
        self._tap.install(session)
        self._translate = salesforce_translator(self._tap.last_headers)
        self._sf: Salesforce | None = None

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
        except ValueError:
            raise AuthError(f"token endpoint answered non-JSON: {response.text[:200]!r}", crm="salesforce",
                            status=response.status_code, context="OAuth token") from None
        if not token.get("access_token"):
            raise AuthError(f"token answer has no access_token: {sorted(token)}", crm="salesforce",
                            context="OAuth token")
        return token

    def authenticate(self) -> Salesforce:
        """Get a new access token and build the simple-salesforce client (counted as an ``auth`` call)."""
        token = call_with_retry(self._token_request, calls=self.calls, kind="auth", translate=self._translate,
                                policy=self.retry, context="OAuth token")
        instance = str(token.get("instance_url") or self.instance_url)
        self._sf = Salesforce(instance_url=instance, session_id=str(token["access_token"]), session=self.session,
                              version=self.api_version)
        return self._sf

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client (authenticating on first use)."""
        return self._sf if self._sf is not None else self.authenticate()

    def _call(self, kind: str, context: str, fn: Callable[[Salesforce], T]) -> T:
        return call_with_retry(lambda: fn(self.sf), calls=self.calls, kind=kind, translate=self._translate,
                               policy=self.retry, context=context, refresh_auth=self.authenticate)

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """``(used, allowed)`` daily API calls from the last ``Sforce-Limit-Info`` header, if any."""
        usage = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        return (usage.used, usage.total) if usage is not None else None

    # --- reads -------------------------------------------------------------------------------

    def read(
        self, object: str, fields: Sequence[str], cursor: Cursor | None, *, page_size: int | None = None
    ) -> Iterator[Page]:
        """Records of ``object`` modified after ``cursor`` (every record when None), one page per REST page.

        Args:
            object: The sObject (``Lead``).
            fields: Fields to read; Id, SystemModstamp and IsDeleted are always added.
            cursor: Where the last committed page ended; None for a full resync.
            page_size: Records per page, 200..2000 (default 2000).

        Yields:
            Pages in (SystemModstamp, Id) order; deleted rows in ``deleted_ids``; merged-away
            rows in ``merged`` when ``MasterRecordId`` is among ``fields``.
        """
        size = QUERY_BATCH_MAX if page_size is None else page_size
        if not QUERY_BATCH_MIN <= size <= QUERY_BATCH_MAX:
            raise ConfigurationError(
                f"connection {self.connection!r}: Salesforce page size must be {QUERY_BATCH_MIN}..{QUERY_BATCH_MAX}, "
                f"got {size}", crm="salesforce", code="INVALID_PAGE_SIZE",
            )
        has_deleted_flag = object not in OBJECTS_WITHOUT_ISDELETED
        soql = incremental_query(object, fields, cursor, include_deleted_flag=has_deleted_flag)
        headers = {"Sforce-Query-Options": f"batchSize={size}"}
        context = f"query {object}"
        answer = self._call("read", context, lambda sf: sf.query(soql, include_deleted=has_deleted_flag,
                                                                 headers=headers, timeout=self.timeout))
        rows = int(answer.get("totalSize") or 0)
        if cursor is None and self.bulk_threshold is not None and rows > self.bulk_threshold:
            # The first REST page tells the size (no COUNT() call); past the threshold a
            # Bulk API 2.0 job reads everything, and that one page is all REST costs.
            log.info("%s: full read of %d rows through Bulk API 2.0", object, rows)
            yield from self._bulk_read(object, fields)
            return
        position = cursor
        while True:
            page = self._page(object, answer.get("records") or [], position)
            position = page.cursor
            if page.records or page.deleted_ids:
                yield page
            next_url = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not next_url:
                return
            answer = self._query_more("read", context, next_url, headers)

    def _bulk_read(self, object: str, fields: Sequence[str]) -> Iterator[Page]:
        """A full read through a Bulk API 2.0 query job: typed like REST, checkpointed at the end.

        Bulk results come in no promised order, so (like HubSpot's full read) only the last,
        empty page carries the cursor: the newest (SystemModstamp, Id) seen. Deleted rows are
        not part of a bulk read; ``read_deleted`` and later incremental reads report them.
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
        locator = ""
        while True:
            result = self._bulk_results(object, job_id, locator)
            records = csv_records(str(result.get("records") or ""), convert)
            for record in records:
                if record.get(MODSTAMP) and record.get("Id"):
                    position = Cursor(parse_salesforce_datetime(str(record[MODSTAMP])), str(record["Id"]))
                    newest = position if newest is None else max(newest, position)
            if records:
                yield Page(object=object, records=records)
            locator = str(result.get("locator") or "")
            if not locator or locator == "null":
                break
        yield Page(object=object, cursor=newest)

    def _bulk_results(self, object: str, job_id: str, locator: str) -> Any:
        return self._call("read", f"bulk results {object}", lambda sf: _bulk_client(sf, object).get_query_results(
            job_id, locator, max_records=BULK_PAGE))

    def _query_more(self, kind: str, context: str, next_url: str, headers: dict[str, str]) -> Any:
        return self._call(kind, context, lambda sf: sf.query_more(
            next_url, identifier_is_url=True, headers=headers, timeout=self.timeout))

    @staticmethod
    def _page(object: str, rows: list[dict[str, Any]], previous: Cursor | None) -> Page:
        page = Page(object=object, cursor=previous)
        for row in rows:
            record = {key: value for key, value in row.items() if key != "attributes"}
            if record.get("IsDeleted"):
                page.deleted_ids.append(str(record["Id"]))
                if record.get("MasterRecordId"):
                    page.merged.append((str(record["Id"]), str(record["MasterRecordId"])))
            else:
                page.records.append(record)
        if rows:
            last = rows[-1]
            stamp = last.get(MODSTAMP)
            if not stamp:
                raise ConfigurationError(f"{object} rows came back without {MODSTAMP}", crm="salesforce",
                                         code="MISSING_CURSOR_FIELD")
            position = Cursor(parse_salesforce_datetime(str(stamp)), str(last["Id"]))
            page.cursor = position if previous is None else max(previous, position)
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
        answer = self._call("deleted", f"deleted {object}", lambda sf: sf.restful(
            f"sobjects/{object}/deleted/", params=params, timeout=self.timeout))
        return [str(row["id"]) for row in (answer or {}).get("deletedRecords", []) if row.get("id")]

    def owners(self) -> list[dict[str, Any]]:
        """Every User (active and inactive), native fields: Id, FirstName, LastName, Email, IsActive..."""
        soql = f"SELECT {', '.join(OWNER_FIELDS)} FROM User ORDER BY Id"
        answer = self._call("owners", "query User", lambda sf: sf.query(soql, timeout=self.timeout))
        users: list[dict[str, Any]] = []
        while True:
            users.extend({k: v for k, v in row.items() if k != "attributes"} for row in answer.get("records") or [])
            next_url = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not next_url:
                return users
            answer = self._query_more("owners", "query User", next_url, {})

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
            answer = self._call("write", context, lambda sf: sf.restful(
                "composite/sobjects", method="DELETE", params=params, headers=AUTO_ASSIGN_OFF, timeout=self.timeout))
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
            answer = self._call("write", context, lambda sf: sf.restful(
                path, method=method, json=body, headers=AUTO_ASSIGN_OFF, timeout=self.timeout))
        return self._results(batch, answer if isinstance(answer, list) else [], context)

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

    # --- schema ------------------------------------------------------------------------------

    def describe(self, object: str) -> dict[str, Any]:
        """The object's describe (``sobjects/{Obj}/describe``)."""
        soql_name(object, what="object")
        answer = self._call("describe", f"describe {object}", lambda sf: sf.restful(
            f"sobjects/{object}/describe", timeout=self.timeout))
        return dict(answer or {})

    def ensure_fields(self, object: str, fields: Sequence[FieldSpec | str]) -> list[str]:
        """Check that ``fields`` exist on ``object``; Relay cannot create Salesforce fields through REST.

        Returns:
            An empty list (nothing is created) when every field exists.

        Raises:
            ConfigurationError: naming every missing field and where to create it.
        """
        specs = [FieldSpec.of(f) for f in fields]
        present = {str(f.get("name", "")).lower() for f in self.describe(object).get("fields", [])}
        missing = [spec.name for spec in specs if spec.name.lower() not in present]
        if missing:
            raise ConfigurationError(
                f"Salesforce {object} lacks field(s) Relay needs: {', '.join(missing)}. Create them in Setup > "
                f"Object Manager > {object} > Fields & Relationships (Relay cannot create fields through the REST API).",
                crm="salesforce", code="MISSING_FIELDS", fields=missing, context=f"connection {self.connection}",
            )
        return []

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def _bulk_client(sf: Salesforce, object: str) -> Any:
    """simple-salesforce's Bulk 2.0 client for ``object`` (its step-by-step calls, so each is retried alone)."""
    return getattr(sf.bulk2, object)._client
