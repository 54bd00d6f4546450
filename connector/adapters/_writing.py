"""Batch writing shared by both adapters: plan batches, keep order, isolate bad records.

Each adapter supplies ``send(batch) -> list[WriteResult]`` for one API call. When
the CRM refuses a whole multi-record call because of one record (HubSpot answers
400 VALIDATION_ERROR or 409 for the whole batch), the batch is split in halves
and each half sent again, so every good record is still written and each bad one
gets its own error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from connector.adapters.base import WriteOp, WriteResult, batch_plan, unchecked_results
from connector.adapters.errors import ConfigurationError, RecordError

log = logging.getLogger(__name__)

SendBatch = Callable[[list[WriteOp]], list[WriteResult]]


def write_in_batches(ops: Sequence[WriteOp], *, size: int, crm: str, send: SendBatch) -> list[WriteResult]:
    """Write ``ops`` in batches of at most ``size``; one result per op, in the order of ``ops``.

    Args:
        ops: What to write.
        size: The API's largest batch.
        crm: ``salesforce`` or ``hubspot`` (for error messages).
        send: Sends one batch (one API call) and answers one result per op, in order;
            raises ``RecordError`` when the CRM refused the call as a whole because of its
            records, ``ConfigurationError`` when the request itself is wrong.

    Raises:
        FatalError: auth, permission or daily limit (the run stops; the outbox keeps the ops).
        RetriableError: still failing after the retry policy gave up.
    """
    results: dict[int, WriteResult] = unchecked_results(ops, crm)
    for batch in batch_plan(ops, size):
        positions = [index for index, _ in batch]
        for index, result in zip(positions, _send_isolating([op for _, op in batch], send), strict=True):
            results[index] = result
    return [results[index] for index in range(len(ops))]


def _send_isolating(batch: list[WriteOp], send: SendBatch) -> list[WriteResult]:
    try:
        results = send(batch)
    except RecordError as error:
        if len(batch) == 1:
            return [WriteResult(op=batch[0], success=False, crm_id=batch[0].crm_id, created=False, error=error)]
        log.info("%s refused a batch of %d (%s); splitting it to isolate the bad records",
                 error.crm, len(batch), error.code or error.message)
        middle = len(batch) // 2
        return _send_isolating(batch[:middle], send) + _send_isolating(batch[middle:], send)
    except ConfigurationError as error:
        return [WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=error) for op in batch]
    if len(results) != len(batch):
        raise AssertionError(f"send answered {len(results)} results for {len(batch)} ops")
    return results
