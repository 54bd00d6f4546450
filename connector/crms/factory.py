"""Building the adapter of a configured connection (``config/relay.yaml``).

Duck-typed on the connection model (``kind``, ``base_url``, ``credentials``...) so
that the adapters do not depend on the config package's classes. The optional
settings ``connect_timeout``, ``read_timeout`` (seconds), ``max_attempts`` and
``run_deadline_minutes`` are read when the connection has them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector.adapters._paging import READ_LAG
from connector.adapters.base import CrmAdapter
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import ConfigurationError
from connector.adapters.hubspot import HubSpotAdapter
from connector.adapters.retry import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    Deadline,
    RetryPolicy,
)
from connector.adapters.salesforce import SalesforceAdapter

DEFAULT_READ_LAG_SECONDS = READ_LAG.total_seconds()


def _secret(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value)


def connection_timeout(connection: Any) -> tuple[float, float]:
    """The connection's ``(connect, read)`` timeout: ``connect_timeout`` / ``read_timeout``, else 5 s / 60 s."""
    connect = getattr(connection, "connect_timeout", None)
    read = getattr(connection, "read_timeout", None)
    return (float(connect) if connect is not None else DEFAULT_CONNECT_TIMEOUT,
            float(read) if read is not None else DEFAULT_READ_TIMEOUT)


def connection_policy(connection: Any, retry: RetryPolicy | None = None) -> RetryPolicy:
    """``retry``, else the default policy with the connection's ``max_attempts`` (when it sets one)."""
    if retry is not None:
        return retry
    attempts = getattr(connection, "max_attempts", None)
    return RetryPolicy(max_attempts=int(attempts)) if attempts is not None else RetryPolicy()


def run_deadline(connection: Any, **kwargs: Any) -> Deadline | None:
    """A deadline of ``run_deadline_minutes`` from now, or None when the connection sets none.

    Args:
        connection: The connection's settings.
        **kwargs: Passed to :class:`Deadline` (``clock`` in tests).
    """
    minutes = getattr(connection, "run_deadline_minutes", None)
    return Deadline.minutes(float(minutes), **kwargs) if minutes else None


def build_adapter(
    name: str,
    connection: Any,
    *,
    retry: RetryPolicy | None = None,
    calls: ApiCallCounter | None = None,
    timeout: float | tuple[float, float] | None = None,
    deadline: Deadline | None = None,
) -> CrmAdapter:
    """The adapter for connection ``name`` (a ``SalesforceConnection`` or ``HubSpotConnection``).

    Args:
        name: The connection's name.
        connection: Its settings.
        retry: The retry policy (default: 6 attempts, or the connection's ``max_attempts``).
        calls: Where API calls are counted.
        timeout: ``(connect, read)`` seconds (default: the connection's ``connect_timeout`` and
            ``read_timeout``, else 5 s and 60 s).
        deadline: The run's deadline, bounding every call and retry wait of the adapter.

    Raises:
        ConfigurationError: the connection's kind is not a CRM Relay knows.
    """
    timeout = timeout if timeout is not None else connection_timeout(connection)
    retry = connection_policy(connection, retry)
    if deadline is not None:
        retry = retry.with_deadline(deadline)
    read_lag = timedelta(seconds=float(getattr(connection, "read_lag_seconds", DEFAULT_READ_LAG_SECONDS)))
    kind = getattr(connection, "kind", None)
    credentials: Any = getattr(connection, "credentials", None)
    if credentials is None:
        raise ConfigurationError(f"connection {name!r}: no credentials", code="INVALID_CREDENTIALS")
    if kind == "salesforce":
        return SalesforceAdapter(
            name, connection.base_url, _secret(credentials.client_id), _secret(credentials.client_secret),
            getattr(connection, "api_version", "59.0"), timeout=timeout, retry=retry, calls=calls,
            write_batch_size=getattr(connection, "write_batch_size", 200), read_lag=read_lag,
        )
    if kind == "hubspot":
        return HubSpotAdapter(
            name, connection.base_url, _secret(credentials.access_token), timeout=timeout, retry=retry, calls=calls,
            write_batch_size=getattr(connection, "write_batch_size", 100), read_lag=read_lag,
        )
    raise ConfigurationError(f"connection {name!r}: kind must be salesforce or hubspot, got {kind!r}",
                             code="UNKNOWN_CRM")
