"""consent.yaml and retention.yaml: the shipped files are the models' SOP defaults, and mistakes are named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from connector.config.loader import load_config
from connector.core.governance.rules import ConsentRules, RetentionRules

if TYPE_CHECKING:
    from conftest import ConfigCopy

Problems = Callable[[], list[str]]
REPO = Path(__file__).resolve().parents[2]


def _yaml(name: str) -> object:
    return yaml.safe_load((REPO / "config" / "rules" / f"{name}.yaml").read_text(encoding="utf-8"))


def test_the_shipped_files_are_the_defaults() -> None:
    assert ConsentRules.model_validate(_yaml("consent")) == ConsentRules()
    assert RetentionRules.model_validate(_yaml("retention")) == RetentionRules()
    rules = load_config(REPO / "config", REPO / "mappings", env={}).rules
    assert rules.consent == ConsentRules() and rules.retention == RetentionRules()


def test_consent_mistakes_are_named(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/consent.yaml", "  do_not_contact: {allows: []}", "  do_not_contact: {allows: [routing]}")
    shipped.edit("config/rules/consent.yaml",
                 "  do_not_call: {allows: [outreach_tasks, enrichment, alerts_with_personal_data, routing], "
                 "closes: [phone]}\n", "")
    shipped.edit("config/rules/consent.yaml", "  required_in: []", '  required_in: [de, "*"]')
    shipped.edit("config/rules/consent.yaml", "no_lawful_basis: {allows: [routing]}",
                 "no_lawful_basis: {allows: [routing, routing]}")
    problems = problems_of()
    assert problems == [
        "config/rules/consent.yaml:26: states.do_not_call: consent state 'do_not_call' is not listed: say which "
        "actions it allows (allows: [] for none; actions: outreach_tasks, enrichment, alerts_with_personal_data, "
        "routing) (got None)",
        "config/rules/consent.yaml:35: states.no_lawful_basis.allows[1]: action 'routing' is already listed at "
        "allows[0]",
        "config/rules/consent.yaml:40: states.do_not_contact.allows: a Do Not Contact disposition suppresses "
        "everywhere (seed 002 'Do Not Contact -> Suppress'): it allows no action (got ['routing'])",
        "config/rules/consent.yaml:52: lawful_basis.required_in[0]: 'de' is not an ISO 3166 alpha-2 country code "
        "(e.g. DE) or '*'",
    ]


def test_consent_field_errors_are_named(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/consent.yaml", "closes: [email]}", "closes: [fax]}")
    shipped.edit("config/rules/consent.yaml", "do_not_call: {allows: [outreach_tasks, enrichment",
                 "do_not_call: {allows: [outreach, enrichment")
    problems = problems_of()
    assert "config/rules/consent.yaml:30: states.email_opt_out.closes[0]: input should be 'email' or 'phone' " \
           "(got 'fax')" in problems
    assert any(p.startswith("config/rules/consent.yaml:32: states.do_not_call.allows[0]: input should be ")
               and "(got 'outreach')" in p for p in problems)


def test_retention_mistakes_are_named(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/retention.yaml", "employee: {years: 7, action: archive}",
                 "employee: {years: 7, action: delete}")
    shipped.edit("config/rules/retention.yaml", "  unsubscribed: {years: 5, action: suppress}\n", "")
    assert problems_of() == [
        "config/rules/retention.yaml:24: classes.unsubscribed: retention class 'unsubscribed' is not listed: give "
        "its years and action (got None)",
        "config/rules/retention.yaml:27: classes.employee.action: employee data are CRM users: Relay only archives "
        "them (action: archive) (got 'delete')",
    ]


def test_retention_field_errors_are_named(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/retention.yaml", "prospect: {years: 2, action: delete}",
                 "prospect: {years: 0, action: shred}")
    assert problems_of() == [
        "config/rules/retention.yaml:26: classes.prospect.years: input should be greater than or equal to 1 (got 0)",
        "config/rules/retention.yaml:26: classes.prospect.action: input should be 'archive', 'delete' or 'suppress' "
        "(got 'shred')",
    ]


def test_the_files_are_optional(shipped: ConfigCopy) -> None:
    shipped.path("config/rules/consent.yaml").unlink()
    shipped.path("config/rules/retention.yaml").unlink()
    rules = load_config(shipped.config_dir, shipped.mappings_dir, env={}).rules
    assert rules.consent == ConsentRules() and rules.retention == RetentionRules()


def test_subscription_type_mistakes_are_named(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/consent.yaml", "  hubspot: [One to One]", '  hubspot: [One to One, " one  to one ", ""]')
    assert problems_of() == [
        "config/rules/consent.yaml:78: subscription_types.hubspot[1]: subscription type ' one  to one ' is already "
        "listed at hubspot[0] (names compare without case)",
        "config/rules/consent.yaml:78: subscription_types.hubspot[2]: name a subscription type as the CRM shows it "
        "(e.g. One to One), not blank (got '')",
    ]


def test_subscription_types_name_crms_that_keep_them(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/consent.yaml", "  hubspot: [One to One]",
                 "  hubspot: [One to One]\n  hubsopt: [Sales]\n  salesforce: [Newsletter]")
    assert problems_of() == [
        "config/rules/consent.yaml:79: subscription_types.hubsopt: 'hubsopt' is no CRM Relay knows; did you mean "
        "'hubspot'? (known: hubspot, salesforce)",
        "config/rules/consent.yaml:80: subscription_types.salesforce: Relay reads no email subscription types from "
        "Salesforce (it does from: hubspot); map subscription_status to a field of yours instead",
    ]


def test_subscription_types_ship_as_hubspots_one_to_one_and_an_empty_list_turns_them_off(
        shipped: ConfigCopy) -> None:
    assert load_config(shipped.config_dir, shipped.mappings_dir, env={}).rules.consent.subscription_types == {
        "hubspot": ["One to One"]}
    shipped.edit("config/rules/consent.yaml", "  hubspot: [One to One]", "  hubspot: []")
    assert load_config(shipped.config_dir, shipped.mappings_dir, env={}).rules.consent.subscription_types == {
        "hubspot": []}
