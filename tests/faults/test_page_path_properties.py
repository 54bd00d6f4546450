"""Any interleaving of CRM edits and page reads ends with every edit synced (the page path, with hypothesis).

Each example starts a fresh sandbox CRM on a hand-moved clock (shared with the adapter,
as a real org's clock is what stamps its records) and reads one object page by page
through Relay's adapter, with a small page size, as the pipeline does: each page's
``cursor`` is checkpointed, and the next read starts from the checkpoint. Between pages
and between reads, at points hypothesis chooses, records are edited through the official
SDK (simple-salesforce, hubspot-api-client) while the clock moves on. The reads go on
until one delivers nothing new after the clock has passed the adapter's ``read_lag``.

Then every edited record's latest value must have been delivered, last (no stale copy
after it), and no checkpoint may have moved backwards within an incremental read.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hubspot.crm.contacts import SimplePublicObjectInput
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.adapters.base import Cursor
from connector.adapters.retry import RetryPolicy
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData
from tests.e2e._crm import hubspot_client, salesforce_client, sobject
from tests.e2e._world import HUBSPOT_TOKEN, seed_for

SALESFORCE_WORLD = seed_for(7, 450)
"""450 leads: three query pages of 200 (Salesforce's smallest batch size)."""
SALESFORCE_PAGE = 200
HUBSPOT_WORLD = seed_for(7, 60)
HUBSPOT_PAGE = 7
MAX_ROUNDS = 8
"""Reads after which the test gives up waiting for the edits to arrive."""
EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class HandClock:
    """The CRM's clock, moved by the test (starts two minutes before the real time, at a whole ms)."""

    def __init__(self) -> None:
        now = datetime.now(UTC) - timedelta(minutes=2)
        self.now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def ms(self) -> int:
        return int(self().timestamp() * 1000)

    def advance(self, ms: int) -> None:
        with self._lock:
            self.now += timedelta(milliseconds=ms)


@dataclass
class Crm:
    """One sandbox CRM on a hand-moved clock, Relay's adapter on it, and an SDK edit of one field."""

    name: str
    object: str
    field: str
    page_size: int
    adapter: Any
    clock: HandClock
    edit: Callable[[str, str], None]
    rows: Callable[[], list[tuple[str, datetime, Any, bool]]]
    """Every record through the SDK: (id, last-modified stamp, the field's value, editable)."""

    def pick(self, by: str, position: int, last_read: str | None) -> str:
        """The record at ``position`` by modification stamp then id (``modified``), by id (``id``),
        or ``position`` records after ``last_read`` by modification stamp (``ahead``: e.g. the last
        row of the next page); else the next editable one after it (a converted lead is read-only)."""
        rows = self.rows()
        if by == "id":
            rows.sort(key=lambda row: (len(row[0]), row[0]))
        else:
            rows.sort(key=lambda row: (row[1], len(row[0]), row[0]))
        if by == "ahead":
            ids = [row[0] for row in rows]
            position += ids.index(last_read) if last_read in ids else -1
        start = position % len(rows)
        return next(row[0] for row in rows[start:] + rows[:start] if row[3])

    def values(self) -> dict[str, Any]:
        """Every record's value of the field, as the CRM shows it now."""
        return {row[0]: row[2] for row in self.rows()}


def _adapter_options(cls: type, clock: HandClock, **wanted: Any) -> dict[str, Any]:
    """The options of ``wanted`` that the adapter class takes (``clock`` among them when it can)."""
    accepted = inspect.signature(cls).parameters
    options = {name: value for name, value in wanted.items() if name in accepted}
    if "clock" in accepted:
        options["clock"] = clock
    return options


def _no_waits() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, sleep=lambda seconds: None, random=lambda: 0.0)


@contextmanager
def salesforce(seed: SeedData = SALESFORCE_WORLD) -> Iterator[Crm]:
    """A fresh Salesforce sandbox; edits change a Lead's Title through simple-salesforce."""
    clock = HandClock()
    sandbox = SalesforceSandbox(seed, clock=clock)
    server = sandbox.start()
    try:
        adapter = SalesforceAdapter("salesforce", server.url, "sandbox", "sandbox", "59.0", retry=_no_waits(),
                                    **_adapter_options(SalesforceAdapter, clock, bulk_threshold=None))
        leads = sobject(sandbox, "Lead")
        sf = salesforce_client(sandbox)

        def rows() -> list[tuple[str, datetime, Any, bool]]:
            found = sf.query_all("SELECT Id, SystemModstamp, Title, IsConverted FROM Lead")["records"]
            return [(r["Id"], _sf_time(r["SystemModstamp"]), r["Title"], not r["IsConverted"]) for r in found]

        yield Crm("salesforce", "Lead", "Title", SALESFORCE_PAGE, adapter, clock,
                  lambda crm_id, value: leads.update(crm_id, {"Title": value}), rows)
    finally:
        sandbox.stop()


@contextmanager
def hubspot(seed: SeedData = HUBSPOT_WORLD) -> Iterator[Crm]:
    """A fresh HubSpot sandbox; edits change a contact's jobtitle through hubspot-api-client."""
    clock = HandClock()
    sandbox = HubSpotSandbox(seed, access_token=HUBSPOT_TOKEN, clock=clock.ms, search_per_second=10_000)
    sandbox.start()
    try:
        assert sandbox.server is not None
        adapter = HubSpotAdapter("hubspot", str(sandbox.server.url), HUBSPOT_TOKEN, retry=_no_waits(),
                                 **_adapter_options(HubSpotAdapter, clock, searches_per_second=10_000.0))
        client = hubspot_client(sandbox)

        def edit(crm_id: str, value: str) -> None:
            client.crm.contacts.basic_api.update(crm_id, SimplePublicObjectInput(properties={"jobtitle": value}))

        def rows() -> list[tuple[str, datetime, Any, bool]]:
            found = client.crm.contacts.get_all(properties=["jobtitle", "hs_lastmodifieddate"])
            return [(str(c.id), _hs_time(c.properties.get("hs_lastmodifieddate"), c.updated_at),
                     c.properties.get("jobtitle"), True) for c in found]

        yield Crm("hubspot", "contacts", "jobtitle", HUBSPOT_PAGE, adapter, clock, edit, rows)
    finally:
        sandbox.stop()


def _sf_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def _hs_time(value: str | None, fallback: datetime) -> datetime:
    if value and value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return fallback.astimezone(UTC)


@dataclass(frozen=True, order=True)
class Edit:
    """Once ``after_pages`` pages were read, ``gap_ms`` after the last event, edit one record.

    The record is the one at ``position`` (negative: from the end) among the editable records
    ordered ``by`` modification stamp or by id, as the CRM shows them at that moment, or ``ahead``
    of the record the read delivered last: positions next to page boundaries are where paging
    goes wrong.
    """

    after_pages: int
    by: str
    position: int
    gap_ms: int


@dataclass(frozen=True, order=True)
class Plan:
    """The edits, and the pages after which a read is abandoned (a sync that dies; the next resumes)."""

    edits: tuple[Edit, ...]
    stops: frozenset[int]


@dataclass
class Replay:
    """What the reads delivered, in order, and what went wrong on the way."""

    delivered: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    """Per record id: (read number, value) of each delivery, in order."""
    latest: dict[str, str] = field(default_factory=dict)
    """Per edited record id: the value of its last edit."""
    backwards: list[str] = field(default_factory=list)
    rounds: int = 0
    pages: int = 0


GAPS_MS = [0, 0, 1, 5, 250, 1500, 150_000]
"""Time between two events: ties (same millisecond), moments, and more than HubSpot's search overlap."""


def plans(page_size: int, records: int) -> st.SearchStrategy[Plan]:
    """Up to 8 edits, each after some pages of a full read (and a few more), of records near page
    boundaries or anywhere, ``GAPS_MS`` apart; reads abandoned after up to 2 chosen pages."""
    pages = -(-records // page_size) + 2
    near_boundaries = sorted({k * page_size + d for k in range(1, 4) for d in (-1, 0, 1)
                              if 0 <= k * page_size + d < records} | {-1, -2, 0})
    anywhere = st.builds(Edit, st.integers(0, pages), st.sampled_from(["modified", "id"]),
                         st.one_of(st.sampled_from(near_boundaries), st.integers(0, records - 1)),
                         st.sampled_from(GAPS_MS))
    ahead = st.builds(Edit, st.integers(0, pages), st.just("ahead"),
                      st.sampled_from([page_size, page_size - 1, page_size + 1, 1, 2 * page_size]),
                      st.sampled_from(GAPS_MS))
    edit = st.one_of(ahead, anywhere)
    return st.builds(Plan, st.lists(edit, min_size=1, max_size=8).map(tuple),
                     st.frozensets(st.integers(1, pages), max_size=2))


def replay(crm: Crm, plan: Plan, page_ms: int) -> Replay:
    """Read ``crm``'s object from scratch, then from each checkpoint, editing records as ``plan`` says.

    The first read is a full one (no cursor). Checkpoints follow ``page.cursor`` as the pipeline
    does; a read abandoned after a page of ``plan.stops`` keeps the checkpoint of its last page,
    as a sync that dies there does. Reads go on until one, started after the clock has passed
    every edit by the adapter's ``read_lag``, reads to its end and delivers no value that is new
    for its record.
    """
    result = Replay()
    pending = sorted(plan.edits)
    stops = set(plan.stops)
    lag: timedelta = getattr(crm.adapter, "read_lag", timedelta(0))
    last_edit: datetime | None = None
    last_read: str | None = None
    counter = 0

    def apply(due: int) -> None:
        nonlocal last_edit, counter
        while pending and pending[0].after_pages <= due:
            step = pending.pop(0)
            crm.clock.advance(step.gap_ms)
            counter += 1
            record = crm.pick(step.by, step.position, last_read)
            value = f"edit-{counter}"
            crm.edit(record, value)
            result.latest[record] = value
            last_edit = crm.clock()

    checkpoint: Cursor | None = None
    apply(0)
    while True:
        result.rounds += 1
        assert result.rounds <= MAX_ROUNDS, (
            f"{crm.name} {crm.object}: {MAX_ROUNDS} reads and the edits still come: {result}")
        started = crm.clock()
        edits_before = counter
        new = False
        abandoned = False
        pages = crm.adapter.read(crm.object, [crm.field], checkpoint, page_size=crm.page_size)
        for page in pages:
            for record in page.records:
                record_id = str(record.get("Id") or record.get("id"))
                value = record.get(crm.field)
                history = result.delivered.setdefault(record_id, [])
                new = new or not history or history[-1][1] != value
                history.append((result.rounds, value))
                last_read = record_id
            if page.cursor is not None:
                if checkpoint is not None and page.cursor < checkpoint and result.rounds > 1:
                    result.backwards.append(f"read {result.rounds}: checkpoint {checkpoint} -> {page.cursor}")
                checkpoint = page.cursor
            result.pages += 1
            crm.clock.advance(page_ms)
            apply(result.pages)
            if result.pages in stops:
                stops.discard(result.pages)
                abandoned = True
                break
        close = getattr(pages, "close", None)
        if callable(close):
            close()
        settled = last_edit is None or started - lag > last_edit
        if not pending and counter == edits_before and not new and settled and not abandoned:
            return result
        if pending:  # edits planned past the last page: made between two syncs
            apply(pending[-1].after_pages)
        elif not settled:
            crm.clock.advance(int(lag.total_seconds() * 1000) + 1)


def problems(result: Replay, crm: Crm) -> list[str]:
    """Records whose value in the CRM was not the last one delivered (edited or not); backward checkpoints."""
    found = list(result.backwards)
    for record, value in sorted(crm.values().items()):
        history = result.delivered.get(record, [])
        if not history or history[-1][1] != value:
            edited = f"last edit {result.latest[record]!r}" if record in result.latest else "never edited"
            found.append(f"record {record} ({edited}): the CRM shows {value!r}, deliveries (read, value) {history}")
    return found


SF_LEADS = len(SALESFORCE_WORLD.salesforce["Lead"])
HS_CONTACTS = len(HUBSPOT_WORLD.hubspot["contacts"])


@EXAMPLES
@given(plan=plans(SALESFORCE_PAGE, SF_LEADS), page_ms=st.sampled_from([0, 1, 40, 150_000]))
def test_salesforce_lead_edits_made_while_pages_are_read_all_arrive(plan: Plan, page_ms: int) -> None:
    with salesforce() as crm:
        result = replay(crm, plan, page_ms)
        found = problems(result, crm)
    assert found == [], (f"{plan}, page_ms {page_ms}: {result.rounds} reads, {result.pages} pages:\n"
                         + "\n".join(found))


@EXAMPLES
@given(plan=plans(HUBSPOT_PAGE, HS_CONTACTS), page_ms=st.sampled_from([0, 1, 40, 150_000]))
def test_hubspot_contact_edits_made_while_pages_are_read_all_arrive(plan: Plan, page_ms: int) -> None:
    with hubspot() as crm:
        result = replay(crm, plan, page_ms)
        found = problems(result, crm)
    assert found == [], (f"{plan}, page_ms {page_ms}: {result.rounds} reads, {result.pages} pages:\n"
                         + "\n".join(found))
