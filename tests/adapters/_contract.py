"""The adapter contract suite's machinery: every CRM unit paired with its sandbox, and the ledger check.

A *pair* is a registered CRM unit (``connector.crms``) whose ``sandbox`` names a sandbox in
``crm_sandbox``'s registry. :class:`Contract` starts that sandbox on port 0 with seeded data and
opens the unit's adapter through the factory, from the unit's own settings model filled in with
the sandbox's client settings; object and field names come from the connection's mapping file.
Nothing here names a CRM: a third unit with a sandbox joins the suite by being registered.

The ledger check (:func:`check_ledger`) is what makes the suite fail when an adapter answers
without calling: after each step it reads the sandbox's call ledger (``GET /__sandbox/ledger``,
over HTTP like any client) and holds the adapter's claims against it:

* every API call the adapter counted reached the sandbox, and the sandbox received no call the
  adapter did not count (``adapter.calls`` total = ledger calls);
* the calls that wrote records in the sandbox are exactly the adapter's ``write`` calls;
* every record the adapter reported written was applied by the sandbox, and every record it
  delivered from a read was sent by the sandbox (a cached or stubbed answer has no ledger line).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import requests

from connector.adapters.base import CrmAdapter, Page, WriteOp, WriteResult
from connector.config.connection import ConnectionSettings
from connector.config.loader import load_config
from connector.config.mappings import MappingFile, ObjectMapping
from connector.crms import CrmUnit, load_units
from connector.crms.factory import build_adapter
from connector.cursor import Cursor
from connector.mapping import parse_datetime, to_crm
from crm_sandbox.kinds import ClientSettings, Sandbox
from crm_sandbox.registry import get as sandbox_kind
from crm_sandbox.seed import SeedData, generate

SEED = 8
"""The seed of the generated data (same seed, same data)."""
PAGES_AT_SMALLEST = 1.3
"""Seed this many times the largest minimum page size, so every CRM's reads span several pages."""
PROBE_FIELD = "relay_contract_probe"
"""A field no CRM has (a valid name for every CRM's custom fields): what ``check_fields`` must name."""
ADAPTER_SETTINGS: Mapping[str, Any] = {
    "read_lag_seconds": 0,  # read up to the CRM's clock: a record written a moment ago is read at once
    "owners_cache_seconds": 0,  # owners() asks the CRM every time (the ledger must show it)
    "read_timeout": 10,  # a sandbox that hangs fails the test instead of stalling it a minute
    "run_deadline_minutes": None,
}
"""Settings every contract adapter gets, where the unit's settings model has them."""


# --- pairs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrmPair:
    """A CRM unit, its sandbox's name, and the shipped connection and mapping file of its kind.

    Attributes:
        unit: The registered CRM unit.
        connection: The name of the shipped connection of this kind in ``config/relay.yaml``
            (None when the configuration has none: :meth:`Contract.start` then fails naming it).
        shipped: That connection's settings (the shape the contract adapter's settings start from).
        mapping: The mapping file that connection uses.
    """

    unit: CrmUnit
    connection: str | None
    shipped: ConnectionSettings | None
    mapping: MappingFile | None

    @property
    def name(self) -> str:
        """The pair's test id: the unit's kind."""
        return self.unit.kind

    @property
    def sandbox(self) -> str:
        """The sandbox's name in ``crm_sandbox``'s registry."""
        return str(self.unit.sandbox)


def contract_pairs() -> list[CrmPair]:
    """Every registered CRM unit that names a sandbox, by kind, with its shipped connection and mapping.

    The configuration is loaded with an empty environment, so the shipped defaults apply
    whatever the shell exports (the suite overrides the URL and credentials anyway).
    """
    config = load_config(env={})
    pairs = []
    for kind, unit in sorted(load_units().items()):
        if unit.sandbox is None:
            continue
        name = next((n for n, c in config.relay.connections.items() if c.kind == kind), None)
        shipped = config.connection(name) if name is not None else None
        mapping = config.mapping_for(name) if name is not None else None
        pairs.append(CrmPair(unit=unit, connection=name, shipped=shipped, mapping=mapping))
    return pairs


def contract_seed(pairs: Iterable[CrmPair]) -> SeedData:
    """Seed data for every pair: enough people for reads of several pages at each CRM's smallest
    page size, stamped a day ago (every seeded change is older than any overlap a CRM re-reads)."""
    smallest = max((pair.unit.limits.min_page_size for pair in pairs), default=1)
    leads = max(40, round(smallest * PAGES_AT_SMALLEST))
    return generate(seed=SEED, leads=leads, anchor=datetime.now(UTC) - timedelta(days=1))


def seeded(seed: SeedData, sandbox: str, object: str) -> list[dict[str, Any]]:
    """The records ``sandbox`` was seeded with for ``object``.

    ``SeedData`` keeps each CRM's objects under the sandbox's name (``seed.<sandbox>[object]``)
    and lists that are not objects of the CRM's object API (HubSpot's owners) beside it
    (``seed.<sandbox>_<object>``).

    Raises:
        LookupError: naming both places looked in.
    """
    part = getattr(seed, sandbox, None)
    if isinstance(part, Mapping) and object in part:
        return list(part[object])
    beside = getattr(seed, f"{sandbox}_{object}", None)
    if isinstance(beside, list):
        return list(beside)
    raise LookupError(f"the seed data has no {object} records for the {sandbox} sandbox "
                      f"(looked in SeedData.{sandbox}[{object!r}] and SeedData.{sandbox}_{object})")


def adapter_settings(pair: CrmPair, client: ClientSettings) -> ConnectionSettings:
    """The unit's settings model, validated from the shipped connection's values with the sandbox's
    base URL and credentials (those the model's credentials take) and :data:`ADAPTER_SETTINGS`."""
    model = pair.unit.settings
    data: dict[str, Any] = pair.shipped.model_dump() if pair.shipped is not None else {"kind": pair.unit.kind}
    accepted = getattr(model.model_fields["credentials"].annotation, "model_fields", None)
    data["credentials"] = {key: value for key, value in client.credentials.items()
                           if accepted is None or key in accepted}
    data["base_url"] = client.base_url
    data.update({key: value for key, value in ADAPTER_SETTINGS.items() if key in model.model_fields})
    return model.model_validate(data)


# --- the ledger ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerCall:
    """One call the sandbox received, as its ledger lists it."""

    method: str
    path: str
    status: int
    kind: str
    records_read: int
    records_written: int

    def __str__(self) -> str:
        return (f"{self.method} {self.path} -> {self.status} [{self.kind or 'other'}] "
                f"read {self.records_read}, wrote {self.records_written}")


class SandboxLedger:
    """A running sandbox's call ledger, read over HTTP (``GET {base_url}/__sandbox/ledger``)."""

    def __init__(self, base_url: str, ca_bundle: Path | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/__sandbox/ledger"
        self.verify: str | bool = str(ca_bundle) if ca_bundle is not None else True

    def calls(self) -> list[LedgerCall]:
        """Every call received so far, oldest first."""
        response = requests.get(self.url, timeout=10, verify=self.verify)
        response.raise_for_status()
        return [LedgerCall(method=str(e["method"]), path=str(e["path"]), status=int(e["status"]),
                           kind=str(e.get("kind") or ""), records_read=int(e["records_read"]),
                           records_written=int(e["records_written"]))
                for e in response.json()["entries"]]


@dataclass(frozen=True)
class LedgerMark:
    """Where a step starts: the ledger's length and the adapter's call counts."""

    position: int
    counted: dict[str, int]


class LedgerMismatch(AssertionError):
    """The adapter's claims and the sandbox's ledger disagree (a call that never reached the CRM...)."""

    def __init__(self, step: str, problems: Sequence[str], calls: Sequence[LedgerCall],
                 counted: Mapping[str, int]) -> None:
        self.step = step
        self.problems = list(problems)
        self.calls = list(calls)
        self.counted = dict(counted)
        received = "\n".join(f"    {call}" for call in calls) or "    (nothing)"
        super().__init__(f"{step}: the sandbox's ledger contradicts the adapter:\n  - "
                         + "\n  - ".join(problems)
                         + f"\n  adapter counted: {self.counted}\n  sandbox received:\n{received}")


def mark(ledger: SandboxLedger, adapter: CrmAdapter) -> LedgerMark:
    """The start of a step, for :func:`check_ledger`."""
    return LedgerMark(position=len(ledger.calls()), counted=adapter.calls.snapshot())


def check_ledger(ledger: SandboxLedger, adapter: CrmAdapter, since: LedgerMark, step: str, *,
                 written: int = 0, delivered: int = 0) -> list[LedgerCall]:
    """Check the adapter's claims since ``since`` against what the sandbox received; the step's calls.

    Args:
        ledger: The sandbox's ledger.
        adapter: The adapter (its ``calls`` counter holds what it claims it called).
        since: Where the step started (:func:`mark`).
        step: What the step did, for the message.
        written: Records the adapter reported written (successful write results): the sandbox
            must have applied at least as many.
        delivered: Records the adapter delivered from reads (records, deleted ids, owners): the
            sandbox must have sent at least as many.

    The calls that wrote records are told from the others by the ledger's ``records_written``,
    so a step's write calls must each apply a record (the contract steps are built so).

    Raises:
        LedgerMismatch: naming every disagreement, with both sides' calls.
    """
    calls = ledger.calls()[since.position:]
    counted = adapter.calls.since(since.counted)
    problems = []
    total = counted.get("total", 0)
    if total != len(calls):
        problems.append(f"the adapter counted {total} API call(s) but the sandbox received {len(calls)}")
    writing = [call for call in calls if call.records_written > 0]
    claimed = counted.get("write", 0)
    if len(writing) != claimed:
        problems.append(f"the adapter counted {claimed} write call(s) but {len(writing)} call(s) wrote records "
                        "in the sandbox")
    applied = sum(call.records_written for call in calls)
    if applied < written:
        problems.append(f"{written} record(s) were reported written but the sandbox applied {applied}")
    sent = sum(call.records_read for call in calls)
    if sent < delivered:
        problems.append(f"{delivered} record(s) were delivered from reads but the sandbox sent {sent}")
    if problems:
        raise LedgerMismatch(step, problems, calls, counted)
    return calls


# --- one pair, running -----------------------------------------------------------------------


def objects_of(mapping: MappingFile, entity: str) -> list[ObjectMapping]:
    """The mapping's objects of ``entity`` (person, account, owner, task), in file order."""
    return [o for o in mapping.objects.values() if o.entity == entity]


@dataclass
class Contract:
    """One pair running: its sandbox (seeded, port 0), the adapter the factory opened, the ledger.

    Attributes:
        pair: The unit and its shipped connection and mapping.
        seed: What the sandbox was seeded with.
        sandbox: The running sandbox.
        adapter: The adapter, built by ``build_adapter`` from the unit's settings model.
        ledger: The sandbox's call ledger.
        person: The first person object the connection syncs (``objects`` order in relay.yaml).
        owner: The mapping's owner object.
        task: The mapping's task object.
    """

    pair: CrmPair
    seed: SeedData
    sandbox: Sandbox
    adapter: CrmAdapter
    ledger: SandboxLedger
    person: ObjectMapping
    owner: ObjectMapping
    task: ObjectMapping

    @classmethod
    def start(cls, pair: CrmPair, seed: SeedData) -> Contract:
        """Start the pair's sandbox and open its adapter.

        Raises:
            LookupError: the configuration has no connection of the unit's kind, or its mapping
                lacks a person, owner or task object.
            KeyError: the unit's sandbox is not in ``crm_sandbox``'s registry (naming those that are).
        """
        if pair.connection is None or pair.mapping is None:
            raise LookupError(f"config/relay.yaml has no connection of kind {pair.unit.kind!r}: the contract "
                              "suite takes the settings' shape and the mapping file from it")
        mapping = pair.mapping
        synced = [mapping.objects[name] for name in (pair.shipped.objects if pair.shipped else ())
                  if name in mapping.objects]
        people = [o for o in synced if o.entity == "person"] or objects_of(mapping, "person")
        owners, tasks = objects_of(mapping, "owner"), objects_of(mapping, "task")
        for what, found in (("person", people), ("owner", owners), ("task", tasks)):
            if not found:
                raise LookupError(f"mappings/{pair.connection}.yaml has no object with entity: {what}")
        sandbox = sandbox_kind(pair.sandbox).start(seed, host="127.0.0.1", port=0)
        try:
            client = sandbox.client_settings()
            adapter = build_adapter(pair.connection, adapter_settings(pair, client))
        except BaseException:
            sandbox.stop()
            raise
        return cls(pair=pair, seed=seed, sandbox=sandbox, adapter=adapter,
                   ledger=SandboxLedger(client.base_url, client.ca_bundle),
                   person=people[0], owner=owners[0], task=tasks[0])

    def stop(self) -> None:
        """Close the adapter and stop the sandbox."""
        try:
            self.adapter.close()
        finally:
            self.sandbox.stop()

    # --- steps, each checked against the ledger --------------------------------------------

    def mark(self) -> LedgerMark:
        """The start of a step."""
        return mark(self.ledger, self.adapter)

    def check(self, since: LedgerMark, step: str, *, written: int = 0, delivered: int = 0) -> list[LedgerCall]:
        """:func:`check_ledger` for this pair's adapter."""
        return check_ledger(self.ledger, self.adapter, since, step, written=written, delivered=delivered)

    def read(self, object: ObjectMapping, cursor: Cursor | None, *, page_size: int | None = None,
             fields: Sequence[str] | None = None) -> list[Page]:
        """Read ``object`` (the mapping's fields to read), checked against the ledger."""
        since = self.mark()
        names = list(fields) if fields is not None else object.crm_fields_to_read()
        pages = list(self.adapter.read(object.name, names, cursor, page_size=page_size))
        delivered = sum(len(p.records) + len(p.deleted_ids) for p in pages)
        where = "full" if cursor is None else f"incremental from {cursor}"
        self.check(since, f"{where} read of {object.name}", delivered=delivered)
        return pages

    def write(self, ops: Sequence[WriteOp], step: str) -> list[WriteResult]:
        """``adapter.write(ops)``, checked against the ledger (every success applied in the sandbox)."""
        since = self.mark()
        results = self.adapter.write(ops)
        self.check(since, step, written=sum(1 for r in results if r.success))
        return results

    # --- data ------------------------------------------------------------------------------

    def seeded(self, object: ObjectMapping) -> list[dict[str, Any]]:
        """The records the sandbox was seeded with for ``object``."""
        return seeded(self.seed, self.pair.sandbox, object.name)

    def live_seeded_ids(self, object: ObjectMapping) -> list[str]:
        """Ids of the seeded records of ``object`` that are not deleted (``deleted_field``)."""
        flag = object.deleted_field
        return [str(r[object.id_field]) for r in self.seeded(object) if not (flag and r.get(flag))]

    def page_size(self, records: int) -> int:
        """A page size the CRM takes that splits ``records`` into at least two pages where it can."""
        limits = self.pair.unit.limits
        return max(limits.min_page_size, min(limits.max_page_size, records // 2 or 1))

    def new_people(self, count: int, tag: str) -> list[WriteOp]:
        """Creates of ``count`` people, their fields formatted by the mapping (``to_crm``)."""
        ops = []
        for i in range(count):
            canonical = {"first_name": "Contract", "last_name": f"{tag}{i}", "company": "Contract Testing Inc",
                         "email": f"{tag}{i}@relay-contract.example"}
            ops.append(WriteOp(self.person.name, "create", self.fields(self.person, canonical),
                               idempotency_key=f"create:{tag}{i}"))
        return ops

    def create_people(self, count: int, tag: str) -> list[str]:
        """Create ``count`` people (checked against the ledger); their ids.

        Tests update people they created: a seeded record may be one the CRM refuses to change
        (a converted Salesforce lead), which is the CRM's rule, not the adapter's contract.
        """
        results = self.write(self.new_people(count, tag), f"create {count} {self.person.name}")
        assert all(r.success and r.crm_id for r in results), [r.error for r in results]
        return [str(r.crm_id) for r in results]

    def update(self, crm_id: str, title: str) -> WriteOp:
        """An update of a person's title (a field both read and written by the mapping)."""
        return WriteOp(self.person.name, "update", self.fields(self.person, {"title": title}), crm_id=crm_id,
                       idempotency_key=f"update:{crm_id}:{title}")

    def task_upsert(self, person_id: str, key: str, subject: str) -> WriteOp:
        """The follow-up task Relay upserts by its idempotency key, as ``pipeline/writeback.py`` builds it."""
        writable = {fm.canonical for fm in self.task.write_fields()}
        canonical = {"subject": subject, "description": "Written by the adapter contract suite.",
                     "due_at": datetime.now(UTC) + timedelta(days=1), "priority": "High",
                     "status": "Not Started", "idempotency_key": key, "person_id": person_id}
        fields = self.fields(self.task, {k: v for k, v in canonical.items() if k in writable})
        associations = () if "person_id" in writable else ((self.person.name, person_id),)
        return WriteOp(self.task.name, "upsert", fields, idempotency_key=key,
                       external_id_field=self.crm_field(self.task, "idempotency_key"), associations=associations)

    @staticmethod
    def fields(object: ObjectMapping, canonical: Mapping[str, Any]) -> dict[str, Any]:
        """``canonical`` values (those the mapping writes) formatted for the CRM."""
        writable = {fm.canonical for fm in object.write_fields()}
        return to_crm(object, {k: v for k, v in canonical.items() if k in writable})

    @staticmethod
    def crm_field(object: ObjectMapping, canonical: str) -> str:
        """The CRM field ``object`` writes ``canonical`` to.

        Raises:
            LookupError: the mapping writes no such field.
        """
        for fm in object.write_fields():
            if fm.canonical == canonical:
                return fm.crm
        raise LookupError(f"{object.crm} {object.name} writes no field for {canonical!r}")


# --- reading what a read delivered ---------------------------------------------------------


def position(object: ObjectMapping, record: Mapping[str, Any]) -> Cursor:
    """A delivered record's place in the change stream: (``modified_field``, ``id_field``).

    Raises:
        AssertionError: the record lacks either (a read of the mapping's fields must carry both).
    """
    assert object.modified_field, f"{object.name}: the mapping names no modified_field"
    stamp = record.get(object.modified_field)
    record_id = record.get(object.id_field)
    assert stamp not in (None, "") and record_id not in (None, ""), (
        f"{object.name} record without {object.modified_field} or {object.id_field}: {dict(record)!r}")
    return Cursor(parse_datetime(stamp), str(record_id))


def record_ids(object: ObjectMapping, pages: Iterable[Page]) -> list[str]:
    """The ids of the live records of ``pages``, in delivery order."""
    return [str(r[object.id_field]) for page in pages for r in page.records]


def deleted_ids(pages: Iterable[Page]) -> list[str]:
    """The deleted ids of ``pages``, in delivery order."""
    return [i for page in pages for i in page.deleted_ids]


def checkpoint(pages: Sequence[Page]) -> Cursor | None:
    """The last cursor a read's pages carry (what the pipeline would have committed)."""
    cursors = [p.cursor for p in pages if p.cursor is not None]
    return cursors[-1] if cursors else None


def read_problems(object: ObjectMapping, pages: Sequence[Page], start: Cursor | None,
                  page_size: int | None = None) -> list[str]:
    """What in a read breaks the contract the pipeline relies on (empty when nothing does).

    * each record comes once, and no page holds more than ``page_size`` records;
    * cursors only move forward, never behind ``start``;
    * a page's cursor is a checkpoint: no later page brings a record at or before it;
    * when every page that brings records carries a cursor (the read checkpoints as it goes),
      records come oldest first by the modified field;
    * the last cursor covers every record delivered.
    """
    problems: list[str] = []
    ids = record_ids(object, pages)
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"records delivered more than once: {repeated[:10]}")
    if page_size is not None:
        big = [len(p.records) for p in pages if len(p.records) > page_size]
        if big:
            problems.append(f"pages of {big} records, over the page size {page_size}")
    cursors = [p.cursor for p in pages if p.cursor is not None]
    if start is not None and any(c < start for c in cursors):
        problems.append(f"a cursor goes behind the start {start}: {[str(c) for c in cursors]}")
    if any(later < earlier for earlier, later in pairwise(cursors)):
        problems.append(f"cursors move backwards: {[str(c) for c in cursors]}")
    for index, page in enumerate(pages):
        if page.cursor is None:
            continue
        early = [str(r[object.id_field]) for later in pages[index + 1:] for r in later.records
                 if position(object, r) <= page.cursor]
        if early:
            problems.append(f"page {index} checkpoints at {page.cursor} but later pages bring records at or "
                            f"before it: {early[:10]}")
    if all(p.cursor is not None for p in pages if p.records):
        stamps = [position(object, r).last_modified for p in pages for r in p.records]
        if stamps != sorted(stamps):
            problems.append(f"records are not oldest first by {object.modified_field}")
    positions = [position(object, r) for p in pages for r in p.records]
    last = checkpoint(pages)
    if positions and (last is None or last < max(positions)):
        problems.append(f"the last checkpoint {last} is behind the newest record delivered {max(positions)}")
    return problems
