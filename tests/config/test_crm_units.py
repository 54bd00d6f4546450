"""A CRM is one registered unit: the config, the mappings, the factory and the errors read the registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connector.adapters.errors import RecordError, classify_response
from connector.config.loader import load_config
from connector.config.problems import ConfigError
from connector.crms import UnknownCrm, crm_kinds, crm_unit
from connector.crms.factory import build_adapter

REPO = Path(__file__).resolve().parents[2]


def test_both_shipped_crms_are_registered_units() -> None:
    assert crm_kinds() == ["hubspot", "salesforce"]
    hubspot, salesforce = crm_unit("hubspot"), crm_unit("salesforce")
    assert hubspot.values.text_only and hubspot.values.empty == ""
    assert not salesforce.values.text_only and salesforce.values.empty is None
    assert (hubspot.limits.max_write_batch, salesforce.limits.max_write_batch) == (100, 200)
    assert salesforce.person_kinds == {"Lead": "lead", "Contact": "contact"}
    assert hubspot.creates_fields and not salesforce.creates_fields


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(UnknownCrm, match=r"no CRM unit 'pipedrive' \(known: hubspot, salesforce\)"):
        crm_unit("pipedrive")


def test_each_crm_error_dialect_comes_from_its_unit() -> None:
    body = '{"status": "error", "message": "Property values were not valid: [{\\"isValid\\":false,' \
           '\\"message\\":\\"not a number\\",\\"error\\":\\"INVALID_INTEGER\\",\\"name\\":\\"numemployees\\"}]",' \
           ' "category": "VALIDATION_ERROR"}'
    error = classify_response("hubspot", 400, body, {}, context="update contacts")
    assert isinstance(error, RecordError)
    assert error.code == "INVALID_INTEGER" and "numemployees" in error.fields
    assert "not a number" in str(error) and "\\" not in error.message


def test_missing_fields_speak_the_crms_word() -> None:
    assert crm_unit("hubspot").missing_fields("contacts", ["a", "b"]).message == (
        "HubSpot contacts has no properties a, b: check the spelling")
    assert crm_unit("salesforce").missing_fields("Lead", ["X__c"], source="mappings/salesforce.yaml").message == (
        "Salesforce Lead has no field X__c (named in mappings/salesforce.yaml): check the spelling")


def test_people_kind_is_the_mapping_files_or_the_units_default() -> None:
    config = load_config()
    assert config.object_mapping("salesforce", "Lead").people_are == "lead"
    assert config.object_mapping("salesforce", "Contact").people_are == "contact"
    assert config.object_mapping("hubspot", "contacts").people_are == "lead"


def test_a_person_object_the_unit_does_not_know_must_say_its_kind(tmp_path: Path) -> None:
    config_dir, mappings_dir = _copy_shipped(tmp_path)
    path = mappings_dir / "salesforce.yaml"
    text = path.read_text().replace("    person_kind: contact     # contacts of an account: they keep the owner they have\n", "")
    text = text.replace("  Contact:\n", "  Prospect__c:\n")
    path.write_text(text)
    relay = config_dir / "relay.yaml"
    relay.write_text(relay.read_text().replace("objects: [Lead, Contact, Account, User]", "objects: [Lead, Account, User]"))
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir)
    assert any(p.key_path == "objects.Prospect__c.person_kind" and "leads or contacts" in p.message
               for p in caught.value.problems), [str(p) for p in caught.value.problems]


def test_create_properties_only_where_the_crm_creates_fields(tmp_path: Path) -> None:
    config_dir, mappings_dir = _copy_shipped(tmp_path)
    path = mappings_dir / "salesforce.yaml"
    text = path.read_text()
    anchor = "  Account:\n    entity: account\n"
    path.write_text(text.replace(anchor, anchor + "    create_properties:\n"
                                 "      - {name: relay_tier, label: Relay tier, type: string, fieldType: text}\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir)
    messages = [p.message for p in caught.value.problems]
    assert any("Salesforce custom fields are not created through its API" in m for m in messages), messages


def _copy_shipped(tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    shipped = load_config()
    config_dir, mappings_dir = tmp_path / "config", tmp_path / "mappings"
    shutil.copytree(shipped.config_dir, config_dir)
    shutil.copytree(shipped.mappings_dir, mappings_dir)
    return config_dir, mappings_dir


THIRD_CRM = '''
"""A third CRM, shipped in a package of its own: nothing of Relay is edited."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from connector.config._base import ConfigModel
from connector.config.connection import ConnectionSettings
from connector.crms import AdapterOptions, CrmLimits, CrmUnit


class Credentials(ConfigModel):
    api_token: SecretStr


class PipedriveConnection(ConnectionSettings):
    kind: Literal["pipedrive"]
    credentials: Credentials
    objects: list[Literal["persons", "organizations"]] = Field(default_factory=lambda: ["persons"])
    page_size: int = 500
    write_batch_size: int = 100


class Opened:
    def __init__(self, name: str, settings: Any, options: AdapterOptions) -> None:
        self.connection, self.settings, self.options = name, settings, options


UNIT = CrmUnit(kind="pipedrive", label="Pipedrive", settings=PipedriveConnection,
               open_adapter=lambda name, settings, options: Opened(name, settings, options),
               person_kinds={"persons": "lead"}, limits=CrmLimits(max_write_batch=100, max_page_size=500))
'''

CHECK = '''
from connector.crms.factory import build_adapter
from connector.config.loader import load_config
from connector.crms import crm_kinds

config = load_config(CONFIG, MAPPINGS)
adapter = build_adapter("pd", config.connection("pd"))
print(crm_kinds(), type(adapter).__name__, adapter.settings.page_size,
      config.object_mapping("pd", "persons").people_are, adapter.options.retry.max_attempts)
'''


def test_a_third_crm_is_one_package_and_one_mapping_file(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "relay_pipedrive").mkdir(parents=True)
    (site / "relay_pipedrive" / "__init__.py").write_text(THIRD_CRM)
    dist = site / "relay_pipedrive-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: relay-pipedrive\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[relay.crms]\npipedrive = relay_pipedrive:UNIT\n")
    config_dir, mappings_dir = tmp_path / "config", tmp_path / "mappings"
    (config_dir / "rules").mkdir(parents=True)
    mappings_dir.mkdir()
    shipped = load_config()
    for rule in (shipped.config_dir / "rules").glob("*.yaml"):
        (config_dir / "rules" / rule.name).write_text(rule.read_text())
    (config_dir / "relay.yaml").write_text(textwrap.dedent("""\
        connections:
          pd:
            kind: pipedrive
            base_url: https://example.pipedrive.com
            credentials: {api_token: secret}
            max_attempts: 3
    """))
    (mappings_dir / "pipedrive.yaml").write_text(textwrap.dedent("""\
        crm: pipedrive
        objects:
          persons:
            entity: person
            id_field: id
            modified_field: update_time
            fields:
              - {canonical: email, crm: email, transform: [strip, lowercase]}
    """))
    script = f"CONFIG, MAPPINGS = {str(config_dir)!r}, {str(mappings_dir)!r}\n" + CHECK
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": f"{site}:{REPO}", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['hubspot',", "'pipedrive',", "'salesforce']", "Opened", "500", "lead", "3"]


def test_the_factory_refuses_a_kind_no_unit_answers_to() -> None:
    class Settings:
        kind = "pipedrive"
        credentials = object()

    with pytest.raises(Exception, match="kind must be one of hubspot, salesforce, got 'pipedrive'"):
        build_adapter("pd", Settings())
