"""Property: a misspelled key anywhere in the shipped files is reported at exactly that key."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from connector.config._errors import allowed_keys
from connector.config._yaml import format_path, read_yaml
from connector.config.loader import validate_config
from connector.config.mappings import MappingFile
from connector.config.relay import RelayFile

REPO = Path(__file__).resolve().parents[2]
FILES: dict[str, type[BaseModel]] = {"config/relay.yaml": RelayFile, "mappings/hubspot.yaml": MappingFile, "mappings/salesforce.yaml": MappingFile}


def model_keys() -> list[tuple[str, tuple[str | int, ...], int, int]]:
    """Every key of the shipped files that a model (not a free-form map) defines."""
    found = []
    for relative, model in FILES.items():
        document = read_yaml(REPO / relative, relative)
        for path, (line, column) in document.positions.items():
            if not path or not isinstance(path[-1], str):
                continue
            allowed = allowed_keys(model, document.data, path[:-1])
            discriminator = path[0] == "connections" and path[-1] == "kind"  # see test_missing_connection_kind
            if allowed and path[-1] in allowed and not discriminator:
                found.append((relative, path, line, column))
    return found


KEYS = model_keys()


def test_there_are_keys_to_try() -> None:
    assert len(KEYS) > 500


@settings(max_examples=40, deadline=None)
@given(choice=st.sampled_from(KEYS))
def test_misspelled_key_is_reported_where_it_is(choice: tuple[str, tuple[str | int, ...], int, int]) -> None:
    relative, path, line, column = choice
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "config", root / "config", ignore=shutil.ignore_patterns("schema"))
        shutil.copytree(REPO / "mappings", root / "mappings")
        target = root / relative
        lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
        key = str(path[-1])
        text = lines[line - 1]
        assert text[column - 1:column - 1 + len(key)] == key
        lines[line - 1] = text[:column - 1] + key + "_typo" + text[column - 1 + len(key):]
        target.write_text("".join(lines), encoding="utf-8")
        problems = validate_config(root / "config", root / "mappings", env={})
    expected_path = format_path((*path[:-1], f"{key}_typo"))
    matching = [p for p in problems if p.key_path == expected_path]
    assert len(matching) == 1, [str(p) for p in problems]
    assert matching[0].file == str(root / relative)
    assert matching[0].line == line
    assert matching[0].message.startswith(f"unknown key '{key}_typo'; did you mean '{key}'?")
