"""CRM records <-> canonical records, driven by ``mappings/*.yaml``."""

from __future__ import annotations

from connector.mapping.engine import (
    MappingError,
    MappingProblem,
    RecordMeta,
    changed_fields,
    flatten,
    record_meta,
    to_canonical,
    to_crm,
)
from connector.mapping.transforms import TRANSFORMS, TransformError, format_datetime, parse_datetime

__all__ = [
    "TRANSFORMS",
    "MappingError",
    "MappingProblem",
    "RecordMeta",
    "TransformError",
    "changed_fields",
    "flatten",
    "format_datetime",
    "parse_datetime",
    "record_meta",
    "to_canonical",
    "to_crm",
]
