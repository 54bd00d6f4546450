"""A Salesforce connection in ``config/relay.yaml``: OAuth client credentials, objects, limits."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from connector.config._base import ConfigModel
from connector.config.connection import ConnectionSettings
from connector.crms.salesforce.limits import DAILY_CALLS

SALESFORCE_MAX_WRITE_BATCH = 200
"""sObject Collections take at most 200 records per call."""
SALESFORCE_PAGE_SIZE_RANGE = (200, 2000)
"""Sforce-Query-Options batchSize accepts 200..2000."""

SalesforceObject = Literal["Lead", "Contact", "Account", "User", "Opportunity"]
SALESFORCE_OBJECTS: tuple[SalesforceObject, ...] = ("Lead", "Contact", "Account", "User", "Opportunity")


class SalesforceCredentials(ConfigModel):
    """OAuth client-credentials flow of a Salesforce connected app."""

    client_id: SecretStr = Field(description="Connected app consumer key.")
    client_secret: SecretStr = Field(description="Connected app consumer secret.")
    outbound_token: SecretStr | None = Field(
        default=None,
        description="A secret of your choice in the outbound-message endpoint URL (?token=...): outbound "
        "messages are not signed, so only requests that carry it are taken. Unset: none are.",
    )


class SalesforceConnection(ConnectionSettings):
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

    organization_id: str | None = Field(
        default=None,
        description="The org's id (00D..., 15 or 18 characters). Outbound messages (POST /webhooks/salesforce) "
        "are not signed: only those naming this org are taken; without it none are.",
    )

    api_daily_calls: ClassVar[int] = DAILY_CALLS
    api_daily_limit: int | None = Field(
        default=None, ge=1,
        description="API budget: calls per day Relay allows itself, all its processes together (null: the org's "
        "allocation from Sforce-Limit-Info, 100,000 until the org answers).",
    )
    api_reserve_percent: float = Field(
        default=20, ge=0, le=90,
        description="API budget: share of the day that only real time (events, form capture) may spend; "
        "scheduled syncs and backfill wait before it.",
    )
    api_budget_block: int = Field(
        default=10, ge=1, le=200,
        description="API budget: tokens a process takes from the shared budget per database round trip.",
    )

    @field_validator("organization_id")
    @classmethod
    def _organization_id_shape(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None
        if not value:
            return None  # unset (an empty environment variable): no outbound message is taken
        if not re.fullmatch(r"00D[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?", value):
            raise ValueError(f"{value!r} is not a Salesforce org id: 00D followed by 12 or 15 letters and digits")
        return value

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
