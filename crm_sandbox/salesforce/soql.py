"""SOQL: a tokeniser, a recursive-descent parser and an evaluator for the subset integrations use.

Grammar (keywords and field names are case-insensitive)::

    query     := SELECT item (',' item)* FROM object [WHERE or] [ORDER BY key (',' key)*]
                 [LIMIT int] [OFFSET int]
    item      := path | COUNT '(' [path] ')' [alias]
    or        := and (OR and)*
    and       := not (AND not)*
    not       := NOT not | '(' or ')' | condition
    condition := path op value | path [NOT] IN '(' value (',' value)* ')' | path LIKE string
    key       := path [ASC | DESC] [NULLS (FIRST | LAST)]
    value     := string | number | date | datetime | NULL | TRUE | FALSE
               | TODAY | YESTERDAY | TOMORROW | LAST_N_DAYS:n | NEXT_N_DAYS:n | N_DAYS_AGO:n

Every problem raises :class:`SoqlError` carrying Salesforce's error code
(``MALFORMED_QUERY``, ``INVALID_FIELD``, ``INVALID_TYPE``...) and a message
shaped like Salesforce's (the query line, a caret, ``ERROR at Row:r:Column:c``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from crm_sandbox.ids import is_salesforce_id, to_id18
from crm_sandbox.salesforce.describe import (
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    Field,
    SObjectType,
    sobject,
)
from crm_sandbox.salesforce.values import format_datetime, parse_datetime

Record = dict[str, Any]
#: Finds a record by id: (object name, record) or None.
Lookup = Callable[[str], "tuple[str, Record] | None"]


class SoqlError(Exception):
    """A query Salesforce would refuse, with its error code and message."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Token:
    """One lexical token: kind (IDENT, STRING, NUMBER, DATE, DATETIME, OP, PUNCT, EOF), text, value."""

    kind: str
    text: str
    pos: int
    value: Any = None
    like: str | None = None


# Seconds may carry 1 to 6 fractional digits (``.000Z``, ``.000000Z`` from ISO formatters); the zone is
# ``Z`` or an offset (``+00:00``, ``-05:00``, ``+0000``).
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})(?![\d.:])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?![A-Za-z_])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_PUNCT = "(),:"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _where(query: str, pos: int) -> tuple[int, int, str]:
    before = query[:pos]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    return row, pos - line_start + 1, line


def error_at(query: str, pos: int, code: str, detail: str) -> SoqlError:
    """A :class:`SoqlError` whose message points at ``pos`` in ``query`` as Salesforce does."""
    row, col, line = _where(query, min(max(pos, 0), len(query)))
    return SoqlError(code, f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{detail}")


def _string(query: str, start: int) -> tuple[Token, int]:
    """Read a quoted string starting at ``start`` (the quote)."""
    i = start + 1
    chars: list[str] = []
    like: list[str] = []
    while i < len(query):
        char = query[i]
        if char == "'":
            return Token("STRING", query[start : i + 1], start, "".join(chars), "".join(like)), i + 1
        if char == "\\":
            if i + 1 >= len(query):
                break
            nxt = query[i + 1]
            if nxt in ("%", "_"):
                chars.append("\\" + nxt)
                like.append(re.escape(nxt))
            elif nxt.lower() in _ESCAPES or nxt in _ESCAPES:
                real = _ESCAPES.get(nxt) or _ESCAPES[nxt.lower()]
                chars.append(real)
                like.append(re.escape(real))
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", query[i + 2 : i + 6]):
                real = chr(int(query[i + 2 : i + 6], 16))
                chars.append(real)
                like.append(re.escape(real))
                i += 4
            else:
                raise error_at(query, i, "MALFORMED_QUERY", f"Invalid string literal '{query[start:i + 2]}'. Illegal escape sequence")
            i += 2
            continue
        chars.append(char)
        like.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    raise error_at(query, start, "MALFORMED_QUERY", f"unexpected token: '{query[start:start + 20]}' (unterminated string literal)")


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens (raises :class:`SoqlError` on a character SOQL does not know)."""
    tokens: list[Token] = []
    i = 0
    n = len(query)
    while i < n:
        char = query[i]
        if char.isspace():
            i += 1
            continue
        if char == "'":
            token, i = _string(query, i)
            tokens.append(token)
            continue
        match = _DATETIME.match(query, i)
        if match:
            parsed = parse_datetime(match.group())
            if parsed is None:
                raise error_at(query, i, "MALFORMED_QUERY", f"line 1:{i} no viable alternative at character '{match.group()}'")
            tokens.append(Token("DATETIME", match.group(), i, parsed))
            i = match.end()
            continue
        match = _DATE.match(query, i)
        if match:
            try:
                tokens.append(Token("DATE", match.group(), i, date.fromisoformat(match.group())))
            except ValueError:
                raise error_at(query, i, "MALFORMED_QUERY", f"invalid date: {match.group()}") from None
            i = match.end()
            continue
        match = _NUMBER.match(query, i)
        if match and (char.isdigit() or char == "." or (i + 1 < n and (query[i + 1].isdigit() or query[i + 1] == "."))):
            text = match.group()
            tokens.append(Token("NUMBER", text, i, float(text)))
            i = match.end()
            continue
        match = _IDENT.match(query, i)
        if match:
            tokens.append(Token("IDENT", match.group(), i, match.group().upper()))
            i = match.end()
            continue
        for op in _OPS:
            if query.startswith(op, i):
                tokens.append(Token("OP", op, i, "!=" if op == "<>" else op))
                i += len(op)
                break
        else:
            if char in _PUNCT:
                tokens.append(Token("PUNCT", char, i, char))
                i += 1
                continue
            raise error_at(query, i, "MALFORMED_QUERY", f"line 1:{i} no viable alternative at character '{char}'")
    tokens.append(Token("EOF", "<EOF>", n))
    return tokens


# --------------------------------------------------------------------------- syntax tree

@dataclass
class Path:
    """A field reference as written (``Owner.Name``), resolved later against the schema."""

    text: str
    pos: int
    # Filled by resolution: the reference fields walked, then the final field.
    hops: list[Field] = field(default_factory=list)
    target: Field | None = None
    canonical: list[str] = field(default_factory=list)


@dataclass
class Count:
    """``COUNT()`` or ``COUNT(field)`` with an optional alias."""

    path: Path | None
    alias: str | None
    pos: int


@dataclass
class Literal:
    """A literal value: kind is string, number, date, datetime, null, boolean or range."""

    kind: str
    value: Any
    pos: int
    like: str | None = None
    text: str = ""


@dataclass
class Condition:
    path: Path
    op: str
    values: list[Literal]


@dataclass
class BoolOp:
    op: str  # AND, OR, NOT
    items: list[Any]


@dataclass
class OrderKey:
    path: Path
    descending: bool
    nulls_first: bool


@dataclass
class Query:
    """A parsed and resolved query."""

    text: str
    sobject: SObjectType
    fields: list[Path]
    counts: list[Count]
    where: Any
    order: list[OrderKey]
    limit: int | None
    offset: int | None

    @property
    def is_count_only(self) -> bool:
        """``SELECT COUNT() FROM ...``: only ``totalSize`` answers."""
        return bool(self.counts) and self.counts[0].path is None


_KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "GROUP", "HAVING",
    "INCLUDES", "EXCLUDES", "WITH", "FOR", "USING", "TYPEOF",
}
_DATE_KEYWORDS = {"TODAY", "YESTERDAY", "TOMORROW"}
_DATE_N_KEYWORDS = {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"}


class _Parser:
    def __init__(self, query: str, now: datetime) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0
        self.now = now

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "EOF":
            self.i += 1
        return token

    def unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.tok
        shown = "<EOF>" if token.kind == "EOF" else f"'{token.text}'"
        return error_at(self.query, token.pos, "MALFORMED_QUERY", f"unexpected token: {shown}")

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "IDENT" and self.tok.value == word

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if not (self.tok.kind == "PUNCT" and self.tok.value == char):
            raise self.unexpected()
        return self.advance()

    def is_punct(self, char: str) -> bool:
        return self.tok.kind == "PUNCT" and self.tok.value == char

    def path(self) -> Path:
        token = self.tok
        if token.kind != "IDENT" or token.value in _KEYWORDS:
            raise self.unexpected()
        self.advance()
        return Path(token.text, token.pos)

    # -- grammar
    def parse(self) -> tuple[list[Path], list[Count], str, int, Any, list[OrderKey], int | None, int | None]:
        self.expect_kw("SELECT")
        fields: list[Path] = []
        counts: list[Count] = []
        while True:
            if self.is_kw("COUNT") and self.tokens[self.i + 1].kind == "PUNCT" and self.tokens[self.i + 1].value == "(":
                start = self.advance()
                self.expect_punct("(")
                inner = None if self.is_punct(")") else self.path()
                self.expect_punct(")")
                alias = None
                if self.tok.kind == "IDENT" and self.tok.value not in _KEYWORDS:
                    alias = self.advance().text
                counts.append(Count(inner, alias, start.pos))
            else:
                fields.append(self.path())
            if self.is_punct(","):
                self.advance()
                continue
            break
        self.expect_kw("FROM")
        obj_token = self.tok
        if obj_token.kind != "IDENT" or obj_token.value in _KEYWORDS or "." in obj_token.text:
            raise self.unexpected()
        self.advance()
        where = None
        if self.is_kw("WHERE"):
            self.advance()
            where = self.or_expr()
        order: list[OrderKey] = []
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            while True:
                key_path = self.path()
                descending = False
                if self.is_kw("ASC") or self.is_kw("DESC"):
                    descending = self.advance().value == "DESC"
                nulls_first = not descending
                if self.is_kw("NULLS"):
                    self.advance()
                    if self.is_kw("FIRST") or self.is_kw("LAST"):
                        nulls_first = self.advance().value == "FIRST"
                    else:
                        raise self.unexpected()
                order.append(OrderKey(key_path, descending, nulls_first))
                if self.is_punct(","):
                    self.advance()
                    continue
                break
        limit = offset = None
        if self.is_kw("LIMIT"):
            self.advance()
            limit = self.integer()
        if self.is_kw("OFFSET"):
            self.advance()
            offset = self.integer()
        if self.tok.kind != "EOF":
            raise self.unexpected()
        return fields, counts, obj_token.text, obj_token.pos, where, order, limit, offset

    def integer(self) -> int:
        token = self.tok
        if token.kind != "NUMBER" or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.is_kw("OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.is_kw("AND"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def not_expr(self) -> Any:
        if self.is_kw("NOT"):
            self.advance()
            return BoolOp("NOT", [self.not_expr()])
        if self.is_punct("("):
            self.advance()
            inner = self.or_expr()
            self.expect_punct(")")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        path = self.path()
        token = self.tok
        if token.kind == "OP":
            self.advance()
            return Condition(path, token.value, [self.value()])
        if self.is_kw("LIKE"):
            self.advance()
            value = self.value()
            if value.kind not in ("string", "null"):
                raise error_at(self.query, value.pos, "MALFORMED_QUERY", "invalid LIKE pattern: LIKE only takes a quoted string")
            return Condition(path, "LIKE", [value])
        negate = False
        if self.is_kw("NOT"):
            self.advance()
            negate = True
            if not self.is_kw("IN"):
                raise self.unexpected()
        if self.is_kw("IN"):
            self.advance()
            self.expect_punct("(")
            values = [self.value()]
            while self.is_punct(","):
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            return Condition(path, "NOT IN" if negate else "IN", values)
        raise self.unexpected()

    def value(self) -> Literal:
        token = self.tok
        if token.kind == "STRING":
            self.advance()
            return Literal("string", token.value, token.pos, token.like, token.text)
        if token.kind == "NUMBER":
            self.advance()
            return Literal("number", token.value, token.pos, text=token.text)
        if token.kind == "DATE":
            self.advance()
            return Literal("date", token.value, token.pos, text=token.text)
        if token.kind == "DATETIME":
            self.advance()
            return Literal("datetime", token.value, token.pos, text=token.text)
        if token.kind == "IDENT":
            word = token.value
            if word == "NULL":
                self.advance()
                return Literal("null", None, token.pos, text=token.text)
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", token.pos, text=token.text)
            if word in _DATE_KEYWORDS:
                self.advance()
                today = self.now.astimezone(UTC).date()
                start = today + timedelta(days={"TODAY": 0, "YESTERDAY": -1, "TOMORROW": 1}[word])
                return Literal("range", (start, start + timedelta(days=1)), token.pos, text=token.text)
            if word in _DATE_N_KEYWORDS:
                self.advance()
                self.expect_punct(":")
                n_token = self.tok
                if n_token.kind != "NUMBER" or not n_token.text.isdigit():
                    raise self.unexpected()
                self.advance()
                n = int(n_token.text)
                today = self.now.astimezone(UTC).date()
                if word == "LAST_N_DAYS":
                    span = (today - timedelta(days=n), today + timedelta(days=1))
                elif word == "NEXT_N_DAYS":
                    span = (today + timedelta(days=1), today + timedelta(days=n + 1))
                else:
                    day = today - timedelta(days=n)
                    span = (day, day + timedelta(days=1))
                return Literal("range", span, token.pos, text=f"{token.text}:{n}")
        raise self.unexpected()


# --------------------------------------------------------------------------- resolution

def _no_such_column(query: str, path: Path, obj: str) -> SoqlError:
    return error_at(
        query,
        path.pos,
        "INVALID_FIELD",
        f"No such column '{path.text.split('.')[-1]}' on entity '{obj}'. If you are attempting to use a "
        "custom field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def _resolve(query: str, obj: SObjectType, path: Path) -> None:
    parts = path.text.split(".")
    if len(parts) > 1 and parts[0].lower() == obj.name.lower():
        parts = parts[1:]  # "Lead.Email" is allowed for the queried object itself
    current: list[SObjectType] = [obj]
    for part in parts[:-1]:
        ref: Field | None = None
        for candidate in current:
            ref = candidate.relationships.get(part.lower())
            if ref is not None:
                break
        if ref is None:
            raise error_at(
                query,
                path.pos,
                "INVALID_FIELD",
                f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                "custom relationship, be sure to append the '__r' after the custom relationship name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        path.hops.append(ref)
        path.canonical.append(ref.relationship_name or part)
        current = [t for t in (sobject(n) for n in ref.reference_to) if t is not None]
    last = parts[-1]
    for candidate in current:
        found = candidate.field(last)
        if found is not None:
            path.target = found
            path.canonical.append(found.name)
            return
    raise _no_such_column(query, path, current[0].name)


def _check_literal(query: str, path: Path, lit: Literal, op: str) -> Literal:
    """Check a literal against the field's type; return it normalised for comparison."""
    target = path.target
    assert target is not None
    kind = target.type

    def wrong(expected: str) -> SoqlError:
        quoted = " and should not be enclosed in quotes" if lit.kind == "string" else ""
        return error_at(
            query, lit.pos, "INVALID_FIELD",
            f"value of filter criterion for field '{path.text}' must be of type {expected}{quoted}",
        )

    if lit.kind == "null":
        return lit
    if op == "LIKE" and kind not in TEXT_TYPES and kind not in ID_TYPES:
        raise error_at(query, path.pos, "INVALID_FIELD", f"invalid operator on {kind} field: LIKE")
    if kind in TEXT_TYPES:
        if lit.kind != "string":
            raise wrong("string")
        return Literal("string", lit.value.lower(), lit.pos, lit.like, lit.text)
    if kind in ID_TYPES:
        if lit.kind != "string":
            raise wrong("string")
        if op == "LIKE":
            return lit
        if lit.value == "":
            return Literal("null", None, lit.pos)
        if not is_salesforce_id(lit.value):
            raise error_at(query, lit.pos, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}")
        return Literal("id", to_id18(lit.value), lit.pos, text=lit.text)
    if kind in NUMBER_TYPES:
        if lit.kind != "number":
            raise wrong("double" if kind != "int" else "int")
        return lit
    if kind == "boolean":
        if lit.kind != "boolean":
            raise wrong("boolean")
        return lit
    if kind == "date":
        if lit.kind == "date":
            return Literal("date", lit.value.isoformat(), lit.pos, text=lit.text)
        if lit.kind == "range":
            start, end = lit.value
            return Literal("range", (start.isoformat(), end.isoformat()), lit.pos, text=lit.text)
        raise wrong("date")
    if kind == "datetime":
        if lit.kind == "datetime":
            return Literal("datetime", _datetime_operand(lit.value, op), lit.pos, text=lit.text)
        if lit.kind == "range":
            start, end = lit.value
            return Literal(
                "range",
                (format_datetime(datetime.combine(start, time(), UTC)), format_datetime(datetime.combine(end, time(), UTC))),
                lit.pos,
                text=lit.text,
            )
        raise wrong("dateTime")
    raise wrong(kind)  # pragma: no cover - every field type is handled above


def _datetime_operand(value: datetime, op: str) -> str:
    """A datetime literal as the stored form it is compared with (``...T12:00:00.000+0000``).

    Stored datetimes have millisecond precision. A literal with finer digits (``.000500Z``) is moved to
    the millisecond that keeps the comparison exact: up for ``>=`` and ``<``, down for ``>`` and ``<=``;
    for equality it keeps its microseconds, so that no stored value equals it.
    """
    sub_ms = value.astimezone(UTC).microsecond % 1000
    if not sub_ms:
        return format_datetime(value)
    if op in (">=", "<"):
        return format_datetime(value + timedelta(microseconds=1000 - sub_ms))
    if op in (">", "<="):
        return format_datetime(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"


def _resolve_where(query: str, obj: SObjectType, node: Any) -> None:
    if isinstance(node, BoolOp):
        for item in node.items:
            _resolve_where(query, obj, item)
        return
    assert isinstance(node, Condition)
    _resolve(query, obj, node.path)
    assert node.path.target is not None
    if node.path.target.type == "textarea":
        raise error_at(query, node.path.pos, "INVALID_FIELD", f"field '{node.path.text}' can not be filtered in a query call")
    for lit in node.values:
        if lit.kind == "range" and node.op in ("IN", "NOT IN", "LIKE"):
            raise error_at(query, lit.pos, "MALFORMED_QUERY", f"unexpected token: '{lit.text}'")
        if lit.kind == "null" and node.op not in ("=", "!=", "IN", "NOT IN"):
            raise error_at(query, lit.pos, "MALFORMED_QUERY", f"unexpected token: '{lit.text}'")
    node.values = [_check_literal(query, node.path, lit, node.op) for lit in node.values]


def parse(query: str, now: datetime | None = None) -> Query:
    """Parse and resolve ``query`` against the sandbox schema.

    Args:
        query: the SOQL text.
        now: the org's current time (for TODAY, LAST_N_DAYS:n...).

    Raises:
        SoqlError: MALFORMED_QUERY, INVALID_TYPE, INVALID_FIELD or another Salesforce error.
    """
    if not isinstance(query, str) or not query.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
    parser = _Parser(query, now or datetime.now(UTC))
    fields, counts, obj_name, obj_pos, where, order, limit, offset = parser.parse()
    obj = sobject(obj_name)
    if obj is None:
        raise error_at(
            query, obj_pos, "INVALID_TYPE",
            f"sObject type '{obj_name}' is not supported. If you are attempting to use a custom object, be "
            "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
            "call for the appropriate names.",
        )
    seen: set[str] = set()
    for path in fields:
        _resolve(query, obj, path)
        key = ".".join(path.canonical).lower()
        if key in seen:
            raise error_at(query, path.pos, "MALFORMED_QUERY", f"duplicate field selected: {path.text}")
        seen.add(key)
    for count in counts:
        if count.path is not None:
            _resolve(query, obj, count.path)
    if counts and fields:
        raise error_at(query, fields[0].pos, "MALFORMED_QUERY", f"Field must be grouped or aggregated: {fields[0].text}")
    if len(counts) > 1 and any(c.path is None for c in counts):
        raise error_at(query, counts[1].pos, "MALFORMED_QUERY", "COUNT() must be the only element in the SELECT list.")
    if where is not None:
        _resolve_where(query, obj, where)
    for key_ in order:
        _resolve(query, obj, key_.path)
        assert key_.path.target is not None
        if key_.path.target.type == "textarea":
            raise error_at(query, key_.path.pos, "INVALID_FIELD", f"field '{key_.path.text}' can not be sorted in a query call")
    if offset is not None and offset > 2000:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
    return Query(query, obj, fields, counts, where, order, limit, offset)


# --------------------------------------------------------------------------- evaluation

def _getter(path: Path, lookup: Lookup) -> Callable[[Record], Any]:
    target = path.target
    assert target is not None
    name = target.name
    if not path.hops:
        return lambda rec: rec.get(name)
    hops = [hop.name for hop in path.hops]

    def get(rec: Record) -> Any:
        current: Record | None = rec
        for hop in hops:
            ref = current.get(hop) if current is not None else None
            found = lookup(ref) if ref else None
            if found is None:
                return None
            current = found[1]
        return current.get(name) if current is not None else None

    return get


def _compare_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind in TEXT_TYPES:
        return value.lower() if isinstance(value, str) else str(value).lower()
    if kind in NUMBER_TYPES:
        return float(value)
    return value


def _condition(cond: Condition, lookup: Lookup) -> Callable[[Record], bool]:
    get = _getter(cond.path, lookup)
    target = cond.path.target
    assert target is not None
    kind = target.type
    op = cond.op
    lits = cond.values

    def value_of(rec: Record) -> Any:
        return _compare_value(kind, get(rec))

    if op == "LIKE":
        lit = lits[0]
        if lit.kind == "null":
            return lambda rec: False
        pattern = re.compile(f"(?s){lit.like}\\Z", re.IGNORECASE)

        def like(rec: Record) -> bool:
            value = get(rec)
            return value is not None and pattern.match(str(value)) is not None

        return like
    if op in ("IN", "NOT IN"):
        wanted = {lit.value for lit in lits if lit.kind != "null"}
        with_null = any(lit.kind == "null" for lit in lits)
        if op == "IN":
            return lambda rec: (v := value_of(rec)) in wanted or (v is None and with_null)
        return lambda rec: (v := value_of(rec)) not in wanted and not (v is None and with_null)
    lit = lits[0]
    if lit.kind == "null":
        if op == "=":
            return lambda rec: get(rec) is None
        if op == "!=":
            return lambda rec: get(rec) is not None
        return lambda rec: False
    if lit.kind == "range":
        start, end = lit.value
        checks: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: start <= v < end,
            "!=": lambda v: not (start <= v < end),
            "<": lambda v: v < start,
            "<=": lambda v: v < end,
            ">": lambda v: v >= end,
            ">=": lambda v: v >= start,
        }
        check = checks[op]
        if op == "!=":
            return lambda rec: (v := get(rec)) is None or check(v)
        return lambda rec: (v := get(rec)) is not None and check(v)
    wanted_value = lit.value
    if op == "=":
        return lambda rec: value_of(rec) == wanted_value
    if op == "!=":
        return lambda rec: value_of(rec) != wanted_value
    compare: dict[str, Callable[[Any], bool]] = {
        "<": lambda v: v < wanted_value,
        "<=": lambda v: v <= wanted_value,
        ">": lambda v: v > wanted_value,
        ">=": lambda v: v >= wanted_value,
    }
    check_op = compare[op]
    return lambda rec: (v := value_of(rec)) is not None and check_op(v)


def compile_where(node: Any, lookup: Lookup) -> Callable[[Record], bool]:
    """Turn a resolved WHERE tree into a predicate over records."""
    if node is None:
        return lambda rec: True
    if isinstance(node, Condition):
        return _condition(node, lookup)
    parts = [compile_where(item, lookup) for item in node.items]
    if node.op == "NOT":
        inner = parts[0]
        return lambda rec: not inner(rec)
    if node.op == "AND":
        return lambda rec: all(p(rec) for p in parts)
    return lambda rec: any(p(rec) for p in parts)


def sort_records(records: list[Record], order: list[OrderKey], lookup: Lookup) -> list[Record]:
    """Sort ``records`` by the ORDER BY keys (stable; text case-insensitive; nulls as asked)."""
    result = list(records)
    for key in reversed(order):
        get = _getter(key.path, lookup)
        target = key.path.target
        assert target is not None
        kind = target.type
        null_rank = 0 if key.nulls_first != key.descending else 2

        def sort_key(rec: Record, get: Callable[[Record], Any] = get, kind: str = kind, null_rank: int = null_rank) -> tuple[Any, ...]:
            value = _compare_value(kind, get(rec))
            return (null_rank,) if value is None else (1, value)

        result.sort(key=sort_key, reverse=key.descending)
    return result


# --------------------------------------------------------------------------- projection

ProjectionPlan = dict[str, Any]


def projection_plan(fields: list[Path]) -> ProjectionPlan:
    """A tree of what to render: field name -> None, or relationship name -> (reference field, subtree)."""
    plan: ProjectionPlan = {}
    for path in fields:
        node = plan
        for hop, name in zip(path.hops, path.canonical, strict=False):
            entry = node.get(name)
            if entry is None:
                entry = (hop.name, {})
                node[name] = entry
            node = entry[1]
        assert path.target is not None
        node[path.target.name] = None
    return plan


def render(obj_name: str, rec: Record, plan: ProjectionPlan, lookup: Lookup, version: str) -> Record:
    """A record as the query answer shows it, with ``attributes`` and nested relationships."""
    out: Record = {"attributes": {"type": obj_name, "url": f"/services/data/v{version}/sobjects/{obj_name}/{rec['Id']}"}}
    for name, entry in plan.items():
        if entry is None:
            out[name] = rec.get(name)
            continue
        ref_field, subtree = entry
        ref = rec.get(ref_field)
        found = lookup(ref) if ref else None
        out[name] = None if found is None else render(found[0], found[1], subtree, lookup, version)
    return out


def flat_columns(fields: list[Path]) -> list[str]:
    """Column names of a Bulk query CSV (``Owner.Name`` for relationship fields)."""
    return [".".join(path.canonical) for path in fields]
