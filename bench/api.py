"""The admin API and the dashboard over a store of 1,000,000 decisions, on SQLite and PostgreSQL (issue 12).

Builds a store that looks like half a year of syncs of both shipped connections (``salesforce``:
Lead and Contact; ``hubspot``: contacts) and measures Relay's own app over HTTP on it.

The store. A fresh store is migrated (``connector.store.migrate.upgrade``: a SQLite file under
``--scratch``; on PostgreSQL a schema of its own on ``--database``), then filled with what
``--decisions`` decisions leave behind, bulk-inserted through SQLAlchemy's connection in batches
(SQLite: ``executemany``; PostgreSQL: ``COPY``), the secondary indexes dropped during the load
and recreated from the migration's own DDL afterwards:

* ``sync_runs``: an incremental run of each connection every 15 minutes for 180 days, with counts;
  ``api_calls`` and ``data_quality`` rows per run (per lead source), the API budget;
* person ``records`` (one decision in 1.6 is a person's first: the rest rescore people seen before),
  with snapshots shaped like a real sync's (the canonical fields of the shipped mappings, the
  ``relay_*`` fields of the last decision), 20 % of people known in both CRMs (one identity,
  two ``identity_links``), plus accounts and deals;
* ``audit_log`` in time order: every decision's ``scored`` (with its breakdown) and ``field_update``;
  a routed one's ``assigned`` (rule, tier, reason, score, SLA), ``task_created`` and
  ``sla_clock_started``; SLA steps as the worker fires them (reminders, escalations, re-queues),
  clocks closed (worked, owner changed), dispositions, recycles, SDR -> AE handoffs, conversions,
  governance findings; three rules versions over the period;
* ``assignments`` (active, and superseded when a rescore, a re-queue or a recycle moves the person)
  and ``sla_clocks`` (open and closed, first touches mostly within the tier's SLA), spread over 20
  owners of the shipped roster with a skewed load (the busiest about 15 times the quietest).

With ``--reuse`` a store built before with the same ``--decisions`` and ``--seed`` is used as is
(the SQLite file, or the PostgreSQL schema ``relay_apibench_<decisions>_<seed>``, kept for the next run;
its indexes are brought in line with the migrations as they are now);
otherwise the SQLite file is rebuilt and the PostgreSQL schema is dropped at the end.

The measurement. ``create_app`` (what ``relay serve`` runs; its clock pinned to the store's "now")
serves on a port the OS picks (:class:`crm_sandbox.runner.SandboxServer`, a thread of this
process); the load comes from another process (httpx, ``--concurrency`` requests in flight on
keep-alive connections, a table per value), so the client does not share the server's interpreter.
Each endpoint's answers are checked first (the person asked for, only the owner asked for...), then
it gets a warm-up and ``--requests`` requests (or ``--max-seconds``, whichever comes first), with an
admin's token (a rep's for the ``(rep)`` rows): the "why" lookup of random people, the search by
email and by CRM id, assignments and clocks of random owners, runs, and every dashboard page (as
served: their figures are cached; the ``(figures uncached, direct)`` rows time the figure functions
themselves, called in this process). Prints p50, p99, requests per second and whether p99 is under
100 ms, SQLite and PostgreSQL side by side; requests that failed are counted and the server's
exceptions named. ``--profile`` adds, for each endpoint over 100 ms, its statements timed one by one
with the database's plan of the slowest; ``--try-indexes`` measures again with the indexes of
:data:`CANDIDATE_INDEXES` created by hand (they are dropped again afterwards).

    python bench/api.py [--decisions 1000000] [--backends sqlite,postgresql] [--requests 300] [--concurrency 1,4]
                        [--reuse] [--build-only] [--try-indexes] [--profile] [--only why,people] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import itertools
import json
import logging
import math
import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Connection, Engine, bindparam, event, text
from sqlalchemy.engine import make_url

from connector.config.loader import RelayConfig, load_config
from connector.core.identity import person_key
from connector.pipeline.rule_sets import rule_sets
from connector.store import migrate
from connector.store.db import create_engine_for
from connector.store.repositories.identities import relay_id_for_key
from connector.web.app import create_app
from crm_sandbox.runner import SandboxServer

SCRATCH = Path(tempfile.gettempdir()) / "apibench"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BUILD_VERSION = 5
"""Bumped whenever the generated store changes: ``--reuse`` rebuilds a store of another version."""
GOAL_MS = 100.0
WINDOW_DAYS = 180
RUN_MINUTES = 15
"""Each connection's scheduled sync runs this often (a smaller store: less often, so runs do not outnumber
decisions: at least 30 decisions a run)."""
DECISIONS_PER_RECORD = 1.6
TWIN_SHARE = 0.2
"""New person records that are a person already known in the other CRM (one identity, two records)."""
ROUTED_FIRST = 0.45
"""First decisions that route the person to an owner (the rest go to nurture), as in a sync of the seed."""
REASSIGNED = 0.12
"""Rescores of an owned person that move them to another owner (a new tier)."""
ROUTED_LATER = 0.2
"""Rescores of an unowned person that route them now (their score rose)."""
BATCH = 20_000

EPOCH = datetime(1970, 1, 1)
EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------- who owns what

SKIPPED_OWNERS = ("dana.whitfield@northwind.example", "lucas.silva@northwind.example")
"""The director (escalations only) and the inactive rep get no leads: 20 owners remain."""
ROLE_ROUTE = {
    "senior_rep": ("Hot", "hot_senior_rep", "senior_reps", "senior rep", 80, 100),
    "sales_rep": ("Warm", "warm_sales_rep", "sales_reps", "sales rep", 60, 79),
    "sdr": ("Qualified", "qualified_sdr", "sdr_team", "SDR team", 40, 59),
}
"""Role -> tier, rule, round-robin group, label, score range. Other roles get Cold leads of matched accounts."""
COLD_ROUTE = ("Cold", "matched_account_owner", None, "account owner", 10, 39)
TIER_MINUTES = {"Hot": 5, "Warm": 60, "Qualified": 1440, "Cold": 2880}
REGIONS = ("NA", "NA", "NA", "EMEA", "EMEA", "APAC")
COUNTRIES = {"NA": (("US", "CA", "San Francisco"), ("US", "MA", "Boston"), ("US", "TX", "Austin"),
                    ("US", "NY", "New York"), ("CA", "ON", "Toronto")),
             "EMEA": (("GB", None, "London"), ("DE", None, "Berlin"), ("FR", None, "Paris"),
                      ("NL", None, "Amsterdam")),
             "APAC": (("JP", None, "Tokyo"), ("SG", None, "Singapore"), ("AU", "NSW", "Sydney"))}

FIRST = ("Julia", "Jonas", "David", "Suresh", "Ines", "Mei", "Olu", "Sara", "Tomas", "Aiko", "Liam", "Nora",
         "Pablo", "Greta", "Ravi", "Hana", "Omar", "Lena", "Kofi", "Maya", "Ivan", "Zara", "Felix", "Rosa")
LAST = ("Schmidt", "Schneider", "Anderson", "Patel", "Costa", "Chen", "Okafor", "Rossi", "Novak", "Sato",
        "Walsh", "Berg", "Garcia", "Muller", "Iyer", "Kim", "Haddad", "Fischer", "Mensah", "Cohen")
COMPANY_WORDS = ("Pinewater", "Lumen", "Nimbusside", "Zephyrgate", "Orchidstone", "Ironclad", "Bluefin",
                 "Cobalt", "Harbor", "Quartz", "Sable", "Tidewell", "Vanguard", "Willow", "Amberly", "Brightpath")
COMPANY_TAILS = ("Systems", "Outfitters", "Advisory", "Brands", "Medical", "Capital", "Labs", "Logistics")
TITLES = (("Chief Revenue Officer", "c_level", 12), ("VP Sales", "vp", 10), ("Head of Sales", "director", 8),
          ("Sales Operations Manager", "manager", 6), ("Account Executive", "individual", 3),
          ("COO", "c_level", 12), ("Marketing Director", "director", 8), ("Analyst", "individual", 2))
INDUSTRIES = ("Technology", "Retail", "Financial Services", "Healthcare", "Manufacturing", "Education")
SOURCES = ("Web", "Webinar", "Partner Referral", "Trade Show", "LinkedIn", "Paid Search", "Purchased List")
SF_NEW, SF_WORKING = "Open - Not Contacted", "Working - Contacted"
HS_NEW, HS_WORKING = "NEW", "IN_PROGRESS"
DISPOSITIONS = (("Qualified", "create_opportunity", 0.30), ("Not Ready", "return_to_nurture", 0.25),
                ("Bad Fit", "disqualify", 0.20), ("No Response", "recycle", 0.20),
                ("Do Not Contact", "suppress", 0.05))

PERSON_OBJECTS = (("salesforce", "Lead", 0.45), ("salesforce", "Contact", 0.10), ("hubspot", "contacts", 0.45))
CONNECTIONS = ("salesforce", "hubspot")


# --------------------------------------------------------------------------- the tables loaded

TABLES: dict[str, tuple[str, ...]] = {
    "sync_runs": ("id", "connection", "object", "mode", "status", "started_at", "heartbeat_at", "finished_at",
                  "counts", "error", "holder"),
    "audit_log": ("id", "at", "run_id", "connection", "object", "crm_id", "relay_id", "action", "rules_version",
                  "detail"),
    "identities": ("relay_id", "kind", "key", "created_at"),
    "records": ("connection", "object", "crm_id", "kind", "canonical", "content_hash", "relay_id", "deleted",
                "merged_into", "first_seen", "last_seen"),
    "identity_links": ("connection", "object", "crm_id", "relay_id", "linked_at"),
    "assignments": ("id", "relay_id", "connection", "object", "crm_id", "owner_email", "owner_crm_id", "tier",
                    "rule", "reason", "score", "rules_version", "assigned_at", "sla_due", "status"),
    "sla_clocks": ("id", "connection", "object", "crm_id", "relay_id", "owner_email", "owner_crm_id", "tier",
                   "group_key", "region", "source", "started_at", "stage", "stage_since", "first_touch_at", "fired",
                   "next_due_at", "status", "closed_reason", "closed_at", "updated_at"),
    "dispositions": ("id", "connection", "object", "crm_id", "relay_id", "value", "stamp", "seen_at", "decided_at",
                     "owner_email", "action", "status", "recycle_at", "excluded_owner_email", "suppressed",
                     "new_owner_email", "acted_at", "opportunity_id", "contact_id", "account_id", "attempts", "error"),
    "handoffs": ("id", "connection", "object", "crm_id", "kind", "occurred_at", "recorded_at", "owner_email",
                 "receiver_email", "due_at", "done_at", "detail"),
    "governance_findings": ("id", "connection", "object", "crm_id", "key", "code", "message", "status", "occurrence",
                            "task_key", "first_seen", "last_seen", "resolved_at"),
    "approvals": ("id", "connection", "object", "crm_id", "matrix", "value", "approver_title", "approver_email",
                  "status", "task_key", "requested_at", "approved_by", "approved_at"),
    "api_calls": ("id", "run_id", "connection", "kind", "count", "at"),
    "data_quality": ("run_id", "source", "connection", "records", "fields", "completeness_percent", "duplicates",
                     "duplicate_percent", "emails", "invalid_emails", "phones", "invalid_phones", "enriched",
                     "completeness_target", "duplicates_target", "measured_at"),
    "api_budgets": ("connection", "kind", "limit_seen", "spent", "period", "grants", "seen", "updated_at"),
    "rules_versions": ("version", "rules", "first_seen", "last_seen", "source"),
}
SERIAL_TABLES = ("sync_runs", "audit_log", "assignments", "sla_clocks", "dispositions", "handoffs",
                 "governance_findings", "approvals", "api_calls")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Sink:
    """Rows to one store, in batches; ``ts`` turns epoch seconds into what the driver writes for a timestamp."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.counts: Counter[str] = Counter()
        self.seconds: dict[str, float] = defaultdict(float)

    def ts(self, seconds: float) -> Any:
        raise NotImplementedError

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        rows = self.rows[table]
        rows.append(row)
        if len(rows) >= BATCH:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.rows):
            rows = self.rows[name]
            if rows:
                started = time.perf_counter()
                self._write(name, rows)
                self.seconds[name] += time.perf_counter() - started
                self.counts[name] += len(rows)
                self.rows[name] = []

    def _write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """A statement for many rows (``?`` placeholders), through the connection's ``executemany``."""
        raise NotImplementedError


def _columns(table: str) -> str:
    return ", ".join(f'"{c}"' for c in TABLES[table])


_HOURS: dict[tuple[int, str], str] = {}


def _stamp(seconds: float, sep: str) -> str:
    """``YYYY-MM-DD<sep>HH:MM:SS.ffffff`` of epoch seconds (UTC), the hour's prefix formatted once."""
    micros = round(seconds * 1_000_000)
    hour, rest = divmod(micros, 3_600_000_000)
    prefix = _HOURS.get((hour, sep))
    if prefix is None:
        prefix = (EPOCH + timedelta(hours=hour)).strftime(f"%Y-%m-%d{sep}%H:")
        _HOURS[(hour, sep)] = prefix
    minute, rest = divmod(rest, 60_000_000)
    second, micro = divmod(rest, 1_000_000)
    return f"{prefix}{minute:02d}:{second:02d}.{micro:06d}"


class SqliteSink(Sink):
    def ts(self, seconds: float) -> Any:
        # What SQLAlchemy's SQLite DateTime writes (UTC, no offset, microseconds): sorts in time order.
        return _stamp(seconds, " ")

    def _write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in TABLES[table])
        self.conn.exec_driver_sql(f"INSERT INTO {table} ({_columns(table)}) VALUES ({marks})", rows)

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.exec_driver_sql(sql, rows)


class PostgresSink(Sink):
    def ts(self, seconds: float) -> Any:
        return EPOCH_UTC + timedelta(seconds=seconds)

    def _write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        raw: Any = self.conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_columns(table)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raw: Any = self.conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)


# --------------------------------------------------------------------------- the world generated


@dataclass
class Owner:
    email: str
    name: str
    role: str
    region: str
    index: int
    weight: float

    def crm_id(self, connection: str) -> str:
        return f"0055e00000000{self.index:02d}AAQ" if connection == "salesforce" else str(75_480_100 + self.index)


@dataclass
class Rec:
    """One person record's state while the decisions are generated."""

    index: int
    connection: str
    object: str
    crm_id: str
    person: int
    relay_id: str
    created: float
    last: float = 0.0
    score: int = 0
    category: str = "Cold"
    reason: str = ""
    track: str = "Awareness"
    sla_due: float | None = None
    assignment: int | None = None
    """Index of the active assignment."""
    clock: int | None = None
    """Index of the clock not closed yet (planned or open)."""
    status: str = ""
    disposition: str | None = None
    disposition_at: float | None = None
    converted: bool = False


@dataclass
class Clock:
    id: int
    rec: int
    owner: Owner
    tier: str
    group: str | None
    region: str
    started: float
    touch: float | None
    close: float | None
    close_reason: str | None
    fired: dict[str, float] = field(default_factory=dict)
    steps: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Assignment:
    id: int
    rec: int
    owner: Owner
    tier: str
    rule: str
    reason: str
    score: int
    version: str
    at: float
    due: float
    active: bool = True


class World:
    """Generates the store's rows for ``decisions`` decisions, in time order, into a :class:`Sink`."""

    def __init__(self, config: RelayConfig, decisions: int, seed: int, now: float) -> None:
        self.config = config
        self.decisions = decisions
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - WINDOW_DAYS * 86_400
        roster = [m for m in config.rules.routing.team if m.email not in SKIPPED_OWNERS and m.active]
        order = list(range(len(roster)))
        random.Random(seed + 1).shuffle(order)
        self.owners = [Owner(m.email, m.name, m.role, m.region, i, 1 / (rank + 1) ** 0.9)
                       for rank, (i, m) in enumerate((i, roster[i]) for i in order)]
        self.owner_weights = list(itertools.accumulate(o.weight for o in self.owners))
        self.sdrs = [o for o in self.owners if o.role == "sdr"]
        self.people_version, self.deals_version = list(rule_sets(config.rules))[:2]
        self.versions = (f"{self.people_version[:8]}0ld00001", f"{self.people_version[:8]}0ld00002",
                         self.people_version)
        self.records: list[Rec] = []
        self.people: list[list[int]] = []
        """Person index -> indexes of their records."""
        self.assignments: list[Assignment] = []
        self.clocks: list[Clock] = []
        self.heap: list[tuple[float, int, str, int]] = []
        self.seq = 0
        self.audit_id = 0
        slots = min(WINDOW_DAYS * 86_400 // (RUN_MINUTES * 60), max(10, decisions // 30))
        self.run_seconds = WINDOW_DAYS * 86_400 / slots
        self.runs = (slots + 1) * len(CONNECTIONS)
        self.run_counts: list[Counter[str]] = [Counter() for _ in range(self.runs + 1)]
        self.run_sources: list[Counter[str]] = [Counter() for _ in range(self.runs + 1)]
        self.deals: list[tuple[str, str, str, float, Owner, str, float, str]] = []
        self.disposition_rows = 0
        self.handoff_rows = 0
        self.sink: Sink | None = None
        self.load_counts: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers

    def _sink(self) -> Sink:
        assert self.sink is not None
        return self.sink

    def run_of(self, connection: str, at: float) -> int:
        slot = int((at - self.start) // self.run_seconds)
        return slot * len(CONNECTIONS) + CONNECTIONS.index(connection) + 1

    def version_at(self, at: float) -> str:
        third = (at - self.start) / (self.now - self.start)
        return self.versions[min(2, int(third * 3))]

    def iso(self, seconds: float) -> str:
        return _stamp(seconds, "T") + "+00:00"

    def audit(self, at: float, connection: str, object_name: str | None, crm_id: str | None, relay_id: str | None,
              action: str, detail: dict[str, Any], *, run: bool = True, version: str | None = None) -> None:
        """One audit row (``run``: written by the sync run of its time; False: by the worker, outside runs)."""
        self.audit_id += 1
        sink = self._sink()
        sink.add("audit_log", (self.audit_id, sink.ts(at), self.run_of(connection, at) if run else None, connection,
                               object_name, crm_id, relay_id, action, version, _dumps(detail)))

    def push(self, at: float, kind: str, index: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, index))

    @staticmethod
    def email_of(person: int) -> str:
        first, last = FIRST[person % len(FIRST)], LAST[(person // len(FIRST)) % len(LAST)]
        return f"{first}.{last}.{person}@{World.domain_of(person)}".lower()

    @staticmethod
    def company_of(person: int) -> str:
        c = (person * 7919) % 40_000
        return f"{COMPANY_WORDS[c % len(COMPANY_WORDS)]} {COMPANY_TAILS[(c // 16) % len(COMPANY_TAILS)]} {c // 128}"

    @staticmethod
    def domain_of(person: int) -> str:
        c = (person * 7919) % 40_000
        return f"{COMPANY_WORDS[c % len(COMPANY_WORDS)].lower()}{c // 16}.example"

    @staticmethod
    def account_domain(n: int) -> str:
        return f"{COMPANY_WORDS[n % len(COMPANY_WORDS)].lower()}-{n}.example"

    @staticmethod
    def crm_id_of(object_name: str, n: int) -> str:
        if object_name == "Lead":
            return f"00Q5e{n:010d}EAA"
        if object_name == "Contact":
            return f"0035e{n:010d}AAQ"
        return str(20_000_000 + n)

    # ------------------------------------------------------------------ decisions

    def generate(self, sink: Sink) -> None:
        """Every row, streamed into ``sink`` (audit in time order); the rest once the period is over."""
        self.sink = sink
        self._runs()
        records = max(1, round(self.decisions / DECISIONS_PER_RECORD))
        step = (self.now - 600 - self.start) / self.decisions
        created = 0
        rng = self.rng
        for j in range(self.decisions):
            at = self.start + (j + rng.random()) * step
            slot_start = self.start + (at - self.start) // self.run_seconds * self.run_seconds
            at = slot_start + 5 + (at - slot_start) / self.run_seconds * 40  # decided during the slot's run
            self._until(at)
            remaining, left = records - created, self.decisions - j
            if created == 0 or (remaining > 0 and rng.random() < remaining / left):
                self._new_record(created, at)
                created += 1
            else:
                # Rescores favour the recent: a record read again is more often one of the last months'.
                pick = int(created * (1 - rng.random() ** 1.6))
                self._decide(self.records[min(pick, created - 1)], at, first=False)
        self._until(self.now)
        self._rest()

    def _until(self, at: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= at:
            when, _, kind, index = heapq.heappop(heap)
            self._event(when, kind, index)

    def _new_record(self, n: int, at: float) -> None:
        rng = self.rng
        twin = None
        if n > 10 and rng.random() < TWIN_SHARE:
            other = self.records[rng.randrange(n)]
            if len(self.people[other.person]) == 1:
                twin = other
        if twin is not None:
            connection = "hubspot" if twin.connection == "salesforce" else "salesforce"
            object_name = "contacts" if connection == "hubspot" else "Lead"
            person = twin.person
            relay_id = twin.relay_id
        else:
            u, acc = rng.random(), 0.0
            connection, object_name = PERSON_OBJECTS[-1][:2]
            for c, o, share in PERSON_OBJECTS:
                acc += share
                if u < acc:
                    connection, object_name = c, o
                    break
            person = len(self.people)
            self.people.append([])
            relay_id = relay_id_for_key("person", self.email_of(person))
        rec = Rec(n, connection, object_name, self.crm_id_of(object_name, n), person, relay_id, at)
        rec.status = SF_NEW if connection == "salesforce" else HS_NEW
        self.people[person].append(n)
        self.records.append(rec)
        self._decide(rec, at, first=True)

    def _decide(self, rec: Rec, at: float, *, first: bool) -> None:
        rng = self.rng
        run = self.run_of(rec.connection, at)
        counts = self.run_counts[run]
        counts["read"] += 1
        counts["changed"] += 1
        self.run_sources[run][SOURCES[rec.person % len(SOURCES)]] += 1
        version = self.version_at(at)
        owned = rec.assignment is not None
        if owned:
            route = rng.random() < REASSIGNED
        else:
            route = rng.random() < (ROUTED_FIRST if first else ROUTED_LATER)
        rec.last = at
        if route:
            owner = rng.choices(self.owners, cum_weights=self.owner_weights)[0]
            self._route(rec, at, owner, version, counts)
        else:
            if owned:
                rec.score = max(0, min(100, rec.score + rng.randint(-4, 6)))
            else:
                rec.score = rng.randint(5, 39)
                rec.category = "Early" if rec.score >= 20 else "Cold"
                rec.track = ("Awareness", "Interested", "Engaged")[rec.score % 3]
                rec.reason = f"Score {rec.score} (category {rec.category}) -> marketing nurture, no sales owner, no SLA"
            scored = self._scored(rec)
            self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "scored", scored, version=version)
            self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "field_update",
                       {"fields": self._written(rec, None)}, version=version)

    def _scored(self, rec: Rec) -> dict[str, Any]:
        _title, level, seniority = TITLES[rec.person % len(TITLES)]
        region = REGIONS[rec.person % len(REGIONS)]
        country = COUNTRIES[region][rec.person % len(COUNTRIES[region])][0]
        total = rec.score
        demographic = min(total, seniority + 12)
        firmographic = min(total - demographic, 12)
        behavioural = total - demographic - firmographic
        views = max(0, behavioural // 2)
        items = [
            {"component": "demographic", "detail": level, "points": max(0, demographic - 12), "rule": "seniority"},
            {"component": "demographic", "detail": "5/5 fields filled", "points": min(6, demographic), "rule":
             "completeness"},
            {"component": "demographic", "detail": f"business domain {self.domain_of(rec.person)}",
             "points": min(6, max(0, demographic - 6)), "rule": "email"},
            {"component": "firmographic", "detail": INDUSTRIES[rec.person % len(INDUSTRIES)],
             "points": max(0, firmographic - 5), "rule": "industry"},
            {"component": "firmographic", "detail": country, "points": min(5, firmographic), "rule": "country"},
            {"component": "behavioural", "detail": f"{views} x 1, max 5", "points": min(5, views),
             "rule": "page_views"},
            {"component": "behavioural", "detail": "1 x 4, max 8", "points": max(0, behavioural - min(5, views)),
             "rule": "form_submissions"},
        ]
        return {"behavioural": behavioural, "category": rec.category, "demographic": demographic,
                "firmographic": firmographic, "items": items, "total": total}

    def _written(self, rec: Rec, owner: Owner | None) -> dict[str, Any]:
        due = self.iso(rec.sla_due) if rec.sla_due is not None else None
        if rec.connection == "salesforce":
            fields: dict[str, Any] = {"Relay_Id__c": rec.relay_id, "Relay_Nurture_Track__c": rec.track,
                                      "Relay_Routing_Reason__c": rec.reason, "Relay_SLA_Due__c": due,
                                      "Relay_Score_Category__c": rec.category, "Relay_Score__c": rec.score}
            if owner is not None:
                fields["OwnerId"] = owner.crm_id(rec.connection)
            return fields
        fields = {"relay_id": rec.relay_id, "relay_nurture_track": rec.track, "relay_routing_reason": rec.reason,
                  "relay_score": str(rec.score), "relay_score_category": rec.category, "relay_sla_due": due}
        if owner is not None:
            fields["hubspot_owner_id"] = owner.crm_id(rec.connection)
        return fields

    def _route(self, rec: Rec, at: float, owner: Owner, version: str, counts: Counter[str] | None,
               *, rule_override: str | None = None, reason_prefix: str | None = None) -> None:
        """A decision that gives the record an owner: assignment, clock, task, audit; the previous ones end."""
        rng = self.rng
        in_run = counts is not None
        tier, rule, group, label, low, high = ROLE_ROUTE.get(owner.role, COLD_ROUTE)
        if rule_override is not None:
            rule = rule_override
        region = owner.region if owner.region in ("NA", "EMEA", "APAC") else REGIONS[rec.person % len(REGIONS)]
        rec.score = rng.randint(low, high)
        rec.category = tier if tier != "Cold" else ("Early" if rec.score >= 20 else "Cold")
        rec.track = "Engaged"
        group_key = f"{group}:{region}" if group else None
        if group:
            rec.reason = (f"Score {rec.score} (category {rec.category}), SLA tier {tier} -> {label}, region {region}, "
                          "round robin")
        else:
            rec.reason = (f"Matched account {self.company_of(rec.person)} -> account owner {owner.email}; "
                          f"score {rec.score} (category {rec.category}), SLA tier {tier}")
        if reason_prefix:
            rec.reason = f"{reason_prefix}: {rec.reason}"
        seconds = TIER_MINUTES[tier] * 60
        due = at + seconds
        rec.sla_due = due
        if rec.connection == "salesforce":
            rec.status = SF_NEW
        else:
            rec.status = HS_NEW
        self._end_owner(rec, at)
        assignment = Assignment(len(self.assignments) + 1, rec.index, owner, tier, rule, rec.reason, rec.score,
                                version, at, due)
        self.assignments.append(assignment)
        rec.assignment = assignment.id - 1
        clock = self._clock(rec, owner, tier, group_key, region, at, seconds)
        scored = self._scored(rec)
        if counts is not None:
            counts["routed"] += 1
            counts["tasks"] += 1
            self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "scored", scored, version=version, run=in_run)
        sla = {"assigned_at": self.iso(at), "due_at": self.iso(due), "escalate_at": self.iso(due),
               "escalation_chain": ["tom.becker@northwind.example", "dana.whitfield@northwind.example"],
               "reminder_at": self.iso(at + seconds / 2), "response_minutes": TIER_MINUTES[tier],
               "task_priority": "High" if tier in ("Hot", "Warm") else "Normal", "tier": tier}
        self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "assigned",
                   {"account_match": None, "duplicates": [], "group": group_key, "kept_existing": False,
                    "matched_account": None, "owner_crm_id": owner.crm_id(rec.connection),
                    "owner_email": owner.email, "reason": rec.reason, "region": region, "rule": rule, "score": scored,
                    "sla": sla, "tier": tier}, version=version, run=in_run)
        self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "field_update",
                   {"fields": self._written(rec, owner)}, version=version, run=in_run)
        key = f"task:{rec.connection}:{rec.object}:{rec.crm_id}:{assignment.id}"
        task_object = "Task" if rec.connection == "salesforce" else "tasks"
        task_id = f"00T5e{assignment.id:010d}AAQ" if rec.connection == "salesforce" else str(90_000_000 + assignment.id)
        name = f"{FIRST[rec.person % len(FIRST)]} {LAST[(rec.person // len(FIRST)) % len(LAST)]}"
        self.audit(at, rec.connection, task_object, task_id, None, "task_created",
                   {"created": True, "idempotency_key": key,
                    "fields": {"ActivityDate": self.iso(due)[:10], "OwnerId": owner.crm_id(rec.connection),
                               "Priority": sla["task_priority"], "Status": "Not Started",
                               "Subject": f"Follow up: {name} ({self.company_of(rec.person)}), SLA tier {tier}, "
                                          f"score {rec.score} (category {rec.category})",
                               "Description": f"{rec.reason}\nSLA tier {tier}: respond by {self.iso(due)} "
                                              f"({TIER_MINUTES[tier]} min).",
                               "WhoId": rec.crm_id}}, version=version, run=in_run)
        self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "sla_clock_started",
                   {"owner_email": owner.email, "schedule": {s: self.iso(t) for t, s in clock.steps},
                    "source": "relay", "stage": "new", "started_at": self.iso(at), "tier": tier}, version=version, run=in_run)

    def _end_owner(self, rec: Rec, at: float) -> None:
        """A new owner: the active assignment is superseded, the clock still running closes (owner changed)."""
        if rec.assignment is not None:
            self.assignments[rec.assignment].active = False
            rec.assignment = None
        if rec.clock is not None:
            clock = self.clocks[rec.clock]
            if clock.close is None or clock.close > at:
                clock.close, clock.close_reason = at, "owner_changed"
                if clock.touch is not None and clock.touch > at:
                    clock.touch = None
                self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "sla_clock_closed",
                           {"owner_email": clock.owner.email, "reason": "owner_changed"},
                           version=self.version_at(at))
            rec.clock = None

    def _clock(self, rec: Rec, owner: Owner, tier: str, group_key: str | None, region: str, at: float,
               seconds: float) -> Clock:
        rng = self.rng
        fate = rng.random()
        steps: list[tuple[float, str]] = []
        touch: float | None
        close: float | None = None
        reason: str | None = None
        if fate < 0.80:  # worked within the SLA
            touch = at + seconds * min(0.95, math.exp(rng.gauss(math.log(0.25), 0.8)))
        elif fate < 0.94:  # worked late: reminded, escalated
            touch = at + seconds * (1.05 + 2 * rng.random())
        else:  # never worked: re-queued to the SDR team
            touch = None
        for share, step in ((0.5, "remind"), (1.0, "escalate_manager"), (2.0, "escalate_director")):
            if touch is None or touch > at + seconds * share:
                steps.append((at + seconds * share, step))
        if touch is None:
            close, reason = at + seconds * 2 + 60, "requeued"
        elif rng.random() > 0.06:  # most are worked to a close; a few sit in "contacted" (aging)
            close, reason = touch + rng.expovariate(1 / (3 * 86_400)), "worked"
        clock = Clock(len(self.clocks) + 1, rec.index, owner, tier, group_key, region, at, touch, close, reason,
                      steps=steps)
        self.clocks.append(clock)
        rec.clock = clock.id - 1
        for when, step in steps:
            self.push(when, step, clock.id - 1)
        if touch is not None:
            self.push(touch, "touch", clock.id - 1)
        if close is not None:
            self.push(close, "close", clock.id - 1)
        return clock

    # ------------------------------------------------------------------ what happens after a decision

    def _event(self, at: float, kind: str, index: int) -> None:
        if kind == "disposition":
            self._disposition(self.records[index], at)
            return
        clock = self.clocks[index]
        if clock.close is not None and at > clock.close:
            return  # the clock ended first (the owner changed): its later steps never fire
        rec = self.records[clock.rec]
        if kind == "touch":
            if clock.touch is not None and clock.touch == at:
                rec.status = SF_WORKING if rec.connection == "salesforce" else HS_WORKING
            return
        if kind == "close":
            if clock.close != at:
                return
            self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "sla_clock_closed",
                       {"owner_email": clock.owner.email, "reason": clock.close_reason,
                        "status": rec.status}, run=clock.close_reason == "worked", version=self.version_at(at))
            if rec.clock == index:
                rec.clock = None
            if clock.close_reason == "requeued":
                self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "sla_requeued",
                           self._step_detail(clock, "requeue", at, None), run=False, version=self.version_at(at))
                rec.clock = None
                sdr = self.rng.choices(self.sdrs, [o.weight for o in self.sdrs])[0]
                self._route(rec, at, sdr, self.version_at(at), None, rule_override="requeue",
                            reason_prefix="Re-queued after an SLA miss")
            elif clock.close_reason == "worked" and rec.assignment is not None and self.rng.random() < 0.10:
                self.push(at + self.rng.uniform(3600, 20 * 86_400), "disposition", rec.index)
            return
        clock.fired[kind] = at
        notify = {"remind": clock.owner.email, "escalate_manager": "tom.becker@northwind.example",
                  "escalate_director": "dana.whitfield@northwind.example"}[kind]
        action = "sla_reminder" if kind == "remind" else "sla_escalated"
        self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, action,
                   self._step_detail(clock, kind, at, notify), run=False, version=self.version_at(at))

    def _step_detail(self, clock: Clock, step: str, at: float, notify: str | None) -> dict[str, Any]:
        level = {"escalate_manager": "manager", "escalate_director": "director"}.get(step)
        return {"step": step, "level": level, "owner_email": clock.owner.email, "notify_email": notify,
                "tier": clock.tier, "reason": f"no first touch {round((at - clock.started) / 60)} min after the "
                                              f"assignment (tier {clock.tier})",
                "due_at": self.iso(at), "started_at": self.iso(clock.started),
                "task_key": f"sla:{clock.id}:{step}", "problem": None, "clock_id": clock.id}

    def _disposition(self, rec: Rec, at: float) -> None:
        if rec.assignment is None or rec.disposition is not None:
            return
        assignment = self.assignments[rec.assignment]
        u, acc = self.rng.random(), 0.0
        value, action = DISPOSITIONS[-1][:2]
        for v, a, share in DISPOSITIONS:
            acc += share
            if u < acc:
                value, action = v, a
                break
        rec.disposition, rec.disposition_at = value, at
        owner = assignment.owner
        sink = self._sink()
        self.disposition_rows += 1
        status, recycle_at, opportunity = "done", None, None
        if action == "recycle":
            recycle_at = at + 90 * 86_400
            status = "waiting" if recycle_at > self.now else "recycled"
        elif action == "create_opportunity":
            status = "converted"
            opportunity = f"0065e{len(self.deals):010d}AAQ" if rec.connection == "salesforce" \
                else str(30_000_000 + len(self.deals))
        rec.status = {"create_opportunity": "Qualified", "recycle": "Unqualified", "suppress": "Unqualified",
                      "disqualify": "Unqualified", "return_to_nurture": "Unqualified"}[action]
        if rec.connection == "hubspot":
            rec.status = "OPEN_DEAL" if action == "create_opportunity" else "UNQUALIFIED"
        self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "disposition",
                   {"action": action, "decided_at": self.iso(at), "disposition_at": self.iso(at),
                    "lead_status": rec.status, "ledger_status": status, "never_to": owner.email
                    if action == "recycle" else None, "note": None, "owner_email": owner.email,
                    "recycle_at": self.iso(recycle_at) if recycle_at else None, "suppressed": action == "suppress",
                    "value": value}, version=self.version_at(at))
        sink.add("dispositions", (
            self.disposition_rows, rec.connection, rec.object, rec.crm_id, rec.relay_id, value, self.iso(at),
            sink.ts(at), sink.ts(at), owner.email, action, status, sink.ts(recycle_at) if recycle_at else None,
            owner.email if action == "recycle" else None, action == "suppress", None,
            sink.ts(at) if status in ("converted", "recycled") else None, opportunity, None, None, 0, None))
        if action == "create_opportunity" and opportunity is not None:
            ae = self.rng.choice([o for o in self.owners if o.role in ("sales_rep", "senior_rep")])
            self.handoff_rows += 1
            sink.add("handoffs", (
                self.handoff_rows, rec.connection, rec.object, rec.crm_id, "sdr_to_ae", sink.ts(at), sink.ts(at),
                owner.email, ae.email, sink.ts(at + 86_400), sink.ts(at + 3600) if at + 3600 < self.now else None,
                _dumps({"reason": f"the owner {owner.email} hands over to {ae.email}, round robin",
                        "checklist": {"meeting_outcome": "Qualified on the call", "next_step": "Book the demo"},
                        "task": "New opportunity from SDR: review the handoff"})))
            for action_name, detail in (
                    ("handoff", {"from": owner.email, "to": ae.email, "kind": "sdr_to_ae", "problem": None}),
                    ("converted", {"opportunity_id": opportunity, "ae_email": ae.email, "disposition": value,
                                   "already_converted": False}),
                    ("handoff_done", {"kind": "sdr_to_ae", "opportunity_id": opportunity, "to": ae.email,
                                      "problem": None})):
                self.audit(at, rec.connection, rec.object, rec.crm_id, rec.relay_id, action_name, detail,
                           version=self.version_at(at))
            rec.converted = rec.connection == "salesforce"
            self.deals.append((rec.connection, "Opportunity" if rec.connection == "salesforce" else "deals",
                               opportunity, at, ae, self.company_of(rec.person), self.rng.uniform(5_000, 120_000),
                               rec.relay_id))
        elif action == "recycle" and recycle_at is not None and recycle_at <= self.now:
            new_owner = self.rng.choices(self.owners, cum_weights=self.owner_weights)[0]
            self.audit(recycle_at, rec.connection, rec.object, rec.crm_id, rec.relay_id, "recycled",
                       {"decided_at": self.iso(at), "disposition": value, "new_owner_email": new_owner.email,
                        "reason": "recycled after 90 days", "recycle_at": self.iso(recycle_at),
                        "returned_by": owner.email}, run=False, version=self.version_at(recycle_at))

    # ------------------------------------------------------------------ the rest: state at "now"

    def _runs(self) -> None:
        sink = self._sink()
        for run in range(1, self.runs + 1):
            slot, connection = divmod(run - 1, len(CONNECTIONS))
            started = self.start + slot * self.run_seconds
            sink.add("sync_runs", (run, CONNECTIONS[connection], None, "full" if slot == 0 else "incremental",
                                   "succeeded", sink.ts(started), sink.ts(started + 45), sink.ts(started + 50),
                                   "{}", None, f"relay-worker:{1000 + slot % 7}:{int(self.start)}"))
        sink.flush("sync_runs")

    def _rest(self) -> None:
        sink = self._sink()
        sink.flush("audit_log")
        now = self.now
        self._identities_and_records()
        for a in self.assignments:
            rec = self.records[a.rec]
            sink.add("assignments", (a.id, rec.relay_id, rec.connection, rec.object, rec.crm_id, a.owner.email,
                                     a.owner.crm_id(rec.connection), a.tier, a.rule, a.reason, a.score, a.version,
                                     sink.ts(a.at), sink.ts(a.due), "active" if a.active else "superseded"))
        sink.flush("assignments")
        contacted = self.config.rules.sla.aging.contacted_minutes or 4320
        for c in self.clocks:
            rec = self.records[c.rec]
            closed = c.close is not None and c.close <= now
            touch = c.touch if c.touch is not None and c.touch <= now else None
            fired = {step: self.iso(when) for step, when in c.fired.items()}
            stage = "contacted" if touch is not None else "new"
            if closed and c.close_reason == "worked":
                stage = "other"
            if closed:
                next_due = None
            elif touch is None:
                later = [when for when, _ in c.steps if when > now]
                next_due = min(later) if later else c.started + TIER_MINUTES[c.tier] * 120
            else:
                next_due = touch + contacted * 60
            sink.add("sla_clocks", (
                c.id, rec.connection, rec.object, rec.crm_id, rec.relay_id, c.owner.email,
                c.owner.crm_id(rec.connection), c.tier, c.group, c.region, "relay", sink.ts(c.started), stage,
                sink.ts(touch if touch is not None else c.started), sink.ts(touch) if touch is not None else None,
                _dumps(fired), sink.ts(next_due) if next_due is not None else None, "closed" if closed else "open",
                c.close_reason if closed else None, sink.ts(c.close) if closed and c.close is not None else None,
                sink.ts(min(now, c.close if closed and c.close is not None else (touch or c.started))),
            ))
        sink.flush("sla_clocks")
        self._deals_and_findings()
        self._run_rows()
        self.clocks.clear()
        self.assignments.clear()

    def _identities_and_records(self) -> None:
        sink = self._sink()
        for person, indexes in enumerate(self.people):
            first = self.records[indexes[0]]
            sink.add("identities", (first.relay_id, "person", self.email_of(person), sink.ts(first.created)))
        accounts = max(1, len(self.people) // 25)
        for n in range(accounts):
            domain = self.account_domain(n)
            sink.add("identities", (relay_id_for_key("account", domain), "account", domain,
                                    sink.ts(self.start + n * (self.now - self.start) / accounts)))
        sink.flush("identities")
        for rec in self.records:
            canonical = self._canonical(rec)
            document = _dumps(canonical)
            sink.add("records", (rec.connection, rec.object, rec.crm_id, "person", document,
                                 hashlib.sha256(document.encode()).hexdigest(), rec.relay_id, False, None,
                                 sink.ts(rec.created), sink.ts(max(rec.last, rec.disposition_at or 0))))
            sink.add("identity_links", (rec.connection, rec.object, rec.crm_id, rec.relay_id, sink.ts(rec.created)))
        for n in range(accounts):
            connection, object_name = ("salesforce", "Account") if n % 2 == 0 else ("hubspot", "companies")
            domain = self.account_domain(n)
            crm_id = f"0015e{n:010d}AAA" if connection == "salesforce" else str(5_000_000 + n)
            owner = self.owners[n % len(self.owners)]
            canonical = {"annual_revenue": float(1_000_000 + n * 37 % 9_000_000), "country": "US", "domain": domain,
                         "employees": 10 + n % 5000, "industry": INDUSTRIES[n % len(INDUSTRIES)],
                         "last_activity_at": None, "name": self.company_of(n * 25), "open_opportunities": n % 3,
                         "owner_id": owner.crm_id(connection), "relay_id": None, "state": "CA",
                         "website": f"https://www.{domain}"}
            document = _dumps(canonical)
            at = sink.ts(self.start + n * (self.now - self.start) / accounts)
            relay_id = relay_id_for_key("account", domain)
            sink.add("records", (connection, object_name, crm_id, "account", document,
                                 hashlib.sha256(document.encode()).hexdigest(), relay_id, False, None, at, at))
            sink.add("identity_links", (connection, object_name, crm_id, relay_id, at))
        sink.flush("records")
        sink.flush("identity_links")

    def _canonical(self, rec: Rec) -> dict[str, Any]:
        p = rec.person
        region = REGIONS[p % len(REGIONS)]
        country, state, city = COUNTRIES[region][p % len(COUNTRIES[region])]
        title = TITLES[p % len(TITLES)][0]
        owner = self.assignments[rec.assignment].owner if rec.assignment is not None else None
        values: dict[str, Any] = {
            "city": city, "content_downloads": p % 3, "country": country,
            "created_at": self.iso(rec.created - 3600 * (p % 500)), "demo_requested": p % 11 == 0,
            "disposition": rec.disposition, "disposition_at": self.iso(rec.disposition_at)
            if rec.disposition_at else None, "email": self.email_of(p), "email_clicks": p % 4, "email_opt_out": False,
            "first_name": FIRST[p % len(FIRST)], "form_submissions": p % 2, "last_name":
            LAST[(p // len(FIRST)) % len(LAST)], "lead_source": SOURCES[p % len(SOURCES)],
            "owner_id": owner.crm_id(rec.connection) if owner else None, "page_views": p % 9,
            "phone": f"+1415555{p % 10_000:04d}" if p % 5 else None, "pricing_page_visits": p % 2,
            "relay_id": rec.relay_id, "relay_matched_account": None, "relay_nurture_track": rec.track,
            "relay_routing_reason": rec.reason, "relay_score": rec.score, "relay_score_category": rec.category,
            "relay_sla_due": self.iso(rec.sla_due) if rec.sla_due is not None else None, "state": state,
            "title": title, "webinar_attended": p % 6 == 0,
        }
        if rec.object != "Contact":
            values.update({
                "annual_revenue": float(250_000 + (p * 104_729) % 50_000_000) if p % 3 else None,
                "authority": None, "budget": None, "company": self.company_of(p), "employees": 5 + p % 4000,
                "handoff_notes": None, "industry": INDUSTRIES[p % len(INDUSTRIES)], "is_converted": rec.converted,
                "meeting_outcome": None, "need": None, "next_step": None, "status": rec.status,
                "timeline": None, "website": f"https://{self.domain_of(p)}",
            })
        return dict(sorted(values.items()))

    def _deals_and_findings(self) -> None:
        sink = self._sink()
        rng = self.rng
        extra = max(0, len(self.records) // 40 - len(self.deals))
        closers = [o for o in self.owners if o.role in ("sales_rep", "senior_rep", "sales_manager")]
        for n in range(extra):
            connection = CONNECTIONS[n % 2]
            at = self.start + rng.random() * (self.now - self.start)
            crm_id = f"0065e{len(self.deals):010d}AAQ" if connection == "salesforce" \
                else str(30_000_000 + len(self.deals))
            self.deals.append((connection, "Opportunity" if connection == "salesforce" else "deals", crm_id, at,
                               rng.choice(closers), self.company_of(n * 13), rng.uniform(5_000, 150_000), ""))
        findings = approvals = 0
        sf_stages = ("Prospecting", "Discovery", "Solution Design", "Proposal", "Negotiation", "Closed Won",
                     "Closed Lost")
        hs_stages = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                     "contractsent", "closedwon", "closedlost")
        for connection, object_name, crm_id, at, owner, company, amount, _relay in self.deals:
            stage_index = min(6, int(rng.random() * 7 * min(1.0, (self.now - at) / (60 * 86_400))))
            stage = (sf_stages if connection == "salesforce" else hs_stages)[stage_index]
            canonical: dict[str, Any] = {
                "amount": round(amount, 2), "close_date": self.iso(at + 45 * 86_400)[:10],
                "created_at": self.iso(at), "is_closed": stage_index >= 5, "is_won": stage_index == 5,
                "name": f"{company} - Platform", "next_step": "Book the discovery call",
                "owner_id": owner.crm_id(connection), "stage": stage, "relay_gate_status": "passed",
                "discount_percent": None, "loss_reason": "Price" if stage_index == 6 else None,
            }
            if connection == "hubspot":
                canonical["pipeline"] = "default"
            document = _dumps(dict(sorted(canonical.items())))
            sink.add("records", (connection, object_name, crm_id, "deal", document,
                                 hashlib.sha256(document.encode()).hexdigest(), None, False, None, sink.ts(at),
                                 sink.ts(min(self.now, at + 30 * 86_400))))
            if stage_index >= 5:
                self.handoff_rows += 1
                closed = min(self.now, at + 40 * 86_400)
                sink.add("handoffs", (
                    self.handoff_rows, connection, object_name, crm_id,
                    "closed_won" if stage_index == 5 else "closed_lost", sink.ts(closed), sink.ts(closed + 600),
                    owner.email, "grace.kim@northwind.example" if stage_index == 5 else None,
                    sink.ts(closed + 3 * 86_400), sink.ts(closed + 2 * 86_400) if closed + 2 * 86_400 < self.now
                    else None, _dumps({"task": "Kickoff with the customer", "form": {"complete": True}})))
            if rng.random() < 0.3:
                findings += 1
                code = rng.choice(("stage_skipped", "exit_criteria_missing", "close_date_past", "amount_missing"))
                first = at + rng.uniform(0, 20 * 86_400)
                resolved = first + rng.uniform(86_400, 15 * 86_400)
                open_ = resolved > self.now
                message = f"{connection}/{object_name}/{crm_id}: {code.replace('_', ' ')} at stage {stage}"
                sink.add("governance_findings", (
                    findings, connection, object_name, crm_id, f"{connection}/{object_name}/{crm_id}:{code}", code,
                    message, "open" if open_ else "resolved", 1, f"task:{crm_id}:{code}", sink.ts(first),
                    sink.ts(min(first + 86_400, self.now)), None if open_ else sink.ts(resolved)))
                self.audit(min(first, self.now), connection, object_name, crm_id, None, "governance_finding",
                           {"assignee": owner.email, "code": code, "message": message, "occurrence": 1,
                            "problem": None, "task": f"Fix: {code.replace('_', ' ')}"},
                           run=False, version=self.deals_version)
            if rng.random() < 0.05:
                approvals += 1
                requested = at + rng.uniform(0, 10 * 86_400)
                approved = requested + rng.uniform(3600, 3 * 86_400)
                done = approved <= self.now
                sink.add("approvals", (
                    approvals, connection, object_name, crm_id, "discount", round(rng.uniform(11, 30), 1),
                    "Sales Manager", "priya.nair@northwind.example", "approved" if done else "requested",
                    f"approval:{crm_id}", sink.ts(min(requested, self.now)),
                    "Priya Nair" if done else None, sink.ts(approved) if done else None))
        sink.flush()

    def _run_rows(self) -> None:
        sink = self._sink()
        call_id = 0
        updates: list[tuple[Any, ...]] = []
        required = list(self.config.rules.quality.required_fields)
        for run in range(1, self.runs + 1):
            slot, connection_index = divmod(run - 1, len(CONNECTIONS))
            connection = CONNECTIONS[connection_index]
            started = self.start + slot * self.run_seconds
            counts = self.run_counts[run]
            read = counts["read"]
            calls = {"read": 1 + read // 200, "write": (1 + counts["changed"] // 200) if counts["changed"] else 0}
            if slot % max(1, int(86_400 // self.run_seconds)) == 0:
                calls["auth"] = 1
            for kind, n in calls.items():
                if n:
                    call_id += 1
                    sink.add("api_calls", (call_id, run, connection, kind, n, sink.ts(started + 48)))
            summary = {"read": read, "changed": counts["changed"], "routed": counts["routed"],
                       "tasks": counts["tasks"], "api_calls": sum(calls.values()), "errors": 0}
            updates.append((_dumps(summary), run))
            for source, n in self.run_sources[run].items():
                fields = {name: {"filled": n - (n // 9 if name == "company" else 0), "measured": n}
                          for name in required}
                dups = n // 30
                sink.add("data_quality", (
                    run, source, connection, n, _dumps(fields), 98.5, dups, round(100 * dups / n, 2), n, n // 80,
                    n - n // 5, n // 60, None, 95.0, 2.0, sink.ts(started + 47)))
        sink.flush()
        sink.execute_many("UPDATE sync_runs SET counts = ? WHERE id = ?", updates)
        day = (EPOCH_UTC + timedelta(seconds=self.now)).date().isoformat()
        for connection, limit in (("salesforce", 100_000), ("hubspot", 250_000)):
            seen = {"at": self.iso(self.now), "day_limit": limit, "day_used": limit // 7, "status": 200}
            sink.add("api_budgets", (connection, "window", None, 0, None, "[]", _dumps(seen), sink.ts(self.now)))
            sink.add("api_budgets", (connection, "day", limit, limit // 7, day, "[]", _dumps(seen),
                                     sink.ts(self.now)))
        current = rule_sets(self.config.rules)
        people = current[self.people_version]
        for i, version in enumerate(self.versions):
            first = self.start + i * (self.now - self.start) / 3
            rules = people if version == self.people_version else {**people, "note": f"version {i + 1}"}
            sink.add("rules_versions", (version, _dumps(rules), sink.ts(first),
                                        sink.ts(self.now if version == self.people_version else
                                                first + (self.now - self.start) / 3), "config/rules"))
        sink.add("rules_versions", (self.deals_version, _dumps(current[self.deals_version]), sink.ts(self.start),
                                    sink.ts(self.now), "config/rules"))
        sink.flush()


# --------------------------------------------------------------------------- building a store


@dataclass
class Store:
    """A built store: its backend's label, URL and engine, and what was built (``meta``)."""

    backend: str
    url: str
    engine: Engine
    meta: dict[str, Any]


def _wanted(args: argparse.Namespace) -> dict[str, Any]:
    return {"version": BUILD_VERSION, "decisions": args.decisions, "seed": args.seed}


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """The indexes of the loaded tables that back no constraint, with the DDL that made them."""
    tables = list(TABLES)
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
            f"({', '.join('?' for _ in tables)})", tuple(tables)).all()
    else:
        rows = conn.execute(text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(:tables) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = "
            "(quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)"), {"tables": tables}).all()
    return [(str(name), str(sql)) for name, sql in rows]


def _index_ddl(conn: Connection) -> dict[str, str]:
    """Name -> DDL of the secondary indexes, without the schema's name (comparable across schemas)."""
    return {name: re.sub(r" ON \S+\.", " ON ", ddl) for name, ddl in _secondary_indexes(conn)}


def _migrated_indexes(url: str) -> dict[str, str]:
    """The secondary indexes the migrations make, read from an empty store migrated at ``url``."""
    engine = create_engine_for(url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            return _index_ddl(conn)
    finally:
        engine.dispose()


def _in_line(engine: Engine, migrated: dict[str, str], label: str) -> bool:
    """Bring a reused store's indexes in line with the migrations as they are now (the revision must match).

    Returns False when the store is at another migration revision (it must be built again).
    """
    with engine.connect() as conn:
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if revision != migrate.head_revision():
            print(f"{label}: the kept store is at migration {revision}, the code's is {migrate.head_revision()}: "
                  "building it again", flush=True)
            return False
        have = _index_ddl(conn)
    stale = [name for name, ddl in have.items() if migrated.get(name) != ddl]
    missing = [name for name, ddl in migrated.items() if have.get(name) != ddl]
    for name in stale:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    for name in missing:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql(migrated[name])
        print(f"{label}: the migrations' index {name} created in {_duration(time.perf_counter() - started)}",
              flush=True)
    if stale or missing:
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        print(f"{label}: indexes in line with the migrations (dropped {', '.join(stale) or 'none'}; created "
              f"{', '.join(missing) or 'none'})", flush=True)
    return True


def _load(engine: Engine, world: World, sink_type: type[Sink]) -> dict[str, float]:
    """Drop the secondary indexes, stream the world in, recreate them (the migration's DDL); the seconds of each."""
    seconds: dict[str, float] = {}
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # outside a transaction: on the driver's connection
            raw: Any = conn.connection.driver_connection
            for pragma in ("synchronous = OFF", "cache_size = -1000000", "temp_store = MEMORY"):
                raw.execute(f"PRAGMA {pragma}")
        indexes = _secondary_indexes(conn)
        conn.rollback()
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        conn.commit()
        sink = sink_type(conn)
        started = time.perf_counter()
        world.generate(sink)
        sink.flush()
        conn.commit()
        seconds["generate and load"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, ddl in indexes:
            conn.exec_driver_sql(ddl)
        conn.commit()
        seconds["indexes"] = time.perf_counter() - started
        if conn.dialect.name == "postgresql":
            for table in SERIAL_TABLES:
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
            conn.commit()
        world.load_counts = dict(sink.counts)
    if engine.dialect.name == "postgresql":
        # A store that grew over months has been vacuumed and analysed by autovacuum.
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        seconds["vacuum analyze"] = time.perf_counter() - started
    return seconds


def _build(engine: Engine, config: RelayConfig, args: argparse.Namespace, sink_type: type[Sink],
           label: str) -> dict[str, Any]:
    started = time.perf_counter()
    migrate.upgrade(engine)
    now = float(int(time.time()))
    world = World(config, args.decisions, args.seed, now)
    print(f"{label}: building {args.decisions:,} decisions ...", flush=True)
    seconds = _load(engine, world, sink_type)
    total = time.perf_counter() - started
    counts = world.load_counts
    meta = {**_wanted(args), "now": now, "build_seconds": round(total, 1),
            "steps": {k: round(v, 1) for k, v in seconds.items()}, "rows": counts}
    return meta


def _print_build(label: str, meta: dict[str, Any], reused: bool) -> None:
    rows = meta["rows"]
    shown = ", ".join(f"{t} {rows.get(t, 0):,}" for t in ("audit_log", "records", "identities", "identity_links",
                                                           "assignments", "sla_clocks", "sync_runs"))
    how = "reused (built in" if reused else "built in"
    steps = ", ".join(f"{k} {_duration(v)}" for k, v in meta["steps"].items())
    print(f"{label}: {meta['decisions']:,} decisions, {how} {_duration(meta['build_seconds'])}: {steps}"
          f"{')' if reused else ''}\n  {shown}; {sum(rows.values()):,} rows in all", flush=True)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


@contextmanager
def sqlite_store(args: argparse.Namespace, config: RelayConfig) -> Iterator[Store]:
    """The SQLite store of ``args``: built in ``--scratch`` (or reused with ``--reuse``)."""
    folder = Path(args.scratch)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"store-{args.decisions}-{args.seed}.db"
    meta_path = path.with_suffix(".json")
    url = f"sqlite:///{path}"
    meta: dict[str, Any] | None = None
    if args.reuse and meta_path.exists() and path.exists():
        found = json.loads(meta_path.read_text())
        if all(found.get(k) == v for k, v in _wanted(args).items()):
            reference = folder / f"reference-{uuid.uuid4().hex[:8]}.db"
            try:
                migrated = _migrated_indexes(f"sqlite:///{reference}")
            finally:
                for leftover in (reference, Path(f"{reference}-wal"), Path(f"{reference}-shm")):
                    leftover.unlink(missing_ok=True)
            engine = create_engine_for(url)
            try:
                meta = found if _in_line(engine, migrated, "SQLite") else None
            finally:
                engine.dispose()
    reused = meta is not None
    if meta is None:
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), meta_path):
            stale.unlink(missing_ok=True)
        engine = create_engine_for(url)
        try:
            meta = _build(engine, config, args, SqliteSink, "SQLite")
        finally:
            engine.dispose()
        meta_path.write_text(json.dumps(meta, indent=1))
    _print_build("SQLite", meta, reused)
    engine = create_engine_for(url)  # what `relay serve` opens (open_store), without its integrity check
    try:
        yield Store("SQLite", url, engine, meta)
    finally:
        engine.dispose()


def _schema_url(base: str, schema: str) -> str:
    return make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


@contextmanager
def postgres_store(args: argparse.Namespace, config: RelayConfig) -> Iterator[Store]:
    """The PostgreSQL store of ``args``: a fresh schema (dropped afterwards), or with ``--reuse`` a kept one."""
    admin = create_engine_for(args.database)
    kept = f"relay_apibench_{args.decisions}_{args.seed}"
    schema = kept if args.reuse else f"relay_apibench_{uuid.uuid4().hex[:12]}"
    meta: dict[str, Any] | None = None
    with admin.begin() as conn:
        if args.reuse:
            comment = conn.execute(text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                        "WHERE nspname = :s"), {"s": schema}).scalar()
            if comment:
                found = json.loads(comment)
                if all(found.get(k) == v for k, v in _wanted(args).items()):
                    meta = found
    url = _schema_url(args.database, schema)
    if meta is not None:
        reference = f"relay_apibench_ref_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{reference}"')
        try:
            migrated = _migrated_indexes(_schema_url(args.database, reference))
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{reference}" CASCADE')
        engine = create_engine_for(url)
        try:
            meta = meta if _in_line(engine, migrated, "PostgreSQL") else None
        finally:
            engine.dispose()
    reused = meta is not None
    if meta is None:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        if meta is None:
            engine = create_engine_for(url)
            try:
                meta = _build(engine, config, args, PostgresSink, "PostgreSQL")
            finally:
                engine.dispose()
            if args.reuse:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f"COMMENT ON SCHEMA \"{schema}\" IS '{json.dumps(meta)}'")
        _print_build("PostgreSQL", meta, reused)
        engine = create_engine_for(url)
        try:
            yield Store("PostgreSQL", url, engine, meta)
        finally:
            engine.dispose()
    finally:
        if not args.reuse:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


# --------------------------------------------------------------------------- what is measured


@dataclass
class Sample:
    """What the requests ask about, drawn from the store: people, emails, owners."""

    refs: list[tuple[str, str, str]]
    emails: list[str]
    owners: list[str]
    rep: str
    """The owner with the most clocks: a Rep's pages at their heaviest."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: Callable[[Sample, random.Random], str]
    direct: Callable[[Bench, Sample, random.Random], Any]
    """The same work called in this process (for ``--profile``)."""
    check: Callable[[str, Any], str | None] = lambda _path, _answer: None
    """What is wrong with an answer (JSON, or the page's HTML) to ``path``; None when it is right."""
    role: str = "admin"
    page: bool = False
    warmup: int = 10


@dataclass
class Bench:
    """One backend's running app and what the endpoints' direct calls need."""

    store: Store
    config: RelayConfig
    console: Any
    now: datetime
    url: str
    tokens: dict[str, str]
    pages: str
    """How the dashboard's pages are reached: ``routed by create_app``, ``mounted by the bench`` or ``called
    directly``."""
    server_errors: list[str]


def _figures() -> Any:
    import importlib

    return importlib.import_module("connector.pipeline.dashboard")


def _page(name: str, owner: bool = False) -> Callable[[Bench, Sample, random.Random], Any]:
    def call(b: Bench, s: Sample, _r: random.Random) -> Any:
        figures = _figures()
        since = figures.since_of(figures.DEFAULT_PERIOD, b.now)
        function = getattr(figures, f"{name}_figures")
        kwargs = {"owner": s.rep} if owner else {}
        return function(b.store.engine, b.config, now=b.now, since=since, **kwargs)
    return call


def _why(b: Bench, s: Sample, r: random.Random) -> Any:
    ref = r.choice(s.refs)
    b.console.owners_of(*ref)
    return b.console.person(*ref)


def _why_page(b: Bench, s: Sample, r: random.Random) -> Any:
    person = _why(b, s, r)
    return [_figures().explain(entry) for entry in person["trail"]]


def _ref_path(prefix: str) -> Callable[[Sample, random.Random], str]:
    return lambda s, r: prefix + "/".join(r.choice(s.refs))


def _query(path: str) -> str:
    return path.partition("=")[2]


def _has_ref(prefix: str) -> Callable[[str, Any], str | None]:
    def check(path: str, answer: Any) -> str | None:
        connection, object_name, crm_id = path.removeprefix(prefix).split("/")
        records = answer.get("records", [])
        if not any((r["connection"], r["object"], r["crm_id"]) == (connection, object_name, crm_id) for r in records):
            return f"{path}: the record is not among the person's records"
        actions = {entry["action"] for entry in answer.get("trail", [])}
        if "scored" not in actions or "field_update" not in actions:
            return f"{path}: the trail has no scored or field_update entry ({sorted(actions)})"
        return None
    return check


def _all_emails(path: str, answer: Any) -> str | None:
    wanted = _query(path)
    if not answer or any(item["email"] != wanted for item in answer):
        return f"{path}: expected the records of {wanted}, got {[item['email'] for item in answer]}"
    return None


def _the_record(path: str, answer: Any) -> str | None:
    wanted = _query(path)
    if not any(item["crm_id"] == wanted for item in answer):
        return f"{path}: record {wanted} not found"
    return None


def _owned_by(path: str, answer: Any) -> str | None:
    owner = _query(path) if "owner=" in path else None
    if not answer and owner is None:  # an owner may have no open clock; the store has some
        return f"{path}: nothing"
    if owner is not None and any(item["owner_email"].lower() != owner for item in answer):
        return f"{path}: another owner's rows"
    return None


def _not_empty(path: str, answer: Any) -> str | None:
    return None if answer else f"{path}: nothing"


def _page_shows(what: Callable[[str], str]) -> Callable[[str, Any], str | None]:
    def check(path: str, answer: Any) -> str | None:
        shown = what(path)
        return None if "</html>" in answer and shown in answer else f"{path}: the page does not show {shown!r}"
    return check


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET /me (the token check alone)", lambda s, r: "/api/v1/me",
             lambda b, s, r: b.console.authenticate(b.tokens["admin"]),
             check=lambda p, a: None if a.get("role") == "admin" else f"{p}: {a}"),
    Endpoint("GET /people/{connection}/{object}/{id} (why)", _ref_path("/api/v1/people/"), _why,
             check=_has_ref("/api/v1/people/")),
    Endpoint("GET /people?q=<email>", lambda s, r: f"/api/v1/people?q={r.choice(s.emails)}",
             lambda b, s, r: b.console.find_people(r.choice(s.emails)), check=_all_emails),
    Endpoint("GET /people?q=<crm id>", lambda s, r: f"/api/v1/people?q={r.choice(s.refs)[2]}",
             lambda b, s, r: b.console.find_people(r.choice(s.refs)[2]), check=_the_record),
    Endpoint("GET /assignments?owner=", lambda s, r: f"/api/v1/assignments?owner={r.choice(s.owners)}",
             lambda b, s, r: b.console.assignments(owner=r.choice(s.owners)), check=_owned_by),
    Endpoint("GET /assignments", lambda s, r: "/api/v1/assignments", lambda b, s, r: b.console.assignments(),
             check=_owned_by),
    Endpoint("GET /clocks?owner=", lambda s, r: f"/api/v1/clocks?owner={r.choice(s.owners)}",
             lambda b, s, r: b.console.clocks(owner=r.choice(s.owners)), check=_owned_by),
    Endpoint("GET /clocks", lambda s, r: "/api/v1/clocks", lambda b, s, r: b.console.clocks(), check=_owned_by),
    Endpoint("GET /runs", lambda s, r: "/api/v1/runs", lambda b, s, r: b.console.runs(), check=_not_empty),
    Endpoint("dashboard SLA", lambda s, r: "/dashboard/sla", _page("sla"), _page_shows(lambda p: "SLA"), page=True,
             warmup=2),
    Endpoint("dashboard SLA (rep)", lambda s, r: "/dashboard/sla", _page("sla", owner=True),
             _page_shows(lambda p: "SLA"), role="rep", page=True, warmup=2),
    Endpoint("dashboard Aging", lambda s, r: "/dashboard/aging", _page("aging"), _page_shows(lambda p: "Aging"),
             page=True, warmup=2),
    Endpoint("dashboard Aging (rep)", lambda s, r: "/dashboard/aging", _page("aging", owner=True),
             _page_shows(lambda p: "Aging"), role="rep", page=True, warmup=2),
    Endpoint("dashboard Funnel", lambda s, r: "/dashboard/funnel", _page("funnel"), _page_shows(lambda p: "Funnel"),
             page=True, warmup=0),
    Endpoint("dashboard Fairness", lambda s, r: "/dashboard/fairness", _page("fairness"),
             _page_shows(lambda p: "Fairness"), page=True, warmup=1),
    Endpoint("dashboard Data quality", lambda s, r: "/dashboard/quality", _page("quality"),
             _page_shows(lambda p: "quality"), page=True, warmup=2),
    Endpoint("dashboard API usage", lambda s, r: "/dashboard/api", _page("api_usage"), _page_shows(lambda p: "API"),
             page=True, warmup=2),
    Endpoint("dashboard Why (search)", lambda s, r: f"/dashboard/why?q={r.choice(s.emails)}",
             lambda b, s, r: b.console.find_people(r.choice(s.emails), limit=50),
             _page_shows(lambda p: "/dashboard/why/"), page=True),
    Endpoint("dashboard Why (person)", _ref_path("/dashboard/why/"), _why_page,
             _page_shows(lambda p: p.removeprefix("/dashboard/why/")), page=True),
)


def _sample(engine: Engine, rng: random.Random) -> Sample:
    """400 random people (their records and emails) and the owners, busiest first."""
    with engine.connect() as conn:
        people = conn.exec_driver_sql("SELECT COUNT(*) FROM identities WHERE kind = 'person'").scalar() or 0
        if not people:
            raise SystemExit("the store has no people: build it again (without --reuse)")
        emails = sorted({World.email_of(rng.randrange(people)) for _ in range(400)})
        rows = conn.execute(text(
            "SELECT l.connection, l.object, l.crm_id, i.key FROM identities i JOIN identity_links l "
            "ON l.relay_id = i.relay_id WHERE i.kind = 'person' AND i.key IN :keys")
            .bindparams(bindparam("keys", expanding=True)), {"keys": emails}).all()
        owners = [str(o) for (o,) in conn.exec_driver_sql(
            "SELECT owner_email FROM sla_clocks GROUP BY owner_email ORDER BY COUNT(*) DESC, owner_email")]
    found = {str(row[3]) for row in rows}
    if found != set(emails) or not owners:
        raise SystemExit(f"the store does not hold the people it should ({len(found)} of {len(emails)} emails "
                         "found): build it again (without --reuse)")
    refs = sorted((str(a), str(b), str(c)) for a, b, c, _ in rows)
    return Sample(refs, emails, owners, owners[0])


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def drive(url: str, headers: dict[str, str], paths: list[str], concurrency: int, max_seconds: float,
          warmup: list[str]) -> dict[str, Any]:
    """Run in the load process: ``paths`` with ``concurrency`` in flight; latencies (ms), statuses, wall time."""

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=600) as client:
            for path in warmup:
                await client.get(path)
            latencies: list[float] = []
            statuses: Counter[int] = Counter()
            errors: list[str] = []
            queue = iter(paths)
            started = time.perf_counter()
            deadline = started + max_seconds

            async def worker() -> None:
                for path in queue:
                    if time.perf_counter() > deadline:
                        return
                    sent = time.perf_counter()
                    try:
                        response = await client.get(path)
                    except httpx.HTTPError as exc:  # a dropped connection counts as a failed request
                        statuses[0] += 1
                        if len(errors) < 3:
                            errors.append(f"{path}: {type(exc).__name__}: {exc}")
                        continue
                    latencies.append((time.perf_counter() - sent) * 1000)
                    statuses[response.status_code] += 1
                    if response.status_code != 200 and len(errors) < 3:
                        errors.append(f"{path}: {response.status_code} {' '.join(response.text[:200].split())}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - started
        return {"latencies": latencies, "statuses": dict(statuses), "errors": errors, "wall": wall}

    return asyncio.run(main())


@dataclass
class Result:
    endpoint: str
    n: int
    p50: float
    p99: float
    rate: float
    failed: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        return self.p99 < GOAL_MS

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "n": self.n, "p50_ms": round(self.p50, 2), "p99_ms": round(self.p99, 2),
                "requests_per_second": round(self.rate, 1), "failed": self.failed, "errors": self.errors}


def measure(bench: Bench, sample: Sample, endpoints: Sequence[Endpoint], args: argparse.Namespace,
            pool: ProcessPoolExecutor, concurrency: int) -> list[Result]:
    """Each endpoint's requests from the load process, ``concurrency`` in flight."""
    results = []
    label = f"{bench.store.backend} x{concurrency}"
    for endpoint in endpoints:
        rng = random.Random(f"{args.seed}:{endpoint.name}")
        paths = [endpoint.path(sample, rng) for _ in range(args.requests)]
        warm = [endpoint.path(sample, rng) for _ in range(endpoint.warmup)]
        token = bench.tokens[endpoint.role]
        headers = {"Cookie": f"relay_session={token}"} if endpoint.page else {"Authorization": f"Bearer {token}"}
        bench.server_errors.clear()
        wrong = _checked(bench, endpoint, headers, [endpoint.path(sample, rng) for _ in range(1 if endpoint.page
                                                                                             else 3)])
        if endpoint.page and bench.pages == "called directly":
            result = _measure_direct(bench, sample, endpoint, args, rng)
        else:
            answer = pool.submit(drive, bench.url, headers, paths, concurrency, args.max_seconds, warm).result()
            latencies = answer["latencies"] or [math.nan]
            failed = sum(n for status, n in answer["statuses"].items() if status != 200)
            errors = [*answer["errors"], *(f"server: {e}" for e in sorted(set(bench.server_errors))[:3])]
            result = Result(endpoint.name, len(answer["latencies"]), _percentile(latencies, 0.5),
                            _percentile(latencies, 0.99), len(answer["latencies"]) / answer["wall"], failed, errors)
        if wrong:
            result.failed += len(wrong)
            result.errors[:0] = [f"wrong answer: {w}" for w in wrong[:2]]
        shown = [result]
        if endpoint.page and "Why" not in endpoint.name and args.figures and bench.pages != "called directly" \
                and concurrency == args.concurrencies[0]:
            # The pages serve cached figures (FigureCache, 60 s): what computing them costs, one at a time.
            shown.append(_measure_direct(bench, sample, endpoint, args, rng, " (figures uncached, direct)"))
        for result in shown:
            results.append(result)
            flag = "" if result.ok else "  (p99 over 100 ms)"
            failed_text = f"; {result.failed} failed: {' | '.join(result.errors)}" if result.failed else ""
            print(f"  {label:15} {result.endpoint:46} n={result.n:5}  p50 {result.p50:8.1f} ms  p99 "
                  f"{result.p99:8.1f} ms  {result.rate:7.1f}/s{flag}{failed_text}", flush=True)
    return results


def _checked(bench: Bench, endpoint: Endpoint, headers: dict[str, str], paths: Sequence[str]) -> list[str]:
    """What is wrong with the answers to ``paths`` (asked one by one, untimed)."""
    if endpoint.page and bench.pages == "called directly":
        return []
    wrong = []
    with httpx.Client(base_url=bench.url, headers=headers, timeout=600) as client:
        for path in paths:
            response = client.get(path)
            if response.status_code != 200:
                wrong.append(f"{path}: {response.status_code} {' '.join(response.text[:160].split())}")
                continue
            problem = endpoint.check(path, response.text if endpoint.page else response.json())
            if problem is not None:
                wrong.append(problem)
    return wrong


def _measure_direct(bench: Bench, sample: Sample, endpoint: Endpoint, args: argparse.Namespace,
                    rng: random.Random, suffix: str = " [direct]") -> Result:
    """The endpoint's work called in this process, one at a time (a page no route serves, or its figures)."""
    for _ in range(min(endpoint.warmup, 1)):
        endpoint.direct(bench, sample, rng)
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < args.requests and time.perf_counter() - started < args.max_seconds:
        sent = time.perf_counter()
        endpoint.direct(bench, sample, rng)
        latencies.append((time.perf_counter() - sent) * 1000)
    wall = time.perf_counter() - started
    return Result(endpoint.name + suffix, len(latencies), _percentile(latencies, 0.5),
                  _percentile(latencies, 0.99), len(latencies) / wall, 0, [])


class _ServerErrors(logging.Handler):
    """The exceptions the app raised (uvicorn logs them): ``Type: first line``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            cause = exc.__cause__ or exc
            self.found.append(f"{type(cause).__name__}: {str(cause).splitlines()[0][:160]}")
        else:
            self.found.append(record.getMessage()[:160])


@contextmanager
def serve(store: Store, config: RelayConfig, rep: str) -> Iterator[Bench]:
    """``relay serve``'s app over the store (its clock at the store's "now"), with an admin's and a rep's token."""
    now = datetime.fromtimestamp(store.meta["now"], UTC)
    app = create_app(config, store.engine, clock=lambda: now)
    console = app.state.console
    server = SandboxServer(app, port=0, name="relay-api").start()
    # Included routers are not always flattened into app.routes: ask the app whether it serves the pages.
    routed = httpx.get(f"{server.url}/dashboard/login", timeout=60).status_code == 200
    pages = "routed by create_app"
    if not routed:
        try:
            from connector.web.console.dashboard import dashboard_router

            app.include_router(dashboard_router(console))
            pages = "mounted by the bench"
        except Exception as exc:  # the dashboard is not there (yet): its figures are called directly
            print(f"  the dashboard's pages cannot be mounted ({type(exc).__name__}: {exc}): called directly")
            pages = "called directly"
    suffix = uuid.uuid4().hex[:8]
    names = {"admin": f"apibench-admin-{suffix}", "rep": f"apibench-rep-{suffix}"}
    tokens = {"admin": console.add_user(names["admin"], "admin", None, by="bench/api.py")[1],
              "rep": console.add_user(names["rep"], "rep", rep, by="bench/api.py")[1]}
    errors = _ServerErrors()  # once uvicorn configured its loggers (that drops handlers added before)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(errors)
    propagate, logger.propagate = logger.propagate, False  # counted and shown per endpoint, not as tracebacks
    try:
        yield Bench(store, config, console, now, server.url, tokens, pages, errors.found)
    finally:
        server.stop()
        logger.removeHandler(errors)
        logger.propagate = propagate
        for name in names.values():
            console.revoke_user(name, by="bench/api.py")


# --------------------------------------------------------------------------- profiles and indexes


@dataclass
class Statement:
    seconds: float
    sql: str
    parameters: Any


@contextmanager
def statements(engine: Engine) -> Iterator[list[Statement]]:
    """Every statement ``engine`` executes meanwhile, with the time its execution took (fetching not counted)."""
    found: list[Statement] = []

    def before(conn: Any, _cursor: Any, _sql: str, _params: Any, _context: Any, _many: bool) -> None:
        conn.info.setdefault("apibench_started", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, _many: bool) -> None:
        found.append(Statement(time.perf_counter() - conn.info["apibench_started"].pop(), sql, params))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def _plan(engine: Engine, statement: Statement) -> list[str]:
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement.sql, statement.parameters).all()
            return [str(row[-1]) for row in rows]
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.parameters).all()
        conn.rollback()
        return [str(row[0]) for row in rows]


def profile(bench: Bench, sample: Sample, endpoint: Endpoint, seed: int) -> None:
    """One call of the endpoint's work in this process: its statements by time, and the plan of the slowest."""
    rng = random.Random(f"{seed}:profile:{endpoint.name}")
    started = time.perf_counter()
    with statements(bench.store.engine) as found:
        endpoint.direct(bench, sample, rng)
    total = (time.perf_counter() - started) * 1000
    sql = sum(s.seconds for s in found) * 1000
    print(f"\n  {bench.store.backend} / {endpoint.name}: {total:.1f} ms in one call, {len(found)} statements "
          f"executing {sql:.1f} ms (fetching and Python: {total - sql:.1f} ms)")
    for statement in sorted(found, key=lambda s: -s.seconds)[:3]:
        if statement.seconds * 1000 < 2:
            break
        shown = " ".join(statement.sql.split())
        print(f"    {statement.seconds * 1000:8.1f} ms  {shown[:300]}{' ...' if len(shown) > 300 else ''}")
        try:
            for line in _plan(bench.store.engine, statement)[:14]:
                print(f"                 | {line}")
        except Exception as exc:  # a plan that cannot be asked for is reported, not fatal
            print(f"                 | (no plan: {type(exc).__name__}: {exc})")


@dataclass(frozen=True)
class CandidateIndex:
    """An index the store lacks, created by hand with ``--try-indexes`` (and dropped again afterwards)."""

    name: str
    table: str
    sqlite: str
    postgresql: str
    why: str


CANDIDATE_INDEXES: tuple[CandidateIndex, ...] = (
    CandidateIndex(
        "ix_apibench_assignments_active_owner", "assignments",
        "CREATE INDEX {name} ON assignments (owner_email, assigned_at, id) WHERE status = 'active'",
        "CREATE INDEX {name} ON assignments (owner_email, assigned_at, id) WHERE status = 'active'",
        "GET /assignments?owner=: status = 'active' AND owner_email = ? ORDER BY assigned_at DESC, id DESC"),
    CandidateIndex(
        "ix_apibench_assignments_active_at", "assignments",
        "CREATE INDEX {name} ON assignments (assigned_at, id) WHERE status = 'active'",
        "CREATE INDEX {name} ON assignments (assigned_at, id) WHERE status = 'active'",
        "GET /assignments: status = 'active' ORDER BY assigned_at DESC, id DESC"),
    CandidateIndex(
        "ix_apibench_sla_clocks_open_owner_due", "sla_clocks",
        "CREATE INDEX {name} ON sla_clocks (owner_email, next_due_at, id) WHERE status = 'open'",
        "CREATE INDEX {name} ON sla_clocks (owner_email, next_due_at, id) WHERE status = 'open'",
        "GET /clocks?owner=: status = 'open' AND owner_email = ? ORDER BY next_due_at, id"),
    CandidateIndex(
        "ix_apibench_sync_runs_connection_id", "sync_runs",
        "CREATE INDEX {name} ON sync_runs (connection, id)",
        "CREATE INDEX {name} ON sync_runs (connection, id)",
        "GET /runs: connection = ? ORDER BY id DESC"),
)


def _drop_candidates(engine: Engine) -> None:
    with engine.begin() as conn:
        for index in CANDIDATE_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")


def _create_candidates(engine: Engine, names: Sequence[str]) -> None:
    chosen = [i for i in CANDIDATE_INDEXES if not names or i.name in names or i.name.removeprefix("ix_apibench_")
              in names]
    for index in chosen:
        ddl = (index.sqlite if engine.dialect.name == "sqlite" else index.postgresql).format(name=index.name)
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql(ddl)
        print(f"  created {index.name} in {_duration(time.perf_counter() - started)}: {ddl}", flush=True)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in sorted({i.table for i in chosen}):
                conn.exec_driver_sql(f"ANALYZE {table}")


# --------------------------------------------------------------------------- the report


def _cells(result: Result | None) -> list[str]:
    if result is None:
        return ["-", "-", "-", "-"]
    failed = f" ({result.failed} failed)" if result.failed else ""
    return [f"{result.p50:,.1f}", f"{result.p99:,.1f}", f"{result.rate:,.1f}{failed}", "yes" if result.ok else "**no**"]


def table(results: dict[str, list[Result]], title: str) -> None:
    backends = list(results)
    print(f"\n{title}\n")
    header = ["endpoint"]
    for backend in backends:
        header += [f"{backend} p50 ms", "p99 ms", "req/s", "p99 < 100 ms"]
    print("| " + " | ".join(header) + " |")
    print("| --- |" + " ---: | ---: | ---: | --- |" * len(backends))
    names = list(dict.fromkeys(r.endpoint for rows in results.values() for r in rows))
    for name in names:
        cells = [name]
        for backend in backends:
            cells += _cells(next((r for r in results[backend] if r.endpoint == name), None))
        print("| " + " | ".join(cells) + " |")


def compare(before: dict[str, list[Result]], after: dict[str, list[Result]], concurrency: int) -> None:
    print(f"\nWith the candidate indexes, {concurrency} in flight (p50 / p99 ms, before -> after)\n")
    backends = list(after)
    print("| endpoint | " + " | ".join(backends) + " |")
    print("| --- |" + " --- |" * len(backends))
    names = list(dict.fromkeys(r.endpoint for rows in after.values() for r in rows))
    for name in names:
        cells = [name]
        for backend in backends:
            old = next((r for r in before.get(backend, []) if r.endpoint == name), None)
            new = next((r for r in after[backend] if r.endpoint == name), None)
            if old is None or new is None:
                cells.append("-")
            else:
                cells.append(f"{old.p50:,.1f} / {old.p99:,.1f} -> {new.p50:,.1f} / {new.p99:,.1f}")
        print("| " + " | ".join(cells) + " |")


# --------------------------------------------------------------------------- main


def _to_profile(endpoints: Sequence[Endpoint], results: Sequence[Result], which: str) -> list[Endpoint]:
    """The endpoints to profile: all, or those with a figure over the goal (their page's or their figures')."""
    slow = {r.endpoint for r in results if not r.ok}
    return [e for e in endpoints if which == "all" or any(name.startswith(e.name) for name in slow)]


Runs = dict[int, list[Result]]
"""Concurrency -> each endpoint's figures."""


def run_backend(store: Store, config: RelayConfig, args: argparse.Namespace, endpoints: Sequence[Endpoint],
                pool: ProcessPoolExecutor) -> tuple[Runs, Runs]:
    """One backend's figures at each concurrency, and with ``--try-indexes`` the same with the candidate indexes."""
    _drop_candidates(store.engine)  # a reused store is measured as migrated
    sample = _sample(store.engine, random.Random(args.seed))
    before: Runs = {}
    after: Runs = {}
    with serve(store, config, sample.rep) as bench:
        print(f"{store.backend}: serving on {bench.url}; the dashboard's pages {bench.pages}", flush=True)
        for concurrency in args.concurrencies:
            before[concurrency] = measure(bench, sample, endpoints, args, pool, concurrency)
        if args.profile:
            for endpoint in _to_profile(endpoints, before[args.concurrencies[0]], args.profile):
                profile(bench, sample, endpoint, args.seed)
        if args.try_indexes is not None:
            print(f"\n{store.backend}: with the candidate indexes", flush=True)
            try:
                _create_candidates(store.engine, [n for n in args.try_indexes.split(",") if n])
                for concurrency in args.concurrencies:
                    after[concurrency] = measure(bench, sample, endpoints, args, pool, concurrency)
                if args.profile:
                    for endpoint in _to_profile(endpoints, after[args.concurrencies[0]], args.profile):
                        profile(bench, sample, endpoint, args.seed)
            finally:
                _drop_candidates(store.engine)
    return before, after


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000, help="decisions in the store (default 1000000)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both (default)")
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint (default 300)")
    parser.add_argument("--concurrency", default="1,4",
                        help="requests in flight, or several comma-separated: a table each (default 1,4)")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop an endpoint's requests after this long (default 60)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a store built before with the same --decisions and --seed (and keep it)")
    parser.add_argument("--try-indexes", nargs="?", const="", default=None, metavar="NAMES",
                        help="measure again with the candidate indexes created (all, or these comma-separated)")
    parser.add_argument("--profile", nargs="?", const="slow", default=None, choices=("slow", "all"),
                        help="statements and plans of the endpoints over 100 ms (or of all)")
    parser.add_argument("--only", default="", help="comma-separated words: only endpoints whose name has one")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="do not time the dashboard's figures uncached (called directly)")
    parser.add_argument("--skip", default="", help="comma-separated words: not the endpoints whose name has one")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--scratch", default=str(SCRATCH), help=f"where the SQLite store is built (default {SCRATCH})")
    parser.add_argument("--database", default=os.environ.get("RELAY_TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
                        help="the PostgreSQL server (a schema of its own is made on it)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the stores and keep them (--reuse), measure nothing")
    args = parser.parse_args(argv)
    backends = [b.strip().lower() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("sqlite", "postgresql")]
    if unknown or not backends:
        parser.error(f"--backends: unknown {', '.join(unknown) or '(none)'}; use sqlite, postgresql or both")
    for name in ("decisions", "requests"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    try:
        args.concurrencies = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        parser.error(f"--concurrency: whole numbers, got {args.concurrency!r}")
    if not args.concurrencies or min(args.concurrencies) <= 0:
        parser.error("--concurrency must be positive")
    if args.build_only:
        args.reuse = True  # a store built for nothing else is kept for the next run
    words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    skipped = [w.strip().lower() for w in args.skip.split(",") if w.strip()]
    endpoints = [e for e in ENDPOINTS if (not words or any(w in e.name.lower() for w in words))
                 and not any(w in e.name.lower() for w in skipped)]
    if not endpoints:
        parser.error(f"--only {args.only!r} matches no endpoint")
    config = load_config(env={})
    assert person_key(World.email_of(12_345)) == World.email_of(12_345)  # the search finds what was generated
    before: dict[int, dict[str, list[Result]]] = defaultdict(dict)
    after: dict[int, dict[str, list[Result]]] = defaultdict(dict)
    builds: dict[str, Any] = {}
    stores = {"sqlite": sqlite_store, "postgresql": postgres_store}
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores", flush=True)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for backend in backends:
            with stores[backend](args, config) as store:
                builds[store.backend] = store.meta
                if args.build_only:
                    continue
                found, with_indexes = run_backend(store, config, args, endpoints, pool)
                for concurrency, results in found.items():
                    before[concurrency][store.backend] = results
                for concurrency, results in with_indexes.items():
                    after[concurrency][store.backend] = results
    for concurrency in [] if args.build_only else args.concurrencies:
        table(before[concurrency], f"Admin API and dashboard over {args.decisions:,} decisions, {concurrency} "
                                   f"request{'s' if concurrency > 1 else ''} in flight (p99 goal: under "
                                   f"{GOAL_MS:.0f} ms)")
        if after:
            compare(before[concurrency], after[concurrency], concurrency)
    summary = {"decisions": args.decisions, "builds": builds,
               "results": {c: {b: [r.as_dict() for r in rs] for b, rs in by.items()} for c, by in before.items()},
               "with_indexes": {c: {b: [r.as_dict() for r in rs] for b, rs in by.items()} for c, by in after.items()}}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
