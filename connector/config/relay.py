"""Models of ``config/relay.yaml``: the CRM connections Relay syncs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config._base import ConfigModel

SALESFORCE_MAX_WRITE_BATCH = 200
"""sObject Collections take at most 200 records per call."""
HUBSPOT_MAX_WRITE_BATCH = 100
"""HubSpot batch endpoints take at most 100 inputs per call."""
SALESFORCE_PAGE_SIZE_RANGE = (200, 2000)
"""Sforce-Query-Options batchSize accepts 200..2000."""
HUBSPOT_MAX_PAGE_SIZE = 100
"""HubSpot list and search endpoints return at most 100 records per page."""

CONNECTION_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
"""Connection names appear in commands and in Relay's database: keep them simple."""

SalesforceObject = Literal["Lead", "Contact", "Account", "User"]
HubSpotObject = Literal["contacts", "companies", "owners"]
SALESFORCE_OBJECTS: tuple[SalesforceObject, ...] = ("Lead", "Contact", "Account", "User")
HUBSPOT_OBJECTS: tuple[HubSpotObject, ...] = ("contacts", "companies", "owners")

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def check_cron(expression: str) -> str:
    """Check a five-field cron expression (minute hour day-of-month month day-of-week).

    Args:
        expression: e.g. ``"*/15 * * * *"``.

    Returns:
        The expression with surrounding whitespace removed.

    Raises:
        ValueError: naming the field that is wrong.
    """
    fields = expression.split()
    if len(fields) != len(_CRON_RANGES):
        raise ValueError(
            f"cron expression {expression!r} must have 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'"
        )
    for text, (low, high), name in zip(fields, _CRON_RANGES, _CRON_NAMES, strict=True):
        if not _CRON_FIELD.match(text):
            raise ValueError(f"cron {name} field {text!r} is not valid (use *, N, N-M, */N or lists)")
        if any(int(step) == 0 for step in re.findall(r"/(\d+)", text)):
            raise ValueError(f"cron {name} field {text!r}: a step (/N) must be at least 1")
        for number in re.findall(r"\d+", re.sub(r"/\d+", "", text)):
            if not low <= int(number) <= high:
                raise ValueError(f"cron {name} field {text!r}: {number} is outside {low}-{high}")
    return " ".join(fields)


class SyncSchedule(ConfigModel):
    """When a connection syncs: every N minutes, or a cron expression (UTC). Exactly one."""

    every_minutes: Annotated[int, Field(ge=1, le=1440)] | None = Field(
        default=None, description="Run an incremental sync every N minutes (1-1440)."
    )
    cron: str | None = Field(default=None, description="Five-field cron expression in UTC, e.g. '*/15 * * * *'.")

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    def crontab_fields(self) -> dict[str, str] | None:
        """The cron expression as ``huey.crontab`` keyword arguments, or ``None`` for intervals.

        Returns:
            ``{"minute", "hour", "day", "month", "day_of_week"}`` -> field text.
        """
        if self.cron is None:
            return None
        names = ("minute", "hour", "day", "month", "day_of_week")
        return dict(zip(names, self.cron.split(), strict=True))

    @model_validator(mode="after")
    def _exactly_one(self) -> SyncSchedule:
        if (self.every_minutes is None) == (self.cron is None):
            raise ValueError("give exactly one of every_minutes or cron")
        return self


class SalesforceCredentials(ConfigModel):
    """OAuth client-credentials flow of a Salesforce connected app."""

    client_id: SecretStr = Field(description="Connected app consumer key.")
    client_secret: SecretStr = Field(description="Connected app consumer secret.")


class HubSpotCredentials(ConfigModel):
    """Private-app access token, and the app secret used to verify webhook signatures."""

    access_token: SecretStr = Field(description="Private app access token.")
    client_secret: SecretStr | None = Field(
        default=None, description="App client secret; verifies X-HubSpot-Signature-v3 on webhooks."
    )


class _ConnectionBase(ConfigModel):
    base_url: str = Field(description="API base URL (the sandbox CRM by default).")
    mapping: str | None = Field(
        default=None,
        description="Name of the mapping file in mappings/ (without .yaml); defaults to the connection kind.",
    )
    schedule: SyncSchedule = Field(
        default_factory=lambda: SyncSchedule(every_minutes=15), description="When to sync."
    )
    write_back: bool = Field(default=True, description="Write Relay's decisions back to the CRM.")
    connect_timeout: float = Field(
        default=5, gt=0, le=60, description="Seconds to connect to the CRM; an unreachable server fails fast."
    )
    read_timeout: float = Field(default=60, gt=0, le=600, description="Seconds to wait for an answer once connected.")
    max_attempts: int = Field(
        default=6, ge=1, le=10,
        description="Attempts per API call, the first included (an unreachable server gets 3 at most).",
    )
    read_lag_seconds: float = Field(
        default=5, ge=0, le=300,
        description="Incremental reads stop this far before the CRM's clock (commit lag): a record changed "
        "during a read is read by the next sync, never skipped.",
    )
    run_deadline_minutes: int | None = Field(
        default=120, ge=1,
        description="A sync run that takes longer stops with RUN_DEADLINE_EXCEEDED (null: no limit); "
        "what it committed stays and the next run resumes from there.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://example.my.salesforce.com")
        return value.rstrip("/")

    @property
    def mapping_name(self) -> str:
        """The mapping file this connection uses (``mappings/<name>.yaml``)."""
        kind: str = getattr(self, "kind")  # noqa: B009 - declared by each subclass
        return self.mapping or kind


class SalesforceConnection(_ConnectionBase):
    """A Salesforce org, reached through its REST API."""

    kind: Literal["salesforce"]
    api_version: str = Field(default="59.0", description="REST API version without the leading v, e.g. 59.0.")
    credentials: SalesforceCredentials
    objects: list[SalesforceObject] = Field(
        default_factory=lambda: list(SALESFORCE_OBJECTS), min_length=1, description="Objects to sync."
    )
    page_size: int = Field(
        default=2000,
        description="Records per query page (Sforce-Query-Options batchSize, 200-2000).",
        json_schema_extra={"minimum": SALESFORCE_PAGE_SIZE_RANGE[0], "maximum": SALESFORCE_PAGE_SIZE_RANGE[1]},
    )
    write_batch_size: int = Field(
        default=SALESFORCE_MAX_WRITE_BATCH,
        ge=1,
        description="Records per sObject Collections call (max 200).",
        json_schema_extra={"maximum": SALESFORCE_MAX_WRITE_BATCH},
    )

    @field_validator("api_version")
    @classmethod
    def _api_version_shape(cls, value: str) -> str:
        if not re.fullmatch(r"\d{2,3}\.0", value):
            raise ValueError(f"{value!r} is not a Salesforce API version; write it like 59.0 (no leading v)")
        return value

    @field_validator("page_size")
    @classmethod
    def _page_size_in_range(cls, value: int) -> int:
        low, high = SALESFORCE_PAGE_SIZE_RANGE
        if not low <= value <= high:
            raise ValueError(f"page_size {value} is outside what Salesforce accepts ({low}-{high})")
        return value

    @field_validator("write_batch_size")
    @classmethod
    def _write_batch_within_api_max(cls, value: int) -> int:
        if value > SALESFORCE_MAX_WRITE_BATCH:
            raise ValueError(
                f"write_batch_size {value} is over the Salesforce API maximum of "
                f"{SALESFORCE_MAX_WRITE_BATCH} records per sObject Collections call"
            )
        return value


class HubSpotConnection(_ConnectionBase):
    """A HubSpot portal, reached through the CRM v3 API."""

    kind: Literal["hubspot"]
    credentials: HubSpotCredentials
    objects: list[HubSpotObject] = Field(
        default_factory=lambda: list(HUBSPOT_OBJECTS), min_length=1, description="Objects to sync."
    )
    page_size: int = Field(
        default=HUBSPOT_MAX_PAGE_SIZE,
        ge=1,
        description="Records per page (max 100).",
        json_schema_extra={"maximum": HUBSPOT_MAX_PAGE_SIZE},
    )
    write_batch_size: int = Field(
        default=HUBSPOT_MAX_WRITE_BATCH,
        ge=1,
        description="Inputs per batch call (max 100).",
        json_schema_extra={"maximum": HUBSPOT_MAX_WRITE_BATCH},
    )

    @field_validator("page_size")
    @classmethod
    def _page_size_within_api_max(cls, value: int) -> int:
        if value > HUBSPOT_MAX_PAGE_SIZE:
            raise ValueError(f"page_size {value} is over the HubSpot API maximum of {HUBSPOT_MAX_PAGE_SIZE} per page")
        return value

    @field_validator("write_batch_size")
    @classmethod
    def _write_batch_within_api_max(cls, value: int) -> int:
        if value > HUBSPOT_MAX_WRITE_BATCH:
            raise ValueError(
                f"write_batch_size {value} is over the HubSpot API maximum of "
                f"{HUBSPOT_MAX_WRITE_BATCH} inputs per batch call"
            )
        return value


Connection = Annotated[SalesforceConnection | HubSpotConnection, Field(discriminator="kind")]


class RelayFile(ConfigModel):
    """``config/relay.yaml``: the connections Relay syncs, by name."""

    connections: dict[str, Connection] = Field(
        min_length=1,
        description="Connections by name (lower-case letters, digits, underscores; used by `relay sync NAME`).",
        json_schema_extra={"propertyNames": {"pattern": CONNECTION_NAME_PATTERN}},
    )
