"""JSON Schema of every configuration file, for editors (yaml-language-server) and CI."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connector.config.mappings import MappingFile
from connector.config.relay import RelayFile

SCHEMA_DIR = Path("config/schema")
"""Where the generated schemas are committed (the YAML files point at them)."""


def _models() -> dict[str, type[BaseModel]]:
    rules = importlib.import_module("connector.core.rules")
    return {
        "relay": RelayFile,
        "mappings": MappingFile,
        "scoring": rules.ScoringRules,
        "routing": rules.RoutingRules,
        "sla": rules.SlaPolicy,
        "matching": rules.MatchingRules,
        "quality": rules.QualityRules,
        "stages": rules.StageRules,
        "approvals": rules.ApprovalRules,
        "dispositions": rules.DispositionRules,
        "handoffs": rules.HandoffRules,
        "consent": rules.ConsentRules,
        "retention": rules.RetentionRules,
        "alerts": importlib.import_module("connector.notify.settings").AlertsFile,
        "enrichment": importlib.import_module("connector.enrich.settings").EnrichmentFile,
    }


def render_schemas() -> dict[str, str]:
    """The text of every schema file, by file name (``relay.schema.json`` ...).

    Returns:
        File name -> JSON text (sorted keys, two-space indent, trailing newline), so the
        output is byte-for-byte stable and can be compared with the committed copies.
    """
    rendered: dict[str, str] = {}
    for name, model in _models().items():
        schema: dict[str, Any] = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://relay.example/schema/{name}.schema.json",
            **schema,
        }
        rendered[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return rendered


def export_schemas(out_dir: str | Path = SCHEMA_DIR) -> list[Path]:
    """Write the JSON Schema of each configuration file into ``out_dir``.

    Writes ``relay.schema.json``, ``mappings.schema.json``, ``scoring.schema.json``,
    ``routing.schema.json`` and ``sla.schema.json``.

    Args:
        out_dir: Target directory; created when missing.

    Returns:
        The paths written.
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_schemas().items():
        path = target / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(schema_dir: str | Path = SCHEMA_DIR) -> list[str]:
    """Names of committed schema files that are missing or differ from the models."""
    directory = Path(schema_dir)
    stale = []
    for file_name, text in render_schemas().items():
        path = directory / file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(file_name)
    return stale


if __name__ == "__main__":
    for written_path in export_schemas(sys.argv[1] if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written_path)
