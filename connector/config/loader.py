"""Load and validate everything Relay is configured with, reporting every problem at once."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from connector.config._errors import problems_from_validation
from connector.config._yaml import YamlDocument, format_path, read_yaml
from connector.config.canonical import CANONICAL_FIELDS, field_type
from connector.config.connection import CONNECTION_NAME_PATTERN, ConnectionSettings
from connector.config.envsubst import substitute_tree
from connector.config.mappings import MappingFile, ObjectMapping, check_mapping_file
from connector.config.problems import ConfigError, ConfigProblem
from connector.config.relay import RelayFile
from connector.config.settings import config_location
from connector.core import rules as core_rules
from connector.crms import load_units
from connector.enrich.settings import SUBSTITUTED_SECTIONS as ENRICHMENT_SUBSTITUTED
from connector.enrich.settings import EnrichmentFile
from connector.notify.settings import SUBSTITUTED_SECTIONS, AlertsFile, tier_problems

RULE_FILES: dict[str, type[BaseModel]] = {
    "scoring": core_rules.ScoringRules, "routing": core_rules.RoutingRules, "sla": core_rules.SlaPolicy,
}
"""Rule file stem (config/rules/<stem>.yaml) -> its model in ``connector.core.rules``."""
OPTIONAL_RULE_FILES: dict[str, type[BaseModel]] = {"matching": core_rules.MatchingRules,
                                                     "quality": core_rules.QualityRules,
                                                     "stages": core_rules.StageRules,
                                                     "approvals": core_rules.ApprovalRules,
                                                     "dispositions": core_rules.DispositionRules,
                                                     "handoffs": core_rules.HandoffRules,
                                                     "consent": core_rules.ConsentRules,
                                                     "retention": core_rules.RetentionRules}
"""Rule files an older configuration may lack: their models' defaults stand in."""


@dataclass(frozen=True)
class RelayConfig:
    """Everything Relay is configured with, validated.

    Attributes:
        relay: The connections (``config/relay.yaml``), environment references resolved.
        mappings: Mapping files by name (``mappings/<name>.yaml``).
        rules: The rules (scoring, routing, SLA); ``rules.version`` is the stable hash the audit
            log records with each decision.
        config_dir: Where ``relay.yaml`` and ``rules/`` were read.
        mappings_dir: Where the mapping files were read.
        alerts: Who hears about which lead and how (``rules/alerts.yaml``); None without that file.
        enrichment: Which providers enrich whom (``rules/enrichment.yaml``); None without that file.
    """

    relay: RelayFile
    mappings: dict[str, MappingFile]
    rules: core_rules.Rules
    config_dir: Path = field(default=Path("config"))
    mappings_dir: Path = field(default=Path("mappings"))
    alerts: AlertsFile | None = None
    enrichment: EnrichmentFile | None = None

    def connection(self, name: str) -> ConnectionSettings:
        """The connection called ``name``.

        Raises:
            KeyError: naming the known connections.
        """
        try:
            return self.relay.connections[name]
        except KeyError:
            raise KeyError(f"no connection {name!r} (known: {', '.join(self.relay.connections)})") from None

    def mapping_for(self, connection_name: str) -> MappingFile:
        """The mapping file a connection uses."""
        return self.mappings[self.connection(connection_name).mapping_name]

    def objects_to_sync(self, connection_name: str) -> list[ObjectMapping]:
        """The mappings of the objects a connection syncs, in the order relay.yaml lists them."""
        connection = self.connection(connection_name)
        return [self.object_mapping(connection_name, name) for name in connection.objects]

    def object_mapping(self, connection_name: str, object_name: str) -> ObjectMapping:
        """How one object of one connection maps (e.g. ``("salesforce", "Lead")``).

        Raises:
            KeyError: naming the mapped objects.
        """
        mapping = self.mapping_for(connection_name)
        try:
            return mapping.objects[object_name]
        except KeyError:
            known = ", ".join(mapping.objects)
            raise KeyError(f"connection {connection_name!r} maps no object {object_name!r} (mapped: {known})") from None


def validate_config(
    config_dir: str | Path | None = None, mappings_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ConfigProblem]:
    """Check ``config/`` and ``mappings/`` and return every problem found (empty when valid).

    Args:
        config_dir: Directory with ``relay.yaml`` and ``rules/``.
        mappings_dir: Directory with the mapping files.
        env: Environment for ``${VAR:-default}`` references; ``os.environ`` when omitted.

    Returns:
        All problems across all files, each naming file, key path and value.
    """
    config_path, mappings_path = _where(config_dir, mappings_dir)
    _, problems = _load(config_path, mappings_path, os.environ if env is None else env)
    return problems


def load_matching_rules(config_dir: str | Path | None = None) -> core_rules.MatchingRules:
    """``rules/matching.yaml`` alone (``relay match`` needs no connection or credential).

    The defaults when the file does not exist.

    Raises:
        ConfigError: naming file, key and value of every problem in the file.
    """
    config_path, _ = _where(config_dir, None)
    path = config_path / "rules" / "matching.yaml"
    if not path.is_file():
        return core_rules.MatchingRules()
    problems: list[ConfigProblem] = []
    rules = _validate(core_rules.MatchingRules, read_yaml(path, str(path)), str(path), problems)
    if problems or rules is None:
        raise ConfigError(problems)
    return rules


def _where(config_dir: str | Path | None, mappings_dir: str | Path | None) -> tuple[Path, Path]:
    """The directories asked for, or those of :func:`connector.config.settings.config_location`."""
    if config_dir is not None and mappings_dir is not None:
        return Path(config_dir), Path(mappings_dir)
    location = config_location()
    return (Path(config_dir) if config_dir is not None else location.config_dir,
            Path(mappings_dir) if mappings_dir is not None else location.mappings_dir)


def load_config(
    config_dir: str | Path | None = None, mappings_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> RelayConfig:
    """Load and validate Relay's configuration; nothing loads unless everything is valid.

    Args:
        config_dir: Directory with ``relay.yaml`` and ``rules/``.
        mappings_dir: Directory with the mapping files.
        env: Environment for ``${VAR:-default}`` references; ``os.environ`` when omitted.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: holding every problem found, across all files.
    """
    config_path, mappings_path = _where(config_dir, mappings_dir)
    config, problems = _load(config_path, mappings_path, os.environ if env is None else env)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def _load(config_dir: Path, mappings_dir: Path, env: Mapping[str, str]) -> tuple[RelayConfig | None, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    relay = _load_relay(config_dir / "relay.yaml", env, problems)
    mappings = _load_mappings(mappings_dir, problems)
    rules = _load_rules(config_dir / "rules", problems)
    alerts = _load_alerts(config_dir / "rules" / "alerts.yaml", env, problems,
                          [tier.name for tier in rules.sla.tiers] if rules is not None else None)
    enrichment = _load_enrichment(config_dir / "rules" / "enrichment.yaml", env, problems)
    if relay is not None:
        _check_connections(relay, mappings, config_dir / "relay.yaml", mappings_dir, problems)
        if rules is not None:
            _check_governed_fields(relay, mappings, rules, config_dir / "rules", mappings_dir, problems)
    if rules is not None:
        _check_subscription_types(rules, config_dir / "rules" / "consent.yaml", problems)
    problems = _in_file_order(problems, config_dir / "relay.yaml", mappings_dir)
    if problems or relay is None or rules is None:
        return None, problems
    return RelayConfig(relay, mappings, rules, config_dir, mappings_dir, alerts, enrichment=enrichment), problems


def _in_file_order(problems: list[ConfigProblem], relay_path: Path, mappings_dir: Path) -> list[ConfigProblem]:
    """relay.yaml first, then the mapping files, then the rules; by line within a file."""

    def rank(problem: ConfigProblem) -> tuple[int, str, int]:
        if problem.file == str(relay_path):
            group = 0
        elif Path(problem.file).parent == mappings_dir or problem.file == str(mappings_dir):
            group = 1
        else:
            group = 2
        return group, problem.file, _line(problem)

    return sorted(problems, key=rank)


def _validate(model: type[BaseModel], document: YamlDocument, file: str, problems: list[ConfigProblem]) -> Any:
    problems.extend(sorted(document.problems, key=_line))
    if document.data is None:
        if not document.problems:
            problems.append(ConfigProblem(file, "", None, "file is empty"))
        return None
    if not isinstance(document.data, dict):
        problems.append(ConfigProblem(file, "", document.data, "the file must hold a mapping of keys at its top level", 1, 1))
        return None
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(sorted(problems_from_validation(exc, model, document, file), key=_line))
        return None


def _line(problem: ConfigProblem) -> int:
    return problem.line if problem.line is not None else 0


def _load_relay(path: Path, env: Mapping[str, str], problems: list[ConfigProblem]) -> RelayFile | None:
    file = str(path)
    if not path.is_file():
        problems.append(ConfigProblem(file, "", None, "file not found; Relay needs relay.yaml to know its connections"))
        return None
    document = read_yaml(path, file)
    if document.data is not None:
        document.data, failures = substitute_tree(document.data, env)
        for key_path, value, message in failures:
            line, column = document.position(key_path)
            problems.append(ConfigProblem(file, format_path(key_path), value, message, line, column))
    result = _validate(RelayFile, document, file, problems)
    return result if isinstance(result, RelayFile) else None


def _substituted(document: YamlDocument, file: str, env: Mapping[str, str], sections: Collection[str],
                 problems: list[ConfigProblem]) -> YamlDocument:
    """``document`` with the ``${VAR:-default}`` references of its top-level ``sections`` resolved.

    Each reference that cannot be resolved is a problem naming file, key and line.
    """
    if isinstance(document.data, dict):
        data = dict(document.data)
        for section in sections:
            if section in data:
                data[section], failures = substitute_tree(data[section], env, (section,))
                for key_path, value, message in failures:
                    line, column = document.position(key_path)
                    problems.append(ConfigProblem(file, format_path(key_path), value, message, line, column))
        document.data = data
    return document


def _load_alerts(path: Path, env: Mapping[str, str], problems: list[ConfigProblem],
                 tier_names: Collection[str] | None) -> AlertsFile | None:
    """``rules/alerts.yaml``; None when it does not exist (no alerts: an older configuration keeps loading).

    Its ``channels`` and ``links`` may read the environment (``${VAR:-default}``); its tiers
    must be sla.yaml's (not checked when sla.yaml did not load: ``tier_names`` None).
    """
    if not path.is_file():
        return None
    file = str(path)
    document = _substituted(read_yaml(path, file), file, env, SUBSTITUTED_SECTIONS, problems)
    alerts = _validate(AlertsFile, document, file, problems)
    if not isinstance(alerts, AlertsFile):
        return None
    for key_path, value, message in tier_problems(alerts, tier_names) if tier_names is not None else []:
        line, column = document.position(key_path)
        problems.append(ConfigProblem(file, format_path(key_path), value, message, line, column))
    return alerts


def _load_enrichment(path: Path, env: Mapping[str, str], problems: list[ConfigProblem]) -> EnrichmentFile | None:
    """``rules/enrichment.yaml``; None when it does not exist (no enrichment: an older configuration keeps loading).

    Its ``enabled`` and ``providers`` may read the environment (``${VAR:-default}``: URLs, API keys).
    """
    if not path.is_file():
        return None
    file = str(path)
    document = _substituted(read_yaml(path, file), file, env, ENRICHMENT_SUBSTITUTED, problems)
    enrichment = _validate(EnrichmentFile, document, file, problems)
    return enrichment if isinstance(enrichment, EnrichmentFile) else None


def _load_mappings(mappings_dir: Path, problems: list[ConfigProblem]) -> dict[str, MappingFile]:
    if not mappings_dir.is_dir():
        problems.append(ConfigProblem(str(mappings_dir), "", None, "mappings directory not found"))
        return {}
    mappings: dict[str, MappingFile] = {}
    for path in sorted([*mappings_dir.glob("*.yaml"), *mappings_dir.glob("*.yml")]):
        file = str(path)
        document = read_yaml(path, file)
        mapping = _validate(MappingFile, document, file, problems)
        if not isinstance(mapping, MappingFile):
            continue
        found = []
        for key_path, value, message in check_mapping_file(mapping):
            line, column = document.position(key_path)
            found.append(ConfigProblem(file, format_path(key_path), value, message, line, column))
        problems.extend(sorted(found, key=_line))
        mappings[path.stem] = mapping
    return mappings


def _load_rules(rules_dir: Path, problems: list[ConfigProblem]) -> core_rules.Rules | None:
    parts: dict[str, Any] = {}
    documents: dict[str, tuple[str, YamlDocument]] = {}
    for stem, model in RULE_FILES.items():
        path = rules_dir / f"{stem}.yaml"
        file = str(path)
        if not path.is_file():
            problems.append(ConfigProblem(file, "", None, "file not found"))
            continue
        document = read_yaml(path, file)
        documents[stem] = (file, document)
        parts[stem] = _validate(model, document, file, problems)
    for stem, model in OPTIONAL_RULE_FILES.items():
        path = rules_dir / f"{stem}.yaml"
        if path.is_file():
            document = read_yaml(path, str(path))
            documents[stem] = (str(path), document)
            parts[stem] = _validate(model, document, str(path), problems)
    if len(parts) < len(RULE_FILES) or any(part is None for part in parts.values()):
        return None
    try:
        return core_rules.Rules(**parts)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            loc = tuple(item["loc"])
            owner = str(loc[0]) if loc and str(loc[0]) in documents else None
            file, document = documents[owner] if owner else (str(rules_dir), YamlDocument(None))
            inner = loc[1:] if owner else loc
            line, column = document.position(tuple(p for p in inner if isinstance(p, (str, int))))
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(ConfigProblem(file, format_path(tuple(inner)), item.get("input"), message, line, column))
        return None


def governed_fields(rules: core_rules.Rules) -> list[tuple[str, tuple[str | int, ...], str]]:
    """Every canonical deal field the governance rules read or write: (rules file stem, key path, field).

    Exit criteria (a framework's fields where a criterion names one), the approval matrices that
    gate a stage (what they measure, where the approval is recorded), hygiene's next step, the
    Closed Won form, its carry-over and CS fields, the Closed Lost reason.
    """
    found: list[tuple[str, tuple[str | int, ...], str]] = []
    stages = rules.stages
    for key, pipeline in stages.pipelines.items():
        for i, stage in enumerate(pipeline.stages):
            for j, criterion in enumerate(stage.exit_criteria):
                where: tuple[str | int, ...] = ("pipelines", key, "stages", i, "exit_criteria", j)
                if criterion.field is not None:
                    found.append(("stages", (*where, "field"), criterion.field))
                for name in stages.frameworks.get(criterion.framework or "", ()):
                    found.append(("stages", (*where, "framework"), name))
    if stages.hygiene.missing_next_step:
        found.append(("stages", ("hygiene", "missing_next_step"), "next_step"))
    for key, matrix in rules.approvals.matrices.items():
        if matrix.required_before is None:
            continue  # not a deal's matrix (campaign budgets)
        found.append(("approvals", ("matrices", key, "measure"), matrix.measure))
        if matrix.approved_by is not None:
            found.append(("approvals", ("matrices", key, "approved_by"), matrix.approved_by))
    won = rules.handoffs.closed_won
    found += [("handoffs", ("closed_won", "form_fields", i), name) for i, name in enumerate(won.form_fields)]
    found += [("handoffs", ("closed_won", "carry_over", i), name) for i, name in enumerate(won.carry_over)]
    for attr in ("cs_owner_field", "onboarding_owner_field", "kickoff_date_field"):
        if getattr(won, attr) is not None:
            found.append(("handoffs", ("closed_won", attr), getattr(won, attr)))
    found.append(("handoffs", ("closed_lost", "reason_field"), rules.handoffs.closed_lost.reason_field))
    return found


def handoff_person_fields(rules: core_rules.Rules) -> list[tuple[str, tuple[str | int, ...], str]]:
    """The canonical person fields the SDR -> AE handoff reads: (rules file stem, key path, field).

    The checklist, then the fields of its qualification framework (stages.yaml ``frameworks``).
    """
    spec = rules.handoffs.sdr_to_ae
    found: list[tuple[str, tuple[str | int, ...], str]] = [
        ("handoffs", ("sdr_to_ae", "checklist", i), name) for i, name in enumerate(spec.checklist)]
    if spec.framework is not None:
        found += [("handoffs", ("sdr_to_ae", "framework"), name)
                  for name in rules.stages.frameworks.get(spec.framework, ()) if name not in spec.checklist]
    return found


def _check_governed_fields(relay: RelayFile, mappings: dict[str, MappingFile], rules: core_rules.Rules,
                           rules_dir: Path, mappings_dir: Path, problems: list[ConfigProblem]) -> None:
    """Each field a governance rule names must be mapped where it is read.

    Deal fields: on every deal object a connection syncs. The SDR -> AE checklist: on every synced
    lead object that maps the disposition (only those are converted); a checklist field that is no
    canonical person field is named as such (no mapping could map it).
    """
    deals: list[tuple[str, str, MappingFile]] = []
    leads: list[tuple[str, str, MappingFile]] = []
    for name, connection in relay.connections.items():
        mapping = mappings.get(connection.mapping_name)
        if mapping is None:
            continue
        for obj in connection.objects:
            found = mapping.objects.get(obj)
            if found is None:
                continue
            if found.entity == "deal":
                deals.append((name, obj, mapping))
            elif found.entity == "person" and found.person_kind == "lead" \
                    and rules.dispositions.field in {f.canonical for f in found.fields}:
                leads.append((name, obj, mapping))
    documents: dict[str, YamlDocument] = {}

    def report(stem: str, where: tuple[str | int, ...], value: str, message: str) -> None:
        path = rules_dir / f"{stem}.yaml"
        if stem not in documents:
            documents[stem] = read_yaml(path, str(path)) if path.is_file() else YamlDocument(None)
        line, column = documents[stem].position(where)
        problems.append(ConfigProblem(str(path), format_path(where), value, message, line, column))

    checks = [("deal", deals, governed_fields(rules))] if deals else []
    if leads:
        checks.append(("person", leads, handoff_person_fields(rules)))
    for entity, synced, fields in checks:
        for stem, where, field_name in fields:
            if entity == "person" and field_type("person", field_name) is None:
                close = difflib.get_close_matches(field_name, list(CANONICAL_FIELDS["person"]), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                report(stem, where, field_name, f"'{field_name}' is not a canonical person field{hint}: the "
                                                "handoff checklist can only name fields a lead mapping can map")
                continue
            missing = [(conn, obj) for conn, obj, m in synced
                       if field_name not in {f.canonical for f in m.objects[obj].fields}]
            if not missing:
                continue
            gaps = "; ".join(f"{mappings_dir / f'{relay.connections[conn].mapping_name}.yaml'} object {obj} "
                             f"(connection {conn})" for conn, obj in missing)
            report(stem, where, field_name,
                   f"{entity} field '{field_name}' is used here but no field maps it in {gaps}: "
                   f"add {{canonical: {field_name}, crm: <the CRM field>}} to that object's fields")


def _check_subscription_types(rules: core_rules.Rules, path: Path, problems: list[ConfigProblem]) -> None:
    """consent.yaml ``subscription_types`` names CRMs (unit kinds) whose units read subscription types."""
    units = load_units()
    readers = sorted(kind for kind, unit in units.items() if unit.reads_subscription_types)
    document: YamlDocument | None = None
    for kind in rules.consent.subscription_types:
        unit = units.get(kind)
        if unit is not None and unit.reads_subscription_types:
            continue
        if document is None:
            document = read_yaml(path, str(path)) if path.is_file() else YamlDocument(None)
        where = ("subscription_types", kind)
        line, column = document.position(where)
        if unit is None:
            close = difflib.get_close_matches(kind, list(units), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            message = f"'{kind}' is no CRM Relay knows{hint} (known: {', '.join(sorted(units))})"
        else:
            message = (f"Relay reads no email subscription types from {unit.label} (it does from: "
                       f"{', '.join(readers) or 'none'}); map subscription_status to a field of yours instead")
        problems.append(ConfigProblem(str(path), format_path(where), kind, message, line, column))


def _check_connections(
    relay: RelayFile, mappings: dict[str, MappingFile], relay_path: Path, mappings_dir: Path, problems: list[ConfigProblem]
) -> None:
    file = str(relay_path)
    document = read_yaml(relay_path, file)
    for inner, value, message in relay.capture.problems_with(relay.connections):
        key = ("capture", *inner)
        line, column = document.position(key)
        problems.append(ConfigProblem(file, format_path(key), value, message, line, column))
    for name, connection in relay.connections.items():
        base = ("connections", name)
        if not re.match(CONNECTION_NAME_PATTERN, name):
            line, column = document.position(base)
            problems.append(ConfigProblem(file, format_path(base), name,
                                          f"connection name {name!r} must be lower-case letters, digits and "
                                          "underscores, starting with a letter", line, column))
        mapping_name = connection.mapping_name
        mapping_file = str(mappings_dir / f"{mapping_name}.yaml")
        mapping = mappings.get(mapping_name)
        if mapping is None:
            if (mappings_dir / f"{mapping_name}.yaml").is_file():
                continue  # the file exists but does not load: its own problems say why
            key = (*base, "mapping") if connection.mapping else (*base, "kind")
            line, column = document.position(key)
            message = f"no mapping file {mapping_file} for this connection (known: {', '.join(mappings) or 'none'})"
            problems.append(ConfigProblem(file, ".".join(key), mapping_name, message, line, column))
            continue
        if mapping.crm != connection.kind:
            key = (*base, "mapping") if connection.mapping else (*base, "kind")
            line, column = document.position(key)
            problems.append(ConfigProblem(file, ".".join(key), connection.kind,
                                          f"{mapping_file} maps {mapping.crm} objects, but this connection is {connection.kind}",
                                          line, column))
            continue
        for index, object_name in enumerate(connection.objects):
            if object_name not in mapping.objects:
                key_path = (*base, "objects", index)
                line, column = document.position(key_path)
                problems.append(ConfigProblem(file, format_path(key_path), object_name,
                                              f"{object_name!r} has no mapping in {mapping_file} "
                                              f"(mapped: {', '.join(mapping.objects)})", line, column))
