"""CRM records <-> canonical records, driven by ``mappings/*.yaml``."""

from __future__ import annotations

from connector.mapping.engine import (
    MappingError,
    MappingProblem,
    RecordMeta,
    changed_fields,
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
    "format_datetime",
    "parse_datetime",
    "record_meta",
    "to_canonical",
    "to_crm",
]
