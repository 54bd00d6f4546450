"""Relay's configuration: settings, connections, mappings, rules; loading and validation."""

from __future__ import annotations

from connector.config.canonical import CANONICAL_FIELDS
from connector.config.loader import RelayConfig, load_config, validate_config
from connector.config.mappings import (
    FieldMapping,
    HubSpotPropertySpec,
    MappingFile,
    ObjectMapping,
    TransformSpec,
)
from connector.config.problems import ConfigError, ConfigProblem
from connector.config.relay import HubSpotConnection, RelayFile, SalesforceConnection, SyncSchedule
from connector.config.settings import Settings, get_settings

__all__ = [
    "CANONICAL_FIELDS",
    "ConfigError",
    "ConfigProblem",
    "FieldMapping",
    "HubSpotConnection",
    "HubSpotPropertySpec",
    "MappingFile",
    "ObjectMapping",
    "RelayConfig",
    "RelayFile",
    "SalesforceConnection",
    "Settings",
    "SyncSchedule",
    "TransformSpec",
    "get_settings",
    "load_config",
    "validate_config",
]
