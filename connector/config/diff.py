"""What changed between two rule versions, in words (``relay config diff OLD NEW``).

Each side is a configuration directory (holding ``rules/``, or a ``rules/`` directory itself),
loaded and validated exactly as Relay loads its rules, or a rules version the store recorded
when a run started under it (``rules_versions``: the people rules, or the deal rules, of that
version as JSON). The two sides are compared part by part (``routing`` is ``routing.yaml``...)
on their JSON dumps (``model_dump(mode="json")``), so defaults a file leaves out count as
written and comments or key order never show up.

Lists of named things are matched by name, not by position: the team by email, tiers, rules,
categories, stages and tracks by name, exit criteria and score bands by label; a member who moved
down the roster is no change. Where the order decides (routing rules, a pipeline's stages:
:data:`ORDERED_LISTS`), a new order is one, and says so. Every change names its file and key path
the way the loader names a problem (``rules[3].min_score``), the index being the new file's (the
old one's for something removed).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from connector.config._yaml import PathKey, format_path
from connector.config.loader import _load_rules
from connector.config.problems import ConfigError, ConfigProblem
from connector.core.rules import Rules

ChangeKind = Literal["added", "removed", "changed", "moved"]

RULE_PARTS: tuple[str, ...] = tuple(Rules.model_fields)
"""Every part of a rule set, in the order a diff lists them (each is ``rules/<part>.yaml``)."""
NAME_KEYS = ("email", "name", "label")
"""The keys that name an item of a list (the first one every item carries, unique, wins)."""
_SINGULAR = {"team": "member", "categories": "category", "fallback": "fallback step", "exit_criteria": "criterion",
             "employees": "band", "annual_revenue": "band"}
ORDERED_LISTS = frozenset({"rules", "stages"})
"""Named lists whose order decides (the first routing rule that applies wins; a pipeline's stages run in
order): a new order is a change. Elsewhere (the team, tiers, categories, tracks) moving an item is none."""
_VERSION_RE = re.compile(r"^[0-9a-f]{4,128}$")
_MIN_PREFIX = 4
_SHOWN_MAX = 120


class RuleSourceError(Exception):
    """A side of a diff that names nothing: no such directory, no rules in it, or an unknown version."""


class RecordedRules(Protocol):
    """A rule set as the store recorded it (``connector.store.repositories.console.RulesVersion``)."""

    @property
    def version(self) -> str: ...  # pragma: no cover - a protocol
    @property
    def rules(self) -> dict[str, Any]: ...  # pragma: no cover
    @property
    def first_seen(self) -> datetime: ...  # pragma: no cover
    @property
    def last_seen(self) -> datetime: ...  # pragma: no cover
    @property
    def source(self) -> str | None: ...  # pragma: no cover


class RecordedVersions(Protocol):
    """Where recorded rule sets are looked up (``connector.store.repositories.console.RulesVersions``)."""

    def get(self, version: str) -> RecordedRules | None: ...  # pragma: no cover - a protocol
    def history(self) -> Sequence[RecordedRules]: ...  # pragma: no cover


@dataclass(frozen=True)
class RuleSource:
    """One side of a diff: its rule parts as JSON and where they came from.

    Attributes:
        spec: As the user named it (a directory or a version).
        parts: Part name (``routing``...) -> its JSON dump.
        described: One line saying what it is ("config directory config (rules version ...)").
        version: The people rules' version (``Rules.version``) when known.
        kind: ``directory``, or the kind the store recorded (``people``, ``deals``).
    """

    spec: str
    parts: dict[str, Any]
    described: str
    version: str | None = None
    kind: str = "directory"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (without the rules themselves)."""
        return {"spec": self.spec, "described": self.described, "version": self.version, "kind": self.kind,
                "parts": sorted(self.parts, key=_part_order)}


@dataclass(frozen=True)
class RuleChange:
    """One difference between two rule versions.

    Attributes:
        file: The rules file (``routing.yaml``).
        path: Key path in the file as the loader names problems (``rules[3].min_score``): the new
            file's, or the old one's for something removed; empty for the whole file.
        kind: ``added``, ``removed``, ``changed`` or ``moved`` (the order of a list changed).
        old: The old value (JSON; None for ``added``).
        new: The new value (JSON; None for ``removed``).
        text: The change in words: ``sla.yaml: tier Hot response_minutes 5 -> 10 (tiers[0].response_minutes)``.
    """

    file: str
    path: str
    kind: ChangeKind
    old: Any
    new: Any
    text: str

    def __str__(self) -> str:
        return self.text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"file": self.file, "path": self.path, "kind": self.kind, "old": self.old, "new": self.new,
                "text": self.text}


@dataclass
class RulesDiff:
    """What changed from ``old`` to ``new``.

    Attributes:
        old: The old side.
        new: The new side.
        compared: The parts both sides hold (only these are compared).
        changes: Every change, file by file in :data:`RULE_PARTS` order.
        notes: What was not compared, and why.
    """

    old: RuleSource
    new: RuleSource
    compared: list[str]
    changes: list[RuleChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No difference in the parts compared."""
        return not self.changes

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"old": self.old.as_dict(), "new": self.new.as_dict(), "compared": self.compared,
                "changes": [c.as_dict() for c in self.changes], "notes": self.notes}


# --------------------------------------------------------------------------- loading the sides


def rules_dir_of(path: Path) -> Path:
    """The rules directory ``path`` names: ``path/rules`` of a config directory, or ``path`` itself.

    Raises:
        RuleSourceError: naming ``path`` when it is no directory, or holds no rules.
    """
    if not path.is_dir():
        raise RuleSourceError(f"{path}: no such directory")
    if (path / "rules").is_dir():
        return path / "rules"
    if (path / "routing.yaml").is_file() or (path / "scoring.yaml").is_file():
        return path
    raise RuleSourceError(f"{path} holds no rules/ directory and no rule files (give a config directory like "
                          "config/, or its rules/)")


def load_rules_dir(path: Path) -> Rules:
    """The rules of a config directory (or a rules directory), loaded and validated as Relay loads them.

    Raises:
        RuleSourceError: ``path`` names no rules (see :func:`rules_dir_of`).
        ConfigError: the rules do not load; every problem named by file, key path and value.
    """
    rules_dir = rules_dir_of(path)
    problems: list[ConfigProblem] = []
    rules = _load_rules(rules_dir, problems)
    if problems or rules is None:
        raise ConfigError(problems or [ConfigProblem(str(rules_dir), "", None, "the rules do not load")])
    return rules


def rule_parts(rules: Rules, parts: Sequence[str] = RULE_PARTS) -> dict[str, Any]:
    """Each part of ``rules`` as JSON (``model_dump(mode="json")``), by part name."""
    return {part: getattr(rules, part).model_dump(mode="json") for part in parts}


def source_from_dir(path: Path, spec: str | None = None) -> RuleSource:
    """A config (or rules) directory as one side of a diff.

    Raises:
        RuleSourceError: no such directory, or no rules in it.
        ConfigError: its rules do not load.
    """
    rules = load_rules_dir(path)
    return RuleSource(spec or str(path), rule_parts(rules),
                      f"config directory {path} (rules version {rules.version})", rules.version)


def needs_store(spec: str) -> bool:
    """Whether ``spec`` names a recorded rules version rather than a directory."""
    return not Path(spec).exists() and _VERSION_RE.fullmatch(spec.strip().lower()) is not None


def source_from_store(versions: RecordedVersions, spec: str) -> RuleSource:
    """A rules version the store recorded (its full version, or a prefix of at least 4 characters that one has).

    Raises:
        RuleSourceError: naming ``spec`` and the versions the store knows.
    """
    wanted = spec.strip().lower()
    found = versions.get(wanted)
    if found is None and len(wanted) >= _MIN_PREFIX:
        matches = [v for v in versions.history() if v.version.startswith(wanted)]
        if len(matches) > 1:
            raise RuleSourceError(f"rules version {spec!r} is ambiguous: "
                                  f"{', '.join(v.version for v in matches)} (give more characters)")
        found = matches[0] if matches else None
    if found is None:
        known = versions.history()
        listed = ", ".join(f"{v.version} ({v.rules.get('kind', '?')}, first seen "
                           f"{v.first_seen.strftime('%Y-%m-%d %H:%M')})" for v in known[:10])
        more = f" and {len(known) - 10} more" if len(known) > 10 else ""
        raise RuleSourceError(f"no directory and no rules version {spec!r} recorded in the store "
                              f"(known: {listed + more if known else 'none: a sync records the rules it runs under'})")
    content = dict(found.rules)
    kind = str(content.pop("kind", "people"))
    parts = {part: value for part, value in content.items() if part in RULE_PARTS}
    origin = f", from {found.source}" if found.source else ""
    described = (f"rules version {found.version} recorded in the store ({kind} rules, in force "
                 f"{found.first_seen.strftime('%Y-%m-%d %H:%M')} to {found.last_seen.strftime('%Y-%m-%d %H:%M')} "
                 f"UTC{origin})")
    return RuleSource(spec, parts, described, found.version, kind)


def load_sources(specs: Sequence[str],
                 open_versions: Callable[[], AbstractContextManager[RecordedVersions]]) -> list[RuleSource]:
    """Each spec as a side of a diff: a directory when one exists by that name, else a recorded version.

    ``open_versions`` gives the store's recorded versions; it is called once, and only when a spec
    names no directory (a diff of two directories needs no store).

    Raises:
        RuleSourceError: a spec names neither a directory nor a recorded version.
        ConfigError: a directory's rules do not load.
    """
    found: dict[int, RuleSource] = {}
    stored: list[int] = []
    for i, spec in enumerate(specs):
        if needs_store(spec):
            stored.append(i)
        elif Path(spec).exists():
            found[i] = source_from_dir(Path(spec), spec)
        else:
            raise RuleSourceError(f"{spec}: no such directory (nor a rules version: those are the hex digits "
                                  "the audit log records with each decision)")
    if stored:
        with open_versions() as versions:
            for i in stored:
                found[i] = source_from_store(versions, specs[i])
    return [found[i] for i in range(len(specs))]


# --------------------------------------------------------------------------- the diff


def diff_sources(old: RuleSource, new: RuleSource) -> RulesDiff:
    """What changed from ``old`` to ``new``, in the parts both hold."""
    compared = [p for p in sorted(set(old.parts) & set(new.parts), key=_part_order)]
    result = RulesDiff(old, new, compared, diff_parts({p: old.parts[p] for p in compared},
                                                      {p: new.parts[p] for p in compared}))
    for side, other, name in ((old, new, "OLD"), (new, old, "NEW")):
        alone = sorted(set(side.parts) - set(other.parts), key=_part_order)
        if alone:
            result.notes.append(f"not compared: {', '.join(f'{p}.yaml' for p in alone)} (only {name} "
                                f"{side.spec} holds {'it' if len(alone) == 1 else 'them'})")
    return result


def diff_parts(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[RuleChange]:
    """The changes between two sets of rule parts (part name -> JSON), file by file.

    A part only one side holds is a whole file added or removed.
    """
    changes: list[RuleChange] = []
    for part in sorted(set(old) | set(new), key=_part_order):
        file = f"{part}.yaml"
        if part not in old:
            changes.append(RuleChange(file, "", "added", None, new[part], f"{file}: added"))
        elif part not in new:
            changes.append(RuleChange(file, "", "removed", old[part], None, f"{file}: removed"))
        else:
            changes.extend(_Differ(file).walk((), {}, old[part], new[part]))
    return changes


def _part_order(part: str) -> tuple[int, str]:
    return (RULE_PARTS.index(part) if part in RULE_PARTS else len(RULE_PARTS), part)


Names = dict[int, tuple[str, str]]
"""Position in a key path -> (singular of the list, the item's name) for items matched by name."""


class _Differ:
    """Walks two JSON values of one file and phrases each difference."""

    def __init__(self, file: str) -> None:
        self.file = file

    def walk(self, path: PathKey, names: Names, old: Any, new: Any) -> Iterator[RuleChange]:
        if isinstance(old, dict) and isinstance(new, dict):
            yield from self._dicts(path, names, old, new)
        elif isinstance(old, list) and isinstance(new, list):
            yield from self._lists(path, names, old, new)
        elif old != new or type(old) is not type(new):
            yield self._change("changed", path, names, old, new, f"{_shown(old)} -> {_shown(new)}")

    def _dicts(self, path: PathKey, names: Names, old: dict[str, Any], new: dict[str, Any]) -> Iterator[RuleChange]:
        for key in [*old, *(k for k in new if k not in old)]:
            where = (*path, key)
            if key not in new:
                yield self._change("removed", where, names, old[key], None, f"removed (was {_shown(old[key])})")
            elif key not in old:
                yield self._change("added", where, names, None, new[key], f"added: {_shown(new[key])}")
            else:
                yield from self.walk(where, names, old[key], new[key])

    def _lists(self, path: PathKey, names: Names, old: list[Any], new: list[Any]) -> Iterator[RuleChange]:
        key = _name_key(old, new)
        if key is not None:
            yield from self._named(path, names, key, old, new)
        elif all(not isinstance(v, dict | list) for v in [*old, *new]):
            yield from self._scalars(path, names, old, new)
        else:
            for i in range(min(len(old), len(new))):
                yield from self.walk((*path, i), names, old[i], new[i])
            for i in range(len(new), len(old)):
                yield self._change("removed", (*path, i), names, old[i], None, f"removed (was {_shown(old[i])})")
            for i in range(len(old), len(new)):
                yield self._change("added", (*path, i), names, None, new[i], f"added: {_shown(new[i])}")

    def _named(self, path: PathKey, names: Names, key: str, old: list[dict[str, Any]],
               new: list[dict[str, Any]]) -> Iterator[RuleChange]:
        old_at = {str(item[key]): i for i, item in enumerate(old)}
        new_at = {str(item[key]): i for i, item in enumerate(new)}
        what = f"{self._where(path, names)}: " if path else ""
        for name, i in old_at.items():
            if name not in new_at:
                yield RuleChange(self.file, format_path((*path, i)), "removed", old[i], None,
                                 f"{self.file}: {what}removed {name}{_summary(old[i], key)}, was "
                                 f"{format_path((*path, i))}")
        for name, i in new_at.items():
            if name not in old_at:
                yield RuleChange(self.file, format_path((*path, i)), "added", None, new[i],
                                 f"{self.file}: {what}added {name}{_summary(new[i], key)} at "
                                 f"{format_path((*path, i))}")
        singular = _singular(str(path[-1])) if path else "item"
        for name, i in new_at.items():
            if name in old_at:
                inner = {**names, len(path): (singular, name)}
                yield from self.walk((*path, i), inner, old[old_at[name]], new[i])
        before = [n for n in old_at if n in new_at]
        after = [n for n in new_at if n in old_at]
        if before != after and path and path[-1] in ORDERED_LISTS:
            yield RuleChange(self.file, format_path(path), "moved", before, after,
                             f"{self.file}: {what}order {', '.join(before)} -> {', '.join(after)}")

    def _scalars(self, path: PathKey, names: Names, old: list[Any], new: list[Any]) -> Iterator[RuleChange]:
        gone = Counter(_hashable(v) for v in old) - Counter(_hashable(v) for v in new)
        came = Counter(_hashable(v) for v in new) - Counter(_hashable(v) for v in old)
        for value in old:
            if gone[_hashable(value)] > 0:
                gone[_hashable(value)] -= 1
                yield self._change("removed", path, names, value, None, f"removed {_shown(value)}")
        for value in new:
            if came[_hashable(value)] > 0:
                came[_hashable(value)] -= 1
                yield self._change("added", path, names, None, value, f"added {_shown(value)}")
        kept_old = [v for v in old if v in new]
        kept_new = [v for v in new if v in old]
        if kept_old != kept_new and sorted(map(str, kept_old)) == sorted(map(str, kept_new)):
            yield self._change("moved", path, names, old, new,
                               f"order {', '.join(map(_shown, old))} -> {', '.join(map(_shown, new))}")

    def _change(self, kind: ChangeKind, path: PathKey, names: Names, old: Any, new: Any, said: str) -> RuleChange:
        where = self._where(path, names)
        text = f"{self.file}: {where} {said}" if where else f"{self.file}: {said}"
        key_path = format_path(path)
        if names and key_path:
            text += f" ({key_path})"
        return RuleChange(self.file, key_path, kind, old, new, text)

    @staticmethod
    def _where(path: PathKey, names: Names) -> str:
        """``path`` in words: an item matched by name is called by it (``tier Hot response_minutes``)."""
        words: list[str] = []
        start = 0
        for at in sorted(names):
            if at >= len(path):
                break
            before = path[start:at - 1]  # up to the list's own key, which the singular stands for
            if before:
                words.append(format_path(before))
            singular, name = names[at]
            words.append(f"{singular} {name}")
            start = at + 1
        rest = path[start:]
        if rest:
            text = format_path(rest)
            words.append(text[1:] if text.startswith(".") else text)
        return " ".join(words)


def _name_key(old: list[Any], new: list[Any]) -> str | None:
    """The key naming every item of both lists (unique within each), or None: matched by position."""
    items = [*old, *new]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in NAME_KEYS:
        if all(isinstance(item.get(key), str) and item.get(key) for item in items) \
                and len({i[key] for i in old}) == len(old) and len({i[key] for i in new}) == len(new):
            return key
    return None


def _singular(word: str) -> str:
    if word in _SINGULAR:
        return _SINGULAR[word]
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _summary(item: Mapping[str, Any], key: str) -> str:
    """A named item in a few words: a member's role and region, else its other plain values."""
    if key == "email" and "role" in item and "region" in item:
        extra = [str(item["role"]), str(item["region"])]
        if item.get("active") is False:
            extra.append("inactive")
        if item.get("weight", 1) != 1:
            extra.append(f"weight {item['weight']}")
        return f" ({', '.join(extra)})"
    values = [f"{k} {_shown(v)}" for k, v in item.items()
              if k != key and v is not None and not isinstance(v, dict | list)]
    return f" ({', '.join(values)})" if values else ""


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else (type(value).__name__, value)


def _shown(value: Any) -> str:
    """A JSON value as a change shows it: numbers and booleans as written, strings quoted, none for null."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX - 3] + "..."
