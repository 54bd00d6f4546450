"""Reading Bulk API 2.0 query results (CSV) as the same typed records the REST API answers.

Bulk 2.0 answers CSV where every value is text and null is an empty field. The
REST API answers JSON with booleans and numbers. So that the pipeline sees one
shape whichever path read a record, values are converted by the field types of
the object's describe::

    Id,IsConverted,NumberOfEmployees,AnnualRevenue,Email
    00Q...,false,120,,a@x.example
    → {"Id": "00Q...", "IsConverted": False, "NumberOfEmployees": 120, "AnnualRevenue": None, "Email": "a@x.example"}
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from typing import Any

_INTEGER_TYPES = frozenset({"int", "long"})
_FLOAT_TYPES = frozenset({"double", "currency", "percent"})


def _to_bool(text: str) -> bool:
    return text.strip().lower() == "true"


def converters(describe: Mapping[str, Any]) -> dict[str, Callable[[str], Any]]:
    """Field name → function turning the CSV text into the REST API's JSON value."""
    out: dict[str, Callable[[str], Any]] = {}
    for field in describe.get("fields") or []:
        kind = str(field.get("type", "")).lower()
        name = str(field.get("name", ""))
        if kind == "boolean":
            out[name] = _to_bool
        elif kind in _INTEGER_TYPES:
            out[name] = lambda text: int(float(text))
        elif kind in _FLOAT_TYPES:
            out[name] = float
    return out


def csv_records(text: str, convert: Mapping[str, Callable[[str], Any]]) -> list[dict[str, Any]]:
    """The rows of a Bulk 2.0 CSV page as typed records (empty field → None)."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        record: dict[str, Any] = {}
        for name, value in row.items():
            if name is None:
                continue
            if value is None or value == "":
                record[name] = None
                continue
            fn = convert.get(name)
            try:
                record[name] = fn(value) if fn is not None else value
            except ValueError:
                record[name] = value  # keep what Salesforce sent; the mapping reports the bad value
        rows.append(record)
    return rows
