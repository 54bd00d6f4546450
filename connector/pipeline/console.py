"""What the console (admin API, dashboard, ``relay users``) reads from and does to Relay's store.

The web layer never touches the store (an import contract): it calls these functions, which
return plain JSON-able dicts. Reads are one short transaction each; every change made through
the console is audited with who made it (``console_*`` actions, ``detail.by`` and ``detail.role``).

Ownership, for a Rep or Marketing user's "own" records (seed 002 "Data Access Controls"): a person
is theirs when the active assignment of any of the person's records (its Relay id's cluster)
is to their email, or the CRM owner of one of its records is their CRM user.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connector.config.loader import RelayConfig
from connector.core.identity import person_key
from connector.pipeline.backtest_reports import saved_backtest, saved_backtests
from connector.pipeline.rule_sets import rule_sets
from connector.store.db import READ_ONLY, session_factory
from connector.store.models import (
    ApiRole,
    AssignmentRow,
    AssignmentStatus,
    IdentityKind,
    RecordRow,
    SlaClockRow,
)
from connector.store.repositories import ApiUser, Repositories
from connector.store.repositories.identities import CrmRef
from connector.store.repositories.merges import Reviews

log = logging.getLogger(__name__)

CONSOLE_CONNECTION = "console"
"""The audit log's connection for console changes that concern no connection (API users)."""
MAX_LIMIT = 500


class Refused(Exception):
    """The store's state refuses a console action (a paused connection, a sync running already)."""


@dataclass(frozen=True)
class Caller:
    """Who is asking: an authenticated API user."""

    name: str
    role: ApiRole
    email: str | None


LAST_USED_EVERY = timedelta(minutes=1)
"""How fresh an API user's ``last_used_at`` is kept (``relay users list``)."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Console:
    """The console's reads and actions over one store (and the configuration in force)."""

    def __init__(self, config: RelayConfig, engine: Engine, *, clock: Callable[[], datetime],
                 start_sync: Callable[[str, bool], str] | None = None) -> None:
        """``start_sync(connection, full)`` starts a sync and says how (``relay serve --no-decide``: a job
        for ``relay worker``); by default a thread of this process runs it."""
        self.config = config
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.reads: sessionmaker[Session] = session_factory(engine.execution_options(**{READ_ONLY: True}))
        """Sessions that only read (SQLite: a deferred BEGIN, no write lock)."""
        self.clock = clock
        self._start_sync = start_sync or self._sync_in_thread

    def _sync_in_thread(self, connection: str, full: bool) -> str:
        from connector.pipeline.sync import run_sync

        def run() -> None:
            try:
                summary = run_sync(self.config, connection, self.engine, full=full)
                log.info("console sync of %s finished: run %s", connection, summary.run_id)
            except Exception as exc:  # the run's own row says what happened; the thread must not die loudly
                log.warning("console sync of %s did not run: %s: %s", connection, type(exc).__name__, exc)

        threading.Thread(target=run, name=f"relay-console-sync-{connection}", daemon=True).start()
        return "started in this process"

    def request_sync(self, connection: str, caller: Caller, *, full: bool = False) -> dict[str, Any]:
        """Start a sync of ``connection`` (audited with who).

        Raises:
            KeyError: naming the known connections.
            Refused: the connection is paused, or a sync of it runs already (the message says which).
        """
        from connector.store.errors import ConnectionPaused, SyncAlreadyRunning

        self.config.connection(connection)
        with self.sessions.begin() as session:
            repos = Repositories(session)
            pause = repos.connection_states.paused(connection)
            running = repos.sync_runs.running(connection)
        if pause is not None:
            raise Refused(str(ConnectionPaused(connection, pause.paused_at, pause.paused_by, pause.reason)))
        if running is not None:
            raise Refused(str(SyncAlreadyRunning(connection, running.id, running.started_at, running.heartbeat_at)))
        how = self._start_sync(connection, full)
        self.audit_action(connection, "console_sync_requested", caller, {"full": full, "how": how})
        return {"connection": connection, "full": full, "started": how}

    # ------------------------------------------------------------------ users

    def authenticate(self, token: str) -> Caller | None:
        """The caller holding ``token``, None for an unknown or revoked one.

        A read; the token's ``last_used_at`` is written at most once per :data:`LAST_USED_EVERY`
        (a write per request would queue every API call behind the store's writers).
        """
        with self.reads.begin() as session:
            user = Repositories(session).api_users.authenticate(token)
        if user is None:
            return None
        now = self.clock()
        if user.last_used_at is None or now - user.last_used_at >= LAST_USED_EVERY:
            with self.sessions.begin() as session:
                Repositories(session).api_users.note_use(user.id, now=now, every=LAST_USED_EVERY)
        return Caller(user.name, user.role, user.email)

    def add_user(self, name: str, role: str, email: str | None, *, by: str | None = None) -> tuple[dict[str, Any], str]:
        """Create an API user; returns it and its token (shown once). Raises ValueError naming the field."""
        with self.sessions.begin() as session:
            repos = Repositories(session)
            user, token = repos.api_users.add(name, role, email=email, now=self.clock(), created_by=by)
            repos.audit.append(CONSOLE_CONNECTION, "console_user_added", at=self.clock(),
                               detail={"by": by or "relay users add", "user": user.name, "role": user.role.value,
                                       "email": user.email})
        return _user_dict(user), token

    def users(self, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        """Every API user (never a token)."""
        with self.reads.begin() as session:
            return [_user_dict(u) for u in Repositories(session).api_users.all(include_revoked=include_revoked)]

    def revoke_user(self, name: str, *, by: str | None = None) -> dict[str, Any] | None:
        """Revoke the active user called ``name`` (None when there is none)."""
        with self.sessions.begin() as session:
            repos = Repositories(session)
            user = repos.api_users.revoke(name, now=self.clock())
            if user is not None:
                repos.audit.append(CONSOLE_CONNECTION, "console_user_revoked", at=self.clock(),
                                   detail={"by": by or "relay users revoke", "user": user.name})
        return _user_dict(user) if user is not None else None

    # ------------------------------------------------------------------ runs, connections, rules

    def runs(self, *, connection: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest sync runs, newest first."""
        names = [connection] if connection else list(self.config.relay.connections)
        with self.reads.begin() as session:
            runs = [r for name in names for r in Repositories(session).sync_runs.recent(name, limit=limit)]
        runs.sort(key=lambda r: r.started_at, reverse=True)
        return [_plain(vars(r)) for r in runs[:limit]]

    def run(self, run_id: int) -> dict[str, Any] | None:
        """One run with its counts, None when there is no such run."""
        from connector.store.errors import RunNotFound

        with self.reads.begin() as session:
            try:
                return _plain(vars(Repositories(session).sync_runs.get(run_id)))
            except RunNotFound:
                return None

    def connections(self) -> list[dict[str, Any]]:
        """Each connection: its CRM, whether it is paused, its API budget and its last run."""
        found = []
        with self.reads.begin() as session:
            repos = Repositories(session)
            paused = repos.connection_states.all_paused()
            for name, settings in self.config.relay.connections.items():
                budget = repos.budgets.get(name)
                recent = repos.sync_runs.recent(name, limit=1)
                pause = paused.get(name)
                found.append({
                    "name": name, "kind": settings.kind, "objects": list(settings.objects),
                    "paused": pause is not None,
                    "paused_at": _iso(pause.paused_at) if pause else None,
                    "paused_by": pause.paused_by if pause else None, "pause_reason": pause.reason if pause else None,
                    "budget": {key: _plain(vars(record)) for key, record in budget.items()},
                    "last_run": _plain(vars(recent[0])) if recent else None,
                })
        return found

    def set_paused(self, connection: str, paused: bool, caller: Caller, reason: str | None = None) -> dict[str, Any]:
        """Pause or resume ``connection`` (audited with who); returns its state.

        Raises:
            KeyError: naming the known connections when ``connection`` is not one.
        """
        self.config.connection(connection)
        now = self.clock()
        with self.sessions.begin() as session:
            repos = Repositories(session)
            if paused:
                repos.connection_states.pause(connection, by=caller.name, reason=reason, now=now)
                changed = True
            else:
                changed = repos.connection_states.resume(connection, now=now) is not None
            if changed:
                repos.audit.append(connection, "console_paused" if paused else "console_resumed", at=now,
                                   detail={"by": caller.name, "role": caller.role.value, "reason": reason})
            state = repos.connection_states.paused(connection)
        return {"name": connection, "paused": state is not None, "paused_at": _iso(state.paused_at) if state else None,
                "paused_by": state.paused_by if state else None, "reason": state.reason if state else None,
                "changed": changed}

    def audit_action(self, connection: str, action: str, caller: Caller, detail: Mapping[str, Any],
                     *, object_name: str | None = None, crm_id: str | None = None) -> None:
        """Audit a change made through the console (who, their role, what)."""
        with self.sessions.begin() as session:
            Repositories(session).audit.append(connection, action, object_name=object_name, crm_id=crm_id,
                                               at=self.clock(),
                                               detail={"by": caller.name, "role": caller.role.value, **detail})

    def rules(self) -> dict[str, Any]:
        """The rule sets in force (people and deals) and every version recorded, newest first."""
        current = rule_sets(self.config.rules)
        with self.reads.begin() as session:
            history = Repositories(session).rules_versions.history()
        return {
            "current": [{"version": v, "kind": content["kind"]} for v, content in current.items()],
            "history": [{"version": h.version, "kind": h.rules.get("kind"), "first_seen": _iso(h.first_seen),
                         "last_seen": _iso(h.last_seen), "in_force": h.version in current} for h in history],
        }

    def rules_version(self, version: str) -> dict[str, Any] | None:
        """What rule set ``version`` said (the current ones even if no run recorded them yet)."""
        current = rule_sets(self.config.rules)
        if version in current:
            return {"version": version, "rules": current[version]}
        with self.reads.begin() as session:
            found = Repositories(session).rules_versions.get(version)
        return {"version": found.version, "rules": found.rules} if found is not None else None

    def rules_diff(self, old: str, new: str) -> dict[str, Any] | None:
        """What changed between two rules versions, in words (None when either is not recorded)."""
        from connector.config.diff import diff_parts

        before, after = self.rules_version(old), self.rules_version(new)
        if before is None or after is None:
            return None
        parts = {k: v for k, v in before["rules"].items() if k != "kind"}
        later = {k: v for k, v in after["rules"].items() if k != "kind"}
        changes = diff_parts(parts, later)
        return {"old": old, "new": new, "changes": [c.as_dict() for c in changes],
                "text": [str(c) for c in changes]}

    def backtests(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The saved backtests (``relay backtest --save``), newest first, without their reports."""
        with self.reads.begin() as session:
            return saved_backtests(session, limit=_limit(limit))

    def backtest(self, report_id: int) -> dict[str, Any] | None:
        """One saved backtest with its headline and whole report (None when there is none)."""
        with self.reads.begin() as session:
            return saved_backtest(session, report_id)

    # ------------------------------------------------------------------ people

    def find_people(self, query: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """People whose email or CRM id is ``query``: each record with its Relay id, CRM and owner."""
        text = query.strip()
        if not text:
            return []
        limit = max(1, min(limit, MAX_LIMIT))
        with self.reads.begin() as session:
            repos = Repositories(session)
            refs: list[CrmRef] = []
            key = person_key(text) if "@" in text else None
            if key is not None:
                relay_id = repos.identities.find(IdentityKind.PERSON, key)
                if relay_id is not None:
                    refs.extend(repos.identities.links(relay_id))
            else:
                # The configured connections and objects lead the primary key (connection, object, crm_id): a
                # few primary-key lookups instead of a scan of every record (bench/api.py, 1,000,000 decisions).
                # The kind is checked here: in the WHERE clause SQLite would choose an index on it and scan.
                connections = self.config.relay.connections
                objects = sorted({o for settings in connections.values() for o in settings.objects})
                rows = session.execute(
                    select(RecordRow.connection, RecordRow.object, RecordRow.crm_id, RecordRow.kind)
                    .where(RecordRow.connection.in_(sorted(connections)), RecordRow.object.in_(objects),
                           RecordRow.crm_id == text)).all()
                refs.extend(CrmRef(r.connection, r.object, r.crm_id) for r in rows
                            if r.kind in ("person", "lead", "contact"))
            found = []
            for ref in refs[:limit]:
                snapshot = repos.records.get(ref.connection, ref.object, ref.crm_id)
                assignment = repos.assignments.active_for(ref.connection, ref.object, ref.crm_id)
                values = dict(snapshot.canonical) if snapshot is not None else {}
                found.append({
                    "connection": ref.connection, "object": ref.object, "crm_id": ref.crm_id,
                    "relay_id": repos.identities.relay_id_for(ref),
                    "name": " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k)) or None,
                    "email": values.get("email"), "company": values.get("company"),
                    "owner_email": assignment.owner_email if assignment is not None else None,
                    "deleted": bool(snapshot.deleted) if snapshot is not None else None,
                })
        return found

    def owners_of(self, connection: str, object_name: str, crm_id: str) -> set[str] | None:
        """The emails that own the person of a record; None when Relay has no such record.

        Owners: the active assignment and the open SLA clock of every record of the person's
        cluster (a kept CRM owner has a clock too).
        """
        with self.reads.begin() as session:
            repos = Repositories(session)
            if repos.records.get(connection, object_name, crm_id) is None:
                return None
            owners: set[str] = set()
            for ref in self._cluster(repos, CrmRef(connection, object_name, crm_id)):
                assignment = repos.assignments.active_for(ref.connection, ref.object, ref.crm_id)
                if assignment is not None and assignment.owner_email:
                    owners.add(assignment.owner_email.strip().lower())
                owners.update(c.owner_email.strip().lower()
                              for c in repos.clocks.for_record(ref.connection, ref.object, ref.crm_id)
                              if c.status == "open" and c.owner_email)
        return owners

    def person(self, connection: str, object_name: str, crm_id: str) -> dict[str, Any] | None:
        """Everything Relay decided about the person of a record, in order ("why did this lead go there?").

        The person's records (its Relay id's cluster), each with its snapshot's main fields, its
        assignments (every one, with the rule, tier, reason and rules version), SLA clocks, and the
        audit trail of every record, oldest first: scores with their breakdown, routing, writes to
        the CRMs, tasks, dispositions, findings. None when Relay has no such record.
        """
        with self.reads.begin() as session:
            repos = Repositories(session)
            if repos.records.get(connection, object_name, crm_id) is None:
                return None
            refs = self._cluster(repos, CrmRef(connection, object_name, crm_id))
            records = []
            trail: list[dict[str, Any]] = []
            for ref in refs:
                snapshot = repos.records.get(ref.connection, ref.object, ref.crm_id)
                values = dict(snapshot.canonical) if snapshot is not None else {}
                records.append({
                    "connection": ref.connection, "object": ref.object, "crm_id": ref.crm_id,
                    "values": {k: values.get(k) for k in _SHOWN if k in values},
                    "first_seen": _iso(snapshot.first_seen) if snapshot is not None else None,
                    "last_seen": _iso(snapshot.last_seen) if snapshot is not None else None,
                    "deleted": bool(snapshot.deleted) if snapshot is not None else None,
                    "merged_into": snapshot.merged_into if snapshot is not None else None,
                    "assignments": [_plain(vars(a)) for a in
                                    repos.assignments.history(ref.connection, ref.object, ref.crm_id)],
                    "clocks": [_plain(vars(c)) for c in repos.clocks.for_record(ref.connection, ref.object,
                                                                                 ref.crm_id)],
                })
                for entry in repos.audit.for_record(ref.connection, ref.object, ref.crm_id):
                    trail.append({"id": entry.id, "at": _iso(entry.at), "connection": entry.connection,
                                  "object": entry.object, "crm_id": entry.crm_id, "action": entry.action,
                                  "run_id": entry.run_id, "rules_version": entry.rules_version,
                                  "detail": entry.detail})
            trail.sort(key=lambda e: (e["at"] or "", e["id"]))
            relay_id = repos.identities.relay_id_for(CrmRef(connection, object_name, crm_id))
        return {"relay_id": relay_id, "records": records, "trail": trail}

    def _cluster(self, repos: Repositories, ref: CrmRef) -> list[CrmRef]:
        relay_id = repos.identities.relay_id_for(ref)
        refs = repos.identities.links(relay_id) if relay_id is not None else []
        return refs if ref in refs else [ref, *refs]

    def reroute(self, connection: str, object_name: str, crm_id: str, caller: Caller,
                reason: str | None = None) -> dict[str, Any]:
        """Re-route one person now: the next available rep of its group, never a previous owner (the aging
        re-queue, asked by hand), with a new task and SLA in the CRM; audited with who.

        Raises:
            Refused: the record has no open SLA clock, or nobody is left to take it (the message says why).
        """
        from connector.pipeline.clocks import requeue_now

        why = f"re-routed by {caller.name} ({caller.role.value}) through the console" + (f": {reason}" if reason else "")
        done = requeue_now(self.config, self.engine, connection, object_name, crm_id, reason=why, clock=self.clock)
        self.audit_action(connection, "console_rerouted", caller,
                          {"reason": reason, "previous_owner": done.previous_owner, "new_owner": done.new_owner,
                           "problem": done.problem}, object_name=object_name, crm_id=crm_id)
        if done.new_owner is None:
            raise Refused(f"{connection}/{object_name}/{crm_id} was not re-routed: {done.problem}")
        return {"connection": connection, "object": object_name, "crm_id": crm_id,
                "previous_owner": done.previous_owner, "new_owner": done.new_owner}

    # ------------------------------------------------------------------ lists

    def assignments(self, *, owner: str | None = None, connection: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
        """Active assignments, newest first (``owner``: only theirs)."""
        query = select(AssignmentRow).where(AssignmentRow.status == AssignmentStatus.ACTIVE.value)
        if owner is not None:
            query = query.where(AssignmentRow.owner_email == owner.strip().lower())  # stored lower case: indexed
        if connection is not None:
            query = query.where(AssignmentRow.connection == connection)
        query = query.order_by(AssignmentRow.assigned_at.desc(), AssignmentRow.id.desc()).limit(_limit(limit))
        with self.reads.begin() as session:
            return [{"connection": r.connection, "object": r.object, "crm_id": r.crm_id, "relay_id": r.relay_id,
                     "owner_email": r.owner_email, "tier": r.tier, "rule": r.rule, "reason": r.reason,
                     "assigned_at": _iso(r.assigned_at), "sla_due": _iso(r.sla_due), "score": r.score,
                     "rules_version": r.rules_version} for r in session.scalars(query)]

    def clocks(self, *, owner: str | None = None, connection: str | None = None, status: str | None = "open",
               limit: int = 100) -> list[dict[str, Any]]:
        """SLA clocks, the soonest due first (``owner``: only theirs)."""
        query = select(SlaClockRow)
        if status is not None:
            query = query.where(SlaClockRow.status == status)
        if owner is not None:
            query = query.where(SlaClockRow.owner_email == owner.strip().lower())  # stored lower case: indexed
        if connection is not None:
            query = query.where(SlaClockRow.connection == connection)
        query = query.order_by(SlaClockRow.next_due_at, SlaClockRow.id).limit(_limit(limit))
        with self.reads.begin() as session:
            return [_clock_row(r) for r in session.scalars(query)]

    def findings(self, *, status: str | None = "open", connection: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
        """Governance findings (stage gates, hygiene, handoffs), the latest first."""
        from connector.store.models import GovernanceFindingRow as Row

        query = select(Row)
        if status is not None:
            query = query.where(Row.status == status)
        if connection is not None:
            query = query.where(Row.connection == connection)
        query = query.order_by(Row.last_seen.desc(), Row.id.desc()).limit(_limit(limit))
        with self.reads.begin() as session:
            return [{"id": r.id, "connection": r.connection, "object": r.object, "crm_id": r.crm_id, "code": r.code,
                     "message": r.message, "status": r.status, "occurrence": r.occurrence,
                     "first_seen": _iso(r.first_seen), "last_seen": _iso(r.last_seen),
                     "resolved_at": _iso(r.resolved_at)} for r in session.scalars(query)]

    def approvals(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Approvals requested and recorded, the latest first (``status``: ``requested`` or ``approved``)."""
        from connector.store.models import ApprovalRow as Row

        query = select(Row)
        if status == "requested":
            query = query.where(Row.approved_at.is_(None))
        elif status == "approved":
            query = query.where(Row.approved_at.is_not(None))
        query = query.order_by(Row.requested_at.desc(), Row.id.desc()).limit(_limit(limit))
        with self.reads.begin() as session:
            return [{c.name: _plain_value(getattr(r, c.name)) for c in Row.__table__.columns}
                    for r in session.scalars(query)]

    def reviews(self, *, status: str | None = "open", limit: int = 100) -> list[dict[str, Any]]:
        """The steward's review queue (borderline matches), oldest first."""
        with self.reads.begin() as session:
            items = Reviews(session).list(status=status)
        return [_plain(vars(i)) for i in items[:_limit(limit)]]

    def decide_review(self, review_id: int, same: bool, caller: Caller) -> dict[str, Any]:
        """A steward's decision on a review item (the next dedupe pass acts on it), audited with who.

        Raises:
            KeyError: naming the item when there is none.
        """
        now = self.clock()
        with self.sessions.begin() as session:
            item = Reviews(session).decide(review_id, same, caller.name, now)
            Repositories(session).audit.append(CONSOLE_CONNECTION, "console_review_decided", at=now,
                                               detail={"by": caller.name, "role": caller.role.value,
                                                       "review_id": review_id, "same": same,
                                                       "left": item.left_key, "right": item.right_key})
        return _plain(vars(item))


_SHOWN = ("first_name", "last_name", "email", "phone", "title", "company", "country", "status", "owner_id",
          "relay_score", "relay_score_category", "relay_routing_reason", "relay_sla_due", "disposition",
          "relay_nurture_track")


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _plain_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    return value


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain_value(v) for k, v in values.items() if not k.startswith("_")}


def _user_dict(user: ApiUser) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "email": user.email, "token_prefix": user.token_prefix,
            "created_at": _iso(user.created_at), "created_by": user.created_by,
            "last_used_at": _iso(user.last_used_at), "revoked_at": _iso(user.revoked_at)}

def _clock_row(row: SlaClockRow) -> dict[str, Any]:
    return {c.name: _plain_value(getattr(row, c.name)) for c in SlaClockRow.__table__.columns}


__all__ = ["CONSOLE_CONNECTION", "ApiRole", "Caller", "Console", "Refused"]
