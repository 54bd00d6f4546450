"""The REST resources: query, sObject rows, upsert, describe, deleted/updated, limits, collections."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from crm_sandbox.common import FaultInjector, call_counter
from crm_sandbox.ids import is_salesforce_id, object_for_id, to_id18
from crm_sandbox.salesforce import describe as schema
from crm_sandbox.salesforce import soql
from crm_sandbox.salesforce.describe import SOBJECTS, SObjectType
from crm_sandbox.salesforce.errors import RecordError, SalesforceError, bad_request, not_found
from crm_sandbox.salesforce.http import Ctx, Router, json_answer, read_json
from crm_sandbox.salesforce.records import deserialize
from crm_sandbox.salesforce.state import (
    DELETED_WINDOW,
    Cursor,
    Org,
    Record,
    SaveResult,
    Write,
)
from crm_sandbox.salesforce.values import format_datetime, parse_datetime

MAX_BATCH = 2000
MIN_BATCH = 200
MAX_COLLECTION = 200
_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def lock_error(record_id: str | None) -> RecordError:
    """The per-record error of an injected partial failure (a row lock timeout)."""
    return RecordError(
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {record_id or ''}".rstrip(": "),
        [],
    )


def record_json(obj: str, rec: Record, version: str, fields: list[str] | None = None) -> dict[str, Any]:
    """A record as ``GET sobjects/{Obj}/{id}`` answers it (every field, or the fields asked)."""
    names = fields if fields is not None else list(SOBJECTS[obj].fields)
    out: dict[str, Any] = {"attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{rec['Id']}"}}
    for name in names:
        out[name] = rec.get(name)
    return out


def _parse_when(value: str | None, name: str) -> datetime:
    if not value:
        raise bad_request("MISSING_ARGUMENT", f"The '{name}' parameter is required (ISO 8601 datetime)")
    parsed = parse_datetime(value.replace(" ", "+"))
    if parsed is None:
        raise bad_request("INVALID_REPLICATION_DATE", f"'{name}' is not a valid ISO 8601 datetime: {value}")
    return parsed


class RestApi:
    """The REST resources of the sandbox org, registered on a :class:`Router`.

    Args:
        org: the org.
        faults: the fault injector (per-record failures of collections).
        daily_limit: the daily API allocation reported by ``limits``.
        usage: returns the API calls used today.
    """

    def __init__(self, org: Org, faults: FaultInjector, daily_limit: int, usage: Callable[[], int]) -> None:
        self.org = org
        self.faults = faults
        self.daily_limit = daily_limit
        self.usage = usage
        self.metadata_modified = org.now().replace(microsecond=0)
        """When the org's metadata last changed (never after start: the schema is fixed)."""

    def register(self, router: Router) -> None:
        """Add every REST resource to ``router``."""
        router.add("", GET=self.resources)
        router.add("limits", GET=self.limits)
        router.add(r"(?P<kind>query|queryAll)", GET=self.query)
        router.add(r"(?P<kind>query|queryAll)/(?P<locator>[A-Za-z0-9]+)-(?P<offset>\d+)", GET=self.query_more)
        router.add("sobjects", GET=self.global_describe)
        router.add(r"sobjects/(?P<obj>\w+)", GET=self.object_info, POST=self.create)
        router.add(r"sobjects/(?P<obj>\w+)/describe", GET=self.describe)
        router.add(r"sobjects/(?P<obj>\w+)/deleted", GET=self.deleted)
        router.add(r"sobjects/(?P<obj>\w+)/updated", GET=self.updated)
        router.add(r"sobjects/(?P<obj>\w+)/(?P<rid>[^/]+)", GET=self.read, PATCH=self.update, DELETE=self.delete, POST=self.post_row)
        router.add(r"sobjects/(?P<obj>\w+)/(?P<field>\w+)/(?P<value>[^/]+)", GET=self.read_by_external_id, PATCH=self.upsert, POST=self.upsert)
        router.add("composite/sobjects", POST=self.collection_create, PATCH=self.collection_update, DELETE=self.collection_delete)
        router.add(r"composite/sobjects/(?P<obj>\w+)", GET=self.collection_read, POST=self.collection_read_post)
        router.add(r"composite/sobjects/(?P<obj>\w+)/(?P<field>\w+)", PATCH=self.collection_upsert)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _object(name: str) -> SObjectType:
        obj = schema.sobject(name)
        if obj is None:
            raise not_found("The requested resource does not exist", "NOT_FOUND")
        return obj

    # ------------------------------------------------------------------ misc resources
    async def resources(self, ctx: Ctx) -> Response:
        base = f"/services/data/v{ctx.version}"
        names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs/ingest", "jobs/query", "search", "tooling", "recent"]
        return json_answer({name.split("/")[-1] if "/" not in name else name: f"{base}/{name}" for name in names})

    async def limits(self, ctx: Ctx) -> Response:
        used = self.usage()
        return json_answer({
            "DailyApiRequests": {"Max": self.daily_limit, "Remaining": max(self.daily_limit - used, 0)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
        })

    def _metadata_unchanged(self, ctx: Ctx) -> bool:
        """True when ``If-Modified-Since`` names a time at or after the last metadata change.

        Describe Global and sObject Describe answer 304 with no body then:
        https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/sobject_describe_with_ifmodified_header.htm
        An unreadable date is ignored, as HTTP servers do.
        """
        raw = ctx.request.headers.get("if-modified-since")
        if not raw:
            return False
        try:
            since = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return since >= self.metadata_modified

    async def global_describe(self, ctx: Ctx) -> Response:
        if self._metadata_unchanged(ctx):
            return Response(status_code=HTTPStatus.NOT_MODIFIED)
        return json_answer({
            "encoding": "UTF-8",
            "maxBatchSize": MAX_COLLECTION,
            "sobjects": [schema.basic_info(obj, ctx.version) for obj in SOBJECTS.values()],
        })

    async def object_info(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        with self.org.lock:
            recent = [
                record_json(sobj.name, rec, ctx.version, ["Id", "Name"] if "Name" in sobj.fields else ["Id"])
                for rec in list(self.org.live(sobj.name))[-5:]
            ]
        return json_answer({"objectDescribe": schema.basic_info(sobj, ctx.version), "recentItems": recent})

    async def describe(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        if self._metadata_unchanged(ctx):
            return Response(status_code=HTTPStatus.NOT_MODIFIED)
        return json_answer(schema.describe(sobj, ctx.version))

    # ------------------------------------------------------------------ query
    def _batch_size(self, ctx: Ctx) -> int:
        header = ctx.request.headers.get("sforce-query-options", "")
        match = _BATCH_RE.search(header)
        if not match:
            return MAX_BATCH
        return min(max(int(match.group(1)), MIN_BATCH), MAX_BATCH)

    def run(self, text: str, include_deleted: bool) -> tuple[soql.Query, list[Record]]:
        """Parse ``text`` and evaluate it: the matching records in answer order."""
        org = self.org
        query = soql.parse(text, org.now())
        predicate = soql.compile_where(query.where, org.lookup)
        with org.lock:
            matched = [rec for rec in org.live(query.sobject.name, include_deleted) if predicate(rec)]
            if query.order:
                matched = soql.sort_records(matched, query.order, org.lookup)
        start = query.offset or 0
        end = start + query.limit if query.limit is not None else None
        return query, matched[start:end]

    async def query(self, ctx: Ctx, kind: str) -> Response:
        text = ctx.request.query_params.get("q")
        if text is None or not text.strip():
            raise bad_request("MALFORMED_QUERY", "A query string has to be specified")
        include_deleted = kind == "queryAll"
        try:
            query, matched = self.run(text, include_deleted)
        except soql.SoqlError as exc:
            raise bad_request(exc.error_code, exc.message) from None
        counter = call_counter(ctx.request.scope)
        counter.kind = "query"
        if query.counts:
            if query.is_count_only:
                return json_answer({"totalSize": len(matched), "done": True, "records": []})
            row: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for index, count in enumerate(query.counts):
                assert count.path is not None
                getter = soql._getter(count.path, self.org.lookup)
                row[count.alias or f"expr{index}"] = sum(1 for rec in matched if getter(rec) is not None)
            counter.read = 1
            return json_answer({"totalSize": 1, "done": True, "records": [row]})
        batch = self._batch_size(ctx)
        plan = soql.projection_plan(query.fields)
        obj = query.sobject.name
        with self.org.lock:
            page = [soql.render(obj, rec, plan, self.org.lookup, ctx.version) for rec in matched[:batch]]
            body: dict[str, Any] = {"totalSize": len(matched), "done": len(matched) <= batch}
            if len(matched) > batch:
                cursor = Cursor(obj, [rec["Id"] for rec in matched], plan, batch, self.org.now() + self.org.cursor_ttl, include_deleted)
                locator = self.org.add_cursor(cursor)
                body["nextRecordsUrl"] = f"/services/data/v{ctx.version}/{kind}/{locator}-{batch}"
        body["records"] = page
        counter.read = len(page)
        return json_answer(body)

    async def query_more(self, ctx: Ctx, kind: str, locator: str, offset: str) -> Response:
        with self.org.lock:
            cursor = self.org.cursor(locator)
            if cursor is None:
                raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
            start = int(offset)
            if start > len(cursor.ids):
                raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
            ids = cursor.ids[start : start + cursor.batch]
            table = self.org.records[cursor.obj]
            page = [
                soql.render(cursor.obj, table[rid], cursor.plan, self.org.lookup, ctx.version)
                for rid in ids
                if rid in table
            ]
        nxt = start + cursor.batch
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": nxt >= len(cursor.ids)}
        if nxt < len(cursor.ids):
            body["nextRecordsUrl"] = f"/services/data/v{ctx.version}/{kind}/{locator}-{nxt}"
        body["records"] = page
        counter = call_counter(ctx.request.scope)
        counter.kind = "query"
        counter.read = len(page)
        return json_answer(body)

    # ------------------------------------------------------------------ single rows
    @staticmethod
    def _location(ctx: Ctx, sobj: SObjectType, record_id: str | None) -> dict[str, str]:
        """The ``Location`` header of a 201: the new row's path (as Composite shows in ``httpHeaders``)."""
        return {"Location": f"/services/data/v{ctx.version}/sobjects/{sobj.name}/{record_id}"} if record_id else {}

    def _row_id(self, sobj: SObjectType, rid: str) -> str:
        if not is_salesforce_id(rid) or object_for_id(rid) != sobj.name:
            raise not_found(f"Provided external ID field does not exist or is not accessible: {rid}")
        return to_id18(rid)

    def _fields_param(self, ctx: Ctx, sobj: SObjectType) -> list[str] | None:
        raw = ctx.request.query_params.get("fields")
        if raw is None:
            return None
        names = []
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            found = sobj.field(name)
            if found is None:
                raise bad_request(
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{sobj.name}'. If you are attempting to use a custom field, "
                    "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
                    "describe call for the appropriate names.",
                )
            names.append(found.name)
        return names

    async def read(self, ctx: Ctx, obj: str, rid: str) -> Response:
        sobj = self._object(obj)
        record_id = self._row_id(sobj, rid)
        fields = self._fields_param(ctx, sobj)
        with self.org.lock:
            rec = self.org.get(sobj.name, record_id)
            if rec is None:
                raise not_found()
            if rec.get("IsDeleted"):  # in the recycle bin (deleted or merged away): Salesforce says so
                raise not_found("entity is deleted", "ENTITY_IS_DELETED")
            body = record_json(sobj.name, rec, ctx.version, fields)
        counter = call_counter(ctx.request.scope)
        counter.read, counter.kind = 1, "read"
        return json_answer(body)

    def _auto_assign(self, ctx: Ctx) -> str | None:
        return ctx.request.headers.get("sforce-auto-assign")

    def _save_one(self, ctx: Ctx, write: Write) -> SaveResult:
        result = self.org.save([write], user_id=ctx.user_id, auto_assign=self._auto_assign(ctx))[0]
        if not result.success:
            error = result.errors[0]
            status = HTTPStatus.NOT_FOUND if error["statusCode"] == "ENTITY_IS_DELETED" else HTTPStatus.BAD_REQUEST
            raise SalesforceError(status, error["statusCode"], error["message"], error["fields"])
        counter = call_counter(ctx.request.scope)
        counter.written, counter.kind = 1, write.kind
        return result

    async def create(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        values = deserialize(sobj, await read_json(ctx.request))
        if "Id" in values:
            raise bad_request("INVALID_FIELD", "Unable to create/update fields: Id. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", ["Id"])
        result = self._save_one(ctx, Write("create", sobj, values))
        return json_answer({"id": result.id, "success": True, "errors": []}, HTTPStatus.CREATED, self._location(ctx, sobj, result.id))

    async def post_row(self, ctx: Ctx, obj: str, rid: str) -> Response:
        raise SalesforceError(HTTPStatus.METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE")

    async def update(self, ctx: Ctx, obj: str, rid: str) -> Response:
        sobj = self._object(obj)
        record_id = self._row_id(sobj, rid)
        body = await read_json(ctx.request)
        values = deserialize(sobj, body)
        with self.org.lock:
            rec = self.org.get(sobj.name, record_id)
            if rec is None:
                raise not_found()
        self._save_one(ctx, Write("update", sobj, values, record_id))
        return Response(status_code=HTTPStatus.NO_CONTENT)

    async def delete(self, ctx: Ctx, obj: str, rid: str) -> Response:
        sobj = self._object(obj)
        record_id = self._row_id(sobj, rid)
        with self.org.lock:
            rec = self.org.get(sobj.name, record_id)
            if rec is None:
                raise not_found()
        self._save_one(ctx, Write("delete", sobj, {}, record_id))
        return Response(status_code=HTTPStatus.NO_CONTENT)

    def _external_field(self, sobj: SObjectType, name: str) -> str:
        found = sobj.field(name)
        if found is None or not (found.external_id or found.name == "Id"):
            raise not_found(f"Provided external ID field does not exist or is not accessible: {name}")
        return found.name

    async def read_by_external_id(self, ctx: Ctx, obj: str, field: str, value: str) -> Response:
        sobj = self._object(obj)
        name = self._external_field(sobj, field)
        with self.org.lock:
            ids = [to_id18(value)] if name == "Id" and is_salesforce_id(value) else self.org.find_by_external_id(sobj, name, value)
            recs = [r for r in (self.org.get(sobj.name, i) for i in ids) if r is not None and not r.get("IsDeleted")]
        if not recs:
            raise not_found()
        if len(recs) > 1:
            return json_answer([f"/services/data/v{ctx.version}/sobjects/{sobj.name}/{r['Id']}" for r in recs], HTTPStatus.MULTIPLE_CHOICES)
        return json_answer(record_json(sobj.name, recs[0], ctx.version, self._fields_param(ctx, sobj)))

    async def upsert(self, ctx: Ctx, obj: str, field: str, value: str) -> Response:
        sobj = self._object(obj)
        name = self._external_field(sobj, field)
        values = deserialize(sobj, await read_json(ctx.request))
        if name == "Id":
            if not is_salesforce_id(value):
                raise not_found()
            values.pop("Id", None)
            self._save_one(ctx, Write("update", sobj, values, to_id18(value)))
            return json_answer({"id": to_id18(value), "success": True, "errors": [], "created": False})
        body_value = values.get(name)
        if body_value is not None and str(body_value).lower() != value.lower():
            raise bad_request("INVALID_FIELD", f"The {name} field should not be specified in the sobject data.")
        with self.org.lock:
            matches = self.org.find_by_external_id(sobj, name, value)
        if len(matches) > 1:
            return json_answer([f"/services/data/v{ctx.version}/sobjects/{sobj.name}/{rid}" for rid in matches], HTTPStatus.MULTIPLE_CHOICES)
        result = self._save_one(ctx, Write("upsert", sobj, values, ext_field=name, ext_value=value))
        if result.created:
            return json_answer({"id": result.id, "success": True, "errors": [], "created": True}, HTTPStatus.CREATED, self._location(ctx, sobj, result.id))
        return json_answer({"id": result.id, "success": True, "errors": [], "created": False})

    # ------------------------------------------------------------------ replication
    def _window(self, ctx: Ctx) -> tuple[datetime, datetime, datetime]:
        params = ctx.request.query_params
        start = _parse_when(params.get("start"), "start")
        end = _parse_when(params.get("end"), "end")
        now = self.org.now()
        if end <= start:
            raise bad_request("INVALID_REPLICATION_DATE", "end date must be after start date")
        latest = min(end, now).replace(second=0, microsecond=0)
        return start, end, latest

    async def deleted(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        start, end, latest = self._window(ctx)
        earliest = (self.org.now() - DELETED_WINDOW).replace(second=0, microsecond=0)
        if start < earliest:
            raise bad_request(
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be before the earliest date available: {format_datetime(earliest)}",
            )
        lo, hi = format_datetime(start), format_datetime(end)
        with self.org.lock:
            found = [
                {"id": rid, "deletedDate": when}
                for rid, when in self.org.deleted_log[sobj.name]
                if lo <= when <= hi and self.org.records[sobj.name].get(rid, {}).get("IsDeleted")
            ]
        call_counter(ctx.request.scope).read = len(found)
        return json_answer({
            "deletedRecords": found,
            "earliestDateAvailable": format_datetime(earliest),
            "latestDateCovered": format_datetime(latest),
        })

    async def updated(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        start, end, latest = self._window(ctx)
        if start < self.org.now() - timedelta(days=30):
            raise bad_request("INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
        lo, hi = format_datetime(start), format_datetime(end)
        with self.org.lock:
            ids = [rec["Id"] for rec in self.org.live(sobj.name) if lo <= rec["SystemModstamp"] <= hi]
        call_counter(ctx.request.scope).read = len(ids)
        return json_answer({"ids": ids, "latestDateCovered": format_datetime(latest)})

    # ------------------------------------------------------------------ collections
    async def _collection_body(self, ctx: Ctx) -> tuple[list[Any], bool]:
        body = await read_json(ctx.request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be an object with a 'records' list")
        records = body["records"]
        if len(records) > MAX_COLLECTION:
            raise bad_request("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise bad_request("JSON_PARSER_ERROR", f"Cannot deserialize instance of boolean from value {all_or_none!r} (allOrNone)")
        return records, all_or_none

    @staticmethod
    def _typed(raw: Any) -> SObjectType:
        if not isinstance(raw, dict):
            raise bad_request("JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from a non-object value in 'records'")
        attributes = raw.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(type_name, str) or not type_name:
            raise bad_request("INVALID_TYPE", "Must send a concrete entity type.")
        sobj = schema.sobject(type_name)
        if sobj is None:
            raise bad_request("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        return sobj

    def _save_collection(self, ctx: Ctx, writes: list[Write], all_or_none: bool, with_created: bool = False) -> Response:
        for write in writes:
            if write.fail is None and self.faults.record_fails(ctx.path):
                write.fail = lock_error(write.record_id)
        results = self.org.save(writes, user_id=ctx.user_id, all_or_none=all_or_none, auto_assign=self._auto_assign(ctx))
        counter = call_counter(ctx.request.scope)
        counter.written = sum(1 for r in results if r.success)
        counter.kind = "collection"
        return json_answer([r.as_json(with_created) for r in results])

    async def collection_create(self, ctx: Ctx) -> Response:
        records, all_or_none = await self._collection_body(ctx)
        writes = []
        for raw in records:
            sobj = self._typed(raw)
            values = deserialize(sobj, {k: v for k, v in raw.items() if k not in ("attributes",)})
            write = Write("create", sobj, values)
            if "Id" in values:
                write.fail = RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            writes.append(write)
        return self._save_collection(ctx, writes, all_or_none)

    async def collection_update(self, ctx: Ctx) -> Response:
        records, all_or_none = await self._collection_body(ctx)
        writes = []
        for raw in records:
            sobj = self._typed(raw)
            values = deserialize(sobj, {k: v for k, v in raw.items() if k != "attributes"})
            rid = values.pop("Id", None)
            write = Write("update", sobj, values, rid)
            if not rid:
                write.fail = RecordError("MISSING_ARGUMENT", "Id not specified in an update call", [])
            elif not is_salesforce_id(rid) or object_for_id(rid) != sobj.name:
                write.fail = RecordError("MALFORMED_ID", f"{sobj.label} ID: id value of incorrect type: {rid}", ["Id"])
            else:
                write.record_id = to_id18(rid)
            writes.append(write)
        return self._save_collection(ctx, writes, all_or_none)

    async def collection_delete(self, ctx: Ctx) -> Response:
        params = ctx.request.query_params
        ids = [part for part in (params.get("ids") or "").split(",") if part]
        if not ids:
            raise bad_request("MISSING_ARGUMENT", "The 'ids' parameter is required")
        if len(ids) > MAX_COLLECTION:
            raise bad_request("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
        all_or_none = (params.get("allOrNone") or "false").lower() == "true"
        writes = []
        for rid in ids:
            obj_name = object_for_id(rid) if is_salesforce_id(rid) else None
            if obj_name is None or obj_name not in SOBJECTS:
                write = Write("delete", SOBJECTS["Lead"], {}, rid)
                write.fail = RecordError("MALFORMED_ID", f"malformed id {rid}", [])
            else:
                write = Write("delete", SOBJECTS[obj_name], {}, to_id18(rid))
            writes.append(write)
        return self._save_collection(ctx, writes, all_or_none)

    async def collection_upsert(self, ctx: Ctx, obj: str, field: str) -> Response:
        sobj = self._object(obj)
        name = self._external_field(sobj, field)
        records, all_or_none = await self._collection_body(ctx)
        writes = []
        for raw in records:
            typed = self._typed(raw)
            if typed.name != sobj.name:
                raise bad_request("INVALID_TYPE", f"All records must be of type {sobj.name}; found {typed.name}")
            values = deserialize(sobj, {k: v for k, v in raw.items() if k != "attributes"})
            key = values.get(name)
            if name == "Id":
                rid = values.pop("Id", None)
                write = Write("update", sobj, values, to_id18(rid) if rid and is_salesforce_id(rid) else rid)
                if not rid:
                    write = Write("create", sobj, values)
            else:
                write = Write("upsert", sobj, values, ext_field=name, ext_value=key)
                if key is None or key == "":
                    write.fail = RecordError("MISSING_ARGUMENT", f"{name} not specified", [name])
            writes.append(write)
        return self._save_collection(ctx, writes, all_or_none, with_created=True)

    async def collection_read(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        params = ctx.request.query_params
        ids = [part for part in (params.get("ids") or "").split(",") if part]
        return self._collection_rows(ctx, sobj, ids, self._fields_param(ctx, sobj))

    async def collection_read_post(self, ctx: Ctx, obj: str) -> Response:
        sobj = self._object(obj)
        body = await read_json(ctx.request)
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list) or not isinstance(body.get("fields"), list):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be an object with 'ids' and 'fields' lists")
        fields = []
        for name in body["fields"]:
            found = sobj.field(name) if isinstance(name, str) else None
            if found is None:
                raise bad_request("INVALID_FIELD", f"No such column '{name}' on entity '{sobj.name}'.")
            fields.append(found.name)
        return self._collection_rows(ctx, sobj, [str(i) for i in body["ids"]], fields)

    def _collection_rows(self, ctx: Ctx, sobj: SObjectType, ids: list[str], fields: list[str] | None) -> Response:
        if not ids or fields is None:
            raise bad_request("MISSING_ARGUMENT", "The 'ids' and 'fields' parameters are required")
        if len(ids) > 2000:
            raise bad_request("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 2000 records into this call")
        out: list[Any] = []
        with self.org.lock:
            for rid in ids:
                rec = self.org.get(sobj.name, rid) if is_salesforce_id(rid) else None
                out.append(None if rec is None or rec.get("IsDeleted") else record_json(sobj.name, rec, ctx.version, fields))
        call_counter(ctx.request.scope).read = sum(1 for r in out if r)
        return json_answer(out)


def utc_now() -> datetime:
    """Wall-clock time in UTC (used where the org clock is not at hand)."""
    return datetime.now(UTC)
