"""Opening the adapter a configured connection names. The one place that picks a CRM."""

from __future__ import annotations

from connector.adapters.base import CrmAdapter
from connector.adapters.hubspot import HubSpotAdapter
from connector.adapters.retry import RetryPolicy
from connector.adapters.salesforce import SalesforceAdapter
from connector.config.loader import RelayConfig
from connector.config.relay import HubSpotConnection, SalesforceConnection


def open_adapter(config: RelayConfig, name: str, *, retry: RetryPolicy | None = None) -> CrmAdapter:
    """The adapter for connection ``name`` of ``config``.

    Raises:
        KeyError: naming the known connections when ``name`` is not one of them.
    """
    connection = config.connection(name)
    if isinstance(connection, SalesforceConnection):
        return SalesforceAdapter(
            name,
            connection.base_url,
            connection.credentials.client_id.get_secret_value(),
            connection.credentials.client_secret.get_secret_value(),
            connection.api_version,
            retry=retry,
        )
    if isinstance(connection, HubSpotConnection):
        return HubSpotAdapter(
            name,
            connection.base_url,
            connection.credentials.access_token.get_secret_value(),
            retry=retry,
        )
    raise TypeError(f"connection {name!r} has an unknown kind")  # pragma: no cover - the config forbids it
