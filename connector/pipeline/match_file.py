"""``relay match``: the person matcher on a CSV file, for cleaning a list before an import.

The file is read once, streamed into the matcher (a million rows fit on a laptop). A row that
cannot be read (not UTF-8, the wrong number of columns) is reported with its line number and
kept as a record of its own, so every input row gets a line in the output and the file is
never stopped by one bad row.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector.core.matching import PERSON_COLUMNS, MatchResult, match_people
from connector.core.rules import MatchingRules

_COLUMNS = frozenset(PERSON_COLUMNS)


FIELD_SIZE_LIMIT = 16 * 1024 * 1024
"""Characters a field may hold (the csv module's default, 131,072, would refuse a long notes column)."""


class MatchFileError(Exception):
    """The file cannot be matched at all (missing, unreadable header, no ``id``, unknown columns)."""


@dataclass
class BadRow:
    """A row kept as a record of its own, and why."""

    line: int
    record_id: str
    reason: str


@dataclass
class MatchedFile:
    """A matched file: the matcher's result, and the rows it could not read."""

    result: MatchResult
    rows: int
    bad_rows: list[BadRow] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError:
        raise MatchFileError(f"{path}: no such file") from None
    except (OSError, csv.Error) as exc:
        raise MatchFileError(f"{path}: cannot be read: {exc}") from None
    if not header:
        raise MatchFileError(f"{path}: the file is empty (a header row naming the columns is needed)")
    if any(_has_bad_bytes(name) for name in header):
        raise MatchFileError(f"{path}: line 1 (the header) is not UTF-8 text")
    columns = [name.strip().lower() for name in header]
    if "id" not in columns:
        raise MatchFileError(f"{path}: line 1 has no 'id' column (columns: {', '.join(columns) or 'none'}); "
                             f"every row needs an id for the output")
    unknown = [name for name in columns if name not in _COLUMNS]
    if unknown:
        raise MatchFileError(f"{path}: line 1 names unknown columns: {', '.join(unknown)} (known: "
                             f"{', '.join(PERSON_COLUMNS)})")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise MatchFileError(f"{path}: line 1 names a column twice: {', '.join(repeated)}")
    return columns


def _records(path: Path, columns: Sequence[str], bad: list[BadRow], ids: list[str]) -> Iterator[dict[str, str]]:
    """The file's rows as records; an unreadable row becomes a record with its id only."""
    width = len(columns)
    id_at = columns.index("id")
    first_seen: dict[str, int] = {}
    csv.field_size_limit(FIELD_SIZE_LIMIT)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                record_id = f"line:{line}"
                bad.append(BadRow(line, record_id, f"not a CSV row: {exc}"))
                ids.append(record_id)
                yield {"id": record_id}
                continue
            first_line, line = line + 1, reader.line_num
            if not row:
                continue
            raw_id = row[id_at].strip() if len(row) > id_at else ""
            record_id = raw_id if raw_id and not _has_bad_bytes(raw_id) else f"line:{first_line}"
            earlier = first_seen.get(record_id)
            if earlier is not None:  # two rows under one id: the output would not tell them apart
                record_id = f"{record_id}@line:{first_line}"
            first_seen.setdefault(record_id, first_line)
            ids.append(record_id)
            lines = f"lines {first_line}-{line}: " if line > first_line else ""
            if any(_has_bad_bytes(value) for value in row):
                bad.append(BadRow(first_line, record_id, f"{lines}not UTF-8 text"))
                yield {"id": record_id}
            elif len(row) != width:
                hint = " (an unclosed quote takes the lines after it)" if lines else ""
                bad.append(BadRow(first_line, record_id, f"{lines}{len(row)} columns, the header has {width}{hint}"))
                yield {"id": record_id}
            elif earlier is not None:
                bad.append(BadRow(first_line, record_id, f"the id {raw_id!r} is also the id of line {earlier}: "
                                                         f"this row is {record_id} in the output"))
                yield {"id": record_id}
            elif not raw_id:
                bad.append(BadRow(first_line, record_id, "the id is empty"))
                yield {"id": record_id}
            else:
                yield dict(zip(columns, row, strict=True))


def _has_bad_bytes(value: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in value)


def match_file(path: Path, rules: MatchingRules | None = None,
               progress: Callable[[int], None] | None = None) -> MatchedFile:
    """Match the people of the CSV file at ``path``.

    Raises:
        MatchFileError: when the file or its header cannot be used (naming the file and why).
    """
    columns = _header(path)
    bad: list[BadRow] = []
    ids: list[str] = []
    result = match_people(_records(path, columns, bad, ids), rules, progress)
    seen: set[str] = set()
    duplicates: list[str] = []
    for record_id in ids:
        if record_id in seen:
            duplicates.append(record_id)
        seen.add(record_id)
    return MatchedFile(result=result, rows=result.records, bad_rows=bad, duplicate_ids=duplicates)


def write_clusters(target: Path, result: MatchResult) -> None:
    """``id,cluster`` for every input row; a cluster is named by the id of its first row."""
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("id", "cluster"))
        ids = result.ids
        for record_id, label in zip(ids, result.labels, strict=True):
            writer.writerow((record_id, ids[label]))


def write_pairs(target: Path, result: MatchResult) -> int:
    """The pairs scoring ``review_at`` or more: ids, score, ``same`` or ``review``, reasons. Returns the count."""
    pairs = result.pairs()
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("left_id", "right_id", "score", "decision", "reasons"))
        for pair in pairs:
            writer.writerow((pair.left, pair.right, f"{pair.score:.2f}", pair.decision, pair.reasons))
    return len(pairs)


def write_bad_rows(target: Path, bad: Sequence[BadRow]) -> None:
    """The unreadable rows: line, id, reason."""
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("line", "id", "reason"))
        for row in bad:
            writer.writerow((row.line, row.record_id, row.reason))
