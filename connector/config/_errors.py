"""Turn pydantic validation errors into problems an admin can act on."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from connector.config._yaml import PathKey, YamlDocument, format_path
from connector.config.problems import ConfigProblem

_SECRET_WORDS = ("secret", "token", "password", "api_key")
_MISSING = object()


def problems_from_validation(
    error: ValidationError, root: type[BaseModel], document: YamlDocument, file: str
) -> list[ConfigProblem]:
    """Convert every error of one ``model_validate`` call into a ``ConfigProblem``.

    Args:
        error: The pydantic error.
        root: The model the file was validated against.
        document: The parsed file (data and key positions).
        file: How to name the file.

    Returns:
        One problem per pydantic error, with a file-relative key path and line.
    """
    problems = []
    for item in error.errors(include_url=False):
        path = clean_path(tuple(item["loc"]), document.data)
        value = _value_at(document.data, path)
        if value is _MISSING or item["type"] == "missing":
            value = None
        message = _message(item, root, document.data, path, value)
        line, column = document.position(path)
        problems.append(ConfigProblem(file, format_path(path), _safe_value(path, value), message, line, column))
    return problems


def clean_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Drop the parts pydantic adds to a location that are not keys in the file.

    Discriminated unions add their tag (``connections.salesforce.salesforce.page_size``)
    and validators add names like ``function-after[...]``. A part is kept when it leads
    somewhere in the data, or when it is the last part (a missing or unknown key).
    """
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            path.append(part)
            node = node[part]
        elif last and isinstance(part, (str, int)) and not str(part).startswith(("function-", "union[", "[key]")):
            path.append(part)
    return tuple(path)


def _value_at(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:  # noqa: SIM114 - the list branch narrows part to int
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return _MISSING
    return node


def _safe_value(path: PathKey, value: Any) -> Any:
    if path and any(word in str(path[-1]).lower() for word in _SECRET_WORDS) and value is not None:
        return "***"
    return value


def _message(item: Any, root: type[BaseModel], data: Any, path: PathKey, value: Any) -> str:
    kind = item["type"]
    key = path[-1] if path else ""
    if kind == "missing":
        return f"required key '{key}' is missing"
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, data, path[:-1])
        text = f"unknown key '{key}'"
        if allowed:
            close = suggest(str(key), allowed)
            if close:
                text += f"; did you mean '{close}'?"
            text += f" (allowed: {', '.join(allowed)})"
        return text
    message = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if kind in ("value_error", "assertion_error"):
        return message
    if kind == "union_tag_not_found":
        tag = item.get("ctx", {}).get("discriminator", "kind").strip("'")
        return f"required key {tag!r} is missing; it tells Relay what this is, so nothing else here can be checked yet"
    if kind.startswith("union_tag"):
        return message.replace("Input tag", "value").replace("found using", "given for")
    if isinstance(value, str) and repr(value) in message:
        return message  # the message already quotes the value (numbers are always shown: "greater than 0 (got 0)")
    shown = "***" if _safe_value(path, value) == "***" else repr(value)
    return f"{message[:1].lower()}{message[1:]} (got {shown})"


def suggest(word: str, choices: list[str]) -> str | None:
    """The allowed key an admin most likely meant, if any looks close enough."""
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return close[0]
    lowered = word.lower()
    contained = [c for c in choices if c.lower() in lowered or lowered in c.lower()]
    return max(contained, key=len) if contained else None


def allowed_keys(root: type[BaseModel], data: Any, path: PathKey) -> list[str] | None:
    """The keys a model accepts at ``path`` of the file, following the data through unions."""
    annotation: Any = root
    node = data
    for part in path:
        annotation = _unwrap(annotation, node)
        node = node.get(part) if isinstance(node, dict) else node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation, node)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return None


def _unwrap(annotation: Any, node: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [m for m in get_args(annotation) if m is not type(None)]
            annotation = _choose_member(members, node)
        else:
            return annotation


def _choose_member(members: list[Any], node: Any) -> Any:
    """The union member the data is meant for: the model none of whose literal fields (``kind:
    salesforce``) the data contradicts, and with the most of them agreeing."""
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if isinstance(node, dict):
        best: tuple[int, Any] | None = None
        for model in models:
            agreeing = 0
            for name, field in model.model_fields.items():
                if get_origin(field.annotation) is Literal and name in node:
                    if node[name] not in get_args(field.annotation):
                        break
                    agreeing += 1
            else:
                if agreeing and (best is None or agreeing > best[0]):
                    best = (agreeing, model)
        if best is not None:
            return best[1]
    return models[0] if models else members[0]
