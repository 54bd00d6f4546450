"""The HubSpot adapter, on hubspot-api-client (CRM v3 objects, search, properties, owners; v4 associations).

* Full reads page ``GET /crm/v3/objects/{type}`` (100 per page) and a second pass
  with ``archived=true`` for deletions; the checkpoint moves only at the end,
  because that listing goes in id order, not modification order.
* Incremental reads use the search API sorted by ``hs_lastmodifieddate``
  ascending, in windows that restart from the last timestamp seen before the
  10,000-result cap, re-reading a small overlap because search lags writes.
  Searches are throttled to HubSpot's few-per-second limit.
* Writes use the batch endpoints, 100 inputs per call; 207 multi-status answers
  are matched back to the ops. Tasks are linked to contacts in the create input.
* Records travel flat: ``id``, ``archived``, ``createdAt``, ``updatedAt`` and the
  properties (all strings), as ``mappings/hubspot.yaml`` expects.
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

from connector.adapters._hubspot_results import match_results, trace_id
from connector.adapters._sdk_errors import translate_hubspot
from connector.adapters._writing import write_in_batches
from connector.adapters.base import Cursor, FieldSpec, Page, WriteOp, WriteResult
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import ConfigurationError, FatalError, RecordError, record_error
from connector.adapters.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

BATCH_LIMIT = 100
"""Batch endpoints take up to 100 inputs."""
PAGE_LIMIT = 100
"""List and search pages: 100 records."""
SEARCH_CAP = 10_000
"""Search stops at 10,000 results per query; deeper ``after`` answers 400."""
MODIFIED = "hs_lastmodifieddate"
MERGED = "hs_merged_object_ids"
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


def parse_hubspot_datetime(value: Any) -> datetime | None:
    """Read a HubSpot timestamp (ISO-8601 or milliseconds since the epoch) as aware UTC; None if empty."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a HubSpot timestamp: {value!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(value: datetime) -> str:
    """A HubSpot filter value for ``value``: milliseconds since the epoch, as a string."""
    if value.tzinfo is None:
        raise ValueError(f"HubSpot filter datetimes must be timezone-aware, got naive {value!r}")
    return str((value - _EPOCH) // timedelta(milliseconds=1))


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """A v3 record as one flat dict: id, archived, createdAt, updatedAt (archivedAt) + properties."""
    flat: dict[str, Any] = {key: record[key] for key in ("id", "archived", "createdAt", "updatedAt", "archivedAt") if key in record}
    flat.update(record.get("properties") or {})
    flat["id"] = str(record.get("id"))
    return flat


def merged_pairs(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(merged-away id, surviving id) pairs from a record's ``hs_merged_object_ids`` (``"12;34"``)."""
    raw = (record.get("properties") or {}).get(MERGED) or ""
    return [(old.strip(), str(record["id"])) for old in str(raw).split(";") if old.strip()]


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
        timeout: Seconds per HTTP call.
        retry: The retry policy (6 attempts, waits capped at 30 s by default).
        calls: Where API calls are counted (a new counter when None).
        search_overlap: How far before the cursor an incremental read starts again, because
            search lags writes; records in the overlap are delivered again.
        searches_per_second: Client-side cap on search calls.
        search_cap: Results one search query may page through (HubSpot: 10,000).
        write_batch_size: Inputs per batch call (1..100, default 100).
    """

    crm = "hubspot"
    reads_deletions = False  # search never returns archived records: call read_deleted

    def __init__(
        self,
        connection: str,
        base_url: str,
        access_token: str,
        *,
        timeout: float = 30,
        retry: RetryPolicy | None = None,
        calls: ApiCallCounter | None = None,
        search_overlap: timedelta = timedelta(minutes=2),
        searches_per_second: float = 4.0,
        search_cap: int = SEARCH_CAP,
        write_batch_size: int = BATCH_LIMIT,
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
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.calls = calls or ApiCallCounter()
        self.search_overlap = search_overlap
        self.search_cap = search_cap
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

    # --- plumbing ----------------------------------------------------------------------------

    def _call(self, kind: str, context: str, fn: Callable[[], Any]) -> Any:
        """Make one SDK call (raw answer) under the retry policy; the parsed JSON (None when empty)."""

        def once() -> Any:
            if kind == "search":
                self.throttle.wait()
            response = fn()
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
                raise ConfigurationError(f"HubSpot answered non-JSON: {data[:200]!r}", crm="hubspot",
                                         status=getattr(response, "status", None), context=context) from None

        try:
            return call_with_retry(once, calls=self.calls, kind=kind, translate=translate_hubspot, policy=self.retry,
                                   context=context)
        except RecordError as error:
            if kind == "write":
                raise
            # Outside a write, a refused request is Relay's mistake (object type, property, filter), not a record's.
            raise ConfigurationError(error.message, crm="hubspot", status=error.status, code=error.code,
                                     fields=error.fields, context=error.context) from error

    def _raw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout}

    # --- reads -------------------------------------------------------------------------------

    def read(
        self, object: str, fields: Sequence[str], cursor: Cursor | None, *, page_size: int | None = None
    ) -> Iterator[Page]:
        """Records of ``object`` modified after ``cursor`` (every record when None).

        Args:
            object: ``contacts``, ``companies``, ``deals``, ``tasks``...
            fields: Properties to read (hs_lastmodifieddate and hs_merged_object_ids are added).
            cursor: Where the last committed page ended; None for a full resync.
            page_size: Records per page, 1..100 (default 100).

        Yields:
            Pages. A full read yields live pages, then archived ones (``deleted_ids``), then an
            empty page carrying the checkpoint. An incremental read's pages each carry one.
            ``owners`` (not a CRM object) comes whole, archived owners included, without a cursor.
        """
        size = PAGE_LIMIT if page_size is None else page_size
        if not 1 <= size <= PAGE_LIMIT:
            raise ConfigurationError(f"connection {self.connection!r}: HubSpot page size must be 1..{PAGE_LIMIT}, "
                                     f"got {size}", crm="hubspot", code="INVALID_PAGE_SIZE")
        kind = object_type(object)
        if kind == "owners":  # not a CRM object: a small list, read whole every time
            yield Page(object=kind, records=self.owners())
            return
        properties = list(dict.fromkeys([*fields, MODIFIED, MERGED]))
        if cursor is None:
            yield from self._full_read(kind, properties, size)
        else:
            yield from self._incremental_read(kind, properties, cursor, size)

    def _list_pages(self, kind: str, properties: list[str], size: int, archived: bool) -> Iterator[list[dict[str, Any]]]:
        after: str | None = None
        context = f"list {kind}" + (" (archived)" if archived else "")
        while True:
            params: dict[str, Any] = {"limit": size, "properties": properties, "archived": archived}
            if after:
                params["after"] = after
            answer = self._call("read", context, partial(self._basic.get_page, kind, **params, **self._raw()))
            yield list((answer or {}).get("results") or [])
            after = (((answer or {}).get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _full_read(self, kind: str, properties: list[str], size: int) -> Iterator[Page]:
        """List every record in id order, then the archived ones, then the checkpoint.

        The listing is live, not a snapshot: a record listed early and changed later in the
        read may carry an older timestamp than the newest one seen. So the checkpoint is the
        newest timestamp seen, but no later than when the read started (less the overlap).
        """
        started = Cursor(datetime.now(UTC) - self.search_overlap, "")
        newest: Cursor | None = None
        for rows in self._list_pages(kind, properties, size, archived=False):
            page = Page(object=kind)
            for row in rows:
                page.records.append(flatten(row))
                page.merged.extend(merged_pairs(row))
                position = self._position(row)
                if position is not None and (newest is None or position > newest):
                    newest = position
            if page.records:
                yield page
        for rows in self._list_pages(kind, [MODIFIED], size, archived=True):
            if rows:
                yield Page(object=kind, deleted_ids=[str(row["id"]) for row in rows])
        yield Page(object=kind, cursor=None if newest is None else min(newest, started))

    @staticmethod
    def _position(row: dict[str, Any]) -> Cursor | None:
        stamp = (row.get("properties") or {}).get(MODIFIED) or row.get("updatedAt")
        when = parse_hubspot_datetime(stamp)
        return None if when is None else Cursor(when, str(row["id"]))

    def _incremental_read(self, kind: str, properties: list[str], cursor: Cursor, size: int) -> Iterator[Page]:
        """Search windows of ``hs_lastmodifieddate >= start``, sorted ascending, restarted before the cap.

        Search sorts by one property only, so records sharing a timestamp come in no promised
        order. A page's checkpoint therefore only covers timestamps the read has moved past
        (every record at them delivered); the last page's covers everything. A resume may
        deliver a few records again, never skip one.
        """
        newest = cursor  # the greatest position delivered
        safe = cursor  # every record at or before this position has been delivered
        checkpointed = cursor  # the cursor of the last page yielded
        window_start = cursor.last_modified - self.search_overlap
        seen_at_start: set[str] = set()  # ids delivered whose timestamp is the window's start
        while True:
            fetched, after, progressed = 0, None, False
            group_ts: datetime | None = None  # the timestamp being read, and the largest position in it
            group_top: Cursor | None = None
            group_ids: set[str] = set()
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [{"filters": [
                        {"propertyName": MODIFIED, "operator": "GTE", "value": to_epoch_ms(window_start)}]}],
                    "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
                    "properties": properties,
                    "limit": size,
                }
                if after:
                    body["after"] = after
                answer = self._call("search", f"search {kind}", partial(
                    self._search.do_search, kind, public_object_search_request=body, **self._raw())) or {}
                rows = list(answer.get("results") or [])
                fetched += len(rows)
                page = Page(object=kind)
                for row in rows:
                    position = self._position(row)
                    if position is None:
                        continue
                    if group_ts is None or position.last_modified != group_ts:
                        if group_top is not None and group_top > safe:
                            safe = group_top  # moved past group_ts: all of it is delivered
                        group_ts, group_top, group_ids = position.last_modified, None, set()
                    group_ids.add(position.last_id)
                    group_top = position if group_top is None else max(group_top, position)
                    if position.last_modified == window_start and position.last_id in seen_at_start:
                        continue
                    if position.last_modified == cursor.last_modified and position <= cursor:
                        continue  # delivered before the checkpoint
                    progressed = True
                    page.records.append(flatten(row))
                    page.merged.extend(merged_pairs(row))
                    newest = max(newest, position)
                after = ((answer.get("paging") or {}).get("next") or {}).get("after")
                page.cursor = safe if after else newest
                if page.records or page.cursor > checkpointed:
                    checkpointed = page.cursor
                    yield page
                if not after:
                    return
                if fetched + size > self.search_cap:
                    break  # the next page would pass the cap: start a new window
            if group_ts is None:
                return
            if not progressed and group_ts == window_start:
                raise FatalError(
                    f"more than {self.search_cap} {kind} share {MODIFIED} {group_ts.isoformat()}; search cannot page "
                    "past them", crm="hubspot", code="SEARCH_WINDOW_STUCK", context=f"search {kind}")
            seen_at_start = group_ids | (seen_at_start if group_ts == window_start else set())
            window_start = group_ts

    def read_deleted(self, object: str, since: datetime) -> list[str]:
        """Ids of ``object`` records archived since ``since`` (the ``archived=true`` listing)."""
        if since.tzinfo is None:
            raise ValueError(f"read_deleted needs an aware datetime, got naive {since!r}")
        kind = object_type(object)
        ids: list[str] = []
        for rows in self._list_pages(kind, [MODIFIED], PAGE_LIMIT, archived=True):
            for row in rows:
                when = parse_hubspot_datetime(row.get("archivedAt") or row.get("updatedAt"))
                if when is None or when >= since:
                    ids.append(str(row["id"]))
        return ids

    def owners(self) -> list[dict[str, Any]]:
        """Every owner as the owners API sends it (id, email, firstName, lastName, archived...), archived included."""
        owners: dict[str, dict[str, Any]] = {}
        for archived in (False, True):
            after: str | None = None
            while True:
                params: dict[str, Any] = {"limit": PAGE_LIMIT, "archived": archived}
                if after:
                    params["after"] = after
                answer = self._call("owners", "list owners", partial(self._owners.get_page, **params, **self._raw())) or {}
                for owner in answer.get("results") or []:
                    owner = dict(owner)
                    owner.setdefault("archived", archived)
                    owners.setdefault(str(owner.get("id")), owner)
                after = ((answer.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
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
            answer = self._call("write", context, lambda: self._batch.create(
                kind, {"inputs": inputs}, **self._raw()))
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

    # --- schema ------------------------------------------------------------------------------

    def ensure_fields(self, object: str, fields: Sequence[FieldSpec | str]) -> list[str]:
        """Create the properties of ``fields`` that ``object`` lacks (in group ``relay``); returns their names."""
        kind = object_type(object)
        specs = [FieldSpec.of(f) for f in fields]
        answer = self._call("schema", f"properties {kind}", lambda: self._properties.get_all(kind, **self._raw()))
        existing = {str(p.get("name")): p for p in (answer or {}).get("results") or []}
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

    def close(self) -> None:
        """Nothing to release: the SDK's pools close with the process."""


def _normalize(op: WriteOp) -> WriteOp:
    """HubSpot takes every property value as a string; the object type in its plural form."""
    return WriteOp(
        object=object_type(op.object), operation=op.operation, fields={k: _hs_value(v) for k, v in op.fields.items()},
        crm_id=op.crm_id, idempotency_key=op.idempotency_key, external_id_field=op.external_id_field,
        associations=op.associations,
    )
