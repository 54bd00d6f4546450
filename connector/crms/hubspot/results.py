"""Matching a HubSpot batch answer (200/201 or 207 multi-status) back to the ops that were sent.

HubSpot does not promise that ``results`` come back in input order, and a 207
answer puts the failed inputs in ``errors`` with their ids in ``context``. Each
input carries ``objectWriteTraceId`` (``relay-`` and its position); results are matched by that,
then by record id (update, archive) or upsert key, then by position among what is
left. An op nothing answered gets a ``MISSING_RESULT`` error rather than a guess.

Example of a 207 answer (batch update of two contacts, one unknown)::

    {"status": "COMPLETE", "numErrors": 1,
     "results": [{"id": "101", "properties": {...}, ...}],
     "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND",
                 "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
                 "context": {"ids": ["999"]}}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.adapters.base import WriteOp, WriteResult
from connector.adapters.errors import RecordError, parse_error_body, record_error


def trace_id(position: int) -> str:
    """The ``objectWriteTraceId`` of the input at ``position`` of a batch (distinct from any record id)."""
    return f"relay-{position}"


def op_key(op: WriteOp) -> str | None:
    """The value HubSpot echoes for ``op``: the record id, or the upsert key's value."""
    if op.operation == "upsert" and op.external_id_field:
        value = op.fields.get(op.external_id_field)
        return None if value is None else str(value)
    return op.crm_id


def match_results(batch: Sequence[WriteOp], answer: Mapping[str, Any] | None, *, context: str) -> list[WriteResult]:
    """One :class:`WriteResult` per op of ``batch``, from a batch answer (None for 204 archive)."""
    if answer is None:  # archive answers 204 No Content: every input archived
        return [WriteResult(op=op, success=True, crm_id=op.crm_id, created=False) for op in batch]
    assigned: dict[int, WriteResult] = {}
    by_trace = {trace_id(i): i for i in range(len(batch))}
    by_key: dict[str, list[int]] = {}
    for i, op in enumerate(batch):
        key = op_key(op)
        if key is not None:
            by_key.setdefault(key, []).append(i)

    def free(candidates: Sequence[int]) -> int | None:
        return next((i for i in candidates if i not in assigned), None)

    leftover_results: list[Mapping[str, Any]] = []
    for row in answer.get("results") or []:
        if not isinstance(row, Mapping):
            continue
        index = None
        trace = row.get("objectWriteTraceId")
        if trace is not None and str(trace) in by_trace:
            index = free([by_trace[str(trace)]])
        if index is None:
            properties = row.get("properties") or {}
            candidates = list(by_key.get(str(row.get("id")), []))
            for op in batch[:1]:
                if op.operation == "upsert" and op.external_id_field:
                    candidates += by_key.get(str(properties.get(op.external_id_field)), [])
            index = free(candidates)
        if index is None:
            leftover_results.append(row)
            continue
        assigned[index] = _success(batch[index], row)

    leftover_errors: list[RecordError] = []
    for item in answer.get("errors") or []:
        if not isinstance(item, Mapping):
            continue
        error = _error(item, context)
        ids = [str(v) for values in (item.get("context") or {}).values() if isinstance(values, list) for v in values]
        hits = [i for value in ids for i in by_key.get(value, []) + ([by_trace[value]] if value in by_trace else [])]
        hits = [i for i in dict.fromkeys(hits) if i not in assigned]
        if not hits:
            leftover_errors.append(error)
        for i in hits:
            assigned[i] = WriteResult(op=batch[i], success=False, crm_id=batch[i].crm_id, created=False, error=error)

    for i, op in enumerate(batch):
        if i in assigned:
            continue
        if leftover_results:
            assigned[i] = _success(op, leftover_results.pop(0))
        elif leftover_errors:
            assigned[i] = WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=leftover_errors.pop(0))
        else:
            error = record_error("hubspot", "MISSING_RESULT", "HubSpot's batch answer did not mention this record",
                                 context=f"{context} #{i}")
            assigned[i] = WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=error)
    return [assigned[i] for i in range(len(batch))]


def _success(op: WriteOp, row: Mapping[str, Any]) -> WriteResult:
    created = op.operation == "create" or bool(row.get("new"))
    crm_id = str(row["id"]) if row.get("id") is not None else op.crm_id
    return WriteResult(op=op, success=True, crm_id=crm_id, created=created)


def _error(item: Mapping[str, Any], context: str) -> RecordError:
    parsed = parse_error_body("hubspot", dict(item))
    status = item.get("status")
    code = parsed.codes[0] if parsed.codes else "UNKNOWN"
    return record_error("hubspot", code, parsed.message, parsed.fields,
                        status=int(str(status)) if str(status).isdigit() else None, context=context)
