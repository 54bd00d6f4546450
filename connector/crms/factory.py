"""Building the adapter of a configured connection (``config/relay.yaml``).

The CRM unit its ``kind`` names opens the adapter; this module resolves what every CRM
shares (retry policy, timeouts, read lag, deadline). The optional
settings ``connect_timeout``, ``read_timeout`` (seconds), ``max_attempts`` and
``run_deadline_minutes`` are read when the connection has them.
"""

from __future__ import annotations

from typing import Any

from connector.adapters._paging import READ_LAG
from connector.adapters.base import CrmAdapter
from connector.adapters.budget import Governor
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import ConfigurationError
from connector.adapters.retry import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    Deadline,
    RetryPolicy,
)
from connector.crms import AdapterOptions, UnknownCrm, crm_unit

DEFAULT_READ_LAG_SECONDS = READ_LAG.total_seconds()


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
    governor: Governor | None = None,
    subscription_types: tuple[str, ...] = (),
) -> CrmAdapter:
    """The adapter for connection ``name``, opened by the CRM unit its ``kind`` names (``connector.crms``).

    Args:
        name: The connection's name.
        connection: Its settings.
        retry: The retry policy (default: 6 attempts, or the connection's ``max_attempts``).
        calls: Where API calls are counted.
        timeout: ``(connect, read)`` seconds (default: the connection's ``connect_timeout`` and
            ``read_timeout``, else 5 s and 60 s).
        deadline: The run's deadline, bounding every call and retry wait of the adapter.
        governor: The connection's API budget (see ``connector.pipeline.budget.open_governor``): every
            counted call takes a token first.
        subscription_types: The email subscription types (by name) whose opt-out makes a person
            unsubscribed (consent.yaml ``subscription_types`` of the connection's kind).

    Raises:
        ConfigurationError: the connection's kind is not a CRM Relay knows.
    """
    kind = getattr(connection, "kind", None)
    try:
        unit = crm_unit(str(kind))
    except UnknownCrm as exc:
        raise ConfigurationError(f"connection {name!r}: kind must be one of {', '.join(exc.known)}, got {kind!r}",
                                 code="UNKNOWN_CRM") from None
    if getattr(connection, "credentials", None) is None:
        raise ConfigurationError(f"connection {name!r}: no credentials", code="INVALID_CREDENTIALS", crm=unit.kind)
    retry = connection_policy(connection, retry)
    if deadline is not None:
        retry = retry.with_deadline(deadline)
    options = AdapterOptions(
        retry=retry, calls=calls, timeout=timeout if timeout is not None else connection_timeout(connection),
        read_lag_seconds=float(getattr(connection, "read_lag_seconds", DEFAULT_READ_LAG_SECONDS)),
        owners_cache_seconds=float(getattr(connection, "owners_cache_seconds", 0.0)), governor=governor,
        subscription_types=tuple(subscription_types),
    )
    return unit.open_adapter(name, connection, options)

