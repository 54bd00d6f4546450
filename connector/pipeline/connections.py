"""Opening the adapter a configured connection names. The one place that picks a CRM."""

from __future__ import annotations

from connector.adapters.base import CrmAdapter
from connector.adapters.factory import build_adapter
from connector.adapters.retry import Deadline, RetryPolicy
from connector.config.loader import RelayConfig


def open_adapter(
    config: RelayConfig, name: str, *, retry: RetryPolicy | None = None, deadline: Deadline | None = None
) -> CrmAdapter:
    """The adapter for connection ``name`` of ``config``, with the connection's own settings.

    The connection's ``write_batch_size`` reaches the adapter, so every write call carries
    at most that many records (admins lower it when CRM-side triggers or locks need smaller
    batches).

    Args:
        config: The validated configuration.
        name: The connection's name in ``config/relay.yaml``.
        retry: The retry policy (the adapters' default when omitted).
        deadline: The run's deadline (see ``connector.adapters.factory.run_deadline``): no call
            starts and no retry wait ends after it.

    Raises:
        KeyError: naming the known connections when ``name`` is not one of them.
    """
    return build_adapter(name, config.connection(name), retry=retry, deadline=deadline)
