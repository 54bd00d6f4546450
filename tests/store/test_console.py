"""The console's tables: API users (tokens kept only as hashes, roles checked) and recorded rule sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from connector.pipeline.rule_sets import record_rule_sets, rule_sets
from connector.store.errors import InvalidStoreValue
from connector.store.models import ApiRole, ApiUserRow
from connector.store.repositories import Repositories
from connector.store.repositories.console import TOKEN_PREFIX, hash_token
from tests.core.helpers import shipped_rules

from ._helpers import Database

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_token_is_shown_once_and_stored_only_as_its_hash(db: Database) -> None:
    with db.sessions.begin() as session:
        user, token = Repositories(session).api_users.add("Dana", "Admin", email=None, now=NOW)
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40 and user.role is ApiRole.ADMIN
    with db.sessions.begin() as session:
        row = session.scalars(select(ApiUserRow)).one()
        assert row.token_hash == hash_token(token) and token not in repr(row.__dict__)
        dumped = " ".join(str(v) for v in session.execute(text("SELECT * FROM api_users")).one())
        assert token not in dumped and token[len(TOKEN_PREFIX):] not in dumped
    with db.sessions.begin() as session:
        found = Repositories(session).api_users.authenticate(token)
        assert found is not None and found.name == "Dana"
        assert Repositories(session).api_users.authenticate(token + "x") is None
        assert Repositories(session).api_users.authenticate("Bearer " + token) is None


def test_last_use_is_written_at_most_once_per_period(db: Database) -> None:
    with db.sessions.begin() as session:
        user, _ = Repositories(session).api_users.add("Dana", "Admin", email=None, now=NOW)
    every = timedelta(minutes=1)
    for at, written in ((NOW, True), (NOW + timedelta(seconds=30), False), (NOW + timedelta(seconds=59), False),
                        (NOW + timedelta(seconds=60), True), (NOW + timedelta(seconds=61), False)):
        with db.sessions.begin() as session:
            assert Repositories(session).api_users.note_use(user.id, now=at, every=every) is written, at
    with db.sessions.begin() as session:
        assert Repositories(session).api_users.all()[0].last_used_at == NOW + timedelta(seconds=60)


def test_a_revoked_token_stops_working_and_the_name_is_free_again(db: Database) -> None:
    with db.sessions.begin() as session:
        _, token = Repositories(session).api_users.add("liam", "rep", email="Liam.Walsh@northwind.example", now=NOW)
    with db.sessions.begin() as session:
        revoked = Repositories(session).api_users.revoke("liam", now=NOW)
        assert revoked is not None and not revoked.active
        assert Repositories(session).api_users.revoke("liam", now=NOW) is None
    with db.sessions.begin() as session:
        repos = Repositories(session)
        assert repos.api_users.authenticate(token) is None
        again, _ = repos.api_users.add("liam", "rep", email="liam.walsh@northwind.example", now=NOW)
        assert again.email == "liam.walsh@northwind.example"
        assert [u.active for u in repos.api_users.all(include_revoked=True)] == [False, True]  # by name, then age


@pytest.mark.parametrize(("name", "role", "email", "problem"), [
    ("ann", "owner", None, "api_users.role: 'owner' is not one of admin, manager, rep, marketing, read_only"),
    ("ann", "rep", None, "a rep user needs the email of their CRM user"),
    ("ann", "marketing", "not-an-email", "'not-an-email' is not an email address"),
    ("", "admin", None, "api_users.name"),
])
def test_bad_users_are_refused_naming_the_field(db: Database, name: str, role: str, email: str | None,
                                                problem: str) -> None:
    with pytest.raises((InvalidStoreValue, ValueError), match=problem.replace("(", r"\(").replace(")", r"\)")), \
            db.sessions.begin() as session:
        Repositories(session).api_users.add(name, role, email=email, now=NOW)


def test_two_active_users_cannot_share_a_name(db: Database) -> None:
    with db.sessions.begin() as session:
        Repositories(session).api_users.add("ops", "read-only", email=None, now=NOW)
    with pytest.raises(ValueError, match="already called 'ops'"), db.sessions.begin() as session:
        Repositories(session).api_users.add("ops", "manager", email=None, now=NOW)


def test_rule_sets_are_recorded_once_each_with_what_they_say(db: Database) -> None:
    rules = shipped_rules()
    changed = rules.model_copy(update={"sla": rules.sla.model_copy(update={"statuses": rules.sla.statuses})})
    with db.sessions.begin() as session:
        record_rule_sets(Repositories(session), rules, now=NOW, source="config")
    with db.sessions.begin() as session:
        record_rule_sets(Repositories(session), changed, now=NOW + timedelta(days=1), source="config")
    with db.sessions.begin() as session:
        history = Repositories(session).rules_versions.history()
    assert {h.version for h in history} == set(rule_sets(rules))  # the same rules: the same two versions
    people = next(h for h in history if h.version == rules.version)
    assert people.rules["kind"] == "people" and people.rules["sla"] == rules.sla.model_dump(mode="json")
    assert (people.first_seen, people.last_seen) == (NOW, NOW + timedelta(days=1))
