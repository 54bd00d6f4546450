"""The adapter contract the pipeline uses; nothing outside the adapters knows which CRM it talks to.

Records travel in and out CRM-native (native field names, values as the CRM
sends them); the pipeline applies the field mappings. An adapter reads pages
with a checkpointable :class:`Cursor`, writes :class:`WriteOp` batches and
answers one :class:`WriteResult` per op, in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import CrmError, RecordError
from connector.adapters.retry import RetryPolicy
from connector.cursor import Cursor

Operation = Literal["create", "update", "upsert", "delete"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "upsert", "delete")


@dataclass
class Page:
    """One page of a read, committed by the pipeline as a unit.

    Attributes:
        object: The CRM object (``Lead``, ``contacts``).
        records: Live records, native field names, values as the CRM sent them.
        deleted_ids: Ids of records deleted (Salesforce ``IsDeleted``) or archived (HubSpot).
        merged: ``(merged-away id, surviving id)`` pairs.
        cursor: The position after this page: checkpoint it when the page is committed.
            None means this page does not move the checkpoint (e.g. the middle of a
            full HubSpot read, which goes in id order, not modification order).
    """

    object: str
    records: list[dict[str, Any]] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)
    cursor: Cursor | None = None


@dataclass(frozen=True)
class WriteOp:
    """One record to write.

    Attributes:
        object: The CRM object (``Lead``, ``Task``, ``contacts``, ``tasks``).
        operation: create, update, upsert or delete.
        fields: Native field names, values already formatted for the CRM.
        crm_id: The record's id (update, delete).
        idempotency_key: Relay's key for this write (used to match results and in logs).
        external_id_field: The upsert key field (Salesforce ``Relay_Idempotency_Key__c``,
            HubSpot ``relay_idempotency_key``); its value is in ``fields``.
        associations: ``(object, crm_id)`` records to link to (HubSpot: default association
            type, e.g. task → contact 204; Salesforce: ignored, put ``WhoId`` in ``fields``).
    """

    object: str
    operation: Operation
    fields: dict[str, Any] = field(default_factory=dict, hash=False)
    crm_id: str | None = None
    idempotency_key: str = ""
    external_id_field: str | None = None
    associations: tuple[tuple[str, str], ...] = ()

    def problems(self) -> list[str]:
        """What is wrong with this op (empty when it can be sent)."""
        problems = []
        where = f"{self.operation} {self.object}" + (f" (key {self.idempotency_key})" if self.idempotency_key else "")
        if not self.object:
            problems.append(f"{where}: object is empty")
        if self.operation not in OPERATIONS:
            problems.append(f"{where}: operation must be one of {', '.join(OPERATIONS)}")
        if self.operation in ("update", "delete") and not self.crm_id:
            problems.append(f"{where}: {self.operation} needs crm_id")
        if self.operation == "upsert":
            if not self.external_id_field:
                problems.append(f"{where}: upsert needs external_id_field")
            elif self.fields.get(self.external_id_field) in (None, ""):
                problems.append(f"{where}: upsert needs a value for {self.external_id_field} in fields")
        if self.operation in ("create", "update", "upsert") and not self.fields:
            problems.append(f"{where}: no fields to write")
        return problems


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one :class:`WriteOp`.

    Attributes:
        op: The op this result answers.
        success: Whether the CRM accepted it.
        crm_id: The record's id (new for creates and upserts that created).
        created: True when a record was created (create, or upsert that inserted).
        error: Why it failed: a :class:`~connector.adapters.errors.RecordError` with the
            CRM's code, message and fields (or the batch's error when the whole call failed).
    """

    op: WriteOp
    success: bool
    crm_id: str | None
    created: bool
    error: CrmError | None = None


@dataclass(frozen=True)
class MergeOutcome:
    """What a CRM merge did (see :meth:`CrmAdapter.merge`).

    Attributes:
        object: The CRM object (``Lead``, ``contacts``).
        survivor_id: The id of the merged record afterwards. Salesforce keeps the survivor's id;
            HubSpot answers with the merged record's id, which is a new one where the portal
            creates a new record for a merge, so read it from here rather than assume it.
        merged_ids: The losers this call merged into the survivor (deleted, or archived, now).
        already_merged_ids: Losers found already merged into the survivor (a retry after a crash).
        updated_related_ids: Records the CRM re-parented to the survivor (Salesforce's
            ``updatedRelatedIds``: tasks, contacts, opportunities...; HubSpot does not say).
    """

    object: str
    survivor_id: str
    merged_ids: tuple[str, ...] = ()
    already_merged_ids: tuple[str, ...] = ()
    updated_related_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryValue:
    """One value a record's field held, from when (see :meth:`CrmAdapter.read_history`).

    Attributes:
        field: The CRM field (``StageName``, ``dealstage``): one of the fields asked for.
        value: The value as the CRM sends it (HubSpot: text; Salesforce: JSON types), None when cleared.
        at: When the field took this value (aware, UTC).
        by: The CRM user who set it, when the CRM says (Salesforce ``CreatedById``, HubSpot
            ``updatedByUserId`` / ``sourceId``); None otherwise.
    """

    field: str
    value: Any
    at: datetime
    by: str | None = None


@dataclass(frozen=True)
class Conversion:
    """What converting a lead into an opportunity did (see :meth:`CrmAdapter.convert_lead`).

    Attributes:
        object: The converted record's object (``Lead``, ``contacts``).
        crm_id: The converted record.
        opportunity_id: The opportunity or deal created (None when the CRM created none).
        contact_id: The contact the lead became (Salesforce; HubSpot: the contact itself).
        account_id: The account the contact belongs to (Salesforce; HubSpot: the company
            associated, when any).
        already_converted: The lead was converted before this call (a retry after a crash):
            nothing was created, the ids are the earlier conversion's where the CRM says.
    """

    object: str
    crm_id: str
    opportunity_id: str | None = None
    contact_id: str | None = None
    account_id: str | None = None
    already_converted: bool = False


@dataclass(frozen=True)
class Deletion:
    """What deleting one record did (see :meth:`CrmAdapter.delete_records`).

    Attributes:
        object: The CRM object (``Lead``, ``contacts``).
        crm_id: The record.
        deleted: The record is gone from the CRM now: deleted (Salesforce: to the recycle bin) or
            archived (HubSpot) by this call, or before it (``already_deleted``).
        already_deleted: The CRM said it was deleted before this call (Salesforce ``ENTITY_IS_DELETED``;
            HubSpot answers every archive alike, so it never says).
        error: Why the CRM refused (``deleted`` is False): the CRM's code and message.
    """

    object: str
    crm_id: str
    deleted: bool
    already_deleted: bool = False
    error: CrmError | None = None


@dataclass(frozen=True)
class FieldSpec:
    """A field Relay needs in the CRM (created where the unit ``creates_fields``, else only checked).

    Attributes:
        name: API name (``relay_score``, ``Relay_Score__c``).
        label: Label shown in the CRM.
        type: The CRM's data type of the field (HubSpot: string, number, date, datetime, bool,
            enumeration); adapters of CRMs that only check fields ignore it.
        field_type: How the CRM shows the field (HubSpot: text, number, booleancheckbox...).
        description: Help text.
        has_unique_value: The CRM enforces unique values (usable as an upsert key).
        group_name: The CRM's grouping of Relay's fields (HubSpot property group).
    """

    name: str
    label: str = ""
    type: str = "string"
    field_type: str = "text"
    description: str = ""
    has_unique_value: bool = False
    group_name: str = "relay"

    @classmethod
    def of(cls, spec: Any) -> FieldSpec:
        """Build from a mapping file's property spec (``name, label, type, fieldType, ...``) or a name."""
        if isinstance(spec, FieldSpec):
            return spec
        if isinstance(spec, str):
            return cls(name=spec, label=spec)
        get = spec.get if isinstance(spec, dict) else lambda key, default=None: getattr(spec, key, default)
        name = get("name")
        if not name:
            raise ValueError(f"a field spec needs a name, got {spec!r}")
        return cls(
            name=str(name),
            label=str(get("label") or name),
            type=str(get("type") or "string"),
            field_type=str(get("fieldType") or get("field_type") or "text"),
            description=str(get("description") or ""),
            has_unique_value=bool(get("hasUniqueValue") or get("has_unique_value") or False),
            group_name=str(get("groupName") or get("group_name") or "relay"),
        )


@runtime_checkable
class CrmAdapter(Protocol):
    """What the pipeline needs from a CRM. One implementation per CRM, on its official SDK."""

    crm: str
    """The CRM unit's kind (``salesforce``, ``hubspot``)."""
    connection: str
    calls: ApiCallCounter
    retry: RetryPolicy
    """How calls are retried; the run swaps in a policy bounded by its deadline (``deadline_applied``)."""
    reads_deletions: bool
    """True when ``read`` reports deleted records itself (``Page.deleted_ids``); otherwise the
    pipeline asks ``read_deleted`` after each object's read."""

    def read(
        self, object: str, fields: Sequence[str], cursor: Cursor | None, *, page_size: int | None = None
    ) -> Iterator[Page]:
        """Records changed after ``cursor`` (all records when None), page by page.

        An incremental read comes oldest first, each page with the cursor to checkpoint. A full
        read (``cursor`` None) may come in another order (HubSpot lists by id, Salesforce Bulk
        by its own): its pages then carry no cursor but the last, which never passes the
        newest record read.
        """
        ...

    def prepare_reads(
        self, reads: Sequence[tuple[str, Sequence[str], Cursor | None]], *, page_size: int | None = None
    ) -> None:
        """The run will read these objects from these cursors; an adapter may fetch their first pages together.

        ``reads`` are the ``(object, fields, cursor)`` that ``read`` will be called with, with
        ``page_size``; a read that matches one may be served its first page from that combined
        fetch (Salesforce: one Composite call for up to five queries, owners included). Any
        other read asks as usual, so calling this is never required for correctness.
        """
        ...

    def read_deleted(self, object: str, since: datetime) -> list[str]:
        """Ids of records deleted since ``since``."""
        ...

    def read_ids(self, object: str, fields: Sequence[str], ids: Sequence[str]) -> Page:
        """The records of ``object`` with these ids, as ``read`` hands records over (batched; no cursor).

        For changes a CRM pushed (webhooks): read by id in as few calls as the API allows. Ids
        the CRM does not have (deleted, merged away, never there) are left out.
        """
        ...

    def read_by_email(self, object: str, fields: Sequence[str], emails: Sequence[str]) -> Page:
        """The live records of person object ``object`` whose email is one of ``emails`` (exact, any case; batched).

        For people a form or a list brings (capture): found before anything is created, in as
        few calls as the API allows. Several records may share an email (Salesforce); records
        the CRM keeps read-only (a converted Lead) are left out. No cursor.
        """
        ...

    def integration_user_id(self) -> str | None:
        """The CRM user Relay acts as, whose id the CRM stamps on Relay's own changes (None: the CRM does not say).

        Events that name the user who made a change (a Salesforce outbound message's
        ``LastModifiedById``) are Relay's own writes coming back when they name this user.
        """
        ...

    def owners(self) -> list[dict[str, Any]]:
        """Every owner (Salesforce Users; HubSpot owners, archived ones included).

        May answer from the process's cache for the connection's ``owners_cache_seconds``.
        """
        ...

    def forget_owners(self) -> None:
        """Drop the cached owners list, so the next ``owners()`` asks the CRM (a full sync; a refused owner)."""
        ...

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write ``ops`` in the largest batches the API takes; one result per op, same order."""
        ...

    def merge(
        self, object: str, survivor_id: str, loser_ids: Sequence[str], values: dict[str, Any] | None = None
    ) -> MergeOutcome:
        """Merge ``loser_ids`` into ``survivor_id`` in the CRM, setting ``values`` (native names) on the survivor.

        Salesforce: the SOAP API's ``merge()`` (Lead, Contact, Account, Case), a master and up to
        two records per merge request, as many requests as needed in one call; ``values`` travel
        as the master record's fields. The losers are deleted (``IsDeleted``, ``MasterRecordId``
        through ``queryAll``) and their related records re-parented to the survivor.
        HubSpot: ``POST /crm/v3/objects/{type}/merge`` (contacts, companies, deals, tickets), one
        pair per call, the losers one after another into the survivor, then ``values`` as a batch
        update of the survivor. The losers are archived and their ids answer with the survivor.

        Merging a loser already merged into the survivor counts as done (``already_merged_ids``):
        Relay retries merges after a crash.

        Raises:
            RecordError: the CRM refused this merge: the survivor or a loser does not exist, was
                deleted or was merged into another record (the message names both ids).
            FatalError: auth, permission, configuration or daily-limit errors.
        """
        ...

    def read_history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, list[HistoryValue]]:
        """Each record's past values of ``fields`` (CRM names), oldest first, the current value included.

        Salesforce: ``OpportunityHistory`` (StageName, Amount, CloseDate, Probability,
        ForecastCategory; one row per change of any of them, so a field appears only where
        its value differed from the row before), one SOQL query per up to 500 ids.
        HubSpot: batch read with ``propertiesWithHistory`` (50 ids per call: HubSpot's limit for history). Records with
        no history are absent; fields the CRM keeps no history of are left out.

        Raises:
            ConfigurationError: ``object`` keeps no field history in this CRM (the message names it).
            FatalError: auth, permission, configuration or daily-limit errors.
        """
        ...

    def convert_lead(self, object: str, crm_id: str, *, opportunity_name: str, owner_id: str | None,
                     status: str | None = None, stage: str | None = None,
                     pipeline: str | None = None) -> Conversion:
        """Turn a qualified lead into an opportunity (seed 002 disposition "Qualified").

        Salesforce: SOAP ``convertLead`` (converted status ``status``, an opportunity called
        ``opportunity_name``, owned by ``owner_id``; the lead becomes a contact of a new or
        matched account). HubSpot: a deal in ``pipeline``/``stage`` associated with the contact
        (and its primary company), and the contact's ``lifecyclestage`` set to ``opportunity``.

        Converting a lead already converted answers ``already_converted`` (Relay retries).

        Raises:
            RecordError: the CRM refused this conversion (the message names the record).
            FatalError: auth, permission, configuration or daily-limit errors.
        """
        ...

    def delete_records(self, object: str, crm_ids: Sequence[str]) -> list[Deletion]:
        """Delete these records of ``object`` in the CRM (retention, ``relay retention run --apply``); one
        :class:`Deletion` per id, in order.

        Salesforce: sObject Collections ``DELETE composite/sobjects?ids=...&allOrNone=false``, 200 ids per
        call (to the recycle bin, like a delete in the UI); a record deleted already answers
        ``ENTITY_IS_DELETED`` and counts as deleted (Relay retries after a crash). HubSpot:
        ``POST /crm/v3/objects/{type}/batch/archive``, 100 ids per call (HubSpot answers 204 for every
        id, archived now, before, or never there).

        Raises:
            FatalError: auth, permission, configuration or daily-limit errors (nothing is answered).
        """
        ...

    def ensure_fields(self, object: str, fields: Sequence[FieldSpec]) -> list[str]:
        """Make sure ``fields`` exist on ``object``; returns the names created."""
        ...

    def check_fields(self, object: str, names: Sequence[str]) -> list[str]:
        """The names in ``names`` that ``object`` lacks (empty when all exist); see ``CrmUnit.missing_fields``."""
        ...

    def close(self) -> None:
        """Release the adapter's connections."""
        ...


ALREADY_DELETED_CODES = frozenset({"ENTITY_IS_DELETED"})
"""CRM error codes that say a record to delete is deleted already (Salesforce)."""


def deletions(object: str, crm_ids: Sequence[str], results: Sequence[WriteResult]) -> list[Deletion]:
    """The :class:`Deletion` of each id from the results of its delete op (``write`` answers in order)."""
    found: list[Deletion] = []
    for crm_id, result in zip(crm_ids, results, strict=True):
        code = getattr(result.error, "code", None)
        if result.success:
            found.append(Deletion(object, crm_id, True))
        elif code in ALREADY_DELETED_CODES:
            found.append(Deletion(object, crm_id, True, already_deleted=True))
        else:
            found.append(Deletion(object, crm_id, False, error=result.error))
    return found


def delete_ops(object: str, crm_ids: Sequence[str]) -> list[WriteOp]:
    """One delete op per id (keyed ``delete:<object>:<id>``: a delete lands once however often it is sent)."""
    return [WriteOp(object, "delete", crm_id=crm_id, idempotency_key=f"delete:{object}:{crm_id}") for crm_id in crm_ids]


def batch_plan(ops: Sequence[WriteOp], size: int) -> list[list[tuple[int, WriteOp]]]:
    """Group ops into batches of at most ``size`` by (object, operation, upsert key), keeping positions.

    Ops that cannot be sent (see :meth:`WriteOp.problems`) are left out; the caller answers them.

    Example:
        >>> ops = [WriteOp("Lead", "update", {"A": 1}, "1"), WriteOp("Task", "create", {"S": 1}),
        ...        WriteOp("Lead", "update", {"A": 2}, "2")]
        >>> [[i for i, _ in batch] for batch in batch_plan(ops, 200)]
        [[0, 2], [1]]
    """
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    groups: dict[tuple[str, str, str | None], list[tuple[int, WriteOp]]] = {}
    for index, op in enumerate(ops):
        if op.problems():
            continue
        key = (op.object, op.operation, op.external_id_field if op.operation == "upsert" else None)
        groups.setdefault(key, []).append((index, op))
    batches: list[list[tuple[int, WriteOp]]] = []
    for members in groups.values():
        batches.extend(members[start : start + size] for start in range(0, len(members), size))
    return batches


def unchecked_results(ops: Sequence[WriteOp], crm: str) -> dict[int, WriteResult]:
    """Failed results for ops that cannot be sent, by position (a RecordError naming the problem)."""
    results = {}
    for index, op in enumerate(ops):
        problems = op.problems()
        if problems:
            error = RecordError("; ".join(problems), crm=crm, code="INVALID_WRITE_OP", context=f"write #{index}")
            results[index] = WriteResult(op=op, success=False, crm_id=op.crm_id, created=False, error=error)
    return results
