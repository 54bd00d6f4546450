"""CRM adapters: one per CRM, on its official SDK; the only code that knows which CRM it talks to.

The pipeline uses the :class:`~connector.adapters.base.CrmAdapter` protocol and
builds adapters with :func:`connector.crms.salesforce.adapter.SalesforceAdapter` or
:func:`connector.crms.hubspot.adapter.HubSpotAdapter`.
"""

from __future__ import annotations

from connector.adapters.base import CrmAdapter, Cursor, FieldSpec, Page, WriteOp, WriteResult
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import (
    ApiLimitExceeded,
    AuthError,
    ConfigurationError,
    CrmError,
    FatalError,
    PermissionError_,
    RateLimitedError,
    RecordError,
    RetriableError,
)
from connector.adapters.retry import RetryPolicy

__all__ = [
    "ApiCallCounter",
    "ApiLimitExceeded",
    "AuthError",
    "ConfigurationError",
    "CrmAdapter",
    "CrmError",
    "Cursor",
    "FatalError",
    "FieldSpec",
    "Page",
    "PermissionError_",
    "RateLimitedError",
    "RecordError",
    "RetriableError",
    "RetryPolicy",
    "WriteOp",
    "WriteResult",
]
