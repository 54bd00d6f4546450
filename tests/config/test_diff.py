"""``relay config diff``: each kind of change in words, named lists matched by name, versions from a store.

The sides are copies of the shipped config/ edited as an admin would (YAML text), loaded through the
loader, or rule sets a run recorded in a migrated store (SQLite always, PostgreSQL when configured).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from connector import cli
from connector.config.diff import (
    RecordedVersions,
    RuleSourceError,
    diff_parts,
    diff_sources,
    load_rules_dir,
    load_sources,
    source_from_dir,
    source_from_store,
)
from connector.config.loader import validate_config
from connector.config.problems import ConfigError
from connector.pipeline.rule_sets import record_rule_sets, rule_sets
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.repositories import Repositories, RulesVersions
from tests.support.databases import fresh_postgres_schema

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIAM = "liam.walsh@northwind.example"


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(REPO / "config", target, ignore=shutil.ignore_patterns("schema"))
    return target


def _edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / "rules" / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def old_dir(tmp_path: Path) -> Path:
    return _copy(tmp_path, "old")


@pytest.fixture
def new_dir(tmp_path: Path) -> Path:
    return _copy(tmp_path, "new")


def _texts(old: Path, new: Path) -> list[str]:
    return [c.text for c in diff_sources(source_from_dir(old), source_from_dir(new)).changes]


def test_the_same_rules_differ_in_nothing(old_dir: Path, new_dir: Path) -> None:
    _edit(new_dir, "routing.yaml", "reroute_owned_contacts: false", "reroute_owned_contacts: false   # said again")
    diff = diff_sources(source_from_dir(old_dir), source_from_dir(new_dir))
    assert diff.empty and diff.changes == [] and diff.notes == []
    assert "routing" in diff.compared and "sla" in diff.compared


def test_a_changed_value_of_a_named_item_is_phrased_by_its_name_and_key_path(old_dir: Path, new_dir: Path) -> None:
    _edit(new_dir, "routing.yaml", "min_score: 60, group: sales_reps", "min_score: 55, group: sales_reps")
    _edit(new_dir, "sla.yaml", "response_minutes: 5\n", "response_minutes: 10\n")
    diff = diff_sources(source_from_dir(old_dir), source_from_dir(new_dir))
    assert [c.text for c in diff.changes] == [
        "routing.yaml: rule warm_sales_rep min_score 60 -> 55 (rules[3].min_score)",
        "sla.yaml: tier Hot response_minutes 5 -> 10 (tiers[0].response_minutes)",
    ]
    first = diff.changes[0]
    assert (first.file, first.path, first.kind, first.old, first.new) == (
        "routing.yaml", "rules[3].min_score", "changed", 60, 55)


def test_team_members_are_matched_by_email_not_position(old_dir: Path, new_dir: Path) -> None:
    path = new_dir / "rules" / "routing.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    liam = next(i for i, line in enumerate(lines) if LIAM in line and line.lstrip().startswith("- {email"))
    moved = lines.pop(liam).replace("region: NA,", "region: NA, weight: 2,")
    lucas = next(i for i, line in enumerate(lines) if "lucas.silva@" in line and line.lstrip().startswith("- {"))
    lines.pop(lucas)
    last = max(i for i, line in enumerate(lines) if line.lstrip().startswith("- {email"))
    lines[last + 1:last + 1] = [moved, "  - {email: new.rep@northwind.example, name: New Rep, role: sales_rep, "
                                       "region: EMEA, manager: priya.nair@northwind.example}\n"]
    path.write_text("".join(lines), encoding="utf-8")

    diff = diff_sources(source_from_dir(old_dir), source_from_dir(new_dir))
    at = {m.email: i for i, m in enumerate(load_rules_dir(new_dir).routing.team)}
    was = {m.email: i for i, m in enumerate(load_rules_dir(old_dir).routing.team)}["lucas.silva@northwind.example"]
    assert [c.text for c in diff.changes] == [
        f"routing.yaml: team: removed lucas.silva@northwind.example (sales_rep, NA, inactive), was team[{was}]",
        f"routing.yaml: team: added new.rep@northwind.example (sales_rep, EMEA) at team[{at['new.rep@northwind.example']}]",
        f"routing.yaml: member {LIAM} weight 1 -> 2 (team[{at[LIAM]}].weight)",
    ]  # Liam moved to the end of the roster: no change for that, only his weight
    assert [c.kind for c in diff.changes] == ["removed", "added", "changed"]


def test_a_reordered_rule_list_says_the_order_changed(old_dir: Path, new_dir: Path) -> None:
    _edit(new_dir, "routing.yaml",
          "  - {name: named_account, action: named_account_owner}\n"
          "  - {name: matched_account_owner, action: matched_account_owner}\n",
          "  - {name: matched_account_owner, action: matched_account_owner}\n"
          "  - {name: named_account, action: named_account_owner}\n")
    changes = diff_sources(source_from_dir(old_dir), source_from_dir(new_dir)).changes
    assert [(c.kind, c.text) for c in changes] == [(
        "moved",
        "routing.yaml: rules: order named_account, matched_account_owner, hot_senior_rep, warm_sales_rep, "
        "qualified_sdr, nurture -> matched_account_owner, named_account, hot_senior_rep, warm_sales_rep, "
        "qualified_sdr, nurture",
    )]


def test_dict_keys_scalar_lists_and_nested_named_items(old_dir: Path, new_dir: Path) -> None:
    _edit(new_dir, "routing.yaml", "  tyrell.example: kenji.watanabe@northwind.example\n",
          "  tyrell.example: kenji.watanabe@northwind.example\n  acme.example: olivia.grant@northwind.example\n")
    _edit(new_dir, "routing.yaml", "  initech.example: rafael.ortiz@northwind.example\n", "")
    _edit(new_dir, "routing.yaml", "NA: [US, CA, MX]", "NA: [US, CA, MX, PR]")
    _edit(new_dir, "stages.yaml",
          "      - name: Discovery\n        ids: [qualifiedtobuy, \"128400102\"]\n        expected_days: {min: 7, max: 14}",
          "      - name: Discovery\n        ids: [qualifiedtobuy, \"128400102\"]\n        expected_days: {min: 7, max: 21}")
    texts = _texts(old_dir, new_dir)
    assert texts == [
        "routing.yaml: regions.NA added 'PR'",
        "routing.yaml: named_accounts.initech.example removed (was 'rafael.ortiz@northwind.example')",
        "routing.yaml: named_accounts.acme.example added: 'olivia.grant@northwind.example'",
        "stages.yaml: pipelines.sales stage Discovery expected_days.max 14 -> 21 "
        "(pipelines.sales.stages[1].expected_days.max)",
    ]


def test_dispositions_and_a_default_written_out_or_a_file_added() -> None:
    old = {"dispositions": {"dispositions": {"No Response": {"action": "recycle", "recycle_days": 90}},
                            "tracks": [{"name": "Awareness", "min": 0, "max": 19}]}}
    new = {"dispositions": {"dispositions": {"No Response": {"action": "recycle", "recycle_days": 60}},
                            "tracks": [{"name": "Awareness", "min": 0, "max": 29}]},
           "quality": {"required_fields": ["email"]}}
    assert [c.text for c in diff_parts(old, new)] == [
        "quality.yaml: added",
        "dispositions.yaml: dispositions.No Response.recycle_days 90 -> 60",
        "dispositions.yaml: track Awareness max 19 -> 29 (tracks[0].max)",
    ]
    assert next(c.text for c in diff_parts(new, old)) == "quality.yaml: removed"


def test_items_without_names_are_compared_by_position() -> None:
    old = {"approvals": {"rows": [{"max": 10, "approver": "Sales Rep"}, {"max": 20, "approver": "Sales Manager"}]}}
    new = {"approvals": {"rows": [{"max": 15, "approver": "Sales Rep"}]}}
    assert [c.text for c in diff_parts(old, new)] == [
        "approvals.yaml: rows[0].max 10 -> 15",
        "approvals.yaml: rows[1] removed (was {\"max\": 20, \"approver\": \"Sales Manager\"})",
    ]


def test_a_missing_directory_or_one_without_rules_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuleSourceError, match=re.escape(f"{tmp_path / 'nowhere'}: no such directory")):
        load_sources([str(tmp_path / "nowhere"), str(REPO / "config")], _no_store)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleSourceError, match="empty holds no rules/ directory"):
        load_sources([str(REPO / "config"), str(tmp_path / "empty")], _no_store)


def test_invalid_rules_refuse_to_load_with_the_loaders_problems(tmp_path: Path) -> None:
    broken = _copy(tmp_path, "config")
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    _edit(broken, "routing.yaml", "group: sdr_team, tier: Qualified", "group: sdrs, tier: Qualified")
    with pytest.raises(ConfigError) as raised:
        load_sources([str(REPO / "config"), str(broken)], _no_store)
    shown = [str(p) for p in raised.value.problems]
    assert shown == [str(p) for p in validate_config(broken, tmp_path / "mappings", env={})]
    assert any("rules[4].group: 'sdrs' is not a group defined under groups" in line for line in shown), shown


@contextmanager
def _no_store() -> Iterator[RecordedVersions]:
    raise AssertionError("two directories need no store")
    yield  # pragma: no cover


# --------------------------------------------------------------------------- versions recorded in a store


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store, once per backend."""
    if request.param == "sqlite":
        made = create_engine_for(f"sqlite:///{tmp_path / 'relay.db'}")
        migrate.upgrade(made)
        yield made
        made.dispose()
        return
    with fresh_postgres_schema() as url:  # skips locally, fails under CI=true, when not configured
        made = create_engine_for(url)
        migrate.upgrade(made)
        yield made
        made.dispose()


def _opener(engine: Engine) -> Any:
    @contextmanager
    def opened() -> Iterator[RecordedVersions]:
        with Session(engine) as session:
            yield RulesVersions(session)
    return opened


def test_versions_recorded_by_runs_are_looked_up_in_the_store(engine: Engine, old_dir: Path,
                                                               new_dir: Path) -> None:
    _edit(new_dir, "sla.yaml", "response_minutes: 5\n", "response_minutes: 10\n")
    old_rules, new_rules = load_rules_dir(old_dir), load_rules_dir(new_dir)
    with session_factory(engine).begin() as session:
        record_rule_sets(Repositories(session), old_rules, now=T0, source="config-v1")
        record_rule_sets(Repositories(session), new_rules, now=T0 + timedelta(days=1), source="config-v2")
    old_version, new_version = old_rules.version, new_rules.version
    assert old_version != new_version

    old, new = load_sources([old_version, new_version[:6]], _opener(engine))  # a prefix will do
    assert (old.version, old.kind, new.version) == (old_version, "people", new_version)
    assert "recorded in the store (people rules, in force 2026-03-02 09:00" in old.described
    assert "from config-v1" in old.described
    diff = diff_sources(old, new)
    assert [c.text for c in diff.changes] == ["sla.yaml: tier Hot response_minutes 5 -> 10 (tiers[0].response_minutes)"]
    assert set(diff.compared) == set(rule_sets(old_rules)[old_version]) - {"kind"}  # the people parts

    # a recorded version against a directory: only the parts the version holds are compared, and said so
    mixed = diff_sources(load_sources([old_version], _opener(engine))[0], source_from_dir(new_dir))
    assert [c.text for c in mixed.changes] == ["sla.yaml: tier Hot response_minutes 5 -> 10 (tiers[0].response_minutes)"]
    assert len(mixed.notes) == 1 and "not compared: " in mixed.notes[0] and "stages.yaml" in mixed.notes[0]
    assert "only NEW" in mixed.notes[0]


def test_an_unknown_version_is_named_with_the_known_ones(engine: Engine, old_dir: Path) -> None:
    rules = load_rules_dir(old_dir)
    with session_factory(engine).begin() as session:
        record_rule_sets(Repositories(session), rules, now=T0)
    with pytest.raises(RuleSourceError) as raised:
        load_sources([str(old_dir), "deadbeef"], _opener(engine))
    message = str(raised.value)
    assert "no rules version 'deadbeef' recorded in the store" in message
    assert f"{rules.version} (people, first seen 2026-03-02 09:00)" in message


@dataclass(frozen=True)
class _Recorded:
    version: str
    rules: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    source: str | None = None


class _Versions:
    def __init__(self, *recorded: _Recorded) -> None:
        self.recorded = list(recorded)

    def get(self, version: str) -> _Recorded | None:
        return next((r for r in self.recorded if r.version == version), None)

    def history(self) -> list[_Recorded]:
        return list(self.recorded)


def test_an_ambiguous_prefix_names_both_versions() -> None:
    versions = _Versions(_Recorded("abcd1111", {"kind": "people"}, T0, T0), _Recorded("abcd2222", {"kind": "deals"}, T0, T0))
    with pytest.raises(RuleSourceError, match="'abcd' is ambiguous: abcd1111, abcd2222"):
        source_from_store(versions, "abcd")
    assert source_from_store(versions, "abcd2").version == "abcd2222"


# --------------------------------------------------------------------------- through the CLI


def test_the_command_prints_each_change_and_exits_2_for_an_unknown_side(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, old_dir: Path, new_dir: Path) -> None:
    monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{tmp_path / 'relay.db'}")
    monkeypatch.setattr(cli.console, "width", 200)
    _edit(new_dir, "routing.yaml", "min_score: 60, group: sales_reps", "min_score: 55, group: sales_reps")
    runner = CliRunner()
    result = runner.invoke(cli.app, ["config", "diff", str(old_dir), str(new_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == ["routing.yaml: rule warm_sales_rep min_score 60 -> 55 (rules[3].min_score)"]
    assert result.stdout.splitlines()[0].startswith(f"OLD: config directory {old_dir} (rules version ")

    same = runner.invoke(cli.app, ["config", "diff", str(old_dir), str(old_dir / "rules")])
    assert same.exit_code == 0 and "no change in scoring.yaml, routing.yaml" in same.stdout

    missing = runner.invoke(cli.app, ["config", "diff", str(old_dir), str(tmp_path / "nope")])
    assert missing.exit_code == 2 and f"{tmp_path / 'nope'}: no such directory" in missing.stderr

    unknown = runner.invoke(cli.app, ["config", "diff", "0123abcd", str(new_dir)])
    assert unknown.exit_code == 2, unknown.output
    assert "no rules version '0123abcd' recorded in the store" in unknown.stderr
