"""``POST /crm/v3/objects/{type}/search``: filters, sorts, free-text query and paging.

A query's matching ids are computed once and cached (keyed by the query and
the state's version), so paging through a large result costs one scan.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_sandbox.hubspot import errors
from crm_sandbox.hubspot.properties import (
    SEARCHABLE,
    PropertyDefinition,
    parse_datetime_ms,
    to_text,
)
from crm_sandbox.hubspot.state import HubSpotState

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
RESULT_CAP = 10_000

OPERATORS = frozenset({
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
})
_NO_VALUE = frozenset({"HAS_PROPERTY", "NOT_HAS_PROPERTY"})
_LIST_VALUE = frozenset({"IN", "NOT_IN"})
_TOKEN = re.compile(r"[^\w@.+-]+")

Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class SearchRequest:
    """A validated search body."""

    groups: list[list[dict[str, Any]]]
    sorts: list[tuple[str, bool]]
    query: str | None
    properties: list[str] | None
    limit: int
    after: int


def parse_request(state: HubSpotState, object_type: str, body: Any) -> SearchRequest:
    """Validate a search body; raises HubSpot's 400 naming the bad part."""
    if not isinstance(body, dict):
        raise errors.validation_error("Invalid input JSON: the search body must be a JSON object")
    defined = state.definitions[object_type]
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list):
        raise errors.validation_error("filterGroups must be a list of {filters: [...]} objects")
    if len(raw_groups) > MAX_GROUPS:
        raise errors.validation_error(f"Too many filter groups: {len(raw_groups)} given, at most {MAX_GROUPS} allowed")
    groups: list[list[dict[str, Any]]] = []
    total = 0
    for g_index, group in enumerate(raw_groups):
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise errors.validation_error(f"filterGroups[{g_index}].filters must be a list of filters")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise errors.validation_error(
                f"filterGroups[{g_index}] has {len(filters)} filters, at most {MAX_FILTERS_PER_GROUP} allowed per group"
            )
        total += len(filters)
        groups.append([_parse_filter(defined, f, f"filterGroups[{g_index}].filters[{i}]") for i, f in enumerate(filters)])
    if total > MAX_FILTERS:
        raise errors.validation_error(f"Too many filters: {total} given, at most {MAX_FILTERS} allowed in all groups")
    sorts = _parse_sorts(defined, body.get("sorts"))
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise errors.validation_error("query must be a string")
    properties = body.get("properties")
    if properties is not None and (not isinstance(properties, list) or not all(isinstance(p, str) for p in properties)):
        raise errors.validation_error("properties must be a list of property names")
    limit = _int_field(body.get("limit"), "limit", DEFAULT_LIMIT)
    if not 0 < limit <= MAX_LIMIT:
        raise errors.validation_error(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    after = _int_field(body.get("after"), "after", 0)
    if after < 0:
        raise errors.validation_error(f"after must be a non-negative offset, got {after}")
    if after >= RESULT_CAP:
        raise errors.validation_error(
            f"Search results are limited to {RESULT_CAP:,} per query: 'after' must be below {RESULT_CAP}, got {after}. "
            "Narrow the query (for example by hs_lastmodifieddate windows) instead."
        )
    return SearchRequest(groups, sorts, query or None, properties or None, limit, after)


def _int_field(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise errors.validation_error(f"{name} must be an integer, got {value!r}")
    try:
        return int(str(value))
    except ValueError:
        raise errors.validation_error(f"{name} must be an integer, got {value!r}") from None


def _text(value: Any, where: str) -> str:
    try:
        text = to_text(value)
    except TypeError:
        raise errors.validation_error(f"{where}: must be a string or number, got {type(value).__name__}") from None
    return text or ""


def _parse_filter(defined: dict[str, PropertyDefinition], raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise errors.validation_error(f"{where} must be an object with propertyName and operator")
    name = raw.get("propertyName")
    operator = raw.get("operator", "EQ")
    if not isinstance(name, str) or not name:
        raise errors.validation_error(f"{where}.propertyName is required")
    if name not in defined:
        raise errors.validation_error(f'{where}: Property "{name}" does not exist')
    if operator not in OPERATORS:
        raise errors.validation_error(f"{where}.operator {operator!r} is not one of {', '.join(sorted(OPERATORS))}")
    parsed: dict[str, Any] = {"name": name, "operator": operator, "definition": defined[name]}
    if operator in _LIST_VALUE:
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise errors.validation_error(f"{where}: operator {operator} needs a non-empty 'values' list")
        parsed["values"] = [_text(v, f"{where}.values") for v in values]
    elif operator not in _NO_VALUE:
        if "value" not in raw or raw["value"] is None:
            raise errors.validation_error(f"{where}: operator {operator} needs a 'value'")
        parsed["value"] = _text(raw["value"], f"{where}.value")
        if operator == "BETWEEN":
            if raw.get("highValue") is None:
                raise errors.validation_error(f"{where}: operator BETWEEN needs a 'highValue'")
            parsed["highValue"] = _text(raw["highValue"], f"{where}.highValue")
    return parsed


def _parse_sorts(defined: dict[str, PropertyDefinition], raw: Any) -> list[tuple[str, bool]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.validation_error("sorts must be a list")
    sorts = []
    for index, item in enumerate(raw):
        name: Any
        if isinstance(item, str):
            descending = item.startswith("-")
            name = item.lstrip("-+")
        elif isinstance(item, dict):
            name = item.get("propertyName")
            direction = item.get("direction", "ASCENDING")
            if direction not in ("ASCENDING", "DESCENDING"):
                raise errors.validation_error(f"sorts[{index}].direction must be ASCENDING or DESCENDING, got {direction!r}")
            descending = direction == "DESCENDING"
        else:
            raise errors.validation_error(f"sorts[{index}] must be a property name or {{propertyName, direction}}")
        if not isinstance(name, str) or name not in defined:
            raise errors.validation_error(f'sorts[{index}]: Property "{name}" does not exist')
        sorts.append((name, descending))
    return sorts


# -- matching -------------------------------------------------------------------------------


def _key(definition: PropertyDefinition, text: str | None) -> Any:
    """A comparable form of a value for its property type (None when absent or not comparable)."""
    if text is None or text == "":
        return None
    if definition.type == "number":
        try:
            return float(text)
        except ValueError:
            return None
    if definition.type in ("date", "datetime"):
        return parse_datetime_ms(text)
    return text.lower()


def _tokens(text: str) -> list[str]:
    lowered = text.lower()
    return [lowered, *[t for t in _TOKEN.split(lowered) if t]]


def _compile(f: dict[str, Any]) -> Predicate:
    name: str = f["name"]
    operator: str = f["operator"]
    definition: PropertyDefinition = f["definition"]

    def value_of(record: dict[str, Any]) -> Any:
        return _key(definition, record["properties"].get(name))

    if operator == "HAS_PROPERTY":
        return lambda r: bool(r["properties"].get(name))
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: not r["properties"].get(name)
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = f["value"].lower()
        wanted = operator == "CONTAINS_TOKEN"

        def contains(record: dict[str, Any]) -> bool:
            text = record["properties"].get(name)
            found = bool(text) and any(fnmatch.fnmatchcase(t, pattern) for t in _tokens(text))
            return found == wanted

        return contains
    if operator in ("IN", "NOT_IN"):
        options = {_key(definition, v) for v in f["values"]}
        inside = operator == "IN"

        def member(record: dict[str, Any]) -> bool:
            text = record["properties"].get(name)
            parts = text.split(";") if text and definition.type == "enumeration" else [text]
            hit = any(_key(definition, p) in options for p in parts if p)
            return hit == inside

        return member
    target = _key(definition, f["value"])
    if target is None:
        raise errors.validation_error(f"Filter value {f['value']!r} is not valid for {definition.type} property {name}")
    if operator == "EQ":
        return lambda r: value_of(r) == target
    if operator == "NEQ":
        return lambda r: value_of(r) != target
    if operator == "BETWEEN":
        high = _key(definition, f["highValue"])
        if high is None:
            raise errors.validation_error(f"Filter highValue {f['highValue']!r} is not valid for property {name}")

        def between(record: dict[str, Any]) -> bool:
            value = value_of(record)
            return value is not None and _safe_le(target, value) and _safe_le(value, high)

        return between
    compare = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }[operator]

    def ordered(record: dict[str, Any]) -> bool:
        value = value_of(record)
        if value is None or type(value) is not type(target):
            return False
        return bool(compare(value, target))

    return ordered


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _safe_le(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a <= b


def _query_predicate(object_type: str, query: str) -> Predicate:
    words = [w for w in _TOKEN.split(query.lower()) if w]
    names = SEARCHABLE[object_type]

    def matches(record: dict[str, Any]) -> bool:
        tokens: list[str] = []
        for name in names:
            text = record["properties"].get(name)
            if text:
                tokens.extend(_tokens(text))
        return all(any(t.startswith(w) or w in t for t in tokens) for w in words)

    return matches


class SearchIndex:
    """Runs searches against a state, caching each query's sorted ids until the state changes.

    Args:
        state: the portal.
        cache_size: queries whose results are kept.
        lag_ms: records written less than this long ago are not yet searchable, as in
            HubSpot where the search index trails writes.
    """

    def __init__(self, state: HubSpotState, cache_size: int = 64, lag_ms: int = 0) -> None:
        self.state = state
        self.lag_ms = lag_ms
        self._cache: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()
        self._size = cache_size

    def matching_ids(self, object_type: str, request: SearchRequest, raw_key: str) -> list[str]:
        """Ids of live records matching the request, in result order."""
        cutoff = self.state.clock() - self.lag_ms if self.lag_ms else None
        key = (object_type, raw_key, self.state.version, cutoff)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        with self.state.lock:
            groups = [[_compile(f) for f in group] for group in request.groups]
            query = _query_predicate(object_type, request.query) if request.query else None
            records = self.state.records[object_type]
            hits = []
            for number in self.state.active_ids[object_type]:
                record = records[str(number)]
                if cutoff is not None and (parse_datetime_ms(record["updatedAt"]) or 0) > cutoff:
                    continue
                if groups and not any(all(p(record) for p in group) for group in groups):
                    continue
                if query is not None and not query(record):
                    continue
                hits.append(record)
            defined = self.state.definitions[object_type]
            for name, descending in reversed(request.sorts):
                definition = defined[name]
                keyed = [(_key(definition, r["properties"].get(name)), r) for r in hits]
                present = [pair for pair in keyed if pair[0] is not None]
                absent = [r for k, r in keyed if k is None]
                present.sort(key=_first, reverse=descending)
                hits = [r for _, r in present] + absent
            ids = [r["id"] for r in hits]
        self._cache[key] = ids
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return ids

    def search(self, object_type: str, body: Any) -> dict[str, Any]:
        """Answer a search body with ``{total, results, paging?}``."""
        request = parse_request(self.state, object_type, body)
        raw_key = json.dumps(
            [body.get("filterGroups"), body.get("sorts"), body.get("query")], sort_keys=True, default=str
        )
        ids = self.matching_ids(object_type, request, raw_key)
        end = min(request.after + request.limit, RESULT_CAP)
        page = ids[request.after : end]
        records = self.state.records[object_type]
        results = [self.state.render(object_type, records[rid], request.properties) for rid in page if rid in records]
        answer: dict[str, Any] = {"total": len(ids), "results": results}
        if end < len(ids):
            answer["paging"] = {"next": {"after": str(end)}}
        return answer
