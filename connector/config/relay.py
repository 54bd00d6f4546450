"""Models of ``config/relay.yaml``: the CRM connections Relay syncs.

A connection's model is its CRM unit's (``connector/crms/<crm>/settings.py``), chosen by
``kind``; the shared part is :class:`~connector.config.connection.ConnectionSettings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from connector.config._base import ConfigModel
from connector.config.capture import CaptureSettings
from connector.config.connection import (
    CONNECTION_NAME_PATTERN,
    ConnectionSettings,
    SyncSchedule,
    check_cron,
)
from connector.crms import load_units

__all__ = ["CONNECTION_NAME_PATTERN", "Connection", "ConnectionSettings", "RelayFile", "SyncSchedule", "check_cron"]


def _connection_union() -> Any:
    models = tuple(unit.settings for unit in load_units().values())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007 - built at run time


if TYPE_CHECKING:
    Connection = ConnectionSettings
else:
    Connection = _connection_union()
    """One connection's settings: the model of the CRM unit its ``kind`` names."""


class RelayFile(ConfigModel):
    """``config/relay.yaml``: the connections Relay syncs, by name."""

    connections: dict[str, Connection] = Field(
        min_length=1,
        description="Connections by name (lower-case letters, digits, underscores; used by `relay sync NAME`).",
        json_schema_extra={"propertyNames": {"pattern": CONNECTION_NAME_PATTERN}},
    )
    capture: CaptureSettings = Field(
        default_factory=CaptureSettings,
        description="Web forms and imported lists: POST /capture/form/{source} and `relay import --source NAME`.",
    )
