"""enrichment.yaml: the shipped file, what the loader makes of it, and errors that name file, key and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connector.config.loader import _load_enrichment, load_config, validate_config
from connector.config.problems import ConfigProblem
from connector.config.schema import stale_schemas
from connector.enrich.settings import ENRICHABLE_FIELDS, EnrichmentFile

REPO = Path(__file__).resolve().parents[2]
FILE = "config/rules/enrichment.yaml"


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped config/ and mappings/ under tmp_path, which becomes the working directory."""
    shutil.copytree(REPO / "config", tmp_path / "config", ignore=shutil.ignore_patterns("schema"))
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def edit(old: str, new: str) -> None:
    path = Path(FILE)
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(env: dict[str, str] | None = None) -> list[str]:
    """The problems validate_config finds in enrichment.yaml (other files are other suites' business)."""
    return [str(p) for p in validate_config("config", "mappings", env=env or {}) if p.file == FILE]


def shipped(env: dict[str, str]) -> EnrichmentFile:
    """The shipped enrichment.yaml as the loader reads it."""
    found: list[ConfigProblem] = []
    enrichment = _load_enrichment(REPO / FILE, env, found)
    assert found == [] and enrichment is not None
    return enrichment


def line_of(text: str) -> int:
    lines = Path(FILE).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_shipped_file_loads_disabled_and_points_at_the_sandbox() -> None:
    assert problems() == []
    enrichment = shipped({})
    assert not enrichment.enabled
    assert (enrichment.mode, enrichment.overwrite) == ("waterfall", False)
    assert [(p.name, p.lookup) for p in enrichment.providers] == [("firmographics", "company"), ("person_data", "person")]
    assert enrichment.providers[0].url == "http://127.0.0.1:8726/v1/companies/find?domain={domain}"
    assert enrichment.consent.require == {"email_opt_out": [False, None]}
    assert "sandbox-enrich-key" not in repr(enrichment)  # keys are secrets


def test_the_environment_switches_it_on_and_points_it_elsewhere() -> None:
    env = {"RELAY_ENRICH_ENABLED": "true", "RELAY_ENRICH_URL": "https://enrich.internal", "RELAY_ENRICH_API_KEY": "k1"}
    enrichment = shipped(env)
    assert enrichment.enabled
    company, person = enrichment.providers
    assert company.url == "https://enrich.internal/v1/companies/find?domain={domain}"
    assert company.auth_value.get_secret_value() == "Bearer k1" and person.auth_value.get_secret_value() == "k1"


def test_its_schema_is_committed_and_current_and_the_file_points_at_it() -> None:
    assert "enrichment.schema.json" not in stale_schemas(REPO / "config" / "schema")
    first = (REPO / FILE).read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/enrichment.schema.json"


def test_relay_config_carries_it_and_none_without_the_file(copy: Path) -> None:
    assert load_config("config", "mappings", env={"RELAY_ENRICH_ENABLED": "true"}).enrichment == shipped(
        {"RELAY_ENRICH_ENABLED": "true"})
    Path(FILE).unlink()
    assert load_config("config", "mappings", env={}).enrichment is None


def test_an_unknown_canonical_field_is_named_with_file_key_and_line(copy: Path) -> None:
    edit("$.category.industry: industry", "$.category.industry: sector")
    assert problems() == [
        f"{FILE}:{line_of('$.category.industry: sector')}: providers[0].fields.$.category.industry: 'sector' is not a "
        f"person field enrichment fills (one of: {', '.join(ENRICHABLE_FIELDS)})"]


def test_a_json_path_that_cannot_be_read_is_named(copy: Path) -> None:
    edit("$.metrics.employees: employees", "metrics.employees: employees")
    assert problems() == [
        f"{FILE}:{line_of('metrics.employees: employees')}: providers[0].fields.metrics.employees: a JSON path starts "
        "with $ (e.g. $.name), got 'metrics.employees' (it maps to 'employees')"]


def test_a_url_without_its_placeholder_or_with_the_wrong_one_is_named(copy: Path) -> None:
    edit("/v2/person?email={email}", "/v2/person?email={domain}")
    edit("find?domain={domain}", "find")
    assert problems() == [
        f"{FILE}:{line_of('/v1/companies/find')}: providers[0].url: a company lookup needs {{domain}} in its url (or body) "
        "(got 'http://127.0.0.1:8726/v1/companies/find')",
        f"{FILE}:{line_of('/v2/person?email=')}: providers[1].url: unknown placeholder {{domain}}; a person lookup "
        "fills {email} only (got 'http://127.0.0.1:8726/v2/person?email={domain}')"]


def test_a_misspelled_key_is_named_with_a_suggestion(copy: Path) -> None:
    edit("    rate_limit_per_second: 10\n    cache_ttl_days: 30\n    not_found_ttl_days: 7\n\n",
         "    rate_limit_per_secnd: 10\n    cache_ttl_days: 30\n    not_found_ttl_days: 7\n\n")
    [problem] = problems()
    assert problem.startswith(f"{FILE}:{line_of('rate_limit_per_secnd')}: providers[0].rate_limit_per_secnd: unknown "
                              "key 'rate_limit_per_secnd'; did you mean 'rate_limit_per_second'?")


def test_duplicate_provider_names_and_bad_values_are_named(copy: Path) -> None:
    edit("name: person_data", "name: firmographics")
    edit("timeout_seconds: 5\n    max_attempts: 3\n    rate_limit_per_second: 10\n    cache_ttl_days: 30\n"
         "    not_found_ttl_days: 7\n\n",
         "timeout_seconds: 0\n    max_attempts: 3\n    rate_limit_per_second: 10\n    cache_ttl_days: 30\n"
         "    not_found_ttl_days: 7\n\n")
    assert problems() == [
        f"{FILE}:{line_of('timeout_seconds: 0')}: providers[0].timeout_seconds: input should be greater than 0 (got 0)"]
    edit("timeout_seconds: 0", "timeout_seconds: 5")
    second = [i for i, line in enumerate(Path(FILE).read_text(encoding="utf-8").splitlines(), 1)
              if "name: firmographics" in line][1]
    assert problems() == [f"{FILE}:{second}: providers[1].name: provider name 'firmographics' is used twice"]


def test_a_consent_rule_on_a_field_that_does_not_exist_or_of_the_wrong_type(copy: Path) -> None:
    edit("    email_opt_out: [false, null]", "    email_opt_out: [\"no\"]\n    gdpr_basis: [consent]")
    assert problems() == [
        f"{FILE}:{line_of('email_opt_out: [')}: consent.require.email_opt_out[0]: 'email_opt_out' holds bool values, "
        "got 'no'",
        f"{FILE}:{line_of('gdpr_basis')}: consent.require.gdpr_basis: no person field 'gdpr_basis' "
        "(consent fields today: email_opt_out) (got ['consent'])"]


def test_a_missing_environment_variable_is_named_where_it_is_read(copy: Path) -> None:
    edit("Bearer ${RELAY_ENRICH_API_KEY:-sandbox-enrich-key}", "Bearer ${ACME_KEY}")
    assert problems() == [
        f"{FILE}:{line_of('ACME_KEY')}: providers[0].auth_value: environment variable ACME_KEY is not set and "
        "'Bearer ${ACME_KEY}' gives no default (write ${ACME_KEY:-default} to give one)"]
    assert problems({"ACME_KEY": "sk_live"}) == []


def test_enabled_without_providers_is_refused(copy: Path) -> None:
    Path(FILE).write_text("enabled: true\nproviders: []\n", encoding="utf-8")
    assert problems() == [f"{FILE}:2: providers: enabled: true needs at least one provider (got [])"]
