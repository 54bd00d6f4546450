"""YAML reading that remembers where each key sits, so problems can name a line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.config.problems import ConfigProblem

PathKey = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed YAML file: its data, the position of every key, and problems found."""

    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    def position(self, path: PathKey) -> tuple[int | None, int | None]:
        """Line and column (1-based) of ``path``, or of its nearest known parent."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return None, None


def format_path(path: PathKey) -> str:
    """Render a key path the way admins read it: ``rules[2].group``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def read_yaml(path: Path, display_name: str) -> YamlDocument:
    """Parse one YAML file, reporting syntax errors and duplicate keys with line and column.

    Args:
        path: The file to read.
        display_name: How problems should name the file.

    Returns:
        The document; ``data`` is ``None`` when the file could not be parsed, and
        ``problems`` lists what was wrong.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return YamlDocument(None, problems=[ConfigProblem(display_name, "", None, f"cannot read file: {exc.strerror or exc}")])
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        return YamlDocument(None, problems=[ConfigProblem(display_name, "", None, message)])
    try:
        root, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        what = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        where = f"line {line}, column {column}: " if line is not None else ""
        hint = "check the indentation and quoting"
        lines = text.splitlines()
        if line is not None and 0 < line <= len(lines) and "\t" in lines[line - 1][: len(lines[line - 1]) - len(lines[line - 1].lstrip())]:
            hint = "this line is indented with a tab; YAML indentation must use spaces"
        message = f"YAML syntax error at {where}{what}{context}; {hint}"
        return YamlDocument(None, problems=[ConfigProblem(display_name, "", None, message, line, column)])
    except yaml.YAMLError as exc:
        return YamlDocument(None, problems=[ConfigProblem(display_name, "", None, f"YAML syntax error: {exc}")])
    document = YamlDocument(data)
    if root is not None:
        _walk(root, (), document, display_name)
    return document


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML was built with it (several times faster), else pure Python."""


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse once: the node tree (for key positions) and the data built from it."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: PathKey, document: YamlDocument, display_name: str) -> None:
    document.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key == "<<":
                continue
            key_path = (*path, key)
            if key in seen:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                document.problems.append(
                    ConfigProblem(display_name, format_path(key_path), key,
                                  f"key '{key}' appears twice; remove one of them", line, column)
                )
            seen.add(key)
            document.positions[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, key_path, document, display_name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), document, display_name)
