"""The small JSON path dialect of enrichment.yaml's response mappings.

``$`` is the answer's top level; ``.name`` a key, ``["any key"]`` or ``['any key']`` a key with
other characters, ``[0]`` a list item: ``$.metrics.employees``, ``$.data.emails[0].address``.
No wildcards or filters: one path names one value.
"""

from __future__ import annotations

import re
from typing import Any

Step = str | int
"""A key (str) or a list index (int)."""

_STEP = re.compile(
    r"\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|\[(?P<index>[0-9]+)\]"
    r"|\[\"(?P<dq>[^\"]+)\"\]"
    r"|\['(?P<sq>[^']+)'\]"
)


class MalformedAnswer(ValueError):
    """An answer whose shape contradicts a mapped path (an object expected, a list found...)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"malformed JSON at {where}: {message}")
        self.where = where


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of a path.

    Args:
        text: e.g. ``$.category.industry``.

    Returns:
        The keys and indexes after ``$`` (empty for ``$`` itself).

    Raises:
        ValueError: naming the first character that does not fit the dialect.
    """
    if not text.startswith("$"):
        raise ValueError(f"a JSON path starts with $ (e.g. $.name), got {text!r}")
    steps: list[Step] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(
                f"JSON path {text!r} cannot be read at character {position + 1} ({text[position:]!r}); "
                "write $.key, $.key[0] or $[\"key with spaces\"]"
            )
        index = match.group("index")
        steps.append(int(index) if index is not None else next(g for g in match.group("name", "dq", "sq") if g))
        position = match.end()
    return tuple(steps)


def format_path(steps: tuple[Step, ...]) -> str:
    """The path of ``steps`` as written (``$.a[0].b``)."""
    text = "$"
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", step):
            text += f".{step}"
        else:
            text += f'["{step}"]'
    return text


def extract(document: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``document``; None when a key or item is absent or null.

    Raises:
        MalformedAnswer: a step meets a value of the wrong kind (a key asked of a list, an
            index asked of an object or a scalar), naming where.
    """
    node = document
    for depth, step in enumerate(steps):
        if node is None:
            return None
        where = format_path(steps[:depth]) if depth else "$"
        if isinstance(step, int):
            if not isinstance(node, list):
                raise MalformedAnswer(where, f"expected a list, got {_kind(node)}")
            node = node[step] if step < len(node) else None
        else:
            if not isinstance(node, dict):
                raise MalformedAnswer(where, f"expected an object, got {_kind(node)}")
            node = node.get(step)
    return node


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({value!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
