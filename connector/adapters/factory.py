"""Building the adapter of a configured connection (``config/relay.yaml``).

Duck-typed on the connection model (``kind``, ``base_url``, ``credentials``...) so
that the adapters do not depend on the config package's classes.
"""

from __future__ import annotations

from typing import Any

from connector.adapters.base import CrmAdapter
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import ConfigurationError
from connector.adapters.hubspot import HubSpotAdapter
from connector.adapters.retry import RetryPolicy
from connector.adapters.salesforce import SalesforceAdapter


def _secret(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value)


def build_adapter(
    name: str,
    connection: Any,
    *,
    retry: RetryPolicy | None = None,
    calls: ApiCallCounter | None = None,
    timeout: float = 30,
) -> CrmAdapter:
    """The adapter for connection ``name`` (a ``SalesforceConnection`` or ``HubSpotConnection``).

    Raises:
        ConfigurationError: the connection's kind is not a CRM Relay knows.
    """
    kind = getattr(connection, "kind", None)
    credentials: Any = getattr(connection, "credentials", None)
    if credentials is None:
        raise ConfigurationError(f"connection {name!r}: no credentials", code="INVALID_CREDENTIALS")
    if kind == "salesforce":
        return SalesforceAdapter(
            name, connection.base_url, _secret(credentials.client_id), _secret(credentials.client_secret),
            getattr(connection, "api_version", "59.0"), timeout=timeout, retry=retry, calls=calls,
            write_batch_size=getattr(connection, "write_batch_size", 200),
        )
    if kind == "hubspot":
        return HubSpotAdapter(
            name, connection.base_url, _secret(credentials.access_token), timeout=timeout, retry=retry, calls=calls,
            write_batch_size=getattr(connection, "write_batch_size", 100),
        )
    raise ConfigurationError(f"connection {name!r}: kind must be salesforce or hubspot, got {kind!r}",
                             code="UNKNOWN_CRM")
