"""A HubSpot connection in ``config/relay.yaml``: private-app token, objects, limits."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from connector.config._base import ConfigModel
from connector.config.connection import ConnectionSettings
from connector.crms.hubspot.limits import DAILY_CALLS, WINDOW_CALLS, WINDOW_SECONDS

HUBSPOT_MAX_WRITE_BATCH = 100
"""HubSpot batch endpoints take at most 100 inputs per call."""
HUBSPOT_MAX_PAGE_SIZE = 100
"""HubSpot list and search endpoints return at most 100 records per page."""

HubSpotObject = Literal["contacts", "companies", "owners", "deals"]
HUBSPOT_OBJECTS: tuple[HubSpotObject, ...] = ("contacts", "companies", "owners", "deals")


class HubSpotCredentials(ConfigModel):
    """Private-app access token, and the app secret used to verify webhook signatures."""

    access_token: SecretStr = Field(description="Private app access token.")
    client_secret: SecretStr | None = Field(
        default=None, description="App client secret; verifies X-HubSpot-Signature-v3 on webhooks."
    )


class HubSpotConnection(ConnectionSettings):
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

    deletions_every_minutes: int = Field(
        default=60, ge=0, le=1_440,
        description="List archived records (the only way HubSpot reports deletions: every archived record, "
        "page by page) at most this often; 0 on every run. A full sync always does.",
    )

    api_window_calls: ClassVar[int] = WINDOW_CALLS
    api_window_seconds: ClassVar[float] = WINDOW_SECONDS
    api_daily_calls: ClassVar[int] = DAILY_CALLS
    api_window_limit: int | None = Field(
        default=None, ge=1,
        description="API budget: calls Relay allows itself per rolling 10 s, all its processes together (null: "
        "what the portal's X-HubSpot-RateLimit-Max says, 190 until it has answered).",
    )
    api_daily_limit: int | None = Field(
        default=None, ge=1,
        description="API budget: calls per day (null: X-HubSpot-RateLimit-Daily, 650,000 until the portal answers).",
    )
    api_reserve_percent: float = Field(
        default=20, ge=0, le=90,
        description="API budget: share of the window and of the day that only real time (events, form capture) "
        "may spend; scheduled syncs and backfill wait before it.",
    )
    api_budget_block: int = Field(
        default=10, ge=1, le=100,
        description="API budget: tokens a process takes from the shared budget per database round trip.",
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
