"""``${VAR:-default}`` substitution in configuration values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")
_MALFORMED = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::?-[^}]*)?\})")


class MissingVariableError(ValueError):
    """A ``${VAR}`` reference whose variable is unset and that has no default."""


def substitute(text: str, env: Mapping[str, str]) -> str:
    """Replace environment references in one string.

    Supported forms: ``${VAR}`` (must be set), ``${VAR:-default}`` (default when unset
    or empty), ``${VAR-default}`` (default only when unset) and ``$$`` for a literal ``$``.

    Args:
        text: The value as written in the file.
        env: The environment to read (usually ``os.environ``).

    Returns:
        The value with every reference replaced.

    Raises:
        MissingVariableError: A variable is unset and has no default, or a reference is malformed.
    """
    if _MALFORMED.search(text):
        raise MissingVariableError(
            f"malformed environment reference in {text!r}; write ${{NAME}} or ${{NAME:-default}}"
        )

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name"), match.group("op"), match.group("default")
        value = env.get(name)
        if op == ":-" and not value:
            return default or ""
        if op == "-" and value is None:
            return default or ""
        if value is None:
            raise MissingVariableError(
                f"environment variable {name} is not set and {text!r} gives no default "
                f"(write ${{{name}:-default}} to give one)"
            )
        return value

    return _REFERENCE.sub(replace, text)


def substitute_tree(data: Any, env: Mapping[str, str], path: tuple[str | int, ...] = ()) -> tuple[Any, list[tuple[tuple[str | int, ...], str, str]]]:
    """Substitute references in every string of a parsed YAML tree.

    Args:
        data: Parsed YAML (dicts, lists, scalars).
        env: The environment to read.
        path: Key path of ``data`` inside the document (used in problems).

    Returns:
        The new tree and a list of ``(path, original value, message)`` for references
        that could not be resolved (those values are left as written).
    """
    failures: list[tuple[tuple[str | int, ...], str, str]] = []
    if isinstance(data, str):
        try:
            return substitute(data, env), failures
        except MissingVariableError as exc:
            return data, [(path, data, str(exc))]
    if isinstance(data, dict):
        result: dict[Any, Any] = {}
        for key, value in data.items():
            result[key], found = substitute_tree(value, env, (*path, str(key)))
            failures.extend(found)
        return result, failures
    if isinstance(data, list):
        items = []
        for index, value in enumerate(data):
            item, found = substitute_tree(value, env, (*path, index))
            items.append(item)
            failures.extend(found)
        return items, failures
    return data, failures
