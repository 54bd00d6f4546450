"""Bulk API 2.0: ingest jobs (CSV upload, processing, result files) and query jobs (paged CSV).

Ingest jobs are processed synchronously when the client closes them
(``state: UploadComplete``); the PATCH answer still says ``UploadComplete`` and
the next ``GET`` says ``JobComplete``, the order simple-salesforce polls in.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from crm_sandbox.common import FaultInjector, call_counter
from crm_sandbox.ids import is_salesforce_id, object_for_id, to_id18
from crm_sandbox.salesforce import describe as schema
from crm_sandbox.salesforce import soql
from crm_sandbox.salesforce.errors import RecordError, SalesforceError, bad_request, not_found
from crm_sandbox.salesforce.http import Ctx, Router, json_answer, read_json
from crm_sandbox.salesforce.rest import RestApi, lock_error
from crm_sandbox.salesforce.state import Org, Record, Write
from crm_sandbox.salesforce.values import ValueProblem, bulk_datetime, coerce, format_datetime

DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "BACKQUOTE": "`", "CARET": "^"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
CHUNK = 200


def _job_error(message: str, code: str = "INVALIDJOB", status: int = HTTPStatus.BAD_REQUEST) -> SalesforceError:
    return SalesforceError(status, code, message)


@dataclass
class Job:
    """One Bulk API 2.0 job (ingest or query)."""

    id: str
    kind: str  # ingest | query
    operation: str
    object: str
    created_by: str
    created: str
    modstamp: str
    version: str
    state: str = "Open"
    external_id: str | None = None
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    data: list[str] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    columns: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    closed_seen: bool = False

    def info(self) -> dict[str, Any]:
        """The job as ``GET jobs/{kind}/{id}`` answers it."""
        state = self.state
        if state == "UploadComplete" and self.closed_seen:
            state = "JobComplete" if self.error_message is None else "Failed"
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created,
            "systemModstamp": self.modstamp,
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "jobType": "V2Ingest" if self.kind == "ingest" else "V2Query",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
            "retries": 0,
            "totalProcessingTime": 0,
        }
        if self.kind == "ingest":
            body["externalIdFieldName"] = self.external_id
            body["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
            body["numberRecordsProcessed"] = self.processed
            body["numberRecordsFailed"] = self.failed
            body["apiActiveProcessingTime"] = 0
            body["apexProcessingTime"] = 0
        else:
            body["numberRecordsProcessed"] = len(self.rows)
        if self.error_message:
            body["errorMessage"] = self.error_message
        return body


def _csv_text(job: Job, header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITERS[job.delimiter], lineterminator=LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) == 28 and value.endswith("+0000") and value[10] == "T":
        return bulk_datetime(value)
    return str(value)


class BulkApi:
    """The ``jobs/ingest`` and ``jobs/query`` resources."""

    def __init__(self, org: Org, faults: FaultInjector, rest: RestApi) -> None:
        self.org = org
        self.faults = faults
        self.rest = rest
        self.jobs: dict[str, Job] = {}

    def register(self, router: Router) -> None:
        """Add the Bulk API 2.0 resources to ``router``."""
        router.add(r"jobs/(?P<kind>ingest|query)", POST=self.create, GET=self.list_jobs)
        router.add(r"jobs/(?P<kind>ingest|query)/(?P<job_id>\w+)", GET=self.get, PATCH=self.patch, DELETE=self.delete)
        router.add(r"jobs/ingest/(?P<job_id>\w+)/batches", PUT=self.upload)
        router.add(r"jobs/ingest/(?P<job_id>\w+)/(?P<which>successfulResults|failedResults|unprocessedrecords)", GET=self.results)
        router.add(r"jobs/query/(?P<job_id>\w+)/results", GET=self.query_results)

    def _job(self, kind: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise not_found("The requested resource does not exist")
        return job

    async def list_jobs(self, ctx: Ctx, kind: str) -> Response:
        records = [job.info() for job in self.jobs.values() if job.kind == kind]
        return json_answer({"done": True, "records": records, "nextRecordsUrl": None})

    async def create(self, ctx: Ctx, kind: str) -> Response:
        body = await read_json(ctx.request)
        if not isinstance(body, dict):
            raise _job_error("The request body must be a JSON object")
        line_ending = body.get("lineEnding", "LF")
        delimiter = body.get("columnDelimiter", "COMMA")
        if line_ending not in LINE_ENDINGS:
            raise _job_error(f"Invalid lineEnding: {line_ending} (LF or CRLF)")
        if delimiter not in DELIMITERS:
            raise _job_error(f"Invalid columnDelimiter: {delimiter} ({', '.join(DELIMITERS)})")
        if body.get("contentType", "CSV") != "CSV":
            raise _job_error(f"Invalid contentType: {body.get('contentType')} (only CSV)")
        stamp = format_datetime(self.org.now())
        job_id = self.org.new_id("750")
        operation = body.get("operation")
        if kind == "ingest":
            sobj = schema.sobject(str(body.get("object", "")))
            if sobj is None:
                raise _job_error(f"Unable to find object: {body.get('object')}", "NOT_FOUND" if body.get("object") else "INVALIDJOB")
            if operation not in OPERATIONS:
                raise _job_error(f"Invalid operation: {operation} (one of {', '.join(OPERATIONS)})")
            external_id = body.get("externalIdFieldName")
            if operation == "upsert":
                found = sobj.field(str(external_id or ""))
                if found is None or not (found.external_id or found.name == "Id"):
                    raise _job_error(f"The externalIdFieldName is not a valid external id field on {sobj.name}: {external_id}")
                external_id = found.name
            job = Job(job_id, "ingest", operation, sobj.name, ctx.user_id, stamp, stamp, ctx.version,
                      external_id=external_id, line_ending=line_ending, delimiter=delimiter)
        else:
            if operation not in ("query", "queryAll"):
                raise _job_error(f"Invalid operation: {operation} (query or queryAll)")
            text = body.get("query")
            if not isinstance(text, str):
                raise _job_error("The query is required for a query job")
            try:
                query, matched = self.rest.run(text, operation == "queryAll")
            except soql.SoqlError as exc:
                raise bad_request(exc.error_code, exc.message) from None
            if query.counts:
                raise bad_request("INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0 query jobs")
            job = Job(job_id, "query", operation, query.sobject.name, ctx.user_id, stamp, stamp, ctx.version,
                      state="UploadComplete", line_ending=line_ending, delimiter=delimiter)
            job.columns = soql.flat_columns(query.fields)
            getters = [soql._getter(path, self.org.lookup) for path in query.fields]
            with self.org.lock:
                job.rows = [[_csv_cell(get(rec)) for get in getters] for rec in matched]
            call_counter(ctx.request.scope).read = len(job.rows)
        self.jobs[job_id] = job
        call_counter(ctx.request.scope).kind = f"bulk_{kind}"
        return json_answer(job.info())

    async def get(self, ctx: Ctx, kind: str, job_id: str) -> Response:
        job = self._job(kind, job_id)
        if job.state == "UploadComplete":
            job.closed_seen = True
        return json_answer(job.info())

    async def delete(self, ctx: Ctx, kind: str, job_id: str) -> Response:
        job = self._job(kind, job_id)
        del self.jobs[job.id]
        return Response(status_code=HTTPStatus.NO_CONTENT)

    async def upload(self, ctx: Ctx, job_id: str) -> Response:
        job = self._job("ingest", job_id)
        if job.state != "Open":
            raise _job_error(f"Job {job.id} is not open for uploads (state {job.state})", "INVALIDJOBSTATE", HTTPStatus.CONFLICT)
        raw = await ctx.request.body()
        try:
            job.data.append(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise _job_error("The CSV data must be UTF-8", "INVALIDBATCH") from None
        return Response(status_code=HTTPStatus.CREATED)

    async def patch(self, ctx: Ctx, kind: str, job_id: str) -> Response:
        job = self._job(kind, job_id)
        body = await read_json(ctx.request)
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted":
            if job.state in ("JobComplete", "Failed") or job.closed_seen:
                raise _job_error(f"Job {job.id} is already complete", "INVALIDJOBSTATE", HTTPStatus.CONFLICT)
            job.state = "Aborted"
            return json_answer(job.info())
        if kind != "ingest" or state != "UploadComplete":
            raise _job_error(f"Invalid state change to {state!r}", "INVALIDJOBSTATE")
        if job.state != "Open":
            raise _job_error(f"Job {job.id} is not open (state {job.state})", "INVALIDJOBSTATE", HTTPStatus.CONFLICT)
        job.state = "UploadComplete"
        self._process(ctx, job)
        counter = call_counter(ctx.request.scope)
        counter.written, counter.kind = job.processed - job.failed, "bulk_ingest"
        return json_answer(job.info())

    # ------------------------------------------------------------------ processing
    def _rows(self, job: Job) -> tuple[list[str], list[list[str]]]:
        header: list[str] = []
        rows: list[list[str]] = []
        for chunk in job.data:
            reader = csv.reader(io.StringIO(chunk, newline=""), delimiter=DELIMITERS[job.delimiter])
            lines = [line for line in reader if line]
            if not lines:
                continue
            if not header:
                header = lines[0]
            elif lines[0] != header:
                raise ValueError("InvalidBatch : all uploads of a job must share the same header row")
            rows.extend(lines[1:])
        if not header:
            raise ValueError("InvalidBatch : no data uploaded")
        return header, rows

    def _process(self, ctx: Ctx, job: Job) -> None:
        sobj = schema.SOBJECTS[job.object]
        try:
            header, rows = self._rows(job)
        except (ValueError, csv.Error) as exc:
            job.error_message = str(exc)
            return
        fields = []
        for name in header:
            found = sobj.field(name.strip())
            if found is None:
                job.error_message = f"InvalidBatch : Field name not found : {name}"
                return
            fields.append(found)
        job.columns = header
        writes: list[tuple[list[str], Write]] = []
        for row in rows:
            write = self._write(job, sobj, fields, row)
            if write.fail is None and self.faults.record_fails(ctx.path):
                write.fail = lock_error(write.record_id)
            writes.append((row, write))
        for start in range(0, len(writes), CHUNK):
            chunk = writes[start : start + CHUNK]
            results = self.org.save([w for _, w in chunk], user_id=ctx.user_id, auto_assign="FALSE")
            for (row, write), result in zip(chunk, results, strict=True):
                job.processed += 1
                if result.success:
                    job.successes.append([result.id or "", "true" if result.created or write.kind == "create" else "false", *row])
                else:
                    job.failed += 1
                    error = result.errors[0]
                    message = f"{error['statusCode']}:{error['message']}:{','.join(error['fields'])} --"
                    job.failures.append([write.record_id or "", message, *row])

    def _write(self, job: Job, sobj: schema.SObjectType, fields: list[schema.Field], row: list[str]) -> Write:
        values: Record = {}
        problem: RecordError | None = None
        for field_def, cell in zip(fields, row, strict=False):
            if cell == "":
                continue
            if cell == "#N/A":
                values[field_def.name] = None
                continue
            try:
                values[field_def.name] = coerce(field_def, cell)
            except ValueProblem:
                problem = problem or RecordError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{field_def.label}: value not of required type: {cell}",
                    [field_def.name],
                )
        if len(row) != len(fields):
            problem = RecordError("INVALID_FIELD", f"the row has {len(row)} columns, the header {len(fields)}", [])
        operation = "delete" if job.operation in ("delete", "hardDelete") else job.operation
        record_id = values.pop("Id", None)
        if operation == "insert":
            write = Write("create", sobj, values)
            if record_id:
                problem = problem or RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
        elif operation == "upsert" and job.external_id != "Id":
            write = Write("upsert", sobj, values, ext_field=job.external_id, ext_value=values.get(job.external_id or ""))
            if not write.ext_value:
                problem = problem or RecordError("MISSING_ARGUMENT", f"{job.external_id} not specified", [])
        else:
            kind = "update" if operation in ("update", "upsert") else "delete"
            if not record_id and operation == "upsert":
                write = Write("create", sobj, values)
            else:
                valid = isinstance(record_id, str) and is_salesforce_id(record_id) and object_for_id(record_id) == sobj.name
                write = Write(kind, sobj, values if kind == "update" else {}, to_id18(record_id) if valid and record_id else record_id)
                if not record_id:
                    problem = problem or RecordError("MISSING_ARGUMENT", "Id not specified in an update call", [])
                elif not valid:
                    problem = problem or RecordError("MALFORMED_ID", f"invalid record id: {record_id}", ["Id"])
        write.fail = problem
        return write

    async def results(self, ctx: Ctx, job_id: str, which: str) -> Response:
        job = self._job("ingest", job_id)
        if which == "successfulResults":
            text = _csv_text(job, ["sf__Id", "sf__Created", *job.columns], job.successes)
        elif which == "failedResults":
            text = _csv_text(job, ["sf__Id", "sf__Error", *job.columns], job.failures)
        else:
            text = _csv_text(job, job.columns, job.unprocessed)
        return Response(text, HTTPStatus.OK, media_type="text/csv")

    async def query_results(self, ctx: Ctx, job_id: str) -> Response:
        job = self._job("query", job_id)
        params = ctx.request.query_params
        start = 0
        locator = params.get("locator")
        if locator and locator != "null":
            try:
                start = int(base64.b64decode(locator.encode(), validate=True).decode())
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise bad_request("INVALID_LOCATOR", f"Invalid locator: {locator}") from None
            if start < 0 or start > len(job.rows):
                raise bad_request("INVALID_LOCATOR", f"Invalid locator: {locator}")
        try:
            max_records = int(params.get("maxRecords") or 0)
        except ValueError:
            raise bad_request("INVALID_PARAMETER", f"maxRecords must be a positive integer, got {params.get('maxRecords')}") from None
        end = len(job.rows) if max_records <= 0 else min(start + max_records, len(job.rows))
        page = job.rows[start:end]
        next_locator = base64.b64encode(str(end).encode()).decode() if end < len(job.rows) else "null"
        counter = call_counter(ctx.request.scope)
        counter.read, counter.kind = len(page), "bulk_query"
        return Response(
            _csv_text(job, job.columns, page),
            HTTPStatus.OK,
            headers={"Sforce-NumberOfRecords": str(len(page)), "Sforce-Locator": next_locator},
            media_type="text/csv",
        )
