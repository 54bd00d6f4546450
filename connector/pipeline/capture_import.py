"""``relay import FILE.csv --source NAME``: a list of people (an event, a trade show) read into submissions.

The header row names the columns, matched to submission fields case- and space-insensitively
with common variants ("E-mail", "First Name", "Company Name"); other columns are ignored and
named. Every row is checked; a bad row is reported (line, column, value, reason) and never
stops the file. The file is UTF-8, with or without a byte-order mark, separated by commas,
semicolons or tabs (whichever the header uses); a file that is not UTF-8 or not CSV is refused
naming the file and the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from connector.pipeline.submissions import Submission, field_name, read_fields, submission

MAX_FIELD = 100_000
"""The longest cell taken (csv's own limit is 128 kB); longer ones mean the file is not what it seems."""


class ImportFileError(Exception):
    """The file cannot be read as a CSV list (missing, not UTF-8, not CSV, no email column): nothing is imported."""


@dataclass(frozen=True)
class RowError:
    """One value of one row that cannot be taken.

    Attributes:
        line: The row's line in the file (the header is line 1).
        column: The column as the header names it ("" for a problem of the whole row).
        value: The value as the file has it.
        reason: What is wrong.
    """

    line: int
    column: str
    value: str
    reason: str


@dataclass
class ImportFile:
    """What a file holds: the good rows as submissions, the bad rows' errors.

    Attributes:
        path: The file.
        rows: Data rows read (blank rows are skipped).
        submissions: One per good row, in file order.
        errors: Every problem of every bad row.
        bad_rows: Lines of the rows with problems.
        ignored_columns: Header names that are no submission field.
    """

    path: Path
    rows: int = 0
    submissions: list[Submission] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    bad_rows: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def _text_of(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise ImportFileError(f"{path}: the file is empty (a CSV list starts with a header row)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ImportFileError(f"{path}:{line}: not a CSV file (it holds binary data: a NUL byte; save the list as "
                              "CSV, UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save "
                              "the list as CSV UTF-8") from None


def _dialect(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def read_import(path: Path, source: str, *, received_at: datetime,
                progress: Callable[[int, int], None] | None = None) -> ImportFile:
    """Read and check every row of the CSV list at ``path`` for capture source ``source``.

    Args:
        path: The file.
        source: The capture source the people come from.
        received_at: The time of the import (each submission's ``received_at``).
        progress: Called with (rows done, rows in the file, about) as rows are checked.

    Raises:
        ImportFileError: the file cannot be read, is not UTF-8 or not CSV, or has no email column;
            the message names the file and line.
    """
    text = _text_of(path)
    lines = text.splitlines()
    total = max(len(lines) - 1, 0)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(lines[0] if lines else ""), strict=True)
    out = ImportFile(path)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ImportFileError(f"{path}:1: not CSV: {exc}") from None
    names = [name.strip() for name in header]
    known = [field_name(name) for name in names]
    if "email" not in known:
        shown = ", ".join(repr(n) for n in names[:12])
        raise ImportFileError(f"{path}:1: no email column in the header ({shown}): is this a CSV list of people "
                              "with a header row?")
    out.ignored_columns = [name for name, canonical in zip(names, known, strict=True) if canonical is None and name]
    for line, row in _rows(reader, path):
        if not any(cell.strip() for cell in row):
            continue
        out.rows += 1
        if progress is not None:
            progress(out.rows, total)
        problems: list[RowError] = []
        if len(row) > len(names):
            problems.append(RowError(line, "", ",".join(row[len(names):])[:200],
                                     f"the row has {len(row)} values for {len(names)} columns"))
        for name, value in zip(names, row, strict=False):
            if len(value) > MAX_FIELD:
                problems.append(RowError(line, name, value[:200] + "...", f"longer than {MAX_FIELD:,} characters"))
        values = [(name, value) for name, value in zip(names, row, strict=False) if name]
        fields, found = read_fields(values, unknown="ignore")
        problems.extend(RowError(line, p.field, "" if p.value is None else str(p.value)[:200], p.message)
                        for p in found)
        if problems:
            out.errors.extend(problems)
            out.bad_rows.append(line)
            continue
        out.submissions.append(submission(source, fields, received_at=received_at, channel="import",
                                          origin=f"{path.name}:{line}"))
    return out


def _rows(reader: Iterator[list[str]], path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line where the row starts, row)``; a row csv cannot read stops the file, naming its line."""
    line = 1
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"{path}:{start}: not CSV: {exc}") from None
        line = reader.line_num  # type: ignore[attr-defined]
        yield start, row


def write_errors(path: Path, errors: list[RowError]) -> None:
    """Write the bad rows' errors as CSV: line, column, value, reason (UTF-8)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "value", "reason"])
        for error in errors:
            writer.writerow([error.line, error.column, error.value, error.reason])
